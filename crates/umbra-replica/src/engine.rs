//! The replication engine: write fan-out, anti-entropy rounds, handover, and serving peers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use umbra_report::ErrorExt as _;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use umbra_crypto::{Ed25519PublicKey, Identity, MessageHash, Redacted};
use umbra_store::{
    AccountId, ApplyOutcome, BucketDigest, BucketEntries, ExpiryUpdate, Millis, Namespace,
    ReplicaMessage, Store,
};

use crate::auth::{ReplayCache, RequestAuth};
use crate::client::{PeerAddressing, PeerClient, RawAnswer, truncate_reason};
use crate::metrics::{ReplicaMetrics, add, set};
use crate::view::ViewHandle;
use crate::wire::{
    BucketKey, DigestsRequest, DigestsResponse, Endpoint, EntriesRequest, EntriesResponse,
    ForwardRequest, ForwardResponse, HandoverRequest, HandoverResponse, MAX_BUCKETS_PER_REQUEST,
    MAX_DIGESTS_PER_PAGE, MAX_HANDOVER_DATA_BYTES, MAX_HANDOVER_ITEMS, MAX_HASHES_PER_REQUEST,
    ReplicasRequest, ReplicasResponse, WireBucket, WireDigest, WireReplica, WireTombstone,
};
use umbra_clock::Clock;
use umbra_nodelist::SwarmView;
use umbra_nodelist::list::NodeEntry;

use crate::{MetricsSnapshot, ReplicaError};

/// The methods the spec marks recursive (`storage-rpc.md` §7): the only ones `forward` accepts.
pub const RECURSIVE_METHODS: [&str; 8] = [
    "store",
    "delete",
    "delete_all",
    "delete_before",
    "expire",
    "expire_all",
    "revoke_subaccount",
    "unrevoke_subaccount",
];

/// What the node's RPC layer answered to a forwarded request.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardReply {
    /// HTTP status.
    pub status: u16,
    /// JSON body, or a JSON string holding a plain-text body.
    pub body: Value,
}

/// A boxed future returned by [`ForwardHandler::handle_forwarded`].
pub type ForwardFuture<'a> = Pin<Box<dyn Future<Output = ForwardReply> + Send + 'a>>;

/// The node's side of a forwarded write: apply the request locally **without forwarding it
/// again**, and answer with this node's own signed result (`storage-rpc.md` §7). `umbra-node`
/// implements it with its `handle_forwarded`.
pub trait ForwardHandler: Send + Sync + 'static {
    /// Applies `method` with the client's `params` at time `now_ms`.
    fn handle_forwarded(&self, method: String, params: Value, now_ms: i64) -> ForwardFuture<'_>;
}

/// Why a member's result is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The member did not answer within the forward timeout.
    Timeout,
    /// The member answered with an error status.
    Code {
        /// HTTP status.
        status: u16,
        /// The error text (truncated).
        reason: String,
    },
    /// The member's answer was malformed or not signed by it.
    BadPeerResponse,
    /// The request could not be delivered (connection failed).
    QueryFailure,
}

/// One member's outcome of a forwarded write.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOutcome {
    /// The member applied the request and answered with its own result.
    Replied {
        /// The member's status (2xx, or 404 for `delete` with `required`).
        status: u16,
        /// The member's result object (with its signature, per spec §7).
        body: Value,
    },
    /// No result from this member (anti-entropy will catch it up).
    Failed(FailureKind),
}

/// A member and its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberResult {
    /// The member's Ed25519 key.
    pub pubkey: Ed25519PublicKey,
    /// What happened.
    pub outcome: MemberOutcome,
}

impl MemberResult {
    /// The member's entry in the reply's `swarm` object: its result, or a failure entry such as
    /// `{"failed": true, "timeout": true}` (spec §7).
    pub fn to_json(&self) -> Value {
        match &self.outcome {
            MemberOutcome::Replied { body, .. } => body.clone(),
            MemberOutcome::Failed(FailureKind::Timeout) => json!({"failed": true, "timeout": true}),
            MemberOutcome::Failed(FailureKind::Code { status, reason }) => {
                json!({"failed": true, "code": status, "reason": reason})
            }
            MemberOutcome::Failed(FailureKind::BadPeerResponse) => {
                json!({"failed": true, "bad_peer_response": true})
            }
            MemberOutcome::Failed(FailureKind::QueryFailure) => {
                json!({"failed": true, "query_failure": true})
            }
        }
    }
}

/// The results keyed by member Ed25519 hex, ready to merge into the reply's `swarm` object
/// (the same shape as `umbra_node::replicate::MemberResults`).
pub fn member_results_json(results: &[MemberResult]) -> BTreeMap<String, Value> {
    results
        .iter()
        .map(|r| (hex::encode(r.pubkey), r.to_json()))
        .collect()
}

