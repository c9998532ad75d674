//! The node-to-node client: gRPC (`proto/umbra/peer/v1/peer.proto`) to each peer's
//! `storage_lmq_port`, every message signed and every answer verified against the key the
//! node list gives for the peer ([`crate::auth`]).
//!
//! Over TLS ([`crate::tls`]): the client presents this node's certificate (its node key) and
//! accepts only a server whose certificate is the dialed node's key from the list. One
//! connection per peer address and key, reused by every call (HTTP/2 multiplexes them), so the
//! handshake is paid once per peer; keep-alive pings notice a peer that vanished. Every unary call has a deadline (sent to the
//! peer as `grpc-timeout` and enforced here); every stream message must arrive within the
//! call's timeout. Answers larger than [`MAX_RESPONSE_BYTES`] are refused while decoding.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use umbra_clock::Clock;
use umbra_crypto::{Ed25519PublicKey, Identity, Signature};
use umbra_nodelist::list::NodeEntry;
use umbra_proto::umbra::peer::v1 as pb;
use umbra_proto::umbra::peer::v1::peer_client::PeerClient as Grpc;

use crate::ReplicaError;
use crate::auth::{self, Direction, Position, Rpc};
use crate::tls::NodeCertificate;
use crate::wire::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};

/// Interval of the HTTP/2 keep-alive pings on peer connections, and how long an answer may
/// take.
pub const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(20), Duration::from_secs(10));
/// Most peer connections kept; beyond it the cache is emptied (connections are re-made).
const MAX_CHANNELS: usize = 4096;

