//! Swarm mode, `--catch-up N`: time and bytes for a member that was down while N messages were
//! stored to catch up by anti-entropy alone (issue 12 §3).
//!
//! Method. Once the swarm has formed, the parent asks the child to stop the last member
//! gracefully (it leaves the registry, as an operator's restart does; the others follow the
//! list without it, so no write is forwarded to it and nothing fails). Then N signed stores go
//! to the entry node exactly as in the store phase (`report::timed_round`). Then the child
//! starts the member again on its data directory (same key, new ports) and watches it
//! ([`restart_and_watch`]) every [`POLL`] until its store holds N messages. Nothing but the
//! member's own anti-entropy can bring them: forwards only happen on new writes, and there are
//! none. Rounds run at start, on every list change (the member's return is one) and every
//! 30 s (the shipped interval); the time is mostly waiting between rounds when a round's
//! bounds (`max_pulls_per_peer_round`) stop it short of N, so the work is reported apart:
//!
//! - **caught up**: from just before the member starts to the first poll that sees N messages
//!   in its store; the start itself (opening the store, listening) is reported too;
//! - **work**: the member's `round_busy_us` counter (time inside its anti-entropy rounds,
//!   through the end of the round that completed it);
//! - **bytes**: the member's `reconcile_*_bytes` counters: the gRPC messages of its own
//!   anti-entropy streams, each protobuf encoding plus the 5-byte gRPC prefix, both ways. Not
//!   counted: HTTP/2 frame headers (9 bytes a frame), TLS records (22 bytes per record of up to
//!   16 KiB), TCP/IP. The other members' streams in the same window (their rounds, partly
//!   against the returning member) are reported apart;
//! - **CPU**: the child process's CPU time over the catch-up, read by the parent. It holds all
//!   members and the registry (one process), so this is the whole swarm's cost of the
//!   catch-up — the member's pulls and the peers serving them — plus their idle work.
//!
//! Correctness: the member's message count, then a further round that must pull nothing, its
//! bucket digests compared with the entry node's (every message and expiry), and, from the
//! parent, every message of 20 (account, namespace) pairs retrieved from the member by hash.

use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};

use crate::BenchArgs;
use crate::client::Target;
use crate::node::{NodeProcess, Swarm};
use crate::report::{Phase, check_stored, now_ms, timed_round};
use crate::sys;
use crate::workload::Workload;

/// How often the child looks at the returning member's store and counters.
const POLL: Duration = Duration::from_millis(20);
/// Longest catch-up before the benchmark gives up (100 000 messages need about 8 rounds of
/// 30 s with 4 peers; this leaves room for a loaded machine).
const MAX_WAIT: Duration = Duration::from_secs(1800);

const MIB: f64 = 1024.0 * 1024.0;

/// Anti-entropy counters summed over some members.
#[derive(Debug, Default, Clone, Copy)]
struct Streams {
    rounds: u64,
    busy_us: u64,
    asks: u64,
    sent: u64,
    received: u64,
}

impl Streams {
    fn of(nodes: &[umbra_node::testing::TestNode]) -> Streams {
        let mut s = Streams::default();
        for m in nodes
            .iter()
            .filter_map(|n| n.node().and_then(|n| n.replica()))
            .map(|r| r.metrics())
        {
            s.rounds += m.rounds;
            s.busy_us += m.round_busy_us;
            s.asks += m.reconcile_asks;
            s.sent += m.reconcile_bytes_sent;
            s.received += m.reconcile_bytes_received;
        }
        s
    }

    fn since(self, before: Streams) -> Value {
        json!({
            "rounds": self.rounds - before.rounds,
            "busy_s": (self.busy_us - before.busy_us) as f64 / 1e6,
            "asks": self.asks - before.asks,
            "sent_bytes": self.sent - before.sent,
            "received_bytes": self.received - before.received,
        })
    }
}

