//! The crate's error type.

/// Everything that can go wrong in membership and replication. Each variant says what was being
/// done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// Building an HTTP client failed.
    #[error("building the {what} HTTP client: {reason}")]
    HttpClient {
        /// Which client.
        what: &'static str,
        /// What reqwest said.
        reason: String,
    },
    /// The peer port's TLS configuration could not be made.
    #[error("peer TLS ({what}): {reason}")]
    Tls {
        /// What was being made.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A peer could not be reached (connection refused, reset, HTTP/2 failure, …).
    #[error("calling peer endpoint {endpoint}: peer unreachable: {reason}")]
    PeerUnreachable {
        /// The peer endpoint.
        endpoint: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A peer did not answer in time.
    #[error("calling peer endpoint {endpoint}: timed out")]
    PeerTimeout {
        /// The peer endpoint.
        endpoint: &'static str,
    },
    /// A peer refused a call (its gRPC status and message).
    #[error("calling peer endpoint {endpoint}: peer refused the call ({code:?}): {reason}")]
    PeerRefused {
        /// The peer call.
        endpoint: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The peer's message (truncated).
        reason: String,
    },
    /// A peer's answer was malformed or the call could not be made (no TLS certificate).
    #[error("calling peer endpoint {endpoint}: bad peer response: {reason}")]
    BadPeerResponse {
        /// The peer endpoint.
        endpoint: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A call to the registry failed at the transport level (unreachable, timed out).
    #[error("registry {what}: {reason}")]
    Registry {
        /// The registry call (`node list`, `node list stream`, `register`, `heartbeat`,
        /// `leave`).
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The registry refused a gRPC call (its status code and message).
    #[error("registry {what}: registry refused the call ({code:?}): {message}")]
    RegistryRefused {
        /// The registry call.
        what: &'static str,
        /// The gRPC status code (`NotFound`: the registry does not know the node).
        code: tonic::Code,
        /// The registry's error text (truncated).
        message: String,
    },
    /// The registry's node list was refused (bad signature, older epoch, malformed, …).
    #[error("verifying the registry's node list")]
    ListRefused(#[source] umbra_nodelist::NodeListError),
    /// Building a signed registry request failed.
    #[error("building the registry {what} request")]
    RegistryRequest {
        /// The registry call.
        what: &'static str,
        /// What `umbra-nodelist` said.
        #[source]
        source: umbra_nodelist::NodeListError,
    },
    /// A message store operation failed.
    #[error("message store during {what}")]
    Store {
        /// What replication step was running.
        what: &'static str,
        /// What the store said.
        #[source]
        source: umbra_store::StoreError,
    },
    /// A blocking store read could not be run.
    #[error("running a blocking store read during {what}: {reason}")]
    Blocking {
        /// What replication step was running.
        what: &'static str,
        /// What tokio said.
        reason: String,
    },
    /// A wire value was malformed.
    #[error("decoding {what}: {reason}")]
    Wire {
        /// Which value.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl ReplicaError {
    /// Whether the registry refused a heartbeat or leave because it does not know the node
    /// (register again).
    pub fn is_not_registered(&self) -> bool {
        matches!(
            self,
            Self::RegistryRefused {
                code: tonic::Code::NotFound,
                ..
            }
        )
    }
}

impl From<umbra_peer_tls::PeerTlsError> for ReplicaError {
    /// The client side of the peer TLS lives in `umbra-peer-tls`; its errors read as they did
    /// when it lived here.
    fn from(e: umbra_peer_tls::PeerTlsError) -> Self {
        match e {
            umbra_peer_tls::PeerTlsError::Tls { what, reason } => {
                ReplicaError::Tls { what, reason }
            }
            // `PeerTlsError` is non-exhaustive: a future variant keeps its message.
            other => ReplicaError::Tls {
                what: "peer TLS",
                reason: other.to_string(),
            },
        }
    }
}