/// Tunables of a [`Replica`]. `Default` gives production values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// Where peers serve the peer endpoints.
    pub addressing: PeerAddressing,
    /// How long the entry node waits for each member's forwarded result (the reference: 5 s).
    pub forward_timeout: Duration,
    /// Timeout of reconciliation and handover calls.
    pub request_timeout: Duration,
    /// Largest accepted difference between a peer request's timestamp and our clock.
    pub max_clock_skew_ms: i64,
    /// Time between anti-entropy rounds (one also runs at start and on every view change).
    pub round_interval: Duration,
    /// Buckets asked for per `digests` page (at most [`MAX_DIGESTS_PER_PAGE`]).
    pub digest_page: usize,
    /// Most buckets compared with one peer per round; the next round continues from there.
    pub buckets_per_peer_round: usize,
    /// Most messages pulled from one peer per round.
    pub max_pulls_per_peer_round: usize,
    /// Most foreign buckets handed over per round.
    pub handover_buckets_per_round: usize,
    /// Capacity of the replay cache of accepted peer request signatures.
    pub replay_capacity: usize,
    /// Largest message body accepted from a peer (76 800 bytes by the spec).
    pub max_message_bytes: usize,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            addressing: PeerAddressing::default(),
            forward_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            max_clock_skew_ms: 60_000,
            round_interval: Duration::from_secs(30),
            digest_page: 1024,
            buckets_per_peer_round: 16_384,
            max_pulls_per_peer_round: 4096,
            handover_buckets_per_round: 1024,
            replay_capacity: 200_000,
            max_message_bytes: 76_800,
        }
    }
}

/// What one anti-entropy round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundReport {
    /// Swarm peers at the time of the round.
    pub peers: usize,
    /// Peers that answered.
    pub peers_reachable: usize,
    /// Buckets compared.
    pub buckets_compared: usize,
    /// Buckets whose digests differed.
    pub buckets_differing: usize,
    /// Messages pulled that changed local state.
    pub messages_pulled: usize,
    /// Expiry changes applied.
    pub expiries_applied: usize,
    /// Tombstones applied that changed local state.
    pub tombstones_applied: usize,
    /// Failed peer calls.
    pub errors: usize,
}

/// What one handover round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandoverReport {
    /// Foreign buckets found (accounts that map to another swarm).
    pub buckets: usize,
    /// Buckets fully acknowledged by a member of the owning swarm.
    pub buckets_acknowledged: usize,
    /// Messages acknowledged.
    pub messages_sent: usize,
    /// Tombstones acknowledged.
    pub tombstones_sent: usize,
    /// Messages dropped locally after acknowledgement.
    pub messages_dropped: usize,
    /// Buckets that no member acknowledged (kept; retried next round).
    pub buckets_failed: usize,
}

type BucketId = (AccountId, Namespace);

/// `(computed at, view epoch, listing)`.
type CachedDigests = (Millis, u64, Arc<Vec<WireDigest>>);

struct Inner {
    identity: Arc<Identity>,
    store: Store,
    view: ViewHandle,
    clock: Arc<dyn Clock>,
    forward_client: PeerClient,
    client: PeerClient,
    config: ReplicaConfig,
    handler: OnceLock<Arc<dyn ForwardHandler>>,
    metrics: ReplicaMetrics,
    replay: Mutex<ReplayCache>,
    /// Per peer: where the next round continues in its digest listing.
    cursors: Mutex<HashMap<Ed25519PublicKey, BucketKey>>,
    /// Foreign buckets already handed over at a given view epoch, with their digest then.
    handed: Mutex<(u64, HashMap<BucketId, [u8; 32]>)>,
    /// The own-swarm digest listing served to peers: `(computed at, view epoch, listing)`.
    /// A first page (no cursor) always recomputes it; later pages of a pass reuse it for up to
    /// [`DIGEST_CACHE_MS`], so that paging does not rescan the table for every page.
    digest_cache: Mutex<Option<CachedDigests>>,
    rounds: tokio::sync::Mutex<()>,
}

/// How long a served digest listing is reused (a stale page only delays a pull by one round).
const DIGEST_CACHE_MS: Millis = 2_000;

/// The swarm replication engine of one storage node. Cheap to clone.
#[derive(Clone)]
pub struct Replica {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn short(key: &Ed25519PublicKey) -> Redacted<String> {
    Redacted::new(hex::encode(key))
}

/// The answer of a peer endpoint: status and JSON (or text) body.
pub(crate) struct Served {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Served {
    fn json<T: Serialize>(v: &T) -> Served {
        match serde_json::to_vec(v) {
            Ok(body) => Served { status: 200, body },
            Err(_) => Served::error(500, "encoding the answer failed"),
        }
    }

