//! The library's error type.

use std::path::PathBuf;

/// Everything that can stop a node from starting or running. Each variant says what was being
/// done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration file could not be read.
    #[error("reading the config file {path}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for this node (unknown keys included).
    #[error("parsing the config file {path}: {message}")]
    ParseConfig {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said (names the offending key).
        message: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The data directory could not be created or used.
    #[error("preparing the data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The node key file could not be read or written, or is malformed.
    #[error("loading the node key {path}: {reason}")]
    NodeKey {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The TLS certificate could not be generated, loaded or used.
    #[error("setting up TLS ({what}): {reason}")]
    Tls {
        /// Which step.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The message store could not be opened.
    #[error("opening the message store")]
    Store(#[from] umbra_store::StoreError),
    /// A listening socket could not be bound.
    #[error("binding the {what} listener on {addr}")]
    Bind {
        /// Which listener (`client`, `metrics`).
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client used to reach the registry could not be built.
    #[error("building the registry HTTP client: {0}")]
    HttpClient(String),
}
