//! The replication engine: write fan-out, anti-entropy rounds, handover, and serving peers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use umbra_report::ErrorExt as _;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use umbra_crypto::{Ed25519PublicKey, Identity, MessageHash, Redacted};
use umbra_proto::umbra::peer::v2 as pb;
use umbra_store::{
    AccountId, ApplyOutcome, BucketDigest, BucketEntries, ExpiryUpdate, Millis, Namespace, Store,
};

use crate::client::{PeerClient, ReconcileCall, truncate_reason};
use crate::metrics::{ReplicaMetrics, add, set};
use crate::view::ViewHandle;
use crate::wire::{
    MAX_BUCKETS_PER_REQUEST, MAX_DIGESTS_PER_PAGE, MAX_HANDOVER_BUCKETS, MAX_HASHES_PER_REQUEST,
    bucket, bucket_from_wire, digest_from_wire, hash_to_bytes, replica_from_wire,
    tombstone_from_wire, version_from_wire,
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
    /// The member's answer was malformed.
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
    /// How long the entry node waits for each member's forwarded result (the reference: 5 s).
    pub forward_timeout: Duration,
    /// Timeout of reconciliation and handover calls.
    pub request_timeout: Duration,
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
    /// Largest message body accepted from a peer (76 800 bytes by the spec).
    pub max_message_bytes: usize,
    /// Most peer calls served at once (unary calls and open streams); beyond it a call is
    /// refused with `RESOURCE_EXHAUSTED`.
    pub max_inflight: usize,
    /// Most `Handover` calls made to one source per round (each takes up to
    /// `handover_buckets_per_round` buckets and acknowledges the previous call's).
    pub handover_calls_per_source: usize,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            forward_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            round_interval: Duration::from_secs(30),
            digest_page: 1024,
            buckets_per_peer_round: 16_384,
            max_pulls_per_peer_round: 4096,
            handover_buckets_per_round: 1024,
            max_message_bytes: 76_800,
            max_inflight: 256,
            handover_calls_per_source: 16,
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
    /// A peer had more to pull than [`ReplicaConfig::max_pulls_per_peer_round`] allowed: this
    /// node is far behind (back from a long absence), so [`Replica::run`] starts the next round
    /// at once instead of at the next tick.
    pub more: bool,
}

/// What one handover round did (on the receiving side: this node pulls the range its swarm
/// must take from every listed node outside its swarm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandoverReport {
    /// Nodes asked.
    pub sources: usize,
    /// Nodes whose calls failed (retried next round).
    pub sources_failed: usize,
    /// Buckets received whole (and acknowledged to their source).
    pub buckets: usize,
    /// Messages received.
    pub messages: usize,
    /// Tombstones received.
    pub tombstones: usize,
    /// Received items that changed local state.
    pub applied: usize,
}

pub(crate) type BucketId = (AccountId, Namespace);

/// `(computed at, view epoch, listing)`.
pub(crate) type CachedDigests = (Millis, u64, Arc<Vec<BucketDigest>>);

pub(crate) struct Inner {
    pub(crate) identity: Arc<Identity>,
    pub(crate) store: Store,
    pub(crate) view: ViewHandle,
    pub(crate) clock: Arc<dyn Clock>,
    forward_client: PeerClient,
    client: PeerClient,
    pub(crate) config: ReplicaConfig,
    pub(crate) handler: OnceLock<Arc<dyn ForwardHandler>>,
    pub(crate) metrics: Arc<ReplicaMetrics>,
    pub(crate) inflight: Arc<tokio::sync::Semaphore>,
    /// Per peer: where the next round continues in its digest listing.
    cursors: Mutex<HashMap<Ed25519PublicKey, BucketId>>,
    /// Foreign buckets already handed over (acknowledged and dropped) at a given view epoch,
    /// with their digest after the drop.
    pub(crate) handed: Mutex<(u64, HashMap<BucketId, [u8; 32]>)>,
    /// The own-swarm digest listing served to peers: `(computed at, view epoch, listing)`.
    /// A first page (no cursor) always recomputes it; later pages of a pass reuse it for up to
    /// [`DIGEST_CACHE_MS`], so that paging does not rescan the table for every page.
    pub(crate) digest_cache: Mutex<Option<CachedDigests>>,
    rounds: tokio::sync::Mutex<()>,
}

/// How long a served digest listing is reused (a stale page only delays a pull by one round).
pub(crate) const DIGEST_CACHE_MS: Millis = 2_000;

/// Pause between back-to-back anti-entropy rounds while a node catches up
/// ([`RoundReport::more`]).
const CATCH_UP_PAUSE: Duration = Duration::from_millis(100);

