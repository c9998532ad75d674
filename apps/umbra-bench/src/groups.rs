//! `umbra-bench groups`: one group of N members (1 000 by default) on a running network
//! (issue 15), every member polling the group's swarm through 3-hop onion paths as a member
//! client does, to measure how long a message takes to reach all of them.
//!
//! ```text
//!  create   the admin keys the group for N members (one keys message), builds the Info and
//!           Members configs, and stores the three in the group swarm (admin signature)
//!  join     every member checks its subaccount (what its invitation carries), fetches the
//!           keys message from the group swarm and finds its key in it (64 at a time)
//!  fan-out  every member long-polls namespace 11 (`umbra_wait_ms`), decrypting what arrives;
//!           the creator sends M messages one after another; for each, the time from the
//!           start of its send to each member holding it decrypted, and until all N do
//!  stored   one retrieve of namespace 11 at the end: M messages, whatever N is
//!  invite   (--invitations) a second group of the same members made by the messenger
//!           itself, timed until its outbox delivered every invitation
//! ```
//!
//! The members are lightweight pollers, not N full clients: N identities with their
//! subaccounts and keys in this one process, sharing one onion transport (one set of guard
//! connections), each with its own long-poll loop. What a full client adds per member (its
//! SQLite profile, its own guards) is not exercised; the network sees N independent
//! subaccount-signed onion requests per round, as from N clients behind one set of guards.
//! The first group sends no invitations: each member gets its subaccount straight from the
//! admin's key (`GroupAdmin::member_auth`, the bytes an invitation carries); their cost is the
//! `invite` phase's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use umbra_crypto::{Identity, MessageHash, OsRandom, SessionId};
use umbra_groups::{
    Flags, GroupAdmin, GroupInfo, GroupKeys, GroupMembers, GroupPublic, Member, Role, Subaccount,
    decrypt_message, encrypt_message, namespace,
};
use umbra_messenger::{GROUP_CONFIG_TTL_MS, GroupAuth, OnionSwarm, SwarmApi};
use umbra_net::{OnionTransport, TransportConfig};

use crate::dist::{dist_json, dist_line, ms};
use crate::network::{CpuSpan, Network};
use crate::sys::Machine;

/// Storage TTL of the benchmark's group messages (the messenger's default, 14 days).
const MESSAGE_TTL_MS: u64 = 14 * 24 * 3_600_000;
/// Members joining (fetching the keys message) at the same time.
const JOIN_CONCURRENCY: usize = 64;
/// Bytes of each message's payload (a short text's envelope, as the groups benchmark).
const PAYLOAD: usize = 160;

/// What the group benchmark measures, against which network.
#[derive(Debug, Clone, Args)]
pub(crate) struct GroupsArgs {
    /// The network file of a running network (`umbra devnet up --dir DIR` writes
    /// `DIR/network.json`).
    #[arg(long, env = "UMBRA_NETWORK")]
    pub(crate) network: std::path::PathBuf,
    /// Members of the group, the creator included.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) members: usize,
    /// Messages the creator sends, one after another.
    #[arg(long, default_value_t = 5)]
    pub(crate) messages: usize,
    /// Pause after every member holds a message before the next is sent, ms.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) pause_ms: u64,
    /// How long each long-poll may wait at the node, ms (the node caps it at 20 000).
    #[arg(long, default_value_t = 15_000)]
    pub(crate) wait_ms: u64,
    /// Give up on a message that has not reached every member after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub(crate) timeout: u64,
    /// Worker threads of the members' async runtime.
    #[arg(long, default_value_t = 1)]
    pub(crate) client_threads: usize,
    /// Also create a second group of the same members with the messenger itself, as the
    /// CLI's `group create` does, and time it until every invitation is delivered (one
    /// one-to-one message per member, each to its own swarm).
    #[arg(long)]
    pub(crate) invitations: bool,
    /// Print the summary as one JSON line starting with `RESULT ` as well.
    #[arg(long)]
    pub(crate) json: bool,
}

/// One member of the group: its identity, its subaccount and the keys it found.
struct Poller {
    identity: Identity,
    sub: Subaccount,
    keys: GroupKeys,
}

