//! The two files a devnet keeps: `devnet.json` (for this CLI: processes, ports, keys) and
//! `network.json` (for clients: seed URL, registry key, nodes).

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::layout::{Layout, write_atomically};
use super::probe::Listing;
use super::process::ProcRef;

/// Version of the `devnet.json` format written by this CLI.
pub(crate) const STATE_FORMAT: u32 = 1;
/// Version of the `network.json` format written by this CLI.
pub(crate) const NETWORK_FORMAT: u32 = 1;

/// Everything this CLI needs to find and stop the processes of a devnet (`devnet.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DevnetState {
    /// [`STATE_FORMAT`].
    pub(crate) format: u32,
    /// The foreground `umbra devnet up` watching the network, if any.
    pub(crate) supervisor: Option<ProcRef>,
    /// The registry.
    pub(crate) registry: RegistryRecord,
    /// The storage nodes, in the order they were added.
    pub(crate) nodes: Vec<NodeRecord>,
    /// The attachment server (absent from a `devnet.json` written before it existed).
    #[serde(default)]
    pub(crate) attachments: AttachmentsRecord,
}

/// The attachment server as last started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct AttachmentsRecord {
    /// The running process, `None` when stopped.
    pub(crate) process: Option<ProcRef>,
    /// The HTTP port it listened on last (0 before the first start).
    pub(crate) port: u16,
    /// Its X25519 public key in hex, for onion requests (empty before the first start).
    pub(crate) x25519_pubkey: String,
}

impl AttachmentsRecord {
    /// Its base URL (what clients name as the exit's target).
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether it was ever started (so it has a port and a key).
    pub(crate) fn is_known(&self) -> bool {
        self.port != 0 && !self.x25519_pubkey.is_empty()
    }
}

/// The registry as last started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RegistryRecord {
    /// The running process, `None` when stopped.
    pub(crate) process: Option<ProcRef>,
    /// The HTTP port it listened on last (0 before the first start).
    pub(crate) port: u16,
    /// The port of its gRPC node API (0 before the first start, and in a `devnet.json`
    /// written before it existed).
    #[serde(default)]
    pub(crate) grpc_port: u16,
    /// Its Ed25519 public key in hex (empty before the first start).
    pub(crate) pubkey: String,
}

impl RegistryRecord {
    /// The registry's base URL (what nodes proxy oxend JSON-RPC to).
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The registry's gRPC node API (what nodes register with and follow the list on).
    pub(crate) fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Its Session-style seed JSON-RPC URL.
    pub(crate) fn seed_url(&self) -> String {
        format!("{}/json_rpc", self.url())
    }
}

/// One storage node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeRecord {
    /// Its name inside the devnet (`node-01`, …): the name of its directory and log.
    pub(crate) name: String,
    /// The running process, `None` when stopped.
    pub(crate) process: Option<ProcRef>,
    /// Client HTTPS port (`/storage_rpc/v1`).
    pub(crate) https_port: u16,
    /// Operator port (plain HTTP `/metrics`, `/healthz`).
    pub(crate) metrics_port: u16,
    /// Peer port (gRPC over TLS: replication, `grpc.health.v1`), which the node binds (0 before
    /// the first start, and in a `devnet.json` written before the devnet picked it).
    #[serde(default)]
    pub(crate) peer_port: u16,
    /// The peer port the node announces instead of `peer_port`, when something listens there
    /// in front of it (`umbra devnet up --public-peer-ports`: a test's fault-injecting proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) public_peer_port: Option<u16>,
    /// Ed25519 public key in hex, empty until the node has made its key.
    pub(crate) pubkey_ed25519: String,
    /// X25519 public key in hex, empty until the node has made its key.
    pub(crate) pubkey_x25519: String,
}

impl NodeRecord {
    /// A node never started yet: no process, no ports, no keys.
    pub(crate) fn new(name: String) -> NodeRecord {
        NodeRecord {
            name,
            process: None,
            https_port: 0,
            metrics_port: 0,
            peer_port: 0,
            public_peer_port: None,
            pubkey_ed25519: String::new(),
            pubkey_x25519: String::new(),
        }
    }
}

impl DevnetState {
    /// A state with no process and no node yet.
    pub(crate) fn empty() -> DevnetState {
        DevnetState {
            format: STATE_FORMAT,
            supervisor: None,
            registry: RegistryRecord::default(),
            nodes: Vec::new(),
            attachments: AttachmentsRecord::default(),
        }
    }

