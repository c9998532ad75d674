use thiserror::Error;

/// Everything that can go wrong while encrypting, decrypting or checking an attachment. Each
/// variant says what was being done; byte-exact checks cite `groups-config-attachments.md`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AttachmentError {
    /// The plaintext is larger than the chosen [`SizeLimit`](crate::SizeLimit) allows.
    #[error("attachment of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The plaintext size given.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The encryptor was given a different number of plaintext bytes than announced.
    #[error("encrypting: announced {announced} plaintext bytes but received {received}")]
    LengthMismatch {
        /// The size announced to [`Encryptor::new`](crate::Encryptor::new).
        announced: u64,
        /// The bytes actually given (so far, when too many).
        received: u64,
    },
    /// The input changed between the key-derivation pass and the encryption pass.
    #[error("the input changed while it was being encrypted")]
    InputChanged,
    /// The blob does not start with `'S'` (§3.1 "Decryption checks": unknown format).
    #[error("unknown attachment format (first byte {first_byte:#04x}, expected 0x53 'S')")]
    UnknownFormat {
        /// The first byte of the blob.
        first_byte: u8,
    },
    /// The blob ended before its final chunk (§3.1: the stream must end with `TAG_FINAL`).
    #[error("attachment is truncated: it ends before its final chunk")]
    Truncated,
    /// A chunk's Poly1305 tag did not verify: wrong key, or modified bytes.
    #[error("attachment chunk {index} failed authentication (wrong key or modified data)")]
    ChunkAuthentication {
        /// Index of the 32 785-byte encrypted chunk, from 0.
        index: u64,
    },
    /// Bytes follow the chunk tagged final (§3.1: the final chunk must be the last one).
    #[error("attachment has data after its final chunk")]
    TrailingData,
    /// The decrypted padding is not `0x00… 0x01` (§3.1 "invalid padding").
    #[error("attachment has invalid padding")]
    InvalidPadding,
    /// Reading the input or writing the output failed.
    #[error("reading or writing the attachment stream")]
    Io(#[source] std::io::Error),
    /// A legacy key is not 64 bytes (`aes_key ‖ mac_key`, `identity-and-crypto.md` §8).
    #[error("legacy attachment key must be 64 bytes, got {got}")]
    LegacyKeyLength {
        /// The length given.
        got: usize,
    },
    /// A legacy blob is shorter than `iv(16) ‖ one block(16) ‖ mac(32)` or not block-aligned.
    #[error("legacy attachment of {len} bytes is malformed (too short or not block-aligned)")]
    LegacyMalformed {
        /// The blob length.
        len: usize,
    },
    /// A legacy blob is larger than [`LEGACY_MAX_BLOB`](crate::legacy::LEGACY_MAX_BLOB).
    #[error("legacy attachment of {len} bytes exceeds the limit of {limit} bytes")]
    LegacyTooLarge {
        /// The blob length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The legacy HMAC-SHA256 did not verify (§3.2).
    #[error("legacy attachment failed authentication (HMAC mismatch)")]
    LegacyMac,
    /// The SHA-256 of the blob differs from `AttachmentPointer.digest` (§3.2).
    #[error("attachment digest does not match the pointer's digest")]
    DigestMismatch,
    /// The pointer carries no digest; legacy attachments are refused without one (§3.2).
    #[error("legacy attachment pointer has no digest")]
    DigestMissing,
    /// AES-CBC decryption produced invalid PKCS#7 padding.
    #[error("legacy attachment has invalid PKCS#7 padding")]
    LegacyPadding,
    /// The decrypted legacy plaintext is shorter than `AttachmentPointer.size`.
    #[error("legacy attachment decrypts to {got} bytes, fewer than the pointer's size {size}")]
    LegacyShort {
        /// Bytes decrypted.
        got: usize,
        /// The size the pointer announced.
        size: u64,
    },
    /// A legacy display picture failed AES-256-GCM authentication or is under 29 bytes.
    #[error("legacy display picture failed to decrypt")]
    ProfilePicture,
    /// A transfer chunk arrived out of order (chunked view).
    #[error("chunk {got} arrived where chunk {expected} was expected")]
    ChunkOutOfOrder {
        /// The next chunk index expected.
        expected: u64,
        /// The index given.
        got: u64,
    },
    /// A transfer chunk has the wrong length for its position.
    #[error("chunk {index} has {got} bytes, expected {expected}")]
    ChunkLength {
        /// The chunk index.
        index: u64,
        /// The length its position requires.
        expected: u64,
        /// The length given.
        got: u64,
    },
    /// A transfer chunk's hash differs from the manifest.
    #[error("chunk {index} does not match the manifest")]
    ChunkHash {
        /// The chunk index.
        index: u64,
    },
    /// The transfer ended before every chunk of the manifest arrived.
    #[error("transfer incomplete: {received} of {expected} chunks")]
    ChunksMissing {
        /// Chunks received in order.
        received: u64,
        /// Chunks in the manifest.
        expected: u64,
    },
    /// A saved download checkpoint does not parse, or belongs to another blob size.
    #[error("invalid download checkpoint: {0}")]
    Checkpoint(&'static str),
}

impl From<std::io::Error> for AttachmentError {
    fn from(e: std::io::Error) -> Self {
        AttachmentError::Io(e)
    }
}