/// What the pollers saw: when each member first held each message (by sequence number).
struct Arrivals {
    /// `at[seq][member]`: since the benchmark's epoch, ns + 1 (0: not yet).
    at: Vec<Vec<AtomicU64>>,
    /// Members holding message `seq`.
    count: Vec<AtomicUsize>,
    epoch: Instant,
    polls: AtomicU64,
    errors: AtomicU64,
    /// Messages that did not decrypt or carried an unknown sequence number.
    refused: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

impl Arrivals {
    fn new(messages: usize, members: usize) -> Arrivals {
        Arrivals {
            at: (0..messages)
                .map(|_| (0..members).map(|_| AtomicU64::new(0)).collect())
                .collect(),
            count: (0..messages).map(|_| AtomicUsize::new(0)).collect(),
            epoch: SystemClock.instant(),
            polls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_error: std::sync::Mutex::new(None),
        }
    }

    fn record(&self, seq: usize, member: usize) {
        let now = SystemClock.since(self.epoch).as_nanos();
        let stamp = u64::try_from(now).unwrap_or(u64::MAX - 1) + 1;
        if self.at[seq][member]
            .compare_exchange(0, stamp, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.count[seq].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// When `member` first held `seq`, if it has.
    fn arrival(&self, seq: usize, member: usize) -> Option<Instant> {
        match self.at[seq][member].load(Ordering::Relaxed) {
            0 => None,
            stamp => Some(self.epoch + Duration::from_nanos(stamp - 1)),
        }
    }

    fn failed(&self, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
    }
}

/// Runs the group benchmark; prints the report and returns its JSON summary.
pub(crate) async fn run(args: &GroupsArgs) -> anyhow::Result<Value> {
    if args.members < 2 {
        bail!("--members must be at least 2 (the creator and one member)");
    }
    if args.members > umbra_messenger::MAX_GROUP_MEMBERS {
        bail!(
            "--members {} is over the messenger's limit of {} members per group",
            args.members,
            umbra_messenger::MAX_GROUP_MEMBERS
        );
    }
    let net = Network::load(&args.network)?;
    let machine = Machine::read();
    machine.print_header("umbra-bench groups", "the client");
    println!(
        "network: {} ({} nodes in the file); {} members polling through one onion transport, {} runtime thread(s)",
        net.path.display(),
        net.nodes,
        args.members,
        args.client_threads.max(1),
    );

    let mut config = TransportConfig::default();
    config.paths.subnet_diversity = !net.devnet;
    let transport =
        OnionTransport::new(&net.config, config).context("setting up the onion transport")?;
    transport.ensure_ready().await.map_err(|e| {
        anyhow!(
            "the network of {} cannot be reached ({e}): is the devnet running (`umbra devnet status --dir DIR`)?",
            net.path.display()
        )
    })?;
    let swarm = Arc::new(OnionSwarm::new(transport, Arc::new(SystemClock)));

    let admin = GroupAdmin::generate(&mut OsRandom);
    let people: Vec<Identity> = (0..args.members)
        .map(|_| Identity::generate(&mut OsRandom))
        .collect();
    let ids: Vec<SessionId> = people.iter().map(Identity::session_id).collect();

    let (create, creator_keys) = create(&swarm, &admin, &ids, &net).await?;
    let (join, pollers) = join(&swarm, &admin, people, &net).await?;
    let (fanout, arrivals) = fan_out(args, &swarm, &admin, &pollers, creator_keys, &net).await?;
    let invitations = if args.invitations {
        invite(args, &ids[1..], &net).await?
    } else {
        Value::Null
    };
    let stored = count_stored(&swarm, &admin).await?;
    println!(
        "stored: namespace 11 of the group swarm holds {stored} message(s) after {} sent to {} members",
        args.messages, args.members
    );
    if stored != args.messages {
        bail!(
            "the group swarm holds {stored} messages, not the {} sent: a message was stored more or less than once",
            args.messages
        );
    }
    Ok(json!({
        "members": args.members,
        "messages": args.messages,
        "machine": {"cpus": machine.cpus, "loadavg_start": machine.loadavg},
        "debug_build": cfg!(debug_assertions),
        "create": create,
        "join": join,
        "fan_out": fanout,
        "stored_messages": stored,
        "invitations": invitations,
        "polls": arrivals.polls.load(Ordering::Relaxed),
        "poll_errors": arrivals.errors.load(Ordering::Relaxed),
    }))
}

/// Stores one message in `ns` of the group swarm with the admin's signature.
async fn put(
    swarm: &OnionSwarm,
    admin: &GroupAdmin,
    ns: i16,
    data: &[u8],
    ttl_ms: u64,
) -> anyhow::Result<MessageHash> {
    let ack = swarm
        .group_store(
            admin.public(),
            GroupAuth::Admin(admin),
            i32::from(ns),
            data,
            SystemClock.now_ms(),
            ttl_ms,
        )
        .await
        .with_context(|| format!("storing in namespace {ns} of the group swarm"))?;
    Ok(ack.hash)
}

/// The admin's part of creating the group (as `Messenger::create_group`, without the
/// invitations): returns its figures and the keys the creator (member 0) sends with.
async fn create(
    swarm: &OnionSwarm,
    admin: &GroupAdmin,
    ids: &[SessionId],
    net: &Network,
) -> anyhow::Result<(Value, GroupKeys)> {
    let public = *admin.public();
    let cpu = CpuSpan::start(net);
    let started = SystemClock.instant();
    let now = i64::try_from(SystemClock.now_ms()).unwrap_or(i64::MAX);
    let mut keys = GroupKeys::new(public);
    let keys_message = keys.rekey(admin, ids, now)?;
    let keys_built = SystemClock.since(started);
    let hash = put(
        swarm,
        admin,
        namespace::KEYS,
        &keys_message,
        GROUP_CONFIG_TTL_MS,
    )
    .await?;
    keys.load(Role::Admin(admin), hash.as_str(), &keys_message, now)?;

    let build = SystemClock.instant();
    let mut info = GroupInfo::new(&public, Some(admin), &keys)?;
    info.set_name("Benchmark group")?;
    info.set_created(now / 1000);
    let mut list = GroupMembers::new(&public, Some(admin), &keys)?;
    let entries = Member::founding(ids[0], "Creator", &ids[1..]);
    list.set_all(&entries)?;
    let info_push = info
        .state_mut()
        .push()?
        .map(|p| p.messages)
        .unwrap_or_default();
    let members_push = list
        .state_mut()
        .push()?
        .map(|p| p.messages)
        .unwrap_or_default();
    let configs_built = SystemClock.since(build);
    for m in &info_push {
        put(swarm, admin, namespace::INFO, m, GROUP_CONFIG_TTL_MS).await?;
    }
    for m in &members_push {
        put(swarm, admin, namespace::MEMBERS, m, GROUP_CONFIG_TTL_MS).await?;
    }
    let total = SystemClock.since(started);
    let (cpu_line, cpu_json) = cpu.cores(net);
    let info_bytes: usize = info_push.iter().map(Vec::len).sum();
    let members_bytes: usize = members_push.iter().map(Vec::len).sum();
    println!(
        "create: keys message {} B built in {:.1} ms, Info {} B + Members {} B built in {:.1} ms; \
         stored ({} messages) in {:.0} ms in all; {cpu_line}",
        keys_message.len(),
        ms(keys_built),
        info_bytes,
        members_bytes,
        ms(configs_built),
        1 + info_push.len() + members_push.len(),
        ms(total),
    );
    // The creator is member 0: it sends with the key it finds like any member.
    let creator_keys = keys;
    Ok((
        json!({
            "keys_message_bytes": keys_message.len(),
            "keys_build_ms": ms(keys_built),
            "info_bytes": info_bytes,
            "members_bytes": members_bytes,
            "configs_build_ms": ms(configs_built),
            "total_ms": ms(total),
            "cpu_cores": cpu_json,
        }),
        creator_keys,
    ))
}

/// Every member checks its subaccount, fetches the keys message from the group swarm and
/// finds its key; returns the figures and the members ready to poll.
async fn join(
    swarm: &Arc<OnionSwarm>,
    admin: &GroupAdmin,
    people: Vec<Identity>,
    net: &Network,
) -> anyhow::Result<(Value, Vec<Arc<Poller>>)> {
    let public = *admin.public();
    let gate = Arc::new(Semaphore::new(JOIN_CONCURRENCY));
    let cpu = CpuSpan::start(net);
    let started = SystemClock.instant();
    let mut tasks = Vec::with_capacity(people.len());
    for identity in people {
        let auth = admin.member_auth(&identity.session_id(), Flags::member(false, false));
        let swarm = swarm.clone();
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _slot = gate.acquire_owned().await?;
            let t = SystemClock.instant();
            let sub = Subaccount::verify(&auth, &identity, &public, 0)?;
            let page = swarm
                .group_retrieve(
                    &public,
                    GroupAuth::Member(&sub),
                    i32::from(namespace::KEYS),
                    None,
                )
                .await
                .context("fetching the keys message")?;
            let fetched = SystemClock.since(t);
            let find = SystemClock.instant();
            let mut keys = GroupKeys::new(public);
            for m in &page.messages {
                let ts = i64::try_from(m.timestamp_ms).unwrap_or(i64::MAX);
                keys.load(Role::Member(&identity), m.hash.as_str(), &m.data, ts)?;
            }
            let found = SystemClock.since(find);
            if keys.current_generation().is_none() {
                bail!("a member found no key for itself in the keys message");
            }
            anyhow::Ok((
                Poller {
                    identity,
                    sub,
                    keys,
                },
                fetched,
                found,
                SystemClock.since(t),
            ))
        }));
    }
    let mut pollers = Vec::with_capacity(tasks.len());
    let (mut fetch, mut find, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    for t in tasks {
        let (p, fetched, found, all) = t.await.context("a joining member's task")??;
        pollers.push(Arc::new(p));
        fetch.push(fetched);
        find.push(found);
        whole.push(all);
    }
    let total = SystemClock.since(started);
    let (cpu_line, cpu_json) = cpu.cores(net);
    fetch.sort_unstable();
    find.sort_unstable();
    whole.sort_unstable();
    println!(
        "join: {} members, {JOIN_CONCURRENCY} at a time, all in {:.1} s; fetch keys message: {}; \
         find own key: {}; {cpu_line}",
        pollers.len(),
        total.as_secs_f64(),
        dist_line(&fetch),
        dist_line(&find),
    );
    Ok((
        json!({
            "total_ms": ms(total),
            "concurrency": JOIN_CONCURRENCY,
            "fetch_keys_message": dist_json(&fetch),
            "find_own_key": dist_json(&find),
            "member": dist_json(&whole),
            "cpu_cores": cpu_json,
        }),
        pollers,
    ))
}

/// What every member's poll loop shares.
struct Fan {
    swarm: Arc<OnionSwarm>,
    group: GroupPublic,
    wait_ms: u64,
    /// Members that had their first answer.
    ready: AtomicUsize,
    arrivals: Arc<Arrivals>,
    stop: AtomicBool,
}

/// One member's long-poll loop: retrieve namespace 11 after the last hash seen, decrypt
/// what arrives, note the sequence numbers, again until `stop`.
async fn poll(member: usize, me: Arc<Poller>, fan: Arc<Fan>) {
    let Fan {
        swarm,
        group,
        wait_ms,
        ready,
        arrivals,
        stop,
    } = &*fan;
    let wait_ms = *wait_ms;
    let mut last: Option<MessageHash> = None;
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        // The first retrieve answers at once, so the benchmark knows the member is in place.
        let wait = if first { 0 } else { wait_ms };
        let page = swarm
            .group_retrieve_wait(
                group,
                GroupAuth::Member(&me.sub),
                i32::from(namespace::MESSAGES),
                last.as_ref(),
                wait,
            )
            .await;
        arrivals.polls.fetch_add(1, Ordering::Relaxed);
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                arrivals.failed(e);
                SystemClock.sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if first {
            first = false;
            ready.fetch_add(1, Ordering::Relaxed);
        }
        for m in &page.messages {
            match decrypt_message(&me.keys, &m.data)
                .ok()
                .and_then(|g| g.payload.get(..8).map(<[u8]>::to_vec))
                .and_then(|s| s.try_into().ok())
                .map(u64::from_le_bytes)
                .and_then(|s| usize::try_from(s).ok())
                .filter(|&s| s < arrivals.at.len())
            {
                Some(seq) => arrivals.record(seq, member),
                None => {
                    arrivals.refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let Some(m) = page.messages.last() {
            last = Some(m.hash);
        }
    }
}

/// The fan-out phase: every member long-polling, the creator sending one message after
/// another.
async fn fan_out(
    args: &GroupsArgs,
    swarm: &Arc<OnionSwarm>,
    admin: &GroupAdmin,
    pollers: &[Arc<Poller>],
    creator_keys: GroupKeys,
    net: &Network,
) -> anyhow::Result<(Value, Arc<Arrivals>)> {
    let group = *admin.public();
    let n = pollers.len();
    let arrivals = Arc::new(Arrivals::new(args.messages, n));
    let fan = Arc::new(Fan {
        swarm: swarm.clone(),
        group,
        wait_ms: args.wait_ms,
        ready: AtomicUsize::new(0),
        arrivals: arrivals.clone(),
        stop: AtomicBool::new(false),
    });
    let (ready, stop) = (&fan.ready, &fan.stop);
    let mut tasks = Vec::with_capacity(n);
    for (i, me) in pollers.iter().enumerate() {
        tasks.push(tokio::spawn(poll(i, me.clone(), fan.clone())));
    }
    let start = SystemClock.instant();
    while ready.load(Ordering::Relaxed) < n {
        if SystemClock.since(start) > Duration::from_secs(args.timeout) {
            bail!(
                "only {} of {n} members reached the group swarm in {} s (last error: {})",
                ready.load(Ordering::Relaxed),
                args.timeout,
                last_error(&arrivals)
            );
        }
        SystemClock.sleep(Duration::from_millis(50)).await;
    }
    // Every member has had its first answer and sent its first long-poll; let those reach
    // the nodes.
    SystemClock.sleep(Duration::from_millis(500)).await;
    println!(
        "fan-out: {n} members polling (first answers after {:.1} s)",
        SystemClock.since(start).as_secs_f64()
    );

    let sender = &pollers[0].identity;
    let cpu = CpuSpan::start(net);
    let mut per_message = Vec::with_capacity(args.messages);
    let mut all_latencies = Vec::with_capacity(args.messages * n);
    let mut until_all = Vec::with_capacity(args.messages);
    let mut stores = Vec::with_capacity(args.messages);
    for seq in 0..args.messages {
        let mut payload = vec![0u8; PAYLOAD];
        umbra_crypto::Random::fill(&mut OsRandom, &mut payload);
        payload[..8].copy_from_slice(&(seq as u64).to_le_bytes());
        let sent = SystemClock.instant();
        let data = encrypt_message(sender, &creator_keys, &payload, false, &mut OsRandom)?;
        put(swarm, admin, namespace::MESSAGES, &data, MESSAGE_TTL_MS).await?;
        let stored = SystemClock.since(sent);
        while arrivals.count[seq].load(Ordering::Relaxed) < n {
            if SystemClock.since(sent) > Duration::from_secs(args.timeout) {
                stop.store(true, Ordering::Relaxed);
                bail!(
                    "message {seq} reached {} of {n} members in {} s ({} poll errors, last: {})",
                    arrivals.count[seq].load(Ordering::Relaxed),
                    args.timeout,
                    arrivals.errors.load(Ordering::Relaxed),
                    last_error(&arrivals)
                );
            }
            SystemClock.sleep(Duration::from_millis(5)).await;
        }
        let mut lat: Vec<Duration> = (0..n)
            .filter_map(|m| arrivals.arrival(seq, m))
            .map(|at| at.saturating_duration_since(sent))
            .collect();
        lat.sort_unstable();
        let all = lat.last().copied().unwrap_or_default();
        println!(
            "  message {seq}: stored in {:.1} ms; held by all {n} after {:.1} ms; per member {}",
            ms(stored),
            ms(all),
            dist_line(&lat)
        );
        per_message.push(json!({
            "store_ms": ms(stored),
            "all_ms": ms(all),
            "members": dist_json(&lat),
        }));
        all_latencies.extend(lat);
        until_all.push(all);
        stores.push(stored);
        SystemClock
            .sleep(Duration::from_millis(args.pause_ms))
            .await;
    }
    let (cpu_line, cpu_json) = cpu.cores(net);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    all_latencies.sort_unstable();
    until_all.sort_unstable();
    stores.sort_unstable();
    println!(
        "fan-out: {} messages × {n} members: per member {}; until all held it {}; store {}; \
         {} polls, {} errors, {} refused; {cpu_line}",
        args.messages,
        dist_line(&all_latencies),
        dist_line(&until_all),
        dist_line(&stores),
        arrivals.polls.load(Ordering::Relaxed),
        arrivals.errors.load(Ordering::Relaxed),
        arrivals.refused.load(Ordering::Relaxed),
    );
    Ok((
        json!({
            "per_member": dist_json(&all_latencies),
            "until_all": dist_json(&until_all),
            "store": dist_json(&stores),
            "messages": per_message,
            "refused": arrivals.refused.load(Ordering::Relaxed),
            "cpu_cores": cpu_json,
        }),
        arrivals,
    ))
}

/// `Messenger::create_group` of `invitees` by a fresh profile, then its outbox flushed until
/// every invitation is delivered.
async fn invite(args: &GroupsArgs, invitees: &[SessionId], net: &Network) -> anyhow::Result<Value> {
    let dir = tempfile::Builder::new()
        .prefix("umbra-bench-groups-")
        .tempdir()
        .context("creating a temporary directory for the admin's profile")?;
    let (admin, _) = crate::messenger::client(dir.path(), "admin", net)?;
    crate::messenger::ready(&admin, net).await?;
    let cpu = CpuSpan::start(net);
    let started = SystemClock.instant();
    admin
        .messenger
        .create_group("Invitations", invitees)
        .await
        .context("creating the group with the messenger")?;
    let created = SystemClock.since(started);
    let mut report = admin.messenger.flush_outbox().await?;
    while report.pending > 0 {
        if SystemClock.since(started) > Duration::from_secs(args.timeout.max(600)) {
            bail!(
                "{} of {} invitations still undelivered after {:.0} s",
                report.pending,
                invitees.len(),
                SystemClock.since(started).as_secs_f64()
            );
        }
        report = admin.messenger.flush_outbox().await?;
    }
    let delivered = SystemClock.since(started);
    let (cpu_line, cpu_json) = cpu.cores(net);
    println!(
        "invitations: Messenger::create_group returned after {:.1} s; all {} invitations delivered after {:.1} s ({:.1} ms each); {cpu_line}",
        created.as_secs_f64(),
        invitees.len(),
        delivered.as_secs_f64(),
        ms(delivered) / invitees.len() as f64,
    );
    Ok(json!({
        "create_group_ms": ms(created),
        "all_delivered_ms": ms(delivered),
        "invitees": invitees.len(),
        "cpu_cores": cpu_json,
    }))
}

fn last_error(arrivals: &Arrivals) -> String {
    arrivals
        .last_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        .unwrap_or_else(|| "none".into())
}

/// Messages in namespace 11 of the group swarm, read by the admin page after page.
async fn count_stored(swarm: &OnionSwarm, admin: &GroupAdmin) -> anyhow::Result<usize> {
    let mut last: Option<MessageHash> = None;
    let mut count = 0;
    loop {
        let page = swarm
            .group_retrieve(
                admin.public(),
                GroupAuth::Admin(admin),
                i32::from(namespace::MESSAGES),
                last.as_ref(),
            )
            .await
            .context("counting the group's stored messages")?;
        count += page.messages.len();
        match page.messages.last() {
            Some(m) if page.more => last = Some(m.hash),
            _ => return Ok(count),
        }
    }
}
