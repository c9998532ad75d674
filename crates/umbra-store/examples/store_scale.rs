//! The store at scale (issue 12 §3): memory, disk and store latency during an expiry sweep
//! with millions of messages held.
//!
//! ```sh
//! cargo run -p umbra-store --release --example store_scale -- \
//!     --dir /path/on/disk --messages 10000000 --expiring 1000000 --payload 320 \
//!     --rate 2000 --stores 20000 [--sweep-limit N]
//! ```
//!
//! 1. Loads `messages` client stores (4 threads, 512 in flight each, like `store_bench`) over
//!    20 011 accounts and five namespaces, every `messages / expiring`-th with a one-hour TTL,
//!    the rest with 14 days. Reports the load rate, RSS (`VmHWM`, `VmRSS`) and the bytes of
//!    the data directory per payload byte.
//! 2. Moves the store's time (every time is an argument of the store, it reads no clock) past
//!    the short expiry and the 15-minute grace: the `expiring` messages are now legitimately
//!    due for the sweep, and must not be returned.
//! 3. Offers `stores` single stores at a fixed `rate` (open loop: submitted on schedule, each
//!    timed from its own submission to its reply) with no sweep, then again while a thread
//!    sweeps as the node does (`sweep_expired` again at once while `more` is set), then once
//!    more after the sweep. Prints p50/p99/p999 of each and the ratio of the p99s.
//!
//! The store runs with the node's default `StoreConfig` (`Resources::default()`: 16 MiB of
//! write buffers, 24 MiB block cache, 256 open files, 2 background jobs; durability
//! `ProcessCrash`, as the node ships), except that the node's 3.5 GiB cap is lifted (the
//! node's `max_db_mib = 0`) when the load would not fit under it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blake2::{Blake2b256, Digest};
use umbra_clock::{Clock as _, SystemClock};
use umbra_store::{
    AccountId, MessageHash, Millis, Namespace, NewMessage, Reply, RetrieveLimits, Store,
    StoreConfig, StoreOutcome,
};

/// The store's time at the load (virtual: the store takes it as an argument).
const T0: Millis = 1_700_000_000_000;
const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;
/// TTL of the messages that expire before the measurement.
const SHORT_TTL: Millis = HOUR;
/// TTL of the others: Session's default for one-to-one messages.
const LONG_TTL: Millis = 14 * DAY;
/// The store's time during the measurement: past the short expiry and the 15-minute grace
/// after which the sweep removes a message, long before the 14-day ones.
const T_MEASURE: Millis = T0 + SHORT_TTL + 20 * 60 * 1000;
/// Prime, so that every tenth message (the expiring ones) is spread over all accounts.
const ACCOUNTS: u64 = 20_011;
/// Session's namespaces: 0 (one-to-one messages, most of the traffic), the account's config
/// messages (2, 3, 4, 5), one legacy closed group (−10). No public outbox (its rule keeps one).
const NAMESPACES: [Namespace; 8] = [0, 0, 0, 0, 2, 3, 5, -10];
const CLIENTS: u64 = 4;
const WINDOW: usize = 512;
/// Expiring messages checked for "never returned" (owner, namespace, hash).
const CHECKED: usize = 1_000;
/// Per-message bytes the store counts against its size cap beyond the data (rows.rs).
const CAP_OVERHEAD: u64 = 250;

struct Args {
    dir: PathBuf,
    messages: u64,
    expiring: u64,
    payload: usize,
    rate: u64,
    stores: u64,
    /// `StoreConfig::sweep_limit` when given (the default otherwise).
    sweep_limit: Option<usize>,
}

