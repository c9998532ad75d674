//! Looking at the running network from outside, through the daemons' public interfaces only,
//! for what their health checks ([`super::health`]) cannot tell: which node list a node serves
//! (its operator port's `GET /status`), the registry's view (its Session-style seed JSON-RPC,
//! `get_n_service_nodes`), and whether the attachment server answers (`GET /metrics`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// Largest registry answer read (a list of thousands of nodes fits easily).
const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;
/// Largest node status answer read.
const MAX_STATUS_BYTES: usize = 64 * 1024;
/// The "no swarm" id of the node list.
const UNASSIGNED_SWARM_ID: u64 = u64::MAX;

/// An HTTP client for probes: short timeouts, no proxy. Every URL it reads is plain HTTP on
/// loopback (the nodes' HTTPS port is no longer probed: their health check is, over TLS
/// checked against their key).
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
}

impl Http {
    /// A new probe client.
    pub(crate) fn new() -> anyhow::Result<Http> {
        // reqwest is built without a default TLS provider; use ring, as the daemons do. An
        // error only means a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .context("building the HTTP client")?;
        Ok(Http { client })
    }

    /// Whether the attachment server at `url` answers (its `GET /metrics`).
    pub(crate) async fn attachments_answer(&self, url: &str) -> bool {
        match self.client.get(format!("{url}/metrics")).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        }
    }

    /// What the node with operator (metrics) port `metrics_port` serves: `None` when it does
    /// not answer there (yet) or answers something else.
    pub(crate) async fn node_serving(&self, metrics_port: u16) -> Option<Serving> {
        let url = format!("http://127.0.0.1:{metrics_port}/status");
        let resp = self.client.get(url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let bytes = resp.bytes().await.ok()?;
        if bytes.len() > MAX_STATUS_BYTES {
            return None;
        }
        parse_serving(&serde_json::from_slice(&bytes).ok()?)
    }

    /// The registry's current node list, from its seed JSON-RPC at `seed_url`.
    pub(crate) async fn registry_list(&self, seed_url: &str) -> anyhow::Result<Listing> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": 0,
            "method": "get_n_service_nodes",
            "params": {"fields": ["pubkey_ed25519", "pubkey_x25519", "storage_port", "swarm_id", "active"]},
        });
        let mut resp = self
            .client
            .post(seed_url)
            .json(&body)
            .send()
            .await
            .context("asking the registry for its node list")?;
        if !resp.status().is_success() {
            bail!(
                "the registry answered {} to get_n_service_nodes",
                resp.status()
            );
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .context("reading the registry's node list")?
        {
            if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
                bail!("the registry's node list is larger than {MAX_REPLY_BYTES} bytes");
            }
            bytes.extend_from_slice(&chunk);
        }
        let v: Value =
            serde_json::from_slice(&bytes).context("the registry's node list is not JSON")?;
        parse_listing(&v)
    }
}

/// The registry's view of the network at one epoch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    /// The list's epoch (`epoch`).
    pub(crate) epoch: u64,
    /// Every node the registry knows, active or not.
    pub(crate) nodes: Vec<Listed>,
}

/// One node as the registry lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Ed25519 key, lowercase hex.
    pub(crate) pubkey_ed25519: String,
    /// X25519 key, lowercase hex.
    pub(crate) pubkey_x25519: String,
    /// HTTPS port it announced.
    pub(crate) storage_port: u16,
    /// Its swarm; `None` when inactive or not placed.
    pub(crate) swarm_id: Option<u64>,
}

impl Listing {
    /// The node with this Ed25519 key.
    pub(crate) fn find(&self, pubkey_ed25519: &str) -> Option<&Listed> {
        self.nodes
            .iter()
            .find(|n| n.pubkey_ed25519 == pubkey_ed25519)
    }

    /// The swarm of the node with this key, if it is an active swarm member.
    pub(crate) fn swarm_of(&self, pubkey_ed25519: &str) -> Option<u64> {
        self.find(pubkey_ed25519).and_then(|n| n.swarm_id)
    }

    /// Swarm id → number of active members.
    pub(crate) fn swarms(&self) -> BTreeMap<u64, usize> {
        let mut m = BTreeMap::new();
        for id in self.nodes.iter().filter_map(|n| n.swarm_id) {
            *m.entry(id).or_insert(0) += 1;
        }
        m
    }
}

/// Which node list a node serves (its operator port's `GET /status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Serving {
    /// Epoch of the list it answers requests by.
    pub(crate) list_epoch: u64,
    /// Whether it knows its swarm by the newest list it heard of.
    pub(crate) knows_its_swarm: bool,
    /// Its swarm by that list.
    pub(crate) swarm_id: Option<u64>,
}

impl Serving {
    /// Whether the node answers by `listing` (or a newer list) and sits in the swarm that
    /// `listing` gives it (`None`: the listing places it nowhere).
    pub(crate) fn serves(&self, listing: &Listing, swarm: Option<u64>) -> bool {
        self.list_epoch >= listing.epoch
            && (swarm.is_none() || (self.knows_its_swarm && self.swarm_id == swarm))
    }

    /// What is missing for [`Serving::serves`], in a few words.
    pub(crate) fn lag(&self, listing: &Listing, swarm: Option<u64>) -> String {
        if self.list_epoch < listing.epoch {
            format!("serves epoch {} of {}", self.list_epoch, listing.epoch)
        } else if !self.knows_its_swarm {
            "does not know its swarm yet".to_owned()
        } else {
            format!(
                "is in swarm {} instead of {}",
                self.swarm_id.map_or_else(|| "none".to_owned(), swarm_hex),
                swarm.map_or_else(|| "none".to_owned(), swarm_hex)
            )
        }
    }
}

