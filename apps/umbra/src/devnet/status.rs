//! `umbra devnet status`: the registry, the attachment server and every node, with the registry's swarms and a health
//! verdict per node (running, its `grpc.health.v1` check answering over TLS from the holder of
//! its key and saying SERVING, an active swarm member, and serving the registry's current node
//! list).

use anyhow::Context as _;
use serde::Serialize;
use tokio::task::JoinSet;

use super::StatusArgs;
use super::health::{self, Health};
use super::layout::{Layout, shown_path};
use super::probe::{Http, Listing, swarm_hex};
use super::state::DevnetState;

/// The whole report (`--json` prints it as is).
#[derive(Debug, Serialize)]
struct Report {
    dir: String,
    network_file: String,
    logs: String,
    /// pid of a foreground `umbra devnet up` watching the network.
    supervisor_pid: Option<u32>,
    registry: RegistryReport,
    attachment_server: AttachmentsReport,
    swarms: Vec<SwarmReport>,
    nodes: Vec<NodeReport>,
}

#[derive(Debug, Serialize)]
struct RegistryReport {
    pid: Option<u32>,
    running: bool,
    /// Whether it answered the seed JSON-RPC just now and its gRPC health check says SERVING.
    healthy: bool,
    /// What its `grpc.health.v1` check said just now (`None`: not running).
    grpc_health: Option<Health>,
    url: String,
    seed_url: String,
    pubkey: String,
    epoch: Option<u64>,
    log: String,
}

#[derive(Debug, Serialize)]
struct AttachmentsReport {
    pid: Option<u32>,
    running: bool,
    /// Whether it answered `GET /metrics` just now.
    healthy: bool,
    url: String,
    x25519_pubkey: String,
    log: String,
}

#[derive(Debug, Serialize)]
struct SwarmReport {
    swarm_id: u64,
    swarm: String,
    nodes: usize,
}

#[derive(Debug, Serialize)]
struct NodeReport {
    name: String,
    pubkey_ed25519: String,
    pubkey_x25519: String,
    swarm_id: Option<u64>,
    swarm: Option<String>,
    https_port: u16,
    metrics_port: u16,
    /// The port it binds for its peers (gRPC over TLS).
    peer_port: u16,
    /// The peer port it announces, when not `peer_port` (something listens in front of it).
    public_peer_port: Option<u16>,
    pid: Option<u32>,
    running: bool,
    /// Whether its health check answered on its peer port (over TLS, from its key).
    answering: bool,
    /// What its `grpc.health.v1` check said just now (`None`: not running).
    health: Option<Health>,
    registered: bool,
    /// Epoch of the node list the node serves (its operator port's `GET /status`).
    list_epoch: Option<u64>,
    /// Whether it serves the registry's current list and knows its swarm by it.
    serving_current_list: bool,
    healthy: bool,
    log: String,
}

impl NodeReport {
    fn verdict(&self) -> &'static str {
        match (
            self.running,
            self.answering,
            self.registered,
            self.serving_current_list,
        ) {
            (false, ..) => "stopped",
            (true, false, ..) => "not answering",
            (true, true, false, _) => "not in a swarm",
            (true, true, true, false) => "catching up",
            (true, true, true, true) => "healthy",
        }
    }
}

/// Runs `umbra devnet status`.
pub(crate) async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let layout = Layout::new(&args.dir.dir)?;
    let state = DevnetState::load_existing(&layout)?;
    let http = Http::new()?;
    let report = build(&layout, &state, &http).await;
    let text = if args.json {
        let mut t = serde_json::to_string_pretty(&report).context("encoding the status")?;
        t.push('\n');
        t
    } else {
        table(&report)
    };
    write_stdout(&text)
}

/// Writes to stdout; a reader that went away (`umbra devnet status | head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the status")
        }
        _ => Ok(()),
    }
}

