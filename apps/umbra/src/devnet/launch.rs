//! Starting the daemons and waiting for them: the registry and the attachment server (each binds
//! port 0 and announces its address and key in a start-up file; the registry is ready when its
//! gRPC health check says SERVING), then the storage nodes (on ports picked here, started again
//! on new ports when another program took one first). A node is up when its health check on its
//! peer port answers over TLS from the holder of its key, healthy when it says SERVING (it knows
//! its swarm by a verified list) and the registry's list shows it there, and ready when it
//! serves that very list: the one thing health cannot tell, asked of its operator port's
//! `GET /status`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::task::JoinSet;

use super::binaries::{self, ATTACHMENTS, NODE, REGISTRY};
use super::health::{self, Health};
use super::layout::{Layout, shown_path, write_atomically};
use super::ports::{PortPicker, is_free};
use super::probe::{Http, Listing};
use super::process::{ProcRef, spawn_daemon, stop_all};
use super::state::{DevnetState, NodeRecord, RegistryRecord};

/// Heartbeat interval the registry announces to devnet nodes.
pub(crate) const HEARTBEAT_INTERVAL_MS: u64 = 2_000;
/// Silence after which the registry takes a devnet node out of its swarm.
pub(crate) const INACTIVE_AFTER_MS: u64 = 7_000;
/// Environment variable of `umbra devnet up`: another silence, in ms, after which the registry
/// takes a node out (fault tests make it long, so that a killed node stays listed).
const INACTIVE_AFTER_ENV: &str = "UMBRA_DEVNET_INACTIVE_AFTER_MS";

/// [`INACTIVE_AFTER_MS`], or the value of [`INACTIVE_AFTER_ENV`] when it is set.
fn inactive_after_ms() -> anyhow::Result<u64> {
    match std::env::var(INACTIVE_AFTER_ENV) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u64>().ok().filter(|ms| *ms > 0).with_context(|| {
            format!("{INACTIVE_AFTER_ENV} must be a number of milliseconds above 0 (got {v:?}); unset it for the default of {INACTIVE_AFTER_MS}")
        }),
        _ => Ok(INACTIVE_AFTER_MS),
    }
}
/// Seconds a node gets at SIGTERM to finish in-flight requests (shorter than our grace).
const NODE_SHUTDOWN_GRACE_SECS: u64 = 3;
/// How many times a node is started on new ports when its ports were taken.
const MAX_PORT_ATTEMPTS: u32 = 5;
/// How often the launcher looks again.
const POLL: Duration = Duration::from_millis(100);

/// Starts and watches the daemons of one devnet.
#[derive(Debug)]
pub(crate) struct Launcher {
    layout: Layout,
    http: Http,
    node_bin: PathBuf,
    registry_bin: PathBuf,
    attachments_bin: PathBuf,
}

impl Launcher {
    /// Finds the daemon binaries (failing with what to build) and prepares a probe client.
    pub(crate) fn new(layout: Layout) -> anyhow::Result<Launcher> {
        let registry_bin = binaries::locate(REGISTRY)?;
        let node_bin = binaries::locate(NODE)?;
        let attachments_bin = binaries::locate(ATTACHMENTS)?;
        Ok(Launcher {
            layout,
            http: Http::new()?,
            node_bin,
            registry_bin,
            attachments_bin,
        })
    }

    /// Starts the attachment server (on its previous port if free, else any; its key stays in
    /// its data directory across restarts) and waits for its start-up file. Records it in
    /// `state` (saved) as soon as it is spawned.
    pub(crate) async fn start_attachments(
        &self,
        state: &mut DevnetState,
        deadline: Instant,
    ) -> anyhow::Result<Child> {
        let data = self.layout.attachments_data_dir();
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let ready = self.layout.attachments_ready_file();
        let args = |port: u16| -> Vec<OsString> {
            vec![
                "--listen".into(),
                format!("127.0.0.1:{port}").into(),
                "--data-dir".into(),
                data.clone().into(),
                "--ready-file".into(),
                ready.clone().into(),
            ]
            .into_iter()
            .chain(attachments_log_args())
            .collect()
        };
        let daemon = Announcing {
            what: "the attachment server",
            bin: &self.attachments_bin,
            ready: &ready,
            log: self.layout.attachments_log(),
            args: &args,
            read: read_attachments_ready,
        };
        let previous = state.attachments.port;
        let (child, (addr, key)) = self
            .start_announcing(&daemon, previous, deadline, state, |s, p| {
                s.attachments.process = p;
            })
            .await?;
        state.attachments.port = addr.port();
        state.attachments.x25519_pubkey = key;
        state.save(&self.layout)?;
        Ok(child)
    }

