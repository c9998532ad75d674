//! The crate's one error type.

/// Why a config message could not be decrypted, parsed or built.
///
/// Every variant names what was being done; none wraps another error, so each message shows its
/// whole cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Input bytes larger than the limit for what they claim to be.
    #[error("{what} is {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The ciphertext did not authenticate under the key (wrong key, domain or damaged bytes).
    #[error("config message does not decrypt (wrong key or damaged)")]
    Decrypt,
    /// The domain is not 1 to 24 bytes (`identity-and-crypto.md` §7.1).
    #[error("config domain must be 1 to 24 bytes, not {0}")]
    BadDomain(usize),
    /// The bytes are not canonical bencoding within the limits.
    #[error("invalid bencode: {0}")]
    Bencode(&'static str),
    /// Bencode that is not a config message (`groups-config-attachments.md` §2.2–2.4).
    #[error("invalid config message: {0}")]
    Message(&'static str),
    /// The `z` form did not inflate within the size limit.
    #[error("config message does not decompress within {limit} bytes")]
    Decompress {
        /// The size limit of the inflated message.
        limit: usize,
    },
    /// A part of a multi-part message is malformed or inconsistent (§2.9).
    #[error("invalid multi-part config: {0}")]
    Multipart(&'static str),
    /// The decrypted plaintext starts with no known form byte (`d`, `z`, `m`).
    #[error("decrypted config starts with unknown form byte {0:#04x}")]
    UnknownForm(u8),
    /// A field value over the size Session allows for it (§2.11).
    #[error("{field} is {len} bytes, over the limit of {max}")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A message that must be signed has no valid signature (§2.8).
    #[error("config message signature is missing or invalid")]
    Signature,
}
