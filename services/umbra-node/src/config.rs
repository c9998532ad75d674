//! Node configuration: a TOML file and/or command-line flags (the binary overlays flags on the
//! file). Every table rejects unknown keys, naming them.
//!
//! ```toml
//! data_dir = "/var/lib/umbra-node"
//! listen = "0.0.0.0:22021"          # client HTTPS (storage_rpc)
//! metrics_listen = "127.0.0.1:22029" # operator: plain HTTP /metrics
//! public_ip = "203.0.113.7"
//! registry_url = "http://registry.example:22000"       # oxend JSON-RPC proxy
//! registry_grpc_url = "http://registry.example:22001"  # register, heartbeat, list stream
//! registry_pubkey = "<64 hex digits>"
//! log_level = "info"
//!
//! [quota]
//! max_messages = 100000
//! max_bytes = 268435456
//!
//! [rate_limit]
//! burst = 600
//! per_second = 300
//!
//! [replication]            # with registry_grpc_url + registry_pubkey
//! round_interval_secs = 30
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use umbra_crypto::Ed25519PublicKey;

use serde::{Deserialize, Serialize};

use crate::NodeError;

/// The whole node configuration. `Default` gives production values (ports as Session nodes use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding the node key, the TLS certificate and the message database.
    pub data_dir: PathBuf,
    /// Client HTTPS listener (`/storage_rpc/v1`; later also `/onion_req/v2`). Port 0 picks one.
    pub listen: SocketAddr,
    /// The node-to-node listener (gRPC `umbra.peer.v2.Peer` over TLS 1.3 with the node keys of
    /// the signed list on both sides), announced to the registry as `storage_lmq_port`. `None` (the default):
    /// the IP address of `listen` with a port picked at start (the registry learns it; set a
    /// fixed port when peers must pass a firewall). Only used when the node follows a registry.
    pub peer_listen: Option<SocketAddr>,
    /// The peer port announced to the registry (`storage_lmq_port`), where the other nodes
    /// dial this one; `None` (the default): the port `peer_listen` bound. Set it when peers
    /// reach the node through a port forward or a proxy (the devnet's partition scenario puts a
    /// fault-injecting proxy there); the peers still check the TLS certificate against this
    /// node's key, so the address carries no trust.
    pub public_peer_port: Option<u16>,
    /// Operator listener (plain HTTP: `GET /metrics`, `GET /healthz`). Keep it private.
    pub metrics_listen: SocketAddr,
    /// The IPv4 address advertised to clients (`get_swarm`, 421 replies).
    pub public_ip: Ipv4Addr,
    /// The HTTPS port advertised to clients; `None` = the port actually bound by `listen`.
    pub public_port: Option<u16>,
    /// The registry (seed) base URL, e.g. `http://10.0.0.1:22000`; `oxend_request` is proxied
    /// to `<registry_url>/json_rpc`. `None`: `oxend_request` answers 503.
    pub registry_url: Option<String>,
    /// The registry's gRPC node API (its `--grpc-listen` address), e.g.
    /// `http://10.0.0.1:22001`: plain HTTP/2, because every list is verified against
    /// `registry_pubkey` and every request is signed (`umbra_replica::registry_client`). With
    /// `registry_pubkey`, the node registers, heartbeats, follows the signed node list as the
    /// registry pushes it, and replicates with its swarm (see [`ReplicationConfig`]).
    pub registry_grpc_url: Option<String>,
    /// The registry's Ed25519 public key (64 hex digits), used to verify its signed node list.
    pub registry_pubkey: Option<String>,
    /// Log filter: `error`, `warn`, `info`, `debug`, `trace`, or a `tracing` filter directive.
    pub log_level: String,
    /// Show Session IDs, IPs and keys in clear in logs. Honoured only with `debug`/`trace`.
    pub log_reveal_metadata: bool,
    /// Per-account storage quota.
    pub quota: QuotaConfig,
    /// Per-client-IP token bucket.
    pub rate_limit: RateLimitConfig,
    /// Request handling limits.
    pub limits: LimitsConfig,
    /// Message store tuning.
    pub store: StoreTuning,
    /// The static swarm view used when no registry is configured.
    pub swarm: StaticSwarmConfig,
    /// Swarm replication timing (used when the registry is configured).
    pub replication: ReplicationConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("umbra-node-data"),
            listen: SocketAddr::from(([0, 0, 0, 0], 22021)),
            peer_listen: None,
            public_peer_port: None,
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 22029)),
            public_ip: Ipv4Addr::UNSPECIFIED,
            public_port: None,
            registry_url: None,
            registry_grpc_url: None,
            registry_pubkey: None,
            log_level: "info".to_string(),
            log_reveal_metadata: false,
            quota: QuotaConfig::default(),
            rate_limit: RateLimitConfig::default(),
            limits: LimitsConfig::default(),
            store: StoreTuning::default(),
            swarm: StaticSwarmConfig::default(),
            replication: ReplicationConfig::default(),
        }
    }
}

