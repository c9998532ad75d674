//! `umbra devnet add-node`, `stop-node KEY`, `start-node KEY`: change a running devnet, for
//! trying failures by hand. Each change makes the registry move swarms as its rules say.

use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::bail;

use super::launch::{INACTIVE_AFTER_MS, Launcher, stop_nodes};
use super::layout::Layout;
use super::lock::DirLock;
use super::probe::{Http, Listing, swarm_hex};
use super::state::{DevnetState, NetworkFile, NodeRecord};
use super::{DirArg, KeyArgs, MAX_NODES};

/// Seconds an added node gets to answer and join a swarm.
const ADD_TIMEOUT: Duration = Duration::from_secs(60);
/// Seconds between SIGTERM and SIGKILL when cleaning up a node that failed to start.
const CLEANUP_GRACE: Duration = Duration::from_secs(5);

/// Runs `umbra devnet add-node`.
pub(crate) async fn add(args: DirArg) -> anyhow::Result<()> {
    let layout = Layout::new(&args.dir)?;
    let launcher = Launcher::new(layout.clone())?;
    let _lock = DirLock::acquire(&layout)?;
    let mut state = DevnetState::load_existing(&layout)?;
    require_running_registry(&layout, &state)?;
    if state.nodes.len() >= MAX_NODES {
        bail!("this devnet has {MAX_NODES} nodes already, the most a devnet may have");
    }
    let name = state.next_node_name();
    state.nodes.push(NodeRecord::new(name));
    let idx = state.nodes.len() - 1;
    match bring_up(&launcher, &layout, &mut state, idx, ADD_TIMEOUT).await {
        Ok(listing) => {
            report_started("added", &state.nodes[idx], &listing);
            Ok(())
        }
        Err(e) => {
            // Forget the node that never came up (its directory stays for the next try, which
            // takes the same name); keep it only if it could not even be stopped.
            if state.nodes.get(idx).is_some_and(|n| n.process.is_none()) {
                state.nodes.remove(idx);
                state.save(&layout)?;
            }
            Err(e)
        }
    }
}

/// Runs `umbra devnet stop-node KEY`.
pub(crate) async fn stop(args: KeyArgs) -> anyhow::Result<()> {
    let layout = Layout::new(&args.dir.dir)?;
    let _lock = DirLock::acquire(&layout)?;
    let mut state = DevnetState::load_existing(&layout)?;
    let idx = state.find_node(&args.key)?;
    let (name, key, running) = {
        let n = &state.nodes[idx];
        let running = n.process.is_some_and(|p| p.is_running());
        (n.name.clone(), n.pubkey_ed25519.clone(), running)
    };
    if !running {
        state.nodes[idx].process = None;
        state.save(&layout)?;
        println!("{name} ({key}) is not running");
        return Ok(());
    }
    let left = stop_nodes(&mut state, &[idx], Duration::from_secs(args.timeout)).await;
    state.save(&layout)?;
    if let Some(p) = left.first() {
        bail!(
            "{name} (pid {}) did not stop even after SIGKILL: look at it with `ps -p {}`",
            p.pid,
            p.pid
        );
    }
    refresh_network_file(&Http::new()?, &layout, &state).await?;
    println!(
        "stopped {name} ({key}); the registry takes it out of its swarm at once if it said goodbye, else within {} s",
        INACTIVE_AFTER_MS.div_ceil(1000)
    );
    Ok(())
}

/// Runs `umbra devnet start-node KEY`.
pub(crate) async fn start(args: KeyArgs) -> anyhow::Result<()> {
    let layout = Layout::new(&args.dir.dir)?;
    let launcher = Launcher::new(layout.clone())?;
    let _lock = DirLock::acquire(&layout)?;
    let mut state = DevnetState::load_existing(&layout)?;
    let idx = state.find_node(&args.key)?;
    if let Some(p) = state.nodes[idx].process.filter(|p| p.is_running()) {
        bail!(
            "{} is already running (pid {})",
            state.nodes[idx].name,
            p.pid
        );
    }
    require_running_registry(&layout, &state)?;
    let listing = bring_up(
        &launcher,
        &layout,
        &mut state,
        idx,
        Duration::from_secs(args.timeout),
    )
    .await?;
    report_started("started", &state.nodes[idx], &listing);
    Ok(())
}

/// Starts node `idx` and waits until it is in a swarm and every node serves the list with it;
/// on failure stops it again. Saves the
/// state and `network.json` either way.
async fn bring_up(
    launcher: &Launcher,
    layout: &Layout,
    state: &mut DevnetState,
    idx: usize,
    timeout: Duration,
) -> anyhow::Result<Listing> {
    let deadline = SystemClock.instant() + timeout;
    let outcome = match launcher.start_nodes(state, &[idx], deadline).await {
        // Dropping the child handles leaves the node running on its own.
        Ok(_children) => match launcher.wait_healthy(state, &[idx], deadline).await {
            // The others take in the list with the new node too.
            Ok(_) => launcher.wait_serving(state, deadline).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(listing) => {
            NetworkFile::build(state, Some(&listing)).save(layout)?;
            state.save(layout)?;
            Ok(listing)
        }
        Err(e) => {
            let left = stop_nodes(state, &[idx], CLEANUP_GRACE).await;
            state.save(layout)?;
            let name = state.nodes.get(idx).map_or("the node", |n| n.name.as_str());
            if left.is_empty() {
                bail!("{e:#} ({name} was stopped again)");
            }
            bail!("{e:#} ({name} could not be stopped: pid {})", left[0].pid);
        }
    }
}

fn report_started(verb: &str, node: &NodeRecord, listing: &Listing) {
    let swarm = listing
        .swarm_of(&node.pubkey_ed25519)
        .map_or_else(|| "none".to_owned(), swarm_hex);
    println!(
        "{verb} {} ({}): swarm {swarm}, HTTPS port {}",
        node.name, node.pubkey_ed25519, node.https_port
    );
}

fn require_running_registry(layout: &Layout, state: &DevnetState) -> anyhow::Result<()> {
    if state.registry.process.is_some_and(|p| p.is_running()) {
        return Ok(());
    }
    bail!(
        "the devnet in {} is not running: start it with `umbra devnet up{}`",
        layout.shown(),
        layout.dir_flag()
    )
}

/// Rewrites `network.json` with the registry's current swarms (without them if it does not
/// answer).
async fn refresh_network_file(
    http: &Http,
    layout: &Layout,
    state: &DevnetState,
) -> anyhow::Result<()> {
    let listing = if state.registry.process.is_some_and(|p| p.is_running()) {
        http.registry_list(&state.registry.seed_url()).await.ok()
    } else {
        None
    };
    NetworkFile::build(state, listing.as_ref()).save(layout)
}
