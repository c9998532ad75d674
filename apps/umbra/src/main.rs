//! # umbra — the Umbra command line
//!
//! The front end people type. Today it runs `umbra devnet …`: a whole local Umbra network (a
//! registry and storage nodes as separate OS processes on 127.0.0.1). The client commands
//! (accounts, messages) join it later as further modules beside [`devnet`].
//!
//! ```text
//!  main.rs   parse the command line, dispatch, print errors as one line (JSON with --json)
//!     └── devnet/   up · status · down · add-node · stop-node · start-node
//!                   runs the `umbra-registry` and `umbra-node` binaries as child processes
//!                   and talks to them only through their public HTTP interfaces
//! ```
//!
//! ## What it must never do
//!
//! - Hold protocol logic: the daemons and the client library own the protocols; this crate
//!   launches, watches and reports.
//! - Leave a process behind: every daemon it starts is recorded (pid and start time) in the
//!   devnet directory so that `umbra devnet down` can stop it, even after this CLI is gone.
//! - Print or log a secret key; keys shown are public keys of the user's own local network.

mod client;
mod devnet;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Umbra: a metadata-private messenger.
#[derive(Debug, Parser)]
#[command(name = "umbra", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    globals: client::Globals,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a whole local network (a registry and storage nodes) on this machine.
    #[command(subcommand)]
    Devnet(devnet::DevnetCommand),
    #[command(flatten)]
    Client(client::ClientCommand),
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // `--json`, `--profile` and `--network` are accepted before or after the subcommand.
    let json = cli.globals.json;
    match &mut cli.command {
        Command::Devnet(cmd) => cmd.set_json(json),
        Command::Client(cmd) => *cmd.globals_mut() = cli.globals.clone(),
    }
    let result = match cli.command {
        Command::Devnet(cmd) => devnet::run(cmd),
        Command::Client(cmd) => client::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = umbra_report::Report(e.as_ref()).to_string();
            if json {
                println!("{}", serde_json::json!({ "error": line }));
            } else {
                eprintln!("umbra: {line}");
            }
            ExitCode::FAILURE
        }
    }
}
