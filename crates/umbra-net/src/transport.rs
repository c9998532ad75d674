//! [`OnionTransport`]: every request of the client, through a tested onion path.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use umbra_report::ErrorExt as _;

use umbra_crypto::hop::EncType;
use umbra_crypto::{AccountId, Ed25519PublicKey, OsRandom, Random, Redacted};
use umbra_nodelist::list::{NodeEntry, TrustPolicy};
use umbra_onion::{
    Destination as OnionDestination, Hop, PendingReply, Reply, RequestBuilder, Server,
    StorageReply, V4Request, V4Response,
};

use crate::directory::{MAX_LIST_BYTES, NetworkConfig, NodeDirectory};
use crate::link::{Edge, HttpConfig, HttpLink, LinkReply, OnionLink, RegistrySource};
use crate::paths::{
    Failure, Guard, GuardChurn, Path, PathConfig, PathManager, accuses_next_hop, random_below,
};
use crate::store::{GUARD_FILE_VERSION, GuardStore, PersistedState};
use crate::{ClientError, LinkError};
use umbra_clock::{Clock, SystemClock};

/// The storage RPC a new path is tested with: it names no account, so it reveals nothing
/// about the user (Session desktop tests guards with a direct `get_swarm` for the user's own
/// Session ID; we never do).
pub const PATH_TEST_REQUEST: &[u8] = br#"{"method":"info","params":{}}"#;

/// After a maintenance round that left fewer paths than wanted (but at least one), building
/// is not tried again for this long, so that sends on the live path are not delayed (30 s).
pub const BUILD_RETRY_MS: u64 = 30_000;

/// Targets a candidate path's test tries at most while the targets themselves are what fails
/// (a dead target says nothing about the path).
const PATH_TEST_TARGETS: usize = 4;

/// Candidate paths tried per maintenance round while at least one path is live.
const BUILD_ATTEMPTS_WITH_PATHS: usize = 2;

/// How the transport behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Paths, guards, strikes, rotation, subnet diversity.
    pub paths: PathConfig,
    /// How often the node list is fetched again (30 minutes).
    pub list_refresh_ms: u64,
    /// Attempts per request, each on another path where possible (4).
    pub attempts: usize,
    /// Candidate paths tried (and tested) per maintenance round before giving up (10).
    pub build_attempts: usize,
    /// First retry delay; doubles per retry (200 ms).
    pub backoff_min: Duration,
    /// Largest retry delay (5 s).
    pub backoff_max: Duration,
    /// Cipher of the onion layers (`xchacha20`, as libsession).
    pub enc_type: EncType,
    /// Directory where guards are persisted, created (0700) if missing (`None`: kept in
    /// memory only, and every run picks new guards: only for tests and throwaway clients).
    pub state_dir: Option<PathBuf>,
    /// HTTP settings of the real link.
    pub http: HttpConfig,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            paths: PathConfig::default(),
            list_refresh_ms: 30 * 60 * 1000,
            attempts: 4,
            build_attempts: 10,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            enc_type: EncType::XChaCha20,
            state_dir: None,
            http: HttpConfig::default(),
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// This storage node (by Ed25519 key; it must be in the verified list).
    Node(Ed25519PublicKey),
    /// Any node of the swarm that owns this 33-byte account, computed locally from the list;
    /// a `421` answer is followed to the swarm it names.
    Swarm(AccountId),
    /// An external server, reached through the path's last node.
    Server(Server),
}

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A storage RPC, `{"method": …, "params": {…}}` JSON (for [`Destination::Node`] and
    /// [`Destination::Swarm`]).
    Storage(Vec<u8>),
    /// A v4 request (for [`Destination::Server`]).
    Server(V4Request),
}

/// The destination's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// A storage node's answer (its real status inside: 200, 401, 406, …).
    Storage(StorageReply),
    /// The server's v4 answer.
    Server(V4Response),
    /// The server answered without encryption (the exit vouches for it), e.g. `400` when it
    /// could not decrypt the request.
    ServerUnencrypted {
        /// Its status.
        status: u16,
        /// Its body.
        body: Vec<u8>,
    },
}

