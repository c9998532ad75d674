//! The node under test, in its own process.
//!
//! Child side ([`run_child`]): `umbra-bench node --data-dir D` starts a storage node through
//! `umbra_node::NodeBuilder` on a multi-thread tokio runtime (as the `umbra-node` binary does),
//! prints `READY <client addr> <metrics addr>` on stdout, and shuts down gracefully when its
//! stdin closes (the benchmark exits or drops it) or on SIGTERM/SIGINT.
//!
//! Parent side ([`NodeProcess`]): spawns that child on a temporary data directory and reads its
//! CPU time and memory from `/proc/<pid>`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use umbra_node::config::{DurabilityConfig, ReplicationConfig};
use umbra_node::testing::{TestNode, TestRegistry, eventually};
use umbra_node::{Config, NodeBuilder};

use crate::sys;

/// Arguments of the hidden `node` subcommand.
#[derive(Debug, Clone, Args)]
pub(crate) struct NodeArgs {
    /// Data directory (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// `process-crash` or `power-loss`.
    #[arg(long, default_value = "process-crash")]
    durability: String,
    /// Log filter for the node (stderr).
    #[arg(long, default_value = "warn")]
    log_level: String,
    /// Nodes: 1 = one node with a static swarm of itself; more = an in-process registry and
    /// that many nodes registered with it, replicating with their swarm.
    #[arg(long, default_value_t = 1)]
    swarm: usize,
}

/// The node configuration the benchmark uses: the shipped defaults (quota, in-flight limit,
/// body limit, sweep interval, durability) except loopback listeners on port 0 and **no
/// per-IP rate limit** — every benchmark client comes from 127.0.0.1, and the default bucket
/// (300 requests/s per IP) would turn the benchmark into a test of the rate limiter.
fn bench_config(args: &NodeArgs) -> anyhow::Result<Config> {
    let durability: DurabilityConfig =
        serde_json::from_value(serde_json::Value::String(args.durability.clone()))
            .with_context(|| format!("unknown durability {:?}", args.durability))?;
    let mut cfg = Config {
        data_dir: args.data_dir.clone(),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        metrics_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        public_ip: Ipv4Addr::LOCALHOST,
        log_level: args.log_level.clone(),
        ..Config::default()
    };
    cfg.rate_limit.enabled = false;
    cfg.store.durability = durability;
    Ok(cfg)
}

/// Runs the node in this process until stdin closes or a signal arrives.
pub(crate) fn run_child(args: NodeArgs) -> anyhow::Result<()> {
    let cfg = bench_config(&args)?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cfg.log_level))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the node's async runtime")?;
    if args.swarm > 1 {
        return rt.block_on(run_swarm(args, cfg));
    }
    rt.block_on(async move {
        let node = NodeBuilder::new(cfg).start().await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "READY {} {}", node.client_addr(), node.metrics_addr())?;
            out.flush()?;
        }
        wait_for_stop().await?;
        node.shutdown().await;
        anyhow::Ok(())
    })
}

