#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Files end to end on a real devnet (registry, nodes and the attachment server as processes,
//! every request through onion paths): alice sends bob a 6 MB file, the upload is killed
//! half-way and resumed by running the same command again, bob's download is killed half-way
//! and resumed the same way, and the file bob saves has the SHA-256 of the one alice sent.
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

use common::{
    Devnet, GUARD, Pair, User, alice_and_bob, build_daemons, exe, finish, logged_devnet, ok,
};
use serde_json::Value;
use umbra_clock::{Clock as _, SystemClock};

/// The file's size: six 1 MiB chunks of ciphertext, a few seconds through onion paths in a
/// debug build.
const FILE_LEN: usize = 6_000_000;

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

/// A file that does not repeat (so no chunk equals another).
fn write_file(path: &Path) -> Vec<u8> {
    let mut data = Vec::with_capacity(FILE_LEN);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < FILE_LEN {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(FILE_LEN);
    std::fs::write(path, &data).unwrap();
    data
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
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

impl User {
    /// Runs `umbra ARGS --json` as this user and kills it once a progress event of `phase`
    /// reaches half its total. Returns whether it was killed (else it ended by itself).
    fn kill_half_way(&self, args: &[&str], phase: &str) -> bool {
        let mut child = Command::new(exe())
            .args(args)
            .arg("--json")
            .env("UMBRA_PROFILE", &self.profile)
            .env("UMBRA_NETWORK", &self.network)
            .env_remove("UMBRA_PASSPHRASE")
            .env_remove("UMBRA_TEST_CRASH")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let start = SystemClock.instant();
        let mut killed = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let (done, total) = (v["done"].as_u64(), v["total"].as_u64());
            if v["phase"] == phase
                && let (Some(done), Some(total)) = (done, total)
                && done * 2 >= total
                && done < total
            {
                let _ = child.kill();
                killed = true;
                break;
            }
            assert!(SystemClock.since(start) < GUARD, "hang guard: {args:?}");
        }
        let _ = finish(child, GUARD, &format!("umbra {}", args.join(" ")));
        killed
    }
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
    let data = write_file(&file);
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
    assert!(
        alice.kill_half_way(&send, "uploading"),
        "the upload finished before it could be interrupted"
    );
    // … and the same command resumes it: its first upload event starts past zero.
    let out = alice.run(&[&send[..], &["--json"]].concat(), "");
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
    assert!(
        bob.kill_half_way(&download, "downloading"),
        "the download finished before it could be interrupted"
    );
    assert!(!saved.exists(), "a partial download is never exposed");
    let out = bob.run(&[&download[..], &["--json"]].concat(), "");
    let done: Value = serde_json::from_str(&ok(&out, "download")).unwrap();
    assert_eq!(done["size"], FILE_LEN as u64);
    let events = progress_events(&String::from_utf8_lossy(&out.stderr));
    assert!(
        first_done(&events, "downloading").unwrap() > 0,
        "the download started over: {events:?}"
    );
    let got = std::fs::read(&saved).unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&data));
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
