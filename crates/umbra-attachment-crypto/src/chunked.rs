//! The chunked view of a blob for resumable transfers (Umbra's extension, version 1,
//! `docs/attachments.md`).
//!
//! ```text
//! blob = chunk 0 ‖ chunk 1 ‖ … ‖ chunk n−1      every chunk CHUNK_SIZE bytes, the last 1..=CHUNK_SIZE
//! manifest = {"v": 1, "size", "chunk_size", "chunks": [hex BLAKE2b-32(chunk i)…]}
//! upload id = urlsafe_b64(BLAKE2b-33("umbra-upload-v1" ‖ be64 size ‖ be64 chunk_size ‖ hashes,
//!                                    salt = "UmbraUpload\0\0\0\0\0"))
//! ```
//!
//! - Upload: [`ManifestBuilder`] hashes the blob as it is written (it is a [`Write`]), then
//!   [`Manifest::to_json`] is sent and the chunks the server lacks follow.
//!   [`ChunkVerifier`] checks chunks in order against a manifest without any key, and can
//!   start again at chunk `k`.
//! - Download: [`ChunkedDecryptor`] takes the chunks of a blob in order and writes the
//!   plaintext as each arrives (the secretstream MACs authenticate every 32 KiB); after any
//!   chunk its [`Checkpoint`] can be saved, and [`ChunkedDecryptor::resume`] continues from the
//!   next chunk after a restart. Truncation (too few chunks), reordering (an index other than
//!   the next) and a wrong length are refused before any byte is decrypted.

use std::io::Write;

use zeroize::Zeroizing;

use crate::error::AttachmentError;
use crate::file_id::{FileIdHasher, UPLOAD_ID_SALT};
use crate::stream::{AttachmentKey, Decryptor};

/// Bytes per transfer chunk: 1 MiB, the attachment server's `CHUNK_SIZE` (version 1 refuses
/// any other). One chunk plus its v4 and onion framing is one onion request far below the
/// 10 MiB frame limit, an interruption costs at most 1 MiB, and a 1 GiB file is 1024 chunks.
pub const CHUNK_SIZE: u64 = 1 << 20;
/// Most chunks in one manifest (the server's limit: 16 GiB at [`CHUNK_SIZE`]).
pub const MAX_CHUNKS: u64 = 16_384;
/// Version of the manifest format.
pub const MANIFEST_VERSION: u8 = 1;
/// Version of the [`Checkpoint`] encoding.
const CHECKPOINT_VERSION: u8 = 1;

/// Chunks of a blob of `size` bytes: `ceil(size / CHUNK_SIZE)`.
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK_SIZE)
}

/// Length of chunk `index` of a blob of `size` bytes (0 past the end).
pub fn chunk_len(size: u64, index: u64) -> u64 {
    size.saturating_sub(index.saturating_mul(CHUNK_SIZE))
        .min(CHUNK_SIZE)
}

/// Refuses a chunk whose length is not the one its position in a `size`-byte blob requires.
fn check_len(size: u64, index: u64, chunk: &[u8]) -> Result<(), AttachmentError> {
    let want = chunk_len(size, index);
    if chunk.len() as u64 != want {
        return Err(AttachmentError::ChunkLength {
            index,
            expected: want,
            got: chunk.len() as u64,
        });
    }
    Ok(())
}

/// BLAKE2b-32 of one chunk, as the manifest lists it.
pub fn chunk_hash(chunk: &[u8]) -> [u8; 32] {
    blake2b_32(chunk)
}

fn blake2b_32(data: &[u8]) -> [u8; 32] {
    use blake2::digest::Digest;
    blake2::Blake2b::<blake2::digest::consts::U32>::digest(data).into()
}

/// A blob's size and the hash of each of its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Blob size in bytes.
    pub size: u64,
    /// BLAKE2b-32 of each chunk, in order.
    pub chunks: Vec<[u8; 32]>,
}

impl Manifest {
    /// The manifest of an in-memory blob.
    pub fn of(blob: &[u8]) -> Self {
        let mut b = ManifestBuilder::new();
        b.update(blob);
        b.finish()
    }

