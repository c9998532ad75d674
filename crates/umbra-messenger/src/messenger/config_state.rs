//! The account's four user configs on this device: each one's [`ConfigState`] kept in the
//! encrypted database (as its dump, in `meta`), and what this device last pushed and pulled of
//! each (`umbra devices`).

use rusqlite_cipher::Connection;
use umbra_config::{ConfigState, Contacts, ConvoInfoVolatile, UserGroups, UserProfile};
use umbra_report::ErrorExt as _;

use super::{MessengerError, db};

/// One of the account's user configs (`identity-and-crypto.md` §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigKind {
    /// Display name and picture (namespace 2).
    UserProfile,
    /// Contacts: nicknames, approvals, blocks, timers (namespace 3).
    Contacts,
    /// Read state of every conversation (namespace 4).
    ConvoInfoVolatile,
    /// Groups and communities joined (namespace 5).
    UserGroups,
}

impl ConfigKind {
    /// Every user config, in namespace order.
    pub const ALL: [ConfigKind; 4] = [
        ConfigKind::UserProfile,
        ConfigKind::Contacts,
        ConfigKind::ConvoInfoVolatile,
        ConfigKind::UserGroups,
    ];

    /// Its swarm namespace.
    pub fn namespace(self) -> i32 {
        i32::from(match self {
            ConfigKind::UserProfile => UserProfile::NAMESPACE,
            ConfigKind::Contacts => Contacts::NAMESPACE,
            ConfigKind::ConvoInfoVolatile => ConvoInfoVolatile::NAMESPACE,
            ConfigKind::UserGroups => UserGroups::NAMESPACE,
        })
    }

    /// Its encryption domain, also its name.
    pub fn domain(self) -> &'static str {
        match self {
            ConfigKind::UserProfile => UserProfile::DOMAIN,
            ConfigKind::Contacts => Contacts::DOMAIN,
            ConfigKind::ConvoInfoVolatile => ConvoInfoVolatile::DOMAIN,
            ConfigKind::UserGroups => UserGroups::DOMAIN,
        }
    }

    fn meta_key(self, what: &str) -> String {
        format!("config.{}{what}", self.domain())
    }
}

/// A seqno this device pushed or pulled, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncMark {
    /// The config's seqno.
    pub seqno: u64,
    /// When, Unix ms.
    pub at_ms: u64,
}

/// What this device holds and last exchanged of one user config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigStatus {
    /// Which config.
    pub kind: ConfigKind,
    /// The seqno of the config here (local edits included).
    pub seqno: u64,
    /// Local edits or a merge not yet stored in the swarm.
    pub needs_push: bool,
    /// The last push this device made.
    pub pushed: Option<SyncMark>,
    /// The last time this device retrieved messages of it, with the seqno it had then.
    pub pulled: Option<SyncMark>,
}

/// The state of `kind` kept in the database: a fresh one when there is none yet, or when
/// the kept one no longer loads (the swarm's copy restores it at the next poll).
pub(super) fn load(
    conn: &Connection,
    seed: &[u8; 32],
    kind: ConfigKind,
) -> Result<ConfigState, MessengerError> {
    let what = "reading a synced config";
    let dump = db::meta_get(conn, &kind.meta_key("")).map_err(MessengerError::db(what))?;
    if let Some(d) = dump {
        match ConfigState::load(seed, kind.domain(), &d) {
            Ok(s) => return Ok(s),
            Err(e) => {
                tracing::warn!(config = kind.domain(), error = %e.report(), "a kept config does not load; starting it again from the swarm");
            }
        }
    }
    ConfigState::new(seed, kind.domain()).map_err(MessengerError::config(what))
}

/// Keeps `state` of `kind` in the database.
pub(super) fn save(
    conn: &Connection,
    kind: ConfigKind,
    state: &ConfigState,
) -> Result<(), MessengerError> {
    db::meta_set(conn, &kind.meta_key(""), &state.dump())
        .map_err(MessengerError::db("saving a synced config"))
}

/// The typed user configs, loaded from the database.
macro_rules! typed {
    ($fn:ident, $ty:ident, $kind:ident) => {
        pub(super) fn $fn(conn: &Connection, seed: &[u8; 32]) -> Result<$ty, MessengerError> {
            let mut c =
                $ty::new(seed).map_err(MessengerError::config("reading a synced config"))?;
            *c.state_mut() = load(conn, seed, ConfigKind::$kind)?;
            Ok(c)
        }
    };
}

typed!(user_profile, UserProfile, UserProfile);
typed!(contacts, Contacts, Contacts);
typed!(convo_info, ConvoInfoVolatile, ConvoInfoVolatile);
typed!(user_groups, UserGroups, UserGroups);

/// Notes a push (`"pushed"`) or pull (`"pulled"`) of `kind` at `seqno`.
pub(super) fn mark(
    conn: &Connection,
    kind: ConfigKind,
    what: &str,
    seqno: u64,
    at_ms: u64,
) -> Result<(), MessengerError> {
    db::meta_set(
        conn,
        &kind.meta_key(&format!(".{what}")),
        format!("{seqno} {at_ms}").as_bytes(),
    )
    .map_err(MessengerError::db("noting a config sync"))
}

fn read_mark(
    conn: &Connection,
    kind: ConfigKind,
    what: &str,
) -> Result<Option<SyncMark>, MessengerError> {
    let v = db::meta_get(conn, &kind.meta_key(&format!(".{what}")))
        .map_err(MessengerError::db("reading the config sync state"))?;
    Ok(v.and_then(|b| {
        let text = String::from_utf8(b).ok()?;
        let (s, t) = text.split_once(' ')?;
        Some(SyncMark {
            seqno: s.parse().ok()?,
            at_ms: t.parse().ok()?,
        })
    }))
}

/// The status of every user config on this device.
pub(super) fn status(
    conn: &Connection,
    seed: &[u8; 32],
) -> Result<Vec<ConfigStatus>, MessengerError> {
    ConfigKind::ALL
        .iter()
        .map(|&kind| {
            let state = load(conn, seed, kind)?;
            Ok(ConfigStatus {
                kind,
                seqno: state.seqno(),
                needs_push: state.needs_push(),
                pushed: read_mark(conn, kind, "pushed")?,
                pulled: read_mark(conn, kind, "pulled")?,
            })
        })
        .collect()
}
