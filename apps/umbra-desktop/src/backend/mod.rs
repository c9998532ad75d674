//! The app's back end: a tokio runtime on its own threads owns the [`Messenger`] and the
//! onion transport. The UI sends [`Command`]s and drains [`Update`]s; every update wakes the
//! UI (`request_repaint`), and nothing the UI calls ever waits on the network or the
//! database.
//!
//! ```text
//!   UI thread (egui)                         runtime threads (tokio)
//!   ─────────────────                         ───────────────────────
//!   Backend::send(Command) ──bounded mpsc──►  worker: open/create the profile, then
//!                                              ├─ commands (accept, settings, open, …)
//!                                              ├─ sender: sends (chats and groups), in order
//!                                              ├─ receiver: receive_wait loop
//!                                              ├─ purger: expired messages, every second
//!                                              ├─ pictures: contacts' profile pictures
//!                                              ├─ attachments: uploads, downloads, thumbnails
//!                                              └─ network: paths and epoch every 2 s
//!   Backend::poll() ◄──bounded mpsc── Update ─┘  + wake() → ctx.request_repaint()
//! ```

mod attachments;
mod groups;
mod offline;
mod pictures;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use umbra_crypto::SessionId;
use zeroize::Zeroizing;

use crate::client::{
    AttachmentInfo, Contact, Conversation, Disappearing, FileServer, GroupChatMessage, KdfParams,
    Message, MessageId, OutboxEntry, Progress, Settings, SwarmApi,
};

pub(crate) use groups::{GroupAction, GroupSummary};

/// Commands and updates waiting at most (the UI drains updates every frame; a full command
/// queue is shown as "busy" rather than blocking a frame).
const QUEUE: usize = 256;

/// How the messenger reaches the network.
#[derive(Clone)]
pub enum NetworkSource {
    /// No network file: the app works offline.
    None,
    /// A `network.json` (a devnet's, or another network's).
    File(PathBuf),
    /// A swarm access given by the caller (an in-process network in tests).
    Swarm(Arc<dyn SwarmApi>),
}

impl std::fmt::Debug for NetworkSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            Self::Swarm(_) => f.write_str("Swarm(..)"),
        }
    }
}

/// What the back end is started with.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// The profile directory.
    pub profile_dir: PathBuf,
    /// The network.
    pub network: NetworkSource,
    /// Argon2id parameters for a new passphrase (the CLI's defaults; tests use cheap ones).
    pub kdf: KdfParams,
    /// Where notifications of new messages go.
    pub notifier: Arc<dyn crate::Notifier>,
    /// The attachment server, when the caller gives one (tests); otherwise the one
    /// `network.json` names, reached through onion paths.
    pub file_server: Option<FileServer>,
    /// Where to record which profile holds which network (see [`crate::Networks`]); `None`
    /// records nothing.
    pub networks: Option<crate::Networks>,
}

impl BackendConfig {
    /// The profile in `dir` on `network`, with the default key derivation.
    pub fn new(profile_dir: PathBuf, network: NetworkSource) -> Self {
        Self {
            profile_dir,
            network,
            kdf: KdfParams::default(),
            notifier: Arc::new(crate::DesktopNotifier),
            file_server: None,
            networks: None,
        }
    }
}

/// Messages of a conversation read at a time: the newest page when it opens, one more each
/// time the list is scrolled near its top.
pub(crate) const HISTORY_PAGE: usize = 200;

