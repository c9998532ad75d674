//! The onion frame: `u32_le(N) ‖ ciphertext[N] ‖ control JSON (the rest)`.

use serde_json::{Map, Value};

/// The largest frame a node accepts, in bytes: 10 MiB, the storage node's HTTPS body limit
/// (`storage-rpc.md` §8, `onion-requests.md` §7.3).
///
/// Every layer is smaller than the frame that carried it, so one limit bounds them all. The
/// largest legitimate request, a `store` of 76 800 bytes of data (102 400 base64 characters),
/// needs about 104 KiB at the edge; Umbra's padding never takes a request above this limit.
pub const MAX_FRAME_LEN: usize = 10 * 1024 * 1024;

/// Why a frame did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    TooLarge(usize),
    Short,
    PastEnd { declared: u32, available: usize },
    NotJson,
    NotObject,
}

impl FrameError {
    pub(crate) fn detail(&self) -> String {
        match self {
            Self::TooLarge(n) => {
                format!("frame of {n} bytes exceeds the limit of {MAX_FRAME_LEN} bytes")
            }
            Self::Short => "Unexpected payload size; expected ciphertext size".into(),
            Self::PastEnd {
                declared,
                available,
            } => format!("Unexpected payload size {available}, expected >= {declared}"),
            Self::NotJson => "control data is not valid JSON".into(),
            Self::NotObject => "control data is not a JSON object".into(),
        }
    }
}

/// A parsed frame: the length-prefixed part, and the control JSON object.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    pub(crate) payload: &'a [u8],
    pub(crate) json: Map<String, Value>,
    /// Length of the frame without its trailing whitespace (Umbra padding).
    pub(crate) trimmed_len: usize,
}

/// Splits `frame` into the length-prefixed payload and the control JSON object.
///
/// Trailing ASCII whitespace after the JSON is allowed (it is how Umbra pads, and any JSON
/// parser accepts it) and is dropped before parsing.
pub(crate) fn parse(frame: &[u8]) -> Result<Parsed<'_>, FrameError> {
    if frame.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(frame.len()));
    }
    let Some((len, rest)) = frame.split_first_chunk::<4>() else {
        return Err(FrameError::Short);
    };
    let declared = u32::from_le_bytes(*len);
    let n = usize::try_from(declared).unwrap_or(usize::MAX);
    if rest.len() < n {
        return Err(FrameError::PastEnd {
            declared,
            available: rest.len(),
        });
    }
    let (payload, json) = rest.split_at(n);
    let json = json.trim_ascii_end();
    let value: Value = serde_json::from_slice(json).map_err(|_| FrameError::NotJson)?;
    let Value::Object(json_map) = value else {
        return Err(FrameError::NotObject);
    };
    Ok(Parsed {
        payload,
        json: json_map,
        trimmed_len: 4 + n + json.len(),
    })
}

/// Encodes `u32_le(len(payload)) ‖ payload ‖ json ‖ pad` spaces.
///
/// The caller guarantees `payload.len()` fits in a `u32` (every payload is bounded by
/// [`MAX_FRAME_LEN`] first).
pub(crate) fn encode_padded(payload: &[u8], json: &[u8], pad: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len() + json.len() + pad);
    let n = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(json);
    out.resize(out.len() + pad, b' ');
    out
}

/// Encodes a frame `u32_le(len(payload)) ‖ payload ‖ json`.
///
/// Public so that tests and tools can assemble frames exactly (for example with the spec's
/// JSON formatting); payloads longer than [`MAX_FRAME_LEN`] are refused by every node anyway.
pub fn encode(payload: &[u8], json: &[u8]) -> Vec<u8> {
    encode_padded(payload, json, 0)
}

/// Reads a 32-byte key given as 64 hex characters (either case).
pub(crate) fn hex32(v: &Value) -> Option<[u8; 32]> {
    let s = v.as_str()?;
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let f = encode(b"abc", br#"{"a":1}"#);
        let p = parse(&f).unwrap();
        assert_eq!(p.payload, b"abc");
        assert_eq!(p.json["a"], 1);
        assert_eq!(parse(&f[..3]).unwrap_err(), FrameError::Short);
        let mut past = f.clone();
        past[0] = 200;
        assert!(matches!(parse(&past), Err(FrameError::PastEnd { .. })));
        assert_eq!(
            parse(&encode(b"", b"[1]")).unwrap_err(),
            FrameError::NotObject
        );
        assert_eq!(parse(&encode(b"", b"{")).unwrap_err(), FrameError::NotJson);
        let padded = encode_padded(b"x", b"{}", 100);
        let p = parse(&padded).unwrap();
        assert_eq!(p.trimmed_len, 4 + 1 + 2);
        let big = vec![0u8; MAX_FRAME_LEN + 1];
        assert!(matches!(parse(&big), Err(FrameError::TooLarge(_))));
    }
}