    /// Starts the registry (on its previous port if free, else any) and waits for its
    /// start-up file. Records it in `state` (saved) as soon as it is spawned.
    pub(crate) async fn start_registry(
        &self,
        state: &mut DevnetState,
        deadline: Instant,
    ) -> anyhow::Result<Child> {
        let dir = self.layout.registry_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ready = self.layout.registry_ready_file();
        let inactive_after = inactive_after_ms()?;
        // The gRPC port follows the HTTP one: its old one when that is tried and still free.
        let previous_grpc = state.registry.grpc_port;
        let args = |port: u16| -> Vec<OsString> {
            let grpc_port = if port != 0 && previous_grpc != 0 && is_free(previous_grpc) {
                previous_grpc
            } else {
                0
            };
            vec![
                "--listen".into(),
                format!("127.0.0.1:{port}").into(),
                "--grpc-listen".into(),
                format!("127.0.0.1:{grpc_port}").into(),
                "--dir".into(),
                dir.clone().into(),
                "--ready-file".into(),
                ready.clone().into(),
                "--heartbeat-interval-ms".into(),
                HEARTBEAT_INTERVAL_MS.to_string().into(),
                "--inactive-after-ms".into(),
                inactive_after.to_string().into(),
            ]
            .into_iter()
            .chain(attachments_log_args())
            .collect()
        };
        let daemon = Announcing {
            what: "the registry",
            bin: &self.registry_bin,
            ready: &ready,
            log: self.layout.registry_log(),
            args: &args,
            read: read_registry_ready,
        };
        let previous = state.registry.port;
        let (mut child, (addr, grpc_addr, pubkey)) = self
            .start_announcing(&daemon, previous, deadline, state, |s, p| {
                s.registry.process = p;
            })
            .await?;
        state.registry.port = addr.port();
        state.registry.grpc_port = grpc_addr.port();
        state.registry.pubkey = pubkey;
        state.save(&self.layout)?;
        self.wait_registry_serving(&mut child, grpc_addr.port(), deadline)
            .await?;
        Ok(child)
    }

