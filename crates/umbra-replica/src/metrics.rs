//! Replication counters, as plain numbers for the node's metrics endpoint.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters kept by a [`crate::Replica`]. All are monotonic except the `*_last_round` gauges.
#[derive(Debug, Default)]
pub struct ReplicaMetrics {
    pub(crate) rounds: AtomicU64,
    pub(crate) buckets_compared: AtomicU64,
    pub(crate) buckets_differing: AtomicU64,
    pub(crate) messages_pulled: AtomicU64,
    pub(crate) expiries_applied: AtomicU64,
    pub(crate) tombstones_applied: AtomicU64,
    pub(crate) peers_reachable: AtomicU64,
    pub(crate) peers_total: AtomicU64,
    pub(crate) peer_errors: AtomicU64,
    pub(crate) forwards_ok: AtomicU64,
    pub(crate) forwards_failed: AtomicU64,
    pub(crate) handover_messages: AtomicU64,
    pub(crate) handover_tombstones: AtomicU64,
    pub(crate) handover_dropped: AtomicU64,
    pub(crate) handover_failed: AtomicU64,
    pub(crate) requests_served: AtomicU64,
    pub(crate) requests_refused: AtomicU64,
    pub(crate) bad_replicas: AtomicU64,
    pub(crate) refused_unauthenticated: AtomicU64,
    pub(crate) refused_forbidden: AtomicU64,
    pub(crate) refused_malformed: AtomicU64,
    pub(crate) refused_too_large: AtomicU64,
    pub(crate) refused_busy: AtomicU64,
    pub(crate) refused_handshake: AtomicU64,
    pub(crate) round_busy_us: AtomicU64,
    pub(crate) reconcile_asks: AtomicU64,
    pub(crate) reconcile_bytes_sent: AtomicU64,
    pub(crate) reconcile_bytes_received: AtomicU64,
    pub(crate) reconcile_replica_bytes_received: AtomicU64,
}

/// A point-in-time copy of [`ReplicaMetrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Anti-entropy rounds run.
    pub rounds: u64,
    /// Buckets whose digests were compared with a peer.
    pub buckets_compared: u64,
    /// Compared buckets whose digests differed.
    pub buckets_differing: u64,
    /// Messages pulled from peers that changed local state.
    pub messages_pulled: u64,
    /// Expiry changes pulled from peers that changed local state.
    pub expiries_applied: u64,
    /// Tombstones pulled from peers that changed local state.
    pub tombstones_applied: u64,
    /// Peers that answered in the last round (gauge).
    pub peers_reachable: u64,
    /// Peers in the swarm at the last round (gauge).
    pub peers_total: u64,
    /// Failed calls to peers (reconciliation and handover).
    pub peer_errors: u64,
    /// Forwarded writes a member answered.
    pub forwards_ok: u64,
    /// Forwarded writes that failed (timeout, unreachable, bad answer).
    pub forwards_failed: u64,
    /// Messages handed over and acknowledged by another swarm.
    pub handover_messages: u64,
    /// Tombstones handed over and acknowledged by another swarm.
    pub handover_tombstones: u64,
    /// Messages dropped locally after an acknowledged handover.
    pub handover_dropped: u64,
    /// Handover batches no member of the target swarm acknowledged.
    pub handover_failed: u64,
    /// Peer requests served.
    pub requests_served: u64,
    /// Peer requests refused (no node certificate, membership, malformed, too large, busy).
    pub requests_refused: u64,
    /// Replicas received whose hash did not match (dropped).
    pub bad_replicas: u64,
    /// Peer calls refused: the connection has no client certificate of a listed node.
    pub refused_unauthenticated: u64,
    /// Peer calls refused: the sender is not in the node list, or not allowed this call.
    pub refused_forbidden: u64,
    /// Peer calls refused: a message that does not decode or breaks a bound.
    pub refused_malformed: u64,
    /// Peer calls refused: a message above the size limit.
    pub refused_too_large: u64,
    /// Peer calls refused: too many calls at once.
    pub refused_busy: u64,
    /// Connections to the peer port refused at the TLS handshake: a client certificate not of
    /// a listed node, no TLS (plaintext), too slow, or too many handshakes at once.
    pub refused_handshake: u64,
    /// Microseconds spent in anti-entropy rounds (the work, not the wait between rounds).
    pub round_busy_us: u64,
    /// Requests this node sent on its anti-entropy streams (each answered by one response).
    pub reconcile_asks: u64,
    /// Bytes of the gRPC messages this node sent on its anti-entropy streams: each request's
    /// protobuf encoding plus the 5-byte gRPC length prefix (no HTTP/2 or TLS framing).
    pub reconcile_bytes_sent: u64,
    /// Bytes of the gRPC messages this node received on its anti-entropy streams, counted as
    /// [`MetricsSnapshot::reconcile_bytes_sent`].
    pub reconcile_bytes_received: u64,
    /// Of [`MetricsSnapshot::reconcile_bytes_received`], the answers carrying whole messages
    /// (the rest are digest pages and bucket entries).
    pub reconcile_replica_bytes_received: u64,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

