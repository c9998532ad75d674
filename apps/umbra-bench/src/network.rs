//! The running network a benchmark drives: its file, whether it is a devnet, and the CPU its
//! processes use during a phase.

use std::path::{Path, PathBuf};
use std::time::Instant;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::bail;
use serde_json::{Value, json};
use umbra_net::NetworkConfig;

use crate::sys;

/// The network file and whether it is a devnet.
pub(crate) struct Network {
    pub(crate) path: PathBuf,
    pub(crate) config: NetworkConfig,
    pub(crate) devnet: bool,
    /// Nodes listed in the file (a devnet lists them all).
    pub(crate) nodes: usize,
    /// The devnet's process ids (registry and nodes) from `devnet.json` next to the network
    /// file, for their CPU time; empty when it is not a devnet directory.
    pub(crate) pids: Vec<String>,
}

impl Network {
    pub(crate) fn load(path: &Path) -> anyhow::Result<Network> {
        if !path.exists() {
            bail!(
                "reading the network file: {} does not exist (start one with `umbra devnet up --dir DIR --detach` and pass --network DIR/network.json)",
                path.display()
            );
        }
        let config = NetworkConfig::load(path)?;
        let raw: Value = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let devnet = raw["network"] == "devnet";
        let nodes = raw["nodes"].as_array().map_or(0, Vec::len);
        let pids = path
            .parent()
            .map(|d| d.join("devnet.json"))
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .map(|v| {
                let mut pids = Vec::new();
                if let Some(p) = v["registry"]["process"]["pid"].as_u64() {
                    pids.push(p.to_string());
                }
                for n in v["nodes"].as_array().into_iter().flatten() {
                    if let Some(p) = n["process"]["pid"].as_u64() {
                        pids.push(p.to_string());
                    }
                }
                pids
            })
            .unwrap_or_default();
        Ok(Network {
            path: path.to_path_buf(),
            config,
            devnet,
            nodes,
            pids,
        })
    }

    /// CPU seconds used so far by this process and by the network's processes.
    pub(crate) fn cpu(&self) -> (f64, f64) {
        let me = sys::cpu_seconds("self").unwrap_or(0.0);
        let net = self
            .pids
            .iter()
            .filter_map(|p| sys::cpu_seconds(p))
            .sum::<f64>();
        (me, net)
    }
}

/// CPU used during a phase, in cores (CPU seconds / wall seconds).
pub(crate) struct CpuSpan {
    start: (f64, f64),
    at: Instant,
}

impl CpuSpan {
    pub(crate) fn start(net: &Network) -> CpuSpan {
        CpuSpan {
            start: net.cpu(),
            at: SystemClock.instant(),
        }
    }

    /// CPU since the start in cores, this process and the network's: as a phrase for the
    /// report and as JSON. Spans under a second are not reported (the kernel counts CPU time
    /// in 10 ms ticks per process, too coarse for them).
    pub(crate) fn cores(&self, net: &Network) -> (String, Value) {
        let (me, nodes) = net.cpu();
        let wall = SystemClock.since(self.at).as_secs_f64();
        if wall < 1.0 {
            return ("CPU not measured (under 1 s)".into(), Value::Null);
        }
        let (c, n) = ((me - self.start.0) / wall, (nodes - self.start.1) / wall);
        (
            format!("CPU client {c:.2} cores, network {n:.2} cores"),
            json!({"client": c, "network": n}),
        )
    }
}
