//! What the messenger shows its callers: messages, contacts, conversations, settings and the
//! events a poll produces. Plain data, no behaviour.

use umbra_crypto::{MessageHash, SessionId};

/// Where an outgoing message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    /// An incoming message.
    Received,
    /// Outgoing, in the outbox: not yet acknowledged by the recipient's swarm.
    Queued,
    /// Outgoing, acknowledged by the recipient's swarm.
    Sent,
    /// Outgoing, refused by the swarm for good (e.g. too large); not retried.
    Failed,
}

impl MessageStatus {
    pub(crate) fn to_i64(self) -> i64 {
        match self {
            Self::Received => 0,
            Self::Queued => 1,
            Self::Sent => 2,
            Self::Failed => 3,
        }
    }

    pub(crate) fn from_i64(v: i64) -> Self {
        match v {
            1 => Self::Queued,
            2 => Self::Sent,
            3 => Self::Failed,
            _ => Self::Received,
        }
    }
}

/// Disappearing-messages mode of a conversation or message (`messages.md` §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disappearing {
    /// Messages stay.
    #[default]
    Off,
    /// Deleted `seconds` after they were sent.
    AfterSend {
        /// The timer.
        seconds: u32,
    },
    /// Deleted `seconds` after they were read.
    AfterRead {
        /// The timer.
        seconds: u32,
    },
}

impl Disappearing {
    /// `(Content.expirationType, Content.expirationTimer)` values.
    pub(crate) fn wire(self) -> (i32, u32) {
        use umbra_wire::content::ExpirationType as T;
        match self {
            Self::Off => (T::Unknown as i32, 0),
            Self::AfterSend { seconds } => (T::DeleteAfterSend as i32, seconds),
            Self::AfterRead { seconds } => (T::DeleteAfterRead as i32, seconds),
        }
    }

    /// From the wire values; unknown types or a zero timer mean off.
    pub(crate) fn from_wire(kind: Option<i32>, timer: Option<u32>) -> Self {
        use umbra_wire::content::ExpirationType as T;
        let seconds = timer.unwrap_or(0);
        if seconds == 0 {
            return Self::Off;
        }
        match kind {
            Some(k) if k == T::DeleteAfterSend as i32 => Self::AfterSend { seconds },
            Some(k) if k == T::DeleteAfterRead as i32 => Self::AfterRead { seconds },
            _ => Self::Off,
        }
    }
}

/// A visible message in a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The other party of the conversation.
    pub conversation: SessionId,
    /// Who wrote it (ourselves for outgoing messages).
    pub author: SessionId,
    /// The author's sent time, ms; with `author` it identifies the message.
    pub sent_ms: u64,
    /// The text.
    pub body: String,
    /// Written by us (on this or another device).
    pub outgoing: bool,
    /// Delivery state.
    pub status: MessageStatus,
    /// When this device stored it, ms.
    pub received_ms: u64,
    /// When we read it (incoming), ms.
    pub read_ms: Option<u64>,
    /// The recipient sent a read receipt for it (outgoing).
    pub read_by_peer: bool,
    /// Its disappearing mode.
    pub disappearing: Disappearing,
    /// When it will be deleted locally, ms (known once its timer has started).
    pub expires_at_ms: Option<u64>,
    /// Storage hash of the copy in our own swarm (received copy, or our sync copy).
    pub hash: Option<MessageHash>,
}

/// A contact (any account we have exchanged messages with, or added by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Their Session ID.
    pub session_id: SessionId,
    /// Our local name for them.
    pub nickname: Option<String>,
    /// The display name from their profile.
    pub display_name: Option<String>,
    /// We accepted them (or wrote to them).
    pub approved: bool,
    /// They accepted us (a message request response, or a message from them after ours).
    pub approved_me: bool,
    /// Blocked: their messages are dropped.
    pub blocked: bool,
    /// Disappearing-messages setting of the conversation.
    pub disappearing: Disappearing,
}

