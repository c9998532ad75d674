//! # umbra-replica — swarm membership and replication engine of a storage node
//!
//! A storage node keeps each account's messages together with the other members of the swarm
//! the account maps to (`shared/spec/swarms.md`). This crate is everything a node needs to be a
//! good swarm member, and nothing of the client RPC:
//!
//! - **Membership** ([`registry_client`], [`view`]): follows the registry's signed node list
//!   (verified against the pinned registry key, never an older epoch), keeps working with the
//!   last list while the registry is down, and registers and heartbeats the node.
//! - **Peer channel** ([`auth`], [`client`], [`server`]): node-to-node HTTP(S) requests signed
//!   with the sender's Ed25519 key and answers signed by the responder; a node accepts
//!   replicated writes and reconciliation reads only from active members of its own swarm.
//! - **Write fan-out** ([`Replica::replicate`]): the entry node forwards a recursive request to
//!   every other member and collects each member's (signed) result, with a timeout; a member that
//!   is down does not fail the client's write.
//! - **Anti-entropy** ([`Replica::reconcile_round`]): right after start and periodically, each
//!   node compares per-bucket digests with its peers and pulls what it misses (messages,
//!   tombstones, expiry changes) with the store's convergent primitives, so every live member
//!   converges to the same set; tombstones make sure a delete is never resurrected.
//! - **Handover** ([`Replica::handover_round`]): messages (and tombstones) whose account now maps
//!   to another swarm are pushed to that swarm's members and dropped locally only once one of
//!   them acknowledged them durably; a dissolved swarm's members hand everything over this way.
//!
//! ```text
//!   registry ──GET /v1/nodelist (signed)──► RegistryClient ──► ViewHandle (MembershipView, epoch)
//!      ▲  POST /v1/register, /v1/heartbeat         │                     │ who is in which swarm
//!      └──────── run_membership task ──────────────┘                     ▼
//!   umbra-node RPC ── recursive write ──► Replica::replicate ──► PeerClient ──POST /umbra/peer/v1/forward──┐
//!         ▲                                                         (signed request, signed answer)     │
//!         └── ForwardHandler (node applies, signs §7 result) ◄── peer Router (server) ◄─────────────────┘
//!   Replica::run task: reconcile_round (digests → entries → replicas → apply_remote_*)
//!                      handover_round  (foreign buckets → /handover on the owning swarm → drop on ack)
//!                                             │
//!                                             ▼
//!                                     umbra_store::Store (digests, tombstones, convergent apply)
//! ```
//!
//! ## The peer channel (version 1)
//!
//! Every peer request is `POST /umbra/peer/v1/<endpoint>` with a JSON body and the header
//! `x-umbra-peer-auth: v1 <sender ed25519 hex> <timestamp ms> <signature hex>`; every answer
//! carries `x-umbra-peer-auth: v1 <responder ed25519 hex> <signature hex>`. What is signed is in
//! [`auth`]: the request signature covers the recipient's key, the HTTP method, the path, the
//! timestamp and a BLAKE2b-256 hash of the body; the answer's covers the request signature, the
//! status and a hash of the answer body. Peers therefore authenticate each other by these
//! signatures, **not by TLS certificates**: nodes use self-signed certificates that no list
//! pins, so the [`client::PeerClient`] accepts any certificate and TLS only gives
//! confidentiality against passive observers. A request is refused if its key is unknown or not
//! an active member of the receiver's swarm (`handover` accepts any node in the registry's
//! list, since it comes from another swarm), if its timestamp is more than
//! [`ReplicaConfig::max_clock_skew_ms`] away, or if its signature was seen before (bounded
//! replay cache). Endpoints: `forward`, `digests`, `entries`, `replicas` (own swarm only) and
//! `handover` (any listed node). Wire types are in [`wire`].
//!
//! ## Wiring it into a node
//!
//! 1. `let view = ViewHandle::new(MembershipView::empty(our_ed25519));`
//! 2. `RegistryClient::new(registry_url, TrustPolicy::single(registry_key), registry_key,
//!    our_ed25519, view.clone(), timeout)`; spawn [`registry_client::run_membership`] with the
//!    node's identity and [`umbra_registry::api::Announcement`] (IP, ports, version).
//! 3. `Replica::new(ReplicaConfig::default(), identity, store.clone(), view.clone(), clock)`;
//!    [`Replica::set_forward_handler`] with an adapter calling the node's `handle_forwarded`
//!    (hold the node state by `Weak` to avoid a reference cycle).
//! 4. Merge [`Replica::router`] into the router of the listener peers reach (the client HTTPS
//!    listener by default: [`client::PeerPort::Storage`]).
//! 5. On each recursive write, after (or while) applying it locally:
//!    `member_results_json(&replica.replicate(method, &params).await)` is the other members'
//!    part of the reply's `swarm` object.
//! 6. Spawn [`Replica::run`] with the node's stop signal; feed every view change to the node's
//!    own swarm view (`view.subscribe()`); print [`Replica::render_metrics`] on `/metrics`.
//!
//! ## What it must never do
//!
//! - Know the client RPC: forwarded requests are opaque `{method, params}` handed to the node's
//!   [`ForwardHandler`]; only the names of the recursive methods (spec §7) are known here.
//! - Accept a replicated write from a node that is not an active member of its own swarm, a
//!   replica whose hash does not match its owner, namespace and data, or a list older than one
//!   already accepted.
//! - Drop a message for handover before a member of the owning swarm acknowledged it durably,
//!   or delete anything by reconciliation other than what a peer's tombstone says was deleted.
//! - Read a clock directly (time comes from a [`Clock`]), read an unbounded body, or hold an
//!   unbounded queue: every request and answer, page and batch has a limit.
//! - Log an account id, IP or key in clear at info level or above (they go through
//!   [`umbra_crypto::Redacted`]).

pub mod auth;
pub mod client;
mod clock;
mod engine;
mod error;
mod metrics;
pub mod registry_client;
pub mod server;
pub mod view;
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{
    FailureKind, ForwardFuture, ForwardHandler, ForwardReply, HandoverReport, MemberOutcome,
    MemberResult, RECURSIVE_METHODS, Replica, ReplicaConfig, RoundReport, member_results_json,
};
pub use error::ReplicaError;
pub use metrics::{MetricsSnapshot, ReplicaMetrics};
pub use view::{Member, MembershipView, ViewHandle};
