//! Several real nodes and a real registry in one test process: [`TestRegistry`] (the
//! `umbra-registry` service on `127.0.0.1:0`, in-memory SQLite, system clock) and
//! [`TestNetwork`] (nodes that register with it, heartbeat, follow its signed list, replicate
//! with their swarm over the authenticated peer channel, and can be stopped and started again
//! on their data directory).
//!
//! ```ignore
//! let mut net = TestNetwork::start(3).await?;
//! net.wait_until_settled().await?;            // every node holds the registry's newest list
//! let (status, body) = net.store(0, &account, 0, b"hello").await?;
//! assert!(net.hashes(2, &account, 0).await?.unwrap().contains(&hash));
//! net.stop_node(2).await?;  /* ... */  net.start_node(2).await?;   // same data dir and key
//! ```
//!
//! No helper here measures time: waits poll until a condition holds, and only give up after
//! [`HANG_GUARD`] so that a broken test fails instead of hanging.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use umbra_crypto::Ed25519PublicKey;
use umbra_report::ErrorExt as _;

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use umbra_clock::SystemClock;
use umbra_crypto::Identity;
use umbra_nodelist::list::SignedNodeList;
use umbra_registry::registry::{Registry, RegistryConfig};
use umbra_registry::server::AppState;
use umbra_swarm::SwarmId;

use super::{TestAccount, TestNode, https_client, now_ms, rpc};
use crate::config::Config;

/// How long a wait polls before it reports failure (a hang guard, not a timing assertion).
pub const HANG_GUARD: Duration = Duration::from_secs(180);

/// How often waits look again.
const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `true`; an error after `guard` names `what`.
pub async fn eventually<F, Fut>(what: &str, guard: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let polling = async {
        loop {
            if check().await? {
                return Ok::<(), anyhow::Error>(());
            }
            tokio::time::sleep(POLL).await;
        }
    };
    match tokio::time::timeout(guard, polling).await {
        Ok(r) => r,
        Err(_) => bail!("gave up waiting ({} s hang guard): {what}", guard.as_secs()),
    }
}