impl Contact {
    /// The name to show: the nickname, else the display name, else the Session ID.
    pub fn name(&self) -> String {
        self.nickname
            .clone()
            .or_else(|| self.display_name.clone())
            .unwrap_or_else(|| self.session_id.to_hex())
    }
}

/// A conversation summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The other party.
    pub contact: Contact,
    /// Incoming messages not yet read.
    pub unread: u64,
    /// The newest message.
    pub last: Option<Message>,
    /// Pinned, hidden or neither (synced to the account's other devices).
    pub priority: ChatPriority,
}

impl Conversation {
    /// Its place in the chat list, smallest first: pinned ones on top (the latest pinned
    /// first), then by newest message.
    pub fn list_order(&self) -> impl Ord + use<> {
        (
            std::cmp::Reverse(self.priority),
            std::cmp::Reverse(self.last.as_ref().map_or(0, |m| m.sent_ms)),
        )
    }
}

/// Where a conversation sits in the chat list: the contacts config's priority
/// (`groups-config-attachments.md`: `+`, −1 hidden, 0 default, > 0 pinned), so every device
/// of the account agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum ChatPriority {
    /// Left out of the chat list until a new message arrives in it.
    Hidden,
    /// Ordered by its newest message.
    #[default]
    Normal,
    /// Above the others; a higher rank was pinned later and comes first.
    Pinned {
        /// The config's priority value (≥ 1).
        rank: i64,
    },
}

impl ChatPriority {
    /// The priority a config value stands for.
    pub fn from_config(value: i64) -> ChatPriority {
        match value {
            v if v < 0 => ChatPriority::Hidden,
            0 => ChatPriority::Normal,
            rank => ChatPriority::Pinned { rank },
        }
    }

    /// The config value of this priority.
    pub fn to_config(self) -> i64 {
        match self {
            ChatPriority::Hidden => -1,
            ChatPriority::Normal => 0,
            ChatPriority::Pinned { rank } => rank.max(1),
        }
    }

    /// Whether the conversation is pinned.
    pub fn is_pinned(self) -> bool {
        matches!(self, ChatPriority::Pinned { .. })
    }
}

/// User settings (`messages.md` §5.3: receipts and typing are opt-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settings {
    /// Send read receipts when reading messages.
    pub read_receipts: bool,
    /// Send typing indicators.
    pub typing_indicators: bool,
}

/// A message of a group chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChatMessage {
    /// The group id (`03…` hex).
    pub group: String,
    /// Who wrote it.
    pub author: SessionId,
    /// Its sent time (the envelope's), ms.
    pub sent_ms: u64,
    /// Its text.
    pub body: String,
    /// Written by us.
    pub outgoing: bool,
    /// When this device saved it, ms.
    pub received_ms: u64,
    /// Its hash in the group swarm.
    pub hash: Option<MessageHash>,
    /// Delivery state (ours: queued until the group swarm acknowledged it).
    pub status: MessageStatus,
    /// When it disappears (the group's timer after its sent time), ms; `None`: it stays.
    pub expires_at_ms: Option<u64>,
}

/// What a list of groups shows of one, read without its whole history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupActivity {
    /// The newest message.
    pub last: Option<GroupChatMessage>,
    /// Incoming messages received after the time the caller has read up to.
    pub unread: u64,
    /// When the newest message was received here, ms (0: none).
    pub newest_received_ms: u64,
}

/// Where we stand in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStatus {
    /// Invited; not accepted yet (a request).
    Invited,
    /// A member (or admin).
    Joined,
    /// Removed by an admin.
    Kicked,
    /// Deleted for everyone by an admin.
    Destroyed,
}

impl GroupStatus {
    /// The stored integer.
    pub(crate) fn to_i64(self) -> i64 {
        match self {
            Self::Invited => 0,
            Self::Joined => 1,
            Self::Kicked => 2,
            Self::Destroyed => 3,
        }
    }

    /// From the stored integer (unknown values read as kicked: nothing more to do there).
    pub(crate) fn from_i64(v: i64) -> Self {
        match v {
            0 => Self::Invited,
            1 => Self::Joined,
            3 => Self::Destroyed,
            _ => Self::Kicked,
        }
    }