/// Resolves when stdin closes or SIGTERM/SIGINT arrives.
async fn wait_for_stop() -> anyhow::Result<()> {
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// A swarm in this process: the registry service (`umbra_node::testing::TestRegistry`) and
/// `args.swarm` nodes registered with it, each with the benchmark's configuration (rate limit
/// off, shipped replication intervals except a 2 s registry refresh so that the swarm forms
/// quickly). Prints `READY <node 0> <node 0 metrics> <node 1> … <node n-1>` once every node
/// follows the registry's newest list and sits in one swarm, then answers the parent's
/// commands on stdin, one reply line each ([`Swarm::command`]), until stdin closes.
async fn run_swarm(args: NodeArgs, base: Config) -> anyhow::Result<()> {
    let registry = TestRegistry::start().await?;
    let mut nodes = Vec::with_capacity(args.swarm);
    for _ in 0..args.swarm {
        let dir = tempfile::tempdir_in(&args.data_dir).context("node data directory")?;
        let node = TestNode::start_in(dir, |c| member_config(&base, &registry, c)).await?;
        nodes.push(node);
    }
    let mut swarm = Swarm {
        registry,
        base,
        nodes,
        stopped: None,
    };
    swarm.settled().await?;
    let addrs: Vec<String> = swarm
        .nodes
        .iter()
        .filter_map(|n| n.node())
        .map(|n| n.client_addr().to_string())
        .collect();
    let metrics = swarm
        .nodes
        .first()
        .and_then(|n| n.node())
        .map(|n| n.metrics_addr().to_string())
        .unwrap_or_default();
    {
        let first = addrs.first().cloned().unwrap_or_default();
        let rest = addrs.get(1..).unwrap_or_default().join(" ");
        say(&format!("READY {first} {metrics} {rest}"))?;
    }
    let mut lines = stdin_lines();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        let line = tokio::select! {
            l = lines.recv() => match l {
                Some(l) => l,
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        };
        // A failed command is reported to the parent, which gives up; the swarm stays up
        // until it closes stdin, so that its nodes stop gracefully either way.
        let reply = match swarm.command(line.trim()).await {
            Ok(r) => r,
            Err(e) => format!("ERROR {}", umbra_report::Report(e.as_ref())),
        };
        say(&reply)?;
    }
    for n in swarm.nodes {
        let _ = n.stop().await;
    }
    swarm.registry.stop().await;
    Ok(())
}

/// Writes one line to the parent.
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush().context("writing to the benchmark")
}

/// The lines of stdin as they arrive; the channel closes with stdin.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    // A plain thread, not `spawn_blocking`: a read blocked on stdin would hold up the
    // runtime's shutdown.
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A member's configuration: the benchmark's, pointed at the registry, with the shipped
/// anti-entropy interval (the registry helper would make it 1 s).
fn member_config(base: &Config, registry: &TestRegistry, c: &mut Config) {
    let data_dir = c.data_dir.clone();
    *c = Config {
        data_dir,
        ..base.clone()
    };
    registry.configure(c);
    c.replication.round_interval_secs = ReplicationConfig::default().round_interval_secs;
}

/// The child's swarm: the registry and the running members; the last member may be down
/// (stopped, its data directory kept) for `--catch-up`.
pub(crate) struct Swarm {
    pub(crate) registry: TestRegistry,
    base: Config,
    /// The running members, the entry node first.
    pub(crate) nodes: Vec<TestNode>,
    /// The last member's data directory while it is down.
    stopped: Option<tempfile::TempDir>,
}

impl Swarm {
    /// Runs one command of the parent and returns the reply line:
    /// - `stop-last`: stops the last member gracefully (it leaves the registry), waits until
    ///   the others follow the list without it; `STOPPED`.
    /// - `catch-up <n>`: starts it again on its data directory and waits until it holds `n`
    ///   messages; `CAUGHT_UP <json>` (see `catchup.rs`).
    async fn command(&mut self, line: &str) -> anyhow::Result<String> {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("stop-last"), None) => {
                if self.nodes.len() < 2 || self.stopped.is_some() {
                    bail!("no member to stop (the entry node stays up)");
                }
                let last = self.nodes.pop().context("no member to stop")?;
                self.stopped = Some(last.stop().await);
                self.settled().await?;
                Ok("STOPPED".into())
            }
            (Some("catch-up"), Some(n)) => {
                let n: u64 = n.parse().with_context(|| format!("bad count {n:?}"))?;
                let dir = self.stopped.take().context("no member is down")?;
                let report = crate::catchup::restart_and_watch(self, dir, n).await?;
                Ok(format!("CAUGHT_UP {report}"))
            }
            _ => bail!("unknown command {line:?}"),
        }
    }

    /// Starts a member again on `dir` (same key, new ports).
    pub(crate) async fn start_member(&self, dir: tempfile::TempDir) -> anyhow::Result<TestNode> {
        let (base, registry) = (&self.base, &self.registry);
        Ok(TestNode::start_in(dir, |c| member_config(base, registry, c)).await?)
    }

    /// Waits until the registry lists exactly the running members as active, every one of
    /// them follows that list and they all sit in one swarm.
    pub(crate) async fn settled(&self) -> anyhow::Result<()> {
        eventually(
            "all running nodes in one swarm of the registry's newest list",
            Duration::from_secs(120),
            || async {
                let list = self.registry.list()?;
                let active = list.list.nodes.iter().filter(|e| e.active).count();
                if active != self.nodes.len() {
                    return Ok(false);
                }
                let mut swarms = Vec::with_capacity(self.nodes.len());
                for n in &self.nodes {
                    let Some(replica) = n.node().and_then(|r| r.replica()) else {
                        return Ok(false);
                    };
                    let view = replica.view().get();
                    if view.epoch() != list.list.epoch {
                        return Ok(false);
                    }
                    swarms.push(view.our_swarm());
                }
                Ok(swarms.iter().all(|s| s.is_some() && *s == swarms[0]))
            },
        )
        .await
    }
}

