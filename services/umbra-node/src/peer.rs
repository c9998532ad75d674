//! Serving the node-to-node channel: the gRPC peer API of [`umbra_replica::server`] on the
//! node's peer port (`peer_listen`, announced to the registry as `storage_lmq_port`).
//!
//! HTTP/2 without TLS: every peer message is signed by its sender's node key and every answer
//! by this node's (why, in `umbra-replica`'s README). Per call, before the replica sees it: a
//! source address that is not a node of the current swarm view is subject to this module's own
//! per-IP token bucket (`RESOURCE_EXHAUSTED`, counted as `rate_limited`; nodes are never
//! limited: they carry the whole swarm's replication). Then the replica's own limits: calls at
//! once (`replication.max_peer_inflight`), message sizes, signatures, membership, replays —
//! each refusal counted in its `umbra_replica_refused_*_total` metric.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use umbra_replica::Replica;

use crate::config::RateLimitConfig;
use crate::node::NodeState;
use crate::ratelimit::RateLimiter;

/// The per-IP limit in front of the peer API.
#[derive(Clone)]
struct Gate {
    state: Arc<NodeState>,
    limiter: Arc<RateLimiter>,
}

impl Gate {
    fn check(&self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let ip = match req.remote_addr().map(|a| a.ip()) {
            Some(IpAddr::V4(ip)) => Some(ip),
            Some(IpAddr::V6(ip)) => ip.to_ipv4_mapped(),
            None => None,
        };
        let Some(ip) = ip else {
            self.state.metrics.rejected("not_ipv4");
            return Err(tonic::Status::invalid_argument("IPv4 peers only"));
        };
        if !self.is_node(ip) && !self.limiter.allow(ip, self.state.clock.instant()) {
            self.state.metrics.rejected("rate_limited");
            return Err(tonic::Status::resource_exhausted("Too Many Requests"));
        }
        Ok(req)
    }

    fn is_node(&self, ip: Ipv4Addr) -> bool {
        self.state.onion.is_node_ip(&self.state.swarm, ip)
    }
}

/// Serves `replica`'s peer API on `listener` until `stop`; then waits up to `grace` for open
/// calls.
pub(crate) async fn serve_peer_listener(
    listener: TcpListener,
    state: Arc<NodeState>,
    replica: Replica,
    rate_limit: RateLimitConfig,
    stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let gate = Gate {
        state,
        limiter: Arc::new(RateLimiter::new(rate_limit)),
    };
    let service = InterceptedService::new(replica.grpc_server(), move |r| gate.check(r));
    let router = umbra_replica::server::builder().add_service(service);
    if let Err(e) = umbra_replica::server::run(router, listener, stop, grace).await {
        tracing::warn!("peer listener ended: {}", umbra_report::Report(&e));
    }
}