    /// The JSON body of `POST /upload`.
    pub fn to_json(&self) -> String {
        let mut s = format!(
            "{{\"v\":{MANIFEST_VERSION},\"size\":{},\"chunk_size\":{CHUNK_SIZE},\"chunks\":[",
            self.size
        );
        for (i, h) in self.chunks.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('"');
            for b in h {
                s.push_str(&format!("{b:02x}"));
            }
            s.push('"');
        }
        s.push_str("]}");
        s
    }

    /// `"umbra-upload-v1" ‖ be64(size) ‖ be64(chunk_size) ‖ hash_0 ‖ … ‖ hash_{n−1}`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(31 + 32 * self.chunks.len());
        out.extend_from_slice(b"umbra-upload-v1");
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&CHUNK_SIZE.to_be_bytes());
        for h in &self.chunks {
            out.extend_from_slice(h);
        }
        out
    }

    /// The upload id the server gives this manifest (44 characters).
    pub fn upload_id(&self) -> String {
        let mut h = FileIdHasher::with_salt(UPLOAD_ID_SALT);
        h.update(&self.canonical_bytes());
        h.finalize()
    }

    /// Checks chunk `index` against the manifest (length, then hash).
    pub fn check_chunk(&self, index: u64, chunk: &[u8]) -> Result<(), AttachmentError> {
        let count = self.chunks.len() as u64;
        let Some(expected) = usize::try_from(index).ok().and_then(|i| self.chunks.get(i)) else {
            return Err(AttachmentError::ChunkOutOfOrder {
                expected: count,
                got: index,
            });
        };
        check_len(self.size, index, chunk)?;
        if &chunk_hash(chunk) != expected {
            return Err(AttachmentError::ChunkHash { index });
        }
        Ok(())
    }
}

/// Builds a [`Manifest`] from a blob streamed through it in any pieces; holds one chunk's hash
/// state, never the blob.
pub struct ManifestBuilder {
    size: u64,
    chunks: Vec<[u8; 32]>,
    current: blake2::Blake2b<blake2::digest::consts::U32>,
    in_chunk: u64,
}

impl Default for ManifestBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ManifestBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        use blake2::digest::Digest;
        ManifestBuilder {
            size: 0,
            chunks: Vec::new(),
            current: blake2::Blake2b::new(),
            in_chunk: 0,
        }
    }

    /// Feeds the next blob bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        use blake2::digest::Digest;
        while !data.is_empty() {
            let n = (CHUNK_SIZE - self.in_chunk).min(data.len() as u64) as usize;
            Digest::update(&mut self.current, &data[..n]);
            self.in_chunk += n as u64;
            self.size += n as u64;
            data = &data[n..];
            if self.in_chunk == CHUNK_SIZE {
                self.chunks.push(self.current.finalize_reset().into());
                self.in_chunk = 0;
            }
        }
    }

    /// The manifest of everything fed.
    pub fn finish(mut self) -> Manifest {
        use blake2::digest::Digest;
        if self.in_chunk > 0 {
            self.chunks.push(self.current.finalize().into());
        }
        Manifest {
            size: self.size,
            chunks: self.chunks,
        }
    }
}

impl Write for ManifestBuilder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Accepts a blob's chunks strictly in order against a manifest, without a key: what an
/// uploader re-checks before sending, or a downloader that has the manifest.
#[derive(Debug, Clone)]
pub struct ChunkVerifier {
    manifest: Manifest,
    next: u64,
}

impl ChunkVerifier {
    /// Expects chunk 0 first.
    pub fn new(manifest: Manifest) -> Self {
        Self::resume_at(manifest, 0)
    }

    /// Expects chunk `next` first (the chunks before it were verified earlier).
    pub fn resume_at(manifest: Manifest, next: u64) -> Self {
        let next = next.min(manifest.chunks.len() as u64);
        ChunkVerifier { manifest, next }
    }

    /// The index of the chunk expected next.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Verifies chunk `index`, which must be the next one.
    pub fn push(&mut self, index: u64, chunk: &[u8]) -> Result<(), AttachmentError> {
        if index != self.next {
            return Err(AttachmentError::ChunkOutOfOrder {
                expected: self.next,
                got: index,
            });
        }
        self.manifest.check_chunk(index, chunk)?;
        self.next += 1;
        Ok(())
    }

    /// Succeeds once every chunk arrived.
    pub fn finish(&self) -> Result<(), AttachmentError> {
        let expected = self.manifest.chunks.len() as u64;
        if self.next != expected {
            return Err(AttachmentError::ChunksMissing {
                received: self.next,
                expected,
            });
        }
        Ok(())
    }
}

