//! Serving peers: the tonic service of `proto/umbra/peer/v2/peer.proto` for the node to run on
//! its peer port ([`serve`]).
//!
//! Before any call: the connection is TLS 1.3 with a listed node's client certificate
//! ([`crate::tls`]; a stranger's certificate fails the handshake, a connection without one gets
//! `UNAUTHENTICATED` from [`RequireNodeCert`] before its request is decoded). The caller of
//! every call on the connection is that certificate's key: TLS binds each message to the
//! handshake that proved it, so the messages themselves carry no signature.
//!
//! Every call, in order: at most [`crate::ReplicaConfig::max_inflight`] calls at once
//! (`RESOURCE_EXHAUSTED`); the first message within [`MAX_REQUEST_BYTES`] (tonic refuses a
//! larger one while decoding; the refusal is counted, see [`CountDecoderRefusals`]); the caller authorised
//! against the list *as it is now* (it may have changed since the handshake) — for `Forward`
//! and `Reconcile` an active member of this node's swarm, for `Handover` an active member of
//! another swarm of the list (`PERMISSION_DENIED`); the request's bounds checked
//! (`INVALID_ARGUMENT`) — and only then served. Every refusal is counted in the replica's
//! metrics by reason.
//!
//! Flow control: `Reconcile` runs in lockstep (the next request is read only once the answer
//! to the previous one is queued, one answer queued at most) and ends after
//! [`MAX_RECONCILE_STEPS`] requests or when a request takes longer than the request timeout to
//! arrive; `Handover` queues at most two batches ahead of the network (HTTP/2 flow control does
//! the rest). Unary calls have a server-side deadline ([`serve`]).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status, Streaming};
use umbra_crypto::Ed25519PublicKey;
use umbra_proto::umbra::peer::v2 as pb;
use umbra_proto::umbra::peer::v2::peer_server::{Peer, PeerServer};
use umbra_report::ErrorExt as _;
use umbra_store::{ApplyOutcome, BucketDigest, ExpiryUpdate, Millis, ReplicaMessage};
use umbra_swarm::SwarmId;

use crate::engine::{BucketId, DIGEST_CACHE_MS, RECURSIVE_METHODS, lock};
use crate::metrics::{ReplicaMetrics, add};
use crate::tls::{NodeCertificate, PeerConnectInfo, PeerTlsStream, RequireNodeCert};
use crate::wire::{
    MAX_BUCKETS_PER_REQUEST, MAX_DIGESTS_PER_PAGE, MAX_HANDOVER_BUCKETS, MAX_HANDOVER_DATA_BYTES,
    MAX_HANDOVER_ITEMS, MAX_HASHES_PER_REQUEST, MAX_RECONCILE_STEPS, MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES, Rpc, bucket_from_wire, digest_from_wire, digest_to_wire, entries_to_wire,
    hash_from_bytes, replica_to_wire, tombstone_to_wire,
};
use crate::{Replica, ReplicaError};

/// Longest time a unary call may take on the server.
pub const UNARY_DEADLINE: Duration = Duration::from_secs(30);
/// Most concurrent calls (HTTP/2 streams) on one connection.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;

/// Why a call was refused (each counted in its own metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Unauthenticated,
    Forbidden,
    Malformed,
    TooLarge,
    Busy,
}

type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Counts the calls gRPC's decoder refused before any handler saw them: tonic answers a unary
/// request over [`MAX_REQUEST_BYTES`] with `OUT_OF_RANGE` on its own (an oversized message of
/// a stream reaches its handler as an error and is counted there). No handler of the peer API
/// answers `OUT_OF_RANGE`, so a response that starts with that status is one of these.
#[derive(Debug, Clone)]
pub struct CountDecoderRefusals<S> {
    inner: S,
    metrics: Arc<ReplicaMetrics>,
}

