//! `umbra devnet`: a complete Umbra network on this machine, for people trying Umbra, for test
//! suites and for benchmarks.
//!
//! One registry and N storage nodes run as separate OS processes bound to 127.0.0.1, each in
//! its own process group (so a Ctrl-C in the terminal reaches only this CLI, which then stops
//! them in order, and `--detach` leaves them running after it exits). Everything lives under
//! the devnet directory (default `./.umbra-devnet`):
//!
//! ```text
//!  DIR/network.json          what clients need: seed_url, registry_pubkey, nodes
//!  DIR/devnet.json           what this CLI needs: pids (with start times), ports, keys
//!  DIR/.lock                 held while a command changes the network
//!  DIR/registry/             the registry's key, database and start-up file
//!  DIR/nodes/node-NN/        node.toml and data/ (node key, TLS certificate, messages)
//!  DIR/logs/                 registry.log, node-NN.log
//! ```
//!
//! `network.json` holds `seed_url`, `registry_url`, `registry_pubkey`, `epoch` and `nodes`
//! (`pubkey_ed25519`, `pubkey_x25519`, `public_ip`, `https_port`, `swarm_id`): a snapshot for
//! bootstrapping; clients should trust only the registry's signed list.
//!
//! `UMBRA_DEVNET_NODE_LOG=FILTER` (e.g. `info,umbra_node=debug`) in `umbra devnet up`'s
//! environment sets the nodes' `log_level` and `log_reveal_metadata = true`: the node logs then
//! show peer addresses, for tests that check what each node saw.
//! `UMBRA_DEVNET_INACTIVE_AFTER_MS=MS` sets how long the registry waits for a silent node
//! before it takes it out of its swarm (default 7 000): fault tests make it long, so that a
//! killed node (no goodbye) stays listed as it would in a real network for a while.
//!
//! Unix only (process groups and signals); pid checks use `/proc` where there is one.
//!
//! Module map, one job each: [`layout`] (paths), [`state`] (the two JSON files),
//! [`lock`] (one changing command at a time), [`binaries`] (finding the daemons),
//! [`ports`] (free ports), [`process`] (spawn, liveness, stop), [`health`] (readiness by
//! `grpc.health.v1`: the nodes' over TLS checked against their keys, the registry's),
//! [`probe`] (HTTP checks: the registry's node list, the list each node serves), [`launch`] (starting and waiting for the registry and nodes),
//! and one module per subcommand: [`up`], [`status`], [`down`], [`nodes`].

mod binaries;
mod launch;
mod layout;
mod lock;
mod nodes;
mod ports;
mod probe;
mod process;
mod state;
mod status;
mod up;

mod down;
mod health;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

/// Where a devnet lives when `--dir` is not given.
pub(crate) const DEFAULT_DIR: &str = ".umbra-devnet";
/// Nodes started by `umbra devnet up` on a new directory: under Session's formation rules 14
/// nodes form two swarms of 7.
pub(crate) const DEFAULT_NODES: usize = 14;
/// The most nodes one devnet may have.
pub(crate) const MAX_NODES: usize = 256;

/// The `umbra devnet` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Start a registry and storage nodes on 127.0.0.1 and wait until all are healthy.
    ///
    /// Without --detach it stays in the foreground and stops the network on Ctrl-C; with
    /// --detach it returns once the network is healthy and leaves it running.
    Up(UpArgs),
    /// Show the registry and every node: key, swarm, HTTPS port, pid, health.
    Status(StatusArgs),
    /// Stop every process of the devnet (SIGTERM, then SIGKILL after a grace period).
    Down(DownArgs),
    /// Start one more storage node in a running devnet.
    AddNode(DirArg),
    /// Stop one storage node (its swarm changes as the registry rules say).
    StopNode(KeyArgs),
    /// Start again a node stopped with stop-node (same key, same data).
    StartNode(KeyArgs),
}

impl DevnetCommand {
    /// Applies the global `--json` (only `status` prints JSON).
    pub(crate) fn set_json(&mut self, json: bool) {
        if let DevnetCommand::Status(a) = self {
            a.json = json;
        }
    }
}

/// `--dir`, shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub(crate) struct DirArg {
    /// The devnet directory (data, configuration, logs, pids).
    #[arg(long, default_value = DEFAULT_DIR, env = "UMBRA_DEVNET_DIR")]
    pub(crate) dir: PathBuf,
}

/// Arguments of `umbra devnet up`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    pub(crate) dir: DirArg,
    /// Number of storage nodes (default 14 for a new directory; an existing directory keeps
    /// its nodes).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=MAX_NODES as i64))]
    pub(crate) nodes: Option<u16>,
    /// Return once the network is healthy and leave it running.
    #[arg(long)]
    pub(crate) detach: bool,
    /// Seconds to wait for every node to be registered and answering.
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout: u64,
    /// Print how long each start-up phase took (on stderr).
    #[arg(long, short)]
    pub(crate) verbose: bool,
    /// The peer port each node announces instead of the one it binds, one per node in order
    /// (comma-separated), kept across restarts: for a test that puts a proxy in front of every
    /// peer port (`apps/umbra/tests/swarm_partition.rs`), hidden from the help.
    #[arg(long, value_delimiter = ',', hide = true)]
    pub(crate) public_peer_ports: Vec<u16>,
}

/// Arguments of `umbra devnet status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) dir: DirArg,
    /// One JSON object instead of a table (the global `--json`).
    #[arg(skip)]
    pub(crate) json: bool,
}

/// Arguments of `umbra devnet down`.
#[derive(Debug, Args)]
pub(crate) struct DownArgs {
    #[command(flatten)]
    pub(crate) dir: DirArg,
    /// Seconds between SIGTERM and SIGKILL.
    #[arg(long, default_value_t = 10)]
    pub(crate) grace: u64,
    /// Wait until standard input closes, then stop the devnet (see [`down`]): a teardown guard
    /// for test harnesses, hidden from the help.
    #[arg(long, hide = true)]
    pub(crate) after_stdin_closes: bool,
}

/// Arguments of the commands that name one node.
#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// The node's Ed25519 public key in hex (a unique prefix of at least 8 digits will do).
    pub(crate) key: String,
    #[command(flatten)]
    pub(crate) dir: DirArg,
    /// Seconds to wait for the node (start-node) or for it to stop (stop-node).
    #[arg(long, default_value_t = 30)]
    pub(crate) timeout: u64,
}

/// Runs one devnet subcommand to completion.
pub(crate) fn run(cmd: DevnetCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cmd {
            DevnetCommand::Up(args) => up::run(args).await,
            DevnetCommand::Status(args) => status::run(args).await,
            DevnetCommand::Down(args) => down::run(args).await,
            DevnetCommand::AddNode(args) => nodes::add(args).await,
            DevnetCommand::StopNode(args) => nodes::stop(args).await,
            DevnetCommand::StartNode(args) => nodes::start(args).await,
        }
    })
}