/// Per-account quota (all namespaces together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Most messages one account may keep on this node.
    pub max_messages: u64,
    /// Most message bytes one account may keep on this node.
    pub max_bytes: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        let q = umbra_store::Quota::default();
        QuotaConfig {
            max_messages: q.max_messages,
            max_bytes: q.max_bytes,
        }
    }
}

/// Per-client-IP token bucket (`storage-rpc.md` §1.1: 600 deep, 300/s, 10 000 clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Whether rate limiting is on.
    pub enabled: bool,
    /// Bucket depth (tokens; one request costs one).
    pub burst: u32,
    /// Refill rate, tokens per second.
    pub per_second: u32,
    /// Most client IPs tracked at once; when full, new clients get 429.
    pub max_clients: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            burst: 600,
            per_second: 300,
            max_clients: 10_000,
        }
    }
}

/// Request handling limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body (the spec's 10 MiB).
    pub max_body_bytes: u64,
    /// Most RPC requests handled at once; beyond it: `503 Server busy, try again later`.
    pub max_inflight: usize,
    /// Seconds a client may take to send its headers or its body.
    pub request_timeout_secs: u64,
    /// Seconds in-flight requests get to finish at shutdown.
    pub shutdown_grace_secs: u64,
    /// Seconds between expiry sweeps.
    pub sweep_interval_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 10 * 1024 * 1024,
            max_inflight: 4096,
            request_timeout_secs: 30,
            shutdown_grace_secs: 20,
            sweep_interval_secs: 10,
        }
    }
}

/// How hard the store works to keep acknowledged writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DurabilityConfig {
    /// Survives a crash of the node process (`kill -9`); the default.
    #[default]
    ProcessCrash,
    /// Also survives power loss (one fsync per group commit).
    PowerLoss,
}

/// Message store tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreTuning {
    /// Commit durability.
    pub durability: DurabilityConfig,
    /// Cap on the stored data in MiB (3584 = the reference's 3.5 GiB); 0 = unlimited.
    pub max_db_mib: u64,
    /// RocksDB write buffers (memtables) of all column families together, in MiB.
    pub write_buffer_mib: u32,
    /// RocksDB block cache (reads), in MiB.
    pub block_cache_mib: u32,
    /// Most files RocksDB keeps open.
    pub max_open_files: u16,
    /// RocksDB background flush and compaction threads.
    pub background_jobs: u8,
}

impl Default for StoreTuning {
    fn default() -> Self {
        let r = umbra_store::Resources::default();
        StoreTuning {
            durability: DurabilityConfig::default(),
            max_db_mib: 3584,
            write_buffer_mib: u32::try_from(r.write_buffer_bytes >> 20).unwrap_or(16),
            block_cache_mib: u32::try_from(r.block_cache_bytes >> 20).unwrap_or(24),
            max_open_files: u16::try_from(r.max_open_files).unwrap_or(256),
            background_jobs: u8::try_from(r.background_jobs).unwrap_or(2),
        }
    }
}

