//! The node-to-node client: gRPC (`proto/umbra/peer/v2/peer.proto`) to each peer's
//! `storage_lmq_port`.
//!
//! Over TLS ([`crate::tls`]), which is the whole of the channel's authentication: the client
//! presents this node's certificate (its node key) and accepts only a server whose certificate
//! is the dialed node's key from the list, so every answer on the connection comes from that
//! node. One connection per peer address and key, reused by every call (HTTP/2 multiplexes
//! them), so the handshake is paid once per peer; keep-alive pings notice a peer that
//! vanished. Every unary call has a deadline (sent to the peer as `grpc-timeout` and enforced
//! here); every stream message must arrive within the call's timeout. Answers larger than
//! [`MAX_RESPONSE_BYTES`] are refused while decoding.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use umbra_crypto::{Ed25519PublicKey, Identity};
use umbra_nodelist::list::NodeEntry;
use umbra_proto::umbra::peer::v2 as pb;
use umbra_proto::umbra::peer::v2::peer_client::PeerClient as Grpc;

use crate::ReplicaError;
use crate::tls::NodeCertificate;
use crate::wire::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Rpc};

/// Interval of the HTTP/2 keep-alive pings on peer connections, and how long an answer may
/// take.
pub const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(20), Duration::from_secs(10));
/// Most peer connections kept; beyond it the cache is emptied (connections are re-made).
const MAX_CHANNELS: usize = 4096;

