//! `umbra demo`: the whole messenger in one command.
//!
//! 1. Reuses the devnet of `--dir` if it is healthy, else starts it with
//!    `umbra devnet up --detach` (this same binary, so that the devnet's output and errors are
//!    its own and `--json` stays clean).
//! 2. Creates two identities, alice and bob, in temporary profiles (deleted at the end).
//! 3. alice writes to bob (her first message reaches bob as a message request, which bob
//!    accepts), bob answers, for `--messages` rounds; every message goes through onion paths
//!    into the other's swarm, and the time from `send` returning to the other side having it
//!    is measured.
//! 4. Prints what each side saw and the latencies.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};
use umbra_crypto::OsRandom;
use umbra_messenger::{Event, KdfParams, Message, Messenger, Profile};
use umbra_net::NetworkConfig;

use super::DemoArgs;
use super::context::{self, Online};
use super::render::{self, message_json, print_json};

/// Runs the demo.
pub(crate) async fn run(a: &DemoArgs) -> anyhow::Result<()> {
    let json = a.g.json;
    let progress = |line: &str| {
        if !json {
            println!("{line}");
        }
    };
    let dir =
        std::path::absolute(&a.dir).with_context(|| format!("resolving {}", a.dir.display()))?;
    let reused = devnet_is_healthy(&dir).await;
    if reused {
        progress(&format!("Using the devnet running in {}", dir.display()));
    } else {
        progress(&format!(
            "Starting a devnet in {} (`umbra devnet up --detach`)…",
            dir.display()
        ));
        start_devnet(&dir).await?;
    }
    let network_path = dir.join("network.json");
    let network = NetworkConfig::load(&network_path)?;

    let tmp = tempfile::Builder::new()
        .prefix("umbra-demo-")
        .tempdir()
        .context("creating temporary profiles")?;
    let alice = identity(tmp.path(), "alice", &network_path, &network)?;
    let bob = identity(tmp.path(), "bob", &network_path, &network)?;
    let (am, bm) = (alice.messenger.clone(), bob.messenger.clone());
    progress(&format!("alice is {}", am.session_id()));
    progress(&format!("bob   is {}", bm.session_id()));

    let started = SystemClock.instant();
    alice.connect_or_fail().await?;
    bob.connect_or_fail().await?;
    progress(&format!(
        "Both have a verified node list and tested onion paths ({} ms)\n",
        SystemClock.since(started).as_millis()
    ));

    let timeout = Duration::from_secs(a.timeout);
    let mut deliveries = Vec::new();
    for round in 1..=a.messages {
        let text = format!("Hello bob, this is alice ({round}/{})", a.messages);
        let (ms, request) = deliver(&am, &bm, &text, timeout).await?;
        progress(&format!(
            "alice → bob    {ms:>5} ms  {text:?}{}",
            if request {
                "  (a message request: bob accepts it)"
            } else {
                ""
            }
        ));
        deliveries.push(json!({"from": "alice", "to": "bob", "text": text, "latency_ms": ms, "request": request}));
        if request {
            bm.accept_request(&am.session_id()).await?;
        }
        let text = format!("Hi alice, bob here ({round}/{})", a.messages);
        let (ms, _) = deliver(&bm, &am, &text, timeout).await?;
        progress(&format!("bob   → alice  {ms:>5} ms  {text:?}"));
        deliveries.push(
            json!({"from": "bob", "to": "alice", "text": text, "latency_ms": ms, "request": false}),
        );
    }

    let mut lat: Vec<u64> = deliveries
        .iter()
        .filter_map(|d| d["latency_ms"].as_u64())
        .collect();
    lat.sort_unstable();
    let median = lat.get(lat.len() / 2).copied().unwrap_or(0);
    let (min, max) = (
        lat.first().copied().unwrap_or(0),
        lat.last().copied().unwrap_or(0),
    );
    let a_hist = am.history(&bm.session_id())?;
    let b_hist = bm.history(&am.session_id())?;
    if json {
        print_json(&json!({
            "devnet": dir.display().to_string(),
            "devnet_reused": reused,
            "alice": { "session_id": am.session_id().to_hex(), "saw": list(&a_hist) },
            "bob": { "session_id": bm.session_id().to_hex(), "saw": list(&b_hist) },
            "deliveries": deliveries,
            "latency_ms": { "min": min, "median": median, "max": max },
        }));
    } else {
        for (who, m, hist) in [("alice", &am, &a_hist), ("bob", &bm, &b_hist)] {
            println!("\nWhat {who} saw:");
            for msg in hist {
                println!("  {}", render::message_line(m, msg));
            }
        }
        println!(
            "\nDelivery latency (send returned → shown on the other side), {} messages: min {min} ms, median {median} ms, max {max} ms",
            lat.len()
        );
        println!(
            "Chat yourself: `umbra id new --profile DIR`, then `umbra chat SESSION_ID --profile DIR --network {}`",
            network_path.display()
        );
    }
    Ok(())
}

