//! The error type of the registry service.

use umbra_nodelist::NodeListError;
use umbra_nodelist::api::ErrorBody;

/// Everything that can go wrong while admitting nodes or serving registry data.
///
/// The `Display` text is meant for the operator of the node that sent a refused request (it is
/// returned in HTTP error bodies, with [`RegistryError::code`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A request or node list was refused by the pure checks of [`umbra_nodelist`] (bad
    /// signature, stale timestamp, malformed body, ...). Its message and code are the inner
    /// error's.
    #[error(transparent)]
    NodeList(#[from] NodeListError),
    /// A signed request reused a timestamp not newer than the last one accepted for the node.
    #[error("{what} timestamp is not newer than the last one accepted for this node (replay?)")]
    ReplayedTimestamp {
        /// Which request.
        what: &'static str,
    },
    /// A heartbeat or leave came from a node the registry does not know.
    #[error("node is not registered: register first")]
    NotRegistered,
    /// The registry database failed.
    #[error("registry database error while {what}")]
    Storage {
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// The registry database holds something this code cannot read.
    #[error("registry database is corrupt: {0}")]
    Corrupt(String),
}

/// Why a request was refused, in the terms both transports answer with (an HTTP status, a gRPC
/// code: see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Malformed body, bad announcement or unusable X25519 key (400, `INVALID_ARGUMENT`).
    Malformed,
    /// Bad signature or X25519 proof (401, `UNAUTHENTICATED`).
    Unauthenticated,
    /// Heartbeat or leave from an unknown node (404, `NOT_FOUND`).
    NotRegistered,
    /// Timestamp too far from the registry's clock (406, `FAILED_PRECONDITION`).
    Stale,
    /// Timestamp not newer than the last accepted one (409, `ALREADY_EXISTS`).
    Replayed,
    /// The registry failed (500, `INTERNAL`).
    Internal,
}

impl RegistryError {
    /// How the transports answer this error.
    pub(crate) fn refusal(&self) -> Refusal {
        match self {
            Self::NodeList(e) => match e {
                NodeListError::StaleTimestamp { .. } => Refusal::Stale,
                NodeListError::BadSignature { .. } | NodeListError::X25519ProofMismatch => {
                    Refusal::Unauthenticated
                }
                NodeListError::BadX25519Key
                | NodeListError::BadAnnouncement(_)
                | NodeListError::BadRequest(_)
                | NodeListError::ListTooLarge { .. } => Refusal::Malformed,
                _ => Refusal::Internal,
            },
            Self::ReplayedTimestamp { .. } => Refusal::Replayed,
            Self::NotRegistered => Refusal::NotRegistered,
            _ => Refusal::Internal,
        }
    }

    /// A short stable machine-readable code for the error (used in HTTP error bodies).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NodeList(e) => e.code(),
            Self::ReplayedTimestamp { .. } => "replayed_timestamp",
            Self::NotRegistered => "not_registered",
            Self::Storage { .. } => "storage",
            Self::Corrupt(_) => "corrupt",
        }
    }
}

impl From<&RegistryError> for ErrorBody {
    fn from(e: &RegistryError) -> Self {
        Self {
            error: e.to_string(),
            code: e.code().to_owned(),
        }
    }
}
