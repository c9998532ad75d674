//! One group key: the symmetric key of group messages and group configs, with its generation
//! and the swarm timestamp of the keys message that brought it.

use std::fmt;

use zeroize::Zeroizing;

/// A group key. Ordered by (generation, timestamp, key), as libsession keeps them.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey {
    /// Generation: 0 for the first key, one more on each rekey.
    pub generation: u64,
    /// When the keys message carrying it was stored, swarm time in Unix milliseconds.
    pub timestamp_ms: i64,
    key: Zeroizing<[u8; 32]>,
}

impl GroupKey {
    /// A key of this generation and timestamp.
    pub fn new(generation: u64, timestamp_ms: i64, key: [u8; 32]) -> GroupKey {
        GroupKey {
            generation,
            timestamp_ms,
            key: Zeroizing::new(key),
        }
    }

    /// The 32 key bytes. Secret.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }
}

impl Ord for GroupKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.generation, self.timestamp_ms, &self.key[..]).cmp(&(
            other.generation,
            other.timestamp_ms,
            &other.key[..],
        ))
    }
}

impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupKey")
            .field("generation", &self.generation)
            .field("timestamp_ms", &self.timestamp_ms)
            .finish_non_exhaustive()
    }
}
