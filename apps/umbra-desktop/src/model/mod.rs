//! The app's state as plain data: what the back end last reported (conversations, the open
//! conversation, the network) and what the user is doing (drafts, messages being sent, the
//! first-start steps). No drawing here: the `ui` modules read and change this, and
//! [`Model::apply`] folds the back end's updates into it.

mod attachments;
mod groups;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use umbra_crypto::SessionId;
use zeroize::Zeroizing;

use crate::backend::{Command, GroupSummary, NetworkStatus, Snapshot, Update};
use crate::client::{
    Contact, Conversation, GroupChatMessage, Message, MessageStatus, OutboxEntry, Settings,
};
use crate::persist;

pub(crate) use attachments::{
    AUTO_FETCH_MAX, Attachments, DialogPurpose, PathDialog, Preview, default_save_path, is_image,
    progress_line,
};
pub(crate) use groups::{Confirm, GroupPanel, ListRow, NewGroup, check_member};

/// Which screen the window shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Screen {
    /// Waiting for the back end to open the profile.
    #[default]
    Loading,
    /// First start: create or restore an account.
    Onboarding,
    /// The profile has a passphrase.
    Locked,
    /// Conversations.
    Main,
    /// The profile cannot be used; the reason is in [`Model::fatal`].
    Fatal,
}

/// What the right-hand side shows on the main screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Pane {
    /// The open conversation (or a hint when none is open).
    #[default]
    Chat,
    /// Start a conversation by Session ID.
    NewConversation,
    /// Create a group: a name and members.
    NewGroup,
    /// Message requests.
    Requests,
    /// The network panel.
    Network,
    /// Settings.
    Settings,
    /// Our Session ID and its QR code.
    MyId,
}

/// What the chat header has open below the conversation's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderEdit {
    /// The nickname field.
    Rename,
    /// The disappearing-messages choices.
    Disappearing,
    /// "Block them?"
    Block,
}

/// The colour theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Theme {
    /// Follow the system.
    #[default]
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

/// A message the user sent that the database does not hold yet, or could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// Our number for it.
    pub(crate) local: u64,
    /// The conversation.
    pub(crate) to: SessionId,
    /// The text.
    pub(crate) text: String,
    /// Why it could not be queued (shown with "Retry").
    pub(crate) error: Option<String>,
}

/// The first-start flow.
#[derive(Debug, Default)]
pub(crate) struct Onboarding {
    /// "Create" (false) or "restore" (true) tab.
    pub(crate) restoring: bool,
    pub(crate) name: String,
    pub(crate) passphrase: Zeroizing<String>,
    pub(crate) passphrase_again: Zeroizing<String>,
    pub(crate) phrase_input: Zeroizing<String>,
    /// Waiting for the back end (Argon2id can take a second).
    pub(crate) busy: bool,
    pub(crate) error: Option<String>,
    /// The new account's recovery phrase, shown until the user confirms two of its words.
    pub(crate) phrase: Option<Zeroizing<String>>,
    /// Which two words (0-based) the user must type back.
    pub(crate) ask: [usize; 2],
    pub(crate) answers: [String; 2],
}

impl Onboarding {
    /// Why the typed passphrase cannot be used, if it cannot.
    pub(crate) fn passphrase_problem(&self) -> Option<&'static str> {
        passphrase_problem(&self.passphrase, &self.passphrase_again)
    }

    /// Whether the two words typed back match the phrase.
    pub(crate) fn confirmed(&self) -> bool {
        let Some(phrase) = &self.phrase else {
            return false;
        };
        let words: Vec<&str> = phrase.split_whitespace().collect();
        self.ask.iter().zip(&self.answers).all(|(&i, a)| {
            words
                .get(i)
                .is_some_and(|w| w.eq_ignore_ascii_case(a.trim()))
        })
    }
}

/// Why a new passphrase typed twice cannot be used, if it cannot (empty means none).
pub(crate) fn passphrase_problem(pass: &str, again: &str) -> Option<&'static str> {
    if pass.is_empty() {
        None
    } else if pass.chars().count() < 8 {
        Some("A passphrase needs at least 8 characters (or leave it empty).")
    } else if pass != again {
        Some("The two passphrases differ.")
    } else {
        None
    }
}

