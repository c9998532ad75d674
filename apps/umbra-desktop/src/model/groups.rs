//! Groups in the model: the open group, its drafts and messages being sent, the "new group"
//! form and the member panel, and how the back end's group updates change them.

use std::cmp::Reverse;

use umbra_crypto::{MessageHash, SessionId};

use super::{Model, Pane, check_session_id, conversation_name, short_id};
use crate::backend::{GroupAction, GroupSummary};
use crate::client::{ChatPriority, Conversation, GroupStatus, MAX_GROUP_MEMBERS};

/// The longest group name, in characters (what an invitation carries).
pub(crate) const MAX_GROUP_NAME_CHARS: usize = 100;

/// A group message the user sent that the database does not hold yet, or could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupPending {
    pub(crate) local: u64,
    pub(crate) group: String,
    pub(crate) text: String,
    /// Why it could not be queued.
    pub(crate) error: Option<String>,
}

/// The "new group" form.
#[derive(Debug, Default)]
pub(crate) struct NewGroup {
    pub(crate) name: String,
    /// One Session ID per field.
    pub(crate) members: Vec<String>,
    /// Waiting for the back end (creating writes to the group swarm).
    pub(crate) busy: bool,
    pub(crate) error: Option<String>,
}

impl NewGroup {
    /// The group's name, or why it cannot be used.
    pub(crate) fn checked_name(&self) -> Result<String, String> {
        check_group_name(&self.name)
    }

    /// Each member field checked: nothing typed (`None`), the ID, or a one-line reason.
    pub(crate) fn checked_members(
        &self,
        me: Option<SessionId>,
    ) -> Vec<Option<Result<SessionId, String>>> {
        let mut seen = Vec::new();
        self.members
            .iter()
            .map(|text| check_member(text, me, &mut seen))
            .collect()
    }

    /// What to create: the name and the members, or why not (one line).
    pub(crate) fn ready(&self, me: Option<SessionId>) -> Result<(String, Vec<SessionId>), String> {
        let name = self.checked_name()?;
        let mut ids = Vec::new();
        for c in self.checked_members(me).into_iter().flatten() {
            ids.push(c.map_err(|_| "A member's Session ID is not valid yet.".to_string())?);
        }
        if ids.len() + 1 > MAX_GROUP_MEMBERS {
            return Err(format!(
                "A group has at most {MAX_GROUP_MEMBERS} members, you included."
            ));
        }
        Ok((name, ids))
    }
}

/// One member field: nothing typed (`None`), the ID, or a one-line reason; `seen` holds
/// the IDs of the fields above.
pub(crate) fn check_member(
    text: &str,
    me: Option<SessionId>,
    seen: &mut Vec<SessionId>,
) -> Option<Result<SessionId, String>> {
    if text.trim().is_empty() {
        return None;
    }
    Some(check_session_id(text, me).and_then(|id| {
        if seen.contains(&id) {
            Err("Already in the list above.".to_string())
        } else {
            seen.push(id);
            Ok(id)
        }
    }))
}

/// A group name as typed: trimmed, or a one-line reason it cannot be used.
pub(crate) fn check_group_name(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("Give the group a name.".into());
    }
    let n = t.chars().count();
    if n > MAX_GROUP_NAME_CHARS {
        return Err(format!(
            "A group name has at most {MAX_GROUP_NAME_CHARS} characters; this has {n}."
        ));
    }
    if t.chars().any(char::is_control) {
        return Err("A group name is one line of text.".into());
    }
    Ok(t.to_string())
}

/// What the member panel asks before doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confirm {
    Leave,
    Delete,
}