/// The registry service running in this process.
pub struct TestRegistry {
    url: String,
    grpc_url: String,
    key: Ed25519PublicKey,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRegistry")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl TestRegistry {
    /// Starts a registry on `127.0.0.1:0` with a fixed key and swarm seed, asking nodes for a
    /// heartbeat every 200 ms and marking them inactive only after a minute of silence (tests
    /// take nodes out by stopping them, which leaves the registry).
    pub async fn start() -> anyhow::Result<TestRegistry> {
        let seed = [0x5e; 32];
        let identity = Identity::from_seed(&seed);
        let key = identity.ed25519_public();
        let now = u64::try_from(now_ms()).unwrap_or(0);
        let store = umbra_registry::store::Store::open_in_memory()?;
        let registry = Registry::open(
            store,
            identity,
            RegistryConfig {
                heartbeat_interval_ms: 200,
                inactive_after_ms: 60_000,
                ..RegistryConfig::default()
            },
            now,
        )?;
        let state = AppState::new(registry, Arc::new(SystemClock));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let grpc_url = format!("http://{}", grpc_listener.local_addr()?);
        let (tx, rx) = oneshot::channel::<()>();
        let serving = state.clone();
        let task = tokio::spawn(async move {
            let (stop_all, stopped) = tokio::sync::watch::channel(false);
            let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            let http =
                umbra_registry::server::serve(listener, serving.clone(), until(stopped.clone()));
            let grpc = umbra_registry::grpc::serve_grpc(grpc_listener, serving, until(stopped));
            let stop = async move {
                let _ = rx.await;
                let _ = stop_all.send(true);
            };
            let (h, g, ()) = tokio::join!(http, grpc, stop);
            if let Err(e) = h {
                tracing::warn!("test registry stopped: {}", e.report());
            }
            if let Err(e) = g {
                tracing::warn!("test registry's gRPC stopped: {}", e.report());
            }
        });
        Ok(TestRegistry {
            url,
            grpc_url,
            key,
            state,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its gRPC node API, `http://127.0.0.1:<port>`.
    pub fn grpc_url(&self) -> &str {
        &self.grpc_url
    }

    /// The registry's Ed25519 public key.
    pub fn pubkey(&self) -> Ed25519PublicKey {
        self.key
    }

    /// The registry's current signed list.
    pub fn list(&self) -> anyhow::Result<SignedNodeList> {
        Ok(self.state.with_registry(|r, _| Ok(r.current().clone()))?)
    }

    /// Points `cfg` at this registry and makes replication rounds frequent (1 s).
    pub fn configure(&self, cfg: &mut Config) {
        cfg.registry_url = Some(self.url.clone());
        cfg.registry_grpc_url = Some(self.grpc_url.clone());
        cfg.registry_pubkey = Some(hex::encode(self.key));
        cfg.replication.round_interval_secs = 1;
        cfg.replication.registry_refresh_secs = 2;
    }

    /// Stops serving (nodes keep their last list).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A node of a [`TestNetwork`]: running, or stopped with its data directory kept.
#[derive(Debug)]
enum Slot {
    Running(Box<TestNode>),
    Stopped(TempDir),
    /// Transiently, while the slot changes state.
    Empty,
}

/// A registry and nodes registered with it, all in this process.
#[derive(Debug)]
pub struct TestNetwork {
    registry: TestRegistry,
    nodes: Vec<Slot>,
    keys: Vec<Ed25519PublicKey>,
    client: reqwest::Client,
}

impl TestNetwork {
    /// Starts a registry and `n` nodes.
    pub async fn start(n: usize) -> anyhow::Result<TestNetwork> {
        let mut net = TestNetwork {
            registry: TestRegistry::start().await?,
            nodes: Vec::new(),
            keys: Vec::new(),
            client: https_client()?,
        };
        for _ in 0..n {
            net.add_node().await?;
        }
        Ok(net)
    }

    /// The registry.
    pub fn registry(&self) -> &TestRegistry {
        &self.registry
    }

    /// Starts one more node (fresh data directory); returns its index.
    pub async fn add_node(&mut self) -> anyhow::Result<usize> {
        self.add_node_with(|_| {}).await
    }

    /// Starts one more node after `tweak` adjusted its configuration (already pointed at the
    /// registry); returns its index. ([`TestNetwork::start_node`] starts a stopped node again
    /// with the registry settings only.)
    pub async fn add_node_with(
        &mut self,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<usize> {
        let registry = &self.registry;
        let node = TestNode::start_with(|c| {
            registry.configure(c);
            tweak(c);
        })
        .await?;
        let key = node
            .node()
            .map(|n| n.state().identity.ed25519_public())
            .context("the node did not start")?;
        self.nodes.push(Slot::Running(Box::new(node)));
        self.keys.push(key);
        Ok(self.nodes.len() - 1)
    }

    /// How many nodes were ever added (running or stopped).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The running node `i`.
    pub fn node(&self, i: usize) -> anyhow::Result<&TestNode> {
        match self.nodes.get(i) {
            Some(Slot::Running(n)) => Ok(n),
            _ => Err(anyhow!("node {i} is not running")),
        }
    }

    /// Node `i`'s Ed25519 key.
    pub fn key(&self, i: usize) -> Ed25519PublicKey {
        // An unknown index gives the all-zero key, which no node has.
        self.keys
            .get(i)
            .copied()
            .unwrap_or(Ed25519PublicKey::from_bytes([0; 32]))
    }

    /// Indices of the running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| matches!(self.nodes[*i], Slot::Running(_)))
            .collect()
    }

    /// Stops node `i` gracefully (it leaves the registry); its data directory is kept.
    pub async fn stop_node(&mut self, i: usize) -> anyhow::Result<()> {
        let slot = self.nodes.get_mut(i).context("no such node")?;
        match std::mem::replace(slot, Slot::Empty) {
            Slot::Running(n) => {
                *slot = Slot::Stopped(n.stop().await);
                Ok(())
            }
            other => {
                *slot = other;
                bail!("node {i} is not running")
            }
        }
    }

    /// Starts the stopped node `i` again on its data directory (same key, new ports).
    pub async fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        let registry = &self.registry;
        let slot = self.nodes.get_mut(i).context("no such node")?;
        match std::mem::replace(slot, Slot::Empty) {
            Slot::Stopped(dir) => {
                let node = TestNode::start_in(dir, |c| registry.configure(c)).await?;
                *slot = Slot::Running(Box::new(node));
                Ok(())
            }
            other => {
                *slot = other;
                bail!("node {i} is not stopped")
            }
        }
    }

    /// The epoch of the list node `i` follows (0 before its first list).
    pub fn node_epoch(&self, i: usize) -> anyhow::Result<u64> {
        let n = self.node(i)?.node().context("node not running")?;
        let replica = n.replica().context("node does not follow a registry")?;
        Ok(replica.view().get().epoch())
    }

    /// Whether node `i` answers requests by the list of `epoch` (its served swarm view, which
    /// follows the replica's view a moment later) and knows its swarm by it.
    pub fn node_serves(&self, i: usize, epoch: u64) -> anyhow::Result<bool> {
        let n = self.node(i)?.node().context("node not running")?;
        let view = n.state().swarm.get();
        Ok(view.epoch() == epoch && view.knows_its_swarm())
    }

    /// The swarm node `i` is in by the list it follows.
    pub fn node_swarm(&self, i: usize) -> anyhow::Result<Option<SwarmId>> {
        let n = self.node(i)?.node().context("node not running")?;
        let replica = n.replica().context("node does not follow a registry")?;
        Ok(replica.view().get().our_swarm())
    }

    /// Waits until every running node is active in a swarm of the registry's list and follows
    /// that very list (the registry's epoch), in its replica and in the view it answers by.
    pub async fn wait_until_settled(&self) -> anyhow::Result<()> {
        eventually(
            "every running node in a swarm of the registry's newest list",
            HANG_GUARD,
            || async {
                let list = self.registry.list()?;
                for i in self.running() {
                    let key = self.key(i);
                    let listed = list
                        .list
                        .nodes
                        .iter()
                        .any(|e| e.pubkey_ed25519 == key && e.active);
                    if !listed
                        || self.node_epoch(i)? != list.list.epoch
                        || self.node_swarm(i)?.is_none()
                        || !self.node_serves(i, list.list.epoch)?
                    {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )
        .await
    }

    /// Waits until the registry's list has `n` swarms, then until every node follows it.
    pub async fn wait_for_swarms(&self, n: usize) -> anyhow::Result<()> {
        eventually("the registry to form the swarms", HANG_GUARD, || async {
            let list = self.registry.list()?;
            let swarms: BTreeSet<SwarmId> = list
                .list
                .nodes
                .iter()
                .filter(|e| e.active && e.swarm_id != umbra_swarm::UNASSIGNED_SWARM_ID)
                .map(|e| e.swarm_id)
                .collect();
            Ok(swarms.len() == n)
        })
        .await?;
        self.wait_until_settled().await
    }

    /// Indices of the running nodes in the swarm that `account` maps to (by the registry's
    /// current list).
    pub fn owners_of(&self, account: &TestAccount) -> anyhow::Result<Vec<usize>> {
        let i = *self.running().first().context("no node running")?;
        let node = self.node(i)?.node().context("node not running")?;
        let view = node.state().swarm.get();
        let swarm = view
            .swarm_for(&account.pubkey_bytes())
            .context("no swarm known")?;
        let members: BTreeSet<Ed25519PublicKey> = view
            .members(swarm)
            .iter()
            .map(|m| m.pubkey_ed25519)
            .collect();
        Ok(self
            .running()
            .into_iter()
            .filter(|j| members.contains(&self.key(*j)))
            .collect())
    }

    /// Sends a signed `store` of `data` for `account` to node `i`; the status and the JSON
    /// body (`Null` for a text body).
    pub async fn store(
        &self,
        i: usize,
        account: &TestAccount,
        ns: i16,
        data: &[u8],
    ) -> anyhow::Result<(u16, Value)> {
        let p = account.store_params(ns, now_ms(), 14 * 24 * 3600 * 1000, data);
        self.call(i, "store", p).await
    }

    /// Sends `method` with `params` to node `i`'s storage RPC.
    pub async fn call(
        &self,
        i: usize,
        method: &str,
        params: Value,
    ) -> anyhow::Result<(u16, Value)> {
        let url = self.node(i)?.rpc_url();
        let (status, body) = rpc(&self.client, &url, method, params).await?;
        Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
    }

    /// The hashes node `i` returns for `account`'s namespace `ns` (all pages); `None` when the
    /// node does not answer 200 (e.g. 421: not its swarm, 503: no list yet).
    pub async fn hashes(
        &self,
        i: usize,
        account: &TestAccount,
        ns: i16,
    ) -> anyhow::Result<Option<BTreeSet<String>>> {
        let mut out = BTreeSet::new();
        let mut last: Option<String> = None;
        loop {
            let mut p = account.retrieve_params(ns, now_ms());
            if let Some(h) = &last {
                p["last_hash"] = Value::String(h.clone());
            }
            let (status, body) = self.call(i, "retrieve", p).await?;
            if status != 200 {
                return Ok(None);
            }
            let msgs = body["messages"].as_array().cloned().unwrap_or_default();
            for m in &msgs {
                if let Some(h) = m["hash"].as_str() {
                    out.insert(h.to_string());
                    last = Some(h.to_string());
                }
            }
            if body["more"] != Value::Bool(true) || msgs.is_empty() {
                return Ok(Some(out));
            }
        }
    }

    /// Stops every node (each leaves the registry) and the registry.
    pub async fn shutdown(mut self) {
        for slot in std::mem::take(&mut self.nodes) {
            if let Slot::Running(n) = slot {
                let _ = n.stop().await;
            }
        }
        self.registry.stop().await;
    }
}