/// A node running as a child process.
#[derive(Debug)]
pub(crate) struct NodeProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The child's replies after its `READY` line (swarm commands).
    stdout: BufReader<ChildStdout>,
    pid: String,
    client_addr: SocketAddr,
    /// The other swarm members' HTTPS addresses (swarm mode).
    peers: Vec<SocketAddr>,
    data_dir: tempfile::TempDir,
}

impl NodeProcess {
    /// Starts `<this binary> node` on a fresh temporary data directory and waits until it
    /// listens.
    pub(crate) fn spawn(durability: &str, swarm: usize) -> anyhow::Result<NodeProcess> {
        let data_dir = tempfile::Builder::new()
            .prefix("umbra-bench-node-")
            .tempdir()
            .context("creating the node's temporary data directory")?;
        let exe = std::env::current_exe().context("locating this executable")?;
        let mut child = Command::new(exe)
            .arg("node")
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--durability")
            .arg(durability)
            .arg("--swarm")
            .arg(swarm.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the node process")?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("the node's stdout is not captured"))?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .context("reading the node's READY line")?;
        let mut parts = line.split_whitespace();
        let client_addr: SocketAddr = match (parts.next(), parts.next()) {
            (Some("READY"), Some(addr)) => addr
                .parse()
                .with_context(|| format!("bad node address {addr:?}"))?,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the node did not start (said {:?})", line.trim());
            }
        };
        let _metrics = parts.next();
        let peers = parts
            .map(|p| p.parse().with_context(|| format!("bad peer address {p:?}")))
            .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
        let pid = child.id().to_string();
        Ok(NodeProcess {
            child,
            stdin,
            stdout,
            pid,
            client_addr,
            peers,
            data_dir,
        })
    }

    /// The HTTPS address.
    pub(crate) fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The other swarm members' HTTPS addresses (empty for a single node).
    pub(crate) fn peers(&self) -> &[SocketAddr] {
        &self.peers
    }

    /// Sends a command to the swarm child (`Swarm::command`) and waits for its reply line.
    /// Blocks: call it under `block_in_place`.
    pub(crate) fn command(&mut self, cmd: &str) -> anyhow::Result<String> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the node process's stdin is closed")?;
        writeln!(stdin, "{cmd}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("sending {cmd:?} to the node process"))?;
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .with_context(|| format!("reading the node process's reply to {cmd:?}"))?;
        if n == 0 {
            bail!("the node process ended before answering {cmd:?}");
        }
        let line = line.trim();
        if let Some(e) = line.strip_prefix("ERROR ") {
            bail!("the node process failed {cmd:?}: {e}");
        }
        Ok(line.to_owned())
    }

    /// The node's data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// CPU seconds the node has used so far.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        sys::cpu_seconds(&self.pid)
    }

    /// CPU seconds used so far by the node's threads, by thread name.
    pub(crate) fn threads_cpu_seconds(&self) -> std::collections::BTreeMap<String, f64> {
        sys::threads_cpu_seconds(&self.pid)
    }

    /// The node's current and peak RSS.
    pub(crate) fn memory(&self) -> Option<sys::Memory> {
        sys::memory(&self.pid)
    }

    /// Closes the node's stdin (graceful shutdown) and waits up to 30 s for it to exit, then
    /// kills it.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let deadline = SystemClock.instant() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for the node")? {
                if !status.success() {
                    bail!("the node exited with {status}");
                }
                return Ok(());
            }
            if SystemClock.instant() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the node did not stop within 30 s; killed it");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // Reached only when `stop` was not called (an error path): do not leave the node
        // running.
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
