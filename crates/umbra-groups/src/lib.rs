#![doc = include_str!("../README.md")]

mod bt;
pub mod configs;
mod error;
mod identity;
mod key;
pub mod keyring;
pub mod kicked;
pub mod message;
pub mod multi;
pub mod parse;
pub mod rekey;
pub mod subaccount;

pub use configs::{GroupInfo, GroupMembers, Member, Pending, Removal};
pub use error::GroupError;
pub use identity::{GROUP_PREFIX, GroupAdmin, GroupPublic};
pub use key::GroupKey;
pub use keyring::{GroupKeys, Loaded, Role};
pub use message::{GroupMessage, decrypt_message, encrypt_message};
pub use parse::{FullKeys, KeysMessage, SupplementalKeys};
pub use subaccount::{
    Flags, MemberAuth, RevocationList, SignedRequest, Subaccount, SubaccountAuth, Token,
};

/// Group swarm namespaces (`groups-config-attachments.md` §1.1).
pub mod namespace {
    /// Group messages.
    pub const MESSAGES: i16 = 11;
    /// Keys messages (full and supplemental).
    pub const KEYS: i16 = 12;
    /// The Info config.
    pub const INFO: i16 = 13;
    /// The Members config.
    pub const MEMBERS: i16 = 14;
    /// Kicked notices, readable by revoked subaccounts.
    pub const KICKED: i16 = -11;
}