fn list(msgs: &[Message]) -> Value {
    Value::Array(msgs.iter().map(|m| message_json(m, false)).collect())
}

/// A new identity named `name` in `base/name`, connected to the network.
fn identity(
    base: &Path,
    name: &str,
    path: &Path,
    network: &NetworkConfig,
) -> anyhow::Result<Online> {
    let (profile, _phrase) =
        Profile::create(&base.join(name), None, KdfParams::default(), &mut OsRandom)?;
    let online = context::online_with(profile, path, network, None)?;
    online.messenger.set_display_name(name)?;
    Ok(online)
}

/// Sends `text` from `from` to `to` and polls `to` until it has it. Returns the time from
/// `send` returning to the message being saved on the other side, in ms, and whether it
/// arrived as a message request.
async fn deliver(
    from: &Arc<Messenger>,
    to: &Arc<Messenger>,
    text: &str,
    timeout: Duration,
) -> anyhow::Result<(u64, bool)> {
    let sent = from.send_text(&to.session_id(), text).await?;
    let t0 = SystemClock.instant();
    if sent.status != umbra_messenger::MessageStatus::Sent {
        bail!(
            "the swarm did not acknowledge the message ({:?})",
            sent.status
        );
    }
    loop {
        let left = timeout.saturating_sub(SystemClock.since(t0));
        for e in to.receive_wait(left).await? {
            if let Event::Message { message, request } = e
                && message.author == from.session_id()
                && message.sent_ms == sent.sent_ms
            {
                let ms = u64::try_from(SystemClock.since(t0).as_millis()).unwrap_or(u64::MAX);
                return Ok((ms, request));
            }
        }
        if SystemClock.since(t0) > timeout {
            return Err(anyhow!(
                "the message did not arrive within {} s",
                timeout.as_secs()
            ));
        }
    }
}

/// Whether `umbra devnet status` says the devnet in `dir` is running and every node healthy.
async fn devnet_is_healthy(dir: &Path) -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let out = tokio::process::Command::new(exe)
        .args(["devnet", "status", "--json", "--dir"])
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    let Ok(out) = out else { return false };
    let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) else {
        return false;
    };
    let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
    out.status.success()
        && v["registry"]["healthy"].as_bool() == Some(true)
        && !nodes.is_empty()
        && nodes.iter().all(|n| n["healthy"].as_bool() == Some(true))
}

/// `umbra devnet up --detach --dir DIR`, its output kept out of ours.
async fn start_devnet(dir: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the umbra binary")?;
    let out = tokio::process::Command::new(exe)
        .args(["devnet", "up", "--detach", "--dir"])
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("running `umbra devnet up`")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().last().unwrap_or("it failed").trim();
        let line = line.strip_prefix("umbra: ").unwrap_or(line);
        bail!("starting the devnet: {line}");
    }
    Ok(())
}
