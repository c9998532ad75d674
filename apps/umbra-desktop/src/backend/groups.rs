//! Groups in the back end: the group side of a snapshot (each group with its newest message
//! and unread count, the open group's messages, the names of members), and the commands of
//! the member panel and the invitations. Every group decision is the messenger's.
//!
//! The messenger keeps no read state for group messages, so the app keeps its own: per
//! group, the receive time of the newest message shown, in the profile's database
//! ([`crate::persist::GROUP_READ_KEY`]); later incoming messages are unread.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

use umbra_crypto::{MessageHash, SessionId};

use super::worker::{Shared, report};
use super::{Command, Update};
use crate::client::{GroupChatMessage, GroupView, Messenger, MessengerError};
use crate::persist;

/// Something done to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupAction {
    /// Invite members (admins).
    Add(Vec<SessionId>),
    /// Remove a member (admins): it reads nothing sent afterwards.
    Remove(SessionId),
    /// Make a member an admin (admins).
    Promote(SessionId),
    /// Leave the group and forget it here.
    Leave,
    /// Delete the group for everyone (admins).
    Delete,
    /// Accept an invitation.
    Accept,
    /// Decline an invitation (the group is forgotten).
    Decline,
    /// Delete a message for everyone (ours; admins: anyone's), by its hash.
    Unsend(MessageHash),
    /// Set the group's disappearing timer, after send (admins); `None` turns it off.
    SetDisappearing(Option<u32>),
}

impl GroupAction {
    /// What was being done, for an error line ("removing the member: …").
    pub(crate) fn doing(&self) -> &'static str {
        match self {
            Self::Add(_) => "adding members",
            Self::Remove(_) => "removing the member",
            Self::Promote(_) => "making them an admin",
            Self::Leave => "leaving the group",
            Self::Delete => "deleting the group",
            Self::Accept => "joining the group",
            Self::Decline => "declining the invitation",
            Self::Unsend(_) => "deleting the message for everyone",
            Self::SetDisappearing(_) => "setting disappearing messages",
        }
    }
}

/// A group as the conversation list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupSummary {
    /// Name, state, members, admins.
    pub(crate) view: GroupView,
    /// The newest message.
    pub(crate) last: Option<GroupChatMessage>,
    /// Incoming messages received after the newest one shown.
    pub(crate) unread: u64,
}

/// The read marks: group id → receive time (ms) of the newest message shown.
#[derive(Debug, Default)]
pub(crate) struct ReadMarks(Mutex<BTreeMap<String, u64>>);

impl ReadMarks {
    /// The marks saved in the profile (none when they cannot be read: at worst a group
    /// shows old messages as unread once).
    pub(crate) fn load(m: &Messenger) -> Self {
        let marks = m
            .app_value(persist::GROUP_READ_KEY)
            .ok()
            .flatten()
            .map(|v| persist::decode_read_marks(&v))
            .unwrap_or_default();
        Self(Mutex::new(marks))
    }

    fn get(&self, group: &str) -> u64 {
        let marks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        marks.get(group).copied().unwrap_or(0)
    }

    /// Moves `group`'s mark to `received_ms`; the marks to save when it moved.
    fn advance(&self, group: &str, received_ms: u64) -> Option<Vec<u8>> {
        let mut marks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mark = marks.entry(group.to_string()).or_default();
        if *mark >= received_ms {
            return None;
        }
        *mark = received_ms;
        Some(persist::encode_read_marks(&marks))
    }
}

/// What a snapshot holds of groups.
pub(super) struct GroupsPart {
    pub(super) groups: Vec<GroupSummary>,
    pub(super) history: Option<(String, Vec<GroupChatMessage>)>,
    /// Older messages of the open group exist than `history` holds.
    pub(super) history_more: bool,
    pub(super) names: BTreeMap<SessionId, String>,
}

/// Reads every group, the newest `limit` messages of the open one and the names of the people
/// in them; the open group's messages are marked read.
pub(super) fn read(
    m: &Messenger,
    marks: &ReadMarks,
    open: Option<&str>,
    limit: usize,
) -> Result<GroupsPart, MessengerError> {
    let mut groups = Vec::new();
    let mut history = None;
    let mut history_more = false;
    let mut people = BTreeSet::new();
    for view in m.groups()? {
        // Only the open group's history is read; the others' last message and unread count
        // come from one query each (a frame never waits on a group's whole history).
        let is_open = open == Some(view.id.as_str());
        let mut activity = m.group_activity(&view.id, marks.get(&view.id))?;
        if is_open {
            let (messages, more) = m.recent_group_history(&view.id, limit)?;
            history_more = more;
            if let Some(save) = marks.advance(&view.id, activity.newest_received_ms) {
                m.set_app_value(persist::GROUP_READ_KEY, &save)?;
                activity.unread = 0;
            }
            people.extend(messages.iter().map(|g| g.author));
            history = Some((view.id.clone(), messages));
        }
        people.extend(view.members.iter().map(|p| p.session_id));
        people.extend(view.invited_by);
        people.extend(activity.last.as_ref().map(|g| g.author));
        groups.push(GroupSummary {
            view,
            last: activity.last,
            unread: activity.unread,
        });
    }
    // A contact's own name first; otherwise the name a group's members config gives.
    let mut names: BTreeMap<SessionId, String> = groups
        .iter()
        .flat_map(|g| &g.view.members)
        .filter_map(|p| Some((p.session_id, p.name.clone()?)))
        .collect();
    for id in people {
        if let Some(c) = m.contact(&id)?
            && let Some(name) = c.nickname.or(c.display_name)
        {
            names.insert(id, name);
        }
    }
    Ok(GroupsPart {
        groups,
        history,
        history_more,
        names,
    })
}

/// Runs a group command, then tells the UI with the snapshot already showing its outcome.
pub(super) async fn handle(shared: &Shared, command: Command) {
    let m = &shared.m;
    match command {
        Command::CreateGroup { name, members } => {
            let result = m
                .create_group(&name, &members)
                .await
                .map(|v| v.id)
                .map_err(|e| format!("creating the group: {}", report(&e)));
            if let Ok(id) = &result {
                // The window opens the new group at once.
                shared.set_current(None, Some(id.clone()));
            }
            shared.refresh().await;
            shared.out.send(Update::GroupCreated(result)).await;
        }
        Command::Group { group, action } => {
            let done = match &action {
                GroupAction::Add(ids) => m.add_group_members(&group, ids, false).await,
                GroupAction::Remove(id) => m.remove_group_members(&group, &[*id]).await,
                GroupAction::Promote(id) => m.promote_group_member(&group, id).await,
                GroupAction::Leave => m.leave_group(&group).await,
                GroupAction::Delete => m.delete_group(&group).await,
                GroupAction::Accept => m.accept_group(&group).await.map(drop),
                GroupAction::Decline => m.decline_group(&group),
                GroupAction::Unsend(hash) => m.unsend_group_message(&group, hash).await,
                GroupAction::SetDisappearing(s) => m.set_group_disappearing(&group, *s).await,
            };
            let error = done
                .err()
                .map(|e| format!("{}: {}", action.doing(), report(&e)));
            shared.refresh().await;
            shared
                .out
                .send(Update::GroupDone {
                    group,
                    action,
                    error,
                })
                .await;
        }
        _ => {}
    }
}