impl<S: NamedService> NamedService for CountDecoderRefusals<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> Service<http::Request<B>> for CountDecoderRefusals<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let answer = self.inner.call(request);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let response = answer.await?;
            if response
                .extensions()
                .get::<Status>()
                .is_some_and(|s| s.code() == tonic::Code::OutOfRange)
            {
                add(&metrics.requests_refused, 1);
                add(&metrics.refused_too_large, 1);
                tracing::debug!("peer call refused by the decoder: message larger than the limit");
            }
            Ok(response)
        })
    }
}

/// The peer API of one [`Replica`].
#[derive(Debug, Clone)]
pub struct PeerService {
    replica: Replica,
}

impl PeerService {
    /// The service of `replica`.
    pub fn new(replica: Replica) -> Self {
        PeerService { replica }
    }

    /// The tonic server of this service, with its message size limits.
    pub fn into_server(self) -> PeerServer<Self> {
        PeerServer::new(self)
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_RESPONSE_BYTES)
    }
}

impl Replica {
    /// The tonic server of this replica's peer API, behind the check that the connection
    /// presented a listed node's certificate ([`RequireNodeCert`]), with the refusals of
    /// gRPC's own decoder counted ([`CountDecoderRefusals`]).
    pub fn grpc_server(
        &self,
    ) -> CountDecoderRefusals<InterceptedService<PeerServer<PeerService>, RequireNodeCert>> {
        CountDecoderRefusals {
            inner: InterceptedService::new(
                PeerService::new(self.clone()).into_server(),
                RequireNodeCert {
                    metrics: self.inner.metrics.clone(),
                },
            ),
            metrics: self.inner.metrics.clone(),
        }
    }

    /// The TLS connections of the peer port on `listener`, with this node's certificate (its
    /// node key) and client certificates of the current list ([`crate::tls`]).
    ///
    /// # Errors
    /// [`ReplicaError::Tls`] if the certificate or the TLS configuration cannot be made.
    pub fn tls_incoming(
        &self,
        listener: tokio::net::TcpListener,
    ) -> Result<
        impl Stream<Item = Result<PeerTlsStream, std::io::Error>> + Send + 'static,
        ReplicaError,
    > {
        let cert = NodeCertificate::new(&self.inner.identity)?;
        let config = crate::tls::server_config(&cert, self.inner.view.clone())?;
        Ok(crate::tls::incoming(
            listener,
            config,
            self.inner.view.clone(),
            self.inner.metrics.clone(),
        ))
    }

    fn refuse(&self, why: Refusal, rpc: Rpc, message: impl Into<String>) -> Status {
        let m = &self.inner.metrics;
        add(&m.requests_refused, 1);
        let (counter, code) = match why {
            Refusal::Unauthenticated => (&m.refused_unauthenticated, tonic::Code::Unauthenticated),
            Refusal::Forbidden => (&m.refused_forbidden, tonic::Code::PermissionDenied),
            Refusal::Malformed => (&m.refused_malformed, tonic::Code::InvalidArgument),
            Refusal::TooLarge => (&m.refused_too_large, tonic::Code::ResourceExhausted),
            Refusal::Busy => (&m.refused_busy, tonic::Code::ResourceExhausted),
        };
        add(counter, 1);
        let message = message.into();
        tracing::debug!(call = rpc.name(), reason = %message, "peer call refused");
        Status::new(code, message)
    }

    fn permit(&self, rpc: Rpc) -> Result<OwnedSemaphorePermit, Status> {
        self.inner
            .inflight
            .clone()
            .try_acquire_owned()
            .map_err(|_| self.refuse(Refusal::Busy, rpc, "too many peer calls at once"))
    }

    /// A stream message that failed to arrive: too large, or the stream broke.
    fn stream_error(&self, rpc: Rpc, s: &Status) -> Status {
        if matches!(
            s.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ) {
            self.refuse(Refusal::TooLarge, rpc, "message larger than the limit")
        } else {
            s.clone()
        }
    }

