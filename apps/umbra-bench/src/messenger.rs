//! `umbra-bench messenger`: the client's figures (issue 6) on a running network, through the
//! production client library exactly as the `umbra` CLI drives it (a [`Profile`] on disk, an
//! [`OnionTransport`] per client, [`OnionSwarm`], [`Messenger`]).
//!
//! ```text
//!  ceiling   a fresh account: N × 3-hop onion retrieve with nothing stored (the floor under
//!            delivery latency) and N × 3-hop onion store of a 600-byte blob
//!  latency   bob (accepted alice first) loops on Messenger::receive_wait; alice sends N
//!            messages one after another; latency = bob's receive_wait returned with it −
//!            alice's send_text returned
//!  send rate alice sends N messages back-to-back to carol (an account nobody reads)
//!  restore   K filler accounts put M messages into rita's swarm (concurrently, each sending
//!            sequentially), then rita is restored from her recovery phrase into a new profile
//!            and polled with Messenger::receive until her history holds all of them; the
//!            ceiling is retrieving every page from the same node without decrypting or saving
//! ```
//!
//! All clients run in this one process and share its runtime and the machine with the devnet.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};
use umbra_crypto::{Identity, OsRandom, Random as _, SessionId, mnemonic};
use umbra_messenger::{Event, KdfParams, MessageStatus, Messenger, OnionSwarm, Profile, SwarmApi};
use umbra_net::{OnionTransport, TransportConfig};

use crate::dist::{dist_json, dist_line};
use crate::network::{CpuSpan, Network};
use crate::sys::{self, Machine};

/// Storage TTL of the ceiling's raw stores (the messenger's default, 14 days).
const PROBE_TTL_MS: u64 = 14 * 24 * 3_600_000;

/// What the client benchmark measures, against which network.
#[derive(Debug, Clone, Args)]
pub(crate) struct MessengerArgs {
    /// The network file of a running network (`umbra devnet up --dir DIR` writes
    /// `DIR/network.json`).
    #[arg(long, env = "UMBRA_NETWORK")]
    pub(crate) network: PathBuf,
    /// Messages alice sends bob in the latency phase (0 skips the phase).
    #[arg(long, default_value_t = 1_000)]
    pub(crate) messages: usize,
    /// Pause between two sends of the latency phase, in ms.
    #[arg(long, default_value_t = 20)]
    pub(crate) pause_ms: u64,
    /// Messages alice sends back-to-back in the send-rate phase (0 skips the phase).
    #[arg(long, default_value_t = 1_000)]
    pub(crate) send_rate: usize,
    /// Messages put into the restored account's swarm (0 skips the restore phase).
    #[arg(long, default_value_t = 5_000)]
    pub(crate) restore: usize,
    /// Sending accounts that fill the restored account's swarm at the same time (each sends
    /// its share one message after another).
    #[arg(long, default_value_t = 8)]
    pub(crate) fillers: usize,
    /// Onion round trips of each ceiling (retrieve with nothing new; store).
    #[arg(long, default_value_t = 200)]
    pub(crate) ceiling: usize,
    /// Seconds to wait for what has not arrived yet (messages after the last send, replication
    /// of the filled swarm, the restore).
    #[arg(long, default_value_t = 120)]
    pub(crate) timeout: u64,
    /// Worker threads of the async runtime that all the clients share.
    #[arg(long, default_value_t = 2)]
    pub(crate) client_threads: usize,
    /// Print the summary as one JSON line starting with `RESULT ` as well.
    #[arg(long)]
    pub(crate) json: bool,
}

/// One client: a profile's messenger, its own onion transport, and the swarm access the
/// messenger uses (kept for the ceilings' raw requests).
pub(crate) struct Client {
    pub(crate) messenger: Arc<Messenger>,
    transport: OnionTransport,
    swarm: Arc<OnionSwarm>,
}

impl Client {
    fn id(&self) -> SessionId {
        self.messenger.session_id()
    }
}

/// Creates a profile named `name` under `base` and connects it as the CLI does
/// (`umbra::client::context::online_with`): guards kept in the profile, no /24 diversity on a
/// devnet (every node is on 127.0.0.1).
pub(crate) fn client(base: &Path, name: &str, net: &Network) -> anyhow::Result<(Client, String)> {
    let (profile, phrase) =
        Profile::create(&base.join(name), None, KdfParams::default(), &mut OsRandom)
            .with_context(|| format!("creating the profile of {name}"))?;
    let c = connect(profile, net)?;
    c.messenger.set_display_name(name)?;
    Ok((c, phrase.as_str().to_string()))
}

