#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The client commands end to end on a real devnet (a registry and storage nodes as
//! processes, every message through onion paths): two users exchange messages, the first one
//! lands in requests, unsend removes a message on the other side, a second device restored
//! from the phrase sees the history, `umbra chat` sends typed lines, `umbra demo` reuses the
//! devnet.
//!
//! The daemons are other packages' binaries: they are built first with
//! `cargo build -p umbra-node -p umbra-registry` into this test binary's target directory
//! (a no-op when up to date). Every command runs under a generous hang guard; waiting for a
//! message is done by the CLI's own `receive --wait`, so nothing depends on machine speed.
//! A guard object runs `umbra devnet down` when the test ends, even by a failure.

mod common;

use common::{
    Devnet, GUARD, Pair, User, alice_and_bob, build_daemons, exe, finish, json, ok, umbra,
};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use serde_json::Value;

/// What `receive --wait` may wait for one message (seconds).
const WAIT: &str = "60";

impl User {
    /// `receive --wait` until a message with `text` arrives; returns it.
    fn receive_text(&self, text: &str) -> Value {
        for _ in 0..5 {
            let got = self.json(&["receive", "--wait", WAIT]);
            if let Some(m) = got.as_array().unwrap().iter().find(|m| m["text"] == text) {
                return m.clone();
            }
        }
        panic!("{text:?} never arrived");
    }
}

