//! Bounded parsers of everything a request carries: the `X-FS-TTL` header, the `Range` header,
//! chunk indexes in paths and the chunked-upload manifest (`docs/attachments.md`). Each refuses
//! input past its stated limit before looking at it, and none can panic.

use serde::Deserialize;

use crate::id::{FileId, HashInitError, upload_id};

/// The one chunk size of manifest version 1: 1 MiB. A chunk plus the v4 and onion framing stays
/// far under one onion request's 10 MiB frame limit (`umbra_onion`'s `MAX_FRAME_LEN`), so every
/// chunk travels in a single onion request; each of the three relays holds about one chunk per
/// request in flight; an interrupted upload loses at most 1 MiB; and a 1 GiB file is 1024
/// chunks, a manifest of about 70 KB.
pub const CHUNK_SIZE: u64 = 1 << 20;

/// Largest manifest body accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// Most chunks in one manifest (16 GiB at [`CHUNK_SIZE`]; the server's configured size limit
/// is checked after parsing).
pub const MAX_CHUNKS: u64 = 16_384;

/// Longest `X-FS-TTL` or `Range` header value looked at, in bytes.
pub const MAX_HEADER_LEN: usize = 128;

/// A request part that could not be parsed; answered with `400` (the message names the limit
/// or the rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// `X-FS-TTL` is not a whole number of seconds within `1..=max` (`messages.md` §7: out of
    /// range → 400).
    #[error("X-FS-TTL must be a whole number of seconds from 1 to {max}")]
    Ttl {
        /// The server's largest TTL in seconds.
        max: u64,
    },
    /// A chunk index in a path is not a decimal number below the chunk count.
    #[error("chunk index must be a decimal number below {count}")]
    ChunkIndex {
        /// Chunks of the upload.
        count: u64,
    },
    /// The manifest body is larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest of {len} bytes exceeds the limit of {MAX_MANIFEST_BYTES} bytes")]
    ManifestTooLarge {
        /// Its length.
        len: usize,
    },
    /// The manifest is not the JSON object of `docs/attachments.md`.
    #[error("malformed manifest: {0}")]
    Manifest(String),
}

/// Parses `X-FS-TTL` into milliseconds. `None` header → `None` (the default expiry applies);
/// with `max_ttl_secs == None` the server does not honour the header and ignores it, as
/// Session's server without `MAX_FILE_TTL` does (`messages.md` §7).
///
/// # Errors
/// [`ParseError::Ttl`] for anything but `1..=max_ttl_secs` in plain decimal digits.
pub fn ttl_ms(header: Option<&[u8]>, max_ttl_secs: Option<u64>) -> Result<Option<u64>, ParseError> {
    let (Some(raw), Some(max)) = (header, max_ttl_secs) else {
        return Ok(None);
    };
    let err = ParseError::Ttl { max };
    let text = std::str::from_utf8(raw).map_err(|_| err.clone())?.trim();
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err);
    }
    let secs: u64 = text.parse().map_err(|_| err.clone())?;
    if secs == 0 || secs > max {
        return Err(err);
    }
    Ok(Some(secs.saturating_mul(1000)))
}

/// A byte range of a file, `start..end` (end exclusive, never empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable `Range` header: the whole file (RFC 9110 §14.2: a server ignores a `Range` it
    /// does not understand, such as several ranges or another unit).
    Whole,
    /// One satisfiable range: answer `206`.
    Part(ByteRange),
    /// A well-formed range past the end: answer `416`.
    Unsatisfiable,
}

/// Parses a single-range `Range: bytes=…` header against a file of `size` bytes.
pub fn range(header: Option<&[u8]>, size: u64) -> RangeRequest {
    let Some(raw) = header else {
        return RangeRequest::Whole;
    };
    if raw.len() > MAX_HEADER_LEN {
        return RangeRequest::Whole;
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return RangeRequest::Whole;
    };
    let Some(spec) = text.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
        // `bytes=-n`: the last n bytes.
        (true, false) => {
            let Some(n) = num(last) else {
                return RangeRequest::Whole;
            };
            if n == 0 || size == 0 {
                return RangeRequest::Unsatisfiable;
            }
            (size.saturating_sub(n), size)
        }
        // `bytes=a-`: from a to the end.
        (false, true) => {
            let Some(a) = num(first) else {
                return RangeRequest::Whole;
            };
            (a, size)
        }
        // `bytes=a-b`: inclusive b.
        (false, false) => {
            let (Some(a), Some(b)) = (num(first), num(last)) else {
                return RangeRequest::Whole;
            };
            if b < a {
                return RangeRequest::Whole;
            }
            (a, b.saturating_add(1).min(size))
        }
        (true, true) => return RangeRequest::Whole,
    };
    if start >= size || start >= end {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(ByteRange { start, end })
}

