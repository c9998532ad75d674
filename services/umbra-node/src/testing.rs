//! Test scaffolding for this and other crates (feature `test-support`): a node started
//! in-process on `127.0.0.1:0` with a temporary data directory, an HTTPS client that accepts
//! its self-signed certificate, and test accounts that sign requests.
//!
//! ```ignore
//! let node = TestNode::start().await?;
//! let client = https_client()?;
//! let (status, body) = rpc(&client, &node.rpc_url(), "info", json!({})).await?;
//! let node = node.restart().await?;   // same data dir, same identity
//! ```
//!
//! Several nodes with a real registry, replicating with each other: [`TestNetwork`] and
//! [`TestRegistry`] (module `network`, re-exported here).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use umbra_crypto::AccountId;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use serde_json::{Value, json};
use tempfile::TempDir;
use umbra_crypto::{Identity, SeededRandom};
use umbra_nodelist::SwarmView;
use umbra_nodelist::list::NodeEntry;
use umbra_swarm::SwarmId;

use crate::config::Config;
use crate::node::{NodeBuilder, RunningNode};
use crate::rpc::b64;
use crate::{NodeError, system_now_ms};

mod network;
pub use network::{HANG_GUARD, TestNetwork, TestRegistry, eventually};

/// Gives each running node the same static view of the network, without a registry: every
/// node of `placed` is active in the swarm paired with it. Returns their node list entries,
/// in order (stopped nodes are skipped).
pub fn share_view<'a>(placed: impl IntoIterator<Item = (&'a TestNode, SwarmId)>) -> Vec<NodeEntry> {
    let placed: Vec<(&TestNode, NodeEntry)> = placed
        .into_iter()
        .filter_map(|(n, swarm)| Some((n, n.entry(swarm)?)))
        .collect();
    let entries: Vec<NodeEntry> = placed.iter().map(|(_, e)| e.clone()).collect();
    for (n, e) in &placed {
        if let Some(node) = n.node() {
            let view = SwarmView::new(0, e.pubkey_ed25519, entries.iter().cloned());
            node.state().swarm.set(view);
        }
    }
    entries
}

/// A configuration for tests: loopback listeners on port 0, everything under `data_dir`.
pub fn test_config(data_dir: &Path) -> Config {
    Config {
        data_dir: data_dir.to_path_buf(),
        listen: "127.0.0.1:0"
            .parse()
            .unwrap_or_else(|_| Config::default().listen),
        metrics_listen: "127.0.0.1:0"
            .parse()
            .unwrap_or_else(|_| Config::default().metrics_listen),
        public_ip: std::net::Ipv4Addr::LOCALHOST,
        ..Config::default()
    }
}

/// A node running in this process, with its temporary data directory.
#[derive(Debug)]
pub struct TestNode {
    node: Option<RunningNode>,
    dir: TempDir,
    config: Config,
}

impl TestNode {
    /// This node as a node list names it, active in `swarm_id`: its keys, loopback, its client
    /// port as both announced ports. `None` once stopped.
    pub fn entry(&self, swarm_id: SwarmId) -> Option<NodeEntry> {
        let node = self.node()?;
        let id = &node.state().identity;
        Some(NodeEntry {
            pubkey_ed25519: id.ed25519_public(),
            pubkey_x25519: id.x25519_public(),
            public_ip: std::net::Ipv4Addr::LOCALHOST,
            storage_port: node.client_addr().port(),
            storage_lmq_port: node.client_addr().port(),
            swarm_id,
            active: true,
            version: crate::STORAGE_SERVER_VERSION,
        })
    }

    /// Starts a node in a fresh temporary directory.
    pub async fn start() -> Result<TestNode, NodeError> {
        TestNode::start_with(|_| {}).await
    }

