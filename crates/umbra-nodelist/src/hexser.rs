//! Serde helpers: fixed-size byte arrays as lowercase hex strings (bounded: the string length
//! is checked before decoding).

use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

/// Serializes `[u8; N]` as lowercase hex.
pub(crate) fn serialize<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// Deserializes `[u8; N]` from exactly `2N` hex digits.
pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
    d: D,
) -> Result<[u8; N], D::Error> {
    let s: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
    decode_fixed(&s).map_err(D::Error::custom)
}

/// Decodes exactly `2N` hex digits into `[u8; N]`.
pub(crate) fn decode_fixed<const N: usize>(s: &str) -> Result<[u8; N], String> {
    if s.len() != 2 * N {
        return Err(format!("expected {} hex digits, got {}", 2 * N, s.len()));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| "invalid hex".to_owned())?;
    Ok(out)
}