    /// A word for people.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Joined => "joined",
            Self::Kicked => "removed",
            Self::Destroyed => "deleted",
        }
    }
}

/// One member of a group as its Members config shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberView {
    /// The member.
    pub session_id: SessionId,
    /// The name the group's members config gives it (written by admins: the creator's own
    /// name, and the names admins know their invitees by), if any.
    pub name: Option<String>,
    /// Holds the group key.
    pub admin: bool,
    /// Invited, not yet accepted.
    pub invited: bool,
    /// Promoted to admin, not yet confirmed by the member.
    pub promoting: bool,
}

/// What this device knows of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    /// The group id (`03…` hex).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Where we stand.
    pub status: GroupStatus,
    /// Whether we hold the group key.
    pub admin: bool,
    /// Who invited us (none for the creator).
    pub invited_by: Option<SessionId>,
    /// The members (empty until the Members config is read).
    pub members: Vec<GroupMemberView>,
    /// The group-wide disappearing timer (after send), set by admins.
    pub disappearing: Disappearing,
}

/// Something a poll brought in, already saved to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new message (incoming, or one of ours sent from another device).
    Message {
        /// The message.
        message: Message,
        /// The conversation is a message request (an unknown sender).
        request: bool,
    },
    /// A message was deleted for everyone by its author.
    Unsent {
        /// The conversation.
        conversation: SessionId,
        /// The author.
        author: SessionId,
        /// Its sent time.
        sent_ms: u64,
    },
    /// A group message was deleted for everyone (by its author or an admin).
    GroupUnsent {
        /// The group id (`03…` hex).
        group: String,
        /// Who wrote the message.
        author: SessionId,
        /// Its sent time.
        sent_ms: u64,
    },
    /// The other party read our messages.
    Read {
        /// Who read.
        by: SessionId,
        /// Sent times of the messages read.
        sent_ms: Vec<u64>,
    },
    /// Typing started or stopped.
    Typing {
        /// Who.
        from: SessionId,
        /// Started (`true`) or stopped.
        started: bool,
    },
    /// Our message request was accepted.
    RequestAccepted {
        /// By whom.
        by: SessionId,
    },
    /// A group message (from a member, or one of ours from another device).
    GroupMessage {
        /// The message.
        message: GroupChatMessage,
    },
    /// An invitation to a group arrived (accept with `accept_group`).
    GroupInvite {
        /// The group id.
        group: String,
        /// Its name.
        name: String,
        /// Who invited us.
        from: SessionId,
    },
    /// We were removed from a group, or it was deleted for everyone.
    GroupClosed {
        /// The group id.
        group: String,
        /// Removed or deleted.
        status: GroupStatus,
    },
    /// The disappearing-messages setting of a conversation changed.
    DisappearingChanged {
        /// The conversation.
        conversation: SessionId,
        /// The new setting.
        setting: Disappearing,
    },
}

/// One entry of the outbox (what is still to be acknowledged by a swarm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Row id.
    pub id: i64,
    /// What it is ("message", "sync copy", "control", "delete", "expire").
    pub kind: &'static str,
    /// The swarm it goes to.
    pub owner: SessionId,
    /// The visible message it delivers, by (conversation, sent time).
    pub message: Option<(SessionId, u64)>,
    /// Attempts so far.
    pub attempts: u32,
    /// Next attempt, ms.
    pub next_attempt_ms: u64,
    /// The last failure.
    pub last_error: Option<String>,
}

/// What [`super::Messenger::flush_outbox`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushReport {
    /// Entries acknowledged and removed.
    pub done: usize,
    /// Entries that failed this time and wait for their next attempt.
    pub retrying: usize,
    /// Entries refused for good and removed.
    pub failed: usize,
    /// Entries left in the outbox.
    pub pending: usize,
}

/// Where an attachment stands on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentState {
    /// Ours: uploaded and sent (the local file is the one we sent).
    Sent,
    /// Received, not downloaded yet (or a download was interrupted: it resumes).
    Available,
    /// Downloaded, its size and digest checked.
    Downloaded,
    /// The last download was refused (tampered or truncated) and discarded; it can be tried
    /// again.
    Failed,
}

