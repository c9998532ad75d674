#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Files end to end on a real devnet (registry, nodes and the attachment server as processes,
//! every request through onion paths): alice sends bob a 100 MB file, the upload is killed
//! half-way and resumed by running the same command again, bob's download is killed half-way
//! and resumed the same way, and the file bob saves has the SHA-256 of the one alice sent.
//! Memory stays flat: no run of the client reaches a peak RSS near the file's size.
//!
//! Half-way is read from the CLI's own `--json` progress events on standard error, so nothing
//! depends on machine speed. A guard object stops the devnet when the test ends, however.
//!
//! The clients leave from their own address, 127.0.0.2 (`--bind-address`), and the devnet logs
//! peer addresses in clear: the attachment server must have seen connections, none of them from
//! the clients' address (only exit nodes reach it), while the guards did see that address.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Devnet, GUARD, Pair, User, alice_and_bob, build_daemons, exe, logged_devnet, ok};
use serde_json::Value;
use umbra_clock::{Clock as _, SystemClock};

/// The file's size (issue 14): 96 chunks of 1 MiB of ciphertext.
const FILE_LEN: usize = 100_000_000;

/// The highest peak RSS (`VmHWM`) allowed to a client run, in KiB: well under the file's size,
/// so a client that held the file (or its blob) in memory fails.
const MAX_CLIENT_PEAK_KIB: u64 = 64 * 1024;

/// The clients' own address (every connection they make leaves from it).
const CLIENT_IP: &str = "127.0.0.2";
/// The global option that makes them use it.
const BIND: [&str; 2] = ["--bind-address", CLIENT_IP];

/// Peer addresses in the lines of `log` that contain `what` followed by ` peer=`.
fn peers(log: &str, what: &str) -> Vec<String> {
    let pat = format!("{what} peer=");
    log.lines()
        .filter_map(|l| {
            let at = l.find(&pat)? + pat.len();
            let addr = l[at..].split_whitespace().next()?;
            Some(addr.rsplit_once(':').map_or(addr, |(ip, _)| ip).to_owned())
        })
        .collect()
}

/// Writes a file that does not repeat (so no chunk equals another); returns its SHA-256.
fn write_file(path: &Path) -> String {
    use sha2::Digest as _;
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hash = sha2::Sha256::new();
    let mut block = Vec::with_capacity(1 << 16);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut left = FILE_LEN;
    while left > 0 {
        block.clear();
        while block.len() < (1 << 16) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            block.extend_from_slice(&x.to_le_bytes());
        }
        block.truncate(left.min(1 << 16));
        left -= block.len();
        hash.update(&block);
        out.write_all(&block).unwrap();
    }
    out.flush().unwrap();
    hex::encode(hash.finalize())
}

/// The SHA-256 of the file at `path`, read piece by piece.
fn sha256_file(path: &Path) -> String {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).unwrap();
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    hex::encode(hash.finalize())
}

/// Peak resident set size (`VmHWM`) of process `pid` in KiB, while it runs.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The progress events a run printed on standard error with `--json`.
fn progress_events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "progress")
        .collect()
}

/// The first event of `phase` with its `done` bytes.
fn first_done(events: &[Value], phase: &str) -> Option<u64> {
    events
        .iter()
        .find(|e| e["phase"] == phase)
        .and_then(|e| e["done"].as_u64())
}

/// How a watched run of the client ended.
struct Watched {
    /// Killed at half-way (else it ended by itself).
    killed: bool,
    /// Its standard output and error.
    out: std::process::Output,
    /// Its highest peak RSS seen, in KiB (`VmHWM`, read every 50 ms while it ran).
    peak_kib: u64,
}

