//! # umbra-registry
//!
//! The registry (seed node) of an Umbra network: it admits storage nodes, groups them into
//! swarms with Session's formation rules ([`umbra_swarm::formation`]), and publishes the node
//! list, numbered by an epoch and signed with its Ed25519 key. It also answers Session's seed
//! JSON-RPC (`POST /json_rpc`, `shared/spec/storage-rpc.md` §13), so Session software pointed
//! at it finds our nodes. Storage nodes talk to it over gRPC ([`grpc`], on its own listener):
//! register, heartbeat, leave, and a stream that pushes each new signed list the moment it is
//! signed.
//!
//! ```text
//!  storage node ══ gRPC Register, Heartbeat, Leave (signed) ═══════════════▶ ┌──────────────┐
//!  storage node ◀═ gRPC WatchNodeList (each new SignedNodeList, pushed) ════│              │
//!  any tool ─────── POST /v1/register, /v1/heartbeat, /v1/leave (signed) ──▶ │              │
//!                                                                           │   Registry   │ SQLite
//!  node, client ◀── GET /v1/nodelist (SignedNodeList) ─────────────────────│ swarms, epoch│
//!  Session apps ◀── POST /json_rpc get_n_service_nodes ────────────────────└──────────────┘
//!        │
//!        └─ umbra_nodelist's ListVerifier: pinned key(s), signatures, never an older epoch
//! ```
//!
//! ## What lives where
//!
//! The pure part (the signed node list and its
//! [`ListVerifier`](umbra_nodelist::list::ListVerifier), the request/answer types of the API below and what each request signs, and
//! [`chain_height`](umbra_nodelist::chain_height)) is the library crate [`umbra_nodelist`],
//! which nodes and clients use without this service. This crate is the service: [`store`]
//! (SQLite), [`registry`] (the state machine, time passed in), [`server`] (axum routes, clock,
//! inactivity sweep, the channel of signed lists), [`grpc`] (the tonic node API), [`oxend`] (the seed JSON-RPC as a pure function of a list) and the
//! `umbra-registry` binary.
//!
//! ## HTTP API (plain HTTP; JSON bodies; at most 16 KiB per request)
//!
//! Keys are lowercase hex; times are unix milliseconds; every error answer is
//! `{"error": "<one line>", "code": "<stable code>"}` with the status below.
//!
//! | method & path | body | answer |
//! | --- | --- | --- |
//! | `GET /v1/info` | – | [`umbra_nodelist::api::RegistryInfo`]: `registry_pubkey`, `registry_pubkey_x25519`, `epoch`, `list_format_version`, `heartbeat_interval_ms`, `inactive_after_ms`, `max_clock_skew_ms` |
//! | `GET /v1/nodelist` | – | [`umbra_nodelist::list::SignedNodeList`]: `{"list": {"version", "epoch", "issued_at_ms", "nodes": [...]}, "signatures": [{"signer", "signature"}]}` |
//! | `POST /v1/register` | [`umbra_nodelist::api::RegisterRequest`] | [`umbra_nodelist::api::NodeStatus`] |
//! | `POST /v1/heartbeat` | [`umbra_nodelist::api::HeartbeatRequest`] | [`umbra_nodelist::api::NodeStatus`] |
//! | `POST /v1/leave` | [`umbra_nodelist::api::LeaveRequest`] | [`umbra_nodelist::api::NodeStatus`] |
//! | `POST /json_rpc` | oxend JSON-RPC | `{"jsonrpc", "id", "result": {"service_node_states", "height", "epoch", ...}}` (`height`: [`umbra_nodelist::chain_height`]; `epoch`: the list epoch) |
//!
//! Register body (build it with [`umbra_nodelist::api::RegisterRequest::new`]):
//!
//! ```json
//! {"pubkey_ed25519": "<64 hex>", "pubkey_x25519": "<64 hex>",
//!  "public_ip": "127.0.0.1", "storage_port": 22021, "storage_lmq_port": 22022,
//!  "version": [2, 8, 0], "timestamp_ms": 1764130000000,
//!  "x25519_proof": "<64 hex>", "signature": "<128 hex>"}
//! ```
//!
//! Heartbeat and leave bodies (build them with
//! [`umbra_nodelist::api::HeartbeatRequest::new`], [`umbra_nodelist::api::LeaveRequest::new`]):
//! `{"pubkey_ed25519", "timestamp_ms", "signature"}`. The signed bytes are given in
//! [`umbra_nodelist::api`]. Answer to all three:
//! `{"epoch", "swarm_id", "swarm" (hex), "active", "heartbeat_interval_ms"}`.
//!
//! Statuses: `400` malformed body, bad announcement (`0.0.0.0`, zero port) or unusable X25519
//! key; `401` bad signature or X25519 proof; `404` heartbeat/leave from an unknown node
//! (register again); `406` timestamp off by more than `max_clock_skew_ms`; `409` timestamp
//! not newer than the last accepted one from that node; `413` body too large; `500` registry
//! failure.
//!
//! ## gRPC node API (`proto/umbra/registry/v1/registry.proto`, plain HTTP/2)
//!
//! `Register`, `Heartbeat` and `Leave` carry the same signed payloads as the HTTP bodies
//! above (as protobuf, [`umbra_nodelist::proto`]) and answer the same status. Refusals:
//! `INVALID_ARGUMENT` (400 above), `UNAUTHENTICATED` (401), `NOT_FOUND` (404: register again),
//! `FAILED_PRECONDITION` (406), `ALREADY_EXISTS` (409), `OUT_OF_RANGE` (message above the
//! limit), `INTERNAL` (500). `WatchNodeList` sends the current signed list at once and then
//! each newer one as soon as it is signed; a watcher that reads slowly skips to the newest
//! (one `tokio::sync::watch` value, no queue). Nodes verify every list against the pinned
//! key, so the transport needs no authentication of its own (see the node's membership docs).
//!
//! A node's life over gRPC: `Register`, `WatchNodeList` (kept open, reopened with backoff),
//! `Heartbeat` every `heartbeat_interval_ms`, `Leave` on clean shutdown.
//!
//! A node's life over HTTP: `GET /v1/info` (or the pinned key from `network.json`), `POST /v1/register`,
//! then `POST /v1/heartbeat` every `heartbeat_interval_ms`; whenever an answer's `epoch` is
//! newer than the list it holds, `GET /v1/nodelist` and feed it to a
//! [`umbra_nodelist::list::ListVerifier`]. A node silent for `inactive_after_ms` is marked
//! inactive and leaves its swarm; its next heartbeat (or registration) brings it back.
//! Register again after changing address or ports. `POST /v1/leave` on clean shutdown.
//!
//! ## What this crate must never do
//!
//! - Never hold a rule that nodes or clients also need (an encoding, a check, a request
//!   type): it belongs in [`umbra_nodelist`], which must stay free of this service.
//! - Never accept an unsigned, stale, replayed or unproven registration; never publish a list
//!   without bumping the epoch; never serve a list older than one already published.
//! - Never log a node key or IP in clear at info level (they go through
//!   [`umbra_crypto::Redacted`]); never log or print the registry's secret key.
//! - Never read an unbounded body or list, nor queue lists for a watcher: requests are capped
//!   at [`umbra_nodelist::api::MAX_REQUEST_BYTES`] (HTTP and gRPC), stream messages at
//!   [`umbra_nodelist::proto::MAX_LIST_MESSAGE_BYTES`], watchers at [`grpc::MAX_WATCHERS`], lists at
//!   [`umbra_nodelist::list::MAX_LIST_NODES`] nodes and
//!   [`umbra_nodelist::list::MAX_LIST_SIGNATURES`] signatures.

mod error;
pub mod grpc;
pub mod oxend;
pub mod registry;
pub mod server;
pub mod store;

pub use error::RegistryError;