/// The settings pane's passphrase change.
#[derive(Debug, Default)]
pub(crate) struct PassphraseChange {
    pub(crate) current: Zeroizing<String>,
    pub(crate) new: Zeroizing<String>,
    pub(crate) again: Zeroizing<String>,
    /// Waiting for the back end (Argon2id, re-encrypting the database).
    pub(crate) busy: bool,
    /// The outcome of the last change: `Ok` with what was done, or why it failed.
    pub(crate) result: Option<Result<String, String>>,
}

/// Checks a typed Session ID as the user types: the ID, or a one-line reason.
pub(crate) fn check_session_id(text: &str, me: Option<SessionId>) -> Result<SessionId, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("Paste a Session ID: 66 characters, starting with 05.".into());
    }
    if let Some(bad) = t.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "A Session ID has only the characters 0-9 and a-f; {bad:?} is not one of them."
        ));
    }
    let n = t.chars().count();
    if n != 66 {
        return Err(format!("A Session ID has 66 characters; this has {n}."));
    }
    if !t.starts_with("05") {
        return Err("A Session ID starts with 05.".into());
    }
    let id: SessionId = t
        .parse()
        .map_err(|e: umbra_crypto::CryptoError| e.to_string())?;
    if Some(id) == me {
        return Err("That is your own Session ID.".into());
    }
    Ok(id)
}

/// The short form of a Session ID: `05ab12…9f3c`.
pub(crate) fn short_id(id: &SessionId) -> String {
    let hex = id.to_hex();
    format!("{}…{}", &hex[..6], &hex[hex.len() - 4..])
}

/// The name to show for a conversation.
pub(crate) fn conversation_name(c: &Conversation) -> String {
    c.contact
        .nickname
        .clone()
        .or_else(|| c.contact.display_name.clone())
        .unwrap_or_else(|| short_id(&c.contact.session_id))
}

/// How a message's delivery is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Incoming.
    Received,
    /// In the outbox, first attempt under way.
    Sending,
    /// In the outbox after failed attempts; retried by itself, or now with "Retry".
    Retrying,
    /// Acknowledged by the recipient's swarm.
    Sent,
    /// The recipient read it.
    Read,
    /// Refused for good.
    Failed,
}

impl Delivery {
    /// The word under the bubble.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Received => "",
            Self::Sending => "sending…",
            Self::Retrying => "not delivered yet",
            Self::Sent => "sent",
            Self::Read => "read",
            Self::Failed => "failed",
        }
    }
}

/// Settings' choice of another network.
#[derive(Debug, Default)]
pub(crate) struct NetworkSwitch {
    /// The network file typed in.
    pub(crate) file: String,
    /// Why the last choice could not be used.
    pub(crate) error: Option<String>,
    /// The switch asked for and not done yet.
    pub(crate) to: Option<SwitchTo>,
    /// The back end has stopped for it.
    pub(crate) closed: bool,
    /// The network file switched to, and the one before (for "Back to the previous
    /// network"), once Settings switched.
    pub(crate) current: Option<PathBuf>,
    pub(crate) previous: Option<PathBuf>,
}

/// A network to switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SwitchTo {
    pub(crate) file: PathBuf,
    /// Into a profile of this network's own even though none is recorded for it (the
    /// current profile turned out to belong to another network).
    pub(crate) separate: bool,
}

