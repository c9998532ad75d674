#![doc = include_str!("../README.md")]

mod error;
pub mod id;
pub mod metrics;
pub mod onion;
pub mod parse;
pub mod server;
pub mod store;

pub use error::AttachmentError;

/// Entry points for the cargo-fuzz target in `fuzz/` (feature `fuzzing`): every parser of
/// request bytes, without a server or a store.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use crate::parse;

    /// Runs every request parser on `data` (the manifest on the whole input; the headers and
    /// path segments on its UTF-8 prefix) and checks their promises: a parsed manifest
    /// round-trips, a range lies inside the file, a TTL is within its bound.
    pub fn parse_request(data: &[u8]) {
        if let Ok(m) = parse::Manifest::parse(data) {
            let again = parse::Manifest::parse(m.to_json().as_bytes());
            assert_eq!(again.as_ref(), Ok(&m), "a parsed manifest round-trips");
            assert_eq!(m.count(), parse::chunk_count(m.size, m.chunk_size));
            let _ = m.upload_id();
        }
        let size = data
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes);
        let rest = data.get(8..).unwrap_or_default();
        if let parse::RangeRequest::Part(r) = parse::range(Some(rest), size) {
            assert!(r.start < r.end && r.end <= size, "{r:?} outside {size}");
        }
        if let Ok(Some(ms)) = parse::ttl_ms(Some(rest), Some(size)) {
            assert!(ms >= 1000 && ms <= size.saturating_mul(1000));
        }
        if let Ok(text) = std::str::from_utf8(rest) {
            if let Ok(i) = parse::chunk_index(text, size) {
                assert!(i < size);
            }
            if let Some(id) = crate::id::FileId::parse(text) {
                assert_eq!(id.as_str(), text);
            }
        }
    }
}
