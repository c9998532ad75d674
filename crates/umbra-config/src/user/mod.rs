//! Typed views of the four user configs (`groups-config-attachments.md` §2.11) on top of the
//! generic data dict. Setters change only the fields they know and keep every other key, so
//! fields written by newer clients survive (§2.3).
//!
//! IDs used as dict keys are the 33 binary bytes of the Session ID or group ID (prefix byte
//! included), not hex.

/// The struct of one user config and what every one has: its domain, namespace, constructor
/// and the [`ConfigState`](crate::ConfigState) underneath.
macro_rules! user_config {
    ($(#[$doc:meta])* $name:ident, $domain:literal, $ns:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            state: $crate::ConfigState,
        }

        impl $name {
            /// The encryption domain.
            pub const DOMAIN: &'static str = $domain;
            /// The swarm namespace.
            pub const NAMESPACE: i16 = $ns;

            /// An empty config, encrypted under the account's 32-byte Ed25519 seed.
            pub fn new(seed: &[u8; 32]) -> Result<$name, $crate::ConfigError> {
                Ok($name {
                    state: $crate::ConfigState::new(seed, Self::DOMAIN)?,
                })
            }

            /// The config underneath.
            pub fn state(&self) -> &$crate::ConfigState {
                &self.state
            }

            /// The config underneath, to merge, push and confirm.
            pub fn state_mut(&mut self) -> &mut $crate::ConfigState {
                &mut self.state
            }
        }
    };
}

mod contacts;
mod convo;
mod groups;
mod profile;

pub use contacts::{Contact, Contacts, Expiration};
pub use convo::{ConvoInfo, ConvoInfoVolatile, ConvoKind, canonical_url};
pub use groups::{Community, Group, GroupRemoved, UserGroups};
pub use profile::UserProfile;

use crate::data::{Dict, Value};
use crate::field::{
    MAX_NAME, check_len, get_bool, get_bytes, get_dict, get_int, get_pic, get_string, put_bool,
    put_int, put_pic, put_str, with_dict,
};

/// A 33-byte account or group ID (`05…` Session ID, `03…` group ID), as dict keys hold them.
pub type Id33 = [u8; 33];

/// A profile picture: where it is and the key it is encrypted with (both or neither, §2.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePic {
    /// The URL of the encrypted picture (≤ 223 bytes).
    pub url: String,
    /// Its 32-byte key.
    pub key: [u8; 32],
}

/// Notification setting of a conversation (`@`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Notify {
    /// Absent: the client's default.
    #[default]
    Default,
    /// `1`: every message.
    All,
    /// `2`: none.
    Disabled,
    /// `3`: mentions only (groups and communities; contacts store it as `1`).
    MentionsOnly,
}

impl Notify {
    fn from_int(n: Option<i64>) -> Notify {
        match n {
            Some(1) => Notify::All,
            Some(2) => Notify::Disabled,
            Some(3) => Notify::MentionsOnly,
            _ => Notify::Default,
        }
    }

    fn to_int(self) -> i64 {
        match self {
            Notify::Default => 0,
            Notify::All => 1,
            Notify::Disabled => 2,
            Notify::MentionsOnly => 3,
        }
    }
}

/// Every entry of the ID-keyed dict at `k`, in ID order; keys that are not 33 bytes, or
/// values that are not dicts, are skipped.
fn by_id<T>(d: &Dict, k: &[u8], read: impl Fn(Id33, &Dict) -> T) -> Vec<T> {
    let Some(all) = get_dict(d, k) else {
        return Vec::new();
    };
    all.iter()
        .filter_map(|(k, v)| match (parse_id(k), v) {
            (Some(id), Value::Dict(e)) => Some(read(id, e)),
            _ => None,
        })
        .collect()
}

/// The entry for `id` in the ID-keyed dict at `k`.
fn one_by_id<T>(d: &Dict, k: &[u8], id: &Id33, read: impl Fn(Id33, &Dict) -> T) -> Option<T> {
    get_dict(get_dict(d, k)?, &id_key(id)).map(|e| read(*id, e))
}

fn id_key(id: &Id33) -> Vec<u8> {
    id.to_vec()
}

fn parse_id(k: &[u8]) -> Option<Id33> {
    k.try_into().ok()
}
