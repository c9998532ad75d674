//! File and upload identifiers.
//!
//! A file id is Session's hash id (`groups-config-attachments.md` §3.3, `messages.md` §7):
//! `urlsafe_b64(BLAKE2b-33(body, salt = "SessionFileSvr\0\0"))`, 44 characters. The 33-byte
//! digest makes the base64 come out without `=` padding. It is computed while the body streams
//! in ([`FileIdHasher`]), never over a body held whole in memory.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use blake2::Blake2bMac;
use blake2::digest::Mac as _;
use blake2::digest::consts::{U32, U33};

/// Length of a file id in characters.
pub const FILE_ID_LEN: usize = 44;

/// The salt of Session's file id hash (`messages.md` §7).
const FILE_ID_SALT: &[u8; 16] = b"SessionFileSvr\0\0";

/// The salt of Umbra's upload ids (`docs/attachments.md`): kept apart from file ids so an
/// upload id is never also the id of some file.
const UPLOAD_ID_SALT: &[u8; 16] = b"UmbraUpload\0\0\0\0\0";

/// A file id: 44 characters of URL-safe base64 (parsed once at the edge).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(String);

impl FileId {
    /// Parses a 44-character URL-safe base64 id; anything else is `None` (an unknown file:
    /// Session's server answers 404 for ids it never issued, whatever their shape).
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() == FILE_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            Some(Self(s.to_owned()))
        } else {
            None
        }
    }

    /// The id's text (also its file name on disk: URL-safe base64 has no `/` or `.`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of a whole body (tests and small inputs; servers stream with [`FileIdHasher`]).
    ///
    /// # Errors
    /// [`HashInitError`] (never in practice, see there).
    pub fn of(body: &[u8]) -> Result<Self, HashInitError> {
        let mut h = FileIdHasher::new()?;
        h.update(body);
        Ok(h.finish())
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileId({})", self.0)
    }
}

/// The file id computed incrementally over a streamed body.
#[derive(Clone)]
pub struct FileIdHasher(Blake2bMac<U33>);

impl std::fmt::Debug for FileIdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileIdHasher").finish_non_exhaustive()
    }
}

impl FileIdHasher {
    /// An empty hasher.
    ///
    /// # Errors
    /// [`HashInitError`] (never in practice, see there).
    pub fn new() -> Result<Self, HashInitError> {
        Ok(Self(salted(FILE_ID_SALT)?))
    }

    /// Feeds the next bytes of the body.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The id of everything fed so far.
    pub fn finish(self) -> FileId {
        FileId(URL_SAFE.encode(self.0.finalize().into_bytes()))
    }
}

/// BLAKE2b refused the salted parameters. A 16-byte salt and no key are within BLAKE2b's
/// limits, so this happens only if the `blake2` crate changed them (the vector tests would
/// fail first); it is an error rather than a panic so a server never dies of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("BLAKE2b refused a 16-byte salt")]
pub struct HashInitError;

/// Unkeyed BLAKE2b-33 with a 16-byte salt (Python's `blake2b(data, digest_size=33, salt=…)`).
fn salted(salt: &[u8; 16]) -> Result<Blake2bMac<U33>, HashInitError> {
    Blake2bMac::<U33>::new_with_salt_and_personal(None, salt, &[]).map_err(|_| HashInitError)
}

/// BLAKE2b-32 of one chunk, as the manifest lists it (`docs/attachments.md`).
pub fn chunk_hash(bytes: &[u8]) -> [u8; 32] {
    let mut h = ChunkHasher::new();
    h.update(bytes);
    h.finish()
}

/// [`chunk_hash`] computed incrementally over a streamed chunk.
#[derive(Clone)]
pub struct ChunkHasher(blake2::Blake2b<U32>);

impl std::fmt::Debug for ChunkHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkHasher").finish_non_exhaustive()
    }
}

impl Default for ChunkHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkHasher {
    /// An empty hasher.
    pub fn new() -> Self {
        Self(blake2::Digest::new())
    }

    /// Feeds the next bytes of the chunk.
    pub fn update(&mut self, bytes: &[u8]) {
        blake2::Digest::update(&mut self.0, bytes);
    }

    /// The chunk hash.
    pub fn finish(self) -> [u8; 32] {
        blake2::Digest::finalize(self.0).into()
    }
}

/// An upload id: like a file id (44 characters of URL-safe base64) but hashed over the
/// manifest's canonical bytes with Umbra's own salt, so the same manifest always names the
/// same upload and a client that lost its state finds its upload again.
///
/// # Errors
/// [`HashInitError`] (never in practice, see there).
pub fn upload_id(canonical_manifest: &[u8]) -> Result<FileId, HashInitError> {
    let mut h = salted(UPLOAD_ID_SALT)?;
    h.update(canonical_manifest);
    Ok(FileId(URL_SAFE.encode(h.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `shared/vectors/groups-config-attachments.json`, `file_server_ids`.
    #[test]
    fn spec_vectors() {
        assert_eq!(
            FileId::of(b"hello").unwrap().as_str(),
            "tKO2VVg1JPHwgZuvqK_7bDHJeSr4UJ_8i13ETlwAn0jB"
        );
        assert_eq!(
            FileId::of(b"hello world").unwrap().as_str(),
            "3qXfYbeRSxXa89I8ApcbKl0_BshkLQ6myd0DsvcrDEy3"
        );
    }

    #[test]
    fn streaming_equals_whole() {
        let mut h = FileIdHasher::new().unwrap();
        h.update(b"hello");
        h.update(b" world");
        assert_eq!(h.finish(), FileId::of(b"hello world").unwrap());
    }

    #[test]
    fn parse_bounds() {
        let id = FileId::of(b"x").unwrap();
        assert_eq!(FileId::parse(id.as_str()), Some(id.clone()));
        assert!(FileId::parse("").is_none());
        assert!(FileId::parse("12345").is_none());
        assert!(FileId::parse(&format!("{}a", id.as_str())).is_none());
        assert!(FileId::parse(&"a/".repeat(22)).is_none());
        assert!(FileId::parse(&"é".repeat(22)).is_none());
        assert_ne!(upload_id(b"hello").unwrap(), FileId::of(b"hello").unwrap());
    }
}