struct State {
    dir: NodeDirectory,
    paths: PathManager,
}

struct Inner {
    config: TransportConfig,
    link: Arc<dyn OnionLink>,
    registry: Arc<dyn RegistrySource>,
    clock: Arc<dyn Clock>,
    rng: Mutex<Box<dyn Random + Send>>,
    state: Mutex<State>,
    store: Option<GuardStore>,
    /// Why the guard file found at start could not be used (it was replaced).
    replaced_guard_file: Option<ClientError>,
    maintenance: tokio::sync::Mutex<()>,
    /// No path building before this time (unix ms) while a path is live.
    build_retry_at: AtomicU64,
}

/// Sends storage RPCs and server requests through onion paths, and keeps those paths.
///
/// Cheap to clone (shared state). See the crate docs for the flow.
#[derive(Clone)]
pub struct OnionTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OnionTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnionTransport").finish_non_exhaustive()
    }
}

/// The onion hop of a list entry.
fn hop(n: &NodeEntry) -> Hop {
    Hop {
        ed25519: n.pubkey_ed25519,
        x25519: n.pubkey_x25519,
    }
}

fn redact(k: &Ed25519PublicKey) -> Redacted<String> {
    Redacted::new(hex::encode(k))
}

/// One attempt's result, before it is judged.
enum Outcome {
    Link(LinkError),
    Opened(Result<Reply, umbra_onion::ReplyError>),
}

impl OnionTransport {
    /// The real transport for `network`: HTTPS to guards and the registry, the system clock,
    /// the OS's randomness. Loads persisted guards from `config.state_dir`.
    ///
    /// # Errors
    /// [`ClientError::HttpClient`], [`ClientError::LoadingGuards`].
    pub fn new(network: &NetworkConfig, config: TransportConfig) -> Result<Self, ClientError> {
        let http = Arc::new(HttpLink::new(&network.registry_url, &config.http)?);
        Self::with_parts(
            network.trust_policy(),
            config,
            http.clone(),
            http,
            Arc::new(SystemClock),
            Box::new(OsRandom),
        )
    }

