//! The data of a config message (`&`, `groups-config-attachments.md` §2.3): scalars, sets of
//! scalars and nested dicts.

use std::collections::{BTreeMap, BTreeSet};

use crate::ConfigError;
use crate::bt;

/// An integer or a byte string. The derived order is the set order of §2.3: every integer
/// (numerically) before every string (bytewise).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scalar {
    /// A signed 64-bit integer (booleans are `1` or absent).
    Int(i64),
    /// A byte string.
    Bytes(Vec<u8>),
}

/// A set of scalars; never empty inside a message (an empty set is removed).
pub type Set = BTreeSet<Scalar>;

/// A dict of values; keys in ascending byte order. Never empty inside a message except `&`.
pub type Dict = BTreeMap<Vec<u8>, Value>;

/// One value of the data dict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer or string.
    Scalar(Scalar),
    /// A set of scalars (a bencoded list).
    Set(Set),
    /// A nested dict.
    Dict(Dict),
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Scalar(Scalar::Int(n))
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Scalar(Scalar::Bytes(b.to_vec()))
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Scalar(Scalar::Bytes(b))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Scalar(Scalar::Bytes(s.as_bytes().to_vec()))
    }
}

impl Scalar {
    pub(crate) fn from_bt(v: &bt::Value) -> Result<Scalar, ConfigError> {
        match v {
            bt::Value::Int(n) => Ok(Scalar::Int(*n)),
            bt::Value::Bytes(b) => Ok(Scalar::Bytes(b.clone())),
            _ => Err(ConfigError::Message("set element is not a scalar")),
        }
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Scalar::Int(n) => bt::put_int(out, *n),
            Scalar::Bytes(b) => bt::put_bytes(out, b),
        }
    }
}

/// A bencoded list as a set: scalars in strictly ascending set order (§2.3).
pub(crate) fn set_from_bt(items: &[bt::Value]) -> Result<Set, ConfigError> {
    let mut set = Set::new();
    let mut last: Option<Scalar> = None;
    for item in items {
        let s = Scalar::from_bt(item)?;
        if last.as_ref().is_some_and(|l| *l >= s) {
            return Err(ConfigError::Message("set elements unsorted or repeated"));
        }
        last = Some(s.clone());
        set.insert(s);
    }
    Ok(set)
}

pub(crate) fn encode_set(set: &Set, out: &mut Vec<u8>) {
    out.push(b'l');
    for s in set {
        s.encode_into(out);
    }
    out.push(b'e');
}

/// The data dict of a decoded message: no empty nested dict or set (§2.3).
pub(crate) fn dict_from_bt(items: &BTreeMap<Vec<u8>, bt::Value>) -> Result<Dict, ConfigError> {
    let mut out = Dict::new();
    for (k, v) in items {
        let value = match v {
            bt::Value::Int(_) | bt::Value::Bytes(_) => Value::Scalar(Scalar::from_bt(v)?),
            bt::Value::List(l) if l.is_empty() => {
                return Err(ConfigError::Message("empty set in data"));
            }
            bt::Value::List(l) => Value::Set(set_from_bt(l)?),
            bt::Value::Dict(d) if d.is_empty() => {
                return Err(ConfigError::Message("empty dict in data"));
            }
            bt::Value::Dict(d) => Value::Dict(dict_from_bt(d)?),
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

pub(crate) fn encode_dict(dict: &Dict, out: &mut Vec<u8>) {
    out.push(b'd');
    for (k, v) in dict {
        bt::put_bytes(out, k);
        match v {
            Value::Scalar(s) => s.encode_into(out),
            Value::Set(s) => encode_set(s, out),
            Value::Dict(d) => encode_dict(d, out),
        }
    }
    out.push(b'e');
}

/// Removes empty sets and empty nested dicts, recursively (§2.3 "pruning"); the top dict stays.
pub fn prune(dict: &mut Dict) {
    dict.retain(|_, v| match v {
        Value::Scalar(_) => true,
        Value::Set(s) => !s.is_empty(),
        Value::Dict(d) => {
            prune(d);
            !d.is_empty()
        }
    });
}
