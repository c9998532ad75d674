//! `cargo xtask fuzz [TARGET] [--time S]`: the cargo-fuzz targets in `fuzz/` (one per parser of
//! network bytes; `docs/fuzzing.md`), each run for a while; `smoke` is CI's few seconds of each.
//!
//! Stable Rust only: `cargo fuzz … --sanitizer none` needs no nightly flag (the default address
//! sanitizer does; the crates forbid `unsafe`, so it would add little), and
//! `--debug-assertions` turns integer overflow into a crash. New corpus entries go to
//! `fuzz/corpus/<target>` (ignored by git); the committed seeds in `fuzz/seeds/<target>` are
//! read too. A crash leaves its input in `fuzz/artifacts/<target>/` and fails the task.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::run::{cargo_unlinted as cargo, ensure_cargo_tool, root, run as exec};

/// Every target, with the parser it feeds.
const TARGETS: &[(&str, &str)] = &[
    (
        "onion_frame",
        "onion frame: u32 length, payload, control JSON",
    ),
    (
        "onion_bencode",
        "bencode and Session's node-to-node onion form (peel_bencoded)",
    ),
    (
        "onion_peel",
        "a node peeling one layer, raw and behind the AEAD (peel)",
    ),
    (
        "onion_v4",
        "v4 request/response payloads to and from external servers",
    ),
    (
        "onion_reply",
        "a client opening an onion reply (PendingReply::open)",
    ),
    (
        "onion_umbra",
        "Umbra's control layer: `umbra` options and sealed hop messages",
    ),
    (
        "rpc_request",
        "storage RPC body to typed request (umbra-node, no store)",
    ),
    (
        "wire_envelope",
        "Session's WebSocketMessage/Envelope/Content protobufs",
    ),
    (
        "config_message",
        "config messages: decrypt, unpad, inflate, parts, bencode, parse, merge",
    ),
    (
        "replica_wire",
        "peer/replication JSON bodies and signed headers",
    ),
    (
        "registry_list",
        "the registry's signed node list: parse and verify",
    ),
    (
        "registry_list_proto",
        "the registry's signed node list from its gRPC stream: decode, convert, verify",
    ),
    (
        "attachments_request",
        "attachment server: upload manifest, Range, X-FS-TTL, chunk index, file id",
    ),
    (
        "attachment_decrypt",
        "attachment decryption: stream, chunked view, legacy AES-CBC+HMAC",
    ),
    (
        "groups_keys",
        "groups v2: keys messages (parse, verify, open K and copies), group messages, member auth",
    ),
];

/// Seconds of each target in CI's smoke run.
const SMOKE_SECS: u64 = 4;

/// The build and run flags: stable-compatible, overflow checks on, and 16 codegen units
/// (cargo-fuzz's default of 1 serialises the codegen of each target on CI's two cores).
const FLAGS: &[&str] = &[
    "--sanitizer",
    "none",
    "--debug-assertions",
    "--codegen-units",
    "16",
];

/// Options of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Which target (all when none): onion_frame, onion_bencode, onion_peel, onion_v4,
    /// onion_reply, onion_umbra, rpc_request, wire_envelope, config_message, replica_wire,
    /// registry_list, registry_list_proto, attachments_request, attachment_decrypt, groups_keys.
    target: Option<String>,
    /// Seconds to run each target.
    #[arg(long, default_value_t = 60)]
    time: u64,
}

pub(crate) fn run(a: &Args) -> anyhow::Result<()> {
    let chosen: Vec<&str> = match &a.target {
        None => TARGETS.iter().map(|(t, _)| *t).collect(),
        Some(name) => match TARGETS.iter().find(|(t, _)| t == name) {
            Some((t, _)) => vec![*t],
            None => {
                let names: Vec<String> = TARGETS
                    .iter()
                    .map(|(t, about)| format!("{t} ({about})"))
                    .collect();
                bail!(
                    "no fuzz target named {name:?}; choose one of: {}",
                    names.join(", ")
                );
            }
        },
    };
    fuzz(&chosen, a.time.max(1))
}

/// Every target for a few seconds (CI): a crash, hang or overflow fails.
pub(crate) fn smoke() -> anyhow::Result<()> {
    let all: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
    fuzz(&all, SMOKE_SECS)
}

fn fuzz(targets: &[&str], secs: u64) -> anyhow::Result<()> {
    ensure_cargo_tool("fuzz", "cargo-fuzz")?;
    // The fuzz workspace links the node's crates, hence the store and RocksDB: compiling
    // RocksDB once more for `fuzz/target` (release, its own target dir) would cost ≈ 15 minutes
    // of CI on 2 cores. Its librocksdb-sys links the workspace's archive instead (RocksDB is not
    // instrumented, which costs nothing: no fuzz target reaches the store). `fuzz/Cargo.lock`
    // pins the workspace's librocksdb-sys version: the bindings must match the library.
    crate::rocksdb::ensure_archive()?;
    // One build of every target first, so each run below only runs.
    let mut build = cargo(["fuzz", "build"]);
    build.args(FLAGS);
    exec(&mut build).context("building the fuzz targets")?;

    let dir = root().join("fuzz");
    let mut failed = Vec::new();
    for target in targets {
        let corpus = dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let mut cmd = cargo(["fuzz", "run"]);
        cmd.args(FLAGS).arg(target).arg(&corpus);
        let seeds = dir.join("seeds").join(target);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.args([
            "--",
            &format!("-max_total_time={secs}"),
            // An input that takes seconds is a hang: report it as a crash.
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
        ]);
        let start = Instant::now();
        let result = exec(&mut cmd);
        let took = start.elapsed().as_secs();
        match result {
            Ok(()) => eprintln!("xtask fuzz: {target}: no crash in {took} s"),
            Err(e) => {
                eprintln!("xtask fuzz: {target}: FAILED after {took} s: {e}");
                failed.push(*target);
            }
        }
    }
    if !failed.is_empty() {
        let artifacts: Vec<String> = failed
            .iter()
            .map(|t| Path::new("fuzz/artifacts").join(t).display().to_string())
            .collect();
        bail!(
            "fuzz target(s) {} crashed; inputs in {} (replay one with `cargo fuzz run {} <target> <file>`)",
            failed.join(", "),
            artifacts.join(", "),
            FLAGS.join(" ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TARGETS;

    #[test]
    fn every_target_of_fuzz_cargo_toml_is_listed() {
        // A target missing here would never run in CI's smoke.
        let manifest = std::fs::read_to_string(crate::run::root().join("fuzz/Cargo.toml"))
            .expect("reading fuzz/Cargo.toml");
        let declared: Vec<&str> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|bin| {
                let line = bin.lines().find(|l| l.trim_start().starts_with("name"))?;
                line.split('"').nth(1)
            })
            .collect();
        let listed: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
        assert!(!declared.is_empty(), "no [[bin]] found in fuzz/Cargo.toml");
        for t in &declared {
            assert!(listed.contains(t), "fuzz target {t} is not in TARGETS");
        }
        for t in &listed {
            assert!(
                declared.contains(t),
                "TARGETS names {t}, which fuzz/Cargo.toml lacks"
            );
        }
    }
}
