//! # umbra-swarm
//!
//! Which storage nodes keep an account's messages, and how nodes are grouped into swarms.
//!
//! ```text
//!   account id (33 bytes: prefix ‖ 32 key bytes)
//!        │  XOR-fold of the four big-endian u64 words   (mapping::swarm_space)
//!        ▼
//!   space: u64 ──── nearest swarm id on the u64 ring ───▶ swarm id   (SwarmRing)
//!                   (ties go to the lower/left id, wraps around)
//!
//!   active nodes + their current swarm ── calc_swarm_changes(seed) ──▶ new swarm of every node
//!                                          (formation rules of oxend, formation module)
//! ```
//!
//! The mapping ([`mapping`]) is exactly the one of Session's storage server and libsession
//! (`shared/spec/swarms.md` §2), so Umbra nodes and clients agree with Session software on who
//! stores what. The formation rules ([`formation`]) follow oxend's `calc_swarm_changes`
//! (§3): minimum swarm size 5, new swarms of 7, new nodes fill the smallest swarms, excess nodes
//! form new swarms, starving swarms are refilled or dissolved, and new swarm ids sit at the
//! midpoint of the largest gap between existing ids. They are deterministic for a given input
//! and seed ([`rng::Mt19937_64`]), so a registry and a test can predict every assignment.
//!
//! ## What this crate must never do
//!
//! This is a pure protocol crate: it never opens a socket or a file, never reads a clock and
//! never uses global randomness (every random choice comes from a seeded generator passed in).
//! It never panics on any input: parsers of account ids are bounded and return [`SwarmError`].

pub mod formation;
pub mod mapping;
pub mod rng;

pub use formation::{assign_swarms, calc_swarm_changes, new_swarm_id};
pub use mapping::{SwarmRing, account_swarm_space, account_swarm_space_hex, swarm_space};
pub use rng::{Mt19937_64, SwarmRng, mix_seed, uniform_index};

/// A swarm id: an unsigned 64-bit position on the ring.
pub type SwarmId = u64;

/// The swarm id meaning "not in any swarm" (newly registered, decommissioned or inactive).
pub const UNASSIGNED_SWARM_ID: SwarmId = u64::MAX;

/// The largest swarm id that can ever be assigned (`UINT64_MAX - 1`).
pub const MAX_SWARM_ID: SwarmId = u64::MAX - 1;

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwarmError {
    /// An account id given as bytes did not have the expected 33 bytes (prefix + 32-byte key).
    #[error("account id must be 33 bytes (prefix + 32-byte key), got {got}")]
    AccountLength {
        /// The length that was given.
        got: usize,
    },
    /// An account id given as hex did not have exactly 66 hex digits.
    #[error("account id must be 66 hex digits, got {got} characters")]
    AccountHexLength {
        /// The number of characters that were given.
        got: usize,
    },
    /// An account id given as hex contained a character that is not a hex digit.
    #[error("account id is not valid hex")]
    AccountHex,
}
