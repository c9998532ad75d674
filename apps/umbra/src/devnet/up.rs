//! `umbra devnet up`: starts the registry, the attachment server and the nodes, waits until every node is healthy
//! (`grpc.health.v1` SERVING on its peer port), sits in a swarm and serves the registry's
//! current node list (so that onion requests and swarm
//! writes work as soon as it returns), writes `network.json`, prints a summary, then either
//! returns (`--detach`) or watches the network in the foreground until Ctrl-C and stops it.

use std::process::Child;
use std::time::{Duration, Instant};
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, anyhow, bail};
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::down::stop_network;
use super::launch::Launcher;
use super::layout::{Layout, shown_path};
use super::lock::DirLock;
use super::probe::{Listing, swarm_hex};
use super::process::ProcRef;
use super::state::{DevnetState, NetworkFile, NodeRecord};
use super::{DEFAULT_NODES, UpArgs};

/// Seconds between SIGTERM and SIGKILL when `up` stops the network.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs `umbra devnet up`.
pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    let layout = Layout::new(&args.dir.dir)?;
    // Binaries first: a missing one must not leave a half-made directory behind.
    let launcher = Launcher::new(layout.clone())?;
    let mut signals = Signals::new()?;
    let lock = DirLock::acquire(&layout)?;
    let mut state = prepare_state(&layout, args.nodes.map(usize::from))?;
    announce_peer_ports(&mut state, &args.public_peer_ports)?;
    state.supervisor = (!args.detach).then(ProcRef::me);
    std::fs::create_dir_all(layout.logs_dir())
        .with_context(|| format!("creating {}", layout.logs_dir().display()))?;
    state.save(&layout)?;

    let deadline = SystemClock.instant() + Duration::from_secs(args.timeout);
    let mut children: Vec<(String, Child)> = Vec::new();
    let phases = Phases::new(args.verbose);
    let outcome = tokio::select! {
        r = start_network(&launcher, &mut state, &mut children, deadline, &phases) => r,
        () = signals.recv() => Err(anyhow!("interrupted while starting")),
    };
    let listing = match outcome {
        Ok(l) => l,
        Err(e) => {
            let cleanup = stop_network(&layout, &mut state, STOP_GRACE).await;
            reap(&mut children);
            let what = match cleanup {
                Ok(_) => "stopped everything it had started".to_owned(),
                Err(c) => format!("and stopping failed too: {c:#}"),
            };
            bail!("{e:#} ({what})");
        }
    };
    NetworkFile::build(&state, Some(&listing)).save(&layout)?;
    state.save(&layout)?;
    drop(lock);
    print_summary(&layout, &state, &listing);

    let flag = layout.dir_flag();
    if args.detach {
        println!(
            "Running in the background: `umbra devnet status{flag}` to look, `umbra devnet down{flag}` to stop."
        );
        return Ok(());
    }
    println!("Press Ctrl-C to stop the network (or run `umbra devnet down{flag}` elsewhere).");
    supervise(&layout, &mut children, &mut signals).await;
    println!("stopping the devnet…");
    let _lock = DirLock::acquire_patiently(&layout, Duration::from_secs(30)).await?;
    let mut state = DevnetState::load_existing(&layout)?;
    let stopped = stop_network(&layout, &mut state, STOP_GRACE).await;
    reap(&mut children);
    match stopped?.describe() {
        Some(what) => println!("{what}"),
        None => println!("the devnet was stopped from elsewhere"),
    }
    Ok(())
}

/// The state to start from: the existing devnet of this directory (if nothing of it runs),
/// or a new one of `nodes` nodes.
fn prepare_state(layout: &Layout, nodes: Option<usize>) -> anyhow::Result<DevnetState> {
    let flag = layout.dir_flag();
    let Some(state) = DevnetState::load(layout)? else {
        let mut state = DevnetState::empty();
        for _ in 0..nodes.unwrap_or(DEFAULT_NODES) {
            let name = state.next_node_name();
            state.nodes.push(NodeRecord::new(name));
        }
        return Ok(state);
    };
    let running = state
        .nodes
        .iter()
        .filter(|n| n.process.is_some_and(|p| p.is_running()))
        .count();
    let registry = state.registry.process.is_some_and(|p| p.is_running());
    let attachments = state.attachments.process.is_some_and(|p| p.is_running());
    let watched = state.supervisor.is_some_and(|p| p.is_running());
    if running > 0 || registry || attachments || watched {
        bail!(
            "a devnet is already running in {} ({running} node(s){}): see `umbra devnet status{flag}`, or stop it with `umbra devnet down{flag}`",
            layout.shown(),
            if registry { " and the registry" } else { "" }
        );
    }
    if let Some(n) = nodes
        && n != state.nodes.len()
    {
        bail!(
            "{} holds a devnet of {} node(s), not {n}: start it again without --nodes (then `umbra devnet add-node{flag}`), or remove {} for a new network",
            layout.shown(),
            state.nodes.len(),
            layout.shown()
        );
    }
    Ok(state)
}

