#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Fault scenario of the registry (issue 12 §5) on a real devnet of 7 nodes (one swarm):
//! **the registry is down for a minute: the nodes keep serving, and a node restarted
//! meanwhile serves with the signed list it saved.**
//!
//! The registry is frozen with SIGSTOP rather than killed: its port still accepts connections
//! (the kernel's backlog) but nothing answers, the harder case for its callers, who must give up
//! on their own deadlines instead of getting a refusal. During the minute:
//! - alice sends bob a message through onion paths and bob receives it (clients built their
//!   paths before the outage);
//! - one node is killed with SIGKILL and started again by hand on its data directory (`devnet
//!   start-node` needs the registry): it must answer at once and, from its saved list, know its
//!   swarm: a store on it comes back signed by all 7 members, and every member serves it.
//!
//! Then the registry resumes, and the network must be whole again: every node registered and
//! serving the registry's current list, and a message sent afterwards arrives.

mod common;

use common::storage::{self, all_hashes, now_ms, rpc, signed_store, try_rpc};
use common::{GUARD, alice_and_bob, devnet_up, ok};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use umbra_crypto::{Identity, OsRandom};

/// How long the registry is away.
const OUTAGE: Duration = Duration::from_secs(60);
/// What `receive --wait` may wait for one message (seconds).
const WAIT: &str = "60";

fn pid_of(v: &Value) -> Pid {
    Pid::from_raw(i32::try_from(v["pid"].as_u64().unwrap()).unwrap())
}

/// A node process started by this test, stopped when dropped.
struct HandStarted(Child);