impl AttachmentState {
    pub(crate) fn to_i64(self) -> i64 {
        match self {
            Self::Sent => 0,
            Self::Available => 1,
            Self::Downloaded => 2,
            Self::Failed => 3,
        }
    }

    pub(crate) fn from_i64(v: i64) -> Self {
        match v {
            0 => Self::Sent,
            2 => Self::Downloaded,
            3 => Self::Failed,
            _ => Self::Available,
        }
    }

    /// A lower-case word for lists (`sent`, `available`, `downloaded`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Available => "available",
            Self::Downloaded => "downloaded",
            Self::Failed => "failed",
        }
    }
}

/// A saved message that can carry files, as `attachments` lists and `download` takes it.
/// One-to-one and group messages are numbered separately, so the kind is part of the id:
/// `12` is one-to-one message 12, `g12` group message 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageId {
    /// A message of a one-to-one conversation.
    Direct(i64),
    /// A message of a group.
    Group(i64),
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Padded as a whole, so that tables can align ids of both kinds.
        let text = match self {
            Self::Direct(n) => n.to_string(),
            Self::Group(n) => format!("g{n}"),
        };
        f.pad(&text)
    }
}

/// Why a text is not a [`MessageId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a message id: a number such as 12, or g12 for a group message (see `umbra attachments`)"
)]
pub struct BadMessageId(pub String);

impl std::str::FromStr for MessageId {
    type Err = BadMessageId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let (group, digits) = match t.strip_prefix(['g', 'G']) {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        // Digits only: no sign, so `-1` or `g+1` are refused rather than read.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadMessageId(s.to_owned()));
        }
        let n: i64 = digits.parse().map_err(|_| BadMessageId(s.to_owned()))?;
        Ok(if group {
            Self::Group(n)
        } else {
            Self::Direct(n)
        })
    }
}

/// An attachment of a message, as lists show it (the key stays inside the messenger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// The message's id (what `download` takes).
    pub message_id: MessageId,
    /// Its position in the message.
    pub index: u32,
    /// Who sent the message.
    pub author: SessionId,
    /// The message's sent time, ms (with `author`, what names it in a chat).
    pub sent_ms: u64,
    /// Sent by us.
    pub outgoing: bool,
    /// The file's name, if the sender gave one.
    pub file_name: Option<String>,
    /// Its MIME type, if known.
    pub content_type: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// Image width in pixels, where known.
    pub width: Option<u32>,
    /// Image height in pixels, where known.
    pub height: Option<u32>,
    /// Its caption.
    pub caption: Option<String>,
    /// Where it stands.
    pub state: AttachmentState,
    /// The local file, once there is one.
    pub path: Option<std::path::PathBuf>,
}

/// What a transfer is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferPhase {
    /// Reading the file twice: the key is a hash of it, then encrypting it.
    Encrypting,
    /// Sending the encrypted bytes to the attachment server.
    Uploading,
    /// Fetching the encrypted bytes from the attachment server.
    Downloading,
    /// Checking the digest and decrypting.
    Verifying,
}

impl TransferPhase {
    /// A lower-case word for progress lines (`encrypting`, `uploading`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Encrypting => "encrypting",
            Self::Uploading => "uploading",
            Self::Downloading => "downloading",
            Self::Verifying => "verifying",
        }
    }
}

/// How far a transfer is: `done` of `total` bytes in `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The phase.
    pub phase: TransferPhase,
    /// Bytes done in it.
    pub done: u64,
    /// Bytes it has in all.
    pub total: u64,
}

/// A size as people write it, in SI units: `12 B`, `320.0 kB`, `1.5 MB` (what progress lines
/// and attachment lists show, in every front end alike).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    #[allow(clippy::cast_precision_loss)] // one decimal is shown
    let mut v = bytes as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A progress callback (called from the messenger's tasks, possibly from a blocking thread).
pub type ProgressFn = std::sync::Arc<dyn Fn(Progress) + Send + Sync>;
