//! Swarm mode, `--propagation N`: how long until every member of the swarm holds a stored
//! message (issue 12 §3).
//!
//! Method, per probe, one probe at a time on an otherwise idle swarm (after the timed phases):
//! a signed store of a fresh message for a probe account no timed request uses is sent to the
//! entry node, the clock starting just before it is sent. Two times are taken:
//!
//! - **acknowledged by all**: the entry node's reply arrived and names every other member as
//!   having stored it (its `swarm` object holds each member's answer with the message's hash;
//!   a member answers only after storing). The entry node forwards synchronously, so this is
//!   an upper bound of the moment the last member held it;
//! - **seen on all**: after that reply, a retrieve on every member (in parallel, one keep-alive
//!   connection each) returned the message; a member that does not return it yet is polled
//!   again every [`POLL_EVERY`] until it does (anti-entropy brings it if the forward failed),
//!   for at most [`MAX_WAIT`]. This is what a client polling each member would observe.
//!
//! Polling starts at the reply, not before: polling 7 members while the store is in flight
//! would take the CPU (2 cores here) the replication itself needs, and measure the polls.

use std::net::SocketAddr;
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::client::Conn;
use crate::workload::Workload;

/// Longest wait for one member to show a probe (a member that missed the forwarded write gets
/// it from anti-entropy, every 30 s by default).
const MAX_WAIT: Duration = Duration::from_secs(90);
/// Pause between polls of a member that does not show the probe yet.
const POLL_EVERY: Duration = Duration::from_millis(2);

/// What the probes measured (times in µs, sorted).
#[derive(Debug, Default)]
pub(crate) struct Propagation {
    pub(crate) members: usize,
    pub(crate) acked_us: Vec<u64>,
    pub(crate) seen_us: Vec<u64>,
    /// Replies that did not name every other member as having stored the probe.
    pub(crate) incomplete_replies: u64,
    /// Retrieves that did not show the probe yet (polled again).
    pub(crate) repolls: u64,
}

fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

impl Propagation {
    pub(crate) fn print(&self) {
        println!(
            "propagation to all {} members ({} probes, one at a time, swarm otherwise idle): acknowledged by all p50 {:.2} ms p99 {:.2} ms; seen on all by retrieve p50 {:.2} ms p99 {:.2} ms (max {:.2} ms); {} replies missing a member, {} re-polls",
            self.members,
            self.seen_us.len(),
            quantile_ms(&self.acked_us, 0.5),
            quantile_ms(&self.acked_us, 0.99),
            quantile_ms(&self.seen_us, 0.5),
            quantile_ms(&self.seen_us, 0.99),
            quantile_ms(&self.seen_us, 1.0),
            self.incomplete_replies,
            self.repolls,
        );
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "members": self.members,
            "probes": self.seen_us.len(),
            "acked_p50_ms": quantile_ms(&self.acked_us, 0.5),
            "acked_p99_ms": quantile_ms(&self.acked_us, 0.99),
            "seen_p50_ms": quantile_ms(&self.seen_us, 0.5),
            "seen_p99_ms": quantile_ms(&self.seen_us, 0.99),
            "seen_max_ms": quantile_ms(&self.seen_us, 1.0),
            "incomplete_replies": self.incomplete_replies,
            "repolls": self.repolls,
        })
    }
}

/// Whether a retrieve reply lists the message `hash`.
fn lists(body: &[u8], hash: &str) -> anyhow::Result<bool> {
    let v: Value = serde_json::from_slice(body).context("a probe retrieve reply is not JSON")?;
    Ok(v["messages"]
        .as_array()
        .is_some_and(|a| a.iter().any(|m| m["hash"] == hash)))
}

/// Members (other than the entry node) the store reply names as having stored `hash`.
fn acknowledged(body: &[u8], hash: &str) -> usize {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v["swarm"]
                .as_object()
                .map(|m| m.values().filter(|r| r["hash"] == hash).count())
        })
        .unwrap_or(0)
}

/// Polls one member with `retrieve` until it lists `hash`; returns the re-polls needed.
async fn wait_for(conn: &Conn, retrieve: bytes::Bytes, hash: &str) -> anyhow::Result<u64> {
    let started = SystemClock.instant();
    let mut repolls = 0;
    loop {
        let (status, body) = conn.post(retrieve.clone()).await?;
        if status != 200 {
            bail!(
                "probe retrieve failed: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        if lists(&body, hash)? {
            return Ok(repolls);
        }
        if SystemClock.since(started) > MAX_WAIT {
            bail!("a member did not hold a probe after {MAX_WAIT:?}");
        }
        repolls += 1;
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Runs `probes` probes: stores on `entry`, watched on `entry` and every address of `others`.
pub(crate) async fn run(
    wl: &mut Workload,
    entry: SocketAddr,
    others: &[SocketAddr],
    probes: usize,
) -> anyhow::Result<Propagation> {
    let store_conn = Conn::open(entry).await?;
    let mut watchers = Vec::with_capacity(others.len() + 1);
    for addr in std::iter::once(&entry).chain(others) {
        watchers.push(Conn::open(*addr).await?);
    }
    let mut out = Propagation {
        members: watchers.len(),
        ..Propagation::default()
    };
    for _ in 0..probes {
        let probe = wl.probe(umbra_node::system_now_ms());
        let started = SystemClock.instant();
        let (status, body) = store_conn.post(probe.store.clone()).await?;
        let acked = SystemClock.since(started);
        if status != 200 {
            bail!(
                "probe store failed: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        if acknowledged(&body, &probe.hash) < others.len() {
            out.incomplete_replies += 1;
        }
        let mut polls = tokio::task::JoinSet::new();
        for c in &watchers {
            let (c, retrieve, hash) = (c.clone(), probe.retrieve.clone(), probe.hash.clone());
            polls.spawn(async move { wait_for(&c, retrieve, &hash).await });
        }
        while let Some(r) = polls.join_next().await {
            out.repolls += r.context("a probe poll failed")??;
        }
        let seen = SystemClock.since(started);
        out.acked_us.push(acked.as_micros() as u64);
        out.seen_us.push(seen.as_micros() as u64);
    }
    out.acked_us.sort_unstable();
    out.seen_us.sort_unstable();
    Ok(out)
}