/// Everything the window shows.
#[derive(Debug, Default)]
pub(crate) struct Model {
    /// Settings' choice of another network.
    pub(crate) switch: NetworkSwitch,
    /// The app is quitting: drafts are saved at once.
    pub(crate) quitting: bool,
    pub(crate) screen: Screen,
    pub(crate) pane: Pane,
    pub(crate) fatal: Option<String>,
    pub(crate) onboarding: Onboarding,
    /// The passphrase typed on the lock screen, and why the last one failed.
    pub(crate) unlock: Zeroizing<String>,
    pub(crate) unlock_error: Option<String>,
    pub(crate) unlock_busy: bool,
    pub(crate) me: Option<SessionId>,
    pub(crate) display_name: String,
    pub(crate) settings: Settings,
    pub(crate) chats: Vec<Conversation>,
    pub(crate) requests: Vec<Conversation>,
    /// Blocked accounts (Settings offers "Unblock").
    pub(crate) blocked: Vec<Contact>,
    /// The open conversation and its messages.
    pub(crate) open: Option<SessionId>,
    pub(crate) history: Vec<Message>,
    /// Older messages of the open conversation exist than `history` holds.
    pub(crate) history_more: bool,
    /// They were asked for and have not come yet.
    pub(crate) asked_more: bool,
    /// How far the open conversation's list is scrolled from its top, points.
    pub(crate) list_offset: Option<f32>,
    /// (conversation, sent time) of outgoing messages still in the outbox after a failure.
    pub(crate) retrying: BTreeSet<(SessionId, u64)>,
    pub(crate) pending: Vec<Pending>,
    next_local: u64,
    /// Unsent text per conversation.
    pub(crate) drafts: BTreeMap<SessionId, String>,
    /// When the drafts last changed without being saved, ms.
    pub(crate) drafts_changed_at: Option<u64>,
    pub(crate) search: String,
    /// The Session ID being typed in "new conversation".
    pub(crate) new_id: String,
    pub(crate) typing: BTreeSet<SessionId>,
    pub(crate) network: NetworkStatus,
    /// The last problem, one line, until dismissed.
    pub(crate) notice: Option<String>,
    /// The profile has a passphrase.
    pub(crate) has_passphrase: bool,
    pub(crate) passphrase_change: PassphraseChange,
    /// The settings pane's edit of the display name.
    pub(crate) name_edit: String,
    pub(crate) theme: Theme,
    /// What notifications of new messages say.
    pub(crate) notify: crate::NotifyLevel,
    /// The offset times are shown in.
    pub(crate) zone: crate::time::Zone,
    /// Where the profile lives (shown in settings).
    pub(crate) profile_dir: PathBuf,
    /// The profile the app started with, when networks can be switched (other networks'
    /// profiles live inside it).
    pub(crate) base_profile: Option<PathBuf>,
    /// What the chat header shows below the name.
    pub(crate) header: Option<HeaderEdit>,
    /// The nickname being typed in the chat header, and why it was refused.
    pub(crate) nickname_edit: String,
    pub(crate) header_error: Option<String>,
    /// The timer picked while disappearing messages are off (0: not picked yet).
    pub(crate) timer: u32,
    /// The message the user clicked, by (conversation, sent time): its actions are shown.
    pub(crate) selected: Option<(SessionId, u64)>,
    /// To whom and when we last said "typing".
    pub(crate) typing_sent: Option<(SessionId, u64)>,
    /// Every group, invitations included.
    pub(crate) groups: Vec<GroupSummary>,
    /// The open group (never at the same time as `open`) and its messages.
    pub(crate) open_group: Option<String>,
    pub(crate) group_history: Vec<GroupChatMessage>,
    /// Older messages of the open group exist than `group_history` holds.
    pub(crate) group_history_more: bool,
    /// Unsent text per group (kept while the app runs).
    pub(crate) group_drafts: BTreeMap<String, String>,
    pub(crate) group_pending: Vec<groups::GroupPending>,
    /// Names of the people in groups, by Session ID.
    pub(crate) names: BTreeMap<SessionId, String>,
    pub(crate) new_group: NewGroup,
    pub(crate) group_panel: GroupPanel,
    /// Contacts' profile pictures, once downloaded.
    pub(crate) pictures: BTreeMap<SessionId, std::sync::Arc<crate::picture::Picture>>,
    /// Files sent and received, transfers, previews.
    pub(crate) attachments: Attachments,
}

