//! `cargo xtask demo` and `cargo xtask devnet …`: the release binaries, then `umbra`.

use std::process::Command;

use crate::run::{cargo, root, run as exec};

/// Builds what a devnet needs: the CLI, the node and the registry.
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
