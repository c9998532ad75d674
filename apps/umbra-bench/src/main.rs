//! `umbra-bench`: a reproducible load generator for the Umbra storage node.
//!
//! It starts one storage node on loopback in a **separate process** (this same binary re-run
//! with the hidden `node` subcommand, which starts the node through `umbra_node::NodeBuilder`
//! exactly as the `umbra-node` binary does), then drives it over HTTPS with pre-signed `store`
//! and `retrieve` requests from many concurrent in-flight requests over a few keep-alive
//! connections, and reports throughput, latency percentiles, the node's peak RSS and both
//! processes' CPU time. In the same run it measures the machine's ceiling (Ed25519
//! verifications per second on one core) and reports store throughput as a ratio of it.
//!
//! Why a child process rather than an in-process node: the node's peak RSS (`VmHWM`) and CPU
//! time can then be read from `/proc/<pid>` without the load generator's own buffers and
//! threads mixed in, and the node gets its own tokio runtime sized as in production. Why this
//! binary rather than the built `umbra-node` binary: `cargo run -p umbra-bench` does not build
//! another package's binary, so a separate `umbra-node` could be stale or missing; the `node`
//! subcommand runs the same library code path (`NodeBuilder::start` on a multi-thread runtime).
//!
//! The `messenger` subcommand measures the client instead (issue 6): delivery latency,
//! messages/s one client sends, and restoring a profile, through the production client
//! library (`umbra-messenger` over `umbra-net`) against a running network such as
//! `umbra devnet up`; see `messenger.rs`.
//!
//! See `BENCHMARKS.md` at the repository root for the figures and how to read them.

mod catchup;
mod ceiling;
mod client;
mod desktop;
mod dist;
mod files;
mod groups;
mod messenger;
mod network;
mod node;
mod propagation;
mod report;
mod sys;
mod workload;

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

/// Load generator for the Umbra storage node (signed store / retrieve over HTTPS).
#[derive(Debug, Parser)]
#[command(name = "umbra-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Internal: run the storage node in this process (started by the benchmark itself).
    #[command(hide = true)]
    Node(node::NodeArgs),
    /// Client figures on a running network (e.g. a devnet): delivery latency from `send` to
    /// display, messages/s one client sends, time to restore a profile from its phrase.
    Messenger(messenger::MessengerArgs),
    /// A large file through onion paths on a running devnet with the `umbra` CLI: upload and
    /// download throughput, resume after a kill, peak memory of client and server.
    Files(files::FilesArgs),
    /// A group of N members (1 000 by default) on a running network, each polling the group
    /// swarm through onion paths: create, join, and the time for a message to reach all.
    Groups(groups::GroupsArgs),
    /// The desktop app on a running devnet, in a real window (DISPLAY, e.g. Xvfb): cold
    /// start, delivery into the app, quitting, frame times while scrolling a long
    /// conversation, memory.
    Desktop(desktop::DesktopArgs),
}

