//! # umbra-client — the client library's network layer
//!
//! The only place where Umbra client software touches the network. For now this is the
//! transport: the verified node list, onion paths, and sending requests through them
//! (`shared/spec/onion-requests.md` §7). The messaging library of the client issue builds on
//! [`OnionTransport::send`].
//!
//! ```text
//!  registry ── GET /v1/nodelist ──► NodeDirectory (pinned key, never an older epoch,
//!                                     last good list kept, swarms computed locally)
//!                                           │ active nodes
//!                                           ▼
//!  guards.json ◄── persisted ── PathManager (guards for days, 3-hop paths, /24 diversity,
//!                                            tests, strikes, rotation)
//!                                           │ a tested path
//!                                           ▼
//!  caller ── send(destination, request) ──► umbra-onion builds the layers
//!                                           │
//!                                           ▼ OnionLink::post_onion (the one call site)
//!                                guard /onion_req/v2 ─► relay ─► relay ─► storage node / server
//!                                           │
//!  caller ◄── Response ◄── reply opened ◄───┘  (errors attributed to the hop that sealed them)
//! ```
//!
//! ## How it behaves
//!
//! - **Node list** ([`NodeDirectory`]): fetched from the registry's signed endpoint, checked
//!   with [`umbra_registry::list::ListVerifier`] against the key pinned in the network file;
//!   an older epoch or a different list for the same epoch is refused, and the newest epoch
//!   seen is persisted so that a restart cannot be rolled back either. Refreshed every
//!   [`TransportConfig::list_refresh_ms`] and after a `421`; when the registry cannot be
//!   reached the last good list stays in use. The swarm of an account is computed from the
//!   list ([`NodeDirectory::swarm_of`]); the client never asks a node `get_swarm`, which would
//!   tell it whom we look up.
//! - **Paths** ([`PathManager`]): [`PathConfig::guards`] guards, each with one path of
//!   [`PathConfig::hops`] distinct active nodes; other hops are never guards and, with
//!   [`PathConfig::subnet_diversity`] on, no two nodes of a path (and no two guards) share an
//!   IPv4 /24. Guards are kept for [`PathConfig::guard_lifetime_ms`] and persisted (a small
//!   JSON file, written atomically, in [`TransportConfig::state_dir`], which is created 0700
//!   if missing). A guard file that cannot be written is an error, never a warning: guards
//!   that are not kept mean a new pair of nodes learns the user's address at every start. A
//!   corrupt one is replaced and reported ([`OnionTransport::replaced_guard_file`]); churn is
//!   counted ([`OnionTransport::guard_churn`]). Paths are rotated after
//!   [`PathConfig::rotation_ms`].
//! - **Path tests**: a candidate path is used only after an onion request through it reached
//!   a random node and came back authenticated. The test is [`PATH_TEST_REQUEST`], an `info`
//!   call that names no account: unlike Session desktop (which tests guards with a direct
//!   `get_swarm` for the user's own Session ID), a test tells a node nothing about the user.
//!   A failed test replaces its new guard only when the guard itself failed (unreachable, or
//!   its own sealed error); a middle or exit node's failure strikes that node and the next
//!   candidate goes through the same guard.
//! - **Strikes**: errors are judged by who can prove them. An error sealed under a hop's layer
//!   key (umbra-onion's hop-attributable errors) is that hop's word: about itself ("not
//!   ready") it strikes that hop; about a neighbour ("next node unreachable", "invalid
//!   ciphertext") it strikes the accused, and the accuser as well once it has accused more
//!   than one node (an honest guard next to a dead relay keeps its guard status; a relay that
//!   lies to push us off honest nodes strikes itself out). An answer no hop vouches for
//!   strikes only the path, so a relay cannot steer our choice of nodes by forging errors in
//!   another's name. A guard we cannot connect to is struck with its path. 3 strikes retire a
//!   path (and strike each of its nodes), 3 strikes put a node aside until the next list. A
//!   failed request is retried on another path with exponential backoff.
//! - **Destinations**: a storage node by key, "any node of the swarm that owns this account"
//!   (a member that fails — a sealed error or a 5xx of its own — is struck and replaced by
//!   another; a `421` teaches the client the right swarm and refreshes the list), or an
//!   external server through the path's exit (a server the exit cannot reach is not the
//!   path's fault).
//! - **Maintenance** happens when a send needs it (list due, path missing or due for
//!   rotation) or in the background with [`OnionTransport::maintain_forever`].
//! - **Time and randomness** come in through [`Clock`] and [`umbra_crypto::Random`]; tests
//!   use [`ManualClock`] and a seeded generator, and an in-memory network
//!   (`testing::FakeNetwork`, feature `test-support`) whose nodes peel with umbra-onion.
//!
//! ## What this crate must never do
//!
//! - Send anything to a storage node except through a tested onion path: the only code that
//!   talks to a node is [`OnionLink::post_onion`], always to a path's guard and always to
//!   `/onion_req/v2`, and the only HTTP call site is inside [`HttpLink`]. (The registry, which
//!   is not a storage node, is the one other party contacted, for its public list.)
//! - Put the user's Session ID, or any account, in a path test.
//! - Trust a node list that does not verify against the pinned key, or go back to an older
//!   epoch.
//! - Blame a node on the word of another node.
//! - Log a node key, IP address, account or path at info level or above (they go through
//!   [`umbra_crypto::Redacted`]); log a secret at any level.
//! - Read an unbounded answer: replies are capped at [`umbra_onion::MAX_REPLY_LEN`], node
//!   lists at [`directory::MAX_LIST_BYTES`], the guard and network files at 64 KiB; caches
//!   (swarm corrections) are bounded.

pub mod clock;
pub mod directory;
mod error;
pub mod link;
pub mod messenger;
pub mod paths;
pub mod store;
#[cfg(feature = "test-support")]
pub mod testing;
mod transport;

pub use clock::{BoxFuture, Clock, ManualClock, SystemClock};
pub use directory::{NetworkConfig, NodeDirectory};
pub use error::{ClientError, LinkError};
pub use link::{Edge, HttpConfig, HttpLink, LinkReply, OnionLink, RegistrySource};
pub use paths::{Failure, Guard, GuardChurn, NodeKey, Path, PathConfig, PathManager};
pub use store::{GuardStore, PersistedState};
pub use transport::{
    BUILD_RETRY_MS, Destination, OnionTransport, PATH_TEST_REQUEST, Request, Response,
    TransportConfig,
};
pub use umbra_onion::{Server, StorageReply, V4Request, V4Response};
pub use umbra_registry::list::NodeEntry;
