//! `cargo xtask integration`: the scenarios that run a devnet of real processes (registry,
//! nodes, CLI clients) on loopback and inject faults, one at a time, each leaving nothing
//! behind.
//!
//! A scenario is a test of one of the [`SCENARIO_BINARIES`] (package `umbra`); `cargo xtask
//! test` runs them too, with the rest of the suite. Here each scenario runs in its own
//! `cargo nextest run` with `TMPDIR` set to a directory of its own, so that everything it
//! starts names that directory on its command line (the devnets live there). After each
//! scenario the harness waits for every process naming the directory to end and every port
//! recorded in its devnets' `devnet.json` to be free, and fails the scenario naming what is
//! left (which it then kills), so a teardown that stops working is noticed. Then it prints
//! one line per scenario (verdict, duration, name) and a summary.
//!
//! Teardown itself lives in the scenarios: every devnet has a guard process (`umbra devnet
//! down --after-stdin-closes`, see `apps/umbra/tests/common`) that stops it when the test
//! process ends, however it ends, including SIGKILL from nextest's `terminate-after`. A
//! Ctrl-C reaches nextest (which ends the running test) and this program, which survives it,
//! waits for the teardown, checks as above, runs no further scenario and fails. Processes of
//! an earlier run whose harness was itself killed are stopped before a run starts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::run::{cargo, ensure_cargo_tool, output, run_interruptible};

/// The test binaries (of the `umbra` package) whose tests are integration scenarios. Keep in
/// step with the `devnet` group in `.config/nextest.toml`.
pub(crate) const SCENARIO_BINARIES: &[&str] = &[
    "devnet",
    "devnet_onion",
    "devnet_guards",
    "devnet_teardown",
    "client_e2e",
    "client_faults",
    "attachments_e2e",
    "desktop_xvfb",
    "config_sync_e2e",
    "groups_e2e",
    "swarm_faults",
    "registry_outage",
    "swarm_partition",
    "bad_peers",
];

/// Environment variable of the scenarios: keep the devnet directories, which the harness
/// checks and then removes itself (see `apps/umbra/tests/common`).
const KEEP_ENV: &str = "UMBRA_KEEP_DEVNET_DIRS";
/// Start of the name of a run's directory in the temporary directory; the harness's pid
/// follows, so that a later run can tell the leftovers of a dead harness.
const RUN_DIR_PREFIX: &str = "umbra-integration-";
/// How long a scenario's processes may take to end after it: its teardown guards give the
/// daemons 5 s before SIGKILL; the rest is margin for a loaded machine.
const LEFTOVER_PATIENCE: Duration = Duration::from_secs(30);
/// How deep below a scenario's directory `devnet.json` files are looked for
/// (`TMPDIR/umbra-devnet-XXXX/net/devnet.json` is at depth 3).
const STATE_SEARCH_DEPTH: usize = 4;

/// Options of `cargo xtask integration`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// nextest profile from `.config/nextest.toml`.
    #[arg(long, default_value = "default")]
    profile: String,
    /// List the scenarios instead of running them.
    #[arg(long)]
    list: bool,
    /// Scenario names (substrings of `BINARY TEST`); all scenarios when none.
    scenarios: Vec<String>,
}

/// One scenario: a test of a scenario binary.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scenario {
    /// nextest's binary id, e.g. `umbra::devnet`.
    binary: String,
    /// The test's name.
    name: String,
}

impl Scenario {
    /// `BINARY TEST`, as nextest shows it.
    fn id(&self) -> String {
        format!("{} {}", self.binary, self.name)
    }
}

/// How one scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    Interrupted,
}

/// The nextest filter expression that selects every scenario binary.
fn filter() -> String {
    let names = SCENARIO_BINARIES.join("|");
    format!("package(umbra) & kind(test) & binary(/^({names})$/)")
}

