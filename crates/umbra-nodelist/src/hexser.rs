//! Serde helpers: fixed-size byte values (keys, signatures, MACs) as lowercase hex strings
//! (bounded: the string length is checked before decoding).

use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
use umbra_crypto::{Ed25519PublicKey, Signature, X25519PublicKey};

/// A value that is `N` bytes on the wire and lowercase hex in JSON.
pub(crate) trait HexBytes: Sized {
    /// The byte length.
    const LEN: usize;
    /// The bytes.
    fn bytes(&self) -> &[u8];
    /// The value of exactly [`Self::LEN`] bytes.
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

impl<const N: usize> HexBytes for [u8; N] {
    const LEN: usize = N;
    fn bytes(&self) -> &[u8] {
        self
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok()
    }
}

macro_rules! hex_bytes {
    ($t:ty, $n:literal) => {
        impl HexBytes for $t {
            const LEN: usize = $n;
            fn bytes(&self) -> &[u8] {
                self.as_bytes()
            }
            fn from_bytes(bytes: &[u8]) -> Option<Self> {
                Self::from_slice(bytes).ok()
            }
        }
    };
}

hex_bytes!(Ed25519PublicKey, 32);
hex_bytes!(X25519PublicKey, 32);
hex_bytes!(Signature, 64);

/// Serializes the bytes as lowercase hex.
pub(crate) fn serialize<S: Serializer, T: HexBytes>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(value.bytes()))
}

/// Deserializes from exactly `2 * LEN` hex digits.
pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: HexBytes>(d: D) -> Result<T, D::Error> {
    let s: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
    decode_fixed(&s).map_err(D::Error::custom)
}

/// Decodes exactly `2 * LEN` hex digits.
pub(crate) fn decode_fixed<T: HexBytes>(s: &str) -> Result<T, String> {
    if s.len() != 2 * T::LEN {
        return Err(format!(
            "expected {} hex digits, got {}",
            2 * T::LEN,
            s.len()
        ));
    }
    let bytes = hex::decode(s).map_err(|_| "invalid hex".to_owned())?;
    T::from_bytes(&bytes).ok_or_else(|| "invalid hex".to_owned())
}