/// Reads a node's `GET /status` answer.
pub(crate) fn parse_serving(v: &Value) -> Option<Serving> {
    Some(Serving {
        list_epoch: v.get("list_epoch").and_then(Value::as_u64)?,
        knows_its_swarm: v.get("knows_its_swarm").and_then(Value::as_bool)?,
        swarm_id: match v.get("swarm") {
            Some(Value::String(h)) => Some(u64::from_str_radix(h, 16).ok()?),
            _ => None,
        },
    })
}

/// Reads a `get_n_service_nodes` reply.
pub(crate) fn parse_listing(v: &Value) -> anyhow::Result<Listing> {
    if let Some(err) = v.get("error") {
        bail!("the registry refused get_n_service_nodes: {err}");
    }
    let result = v
        .get("result")
        .context("the registry's reply has no result")?;
    // The list epoch has its own field; `height` is the chain-scale block height
    // (storage-rpc-addendum.md A4).
    let epoch = result
        .get("epoch")
        .and_then(Value::as_u64)
        .context("the registry's reply has no epoch")?;
    let states = result
        .get("service_node_states")
        .and_then(Value::as_array)
        .context("the registry's reply has no service_node_states")?;
    let mut nodes = Vec::with_capacity(states.len());
    for s in states {
        let text = |k: &str| {
            s.get(k)
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .unwrap_or_default()
        };
        let active = s.get("active").and_then(Value::as_bool).unwrap_or(true);
        let swarm_id = s
            .get("swarm_id")
            .and_then(Value::as_u64)
            .filter(|id| active && *id != UNASSIGNED_SWARM_ID);
        nodes.push(Listed {
            pubkey_ed25519: text("pubkey_ed25519"),
            pubkey_x25519: text("pubkey_x25519"),
            storage_port: s
                .get("storage_port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0),
            swarm_id,
        });
    }
    Ok(Listing { epoch, nodes })
}

/// A swarm id as Session writes it (`get_swarm`): lowercase hex without leading zeros.
pub(crate) fn swarm_hex(id: u64) -> String {
    format!("{id:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_reads_swarms_and_skips_inactive_nodes() {
        let reply = json!({"jsonrpc": "2.0", "id": 0, "result": {
        "height": 1_988_505, "epoch": 17,
        "service_node_states": [
            {"pubkey_ed25519": "AA", "pubkey_x25519": "bb", "storage_port": 4000,
             "swarm_id": 18_446_744_073_709_551_614_u64, "active": true},
            {"pubkey_ed25519": "cc", "pubkey_x25519": "dd", "storage_port": 4001,
             "swarm_id": 5, "active": false},
            {"pubkey_ed25519": "ee", "pubkey_x25519": "ff", "storage_port": 4002,
             "swarm_id": u64::MAX, "active": true},
            {"pubkey_ed25519": "11", "pubkey_x25519": "22", "storage_port": 4003,
             "swarm_id": 18_446_744_073_709_551_614_u64, "active": true}
        ]}});
        let l = parse_listing(&reply).unwrap();
        assert_eq!(l.epoch, 17);
        assert_eq!(l.swarm_of("aa"), Some(u64::MAX - 1));
        assert_eq!(l.swarm_of("cc"), None);
        assert_eq!(l.swarm_of("ee"), None);
        assert_eq!(l.find("cc").unwrap().storage_port, 4001);
        assert_eq!(
            l.swarms().into_iter().collect::<Vec<_>>(),
            vec![(u64::MAX - 1, 2)]
        );
        assert_eq!(swarm_hex(u64::MAX - 1), "fffffffffffffffe");
    }

    #[test]
    fn node_status_is_read_and_compared_with_the_registry() {
        let v = json!({"list_epoch": 7, "newest_epoch_heard": 7, "stale": false,
            "knows_its_swarm": true, "swarm": "fffffffffffffffe", "swarm_members": 7});
        let s = parse_serving(&v).unwrap();
        assert_eq!(s.swarm_id, Some(u64::MAX - 1));
        let at = |epoch| Listing {
            epoch,
            nodes: Vec::new(),
        };
        assert!(s.serves(&at(7), Some(u64::MAX - 1)));
        assert!(s.serves(&at(6), Some(u64::MAX - 1)), "a newer list is fine");
        assert!(!s.serves(&at(8), Some(u64::MAX - 1)));
        assert_eq!(s.lag(&at(8), Some(u64::MAX - 1)), "serves epoch 7 of 8");
        assert!(!s.serves(&at(7), Some(5)));
        assert!(s.lag(&at(7), Some(5)).contains("instead of 5"));
        let lost = parse_serving(&json!({"list_epoch": 7, "knows_its_swarm": false,
            "swarm": null}))
        .unwrap();
        assert!(!lost.serves(&at(7), Some(5)));
        assert!(
            lost.serves(&at(7), None),
            "the registry places it nowhere either"
        );
        assert_eq!(lost.lag(&at(7), Some(5)), "does not know its swarm yet");
        assert!(parse_serving(&json!({"knows_its_swarm": true})).is_none());
    }

    #[test]
    fn errors_are_reported() {
        let e = parse_listing(&json!({"error": {"code": -32601}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("refused"), "{e}");
        assert!(parse_listing(&json!({"result": {}})).is_err());
    }
}
