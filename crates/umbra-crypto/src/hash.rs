//! BLAKE2b in the parameterisations Session uses, and the storage message hash.
//!
//! BLAKE2b's output length is a parameter of the hash, not a truncation: `blake2b_24(x)` is not
//! a prefix of `blake2b_32(x)`. Keyed hashing is BLAKE2b's keyed mode (libsodium
//! `crypto_generichash` with a key), not `H(key || data)`. Multi-part input equals the
//! concatenation of its parts.

use blake2::digest::consts::{U24, U32, U56, U64};
use blake2::digest::{KeyInit, Mac, Update};
use blake2::{Blake2b, Blake2bMac, Digest};

use crate::{AccountId, MessageHash};

macro_rules! blake2b_fns {
    ($plain:ident, $keyed:ident, $n:literal, $size:ty) => {
        #[doc = concat!("Unkeyed BLAKE2b with a ", stringify!($n), "-byte output over the concatenation of `parts`.")]
        pub fn $plain(parts: &[&[u8]]) -> [u8; $n] {
            let mut h = Blake2b::<$size>::new();
            for p in parts {
                Digest::update(&mut h, p);
            }
            h.finalize().into()
        }

        #[doc = concat!("Keyed BLAKE2b with a ", stringify!($n), "-byte output. `key` must be 1 to 64 bytes;")]
        /// an empty key gives the unkeyed hash, as libsodium does, and a longer key is first
        /// hashed down (never the case for Session's fixed keys).
        pub fn $keyed(key: &[u8], parts: &[&[u8]]) -> [u8; $n] {
            if key.is_empty() {
                return $plain(parts);
            }
            let long;
            let key = if key.len() > 64 {
                long = blake2b_64(&[key]);
                &long[..]
            } else {
                key
            };
            match Blake2bMac::<$size>::new_from_slice(key) {
                Ok(mut mac) => {
                    for p in parts {
                        Update::update(&mut mac, p);
                    }
                    mac.finalize().into_bytes().into()
                }
                // Unreachable: the key length was checked above. Fall back to a domain-separated
                // unkeyed hash rather than panicking.
                Err(_) => $plain(&[&[0xff], key, &parts.concat()]),
            }
        }
    };
}

blake2b_fns!(blake2b_24, blake2b_24_keyed, 24, U24);
blake2b_fns!(blake2b_32, blake2b_32_keyed, 32, U32);
// Groups v2 derive a new group key and the keys-message nonce from one 56-byte output.
blake2b_fns!(blake2b_56, blake2b_56_keyed, 56, U56);
blake2b_fns!(blake2b_64, blake2b_64_keyed, 64, U64);

/// The storage message hash: `base64_unpadded(BLAKE2b-32(prefix || pubkey32 || ns_str || data))`.
///
/// `owner` is the 33-byte account id including its network prefix (`05`, `03`, …); `ns_str` is
/// empty for namespace 0 and the decimal namespace otherwise. The result is 43 characters of the
/// standard base64 alphabet without padding (its `Display` and [`MessageHash::as_str`]).
pub fn message_hash(owner: &AccountId, namespace: i32, data: &[u8]) -> MessageHash {
    let ns = if namespace == 0 {
        String::new()
    } else {
        namespace.to_string()
    };
    let digest = blake2b_32(&[owner.as_bytes(), ns.as_bytes(), data]);
    MessageHash::from_digest(&digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_length_is_a_parameter_not_a_truncation() {
        let a = blake2b_24(&[b"x"]);
        let b = blake2b_32(&[b"x"]);
        assert_ne!(&a[..], &b[..24]);
    }

    #[test]
    fn parts_equal_concatenation() {
        assert_eq!(blake2b_32(&[b"ab", b"cd"]), blake2b_32(&[b"abcd"]));
        assert_eq!(
            blake2b_32_keyed(b"k", &[b"ab", b"cd"]),
            blake2b_32_keyed(b"k", &[b"abcd"])
        );
    }
}