    /// Authorises a call arriving on a connection whose client certificate proved the key
    /// `connection`: that key must hold the call's role in the current list (checked per call,
    /// not per connection, since the list can change while a connection lives). Returns the
    /// caller's key.
    fn admit(
        &self,
        rpc: Rpc,
        connection: Option<Ed25519PublicKey>,
    ) -> Result<Ed25519PublicKey, Status> {
        // Behind [`RequireNodeCert`] there is always a key; a server built without it must
        // not serve anyone.
        let Some(caller) = connection else {
            return Err(self.refuse(
                Refusal::Unauthenticated,
                rpc,
                "the peer service needs a client certificate of a listed node",
            ));
        };
        let view = self.inner.view.get();
        let allowed = match rpc {
            Rpc::Handover => sender_swarm(&view, &caller, &self.our_key()).is_some(),
            Rpc::Forward | Rpc::Reconcile => view.is_peer(&caller),
        };
        if !allowed {
            let why = if view.node(&caller).is_some() {
                "sender is not allowed this call (not an active member of the right swarm)"
            } else {
                "sender is not a registered node"
            };
            return Err(self.refuse(Refusal::Forbidden, rpc, why));
        }
        add(&self.inner.metrics.requests_served, 1);
        Ok(caller)
    }

    fn malformed(&self, rpc: Rpc, what: &'static str) -> Status {
        self.refuse(Refusal::Malformed, rpc, what)
    }

    // -----------------------------------------------------------------------------------------
    // Forward
    // -----------------------------------------------------------------------------------------