    /// A transport with the given links, clock and randomness (tests pass an in-memory
    /// network and a manual clock).
    ///
    /// Loads persisted guards from `config.state_dir`, creating the directory (0700) if it is
    /// missing. When there is no guard file yet, or the one there cannot be read or is
    /// corrupt, an empty one is written at once, so that a directory where the guards cannot
    /// be kept fails here, before any node is contacted, rather than every run choosing new
    /// guards. A guard file that was replaced is reported by [`Self::replaced_guard_file`]
    /// (tell the user: new guards will be chosen).
    ///
    /// # Errors
    /// [`ClientError::CreatingStateDir`], [`ClientError::SavingGuards`].
    pub fn with_parts(
        policy: TrustPolicy,
        config: TransportConfig,
        link: Arc<dyn OnionLink>,
        registry: Arc<dyn RegistrySource>,
        clock: Arc<dyn Clock>,
        rng: Box<dyn Random + Send>,
    ) -> Result<Self, ClientError> {
        let store = match config.state_dir.as_deref() {
            Some(dir) => Some(GuardStore::open(dir)?),
            None => None,
        };
        let mut replaced_guard_file = None;
        let saved = match &store {
            None => None,
            Some(s) => {
                let loaded = match s.load() {
                    Ok(loaded) => loaded,
                    Err(e) => {
                        tracing::warn!(error = %e, "the guard file cannot be used; replacing it");
                        replaced_guard_file = Some(e);
                        None
                    }
                };
                if loaded.is_none() {
                    s.save(&PersistedState {
                        version: GUARD_FILE_VERSION,
                        list_epoch: None,
                        guards: Vec::new(),
                        list_fetched_at_ms: None,
                    })?;
                }
                loaded
            }
        };
        let mut paths = PathManager::new(config.paths.clone());
        let mut dir = match &saved {
            Some(PersistedState {
                list_epoch: Some(e),
                ..
            }) => NodeDirectory::with_seen_epoch(policy, *e, config.list_refresh_ms),
            _ => NodeDirectory::new(policy, config.list_refresh_ms),
        };
        if let (Some(store), Some(fetched_at)) =
            (&store, saved.as_ref().and_then(|s| s.list_fetched_at_ms))
        {
            restore_list(store, &mut dir, fetched_at);
        }
        if let Some(s) = saved {
            paths.restore_guards(s.guards);
        }
        if let Some(list) = dir.list() {
            paths.on_new_list(list);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                link,
                registry,
                clock,
                rng: Mutex::new(rng),
                state: Mutex::new(State { dir, paths }),
                store,
                replaced_guard_file,
                maintenance: tokio::sync::Mutex::new(()),
                build_retry_at: AtomicU64::new(0),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn rng(&self) -> MutexGuard<'_, Box<dyn Random + Send>> {
        self.inner
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// The live paths (for status displays and tests).
    pub fn paths(&self) -> Vec<Path> {
        self.state().paths.paths().to_vec()
    }

    /// The current guards.
    pub fn guards(&self) -> Vec<Guard> {
        self.state().paths.guards().to_vec()
    }

    /// Guards chosen and dropped since this transport was made (a measure of how many nodes
    /// learned the user's address; see [`GuardChurn`]).
    pub fn guard_churn(&self) -> GuardChurn {
        self.state().paths.guard_churn()
    }

    /// The [`ClientError::LoadingGuards`] of a guard file that existed at start but could not
    /// be read or was corrupt: it was replaced, and new guards are chosen. `None` normally.
    pub fn replaced_guard_file(&self) -> Option<&ClientError> {
        self.inner.replaced_guard_file.as_ref()
    }

    /// The node entries of the current guards that are in the node list (for displays).
    pub fn guard_nodes(&self) -> Vec<NodeEntry> {
        let st = self.state();
        st.paths
            .guards()
            .iter()
            .filter_map(|g| st.dir.node(&g.node).cloned())
            .collect()
    }

    /// Strikes counted against a node.
    pub fn node_strikes(&self, node: &Ed25519PublicKey) -> u32 {
        self.state().paths.node_strikes(node)
    }

    /// Whether a node reached its strike threshold.
    pub fn is_failed(&self, node: &Ed25519PublicKey) -> bool {
        self.state().paths.is_failed(node)
    }

    /// The epoch of the newest verified node list.
    pub fn list_epoch(&self) -> Option<u64> {
        self.state().dir.seen_epoch()
    }

    /// The active members of the swarm owning `account`, computed locally (no `get_swarm`).
    pub fn swarm_of(&self, account: &AccountId) -> Vec<NodeEntry> {
        self.state().dir.swarm_of(account)
    }

    /// Writes the guards and the list epoch to the guard file (if there is one).
    ///
    /// # Errors
    /// [`ClientError::SavingGuards`]: guards that cannot be kept would be replaced by new ones
    /// at the next start, handing the user's address to more nodes, so this is never only a
    /// warning.
    fn persist(&self, state: &State) -> Result<(), ClientError> {
        let Some(store) = &self.inner.store else {
            return Ok(());
        };
        let saved = PersistedState {
            version: GUARD_FILE_VERSION,
            list_epoch: state.dir.seen_epoch(),
            guards: state.paths.guards().to_vec(),
            list_fetched_at_ms: state.dir.fetched_at_ms(),
        };
        store.save(&saved)
    }

    /// Fetches the node list now (whatever the schedule) and applies it. `Ok(true)` if it was
    /// newer. On any failure the last good list stays in use.
    ///
    /// # Errors
    /// [`ClientError::FetchingNodeList`], [`ClientError::RegistryStatus`],
    /// [`ClientError::VerifyingNodeList`] (e.g. an older epoch, a bad signature),
    /// [`ClientError::SavingGuards`].
    pub async fn refresh_list(&self) -> Result<bool, ClientError> {
        let fetched = self.inner.registry.fetch_list().await;
        let now = self.now();
        let mut st = self.state();
        let (result, body) = match fetched {
            Err(e) => (Err(ClientError::FetchingNodeList(e)), None),
            Ok(LinkReply { status: 200, body }) => (st.dir.accept_json(&body, now), Some(body)),
            Ok(LinkReply { status, .. }) => (Err(ClientError::RegistryStatus { status }), None),
        };
        match result {
            Ok(newer) => {
                let st = &mut *st;
                if newer {
                    if let Some(list) = st.dir.list() {
                        st.paths.on_new_list(list);
                    }
                    tracing::debug!(epoch = ?st.dir.seen_epoch(), "accepted a newer node list");
                    if let (Some(store), Some(body)) = (&self.inner.store, &body)
                        && let Err(e) = store.save_list(body)
                    {
                        tracing::warn!(error = %e, "the node list could not be saved; the next start needs the registry");
                    }
                }
                // Also when unchanged: the saved list counts as fresh from now on.
                self.persist(st)?;
                Ok(newer)
            }
            Err(e) => {
                st.dir.note_fetch_failed(now);
                Err(e)
            }
        }
    }

    fn maintenance_due(&self) -> bool {
        let now = self.now();
        let st = self.state();
        let rotation = st.paths.config().rotation_ms;
        let may_build =
            st.paths.paths().is_empty() || now >= self.inner.build_retry_at.load(Ordering::Relaxed);
        st.dir.refresh_due(now)
            || (st.paths.needs_path() && may_build)
            || st
                .paths
                .paths()
                .iter()
                .any(|p| now >= p.built_at_ms.saturating_add(rotation))
    }

    /// Brings the transport up to date: refreshes the list when due (keeping the last good
    /// one when the registry is unreachable), retires rotated paths, replaces guards, and
    /// builds and tests paths until [`PathConfig::guards`] are live.
    ///
    /// # Errors
    /// When the client cannot send at all: no node list was ever obtained, or no path
    /// is live and none could be built; and [`ClientError::SavingGuards`] when the guards
    /// cannot be kept.
    pub async fn ensure_ready(&self) -> Result<(), ClientError> {
        let _one_at_a_time = self.inner.maintenance.lock().await;
        let due = self.state().dir.refresh_due(self.now());
        if due && let Err(e) = self.refresh_list().await {
            if self.state().dir.list().is_none() || matches!(e, ClientError::SavingGuards { .. }) {
                return Err(e);
            }
            tracing::warn!(error = %e.report(), "node list refresh failed; keeping the last good list");
        }
        let have_paths = {
            let now = self.now();
            let mut st = self.state();
            if st.dir.list().is_none() {
                return Err(ClientError::NoNodeList);
            }
            let rotated = st.paths.rotate(now);
            if !rotated.is_empty() {
                tracing::debug!(paths = ?rotated, "rotated onion paths");
            }
            !st.paths.paths().is_empty()
        };
        let (max_attempts, may_build) = if have_paths {
            (
                BUILD_ATTEMPTS_WITH_PATHS.min(self.inner.config.build_attempts),
                self.now() >= self.inner.build_retry_at.load(Ordering::Relaxed),
            )
        } else {
            (self.inner.config.build_attempts, true)
        };
        let mut attempts = 0;
        while may_build && self.state().paths.needs_path() {
            if attempts >= max_attempts {
                self.inner
                    .build_retry_at
                    .store(self.now().saturating_add(BUILD_RETRY_MS), Ordering::Relaxed);
                break;
            }
            if attempts > 0 {
                let delay = self.backoff(attempts);
                self.inner.clock.sleep(delay).await;
            }
            attempts += 1;
            let candidate = {
                let now = self.now();
                let mut rng = self.rng();
                let mut st = self.state();
                let st = &mut *st;
                let Some(list) = st.dir.list() else {
                    break;
                };
                if st.paths.refresh_guards(list, now, &mut **rng) {
                    self.persist(st)?;
                }
                match st.paths.candidate(list, now, &mut **rng) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::debug!(error = %e.report(), "cannot build a candidate path");
                        if st.paths.paths().is_empty() {
                            return Err(e);
                        }
                        break;
                    }
                }
            };
            let tested = self.test_path(&candidate).await;
            let mut st = self.state();
            match tested {
                Ok(()) => {
                    if st.paths.install(candidate) {
                        self.persist(&st)?;
                    }
                }
                Err((target, failure)) => {
                    tracing::debug!(
                        path = candidate.id,
                        ?failure,
                        "candidate path failed its test"
                    );
                    if st.paths.reject(&candidate, target.as_ref(), &failure) {
                        self.persist(&st)?;
                    }
                }
            }
        }
        let mut st = self.state();
        if st.paths.settle_guards() {
            self.persist(&st)?;
        }
        if st.paths.paths().is_empty() {
            return Err(ClientError::NoPath { attempts });
        }
        Ok(())
    }

