//! `umbra devnet down`: stops every process of the devnet (nodes first, so that they can say
//! goodbye to the registry, then the registry and the attachment server), SIGTERM then SIGKILL after a grace period.
//!
//! `umbra devnet down --after-stdin-closes` (hidden) is a teardown guard: started by a test
//! (or any harness) with a pipe as its standard input and in its own process group, it waits
//! until the pipe closes, which happens when the harness ends however it ends (a panic, a
//! SIGKILL from a test runner's timeout, a Ctrl-C), and then stops the devnet, including any
//! daemon of the directory that `devnet.json` does not know of. A drop guard inside the test
//! process would not run on SIGKILL, and the daemons run in their own process groups, so
//! nothing else would stop them.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use nix::sys::signal::Signal;

use super::DownArgs;
use super::binaries::{ATTACHMENTS, NODE, REGISTRY};
use super::layout::Layout;
use super::lock::DirLock;
use super::process::{ProcRef, running_under, stop_all};
use super::state::DevnetState;

/// What [`stop_network`] stopped.
#[derive(Debug, Default)]
pub(crate) struct Stopped {
    /// Nodes that were running.
    pub(crate) nodes: usize,
    /// Whether the registry was running.
    pub(crate) registry: bool,
    /// Whether the attachment server was running.
    pub(crate) attachments: bool,
}

impl Stopped {
    /// "stopped N node(s), the registry and the attachment server", or `None` when nothing
    /// was running.
    pub(crate) fn describe(&self) -> Option<String> {
        if self.nodes == 0 && !self.registry && !self.attachments {
            return None;
        }
        let mut parts = vec![format!("{} node(s)", self.nodes)];
        if self.registry {
            parts.push("the registry".to_owned());
        }
        if self.attachments {
            parts.push("the attachment server".to_owned());
        }
        let last = parts.pop().unwrap_or_default();
        if parts.is_empty() {
            return Some(format!("stopped {last}"));
        }
        Some(format!("stopped {} and {last}", parts.join(", ")))
    }
}

/// How long a guard waits for another command to let go of the directory: an `umbra devnet
/// up` still starting when its test was killed finishes or gives up within its own timeout.
const GUARD_LOCK_PATIENCE: Duration = Duration::from_secs(300);

/// Runs `umbra devnet down`.
pub(crate) async fn run(args: DownArgs) -> anyhow::Result<()> {
    let layout = Layout::new(&args.dir.dir)?;
    if args.after_stdin_closes {
        return guard(&layout, Duration::from_secs(args.grace)).await;
    }
    let _lock = DirLock::acquire_patiently(&layout, Duration::from_secs(10)).await?;
    let mut state = DevnetState::load_existing(&layout)?;
    let stopped = stop_network(&layout, &mut state, Duration::from_secs(args.grace)).await?;
    match stopped.describe() {
        Some(what) => println!("{what} in {}", layout.shown()),
        None => println!("nothing was running in {}", layout.shown()),
    }
    Ok(())
}

/// `down --after-stdin-closes`: waits for the end of standard input, then stops what
/// `devnet.json` records and every daemon still running on a path inside the directory.
async fn guard(layout: &Layout, grace: Duration) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(|| {
        std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())
    })
    .await
    .context("waiting for standard input to close")?
    .context("reading standard input")?;
    if !layout.root().is_dir() {
        println!("nothing was running in {}", layout.shown());
        return Ok(());
    }
    let _lock = DirLock::acquire_patiently(layout, GUARD_LOCK_PATIENCE).await?;
    let stopped = match DevnetState::load(layout)? {
        Some(mut state) => stop_network(layout, &mut state, grace).await?,
        None => Stopped::default(),
    };
    let strays = running_under(layout.root(), &[NODE.name, REGISTRY.name, ATTACHMENTS.name]);
    let left = stop_all(&strays, grace).await;
    match stopped.describe() {
        Some(what) => println!("{what} in {}", layout.shown()),
        None => println!("nothing recorded was running in {}", layout.shown()),
    }
    if !strays.is_empty() {
        println!("stopped {} unrecorded daemon(s)", strays.len() - left.len());
    }
    if !left.is_empty() {
        return Err(still_running(&left));
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
    let attachments: Vec<ProcRef> = state
        .attachments
        .process
        .into_iter()
        .filter(ProcRef::is_running)
        .collect();
    let both: Vec<ProcRef> = registry.iter().chain(&attachments).copied().collect();
    left.extend(stop_all(&both, grace).await);

    for n in &mut state.nodes {
        if n.process.is_some_and(|p| !left.contains(&p)) {
            n.process = None;
        }
    }
    if state.registry.process.is_some_and(|p| !left.contains(&p)) {
        state.registry.process = None;
    }
    if state
        .attachments
        .process
        .is_some_and(|p| !left.contains(&p))
    {
        state.attachments.process = None;
    }
    state.save(layout)?;
    if !left.is_empty() {
        return Err(still_running(&left));
    }
    Ok(Stopped {
        nodes: nodes.len(),
        registry: !registry.is_empty(),
        attachments: !attachments.is_empty(),
    })
}

/// The error for processes that outlived SIGKILL.
fn still_running(left: &[ProcRef]) -> anyhow::Error {
    let pids: Vec<String> = left.iter().map(|p| p.pid.to_string()).collect();
    anyhow!(
        "process(es) {} did not stop even after SIGKILL: look at them with `ps -p {}`",
        pids.join(", "),
        pids.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_stopped_is_said_in_one_phrase() {
        let s = |nodes, registry, attachments| {
            Stopped {
                nodes,
                registry,
                attachments,
            }
            .describe()
        };
        assert_eq!(s(0, false, false), None);
        assert_eq!(s(3, false, false).unwrap(), "stopped 3 node(s)");
        assert_eq!(
            s(3, true, false).unwrap(),
            "stopped 3 node(s) and the registry"
        );
        assert_eq!(
            s(3, true, true).unwrap(),
            "stopped 3 node(s), the registry and the attachment server"
        );
        assert_eq!(
            s(0, false, true).unwrap(),
            "stopped 0 node(s) and the attachment server"
        );
    }
}