    async fn serve_forward(&self, req: pb::ForwardRequest) -> Result<pb::ForwardResponse, Status> {
        let rpc = Rpc::Forward;
        if !RECURSIVE_METHODS.contains(&req.method.as_str()) {
            return Err(self.malformed(rpc, "not a recursive method"));
        }
        let params: serde_json::Value = serde_json::from_slice(&req.params_json)
            .map_err(|_| self.malformed(rpc, "params are not JSON"))?;
        if !params.is_object() {
            return Err(self.malformed(rpc, "params must be an object"));
        }
        let Some(handler) = self.inner.handler.get() else {
            return Err(Status::unavailable("forwarded writes not accepted yet"));
        };
        let reply = handler
            .handle_forwarded(req.method, params, self.now())
            .await;
        let body_json = serde_json::to_vec(&reply.body)
            .map_err(|_| Status::internal("encoding the answer failed"))?;
        Ok(pb::ForwardResponse {
            status: u32::from(reply.status),
            body_json,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Reconcile
    // -----------------------------------------------------------------------------------------

    async fn own_digests(&self, continuing: bool) -> Result<Arc<Vec<BucketDigest>>, Status> {
        let view = self.inner.view.get();
        let now = self.now();
        if continuing
            && let Some((at, epoch, list)) = lock(&self.inner.digest_cache).as_ref()
            && *epoch == view.epoch()
            && (0..DIGEST_CACHE_MS).contains(&now.saturating_sub(*at))
        {
            return Ok(list.clone());
        }
        let all = self
            .read("serving digests", move |s| s.bucket_digests(None, now))
            .await
            .map_err(|e| store_failed(&e))?;
        let mut list: Vec<BucketDigest> =
            all.into_iter().filter(|d| view.is_ours(&d.owner)).collect();
        list.sort_by_key(|d| (d.owner, d.namespace));
        let list = Arc::new(list);
        *lock(&self.inner.digest_cache) = Some((now, view.epoch(), list.clone()));
        Ok(list)
    }

    async fn serve_digests(&self, req: pb::DigestsRequest) -> Result<pb::DigestsPage, Status> {
        let after = match &req.after {
            Some(b) => Some(
                bucket_from_wire(b).map_err(|_| self.malformed(Rpc::Reconcile, "bad bucket"))?,
            ),
            None => None,
        };
        let limit = usize::try_from(req.limit)
            .unwrap_or(usize::MAX)
            .clamp(1, MAX_DIGESTS_PER_PAGE);
        let all = self.own_digests(after.is_some()).await?;
        let start = match after {
            Some(after) => all.partition_point(|d| (d.owner, d.namespace) <= after),
            None => 0,
        };
        let rest = all.get(start..).unwrap_or(&[]);
        Ok(pb::DigestsPage {
            buckets: rest.iter().take(limit).map(digest_to_wire).collect(),
            more: rest.len() > limit,
        })
    }

    async fn serve_entries(&self, req: pb::EntriesRequest) -> Result<pb::EntriesPage, Status> {
        let rpc = Rpc::Reconcile;
        if req.buckets.len() > MAX_BUCKETS_PER_REQUEST {
            return Err(self.malformed(rpc, "too many buckets"));
        }
        let view = self.inner.view.get();
        let mut wanted = Vec::with_capacity(req.buckets.len());
        for b in &req.buckets {
            let (owner, ns) = bucket_from_wire(b).map_err(|_| self.malformed(rpc, "bad bucket"))?;
            if view.is_ours(&owner) {
                wanted.push((owner, ns));
            }
        }
        let now = self.now();
        let buckets = self
            .read("serving entries", move |s| {
                wanted
                    .iter()
                    .map(|(o, ns)| {
                        s.bucket_entries(o, *ns, now)
                            .map(|e| entries_to_wire(o, *ns, &e))
                    })
                    .collect::<umbra_store::Result<Vec<_>>>()
            })
            .await
            .map_err(|e| store_failed(&e))?;
        Ok(pb::EntriesPage { buckets })
    }

    async fn serve_replicas(&self, req: pb::ReplicasRequest) -> Result<pb::ReplicasPage, Status> {
        let rpc = Rpc::Reconcile;
        if req.hashes.len() > MAX_HASHES_PER_REQUEST {
            return Err(self.malformed(rpc, "too many hashes"));
        }
        let mut hashes = Vec::with_capacity(req.hashes.len());
        for h in &req.hashes {
            hashes.push(hash_from_bytes(h).map_err(|_| self.malformed(rpc, "bad hash"))?);
        }
        let view = self.inner.view.get();
        let now = self.now();
        let found = self
            .read("serving replicas", move |s| s.get_replicas(&hashes, now))
            .await
            .map_err(|e| store_failed(&e))?;
        Ok(pb::ReplicasPage {
            messages: found
                .iter()
                .filter(|m| view.is_ours(&m.owner))
                .map(replica_to_wire)
                .collect(),
        })
    }

    async fn serve_reconcile_step(
        &self,
        req: pb::ReconcileRequest,
    ) -> Result<pb::ReconcileResponse, Status> {
        use pb::reconcile_request::Ask;
        use pb::reconcile_response::Answer;
        let answer = match req.ask {
            Some(Ask::Digests(r)) => Answer::Digests(self.serve_digests(r).await?),
            Some(Ask::Entries(r)) => Answer::Entries(self.serve_entries(r).await?),
            Some(Ask::Replicas(r)) => Answer::Replicas(self.serve_replicas(r).await?),
            None => return Err(self.malformed(Rpc::Reconcile, "empty request")),
        };
        Ok(pb::ReconcileResponse {
            answer: Some(answer),
        })
    }

    /// Serves an admitted `Reconcile` stream in lockstep until the caller ends it.
    async fn run_reconcile(
        self,
        first: pb::ReconcileRequest,
        mut inbound: Streaming<pb::ReconcileRequest>,
        tx: mpsc::Sender<Result<pb::ReconcileResponse, Status>>,
        _permit: OwnedSemaphorePermit,
    ) {
        let rpc = Rpc::Reconcile;
        let idle = self.inner.config.request_timeout;
        let mut req = first;
        let mut seq = 0u64;
        loop {
            let answer = self.serve_reconcile_step(req).await;
            let failed = answer.is_err();
            if tx.send(answer).await.is_err() || failed {
                return;
            }
            seq += 1;
            if seq >= MAX_RECONCILE_STEPS {
                let _ = tx
                    .send(Err(self.malformed(rpc, "too many requests on one stream")))
                    .await;
                return;
            }
            let next = match tokio::time::timeout(idle, inbound.message()).await {
                Err(_) => {
                    let _ = tx
                        .send(Err(Status::deadline_exceeded("no request in time")))
                        .await;
                    return;
                }
                Ok(Ok(Some(m))) => m,
                Ok(Ok(None)) => return,
                Ok(Err(s)) => {
                    let _ = tx.send(Err(self.stream_error(rpc, &s))).await;
                    return;
                }
            };
            req = next;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Handover (serving side)
    // -----------------------------------------------------------------------------------------

    /// Drops the copies of buckets the caller acknowledged (if unchanged since it received them
    /// and they are the caller's swarm's, not ours), then streams the caller's swarm's range.
    async fn run_handover(
        self,
        req: pb::HandoverRequest,
        swarm: SwarmId,
        tx: mpsc::Sender<Result<pb::HandoverBatch, Status>>,
        _permit: OwnedSemaphorePermit,
    ) {
        let view = self.inner.view.get();
        let now = self.now();
        let digests = match self
            .read("reading digests", move |s| s.bucket_digests(None, now))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.send(Err(store_failed(&e))).await;
                return;
            }
        };
        let current: std::collections::HashMap<BucketId, [u8; 32]> = digests
            .iter()
            .map(|d| ((d.owner, d.namespace), d.digest))
            .collect();
        let theirs = |owner: &umbra_store::AccountId| {
            !view.is_ours(owner) && view.swarm_for(owner) == Some(swarm)
        };
        // 1. Acknowledged buckets: drop.
        for ack in &req.acknowledged {
            let Ok(ack) = digest_from_wire(ack) else {
                continue;
            };
            let id = (ack.owner, ack.namespace);
            if !theirs(&ack.owner) || current.get(&id) != Some(&ack.digest) {
                continue;
            }
            match self.drop_bucket(id).await {
                Ok(after) => {
                    let mut handed = lock(&self.inner.handed);
                    if handed.0 != view.epoch() {
                        *handed = (view.epoch(), std::collections::HashMap::new());
                    }
                    if handed.1.len() < 1_000_000 {
                        handed.1.insert(id, after.unwrap_or(ack.digest));
                    }
                }
                Err(e) => tracing::warn!("handover: dropping a bucket: {}", e.report()),
            }
        }
        // 2. The range: buckets of the caller's swarm not handed over since they changed.
        let max = usize::try_from(req.max_buckets)
            .unwrap_or(usize::MAX)
            .clamp(1, MAX_HANDOVER_BUCKETS);
        let todo: Vec<BucketDigest> = {
            let mut handed = lock(&self.inner.handed);
            if handed.0 != view.epoch() {
                *handed = (view.epoch(), std::collections::HashMap::new());
            }
            digests
                .into_iter()
                .filter(|d| theirs(&d.owner))
                .filter(|d| handed.1.get(&(d.owner, d.namespace)) != Some(&d.digest))
                .take(max)
                .collect()
        };
        for d in todo {
            let batches = match self.bucket_batches(&d).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(store_failed(&e))).await;
                    return;
                }
            };
            for batch in batches {
                add(
                    &self.inner.metrics.handover_messages,
                    batch.messages.len() as u64,
                );
                add(
                    &self.inner.metrics.handover_tombstones,
                    batch.tombstones.len() as u64,
                );
                if tx.send(Ok(batch)).await.is_err() {
                    return;
                }
            }
        }
    }