    /// Tests a candidate path with an `info` request (no account, no identity) to a random
    /// node off the path. Passes only on an authenticated `200` from that node; if the target
    /// itself proves to be the one failing (its sealed error, or the last hop cannot reach it),
    /// another target is tried, up to [`PATH_TEST_TARGETS`] in all.
    /// On failure, returns the last target and what went wrong.
    async fn test_path(&self, path: &Path) -> Result<(), (Option<Ed25519PublicKey>, Failure)> {
        let mut bad_targets: Vec<Ed25519PublicKey> = Vec::new();
        let mut last = (None, Failure::Unauthenticated);
        for _ in 0..PATH_TEST_TARGETS {
            let target = {
                let mut rng = self.rng();
                let st = self.state();
                let others: Vec<&NodeEntry> = st
                    .dir
                    .active_nodes()
                    .into_iter()
                    .filter(|n| !path.contains(&n.pubkey_ed25519))
                    .filter(|n| !st.paths.is_failed(&n.pubkey_ed25519))
                    .filter(|n| !bad_targets.contains(&n.pubkey_ed25519))
                    .collect();
                match others.len() {
                    0 => path.nodes.last().cloned(),
                    n => Some(others[random_below(&mut **rng, n)].clone()),
                }
            };
            let Some(target) = target else {
                return Err(last);
            };
            let built = {
                let mut rng = self.rng();
                self.builder().build(
                    &path.nodes.iter().map(hop).collect::<Vec<_>>(),
                    OnionDestination::Node {
                        node: hop(&target),
                        request: PATH_TEST_REQUEST,
                    },
                    &mut **rng,
                )
            };
            let Ok(req) = built else {
                return Err(last);
            };
            let key = Some(target.pubkey_ed25519);
            match self.exchange(path, req.body, &req.reply).await {
                Outcome::Opened(Ok(Reply::Storage(StorageReply { status: 200, .. }))) => {
                    return Ok(());
                }
                Outcome::Opened(Ok(Reply::HopError(f))) => {
                    // The target failed (its own sealed error, or the last hop cannot reach
                    // it): the path may be fine, try another target.
                    let n = path.nodes.len();
                    let at_target =
                        f.hop >= n || (f.hop + 1 == n && accuses_next_hop(f.status, &f.body));
                    last = (
                        key,
                        Failure::Hop {
                            position: f.hop,
                            status: f.status,
                            body: f.body,
                        },
                    );
                    if !at_target {
                        return Err(last);
                    }
                    bad_targets.push(target.pubkey_ed25519);
                }
                Outcome::Link(_) => return Err((key, Failure::GuardUnreachable)),
                _ => return Err((key, Failure::Unauthenticated)),
            }
        }
        Err(last)
    }

