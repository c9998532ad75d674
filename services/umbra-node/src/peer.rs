//! Serving the node-to-node channel: the gRPC peer API of [`umbra_replica::server`] on the
//! node's peer port (`peer_listen`, announced to the registry as `storage_lmq_port`).
//!
//! TLS 1.3 with the node keys of the signed list ([`umbra_replica::tls`]): this node presents a
//! self-signed certificate of its Ed25519 node key; a client certificate, if presented, must be
//! a listed node's (else the handshake fails), and the peer service serves only connections
//! that presented one, taking that certificate's key as the caller of every call on the
//! connection (messages carry no signature; why that suffices, in `umbra-replica`'s README).
//! Handshakes are bounded in number and time. Per call, before the replica sees it: a
//! source address that is not a node of the current swarm view is subject to this module's own
//! per-IP token bucket (`RESOURCE_EXHAUSTED`, counted as `rate_limited`; nodes are never
//! limited: they carry the whole swarm's replication). Then the replica's own limits: calls at
//! once (`replication.max_peer_inflight`), message sizes, membership in the current list —
//! each refusal counted in its `umbra_replica_refused_*_total` metric.
//!
//! Beside it, `grpc.health.v1` (tonic-health, not behind the gate: a health check is cheap and
//! says nothing about accounts; over TLS too, but without a client certificate, so an operator
//! or the devnet can probe it knowing only the node's key): `""` and [`PEER_SERVICE`] are SERVING while the node knows its
//! swarm by a verified node list, NOT_SERVING before that and from the moment it stops.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use umbra_nodelist::view::SwarmView;
use umbra_replica::Replica;
use umbra_replica::tls::PeerConnectInfo;

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
        let remote = PeerConnectInfo::of(&req).and_then(|i| i.remote_addr);
        let ip = match remote.map(|a| a.ip()) {
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
    let (reporter, health) = tonic_health::server::health_reporter();
    let health_task = tokio::spawn(report_health(
        reporter,
        replica.view().subscribe(),
        stop.clone(),
    ));
    let incoming = match replica.tls_incoming(listener) {
        Ok(i) => i,
        Err(e) => {
            tracing::error!("peer listener not started: {}", umbra_report::Report(&e));
            health_task.abort();
            return;
        }
    };
    let service = InterceptedService::new(replica.grpc_server(), move |r| gate.check(r));
    let router = umbra_replica::server::builder()
        .add_service(health)
        .add_service(service);
    if let Err(e) = umbra_replica::server::run(router, incoming, stop, grace).await {
        tracing::warn!("peer listener ended: {}", umbra_report::Report(&e));
    }
    health_task.abort();
}

/// The peer service's name in `grpc.health.v1` (its protobuf full name).
pub const PEER_SERVICE: &str = "umbra.peer.v2.Peer";

/// Keeps the health statuses in step with the swarm view until `stop`; then NOT_SERVING, and
/// the statuses are forgotten so that health watchers' streams end instead of holding the
/// shutdown for its grace period.
async fn report_health(
    mut reporter: HealthReporter,
    mut view: watch::Receiver<Arc<SwarmView>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stopping = *stop.borrow();
        let status = if !stopping && view.borrow().knows_its_swarm() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in ["", PEER_SERVICE] {
            reporter.set_service_status(name, status).await;
        }
        if stopping {
            for name in ["", PEER_SERVICE] {
                reporter.clear_service_status(name).await;
            }
            return;
        }
        // Either sender gone means the node is going away with this task.
        tokio::select! {
            changed = view.changed() => if changed.is_err() { return },
            changed = stop.changed() => if changed.is_err() { return },
        }
    }
}