/// The swarm this node is in when no registry is configured: a swarm containing only this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticSwarmConfig {
    /// The swarm id (every account maps to it while it is the only swarm).
    pub id: u64,
}

/// Swarm replication timing. Only used when `registry_grpc_url` and `registry_pubkey` are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// Seconds between anti-entropy rounds with the swarm peers (one also runs right after
    /// start and after every change of the registry's list).
    pub round_interval_secs: u64,
    /// Milliseconds the entry node waits for each member's result of a forwarded write (the
    /// reference: 5000); a late member is reported as `{"failed": true, "timeout": true}`.
    pub forward_timeout_ms: u64,
    /// Seconds a reconciliation or handover call to a peer may take.
    pub request_timeout_secs: u64,
    /// Lists arrive on the registry's stream as soon as they are signed; when heartbeat
    /// answers announce a newer list than the stream brought for this many seconds, the node
    /// reopens the stream.
    pub registry_refresh_secs: u64,
    /// Seconds a call to the registry (register, heartbeat, leave, opening the list stream)
    /// may take, and connecting to it.
    pub registry_timeout_secs: u64,
    /// Most peer calls (gRPC on `peer_listen`; open streams included) served at once; beyond
    /// it: `RESOURCE_EXHAUSTED`.
    pub max_peer_inflight: usize,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            round_interval_secs: 30,
            forward_timeout_ms: 5_000,
            request_timeout_secs: 20,
            registry_refresh_secs: 30,
            registry_timeout_secs: 10,
            max_peer_inflight: 256,
        }
    }
}

