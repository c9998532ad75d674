//! The benchmark run: start the node, measure the ceiling, run the timed phases, check the
//! stored data, and print the report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::BenchArgs;
use crate::ceiling::{self, Ceiling};
use crate::client::{self, PhaseResult, Target};
use crate::node::NodeProcess;
use crate::sys::{self, Machine};
use crate::workload::{Round, Workload};

const MIB: f64 = 1024.0 * 1024.0;

/// CPU seconds used by the load generator and by the node over some timed rounds.
#[derive(Debug, Default, Clone)]
pub(crate) struct Cpu {
    client: f64,
    node: f64,
    /// The node's CPU seconds by thread name.
    node_threads: BTreeMap<String, f64>,
}

/// A timed phase over one or more rounds.
#[derive(Debug, Default)]
pub(crate) struct Phase {
    pub(crate) result: PhaseResult,
    pub(crate) cpu: Cpu,
    expected_messages: u64,
}

impl Phase {
    fn add(&mut self, r: PhaseResult, cpu: Cpu, expected: Option<u64>) {
        let total = &mut self.result;
        total.ok += r.ok;
        for (k, v) in r.errors {
            *total.errors.entry(k).or_default() += v;
        }
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
        total.latencies_us.extend(r.latencies_us);
        total.latencies_us.sort_unstable();
        total.wall += r.wall;
        total.messages_returned += r.messages_returned;
        total.reply_bytes += r.reply_bytes;
        self.cpu.client += cpu.client;
        self.cpu.node += cpu.node;
        for (k, v) in cpu.node_threads {
            *self.cpu.node_threads.entry(k).or_default() += v;
        }
        self.expected_messages += expected.unwrap_or(0);
    }

    pub(crate) fn json(&self) -> Value {
        let r = &self.result;
        let wall = r.wall.as_secs_f64().max(1e-9);
        json!({
            "ok": r.ok,
            "failed": r.failed(),
            "errors": r.errors,
            "per_sec": r.per_sec(),
            "p50_ms": r.quantile_ms(0.50),
            "p99_ms": r.quantile_ms(0.99),
            "max_ms": r.quantile_ms(1.0),
            "wall_s": wall,
            "node_cpu_cores": self.cpu.node / wall,
            "client_cpu_cores": self.cpu.client / wall,
            "node_cpu_us_per_request": self.node_us_per_request(),
            "node_thread_cores": self.thread_cores(),
            "messages_returned": r.messages_returned,
            "messages_expected": self.expected_messages,
        })
    }

    /// The node's threads' CPU use during the phase, in cores, by thread name (only those
    /// that used at least 1 % of a core).
    fn thread_cores(&self) -> BTreeMap<String, f64> {
        let wall = self.result.wall.as_secs_f64().max(1e-9);
        self.cpu
            .node_threads
            .iter()
            .map(|(k, v)| (k.clone(), v / wall))
            .filter(|(_, c)| *c >= 0.01)
            .collect()
    }

    /// Node CPU time per successful request (µs).
    fn node_us_per_request(&self) -> f64 {
        self.cpu.node * 1e6 / (self.result.ok.max(1)) as f64
    }

    pub(crate) fn print(&self, name: &str) {
        let r = &self.result;
        let wall = r.wall.as_secs_f64().max(1e-9);
        println!(
            "{name}: {} ok, {} failed in {:.2} s → {:.0} /s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            r.ok,
            r.failed(),
            wall,
            r.per_sec(),
            r.quantile_ms(0.50),
            r.quantile_ms(0.99),
            r.quantile_ms(1.0),
        );
        println!(
            "{name}: CPU during the phase: node {:.2} cores ({:.0} µs per request), load generator {:.2} cores",
            self.cpu.node / wall,
            self.node_us_per_request(),
            self.cpu.client / wall,
        );
        let threads: Vec<String> = self
            .thread_cores()
            .iter()
            .map(|(k, v)| format!("{k} {v:.2}"))
            .collect();
        println!(
            "{name}: node CPU by thread name (cores): {}",
            threads.join(", ")
        );
        if self.expected_messages > 0 || r.messages_returned > 0 {
            println!(
                "{name}: messages in replies {} (expected {}), {:.0} reply bytes per request",
                r.messages_returned,
                self.expected_messages,
                r.reply_bytes as f64 / (r.ok.max(1)) as f64,
            );
        }
        if !r.errors.is_empty() {
            println!("{name}: failures by kind {:?}", r.errors);
        }
        if let Some(e) = &r.first_error {
            println!("{name}: first failure: {}", e.trim());
        }
    }
}