    /// One bucket as handover batches (bounded by items and data bytes); the last one carries
    /// the bucket's digest.
    async fn bucket_batches(
        &self,
        d: &BucketDigest,
    ) -> Result<Vec<pb::HandoverBatch>, ReplicaError> {
        let (owner, ns) = (d.owner, d.namespace);
        let now = self.now();
        let entries = self
            .read("reading bucket entries", move |s| {
                s.bucket_entries(&owner, ns, now)
            })
            .await?;
        let hashes: Vec<_> = entries.messages.iter().map(|m| m.hash).collect();
        let mut messages: Vec<ReplicaMessage> = Vec::with_capacity(hashes.len());
        for chunk in hashes.chunks(MAX_HASHES_PER_REQUEST) {
            let chunk = chunk.to_vec();
            let mut got = self
                .read("reading replicas", move |s| s.get_replicas(&chunk, now))
                .await?;
            messages.append(&mut got);
        }
        let mut batches: Vec<pb::HandoverBatch> = Vec::new();
        let mut cur = pb::HandoverBatch::default();
        let mut cur_bytes = 0usize;
        for t in &entries.tombstones {
            if cur.messages.len() + cur.tombstones.len() >= MAX_HANDOVER_ITEMS {
                batches.push(std::mem::take(&mut cur));
                cur_bytes = 0;
            }
            cur.tombstones.push(tombstone_to_wire(t));
        }
        for m in &messages {
            if cur.messages.len() + cur.tombstones.len() >= MAX_HANDOVER_ITEMS
                || cur_bytes + m.data.len() > MAX_HANDOVER_DATA_BYTES
            {
                batches.push(std::mem::take(&mut cur));
                cur_bytes = 0;
            }
            cur_bytes += m.data.len();
            cur.messages.push(replica_to_wire(m));
        }
        cur.done = Some(digest_to_wire(d));
        batches.push(cur);
        Ok(batches)
    }