impl Config {
    /// Parses a TOML document. Unknown keys are an error naming the key.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, NodeError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            // One line: the parser's message plus where it is.
            let at = e
                .span()
                .map(|sp| {
                    let before = &text[..sp.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
                    format!(" (line {line}, column {col})")
                })
                .unwrap_or_default();
            NodeError::ParseConfig {
                path: origin.to_path_buf(),
                message: format!("{}{at}", e.message().trim()),
            }
        })?;
        Ok(cfg)
    }

    /// Reads and parses a TOML file (without validating it; see [`Config::validate`]).
    pub fn load(path: &Path) -> Result<Config, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml_str(&text, path)
    }

    /// Checks values that TOML types cannot express.
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad = |m: String| Err(NodeError::InvalidConfig(m));
        if let Some(url) = &self.registry_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad(format!(
                "registry_url must start with http:// or https://, got {url:?}"
            ));
        }
        if let Some(url) = &self.registry_grpc_url
            && !url.starts_with("http://")
        {
            return bad(format!(
                "registry_grpc_url must start with http:// (the registry's gRPC API is plain \
                 HTTP/2; lists are verified by signature), got {url:?}"
            ));
        }
        if let Some(pk) = &self.registry_pubkey
            && self.registry_pubkey_bytes().is_none()
        {
            return bad(format!(
                "registry_pubkey must be 64 hex digits (an Ed25519 public key), got {} characters",
                pk.len()
            ));
        }
        if self.registry_pubkey.is_some() && self.registry_grpc_url.is_none() {
            return bad(
                "registry_pubkey is set but registry_grpc_url is not: the node follows the \
                 registry over gRPC (the registry's --grpc-listen address, e.g. \
                 http://10.0.0.1:22001)"
                    .into(),
            );
        }
        if self.rate_limit.enabled
            && (self.rate_limit.burst == 0 || self.rate_limit.per_second == 0)
        {
            return bad("rate_limit.burst and rate_limit.per_second must be at least 1".into());
        }
        if self.rate_limit.max_clients == 0 {
            return bad("rate_limit.max_clients must be at least 1".into());
        }
        if self.limits.max_inflight == 0 {
            return bad("limits.max_inflight must be at least 1".into());
        }
        if self.limits.max_body_bytes == 0 {
            return bad("limits.max_body_bytes must be at least 1".into());
        }
        if self.limits.sweep_interval_secs == 0 {
            return bad("limits.sweep_interval_secs must be at least 1".into());
        }
        if self.quota.max_messages == 0 || self.quota.max_bytes == 0 {
            return bad("quota.max_messages and quota.max_bytes must be at least 1".into());
        }
        if self.registry_grpc_url.is_some()
            && self.registry_pubkey.is_some()
            && self.public_ip.is_unspecified()
        {
            return bad(
                "public_ip must be set when registry_grpc_url and registry_pubkey are: it is \
                 the address announced to the registry"
                    .into(),
            );
        }
        if self.public_peer_port == Some(0) {
            return bad(
                "public_peer_port must not be 0: unset it to announce the port peer_listen binds"
                    .into(),
            );
        }
        let r = &self.replication;
        if r.round_interval_secs == 0
            || r.forward_timeout_ms == 0
            || r.request_timeout_secs == 0
            || r.registry_refresh_secs == 0
            || r.registry_timeout_secs == 0
            || r.max_peer_inflight == 0
        {
            return bad("every [replication] value must be at least 1".into());
        }
        if self.swarm.id == umbra_swarm::UNASSIGNED_SWARM_ID {
            return bad("swarm.id must not be 18446744073709551615 (the 'no swarm' id)".into());
        }
        if tracing_level_ok(&self.log_level).is_none() {
            return bad(format!(
                "log_level {:?} is not a valid log filter",
                self.log_level
            ));
        }
        Ok(())
    }

    /// The registry's gRPC URL and key when both are configured: the node then follows the
    /// registry and replicates with its swarm.
    pub fn registry(&self) -> Option<(&str, Ed25519PublicKey)> {
        Some((
            self.registry_grpc_url.as_deref()?,
            self.registry_pubkey_bytes()?,
        ))
    }

    /// The registry public key, if configured and well-formed.
    pub fn registry_pubkey_bytes(&self) -> Option<Ed25519PublicKey> {
        let pk = self.registry_pubkey.as_ref()?;
        let v = hex::decode(pk).ok()?;
        Ed25519PublicKey::from_slice(&v).ok()
    }

    /// The message store configuration derived from this one.
    pub fn store_config(&self) -> umbra_store::StoreConfig {
        umbra_store::StoreConfig {
            durability: match self.store.durability {
                DurabilityConfig::ProcessCrash => umbra_store::Durability::ProcessCrash,
                DurabilityConfig::PowerLoss => umbra_store::Durability::PowerLoss,
            },
            quota: umbra_store::Quota {
                max_messages: self.quota.max_messages,
                max_bytes: self.quota.max_bytes,
            },
            max_db_bytes: if self.store.max_db_mib == 0 {
                None
            } else {
                Some(self.store.max_db_mib.saturating_mul(1024 * 1024))
            },
            resources: umbra_store::Resources {
                write_buffer_bytes: mib(self.store.write_buffer_mib),
                block_cache_bytes: mib(self.store.block_cache_mib),
                max_open_files: i32::from(self.store.max_open_files),
                background_jobs: i32::from(self.store.background_jobs),
            },
            ..umbra_store::StoreConfig::default()
        }
    }

    /// Whether the log level asks for metadata in clear (debug or trace *and* the explicit
    /// `log_reveal_metadata` switch).
    pub fn reveal_metadata(&self) -> bool {
        self.log_reveal_metadata
            && matches!(
                tracing_level_ok(&self.log_level),
                Some(LogVerbosity::Debug | LogVerbosity::Trace)
            )
    }
}

/// How verbose a log filter is, roughly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogVerbosity {
    Quiet,
    Debug,
    Trace,
}

