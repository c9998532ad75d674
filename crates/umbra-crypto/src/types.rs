//! Types that say what a value is: Ed25519 and X25519 public keys, signatures, account ids and
//! storage message hashes.
//!
//! They cross crate boundaries in place of bare `[u8; 32]` / `[u8; 64]` / `[u8; 33]` /
//! `String`, so that a function that verifies a signature cannot be handed an X25519 key, and a
//! node's onion key cannot be mistaken for its identity. Each is parsed once at the edge (RPC
//! parameters, node list JSON, command-line arguments) and passed inward as the type.
//!
//! Key types compare in constant time (`subtle`), like Arti's `tor-llcrypto` keys: a public key
//! is not secret, but a comparison that leaks where two keys differ is one less thing to reason
//! about. Their ordering (for sorted lists and maps) is the byte order and is not constant time.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use subtle::ConstantTimeEq as _;

use crate::CryptoError;

/// Decodes exactly `2 * N` hex digits into `N` bytes; the length is checked before decoding.
fn decode_hex<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], CryptoError> {
    if s.len() != 2 * N {
        return Err(CryptoError::BadLength {
            what,
            expected: N,
            got: s.len() / 2,
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| CryptoError::BadHex { what })?;
    Ok(out)
}

/// Copies a slice of exactly `N` bytes.
fn fixed<const N: usize>(what: &'static str, bytes: &[u8]) -> Result<[u8; N], CryptoError> {
    bytes.try_into().map_err(|_| CryptoError::BadLength {
        what,
        expected: N,
        got: bytes.len(),
    })
}

/// The hex form shortened to its first three bytes, for `Debug` of metadata (`d2ad01…`).
fn short_hex(bytes: &[u8]) -> String {
    let head = bytes.get(..3).unwrap_or(bytes);
    format!("{}…", hex::encode(head))
}

macro_rules! public_key {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name([u8; 32]);

        impl $name {
            /// The key of these 32 bytes (not checked: a bad key fails where it is used).
            #[must_use]
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The key of a slice that must be 32 bytes long.
            ///
            /// # Errors
            /// [`CryptoError::BadLength`] for any other length.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
                fixed($what, bytes).map(Self)
            }

            /// The 32 bytes.
            #[must_use]
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// A copy of the 32 bytes.
            #[must_use]
            pub const fn to_bytes(self) -> [u8; 32] {
                self.0
            }

            /// The 64-character lowercase hex form.
            #[must_use]
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                bool::from(self.0.ct_eq(&other.0))
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.0.hash(state);
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> Ordering {
                self.0.cmp(&other.0)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = CryptoError;

            /// Exactly 64 hex digits (either case).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                decode_hex($what, s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        /// Only the first three bytes: a node or account key in a log line is metadata.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), short_hex(&self.0))
            }
        }
    };
}

public_key!(
    /// An Ed25519 public key: an account's or a node's identity, the key signatures are
    /// checked against ([`crate::sign::verify`]).
    Ed25519PublicKey,
    "Ed25519 public key"
);

public_key!(
    /// An X25519 public key: the Diffie-Hellman half of an account (its Session ID without the
    /// prefix) or a node's onion-layer key. It cannot verify a signature.
    X25519PublicKey,
    "X25519 public key"
);

/// An Ed25519 signature (`R ‖ S`, 64 bytes). Not secret; compared as plain bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

impl Signature {
    /// The signature of these 64 bytes (checked only by verification).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The signature of a slice that must be 64 bytes long.
    ///
    /// # Errors
    /// [`CryptoError::BadLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        fixed("Ed25519 signature", bytes).map(Self)
    }

    /// The 64 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// A copy of the 64 bytes.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 64] {
        self.0
    }

    /// The 128-character lowercase hex form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for Signature {
    type Err = CryptoError;

    /// Exactly 128 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_hex("Ed25519 signature", s).map(Self)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", short_hex(&self.0))
    }
}

/// The account that owns messages on a storage node: the 33-byte public key **including** its
/// network prefix byte.
///
/// Not a [`crate::SessionId`]: storage accounts also have other prefixes (`03…` closed groups,
/// `15…` blinded ids, `00…` legacy keys, `storage-rpc.md` §2), and `03X` and `05X` are different
/// accounts. Every Session ID is an account id ([`From<SessionId>`](crate::SessionId)).
///
/// `Debug` prints only the prefix and two key bytes: an account id is metadata.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId([u8; 33]);