    pub(crate) fn error(status: u16, text: &str) -> Served {
        Served {
            status,
            body: text.as_bytes().to_vec(),
        }
    }
}

impl Replica {
    /// An engine for the node `identity` with this store and membership view.
    ///
    /// # Errors
    /// [`ReplicaError::HttpClient`] if the peer HTTP client cannot be built.
    pub fn new(
        config: ReplicaConfig,
        identity: Arc<Identity>,
        store: Store,
        view: ViewHandle,
        clock: Arc<dyn Clock>,
    ) -> Result<Replica, ReplicaError> {
        let forward_client = PeerClient::new(
            identity.clone(),
            clock.clone(),
            config.addressing,
            config.forward_timeout,
        )?;
        let client = PeerClient::new(
            identity.clone(),
            clock.clone(),
            config.addressing,
            config.request_timeout,
        )?;
        let replay = ReplayCache::new(config.max_clock_skew_ms, config.replay_capacity);
        Ok(Replica {
            inner: Arc::new(Inner {
                identity,
                store,
                view,
                clock,
                forward_client,
                client,
                config,
                handler: OnceLock::new(),
                metrics: ReplicaMetrics::default(),
                replay: Mutex::new(replay),
                cursors: Mutex::new(HashMap::new()),
                handed: Mutex::new((0, HashMap::new())),
                digest_cache: Mutex::new(None),
                rounds: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Sets the handler of forwarded writes (once; later calls are ignored and return `false`).
    /// Until it is set, `forward` requests are answered `503`.
    pub fn set_forward_handler(&self, handler: Arc<dyn ForwardHandler>) -> bool {
        self.inner.handler.set(handler).is_ok()
    }

    /// The membership view this engine follows.
    pub fn view(&self) -> &ViewHandle {
        &self.inner.view
    }

    /// The message store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// This node's Ed25519 key.
    pub fn our_key(&self) -> Ed25519PublicKey {
        self.inner.identity.ed25519_public()
    }

    /// The configuration.
    pub fn config(&self) -> &ReplicaConfig {
        &self.inner.config
    }

    /// The current counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Appends the counters in Prometheus text form to `out`.
    pub fn render_metrics(&self, out: &mut String) {
        self.metrics().render_prometheus(out);
    }

    fn now(&self) -> Millis {
        self.inner.clock.now_ms_i64()
    }

    async fn read<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Store) -> umbra_store::Result<T> + Send + 'static,
    ) -> Result<T, ReplicaError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ReplicaError::Blocking {
                what,
                reason: e.to_string(),
            })?
            .map_err(|source| ReplicaError::Store { what, source })
    }

    // -----------------------------------------------------------------------------------------
    // Write fan-out
    // -----------------------------------------------------------------------------------------

    /// Forwards a recursive request (`method` and the client's `params`, unchanged) to every
    /// other active member of this node's swarm, concurrently, and returns each member's result
    /// within [`ReplicaConfig::forward_timeout`]. This node's own result is not included. A
    /// member that is down or late appears as failed; it catches up by anti-entropy.
    pub async fn replicate(&self, method: &str, params: &Value) -> Vec<MemberResult> {
        let peers = self.inner.view.get().peers();
        if peers.is_empty() {
            return Vec::new();
        }
        let body = serde_json::to_vec(&ForwardRequest {
            method: method.to_string(),
            params: params.clone(),
        });
        let Ok(body) = body else {
            return peers
                .iter()
                .map(|p| MemberResult {
                    pubkey: p.pubkey_ed25519,
                    outcome: MemberOutcome::Failed(FailureKind::QueryFailure),
                })
                .collect();
        };
        let timeout = self.inner.config.forward_timeout;
        let mut set = JoinSet::new();
        let mut keys = HashMap::new();
        for p in peers {
            let client = self.inner.forward_client.clone();
            let body = body.clone();
            let key = p.pubkey_ed25519;
            let handle = set.spawn(async move {
                let r = tokio::time::timeout(timeout, client.call_raw(&p, Endpoint::Forward, body))
                    .await;
                forward_outcome(r)
            });
            keys.insert(handle.id(), key);
        }
        let mut results = Vec::with_capacity(keys.len());
        while let Some(joined) = set.join_next_with_id().await {
            let (id, outcome) = match joined {
                Ok((id, o)) => (id, o),
                Err(e) => (e.id(), MemberOutcome::Failed(FailureKind::QueryFailure)),
            };
            let Some(pubkey) = keys.get(&id).copied() else {
                continue;
            };
            if matches!(outcome, MemberOutcome::Replied { .. }) {
                add(&self.inner.metrics.forwards_ok, 1);
            } else {
                add(&self.inner.metrics.forwards_failed, 1);
                tracing::debug!(peer = %short(&pubkey), "forwarded write failed");
            }
            results.push(MemberResult { pubkey, outcome });
        }
        results.sort_by_key(|a| a.pubkey);
        results
    }

    // -----------------------------------------------------------------------------------------
    // Anti-entropy
    // -----------------------------------------------------------------------------------------

    /// Runs reconciliation and handover rounds: one right away, then every
    /// [`ReplicaConfig::round_interval`] and whenever the membership view changes, until `stop`
    /// turns `true` (or its sender is dropped). Spawn it as a background task.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut views = self.inner.view.subscribe();
        let mut views_open = true;
        let mut tick = tokio::time::interval(self.inner.config.round_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                r = views.changed(), if views_open => {
                    if r.is_err() {
                        views_open = false;
                        continue;
                    }
                }
                r = stop.wait_for(|s| *s) => {
                    let _ = r;
                    break;
                }
            }
            let r = self.reconcile_round().await;
            if r.errors > 0 {
                tracing::debug!(
                    errors = r.errors,
                    reachable = r.peers_reachable,
                    peers = r.peers,
                    "anti-entropy round had errors"
                );
            }
            let h = self.handover_round().await;
            if h.buckets_failed > 0 {
                tracing::info!(
                    failed = h.buckets_failed,
                    "handover incomplete; retrying next round"
                );
            }
        }
    }