fn args() -> Args {
    let mut a = Args {
        dir: std::env::temp_dir(),
        messages: 10_000_000,
        expiring: 1_000_000,
        // A short Session text: one 160-byte padded block + 144 bytes of protocol v1 overhead
        // (sealed box 48, sender key and signature 96) = 304, plus the Envelope and
        // WebSocketMessage framing around it.
        payload: 320,
        rate: 2_000,
        stores: 20_000,
        sweep_limit: None,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for kv in v.chunks(2) {
        let val = kv
            .get(1)
            .unwrap_or_else(|| panic!("{} needs a value", kv[0]));
        match kv[0].as_str() {
            "--dir" => a.dir = PathBuf::from(val),
            "--messages" => a.messages = val.parse().unwrap(),
            "--expiring" => a.expiring = val.parse().unwrap(),
            "--payload" => a.payload = val.parse().unwrap(),
            "--rate" => a.rate = val.parse().unwrap(),
            "--stores" => a.stores = val.parse().unwrap(),
            "--sweep-limit" => a.sweep_limit = Some(val.parse().unwrap()),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(a.expiring <= a.messages && a.payload >= 16 && a.rate > 0);
    a
}

fn owner(n: u64) -> AccountId {
    let mut b = [0u8; 33];
    b[0] = 5;
    b[1..9].copy_from_slice(&n.to_be_bytes());
    AccountId::new(b)
}

/// Ciphertext-like (incompressible) bytes, unique per `n`.
fn payload(n: u64, len: usize) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut data = Vec::with_capacity(len + 8);
    data.extend_from_slice(&n.to_be_bytes());
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// The `n`-th message of the load: owner and namespace interleaved as traffic would be.
fn message(n: u64, len: usize, expiring: bool, now: Millis) -> NewMessage {
    let data = payload(n, len);
    let ns = NAMESPACES[(n / ACCOUNTS % NAMESPACES.len() as u64) as usize];
    NewMessage {
        owner: owner(n % ACCOUNTS),
        namespace: ns,
        hash: MessageHash::from_digest(&Blake2b256::digest(&data).into()),
        data,
        timestamp_ms: now,
        expiry_ms: now + if expiring { SHORT_TTL } else { LONG_TTL },
    }
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn rss() -> String {
    format!(
        "RSS {:.1} MiB (peak {:.1} MiB)",
        status_kib("VmRSS:") as f64 / 1024.0,
        status_kib("VmHWM:") as f64 / 1024.0
    )
}

/// CPU seconds of the whole process (user + system; Linux's 100 ticks/s).
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    (f[0] + f[1]) as f64 / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Apparent and allocated bytes of every file under `p`.
fn disk(p: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let mut t = (0, 0);
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        if m.is_dir() {
            let (a, b) = disk(&e.path());
            t = (t.0 + a, t.1 + b);
        } else {
            t = (t.0 + m.len(), t.1 + m.blocks() * 512);
        }
    }
    t
}

fn report_disk(label: &str, dir: &Path, messages: u64, payload_bytes: u64) {
    let (len, alloc) = disk(dir);
    println!(
        "{label}: {:.0} MiB on disk ({:.0} MiB allocated) for {messages} messages = {:.2} bytes per payload byte, {:.0} bytes per message",
        len as f64 / 1048576.0,
        alloc as f64 / 1048576.0,
        len as f64 / payload_bytes as f64,
        len as f64 / messages as f64
    );
}

fn load(store: &Store, a: &Args) -> Vec<(AccountId, Namespace, MessageHash)> {
    let every = a.messages.checked_div(a.expiring).unwrap_or(u64::MAX);
    let done = Arc::new(AtomicU64::new(0));
    let start = SystemClock.instant();
    let cpu0 = cpu_secs();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let store = store.clone();
            let done = done.clone();
            let (n, len) = (a.messages, a.payload);
            std::thread::spawn(move || {
                let mut checked = Vec::new();
                let mut inflight: VecDeque<Reply<StoreOutcome>> = VecDeque::new();
                for i in (c..n).step_by(CLIENTS as usize) {
                    // Every `every`-th message, spread over accounts and load order.
                    let expiring = i % every == every - 1;
                    let m = message(i, len, expiring, T0);
                    if expiring && checked.len() < CHECKED / CLIENTS as usize {
                        checked.push((m.owner, m.namespace, m.hash));
                    }
                    inflight.push_back(store.store(m, T0));
                    if inflight.len() >= WINDOW {
                        let r = inflight.pop_front().unwrap().wait().unwrap();
                        assert!(matches!(r, StoreOutcome::Stored { .. }), "{r:?}");
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
                for r in inflight {
                    r.wait().unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
                checked
            })
        })
        .collect();
    // Progress every 10 s: the rate should not fall off a cliff as the store grows.
    let mut last = (0u64, start);
    while done.load(Ordering::Relaxed) < a.messages {
        std::thread::sleep(Duration::from_millis(200));
        let now = SystemClock.instant();
        if now.duration_since(last.1) >= Duration::from_secs(10) {
            let d = done.load(Ordering::Relaxed);
            println!(
                "  {d:>9} stored, {:.0} stores/s over the last 10 s, {}, load {}",
                (d - last.0) as f64 / now.duration_since(last.1).as_secs_f64(),
                rss(),
                loadavg()
            );
            last = (d, now);
        }
    }
    let checked = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let secs = SystemClock.since(start).as_secs_f64();
    println!(
        "load: {} stores of {} B in {secs:.1} s = {:.0} stores/s, CPU {:.1} s ({:.2} cores), {}, load {}",
        a.messages,
        a.payload,
        a.messages as f64 / secs,
        cpu_secs() - cpu0,
        (cpu_secs() - cpu0) / secs,
        rss(),
        loadavg()
    );
    checked
}

/// Asserts that none of the expiring messages is returned at `now`, and that the store still
/// returns live messages of their accounts.
fn check_expired_hidden(store: &Store, checked: &[(AccountId, Namespace, MessageHash)]) {
    let mut live = 0usize;
    for (o, ns, h) in checked {
        let e = store.get_expiries(o, &[*h], T_MEASURE).unwrap();
        assert!(e.is_empty(), "an expired message's expiry was returned");
        let page = store
            .retrieve(o, *ns, None, RetrieveLimits::default(), T_MEASURE)
            .unwrap();
        assert!(page.messages.iter().all(|m| m.expiry_ms > T_MEASURE));
        assert!(page.messages.iter().all(|m| m.hash != *h));
        live += page.messages.len();
    }
    println!(
        "  {} expired messages checked: none returned ({live} live messages of their buckets returned)",
        checked.len()
    );
}

struct Latency {
    /// Submission time and latency in µs of every store.
    samples: Vec<(Instant, u64)>,
    late: Duration,
    errors: u64,
}

/// Offers `a.stores` stores at `a.rate` per second; each is timed from its submission to its
/// reply. A collector thread waits for the replies in submission order (the writer completes
/// them in that order), so a slow reply does not delay the next submission (no coordinated
/// omission).
fn offer(store: &Store, a: &Args, first: u64) -> Latency {
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Reply<StoreOutcome>)>();
    let collector = std::thread::spawn(move || {
        let mut samples = Vec::new();
        let mut errors = 0u64;
        for (at, r) in rx {
            let ok = r.wait().is_ok();
            samples.push((at, SystemClock.since(at).as_micros() as u64));
            errors += u64::from(!ok);
        }
        (samples, errors)
    });
    let interval = Duration::from_secs(1) / u32::try_from(a.rate).unwrap();
    let start = SystemClock.instant();
    let mut late = Duration::ZERO;
    for i in 0..a.stores {
        let due = start + interval * u32::try_from(i).unwrap();
        let now = SystemClock.instant();
        if due > now {
            std::thread::sleep(due - now);
        } else {
            late = late.max(now - due);
        }
        let m = message(first + i, a.payload, false, T_MEASURE);
        let at = SystemClock.instant();
        tx.send((at, store.store(m, T_MEASURE))).unwrap();
    }
    drop(tx);
    let (samples, errors) = collector.join().unwrap();
    Latency {
        samples,
        late,
        errors,
    }
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

/// Prints p50/p99/p999/max in ms of the samples `keep` selects and returns the p99.
fn summary(label: &str, l: &Latency, keep: impl Fn(Instant) -> bool) -> f64 {
    let mut v: Vec<u64> = l
        .samples
        .iter()
        .filter(|s| keep(s.0))
        .map(|s| s.1)
        .collect();
    v.sort_unstable();
    if v.is_empty() {
        println!("{label}: no samples");
        return f64::NAN;
    }
    println!(
        "{label}: {} stores, p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms ({} errors, issuer at most {:.1} ms late)",
        v.len(),
        pct(&v, 0.5),
        pct(&v, 0.99),
        pct(&v, 0.999),
        pct(&v, 1.0),
        l.errors,
        l.late.as_secs_f64() * 1000.0
    );
    pct(&v, 0.99)
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir_in(&a.dir).unwrap();
    let mut config = StoreConfig::default();
    let need = a.messages * (a.payload as u64 + CAP_OVERHEAD);
    if config.max_db_bytes.is_some_and(|cap| need > cap) {
        println!(
            "{} MiB would exceed the default cap: lifted (the node's max_db_mib = 0)",
            need >> 20
        );
        config.max_db_bytes = None;
    }
    if let Some(l) = a.sweep_limit {
        config.sweep_limit = l;
    }
    println!("config: {config:?}");
    println!("start: {}, load {}", rss(), loadavg());
    let store = Store::open(dir.path().join("store"), config).unwrap();

    let checked = load(&store, &a);
    let payload_bytes = a.messages * a.payload as u64;
    report_disk("after load", dir.path(), a.messages, payload_bytes);
    let st = store.stats().unwrap();
    println!(
        "  stats: {} messages, {} data bytes, db_bytes {}",
        st.messages, st.bytes, st.db_bytes
    );

    println!(
        "time moved to T0 + {} min: {} messages are expired and due for the sweep",
        (T_MEASURE - T0) / 60_000,
        a.expiring
    );
    check_expired_hidden(&store, &checked);

    let mut next = a.messages;
    let cpu0 = cpu_secs();
    let t = SystemClock.instant();
    let base = offer(&store, &a, next);
    next += a.stores;
    println!(
        "no sweep: CPU {:.2} cores, load {}",
        (cpu_secs() - cpu0) / SystemClock.since(t).as_secs_f64(),
        loadavg()
    );
    let p99_base = summary("  stores without a sweep", &base, |_| true);

    // The sweep as the node runs it: calls back to back while the store says more remain.
    let sweeping = Arc::new(AtomicBool::new(true));
    let sweeper = {
        let store = store.clone();
        let sweeping = sweeping.clone();
        std::thread::spawn(move || {
            let start = SystemClock.instant();
            let (mut deleted, mut calls, mut longest) = (0u64, 0u64, Duration::ZERO);
            loop {
                let c = SystemClock.instant();
                let out = store.sweep_expired(T_MEASURE).wait().unwrap();
                longest = longest.max(SystemClock.since(c));
                deleted += out.messages;
                calls += 1;
                if !out.more {
                    break;
                }
            }
            let end = SystemClock.instant();
            sweeping.store(false, Ordering::Relaxed);
            (start, end, deleted, calls, longest)
        })
    };
    let cpu0 = cpu_secs();
    let t = SystemClock.instant();
    let during = offer(&store, &a, next);
    next += a.stores;
    let window = SystemClock.since(t);
    let window_cpu = cpu_secs() - cpu0;
    let still_sweeping = sweeping.load(Ordering::Relaxed);
    let (s0, s1, deleted, calls, longest) = sweeper.join().unwrap();
    println!(
        "sweep: {deleted} messages deleted in {calls} calls, {:.1} s (longest call {:.0} ms); store window {:.1} s, sweep {}; CPU {:.2} cores over the window, load {}",
        s1.duration_since(s0).as_secs_f64(),
        longest.as_secs_f64() * 1000.0,
        window.as_secs_f64(),
        if still_sweeping {
            "still running at its end"
        } else {
            "ended inside it"
        },
        window_cpu / window.as_secs_f64(),
        loadavg()
    );
    let p99_all = summary("  stores while sweeping (all)", &during, |_| true);
    let p99_in = summary("  stores submitted while the sweep ran", &during, |at| {
        at >= s0 && at < s1
    });
    println!(
        "  p99 ratio with/without the sweep: {:.2} (all), {:.2} (during)",
        p99_all / p99_base,
        p99_in / p99_base
    );
    check_expired_hidden(&store, &checked);

    let cpu0 = cpu_secs();
    let t = SystemClock.instant();
    let after = offer(&store, &a, next);
    next += a.stores;
    println!(
        "after the sweep: CPU {:.2} cores, load {}",
        (cpu_secs() - cpu0) / SystemClock.since(t).as_secs_f64(),
        loadavg()
    );
    summary("  stores after the sweep", &after, |_| true);

    let st = store.stats().unwrap();
    let held = a.messages - deleted + (next - a.messages);
    assert_eq!(st.messages, held, "messages held after the sweep");
    report_disk("after the sweep", dir.path(), held, held * a.payload as u64);
    println!("final: {}, load {}", rss(), loadavg());
}