/// Accepts the plain level names and simple `target=level` directive lists.
fn tracing_level_ok(s: &str) -> Option<LogVerbosity> {
    let mut most = LogVerbosity::Quiet;
    if s.trim().is_empty() {
        return None;
    }
    for part in s.split(',') {
        let level = part.rsplit('=').next().unwrap_or("").trim();
        let v = match level.to_ascii_lowercase().as_str() {
            "off" | "error" | "warn" | "info" => LogVerbosity::Quiet,
            "debug" => LogVerbosity::Debug,
            "trace" => LogVerbosity::Trace,
            _ => return None,
        };
        if v == LogVerbosity::Trace || (v == LogVerbosity::Debug && most == LogVerbosity::Quiet) {
            most = v;
        }
    }
    Some(most)
}

/// `n` MiB in bytes.
fn mib(n: u32) -> usize {
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .saturating_mul(1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = Config::default();
        c.validate().unwrap();
        let text = toml::to_string(&c).unwrap();
        let back = Config::from_toml_str(&text, Path::new("x.toml")).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::from_toml_str("data_dirr = \"/x\"\n", Path::new("n.toml")).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("data_dirr"), "{s}");
        assert!(s.contains("n.toml"), "{s}");
        assert!(s.contains("(line 1, column 1)") && !s.contains('\n'), "{s}");
        let e = Config::from_toml_str("[quota]\nmax_mesages = 3\n", Path::new("n.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_mesages"), "{e}");
    }

    #[test]
    fn partial_file_keeps_defaults() {
        let c = Config::from_toml_str(
            "listen = \"127.0.0.1:0\"\n[rate_limit]\nburst = 5\n",
            Path::new("n.toml"),
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.rate_limit.burst, 5);
        assert_eq!(c.rate_limit.per_second, 300);
        assert_eq!(c.data_dir, Config::default().data_dir);
    }

    #[test]
    fn validation_names_the_problem() {
        let c = Config {
            registry_pubkey: Some("abcd".into()),
            ..Config::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("registry_pubkey")
        );
        let c = Config {
            registry_url: Some("ftp://x".into()),
            ..Config::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("registry_url")
        );
        let c = Config {
            log_level: "loud".into(),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("log_level"));
        let c = Config {
            log_level: "info,umbra_node=debug".into(),
            log_reveal_metadata: true,
            ..Config::default()
        };
        c.validate().unwrap();
        assert!(c.reveal_metadata());
        let c = Config {
            log_reveal_metadata: true,
            ..Config::default()
        };
        assert!(!c.reveal_metadata());
        let without_grpc = Config {
            registry_url: Some("http://127.0.0.1:1".into()),
            registry_pubkey: Some("ab".repeat(32)),
            public_ip: Ipv4Addr::LOCALHOST,
            ..Config::default()
        };
        let e = without_grpc.validate().unwrap_err().to_string();
        assert!(e.contains("registry_grpc_url"), "{e}");
        let e = Config {
            registry_grpc_url: Some("https://127.0.0.1:2".into()),
            ..without_grpc.clone()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("http://"), "{e}");
        let with_registry = Config {
            registry_grpc_url: Some("http://127.0.0.1:2".into()),
            public_ip: Ipv4Addr::UNSPECIFIED,
            ..without_grpc
        };
        let e = with_registry.validate().unwrap_err().to_string();
        assert!(e.contains("public_ip"), "{e}");
        let mut c = Config {
            public_ip: Ipv4Addr::LOCALHOST,
            ..with_registry
        };
        c.validate().unwrap();
        assert_eq!(
            c.registry(),
            Some((
                "http://127.0.0.1:2",
                Ed25519PublicKey::from_bytes([0xab; 32])
            ))
        );
        c.public_peer_port = Some(0);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("public_peer_port"), "{e}");
        c.public_peer_port = Some(22_020);
        c.validate().unwrap();
        c.replication.forward_timeout_ms = 0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("[replication]"), "{e}");
        let e = Config::from_toml_str("[replication]\nround_secs = 1\n", Path::new("n.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("round_secs"), "{e}");
    }
}