pub(crate) fn run(a: &Args) -> anyhow::Result<()> {
    ensure_cargo_tool("nextest", "cargo-nextest")?;
    crate::system::ensure_debian_packages(
        crate::system::DESKTOP_SCENARIO,
        "the desktop scenario (desktop_xvfb)",
    )?;
    // From here on a Ctrl-C (or SIGTERM, SIGHUP) sets this flag instead of ending xtask, so
    // that the teardown is waited for and checked.
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&interrupted))
            .context("installing the Ctrl-C handler")?;
    }
    let scenarios = select(list()?, &a.scenarios)?;
    if a.list {
        for s in &scenarios {
            println!("{}", s.id());
        }
        return Ok(());
    }
    stop_earlier_leftovers();

    let run_dir = std::env::temp_dir().join(format!("{RUN_DIR_PREFIX}{}", std::process::id()));
    let mut results: Vec<(Scenario, Verdict, Duration, Vec<String>)> = Vec::new();
    let started = Instant::now();
    for (i, s) in scenarios.iter().enumerate() {
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        let dir = run_dir.join(format!("{:02}", i + 1));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let start = Instant::now();
        let mut cmd = nextest_one(&a.profile, s);
        cmd.env("TMPDIR", &dir).env(KEEP_ENV, "1");
        let status = run_interruptible(&mut cmd, &interrupted)?;
        let left = leftovers(&dir, LEFTOVER_PATIENCE);
        let took = start.elapsed();
        let verdict = if interrupted.load(Ordering::SeqCst) {
            Verdict::Interrupted
        } else if status.success() && left.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        println!("{}", line(s, verdict, took, &left));
        if verdict == Verdict::Pass {
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            println!("      files and logs: {}", dir.display());
        }
        results.push((s.clone(), verdict, took, left));
    }
    let _ = std::fs::remove_dir(&run_dir); // only when empty: failures keep their logs

    let count = |v: Verdict| results.iter().filter(|r| r.1 == v).count();
    let (passed, failed) = (count(Verdict::Pass), count(Verdict::Fail));
    let not_run = scenarios.len() - results.len() + count(Verdict::Interrupted);
    println!();
    println!(
        "integration summary ({:.0}s):",
        started.elapsed().as_secs_f64()
    );
    for (s, verdict, took, left) in &results {
        println!("  {}", line(s, *verdict, *took, left));
    }
    println!("scenarios: {passed} passed, {failed} failed");
    if not_run > 0 {
        println!("interrupted: {not_run} scenario(s) not run to the end");
    }
    if interrupted.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    if failed > 0 {
        bail!("{failed} scenario(s) failed or left processes or ports behind");
    }
    Ok(())
}

/// One result line: verdict, duration, scenario, and what it left behind.
fn line(s: &Scenario, verdict: Verdict, took: Duration, left: &[String]) -> String {
    let word = match verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Interrupted => "INTR",
    };
    let mut text = format!("{word} {:>7.1}s  {}", took.as_secs_f64(), s.id());
    if !left.is_empty() {
        text.push_str(&format!("  (left behind: {})", left.join(", ")));
    }
    text
}

/// Every scenario, from `cargo nextest list` (which builds the test binaries first).
fn list() -> anyhow::Result<Vec<Scenario>> {
    let mut cmd = cargo(["nextest", "list", "-p", "umbra", "--locked", "-E"]);
    cmd.arg(filter()).args(["--message-format", "json"]);
    let out = output(&mut cmd)?;
    let v: Value = serde_json::from_slice(&out).context("reading `cargo nextest list`")?;
    Ok(parse_list(&v))
}

/// The tests of a `cargo nextest list --message-format json` that the filter selected.
fn parse_list(v: &Value) -> Vec<Scenario> {
    let mut found = Vec::new();
    let Some(suites) = v["rust-suites"].as_object() else {
        return found;
    };
    for (binary, suite) in suites {
        let Some(cases) = suite["testcases"].as_object() else {
            continue;
        };
        for (name, case) in cases {
            if case["filter-match"]["status"] == "matches" {
                found.push(Scenario {
                    binary: binary.clone(),
                    name: name.clone(),
                });
            }
        }
    }
    found
}