impl User {
    /// Runs `umbra ARGS --json` as this user, watching its peak RSS; with `kill_at`, kills it
    /// once a progress event of that phase reaches half its total.
    fn watched(&self, args: &[&str], kill_at: Option<&str>) -> Watched {
        let mut child = Command::new(exe())
            .args(args)
            .arg("--json")
            .env("UMBRA_PROFILE", &self.profile)
            .env("UMBRA_NETWORK", &self.network)
            .env_remove("UMBRA_PASSPHRASE")
            .env_remove("UMBRA_TEST_CRASH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let (tx, half_way) = std::sync::mpsc::channel();
        let phase = kill_at.map(str::to_owned);
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let (Ok(v), Some(phase)) = (serde_json::from_str::<Value>(&line), &phase)
                    && v["phase"] == phase.as_str()
                    && let (Some(done), Some(total)) = (v["done"].as_u64(), v["total"].as_u64())
                    && done * 2 >= total
                    && done < total
                {
                    let _ = tx.send(());
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let start = SystemClock.instant();
        let (mut killed, mut peak_kib) = (false, 0);
        while child.try_wait().unwrap().is_none() {
            peak_kib = peak_kib.max(peak_rss_kib(pid).unwrap_or(0));
            if !killed && half_way.try_recv().is_ok() {
                let _ = child.kill();
                killed = true;
            }
            assert!(SystemClock.since(start) < GUARD, "hang guard: {args:?}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mut out = child.wait_with_output().unwrap();
        out.stderr = reader.join().unwrap().into_bytes();
        Watched {
            killed,
            out,
            peak_kib,
        }
    }
}

/// Fails unless `run`'s peak RSS is known and under [`MAX_CLIENT_PEAK_KIB`].
fn assert_flat(run: &Watched, what: &str) {
    assert!(run.peak_kib > 0, "{what}: no peak RSS read");
    assert!(
        run.peak_kib < MAX_CLIENT_PEAK_KIB,
        "{what}: peak RSS {} KiB for a {FILE_LEN}-byte file (limit {MAX_CLIENT_PEAK_KIB} KiB)",
        run.peak_kib
    );
    eprintln!("{what}: peak RSS {:.1} MiB", run.peak_kib as f64 / 1024.0);
}

#[test]
fn a_file_crosses_the_devnet_and_interrupted_transfers_resume() {
    std::net::TcpListener::bind((CLIENT_IP, 0)).expect("127.0.0.2 cannot be bound here");
    build_daemons();
    let devnet = Devnet::new();
    ok(
        &logged_devnet(&["up", "--detach", "--nodes", "7", "--dir", devnet.arg()]),
        "devnet up",
    );
    let network = devnet.path().join("network.json");
    let homes = tempfile::tempdir().unwrap();
    let Pair {
        alice,
        bob,
        a_id,
        b_id,
        ..
    } = alice_and_bob(homes.path(), &network);
    let file = homes.path().join("holiday.bin");
    let sha256 = write_file(&file);
    let file_arg = file.to_str().unwrap();

    // The upload is killed half-way …
    let send = [
        "send",
        b_id.as_str(),
        "--file",
        file_arg,
        "--caption",
        "look",
        BIND[0],
        BIND[1],
    ];
    let run = alice.watched(&send, Some("uploading"));
    assert!(
        run.killed,
        "the upload finished before it could be interrupted"
    );
    assert_flat(&run, "send, killed half-way");
    // … and the same command resumes it: its first upload event starts past zero.
    let run = alice.watched(&send, None);
    assert_flat(&run, "send, resumed");
    let out = run.out;
    let sent: Value = serde_json::from_str(&ok(&out, "send --file")).unwrap();
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["text"], "look");
    let events = progress_events(&String::from_utf8_lossy(&out.stderr));
    let resumed_from = first_done(&events, "uploading").unwrap();
    assert!(resumed_from > 0, "the upload started over: {events:?}");

    // bob receives the message with its file.
    let start = SystemClock.instant();
    let listed = loop {
        ok(
            &bob.run(&["receive", "--wait", "30", BIND[0], BIND[1]], ""),
            "receive",
        );
        let list = bob.json(&["attachments", &a_id]);
        if let Some(f) = list.as_array().unwrap().first() {
            break f.clone();
        }
        assert!(
            SystemClock.since(start) < GUARD,
            "the file's message never arrived"
        );
    };
    assert_eq!(listed["name"], "holiday.bin");
    assert_eq!(listed["size"], FILE_LEN as u64);
    assert_eq!(listed["state"], "available");
    let id = listed["message_id"].as_i64().unwrap().to_string();

    // The download is killed half-way, then resumed.
    let saved = homes.path().join("saved.bin");
    let download = [
        "download",
        id.as_str(),
        "--out",
        saved.to_str().unwrap(),
        BIND[0],
        BIND[1],
    ];
    let run = bob.watched(&download, Some("downloading"));
    assert!(
        run.killed,
        "the download finished before it could be interrupted"
    );
    assert_flat(&run, "download, killed half-way");
    assert!(!saved.exists(), "a partial download is never exposed");
    let run = bob.watched(&download, None);
    assert_flat(&run, "download, resumed");
    let out = run.out;
    let done: Value = serde_json::from_str(&ok(&out, "download")).unwrap();
    assert_eq!(done["size"], FILE_LEN as u64);
    let events = progress_events(&String::from_utf8_lossy(&out.stderr));
    assert!(
        first_done(&events, "downloading").unwrap() > 0,
        "the download started over: {events:?}"
    );
    assert_eq!(sha256_file(&saved), sha256);
    let list = bob.json(&["attachments", &a_id]);
    assert_eq!(list[0]["state"], "downloaded");

    // Who saw the clients' address: the guards, never the attachment server.
    let logs = devnet.path().join("logs");
    let server = std::fs::read_to_string(logs.join("attachments.log")).unwrap();
    let seen = peers(&server, "connection");
    assert!(
        !seen.is_empty(),
        "the server logged no connection: {server}"
    );
    assert!(
        seen.iter().all(|ip| ip != CLIENT_IP),
        "the attachment server saw the client's address: {seen:?}"
    );
    let guards_saw_it = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("node-"))
        .any(|e| {
            let log = std::fs::read_to_string(e.path()).unwrap_or_default();
            peers(&log, "request").iter().any(|ip| ip == CLIENT_IP)
        });
    assert!(
        guards_saw_it,
        "no node saw {CLIENT_IP}: the clients did not bind to it"
    );
}
