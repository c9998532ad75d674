//! `cargo xtask demo`, `cargo xtask devnet …` and `cargo xtask desktop`: the release binaries,
//! then `umbra` (or `umbra-desktop`).

use std::process::Command;

use crate::run::{cargo, root, run as exec};

/// Builds what a devnet needs: the CLI, the node, the registry and the attachment server.
fn build_devnet_binaries() -> anyhow::Result<()> {
    exec(&mut cargo([
        "build",
        "--release",
        "--locked",
        "-p",
        "umbra",
        "-p",
        "umbra-node",
        "-p",
        "umbra-registry",
        "-p",
        "umbra-attachments",
    ]))
}

fn umbra() -> Command {
    let mut cmd = Command::new(root().join("target/release/umbra"));
    cmd.current_dir(root());
    cmd
}

pub(crate) fn run() -> anyhow::Result<()> {
    build_devnet_binaries()?;
    exec(umbra().arg("demo"))
}

pub(crate) fn devnet(args: &[String]) -> anyhow::Result<()> {
    build_devnet_binaries()?;
    exec(umbra().arg("devnet").args(args))
}

/// Options of `cargo xtask desktop` (passed on to `umbra-desktop`).
#[derive(Debug, clap::Args)]
pub(crate) struct DesktopArgs {
    /// Profile folder (default: the CLI's default profile).
    #[arg(long)]
    profile: Option<std::path::PathBuf>,
    /// `network.json` to use (default: the local devnet's, brought up if it is not running).
    #[arg(long)]
    network: Option<std::path::PathBuf>,
}

/// Whether the devnet in `.umbra-devnet` has a running registry (`umbra devnet status --json`).
fn devnet_running() -> bool {
    let Ok(out) = crate::run::output(umbra().args(["devnet", "status", "--json"])) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| {
            v.pointer("/registry/running")
                .and_then(serde_json::Value::as_bool)
        })
        .unwrap_or(false)
}

pub(crate) fn desktop(a: &DesktopArgs) -> anyhow::Result<()> {
    build_devnet_binaries()?;
    exec(&mut cargo([
        "build",
        "--release",
        "--locked",
        "-p",
        "umbra-desktop",
    ]))?;
    let network = match &a.network {
        Some(file) => file.clone(),
        None => {
            if !devnet_running() {
                exec(umbra().args(["devnet", "up", "--detach"]))?;
            }
            root().join(".umbra-devnet/network.json")
        }
    };
    let mut app = Command::new(root().join("target/release/umbra-desktop"));
    app.current_dir(root()).arg("--network").arg(network);
    if let Some(profile) = &a.profile {
        app.arg("--profile").arg(profile);
    }
    exec(&mut app)
}