/// Child side: starts the stopped member on `dir`, waits until its store holds `n` messages,
/// checks it against the entry node and returns the figures (the `CAUGHT_UP` JSON).
pub(crate) async fn restart_and_watch(
    swarm: &mut Swarm,
    dir: tempfile::TempDir,
    n: u64,
) -> anyhow::Result<Value> {
    let others_before = Streams::of(&swarm.nodes);
    let started = SystemClock.instant();
    let member = swarm.start_member(dir).await?;
    let listening = SystemClock.since(started);
    let node = member.node().context("the member did not start")?;
    let replica = node
        .replica()
        .context("the member follows no registry")?
        .clone();
    let store = node.state().store.clone();
    let client_addr = node.client_addr();
    let held_before = store
        .stats()
        .context("reading the member's store")?
        .messages;

    // Progress at the start of every round: when it began and what the member held then.
    let mut progress = Vec::new();
    let (mut rounds_seen, mut busy_at_round_start) = (0, 0);
    let caught_up = loop {
        let m = replica.metrics();
        let held = store
            .stats()
            .context("reading the member's store")?
            .messages;
        let at = SystemClock.since(started);
        if m.rounds != rounds_seen {
            rounds_seen = m.rounds;
            busy_at_round_start = m.round_busy_us;
            eprintln!(
                "catch-up: round {} began at {:.1} s holding {held} of {n}",
                m.rounds,
                at.as_secs_f64()
            );
            progress.push(json!({"round": m.rounds, "at_s": at.as_secs_f64(), "held": held}));
        }
        if held >= n {
            break at;
        }
        if at > MAX_WAIT {
            bail!(
                "the member held {held} of {n} messages after {} s",
                MAX_WAIT.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    };
    // The round that completed it may still be comparing digests with the last peers: its
    // work and bytes belong to the catch-up, so wait for it to end (its time is added to the
    // busy counter when it does).
    while replica.metrics().round_busy_us == busy_at_round_start {
        if SystemClock.since(started) > MAX_WAIT {
            bail!("the member's last round did not end");
        }
        tokio::time::sleep(POLL).await;
    }
    let m = replica.metrics();
    let others = Streams::of(&swarm.nodes).since(others_before);
    let stats = store.stats().context("reading the member's store")?;

    // Checks: one more round finds nothing to pull, and every bucket's digest (the hashes
    // and expiries of its messages) equals the entry node's.
    let again = replica.reconcile_round().await;
    let now = umbra_node::system_now_ms();
    let ours = store
        .bucket_digests(None, now)
        .context("the member's digests")?;
    let entry = swarm
        .nodes
        .first()
        .and_then(|n| n.node())
        .context("the entry node is not running")?;
    let theirs = entry
        .state()
        .store
        .bucket_digests(None, now)
        .context("the entry node's digests")?;
    let same = ours.len() == theirs.len()
        && ours
            .iter()
            .zip(&theirs)
            .all(|(a, b)| (a.owner, a.namespace, a.digest) == (b.owner, b.namespace, b.digest));
    swarm.nodes.push(member);

    Ok(json!({
        "member_addr": client_addr.to_string(),
        "messages": n,
        "held_before": held_before,
        "held": stats.messages,
        "payload_bytes": stats.bytes,
        "listening_s": listening.as_secs_f64(),
        "caught_up_s": caught_up.as_secs_f64(),
        "rounds": m.rounds,
        "busy_s": m.round_busy_us as f64 / 1e6,
        "pulled": m.messages_pulled,
        "buckets_compared": m.buckets_compared,
        "buckets_differing": m.buckets_differing,
        "asks": m.reconcile_asks,
        "sent_bytes": m.reconcile_bytes_sent,
        "received_bytes": m.reconcile_bytes_received,
        "replica_received_bytes": m.reconcile_replica_bytes_received,
        "peer_errors": m.peer_errors,
        "others": others,
        "check_round": {
            "peers_reachable": again.peers_reachable,
            "buckets_differing": again.buckets_differing,
            "messages_pulled": again.messages_pulled,
        },
        "buckets": ours.len(),
        "digests_equal": same,
        "progress": progress,
    }))
}

fn get_f64(v: &Value, key: &str) -> anyhow::Result<f64> {
    v[key]
        .as_f64()
        .with_context(|| format!("the catch-up report has no {key}: {v}"))
}

/// Parent side: stops a member, stores `n` messages, has the member catch up, checks it and
/// prints the figures.
pub(crate) async fn run(
    args: &BenchArgs,
    node: &mut NodeProcess,
    target: &Target,
    wl: &mut Workload,
    n: usize,
) -> anyhow::Result<Value> {
    let reply = tokio::task::block_in_place(|| node.command("stop-last"))?;
    ensure!(reply == "STOPPED", "unexpected reply to stop-last: {reply}");
    let members = args.swarm;
    println!(
        "catch-up: member {members} of {members} stopped gracefully (it left the registry; the others follow the list without it); storing {n} messages to the entry node"
    );

    let mut stores = Phase::default();
    let mut left = n;
    while left > 0 {
        let k = left.min(args.round);
        let round = tokio::task::block_in_place(|| wl.store_round(k, now_ms()))?;
        timed_round(node, target, round, &mut stores).await?;
        left -= k;
    }
    stores.print("store (one member down)");
    let stored = stores.result.ok;
    ensure!(stored > 0, "no store succeeded");

    let load_before = sys::loadavg();
    let cpu_before = node.cpu_seconds();
    let threads_before = node.threads_cpu_seconds();
    let cmd = format!("catch-up {stored}");
    let reply = tokio::task::block_in_place(|| node.command(&cmd))?;
    let cpu = match (cpu_before, node.cpu_seconds()) {
        (Some(b), Some(a)) => a - b,
        _ => 0.0,
    };
    let mut threads = node.threads_cpu_seconds();
    for (name, c) in threads.iter_mut() {
        *c -= threads_before.get(name).copied().unwrap_or(0.0);
    }
    threads.retain(|_, c| *c >= 0.01);
    let load_after = sys::loadavg();
    let r: Value = serde_json::from_str(
        reply
            .strip_prefix("CAUGHT_UP ")
            .with_context(|| format!("unexpected reply to {cmd:?}: {reply}"))?,
    )
    .context("the catch-up report is not JSON")?;

    let member: std::net::SocketAddr = r["member_addr"]
        .as_str()
        .context("the catch-up report has no member address")?
        .parse()
        .context("bad member address")?;
    let (pairs, found, missing) = check_stored(
        wl,
        &Target {
            addr: member,
            ..target.clone()
        },
        "the caught-up member",
    )
    .await?;

    let wall = get_f64(&r, "caught_up_s")?;
    let busy = get_f64(&r, "busy_s")?;
    let payload = get_f64(&r, "payload_bytes")?;
    let sent = get_f64(&r, "sent_bytes")?;
    let received = get_f64(&r, "received_bytes")?;
    let replicas = get_f64(&r, "replica_received_bytes")?;
    let wire = sent + received;
    println!(
        "catch-up of {stored} messages ({:.1} MiB of message data): held all after {wall:.1} s ({:.0} messages/s), started and listening after {:.2} s; {} rounds, {busy:.1} s of round work ({:.0} messages per second of work)",
        payload / MIB,
        stored as f64 / wall.max(1e-9),
        get_f64(&r, "listening_s")?,
        r["rounds"],
        stored as f64 / busy.max(1e-9),
    );
    println!(
        "catch-up bytes on the member's anti-entropy streams (gRPC messages: protobuf + 5-byte prefix): sent {:.2} MiB, received {:.2} MiB (whole messages {:.2} MiB, digests and entries {:.2} MiB) = {:.3} bytes per message-data byte, {:.0} bytes per message; {} requests",
        sent / MIB,
        received / MIB,
        replicas / MIB,
        (received - replicas) / MIB,
        wire / payload.max(1.0),
        wire / stored as f64,
        r["asks"],
    );
    println!(
        "catch-up: the other members' streams meanwhile: {}",
        r["others"]
    );
    println!(
        "catch-up CPU of the swarm process (all {members} members and the registry): {cpu:.1} s = {:.0} µs per message; by thread (s): {threads:?}",
        cpu * 1e6 / stored as f64,
    );
    println!(
        "catch-up check: member holds {} messages (had {} before), digests equal to the entry node's: {}, a further round pulled {} and found {} differing buckets; load average before {load_before}, after {load_after}",
        r["held"],
        r["held_before"],
        r["digests_equal"],
        r["check_round"]["messages_pulled"],
        r["check_round"]["buckets_differing"],
    );

    Ok(json!({
        "mode": "catch_up",
        "swarm": members,
        "accounts": args.accounts,
        "data_bytes": args.data_bytes,
        "store": stores.json(),
        "catch_up": r,
        "cpu_s": cpu,
        "cpu_by_thread_s": threads,
        "bytes_per_payload_byte": wire / payload.max(1.0),
        "check": {"pairs": pairs, "found": found, "missing": missing},
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }))
}