impl Model {
    /// Folds one update from the back end into the state.
    pub(crate) fn apply(&mut self, update: Update) {
        match update {
            Update::NeedsAccount => self.screen = Screen::Onboarding,
            Update::Locked { error } => {
                self.screen = Screen::Locked;
                self.unlock_busy = false;
                self.unlock_error = error;
            }
            Update::OnboardingError(e) => {
                self.onboarding.busy = false;
                self.onboarding.error = Some(e);
            }
            Update::Created { phrase } => {
                self.onboarding.ask = words_to_ask(&phrase);
                self.onboarding.phrase = Some(phrase);
                self.onboarding.busy = false;
            }
            Update::Ready {
                me,
                display_name,
                settings,
                app_values,
                has_passphrase,
            } => {
                self.has_passphrase = has_passphrase;
                for (key, value) in app_values {
                    match key {
                        persist::DRAFTS_KEY => {
                            (self.drafts, self.group_drafts) = persist::decode_drafts(&value);
                        }
                        persist::THEME_KEY => self.theme = persist::decode_theme(&value),
                        persist::NOTIFY_KEY => self.notify = crate::NotifyLevel::decode(&value),
                        _ => {}
                    }
                }
                self.me = Some(me);
                self.display_name = display_name.unwrap_or_default();
                self.name_edit = self.display_name.clone();
                self.settings = settings;
                self.unlock = Zeroizing::default();
                self.unlock_busy = false;
                // A new account stays on its recovery phrase until it is confirmed.
                if self.onboarding.phrase.is_none() {
                    self.screen = Screen::Main;
                }
            }
            Update::Snapshot(s) => self.apply_snapshot(*s),
            Update::SendDone { local, error } => match error {
                None => {
                    self.pending.retain(|p| p.local != local);
                    self.group_pending.retain(|p| p.local != local);
                }
                Some(e) => {
                    if let Some(p) = self.pending.iter_mut().find(|p| p.local == local) {
                        p.error = Some(e.clone());
                    }
                    if let Some(p) = self.group_pending.iter_mut().find(|p| p.local == local) {
                        p.error = Some(e);
                    }
                }
            },
            Update::GroupCreated(result) => self.group_created(result),
            Update::GroupDone {
                group,
                action,
                error,
            } => self.group_done(&group, &action, error),
            Update::Typing { from, started } => {
                if started {
                    self.typing.insert(from);
                } else {
                    self.typing.remove(&from);
                }
            }
            Update::PassphraseChanged(result) => {
                if let Ok(has) = result {
                    self.has_passphrase = has;
                    self.passphrase_change = PassphraseChange::default();
                }
                let p = &mut self.passphrase_change;
                p.busy = false;
                p.result = Some(result.map(|has| {
                    if has {
                        "Passphrase changed.".to_string()
                    } else {
                        "Passphrase removed: the profile opens without one.".to_string()
                    }
                }));
            }
            Update::Network(n) => self.network = n,
            Update::Closed => self.switch.closed = true,
            Update::Picture { id, picture } => {
                self.pictures.insert(id, picture);
            }
            Update::Progress { id, progress } => self.attachments.progress(id, progress),
            Update::TransferDone { id, result } => self.attachments.done(id, result),
            Update::Thumbnail { path, result } => {
                let preview = match result {
                    Ok(t) => attachments::Preview::Ready(t),
                    Err(e) => attachments::Preview::Failed(e),
                };
                self.attachments.previews.insert(path, preview);
            }
            Update::PictureSet(result) => {
                let p = &mut self.attachments.picture;
                p.busy = false;
                p.result = Some(result.map(|()| "Your profile picture is set.".to_string()));
            }
            Update::Notice(n) => self.notice = Some(n),
            Update::Fatal(f) => {
                self.fatal = Some(f);
                self.screen = Screen::Fatal;
            }
        }
    }

    fn apply_snapshot(&mut self, s: Snapshot) {
        self.chats = s.chats;
        self.requests = s.requests;
        self.blocked = s.blocked;
        // The snapshot's attachments are those of the chat its history is of.
        if let Some((with, messages)) = s.history
            && Some(with) == self.open
        {
            // A message in the history is no longer "typing".
            self.history = messages;
            self.history_more = s.history_more;
            self.asked_more = false;
            self.attachments.list = s.attachments;
        } else if let Some((group, _)) = &s.group_history
            && Some(group) == self.open_group.as_ref()
        {
            self.attachments.list = s.attachments;
        }
        self.retrying = retrying(&s.outbox);
        self.groups = s.groups;
        self.names = s.names;
        if let Some((group, messages)) = s.group_history
            && Some(&group) == self.open_group.as_ref()
        {
            self.group_history = messages;
            self.group_history_more = s.group_history_more;
            self.asked_more = false;
        }
        // A group left or declined (here or on another device) is gone from the list.
        if let Some(open) = &self.open_group
            && !self.groups.iter().any(|g| &g.view.id == open)
        {
            self.open_group = None;
            self.group_history.clear();
        }
    }