#[test]
fn two_users_chat_through_a_devnet() {
    build_daemons();
    let devnet = Devnet::new();
    let dir = devnet.arg().to_owned();
    ok(
        &umbra(
            &["devnet", "up", "--detach", "--nodes", "7", "--dir", &dir],
            &[],
            "",
        ),
        "devnet up",
    );
    let network = devnet.path().join("network.json");
    let homes = tempfile::tempdir().unwrap();
    let user = |name: &str| common::user(homes.path(), &network, name);
    let Pair {
        alice,
        bob,
        a_id,
        b_id,
        phrase,
    } = alice_and_bob(homes.path(), &network);

    // alice's first message is a request on bob's side.
    let sent = alice.json(&["send", &b_id, "hello bob"]);
    assert_eq!(sent["status"], "sent");
    let got = bob.receive_text("hello bob");
    assert_eq!(got["from"], a_id.as_str());
    assert_eq!(got["request"], true);
    assert_eq!(got["timestamp"], sent["timestamp"]);
    assert!(got["hash"].as_str().is_some());
    let requests = bob.json(&["requests"]);
    assert_eq!(requests[0]["text"], "hello bob");
    assert_eq!(bob.json(&["chats"]), serde_json::json!([]));

    // bob accepts, names her, answers.
    ok(&bob.run(&["accept", &a_id], ""), "accept");
    ok(
        &bob.run(&["contact", "rename", &a_id, "alice"], ""),
        "rename",
    );
    assert_eq!(bob.json(&["requests"]), serde_json::json!([]));
    let chats = bob.json(&["chats"]);
    assert_eq!(chats[0]["name"], "alice");
    assert_eq!(chats[0]["unread"], 1);
    let reply = bob.json(&["send", "alice", "hi alice"]);
    assert_eq!(reply["status"], "sent");
    let got = alice.receive_text("hi alice");
    assert_eq!(got["from"], b_id.as_str());
    assert_eq!(got["request"], false);
    let history = bob.json(&["history", "alice"]);
    let texts: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hello bob", "hi alice"]);
    assert_eq!(bob.json(&["chats"])[0]["unread"], 0, "history marks read");

    // Unsend: alice deletes a message, and it goes from bob's side too.
    let oops = alice.json(&["send", &b_id, "oops"]);
    bob.receive_text("oops");
    let ts = oops["timestamp"].as_u64().unwrap().to_string();
    ok(&alice.run(&["unsend", &ts], ""), "unsend");
    let start = SystemClock.instant();
    loop {
        ok(&bob.run(&["receive"], ""), "receive");
        let h = bob.json(&["history", "alice"]);
        if h.as_array().unwrap().iter().all(|m| m["text"] != "oops") {
            break;
        }
        assert!(
            SystemClock.since(start) < GUARD,
            "the unsend never reached bob"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // `umbra chat`: a typed line is sent.
    let chat = alice.run(&["chat", &b_id], "typed in chat\n/quit\n");
    ok(&chat, "chat");
    bob.receive_text("typed in chat");

    // `umbra chat` in a terminal: bob (a script, JSON lines) sees alice typing, then her line.
    ok(&alice.run(&["settings", "--typing", "on"], ""), "settings");
    terminal_chat(&alice, &bob, &b_id, &a_id);

    // A second device of alice's sees both directions of the conversation.
    let alice2 = user("alice2");
    let r = alice2.run(&["id", "restore", "--json"], &phrase);
    assert_eq!(json(&r, "restore")["session_id"], a_id.as_str());
    let start = SystemClock.instant();
    loop {
        ok(&alice2.run(&["receive"], ""), "receive");
        let h = alice2.json(&["history", &b_id]);
        let texts: Vec<String> = h
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect();
        if ["hello bob", "hi alice", "typed in chat"]
            .iter()
            .all(|t| texts.iter().any(|x| x == t))
        {
            assert!(!texts.iter().any(|x| x == "oops"), "unsent stays deleted");
            break;
        }
        assert!(
            SystemClock.since(start) < GUARD,
            "second device history: {texts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The demo reuses the running devnet.
    let demo = json(
        &umbra(
            &["demo", "--json", "--messages", "1", "--dir", &dir],
            &[],
            "",
        ),
        "demo",
    );
    assert_eq!(demo["devnet_reused"], true);
    assert_eq!(demo["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(demo["bob"]["saw"].as_array().unwrap().len(), 2);
}

/// Runs `umbra chat` for `alice` in a pseudo-terminal (raw mode, key by key) while `bob` runs
/// `umbra chat --json` on pipes: bob is told that alice is typing before her line arrives,
/// and alice's terminal shows the line she sent; Ctrl-C leaves with success.
fn terminal_chat(alice: &User, bob: &User, b_id: &str, a_id: &str) {
    use std::io::Read as _;
    use std::sync::{Arc, Mutex};

    let mut watcher = Command::new(exe());
    watcher
        .args(["chat", a_id, "--json"])
        .env("UMBRA_PROFILE", &bob.profile)
        .env("UMBRA_NETWORK", &bob.network)
        .env_remove("UMBRA_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut watcher = watcher.spawn().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    {
        let seen = seen.clone();
        let mut out = watcher.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    let wait_for = |what: &str, cond: &dyn Fn(&str) -> bool| {
        let start = SystemClock.instant();
        while !cond(&seen.lock().unwrap()) {
            assert!(
                SystemClock.since(start) < GUARD,
                "bob never saw {what}: {}",
                seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    let pty = nix::pty::openpty(None, None).unwrap();
    let mut child = Command::new(exe())
        .args(["chat", b_id])
        .env("UMBRA_PROFILE", &alice.profile)
        .env("UMBRA_NETWORK", &alice.network)
        .env_remove("UMBRA_PASSPHRASE")
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()))
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let screen = Arc::new(Mutex::new(String::new()));
    {
        let screen = screen.clone();
        let mut master = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with an error once the child has gone and the terminal is closed.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    let start = SystemClock.instant();
    while !screen.lock().unwrap().contains("> ") {
        assert!(
            SystemClock.since(start) < GUARD,
            "no prompt: {}",
            screen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for c in "typing".chars() {
        master.write_all(c.to_string().as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for("alice typing", &|s| {
        s.lines().any(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["typing"] == true && v["from"] == a_id)
        })
    });
    master.write_all(b" in a terminal\r").unwrap();
    wait_for("the line", &|s| {
        s.contains("\"text\":\"typing in a terminal\"")
    });
    let start = SystemClock.instant();
    while !screen.lock().unwrap().contains("me: typing in a terminal") {
        assert!(
            SystemClock.since(start) < GUARD,
            "alice's screen: {}",
            screen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    master.write_all(&[0x03]).unwrap(); // Ctrl-C
    let start = SystemClock.instant();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            SystemClock.since(start) < GUARD,
            "Ctrl-C did not end the chat"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{}", screen.lock().unwrap());
    watcher.stdin.take().unwrap().write_all(b"/quit\n").unwrap();
    assert!(finish(watcher, GUARD, "bob's chat").status.success());
}
