//! Between the synced user configs and the messenger's own tables: a local change (display
//! name, nickname, approval, block, timer, reading a conversation) is written into its config
//! in the same transaction, to be pushed at the next poll; a merged config is applied back to
//! the contacts, the read state and the profile, so a restored device shows what the others
//! decided.
//!
//! Never: un-approve a contact from a config (approvals only turn on, as on every device), or
//! touch messages other than their read state (unsent and disappeared messages stay gone:
//! configs carry no messages).

use std::collections::HashMap;

use rusqlite_cipher::Connection;
use umbra_config::{Contact as SyncContact, ConvoInfo, ConvoKind, Expiration, ProfilePic};
use umbra_crypto::SessionId;

use super::config_state::{self, ConfigKind, ConfigStatus};
use super::db::{self, SyncedContact};
use super::{ChatPriority, Disappearing, Messenger, MessengerError};

/// Longest name a config holds, bytes (§2.11).
pub const MAX_SYNCED_NAME: usize = 100;

/// A profile picture: where the encrypted picture was uploaded and the key to decrypt it
/// (what contacts and this account's other devices download).
pub type ProfilePicture = ProfilePic;

/// Refuses a display name or nickname longer than a config holds.
pub(super) fn check_name(what: &'static str, name: &str) -> Result<(), MessengerError> {
    if name.len() > MAX_SYNCED_NAME {
        return Err(MessengerError::Config {
            what,
            source: umbra_config::ConfigError::FieldTooLong {
                field: "name",
                len: name.len(),
                max: MAX_SYNCED_NAME,
            },
        });
    }
    Ok(())
}