    fn builder(&self) -> RequestBuilder {
        RequestBuilder::umbra().enc_type(self.inner.config.enc_type)
    }

    /// Retry delay before attempt `n` (n ≥ 1): `backoff_min · 2^(n-1)`, at most `backoff_max`,
    /// with up to half of it random jitter.
    fn backoff(&self, n: usize) -> Duration {
        let min = self.inner.config.backoff_min;
        let exp = u32::try_from(n.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(16);
        let base = min
            .saturating_mul(1u32 << exp)
            .min(self.inner.config.backoff_max);
        let half_ms = u64::try_from(base.as_millis() / 2).unwrap_or(0);
        let jitter = if half_ms > 0 {
            let mut rng = self.rng();
            random_below(&mut **rng, usize::try_from(half_ms + 1).unwrap_or(1)) as u64
        } else {
            0
        };
        Duration::from_millis(half_ms + jitter)
    }

    /// Posts a built request to the path's guard and opens the answer. Every byte the client
    /// sends to a node passes here, and always to a path's guard.
    async fn exchange(&self, path: &Path, frame: Vec<u8>, reply: &PendingReply) -> Outcome {
        let Some(guard) = path.guard() else {
            return Outcome::Link(LinkError::Other("empty path".into()));
        };
        let edge = Edge {
            ed25519: guard.pubkey_ed25519,
            ip: guard.public_ip,
            port: guard.storage_port,
        };
        match self.inner.link.post_onion(&edge, frame).await {
            Err(e) => Outcome::Link(e),
            Ok(r) => Outcome::Opened(reply.open(r.status, &r.body)),
        }
    }

    /// Runs [`Self::ensure_ready`] every `period`, forever (spawn it as a task in a long-lived
    /// client, so that list refreshes, rotations and path tests happen off the send path).
    /// Failures are logged and retried at the next period.
    pub async fn maintain_forever(&self, period: Duration) {
        loop {
            if let Err(e) = self.ensure_ready().await {
                tracing::warn!(error = %e.report(), "onion transport maintenance failed");
            }
            self.inner.clock.sleep(period).await;
        }
    }

    /// Sends `request` to `destination` through an onion path and returns the destination's
    /// answer.
    ///
    /// Up to [`TransportConfig::attempts`] attempts, with backoff, each on another path where
    /// one is live. Failures are counted against the hop that provably failed, or else the
    /// path (see [`PathManager::report`]). For a [`Destination::Swarm`], a failing destination
    /// node (a sealed error, or a 5xx of its own) is replaced by another member, and a `421`
    /// makes the client learn the right swarm and retry there. Other storage statuses (401,
    /// 406, …) are the caller's to handle.
    ///
    /// # Errors
    /// [`ClientError::RequestMismatch`], [`ClientError::UnknownDestination`],
    /// [`ClientError::EmptySwarm`], [`ClientError::DestinationFailed`],
    /// [`ClientError::AllAttemptsFailed`], and what [`Self::ensure_ready`] returns.
    pub async fn send(
        &self,
        destination: Destination,
        request: Request,
    ) -> Result<Response, ClientError> {
        match (&destination, &request) {
            (Destination::Server(_), Request::Storage(_)) => {
                return Err(ClientError::RequestMismatch(
                    "a storage RPC cannot go to an external server",
                ));
            }
            (Destination::Node(_) | Destination::Swarm(_), Request::Server(_)) => {
                return Err(ClientError::RequestMismatch(
                    "a v4 server request cannot go to a storage node",
                ));
            }
            _ => {}
        }
        let attempts = self.inner.config.attempts.max(1);
        let mut tried_paths: Vec<u64> = Vec::new();
        let mut tried_nodes: Vec<Ed25519PublicKey> = Vec::new();
        let mut last = String::from("no attempt made");
        // A swarm member's own server error (5xx), kept in case no other member does better.
        let mut last_server_error: Option<StorageReply> = None;
        // A swarm member that is down (the path's last hop cannot reach it) is replaced by
        // another member at once, without using up an attempt: at most once per member, so
        // a swarm with a single live member is still reached.
        let mut member_retries = 0;
        let mut retry_now = false;
        let mut attempt = 0;
        while attempt < attempts + member_retries {
            if attempt > 0 && !retry_now {
                let delay = self.backoff(attempt.saturating_sub(member_retries).max(1));
                self.inner.clock.sleep(delay).await;
            }
            retry_now = false;
            attempt += 1;
            if self.maintenance_due() {
                self.ensure_ready().await?;
            }
            // Choose the destination node and the path, and build the onion.
            let chosen = {
                let mut rng = self.rng();
                let st = self.state();
                let dest_node: Option<NodeEntry> = match &destination {
                    Destination::Node(k) => Some(
                        st.dir
                            .node(k)
                            .filter(|n| n.active)
                            .cloned()
                            .ok_or(ClientError::UnknownDestination)?,
                    ),
                    Destination::Swarm(account) => {
                        let all = st.dir.swarm_of(account);
                        if all.is_empty() {
                            return Err(ClientError::EmptySwarm);
                        }
                        // Members that struck out are tried only when no other is left.
                        let usable: Vec<NodeEntry> = all
                            .iter()
                            .filter(|n| !st.paths.is_failed(&n.pubkey_ed25519))
                            .cloned()
                            .collect();
                        let members = if usable.is_empty() { all } else { usable };
                        let fresh: Vec<&NodeEntry> = members
                            .iter()
                            .filter(|n| !tried_nodes.contains(&n.pubkey_ed25519))
                            .collect();
                        let pool: Vec<&NodeEntry> = if fresh.is_empty() {
                            members.iter().collect()
                        } else {
                            fresh
                        };
                        Some(pool[random_below(&mut **rng, pool.len())].clone())
                    }
                    Destination::Server(_) => None,
                };
                let avoid = dest_node.as_ref().map(|n| n.pubkey_ed25519);
                let path = st
                    .paths
                    .choose(&tried_paths, avoid.as_ref(), &mut **rng)
                    .or_else(|| st.paths.choose(&[], avoid.as_ref(), &mut **rng))
                    .or_else(|| st.paths.choose(&[], None, &mut **rng));
                drop(st);
                match path {
                    None => None,
                    Some(path) => {
                        let hops: Vec<Hop> = path.nodes.iter().map(hop).collect();
                        let dest = match (&destination, &request, &dest_node) {
                            (Destination::Server(server), Request::Server(req), _) => {
                                OnionDestination::Server {
                                    server,
                                    request: req,
                                }
                            }
                            (_, Request::Storage(body), Some(node)) => OnionDestination::Node {
                                node: hop(node),
                                request: body,
                            },
                            _ => {
                                return Err(ClientError::RequestMismatch(
                                    "destination and request do not match",
                                ));
                            }
                        };
                        let built = self.builder().build(&hops, dest, &mut **rng)?;
                        Some((path, dest_node, built))
                    }
                }
            };
            let Some((path, dest_node, built)) = chosen else {
                last = "no live onion path".into();
                continue;
            };
            tried_paths.push(path.id);
            let dest_key = dest_node.as_ref().map(|n| n.pubkey_ed25519);
            let outcome = self.exchange(&path, built.body, &built.reply).await;
            let failure = match outcome {
                Outcome::Link(e) => {
                    last = format!("guard unreachable: {e}");
                    Failure::GuardUnreachable
                }
                Outcome::Opened(Err(e)) => return Err(ClientError::OpeningReply(e)),
                Outcome::Opened(Ok(reply)) => match reply {
                    Reply::Storage(r) if r.status == 421 => {
                        if let (Destination::Swarm(account), Some(k)) = (&destination, dest_key) {
                            let body = r.json().unwrap_or_default();
                            let learned = self.state().dir.note_wrong_swarm(account, &body);
                            tracing::debug!(
                                node = %redact(&k),
                                learned,
                                "destination is not in the account's swarm (421); retrying"
                            );
                            tried_nodes.push(k);
                            // A 421 is not a path failure: the request went through.
                            tried_paths.retain(|id| *id != path.id);
                            last = "421 wrong swarm".into();
                            continue;
                        }
                        return Ok(Response::Storage(r));
                    }
                    Reply::Storage(r)
                        if r.status >= 500 && matches!(destination, Destination::Swarm(_)) =>
                    {
                        // The member itself failed (as Session clients do: strike it, try
                        // another member); the path delivered.
                        last = format!("destination answered {}", r.status);
                        if let Some(k) = dest_key {
                            tried_nodes.push(k);
                        }
                        tried_paths.retain(|id| *id != path.id);
                        let failure = Failure::Hop {
                            position: path.nodes.len(),
                            status: r.status,
                            body: String::new(),
                        };
                        last_server_error = Some(r);
                        failure
                    }
                    Reply::Storage(r) => return Ok(Response::Storage(r)),
                    Reply::Server(r) => return Ok(Response::Server(r)),
                    Reply::ServerUnencrypted { status, body, .. } => {
                        return Ok(Response::ServerUnencrypted { status, body });
                    }
                    Reply::HopError(f) => {
                        last = format!("hop {} failed: {} {}", f.hop, f.status, f.body);
                        let n = path.nodes.len();
                        let server_down = matches!(destination, Destination::Server(_))
                            && f.hop + 1 == n
                            && matches!(f.status, 502 | 504)
                            && !f.body.starts_with("Next node")
                            && !f.body.starts_with("Request time out");
                        if server_down {
                            // The exit could not reach the server: not the path's fault.
                            return Err(ClientError::DestinationFailed {
                                status: f.status,
                                body: f.body,
                            });
                        }
                        let destination_down = f.hop + 1 == n
                            && dest_key.is_some()
                            && accuses_next_hop(f.status, &f.body);
                        if destination_down
                            && let (Destination::Swarm(account), Some(k)) = (&destination, dest_key)
                        {
                            // The path reached its last hop, which cannot reach this member:
                            // try another member now (the report below strikes this one).
                            tried_paths.retain(|id| *id != path.id);
                            if !tried_nodes.contains(&k) {
                                tried_nodes.push(k);
                                let untried = self
                                    .state()
                                    .dir
                                    .swarm_of(account)
                                    .iter()
                                    .any(|m| !tried_nodes.contains(&m.pubkey_ed25519));
                                if untried {
                                    member_retries += 1;
                                    retry_now = true;
                                }
                            }
                        }
                        if f.hop >= n {
                            if let Some(k) = dest_key {
                                tried_nodes.push(k);
                            }
                            // The path delivered; it may carry the next attempt too.
                            tried_paths.retain(|id| *id != path.id);
                            if matches!(destination, Destination::Node(_)) {
                                let mut st = self.state();
                                let out = st.paths.report(
                                    path.id,
                                    dest_key.as_ref(),
                                    &Failure::Hop {
                                        position: f.hop,
                                        status: f.status,
                                        body: f.body.clone(),
                                    },
                                    self.now(),
                                );
                                if out.guards_changed {
                                    self.persist(&st)?;
                                }
                                return Err(ClientError::DestinationFailed {
                                    status: f.status,
                                    body: f.body,
                                });
                            }
                        }
                        Failure::Hop {
                            position: f.hop,
                            status: f.status,
                            body: f.body,
                        }
                    }
                    Reply::Unauthenticated { status, .. } => {
                        last = format!("unauthenticated answer with HTTP {status}");
                        Failure::Unauthenticated
                    }
                    other => {
                        last = format!("unexpected reply {other:?}");
                        Failure::Unauthenticated
                    }
                },
            };
            let mut st = self.state();
            let out = st
                .paths
                .report(path.id, dest_key.as_ref(), &failure, self.now());
            if out.guards_changed {
                self.persist(&st)?;
            }
            drop(st);
            tracing::debug!(attempt, path = path.id, "onion request failed; retrying");
        }
        match last_server_error {
            Some(r) => Ok(Response::Storage(r)),
            None => Err(ClientError::AllAttemptsFailed { attempts, last }),
        }
    }
}

/// Makes the list saved by an earlier run current, as fetched at `fetched_at` (Unix ms), after
/// verifying it again (signature, epoch not older than the newest seen). A saved list that is
/// missing or fails is only logged: the registry is asked as if there were none.
fn restore_list(store: &GuardStore, dir: &mut NodeDirectory, fetched_at: u64) {
    let Some(body) = store.load_list(MAX_LIST_BYTES) else {
        return;
    };
    if let Err(e) = dir.accept_json(&body, fetched_at) {
        tracing::warn!(error = %e.report(), "the saved node list cannot be used; asking the registry");
    }
}
