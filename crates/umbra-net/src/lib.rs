#![doc = include_str!("../README.md")]

pub mod directory;
mod error;
pub mod link;
pub mod paths;
pub mod store;
#[cfg(feature = "test-support")]
pub mod testing;
mod transport;

// The workspace's one clock: the transport, the paths and the messenger's traits take it.
pub use directory::{NetworkConfig, NodeDirectory};
pub use error::{ClientError, LinkError};
pub use link::{Edge, HttpConfig, HttpLink, LinkReply, OnionLink, RegistrySource};
pub use paths::{Failure, Guard, GuardChurn, Path, PathConfig, PathManager};
pub use store::{GuardStore, PersistedState};
pub use transport::{
    BUILD_RETRY_MS, Destination, OnionTransport, PATH_TEST_REQUEST, Request, Response,
    TransportConfig,
};
#[cfg(feature = "test-support")]
pub use umbra_clock::ManualClock;
pub use umbra_clock::{BoxFuture, Clock, SystemClock};
pub use umbra_nodelist::list::NodeEntry;
pub use umbra_onion::{Protocol, Server, StorageReply, V4Request, V4Response};