    /// Forgets messages whose disappearing timer ran out: they go from the screen at once,
    /// whichever of the back end's tasks deletes them from the database.
    pub(crate) fn drop_expired(&mut self, now: u64) {
        let expired = |m: &Message| m.expires_at_ms.is_some_and(|at| at <= now);
        self.history.retain(|m| !expired(m));
        for c in self.chats.iter_mut().chain(&mut self.requests) {
            if c.last.as_ref().is_some_and(expired) {
                c.last = None;
            }
        }
    }

    /// The conversation list as shown: matching the search, pinned ones first, then most
    /// recent activity first.
    pub(crate) fn visible_chats(&self) -> Vec<&Conversation> {
        let q = self.search.trim().to_lowercase();
        let mut list: Vec<&Conversation> = self
            .chats
            .iter()
            .filter(|c| {
                q.is_empty()
                    || conversation_name(c).to_lowercase().contains(&q)
                    || c.contact.session_id.to_hex().contains(&q)
            })
            .collect();
        // The messenger's order, kept while local changes arrive between refreshes.
        list.sort_by_key(|c| c.list_order());
        list
    }

    /// The open conversation's summary.
    pub(crate) fn open_conversation(&self) -> Option<&Conversation> {
        let open = self.open?;
        self.chats
            .iter()
            .chain(&self.requests)
            .find(|c| c.contact.session_id == open)
    }

    /// Opens a conversation (the caller tells the back end).
    pub(crate) fn open(&mut self, with: SessionId) {
        if self.open != Some(with) {
            self.history.clear();
            self.history_more = false;
            self.asked_more = false;
            self.attachments.list.clear();
            self.selected = None;
            self.header = None;
        }
        self.open_group = None;
        self.open = Some(with);
        self.pane = Pane::Chat;
    }

    /// Takes the draft of the open conversation as a message to send: its local number,
    /// the recipient and the text, or `None` when there is nothing to send.
    pub(crate) fn take_draft(&mut self) -> Option<(u64, SessionId, String)> {
        let to = self.open?;
        let draft = self.drafts.get_mut(&to)?;
        let text = draft.trim().to_string();
        if text.is_empty() {
            return None;
        }
        draft.clear();
        // Saved at once: a sent message must not come back as a draft after a restart.
        self.drafts_changed_at = Some(0);
        Some(self.queue(to, text))
    }

    /// The drafts to save now, once [`persist::DRAFT_SAVE_MS`] passed since their last
    /// change or at once when the profile is about to be left (another network, quitting);
    /// otherwise how long to wait, ms.
    pub(crate) fn drafts_to_save(&mut self, now: u64) -> Result<Option<Command>, u64> {
        let Some(at) = self.drafts_changed_at else {
            return Ok(None);
        };
        let due = at.saturating_add(persist::DRAFT_SAVE_MS);
        if now < due && self.switch.to.is_none() && !self.quitting {
            return Err(due - now);
        }
        self.drafts_changed_at = None;
        Ok(Some(Command::SaveAppValue {
            key: persist::DRAFTS_KEY,
            value: persist::encode_drafts(&self.drafts, &self.group_drafts),
        }))
    }

    /// A new number for something being sent (a message or a file).
    pub(crate) fn next_local(&mut self) -> u64 {
        self.next_local += 1;
        self.next_local
    }

    /// Records a message being sent; returns what to give the back end.
    pub(crate) fn queue(&mut self, to: SessionId, text: String) -> (u64, SessionId, String) {
        let local = self.next_local();
        self.pending.push(Pending {
            local,
            to,
            text: text.clone(),
            error: None,
        });
        (local, to, text)
    }

    /// Retries a message that could not be queued: it is sent again under a new number.
    pub(crate) fn retry_pending(&mut self, local: u64) -> Option<(u64, SessionId, String)> {
        let i = self.pending.iter().position(|p| p.local == local)?;
        let p = self.pending.remove(i);
        Some(self.queue(p.to, p.text))
    }

    /// Messages being sent in the open conversation that the history does not show yet.
    pub(crate) fn pending_here(&self) -> impl Iterator<Item = &Pending> {
        let open = self.open;
        self.pending.iter().filter(move |p| {
            Some(p.to) == open
                && (p.error.is_some()
                    || !self.history.iter().any(|m| {
                        m.outgoing && m.status == MessageStatus::Queued && m.body == p.text
                    }))
        })
    }

