//! Errors of the client transport.

use std::path::PathBuf;

use thiserror::Error;

/// Why one HTTP exchange with an edge node or the registry failed (below the onion layer).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LinkError {
    /// No connection could be made (refused, unreachable, TLS failure).
    #[error("could not connect: {0}")]
    Connect(String),
    /// The peer did not answer in time.
    #[error("timed out")]
    Timeout,
    /// The answer was larger than the limit.
    #[error("answer larger than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// Any other transport failure (reset connection, malformed HTTP).
    #[error("transport failure: {0}")]
    Other(String),
}

/// Something the client transport could not do. Each variant says what was being done.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Reading the network file (`network.json`) failed or it is malformed.
    #[error("reading the network file: {0}")]
    NetworkFile(String),
    /// Building the HTTP client failed.
    #[error("building the HTTP client: {0}")]
    HttpClient(String),
    /// Fetching the node list from the registry failed and no earlier list is known.
    #[error("fetching the node list from the registry")]
    FetchingNodeList(#[source] LinkError),
    /// No node list has been obtained yet (the registry could not be reached recently).
    #[error("no verified node list yet; the registry could not be reached")]
    NoNodeList,
    /// The registry answered something that is not a verifiable, newer node list.
    #[error("verifying the registry's node list")]
    VerifyingNodeList(#[source] umbra_nodelist::NodeListError),
    /// The registry answered an HTTP error while fetching the node list.
    #[error("fetching the node list: the registry answered HTTP {status}")]
    RegistryStatus {
        /// The HTTP status.
        status: u16,
    },
    /// There are too few usable nodes to do what was asked.
    #[error("{what}: {have} usable nodes, {need} needed")]
    NotEnoughNodes {
        /// What was being done.
        what: &'static str,
        /// Usable nodes found.
        have: usize,
        /// Nodes needed.
        need: usize,
    },
    /// No path could be built and tested.
    #[error("building an onion path: no candidate path passed its test after {attempts} attempts")]
    NoPath {
        /// Attempts made.
        attempts: usize,
    },
    /// The destination node is not in the verified node list.
    #[error("sending an onion request: the destination node is not in the node list")]
    UnknownDestination,
    /// The account's swarm has no usable node.
    #[error("sending an onion request: the account's swarm has no usable node")]
    EmptySwarm,
    /// The destination and the request do not go together (a storage RPC to a server, or a v4
    /// request to a storage node).
    #[error("sending an onion request: {0}")]
    RequestMismatch(&'static str),
    /// umbra-onion refused to build the request.
    #[error("building the onion request")]
    BuildingRequest(#[from] umbra_onion::BuildError),
    /// The destination's authenticated reply was malformed.
    #[error("opening the onion reply")]
    OpeningReply(#[from] umbra_onion::ReplyError),
    /// The destination itself failed (a sealed error from the destination node), and no other
    /// destination could be tried.
    #[error("the destination failed with HTTP {status}: {body}")]
    DestinationFailed {
        /// Status of the destination's error.
        status: u16,
        /// Body of the destination's error.
        body: String,
    },
    /// Every attempt failed; `last` describes the last failure.
    #[error("sending an onion request: all {attempts} attempts failed; last: {last}")]
    AllAttemptsFailed {
        /// Attempts made.
        attempts: usize,
        /// The last failure.
        last: String,
    },
    /// Reading the persisted guard file failed.
    #[error("reading the guard file {path}: {reason}")]
    LoadingGuards {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Creating the directory of the guard file failed.
    #[error("creating the network state directory {path}")]
    CreatingStateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the guard file failed.
    #[error("writing the guard file {path}")]
    SavingGuards {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
