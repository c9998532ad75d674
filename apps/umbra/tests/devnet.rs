#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `umbra devnet` end to end, with the real `umbra-registry` and `umbra-node` processes.
//!
//! The daemons belong to other packages, and cargo builds other packages' binaries for a test
//! only through artifact dependencies, which stable cargo does not have. [`daemons`]
//! therefore runs `cargo build -p umbra-node -p umbra-registry -p umbra-attachments` once per
//! test process, into the target directory and profile of this test's `umbra` binary (skipped
//! under `cargo xtask test`, whose workspace build made them; see `common`), and the CLI is pointed at them with `UMBRA_NODE_BIN` /
//! `UMBRA_REGISTRY_BIN` (it finds `umbra-attachments` beside itself).
//!
//! Every command runs under a hang guard (killed and failed after a generous limit); no
//! assertion depends on how fast the machine is. A teardown guard process stops the devnet
//! when a test ends, even by a failure or a SIGKILL, so no daemon outlives the test.

mod common;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use serde_json::{Value, json};

/// Hang guard for one CLI command (a devnet start waits for its own, shorter, --timeout).
const COMMAND_GUARD: Duration = Duration::from_secs(240);
/// Hang guard for waiting on the registry to reflect a change.
const CHANGE_GUARD: Duration = Duration::from_secs(90);

fn umbra_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_umbra"))
}

/// Runs `cmd` to completion, killing it and failing the test if it outlives `guard`.
fn run_guarded(mut cmd: Command, guard: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = SystemClock.instant() + guard;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if SystemClock.instant() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hang guard: {what} still running after {guard:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Builds the daemons once (see the module docs; skipped under `cargo xtask test`, whose
/// workspace build made them) and returns (node, registry) paths.
fn daemons() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        common::build_daemons();
        let profile_dir = umbra_bin().parent().unwrap().to_path_buf();
        let suffix = std::env::consts::EXE_SUFFIX;
        let node = profile_dir.join(format!("umbra-node{suffix}"));
        let registry = profile_dir.join(format!("umbra-registry{suffix}"));
        assert!(
            node.is_file() && registry.is_file(),
            "daemons not found in {profile_dir:?}"
        );
        (node, registry)
    })
}