    /// How a message's delivery is shown.
    pub(crate) fn delivery(&self, m: &Message) -> Delivery {
        match m.status {
            MessageStatus::Received => Delivery::Received,
            MessageStatus::Queued if self.retrying.contains(&(m.conversation, m.sent_ms)) => {
                Delivery::Retrying
            }
            MessageStatus::Queued => Delivery::Sending,
            MessageStatus::Sent if m.read_by_peer => Delivery::Read,
            MessageStatus::Sent => Delivery::Sent,
            MessageStatus::Failed => Delivery::Failed,
        }
    }
}

/// Two different word positions of `phrase` to ask back, never the first word (the one
/// people remember); chosen from the phrase itself, so a restart asks the same two.
fn words_to_ask(phrase: &str) -> [usize; 2] {
    let k = phrase.split_whitespace().count().saturating_sub(1);
    if k < 2 {
        return [0, 1];
    }
    let seed = phrase.bytes().fold(7usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    let a = seed % k;
    let b = (a + 1 + (seed / k) % (k - 1)) % k;
    if a < b {
        [a + 1, b + 1]
    } else {
        [b + 1, a + 1]
    }
}

fn retrying(outbox: &[OutboxEntry]) -> BTreeSet<(SessionId, u64)> {
    outbox
        .iter()
        .filter(|e| e.attempts > 0)
        .filter_map(|e| e.message)
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A Session ID of one repeated byte (the other modules' tests use it too).
    pub(crate) fn id(byte: u8) -> SessionId {
        let mut b = [byte; 33];
        b[0] = 0x05;
        SessionId::from_bytes(b).unwrap()
    }

    #[test]
    fn session_ids_are_checked_with_one_reason() {
        let good = id(0xab).to_hex();
        assert_eq!(check_session_id(&good, None), Ok(id(0xab)));
        assert_eq!(check_session_id(&format!("  {good}\n"), None), Ok(id(0xab)));
        assert!(
            check_session_id("05ab", None)
                .unwrap_err()
                .contains("this has 4")
        );
        assert!(check_session_id("05zz", None).unwrap_err().contains("'z'"));
        let wrong_prefix = format!("06{}", &good[2..]);
        assert!(
            check_session_id(&wrong_prefix, None)
                .unwrap_err()
                .contains("starts with 05")
        );
        assert!(
            check_session_id(&good, Some(id(0xab)))
                .unwrap_err()
                .contains("your own")
        );
    }

    #[test]
    fn the_two_words_asked_differ_and_are_checked() {
        let mut m = Model::default();
        let phrase = "one two three four five six seven eight nine ten eleven twelve";
        m.apply(Update::Created {
            phrase: Zeroizing::new(phrase.into()),
        });
        let [a, b] = m.onboarding.ask;
        assert_ne!(a, b);
        assert!(a > 0 && b > 0 && a < 12 && b < 12);
        let words: Vec<&str> = phrase.split(' ').collect();
        assert!(!m.onboarding.confirmed());
        m.onboarding.answers = [words[a].to_uppercase(), format!(" {} ", words[b])];
        assert!(m.onboarding.confirmed());
        m.onboarding.answers[1] = "wrong".into();
        assert!(!m.onboarding.confirmed());
    }

    #[test]
    fn a_failed_send_stays_with_its_reason_and_can_be_retried() {
        let mut m = Model::default();
        m.open(id(1));
        m.drafts.insert(id(1), "  hello ".into());
        let (local, to, text) = m.take_draft().unwrap();
        assert_eq!((to, text.as_str()), (id(1), "hello"));
        assert_eq!(m.drafts[&id(1)], "");
        assert_eq!(m.take_draft(), None);
        m.apply(Update::SendDone {
            local,
            error: Some("the outbox is full".into()),
        });
        assert_eq!(m.pending_here().count(), 1);
        let (again, _, text) = m.retry_pending(local).unwrap();
        assert_ne!(again, local);
        assert_eq!(text, "hello");
        m.apply(Update::SendDone {
            local: again,
            error: None,
        });
        assert_eq!(m.pending_here().count(), 0);
    }
}
