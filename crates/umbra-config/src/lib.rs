#![doc = include_str!("../README.md")]

pub mod bt;
pub mod crypt;
pub mod data;
pub mod diff;
mod error;
pub mod field;
pub mod message;
mod state;
pub mod user;

pub use data::{Dict, Scalar, Set, Value};
pub use error::ConfigError;
pub use message::{ConfigHash, ConfigMessage, MergeOutcome, Parsed};
pub use state::{ConfigSigning, ConfigState, MAX_KEYS, MergeReport, Push, SwarmHash};
pub use user::{
    Community, Contact, Contacts, ConvoInfo, ConvoInfoVolatile, ConvoKind, Expiration, Group,
    GroupRemoved, Id33, Notify, ProfilePic, UserGroups, UserProfile,
};