/// Runs `umbra ARGS` (with the daemons' paths set when `with_daemons`).
fn umbra(args: &[&str], with_daemons: bool) -> Output {
    let mut cmd = Command::new(umbra_bin());
    cmd.args(args).env_remove("UMBRA_DEVNET_DIR");
    if with_daemons {
        let (node, registry) = daemons();
        cmd.env("UMBRA_NODE_BIN", node)
            .env("UMBRA_REGISTRY_BIN", registry);
    }
    run_guarded(cmd, COMMAND_GUARD, &format!("umbra {}", args.join(" ")))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `umbra ARGS`, failing the test with its output unless it succeeds.
fn umbra_ok(args: &[&str]) -> String {
    let out = umbra(args, true);
    assert!(
        out.status.success(),
        "umbra {} failed:\nstdout: {}\nstderr: {}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A devnet directory that is torn down when the test ends, however it ends (see
/// [`common::Devnet`]).
struct DevnetDir {
    net: common::Devnet,
}

impl DevnetDir {
    fn new() -> DevnetDir {
        DevnetDir {
            net: common::Devnet::new(),
        }
    }

    fn path(&self) -> &Path {
        self.net.path()
    }

    fn arg(&self) -> &str {
        self.net.arg()
    }

    /// Processes (but the teardown guard, which names the directory too) whose command line
    /// names the devnet directory.
    fn left_behind(&self) -> Vec<String> {
        let guard = format!("{}: ", self.net.guard_pid());
        processes_mentioning(self.arg())
            .into_iter()
            .filter(|p| !p.starts_with(&guard))
            .collect()
    }

    fn status(&self) -> Value {
        let out = umbra_ok(&["devnet", "status", "--json", "--dir", self.arg()]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}: {out}"))
    }

    /// Polls `status --json` until `done` holds (hang guard only: no timing assertion).
    fn wait_status(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = SystemClock.instant() + CHANGE_GUARD;
        loop {
            let s = self.status();
            if done(&s) {
                return s;
            }
            assert!(
                SystemClock.instant() < deadline,
                "hang guard: {what} did not happen within {CHANGE_GUARD:?}; last status: {s:#}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn node_by_key<'a>(status: &'a Value, key: &str) -> &'a Value {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["pubkey_ed25519"] == key)
        .unwrap_or_else(|| panic!("node {key} not in status"))
}

/// Swarm id → member count, from `status --json`'s nodes.
fn swarm_sizes(status: &Value) -> std::collections::BTreeMap<u64, usize> {
    let mut m = std::collections::BTreeMap::new();
    for n in status["nodes"].as_array().unwrap() {
        if let Some(id) = n["swarm_id"].as_u64() {
            *m.entry(id).or_insert(0) += 1;
        }
    }
    m
}

/// A raw HTTP/1.1 POST of a JSON body to `http://127.0.0.1:PORT/PATH`, read to the end.
fn post_json(url: &str, body: &Value) -> Value {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.to_string();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let resp = text(&resp);
    let (head, payload) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
    serde_json::from_str(payload).unwrap()
}

/// Whether `pid` names a live (not zombie) process.
fn pid_running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| !s[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Processes (not zombies) whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = text(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rfind(')')
                    .map(|i| s[i + 1..].trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if !zombie && cmdline.contains(needle) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

#[test]
fn a_missing_daemon_binary_is_one_line_saying_what_to_build() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("net");
    let out = Command::new(umbra_bin())
        .args(["devnet", "up", "--detach", "--dir", dir.to_str().unwrap()])
        .env("UMBRA_REGISTRY_BIN", "/bin/sh")
        .env("UMBRA_NODE_BIN", d.path().join("no-such-node"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("UMBRA_NODE_BIN"), "{err}");
    assert!(
        err.contains("cargo build --release -p umbra-node -p umbra-registry"),
        "{err}"
    );
    assert!(!dir.exists(), "nothing is created when a binary is missing");
}

#[test]
fn commands_on_a_directory_without_devnet_say_how_to_start_one() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    for cmd in [
        vec!["devnet", "status", "--dir", dir],
        vec!["devnet", "down", "--dir", dir],
        vec!["devnet", "stop-node", "abcdef0123", "--dir", dir],
    ] {
        let out = umbra(&cmd, false);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("no devnet in"), "{err}");
        assert!(err.contains("umbra devnet up --dir"), "{err}");
    }
    let out = umbra(&["devnet", "status", "--json", "--dir", dir], false);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("no devnet in"), "{v}");
}

#[test]
fn a_devnet_of_14_nodes_forms_two_swarms_reacts_to_a_stopped_node_and_tears_down() {
    let net = DevnetDir::new();
    let summary = umbra_ok(&[
        "devnet",
        "up",
        "--nodes",
        "14",
        "--detach",
        "--timeout",
        "120",
        "--dir",
        net.arg(),
    ]);
    assert!(summary.contains("14 node(s) in 2 swarm(s)"), "{summary}");

    // network.json: what clients read.
    let network: Value =
        serde_json::from_slice(&std::fs::read(net.path().join("network.json")).unwrap()).unwrap();
    let seed_url = network["seed_url"].as_str().unwrap().to_owned();
    assert!(seed_url.starts_with("http://127.0.0.1:") && seed_url.ends_with("/json_rpc"));
    let registry_pubkey = network["registry_pubkey"].as_str().unwrap();
    assert_eq!(registry_pubkey.len(), 64);
    assert!(registry_pubkey.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(network["nodes"].as_array().unwrap().len(), 14);
    let attachments_url = network["attachment_server"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        attachments_url.starts_with("http://127.0.0.1:"),
        "{network}"
    );
    let attachments_key = network["attachment_server"]["x25519_pubkey"]
        .as_str()
        .unwrap();
    assert_eq!(attachments_key.len(), 64);
    assert!(attachments_key.chars().all(|c| c.is_ascii_hexdigit()));

    // status --json: every node healthy, two swarms of 7, as the registry itself says.
    let status = net.status();
    assert_eq!(status["registry"]["seed_url"], seed_url.as_str());
    assert!(status["registry"]["pid"].as_u64().is_some());
    let att = &status["attachment_server"];
    assert_eq!(att["url"], attachments_url.as_str());
    assert_eq!(att["x25519_pubkey"], attachments_key);
    assert_eq!(att["healthy"], true, "{att}");
    assert!(att["pid"].as_u64().is_some(), "{att}");
    let table = umbra_ok(&["devnet", "status", "--dir", net.arg()]);
    assert!(
        table.contains(&format!(
            "{attachments_url}  key {attachments_key}  healthy"
        )),
        "{table}"
    );
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 14);
    // Health is each daemon's own grpc.health.v1 (a node's over TLS, checked against its key).
    assert_eq!(
        status["registry"]["grpc_health"],
        json!({"state": "serving"}),
        "{status}"
    );
    for n in nodes {
        assert_eq!(n["healthy"], true, "{n}");
        assert_eq!(n["health"], json!({"state": "serving"}), "{n}");
        assert!(n["pid"].as_u64().is_some(), "{n}");
        assert!(n["https_port"].as_u64().is_some(), "{n}");
        assert_eq!(n["pubkey_ed25519"].as_str().unwrap().len(), 64, "{n}");
    }
    let sizes = swarm_sizes(&status);
    assert_eq!(
        sizes.values().copied().collect::<Vec<_>>(),
        vec![7, 7],
        "{sizes:?}"
    );
    let seed = post_json(
        &seed_url,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "get_n_service_nodes",
                "params": {"active_only": true, "fields": ["pubkey_ed25519", "swarm_id"]}}),
    );
    let states = seed["result"]["service_node_states"].as_array().unwrap();
    assert_eq!(states.len(), 14);
    for s in states {
        let n = node_by_key(&status, s["pubkey_ed25519"].as_str().unwrap());
        assert_eq!(n["swarm_id"], s["swarm_id"], "status and registry disagree");
    }

    // Starting twice in the same directory is refused in one line.
    let again = umbra(&["devnet", "up", "--detach", "--dir", net.arg()], true);
    assert!(!again.status.success());
    let err = text(&again.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("already running"), "{err}");

    // Stop one node: it leaves its swarm, which shrinks to 6.
    let victim = nodes[0].clone();
    let key = victim["pubkey_ed25519"].as_str().unwrap().to_owned();
    let old_swarm = victim["swarm_id"].as_u64().unwrap();
    let victim_pid = victim["pid"].as_u64().unwrap();
    umbra_ok(&["devnet", "stop-node", &key, "--dir", net.arg()]);
    assert!(
        !pid_running(victim_pid),
        "stop-node returned with the node still running"
    );
    let after_stop = net.wait_status("the stopped node leaving its swarm", |s| {
        let n = node_by_key(s, &key);
        n["running"] == false
            && n["swarm_id"].is_null()
            && swarm_sizes(s).get(&old_swarm) == Some(&6)
    });
    assert_eq!(node_by_key(&after_stop, &key)["healthy"], false);
    assert_eq!(swarm_sizes(&after_stop).values().sum::<usize>(), 13);

    // Start it again: new nodes go to the smallest swarm, so it rejoins its old one.
    umbra_ok(&["devnet", "start-node", &key, "--dir", net.arg()]);
    let after_start = net.wait_status("the restarted node joining a swarm", |s| {
        node_by_key(s, &key)["healthy"] == true && swarm_sizes(s).values().sum::<usize>() == 14
    });
    assert_eq!(
        node_by_key(&after_start, &key)["swarm_id"].as_u64(),
        Some(old_swarm)
    );

    // Tear down: nothing of this devnet is left running.
    let pids: Vec<u64> = [&after_start["registry"], &after_start["attachment_server"]]
        .into_iter()
        .chain(after_start["nodes"].as_array().unwrap())
        .filter_map(|p| p["pid"].as_u64())
        .collect();
    assert_eq!(pids.len(), 16);
    let down = umbra_ok(&["devnet", "down", "--dir", net.arg()]);
    assert!(
        down.contains("stopped 14 node(s), the registry and the attachment server"),
        "{down}"
    );
    let alive: Vec<u64> = pids.into_iter().filter(|p| pid_running(*p)).collect();
    assert!(alive.is_empty(), "still running after down: {alive:?}");
    let left = net.left_behind();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let status = net.status();
    assert_eq!(status["registry"]["running"], false);
    assert_eq!(status["attachment_server"]["running"], false);
    assert!(
        status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["running"] == false)
    );
    let again = umbra_ok(&["devnet", "down", "--dir", net.arg()]);
    assert!(again.contains("nothing was running"), "{again}");
}

#[test]
fn a_foreground_devnet_stops_everything_on_ctrl_c() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::io::BufRead as _;

    let net = DevnetDir::new();
    let (node, registry) = daemons();
    let mut child = Command::new(umbra_bin())
        .args([
            "devnet",
            "up",
            "--nodes",
            "5",
            "--timeout",
            "120",
            "--dir",
            net.arg(),
        ])
        .env("UMBRA_NODE_BIN", node)
        .env("UMBRA_REGISTRY_BIN", registry)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read its output on a thread until it says the network is up (or it ends).
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("Press Ctrl-C") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let up = rx.recv_timeout(COMMAND_GUARD).is_ok();
    if !up {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "hang guard: the foreground devnet did not come up: {}",
            reader.join().unwrap()
        );
    }
    let status = net.status();
    assert_eq!(
        status["supervisor_pid"].as_u64(),
        Some(u64::from(child.id()))
    );
    assert!(
        status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["healthy"] == true),
        "{status:#}"
    );

    // Ctrl-C in a terminal is SIGINT to the foreground process group, which holds only the CLI
    // (the daemons run in their own groups); the CLI must stop them all.
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGINT,
    )
    .unwrap();
    let deadline = SystemClock.instant() + COMMAND_GUARD;
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if SystemClock.instant() >= deadline {
            let _ = child.kill();
            panic!("hang guard: the foreground devnet did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap();
    assert!(exit.success(), "{exit}: {out}");
    assert!(
        out.contains("stopped 5 node(s), the registry and the attachment server"),
        "{out}"
    );
    let left = net.left_behind();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let status = net.status();
    assert!(status["supervisor_pid"].is_null());
    assert_eq!(status["registry"]["running"], false);
}
