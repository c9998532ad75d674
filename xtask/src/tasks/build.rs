//! `cargo xtask build`: every binary of the workspace, release profile.

use crate::run::{cargo, run as exec};

/// The binaries people run or deploy.
pub(crate) const BINARIES: &[&str] = &[
    "umbra",
    "umbra-node",
    "umbra-registry",
    "umbra-attachments",
    "umbra-bench",
];

pub(crate) fn run() -> anyhow::Result<()> {
    let mut cmd = cargo(["build", "--release", "--locked"]);
    for b in BINARIES {
        cmd.args(["-p", b]);
    }
    exec(&mut cmd)?;
    eprintln!(
        "xtask: built {} in {}",
        BINARIES.join(", "),
        crate::run::root().join("target/release").display()
    );
    Ok(())
}