    /// Waits until the registry's gRPC health check says SERVING (its start-up file says it
    /// bound its ports; this, that it serves). Fails early if it exits.
    async fn wait_registry_serving(
        &self,
        child: &mut Child,
        grpc_port: u16,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        let log = self.layout.registry_log();
        loop {
            let health = health::registry(grpc_port).await;
            if health.is_serving() {
                return Ok(());
            }
            if let Some(status) = child.try_wait().context("watching the registry")? {
                bail!(
                    "the registry exited while starting ({status}): {} (log: {})",
                    tail_or_nothing(&log_tail(&log)),
                    shown_path(&log)
                );
            }
            if SystemClock.instant() >= deadline {
                bail!(
                    "the registry did not become healthy in time: {health} (log: {})",
                    shown_path(&log)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts a daemon that announces itself in a start-up file (on `previous` port if free,
    /// else any; again on any port if its old one was taken meanwhile) and waits for that
    /// file. `record` notes the process in `state` (saved at once) or its end.
    async fn start_announcing<T>(
        &self,
        daemon: &Announcing<'_, T>,
        previous: u16,
        deadline: Instant,
        state: &mut DevnetState,
        record: impl Fn(&mut DevnetState, Option<ProcRef>),
    ) -> anyhow::Result<(Child, T)> {
        let what = daemon.what;
        let log = &daemon.log;
        let mut port = if previous != 0 && is_free(previous) {
            previous
        } else {
            0
        };
        loop {
            remove_if_there(daemon.ready)?;
            let mut child = spawn_daemon(daemon.bin, &(daemon.args)(port), log)?;
            record(state, Some(ProcRef::of(child.id())));
            state.save(&self.layout)?;
            loop {
                if let Some(found) = (daemon.read)(daemon.ready)? {
                    return Ok((child, found));
                }
                if let Some(status) = child
                    .try_wait()
                    .with_context(|| format!("watching {what}"))?
                {
                    record(state, None);
                    let tail = log_tail(log);
                    if port != 0 && looks_like_port_taken(&tail) {
                        // Our old port went to someone else in the meantime: take any.
                        port = 0;
                        break;
                    }
                    bail!(
                        "{what} exited while starting ({status}): {} (log: {})",
                        tail_or_nothing(&tail),
                        shown_path(log)
                    );
                }
                if SystemClock.instant() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    record(state, None);
                    bail!("{what} did not start in time (log: {})", shown_path(log));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }

    /// Starts the nodes `which` (indexes into `state.nodes`) and waits until each is up: its
    /// keys are known (its `node.pub`) and its health check answers on its peer port over TLS
    /// from the holder of that key, SERVING or not yet (all its listeners are bound by then).
    /// Nodes whose port was taken meanwhile are started again on new ports. Every spawn is
    /// recorded in `state` (saved) at once.
    pub(crate) async fn start_nodes(
        &self,
        state: &mut DevnetState,
        which: &[usize],
        deadline: Instant,
    ) -> anyhow::Result<Vec<(String, Child)>> {
        let others: Vec<u16> = state
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !which.contains(i))
            .flat_map(|(_, n)| {
                [n.https_port, n.metrics_port, n.peer_port]
                    .into_iter()
                    .chain(n.public_peer_port)
            })
            .chain([state.registry.port])
            .collect();
        let mut picker = PortPicker::avoiding(others);
        let mut pending: Vec<Pending> = Vec::with_capacity(which.len());
        for &idx in which {
            let rec = state
                .nodes
                .get_mut(idx)
                .context("internal: node index out of range")?;
            rec.https_port = picker.reuse_or_pick(rec.https_port)?;
            rec.metrics_port = picker.reuse_or_pick(rec.metrics_port)?;
            rec.peer_port = picker.reuse_or_pick(rec.peer_port)?;
            let child = self.spawn_node(rec, &state.registry)?;
            pending.push(Pending {
                idx,
                child,
                attempts: 1,
            });
        }
        state.save(&self.layout)?;

        let mut started = Vec::with_capacity(which.len());
        loop {
            // Nodes that exited: start again on new ports if a port was taken, else fail.
            let mut respawned = false;
            for p in &mut pending {
                let Some(status) = p.child.try_wait().context("watching a node")? else {
                    continue;
                };
                let rec = state
                    .nodes
                    .get_mut(p.idx)
                    .context("internal: node index out of range")?;
                rec.process = None;
                let log = self.layout.node_log(&rec.name);
                let tail = log_tail(&log);
                if looks_like_port_taken(&tail) && p.attempts < MAX_PORT_ATTEMPTS {
                    rec.https_port = picker.pick()?;
                    rec.metrics_port = picker.pick()?;
                    rec.peer_port = picker.pick()?;
                    p.child = self.spawn_node(rec, &state.registry)?;
                    p.attempts += 1;
                    respawned = true;
                    continue;
                }
                if looks_like_port_taken(&tail) {
                    bail!(
                        "{} found its ports taken {MAX_PORT_ATTEMPTS} times in a row: free some ports on 127.0.0.1 and try again (log: {})",
                        rec.name,
                        shown_path(&log)
                    );
                }
                bail!(
                    "{} exited while starting ({status}): {} (log: {})",
                    rec.name,
                    tail_or_nothing(&tail),
                    shown_path(&log)
                );
            }
            if respawned {
                state.save(&self.layout)?;
            }

            // The node writes its keys before it binds its ports: read them, then probe the
            // nodes that have them together.
            let mut probes = JoinSet::new();
            for (slot, p) in pending.iter().enumerate() {
                let Some(rec) = state.nodes.get_mut(p.idx) else {
                    continue;
                };
                if let Some((ed, x)) = read_node_pub(&self.layout.node_data_dir(&rec.name)) {
                    rec.pubkey_ed25519 = ed;
                    rec.pubkey_x25519 = x;
                }
                let Ok(key) = rec.pubkey_ed25519.parse() else {
                    continue;
                };
                let port = rec.peer_port;
                probes.spawn(async move { (slot, health::node(key, port).await) });
            }
            let mut answered = Vec::new();
            while let Some(r) = probes.join_next().await {
                if let Ok((slot, h)) = r
                    && h.answered()
                {
                    answered.push(slot);
                }
            }
            answered.sort_unstable();
            for slot in answered.into_iter().rev() {
                let p = pending.swap_remove(slot);
                let name = state.nodes.get(p.idx).map(|n| n.name.clone());
                started.push((name.context("internal: node index out of range")?, p.child));
            }
            if pending.is_empty() {
                state.save(&self.layout)?;
                return Ok(started);
            }
            if SystemClock.instant() >= deadline {
                let names = pending
                    .iter()
                    .filter_map(|p| state.nodes.get(p.idx))
                    .map(|n| {
                        let why = if n.pubkey_ed25519.is_empty() {
                            "it made no key (no node.pub)".to_owned()
                        } else {
                            "its health check did not answer on its peer port".to_owned()
                        };
                        (n.name.clone(), why)
                    })
                    .collect::<Vec<_>>();
                bail!("{}", self.not_in_time(&names, "did not start"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until each node of `which` is healthy: its health check on its peer port says
    /// SERVING (it knows its swarm by a verified node list) and the registry's list shows it in
    /// a swarm at the port it has now (after a restart the registry may still hold the entry of
    /// its previous run). Fills in keys a node did not leave in its data directory from the
    /// list, by port. Fails early, naming the node and its log, if one of them stops running.
    pub(crate) async fn wait_healthy(
        &self,
        state: &mut DevnetState,
        which: &[usize],
        deadline: Instant,
    ) -> anyhow::Result<Listing> {
        let seed_url = state.registry.seed_url();
        loop {
            self.still_running(state, which, "waiting for it to become healthy")?;
            let unhealthy = self.unhealthy(state, which).await;
            let problem = if unhealthy.is_empty() {
                match self.http.registry_list(&seed_url).await {
                    Ok(listing) => {
                        fill_keys_from_listing(state, which, &listing);
                        let missing = not_in_swarm(state, which, &listing);
                        if missing.is_empty() {
                            state.save(&self.layout)?;
                            return Ok(listing);
                        }
                        missing
                            .into_iter()
                            .map(|n| (n, "the registry's list does not show it in a swarm".into()))
                            .collect()
                    }
                    Err(e) => {
                        if SystemClock.instant() >= deadline {
                            bail!("the network did not become healthy in time: {e:#}");
                        }
                        Vec::new()
                    }
                }
            } else {
                unhealthy
            };
            if SystemClock.instant() >= deadline && !problem.is_empty() {
                bail!("{}", self.not_in_time(&problem, "did not become healthy"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Fails, naming the node, its last words and its log, if a node of `which` no longer
    /// runs (`doing`: what the launcher was waiting for).
    pub(crate) fn still_running(
        &self,
        state: &DevnetState,
        which: &[usize],
        doing: &str,
    ) -> anyhow::Result<()> {
        for n in which.iter().filter_map(|&i| state.nodes.get(i)) {
            if !n.process.is_some_and(|p| p.is_running()) {
                let log = self.layout.node_log(&n.name);
                bail!(
                    "{} stopped while {doing}: {} (log: {})",
                    n.name,
                    tail_or_nothing(&log_tail(&log)),
                    shown_path(&log)
                );
            }
        }
        Ok(())
    }

    /// The nodes of `which` whose health check does not say SERVING, each with what it says
    /// (probed together, each probe within its own deadline).
    async fn unhealthy(&self, state: &DevnetState, which: &[usize]) -> Vec<(String, String)> {
        let mut probes = JoinSet::new();
        for n in which.iter().filter_map(|&i| state.nodes.get(i)) {
            let name = n.name.clone();
            match n.pubkey_ed25519.parse() {
                Ok(key) => {
                    let port = n.peer_port;
                    probes.spawn(async move { (name, health::node(key, port).await) });
                }
                Err(_) => {
                    probes.spawn(async move {
                        let why = "its key is not known yet".to_owned();
                        (name, Health::Unreachable(why))
                    });
                }
            }
        }
        let mut unhealthy = Vec::new();
        while let Some(r) = probes.join_next().await {
            if let Ok((name, h)) = r
                && !h.is_serving()
            {
                unhealthy.push((name, h.to_string()));
            }
        }
        unhealthy.sort();
        unhealthy
    }

    /// One line for nodes that missed the deadline: the first by name with what it lacks and
    /// its log, then how many more (`node-03 did not become healthy in time: its health check
    /// says NOT_SERVING (log: …/node-03.log); 2 more: node-05, node-06`).
    fn not_in_time(&self, nodes: &[(String, String)], what: &str) -> String {
        use std::fmt::Write as _;
        let Some((first, why)) = nodes.first() else {
            return format!("the nodes {what} in time");
        };
        let mut line = format!(
            "{first} {what} in time: {why} (log: {})",
            shown_path(&self.layout.node_log(first))
        );
        if nodes.len() > 1 {
            let rest: Vec<String> = nodes.iter().skip(1).map(|(n, _)| n.clone()).collect();
            let _ = write!(line, "; {} more: {}", rest.len(), summarize(&rest));
        }
        line
    }

    /// Waits until every running node that the registry's current list places in a swarm
    /// serves that list (or a newer one) and knows its swarm by it, as its operator port's
    /// `GET /status` tells: until then a node may still answer by an older list (relay
    /// refusals of nodes it does not know yet, writes for a swarm it has left). Returns the
    /// registry's list, checked unchanged after every node caught up.
    pub(crate) async fn wait_serving(
        &self,
        state: &DevnetState,
        deadline: Instant,
    ) -> anyhow::Result<Listing> {
        let seed_url = state.registry.seed_url();
        loop {
            let problem = match self.http.registry_list(&seed_url).await {
                Ok(listing) => {
                    let lagging = self.lagging(state, &listing).await;
                    if lagging.is_empty() {
                        match self.http.registry_list(&seed_url).await {
                            Ok(again) if again.epoch == listing.epoch => return Ok(listing),
                            Ok(again) => format!(
                                "the registry's node list moved from epoch {} to {} meanwhile",
                                listing.epoch, again.epoch
                            ),
                            Err(e) => format!("{e:#}"),
                        }
                    } else {
                        format!(
                            "{} node(s) not serving the registry's node list (epoch {}) yet: {}",
                            lagging.len(),
                            listing.epoch,
                            summarize(&lagging)
                        )
                    }
                }
                Err(e) => format!("{e:#}"),
            };
            if SystemClock.instant() >= deadline {
                bail!(
                    "the nodes did not catch up with the registry in time: {problem}; see the logs in {}",
                    shown_path(&self.layout.logs_dir())
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The running nodes of `listing`'s swarms that do not serve it yet, each with what is
    /// missing (`node-03 serves epoch 5 of 7`).
    async fn lagging(&self, state: &DevnetState, listing: &Listing) -> Vec<String> {
        let mut probes = JoinSet::new();
        for n in &state.nodes {
            let swarm = listing.swarm_of(&n.pubkey_ed25519);
            if swarm.is_none() || !n.process.is_some_and(|p| p.is_running()) {
                continue;
            }
            let http = self.http.clone();
            let (name, port) = (n.name.clone(), n.metrics_port);
            probes.spawn(async move { (name, swarm, http.node_serving(port).await) });
        }
        let mut lagging = Vec::new();
        while let Some(r) = probes.join_next().await {
            let Ok((name, swarm, serving)) = r else {
                continue;
            };
            match serving {
                Some(s) if s.serves(listing, swarm) => {}
                Some(s) => lagging.push(format!("{name} {}", s.lag(listing, swarm))),
                None => lagging.push(format!("{name} does not answer on its operator port")),
            }
        }
        lagging.sort();
        lagging
    }

    /// Writes the node's configuration and starts it; records the process in `rec`.
    fn spawn_node(&self, rec: &mut NodeRecord, registry: &RegistryRecord) -> anyhow::Result<Child> {
        let config = self.layout.node_config(&rec.name);
        write_node_config(&self.layout, rec, registry)?;
        let args: Vec<OsString> = vec!["--config".into(), config.into()];
        let child = spawn_daemon(&self.node_bin, &args, &self.layout.node_log(&rec.name))?;
        rec.process = Some(ProcRef::of(child.id()));
        Ok(child)
    }
}

/// A daemon that binds a port and announces itself in a start-up file.
struct Announcing<'a, T> {
    /// "the registry", for messages.
    what: &'static str,
    bin: &'a Path,
    ready: &'a Path,
    log: PathBuf,
    /// Its arguments for a port (0: any).
    args: &'a dyn Fn(u16) -> Vec<OsString>,
    /// Reads its start-up file; `Ok(None)` while it is not there yet.
    read: fn(&Path) -> anyhow::Result<Option<T>>,
}

/// A node spawned but not yet answering.
#[derive(Debug)]
struct Pending {
    idx: usize,
    child: Child,
    attempts: u32,
}

/// Stops the given nodes (by index) and forgets their processes in `state`.
pub(crate) async fn stop_nodes(
    state: &mut DevnetState,
    which: &[usize],
    grace: Duration,
) -> Vec<ProcRef> {
    let procs: Vec<ProcRef> = which
        .iter()
        .filter_map(|&i| state.nodes.get(i).and_then(|n| n.process))
        .collect();
    let left = stop_all(&procs, grace).await;
    for &i in which {
        if let Some(n) = state.nodes.get_mut(i)
            && n.process.is_some_and(|p| !left.contains(&p))
        {
            n.process = None;
        }
    }
    left
}

/// Environment variable of `umbra devnet up`: the nodes' log filter, with metadata revealed;
/// when set, the attachment server also logs each connection's peer in clear.
const NODE_LOG_ENV: &str = "UMBRA_DEVNET_NODE_LOG";

/// The attachment server's log arguments: `info`, or with [`NODE_LOG_ENV`] set, its connections
/// at debug level with their peer addresses in clear (for tests that check what it saw).
fn attachments_log_args() -> Vec<OsString> {
    match std::env::var(NODE_LOG_ENV) {
        Ok(level) if !level.trim().is_empty() => vec![
            "--log".into(),
            "info,umbra_attachments=debug".into(),
            "--reveal-metadata".into(),
        ],
        _ => vec!["--log".into(), "info".into()],
    }
}

/// The node's configuration file (rewritten at every start, so ports and the registry
/// address follow the devnet).
fn node_config_text(
    layout: &Layout,
    rec: &NodeRecord,
    registry: &RegistryRecord,
) -> anyhow::Result<String> {
    let mut t = toml::Table::new();
    let data_dir = layout.node_data_dir(&rec.name);
    let data_dir = data_dir
        .to_str()
        .context("the devnet directory's path is not valid UTF-8: use another --dir")?;
    t.insert("data_dir".into(), data_dir.into());
    t.insert(
        "listen".into(),
        format!("127.0.0.1:{}", rec.https_port).into(),
    );
    t.insert(
        "metrics_listen".into(),
        format!("127.0.0.1:{}", rec.metrics_port).into(),
    );
    t.insert(
        "peer_listen".into(),
        format!("127.0.0.1:{}", rec.peer_port).into(),
    );
    if let Some(port) = rec.public_peer_port {
        t.insert("public_peer_port".into(), i64::from(port).into());
    }
    t.insert("public_ip".into(), "127.0.0.1".into());
    t.insert("registry_url".into(), registry.url().into());
    t.insert("registry_grpc_url".into(), registry.grpc_url().into());
    t.insert("registry_pubkey".into(), registry.pubkey.clone().into());
    // `UMBRA_DEVNET_NODE_LOG` (a log filter, e.g. `info,umbra_node=debug`) makes the nodes log
    // more, with metadata (peer addresses) in clear: for tests that check what each node saw.
    match std::env::var(NODE_LOG_ENV) {
        Ok(level) if !level.trim().is_empty() => {
            t.insert("log_level".into(), level.trim().into());
            t.insert("log_reveal_metadata".into(), true.into());
        }
        _ => {
            t.insert("log_level".into(), "info".into());
        }
    }
    // Every client and every peer of a devnet node comes from 127.0.0.1: a per-IP rate
    // limit would throttle the whole network as one client.
    let mut rate = toml::Table::new();
    rate.insert("enabled".into(), false.into());
    t.insert("rate_limit".into(), rate.into());
    let mut limits = toml::Table::new();
    limits.insert(
        "shutdown_grace_secs".into(),
        i64::try_from(NODE_SHUTDOWN_GRACE_SECS).unwrap_or(3).into(),
    );
    t.insert("limits".into(), limits.into());
    let body = toml::to_string(&t).context("encoding the node configuration")?;
    Ok(format!(
        "# Written by `umbra devnet` at every start of this node; edits are overwritten.\n{body}"
    ))
}

fn write_node_config(
    layout: &Layout,
    rec: &NodeRecord,
    registry: &RegistryRecord,
) -> anyhow::Result<()> {
    let dir = layout.node_dir(&rec.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = node_config_text(layout, rec, registry)?;
    write_atomically(&layout.node_config(&rec.name), text.as_bytes())
}

/// Reads the registry's start-up file: `{"listen": "127.0.0.1:PORT", "grpc_listen":
/// "127.0.0.1:PORT", "registry_pubkey": hex}` (its HTTP address, its gRPC address, its key).
/// `Ok(None)` while it is not there yet.
fn read_registry_ready(path: &Path) -> anyhow::Result<Option<(SocketAddr, SocketAddr, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let v: Value = serde_json::from_str(text.trim())
        .with_context(|| format!("{} is not the JSON the registry writes", path.display()))?;
    let addr = v
        .get("listen")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<SocketAddr>().ok())
        .with_context(|| format!("{} has no listen address", path.display()))?;
    let grpc = v
        .get("grpc_listen")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<SocketAddr>().ok())
        .with_context(|| {
            format!(
                "{} has no grpc_listen address (an umbra-registry older than this CLI?)",
                path.display()
            )
        })?;
    let key = v
        .get("registry_pubkey")
        .and_then(Value::as_str)
        .filter(|k| k.len() == 64 && k.chars().all(|c| c.is_ascii_hexdigit()))
        .with_context(|| format!("{} has no registry_pubkey", path.display()))?;
    Ok(Some((addr, grpc, key.to_ascii_lowercase())))
}

/// Removes `path` if it exists.
fn remove_if_there(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Reads the attachment server's start-up file: `{"pid", "listen": "127.0.0.1:PORT", "url",
/// "x25519_pubkey": hex}`. `Ok(None)` while it is not there yet.
fn read_attachments_ready(path: &Path) -> anyhow::Result<Option<(SocketAddr, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    parse_attachments_ready(&text).map(Some).with_context(|| {
        format!(
            "{} is not what the attachment server writes",
            path.display()
        )
    })
}

fn parse_attachments_ready(text: &str) -> anyhow::Result<(SocketAddr, String)> {
    let v: Value = serde_json::from_str(text.trim()).context("not JSON")?;
    let addr = v
        .get("listen")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<SocketAddr>().ok())
        .context("no listen address")?;
    let key = v
        .get("x25519_pubkey")
        .and_then(Value::as_str)
        .filter(|k| k.len() == 64 && k.chars().all(|c| c.is_ascii_hexdigit()))
        .context("no x25519_pubkey")?;
    Ok((addr, key.to_ascii_lowercase()))
}

/// Reads `node.pub` (`ed25519 HEX` and `x25519 HEX` lines) from a node's data directory.
fn read_node_pub(data_dir: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(data_dir.join("node.pub")).ok()?;
    parse_node_pub(&text)
}

fn parse_node_pub(text: &str) -> Option<(String, String)> {
    let mut ed = None;
    let mut x = None;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(hex)) = (parts.next(), parts.next()) else {
            continue;
        };
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        match kind {
            "ed25519" => ed = Some(hex.to_ascii_lowercase()),
            "x25519" => x = Some(hex.to_ascii_lowercase()),
            _ => {}
        }
    }
    Some((ed?, x?))
}

fn fill_keys_from_listing(state: &mut DevnetState, which: &[usize], listing: &Listing) {
    for &i in which {
        if let Some(rec) = state.nodes.get_mut(i)
            && rec.pubkey_ed25519.is_empty()
            && let Some(l) = listing
                .nodes
                .iter()
                .find(|l| l.storage_port == rec.https_port)
        {
            rec.pubkey_ed25519 = l.pubkey_ed25519.clone();
            rec.pubkey_x25519 = l.pubkey_x25519.clone();
        }
    }
}

/// The nodes of `which` that the list does not (yet) show in a swarm.
fn not_in_swarm(state: &DevnetState, which: &[usize], listing: &Listing) -> Vec<String> {
    which
        .iter()
        .filter_map(|&i| state.nodes.get(i))
        .filter(|n| {
            // A node counts once the list shows it in a swarm at the port it has now (after a
            // restart the registry may still hold the entry from its previous run).
            !listing
                .find(&n.pubkey_ed25519)
                .is_some_and(|l| l.swarm_id.is_some() && l.storage_port == n.https_port)
        })
        .map(|n| n.name.clone())
        .collect()
}

fn summarize(names: &[String]) -> String {
    const SHOWN: usize = 4;
    if names.len() <= SHOWN {
        names.join(", ")
    } else {
        format!("{}, …", names[..SHOWN].join(", "))
    }
}

/// Whether a daemon's last words say a port was taken.
fn looks_like_port_taken(tail: &str) -> bool {
    let t = tail.to_ascii_lowercase();
    t.contains("address already in use") || t.contains("already in use") || t.contains("addrinuse")
}

/// The last non-empty line of a log (read from its last 8 KiB), without colour codes.
pub(crate) fn log_tail(path: &Path) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(8192)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.lines()
        .rev()
        .map(strip_ansi)
        .map(|l| l.trim().to_owned())
        .find(|l| !l.is_empty() && !l.starts_with("--- umbra devnet:"))
        .unwrap_or_default()
}

fn tail_or_nothing(tail: &str) -> &str {
    if tail.is_empty() {
        "it printed nothing"
    } else {
        tail
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip "ESC [ … final byte".
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devnet::probe::Listed;

    /// A launcher whose "node" is a shell script printing `says` and exiting 1.
    fn failing_launcher(dir: &Path, says: &str) -> (Launcher, DevnetState) {
        use std::os::unix::fs::PermissionsExt as _;
        let script = dir.join("fake-node");
        std::fs::write(&script, format!("#!/bin/sh\necho '{says}' >&2\nexit 1\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let layout = Layout::new(&dir.join("net")).unwrap();
        let launcher = Launcher {
            layout,
            http: Http::new().unwrap(),
            node_bin: script.clone(),
            registry_bin: script.clone(),
            attachments_bin: script,
        };
        let mut state = DevnetState::empty();
        state.registry.port = 1;
        state.registry.pubkey = "ab".repeat(32);
        state.nodes.push(NodeRecord::new("node-01".into()));
        (launcher, state)
    }

    #[test]
    fn the_attachment_servers_ready_file_is_read() {
        let key = "AB".repeat(32);
        let (addr, k) = parse_attachments_ready(&format!(
            r#"{{"pid":7,"listen":"127.0.0.1:4321","url":"http://127.0.0.1:4321","x25519_pubkey":"{key}"}}"#
        ))
        .unwrap();
        assert_eq!(addr.port(), 4321);
        assert_eq!(k, "ab".repeat(32));
        let e = parse_attachments_ready(r#"{"listen":"127.0.0.1:1","x25519_pubkey":"abc"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x25519_pubkey"), "{e}");
    }

    #[tokio::test]
    async fn an_attachment_server_that_exits_at_start_is_reported_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let (launcher, mut state) = failing_launcher(dir.path(), "umbra-attachments: quota full");
        let e = launcher
            .start_attachments(&mut state, SystemClock.instant() + Duration::from_secs(60))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the attachment server exited while starting"),
            "{e}"
        );
        assert!(e.contains("quota full"), "{e}");
        assert!(state.attachments.process.is_none());
    }

    #[tokio::test]
    async fn a_node_whose_port_was_taken_is_started_again_on_new_ports() {
        let dir = tempfile::tempdir().unwrap();
        let (launcher, mut state) = failing_launcher(
            dir.path(),
            "umbra-node: binding the client listener on 127.0.0.1:9: Address already in use (os error 98)",
        );
        let e = launcher
            .start_nodes(
                &mut state,
                &[0],
                SystemClock.instant() + Duration::from_secs(60),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("found its ports taken 5 times"), "{e}");
        assert!(e.contains("free some ports"), "{e}");
        let log = std::fs::read_to_string(launcher.layout.node_log("node-01")).unwrap();
        assert_eq!(
            log.matches("--- umbra devnet: starting").count(),
            5,
            "{log}"
        );
        assert!(state.nodes[0].process.is_none());
        assert_ne!(state.nodes[0].https_port, 0);
    }

    #[tokio::test]
    async fn a_node_failing_otherwise_is_reported_with_its_last_words() {
        let dir = tempfile::tempdir().unwrap();
        let (launcher, mut state) = failing_launcher(dir.path(), "invalid configuration: boom");
        let e = launcher
            .start_nodes(
                &mut state,
                &[0],
                SystemClock.instant() + Duration::from_secs(60),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("node-01 exited while starting"), "{e}");
        assert!(e.contains("invalid configuration: boom"), "{e}");
        let log = std::fs::read_to_string(launcher.layout.node_log("node-01")).unwrap();
        assert_eq!(
            log.matches("--- umbra devnet: starting").count(),
            1,
            "{log}"
        );
    }

    #[test]
    fn a_node_late_for_its_deadline_is_named_with_its_log_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let (launcher, _) = failing_launcher(dir.path(), "unused");
        let late = [
            (
                "node-03".to_owned(),
                "its health check says NOT_SERVING".to_owned(),
            ),
            ("node-05".to_owned(), "whatever".to_owned()),
        ];
        let line = launcher.not_in_time(&late, "did not become healthy");
        assert!(
            line.starts_with(
                "node-03 did not become healthy in time: its health check says NOT_SERVING (log: "
            ),
            "{line}"
        );
        assert!(line.contains("node-03.log"), "{line}");
        assert!(line.ends_with("; 1 more: node-05"), "{line}");
        assert!(!line.contains('\n'), "{line}");
        let one = launcher.not_in_time(&late[..1], "did not start");
        assert!(one.ends_with("node-03.log)"), "{one}");
    }

    #[test]
    fn node_pub_is_read() {
        let ed = "ab".repeat(32);
        let x = "CD".repeat(32);
        let (a, b) = parse_node_pub(&format!("ed25519 {ed}\nx25519 {x}\n")).unwrap();
        assert_eq!(a, ed);
        assert_eq!(b, x.to_ascii_lowercase());
        assert!(parse_node_pub(&format!("ed25519 {ed}\n")).is_none());
        assert!(parse_node_pub("ed25519 abc\nx25519 def\n").is_none());
    }

    #[test]
    fn node_config_points_at_the_registry_and_the_picked_ports() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path()).unwrap();
        let mut rec = NodeRecord {
            https_port: 4100,
            metrics_port: 4101,
            peer_port: 4102,
            ..NodeRecord::new("node-01".into())
        };
        let reg = RegistryRecord {
            process: None,
            port: 4000,
            grpc_port: 4001,
            pubkey: "ef".repeat(32),
        };
        let text = node_config_text(&layout, &rec, &reg).unwrap();
        let t: toml::Table = text.parse().unwrap();
        assert_eq!(t["listen"].as_str(), Some("127.0.0.1:4100"));
        assert_eq!(t["metrics_listen"].as_str(), Some("127.0.0.1:4101"));
        assert_eq!(t["peer_listen"].as_str(), Some("127.0.0.1:4102"));
        assert!(t.get("public_peer_port").is_none());
        assert_eq!(t["registry_url"].as_str(), Some("http://127.0.0.1:4000"));
        assert_eq!(
            t["registry_grpc_url"].as_str(),
            Some("http://127.0.0.1:4001")
        );
        assert_eq!(
            t["registry_pubkey"].as_str(),
            Some("ef".repeat(32).as_str())
        );
        assert_eq!(
            Path::new(t["data_dir"].as_str().unwrap()),
            layout.node_data_dir("node-01")
        );
        assert_eq!(t["rate_limit"]["enabled"].as_bool(), Some(false));
        // Behind a proxy, the node announces the proxy's port and still binds its own.
        rec.public_peer_port = Some(4200);
        let t: toml::Table = node_config_text(&layout, &rec, &reg)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(t["peer_listen"].as_str(), Some("127.0.0.1:4102"));
        assert_eq!(t["public_peer_port"].as_integer(), Some(4200));
    }

    #[test]
    fn registry_ready_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ready.json");
        assert!(read_registry_ready(&p).unwrap().is_none());
        let key = "12".repeat(32);
        std::fs::write(
            &p,
            format!(r#"{{"pid":1,"listen":"127.0.0.1:4567","url":"x","seed_url":"y","grpc_listen":"127.0.0.1:4568","grpc_url":"z","registry_pubkey":"{key}"}}"#),
        )
        .unwrap();
        let (addr, grpc, k) = read_registry_ready(&p).unwrap().unwrap();
        assert_eq!(addr.port(), 4567);
        assert_eq!(grpc.port(), 4568);
        assert_eq!(k, key);
        std::fs::write(&p, "{}").unwrap();
        assert!(read_registry_ready(&p).is_err());
    }

    #[test]
    fn last_log_line_without_colours() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        assert_eq!(log_tail(&p), "");
        std::fs::write(
            &p,
            "--- umbra devnet: starting x\nfirst\n\u{1b}[31mERROR\u{1b}[0m binding the client listener: Address already in use (os error 98)\n\n",
        )
        .unwrap();
        let tail = log_tail(&p);
        assert!(tail.starts_with("ERROR binding"), "{tail}");
        assert!(looks_like_port_taken(&tail));
        assert!(!looks_like_port_taken("permission denied"));
    }

    #[test]
    fn keys_come_from_the_list_when_the_node_left_none() {
        let mut state = DevnetState::empty();
        state.nodes.push(NodeRecord {
            https_port: 4100,
            metrics_port: 4101,
            ..NodeRecord::new("node-01".into())
        });
        let listing = Listing {
            epoch: 3,
            nodes: vec![Listed {
                pubkey_ed25519: "aa".into(),
                pubkey_x25519: "bb".into(),
                storage_port: 4100,
                swarm_id: Some(9),
            }],
        };
        assert_eq!(
            not_in_swarm(&state, &[0], &listing),
            vec!["node-01".to_owned()]
        );
        fill_keys_from_listing(&mut state, &[0], &listing);
        assert_eq!(state.nodes[0].pubkey_ed25519, "aa");
        assert!(not_in_swarm(&state, &[0], &listing).is_empty());
    }
}