/// What the UI asks of the back end.
#[derive(Debug)]
pub(crate) enum Command {
    /// Create a profile with a new identity.
    Create {
        name: String,
        passphrase: Option<Zeroizing<String>>,
    },
    /// Create a profile for the identity of a recovery phrase.
    Restore {
        phrase: Zeroizing<String>,
        name: String,
        passphrase: Option<Zeroizing<String>>,
    },
    /// Open a locked profile.
    Unlock { passphrase: Zeroizing<String> },
    /// The conversation now shown (its messages are marked read), or none.
    Open(Option<SessionId>),
    /// Send a text; `local` identifies it in [`Update::SendDone`].
    Send {
        local: u64,
        to: SessionId,
        text: String,
    },
    /// Deliver the outbox now instead of at its next retry.
    RetryNow,
    /// Show another page of older messages of the open conversation or group.
    MoreHistory,
    /// Stop after every command before this one is done (before switching networks);
    /// answered by [`Update::Closed`].
    Close,
    /// Delete one of our messages for everyone (it is identified by its sent time).
    Unsend { with: SessionId, sent_ms: u64 },
    /// Change a conversation's disappearing messages (the other side is told).
    SetDisappearing {
        with: SessionId,
        setting: Disappearing,
    },
    /// Accept a message request.
    Accept(SessionId),
    /// Decline a message request (its messages are deleted).
    Decline(SessionId),
    /// Block an account.
    Block(SessionId),
    /// Unblock an account.
    Unblock(SessionId),
    /// Pin a conversation above the others (synced to the account's other devices).
    Pin(SessionId),
    /// Put a pinned conversation back in its place.
    Unpin(SessionId),
    /// Hide a conversation until a new message arrives in it.
    Hide(SessionId),
    /// Set (or with `None` clear) a contact's nickname.
    Rename {
        with: SessionId,
        nickname: Option<String>,
    },
    /// Keep a value of the app's own (drafts, theme: see `persist`) in the profile.
    SaveAppValue { key: &'static str, value: Vec<u8> },
    /// Change the profile's passphrase (`new` = `None` removes it); `current` must open it.
    ChangePassphrase {
        current: Option<Zeroizing<String>>,
        new: Option<Zeroizing<String>>,
    },
    /// Change our display name.
    SetDisplayName(String),
    /// Change the settings.
    SetSettings(Settings),
    /// We started or stopped typing to someone (sent only when the setting is on).
    Typing { to: SessionId, started: bool },
    /// Create a group with us as its admin and `members` invited.
    CreateGroup {
        name: String,
        members: Vec<SessionId>,
    },
    /// The group now shown (its messages count as read); `Open` shows a chat instead.
    OpenGroup(String),
    /// Send a text to a group; `local` identifies it in [`Update::SendDone`].
    SendGroup {
        local: u64,
        group: String,
        text: String,
    },
    /// Something done to a group (member panel, invitations).
    Group { group: String, action: GroupAction },
    /// Send the file at `path` to `to` (uploaded first); `local` identifies the transfer.
    SendFile {
        local: u64,
        to: To,
        path: PathBuf,
        caption: Option<String>,
    },
    /// Fetch (and check) an attachment: to `out`, or to the profile's download directory.
    /// A file already here is copied instead. `out` is never overwritten.
    Download {
        attachment: AttachmentRef,
        out: Option<PathBuf>,
    },
    /// Decode a small preview of the image at `path`.
    Thumbnail(PathBuf),
    /// Upload the picture at `path` and make it our profile picture.
    SetPicture(PathBuf),
}

/// Where a message or a file goes: a one-to-one chat or a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum To {
    Chat(SessionId),
    /// A group, by its `03…` id.
    Group(String),
}

/// Which attachment: the message it is in and its position there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct AttachmentRef {
    pub(crate) message_id: MessageId,
    pub(crate) index: u32,
}

/// A file going up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TransferId {
    /// A file being sent, by the UI's local number of [`Command::SendFile`].
    Upload(u64),
    /// An attachment being fetched.
    Download(AttachmentRef),
}

/// The network as the network panel shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NetworkStatus {
    /// Which network (the file, or "in-process"), or `None` when offline.
    pub(crate) network: Option<String>,
    /// The last poll of our swarm succeeded.
    pub(crate) connected: bool,
    /// Why not, in one line.
    pub(crate) problem: Option<String>,
    /// Something is in progress ("building onion paths…").
    pub(crate) progress: Option<String>,
    /// The onion paths: each node as (short key, address), entry first.
    pub(crate) paths: Vec<Vec<(String, String)>>,
    /// The node list's epoch.
    pub(crate) epoch: Option<u64>,
    /// The profile belongs to another network (the UI offers a profile of this network's
    /// own).
    pub(crate) other_network: bool,
}

