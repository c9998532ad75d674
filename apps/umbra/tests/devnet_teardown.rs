#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A scenario leaves no process behind even when its test process is killed with SIGKILL,
//! where no drop guard runs (nextest's `terminate-after` ends a hung test that way).
//!
//! The outer test runs the inner one (ignored, and a no-op unless [`HANDOFF`] is set) as a
//! child process of this same test binary. The inner test starts a one-node devnet behind a
//! [`common::Devnet`] and then waits to be killed. The outer test reads the registry's and the
//! node's pids and ports from `devnet.json`, kills the inner test with SIGKILL, and requires
//! both daemons gone and their ports free within [`GONE_WITHIN`]. The daemons run in their own
//! process groups and do not die with the test by themselves: without the teardown guard this
//! test fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use common::{Devnet, GUARD, build_daemons, logged_devnet, ok};
use serde_json::Value;

/// Environment variable naming the directory the inner test puts its devnet in.
const HANDOFF: &str = "UMBRA_TEARDOWN_TEST_DIR";
/// Name of the inner test (the `--exact` filter that runs it).
const INNER: &str = "inner_starts_a_devnet_and_waits_to_be_killed";
/// What the daemons may take to go after the kill: the guard's 5 s grace before SIGKILL, plus
/// a generous margin for a loaded machine.
const GONE_WITHIN: Duration = Duration::from_secs(30);

/// The registry's and the nodes' (pid, ports) from `devnet.json`.
fn daemons(dir: &Path) -> Vec<(u32, Vec<u16>)> {
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.join("devnet.json")).unwrap()).unwrap();
    let port = |v: &Value| u16::try_from(v.as_u64().unwrap()).unwrap();
    let reg = &state["registry"];
    let mut all = vec![(
        u32::try_from(reg["process"]["pid"].as_u64().unwrap()).unwrap(),
        vec![port(&reg["port"])],
    )];
    for n in state["nodes"].as_array().unwrap() {
        all.push((
            u32::try_from(n["process"]["pid"].as_u64().unwrap()).unwrap(),
            vec![
                port(&n["https_port"]),
                port(&n["metrics_port"]),
                port(&n["peer_port"]),
            ],
        ));
    }
    all
}

/// Whether `pid` is a live process (a zombie is not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            Some(!matches!(
                s[s.rfind(')')? + 1..].trim_start().chars().next()?,
                'Z' | 'X'
            ))
        })
        .unwrap_or(false)
}

/// Whether something still listens on 127.0.0.1:`port`.
fn bound(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
}

/// Waits until `marker` exists, failing with the inner test's output if it ends first.
fn wait_for(marker: &Path, inner: &mut Child, out: &Path) {
    let start = SystemClock.instant();
    while !marker.exists() {
        if let Some(status) = inner.try_wait().unwrap() {
            panic!(
                "the inner test ended ({status}) before its devnet was up: {}",
                std::fs::read_to_string(out).unwrap_or_default()
            );
        }
        if SystemClock.since(start) > GUARD {
            let _ = inner.kill();
            panic!("hang guard: the inner test's devnet did not come up");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_scenario_killed_with_sigkill_leaves_no_daemon_behind() {
    build_daemons();
    // This test's own guard cleans up after a failure; it acts only when this test ends.
    let net = Devnet::new();
    let out = net.root().join("inner.log");
    let marker = net.root().join("inner-up");
    let mut inner = Command::new(std::env::current_exe().unwrap())
        .args([INNER, "--exact", "--ignored", "--nocapture"])
        .env(HANDOFF, net.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(net.root().join("inner.err")).unwrap())
        .spawn()
        .unwrap();
    wait_for(&marker, &mut inner, &out);

    let daemons = daemons(net.path());
    assert_eq!(daemons.len(), 2, "a registry and one node: {daemons:?}");
    for (pid, ports) in &daemons {
        assert!(alive(*pid), "daemon {pid} is not running before the kill");
        assert!(ports.iter().all(|p| bound(*p)), "{ports:?} not bound");
    }

    inner.kill().unwrap(); // SIGKILL: no destructor of the inner test runs.
    inner.wait().unwrap();
    let killed = SystemClock.instant();
    loop {
        let left: Vec<&(u32, Vec<u16>)> = daemons
            .iter()
            .filter(|(pid, ports)| alive(*pid) || ports.iter().any(|p| bound(*p)))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            SystemClock.since(killed) < GONE_WITHIN,
            "{GONE_WITHIN:?} after the test process was killed, (pid, ports) still there: \
             {left:?}; teardown log: {}",
            std::fs::read_to_string(teardown_log(&net)).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "every daemon gone and every port free {:?} after the SIGKILL",
        SystemClock.since(killed)
    );
}

/// The log of the inner test's guard (next to the devnet directory it was handed).
fn teardown_log(net: &Devnet) -> PathBuf {
    net.root().join("inner-teardown.log")
}

/// Run only by the test above (see the module docs).
#[test]
#[ignore = "run by a_scenario_killed_with_sigkill_leaves_no_daemon_behind"]
fn inner_starts_a_devnet_and_waits_to_be_killed() {
    let Some(dir) = std::env::var_os(HANDOFF).map(PathBuf::from) else {
        return;
    };
    let root = dir.parent().unwrap().to_path_buf();
    let _guard = common::TeardownGuard::start(&dir, &root.join("inner-teardown.log"));
    let dir_arg = dir.to_str().unwrap();
    let up = logged_devnet(&["up", "--detach", "--nodes", "1", "--dir", dir_arg]);
    ok(&up, "devnet up");
    std::fs::write(root.join("inner-up"), b"").unwrap();
    std::thread::sleep(GUARD);
    panic!("not killed within {GUARD:?}");
}
