use thiserror::Error;

/// Errors from the cryptographic core. Each variant says what was being done.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key, seed or signature had the wrong length.
    #[error("{what} must be {expected} bytes, got {got}")]
    BadLength {
        /// What was being read.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A hex string could not be decoded.
    #[error("{what} is not valid hex")]
    BadHex {
        /// What was being read.
        what: &'static str,
    },
    /// A Session ID was not `05` followed by 32 bytes of hex.
    #[error("invalid Session ID: {0}")]
    BadSessionId(&'static str),
    /// A storage message hash was not 43 characters of unpadded base64.
    #[error("a message hash must be 43 characters of base64, got {len} characters")]
    BadMessageHash {
        /// Length of the rejected text.
        len: usize,
    },
    /// An Ed25519 public key is not a valid curve point.
    #[error("invalid Ed25519 public key")]
    BadEd25519Key,
    /// An Ed25519 signature did not verify.
    #[error("Ed25519 signature verification failed")]
    BadSignature,
    /// A Diffie-Hellman exchange produced the all-zero secret (a low-order public key).
    #[error("X25519 key exchange with a low-order public key")]
    WeakKeyExchange,
    /// Authenticated decryption failed: wrong key, truncated or modified ciphertext.
    #[error("decryption failed: {0}")]
    Decrypt(&'static str),
    /// Encryption failed (only possible for absurdly long inputs).
    #[error("encryption failed")]
    Encrypt,
    /// An onion-request `enc_type` we do not know.
    #[error("unknown encryption type {0:?}")]
    UnknownEncType(String),
    /// A recovery phrase could not be read.
    #[error("invalid recovery phrase: {0}")]
    Mnemonic(String),
}