/// What to measure and how hard to push.
#[derive(Debug, Clone, Args)]
pub(crate) struct BenchArgs {
    /// Tiny run (a few hundred requests) that checks everything works; figures are meaningless.
    #[arg(long)]
    pub(crate) smoke: bool,
    /// Distinct Session accounts the messages are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) accounts: usize,
    /// Signed `store` requests in the timed store phase.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) stores: usize,
    /// Authenticated `retrieve` requests in the timed retrieve phase.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) retrieves: usize,
    /// Requests in flight at any time (concurrent clients).
    #[arg(long, default_value_t = 128)]
    pub(crate) inflight: usize,
    /// TLS connections the in-flight requests share (HTTP/2 streams). With `--http1` every
    /// in-flight request has its own keep-alive connection and this is ignored.
    #[arg(long, default_value_t = 4)]
    pub(crate) connections: usize,
    /// HTTP/1.1 keep-alive (one request at a time per connection) instead of HTTP/2.
    #[arg(long)]
    pub(crate) http1: bool,
    /// Worker threads of the load generator's async runtime.
    #[arg(long, default_value_t = 1)]
    pub(crate) client_threads: usize,
    /// Bytes of message data per store (before base64).
    #[arg(long, default_value_t = 500)]
    pub(crate) data_bytes: usize,
    /// Percentage of stores sent unsigned to the public inbox namespace 0 (as Session's
    /// one-to-one messages are); the rest are signed stores to private namespaces 2..=5.
    #[arg(long, default_value_t = 0)]
    pub(crate) inbox_percent: u8,
    /// Messages each retrieve should return: `last_hash` is set that many messages before the
    /// newest one of the (account, namespace) (fewer if it has fewer).
    #[arg(long, default_value_t = 1)]
    pub(crate) retrieve_tail: usize,
    /// Seconds the one-core Ed25519 verification ceiling is measured for.
    #[arg(long, default_value_t = 3.0)]
    pub(crate) ceiling_secs: f64,
    /// RSS mode: bulk-load this many messages (in rounds of `--round`, signed between rounds,
    /// untimed), then run `--retrieves` retrieves, and report the node's RSS and database size.
    /// Takes minutes for 1 000 000.
    #[arg(long)]
    pub(crate) rss_messages: Option<usize>,
    /// Requests signed ahead per round (pre-signed bodies are valid for about 90 s).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) round: usize,
    /// Swarm size: 1 = one node (a static swarm of itself); more (e.g. 5) = a registry and that
    /// many nodes in one process, replicating every store; the load goes to the first node.
    #[arg(long, default_value_t = 1)]
    pub(crate) swarm: usize,
    /// Swarm mode: after the timed phases, this many propagation probes (store one message,
    /// then see it on every member; see `propagation.rs`). 0: none.
    #[arg(long, default_value_t = 0)]
    pub(crate) propagation: usize,
    /// Swarm mode: anti-entropy catch-up instead of the timed phases. The last member is
    /// stopped, this many signed stores go to the entry node, then the member is started again
    /// on its data directory and timed until it holds them all (see `catchup.rs`).
    #[arg(long)]
    pub(crate) catch_up: Option<usize>,
    /// Node durability: `process-crash` (default, as shipped) or `power-loss`.
    #[arg(long, default_value = "process-crash")]
    pub(crate) durability: String,
    /// Print the final summary as one JSON line starting with `RESULT ` as well.
    #[arg(long)]
    pub(crate) json: bool,
}

impl BenchArgs {
    /// Applies `--smoke`: small counts, short ceiling.
    fn effective(mut self) -> BenchArgs {
        if self.smoke {
            self.accounts = 40;
            self.stores = 400;
            self.retrieves = 400;
            self.inflight = self.inflight.min(16);
            self.connections = self.connections.min(2);
            self.ceiling_secs = 0.2;
            self.rss_messages = self.rss_messages.map(|n| n.min(1_000));
            self.round = self.round.min(500);
            self.propagation = self.propagation.min(20);
            self.catch_up = self.catch_up.map(|n| n.min(400));
        }
        self.accounts = self.accounts.max(1);
        self.swarm = self.swarm.max(1);
        self.inflight = self.inflight.max(1);
        self.connections = self.connections.clamp(1, self.inflight);
        self.client_threads = self.client_threads.max(1);
        self.round = self.round.max(1);
        self.inbox_percent = self.inbox_percent.min(100);
        self
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("umbra-bench: {}", umbra_report::Report(e.as_ref()));
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Node(args)) => node::run_child(args),
        Some(Command::Messenger(args)) => on_runtime(
            args.client_threads,
            args.json,
            "the clients'",
            messenger::run(&args),
        ),
        Some(Command::Groups(args)) => on_runtime(
            args.client_threads,
            args.json,
            "the members'",
            groups::run(&args),
        ),
        Some(Command::Desktop(args)) => {
            on_runtime(2, args.json, "the clients'", desktop::run(&args))
        }
        Some(Command::Files(args)) => {
            let summary = files::run(&args)?;
            if args.json {
                println!("RESULT {summary}");
            }
            Ok(())
        }
        None => {
            let args = cli.bench.effective();
            on_runtime(
                args.client_threads,
                args.json,
                "the load generator's",
                report::run_bench(&args),
            )
        }
    }
}

/// Runs a benchmark on a runtime of `threads` workers and prints its `RESULT` line when
/// `json` is set.
fn on_runtime(
    threads: usize,
    json: bool,
    whose: &str,
    bench: impl std::future::Future<Output = anyhow::Result<serde_json::Value>>,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .with_context(|| format!("starting {whose} async runtime"))?;
    let summary = rt.block_on(bench)?;
    rt.shutdown_timeout(Duration::from_secs(1));
    if json {
        println!("RESULT {summary}");
    }
    Ok(())
}
