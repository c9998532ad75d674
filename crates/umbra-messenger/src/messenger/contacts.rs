//! Our profile and settings, contacts, message requests and blocking.

use umbra_crypto::SessionId;
use umbra_wire::{Content, LokiProfile, MessageRequestResponse};

use super::{Contact, Messenger, MessengerError, Settings, config_apply, db};
use rusqlite_cipher::Connection;

impl Messenger {
    /// Our display name, if set.
    pub fn display_name(&self) -> Result<Option<String>, MessengerError> {
        let conn = self.db();
        let v = db::meta_get(&conn, "display_name")
            .map_err(MessengerError::db("reading the display name"))?;
        Ok(v.and_then(|b| String::from_utf8(b).ok()))
    }

    /// Sets our display name; it travels with our messages (`LokiProfile`).
    /// Our other devices get it through the synced profile.
    pub fn set_display_name(&self, name: &str) -> Result<(), MessengerError> {
        let what = "saving the display name";
        config_apply::check_name(what, name)?;
        let now_s = self.now() / 1000;
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        db::meta_set(&tx, "display_name", name.as_bytes())
            .and_then(|()| db::meta_set(&tx, "profile_updated_s", now_s.to_string().as_bytes()))
            .map_err(MessengerError::db(what))?;
        self.sync_note_name(&tx, name)?;
        tx.commit().map_err(MessengerError::db(what))
    }