impl AccountId {
    /// The account id of these 33 bytes, prefix first (any prefix).
    #[must_use]
    pub const fn new(bytes: [u8; 33]) -> Self {
        Self(bytes)
    }

    /// The 33 bytes, prefix first.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 33] {
        &self.0
    }

    /// The network prefix byte (`0x05`, `0x03`, …).
    #[must_use]
    pub const fn prefix(&self) -> u8 {
        self.0[0]
    }

    /// The 32 key bytes after the prefix.
    #[must_use]
    pub fn key_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0[1..]);
        out
    }

    /// The 66-character lowercase hex form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl TryFrom<&[u8]> for AccountId {
    type Error = CryptoError;

    /// Exactly 33 bytes.
    fn try_from(value: &[u8]) -> Result<Self, Self::Error> {
        fixed("account id", value).map(Self)
    }
}

impl From<crate::SessionId> for AccountId {
    fn from(id: crate::SessionId) -> Self {
        Self(*id.as_bytes())
    }
}

impl AsRef<[u8]> for AccountId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for AccountId {
    type Err = CryptoError;

    /// Exactly 66 hex digits (either case), any prefix.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_hex("account id", s).map(Self)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", short_hex(&self.0))
    }
}

/// Length of a storage message hash: 43 characters of unpadded base64 (BLAKE2b-256).
pub const MESSAGE_HASH_LEN: usize = 43;

/// A storage message hash (`identity-and-crypto.md` §6, `storage-rpc.md` §5.1): the unpadded
/// standard base64 of a 32-byte BLAKE2b, 43 ASCII characters, as it travels in JSON.
///
/// It keeps the characters rather than the 32 digest bytes: hashes given by clients are only
/// checked for their alphabet and length (`storage-rpc.md` §3), and a non-canonical last
/// character must come back exactly as it was sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageHash([u8; MESSAGE_HASH_LEN]);

impl MessageHash {
    /// The hash whose BLAKE2b digest is `digest`.
    #[must_use]
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        use base64::Engine as _;
        let mut out = [0u8; MESSAGE_HASH_LEN];
        // 32 bytes are exactly 43 characters unpadded; the slice cannot be too short.
        let _ = base64::engine::general_purpose::STANDARD_NO_PAD.encode_slice(digest, &mut out);
        Self(out)
    }

    /// The 43 characters.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only base64 characters (ASCII) are ever stored, so this is always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Whether `s` has the shape of a message hash: 43 characters of the standard base64
    /// alphabet, no padding.
    #[must_use]
    pub fn is_valid(s: &str) -> bool {
        s.len() == MESSAGE_HASH_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    }
}

impl FromStr for MessageHash {
    type Err = CryptoError;

    /// 43 characters of the standard base64 alphabet.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !Self::is_valid(s) {
            return Err(CryptoError::BadMessageHash { len: s.len() });
        }
        let mut out = [0u8; MESSAGE_HASH_LEN];
        out.copy_from_slice(s.as_bytes());
        Ok(Self(out))
    }
}

