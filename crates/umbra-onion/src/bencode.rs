//! The small part of bencoding onion requests need: byte strings, integers, lists and dicts
//! with sorted keys, decoded with a depth limit and without copying.

/// A decoded bencode value borrowing from its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Bytes(&'a [u8]),
    Int(i64),
    List(Vec<Value<'a>>),
    /// Keys in input order (decoding checks they are strictly ascending).
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

const MAX_DEPTH: usize = 8;

/// Decodes exactly one value spanning all of `input`.
pub(crate) fn decode(input: &[u8]) -> Result<Value<'_>, &'static str> {
    let mut pos = 0;
    let v = value(input, &mut pos, 0)?;
    if pos != input.len() {
        return Err("trailing data after bencoded value");
    }
    Ok(v)
}

fn value<'a>(input: &'a [u8], pos: &mut usize, depth: usize) -> Result<Value<'a>, &'static str> {
    if depth > MAX_DEPTH {
        return Err("bencode nested too deeply");
    }
    match input.get(*pos) {
        Some(b'i') => {
            *pos += 1;
            let end = find(input, *pos, b'e')?;
            let digits = &input[*pos..end];
            // Canonical only: an optional `-` then ASCII digits, no leading zero, no `-0`
            // (Rust's `parse` alone would also take `+5`).
            let unsigned = digits.strip_prefix(b"-").unwrap_or(digits);
            let canonical = unsigned.iter().all(u8::is_ascii_digit)
                && !matches!(digits, [] | [b'-'] | [b'-', b'0', ..] | [b'0', _, ..]);
            let n = std::str::from_utf8(digits)
                .ok()
                .filter(|_| canonical)
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or("invalid bencode integer")?;
            *pos = end + 1;
            Ok(Value::Int(n))
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
            let mut items: Vec<(&[u8], Value<'_>)> = Vec::new();
            while input.get(*pos) != Some(&b'e') {
                let key = bytes(input, pos)?;
                if items.last().is_some_and(|(k, _)| *k >= key) {
                    return Err("bencode dict keys not in ascending order");
                }
                let v = value(input, pos, depth + 1)?;
                items.push((key, v));
            }
            *pos += 1;
            Ok(Value::Dict(items))
        }
        Some(b'0'..=b'9') => Ok(Value::Bytes(bytes(input, pos)?)),
        Some(_) => Err("invalid bencode value"),
        None => Err("truncated bencode"),
    }
}

fn bytes<'a>(input: &'a [u8], pos: &mut usize) -> Result<&'a [u8], &'static str> {
    let colon = find(input, *pos, b':')?;
    let digits = &input[*pos..colon];
    // ASCII digits only (Rust's `parse` alone would also take `+7`), no leading zero.
    if digits.is_empty()
        || digits.len() > 10
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && digits.len() > 1)
    {
        return Err("invalid bencode string length");
    }
    let len: usize = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("invalid bencode string length")?;
    let start = colon + 1;
    let end = start.checked_add(len).ok_or("truncated bencode string")?;
    let s = input.get(start..end).ok_or("truncated bencode string")?;
    *pos = end;
    Ok(s)
}

fn find(input: &[u8], from: usize, byte: u8) -> Result<usize, &'static str> {
    input
        .get(from..)
        .and_then(|rest| rest.iter().position(|b| *b == byte))
        .map(|i| from + i)
        .ok_or("truncated bencode")
}

/// Appends `<len>:<bytes>`.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Appends `i<n>e`.
pub(crate) fn put_int(out: &mut Vec<u8>, n: i64) {
    out.push(b'i');
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(b'e');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let mut out = vec![b'd'];
        put_bytes(&mut out, b"a");
        put_int(&mut out, -3);
        put_bytes(&mut out, b"b");
        out.push(b'l');
        put_bytes(&mut out, b"xyz");
        out.extend_from_slice(b"ee");
        assert_eq!(out, b"d1:ai-3e1:bl3:xyzee");
        let v = decode(&out).unwrap();
        assert_eq!(
            v,
            Value::Dict(vec![
                (b"a", Value::Int(-3)),
                (b"b", Value::List(vec![Value::Bytes(b"xyz")]))
            ])
        );
        for bad in [
            &b"d1:bi1e1:ai2ee"[..],
            b"i01e",
            b"i-0e",
            b"ie",
            b"5:abc",
            b"l",
            b"x",
            b"01:a",
            b"i1ei2e",
            b"99999999999:",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = [vec![b'l'; 20], vec![b'e'; 20]].concat();
        assert!(decode(&deep).is_err());
    }

    /// Found by the `onion_bencode` fuzz target: `+` signs were accepted (`str::parse` takes
    /// them), so one value had two encodings.
    #[test]
    fn refuses_plus_signs() {
        for bad in [&b"+3:abc"[..], b"i+5e", b"i-+5e", b"d+1:ai1ee", b"l+0:e"] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(decode(b"i-5e"), Ok(Value::Int(-5)));
        assert_eq!(decode(b"3:abc"), Ok(Value::Bytes(b"abc")));
    }
}