/// The swarm replication engine of one storage node. Cheap to clone.
#[derive(Clone)]
pub struct Replica {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn short(key: &Ed25519PublicKey) -> Redacted<String> {
    Redacted::new(hex::encode(key))
}

impl Replica {
    /// An engine for the node `identity` with this store and membership view.
    pub fn new(
        config: ReplicaConfig,
        identity: Arc<Identity>,
        store: Store,
        view: ViewHandle,
        clock: Arc<dyn Clock>,
    ) -> Replica {
        let forward_client = PeerClient::new(&identity, config.forward_timeout);
        let client = PeerClient::new(&identity, config.request_timeout);
        let inflight = Arc::new(tokio::sync::Semaphore::new(config.max_inflight.max(1)));
        Replica {
            inner: Arc::new(Inner {
                identity,
                store,
                view,
                clock,
                forward_client,
                client,
                config,
                handler: OnceLock::new(),
                metrics: Arc::default(),
                inflight,
                cursors: Mutex::new(HashMap::new()),
                handed: Mutex::new((0, HashMap::new())),
                digest_cache: Mutex::new(None),
                rounds: tokio::sync::Mutex::new(()),
            }),
        }
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

    pub(crate) fn now(&self) -> Millis {
        self.inner.clock.now_ms_i64()
    }

    pub(crate) async fn read<T: Send + 'static>(
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
        let body = serde_json::to_vec(params).map(|params_json| pb::ForwardRequest {
            method: method.to_string(),
            params_json,
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
                let r = tokio::time::timeout(timeout, client.forward(&p, &body)).await;
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
    /// [`ReplicaConfig::round_interval`], whenever the membership view changes, and soon after a
    /// round that stopped at its pull budget ([`RoundReport::more`]), until `stop` turns `true`
    /// (or its sender is dropped). Spawn it as a background task.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut views = self.inner.view.subscribe();
        let mut views_open = true;
        let mut tick = tokio::time::interval(self.inner.config.round_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Whether the last round stopped at its pull budget with more to pull.
        let mut behind = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                // Far behind: the next round now (after a breath for the node's other work),
                // not a whole interval later. A member back from a long absence otherwise
                // caught up at one budget per interval (≈ 550 messages/s with 4 peers,
                // BENCHMARKS.md), a third of the time working.
                () = tokio::time::sleep(CATCH_UP_PAUSE), if behind => {}
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
            behind = r.more;
            if r.errors > 0 {
                tracing::debug!(
                    errors = r.errors,
                    reachable = r.peers_reachable,
                    peers = r.peers,
                    "anti-entropy round had errors"
                );
            }
            let h = self.handover_round().await;
            if h.sources_failed > 0 {
                tracing::info!(
                    failed = h.sources_failed,
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
        // Timed after taking the lock: a round waiting for a handover round is not working.
        let started = self.inner.clock.instant();
        let report = self.reconcile_round_locked().await;
        let busy = self.inner.clock.since(started).as_micros();
        add(
            &self.inner.metrics.round_busy_us,
            u64::try_from(busy).unwrap_or(u64::MAX),
        );
        report
    }

    async fn reconcile_round_locked(&self) -> RoundReport {
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

    async fn reconcile_with(
        &self,
        view: &SwarmView,
        peer: &NodeEntry,
        local: &HashMap<BucketId, [u8; 32]>,
        report: &mut RoundReport,
    ) -> Result<(), ReplicaError> {
        let cfg = &self.inner.config;
        let key = peer.pubkey_ed25519;
        let start = lock(&self.inner.cursors).get(&key).copied();
        let mut cursor = start;
        let budget = cfg.buckets_per_peer_round.max(1);
        let mut compared = 0usize;
        let mut differing: Vec<BucketId> = Vec::new();
        // One stream per peer and round: opened by the first request.
        let mut stream = Stream {
            client: &self.inner.client,
            peer,
            call: None,
            metrics: &self.inner.metrics,
        };
        while compared < budget {
            let limit = cfg
                .digest_page
                .clamp(1, MAX_DIGESTS_PER_PAGE)
                .min(budget - compared);
            let ask = pb::reconcile_request::Ask::Digests(pb::DigestsRequest {
                after: cursor.map(|(o, ns)| bucket(&o, ns)),
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
            });
            let Some(pb::reconcile_response::Answer::Digests(page)) = stream.ask(ask).await? else {
                return Err(bad_answer("a digest page was expected"));
            };
            if page.buckets.len() > limit {
                return Err(bad_answer("more buckets than asked for"));
            }
            let mut last = None;
            for d in &page.buckets {
                compared += 1;
                let Ok(d) = digest_from_wire(d) else {
                    continue;
                };
                last = Some((d.owner, d.namespace));
                if !view.is_ours(&d.owner) {
                    continue;
                }
                if local.get(&(d.owner, d.namespace)) != Some(&d.digest) {
                    differing.push((d.owner, d.namespace));
                }
            }
            if !page.more || last.is_none() {
                cursor = None;
                break;
            }
            cursor = last;
        }
        report.buckets_compared += compared;
        report.buckets_differing += differing.len();
        add(&self.inner.metrics.buckets_compared, compared as u64);
        add(
            &self.inner.metrics.buckets_differing,
            differing.len() as u64,
        );

        // Entries are asked for only while the pull budget lasts, and the next round resumes
        // at the first differing bucket not wholly pulled: a member far behind neither fetches
        // entries it cannot act on this round nor skips buckets until the next full pass.
        let max_pulls = cfg.max_pulls_per_peer_round;
        let mut pulls: Vec<MessageHash> = Vec::new();
        let mut pulled_total = 0usize;
        // Per differing bucket handled: the pulls queued up to and including it.
        let mut queued_through: Vec<usize> = Vec::with_capacity(differing.len());
        for chunk in differing.chunks(MAX_BUCKETS_PER_REQUEST) {
            if pulled_total + pulls.len() >= max_pulls {
                break;
            }
            let ask = pb::reconcile_request::Ask::Entries(pb::EntriesRequest {
                buckets: chunk.iter().map(|(o, ns)| bucket(o, *ns)).collect(),
            });
            let Some(pb::reconcile_response::Answer::Entries(entries)) = stream.ask(ask).await?
            else {
                return Err(bad_answer("entries were expected"));
            };
            // The peer's answer for each bucket of the chunk, in the chunk's order (a bucket
            // it left out has nothing to pull).
            let mut answers: HashMap<BucketId, &pb::BucketEntries> = HashMap::new();
            for remote in &entries.buckets {
                if let Some(Ok(id)) = remote.bucket.as_ref().map(bucket_from_wire)
                    && chunk.contains(&id)
                {
                    answers.entry(id).or_insert(remote);
                }
            }
            for id in chunk {
                if let Some(remote) = answers.get(id) {
                    self.merge_bucket(id.0, id.1, remote, &mut pulls, report)
                        .await?;
                }
                queued_through.push(pulled_total + pulls.len());
                while pulls.len() >= MAX_HASHES_PER_REQUEST && pulled_total < max_pulls {
                    let batch: Vec<MessageHash> = pulls.drain(..MAX_HASHES_PER_REQUEST).collect();
                    pulled_total += batch.len();
                    self.pull(&mut stream, view, batch, report).await?;
                }
            }
        }
        let room = max_pulls.saturating_sub(pulled_total);
        pulls.truncate(room);
        if !pulls.is_empty() {
            pulled_total += pulls.len();
            self.pull(&mut stream, view, pulls, report).await?;
        }
        // The first differing bucket left with pulls undone (or not reached): the next round
        // starts right before it.
        let unfinished = queued_through
            .iter()
            .position(|q| *q > pulled_total)
            .or((queued_through.len() < differing.len()).then_some(queued_through.len()));
        if let Some(i) = unfinished {
            report.more = true;
            cursor = match i.checked_sub(1) {
                Some(before) => Some(differing[before]),
                None => start,
            };
        }
        let mut cursors = lock(&self.inner.cursors);
        match cursor {
            Some(c) => cursors.insert(key, c),
            None => cursors.remove(&key),
        };
        Ok(())
    }

    /// Applies a peer's tombstones and newer expiries of one bucket and lists the messages to
    /// pull.
    async fn merge_bucket(
        &self,
        owner: AccountId,
        ns: Namespace,
        remote: &pb::BucketEntries,
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
            let Ok(t) = tombstone_from_wire(t) else {
                continue;
            };
            if local_tombs.contains(&(&t.hash, t.deleted_ms, t.keep_until_ms)) {
                continue;
            }
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
            let Ok(v) = version_from_wire(v) else {
                continue;
            };
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
        stream: &mut Stream<'_>,
        view: &SwarmView,
        hashes: Vec<MessageHash>,
        report: &mut RoundReport,
    ) -> Result<(), ReplicaError> {
        let wanted: HashSet<MessageHash> = hashes.iter().copied().collect();
        let ask = pb::reconcile_request::Ask::Replicas(pb::ReplicasRequest {
            hashes: hashes.iter().map(hash_to_bytes).collect(),
        });
        let Some(pb::reconcile_response::Answer::Replicas(resp)) = stream.ask(ask).await? else {
            return Err(bad_answer("messages were expected"));
        };
        let now = self.now();
        let mut replies = Vec::new();
        for w in &resp.messages {
            let m = match replica_from_wire(w, self.inner.config.max_message_bytes) {
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
    // Handover (receiving side; the serving side is in `server.rs`)
    // -----------------------------------------------------------------------------------------

    /// One handover round: this node asks every listed node outside its swarm for the range
    /// of accounts that now map to its swarm (a new swarm appeared, a swarm dissolved, a node
    /// left its swarm), applies it durably — tombstones first, every message's hash checked,
    /// every account checked to map here — and acknowledges each bucket received whole in the
    /// next call, upon which the source drops its copies (without a tombstone, so nothing is
    /// deleted elsewhere). Nodes that fail are retried next round. Idle until this node is in
    /// a swarm of the registry's list.
    pub async fn handover_round(&self) -> HandoverReport {
        let _guard = self.inner.rounds.lock().await;
        let mut report = HandoverReport::default();
        let view = self.inner.view.get();
        let Some(ours) = view.our_swarm() else {
            return report;
        };
        if !view.is_listed() {
            return report;
        }
        let our_key = self.our_key();
        let sources: Vec<NodeEntry> = view
            .nodes()
            .values()
            .filter(|n| n.pubkey_ed25519 != our_key)
            .filter(|n| {
                !view
                    .members(ours)
                    .iter()
                    .any(|m| m.pubkey_ed25519 == n.pubkey_ed25519)
            })
            .cloned()
            .collect();
        for source in &sources {
            report.sources += 1;
            if let Err(e) = self.take_from(&view, source, &mut report).await {
                report.sources_failed += 1;
                add(&self.inner.metrics.handover_failed, 1);
                add(&self.inner.metrics.peer_errors, 1);
                tracing::debug!(peer = %short(&source.pubkey_ed25519), "handover from a node failed: {}", e.report());
            }
        }
        report
    }

    /// Takes this swarm's range from one node: calls until a call brings no bucket (that last
    /// call carries the final acknowledgements).
    async fn take_from(
        &self,
        view: &SwarmView,
        source: &NodeEntry,
        report: &mut HandoverReport,
    ) -> Result<(), ReplicaError> {
        let max_buckets = self
            .inner
            .config
            .handover_buckets_per_round
            .clamp(1, MAX_HANDOVER_BUCKETS);
        let mut acks: Vec<pb::BucketDigest> = Vec::new();
        for _ in 0..self.inner.config.handover_calls_per_source.max(1) {
            let req = pb::HandoverRequest {
                acknowledged: std::mem::take(&mut acks),
                max_buckets: u32::try_from(max_buckets).unwrap_or(u32::MAX),
            };
            let mut call = self.inner.client.handover(source, &req).await?;
            let mut got_any = false;
            while let Some(batch) = call.next().await? {
                got_any = true;
                self.apply_handover_batch(view, &batch, report).await?;
                if let Some(done) = batch.done {
                    // Acknowledged in the next call only once everything before is durable
                    // (apply_handover_batch waited for every write).
                    if acks.len() < MAX_HANDOVER_BUCKETS {
                        report.buckets += 1;
                        acks.push(done);
                    }
                }
            }
            if !got_any && acks.is_empty() {
                return Ok(());
            }
        }
        // Out of calls: the remaining acknowledgements go with the next round's first call
        // (the source then sends those buckets again; applying them twice changes nothing).
        Ok(())
    }

    async fn apply_handover_batch(
        &self,
        view: &SwarmView,
        batch: &pb::HandoverBatch,
        report: &mut HandoverReport,
    ) -> Result<(), ReplicaError> {
        let bad = |reason: &'static str| ReplicaError::BadPeerResponse {
            endpoint: "handover",
            reason: reason.into(),
        };
        if batch.messages.len() + batch.tombstones.len() > crate::wire::MAX_HANDOVER_ITEMS {
            return Err(bad("too many items in a batch"));
        }
        let mut tombstones = Vec::with_capacity(batch.tombstones.len());
        for t in &batch.tombstones {
            let t = tombstone_from_wire(t).map_err(|_| bad("malformed tombstone"))?;
            if !view.is_ours(&t.owner) {
                return Err(bad("an account that does not map to this swarm"));
            }
            tombstones.push(t);
        }
        let mut messages = Vec::with_capacity(batch.messages.len());
        for m in &batch.messages {
            let Ok(m) = replica_from_wire(m, self.inner.config.max_message_bytes) else {
                add(&self.inner.metrics.bad_replicas, 1);
                return Err(bad("a message whose hash does not match"));
            };
            if !view.is_ours(&m.owner) {
                return Err(bad("an account that does not map to this swarm"));
            }
            messages.push(m);
        }
        report.messages += messages.len();
        report.tombstones += tombstones.len();
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
        for r in t_replies.into_iter().chain(m_replies) {
            match r.await {
                Ok(ApplyOutcome::Changed) => report.applied += 1,
                Ok(_) => {}
                Err(source) => {
                    return Err(ReplicaError::Store {
                        what: "applying a handover",
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The anti-entropy stream with one peer, opened by its first request.
struct Stream<'a> {
    client: &'a PeerClient,
    peer: &'a NodeEntry,
    call: Option<ReconcileCall>,
    /// Where the stream's requests and message bytes are counted.
    metrics: &'a ReplicaMetrics,
}

/// Bytes a message takes in a gRPC stream: its protobuf encoding and the 5-byte length prefix
/// (compression flag and length). HTTP/2 frame headers and TLS records are not counted: they
/// are below tonic, and at the sizes of digest pages and replica batches they add little.
fn grpc_message_bytes(m: &impl prost::Message) -> u64 {
    u64::try_from(m.encoded_len())
        .unwrap_or(u64::MAX)
        .saturating_add(5)
}

impl Stream<'_> {
    async fn ask(
        &mut self,
        ask: pb::reconcile_request::Ask,
    ) -> Result<Option<pb::reconcile_response::Answer>, ReplicaError> {
        let req = pb::ReconcileRequest { ask: Some(ask) };
        add(&self.metrics.reconcile_asks, 1);
        add(&self.metrics.reconcile_bytes_sent, grpc_message_bytes(&req));
        let answer = match &mut self.call {
            Some(call) => call.ask(&req).await?,
            None => {
                let (call, answer) = self.client.reconcile(self.peer, &req).await?;
                self.call = Some(call);
                answer
            }
        };
        let bytes = grpc_message_bytes(&answer);
        add(&self.metrics.reconcile_bytes_received, bytes);
        if matches!(
            answer.answer,
            Some(pb::reconcile_response::Answer::Replicas(_))
        ) {
            add(&self.metrics.reconcile_replica_bytes_received, bytes);
        }
        Ok(answer.answer)
    }
}

fn bad_answer(reason: &'static str) -> ReplicaError {
    ReplicaError::BadPeerResponse {
        endpoint: "reconcile",
        reason: reason.into(),
    }
}

/// The HTTP status a peer's gRPC refusal stands for in a member's failure entry.
fn http_status_of(code: tonic::Code) -> u16 {
    match code {
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => 400,
        tonic::Code::Unauthenticated => 401,
        tonic::Code::PermissionDenied => 403,
        tonic::Code::NotFound => 404,
        tonic::Code::FailedPrecondition => 421,
        tonic::Code::ResourceExhausted => 429,
        tonic::Code::Unavailable => 503,
        tonic::Code::DeadlineExceeded => 504,
        _ => 500,
    }
}

fn forward_outcome(
    r: Result<Result<pb::ForwardResponse, ReplicaError>, tokio::time::error::Elapsed>,
) -> MemberOutcome {
    let answer = match r {
        Err(_) | Ok(Err(ReplicaError::PeerTimeout { .. })) => {
            return MemberOutcome::Failed(FailureKind::Timeout);
        }
        Ok(Err(ReplicaError::PeerUnreachable { .. })) => {
            return MemberOutcome::Failed(FailureKind::QueryFailure);
        }
        Ok(Err(ReplicaError::PeerRefused { code, reason, .. })) => {
            return MemberOutcome::Failed(FailureKind::Code {
                status: http_status_of(code),
                reason,
            });
        }
        Ok(Err(_)) => return MemberOutcome::Failed(FailureKind::BadPeerResponse),
        Ok(Ok(a)) => a,
    };
    let (Ok(status), Ok(body)) = (
        u16::try_from(answer.status),
        serde_json::from_slice::<Value>(&answer.body_json),
    ) else {
        return MemberOutcome::Failed(FailureKind::BadPeerResponse);
    };
    let ok_status = (200..300).contains(&status) || status == 404;
    match body {
        Value::Object(_) if ok_status => MemberOutcome::Replied { status, body },
        Value::String(s) => MemberOutcome::Failed(FailureKind::Code {
            status,
            reason: truncate_reason(&s),
        }),
        other => MemberOutcome::Failed(FailureKind::Code {
            status,
            reason: truncate_reason(&other.to_string()),
        }),
    }
}
