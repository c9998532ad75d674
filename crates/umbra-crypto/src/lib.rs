#![doc = include_str!("../README.md")]

mod error;
pub mod hash;
pub mod hop;
pub mod keys;
pub mod mnemonic;
mod random;
pub mod session_v1;
pub mod sign;
mod types;

pub use error::CryptoError;
pub use keys::{Identity, SessionId};
#[cfg(any(test, doc, feature = "test-support"))]
pub use random::SeededRandom;
pub use random::{OsRandom, Random};
pub use types::{
    AccountId, Ed25519PublicKey, MESSAGE_HASH_LEN, MessageHash, Signature, X25519PublicKey,
};
/// Log redaction lives in `umbra-redact`; re-exported because this crate's `Debug` impls use it.
pub use umbra_redact::Redacted;