    /// Reads `devnet.json`; `Ok(None)` when the directory holds no devnet.
    pub(crate) fn load(layout: &Layout) -> anyhow::Result<Option<DevnetState>> {
        let path = layout.state_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let state: DevnetState = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged: stop what runs by hand and remove {}",
                path.display(),
                layout.shown()
            )
        })?;
        if state.format != STATE_FORMAT {
            bail!(
                "{} has format {} but this umbra reads format {STATE_FORMAT}: use the umbra that made it, or remove {}",
                path.display(),
                state.format,
                layout.shown()
            );
        }
        Ok(Some(state))
    }

    /// Reads `devnet.json`, failing with what to do when there is none.
    pub(crate) fn load_existing(layout: &Layout) -> anyhow::Result<DevnetState> {
        match DevnetState::load(layout)? {
            Some(s) => Ok(s),
            None => bail!(
                "no devnet in {}: start one with `umbra devnet up{}`",
                layout.shown(),
                layout.dir_flag()
            ),
        }
    }

    /// Writes `devnet.json` atomically.
    pub(crate) fn save(&self, layout: &Layout) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self).context("encoding the devnet state")?;
        write_atomically(&layout.state_file(), format!("{text}\n").as_bytes())
    }

    /// Finds a node by its Ed25519 key in hex: the whole key, or a unique prefix of at least
    /// 8 hex digits.
    pub(crate) fn find_node(&self, key: &str) -> anyhow::Result<usize> {
        let key = key.trim().to_ascii_lowercase();
        if key.len() < 8 || !key.chars().all(|c| c.is_ascii_hexdigit()) {
            bail!(
                "{key:?} is not a node key: give the node's Ed25519 public key in hex (see `umbra devnet status`)"
            );
        }
        let hits: Vec<usize> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.pubkey_ed25519.is_empty() && n.pubkey_ed25519.starts_with(&key))
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [i] => Ok(*i),
            [] => bail!("no node of this devnet has the key {key}: see `umbra devnet status`"),
            _ => bail!(
                "{} nodes have keys starting with {key}: give more digits",
                hits.len()
            ),
        }
    }

    /// The name for the next node added: `node-NN`, one above the highest so far.
    pub(crate) fn next_node_name(&self) -> String {
        let highest = self
            .nodes
            .iter()
            .filter_map(|n| n.name.strip_prefix("node-")?.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        format!("node-{:02}", highest + 1)
    }
}

/// `network.json`: what a client needs to use this devnet (`--network PATH` or
/// `UMBRA_NETWORK`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NetworkFile {
    /// [`NETWORK_FORMAT`].
    pub(crate) format: u32,
    /// What kind of network this is (`devnet`).
    pub(crate) network: String,
    /// The seed's full JSON-RPC URL (`get_n_service_nodes`).
    pub(crate) seed_url: String,
    /// The registry's base URL (`/v1/nodelist`, the signed list).
    pub(crate) registry_url: String,
    /// The registry's Ed25519 public key in hex, to pin when verifying its lists.
    pub(crate) registry_pubkey: String,
    /// The node list epoch the `swarm_id`s below come from (`None` if the registry did not
    /// answer). Clients should fetch the signed list rather than trust this snapshot.
    pub(crate) epoch: Option<u64>,
    /// The nodes of this devnet.
    pub(crate) nodes: Vec<NetworkNode>,
    /// The attachment server clients upload to through onion paths (absent before it ever
    /// started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) attachment_server: Option<NetworkAttachmentServer>,
}

/// The attachment server in `network.json`: where an exit node reaches it and the key onion
/// requests to it are encrypted to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NetworkAttachmentServer {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// Its X25519 public key in hex.
    pub(crate) x25519_pubkey: String,
}

/// One node in `network.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NetworkNode {
    /// Ed25519 public key in hex.
    pub(crate) pubkey_ed25519: String,
    /// X25519 public key in hex.
    pub(crate) pubkey_x25519: String,
    /// Always 127.0.0.1 for a devnet.
    pub(crate) public_ip: String,
    /// HTTPS port.
    pub(crate) https_port: u16,
    /// The node's swarm, `None` when it is in none (stopped, or not yet placed).
    pub(crate) swarm_id: Option<u64>,
}

