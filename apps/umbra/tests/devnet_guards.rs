#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! One profile, many runs of the real `umbra` binary (one process per command, as a user
//! types them), on a real devnet: every run enters the network through the same two guards.
//!
//! Seen from outside the client: the 7 nodes run with `UMBRA_DEVNET_NODE_LOG=…,umbra_node=debug`
//! and log each onion request they peel with its hop number (`hop=Some(1)`: the edge, the
//! node the client connected to). After three `umbra paths` and six `umbra send`, exactly two
//! nodes have ever been an edge. `umbra paths --json` shows the same two guards each time, and
//! that none was chosen after the first run.
//!
//! The daemons are built first (as in devnet_onion.rs); a guard object runs `umbra devnet
//! down` at the end.

mod common;

use std::path::Path;

use common::{Devnet, alice_and_bob, build_daemons, logged_devnet};

/// The value of `key=` in a log line (without quotes).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=");
    let at = line.find(&pat)? + pat.len();
    let rest = &line[at..];
    let end = rest.find(' ').unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

/// The nodes (log file names) that were the first hop of an onion request: `hop=Some(1)` is
/// the edge, the node the client connected to (`umbra_onion::Replier::hop_no`).
fn entry_nodes(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut entries = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir.join("logs")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.starts_with("node-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if text
            .lines()
            .any(|l| l.contains(" onion request peer=") && field(l, "hop") == Some("Some(1)"))
        {
            entries.insert(name);
        }
    }
    entries
}

#[test]
fn the_cli_enters_the_network_through_the_same_two_guards_every_run() {
    build_daemons();
    let net = Devnet::new();
    let dir = net.arg().to_owned();
    let up = logged_devnet(&["up", "--detach", "--nodes", "7", "--dir", &dir]);
    assert!(
        up.status.success(),
        "devnet up failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let homes = tempfile::tempdir().unwrap();
    let pair = alice_and_bob(homes.path(), &net.path().join("network.json"));
    // Nothing has gone through the network yet (profiles are made offline).
    assert!(entry_nodes(net.path()).is_empty());
    // One process per command, as a user runs them.
    let mut seen_guards = Vec::new();
    for i in 0..6 {
        if i % 2 == 0 {
            let paths = pair.alice.json(&["paths"]);
            let guards: Vec<String> = paths["guards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["node"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(guards.len(), 2, "{paths}");
            assert_eq!(paths["paths"].as_array().unwrap().len(), 2, "{paths}");
            for p in paths["paths"].as_array().unwrap() {
                let first = p["nodes"][0]["node"].as_str().unwrap();
                assert!(guards.iter().any(|g| g == first), "{paths}");
            }
            assert_eq!(
                paths["guards_chosen_now"],
                if i == 0 { 2 } else { 0 },
                "run {i}: {paths}"
            );
            seen_guards.push(guards);
        }
        let sent = pair
            .alice
            .json(&["send", &pair.b_id, &format!("message {i}")]);
        assert_eq!(sent["status"], "sent", "{sent}");
    }
    assert!(
        seen_guards.windows(2).all(|w| w[0] == w[1]),
        "{seen_guards:?}"
    );
    // Seen from outside the client: the nodes' own logs of who was the first hop.
    let entries = entry_nodes(net.path());
    assert_eq!(
        entries.len(),
        2,
        "nine runs of one profile entered the network through {entries:?}"
    );
    let r = pair.alice.run(&["paths"], "");
    let text = String::from_utf8(r.stdout).unwrap();
    assert!(text.starts_with("Entry nodes (guards;"), "{text}");
    assert_eq!(text.matches("→ entry node").count(), 2, "{text}");
}