/// The scenarios whose id contains one of `wanted` (all when `wanted` is empty).
fn select(all: Vec<Scenario>, wanted: &[String]) -> anyhow::Result<Vec<Scenario>> {
    if wanted.is_empty() {
        return Ok(all);
    }
    let chosen: Vec<Scenario> = all
        .into_iter()
        .filter(|s| wanted.iter().any(|w| s.id().contains(w.as_str())))
        .collect();
    if chosen.is_empty() {
        bail!(
            "no scenario matches {}: `cargo xtask integration --list` shows them",
            wanted.join(" ")
        );
    }
    Ok(chosen)
}

/// `cargo nextest run` of exactly one scenario.
fn nextest_one(profile: &str, s: &Scenario) -> Command {
    let mut cmd = cargo([
        "nextest",
        "run",
        "-p",
        "umbra",
        "--locked",
        "--profile",
        profile,
        "-E",
    ]);
    cmd.arg(format!("binary_id({}) & test(={})", s.binary, s.name));
    cmd
}

/// What a scenario left behind in `dir`, once its teardown had `patience` to finish:
/// processes naming `dir` on their command line (killed now, so that the next scenario starts
/// clean) and ports of its devnets still bound.
fn leftovers(dir: &Path, patience: Duration) -> Vec<String> {
    let ports = recorded_ports(dir);
    let deadline = Instant::now() + patience;
    loop {
        let procs = processes_naming(&dir.to_string_lossy());
        let bound: Vec<u16> = ports.iter().copied().filter(|p| is_bound(*p)).collect();
        if (procs.is_empty() && bound.is_empty()) || Instant::now() >= deadline {
            for (pid, _) in &procs {
                signal(*pid, Signal::SIGKILL);
            }
            return procs
                .into_iter()
                .map(|(pid, program)| format!("{program} (pid {pid})"))
                .chain(bound.into_iter().map(|p| format!("port {p}")))
                .collect();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Processes of runs whose harness is gone (killed before it could clean up): stopped, and
/// their directories removed.
fn stop_earlier_leftovers() {
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RUN_DIR_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if owner == std::process::id() || Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        let dir = entry.path();
        let procs = processes_naming(&dir.to_string_lossy());
        for (pid, _) in &procs {
            signal(*pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && procs
                .iter()
                .any(|(pid, _)| Path::new(&format!("/proc/{pid}")).exists())
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        for (pid, _) in &procs {
            signal(*pid, Signal::SIGKILL);
        }
        if !procs.is_empty() {
            eprintln!(
                "xtask: stopped {} process(es) left by an earlier run in {}",
                procs.len(),
                dir.display()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Running processes (not zombies, not this one) whose command line contains `needle`:
/// (pid, program name).
fn processes_naming(needle: &str) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && !is_zombie(pid))
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let text = String::from_utf8_lossy(&raw);
            let program = text.split('\0').next().unwrap_or_default();
            let program = Path::new(program)
                .file_name()
                .map_or_else(|| program.to_owned(), |n| n.to_string_lossy().into_owned());
            text.contains(needle).then_some((pid, program))
        })
        .collect()
}

/// Whether `pid` is a zombie (or gone).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let state = s[s.rfind(')')? + 1..].trim_start().chars().next()?;
            Some(matches!(state, 'Z' | 'X'))
        })
        .unwrap_or(true)
}

/// Sends `sig` to `pid`, ignoring a process that is already gone.
fn signal(pid: u32, sig: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), sig);
    }
}

/// Whether something listens on 127.0.0.1:`port` (the devnets bind only there).
fn is_bound(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
}

