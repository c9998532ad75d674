//! Contacts (namespace 3): `c` → Session ID → the contact's fields.

use super::{
    Id33, MAX_NAME, Notify, ProfilePic, by_id, check_len, get_bool, get_int, get_pic, get_string,
    id_key, one_by_id, put_bool, put_int, put_pic, put_str, with_dict,
};
use crate::ConfigError;
use crate::data::Value;

/// A contact's disappearing-messages setting (`e` mode and `E` seconds, both or neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiration {
    /// Off.
    #[default]
    None,
    /// `e = 1`: messages disappear this many seconds after they are sent.
    AfterSend(i64),
    /// `e = 2`: messages disappear this many seconds after they are read.
    AfterRead(i64),
}

/// One contact (§2.11 Contacts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The contact's 33-byte Session ID (`05…`).
    pub id: Id33,
    /// `n`: the name they gave themselves (≤ 100 bytes).
    pub name: String,
    /// `N`: the nickname given here (≤ 100 bytes).
    pub nickname: String,
    /// `p`/`q`: their profile picture.
    pub picture: Option<ProfilePic>,
    /// `a`: approved (message request accepted, or they were messaged first).
    pub approved: bool,
    /// `A`: they approved this account.
    pub approved_me: bool,
    /// `b`: blocked.
    pub blocked: bool,
    /// `@`: notifications (contacts store mentions-only as all).
    pub notifications: Notify,
    /// `!`: muted until (Unix s), 0 not muted.
    pub mute_until: i64,
    /// `+`: priority (−1 hidden, 0 default, > 0 pinned).
    pub priority: i64,
    /// `e`/`E`: disappearing messages.
    pub expiration: Expiration,
    /// `j`: created (Unix s).
    pub created: i64,
}

impl Contact {
    /// A contact with every field at its default.
    pub fn new(id: Id33) -> Contact {
        Contact {
            id,
            name: String::new(),
            nickname: String::new(),
            picture: None,
            approved: false,
            approved_me: false,
            blocked: false,
            notifications: Notify::Default,
            mute_until: 0,
            priority: 0,
            expiration: Expiration::None,
            created: 0,
        }
    }

    fn read(id: Id33, d: &crate::Dict) -> Contact {
        let expiration = match (get_int(d, b"e"), get_int(d, b"E")) {
            (Some(1), Some(s)) if s > 0 => Expiration::AfterSend(s),
            (Some(2), Some(s)) if s > 0 => Expiration::AfterRead(s),
            _ => Expiration::None,
        };
        Contact {
            id,
            name: get_string(d, b"n"),
            nickname: get_string(d, b"N"),
            picture: get_pic(d, b"p", b"q"),
            approved: get_bool(d, b"a"),
            approved_me: get_bool(d, b"A"),
            blocked: get_bool(d, b"b"),
            notifications: Notify::from_int(get_int(d, b"@")),
            mute_until: get_int(d, b"!").unwrap_or(0),
            priority: get_int(d, b"+").unwrap_or(0),
            expiration,
            created: get_int(d, b"j").unwrap_or(0),
        }
    }

    fn write(&self, d: &mut crate::Dict) -> Result<(), ConfigError> {
        // `n` is always written, so a contact with nothing else set still exists.
        d.insert(b"n".to_vec(), Value::from(self.name.as_str()));
        put_str(d, b"N", self.nickname.as_bytes());
        put_pic(d, self.picture.as_ref())?;
        put_bool(d, b"a", self.approved);
        put_bool(d, b"A", self.approved_me);
        put_bool(d, b"b", self.blocked);
        let notify = match self.notifications {
            Notify::MentionsOnly => Notify::All,
            n => n,
        };
        put_int(d, b"@", notify.to_int());
        put_int(d, b"!", self.mute_until.max(0));
        put_int(d, b"+", self.priority);
        let (mode, secs) = match self.expiration {
            Expiration::AfterSend(s) if s > 0 => (1, s),
            Expiration::AfterRead(s) if s > 0 => (2, s),
            _ => (0, 0),
        };
        put_int(d, b"e", mode);
        put_int(d, b"E", secs);
        put_int(d, b"j", self.created.max(0));
        Ok(())
    }
}

user_config!(
    /// The contacts config.
    Contacts,
    "Contacts",
    3
);

impl Contacts {
    /// The contact with this Session ID.
    pub fn get(&self, id: &Id33) -> Option<Contact> {
        one_by_id(self.state.data(), b"c", id, Contact::read)
    }

    /// Every contact, in ID order. Entries whose key is not a 33-byte ID are skipped.
    pub fn all(&self) -> Vec<Contact> {
        by_id(self.state.data(), b"c", Contact::read)
    }

    /// Adds or updates a contact. Fields of the contact this crate does not know are kept.
    pub fn set(&mut self, contact: &Contact) -> Result<(), ConfigError> {
        check_len("contact name", contact.name.as_bytes(), MAX_NAME)?;
        check_len("contact nickname", contact.nickname.as_bytes(), MAX_NAME)?;
        self.state.edit(|d| {
            with_dict(d, b"c", |c| {
                with_dict(c, &id_key(&contact.id), |e| contact.write(e))
            })
        })
    }

    /// Removes a contact; whether it was there.
    pub fn erase(&mut self, id: &Id33) -> bool {
        self.state
            .edit(|d| with_dict(d, b"c", |c| c.remove(id_key(id).as_slice()).is_some()))
    }
}
