//! Starting and stopping a whole node: identity, TLS, store, listeners and background tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use umbra_report::ErrorExt as _;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use umbra_clock::{Clock, SystemClock};
use umbra_crypto::Identity;
use umbra_replica::Replica;
use umbra_store::Store;

use crate::NodeError;
use crate::config::Config;
use crate::http::{self, HttpApp};
use crate::identity::{load_or_create_identity, load_or_create_tls, server_tls_config};
use crate::membership::{AnnouncedPorts, Replication};
use crate::metrics::Metrics;
use crate::onion::{ExitPolicy, OnionService};
use crate::oxend::{NoOxend, Oxend, RegistryOxend};
use crate::replicate::{Replicator, SingleNode};
use crate::swarm::SwarmHandle;
use umbra_nodelist::SwarmView;
use umbra_nodelist::list::NodeEntry;

/// The message store's directory (RocksDB) inside the data directory.
pub const DB_FILE: &str = "messages.rocksdb";

/// The message store of earlier builds (SQLite). Its presence stops the node with one line:
/// it is never read, ignored or overwritten (`umbra_store::refuse_old_format`).
pub const LEGACY_DB_FILE: &str = "messages.sqlite";

/// Everything a request handler needs. Shared (`Arc`) by all connections and tasks.
pub struct NodeState {
    /// The node's identity (signs swarm results).
    pub identity: Arc<Identity>,
    /// The message store.
    pub store: Store,
    /// Who is in which swarm.
    pub swarm: SwarmHandle,
    /// Forwards recursive requests to the swarm.
    pub replicator: Arc<dyn Replicator>,
    /// Answers `oxend_request`.
    pub oxend: Arc<dyn Oxend>,
    /// Counters for the operator port.
    pub metrics: Arc<Metrics>,
    /// Onion requests (`/onion_req/v2`): keys, pooled node-to-node client, counters.
    pub onion: Arc<OnionService>,
    /// Long-poll retrieves: the waiter limit and the shutdown signal.
    pub long_poll: crate::longpoll::LongPoll,
    /// (05 account, `pubkey_ed25519`) pairs already seen to match (bounded).
    pub(crate) key_matches: crate::rpc::KeyMatchCache,
    /// Where every request's `now`, the sweep's time and the rate limits' instants come from.
    pub clock: Arc<dyn Clock>,
    list_epoch: AtomicU64,
}

impl std::fmt::Debug for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeState")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl NodeState {
    /// A state with a single-node replicator and no registry.
    pub fn new(identity: Identity, store: Store, swarm: SwarmHandle) -> NodeState {
        let onion = Arc::new(OnionService::new(&identity, ExitPolicy::PublicOnly));
        NodeState {
            onion,
            identity: Arc::new(identity),
            store,
            swarm,
            replicator: Arc::new(SingleNode),
            oxend: Arc::new(NoOxend),
            metrics: Arc::new(Metrics::new()),
            long_poll: crate::longpoll::LongPoll::default(),
            key_matches: crate::rpc::KeyMatchCache::default(),
            clock: Arc::new(SystemClock),
            list_epoch: AtomicU64::new(0),
        }
    }

    /// Replaces the replicator.
    pub fn with_replicator(mut self, r: Arc<dyn Replicator>) -> NodeState {
        self.replicator = r;
        self
    }

    /// Sets which external servers this node reaches as an onion exit.
    pub fn with_exit_policy(mut self, policy: ExitPolicy) -> NodeState {
        self.onion = Arc::new(OnionService::new(&self.identity, policy));
        self
    }

    /// Replaces the clock (tests move time by hand with `umbra_clock::ManualClock`).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> NodeState {
        self.clock = clock;
        self
    }

    /// Replaces the oxend/registry proxy.
    pub fn with_oxend(mut self, o: Arc<dyn Oxend>) -> NodeState {
        self.oxend = o;
        self
    }

    /// The epoch of the newest registry node list this node follows (0 until known). Not the
    /// block height: `ifelse` reports [`umbra_nodelist::chain_height`]
    /// (`storage-rpc-addendum.md` A4).
    pub fn list_epoch(&self) -> u64 {
        self.list_epoch.load(Ordering::Relaxed)
    }

    /// Updates the node-list epoch.
    pub fn set_list_epoch(&self, epoch: u64) {
        self.list_epoch.store(epoch, Ordering::Relaxed);
    }
}