    /// Drops a handed-over bucket's messages here without a tombstone, by moving them to an
    /// expired state that wins over any version (they vanish from reads and digests at once and
    /// the sweep removes the rows); tombstones stay until their own keep time. Returns the
    /// bucket's digest afterwards.
    async fn drop_bucket(&self, (owner, ns): BucketId) -> Result<Option<[u8; 32]>, ReplicaError> {
        let now = self.now();
        let entries = self
            .read("reading bucket entries", move |s| {
                s.bucket_entries(&owner, ns, now)
            })
            .await?;
        let replies: Vec<_> = entries
            .messages
            .iter()
            .map(|m| {
                self.inner.store.apply_remote_expiry(
                    ExpiryUpdate {
                        owner,
                        hash: m.hash,
                        timestamp_ms: m.timestamp_ms,
                        expiry_ms: now.saturating_sub(1),
                        expiry_version: Millis::MAX,
                    },
                    now,
                )
            })
            .collect();
        for r in replies {
            match r.await {
                Ok(ApplyOutcome::Changed) => add(&self.inner.metrics.handover_dropped, 1),
                Ok(_) => {}
                Err(source) => {
                    return Err(ReplicaError::Store {
                        what: "dropping handed-over messages",
                        source,
                    });
                }
            }
        }
        let after = self
            .read("reading digests", move |s| {
                s.bucket_digests(Some(&owner), now)
            })
            .await?
            .into_iter()
            .find(|b| b.namespace == ns)
            .map(|b| b.digest);
        Ok(after)
    }
}

/// The swarm of a `Handover` caller: an active member of a swarm other than ours.
fn sender_swarm(
    view: &umbra_nodelist::SwarmView,
    sender: &Ed25519PublicKey,
    our_key: &Ed25519PublicKey,
) -> Option<SwarmId> {
    if sender == our_key {
        return None;
    }
    let node = view.node(sender)?;
    if !node.active || !view.swarms().contains_key(&node.swarm_id) {
        return None;
    }
    (Some(node.swarm_id) != view.our_swarm()).then_some(node.swarm_id)
}

/// The node key of the connection a request came on (its verified client certificate).
fn connection_key<T>(req: &Request<T>) -> Option<Ed25519PublicKey> {
    PeerConnectInfo::of(req).and_then(|i| i.node_key)
}