    /// Our profile as it travels with our messages: `LokiProfile` (name, picture URL) and
    /// the `profileKey` that decrypts the picture.
    pub(super) fn profile_proto(
        &self,
        conn: &Connection,
    ) -> Result<(Option<LokiProfile>, Option<Vec<u8>>), MessengerError> {
        let what = "reading our profile";
        let name = db::meta_get(conn, "display_name")
            .map_err(MessengerError::db(what))?
            .and_then(|b| String::from_utf8(b).ok());
        let updated = db::meta_get(conn, "profile_updated_s")
            .map_err(MessengerError::db(what))?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<u64>().ok());
        let picture = super::config_state::user_profile(conn, self.identity.seed())?.picture();
        if name.is_none() && picture.is_none() {
            return Ok((None, None));
        }
        let key = picture.as_ref().map(|p| p.key.to_vec());
        Ok((
            Some(LokiProfile {
                display_name: name,
                profile_picture: picture.map(|p| p.url),
                last_profile_update_seconds: updated,
            }),
            key,
        ))
    }

    /// The user settings.
    pub fn settings(&self) -> Result<Settings, MessengerError> {
        let conn = self.db();
        let flag = |k: &str| -> Result<bool, MessengerError> {
            Ok(db::meta_get(&conn, k)
                .map_err(MessengerError::db("reading the settings"))?
                .is_some_and(|v| v == b"1"))
        };
        Ok(Settings {
            read_receipts: flag("read_receipts")?,
            typing_indicators: flag("typing_indicators")?,
        })
    }

    /// Saves the user settings.
    pub fn set_settings(&self, settings: Settings) -> Result<(), MessengerError> {
        let conn = self.db();
        let b = |v: bool| if v { b"1" } else { b"0" };
        db::meta_set(&conn, "read_receipts", b(settings.read_receipts))
            .and_then(|()| db::meta_set(&conn, "typing_indicators", b(settings.typing_indicators)))
            .map_err(MessengerError::db("saving the settings"))
    }

    /// A value an app keeps in the encrypted database for itself (its drafts, its theme),
    /// or `None` if it never set one. Keys are the app's own; the messenger never reads them.
    pub fn app_value(&self, key: &str) -> Result<Option<Vec<u8>>, MessengerError> {
        db::meta_get(&self.db(), &app_key(key)).map_err(MessengerError::db("reading app state"))
    }

    /// Saves a value for the app (see [`Self::app_value`]): encrypted at rest with the rest
    /// of the profile, unlike a file beside it.
    pub fn set_app_value(&self, key: &str, value: &[u8]) -> Result<(), MessengerError> {
        db::meta_set(&self.db(), &app_key(key), value)
            .map_err(MessengerError::db("saving app state"))
    }

    /// Resolves what a user typed: a Session ID, or a contact's nickname or display name.
    pub fn resolve(&self, who: &str) -> Result<SessionId, MessengerError> {
        let who = who.trim();
        if who.len() == 66 && who.bytes().all(|b| b.is_ascii_hexdigit()) {
            return who.parse().map_err(|e: umbra_crypto::CryptoError| {
                MessengerError::InvalidSessionId(e.to_string())
            });
        }
        let ids = db::contacts_named(&self.db(), who)
            .map_err(MessengerError::db("looking up a contact"))?;
        match ids.as_slice() {
            [one] => Ok(*one),
            [] if who.len() == 66 || who.starts_with("05") && who.len() > 20 => {
                Err(MessengerError::InvalidSessionId(
                    "expected 66 hex characters starting with 05".into(),
                ))
            }
            [] => Err(MessengerError::UnknownContact(who.to_string())),
            _ => Err(MessengerError::AmbiguousContact(who.to_string())),
        }
    }

    /// Adds (or approves) a contact, with an optional local nickname.
    pub fn add_contact(
        &self,
        id: &SessionId,
        nickname: Option<&str>,
    ) -> Result<(), MessengerError> {
        let what = "adding a contact";
        if let Some(n) = nickname {
            config_apply::check_name(what, n)?;
        }
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        db::ensure_contact(&tx, id)
            .and_then(|()| db::approve_contact(&tx, id, nickname))
            .map_err(MessengerError::db(what))?;
        self.sync_note_contact(&tx, id)?;
        tx.commit().map_err(MessengerError::db(what))
    }

    /// Sets (or with `None` clears) a contact's local nickname.
    pub fn rename_contact(
        &self,
        id: &SessionId,
        nickname: Option<&str>,
    ) -> Result<(), MessengerError> {
        let what = "renaming a contact";
        if let Some(n) = nickname {
            config_apply::check_name(what, n)?;
        }
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        db::ensure_contact(&tx, id)
            .and_then(|()| db::set_nickname(&tx, id, nickname))
            .map_err(MessengerError::db(what))?;
        self.sync_note_contact(&tx, id)?;
        tx.commit().map_err(MessengerError::db(what))
    }

    /// One contact.
    pub fn contact(&self, id: &SessionId) -> Result<Option<Contact>, MessengerError> {
        db::contact(&self.db(), id).map_err(MessengerError::db("reading a contact"))
    }

    /// Approved contacts, by name.
    pub fn contacts(&self) -> Result<Vec<Contact>, MessengerError> {
        db::approved_contacts(&self.db(), &self.me).map_err(MessengerError::db("listing contacts"))
    }

    /// Accepts a message request: the conversation moves to the chats, and the sender gets a
    /// `MessageRequestResponse{isApproved}` with our profile.
    pub async fn accept_request(&self, from: &SessionId) -> Result<(), MessengerError> {
        {
            let what = "accepting a message request";
            let mut conn = self.db();
            let tx = conn.transaction().map_err(MessengerError::db(what))?;
            db::ensure_contact(&tx, from)
                .and_then(|()| db::approve_contact(&tx, from, None))
                .map_err(MessengerError::db(what))?;
            self.sync_note_contact(&tx, from)?;
            let (profile, profile_key) = self.profile_proto(&tx)?;
            let content = Content {
                message_request_response: Some(MessageRequestResponse {
                    is_approved: true,
                    profile_key,
                    profile,
                }),
                ..Content::default()
            };
            self.queue_control(&tx, from, &content, None)?;
            tx.commit().map_err(MessengerError::db(what))?;
        }
        self.flush_outbox().await?;
        Ok(())
    }

    /// Declines a message request: its messages and the unapproved contact are deleted (a
    /// later message from the sender is a new request).
    pub fn decline_request(&self, from: &SessionId) -> Result<(), MessengerError> {
        let what = "declining a message request";
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        // Only an unaccepted conversation is a request: an accepted chat keeps its history.
        db::delete_request(&tx, from).map_err(MessengerError::db(what))?;
        if db::contact(&tx, from)
            .map_err(MessengerError::db(what))?
            .is_none()
        {
            self.sync_forget_contact(&tx, from)?;
        }
        tx.commit().map_err(MessengerError::db(what))
    }

    /// Blocks an account: its messages are dropped from now on; a pending request from it is
    /// deleted.
    pub fn block(&self, id: &SessionId) -> Result<(), MessengerError> {
        let what = "blocking a contact";
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        db::ensure_contact(&tx, id).map_err(MessengerError::db(what))?;
        let approved = db::contact(&tx, id)
            .map_err(MessengerError::db(what))?
            .is_some_and(|c| c.approved);
        if !approved {
            db::delete_conversation(&tx, id).map_err(MessengerError::db(what))?;
        }
        db::block_contact(&tx, id).map_err(MessengerError::db(what))?;
        self.sync_note_contact(&tx, id)?;
        tx.commit().map_err(MessengerError::db(what))
    }

    /// Blocked accounts, by name (to offer "unblock").
    pub fn blocked(&self) -> Result<Vec<Contact>, MessengerError> {
        db::blocked_contacts(&self.db()).map_err(MessengerError::db("listing blocked contacts"))
    }

    /// Unblocks an account (its conversation becomes an ordinary accepted one).
    pub fn unblock(&self, id: &SessionId) -> Result<(), MessengerError> {
        let what = "unblocking a contact";
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        db::unblock_contact(&tx, id).map_err(MessengerError::db(what))?;
        self.sync_note_contact(&tx, id)?;
        tx.commit().map_err(MessengerError::db(what))
    }
}

/// Apps' keys live under their own prefix, so they can never overwrite the messenger's.
fn app_key(key: &str) -> String {
    format!("app.{key}")
}