/// Configures and starts a node.
pub struct NodeBuilder {
    config: Config,
    swarm: Option<SwarmView>,
    replicator: Option<Arc<dyn Replicator>>,
    oxend: Option<Arc<dyn Oxend>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NodeBuilder {
    /// A node with this configuration.
    pub fn new(config: Config) -> NodeBuilder {
        NodeBuilder {
            config,
            swarm: None,
            replicator: None,
            oxend: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses this clock instead of the system's: for request timestamps, expiries, registry
    /// heartbeats and replication rounds (tests move time by hand with
    /// `umbra_clock::ManualClock`).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> NodeBuilder {
        self.clock = clock;
        self
    }

    /// Uses this swarm view instead of the static single-node one from the config.
    pub fn swarm(mut self, view: SwarmView) -> NodeBuilder {
        self.swarm = Some(view);
        self
    }

    /// Uses this replicator instead of [`SingleNode`].
    pub fn replicator(mut self, r: Arc<dyn Replicator>) -> NodeBuilder {
        self.replicator = Some(r);
        self
    }

    /// Uses this oxend proxy instead of the configured registry.
    pub fn oxend(mut self, o: Arc<dyn Oxend>) -> NodeBuilder {
        self.oxend = Some(o);
        self
    }

    /// Loads (or creates) the identity and certificate, opens the store, binds the listeners
    /// and starts serving.
    pub async fn start(self) -> Result<RunningNode, NodeError> {
        let cfg = self.config;
        cfg.validate()?;
        let identity = load_or_create_identity(&cfg.data_dir)?;
        let tls = server_tls_config(load_or_create_tls(&cfg.data_dir)?)?;
        umbra_store::refuse_old_format(&cfg.data_dir.join(LEGACY_DB_FILE))?;
        let db_path = cfg.data_dir.join(DB_FILE);
        let store_cfg = cfg.store_config();
        let store = tokio::task::spawn_blocking(move || Store::open(db_path, store_cfg))
            .await
            .map_err(|e| NodeError::InvalidConfig(format!("opening the store panicked: {e}")))??;

        let client = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| NodeError::Bind {
                what: "client",
                addr: cfg.listen,
                source,
            })?;
        let client_addr = client.local_addr().map_err(|source| NodeError::Bind {
            what: "client",
            addr: cfg.listen,
            source,
        })?;
        let metrics_listener = TcpListener::bind(cfg.metrics_listen)
            .await
            .map_err(|source| NodeError::Bind {
                what: "metrics",
                addr: cfg.metrics_listen,
                source,
            })?;
        let metrics_addr = metrics_listener
            .local_addr()
            .map_err(|source| NodeError::Bind {
                what: "metrics",
                addr: cfg.metrics_listen,
                source,
            })?;

        let port = cfg.public_port.unwrap_or(client_addr.port());
        // The peer gRPC listener, when the node follows a registry (its port is announced).
        let peer_listener = if cfg.registry().is_some() && self.replicator.is_none() {
            let addr = cfg
                .peer_listen
                .unwrap_or_else(|| SocketAddr::new(cfg.listen.ip(), 0));
            let bind_err = |source| NodeError::Bind {
                what: "peer",
                addr,
                source,
            };
            let l = TcpListener::bind(addr).await.map_err(bind_err)?;
            let bound = l.local_addr().map_err(bind_err)?;
            Some((l, bound))
        } else {
            None
        };
        let peer_port = peer_listener
            .as_ref()
            .map_or(port, |(_, a)| cfg.public_peer_port.unwrap_or(a.port()));
        let replication = match (cfg.registry(), &self.replicator) {
            (Some(registry), None) => Some(Replication::new(
                &cfg,
                registry,
                &identity,
                store.clone(),
                AnnouncedPorts {
                    https: port,
                    peer: peer_port,
                },
                self.clock.clone(),
            )?),
            _ => None,
        };
        if replication.is_none() && cfg.registry_url.is_some() {
            tracing::warn!(
                "registry_url without registry_pubkey: oxend_request is proxied, but the node \
                 does not register or replicate"
            );
        }
        let view = self.swarm.unwrap_or_else(|| {
            if replication.is_some() {
                // Not ready (503) until the registry's list arrives.
                SwarmView::empty(identity.ed25519_public())
            } else {
                SwarmView::single(NodeEntry {
                    pubkey_ed25519: identity.ed25519_public(),
                    pubkey_x25519: identity.x25519_public(),
                    public_ip: cfg.public_ip,
                    storage_port: port,
                    storage_lmq_port: port,
                    swarm_id: cfg.swarm.id,
                    active: true,
                    version: crate::STORAGE_SERVER_VERSION,
                })
            }
        });
        let oxend: Arc<dyn Oxend> = match (self.oxend, &cfg.registry_url) {
            (Some(o), _) => o,
            (None, Some(url)) => Arc::new(RegistryOxend::new(url)?),
            (None, None) => Arc::new(NoOxend),
        };
        let replicator = self
            .replicator
            .or_else(|| replication.as_ref().map(Replication::replicator))
            .unwrap_or_else(|| Arc::new(SingleNode));
        let state = Arc::new(
            NodeState::new(identity, store, SwarmHandle::new(view))
                .with_replicator(replicator)
                .with_oxend(oxend)
                .with_exit_policy(ExitPolicy::for_node_ip(cfg.public_ip))
                .with_clock(self.clock),
        );

        let (stop_tx, stop_rx) = watch::channel(false);
        let app = HttpApp::new(state.clone(), &cfg);
        let grace = Duration::from_secs(cfg.limits.shutdown_grace_secs);
        let mut tasks = Vec::new();
        let replica = replication.as_ref().map(|r| r.replica().clone());
        if let Some(r) = replication {
            if let Some((l, _)) = peer_listener {
                tasks.push(tokio::spawn(crate::peer::serve_peer_listener(
                    l,
                    state.clone(),
                    r.replica().clone(),
                    cfg.rate_limit,
                    stop_rx.clone(),
                    grace,
                )));
            }
            tasks.extend(r.start(&state, &cfg.data_dir, &stop_rx));
        }
        let app = Arc::new(app);
        tasks.extend([
            tokio::spawn(http::serve_client(
                client,
                tokio_rustls::TlsAcceptor::from(tls),
                app,
                stop_rx.clone(),
                grace,
            )),
            tokio::spawn(http::serve_metrics(
                metrics_listener,
                state.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(sweep_loop(
                state.clone(),
                Duration::from_secs(cfg.limits.sweep_interval_secs),
                stop_rx,
            )),
        ]);
        tracing::info!(
            client = %umbra_crypto::Redacted::new(client_addr),
            metrics = %umbra_crypto::Redacted::new(metrics_addr),
            ed25519 = %umbra_crypto::Redacted::new(hex::encode(state.identity.ed25519_public())),
            "umbra-node listening"
        );
        Ok(RunningNode {
            client_addr,
            metrics_addr,
            replica,
            state,
            stop: stop_tx,
            tasks,
        })
    }
}

/// A started node. Dropping it without [`RunningNode::shutdown`] stops accepting at once
/// but does not wait for in-flight requests.
#[derive(Debug)]
pub struct RunningNode {
    client_addr: SocketAddr,
    metrics_addr: SocketAddr,
    replica: Option<Replica>,
    state: Arc<NodeState>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningNode {
    /// The bound client HTTPS address.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The bound operator (metrics) address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The replication engine, when the node follows a registry (its membership view, metrics
    /// and rounds).
    pub fn replica(&self) -> Option<&Replica> {
        self.replica.as_ref()
    }

    /// The shared state (store, swarm view, metrics, …).
    pub fn state(&self) -> &Arc<NodeState> {
        &self.state
    }

    /// Stops accepting connections, lets in-flight requests finish (up to the configured
    /// grace period), stops the background tasks and waits for all of them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.state.long_poll.stop();
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        tracing::info!("umbra-node stopped");
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.state.long_poll.stop();
    }
}

/// Removes expired messages every `every`, repeating at once while the store says more remain.
async fn sweep_loop(state: Arc<NodeState>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        loop {
            match state.store.sweep_expired(state.clock.now_ms_i64()).await {
                Ok(out) => {
                    state.metrics.swept(out.messages);
                    if out.messages > 0 {
                        tracing::debug!(
                            messages = out.messages,
                            tombstones = out.tombstones,
                            "expiry sweep"
                        );
                    }
                    if !out.more || *stop.borrow() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!("expiry sweep failed: {}", e.report());
                    break;
                }
            }
        }
    }
}