/// The ports recorded in every `devnet.json` below `dir`: the registry's and each node's.
fn recorded_ports(dir: &Path) -> Vec<u16> {
    let mut files = Vec::new();
    find_files(dir, "devnet.json", STATE_SEARCH_DEPTH, &mut files);
    let mut ports: Vec<u16> = files
        .iter()
        .filter_map(|f| serde_json::from_slice::<Value>(&std::fs::read(f).ok()?).ok())
        .flat_map(|state| ports_of(&state))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The registry's, the attachment server's and the nodes' ports of one `devnet.json` (0, not
/// yet picked, left out).
fn ports_of(state: &Value) -> Vec<u16> {
    let nodes = state["nodes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    [&state["registry"]["port"], &state["attachments"]["port"]]
        .into_iter()
        .chain(
            nodes
                .iter()
                .flat_map(|n| [&n["https_port"], &n["metrics_port"], &n["peer_port"]]),
        )
        .filter_map(|p| u16::try_from(p.as_u64()?).ok())
        .filter(|p| *p != 0)
        .collect()
}

/// Files named `name` in `dir` and its subdirectories down to `depth` levels.
fn find_files(dir: &Path, name: &str, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() && depth > 1 {
            find_files(&path, name, depth - 1, found);
        } else if kind.is_file() && e.file_name() == name {
            found.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn the_list_keeps_only_what_the_filter_matched() {
        let v = serde_json::json!({"rust-suites": {
            "umbra::devnet_teardown": {"testcases": {
                "a_scenario": {"ignored": false, "filter-match": {"status": "matches"}},
                "inner": {"ignored": true, "filter-match": {"status": "mismatch", "reason": "ignored"}}
            }},
            "umbra::cli": {"testcases": {}}
        }});
        let all = parse_list(&v);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id(), "umbra::devnet_teardown a_scenario");
        assert_eq!(select(all.clone(), &["teardown".into()]).unwrap(), all);
        assert!(select(all, &["nothing".into()]).is_err());
    }

    #[test]
    fn nextest_runs_every_scenario_one_at_a_time() {
        // The `devnet` test group of `.config/nextest.toml` must name the same binaries, or a
        // new scenario would run beside another one under `cargo xtask test`.
        let config = std::fs::read_to_string(crate::run::root().join(".config/nextest.toml"))
            .expect("reading .config/nextest.toml");
        assert!(
            config.contains(&format!("'{}'", filter())),
            "the devnet group's filter in .config/nextest.toml is not `{}`",
            filter()
        );
    }

    #[test]
    fn ports_come_from_the_registry_and_every_node() {
        let v = serde_json::json!({"registry": {"port": 4000}, "nodes": [
            {"https_port": 4001, "metrics_port": 4002, "peer_port": 4003},
            {"https_port": 0, "metrics_port": 4004}
        ]});
        assert_eq!(ports_of(&v), vec![4000, 4001, 4002, 4003, 4004]);
        let with_attachments = serde_json::json!({"registry": {"port": 4000},
            "attachments": {"port": 4009}, "nodes": []});
        assert_eq!(ports_of(&with_attachments), vec![4000, 4009]);
        let dir = std::env::temp_dir().join(format!("xtask-ports-{}", std::process::id()));
        let net = dir.join("a").join("net");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join("devnet.json"), v.to_string()).unwrap();
        assert_eq!(recorded_ports(&dir), vec![4000, 4001, 4002, 4003, 4004]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_leftover_process_is_named_and_killed_and_a_bound_port_reported() {
        use std::process::Stdio;

        let dir = std::env::temp_dir().join(format!("xtask-left-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(leftovers(&dir, Duration::from_secs(60)).is_empty());

        let held = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let state = serde_json::json!({"registry": {"port": port}, "nodes": []});
        std::fs::write(dir.join("devnet.json"), state.to_string()).unwrap();
        // A process that names the directory and never ends by itself (`read` is built into
        // the shell: no grandchild is left).
        let mut child = Command::new("/bin/sh")
            .args(["-c", "read x"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let patience = Duration::from_millis(500);
        let started = Instant::now();
        let left = leftovers(&dir, patience);
        assert!(started.elapsed() >= patience, "gave up early");
        assert_eq!(
            left,
            vec![format!("sh (pid {})", child.id()), format!("port {port}")]
        );
        assert!(!child.wait().unwrap().success(), "not killed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