/// `name` cut to at most [`MAX_SYNCED_NAME`] bytes on a character boundary (a contact's own
/// display name arrives from the network and may be longer).
fn fit(name: &str) -> String {
    let mut end = name.len().min(MAX_SYNCED_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

fn expiration(d: Disappearing) -> Expiration {
    match d {
        Disappearing::Off => Expiration::None,
        Disappearing::AfterSend { seconds } => Expiration::AfterSend(i64::from(seconds)),
        Disappearing::AfterRead { seconds } => Expiration::AfterRead(i64::from(seconds)),
    }
}

fn disappearing(e: Expiration) -> Disappearing {
    let secs = |s: i64| u32::try_from(s).unwrap_or(u32::MAX);
    match e {
        Expiration::None => Disappearing::Off,
        Expiration::AfterSend(s) => Disappearing::AfterSend { seconds: secs(s) },
        Expiration::AfterRead(s) => Disappearing::AfterRead { seconds: secs(s) },
    }
}

impl Messenger {
    fn config_key(&self) -> &[u8; 32] {
        self.identity.seed()
    }

    /// Writes contact `id` as the local tables now hold it into the contacts config.
    pub(super) fn sync_note_contact(
        &self,
        conn: &Connection,
        id: &SessionId,
    ) -> Result<(), MessengerError> {
        self.sync_edit_contact(conn, id, "syncing a contact", |_| {})
    }

    /// Writes where the conversation with `id` sits in the chat list into the contacts config,
    /// with the contact as the local tables hold it.
    pub(super) fn sync_note_priority(
        &self,
        conn: &Connection,
        id: &SessionId,
        priority: ChatPriority,
    ) -> Result<(), MessengerError> {
        self.sync_edit_contact(conn, id, "syncing a chat's priority", |c| {
            c.priority = priority.to_config();
        })
    }

    /// Where each contact's conversation sits in the chat list, as the contacts config says.
    pub(super) fn chat_priorities(
        &self,
        conn: &Connection,
    ) -> Result<HashMap<SessionId, ChatPriority>, MessengerError> {
        Ok(config_state::contacts(conn, self.config_key())?
            .all()
            .into_iter()
            .filter_map(|c| {
                let id = SessionId::from_bytes(c.id).ok()?;
                Some((id, ChatPriority::from_config(c.priority)))
            })
            .collect())
    }

    /// Brings a hidden conversation back into the chat list when a message sent at `sent_ms`
    /// arrives in it after what was read when it was hidden (the synced read state: an old
    /// message fetched by a restored device leaves it hidden).
    pub(super) fn sync_unhide(
        &self,
        conn: &Connection,
        id: &SessionId,
        sent_ms: u64,
    ) -> Result<(), MessengerError> {
        let hidden = config_state::contacts(conn, self.config_key())?
            .get(id.as_bytes())
            .is_some_and(|c| c.priority < 0);
        if !hidden {
            return Ok(());
        }
        let read_until = config_state::convo_info(conn, self.config_key())?
            .get(ConvoKind::OneToOne, id.as_bytes())
            .map_or(0, |info| info.last_read_ms);
        if i64::try_from(sent_ms).unwrap_or(i64::MAX) > read_until {
            self.sync_note_priority(conn, id, ChatPriority::Normal)?;
        }
        Ok(())
    }

    /// Notes the picture contact `id` sent with its newest profile (or that it has none).
    pub(super) fn sync_note_contact_picture(
        &self,
        conn: &Connection,
        id: &SessionId,
        picture: Option<ProfilePicture>,
    ) -> Result<(), MessengerError> {
        self.sync_edit_contact(conn, id, "saving a contact's picture", |c| {
            c.picture = picture;
        })
    }

    /// Writes contact `id` as the local tables hold it into the contacts config, then `edit`s
    /// the fields the tables do not hold (priority, picture): one decode and one save.
    fn sync_edit_contact(
        &self,
        conn: &Connection,
        id: &SessionId,
        what: &'static str,
        edit: impl FnOnce(&mut SyncContact),
    ) -> Result<(), MessengerError> {
        let Some(local) = db::contact(conn, id).map_err(MessengerError::db(what))? else {
            return Ok(()); // not a contact in the local tables: nothing to sync
        };
        let mut configs = config_state::contacts(conn, self.config_key())?;
        let mut c = configs.get(id.as_bytes()).unwrap_or_else(|| {
            let mut c = SyncContact::new(*id.as_bytes());
            c.created = i64::try_from(self.now() / 1000).unwrap_or(0);
            c
        });
        c.nickname = local.nickname.as_deref().map(fit).unwrap_or_default();
        if let Some(n) = &local.display_name {
            c.name = fit(n);
        }
        c.approved |= local.approved;
        c.approved_me |= local.approved_me;
        c.blocked = local.blocked;
        c.expiration = expiration(local.disappearing);
        edit(&mut c);
        configs.set(&c).map_err(MessengerError::config(what))?;
        config_state::save(conn, ConfigKind::Contacts, configs.state())
    }

    /// The picture contact `id` last sent with its profile, if any.
    pub fn contact_picture(
        &self,
        id: &SessionId,
    ) -> Result<Option<ProfilePicture>, MessengerError> {
        Ok(config_state::contacts(&self.db(), self.config_key())?
            .get(id.as_bytes())
            .and_then(|c| c.picture))
    }

    /// Removes contact `id` from the contacts config (a declined request).
    pub(super) fn sync_forget_contact(
        &self,
        conn: &Connection,
        id: &SessionId,
    ) -> Result<(), MessengerError> {
        let mut configs = config_state::contacts(conn, self.config_key())?;
        if configs.erase(id.as_bytes()) {
            config_state::save(conn, ConfigKind::Contacts, configs.state())?;
        }
        Ok(())
    }

    /// Notes that the conversation with `with` was read up to the message sent at
    /// `last_read_ms` (a message's own time, not this device's clock, so a device whose
    /// clock is ahead cannot mark later messages read on the others).
    pub(super) fn sync_note_read(
        &self,
        conn: &Connection,
        with: &SessionId,
        last_read_ms: u64,
    ) -> Result<(), MessengerError> {
        let mut convos = config_state::convo_info(conn, self.config_key())?;
        let info = ConvoInfo {
            last_read_ms: i64::try_from(last_read_ms).unwrap_or(i64::MAX),
            unread: false,
        };
        convos.set(ConvoKind::OneToOne, with.as_bytes(), info);
        convos.prune(i64::try_from(self.now()).unwrap_or(i64::MAX));
        config_state::save(conn, ConfigKind::ConvoInfoVolatile, convos.state())
    }

    /// Writes our display name into the user profile config.
    pub(super) fn sync_note_name(
        &self,
        conn: &Connection,
        name: &str,
    ) -> Result<(), MessengerError> {
        let mut profile = config_state::user_profile(conn, self.config_key())?;
        profile
            .set_name(name)
            .map_err(MessengerError::config("syncing the display name"))?;
        config_state::save(conn, ConfigKind::UserProfile, profile.state())
    }

    /// Applies the merged configs to the profile, the contacts and the read state.
    pub(super) fn apply_configs(&self, conn: &Connection) -> Result<(), MessengerError> {
        let what = "applying synced state";
        let profile = config_state::user_profile(conn, self.config_key())?;
        if let Some(name) = profile.name() {
            let here = db::meta_get(conn, "display_name").map_err(MessengerError::db(what))?;
            if here.as_deref() != Some(name.as_bytes()) {
                let now_s = self.now() / 1000;
                db::meta_set(conn, "display_name", name.as_bytes())
                    .and_then(|()| {
                        db::meta_set(conn, "profile_updated_s", now_s.to_string().as_bytes())
                    })
                    .map_err(MessengerError::db(what))?;
            }
        }
        for c in config_state::contacts(conn, self.config_key())?.all() {
            let Ok(id) = SessionId::from_bytes(c.id) else {
                continue; // not a Session ID (a blinded contact of a newer client)
            };
            if id == self.me {
                continue;
            }
            let synced = SyncedContact {
                nickname: Some(c.nickname.as_str()).filter(|n| !n.is_empty()),
                display_name: Some(c.name.as_str()).filter(|n| !n.is_empty()),
                approved: c.approved,
                approved_me: c.approved_me,
                blocked: c.blocked,
                disappearing: disappearing(c.expiration),
            };
            db::apply_synced_contact(conn, &id, &synced).map_err(MessengerError::db(what))?;
        }
        self.apply_groups_config(conn)?;
        self.apply_read_state(conn)
    }

    /// Marks read what another device read. Run after every ingest too: messages retrieved
    /// after the config (a restore) must not show as unread.
    pub(super) fn apply_read_state(&self, conn: &Connection) -> Result<(), MessengerError> {
        let what = "applying the synced read state";
        let now = self.now();
        for (id, info) in
            config_state::convo_info(conn, self.config_key())?.all(ConvoKind::OneToOne)
        {
            let (Ok(with), Ok(last)) =
                (SessionId::from_bytes(id), u64::try_from(info.last_read_ms))
            else {
                continue;
            };
            db::mark_read_until(conn, &with, last, now).map_err(MessengerError::db(what))?;
        }
        Ok(())
    }

    /// Our profile picture as the synced profile holds it.
    pub fn profile_picture(&self) -> Result<Option<ProfilePicture>, MessengerError> {
        Ok(config_state::user_profile(&self.db(), self.config_key())?.picture())
    }

    /// Sets (or with `None` removes) our profile picture: where it was uploaded and its key.
    /// The upload is the attachment server's job; this only records the result, for our
    /// other devices.
    pub fn set_profile_picture(
        &self,
        picture: Option<&ProfilePicture>,
    ) -> Result<(), MessengerError> {
        let what = "setting the profile picture";
        let now_s = i64::try_from(self.now() / 1000).unwrap_or(i64::MAX);
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        let mut profile = config_state::user_profile(&tx, self.config_key())?;
        profile
            .set_picture(picture, now_s)
            .map_err(MessengerError::config(what))?;
        config_state::save(&tx, ConfigKind::UserProfile, profile.state())?;
        // Contacts take a profile that comes with our messages only when it is newer.
        db::meta_set(&tx, "profile_updated_s", now_s.to_string().as_bytes())
            .map_err(MessengerError::db(what))?;
        tx.commit().map_err(MessengerError::db(what))
    }

    /// What this device holds of each user config and last pushed and pulled.
    pub fn config_status(&self) -> Result<Vec<ConfigStatus>, MessengerError> {
        config_state::status(&self.db(), self.config_key())
    }
}