pub(crate) fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn set(a: &AtomicU64, n: u64) {
    a.store(n, Ordering::Relaxed);
}

impl ReplicaMetrics {
    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            rounds: get(&self.rounds),
            buckets_compared: get(&self.buckets_compared),
            buckets_differing: get(&self.buckets_differing),
            messages_pulled: get(&self.messages_pulled),
            expiries_applied: get(&self.expiries_applied),
            tombstones_applied: get(&self.tombstones_applied),
            peers_reachable: get(&self.peers_reachable),
            peers_total: get(&self.peers_total),
            peer_errors: get(&self.peer_errors),
            forwards_ok: get(&self.forwards_ok),
            forwards_failed: get(&self.forwards_failed),
            handover_messages: get(&self.handover_messages),
            handover_tombstones: get(&self.handover_tombstones),
            handover_dropped: get(&self.handover_dropped),
            handover_failed: get(&self.handover_failed),
            requests_served: get(&self.requests_served),
            requests_refused: get(&self.requests_refused),
            bad_replicas: get(&self.bad_replicas),
            refused_unauthenticated: get(&self.refused_unauthenticated),
            refused_forbidden: get(&self.refused_forbidden),
            refused_malformed: get(&self.refused_malformed),
            refused_too_large: get(&self.refused_too_large),
            refused_busy: get(&self.refused_busy),
            refused_handshake: get(&self.refused_handshake),
            round_busy_us: get(&self.round_busy_us),
            reconcile_asks: get(&self.reconcile_asks),
            reconcile_bytes_sent: get(&self.reconcile_bytes_sent),
            reconcile_bytes_received: get(&self.reconcile_bytes_received),
            reconcile_replica_bytes_received: get(&self.reconcile_replica_bytes_received),
        }
    }
}