impl AsRef<str> for MessageHash {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for MessageHash {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MessageHash {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for MessageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for MessageHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for MessageHash {
    /// The 43-character text form; anything else is refused while parsing, so a message hash
    /// read from the network is checked once, where it arrives.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = MessageHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message hash (43 base64 characters)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MessageHash, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

impl fmt::Debug for MessageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageHash({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_by_value() {
        let a = Ed25519PublicKey::from_bytes([1; 32]);
        assert_eq!(a, Ed25519PublicKey::from_bytes([1; 32]));
        assert_ne!(a, Ed25519PublicKey::from_bytes([2; 32]));
        let mut last = [1; 32];
        last[31] = 2;
        assert_ne!(a, Ed25519PublicKey::from_bytes(last));
        assert!(a < Ed25519PublicKey::from_bytes(last));
        assert_eq!(
            X25519PublicKey::from_bytes([7; 32]),
            X25519PublicKey::from_bytes([7; 32])
        );
        assert_ne!(
            X25519PublicKey::from_bytes([7; 32]),
            X25519PublicKey::from_bytes([8; 32])
        );
    }

    #[test]
    fn key_hex_round_trip() {
        let k = Ed25519PublicKey::from_bytes(std::array::from_fn(|i| i as u8));
        let s = k.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<Ed25519PublicKey>(), Ok(k));
        assert_eq!(s.to_uppercase().parse::<Ed25519PublicKey>(), Ok(k));
        let x = X25519PublicKey::from_bytes([0xab; 32]);
        assert_eq!(x.to_hex().parse::<X25519PublicKey>(), Ok(x));
        let sig = Signature::from_bytes([0xcd; 64]);
        assert_eq!(sig.to_string().parse::<Signature>(), Ok(sig));
        let acct = AccountId::new([3; 33]);
        assert_eq!(acct.to_string().parse::<AccountId>(), Ok(acct));
    }

    #[test]
    fn wrong_length_and_bad_hex_are_refused() {
        assert!(matches!(
            "ab".parse::<Ed25519PublicKey>(),
            Err(CryptoError::BadLength { expected: 32, .. })
        ));
        assert!(matches!(
            "zz".repeat(32).parse::<X25519PublicKey>(),
            Err(CryptoError::BadHex { .. })
        ));
        assert!(matches!(
            "00".repeat(63).parse::<Signature>(),
            Err(CryptoError::BadLength { expected: 64, .. })
        ));
        assert!(matches!(
            "05".repeat(32).parse::<AccountId>(),
            Err(CryptoError::BadLength { expected: 33, .. })
        ));
        assert!(matches!(
            Ed25519PublicKey::from_slice(&[0; 31]),
            Err(CryptoError::BadLength { got: 31, .. })
        ));
        assert!(Signature::from_slice(&[0; 65]).is_err());
        assert!(AccountId::try_from(&[0u8; 32][..]).is_err());
        assert!(AccountId::try_from(&[0u8; 33][..]).is_ok());
    }

    #[test]
    fn debug_does_not_print_the_whole_key() {
        let k = Ed25519PublicKey::from_bytes([0x5a; 32]);
        let d = format!("{k:?}");
        assert_eq!(d, "Ed25519PublicKey(5a5a5a…)");
        assert!(!d.contains(&k.to_hex()));
        let x = format!("{:?}", X25519PublicKey::from_bytes([0x5a; 32]));
        assert_eq!(x, "X25519PublicKey(5a5a5a…)");
        let a = AccountId::new([5; 33]);
        assert!(!format!("{a:?}").contains(&a.to_hex()));
        assert!(!format!("{:?}", Signature::from_bytes([1; 64])).contains(&"01".repeat(64)));
    }

    #[test]
    fn session_id_is_an_account_id() {
        let sid = crate::SessionId::from_x25519(X25519PublicKey::from_bytes([9; 32]));
        let acct = AccountId::from(sid);
        assert_eq!(acct.prefix(), 0x05);
        assert_eq!(acct.as_bytes(), sid.as_bytes());
        assert_eq!(acct.key_bytes(), [9; 32]);
    }

    #[test]
    fn message_hash_text_form() {
        let h = MessageHash::from_digest(&[0; 32]);
        assert_eq!(h.as_str(), "A".repeat(43));
        assert_eq!(h.as_str().parse::<MessageHash>(), Ok(h));
        // The alphabet and length are checked, the last character's unused bits are not.
        let odd = format!("{}B", "A".repeat(42));
        assert_eq!(odd.parse::<MessageHash>().map(|h| h.to_string()), Ok(odd));
        assert!("A".repeat(42).parse::<MessageHash>().is_err());
        assert!("A".repeat(44).parse::<MessageHash>().is_err());
        assert!(
            format!("{}=", "A".repeat(42))
                .parse::<MessageHash>()
                .is_err()
        );
        assert!(
            format!("{}-", "A".repeat(42))
                .parse::<MessageHash>()
                .is_err()
        );
        assert_eq!(h, *"A".repeat(43).as_str());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn message_hash_travels_in_json_as_its_text_and_is_checked_on_arrival() {
        let h = MessageHash::from_digest(&[7; 32]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{h}\""));
        assert_eq!(serde_json::from_str::<MessageHash>(&json).unwrap(), h);
        let short = format!("\"{}\"", "A".repeat(42));
        let err = serde_json::from_str::<MessageHash>(&short).unwrap_err();
        assert!(err.to_string().contains("42"), "{err}");
        assert!(serde_json::from_str::<MessageHash>("7").is_err());
    }
}