/// What the back end tells the UI.
#[derive(Debug)]
pub(crate) enum Update {
    /// No profile: show the first-start screen.
    NeedsAccount,
    /// The profile is locked; `error` says why the last passphrase did not open it.
    Locked { error: Option<String> },
    /// Creating or restoring failed.
    OnboardingError(String),
    /// A new identity was created: its recovery phrase, to show once.
    Created { phrase: Zeroizing<String> },
    /// The profile is open.
    Ready {
        me: SessionId,
        display_name: Option<String>,
        settings: Settings,
        /// What the app saved last time: (key, value) of each `persist` key found.
        app_values: Vec<(&'static str, Vec<u8>)>,
        /// The profile has a passphrase.
        has_passphrase: bool,
    },
    /// A passphrase change finished: whether the profile now has one, or why it failed.
    PassphraseChanged(Result<bool, String>),
    /// Conversations, requests, the open conversation's messages and the outbox.
    Snapshot(Box<Snapshot>),
    /// A send finished: `error` when the message could not even be queued.
    SendDone { local: u64, error: Option<String> },
    /// Someone started or stopped typing.
    Typing { from: SessionId, started: bool },
    /// The network changed.
    Network(NetworkStatus),
    /// A group was created (its id), or why not.
    GroupCreated(Result<String, String>),
    /// A group action finished; `error` says why it failed.
    GroupDone {
        group: String,
        action: GroupAction,
        error: Option<String>,
    },
    /// A contact's profile picture, downloaded and decoded.
    Picture {
        id: SessionId,
        picture: Arc<crate::picture::Picture>,
    },
    /// How far a transfer is.
    Progress { id: TransferId, progress: Progress },
    /// A transfer finished: where the file is now, or why it failed (one line).
    TransferDone {
        id: TransferId,
        result: Result<PathBuf, String>,
    },
    /// The preview of the image at `path`, or why there is none.
    Thumbnail {
        path: PathBuf,
        result: Result<Arc<crate::picture::Thumbnail>, String>,
    },
    /// Our profile picture was set (or why not).
    PictureSet(Result<(), String>),
    /// Something failed; one line for the status bar.
    Notice(String),
    /// The profile cannot be used at all.
    Fatal(String),
    /// Every command before [`Command::Close`] is done; the back end stopped.
    Closed,
}

/// The state the UI mirrors, read in one go after each change.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) chats: Vec<Conversation>,
    pub(crate) requests: Vec<Conversation>,
    pub(crate) blocked: Vec<Contact>,
    /// The open conversation's newest messages (a page or more), oldest first.
    pub(crate) history: Option<(SessionId, Vec<Message>)>,
    /// Older messages of it exist ([`Command::MoreHistory`] shows them).
    pub(crate) history_more: bool,
    pub(crate) outbox: Vec<OutboxEntry>,
    /// Every group (invitations too), with its newest message and unread count.
    pub(crate) groups: Vec<GroupSummary>,
    /// The open group's messages.
    pub(crate) group_history: Option<(String, Vec<GroupChatMessage>)>,
    /// Older messages of that group exist ([`Command::MoreHistory`] shows them).
    pub(crate) group_history_more: bool,
    /// The names we know of the groups' members and authors (nickname or display name).
    pub(crate) names: std::collections::BTreeMap<SessionId, String>,
    /// The open conversation's attachments, oldest first.
    pub(crate) attachments: Vec<AttachmentInfo>,
}

/// A running back end: its runtime, the command queue in and the update queue out.
pub struct Backend {
    commands: mpsc::Sender<Command>,
    updates: mpsc::Receiver<Update>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

/// Wakes the UI after an update.
pub(crate) type Wake = Arc<dyn Fn() + Send + Sync>;

impl Backend {
    /// Starts the runtime and the worker; `wake` is called after every update (the app
    /// passes `ctx.request_repaint`).
    pub fn start(
        config: BackendConfig,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("umbra-backend")
            .enable_all()
            .build()?;
        let (commands, command_rx) = mpsc::channel(QUEUE);
        let (update_tx, updates) = mpsc::channel(QUEUE);
        let out = worker::Out::new(update_tx, Arc::new(wake));
        runtime.spawn(worker::run(config, command_rx, out));
        Ok(Self {
            commands,
            updates,
            runtime: Some(runtime),
        })
    }

    /// Queues a command; `false` when the queue is full or the back end has stopped.
    pub(crate) fn send(&self, command: Command) -> bool {
        self.commands.try_send(command).is_ok()
    }

    /// The next update, if one is waiting (never blocks).
    pub(crate) fn poll(&mut self) -> Option<Update> {
        self.updates.try_recv().ok()
    }

    /// Stops after `last` (the drafts) and every command before it is done, waiting up to
    /// `limit`; for quitting, when the window is already gone. Other updates are dropped.
    pub(crate) fn close(&mut self, last: Option<Command>, limit: Duration) {
        let queued = last.is_none_or(|c| self.commands.try_send(c).is_ok())
            && self.commands.try_send(Command::Close).is_ok();
        if !queued {
            return;
        }
        let Some(rt) = &self.runtime else {
            return;
        };
        let updates = &mut self.updates;
        rt.block_on(async {
            let _ = tokio::time::timeout(limit, async {
                while let Some(u) = updates.recv().await {
                    if matches!(u, Update::Closed) {
                        break;
                    }
                }
            })
            .await;
        });
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // Everything the user did is in the database already (sends are saved before any
        // network call); what is cut short here is only a poll or a delivery attempt, which
        // the outbox repeats next time. So quitting waits a second at most.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