/// The member panel of the open group.
#[derive(Debug, Default)]
pub(crate) struct GroupPanel {
    /// Shown beside the messages.
    pub(crate) open: bool,
    /// The member whose actions are shown.
    pub(crate) selected: Option<SessionId>,
    /// The Session ID being typed to add.
    pub(crate) add: String,
    /// What is being done ("Removing Bob…"), until the back end answers.
    pub(crate) busy: Option<String>,
    /// Why the last action failed, one line.
    pub(crate) error: Option<String>,
    /// The question shown before leaving or deleting.
    pub(crate) confirm: Option<Confirm>,
    /// The message clicked in the chat (its "Delete for everyone" shows), by hash.
    pub(crate) selected_message: Option<MessageHash>,
    /// The disappearing-messages choices are open in the header (admins).
    pub(crate) timer_open: bool,
    /// The timer picked while the setting is off.
    pub(crate) timer: u32,
}

/// A row of the conversation list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ListRow<'a> {
    Chat(&'a Conversation),
    Group(&'a GroupSummary),
}

impl ListRow<'_> {
    fn order(&self) -> (Reverse<ChatPriority>, Reverse<u64>) {
        match self {
            Self::Chat(c) => (
                Reverse(c.priority),
                Reverse(c.last.as_ref().map_or(0, |m| m.sent_ms)),
            ),
            Self::Group(g) => (
                Reverse(ChatPriority::Normal),
                Reverse(g.last.as_ref().map_or(0, |m| m.sent_ms)),
            ),
        }
    }
}