/// A signed, connection-reusing client of the peer API. Cheap to clone.
#[derive(Clone)]
pub struct PeerClient {
    identity: Arc<Identity>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    /// The TLS client certificate (`None` if it could not be made: every call then fails).
    cert: Option<NodeCertificate>,
    channels: Arc<Mutex<HashMap<(SocketAddrV4, Ed25519PublicKey), Channel>>>,
    /// The last call timestamp used: each call gets a later one, so that two identical calls
    /// opened within one millisecond are not signed alike (the receiver would refuse the second
    /// as a replay).
    last_ts: Arc<AtomicI64>,
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
    /// A client signing with `identity`; each call (each stream message) gives up after
    /// `timeout`.
    pub fn new(identity: Arc<Identity>, clock: Arc<dyn Clock>, timeout: Duration) -> Self {
        let cert = NodeCertificate::new(&identity)
            .inspect_err(|e| tracing::warn!("no peer TLS certificate: {e}"))
            .ok();
        PeerClient {
            cert,
            identity,
            clock,
            timeout,
            channels: Arc::new(Mutex::new(HashMap::new())),
            last_ts: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The clock's time, or one millisecond after the previous call's if that is not later.
    fn next_timestamp(&self) -> i64 {
        let now = self.clock.now_ms_i64();
        let prev = self
            .last_ts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                Some(now.max(p.saturating_add(1)))
            })
            .unwrap_or_else(|p| p);
        now.max(prev.saturating_add(1))
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

    /// The opening message of a call to `peer`: the client, the signed message, the call's id
    /// (its signature) and timestamp.
    fn open_call(
        &self,
        peer: &NodeEntry,
        rpc: Rpc,
        payload: Vec<u8>,
    ) -> Result<(Grpc<Channel>, pb::Signed, Signature, i64), ReplicaError> {
        let grpc = self.grpc(peer, rpc)?;
        let at = Position {
            rpc,
            direction: Direction::Request,
            call: None,
            seq: 0,
            timestamp_ms: self.next_timestamp(),
        };
        let signed = auth::seal(&self.identity, &peer.pubkey_ed25519, &at, payload);
        let call = Signature::from_slice(&signed.signature).map_err(|_| bad(rpc, "signing"))?;
        Ok((grpc, signed, call, at.timestamp_ms))
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

    /// Sends a forwarded write to `peer` and returns its verified answer.
    ///
    /// # Errors
    /// [`ReplicaError::PeerTimeout`], [`ReplicaError::PeerUnreachable`],
    /// [`ReplicaError::PeerRefused`], [`ReplicaError::BadPeerResponse`] (unsigned, wrongly
    /// signed, malformed).
    pub async fn forward(
        &self,
        peer: &NodeEntry,
        req: &pb::ForwardRequest,
    ) -> Result<pb::ForwardResponse, ReplicaError> {
        let rpc = Rpc::Forward;
        let (mut grpc, signed, call, ts) = self.open_call(peer, rpc, req.encode_to_vec())?;
        let mut request = tonic::Request::new(signed);
        // The deadline travels to the peer too (`grpc-timeout`).
        request.set_timeout(self.timeout);
        let answer = self.within(rpc, grpc.forward(request)).await?;
        let payload = self.verify_answer(peer, rpc, &call, ts, 0, &answer)?;
        pb::ForwardResponse::decode(payload).map_err(|_| bad(rpc, "malformed answer"))
    }

    fn verify_answer<'a>(
        &self,
        peer: &NodeEntry,
        rpc: Rpc,
        call: &Signature,
        timestamp_ms: i64,
        seq: u64,
        answer: &'a pb::Signed,
    ) -> Result<&'a [u8], ReplicaError> {
        let at = Position {
            rpc,
            direction: Direction::Answer,
            call: Some(call),
            seq,
            timestamp_ms,
        };
        auth::open(
            answer,
            Some(&peer.pubkey_ed25519),
            &self.identity.ed25519_public(),
            &at,
        )
        .map_err(|e| bad(rpc, e.to_string()))?;
        Ok(&answer.payload)
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
        let (mut grpc, signed, call, timestamp_ms) =
            self.open_call(peer, rpc, first.encode_to_vec())?;
        // Lockstep: one request in flight, so one slot is enough.
        let (tx, rx) = mpsc::channel(1);
        tx.send(signed)
            .await
            .map_err(|_| bad(rpc, "request stream closed"))?;
        let inbound = self
            .within(rpc, grpc.reconcile(ReceiverStream::new(rx)))
            .await?;
        let mut call = ReconcileCall {
            answers: self.answers(peer, call, timestamp_ms, inbound),
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
        let (mut grpc, signed, call, timestamp_ms) =
            self.open_call(peer, rpc, req.encode_to_vec())?;
        let inbound = self.within(rpc, grpc.handover(signed)).await?;
        Ok(HandoverCall {
            answers: self.answers(peer, call, timestamp_ms, inbound),
        })
    }

    /// The answer side of a stream call just opened with `call` at `timestamp_ms`.
    fn answers(
        &self,
        peer: &NodeEntry,
        call: Signature,
        timestamp_ms: i64,
        inbound: tonic::Streaming<pb::Signed>,
    ) -> Answers {
        Answers {
            client: self.clone(),
            peer: peer.clone(),
            call,
            timestamp_ms,
            received: 0,
            inbound,
        }
    }

    async fn next_message(
        &self,
        rpc: Rpc,
        inbound: &mut tonic::Streaming<pb::Signed>,
    ) -> Result<Option<pb::Signed>, ReplicaError> {
        tokio::time::timeout(self.timeout, inbound.message())
            .await
            .map_err(|_| ReplicaError::PeerTimeout {
                endpoint: rpc.name(),
            })?
            .map_err(|s| status_error(rpc, &s))
    }
}

/// The answers of one open stream call: each verified against the call and its position, in
/// order, then decoded.
struct Answers {
    client: PeerClient,
    peer: NodeEntry,
    call: Signature,
    timestamp_ms: i64,
    received: u64,
    inbound: tonic::Streaming<pb::Signed>,
}

impl Answers {
    /// The next answer, `None` when the peer ended the stream.
    async fn next<T: Message + Default>(&mut self, rpc: Rpc) -> Result<Option<T>, ReplicaError> {
        let Some(msg) = self.client.next_message(rpc, &mut self.inbound).await? else {
            return Ok(None);
        };
        let payload = self.client.verify_answer(
            &self.peer,
            rpc,
            &self.call,
            self.timestamp_ms,
            self.received,
            &msg,
        )?;
        self.received += 1;
        T::decode(payload)
            .map(Some)
            .map_err(|_| bad(rpc, "malformed answer"))
    }
}

/// An open anti-entropy stream: one request, one answer, in order.
pub struct ReconcileCall {
    answers: Answers,
    sent: u64,
    tx: mpsc::Sender<pb::Signed>,
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
        let a = &self.answers;
        let at = Position {
            rpc,
            direction: Direction::Request,
            call: Some(&a.call),
            seq: self.sent,
            timestamp_ms: a.timestamp_ms,
        };
        let signed = auth::seal(
            &a.client.identity,
            &a.peer.pubkey_ed25519,
            &at,
            req.encode_to_vec(),
        );
        tokio::time::timeout(a.client.timeout, self.tx.send(signed))
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
    answers: Answers,
}

impl std::fmt::Debug for HandoverCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandoverCall")
            .field("received", &self.answers.received)
            .finish_non_exhaustive()
    }
}

impl HandoverCall {
    /// The next verified batch, `None` at the end of the range.
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
