//! The error type of this crate.

/// Everything that can go wrong while building, parsing or verifying a node list or a registry
/// request.
///
/// Each variant says what was being checked; the `Display` text is meant for the operator of
/// the node that sent a refused request (the registry returns it in HTTP error bodies, with
/// [`NodeListError::code`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeListError {
    /// A signed request carried a timestamp too far from the registry's clock.
    #[error(
        "{what} timestamp is too far from the registry's clock ({skew_ms} ms off, at most {max_ms} ms allowed): check the node's clock"
    )]
    StaleTimestamp {
        /// Which request.
        what: &'static str,
        /// How far off it was, in milliseconds (absolute).
        skew_ms: u64,
        /// The allowed skew.
        max_ms: u64,
    },
    /// An Ed25519 signature did not verify.
    #[error("{what} signature verification failed")]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
    /// The announced X25519 key is not usable (not a valid point or of small order).
    #[error("the announced X25519 public key is invalid")]
    BadX25519Key,
    /// The X25519 proof does not match the announced X25519 key.
    #[error("the X25519 key proof does not match the announced X25519 public key")]
    X25519ProofMismatch,
    /// A field of a registration is unacceptable.
    #[error("bad registration: {0}")]
    BadAnnouncement(&'static str),
    /// A request body or node list could not be parsed (or an account id has the wrong length).
    #[error("malformed request: {0}")]
    BadRequest(String),

    /// A node list has a format version this code does not know.
    #[error("node list format version {got} is not supported (expected {expected})")]
    ListVersion {
        /// The version found.
        got: u8,
        /// The version this code reads.
        expected: u8,
    },
    /// A node list or its signature set exceeds a limit.
    #[error("node list has too many {what} ({got}, limit {limit})")]
    ListTooLarge {
        /// What was counted.
        what: &'static str,
        /// How many there were.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// The nodes of a list are not sorted by Ed25519 key without duplicates.
    #[error("node list is not canonical: nodes must be sorted by Ed25519 key without duplicates")]
    ListNotCanonical,
    /// Fewer trusted signers than required signed the list.
    #[error("node list has {got} valid signature(s) from trusted registries, {need} required")]
    NotEnoughSignatures {
        /// Valid trusted signatures found.
        got: usize,
        /// The threshold.
        need: usize,
    },
    /// A node list older than one already accepted was offered.
    #[error("node list epoch {got} is older than epoch {seen} already accepted")]
    OlderEpoch {
        /// The epoch offered.
        got: u64,
        /// The newest epoch seen.
        seen: u64,
    },
    /// Two different lists were signed for the same epoch.
    #[error("a different node list was already accepted for epoch {epoch}")]
    ConflictingList {
        /// The epoch.
        epoch: u64,
    },
    /// A trust policy that can never be satisfied (threshold 0 or above the number of keys).
    #[error("trust policy needs {threshold} signatures out of {keys} keys")]
    BadTrustPolicy {
        /// The threshold asked for.
        threshold: usize,
        /// The number of trusted keys.
        keys: usize,
    },
    /// A cryptographic operation failed while building a request.
    #[error("cryptographic operation failed while {what}")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: umbra_crypto::CryptoError,
    },
}

impl NodeListError {
    /// A short stable machine-readable code for the error (used in HTTP error bodies,
    /// [`crate::api::ErrorBody::code`]).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::StaleTimestamp { .. } => "stale_timestamp",
            Self::BadSignature { .. } => "bad_signature",
            Self::BadX25519Key => "bad_x25519_key",
            Self::X25519ProofMismatch => "x25519_proof_mismatch",
            Self::BadAnnouncement(_) => "bad_announcement",
            Self::BadRequest(_) => "bad_request",
            Self::ListVersion { .. } => "list_version",
            Self::ListTooLarge { .. } => "list_too_large",
            Self::ListNotCanonical => "list_not_canonical",
            Self::NotEnoughSignatures { .. } => "not_enough_signatures",
            Self::OlderEpoch { .. } => "older_epoch",
            Self::ConflictingList { .. } => "conflicting_list",
            Self::BadTrustPolicy { .. } => "bad_trust_policy",
            Self::Crypto { .. } => "crypto",
        }
    }
}
