//! # umbra-node — the storage node daemon's core
//!
//! A storage node keeps each account's encrypted messages for their TTL and serves them back
//! only to their owner, speaking Session's storage RPC (`shared/spec/storage-rpc.md`) over HTTPS.
//! This crate is the async shell around the pure pieces: it loads the node's identity and
//! configuration, terminates TLS, parses and authenticates requests, and calls
//! [`umbra_store`] (RocksDB) to keep the messages.
//!
//! ```text
//!  client ──HTTPS──► http::client server ── rate limit, body limit, IPv4, 404/410 ──┐
//!                                                                                   ▼
//!  /onion_req/v2 ── onion::handle_onion (peel; relay/exit) ─────────► rpc::handle_rpc(state, now_ms, body)
//!                                                                      │ parse (exact 400 texts)
//!                                                                      │ 421 wrong swarm (SwarmView)
//!                                                                      │ time windows, signatures, subaccounts
//!                                                                      ▼
//!                                                  umbra_store::Store (group commit, durable)
//!                                                                      │ recursive methods:
//!                                                                      ▼
//!                                             Replicator: SingleNode, or membership::ReplicaReplicator
//!                                                     │ umbra_replica::Replica::replicate
//!  peers ──gRPC umbra.peer.v2 (peer port)──► peer (per-IP gate) ─► Replica PeerService ─► handle_forwarded
//!  registry ◄── register/heartbeat/nodelist ── membership task ─► SwarmView, list epoch
//!  anti-entropy + handover rounds (Replica::run)
//!  operator ──HTTP──► /metrics (Prometheus text)     sweep task: expired messages every 10 s
//! ```
//!
//! Module map: [`config`] (TOML + flags), [`identity`] (node keys, TLS certificate),
//! [`swarm`] (who is in which swarm), [`rpc`] (the request handler, transport-free),
//! [`replicate`] (the seam for swarm replication), [`membership`] (registry list, registration,
//! heartbeats and the `umbra-replica` engine wired in), [`peer`] (the node-to-node channel's
//! listeners), [`onion`] (`/onion_req/v2`: relay,
//! destination and exit of onion requests), [`oxend`] (the registry proxy behind
//! `oxend_request`), [`ratelimit`], [`metrics`], [`http`] (HTTPS and operator listeners),
//! [`node`] (start/stop of a whole node), and `testing` (behind the `test-support` feature:
//! an in-process node on port 0 with a temporary data dir, for this and other crates' tests).
//!
//! ## What it must never do
//!
//! - Acknowledge a store before [`umbra_store`] reports it durable.
//! - Panic or stall on any request bytes: every parser is bounded and returns the spec's 4xx.
//! - Log a Session ID, an IP address or a key in clear at info level or above (they go through
//!   [`umbra_crypto::Redacted`]); log a secret at any level.
//! - Keep secret key material in memory that is not zeroized on drop.

pub mod config;
mod error;
pub mod http;
pub mod identity;
pub mod longpoll;
pub mod membership;
pub mod metrics;
pub mod node;
pub mod onion;
pub mod oxend;
pub mod peer;
pub mod ratelimit;
pub mod replicate;
pub mod rpc;
pub mod swarm;
#[cfg(feature = "test-support")]
pub mod testing;

pub use config::Config;
pub use error::NodeError;
pub use node::{NodeBuilder, NodeState, RunningNode};
pub use rpc::{RpcBody, RpcResponse, handle_forwarded, handle_method, handle_rpc};
pub use swarm::SwarmHandle;

/// The storage-server version this node reports (`info`, `ifelse` `v_*` conditions).
pub const STORAGE_SERVER_VERSION: [u16; 3] = [2, 8, 0];

/// The hard fork this node reports in `hf` (`[major, minor]`).
pub const HARDFORK: [u16; 2] = [19, 3];

/// Milliseconds since the Unix epoch by the system clock, in the signed form the storage RPC
/// takes, for tools that drive a node without a [`NodeState`] (benchmarks, test harnesses).
/// A running node reads [`NodeState::clock`]; everything below the HTTP layer takes `now_ms`
/// as an argument.
pub fn system_now_ms() -> i64 {
    use umbra_clock::Clock as _;
    umbra_clock::SystemClock.now_ms_i64()
}
