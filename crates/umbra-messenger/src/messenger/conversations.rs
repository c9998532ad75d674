//! Reading conversations: the chat list, message requests and a conversation's history; and
//! where a conversation sits in the chat list (pinned, hidden), synced to the account's other
//! devices through the contacts config.

use umbra_crypto::SessionId;

use super::{ChatPriority, Conversation, Message, Messenger, MessengerError, db};

impl Messenger {
    fn conversation_list(&self, requests: bool) -> Result<Vec<Conversation>, MessengerError> {
        let now = self.now();
        let conn = self.db();
        let what = "listing conversations";
        let contacts =
            db::contacts_with_messages(&conn, !requests).map_err(MessengerError::db(what))?;
        let priorities = self.chat_priorities(&conn)?;
        let mut out = Vec::with_capacity(contacts.len());
        for contact in contacts {
            let id = contact.session_id;
            let unread = db::unread_count(&conn, &id, now).map_err(MessengerError::db(what))?;
            let last = db::last_message(&conn, &id, now).map_err(MessengerError::db(what))?;
            out.push(Conversation {
                contact,
                unread,
                last,
                priority: priorities.get(&id).copied().unwrap_or_default(),
            });
        }
        out.sort_by_key(Conversation::list_order);
        Ok(out)
    }

    /// Accepted conversations: pinned ones first, then newest first, with unread counts.
    /// Hidden conversations are left out ([`Messenger::all_conversations`] has them).
    pub fn conversations(&self) -> Result<Vec<Conversation>, MessengerError> {
        let mut list = self.conversation_list(false)?;
        list.retain(|c| c.priority != ChatPriority::Hidden);
        Ok(list)
    }

    /// Accepted conversations, hidden ones included (last).
    pub fn all_conversations(&self) -> Result<Vec<Conversation>, MessengerError> {
        self.conversation_list(false)
    }

    /// Pins the conversation with `with` above the others (on top of those pinned before).
    pub fn pin_conversation(&self, with: &SessionId) -> Result<(), MessengerError> {
        let top = self
            .chat_priorities(&self.db())?
            .values()
            .filter_map(|p| match p {
                ChatPriority::Pinned { rank } => Some(*rank),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        self.set_priority(
            with,
            ChatPriority::Pinned {
                rank: top.saturating_add(1),
            },
        )
    }

    /// Hides the conversation with `with` from the chat list until a new message arrives in
    /// it; its messages stay, marked read (without read receipts). Reading them is also what
    /// tells a restored device that they are not new: the synced read state is the line a
    /// message must pass to bring the conversation back.
    pub fn hide_conversation(&self, with: &SessionId) -> Result<(), MessengerError> {
        self.set_priority(with, ChatPriority::Hidden)
    }

    /// Puts a pinned or hidden conversation back in its place by its newest message.
    pub fn unpin_conversation(&self, with: &SessionId) -> Result<(), MessengerError> {
        self.set_priority(with, ChatPriority::Normal)
    }

    fn set_priority(&self, with: &SessionId, priority: ChatPriority) -> Result<(), MessengerError> {
        let what = "changing a chat's place";
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        if *with == self.me
            || db::contact(&tx, with)
                .map_err(MessengerError::db(what))?
                .is_none()
        {
            return Err(MessengerError::NotAChat(with.to_hex()));
        }
        if priority == ChatPriority::Hidden {
            self.read_incoming(&tx, with, self.now())?;
        }
        self.sync_note_priority(&tx, with, priority)?;
        tx.commit().map_err(MessengerError::db(what))
    }

    /// Message requests: conversations started by senders we have not accepted.
    pub fn requests(&self) -> Result<Vec<Conversation>, MessengerError> {
        self.conversation_list(true)
    }

    /// The messages of a conversation, oldest first (expired ones excluded).
    pub fn history(&self, with: &SessionId) -> Result<Vec<Message>, MessengerError> {
        let now = self.now();
        db::history(&self.db(), with, now).map_err(MessengerError::db("reading the history"))
    }

    /// The newest `limit` messages of a conversation, oldest first, and whether older ones
    /// exist (a long conversation is shown page by page).
    pub fn recent_history(
        &self,
        with: &SessionId,
        limit: usize,
    ) -> Result<(Vec<Message>, bool), MessengerError> {
        let now = self.now();
        db::recent_history(&self.db(), with, now, limit)
            .map_err(MessengerError::db("reading the history"))
    }
}
