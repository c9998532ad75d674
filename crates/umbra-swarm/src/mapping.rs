//! The account → swarm mapping (`shared/spec/swarms.md` §2), bit-exact with Session.
//!
//! ```
//! use umbra_swarm::{SwarmRing, account_swarm_space_hex};
//!
//! let ring = SwarmRing::new([100, 200, 300]);
//! let space = account_swarm_space_hex(
//!     "050000000000000000000000000000000000000000000000000000000000000096",
//! )?;
//! assert_eq!(space, 150);
//! assert_eq!(ring.swarm_for_space(space), Some(100)); // exact tie: the lower id wins
//! # Ok::<(), umbra_swarm::SwarmError>(())
//! ```

use crate::{SwarmError, SwarmId, UNASSIGNED_SWARM_ID};

/// Length in bytes of an account id: one prefix byte (`05`, `03`, …) and a 32-byte key.
pub const ACCOUNT_ID_LEN: usize = 33;

/// The position of a 32-byte key on the swarm ring: the XOR of its four big-endian u64 words.
#[must_use]
pub fn swarm_space(key: &[u8; 32]) -> u64 {
    key.chunks_exact(8).fold(0u64, |acc, word| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        acc ^ u64::from_be_bytes(bytes)
    })
}

/// The ring position of a 33-byte account id; the prefix byte is ignored, so `05X` and `03X`
/// map to the same place.
///
/// # Errors
/// [`SwarmError::AccountLength`] if `account` is not exactly 33 bytes long.
pub fn account_swarm_space(account: &[u8]) -> Result<u64, SwarmError> {
    if account.len() != ACCOUNT_ID_LEN {
        return Err(SwarmError::AccountLength { got: account.len() });
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&account[1..]);
    Ok(swarm_space(&key))
}

/// The ring position of an account id given as 66 hex digits (upper or lower case).
///
/// # Errors
/// [`SwarmError::AccountHexLength`] for a wrong length, [`SwarmError::AccountHex`] for a
/// non-hex character.
pub fn account_swarm_space_hex(account_hex: &str) -> Result<u64, SwarmError> {
    if account_hex.len() != ACCOUNT_ID_LEN * 2 {
        return Err(SwarmError::AccountHexLength {
            got: account_hex.len(),
        });
    }
    let mut account = [0u8; ACCOUNT_ID_LEN];
    hex::decode_to_slice(account_hex, &mut account).map_err(|_| SwarmError::AccountHex)?;
    account_swarm_space(&account)
}

/// The set of existing swarm ids, sorted, without duplicates and without
/// [`UNASSIGNED_SWARM_ID`], ready to answer "which swarm owns this account".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwarmRing {
    ids: Vec<SwarmId>,
}

impl SwarmRing {
    /// Builds the ring from swarm ids in any order; duplicates and [`UNASSIGNED_SWARM_ID`]
    /// are dropped.
    pub fn new(ids: impl IntoIterator<Item = SwarmId>) -> Self {
        let mut ids: Vec<SwarmId> = ids
            .into_iter()
            .filter(|&id| id != UNASSIGNED_SWARM_ID)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Self { ids }
    }

    /// The swarm ids of the ring, ascending.
    #[must_use]
    pub fn ids(&self) -> &[SwarmId] {
        &self.ids
    }

    /// Whether the ring has no swarm at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of swarms on the ring.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The swarm owning ring position `space`: the nearest id, distances measured with
    /// wrap-around, an exact tie going to the left (lower) neighbour. `None` with no swarm.
    #[must_use]
    pub fn swarm_for_space(&self, space: u64) -> Option<SwarmId> {
        let first = *self.ids.first()?;
        let last = *self.ids.last()?;
        if self.ids.len() == 1 {
            return Some(first);
        }
        // Index of the first id >= space, wrapping to the first swarm when there is none.
        let right_idx = self.ids.partition_point(|&id| id < space);
        let (right, left) = match right_idx {
            0 => (first, last),
            i if i >= self.ids.len() => (first, last),
            i => (self.ids[i], self.ids[i - 1]),
        };
        let dright = right.wrapping_sub(space);
        let dleft = space.wrapping_sub(left);
        Some(if dright < dleft { right } else { left })
    }

    /// The swarm owning a 33-byte account id.
    ///
    /// # Errors
    /// As [`account_swarm_space`].
    pub fn swarm_for_account(&self, account: &[u8]) -> Result<Option<SwarmId>, SwarmError> {
        Ok(self.swarm_for_space(account_swarm_space(account)?))
    }

    /// The swarm owning an account id given in hex.
    ///
    /// # Errors
    /// As [`account_swarm_space_hex`].
    pub fn swarm_for_account_hex(&self, account_hex: &str) -> Result<Option<SwarmId>, SwarmError> {
        Ok(self.swarm_for_space(account_swarm_space_hex(account_hex)?))
    }
}

impl FromIterator<SwarmId> for SwarmRing {
    fn from_iter<T: IntoIterator<Item = SwarmId>>(iter: T) -> Self {
        Self::new(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_account_inputs_are_errors() {
        assert_eq!(
            account_swarm_space(&[5u8; 32]),
            Err(SwarmError::AccountLength { got: 32 })
        );
        assert_eq!(
            account_swarm_space_hex("05"),
            Err(SwarmError::AccountHexLength { got: 2 })
        );
        let bad = format!("05{}", "zz".repeat(32));
        assert_eq!(account_swarm_space_hex(&bad), Err(SwarmError::AccountHex));
        // Multi-byte UTF-8 of the right byte length must not panic.
        let weird = "é".repeat(33);
        assert!(account_swarm_space_hex(&weird).is_err());
    }

    #[test]
    fn empty_and_single_rings() {
        assert_eq!(SwarmRing::new([]).swarm_for_space(5), None);
        assert_eq!(
            SwarmRing::new([UNASSIGNED_SWARM_ID]).swarm_for_space(5),
            None
        );
        assert_eq!(SwarmRing::new([42]).swarm_for_space(u64::MAX), Some(42));
    }

    #[test]
    fn prefix_byte_is_ignored() {
        let mut a = [0x05u8; 33];
        let b = {
            let mut b = a;
            b[0] = 0x03;
            b
        };
        a[10] = 0x77;
        let mut b2 = b;
        b2[10] = 0x77;
        assert_eq!(account_swarm_space(&a), account_swarm_space(&b2));
    }
}