impl MetricsSnapshot {
    /// `(name, help, kind, value)` for every metric, names prefixed `umbra_replica_`.
    pub fn entries(&self) -> [(&'static str, &'static str, &'static str, u64); 29] {
        [
            (
                "umbra_replica_rounds_total",
                "Anti-entropy rounds run",
                "counter",
                self.rounds,
            ),
            (
                "umbra_replica_buckets_compared_total",
                "Bucket digests compared with peers",
                "counter",
                self.buckets_compared,
            ),
            (
                "umbra_replica_buckets_differing_total",
                "Compared buckets whose digests differed",
                "counter",
                self.buckets_differing,
            ),
            (
                "umbra_replica_messages_pulled_total",
                "Messages pulled from peers",
                "counter",
                self.messages_pulled,
            ),
            (
                "umbra_replica_expiries_applied_total",
                "Expiry changes pulled from peers",
                "counter",
                self.expiries_applied,
            ),
            (
                "umbra_replica_tombstones_applied_total",
                "Tombstones pulled from peers",
                "counter",
                self.tombstones_applied,
            ),
            (
                "umbra_replica_peers_reachable",
                "Swarm peers that answered in the last round",
                "gauge",
                self.peers_reachable,
            ),
            (
                "umbra_replica_peers",
                "Swarm peers at the last round",
                "gauge",
                self.peers_total,
            ),
            (
                "umbra_replica_peer_errors_total",
                "Failed calls to peers",
                "counter",
                self.peer_errors,
            ),
            (
                "umbra_replica_forwards_ok_total",
                "Forwarded writes answered by a member",
                "counter",
                self.forwards_ok,
            ),
            (
                "umbra_replica_forwards_failed_total",
                "Forwarded writes that failed",
                "counter",
                self.forwards_failed,
            ),
            (
                "umbra_replica_handover_messages_total",
                "Messages handed over to another swarm",
                "counter",
                self.handover_messages,
            ),
            (
                "umbra_replica_handover_tombstones_total",
                "Tombstones handed over to another swarm",
                "counter",
                self.handover_tombstones,
            ),
            (
                "umbra_replica_handover_dropped_total",
                "Messages dropped locally after handover",
                "counter",
                self.handover_dropped,
            ),
            (
                "umbra_replica_handover_failed_total",
                "Handover batches nobody acknowledged",
                "counter",
                self.handover_failed,
            ),
            (
                "umbra_replica_requests_served_total",
                "Peer requests served",
                "counter",
                self.requests_served,
            ),
            (
                "umbra_replica_requests_refused_total",
                "Peer requests refused",
                "counter",
                self.requests_refused,
            ),
            (
                "umbra_replica_bad_replicas_total",
                "Received replicas with a wrong hash",
                "counter",
                self.bad_replicas,
            ),
            (
                "umbra_replica_refused_unauthenticated_total",
                "Peer calls refused: no client certificate of a listed node",
                "counter",
                self.refused_unauthenticated,
            ),
            (
                "umbra_replica_refused_forbidden_total",
                "Peer calls refused: sender not in the node list or not allowed the call",
                "counter",
                self.refused_forbidden,
            ),
            (
                "umbra_replica_refused_malformed_total",
                "Peer calls refused for a malformed or out-of-bounds message",
                "counter",
                self.refused_malformed,
            ),
            (
                "umbra_replica_refused_too_large_total",
                "Peer calls refused for a message above the size limit",
                "counter",
                self.refused_too_large,
            ),
            (
                "umbra_replica_refused_busy_total",
                "Peer calls refused because too many were open",
                "counter",
                self.refused_busy,
            ),
            (
                "umbra_replica_refused_handshake_total",
                "Peer port connections refused at the TLS handshake (unlisted key, plaintext, slow, too many)",
                "counter",
                self.refused_handshake,
            ),
            (
                "umbra_replica_round_busy_microseconds_total",
                "Time spent in anti-entropy rounds",
                "counter",
                self.round_busy_us,
            ),
            (
                "umbra_replica_reconcile_asks_total",
                "Requests sent on anti-entropy streams",
                "counter",
                self.reconcile_asks,
            ),
            (
                "umbra_replica_reconcile_sent_bytes_total",
                "gRPC message bytes sent on anti-entropy streams (protobuf plus 5-byte prefix)",
                "counter",
                self.reconcile_bytes_sent,
            ),
            (
                "umbra_replica_reconcile_received_bytes_total",
                "gRPC message bytes received on anti-entropy streams (protobuf plus 5-byte prefix)",
                "counter",
                self.reconcile_bytes_received,
            ),
            (
                "umbra_replica_reconcile_replica_received_bytes_total",
                "Of the anti-entropy bytes received, the answers carrying whole messages",
                "counter",
                self.reconcile_replica_bytes_received,
            ),
        ]
    }

    /// Appends the Prometheus text form to `out`.
    pub fn render_prometheus(&self, out: &mut String) {
        for (name, help, kind, value) in self.entries() {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}
