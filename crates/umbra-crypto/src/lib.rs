//! # umbra-crypto
//!
//! The cryptographic core of Umbra. Everything that turns keys and bytes into other keys and
//! bytes lives here, so that every other crate speaks of identities, ciphertexts and hashes
//! without touching a curve or a cipher directly.
//!
//! ```text
//!   seed (16 or 32 bytes) ──► Identity ──► Ed25519 key pair ──► X25519 key pair ──► Session ID 05…
//!                                │
//!            session_v1::encrypt / decrypt      (one-to-one messages, sealed boxes)
//!            hop::encrypt / decrypt             (onion-request layers: xchacha20, aes-gcm)
//!            hash::message_hash, blake2b_*      (storage hashes, key derivations)
//!            mnemonic                           (recovery phrase)
//!            redact::Redacted                   (metadata kept out of logs)
//! ```
//!
//! Wire formats follow Session's public formats byte for byte; see `shared/spec/identity-and-crypto.md`.
//!
//! ## What this crate must never do
//! - No I/O, no clock, no async. Randomness comes in through the [`Random`] trait (the caller
//!   chooses [`OsRandom`] in production and a seeded generator in tests).
//! - Never expose a secret in `Debug`/`Display` output, and never keep one past its owner:
//!   secret material is zeroized on drop.
//! - No `unsafe`, no panics on any input.
//!
//! Old-generation RustCrypto crates (`crypto_box`, for libsodium-compatible sealed boxes) are
//! used only inside this crate; its API passes keys as plain byte arrays.

mod error;
pub mod hash;
pub mod hop;
pub mod keys;
pub mod mnemonic;
mod random;
pub mod redact;
pub mod session_v1;
pub mod sign;

pub use error::CryptoError;
pub use keys::{Identity, SessionId};
pub use random::{OsRandom, Random, SeededRandom};
pub use redact::Redacted;
