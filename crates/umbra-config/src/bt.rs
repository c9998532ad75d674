//! A small, bounded bencode value type: what config messages need and nothing else.
//!
//! Not `umbra-onion`'s decoder: that one is crate-private and borrows from its input, while
//! config messages keep values (unknown keys, lagged diffs) after the input is gone and need a
//! prefix decoder for multi-part messages (trailing bytes after the list). Decoding accepts only
//! canonical bencoding (sorted unique dict keys, no leading zeros, no `-0`) with a depth limit,
//! so it never recurses without bound and never panics.

use std::collections::BTreeMap;

use crate::ConfigError;

/// Deepest nesting accepted. A user config nests at most 7 levels (message → `<` → entry →
/// diff → `o` → URL → `R` → room → field); twice that leaves room for unknown fields.
pub const MAX_DEPTH: usize = 16;

/// A bencoded value owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `i…e`, signed 64-bit.
    Int(i64),
    /// `N:…`, a byte string.
    Bytes(Vec<u8>),
    /// `l…e`.
    List(Vec<Value>),
    /// `d…e`, keys in ascending byte order.
    Dict(BTreeMap<Vec<u8>, Value>),
}

type Result<T> = std::result::Result<T, ConfigError>;

fn err<T>(why: &'static str) -> Result<T> {
    Err(ConfigError::Bencode(why))
}

/// Decodes exactly one value spanning all of `input`.
pub fn decode(input: &[u8]) -> Result<Value> {
    let (v, used) = decode_prefix(input)?;
    if used != input.len() {
        return err("trailing data after the value");
    }
    Ok(v)
}

/// Decodes one value at the start of `input`; returns it and the number of bytes it used.
pub fn decode_prefix(input: &[u8]) -> Result<(Value, usize)> {
    let mut pos = 0;
    let v = value(input, &mut pos, 0)?;
    Ok((v, pos))
}

fn value(input: &[u8], pos: &mut usize, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return err("nested too deeply");
    }
    match input.get(*pos) {
        Some(b'i') => {
            *pos += 1;
            let digits = until(input, pos, b'e')?;
            Ok(Value::Int(int(digits)?))
        }
        Some(b'l') => {
            *pos += 1;
            let mut items = Vec::new();
            while input.get(*pos) != Some(&b'e') {
                items.push(value(input, pos, depth + 1)?);
            }
            *pos += 1;
            Ok(Value::List(items))
        }
        Some(b'd') => {
            *pos += 1;
            let mut items = BTreeMap::new();
            let mut last: Option<Vec<u8>> = None;
            while input.get(*pos) != Some(&b'e') {
                let key = bytes(input, pos)?;
                if last.as_ref().is_some_and(|l| *l >= key) {
                    return err("dict keys not in ascending order");
                }
                let v = value(input, pos, depth + 1)?;
                last = Some(key.clone());
                items.insert(key, v);
            }
            *pos += 1;
            Ok(Value::Dict(items))
        }
        Some(b'0'..=b'9') => Ok(Value::Bytes(bytes(input, pos)?)),
        Some(_) => err("unexpected byte"),
        None => err("truncated"),
    }
}

/// The bytes from `pos` up to (not including) `end`; moves `pos` past `end`.
fn until<'a>(input: &'a [u8], pos: &mut usize, end: u8) -> Result<&'a [u8]> {
    let rest = input.get(*pos..).unwrap_or_default();
    // 20 digits and a sign hold any i64 and any length; longer is never canonical.
    let window = &rest[..rest.len().min(21)];
    match window.iter().position(|&b| b == end) {
        Some(n) => {
            *pos += n + 1;
            Ok(&rest[..n])
        }
        None if rest.len() > 21 => err("number too long"),
        None => err("truncated"),
    }
}

fn int(digits: &[u8]) -> Result<i64> {
    let unsigned = digits.strip_prefix(b"-").unwrap_or(digits);
    let canonical = !unsigned.is_empty()
        && unsigned.iter().all(u8::is_ascii_digit)
        && !matches!(digits, [b'-', b'0', ..] | [b'0', _, ..]);
    if !canonical {
        return err("non-canonical integer");
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(ConfigError::Bencode("integer out of range"))
}

fn bytes(input: &[u8], pos: &mut usize) -> Result<Vec<u8>> {
    if !input.get(*pos).is_some_and(u8::is_ascii_digit) {
        return err("expected a byte string");
    }
    let digits = until(input, pos, b':')?;
    let len = int(digits)?;
    let len = usize::try_from(len).map_err(|_| ConfigError::Bencode("negative length"))?;
    let end = pos
        .checked_add(len)
        .filter(|&e| e <= input.len())
        .ok_or(ConfigError::Bencode("string longer than its input"))?;
    let s = input[*pos..end].to_vec();
    *pos = end;
    Ok(s)
}

/// Appends `N:bytes`.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Appends `iNe`.
pub fn put_int(out: &mut Vec<u8>, n: i64) {
    out.push(b'i');
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(b'e');
}

impl Value {
    /// Appends the canonical encoding of this value.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) => put_int(out, *n),
            Value::Bytes(b) => put_bytes(out, b),
            Value::List(items) => {
                out.push(b'l');
                for v in items {
                    v.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(items) => {
                out.push(b'd');
                for (k, v) in items {
                    put_bytes(out, k);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The canonical encoding of this value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip() {
        let input = b"d1:ai-5e1:bl3:xyzi0ee1:cdee";
        let v = decode(input).unwrap();
        assert_eq!(v.encode(), input);
    }

    #[test]
    fn refuses_non_canonical_and_deep() {
        for bad in [
            &b"i-0e"[..],
            b"i01e",
            b"ie",
            b"i+1e",
            b"03:abc",
            b"d1:b0:1:a0:e",
            b"d1:a0:1:a0:e",
            b"5:abc",
            b"l",
            b"i1",
            b"x",
            b"i99999999999999999999e",
            b"99999999999999999999999:",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        let deep = [vec![b'l'; 40], vec![b'e'; 40]].concat();
        assert_eq!(
            decode(&deep),
            Err(ConfigError::Bencode("nested too deeply"))
        );
    }
}