/// Decrypts a stream-format blob of known size arriving as transfer chunks in order, and can
/// be saved after any chunk and resumed after a restart.
pub struct ChunkedDecryptor {
    inner: Decryptor,
    size: u64,
    next: u64,
}

impl ChunkedDecryptor {
    /// A decryptor for a blob of `blob_size` bytes (the file's size on the server, which for
    /// a stream-format attachment is [`encrypted_size`](crate::encrypted_size) of the
    /// pointer's `size`).
    pub fn new(key: &AttachmentKey, blob_size: u64) -> Result<Self, AttachmentError> {
        if chunk_count(blob_size) > MAX_CHUNKS {
            return Err(AttachmentError::TooLarge {
                size: blob_size,
                limit: MAX_CHUNKS * CHUNK_SIZE,
            });
        }
        Ok(ChunkedDecryptor {
            inner: Decryptor::new(key),
            size: blob_size,
            next: 0,
        })
    }

    /// The index of the chunk expected next (where a download resumes).
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Chunks in the blob.
    pub fn chunk_count(&self) -> u64 {
        chunk_count(self.size)
    }

    /// Decrypts chunk `index`, which must be the next one and of its exact length, writing its
    /// plaintext to `out`. On error the state is unusable: resume from the last checkpoint.
    pub fn push<W: Write + ?Sized>(
        &mut self,
        index: u64,
        chunk: &[u8],
        out: &mut W,
    ) -> Result<(), AttachmentError> {
        if index != self.next || index >= self.chunk_count() {
            return Err(AttachmentError::ChunkOutOfOrder {
                expected: self.next,
                got: index,
            });
        }
        check_len(self.size, index, chunk)?;
        self.inner.update(chunk, out)?;
        self.next += 1;
        Ok(())
    }

    /// Checks that every chunk arrived and the stream ended properly; returns the plaintext
    /// size (compare it with the pointer's `size`).
    pub fn finish<W: Write + ?Sized>(self, out: &mut W) -> Result<u64, AttachmentError> {
        if self.next != self.chunk_count() {
            return Err(AttachmentError::ChunksMissing {
                received: self.next,
                expected: self.chunk_count(),
            });
        }
        self.inner.finish(out)
    }

    /// The state after the chunks pushed so far. Secret (it holds the stream key): keep it
    /// where the attachment key is kept. Pair it with the plaintext written so far
    /// ([`Checkpoint::plaintext_len`]): on resume, cut the output file to that length.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut bytes = Zeroizing::new(Vec::with_capacity(128));
        bytes.push(CHECKPOINT_VERSION);
        bytes.extend_from_slice(&self.size.to_le_bytes());
        bytes.extend_from_slice(&self.next.to_le_bytes());
        self.inner.save(&mut bytes);
        Checkpoint {
            bytes,
            plaintext_len: self.inner.written(),
            next: self.next,
        }
    }

    /// Continues a download from a checkpoint, with the same key; the next chunk expected is
    /// [`Checkpoint::next_index`].
    pub fn resume(key: &AttachmentKey, checkpoint: &[u8]) -> Result<Self, AttachmentError> {
        let (head, rest) = checkpoint
            .split_at_checked(17)
            .ok_or(AttachmentError::Checkpoint("too short"))?;
        if head[0] != CHECKPOINT_VERSION {
            return Err(AttachmentError::Checkpoint("unknown version"));
        }
        let mut size = [0u8; 8];
        size.copy_from_slice(&head[1..9]);
        let mut next = [0u8; 8];
        next.copy_from_slice(&head[9..17]);
        let (size, next) = (u64::from_le_bytes(size), u64::from_le_bytes(next));
        let inner = Decryptor::load(key, rest).ok_or(AttachmentError::Checkpoint("malformed"))?;
        if next > chunk_count(size) || chunk_count(size) > MAX_CHUNKS {
            return Err(AttachmentError::Checkpoint("chunk index out of range"));
        }
        Ok(ChunkedDecryptor { inner, size, next })
    }
}

/// A saved [`ChunkedDecryptor`]: versioned bytes, wiped on drop, never printed.
pub struct Checkpoint {
    bytes: Zeroizing<Vec<u8>>,
    plaintext_len: u64,
    next: u64,
}

impl Checkpoint {
    /// The encoded checkpoint, for [`ChunkedDecryptor::resume`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Plaintext bytes written before this checkpoint.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// The chunk a resumed download fetches first.
    pub fn next_index(&self) -> u64 {
        self.next
    }
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("next_index", &self.next)
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}