    /// Starts a node in a fresh temporary directory after `tweak` adjusts the config.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Result<TestNode, NodeError> {
        let dir = tempfile::tempdir().map_err(|source| NodeError::DataDir {
            path: std::env::temp_dir(),
            source,
        })?;
        TestNode::start_in(dir, tweak).await
    }

    /// Starts a node whose data directory is `dir` (e.g. one kept from a stopped node).
    pub async fn start_in(
        dir: TempDir,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<TestNode, NodeError> {
        let mut config = test_config(dir.path());
        tweak(&mut config);
        TestNode::start_builder(dir, config.clone(), NodeBuilder::new(config)).await
    }

    /// Starts a node from a prepared builder (custom swarm view, replicator, oxend).
    pub async fn start_builder(
        dir: TempDir,
        config: Config,
        builder: NodeBuilder,
    ) -> Result<TestNode, NodeError> {
        let node = builder.start().await?;
        Ok(TestNode {
            node: Some(node),
            dir,
            config,
        })
    }

    /// The running node.
    pub fn node(&self) -> Option<&RunningNode> {
        self.node.as_ref()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `https://127.0.0.1:<port>/storage_rpc/v1`.
    pub fn rpc_url(&self) -> String {
        format!("{}/storage_rpc/v1", self.base_url())
    }

    /// `https://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        let port = self
            .node
            .as_ref()
            .map(|n| n.client_addr().port())
            .unwrap_or(0);
        format!("https://127.0.0.1:{port}")
    }

    /// `http://127.0.0.1:<port>/metrics`.
    pub fn metrics_url(&self) -> String {
        let port = self
            .node
            .as_ref()
            .map(|n| n.metrics_addr().port())
            .unwrap_or(0);
        format!("http://127.0.0.1:{port}/metrics")
    }

    /// Shuts the node down gracefully and returns its data directory.
    pub async fn stop(mut self) -> TempDir {
        if let Some(n) = self.node.take() {
            n.shutdown().await;
        }
        self.dir
    }

    /// Stops the node and starts a new one on the same data directory and configuration
    /// (new ports).
    pub async fn restart(self) -> Result<TestNode, NodeError> {
        let config = self.config.clone();
        let dir = self.stop().await;
        let mut config = config;
        config.listen = test_config(dir.path()).listen;
        config.metrics_listen = test_config(dir.path()).metrics_listen;
        TestNode::start_builder(dir, config.clone(), NodeBuilder::new(config)).await
    }
}

/// An HTTPS client that accepts any certificate (storage nodes use self-signed ones).
pub fn https_client() -> Result<reqwest::Client, NodeError> {
    crate::identity::install_default_crypto_provider();
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| NodeError::HttpClient(e.to_string()))
}

/// Posts `{"method", "params"}` to `url`; returns the status and the body text.
pub async fn rpc(
    client: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> Result<(u16, String), reqwest::Error> {
    let resp = client
        .post(url)
        .json(&json!({"method": method, "params": params}))
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

/// The current time in milliseconds.
pub fn now_ms() -> i64 {
    system_now_ms()
}

/// A Session account for tests.
#[derive(Debug)]
pub struct TestAccount {
    identity: Identity,
}

impl TestAccount {
    /// A deterministic account from a small seed.
    pub fn new(seed: u64) -> TestAccount {
        TestAccount {
            identity: Identity::generate(&mut SeededRandom::new(seed)),
        }
    }

    /// The underlying identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The Session ID in hex (`05…`, 66 digits).
    pub fn pubkey_hex(&self) -> String {
        self.identity.session_id().to_hex()
    }

    /// The account id (the Session ID with its `05` prefix).
    pub fn pubkey_bytes(&self) -> AccountId {
        AccountId::from(self.identity.session_id())
    }

    /// The Ed25519 public key in hex (`pubkey_ed25519`).
    pub fn ed25519_hex(&self) -> String {
        hex::encode(self.identity.ed25519_public())
    }

    /// Signs `msg`, base64.
    pub fn sign_b64(&self, msg: &[u8]) -> String {
        b64(self.identity.sign(msg).as_bytes())
    }

    /// A signed `retrieve` params object for namespace `ns` at `ts`.
    pub fn retrieve_params(&self, ns: i16, ts: i64) -> Value {
        let ns_s = if ns == 0 {
            String::new()
        } else {
            ns.to_string()
        };
        json!({
            "pubkey": self.pubkey_hex(),
            "pubkey_ed25519": self.ed25519_hex(),
            "namespace": ns,
            "timestamp": ts,
            "signature": self.sign_b64(format!("retrieve{ns_s}{ts}").as_bytes()),
        })
    }

    /// A signed `store` params object for namespace `ns` at `ts` with this TTL.
    pub fn store_params(&self, ns: i16, ts: i64, ttl: i64, data: &[u8]) -> Value {
        let ns_s = if ns == 0 {
            String::new()
        } else {
            ns.to_string()
        };
        json!({
            "pubkey": self.pubkey_hex(),
            "pubkey_ed25519": self.ed25519_hex(),
            "namespace": ns,
            "timestamp": ts,
            "ttl": ttl,
            "data": b64(data),
            "signature": self.sign_b64(format!("store{ns_s}{ts}").as_bytes()),
        })
    }
}

/// Sends raw bytes over TLS to `addr` (any certificate accepted) and returns everything the
/// server sends back until it closes the connection (send `Connection: close`). For tests of
/// malformed HTTP that a normal client would refuse to produce.
pub async fn raw_https(addr: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    // Danger on purpose: test nodes have self-signed certificates; tests check replies, not TLS.
    let cfg = crate::identity::danger_any_cert_client_config().map_err(std::io::Error::other)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(request).await?;
    tls.flush().await?;
    let mut out = Vec::new();
    // A server that answers early may reset the connection; keep what arrived.
    let _ = tls.read_to_end(&mut out).await;
    Ok(out)
}