impl Model {
    /// The conversation list as shown: chats and groups (not invitations) matching the
    /// search, pinned chats first, then most recent activity first.
    pub(crate) fn visible_rows(&self) -> Vec<ListRow<'_>> {
        let q = self.search.trim().to_lowercase();
        let mut rows: Vec<ListRow<'_>> = self
            .visible_chats()
            .into_iter()
            .map(ListRow::Chat)
            .collect();
        rows.extend(
            self.groups
                .iter()
                .filter(|g| g.view.status != GroupStatus::Invited)
                .filter(|g| {
                    q.is_empty()
                        || g.view.name.to_lowercase().contains(&q)
                        || g.view.id.contains(&q)
                })
                .map(ListRow::Group),
        );
        rows.sort_by_key(ListRow::order);
        rows
    }

    /// Group invitations waiting for an answer.
    pub(crate) fn invitations(&self) -> impl Iterator<Item = &GroupSummary> {
        self.groups
            .iter()
            .filter(|g| g.view.status == GroupStatus::Invited)
    }

    /// The open group.
    pub(crate) fn open_group_summary(&self) -> Option<&GroupSummary> {
        let open = self.open_group.as_deref()?;
        self.groups.iter().find(|g| g.view.id == open)
    }

    /// Opens a group (the caller tells the back end).
    pub(crate) fn open_group(&mut self, id: String) {
        if self.open_group.as_deref() != Some(id.as_str()) {
            self.group_history.clear();
            self.group_history_more = false;
            self.asked_more = false;
            self.attachments.list.clear();
            self.group_panel = GroupPanel::default();
        }
        self.open = None;
        self.open_group = Some(id);
        self.pane = Pane::Chat;
    }

    /// How a person is named in groups: "You", their nickname or display name, or the
    /// short form of their ID.
    pub(crate) fn name_of(&self, id: &SessionId) -> String {
        if Some(*id) == self.me {
            return "You".into();
        }
        if let Some(n) = self.names.get(id) {
            return n.clone();
        }
        self.chats
            .iter()
            .chain(&self.requests)
            .find(|c| c.contact.session_id == *id)
            .map_or_else(|| short_id(id), conversation_name)
    }

    /// Takes the open group's draft as a message to send: (local number, group, text).
    pub(crate) fn take_group_draft(&mut self) -> Option<(u64, String, String)> {
        let group = self.open_group.clone()?;
        let draft = self.group_drafts.get_mut(&group)?;
        let text = draft.trim().to_string();
        if text.is_empty() {
            return None;
        }
        draft.clear();
        // Saved at once: a sent message must not come back as a draft after a restart.
        self.drafts_changed_at = Some(0);
        Some(self.queue_group(group, text))
    }

    /// Records a group message being sent; returns what to give the back end.
    pub(crate) fn queue_group(&mut self, group: String, text: String) -> (u64, String, String) {
        self.next_local += 1;
        let local = self.next_local;
        self.group_pending.push(GroupPending {
            local,
            group: group.clone(),
            text: text.clone(),
            error: None,
        });
        (local, group, text)
    }

    /// Retries a group message that could not be queued.
    pub(crate) fn retry_group_pending(&mut self, local: u64) -> Option<(u64, String, String)> {
        let i = self.group_pending.iter().position(|p| p.local == local)?;
        let p = self.group_pending.remove(i);
        Some(self.queue_group(p.group, p.text))
    }

    /// Messages being sent to the open group that its history does not show yet.
    pub(crate) fn group_pending_here(&self) -> impl Iterator<Item = &GroupPending> {
        let open = self.open_group.as_deref();
        self.group_pending.iter().filter(move |p| {
            Some(p.group.as_str()) == open
                && (p.error.is_some()
                    || !self
                        .group_history
                        .iter()
                        .any(|m| m.outgoing && m.body == p.text))
        })
    }

    /// A group was created (the back end shows it already), or it failed.
    pub(crate) fn group_created(&mut self, result: Result<String, String>) {
        match result {
            Ok(id) => {
                self.new_group = NewGroup::default();
                self.open_group(id);
            }
            Err(e) => {
                self.new_group.busy = false;
                self.new_group.error = Some(e);
            }
        }
    }

    /// A group action finished.
    pub(crate) fn group_done(&mut self, group: &str, action: &GroupAction, error: Option<String>) {
        let here = self.open_group.as_deref() == Some(group);
        if here {
            self.group_panel.busy = None;
        }
        match (error, action) {
            (Some(e), GroupAction::Accept | GroupAction::Decline) => self.notice = Some(e),
            (Some(e), _) if here => self.group_panel.error = Some(e),
            (Some(e), _) => self.notice = Some(e),
            (None, GroupAction::Leave) => {
                if here {
                    self.open_group = None;
                }
                self.notice = Some("You left the group.".into());
            }
            (None, GroupAction::Remove(_)) if here => self.group_panel.selected = None,
            (None, GroupAction::Add(_)) if here => self.group_panel.add.clear(),
            (None, GroupAction::Unsend(_)) if here => self.group_panel.selected_message = None,
            (None, _) => {}
        }
    }

    /// Whether the open group can be written to (joined; not removed or deleted).
    pub(crate) fn open_group_active(&self) -> bool {
        self.open_group_summary()
            .is_some_and(|g| g.view.status == GroupStatus::Joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::id;

    #[test]
    fn group_names_are_trimmed_and_bounded() {
        assert_eq!(check_group_name("  Hikers "), Ok("Hikers".into()));
        assert!(check_group_name("  ").unwrap_err().contains("name"));
        assert!(
            check_group_name(&"x".repeat(101))
                .unwrap_err()
                .contains("this has 101")
        );
    }

    #[test]
    fn members_are_checked_one_by_one_and_duplicates_named() {
        let form = NewGroup {
            name: "Hikers".into(),
            members: vec![
                id(1).to_hex(),
                String::new(),
                "05ab".into(),
                id(1).to_hex(),
                id(9).to_hex(),
            ],
            ..NewGroup::default()
        };
        let checked = form.checked_members(Some(id(9)));
        assert_eq!(checked[0], Some(Ok(id(1))));
        assert_eq!(checked[1], None);
        assert!(
            checked[2]
                .as_ref()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .contains("this has 4")
        );
        assert!(
            checked[3]
                .as_ref()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .contains("Already")
        );
        assert!(
            checked[4]
                .as_ref()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .contains("your own")
        );
        assert!(form.ready(Some(id(9))).is_err());
        let ok = NewGroup {
            name: " Hikers ".into(),
            members: vec![id(1).to_hex(), String::new()],
            ..NewGroup::default()
        };
        assert_eq!(ok.ready(None), Ok(("Hikers".into(), vec![id(1)])));
    }
}