/// Sends one round and measures both processes' CPU time around it.
pub(crate) async fn timed_round(
    node: &NodeProcess,
    target: &Target,
    round: Round,
    phase: &mut Phase,
) -> anyhow::Result<()> {
    let bodies = Arc::new(round.bodies);
    let client_before = sys::cpu_seconds("self");
    let node_before = node.cpu_seconds();
    let threads_before = node.threads_cpu_seconds();
    let r = client::run_phase(target, bodies).await?;
    let mut node_threads = node.threads_cpu_seconds();
    for (name, cpu) in node_threads.iter_mut() {
        *cpu -= threads_before.get(name).copied().unwrap_or(0.0);
    }
    let cpu = Cpu {
        client: diff(client_before, sys::cpu_seconds("self")),
        node: diff(node_before, node.cpu_seconds()),
        node_threads,
    };
    phase.add(r, cpu, round.expected_messages);
    Ok(())
}

fn diff(before: Option<f64>, after: Option<f64>) -> f64 {
    match (before, after) {
        (Some(b), Some(a)) => a - b,
        _ => 0.0,
    }
}

pub(crate) fn now_ms() -> i64 {
    umbra_node::system_now_ms()
}

/// Retrieves everything of a sample of (account, namespace) pairs and compares the hashes with
/// what was stored. Returns (pairs checked, messages found, messages missing).
pub(crate) async fn check_stored(
    wl: &Workload,
    target: &Target,
    who: &str,
) -> anyhow::Result<(usize, u64, u64)> {
    let checks = wl.checks(20, now_ms());
    let bodies: Vec<_> = checks.iter().map(|c| c.body.clone()).collect();
    let replies = client::post_each(target, &bodies).await?;
    let (mut found, mut missing) = (0u64, 0u64);
    for (check, (status, body)) in checks.iter().zip(replies) {
        if status != 200 {
            bail!(
                "check retrieve failed: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        let v: Value = serde_json::from_slice(&body).context("check reply is not JSON")?;
        let got: BTreeSet<&str> = v["messages"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m["hash"].as_str()).collect())
            .unwrap_or_default();
        for h in &check.expected {
            if got.contains(h.as_str()) {
                found += 1;
            } else {
                missing += 1;
            }
        }
    }
    println!(
        "check on {who}: {} (account, namespace) pairs retrieved in full: {found} messages present, {missing} missing",
        checks.len()
    );
    Ok((checks.len(), found, missing))
}

/// Checks the entry node and, in swarm mode, the last member as well (replication).
async fn check_all(
    wl: &Workload,
    node: &NodeProcess,
    target: &Target,
) -> anyhow::Result<(usize, u64, u64)> {
    let (mut pairs, mut found, mut missing) = check_stored(wl, target, "the entry node").await?;
    if let Some(peer) = node.peers().last() {
        let t = Target {
            addr: *peer,
            ..target.clone()
        };
        let (p, f, m) = check_stored(wl, &t, "the last swarm member").await?;
        pairs += p;
        found += f;
        missing += m;
    }
    Ok((pairs, found, missing))
}

fn print_ceiling(what: &str, c: &Ceiling) {
    println!(
        "{what}: {:.0} Ed25519 verifications/s ({:.0} per CPU second); per-store crypto (key conversion + verify + node signature) {:.0}/s ({:.0} per CPU second); CPU µs: verify {:.1}, key conversion {:.1}, node signature {:.1}",
        c.verify_per_sec,
        c.verify_per_cpu_sec,
        c.store_crypto_per_sec,
        c.store_crypto_per_cpu_sec,
        1e6 / c.verify_per_cpu_sec.max(1.0),
        c.convert_us,
        c.sign_us,
    );
}

async fn measure_ceiling(secs: f64) -> anyhow::Result<Ceiling> {
    tokio::task::spawn_blocking(move || ceiling::measure(secs))
        .await
        .context("the ceiling thread failed")?
}

/// Runs the whole benchmark; prints the report and returns its JSON summary.
pub(crate) async fn run_bench(args: &BenchArgs) -> anyhow::Result<Value> {
    let machine = Machine::read();
    machine.print_header("umbra-bench", "the load generator and node");

    if args.catch_up.is_some() && args.swarm < 2 {
        bail!("--catch-up needs a swarm: add --swarm 5 (one member goes down, the others stay up)");
    }
    let t = SystemClock.instant();
    let mut node = NodeProcess::spawn(&args.durability, args.swarm)?;
    if args.swarm > 1 {
        println!(
            "swarm of {}: registry and {} nodes in one separate process, all in one swarm after {:.1} s; requests go to the first node, which replicates to the others",
            args.swarm,
            args.swarm,
            SystemClock.since(t).as_secs_f64()
        );
    }
    let target = Target {
        addr: node.client_addr(),
        http1: args.http1,
        connections: args.connections,
        inflight: args.inflight,
    };
    let conns = if args.http1 {
        format!("{} HTTP/1.1 keep-alive connections", args.inflight)
    } else {
        format!("{} HTTP/2 connections", args.connections)
    };
    println!(
        "node: separate process on {} (durability {}, rate limit off); client: {} requests in flight over {conns}, {} runtime thread(s)",
        node.client_addr(),
        args.durability,
        args.inflight,
        args.client_threads,
    );

    let t = SystemClock.instant();
    let mut wl = tokio::task::block_in_place(|| {
        Workload::new(
            args.accounts,
            args.data_bytes,
            args.inbox_percent,
            args.retrieve_tail,
        )
    })?;
    println!(
        "prepared {} accounts in {:.2} s",
        args.accounts,
        SystemClock.since(t).as_secs_f64()
    );

    let summary = if let Some(n) = args.catch_up {
        crate::catchup::run(args, &mut node, &target, &mut wl, n).await?
    } else if let Some(total) = args.rss_messages {
        rss_mode(args, &node, &target, &mut wl, total).await?
    } else {
        throughput_mode(args, &node, &target, &mut wl, &machine).await?
    };
    node.stop()?;
    Ok(summary)
}

async fn throughput_mode(
    args: &BenchArgs,
    node: &NodeProcess,
    target: &Target,
    wl: &mut Workload,
    machine: &Machine,
) -> anyhow::Result<Value> {
    let ceiling_before = measure_ceiling(args.ceiling_secs).await?;
    print_ceiling("ceiling (one thread, node idle)", &ceiling_before);

    let mut stores = Phase::default();
    let mut left = args.stores;
    while left > 0 {
        let n = left.min(args.round);
        let t = SystemClock.instant();
        let round = tokio::task::block_in_place(|| wl.store_round(n, now_ms()))?;
        println!(
            "signed {n} store requests in {:.2} s (untimed)",
            SystemClock.since(t).as_secs_f64()
        );
        timed_round(node, target, round, &mut stores).await?;
        left -= n;
    }
    stores.print("store");

    let mut retrieves = Phase::default();
    let mut left = args.retrieves;
    while left > 0 {
        let n = left.min(args.round);
        let t = SystemClock.instant();
        let round = tokio::task::block_in_place(|| wl.retrieve_round(n, now_ms()))?;
        println!(
            "signed {n} retrieve requests in {:.2} s (untimed)",
            SystemClock.since(t).as_secs_f64()
        );
        timed_round(node, target, round, &mut retrieves).await?;
        left -= n;
    }
    retrieves.print("retrieve");

    let (pairs, found, missing) = check_all(wl, node, target).await?;

    let propagation = if args.swarm > 1 && args.propagation > 0 {
        let p =
            crate::propagation::run(wl, node.client_addr(), node.peers(), args.propagation).await?;
        p.print();
        p.json()
    } else {
        Value::Null
    };

    let ceiling_after = measure_ceiling(args.ceiling_secs).await?;
    print_ceiling("ceiling again after the load", &ceiling_after);
    let mem = node.memory().unwrap_or_default();
    let db = sys::dir_size(node.data_dir());
    let ratio = stores.result.per_sec() / ceiling_before.verify_per_sec.max(1.0);
    let ratio_crypto = stores.result.per_sec() / ceiling_before.store_crypto_per_sec.max(1.0);
    let whose = if args.swarm > 1 {
        "node process (all swarm members and the registry)"
    } else {
        "node"
    };
    println!(
        "{whose} memory: peak RSS (VmHWM) {:.1} MiB, RSS now {:.1} MiB; data dir {:.1} MiB",
        mem.hwm as f64 / MIB,
        mem.rss as f64 / MIB,
        db as f64 / MIB,
    );
    println!(
        "store throughput / ceiling: {ratio:.3} of one core's Ed25519 verifications/s ({ratio_crypto:.3} of one core's per-store crypto), same run"
    );
    let verify_us = 1e6 / ceiling_before.verify_per_cpu_sec.max(1.0);
    let crypto_us = 1e6 / ceiling_before.store_crypto_per_cpu_sec.max(1.0);
    println!(
        "per store the node spent {:.0} µs CPU; one verification costs {verify_us:.0} µs CPU and the whole per-store crypto {crypto_us:.0} µs ({:.0} % of it)",
        stores.node_us_per_request(),
        100.0 * crypto_us / stores.node_us_per_request().max(1.0),
    );
    println!("load average at the end: {}", sys::loadavg());

    Ok(json!({
        "mode": "throughput",
        "machine": {
            "cpus": machine.cpus,
            "cpu_model": machine.cpu_model,
            "loadavg_start": machine.loadavg,
            "loadavg_end": sys::loadavg(),
        },
        "accounts": args.accounts,
        "swarm": args.swarm,
        "inflight": args.inflight,
        "connections": if args.http1 { args.inflight } else { args.connections },
        "http": if args.http1 { "1.1" } else { "2" },
        "store": stores.json(),
        "retrieve": retrieves.json(),
        "check": {"pairs": pairs, "found": found, "missing": missing},
        "propagation": propagation,
        "ceiling": {
            "verify_per_sec": ceiling_before.verify_per_sec,
            "verify_per_cpu_sec": ceiling_before.verify_per_cpu_sec,
            "store_crypto_per_sec": ceiling_before.store_crypto_per_sec,
            "store_crypto_per_cpu_sec": ceiling_before.store_crypto_per_cpu_sec,
            "convert_cpu_us": ceiling_before.convert_us,
            "sign_cpu_us": ceiling_before.sign_us,
            "verify_per_sec_after": ceiling_after.verify_per_sec,
        },
        "store_over_ceiling": ratio,
        "node_peak_rss_bytes": mem.hwm,
        "node_rss_bytes": mem.rss,
        "data_dir_bytes": db,
    }))
}

async fn rss_mode(
    args: &BenchArgs,
    node: &NodeProcess,
    target: &Target,
    wl: &mut Workload,
    total: usize,
) -> anyhow::Result<Value> {
    println!(
        "RSS mode: loading {total} messages in rounds of {} (signing between rounds); this takes minutes for 1 000 000",
        args.round
    );
    let mut stores = Phase::default();
    let started = SystemClock.instant();
    while (wl.generated() as usize) < total {
        let n = (total - wl.generated() as usize).min(args.round);
        let round = tokio::task::block_in_place(|| wl.store_round(n, now_ms()))?;
        timed_round(node, target, round, &mut stores).await?;
        let mem = node.memory().unwrap_or_default();
        println!(
            "  {} / {total} stored ({} failed), {:.0} stores/s while sending, node RSS {:.1} MiB (peak {:.1}), {:.0} s elapsed",
            stores.result.ok,
            stores.result.failed(),
            stores.result.per_sec(),
            mem.rss as f64 / MIB,
            mem.hwm as f64 / MIB,
            SystemClock.since(started).as_secs_f64(),
        );
    }
    stores.print("bulk store");
    let loaded = node.memory().unwrap_or_default();
    println!(
        "after the bulk load: node RSS {:.1} MiB, peak {:.1} MiB",
        loaded.rss as f64 / MIB,
        loaded.hwm as f64 / MIB
    );
    // Reads use their own SQLite connections and page caches: exercise them too before
    // reading the memory figures.
    let mut retrieves = Phase::default();
    let mut left = args.retrieves;
    while left > 0 {
        let n = left.min(args.round);
        let round = tokio::task::block_in_place(|| wl.retrieve_round(n, now_ms()))?;
        timed_round(node, target, round, &mut retrieves).await?;
        left -= n;
    }
    retrieves.print("retrieve");
    // Let the group-commit writer and any pending sweep settle before reading memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (pairs, found, missing) = check_all(wl, node, target).await?;
    let mem = node.memory().unwrap_or_default();
    let db = sys::dir_size(node.data_dir());
    println!(
        "node memory with {} messages stored, after the retrieves: RSS {:.1} MiB, peak RSS (VmHWM) {:.1} MiB; data dir {:.1} MiB",
        stores.result.ok,
        mem.rss as f64 / MIB,
        mem.hwm as f64 / MIB,
        db as f64 / MIB,
    );
    println!("load average at the end: {}", sys::loadavg());
    Ok(json!({
        "mode": "rss",
        "messages": stores.result.ok,
        "store": stores.json(),
        "retrieve": retrieves.json(),
        "node_rss_after_load_bytes": loaded.rss,
        "check": {"pairs": pairs, "found": found, "missing": missing},
        "node_rss_bytes": mem.rss,
        "node_peak_rss_bytes": mem.hwm,
        "data_dir_bytes": db,
        "total_s": SystemClock.since(started).as_secs_f64(),
    }))
}
