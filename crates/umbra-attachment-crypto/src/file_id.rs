//! The file server's hash IDs (`groups-config-attachments.md` §3.3):
//! `urlsafe_b64(BLAKE2b-33(body, salt = "SessionFileSvr\0\0"))`, 44 characters (33 bytes
//! need no `=` padding). Identical uploads get the same ID, which is what makes deterministic
//! encryption deduplicate.

use base64::Engine as _;
use blake2::digest::consts::U33;
use blake2::digest::{Digest, Mac};
use blake2::{Blake2b, Blake2bMac};

/// The 16-byte BLAKE2b salt of file server IDs.
pub const FILE_ID_SALT: &[u8; 16] = b"SessionFileSvr\0\0";
/// Length of a hash ID in characters.
pub const FILE_ID_LEN: usize = 44;

/// Incremental file ID of a blob, fed in any pieces.
pub struct FileIdHasher(Inner);

/// The salt of Umbra's chunked-upload ids (`docs/attachments.md`), same construction.
pub(crate) const UPLOAD_ID_SALT: &[u8; 16] = b"UmbraUpload\0\0\0\0\0";

/// `Fallback` is never built: an unkeyed BLAKE2b with a 16-byte salt is within its limits,
/// but the constructor returns a `Result`; a differently-salted hash beats a panic.
enum Inner {
    Salted(Blake2bMac<U33>),
    Fallback(Blake2b<U33>),
}

impl FileIdHasher {
    /// An empty hasher.
    pub fn new() -> Self {
        Self::with_salt(FILE_ID_SALT)
    }

    /// The same 44-character id construction with another 16-byte salt.
    pub(crate) fn with_salt(salt: &[u8; 16]) -> Self {
        FileIdHasher(
            match Blake2bMac::<U33>::new_with_salt_and_personal(None, salt, &[]) {
                Ok(mac) => Inner::Salted(mac),
                Err(_) => Inner::Fallback(Blake2b::<U33>::new_with_prefix(salt)),
            },
        )
    }

    /// Feeds the next blob bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Inner::Salted(mac) => Mac::update(mac, data),
            Inner::Fallback(h) => Digest::update(h, data),
        }
    }

    /// The 44-character URL-safe base64 ID.
    pub fn finalize(self) -> String {
        let digest: [u8; 33] = match self.0 {
            Inner::Salted(mac) => mac.finalize().into_bytes().into(),
            Inner::Fallback(h) => h.finalize().into(),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    }
}

impl Default for FileIdHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// The file server ID of a whole in-memory blob.
pub fn file_id(body: &[u8]) -> String {
    let mut h = FileIdHasher::new();
    h.update(body);
    h.finalize()
}