fn store_failed(e: &ReplicaError) -> Status {
    tracing::warn!("serving a peer: {}", e.report());
    Status::internal("message store error")
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn forward(
        &self,
        request: Request<pb::ForwardRequest>,
    ) -> Result<Response<pb::ForwardResponse>, Status> {
        let r = &self.replica;
        let rpc = Rpc::Forward;
        let _permit = r.permit(rpc)?;
        r.admit(rpc, connection_key(&request))?;
        let answer = r.serve_forward(request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    type ReconcileStream = Answers<pb::ReconcileResponse>;

    async fn reconcile(
        &self,
        request: Request<Streaming<pb::ReconcileRequest>>,
    ) -> Result<Response<Self::ReconcileStream>, Status> {
        let r = &self.replica;
        let rpc = Rpc::Reconcile;
        let permit = r.permit(rpc)?;
        let connection = connection_key(&request);
        let mut inbound = request.into_inner();
        let first =
            match tokio::time::timeout(r.inner.config.request_timeout, inbound.message()).await {
                Err(_) => return Err(Status::deadline_exceeded("no request in time")),
                Ok(Ok(Some(m))) => m,
                Ok(Ok(None)) => return Err(r.malformed(rpc, "empty stream")),
                Ok(Err(s)) => return Err(r.stream_error(rpc, &s)),
            };
        r.admit(rpc, connection)?;
        // One answer queued at most: the stream advances as fast as the caller reads.
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(r.clone().run_reconcile(first, inbound, tx, permit));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type HandoverStream = Answers<pb::HandoverBatch>;

    async fn handover(
        &self,
        request: Request<pb::HandoverRequest>,
    ) -> Result<Response<Self::HandoverStream>, Status> {
        let r = &self.replica;
        let rpc = Rpc::Handover;
        let permit = r.permit(rpc)?;
        let caller = r.admit(rpc, connection_key(&request))?;
        let req = request.into_inner();
        if req.acknowledged.len() > MAX_HANDOVER_BUCKETS {
            return Err(r.malformed(rpc, "too many acknowledged buckets"));
        }
        let view = r.inner.view.get();
        let Some(swarm) = sender_swarm(&view, &caller, &r.our_key()) else {
            return Err(r.refuse(Refusal::Forbidden, rpc, "sender is in no other swarm"));
        };
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(r.clone().run_handover(req, swarm, tx, permit));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Serves the peer API of `replica` on `listener` over TLS ([`crate::tls`]) until `stop` turns `true`; calls in flight then get `grace`
/// to finish.
///
/// # Errors
/// The TLS set-up's errors, transport errors of the server.
pub async fn serve(
    listener: tokio::net::TcpListener,
    replica: Replica,
    stop: watch::Receiver<bool>,
    grace: Duration,
) -> Result<(), ReplicaError> {
    let incoming = replica.tls_incoming(listener)?;
    run(
        builder().add_service(replica.grpc_server()),
        incoming,
        stop,
        grace,
    )
    .await
    .map_err(|e| ReplicaError::Tls {
        what: "serving the peer port",
        reason: e.to_string(),
    })
}

/// Runs a server built from [`builder`] (the peer API, possibly behind the caller's own
/// interceptor) on `incoming` (from [`Replica::tls_incoming`]) until `stop` turns `true`;
/// calls in flight then get `grace`.
///
/// # Errors
/// Transport errors of the server.
pub async fn run(
    router: tonic::transport::server::Router,
    incoming: impl Stream<Item = Result<PeerTlsStream, std::io::Error>> + Send + 'static,
    stop: watch::Receiver<bool>,
    grace: Duration,
) -> Result<(), tonic::transport::Error> {
    let mut stopped = stop.clone();
    let server = router.serve_with_incoming_shutdown(incoming, async move {
        let _ = stopped.wait_for(|s| *s).await;
    });
    tokio::pin!(server);
    let mut stop = stop;
    tokio::select! {
        r = &mut server => return r,
        _ = stop.wait_for(|s| *s) => {}
    }
    tokio::time::timeout(grace, server).await.unwrap_or(Ok(()))
}

/// The server settings of the peer API: the unary deadline, HTTP/2 streams per connection and
/// keep-alive pings (tests that wrap the service build their server with it).
pub fn builder() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .timeout(UNARY_DEADLINE)
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .http2_keepalive_interval(Some(crate::client::KEEPALIVE.0))
        .http2_keepalive_timeout(Some(crate::client::KEEPALIVE.1))
}