/// Records `ports` (`--public-peer-ports`) as the peer ports the nodes announce, one per node;
/// none given: the nodes keep what they announced before.
fn announce_peer_ports(state: &mut DevnetState, ports: &[u16]) -> anyhow::Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    if ports.len() != state.nodes.len() || ports.contains(&0) {
        bail!(
            "--public-peer-ports needs one port above 0 per node: {} node(s), {} port(s) given",
            state.nodes.len(),
            ports.len()
        );
    }
    for (node, &port) in state.nodes.iter_mut().zip(ports) {
        node.public_peer_port = Some(port);
    }
    Ok(())
}

async fn start_network(
    launcher: &Launcher,
    state: &mut DevnetState,
    children: &mut Vec<(String, Child)>,
    deadline: Instant,
    phases: &Phases,
) -> anyhow::Result<Listing> {
    let registry = launcher.start_registry(state, deadline).await?;
    children.push(("registry".to_owned(), registry));
    phases.done("registry serving");
    let attachments = launcher.start_attachments(state, deadline).await?;
    children.push(("attachments".to_owned(), attachments));
    phases.done("attachment server ready");
    let all: Vec<usize> = (0..state.nodes.len()).collect();
    children.extend(launcher.start_nodes(state, &all, deadline).await?);
    phases.done(&format!(
        "{} node(s) answering their health check",
        all.len()
    ));
    launcher.wait_healthy(state, &all, deadline).await?;
    phases.done(&format!("{} node(s) healthy, in swarms", all.len()));
    let listing = launcher.wait_serving(state, deadline).await?;
    // wait_serving looks only at running nodes; a node that died after it was healthy must not
    // leave `up` announcing a whole network.
    launcher.still_running(state, &all, "the others caught up with the registry's list")?;
    phases.done(&format!(
        "{} node(s) serving node list epoch {}",
        all.len(),
        listing.epoch
    ));
    Ok(listing)
}

/// Start-up timings for `--verbose`.
struct Phases {
    start: Option<Instant>,
}

impl Phases {
    fn new(verbose: bool) -> Phases {
        Phases {
            start: verbose.then(|| SystemClock.instant()),
        }
    }

    fn done(&self, what: &str) {
        if let Some(t) = self.start {
            eprintln!("[{:>7.3} s] {what}", SystemClock.since(t).as_secs_f64());
        }
    }
}

fn print_summary(layout: &Layout, state: &DevnetState, listing: &Listing) {
    let swarms = listing.swarms();
    println!(
        "Umbra devnet is up: {} node(s) in {} swarm(s), node list epoch {}",
        state.nodes.len(),
        swarms.len(),
        listing.epoch
    );
    println!("  seed URL      {}", state.registry.seed_url());
    println!("  registry key  {}", state.registry.pubkey);
    println!(
        "  attachments   {}  key {}",
        state.attachments.url(),
        state.attachments.x25519_pubkey
    );
    println!(
        "  network file  {}  (for clients: --network PATH or UMBRA_NETWORK)",
        shown_path(&layout.network_file())
    );
    println!("  logs          {}/", shown_path(&layout.logs_dir()));
    for (id, count) in &swarms {
        println!("  swarm {:>16}  {count} node(s)", swarm_hex(*id));
    }
}

/// Waits for a stop signal, reporting daemons that exit meanwhile.
async fn supervise(layout: &Layout, children: &mut Vec<(String, Child)>, signals: &mut Signals) {
    loop {
        tokio::select! {
            () = signals.recv() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        children.retain_mut(|(name, child)| match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                let log = match name.as_str() {
                    "registry" => layout.registry_log(),
                    "attachments" => layout.attachments_log(),
                    _ => layout.node_log(name),
                };
                println!("{name} exited ({status}); log: {}", shown_path(&log));
                false
            }
            Err(_) => false,
        });
    }
}

/// Collects the exit status of children that have exited (so none stays a zombie).
fn reap(children: &mut Vec<(String, Child)>) {
    children.retain_mut(|(_, c)| matches!(c.try_wait(), Ok(None)));
}

/// SIGINT (Ctrl-C), SIGTERM (`umbra devnet down` from elsewhere) and SIGHUP (terminal closed).
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        let install = |k: SignalKind| signal(k).context("installing a signal handler");
        Ok(Signals {
            int: install(SignalKind::interrupt())?,
            term: install(SignalKind::terminate())?,
            hup: install(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_peer_ports_are_one_per_node() {
        let mut state = DevnetState::empty();
        for name in ["node-01", "node-02"] {
            state.nodes.push(NodeRecord::new(name.into()));
        }
        announce_peer_ports(&mut state, &[]).unwrap();
        assert!(state.nodes.iter().all(|n| n.public_peer_port.is_none()));
        let e = announce_peer_ports(&mut state, &[4000]).unwrap_err();
        assert!(e.to_string().contains("2 node(s), 1 port(s)"), "{e}");
        assert!(announce_peer_ports(&mut state, &[4000, 0]).is_err());
        announce_peer_ports(&mut state, &[4000, 4001]).unwrap();
        assert_eq!(state.nodes[1].public_peer_port, Some(4001));
    }
}