/// Parses a chunk index from a path segment, below `count`.
///
/// # Errors
/// [`ParseError::ChunkIndex`] for anything but plain decimal digits naming an existing chunk.
pub fn chunk_index(segment: &str, count: u64) -> Result<u64, ParseError> {
    let err = ParseError::ChunkIndex { count };
    if segment.is_empty() || segment.len() > 20 || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err);
    }
    let i: u64 = segment.parse().map_err(|_| err.clone())?;
    if i >= count {
        return Err(err);
    }
    Ok(i)
}

/// The manifest of a chunked upload (`docs/attachments.md`): the blob's size, the chunk size
/// and the BLAKE2b-32 of every chunk, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Total bytes of the blob.
    pub size: u64,
    /// Bytes of every chunk but the last ([`CHUNK_SIZE`] in version 1).
    pub chunk_size: u64,
    /// BLAKE2b-32 of each chunk.
    pub chunks: Vec<[u8; 32]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestJson {
    v: u64,
    size: u64,
    chunk_size: u64,
    chunks: Vec<String>,
}

/// Number of chunks of a blob of `size` bytes cut into `chunk_size` chunks: `ceil(size / chunk)`.
pub fn chunk_count(size: u64, chunk_size: u64) -> u64 {
    if chunk_size == 0 {
        return 0;
    }
    size.div_ceil(chunk_size)
}

