//! `umbra devnet down`: stops every process of the devnet (nodes first, so that they can say
//! goodbye to the registry, then the registry), SIGTERM then SIGKILL after a grace period.

use std::time::Duration;

use anyhow::bail;
use nix::sys::signal::Signal;

use super::DownArgs;
use super::layout::Layout;
use super::lock::DirLock;
use super::process::{ProcRef, stop_all};
use super::state::DevnetState;

/// What [`stop_network`] stopped.
#[derive(Debug, Default)]
pub(crate) struct Stopped {
    /// Nodes that were running.
    pub(crate) nodes: usize,
    /// Whether the registry was running.
    pub(crate) registry: bool,
}

impl Stopped {
    /// "stopped N node(s) and the registry", or `None` when nothing was running.
    pub(crate) fn describe(&self) -> Option<String> {
        if self.nodes == 0 && !self.registry {
            return None;
        }
        let registry = if self.registry {
            " and the registry"
        } else {
            ""
        };
        Some(format!("stopped {} node(s){registry}", self.nodes))
    }
}

/// Runs `umbra devnet down`.
pub(crate) async fn run(args: DownArgs) -> anyhow::Result<()> {
    let layout = Layout::new(&args.dir.dir)?;
    let _lock = DirLock::acquire_patiently(&layout, Duration::from_secs(10)).await?;
    let mut state = DevnetState::load_existing(&layout)?;
    let stopped = stop_network(&layout, &mut state, Duration::from_secs(args.grace)).await?;
    match stopped.describe() {
        Some(what) => println!("{what} in {}", layout.shown()),
        None => println!("nothing was running in {}", layout.shown()),
    }
    Ok(())
}

/// Stops everything recorded in `state` and saves it with no process left. A foreground
/// `umbra devnet up` watching the network (other than this process) is told to exit.
pub(crate) async fn stop_network(
    layout: &Layout,
    state: &mut DevnetState,
    grace: Duration,
) -> anyhow::Result<Stopped> {
    let me = ProcRef::me();
    if let Some(sup) = state.supervisor
        && sup.pid != me.pid
    {
        sup.signal(Signal::SIGTERM);
    }
    state.supervisor = None;

    let nodes: Vec<ProcRef> = state
        .nodes
        .iter()
        .filter_map(|n| n.process)
        .filter(ProcRef::is_running)
        .collect();
    let mut left = stop_all(&nodes, grace).await;
    let registry: Vec<ProcRef> = state
        .registry
        .process
        .into_iter()
        .filter(ProcRef::is_running)
        .collect();
    left.extend(stop_all(&registry, grace).await);

    for n in &mut state.nodes {
        if n.process.is_some_and(|p| !left.contains(&p)) {
            n.process = None;
        }
    }
    if state.registry.process.is_some_and(|p| !left.contains(&p)) {
        state.registry.process = None;
    }
    state.save(layout)?;
    if !left.is_empty() {
        let pids: Vec<String> = left.iter().map(|p| p.pid.to_string()).collect();
        bail!(
            "process(es) {} did not stop even after SIGKILL: look at them with `ps -p {}`",
            pids.join(", "),
            pids.join(",")
        );
    }
    Ok(Stopped {
        nodes: nodes.len(),
        registry: !registry.is_empty(),
    })
}
