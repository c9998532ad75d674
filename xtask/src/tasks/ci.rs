//! `cargo xtask ci`: the quality gates CI runs, in order, each with its start time.

use std::time::Instant;

use crate::run::{cargo, cargo_unlinted, has_cargo_tool, run as exec};

pub(crate) fn run() -> anyhow::Result<()> {
    let start = Instant::now();
    let step = |name: &str| {
        eprintln!("\n=== {name} (+{} s)", start.elapsed().as_secs());
    };
    if !crate::run::root().join("../shared/vectors").is_dir() {
        anyhow::bail!(
            "../shared/vectors is missing: the tests read Session's vectors from the shared/ folder beside the checkout"
        );
    }

    step("rustfmt");
    exec(&mut cargo(["fmt", "--all", "--check"]))?;

    // Every build from here on is a clippy run too (`crate::run::lint_every_build`): the
    // workspace is compiled once, for the tests, instead of once more by `cargo clippy`.
    crate::run::lint_every_build()?;

    step("RocksDB (compiled once; every later step links it)");
    crate::rocksdb::ensure_archive()?;

    step("clippy: every target built for the tests, through clippy-driver, warnings denied");
    exec(&mut cargo([
        "test",
        "--workspace",
        "--all-targets",
        "--no-run",
        "--locked",
    ]))?;

    step("docs");
    // Linted already: rustdoc needs the crates checked, not linted once more.
    let mut doc = cargo_unlinted(["doc", "--workspace", "--no-deps", "--locked"]);
    doc.env("RUSTDOCFLAGS", "-Dwarnings");
    exec(&mut doc)?;

    step("cargo deny");
    if has_cargo_tool("deny") {
        exec(&mut cargo([
            "deny",
            "--offline",
            "check",
            "licenses",
            "bans",
            "sources",
        ]))?;
    } else {
        eprintln!(
            "xtask: cargo-deny is not installed; skipping the licence check (`cargo install --locked cargo-deny`)"
        );
    }

    step("tests");
    super::test::run(&super::test::Args::ci())?;

    step("fuzz smoke");
    super::fuzz::smoke()?;

    step(&format!("done in {} s", start.elapsed().as_secs()));
    Ok(())
}
