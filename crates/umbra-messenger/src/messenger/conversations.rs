//! Reading conversations: the chat list, message requests and a conversation's history.

use umbra_crypto::SessionId;

use super::{Conversation, Message, Messenger, MessengerError, db};

impl Messenger {
    fn conversation_list(&self, requests: bool) -> Result<Vec<Conversation>, MessengerError> {
        let now = self.now();
        let conn = self.db();
        let what = "listing conversations";
        let contacts =
            db::contacts_with_messages(&conn, !requests).map_err(MessengerError::db(what))?;
        let mut out = Vec::with_capacity(contacts.len());
        for contact in contacts {
            let id = contact.session_id;
            let unread = db::unread_count(&conn, &id, now).map_err(MessengerError::db(what))?;
            let last = db::last_message(&conn, &id, now).map_err(MessengerError::db(what))?;
            out.push(Conversation {
                contact,
                unread,
                last,
            });
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.last.as_ref().map_or(0, |m| m.sent_ms)));
        Ok(out)
    }

    /// Accepted conversations, newest first, with unread counts.
    pub fn conversations(&self) -> Result<Vec<Conversation>, MessengerError> {
        self.conversation_list(false)
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
}