    /// One anti-entropy round: compare bucket digests with every peer of this node's swarm and
    /// pull what is missing or older here (messages, expiry changes, tombstones). Bounded by
    /// [`ReplicaConfig::buckets_per_peer_round`] and
    /// [`ReplicaConfig::max_pulls_per_peer_round`] per peer; a later round continues where
    /// this one stopped. Never fails as a whole: errors are counted in the report and metrics.
    pub async fn reconcile_round(&self) -> RoundReport {
        let _guard = self.inner.rounds.lock().await;
        let mut report = RoundReport::default();
        let view = self.inner.view.get();
        let peers = view.peers();
        report.peers = peers.len();
        add(&self.inner.metrics.rounds, 1);
        set(&self.inner.metrics.peers_total, peers.len() as u64);
        if peers.is_empty() {
            set(&self.inner.metrics.peers_reachable, 0);
            return report;
        }
        let now = self.now();
        let local = match self
            .read("reading digests", move |s| s.bucket_digests(None, now))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("anti-entropy: {}", e.report());
                report.errors += 1;
                return report;
            }
        };
        let local: HashMap<BucketId, [u8; 32]> = local
            .into_iter()
            .filter(|d| view.is_ours(&d.owner))
            .map(|d| ((d.owner, d.namespace), d.digest))
            .collect();
        for peer in &peers {
            match self.reconcile_with(&view, peer, &local, &mut report).await {
                Ok(()) => report.peers_reachable += 1,
                Err(e) => {
                    report.errors += 1;
                    add(&self.inner.metrics.peer_errors, 1);
                    tracing::debug!(peer = %short(&peer.pubkey_ed25519), "anti-entropy with peer failed: {}", e.report());
                }
            }
        }
        set(
            &self.inner.metrics.peers_reachable,
            report.peers_reachable as u64,
        );
        report
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        peer: &NodeEntry,
        endpoint: Endpoint,
        req: &Req,
    ) -> Result<Resp, ReplicaError> {
        self.inner.client.call(peer, endpoint, req).await
    }

    async fn reconcile_with(
        &self,
        view: &SwarmView,
        peer: &NodeEntry,
        local: &HashMap<BucketId, [u8; 32]>,
        report: &mut RoundReport,
    ) -> Result<(), ReplicaError> {
        let cfg = &self.inner.config;
        let key = peer.pubkey_ed25519;
        let mut cursor = lock(&self.inner.cursors).get(&key).cloned();
        let budget = cfg.buckets_per_peer_round.max(1);
        let mut compared = 0usize;
        let mut differing: Vec<BucketId> = Vec::new();
        while compared < budget {
            let limit = cfg
                .digest_page
                .clamp(1, MAX_DIGESTS_PER_PAGE)
                .min(budget - compared);
            let page: DigestsResponse = self
                .call(
                    peer,
                    Endpoint::Digests,
                    &DigestsRequest {
                        after: cursor.clone(),
                        limit,
                    },
                )
                .await?;
            if page.buckets.len() > limit {
                return Err(ReplicaError::BadPeerResponse {
                    endpoint: "digests",
                    reason: "more buckets than asked for".into(),
                });
            }
            for d in &page.buckets {
                compared += 1;
                let Ok((owner, ns)) = (BucketKey {
                    owner: d.owner.clone(),
                    namespace: d.namespace,
                })
                .parse() else {
                    continue;
                };
                if !view.is_ours(&owner) {
                    continue;
                }
                let remote = hex::decode(&d.digest).ok();
                if remote.as_deref() != local.get(&(owner, ns)).map(|l| &l[..]) {
                    differing.push((owner, ns));
                }
            }
            let last = page.buckets.last().map(|d| BucketKey {
                owner: d.owner.clone(),
                namespace: d.namespace,
            });
            if !page.more || last.is_none() {
                cursor = None;
                break;
            }
            cursor = last;
        }
        {
            let mut cursors = lock(&self.inner.cursors);
            match &cursor {
                Some(c) => {
                    cursors.insert(key, c.clone());
                }
                None => {
                    cursors.remove(&key);
                }
            }
        }
        report.buckets_compared += compared;
        report.buckets_differing += differing.len();
        add(&self.inner.metrics.buckets_compared, compared as u64);
        add(
            &self.inner.metrics.buckets_differing,
            differing.len() as u64,
        );

        let mut pulls: Vec<MessageHash> = Vec::new();
        let mut pulled_total = 0usize;
        for chunk in differing.chunks(MAX_BUCKETS_PER_REQUEST) {
            let req = EntriesRequest {
                buckets: chunk.iter().map(|(o, ns)| BucketKey::new(o, *ns)).collect(),
            };
            let entries: EntriesResponse = self.call(peer, Endpoint::Entries, &req).await?;
            for remote in entries.buckets {
                let Ok((owner, ns)) = remote.bucket.parse() else {
                    continue;
                };
                if !chunk.contains(&(owner, ns)) {
                    continue;
                }
                self.merge_bucket(owner, ns, &remote, &mut pulls, report)
                    .await?;
                while pulls.len() >= MAX_HASHES_PER_REQUEST
                    && pulled_total < cfg.max_pulls_per_peer_round
                {
                    let batch: Vec<MessageHash> = pulls.drain(..MAX_HASHES_PER_REQUEST).collect();
                    pulled_total += batch.len();
                    self.pull(peer, view, batch, report).await?;
                }
            }
        }
        if !pulls.is_empty() && pulled_total < cfg.max_pulls_per_peer_round {
            pulls.truncate(cfg.max_pulls_per_peer_round - pulled_total);
            self.pull(peer, view, pulls, report).await?;
        }
        Ok(())
    }

    /// Applies a peer's tombstones and newer expiries of one bucket and lists the messages to
    /// pull.
    async fn merge_bucket(
        &self,
        owner: AccountId,
        ns: Namespace,
        remote: &WireBucket,
        pulls: &mut Vec<MessageHash>,
        report: &mut RoundReport,
    ) -> Result<(), ReplicaError> {
        let now = self.now();
        let local: BucketEntries = self
            .read("reading bucket entries", move |s| {
                s.bucket_entries(&owner, ns, now)
            })
            .await?;
        let local_msgs: HashMap<&MessageHash, (Millis, Millis, Millis)> = local
            .messages
            .iter()
            .map(|m| (&m.hash, (m.timestamp_ms, m.expiry_version, m.expiry_ms)))
            .collect();
        let mut deleted: HashMap<MessageHash, Millis> = local
            .tombstones
            .iter()
            .map(|t| (t.hash, t.deleted_ms))
            .collect();
        let local_tombs: HashSet<(&MessageHash, Millis, Millis)> = local
            .tombstones
            .iter()
            .map(|t| (&t.hash, t.deleted_ms, t.keep_until_ms))
            .collect();

        let store = &self.inner.store;
        let mut tombs = 0usize;
        let mut tomb_replies = Vec::new();
        for t in &remote.tombstones {
            if local_tombs.contains(&(&t.hash, t.deleted_ms, t.keep_until_ms)) {
                continue;
            }
            let Ok(t) = t.to_store() else { continue };
            if t.owner != owner || t.namespace != ns {
                continue;
            }
            let d = deleted.entry(t.hash).or_insert(t.deleted_ms);
            *d = (*d).max(t.deleted_ms);
            tomb_replies.push(store.apply_remote_tombstone(t, now));
        }
        for r in tomb_replies {
            match r.await {
                Ok(ApplyOutcome::Changed) => tombs += 1,
                Ok(_) => {}
                Err(source) => {
                    return Err(ReplicaError::Store {
                        what: "applying a tombstone",
                        source,
                    });
                }
            }
        }

        let mut expiry_replies = Vec::new();
        for v in &remote.messages {
            let incoming = (v.timestamp_ms, v.expiry_version, v.expiry_ms);
            match local_msgs.get(&v.hash) {
                Some(l) => {
                    if incoming > *l {
                        let e = ExpiryUpdate {
                            owner,
                            hash: v.hash,
                            timestamp_ms: v.timestamp_ms,
                            expiry_ms: v.expiry_ms,
                            expiry_version: v.expiry_version,
                        };
                        expiry_replies.push((v.hash, store.apply_remote_expiry(e, now)));
                    }
                }
                None => {
                    let beaten = deleted.get(&v.hash).is_some_and(|d| *d >= v.timestamp_ms);
                    if !beaten && v.expiry_ms > now {
                        pulls.push(v.hash);
                    }
                }
            }
        }
        let mut expiries = 0usize;
        for (hash, r) in expiry_replies {
            match r.await {
                Ok(ApplyOutcome::Changed) => expiries += 1,
                // Swept or deleted here in the meantime: pull the whole message instead.
                Ok(ApplyOutcome::NotFound) => pulls.push(hash),
                Ok(_) => {}
                Err(source) => {
                    return Err(ReplicaError::Store {
                        what: "applying an expiry change",
                        source,
                    });
                }
            }
        }
        report.expiries_applied += expiries;
        report.tombstones_applied += tombs;
        add(&self.inner.metrics.expiries_applied, expiries as u64);
        add(&self.inner.metrics.tombstones_applied, tombs as u64);
        Ok(())
    }

    /// Fetches full messages from a peer and applies them (hash and owner checked).
    async fn pull(
        &self,
        peer: &NodeEntry,
        view: &SwarmView,
        hashes: Vec<MessageHash>,
        report: &mut RoundReport,
    ) -> Result<(), ReplicaError> {
        let wanted: HashSet<MessageHash> = hashes.iter().copied().collect();
        let resp: ReplicasResponse = self
            .call(peer, Endpoint::Replicas, &ReplicasRequest { hashes })
            .await?;
        let now = self.now();
        let mut replies = Vec::new();
        for w in resp.messages {
            let m = match w.to_store(self.inner.config.max_message_bytes) {
                Ok(m) => m,
                Err(_) => {
                    add(&self.inner.metrics.bad_replicas, 1);
                    continue;
                }
            };
            if !wanted.contains(&m.hash) || !view.is_ours(&m.owner) {
                add(&self.inner.metrics.bad_replicas, 1);
                continue;
            }
            replies.push(self.inner.store.apply_remote_message(m, now));
        }
        let mut pulled = 0usize;
        for r in replies {
            match r.await {
                Ok(ApplyOutcome::Changed) => pulled += 1,
                Ok(_) => {}
                Err(source) => {
                    return Err(ReplicaError::Store {
                        what: "applying a pulled message",
                        source,
                    });
                }
            }
        }
        report.messages_pulled += pulled;
        add(&self.inner.metrics.messages_pulled, pulled as u64);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Handover
    // -----------------------------------------------------------------------------------------

    /// One handover round: every bucket held here whose account maps to another swarm (a new
    /// swarm appeared, this node's swarm dissolved, or this node left its swarm) is pushed to
    /// the members of the owning swarm, messages and tombstones; once a member acknowledged a
    /// whole bucket durably, its messages are dropped here (without a tombstone, so nothing is
    /// deleted elsewhere). Buckets nobody acknowledged are kept and retried next round. Idle
    /// until this node is listed by the registry and swarms exist.
    pub async fn handover_round(&self) -> HandoverReport {
        let _guard = self.inner.rounds.lock().await;
        let mut report = HandoverReport::default();
        let view = self.inner.view.get();
        if view.swarms().is_empty() || !view.is_listed() {
            return report;
        }
        let now = self.now();
        let digests = match self
            .read("reading digests", move |s| s.bucket_digests(None, now))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("handover: {}", e.report());
                return report;
            }
        };
        let foreign: Vec<(BucketDigest, u64)> = {
            let mut handed = lock(&self.inner.handed);
            if handed.0 != view.epoch() {
                *handed = (view.epoch(), HashMap::new());
            }
            digests
                .into_iter()
                .filter_map(|d| {
                    let target = view.swarm_for(&d.owner)?;
                    if Some(target) == view.our_swarm() {
                        return None;
                    }
                    if handed.1.get(&(d.owner, d.namespace)) == Some(&d.digest) {
                        return None;
                    }
                    Some((d, target))
                })
                .take(self.inner.config.handover_buckets_per_round.max(1))
                .collect()
        };
        report.buckets = foreign.len();
        for (d, target) in foreign {
            let members: Vec<NodeEntry> = view.members(target).to_vec();
            if members.is_empty() {
                report.buckets_failed += 1;
                continue;
            }
            match self
                .hand_over_bucket(d.owner, d.namespace, &members, &mut report)
                .await
            {
                Ok(true) => {
                    report.buckets_acknowledged += 1;
                    let owner = d.owner;
                    let ns = d.namespace;
                    let after = self
                        .read("reading digests", move |s| {
                            s.bucket_digests(Some(&owner), now)
                        })
                        .await
                        .ok()
                        .and_then(|v| v.into_iter().find(|b| b.namespace == ns));
                    if let Some(after) = after {
                        let mut handed = lock(&self.inner.handed);
                        if handed.1.len() < 1_000_000 {
                            handed.1.insert((owner, ns), after.digest);
                        }
                    }
                }
                Ok(false) => {
                    report.buckets_failed += 1;
                    add(&self.inner.metrics.handover_failed, 1);
                }
                Err(e) => {
                    report.buckets_failed += 1;
                    add(&self.inner.metrics.handover_failed, 1);
                    tracing::warn!("handover: {}", e.report());
                }
            }
        }
        report
    }

    /// Hands one bucket over; `Ok(true)` when every batch was acknowledged and the messages were
    /// dropped here.
    async fn hand_over_bucket(
        &self,
        owner: AccountId,
        ns: Namespace,
        members: &[NodeEntry],
        report: &mut HandoverReport,
    ) -> Result<bool, ReplicaError> {
        let now = self.now();
        let entries: BucketEntries = self
            .read("reading bucket entries", move |s| {
                s.bucket_entries(&owner, ns, now)
            })
            .await?;
        let hashes: Vec<MessageHash> = entries.messages.iter().map(|m| m.hash).collect();
        let mut messages: Vec<ReplicaMessage> = Vec::with_capacity(hashes.len());
        for chunk in hashes.chunks(MAX_HASHES_PER_REQUEST) {
            let chunk = chunk.to_vec();
            let mut got = self
                .read("reading replicas", move |s| s.get_replicas(&chunk, now))
                .await?;
            messages.append(&mut got);
        }
        // Batches bounded by item count and data size.
        let mut batches: Vec<HandoverRequest> = Vec::new();
        let mut cur = HandoverRequest::default();
        let mut cur_bytes = 0usize;
        for t in &entries.tombstones {
            if cur.messages.len() + cur.tombstones.len() >= MAX_HANDOVER_ITEMS {
                batches.push(std::mem::take(&mut cur));
                cur_bytes = 0;
            }
            cur.tombstones.push(WireTombstone::from_store(t));
        }
        for m in &messages {
            if cur.messages.len() + cur.tombstones.len() >= MAX_HANDOVER_ITEMS
                || cur_bytes + m.data.len() > MAX_HANDOVER_DATA_BYTES
            {
                batches.push(std::mem::take(&mut cur));
                cur_bytes = 0;
            }
            cur_bytes += m.data.len();
            cur.messages.push(WireReplica::from_store(m));
        }
        if !cur.messages.is_empty() || !cur.tombstones.is_empty() {
            batches.push(cur);
        }
        for batch in &batches {
            if !self.push_to_any(members, batch).await {
                return Ok(false);
            }
            report.messages_sent += batch.messages.len();
            report.tombstones_sent += batch.tombstones.len();
            add(
                &self.inner.metrics.handover_messages,
                batch.messages.len() as u64,
            );
            add(
                &self.inner.metrics.handover_tombstones,
                batch.tombstones.len() as u64,
            );
        }
        // Acknowledged: drop the messages here without a tombstone, by moving their state to an
        // expired one that wins over any version (they vanish from reads and digests at once and
        // the sweep removes the rows). Tombstones stay until their own keep time.
        let now = self.now();
        let replies: Vec<_> = messages
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
                Ok(ApplyOutcome::Changed) => {
                    report.messages_dropped += 1;
                    add(&self.inner.metrics.handover_dropped, 1);
                }
                Ok(_) => {}
                Err(source) => {
                    return Err(ReplicaError::Store {
                        what: "dropping handed-over messages",
                        source,
                    });
                }
            }
        }
        Ok(true)
    }

    /// Sends a handover batch to every member concurrently; `true` if at least one acknowledged.
    async fn push_to_any(&self, members: &[NodeEntry], batch: &HandoverRequest) -> bool {
        let Ok(body) = serde_json::to_vec(batch) else {
            return false;
        };
        let mut set = JoinSet::new();
        for m in members {
            let client = self.inner.client.clone();
            let m = m.clone();
            let body = body.clone();
            set.spawn(async move {
                let r = client.call_raw(&m, Endpoint::Handover, body).await;
                matches!(r, Ok(RawAnswer { status: 200, .. }))
            });
        }
        let mut acked = false;
        while let Some(r) = set.join_next().await {
            if matches!(r, Ok(true)) {
                acked = true;
            } else {
                add(&self.inner.metrics.peer_errors, 1);
            }
        }
        acked
    }

    // -----------------------------------------------------------------------------------------
    // Serving peers
    // -----------------------------------------------------------------------------------------

    /// Authenticates and authorises a request; on success it is recorded in the replay cache.
    pub(crate) fn admit(
        &self,
        auth: &RequestAuth,
        endpoint: Endpoint,
        body: &[u8],
    ) -> Result<(), Served> {
        let now = self.now();
        let our_key = self.our_key();
        if let Err(e) = auth.verify(
            &our_key,
            "POST",
            endpoint.path(),
            body,
            now,
            self.inner.config.max_clock_skew_ms,
        ) {
            return Err(Served::error(401, &e.to_string()));
        }
        let view = self.inner.view.get();
        let allowed = match endpoint {
            Endpoint::Handover => auth.sender != our_key && view.node(&auth.sender).is_some(),
            _ => view.is_peer(&auth.sender),
        };
        if !allowed {
            let why = if view.node(&auth.sender).is_some() {
                "sender is not an active member of this node's swarm"
            } else {
                "sender is not a registered node"
            };
            return Err(Served::error(403, why));
        }
        if let Err(e) = lock(&self.inner.replay).check_and_insert(auth, now) {
            return Err(Served::error(401, &e.to_string()));
        }
        Ok(())
    }

    pub(crate) fn count_request(&self, served: bool) {
        if served {
            add(&self.inner.metrics.requests_served, 1);
        } else {
            add(&self.inner.metrics.requests_refused, 1);
        }
    }

    /// Serves an admitted request.
    pub(crate) async fn serve(&self, endpoint: Endpoint, body: &[u8]) -> Served {
        let r = match endpoint {
            Endpoint::Forward => self.serve_forward(body).await,
            Endpoint::Digests => self.serve_digests(body).await,
            Endpoint::Entries => self.serve_entries(body).await,
            Endpoint::Replicas => self.serve_replicas(body).await,
            Endpoint::Handover => self.serve_handover(body).await,
        };
        r.unwrap_or_else(|e| e)
    }

    async fn serve_forward(&self, body: &[u8]) -> Result<Served, Served> {
        let req: ForwardRequest = parse(body)?;
        if !RECURSIVE_METHODS.contains(&req.method.as_str()) {
            return Err(Served::error(400, "not a recursive method"));
        }
        if !req.params.is_object() {
            return Err(Served::error(400, "params must be an object"));
        }
        let Some(handler) = self.inner.handler.get() else {
            return Err(Served::error(503, "forwarded writes not accepted yet"));
        };
        let reply = handler
            .handle_forwarded(req.method, req.params, self.now())
            .await;
        Ok(Served::json(&ForwardResponse {
            status: reply.status,
            body: reply.body,
        }))
    }

    async fn own_digests(&self, continuing: bool) -> Result<Arc<Vec<WireDigest>>, Served> {
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
        let list: Arc<Vec<WireDigest>> = Arc::new(
            all.iter()
                .filter(|d| view.is_ours(&d.owner))
                .map(WireDigest::from_store)
                .collect(),
        );
        *lock(&self.inner.digest_cache) = Some((now, view.epoch(), list.clone()));
        Ok(list)
    }

    async fn serve_digests(&self, body: &[u8]) -> Result<Served, Served> {
        let req: DigestsRequest = parse(body)?;
        let limit = req.limit.clamp(1, MAX_DIGESTS_PER_PAGE);
        let all = self.own_digests(req.after.is_some()).await?;
        // The listing is sorted by (owner, namespace); hex keeps the byte order.
        let start = match &req.after {
            Some(after) => all.partition_point(|w| {
                (w.owner.as_str(), w.namespace) <= (after.owner.as_str(), after.namespace)
            }),
            None => 0,
        };
        let rest = all.get(start..).unwrap_or(&[]);
        let buckets: Vec<WireDigest> = rest.iter().take(limit).cloned().collect();
        let more = rest.len() > limit;
        Ok(Served::json(&DigestsResponse { buckets, more }))
    }

    async fn serve_entries(&self, body: &[u8]) -> Result<Served, Served> {
        let req: EntriesRequest = parse(body)?;
        if req.buckets.len() > MAX_BUCKETS_PER_REQUEST {
            return Err(Served::error(400, "too many buckets"));
        }
        let view = self.inner.view.get();
        let mut wanted = Vec::with_capacity(req.buckets.len());
        for b in &req.buckets {
            let (owner, ns) = b.parse().map_err(|_| Served::error(400, "bad bucket"))?;
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
                            .map(|e| WireBucket::from_store(o, *ns, &e))
                    })
                    .collect::<umbra_store::Result<Vec<_>>>()
            })
            .await
            .map_err(|e| store_failed(&e))?;
        Ok(Served::json(&EntriesResponse { buckets }))
    }

    async fn serve_replicas(&self, body: &[u8]) -> Result<Served, Served> {
        let req: ReplicasRequest = parse(body)?;
        if req.hashes.len() > MAX_HASHES_PER_REQUEST {
            return Err(Served::error(400, "too many hashes"));
        }
        let view = self.inner.view.get();
        let now = self.now();
        let hashes = req.hashes;
        let found = self
            .read("serving replicas", move |s| s.get_replicas(&hashes, now))
            .await
            .map_err(|e| store_failed(&e))?;
        let messages = found
            .iter()
            .filter(|m| view.is_ours(&m.owner))
            .map(WireReplica::from_store)
            .collect();
        Ok(Served::json(&ReplicasResponse { messages }))
    }

    async fn serve_handover(&self, body: &[u8]) -> Result<Served, Served> {
        let req: HandoverRequest = parse(body)?;
        if req.messages.len() + req.tombstones.len() > MAX_HANDOVER_ITEMS {
            return Err(Served::error(400, "too many items"));
        }
        let view = self.inner.view.get();
        let max = self.inner.config.max_message_bytes;
        let mut messages = Vec::with_capacity(req.messages.len());
        let mut data_bytes = 0usize;
        for w in &req.messages {
            let m = w.to_store(max).map_err(|e| {
                add(&self.inner.metrics.bad_replicas, 1);
                Served::error(400, &e.to_string())
            })?;
            data_bytes += m.data.len();
            if data_bytes > MAX_HANDOVER_DATA_BYTES {
                return Err(Served::error(400, "too much data"));
            }
            messages.push(m);
        }
        let mut tombstones = Vec::with_capacity(req.tombstones.len());
        for t in &req.tombstones {
            tombstones.push(
                t.to_store()
                    .map_err(|e| Served::error(400, &e.to_string()))?,
            );
        }
        let foreign = messages.iter().any(|m| !view.is_ours(&m.owner))
            || tombstones.iter().any(|t| !view.is_ours(&t.owner));
        if foreign {
            return Err(Served::error(
                421,
                "an account does not map to this node's swarm",
            ));
        }
        let now = self.now();
        let store = &self.inner.store;
        // Tombstones first, so that a message deleted in the old swarm does not come back here.
        let t_replies: Vec<_> = tombstones
            .into_iter()
            .map(|t| store.apply_remote_tombstone(t, now))
            .collect();
        let m_replies: Vec<_> = messages
            .into_iter()
            .map(|m| store.apply_remote_message(m, now))
            .collect();
        let mut resp = HandoverResponse {
            applied: 0,
            unchanged: 0,
        };
        for r in t_replies.into_iter().chain(m_replies) {
            match r.await {
                Ok(ApplyOutcome::Changed) => resp.applied += 1,
                Ok(_) => resp.unchanged += 1,
                Err(e) => {
                    tracing::warn!("handover: applying an item failed: {}", e.report());
                    return Err(Served::error(500, "applying the handover failed"));
                }
            }
        }
        Ok(Served::json(&resp))
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Served> {
    serde_json::from_slice(body).map_err(|_| Served::error(400, "malformed body"))
}

fn store_failed(e: &ReplicaError) -> Served {
    tracing::warn!("serving a peer: {}", e.report());
    Served::error(500, "message store error")
}

fn forward_outcome(
    r: Result<Result<RawAnswer, ReplicaError>, tokio::time::error::Elapsed>,
) -> MemberOutcome {
    let answer = match r {
        Err(_) | Ok(Err(ReplicaError::PeerTimeout { .. })) => {
            return MemberOutcome::Failed(FailureKind::Timeout);
        }
        Ok(Err(ReplicaError::PeerUnreachable { .. })) => {
            return MemberOutcome::Failed(FailureKind::QueryFailure);
        }
        Ok(Err(_)) => return MemberOutcome::Failed(FailureKind::BadPeerResponse),
        Ok(Ok(a)) => a,
    };
    if answer.status != 200 {
        return MemberOutcome::Failed(FailureKind::Code {
            status: answer.status,
            reason: truncate_reason(&String::from_utf8_lossy(&answer.body)),
        });
    }
    let Ok(fr) = serde_json::from_slice::<ForwardResponse>(&answer.body) else {
        return MemberOutcome::Failed(FailureKind::BadPeerResponse);
    };
    let ok_status = (200..300).contains(&fr.status) || fr.status == 404;
    match fr.body {
        Value::Object(_) if ok_status => MemberOutcome::Replied {
            status: fr.status,
            body: fr.body,
        },
        Value::String(s) => MemberOutcome::Failed(FailureKind::Code {
            status: fr.status,
            reason: truncate_reason(&s),
        }),
        other => MemberOutcome::Failed(FailureKind::Code {
            status: fr.status,
            reason: truncate_reason(&other.to_string()),
        }),
    }
}