async fn build(layout: &Layout, state: &DevnetState, http: &Http) -> Report {
    let reg_proc = state.registry.process.filter(|p| p.is_running());
    let att_proc = state.attachments.process.filter(|p| p.is_running());
    let att_healthy = match att_proc {
        Some(_) => http.attachments_answer(&state.attachments.url()).await,
        None => false,
    };
    let (listing, reg_health): (Option<Listing>, Option<Health>) = match reg_proc {
        Some(_) => {
            let seed_url = state.registry.seed_url();
            let (listing, h) = tokio::join!(
                http.registry_list(&seed_url),
                health::registry(state.registry.grpc_port)
            );
            (listing.ok(), Some(h))
        }
        None => (None, None),
    };

    let mut probes = JoinSet::new();
    for (i, n) in state.nodes.iter().enumerate() {
        if n.process.is_some_and(|p| p.is_running()) {
            let http = http.clone();
            let (key, peer, metrics) = (n.pubkey_ed25519.parse(), n.peer_port, n.metrics_port);
            probes.spawn(async move {
                let check = async move {
                    match key {
                        Ok(key) => health::node(key, peer).await,
                        Err(_) => Health::Unreachable("its key is not known".into()),
                    }
                };
                let (h, serving) = tokio::join!(check, http.node_serving(metrics));
                (i, Some(h), serving)
            });
        }
    }
    let mut answering = vec![(None, None); state.nodes.len()];
    while let Some(r) = probes.join_next().await {
        if let Ok((i, h, serving)) = r
            && let Some(slot) = answering.get_mut(i)
        {
            *slot = (h, serving);
        }
    }

    let nodes = state
        .nodes
        .iter()
        .zip(answering)
        .map(|(n, (health, serving))| {
            let pid = n.process.filter(|p| p.is_running()).map(|p| p.pid);
            let swarm_id = listing.as_ref().and_then(|l| l.swarm_of(&n.pubkey_ed25519));
            let running = pid.is_some();
            let answering = health.as_ref().is_some_and(Health::answered);
            let serving_health = health.as_ref().is_some_and(Health::is_serving);
            let registered = swarm_id.is_some();
            let serving_current_list = match (&listing, serving) {
                (Some(l), Some(s)) => s.serves(l, swarm_id),
                _ => false,
            };
            NodeReport {
                name: n.name.clone(),
                pubkey_ed25519: n.pubkey_ed25519.clone(),
                pubkey_x25519: n.pubkey_x25519.clone(),
                swarm_id,
                swarm: swarm_id.map(swarm_hex),
                https_port: n.https_port,
                metrics_port: n.metrics_port,
                peer_port: n.peer_port,
                public_peer_port: n.public_peer_port,
                pid,
                running,
                answering: running && answering,
                health,
                registered,
                list_epoch: serving.map(|s| s.list_epoch),
                serving_current_list,
                healthy: running && serving_health && registered && serving_current_list,
                log: shown_path(&layout.node_log(&n.name)),
            }
        })
        .collect();
    let swarms = listing
        .as_ref()
        .map(|l| {
            l.swarms()
                .into_iter()
                .map(|(id, count)| SwarmReport {
                    swarm_id: id,
                    swarm: swarm_hex(id),
                    nodes: count,
                })
                .collect()
        })
        .unwrap_or_default();
    Report {
        dir: shown_path(layout.root()),
        network_file: shown_path(&layout.network_file()),
        logs: shown_path(&layout.logs_dir()),
        supervisor_pid: state.supervisor.filter(|p| p.is_running()).map(|p| p.pid),
        registry: RegistryReport {
            pid: reg_proc.map(|p| p.pid),
            running: reg_proc.is_some(),
            healthy: listing.is_some() && reg_health.as_ref().is_some_and(Health::is_serving),
            grpc_health: reg_health,
            url: state.registry.url(),
            seed_url: state.registry.seed_url(),
            pubkey: state.registry.pubkey.clone(),
            epoch: listing.as_ref().map(|l| l.epoch),
            log: shown_path(&layout.registry_log()),
        },
        attachment_server: AttachmentsReport {
            pid: att_proc.map(|p| p.pid),
            running: att_proc.is_some(),
            healthy: att_healthy,
            url: state.attachments.url(),
            x25519_pubkey: state.attachments.x25519_pubkey.clone(),
            log: shown_path(&layout.attachments_log()),
        },
        swarms,
        nodes,
    }
}

/// A verdict, followed by what the health check said when that explains it.
fn with_health(verdict: &str, health: Option<&Health>) -> String {
    match health {
        Some(h) if !h.is_serving() => format!("{verdict}: {h}"),
        _ => verdict.to_owned(),
    }
}

fn table(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let healthy = r.nodes.iter().filter(|n| n.healthy).count();
    let epoch = r
        .registry
        .epoch
        .map_or_else(|| "unknown".to_owned(), |e| e.to_string());
    let _ = writeln!(
        t,
        "devnet in {}: {healthy}/{} node(s) healthy, {} swarm(s), node list epoch {epoch}",
        r.dir,
        r.nodes.len(),
        r.swarms.len()
    );
    let reg_state = match (r.registry.running, r.registry.healthy) {
        (false, _) => "stopped".to_owned(),
        (true, false) => with_health("not healthy", r.registry.grpc_health.as_ref()),
        (true, true) => "healthy".to_owned(),
    };
    let _ = writeln!(
        t,
        "registry  pid {:<7}  {}  key {}  {reg_state}",
        r.registry
            .pid
            .map_or_else(|| "-".to_owned(), |p| p.to_string()),
        r.registry.seed_url,
        r.registry.pubkey
    );
    let att = &r.attachment_server;
    let att_state = match (att.running, att.healthy) {
        (false, _) => "stopped",
        (true, false) => "not answering",
        (true, true) => "healthy",
    };
    let _ = writeln!(
        t,
        "attachments pid {:<7}  {}  key {}  {att_state}",
        att.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
        att.url,
        if att.x25519_pubkey.is_empty() {
            "?"
        } else {
            &att.x25519_pubkey
        }
    );
    for s in &r.swarms {
        let _ = writeln!(t, "swarm {:>16}  {} node(s)", s.swarm, s.nodes);
    }
    let _ = writeln!(
        t,
        "{:<8} {:<64} {:>16} {:>5} {:>7}  HEALTH",
        "NODE", "ED25519 PUBLIC KEY", "SWARM", "HTTPS", "PID"
    );
    for n in &r.nodes {
        let _ = writeln!(
            t,
            "{:<8} {:<64} {:>16} {:>5} {:>7}  {}",
            n.name,
            if n.pubkey_ed25519.is_empty() {
                "?"
            } else {
                &n.pubkey_ed25519
            },
            n.swarm.as_deref().unwrap_or("-"),
            n.https_port,
            n.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            with_health(n.verdict(), n.health.as_ref())
        );
    }
    t
}