impl Manifest {
    /// Parses a manifest body.
    ///
    /// # Errors
    /// [`ParseError::ManifestTooLarge`] past [`MAX_MANIFEST_BYTES`]; [`ParseError::Manifest`]
    /// for an unknown version, a chunk size other than [`CHUNK_SIZE`], an empty blob, more than
    /// [`MAX_CHUNKS`] chunks, a chunk count that does not match the size, or a hash that is
    /// not 64 hex digits.
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(ParseError::ManifestTooLarge { len: body.len() });
        }
        let bad = |s: &str| ParseError::Manifest(s.to_owned());
        let json: ManifestJson =
            serde_json::from_slice(body).map_err(|e| ParseError::Manifest(e.to_string()))?;
        if json.v != 1 {
            return Err(bad("unknown version (this server speaks v 1)"));
        }
        if json.chunk_size != CHUNK_SIZE {
            return Err(ParseError::Manifest(format!(
                "chunk_size must be {CHUNK_SIZE}"
            )));
        }
        if json.size == 0 {
            return Err(bad("size must be at least 1"));
        }
        let count = chunk_count(json.size, json.chunk_size);
        if count > MAX_CHUNKS {
            return Err(ParseError::Manifest(format!(
                "more than {MAX_CHUNKS} chunks"
            )));
        }
        if u64::try_from(json.chunks.len()).ok() != Some(count) {
            return Err(ParseError::Manifest(format!(
                "size {} needs {count} chunks, the manifest lists {}",
                json.size,
                json.chunks.len()
            )));
        }
        let chunks = json
            .chunks
            .iter()
            .map(|h| {
                let mut out = [0u8; 32];
                if h.len() != 64 {
                    return Err(bad("a chunk hash must be 64 hex digits"));
                }
                hex::decode_to_slice(h, &mut out)
                    .map_err(|_| bad("a chunk hash must be 64 hex digits"))?;
                Ok(out)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            size: json.size,
            chunk_size: json.chunk_size,
            chunks,
        })
    }

    /// The manifest as JSON (what a client sends).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "v": 1,
            "size": self.size,
            "chunk_size": self.chunk_size,
            "chunks": self.chunks.iter().map(hex::encode).collect::<Vec<_>>(),
        })
        .to_string()
    }

    /// The manifest of a whole blob (clients and tests).
    pub fn of(blob: &[u8]) -> Self {
        let step = usize::try_from(CHUNK_SIZE).unwrap_or(usize::MAX);
        Self {
            size: u64::try_from(blob.len()).unwrap_or(u64::MAX),
            chunk_size: CHUNK_SIZE,
            chunks: blob.chunks(step).map(crate::id::chunk_hash).collect(),
        }
    }

    /// Number of chunks.
    pub fn count(&self) -> u64 {
        u64::try_from(self.chunks.len()).unwrap_or(u64::MAX)
    }

    /// Length of chunk `index` (the last one may be shorter).
    pub fn chunk_len(&self, index: u64) -> u64 {
        let start = index.saturating_mul(self.chunk_size);
        self.size.saturating_sub(start).min(self.chunk_size)
    }

    /// The canonical bytes the upload id is computed over: `"umbra-upload-v1"`, size and chunk
    /// size as big-endian u64, then the hashes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(31 + 32 * self.chunks.len());
        out.extend_from_slice(b"umbra-upload-v1");
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        for h in &self.chunks {
            out.extend_from_slice(h);
        }
        out
    }

    /// The upload id of this manifest.
    ///
    /// # Errors
    /// [`HashInitError`] (never in practice).
    pub fn upload_id(&self) -> Result<FileId, HashInitError> {
        upload_id(&self.canonical_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl() {
        assert_eq!(ttl_ms(None, Some(10)), Ok(None));
        assert_eq!(ttl_ms(Some(b"5"), None), Ok(None));
        assert_eq!(ttl_ms(Some(b"5"), Some(10)), Ok(Some(5000)));
        assert_eq!(ttl_ms(Some(b" 10 "), Some(10)), Ok(Some(10_000)));
        for bad in [
            &b"0"[..],
            b"11",
            b"-1",
            b"1.5",
            b"",
            b"abc",
            b"+5",
            b"99999999999999999999999",
            b"\xff",
        ] {
            assert_eq!(
                ttl_ms(Some(bad), Some(10)),
                Err(ParseError::Ttl { max: 10 }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ranges() {
        use RangeRequest::*;
        let p = |start, end| Part(ByteRange { start, end });
        assert_eq!(range(None, 10), Whole);
        assert_eq!(range(Some(b"bytes=0-4"), 10), p(0, 5));
        assert_eq!(range(Some(b"bytes=5-"), 10), p(5, 10));
        assert_eq!(range(Some(b"bytes=-3"), 10), p(7, 10));
        assert_eq!(range(Some(b"bytes=-30"), 10), p(0, 10));
        assert_eq!(range(Some(b"bytes=8-100"), 10), p(8, 10));
        assert_eq!(range(Some(b"bytes=10-"), 10), Unsatisfiable);
        assert_eq!(range(Some(b"bytes=-0"), 10), Unsatisfiable);
        for ignored in [
            &b"items=0-1"[..],
            b"bytes=0-1,3-4",
            b"bytes=a-b",
            b"bytes=5-2",
            b"bytes=-",
            b"bytes=99999999999999999999999-",
        ] {
            assert_eq!(range(Some(ignored), 10), Whole, "{ignored:?}");
        }
        assert_eq!(range(Some(&[b'1'; 500]), 10), Whole);
    }

    #[test]
    fn chunk_indexes() {
        assert_eq!(chunk_index("0", 3), Ok(0));
        assert_eq!(chunk_index("2", 3), Ok(2));
        for bad in ["3", "-1", "", "1a", "+1", "99999999999999999999999"] {
            assert!(chunk_index(bad, 3).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_round_trip_and_refusals() {
        let blob = vec![7u8; usize::try_from(CHUNK_SIZE).unwrap() * 2 + 5];
        let m = Manifest::of(&blob);
        assert_eq!(m.count(), 3);
        assert_eq!(m.chunk_len(2), 5);
        assert_eq!(Manifest::parse(m.to_json().as_bytes()).unwrap(), m);
        assert_eq!(
            m.upload_id().unwrap(),
            Manifest::of(&blob).upload_id().unwrap()
        );

        let mut j: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        j["v"] = 2.into();
        assert!(Manifest::parse(j.to_string().as_bytes()).is_err());
        let mut j: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        j["size"] = 1.into();
        assert!(
            Manifest::parse(j.to_string().as_bytes()).is_err(),
            "count mismatch"
        );
        let mut j: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        j["chunk_size"] = 1000.into();
        assert!(Manifest::parse(j.to_string().as_bytes()).is_err());
        let mut j: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        j["chunks"][0] = "zz".into();
        assert!(Manifest::parse(j.to_string().as_bytes()).is_err());
        let mut j: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        j["extra"] = 1.into();
        assert!(Manifest::parse(j.to_string().as_bytes()).is_err());
        assert!(Manifest::parse(b"{}").is_err());
        assert!(Manifest::parse(b"[").is_err());
        assert!(matches!(
            Manifest::parse(&vec![b' '; MAX_MANIFEST_BYTES + 1]),
            Err(ParseError::ManifestTooLarge { .. })
        ));
        let huge =
            serde_json::json!({"v": 1, "size": u64::MAX, "chunk_size": CHUNK_SIZE, "chunks": []});
        assert!(Manifest::parse(huge.to_string().as_bytes()).is_err());
    }
}