/// A connection-reusing client of the peer API, authenticated by its TLS client certificate.
/// Cheap to clone.
#[derive(Clone)]
pub struct PeerClient {
    timeout: Duration,
    /// The TLS client certificate (`None` if it could not be made: every call then fails).
    cert: Option<NodeCertificate>,
    channels: Arc<Mutex<HashMap<(SocketAddrV4, Ed25519PublicKey), Channel>>>,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where a node's peer API listens: its `storage_lmq_port`.
pub fn peer_address(m: &NodeEntry) -> SocketAddrV4 {
    SocketAddrV4::new(m.public_ip, m.storage_lmq_port)
}

fn bad(rpc: Rpc, reason: impl Into<String>) -> ReplicaError {
    ReplicaError::BadPeerResponse {
        endpoint: rpc.name(),
        reason: reason.into(),
    }
}

/// The error of a failed call: transport failures, timeouts and the peer's refusals apart.
pub(crate) fn status_error(rpc: Rpc, s: &tonic::Status) -> ReplicaError {
    use std::error::Error as _;
    let endpoint = rpc.name();
    match s.code() {
        tonic::Code::DeadlineExceeded => ReplicaError::PeerTimeout { endpoint },
        // Raised here, not by the peer: the connection failed (the text names the address), or
        // the TLS handshake did (e.g. the peer refused this node's certificate, which in TLS 1.3
        // shows only once the connection is used).
        _ if s.source().is_some() => ReplicaError::PeerUnreachable {
            endpoint,
            reason: "connection failed".into(),
        },
        tonic::Code::Cancelled => ReplicaError::PeerTimeout { endpoint },
        code => ReplicaError::PeerRefused {
            endpoint,
            code,
            reason: truncate_reason(s.message()),
        },
    }
}

impl PeerClient {
    /// A client presenting `identity`'s node certificate; each call (each stream message)
    /// gives up after `timeout`.
    pub fn new(identity: &Identity, timeout: Duration) -> Self {
        let cert = NodeCertificate::new(identity)
            .inspect_err(|e| tracing::warn!("no peer TLS certificate: {e}"))
            .ok();
        PeerClient {
            cert,
            timeout,
            channels: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn grpc(&self, peer: &NodeEntry, rpc: Rpc) -> Result<Grpc<Channel>, ReplicaError> {
        let addr = peer_address(peer);
        let key = (addr, peer.pubkey_ed25519);
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let channel = match channels.get(&key) {
            Some(c) => c.clone(),
            None => {
                let cert = self
                    .cert
                    .as_ref()
                    .ok_or_else(|| bad(rpc, "no TLS certificate of this node"))?;
                let timeout = self.timeout;
                let c = crate::tls::channel(Some(cert), peer.pubkey_ed25519, addr.into(), |e| {
                    e.connect_timeout(timeout)
                        .http2_keep_alive_interval(KEEPALIVE.0)
                        .keep_alive_timeout(KEEPALIVE.1)
                        .keep_alive_while_idle(true)
                })
                .map_err(|e| bad(rpc, e.to_string()))?;
                if channels.len() >= MAX_CHANNELS {
                    channels.clear();
                }
                channels.insert(key, c.clone());
                c
            }
        };
        Ok(Grpc::new(channel)
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
            .max_encoding_message_size(MAX_REQUEST_BYTES))
    }

    /// Waits for a call's answer (or the opening of its answer stream) within the timeout.
    async fn within<T>(
        &self,
        rpc: Rpc,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ReplicaError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ReplicaError::PeerTimeout {
                endpoint: rpc.name(),
            })?
            .map(tonic::Response::into_inner)
            .map_err(|s| status_error(rpc, &s))
    }

    /// Sends a forwarded write to `peer` and returns its answer.
    ///
    /// # Errors
    /// [`ReplicaError::PeerTimeout`], [`ReplicaError::PeerUnreachable`] (including a server
    /// that is not `peer`'s key, refused at the handshake), [`ReplicaError::PeerRefused`],
    /// [`ReplicaError::BadPeerResponse`] (malformed).
    pub async fn forward(
        &self,
        peer: &NodeEntry,
        req: &pb::ForwardRequest,
    ) -> Result<pb::ForwardResponse, ReplicaError> {
        let rpc = Rpc::Forward;
        let mut grpc = self.grpc(peer, rpc)?;
        let mut request = tonic::Request::new(req.clone());
        // The deadline travels to the peer too (`grpc-timeout`).
        request.set_timeout(self.timeout);
        self.within(rpc, grpc.forward(request)).await
    }

    /// Opens an anti-entropy stream to `peer` with `first` as its first request and returns
    /// the call with the answer to it.
    ///
    /// # Errors
    /// As [`PeerClient::forward`].
    pub async fn reconcile(
        &self,
        peer: &NodeEntry,
        first: &pb::ReconcileRequest,
    ) -> Result<(ReconcileCall, pb::ReconcileResponse), ReplicaError> {
        let rpc = Rpc::Reconcile;
        let mut grpc = self.grpc(peer, rpc)?;
        // Lockstep: one request in flight, so one slot is enough.
        let (tx, rx) = mpsc::channel(1);
        tx.send(first.clone())
            .await
            .map_err(|_| bad(rpc, "request stream closed"))?;
        let inbound = self
            .within(rpc, grpc.reconcile(ReceiverStream::new(rx)))
            .await?;
        let mut call = ReconcileCall {
            answers: self.answers(inbound),
            sent: 1,
            tx,
        };
        let answer = call.receive().await?;
        Ok((call, answer))
    }

    /// Asks `peer` for the range this node's swarm must take from it; the batches arrive on
    /// the returned call.
    ///
    /// # Errors
    /// As [`PeerClient::forward`].
    pub async fn handover(
        &self,
        peer: &NodeEntry,
        req: &pb::HandoverRequest,
    ) -> Result<HandoverCall, ReplicaError> {
        let rpc = Rpc::Handover;
        let mut grpc = self.grpc(peer, rpc)?;
        let inbound = self.within(rpc, grpc.handover(req.clone())).await?;
        Ok(HandoverCall {
            answers: self.answers(inbound),
        })
    }

    /// The answer side of a stream call just opened.
    fn answers<T>(&self, inbound: tonic::Streaming<T>) -> Answers<T> {
        Answers {
            timeout: self.timeout,
            received: 0,
            inbound,
        }
    }
}

/// The answers of one open stream call, in order, each within the call's timeout.
struct Answers<T> {
    timeout: Duration,
    received: u64,
    inbound: tonic::Streaming<T>,
}

impl<T> Answers<T> {
    /// The next answer, `None` when the peer ended the stream.
    async fn next(&mut self, rpc: Rpc) -> Result<Option<T>, ReplicaError> {
        let answer = tokio::time::timeout(self.timeout, self.inbound.message())
            .await
            .map_err(|_| ReplicaError::PeerTimeout {
                endpoint: rpc.name(),
            })?
            .map_err(|s| status_error(rpc, &s))?;
        self.received += u64::from(answer.is_some());
        Ok(answer)
    }
}

/// An open anti-entropy stream: one request, one answer, in order.
pub struct ReconcileCall {
    answers: Answers<pb::ReconcileResponse>,
    sent: u64,
    tx: mpsc::Sender<pb::ReconcileRequest>,
}

impl std::fmt::Debug for ReconcileCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconcileCall")
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl ReconcileCall {
    /// Sends the next request and waits for its answer.
    ///
    /// # Errors
    /// As [`PeerClient::forward`].
    pub async fn ask(
        &mut self,
        req: &pb::ReconcileRequest,
    ) -> Result<pb::ReconcileResponse, ReplicaError> {
        let rpc = Rpc::Reconcile;
        tokio::time::timeout(self.answers.timeout, self.tx.send(req.clone()))
            .await
            .map_err(|_| ReplicaError::PeerTimeout {
                endpoint: rpc.name(),
            })?
            .map_err(|_| bad(rpc, "the peer closed the stream"))?;
        self.sent += 1;
        self.receive().await
    }

    async fn receive(&mut self) -> Result<pb::ReconcileResponse, ReplicaError> {
        let rpc = Rpc::Reconcile;
        self.answers
            .next(rpc)
            .await?
            .ok_or_else(|| bad(rpc, "the peer ended the stream early"))
    }
}

/// An open handover stream.
pub struct HandoverCall {
    answers: Answers<pb::HandoverBatch>,
}

impl std::fmt::Debug for HandoverCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandoverCall")
            .field("received", &self.answers.received)
            .finish_non_exhaustive()
    }
}

impl HandoverCall {
    /// The next batch, `None` at the end of the range.
    ///
    /// # Errors
    /// As [`PeerClient::forward`].
    pub async fn next(&mut self) -> Result<Option<pb::HandoverBatch>, ReplicaError> {
        self.answers.next(Rpc::Handover).await
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

pub(crate) fn truncate_reason(s: &str) -> String {
    truncate(s, 200)
}
