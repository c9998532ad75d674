//! `cargo xtask`: the one entry point for building, running and testing every Umbra component.
//!
//! Every task is a sequence of ordinary `cargo` (and, for the devnet, `umbra`) invocations,
//! printed before they run, so anything `xtask` does can be repeated by hand. Tasks live one per
//! file in `tasks/`; `run.rs` is the only place that starts processes.

mod rocksdb;
mod run;
mod system;
mod tasks;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Build, run and test Umbra (registry, service nodes, CLI) from one command.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build every binary (apps and services), release profile.
    Build,
    /// Run the whole test suite with cargo-nextest, then the doctests.
    Test(tasks::test::Args),
    /// What CI runs: fmt, clippy -D warnings, docs -D warnings, cargo deny, tests, fuzz smoke.
    Ci,
    /// Build, bring up a local devnet and let two new identities chat through it.
    Demo,
    /// Run `umbra devnet …` (up, status, down, add-node, stop-node, start-node).
    Devnet {
        /// Arguments passed to `umbra devnet`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the desktop app against the local devnet (brought up if it is not running).
    Desktop(tasks::demo::DesktopArgs),
    /// Run the integration scenarios (devnets of real processes, with faults) one at a time;
    /// a scenario fails if it leaves a process or port behind.
    Integration(tasks::integration::Args),
    /// Run the benchmarks that BENCHMARKS.md cites.
    Bench(tasks::bench::Args),
    /// Run cargo-fuzz targets for the network parsers (each for a short time).
    Fuzz(tasks::fuzz::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every task builds the workspace, and the node's store compiles RocksDB from C++.
    if let Err(e) = system::ensure_rocksdb_build_tools() {
        eprintln!("xtask: {}", umbra_report::Report(e.as_ref()));
        return ExitCode::FAILURE;
    }
    let result = match cli.task {
        Task::Build => tasks::build::run(),
        Task::Test(a) => tasks::test::run(&a),
        Task::Ci => tasks::ci::run(),
        Task::Demo => tasks::demo::run(),
        Task::Devnet { args } => tasks::demo::devnet(&args),
        Task::Desktop(a) => tasks::demo::desktop(&a),
        Task::Integration(a) => tasks::integration::run(&a),
        Task::Bench(a) => tasks::bench::run(&a),
        Task::Fuzz(a) => tasks::fuzz::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {}", umbra_report::Report(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
