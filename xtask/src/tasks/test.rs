//! `cargo xtask test`: the whole suite under cargo-nextest (`.config/nextest.toml`), then the
//! doctests, which nextest does not run.

use crate::run::{cargo, ensure_cargo_tool, run as exec};
use crate::system::{DESKTOP_SCENARIO, ensure_debian_packages};

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// nextest profile from `.config/nextest.toml` (`default`, or `ci` for CI's output).
    #[arg(long, default_value = "default")]
    profile: String,
    /// Test name filters passed to nextest (all tests when none).
    filters: Vec<String>,
}

impl Args {
    /// What CI runs: every test, the `ci` profile.
    pub(crate) fn ci() -> Args {
        Args {
            profile: "ci".to_owned(),
            filters: Vec::new(),
        }
    }
}

pub(crate) fn run(a: &Args) -> anyhow::Result<()> {
    crate::rocksdb::ensure_archive()?;
    nextest(&a.profile, &[], &a.filters)?;
    if a.filters.is_empty() {
        exec(&mut cargo(["test", "--doc", "--workspace", "--locked"]))?;
    }
    Ok(())
}

/// `cargo nextest run --workspace` with a profile, extra nextest options and name filters;
/// installs cargo-nextest first when a fresh machine lacks it.
pub(crate) fn nextest(profile: &str, options: &[&str], filters: &[String]) -> anyhow::Result<()> {
    ensure_cargo_tool("nextest", "cargo-nextest")?;
    ensure_debian_packages(DESKTOP_SCENARIO, "the desktop scenario (desktop_xvfb)")?;
    let mut cmd = cargo([
        "nextest",
        "run",
        "--workspace",
        "--locked",
        "--profile",
        profile,
    ]);
    cmd.args(options).args(filters);
    // The scenarios need other packages' binaries; this build of the whole workspace has them
    // (every package with integration tests gets its binaries built), so the scenarios use
    // them instead of building their own with other features (apps/umbra/tests/common).
    cmd.env("UMBRA_WORKSPACE_BINS_BUILT", "1");
    exec(&mut cmd)
}
