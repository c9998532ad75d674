#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! What the `umbra-node` binary prints, checked on real failures and a real start: a fatal
//! error is one line that names each cause once, and logs written to a pipe carry no colour
//! codes (a service manager or a log file would show them as garbage).

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use umbra_clock::{Clock as _, SystemClock};

fn node() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_umbra-node"));
    cmd.env_remove("UMBRA_NODE_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Runs the node to its exit and returns its standard error, checking that it failed.
fn failure(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "the node should have failed: {out:?}"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.starts_with("umbra-node: "), "{stderr:?}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in {stderr:?}");
    stderr
}

/// Asserts that no part of the `": "`-joined line is repeated (a cause printed twice).
fn assert_no_repeated_cause(line: &str) {
    let parts: Vec<&str> = line.trim_end().split(": ").collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(p),
            "{p:?} is printed twice in {line:?}"
        );
    }
}

#[test]
fn a_port_in_use_is_one_line_with_its_cause_once() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let line = failure(
        node()
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--metrics-listen", "127.0.0.1:0"]),
    );
    assert!(
        line.contains(&format!("binding the client listener on {addr}")),
        "{line:?}"
    );
    assert_eq!(line.matches("os error").count(), 1, "{line:?}");
    assert_no_repeated_cause(&line);
}

#[test]
fn a_missing_config_file_is_one_line_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let line = failure(node().arg("--config").arg(&path));
    assert!(
        line.contains(&format!("reading the config file {}", path.display())),
        "{line:?}"
    );
    assert_eq!(line.matches("os error").count(), 1, "{line:?}");
    assert_no_repeated_cause(&line);
}

#[test]
fn an_unreadable_data_directory_is_one_line_with_its_cause_once() {
    // A file where the data directory should be: creating the directory fails.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let line = failure(node().arg("--data-dir").arg(file.join("data")).args([
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]));
    assert_eq!(line.matches("os error").count(), 1, "{line:?}");
    assert_no_repeated_cause(&line);
}

#[test]
fn an_old_sqlite_store_is_refused_with_one_line_and_kept() {
    // A data directory of an earlier build: its SQLite message store must stop the node with
    // one line saying what it is and what to do, and stay as it was.
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join(umbra_node::node::LEGACY_DB_FILE);
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.resize(4096, 1);
    std::fs::write(&old, &bytes).unwrap();
    let line = failure(node().arg("--data-dir").arg(dir.path()).args([
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]));
    assert!(line.contains("old SQLite format"), "{line:?}");
    assert!(line.contains("move the file"), "{line:?}");
    assert_no_repeated_cause(&line);
    assert_eq!(std::fs::read(&old).unwrap(), bytes);
    assert!(!dir.path().join(umbra_node::node::DB_FILE).exists());
}

#[test]
fn a_malformed_registry_key_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let line = failure(
        node()
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--registry-url", "http://127.0.0.1:9"])
            .args(["--registry-pubkey", "not-a-key"])
            .args(["--public-ip", "127.0.0.1"]),
    );
    assert!(
        line.contains("registry_pubkey must be 64 hex digits"),
        "{line:?}"
    );
    assert_no_repeated_cause(&line);
}

#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = node()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--log-level", "info"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // The node logs its start at info level; read until that line (bounded by a deadline
    // through the reader thread, so a silent node fails the test instead of hanging it).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = SystemClock.instant() + Duration::from_secs(60);
    let mut lines = Vec::new();
    while lines.is_empty() && SystemClock.instant() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!lines.is_empty(), "the node logged nothing at info level");
    for l in &lines {
        assert!(
            !l.contains('\u{1b}'),
            "colour codes in a piped log line: {l:?}"
        );
        assert!(l.contains("INFO"), "{l:?}");
    }
}