impl NetworkFile {
    /// The network file for `state`, with swarm ids from `listing` when there is one.
    pub(crate) fn build(state: &DevnetState, listing: Option<&Listing>) -> NetworkFile {
        let nodes = state
            .nodes
            .iter()
            .filter(|n| !n.pubkey_ed25519.is_empty())
            .map(|n| NetworkNode {
                pubkey_ed25519: n.pubkey_ed25519.clone(),
                pubkey_x25519: n.pubkey_x25519.clone(),
                public_ip: "127.0.0.1".to_owned(),
                https_port: n.https_port,
                swarm_id: listing.and_then(|l| l.swarm_of(&n.pubkey_ed25519)),
            })
            .collect();
        NetworkFile {
            format: NETWORK_FORMAT,
            network: "devnet".to_owned(),
            seed_url: state.registry.seed_url(),
            registry_url: state.registry.url(),
            registry_pubkey: state.registry.pubkey.clone(),
            epoch: listing.map(|l| l.epoch),
            nodes,
            attachment_server: state
                .attachments
                .is_known()
                .then(|| NetworkAttachmentServer {
                    url: state.attachments.url(),
                    x25519_pubkey: state.attachments.x25519_pubkey.clone(),
                }),
        }
    }

    /// Writes `network.json` atomically.
    pub(crate) fn save(&self, layout: &Layout) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self).context("encoding network.json")?;
        write_atomically(&layout.network_file(), format!("{text}\n").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, key: &str) -> NodeRecord {
        NodeRecord {
            https_port: 1,
            metrics_port: 2,
            peer_port: 3,
            pubkey_ed25519: key.into(),
            ..NodeRecord::new(name.into())
        }
    }

    #[test]
    fn nodes_are_found_by_key_or_unique_prefix() {
        let mut s = DevnetState::empty();
        s.nodes
            .push(node("node-01", &format!("abcdef01{}", "0".repeat(56))));
        s.nodes
            .push(node("node-02", &format!("abcdef02{}", "0".repeat(56))));
        s.nodes.push(node("node-03", ""));
        assert_eq!(s.find_node(&s.nodes[1].pubkey_ed25519.clone()).unwrap(), 1);
        assert_eq!(s.find_node("ABCDEF01").unwrap(), 0);
        let e = s.find_node("abcdef0").unwrap_err().to_string();
        assert!(e.contains("not a node key"), "{e}");
        let e = s.find_node("abcdef0f").unwrap_err().to_string();
        assert!(e.contains("no node"), "{e}");
        s.nodes[1].pubkey_ed25519 = format!("abcdef01{}", "1".repeat(56));
        let e = s.find_node("abcdef01").unwrap_err().to_string();
        assert!(e.contains("2 nodes"), "{e}");
    }

    #[test]
    fn next_name_follows_the_highest() {
        let mut s = DevnetState::empty();
        assert_eq!(s.next_node_name(), "node-01");
        s.nodes.push(node("node-09", ""));
        s.nodes.push(node("node-03", ""));
        assert_eq!(s.next_node_name(), "node-10");
    }

    #[test]
    fn state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path()).unwrap();
        assert!(DevnetState::load(&layout).unwrap().is_none());
        let e = DevnetState::load_existing(&layout).unwrap_err().to_string();
        assert!(e.contains("no devnet"), "{e}");
        let mut s = DevnetState::empty();
        s.registry.port = 4242;
        s.nodes.push(node("node-01", "ab"));
        s.save(&layout).unwrap();
        let back = DevnetState::load(&layout).unwrap().unwrap();
        assert_eq!(back.registry.seed_url(), "http://127.0.0.1:4242/json_rpc");
        assert_eq!(back.nodes[0].name, "node-01");
        assert!(!back.attachments.is_known());
    }

    #[test]
    fn the_attachment_server_is_in_network_json_once_started() {
        let mut s = DevnetState::empty();
        let net = serde_json::to_value(NetworkFile::build(&s, None)).unwrap();
        assert!(net.get("attachment_server").is_none(), "{net}");
        s.attachments.port = 4343;
        s.attachments.x25519_pubkey = "ab".repeat(32);
        let net = serde_json::to_value(NetworkFile::build(&s, None)).unwrap();
        assert_eq!(net["attachment_server"]["url"], "http://127.0.0.1:4343");
        assert_eq!(net["attachment_server"]["x25519_pubkey"], "ab".repeat(32));
    }

    #[test]
    fn a_state_from_before_the_attachment_server_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path()).unwrap();
        let mut v = serde_json::to_value(DevnetState::empty()).unwrap();
        v.as_object_mut().unwrap().remove("attachments");
        std::fs::write(layout.state_file(), v.to_string()).unwrap();
        let back = DevnetState::load(&layout).unwrap().unwrap();
        assert!(back.attachments.process.is_none());
    }
}
