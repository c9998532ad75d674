//! The seam between request handling and swarm replication (`storage-rpc.md` §7,
//! `swarms.md` §4).
//!
//! For a recursive method (`store`, `delete`, `delete_all`, `delete_before`, `expire`,
//! `expire_all`, `revoke_subaccount`, `unrevoke_subaccount`) the entry node applies the request
//! locally and, at the same time, hands the client's original `params` to the [`Replicator`],
//! which forwards them to every other member of the swarm and returns each member's result
//! (keyed by the member's Ed25519 key in hex). The entry node's own result is added by the
//! caller; the combined map is the reply's `swarm` object.
//!
//! A member receiving a forwarded request runs [`crate::handle_forwarded`], which applies it
//! without forwarding again and answers with its own signed result only.
//!
//! [`SingleNode`] is the implementation for a swarm of one: nothing to forward.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use umbra_crypto::AccountId;

use serde_json::Value;

/// A recursive request to forward to the rest of the swarm.
#[derive(Debug, Clone)]
pub struct RecursiveRequest {
    /// The method name (`store`, `delete`, …).
    pub method: &'static str,
    /// The client's `params`, unchanged (each member re-validates them with its own clock).
    pub params: Value,
    /// The account the request is for (33 bytes with prefix).
    pub owner: AccountId,
}

/// Each member's result: Ed25519 key hex → the member's JSON result, or a failure entry such
/// as `{"failed": true, "timeout": true}`.
pub type MemberResults = BTreeMap<String, Value>;

/// A boxed future returned by [`Replicator::replicate`].
pub type ReplicateFuture<'a> = Pin<Box<dyn Future<Output = MemberResults> + Send + 'a>>;

/// Forwards recursive requests to the other members of this node's swarm.
pub trait Replicator: Send + Sync + 'static {
    /// Forwards `req` to every other member and resolves to their results (never including
    /// this node). Must resolve in bounded time (the reference waits 5 s per member and
    /// reports `{"failed": true, "timeout": true}` for the late ones).
    fn replicate(&self, req: RecursiveRequest) -> ReplicateFuture<'_>;

    /// Appends Prometheus text for replication metrics (lag, reconciliation counts, peers
    /// reachable) to `out`. The default writes nothing.
    fn render_metrics(&self, out: &mut String) {
        let _ = out;
    }
}

/// The replicator of a swarm of one node: there is nobody to forward to.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleNode;

impl Replicator for SingleNode {
    fn replicate(&self, _req: RecursiveRequest) -> ReplicateFuture<'_> {
        Box::pin(async { MemberResults::new() })
    }
}