impl Drop for HandStarted {
    fn drop(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.0.id()).unwrap());
        let _ = kill(pid, Signal::SIGTERM);
        let start = SystemClock.instant();
        while self.0.try_wait().ok().flatten().is_none() {
            if SystemClock.since(start) > Duration::from_secs(10) {
                let _ = self.0.kill();
                let _ = self.0.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts the node whose devnet config is `config` as the devnet would, logging to `log`.
fn start_by_hand(config: &Path, log: &Path) -> HandStarted {
    let node = common::exe().with_file_name("umbra-node");
    let out = std::fs::File::create(log).unwrap();
    HandStarted(
        Command::new(node)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
    )
}

/// A node's operator `GET /status` (the list it serves), `None` while it does not answer.
async fn operator_status(http: &reqwest::Client, metrics_port: u64) -> Option<Value> {
    let resp = http
        .get(format!("http://127.0.0.1:{metrics_port}/status"))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

/// Waits until process `pid` (not a child of this one) is gone or a zombie: a node's store
/// stays locked until its process is.
fn wait_gone(pid: Pid) {
    let start = SystemClock.instant();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .map(|i| stat[i + 1..].trim_start().chars().next());
        if !matches!(state, Some(Some(c)) if c != 'Z') {
            return;
        }
        assert!(
            SystemClock.since(start) < Duration::from_secs(10),
            "{pid} outlived SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `receive --wait` as `user` until `text` arrives.
fn receive(user: &common::User, text: &str) {
    let start = SystemClock.instant();
    loop {
        let got = user.json(&["receive", "--wait", WAIT]);
        if got.as_array().unwrap().iter().any(|m| m["text"] == text) {
            return;
        }
        assert!(SystemClock.since(start) < GUARD, "{text:?} never arrived");
    }
}

#[test]
fn a_minute_without_the_registry_keeps_the_network_serving() {
    let (devnet, network) = devnet_up("7");
    let homes = tempfile::tempdir().unwrap();
    let pair = alice_and_bob(homes.path(), &network);
    ok(
        &pair
            .alice
            .run(&["send", &pair.b_id, "before the outage"], ""),
        "send before",
    );
    receive(&pair.bob, "before the outage");

    let before = devnet.status();
    let nodes = before["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 7);
    let victim = nodes[0].clone();
    let name = victim["name"].as_str().unwrap().to_owned();
    let victim_port = u16::try_from(victim["https_port"].as_u64().unwrap()).unwrap();
    let registry = pid_of(&before["registry"]);

    kill(registry, Signal::SIGSTOP).unwrap();
    let outage_began = SystemClock.instant();
    // Resumed however the test ends, so that teardown can stop it.
    struct Resume(Pid);
    impl Drop for Resume {
        fn drop(&mut self) {
            let _ = kill(self.0, Signal::SIGCONT);
        }
    }
    let resume = Resume(registry);

    // A client message through onion paths.
    ok(
        &pair
            .alice
            .run(&["send", &pair.b_id, "during the outage"], ""),
        "send during the outage",
    );
    receive(&pair.bob, "during the outage");

    // A node restarted meanwhile.
    kill(pid_of(&victim), Signal::SIGKILL).unwrap();
    wait_gone(pid_of(&victim));
    let config = devnet.path().join("nodes").join(&name).join("node.toml");
    let log = devnet.root().join(format!("{name}-by-hand.log"));
    let _node = start_by_hand(&config, &log);
    let me = Identity::generate(&mut OsRandom);
    let http = storage::client(Duration::from_secs(30));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = b"stored on a node restarted while the registry was away".to_vec();
    let stored = rt.block_on(async {
        let start = SystemClock.instant();
        loop {
            if let Ok((200, body)) = try_rpc(
                &http,
                victim_port,
                "store",
                signed_store(&me, &data, now_ms()),
            )
            .await
            {
                return body;
            }
            assert!(
                SystemClock.since(start) < Duration::from_secs(30),
                "the restarted node did not take a store within 30 s; its log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let signed_by = stored["swarm"].as_object().unwrap();
    assert_eq!(
        signed_by.len(),
        7,
        "the restarted node forwarded to its whole swarm from its saved list: {stored}"
    );
    let hash = stored["hash"].as_str().unwrap().to_owned();
    rt.block_on(async {
        for n in &nodes {
            let port = u16::try_from(n["https_port"].as_u64().unwrap()).unwrap();
            let held = all_hashes(&http, port, &me).await.unwrap();
            assert!(held.contains(&hash), "node {} lacks the store", n["name"]);
        }
        // And the restarted node serves a retrieve of another account's swarm data.
        let (code, _) = rpc(
            &http,
            victim_port,
            "retrieve",
            storage::signed_retrieve(&me, None, now_ms()),
        )
        .await;
        assert_eq!(code, 200);
    });

    let left = OUTAGE.saturating_sub(SystemClock.since(outage_began));
    std::thread::sleep(left);
    drop(resume);

    // The registry back: every node registered and serving its current list, the restarted one
    // included (the devnet does not know its new process, so its operator port is asked
    // directly); and the clients still talk.
    let metrics_port = victim["metrics_port"].as_u64().unwrap();
    let start = SystemClock.instant();
    loop {
        let s = devnet.status();
        let nodes = s["nodes"].as_array().unwrap();
        let others_healthy = nodes
            .iter()
            .filter(|n| n["name"] != name.as_str())
            .all(|n| n["healthy"] == true);
        let epoch = nodes.iter().find_map(|n| n["list_epoch"].as_u64());
        let hand = nodes.iter().find(|n| n["name"] == name.as_str()).unwrap();
        let hand_serving = rt.block_on(operator_status(&http, metrics_port));
        let hand_current = hand_serving
            .as_ref()
            .is_some_and(|v| v["list_epoch"].as_u64() >= epoch && v["knows_its_swarm"] == true);
        if others_healthy && hand["registered"] == true && hand_current {
            break;
        }
        assert!(
            SystemClock.since(start) < Duration::from_secs(60),
            "the network did not recover within 60 s of the registry's return: {s}; the restarted node: {hand_serving:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    ok(
        &pair
            .alice
            .run(&["send", &pair.b_id, "after the outage"], ""),
        "send after",
    );
    receive(&pair.bob, "after the outage");
}
