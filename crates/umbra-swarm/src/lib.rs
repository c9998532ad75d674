#![doc = include_str!("../README.md")]

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
