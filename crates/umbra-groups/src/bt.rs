//! Small accessors over umbra-config's bounded bencode decoder, for the group messages that
//! are plain bencode (keys, supplemental, kicked notices).

use std::collections::BTreeMap;

use umbra_config::ConfigError;
use umbra_config::bt::{self, Value};

pub(crate) use umbra_config::bt::{put_bytes, put_int};

/// A decoded top-level dict.
pub(crate) type Fields = BTreeMap<Vec<u8>, Value>;

/// Decodes `input` as exactly one canonical bencoded dict.
pub(crate) fn dict(input: &[u8]) -> Result<Fields, ConfigError> {
    match bt::decode(input)? {
        Value::Dict(d) => Ok(d),
        _ => Err(ConfigError::Bencode("not a dict")),
    }
}

pub(crate) fn bytes_of<'a>(d: &'a Fields, k: &[u8]) -> Option<&'a [u8]> {
    match d.get(k) {
        Some(Value::Bytes(b)) => Some(b),
        _ => None,
    }
}

pub(crate) fn int_of(d: &Fields, k: &[u8]) -> Option<i64> {
    match d.get(k) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    }
}

pub(crate) fn list_of<'a>(d: &'a Fields, k: &[u8]) -> Option<&'a [Value]> {
    match d.get(k) {
        Some(Value::List(l)) => Some(l),
        _ => None,
    }
}