pub(crate) fn connect(profile: Profile, net: &Network) -> anyhow::Result<Client> {
    let mut config = TransportConfig {
        state_dir: Some(profile.dir().join("network")),
        ..TransportConfig::default()
    };
    config.paths.subnet_diversity = !net.devnet;
    let transport =
        OnionTransport::new(&net.config, config).context("setting up the onion transport")?;
    let swarm = Arc::new(OnionSwarm::new(transport.clone(), Arc::new(SystemClock)));
    let api: Arc<dyn SwarmApi> = swarm.clone();
    let messenger = Arc::new(Messenger::new(
        profile,
        api,
        Arc::new(SystemClock),
        Box::new(OsRandom),
    ));
    Ok(Client {
        messenger,
        transport,
        swarm,
    })
}

/// Fetches the verified node list and builds tested onion paths.
pub(crate) async fn ready(c: &Client, net: &Network) -> anyhow::Result<()> {
    c.transport.ensure_ready().await.map_err(|e| {
        anyhow!(
            "the network of {} cannot be reached ({e}): is the devnet running (`umbra devnet status --dir DIR`)?",
            net.path.display()
        )
    })
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the client benchmark; prints the report and returns its JSON summary.
pub(crate) async fn run(args: &MessengerArgs) -> anyhow::Result<Value> {
    let net = Network::load(&args.network)?;
    let machine = Machine::read();
    machine.print_header("umbra-bench messenger", "the client");
    println!(
        "network: {} ({} nodes in the file{}); clients: this process, {} runtime thread(s)",
        net.path.display(),
        net.nodes,
        if net.pids.is_empty() {
            String::new()
        } else {
            format!(", {} devnet processes watched for CPU", net.pids.len())
        },
        args.client_threads,
    );

    let tmp = tempfile::Builder::new()
        .prefix("umbra-bench-messenger-")
        .tempdir()
        .context("creating the temporary profiles")?;
    let mut summary = serde_json::Map::new();
    summary.insert(
        "machine".into(),
        json!({"cpus": machine.cpus, "cpu_model": machine.cpu_model, "loadavg_start": machine.loadavg}),
    );

    let t = SystemClock.instant();
    let (alice, _) = client(tmp.path(), "alice", &net)?;
    let (bob, _) = client(tmp.path(), "bob", &net)?;
    ready(&alice, &net).await?;
    ready(&bob, &net).await?;
    println!(
        "alice and bob: profiles created, node list verified, onion paths tested in {:.2} s",
        SystemClock.since(t).as_secs_f64()
    );

    summary.insert("ceiling".into(), ceilings(args, &bob, &net).await?);

    // bob accepts alice's request, so that what follows are ordinary messages.
    let timeout = Duration::from_secs(args.timeout);
    let hello = alice.messenger.send_text(&bob.id(), "hello bob").await?;
    wait_for(&bob.messenger, &alice.id(), hello.sent_ms, timeout).await?;
    bob.messenger.accept_request(&alice.id()).await?;
    let answer = bob.messenger.send_text(&alice.id(), "hello alice").await?;
    wait_for(&alice.messenger, &bob.id(), answer.sent_ms, timeout).await?;
    println!("bob accepted alice's message request and answered it");

    if args.messages > 0 {
        summary.insert("latency".into(), latency(args, &alice, &bob, &net).await?);
    }
    if args.send_rate > 0 {
        summary.insert("send_rate".into(), send_rate(args, &alice, &net).await?);
    }
    drop((alice, bob));
    if args.restore > 0 {
        summary.insert("restore".into(), restore(args, tmp.path(), &net).await?);
    }
    let load = sys::loadavg();
    println!("load average at the end: {load}");
    summary.insert("loadavg_end".into(), json!(load));
    Ok(Value::Object(summary))
}

/// Polls `to` (through [`Messenger::receive_wait`]) until the message of `from` sent at
/// `sent_ms` is there.
pub(crate) async fn wait_for(
    to: &Messenger,
    from: &SessionId,
    sent_ms: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let t0 = SystemClock.instant();
    while SystemClock.since(t0) < timeout {
        let left = timeout.saturating_sub(SystemClock.since(t0));
        for e in to.receive_wait(left).await? {
            if let Event::Message { message, .. } = e
                && message.author == *from
                && message.sent_ms == sent_ms
            {
                return Ok(());
            }
        }
    }
    bail!(
        "a message did not arrive within {} s (raise --timeout, or check the devnet with `umbra devnet status`)",
        timeout.as_secs()
    )
}

/// The ceilings: raw 3-hop onion round trips through bob's transport (the paths his
/// `receive` uses), for fresh accounts. A retrieve with nothing stored is the floor of one
/// poll; a store is what `send_text` does twice (recipient's copy, then our sync copy).
async fn ceilings(args: &MessengerArgs, bob: &Client, net: &Network) -> anyhow::Result<Value> {
    let n = args.ceiling.max(1);
    let mut rng = OsRandom;
    let empty = Identity::generate(&mut rng);
    let nodes = bob.swarm.nodes(&empty.session_id()).await?;
    let node = nodes
        .first()
        .ok_or_else(|| anyhow!("the network file lists no node for a swarm"))?;
    let warmup = 10;
    let mut retrieves = Vec::with_capacity(n);
    let cpu = CpuSpan::start(net);
    for i in 0..n + warmup {
        let t = SystemClock.instant();
        let page = bob.swarm.retrieve(&empty, 0, node, None).await?;
        if i >= warmup {
            retrieves.push(SystemClock.since(t));
        }
        if !page.messages.is_empty() {
            bail!("the ceiling's fresh account unexpectedly has messages");
        }
    }
    let (r_cpu, r_cpu_json) = cpu.cores(net);
    retrieves.sort_unstable();

    let sink = Identity::generate(&mut rng).session_id();
    let mut data = vec![0u8; 600];
    let mut stores = Vec::with_capacity(n);
    let cpu = CpuSpan::start(net);
    for i in 0..n + warmup {
        rng.fill(&mut data);
        let t = SystemClock.instant();
        bob.swarm
            .store(&sink, 0, &data, now_ms(), PROBE_TTL_MS)
            .await?;
        if i >= warmup {
            stores.push(SystemClock.since(t));
        }
    }
    let (s_cpu, s_cpu_json) = cpu.cores(net);
    stores.sort_unstable();
    println!(
        "ceiling: 3-hop onion retrieve, nothing new ({n} sequential, after {warmup} warm-up): {}; {r_cpu}",
        dist_line(&retrieves)
    );
    println!(
        "ceiling: 3-hop onion store, 600 bytes ({n} sequential): {}; {s_cpu}",
        dist_line(&stores)
    );
    Ok(json!({
        "retrieve_nothing_new": dist_json(&retrieves),
        "retrieve_cpu_cores": r_cpu_json,
        "store_600_bytes": dist_json(&stores),
        "store_cpu_cores": s_cpu_json,
    }))
}

/// What bob's receive loop saw.
#[derive(Default)]
struct Arrivals {
    /// `sent_ms` of alice's messages → when `receive_wait` returned with them.
    shown: HashMap<u64, Instant>,
    calls: u64,
    errors: u64,
    last_error: Option<String>,
}

async fn latency(
    args: &MessengerArgs,
    alice: &Client,
    bob: &Client,
    net: &Network,
) -> anyhow::Result<Value> {
    let n = args.messages;
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (bob, alice_id) = (bob.messenger.clone(), alice.id());
        let (arrivals, stop) = (arrivals.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let got = bob.receive_wait(Duration::from_secs(1)).await;
                let now = SystemClock.instant();
                let mut a = lock(&arrivals);
                a.calls += 1;
                match got {
                    Ok(events) => {
                        for e in events {
                            if let Event::Message { message, .. } = e
                                && message.author == alice_id
                            {
                                a.shown.entry(message.sent_ms).or_insert(now);
                            }
                        }
                    }
                    Err(e) => {
                        a.errors += 1;
                        a.last_error = Some(e.to_string());
                    }
                }
            }
        })
    };

    let pause = Duration::from_millis(args.pause_ms);
    // (sent_ms, send_text called, send_text returned)
    let mut sent: Vec<(u64, Instant, Instant)> = Vec::with_capacity(n);
    let mut statuses: HashMap<&'static str, u64> = HashMap::new();
    let mut send_times = Vec::with_capacity(n);
    let cpu = CpuSpan::start(net);
    let t0 = SystemClock.instant();
    for i in 0..n {
        let text = format!("latency benchmark message {} of {n}", i + 1);
        let t = SystemClock.instant();
        let m = alice.messenger.send_text(&bob.id(), &text).await?;
        let returned = SystemClock.instant();
        send_times.push(returned - t);
        sent.push((m.sent_ms, t, returned));
        *statuses.entry(status_name(m.status)).or_default() += 1;
        tokio::time::sleep(pause).await;
    }
    let sending = SystemClock.since(t0);
    let deadline = SystemClock.instant() + Duration::from_secs(args.timeout);
    loop {
        let have = {
            let a = lock(&arrivals);
            sent.iter()
                .filter(|(s, _, _)| a.shown.contains_key(s))
                .count()
        };
        if have == n || SystemClock.instant() >= deadline {
            break;
        }
        if statuses.get("queued").copied().unwrap_or(0) > 0 {
            // Queued messages leave alice's outbox only when she flushes it again.
            if let Err(e) = alice.messenger.flush_outbox().await {
                println!("latency: flushing alice's outbox failed: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (c_cpu, c_cpu_json) = cpu.cores(net);
    stop.store(true, Ordering::Relaxed);
    receiver
        .await
        .map_err(|e| anyhow!("bob's receive task failed: {e}"))?;

    let a = lock(&arrivals);
    let mut lat = Vec::with_capacity(n);
    let mut early = 0u64;
    let mut missing = 0u64;
    let mut from_call = Vec::with_capacity(n);
    for (s, called, returned) in &sent {
        if let Some(shown) = a.shown.get(s) {
            from_call.push(shown.saturating_duration_since(*called));
        }
        match a.shown.get(s) {
            Some(shown) if shown < returned => {
                early += 1;
                lat.push(Duration::ZERO);
            }
            Some(shown) => lat.push(*shown - *returned),
            None => missing += 1,
        }
    }
    lat.sort_unstable();
    from_call.sort_unstable();
    send_times.sort_unstable();
    println!(
        "latency: alice sent {n} messages to bob one after another ({} ms pause after each) in {:.1} s; send_text returned {:?}; send_text took {}",
        args.pause_ms,
        sending.as_secs_f64(),
        statuses,
        dist_line(&send_times),
    );
    println!(
        "latency: send returned → shown by bob's receive_wait loop, {} of {n} arrived{}: {}",
        lat.len(),
        if missing > 0 {
            format!(" ({missing} MISSING after {} s)", args.timeout)
        } else {
            String::new()
        },
        dist_line(&lat),
    );
    println!(
        "latency: send_text called → shown (includes the send itself): {}",
        dist_line(&from_call),
    );
    println!(
        "latency: {early} shown before alice's send_text returned (counted as 0 ms); bob's receive_wait: {} calls, {} errors{}; {c_cpu}",
        a.calls,
        a.errors,
        a.last_error
            .as_deref()
            .map(|e| format!(" (last: {e})"))
            .unwrap_or_default(),
    );
    Ok(json!({
        "messages": n,
        "pause_ms": args.pause_ms,
        "arrived": lat.len(),
        "missing": missing,
        "shown_before_send_returned": early,
        "delivery": dist_json(&lat),
        "delivery_from_send_call": dist_json(&from_call),
        "send_text": dist_json(&send_times),
        "send_status": statuses,
        "receive_wait_calls": a.calls,
        "receive_errors": a.errors,
        "cpu_cores": c_cpu_json,
    }))
}

fn status_name(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Sent => "sent",
        MessageStatus::Queued => "queued",
        MessageStatus::Failed => "failed",
        MessageStatus::Received => "received",
    }
}

/// Alice sends back-to-back to carol, an account nobody reads (no receiver competes for the
/// CPU).
async fn send_rate(args: &MessengerArgs, alice: &Client, net: &Network) -> anyhow::Result<Value> {
    let n = args.send_rate;
    let carol = Identity::generate(&mut OsRandom).session_id();
    let mut statuses: HashMap<&'static str, u64> = HashMap::new();
    let mut times = Vec::with_capacity(n);
    let cpu = CpuSpan::start(net);
    let t0 = SystemClock.instant();
    for i in 0..n {
        let text = format!("send rate benchmark message {} of {n}", i + 1);
        let t = SystemClock.instant();
        let m = alice.messenger.send_text(&carol, &text).await?;
        times.push(SystemClock.since(t));
        *statuses.entry(status_name(m.status)).or_default() += 1;
    }
    let wall = SystemClock.since(t0);
    let (c_cpu, c_cpu_json) = cpu.cores(net);
    times.sort_unstable();
    let rate = n as f64 / wall.as_secs_f64().max(1e-9);
    println!(
        "send rate: one client, {n} sequential send_text in {:.2} s → {rate:.1} messages/s; {:?}; send_text took {}; {c_cpu}",
        wall.as_secs_f64(),
        statuses,
        dist_line(&times),
    );
    Ok(json!({
        "messages": n,
        "wall_s": wall.as_secs_f64(),
        "messages_per_s": rate,
        "send_status": statuses,
        "send_text": dist_json(&times),
        "cpu_cores": c_cpu_json,
    }))
}

/// Fills a fresh account's swarm, then times restoring it from its recovery phrase.
async fn restore(args: &MessengerArgs, base: &Path, net: &Network) -> anyhow::Result<Value> {
    let total = args.restore;
    let k = args.fillers.clamp(1, total);
    let timeout = Duration::from_secs(args.timeout);
    let (rita, phrase) = client(base, "rita", net)?;
    let rita_id = rita.id();
    // The same identity as rita's profile, for the ceiling's raw retrieves.
    let rita_identity = Identity::from_entropy16(&*mnemonic::from_phrase(&phrase)?);
    ready(&rita, net).await?;
    let mut fillers = Vec::with_capacity(k);
    for i in 0..k {
        let (c, _) = client(base, &format!("filler-{i}"), net)?;
        ready(&c, net).await?;
        // rita writes first, so that the fillers are her contacts, not message requests (her
        // swarm gets her sync copy of each of these).
        rita.messenger.send_text(&c.id(), "hi").await?;
        fillers.push(c);
    }
    let expected = total + k;

    // Fill: K clients at once, each sending its share sequentially.
    let cpu = CpuSpan::start(net);
    let t0 = SystemClock.instant();
    let mut tasks = Vec::with_capacity(k);
    for (i, f) in fillers.iter().enumerate() {
        let share = total / k + usize::from(i < total % k);
        let m = f.messenger.clone();
        tasks.push(tokio::spawn(async move {
            let mut queued = 0u64;
            for j in 0..share {
                let text = format!("restore benchmark message {} of {share}", j + 1);
                let sent = m.send_text(&rita_id, &text).await?;
                if sent.status != MessageStatus::Sent {
                    queued += 1;
                }
            }
            // Deliver whatever stayed queued (retries wait for their backoff).
            let deadline = SystemClock.instant() + Duration::from_secs(120);
            while !m.outbox()?.is_empty() && SystemClock.instant() < deadline {
                m.flush_outbox().await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            anyhow::Ok((queued, m.outbox()?.len()))
        }));
    }
    let mut queued = 0;
    let mut left = 0;
    for t in tasks {
        let (q, l) = t
            .await
            .map_err(|e| anyhow!("a filler task failed: {e}"))??;
        queued += q;
        left += l;
    }
    let fill = SystemClock.since(t0);
    let (f_cpu, f_cpu_json) = cpu.cores(net);
    println!(
        "restore: {k} fillers put {total} messages into rita's swarm at once (each sending its share one after another) in {:.1} s → {:.0} messages/s; {queued} first queued, {left} still queued at the end; {f_cpu}",
        fill.as_secs_f64(),
        total as f64 / fill.as_secs_f64().max(1e-9),
    );
    if left > 0 {
        bail!("{left} filler messages could not be delivered; the restore would be incomplete");
    }
    drop(fillers);
    drop(rita);

    // Wait until every node of rita's swarm holds everything (replication), untimed.
    let (probe, _) = client(base, "probe", net)?;
    ready(&probe, net).await?;
    let nodes = probe.swarm.nodes(&rita_id).await?;
    let t = SystemClock.instant();
    for node in &nodes {
        loop {
            let (have, _, _) = retrieve_all(&probe, &rita_identity, node).await?;
            if have >= expected {
                break;
            }
            if SystemClock.since(t) > timeout {
                bail!(
                    "a node of rita's swarm holds {have} of {expected} messages after {} s",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    println!(
        "restore: all {} nodes of rita's swarm hold the {expected} messages ({total} + {k} of her own sync copies), {:.1} s after the fill",
        nodes.len(),
        SystemClock.since(t).as_secs_f64()
    );
    // Ceiling: every page from the node the messenger polls first, nothing decrypted or saved.
    let node = nodes
        .first()
        .ok_or_else(|| anyhow!("rita's swarm has no node"))?;
    let cpu = CpuSpan::start(net);
    let (raw_count, raw_pages, raw_time) = retrieve_all(&probe, &rita_identity, node).await?;
    let (rc_cpu, rc_cpu_json) = cpu.cores(net);
    println!(
        "restore ceiling: retrieving all {raw_count} messages in {raw_pages} pages (3-hop onion, no decryption, nothing saved) took {:.2} s → {:.0} messages/s; {rc_cpu}",
        raw_time.as_secs_f64(),
        raw_count as f64 / raw_time.as_secs_f64().max(1e-9),
    );
    drop(probe);

    // The restore: a new profile from the phrase, a new transport, then receive until done.
    let cpu = CpuSpan::start(net);
    let t0 = SystemClock.instant();
    let profile = Profile::restore(
        &base.join("rita-restored"),
        &phrase,
        None,
        KdfParams::default(),
        &mut OsRandom,
    )?;
    let restored = connect(profile, net)?;
    ready(&restored, net).await?;
    let setup = SystemClock.since(t0);
    let mut got = 0usize;
    let mut polls = 0u64;
    let mut errors = 0u64;
    while got < expected && SystemClock.since(t0) < timeout {
        polls += 1;
        match restored.messenger.receive().await {
            Ok(events) => {
                got += events
                    .iter()
                    .filter(|e| matches!(e, Event::Message { .. }))
                    .count();
            }
            Err(e) => {
                errors += 1;
                println!("restore: a poll failed: {e}");
            }
        }
    }
    let took = SystemClock.since(t0);
    let (r_cpu, r_cpu_json) = cpu.cores(net);
    let mut incoming = 0usize;
    let mut outgoing = 0usize;
    for c in restored.messenger.conversations()? {
        for m in restored.messenger.history(&c.contact.session_id)? {
            if m.outgoing {
                outgoing += 1;
            } else {
                incoming += 1;
            }
        }
    }
    let requests = restored.messenger.requests()?.len();
    println!(
        "restore: new profile from the phrase + node list + onion paths {:.2} s; then {polls} receive() calls ({errors} failed) until {got} of {expected} messages were saved; total {:.2} s → {:.0} messages/s; history now holds {incoming} incoming and {outgoing} outgoing messages ({requests} message requests); {r_cpu}",
        setup.as_secs_f64(),
        took.as_secs_f64(),
        expected as f64 / took.as_secs_f64().max(1e-9),
    );
    if incoming < total {
        println!(
            "restore: INCOMPLETE — {incoming} of {total} incoming messages after {} s",
            args.timeout
        );
    }
    Ok(json!({
        "messages": total,
        "fillers": k,
        "expected_in_swarm": expected,
        "fill_s": fill.as_secs_f64(),
        "fill_messages_per_s": total as f64 / fill.as_secs_f64().max(1e-9),
        "fill_cpu_cores": f_cpu_json,
        "setup_s": setup.as_secs_f64(),
        "restore_s": took.as_secs_f64(),
        "restore_messages_per_s": expected as f64 / took.as_secs_f64().max(1e-9),
        "receive_calls": polls,
        "receive_errors": errors,
        "history_incoming": incoming,
        "history_outgoing": outgoing,
        "ceiling_retrieve_all_s": raw_time.as_secs_f64(),
        "ceiling_pages": raw_pages,
        "ceiling_messages": raw_count,
        "ceiling_cpu_cores": rc_cpu_json,
        "cpu_cores": r_cpu_json,
    }))
}

/// Retrieves every message of `who` from `node`, page after page from the start. Returns the
/// count, the pages and the time.
async fn retrieve_all(
    via: &Client,
    who: &Identity,
    node: &str,
) -> anyhow::Result<(usize, usize, Duration)> {
    let t = SystemClock.instant();
    let mut last: Option<umbra_crypto::MessageHash> = None;
    let mut count = 0;
    let mut pages = 0;
    loop {
        let page = via.swarm.retrieve(who, 0, node, last.as_ref()).await?;
        pages += 1;
        count += page.messages.len();
        match page.messages.last() {
            Some(m) if page.more => last = Some(m.hash),
            _ => break,
        }
    }
    Ok((count, pages, SystemClock.since(t)))
}
