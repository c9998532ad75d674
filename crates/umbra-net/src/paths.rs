//! The path manager: guards, paths, strikes and rotation, as a state machine (sans-IO: the
//! caller passes the node list, the time and the randomness, and does the network tests).
//!
//! ```text
//!   verified list ──► usable nodes ──► guards (kept for days, persisted) ──┐
//!        (active, not failed)                                              ▼
//!   candidate path = guard + (hops-1) random nodes (distinct, other /24s) ─► tested by the caller
//!        │ install (test passed)          reject (test failed: strike the failing node; a new
//!        │                                guard goes at once if it failed its first test; a
//!        │                                confirmed one that failed is benched for a minute,
//!        │                                a stand-in guard used if none is left, and it goes
//!        │                                after `guard_misses` rounds that reached others)
//!        ▼
//!   live paths ── chosen at random per request ── rotated after `rotation_ms`
//!        │ report(failure) ─► path strikes ≥ threshold: retire the path, strike its nodes
//!        └────────────────► node strikes ≥ threshold: node failed until the next list,
//!                           every path through it retired, a guard replaced
//! ```

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use umbra_crypto::{Ed25519PublicKey, Random, Redacted};
use umbra_nodelist::list::{NodeEntry, NodeList};

use crate::ClientError;

/// How paths are built, kept and replaced. Defaults follow Session (`onion-requests.md` §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathConfig {
    /// Nodes per path, guard included (3).
    pub hops: usize,
    /// Guards kept, and paths kept (one path per guard) (2).
    pub guards: usize,
    /// How long a guard is kept before it is replaced (10 days).
    pub guard_lifetime_ms: u64,
    /// How long a path is used before it is replaced (10 minutes).
    pub rotation_ms: u64,
    /// Failures after which a path is retired (3).
    pub path_strike_threshold: u32,
    /// Failures after which a node is left out until the next node list (3).
    pub node_strike_threshold: u32,
    /// Maintenance rounds (a minute or more apart) in which a confirmed guard could not be
    /// reached while other nodes could, after which it is replaced (3).
    pub guard_misses: u32,
    /// No two nodes of a path (and no two guards) in the same IPv4 /24. Turn off for a devnet
    /// whose nodes all listen on 127.0.0.1.
    pub subnet_diversity: bool,
}

impl Default for PathConfig {
    fn default() -> Self {
        Self {
            hops: 3,
            guards: 2,
            guard_lifetime_ms: 10 * 24 * 3600 * 1000,
            rotation_ms: 10 * 60 * 1000,
            path_strike_threshold: 3,
            node_strike_threshold: 3,
            guard_misses: 3,
            subnet_diversity: true,
        }
    }
}

/// A guard (entry) node and since when it is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    /// The node's Ed25519 key.
    #[serde(with = "hex_key")]
    pub node: Ed25519PublicKey,
    /// When it became a guard (unix ms).
    pub since_ms: u64,
    /// Whether a path through it has passed its test (an unconfirmed guard whose first path
    /// fails its test is dropped at once).
    pub confirmed: bool,
    /// Maintenance rounds that found it unreachable while they reached other nodes, since a
    /// path through it last passed its test (see [`PathConfig::guard_misses`]).
    #[serde(default)]
    pub misses: u32,
}

mod hex_key {
    use serde::{Deserialize, Deserializer, Serializer};

    use umbra_crypto::Ed25519PublicKey;

    pub(super) fn serialize<S: Serializer>(k: &Ed25519PublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&k.to_hex())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Ed25519PublicKey, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut k = [0u8; 32];
        hex::decode_to_slice(s.as_bytes(), &mut k).map_err(serde::de::Error::custom)?;
        Ok(Ed25519PublicKey::from_bytes(k))
    }
}

/// An onion path: its nodes, guard first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Identifies the path within this manager.
    pub id: u64,
    /// The nodes, guard first.
    pub nodes: Vec<NodeEntry>,
    /// When it was built (unix ms).
    pub built_at_ms: u64,
    /// Failures counted against it.
    pub strikes: u32,
}

impl Path {
    /// The guard (first node).
    pub fn guard(&self) -> Option<&NodeEntry> {
        self.nodes.first()
    }

    /// Whether `node` is on this path.
    pub fn contains(&self, node: &Ed25519PublicKey) -> bool {
        self.nodes.iter().any(|n| &n.pubkey_ed25519 == node)
    }
}

/// What went wrong with a request on a path, as far as the client can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The guard could not be reached (connection refused, TLS failure, timeout).
    GuardUnreachable,
    /// An answer that no hop vouches for (plain text, or garbage): any relay could have made
    /// it up, so only the path as a whole is blamed, never a node it names.
    Unauthenticated,
    /// A hop sealed an error under its own layer key (`position` 0 is the guard; a position
    /// equal to the path length is the storage destination).
    Hop {
        /// Position of the hop that reported.
        position: usize,
        /// Its status.
        status: u16,
        /// Its body text.
        body: String,
    },
}

/// What an authenticated hop error says about whom, by position on the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blame {
    /// The hop failed itself (not ready, busy, …).
    Own(usize),
    /// The hop accuses a neighbour: its next hop ("next node not found / unreachable / timed
    /// out / invalid response") or its predecessor ("invalid ciphertext": the layer it was
    /// handed was bad). Either the neighbour failed or the accuser lies.
    Link {
        /// Who reported.
        accuser: usize,
        /// Whom it accuses.
        accused: usize,
    },
}

/// Whether a hop's sealed error (`status`, `body`) says its next hop failed (not found,
/// unreachable, timed out, answered garbage).
pub(crate) fn accuses_next_hop(status: u16, body: &str) -> bool {
    body.starts_with("Next node not found")
        || body.starts_with("Next node is currently unreachable")
        || body.starts_with("Request time out")
        || body.starts_with("Invalid response from snode")
        || status == 504
}

/// Whether a path test's `failure` proves the guard itself failed: it could not be reached,
/// or it sealed an error about itself (position 0, not accusing its next hop).
fn guard_failed_itself(failure: &Failure) -> bool {
    match failure {
        Failure::GuardUnreachable => true,
        Failure::Unauthenticated => false,
        Failure::Hop {
            position,
            status,
            body,
        } => *position == 0 && blame(0, *status, body) == Blame::Own(0),
    }
}

fn blame(position: usize, status: u16, body: &str) -> Blame {
    if accuses_next_hop(status, body) {
        Blame::Link {
            accuser: position,
            accused: position + 1,
        }
    } else if body.starts_with("Invalid ciphertext")
        && let Some(prev) = position.checked_sub(1)
    {
        Blame::Link {
            accuser: position,
            accused: prev,
        }
    } else {
        Blame::Own(position)
    }
}

/// Accusers remembered (bounded; cleared at each new list).
const MAX_ACCUSERS: usize = 256;

/// How long a confirmed guard that failed a path test is left out before it is tried again.
/// One failure seconds after another says little more about the guard (or about the
/// client's own connection), so it counts once per bench.
pub const GUARD_BENCH_MS: u64 = 60_000;

/// Guards kept at most, as a multiple of [`PathConfig::guards`]: the primaries plus the
/// stand-ins used while primaries are benched (they already know the client's address, so
/// keeping them costs no privacy; choosing yet another would).
const GUARD_LIST_FACTOR: usize = 2;

/// What [`PathManager::report`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportOutcome {
    /// Paths retired (this one at its threshold, or others through a failed node).
    pub retired_paths: Vec<u64>,
    /// Nodes that reached their strike threshold.
    pub failed_nodes: Vec<Ed25519PublicKey>,
    /// Whether the guard set changed (persist it).
    pub guards_changed: bool,
}

/// How often the guard set changed since the manager was made: a client that keeps its
/// guards chooses [`PathConfig::guards`] once and drops none while they stay healthy. Every
/// guard dropped is a new node that will learn the user's IP address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GuardChurn {
    /// Guards chosen (new entry nodes).
    pub chosen: u64,
    /// Guards dropped: expired, gone from the list, struck out, or failed their first test.
    pub dropped: u64,
}

/// Guards, paths and strikes.
#[derive(Debug)]
pub struct PathManager {
    config: PathConfig,
    guards: Vec<Guard>,
    churn: GuardChurn,
    paths: Vec<Path>,
    node_strikes: HashMap<Ed25519PublicKey, u32>,
    failed: HashSet<Ed25519PublicKey>,
    /// Whom each hop has accused since the last list: a hop that accuses a second, different
    /// node starts paying a strike per accusation.
    accusations: HashMap<Ed25519PublicKey, Ed25519PublicKey>,
    /// Confirmed guards that failed a path test, and until when they are left out.
    benched: HashMap<Ed25519PublicKey, u64>,
    /// Guards benched since the last [`PathManager::settle_guards`].
    missed: HashSet<Ed25519PublicKey>,
    next_id: u64,
}

/// The IPv4 /24 of an address.
pub fn subnet24(ip: Ipv4Addr) -> [u8; 3] {
    let o = ip.octets();
    [o[0], o[1], o[2]]
}

/// A uniform index below `n` (`n > 0`), by rejection sampling.
pub(crate) fn random_below(rng: &mut dyn Random, n: usize) -> usize {
    let n64 = n as u64;
    if n64 <= 1 {
        return 0;
    }
    let zone = u64::MAX - (u64::MAX % n64);
    loop {
        let mut b = [0u8; 8];
        rng.fill(&mut b);
        let v = u64::from_le_bytes(b);
        if v < zone {
            return usize::try_from(v % n64).unwrap_or(0);
        }
    }
}

/// Fisher–Yates shuffle with the caller's randomness.
pub(crate) fn shuffle<T>(items: &mut [T], rng: &mut dyn Random) {
    for i in (1..items.len()).rev() {
        let j = random_below(rng, i + 1);
        items.swap(i, j);
    }
}

impl PathManager {
    /// A manager with no guards and no paths.
    pub fn new(config: PathConfig) -> Self {
        Self {
            config,
            guards: Vec::new(),
            churn: GuardChurn::default(),
            paths: Vec::new(),
            node_strikes: HashMap::new(),
            failed: HashSet::new(),
            accusations: HashMap::new(),
            benched: HashMap::new(),
            missed: HashSet::new(),
            next_id: 1,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PathConfig {
        &self.config
    }

    /// The current guards.
    pub fn guards(&self) -> &[Guard] {
        &self.guards
    }

    /// Guards chosen and dropped so far (see [`GuardChurn`]).
    pub fn guard_churn(&self) -> GuardChurn {
        self.churn
    }

    /// Drops the guards for which `drop` is true; returns whether any was dropped.
    fn drop_guards(&mut self, mut drop: impl FnMut(&Guard) -> bool) -> bool {
        let before = self.guards.len();
        self.guards.retain(|g| !drop(g));
        let dropped = before - self.guards.len();
        self.churn.dropped += dropped as u64;
        // What was benched or missed of a guard that is gone goes with it, whatever dropped it.
        let guards = &self.guards;
        self.benched
            .retain(|k, _| guards.iter().any(|g| g.node == *k));
        self.missed.retain(|k| guards.iter().any(|g| g.node == *k));
        dropped > 0
    }

    /// The most guards kept: the primaries and their stand-ins.
    fn max_guards(&self) -> usize {
        self.config.guards.saturating_mul(GUARD_LIST_FACTOR)
    }

    /// Restores guards persisted by an earlier run (primaries and stand-ins; they are checked
    /// against the list and their lifetime at the next [`Self::refresh_guards`]).
    pub fn restore_guards(&mut self, mut guards: Vec<Guard>) {
        guards.truncate(self.max_guards());
        self.guards = guards;
    }

    /// The live paths.
    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// Strikes counted against `node`.
    pub fn node_strikes(&self, node: &Ed25519PublicKey) -> u32 {
        self.node_strikes.get(node).copied().unwrap_or(0)
    }

    /// Whether `node` reached its strike threshold (left out until the next list).
    pub fn is_failed(&self, node: &Ed25519PublicKey) -> bool {
        self.failed.contains(node)
    }

    /// A newer node list arrived: failed nodes get another chance (as libsession does at a
    /// pool refresh), and paths and guards whose nodes left the list or became inactive go.
    /// Returns whether the guard set changed.
    pub fn on_new_list(&mut self, list: &NodeList) -> bool {
        self.failed.clear();
        self.node_strikes.clear();
        self.accusations.clear();
        let active = |k: &Ed25519PublicKey| list.node(k).is_some_and(|n| n.active);
        // A path survives only if each node is still active at the same address and keys.
        self.paths.retain(|p| {
            p.nodes.iter().all(|n| {
                list.node(&n.pubkey_ed25519)
                    .is_some_and(|l| l.active && l == n)
            })
        });
        self.drop_guards(|g| !active(&g.node))
    }

    /// Drops paths older than [`PathConfig::rotation_ms`]; returns their ids.
    pub fn rotate(&mut self, now_ms: u64) -> Vec<u64> {
        let rotation = self.config.rotation_ms;
        let (old, keep): (Vec<Path>, Vec<Path>) = std::mem::take(&mut self.paths)
            .into_iter()
            .partition(|p| now_ms >= p.built_at_ms.saturating_add(rotation));
        self.paths = keep;
        old.into_iter().map(|p| p.id).collect()
    }

    /// Whether fewer than [`PathConfig::guards`] paths are live.
    pub fn needs_path(&self) -> bool {
        self.paths.len() < self.config.guards
    }

    fn usable<'a>(&self, list: &'a NodeList) -> Vec<&'a NodeEntry> {
        list.nodes
            .iter()
            .filter(|n| n.active && !self.failed.contains(&n.pubkey_ed25519))
            .collect()
    }

    /// Keeps the guards that are still active, not failed and within their lifetime, and
    /// fills up to [`PathConfig::guards`] with random usable nodes (in distinct /24s when
    /// diversity is on). Returns whether the guard set changed.
    pub fn refresh_guards(&mut self, list: &NodeList, now_ms: u64, rng: &mut dyn Random) -> bool {
        let lifetime = self.config.guard_lifetime_ms;
        let before = self.guards.clone();
        let usable = self.usable(list);
        self.drop_guards(|g| {
            now_ms >= g.since_ms.saturating_add(lifetime)
                || !usable.iter().any(|n| n.pubkey_ed25519 == g.node)
        });
        let dropped: HashSet<Ed25519PublicKey> = before
            .iter()
            .filter(|g| !self.guards.contains(g))
            .map(|g| g.node)
            .collect();
        // Paths through a guard that is no longer one are retired with it.
        self.paths.retain(|p| {
            p.guard()
                .is_some_and(|g| !dropped.contains(&g.pubkey_ed25519))
        });
        let want = self.config.guards.saturating_sub(self.guards.len());
        self.add_guards(list, want, now_ms, rng);
        before != self.guards
    }

    /// Adds up to `want` random usable nodes that are not guards yet as new, unconfirmed
    /// guards (each in a /24 no guard uses, when diversity is on).
    fn add_guards(&mut self, list: &NodeList, want: usize, now_ms: u64, rng: &mut dyn Random) {
        if want == 0 {
            return;
        }
        let mut subnets: HashSet<[u8; 3]> = self
            .guards
            .iter()
            .filter_map(|g| list.node(&g.node))
            .map(|n| subnet24(n.public_ip))
            .collect();
        let candidates = self.shuffled_non_guards(list, rng);
        let mut added = 0;
        for n in candidates {
            if added >= want {
                break;
            }
            let s = subnet24(n.public_ip);
            if self.config.subnet_diversity && subnets.contains(&s) {
                continue;
            }
            subnets.insert(s);
            tracing::debug!(guard = %Redacted::new(hex::encode(n.pubkey_ed25519)), "new guard");
            self.churn.chosen += 1;
            added += 1;
            self.guards.push(Guard {
                node: n.pubkey_ed25519,
                since_ms: now_ms,
                confirmed: false,
                misses: 0,
            });
        }
    }

    /// The usable nodes that are not guards, in random order.
    fn shuffled_non_guards<'a>(
        &self,
        list: &'a NodeList,
        rng: &mut dyn Random,
    ) -> Vec<&'a NodeEntry> {
        let mut nodes: Vec<&NodeEntry> = self
            .usable(list)
            .into_iter()
            .filter(|n| !self.guards.iter().any(|g| g.node == n.pubkey_ed25519))
            .collect();
        shuffle(&mut nodes, rng);
        nodes
    }

    /// The guards a new path may start at: not busy with a path, active, not failed, not
    /// benched at `now_ms`.
    fn free_guards<'a>(&self, list: &'a NodeList, now_ms: u64) -> Vec<&'a NodeEntry> {
        let busy: HashSet<Ed25519PublicKey> = self
            .paths
            .iter()
            .filter_map(|p| p.guard().map(|g| g.pubkey_ed25519))
            .collect();
        self.guards
            .iter()
            .filter(|g| !busy.contains(&g.node))
            .filter(|g| {
                self.benched
                    .get(&g.node)
                    .is_none_or(|until| now_ms >= *until)
            })
            .filter_map(|g| list.node(&g.node))
            .filter(|n| n.active && !self.failed.contains(&n.pubkey_ed25519))
            .collect()
    }

    /// A candidate path for a guard that has none yet: the guard, then `hops - 1` distinct
    /// usable nodes that are not guards (and, with diversity, share no /24 with any node
    /// already chosen). Not live until [`Self::install`]ed after a successful test.
    ///
    /// When no path is live and every guard is benched, a stand-in guard is added (up to
    /// twice [`PathConfig::guards`] in all): the client needs one path now, and a benched
    /// guard is not dropped before it has missed [`PathConfig::guard_misses`] rounds.
    ///
    /// # Errors
    /// [`ClientError::NotEnoughNodes`] if no guard is free or too few nodes qualify.
    pub fn candidate(
        &mut self,
        list: &NodeList,
        now_ms: u64,
        rng: &mut dyn Random,
    ) -> Result<Path, ClientError> {
        let hops = self.config.hops.max(1);
        let mut free = self.free_guards(list, now_ms);
        if free.is_empty() && self.paths.is_empty() && self.guards.len() < self.max_guards() {
            tracing::debug!("every guard is benched; adding a stand-in");
            self.add_guards(list, 1, now_ms, rng);
            free = self.free_guards(list, now_ms);
        }
        if free.is_empty() {
            return Err(ClientError::NotEnoughNodes {
                what: "choosing a guard for a new path",
                have: 0,
                need: 1,
            });
        }
        let guard = free[random_below(rng, free.len())];
        let mut nodes = vec![guard.clone()];
        let mut subnets: HashSet<[u8; 3]> = HashSet::from([subnet24(guard.public_ip)]);
        let mut candidates = self.shuffled_non_guards(list, rng);
        // Nodes with fewer strikes first (stable: random among equals), so that a node that
        // just failed is not picked again while others are left; it stays usable.
        candidates.sort_by_key(|n| self.node_strikes(&n.pubkey_ed25519));
        for n in candidates {
            if nodes.len() >= hops {
                break;
            }
            let s = subnet24(n.public_ip);
            if self.config.subnet_diversity && subnets.contains(&s) {
                continue;
            }
            subnets.insert(s);
            nodes.push(n.clone());
        }
        if nodes.len() < hops {
            return Err(ClientError::NotEnoughNodes {
                what: "building an onion path",
                have: nodes.len(),
                need: hops,
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        Ok(Path {
            id,
            nodes,
            built_at_ms: now_ms,
            strikes: 0,
        })
    }

    /// Makes a tested candidate live and confirms its guard. Returns `false` (and drops it)
    /// if its guard meanwhile got a path or stopped being a guard.
    pub fn install(&mut self, path: Path) -> bool {
        let Some(guard) = path.guard().map(|g| g.pubkey_ed25519) else {
            return false;
        };
        if self
            .paths
            .iter()
            .any(|p| p.guard().is_some_and(|g| g.pubkey_ed25519 == guard))
            || path
                .nodes
                .iter()
                .any(|n| self.failed.contains(&n.pubkey_ed25519))
        {
            return false;
        }
        let Some(g) = self.guards.iter_mut().find(|g| g.node == guard) else {
            return false;
        };
        g.confirmed = true;
        g.misses = 0;
        self.benched.remove(&guard);
        self.missed.remove(&guard);
        self.paths.push(path);
        true
    }

    /// Leaves guard `g` out for [`GUARD_BENCH_MS`] from `now_ms`, a miss for the round.
    fn bench(&mut self, g: Ed25519PublicKey, now_ms: u64) {
        self.benched
            .insert(g, now_ms.saturating_add(GUARD_BENCH_MS));
        self.missed.insert(g);
    }

    /// Ends a maintenance round. If a path is live (the client reaches the network), each
    /// guard benched during the round counts a miss, and one at [`PathConfig::guard_misses`]
    /// is replaced. Without a live path nothing is counted: the client's own connection may
    /// be down, and dropping its guards then would hand its address to new ones once it is
    /// back. Returns whether the guard set changed (persist it).
    pub fn settle_guards(&mut self) -> bool {
        let missed = std::mem::take(&mut self.missed);
        if self.paths.is_empty() || missed.is_empty() {
            return false;
        }
        let limit = self.config.guard_misses.max(1);
        let mut gone = Vec::new();
        for g in self.guards.iter_mut().filter(|g| missed.contains(&g.node)) {
            g.misses = g.misses.saturating_add(1);
            if g.misses >= limit {
                gone.push(g.node);
            }
        }
        if !gone.is_empty() {
            tracing::debug!(
                guards = gone.len(),
                "guards missed too many rounds; replacing them"
            );
            self.drop_guards(|g| gone.contains(&g.node));
            self.paths
                .retain(|p| p.guard().is_none_or(|g| !gone.contains(&g.pubkey_ed25519)));
        }
        true
    }

    /// A candidate failed its test (`target` is the node it was tested against). The nodes the
    /// failure implicates get a strike as in [`Self::report`] — every node of the candidate if
    /// nothing authenticated the failure.
    ///
    /// When the guard itself failed (it could not be reached, or it sealed an error about
    /// itself under its own layer key), an unconfirmed guard (no path through it has passed a
    /// test yet) is replaced at once, and a confirmed one is benched for [`GUARD_BENCH_MS`]
    /// instead of struck: it is not tried again in this round, and it goes only after
    /// [`PathConfig::guard_misses`] rounds (see [`Self::settle_guards`]). A middle or exit
    /// node's failure strikes that node and keeps the guard, so the next candidate goes
    /// through the same guard with other relays: every guard replaced is one more node that
    /// learns the user's IP address. Returns whether the guard set changed.
    pub fn reject(
        &mut self,
        path: &Path,
        target: Option<&Ed25519PublicKey>,
        failure: &Failure,
    ) -> bool {
        let mut out = ReportOutcome::default();
        let nodes: Vec<Ed25519PublicKey> = path.nodes.iter().map(|n| n.pubkey_ed25519).collect();
        let mut implicated = match failure {
            Failure::Unauthenticated => nodes.clone(),
            _ => self.implicated(&nodes, target, failure).1,
        };
        if let Some(g) = path.guard().map(|g| g.pubkey_ed25519)
            && guard_failed_itself(failure)
        {
            if self.guards.iter().any(|x| x.node == g && x.confirmed) {
                self.bench(g, path.built_at_ms);
                implicated.retain(|n| *n != g);
            } else {
                out.guards_changed |= self.drop_guards(|x| x.node == g);
            }
        }
        for n in &implicated {
            self.strike(n, &mut out);
        }
        out.guards_changed
    }

    /// A live path at random, other than those in `exclude` and those containing `avoid`
    /// (a storage destination should not also be a relay of its own request).
    pub fn choose(
        &self,
        exclude: &[u64],
        avoid: Option<&Ed25519PublicKey>,
        rng: &mut dyn Random,
    ) -> Option<Path> {
        let ok: Vec<&Path> = self
            .paths
            .iter()
            .filter(|p| !exclude.contains(&p.id))
            .filter(|p| avoid.is_none_or(|a| !p.contains(a)))
            .collect();
        if ok.is_empty() {
            return None;
        }
        Some(ok[random_below(rng, ok.len())].clone())
    }

    /// Counts a failure of a request on path `path_id` (with `destination`, the storage node
    /// the request was for, if any) and replaces what reached its threshold:
    ///
    /// - guard unreachable: a strike on the path and on the guard;
    /// - unauthenticated answer: a strike on the path only;
    /// - an error sealed by hop `i` about itself ("not ready"): a strike on the path and on it;
    /// - an error sealed by hop `i` accusing a neighbour (the next hop for "next node not
    ///   found/unreachable/timed out", the previous one for "invalid ciphertext"): a strike on
    ///   the path and on the accused, and on the accuser too once it has accused more than one
    ///   node since the last list (so a dead relay costs its honest neighbour nothing, while a
    ///   relay that lies to push us off honest nodes soon strikes itself out);
    /// - an error sealed by the destination: a strike on the destination only (the path
    ///   delivered the request).
    ///
    /// A *confirmed* guard that failed itself (unreachable, or its own sealed error) is not
    /// struck: its path is retired at once and the guard benched at `now_ms`, as when a path
    /// test fails ([`Self::reject`]), so a client whose own connection drops for a while
    /// keeps its guards.
    pub fn report(
        &mut self,
        path_id: u64,
        destination: Option<&Ed25519PublicKey>,
        failure: &Failure,
        now_ms: u64,
    ) -> ReportOutcome {
        let mut out = ReportOutcome::default();
        let Some(idx) = self.paths.iter().position(|p| p.id == path_id) else {
            // Already retired: still count what the failure says about nodes.
            if let (Failure::Hop { position, .. }, Some(d)) = (failure, destination)
                && *position >= self.config.hops
            {
                self.strike(d, &mut out);
            }
            return out;
        };
        let path_nodes: Vec<Ed25519PublicKey> = self.paths[idx]
            .nodes
            .iter()
            .map(|n| n.pubkey_ed25519)
            .collect();
        if let Some(g) = path_nodes.first().copied()
            && guard_failed_itself(failure)
            && self.guards.iter().any(|x| x.node == g && x.confirmed)
        {
            tracing::debug!(
                path = path_id,
                "the guard failed; benching it and retiring its path"
            );
            self.bench(g, now_ms);
            self.paths.retain(|p| p.id != path_id);
            out.retired_paths.push(path_id);
            return out;
        }
        let (blame_path, nodes) = self.implicated(&path_nodes, destination, failure);
        for n in &nodes {
            self.strike(n, &mut out);
        }
        if blame_path && let Some(p) = self.paths.iter_mut().find(|p| p.id == path_id) {
            p.strikes += 1;
            if p.strikes >= self.config.path_strike_threshold {
                let id = p.id;
                tracing::debug!(path = id, "path reached its strike threshold; retiring it");
                self.paths.retain(|p| p.id != id);
                out.retired_paths.push(id);
                for n in &path_nodes {
                    self.strike(n, &mut out);
                }
            }
        }
        out
    }

    /// Whether `failure` blames the path itself, and which nodes it implicates (see
    /// [`Self::report`]).
    fn implicated(
        &mut self,
        path_nodes: &[Ed25519PublicKey],
        destination: Option<&Ed25519PublicKey>,
        failure: &Failure,
    ) -> (bool, Vec<Ed25519PublicKey>) {
        let node_at = |i: usize| -> Option<Ed25519PublicKey> {
            path_nodes.get(i).copied().or_else(|| {
                (i == path_nodes.len())
                    .then_some(destination.copied())
                    .flatten()
            })
        };
        match failure {
            Failure::GuardUnreachable => (true, node_at(0).into_iter().collect()),
            Failure::Unauthenticated => (true, Vec::new()),
            Failure::Hop { position, .. } if *position >= path_nodes.len() => {
                (false, node_at(*position).into_iter().collect())
            }
            Failure::Hop {
                position,
                status,
                body,
            } => match blame(*position, *status, body) {
                Blame::Own(i) => (true, node_at(i).into_iter().collect()),
                Blame::Link { accused, .. } if accused == path_nodes.len() => {
                    // The last hop cannot reach the storage destination: the path delivered
                    // and the client chose the destination, so only the destination is
                    // struck (an exit relay meets every dead destination the client picks;
                    // charging it, or the path, would strike honest relays out one after the
                    // other when several nodes are down).
                    (false, node_at(accused).into_iter().collect())
                }
                Blame::Link { accuser, accused } => {
                    let mut nodes: Vec<Ed25519PublicKey> = node_at(accused).into_iter().collect();
                    if let Some(a) = node_at(accuser)
                        && let Some(b) = node_at(accused)
                        && self.accused_another(a, b)
                    {
                        nodes.push(a);
                    }
                    (true, nodes)
                }
            },
        }
    }

    /// Records that `accuser` accused `accused`; true if it had accused someone else before
    /// (an honest hop next to one dead node keeps accusing the same node; a lying hop that
    /// steers us away from honest nodes has to accuse many).
    fn accused_another(&mut self, accuser: Ed25519PublicKey, accused: Ed25519PublicKey) -> bool {
        if self.accusations.len() >= MAX_ACCUSERS && !self.accusations.contains_key(&accuser) {
            self.accusations.clear();
        }
        match self.accusations.insert(accuser, accused) {
            Some(prev) => prev != accused,
            None => false,
        }
    }

    /// One strike on `node`; at the threshold it is failed, its paths are retired and, if it is
    /// a guard, it stops being one.
    fn strike(&mut self, node: &Ed25519PublicKey, out: &mut ReportOutcome) {
        if self.failed.contains(node) {
            return;
        }
        let count = self.node_strikes.entry(*node).or_insert(0);
        *count += 1;
        if *count < self.config.node_strike_threshold {
            return;
        }
        tracing::debug!(node = %Redacted::new(hex::encode(node)), "node reached its strike threshold");
        self.failed.insert(*node);
        out.failed_nodes.push(*node);
        let retired: Vec<u64> = self
            .paths
            .iter()
            .filter(|p| p.contains(node))
            .map(|p| p.id)
            .collect();
        self.paths.retain(|p| !p.contains(node));
        out.retired_paths.extend(retired);
        out.guards_changed |= self.drop_guards(|g| &g.node == node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use umbra_crypto::X25519PublicKey;

    #[test]
    fn blame_rules() {
        let link = |accuser, accused| Blame::Link { accuser, accused };
        assert_eq!(blame(1, 502, "Next node not found: ab"), link(1, 2));
        assert_eq!(blame(2, 504, "Request time out"), link(2, 3));
        assert_eq!(blame(1, 400, "Invalid ciphertext"), link(1, 0));
        assert_eq!(blame(0, 400, "Invalid ciphertext"), Blame::Own(0));
        assert_eq!(blame(1, 503, "Snode not ready: ab"), Blame::Own(1));
    }

    #[test]
    fn an_exit_that_cannot_reach_the_destination_strikes_only_the_destination() {
        let mut m = PathManager::new(PathConfig::default());
        let path = [key(1), key(2), key(3)];
        let hop = |position, body: &str| Failure::Hop {
            position,
            status: 502,
            body: body.into(),
        };
        // The exit, about two different (dead) destinations: neither it nor the path pays.
        for dest in [key(8), key(9)] {
            let (blame_path, nodes) = m.implicated(
                &path,
                Some(&dest),
                &hop(2, "Next node is currently unreachable"),
            );
            assert!(!blame_path);
            assert_eq!(nodes, vec![dest]);
        }
        // A middle relay accusing a relay still blames the path and the accused.
        let (blame_path, nodes) =
            m.implicated(&path, Some(&key(8)), &hop(1, "Next node not found"));
        assert!(blame_path);
        assert_eq!(nodes, vec![key(3)]);
        assert!(accuses_next_hop(504, "") && !accuses_next_hop(503, "Snode not ready"));
    }

    fn key(k: u8) -> Ed25519PublicKey {
        Ed25519PublicKey::from_bytes([k; 32])
    }

    fn node(k: u8) -> NodeEntry {
        NodeEntry {
            pubkey_ed25519: key(k),
            pubkey_x25519: X25519PublicKey::from_bytes([k; 32]),
            public_ip: Ipv4Addr::new(10, k, 0, 1),
            storage_port: 443,
            storage_lmq_port: 0,
            swarm_id: 0,
            active: true,
            version: [2, 0, 0],
        }
    }

    #[test]
    fn a_failed_test_replaces_the_guard_only_when_the_guard_itself_failed() {
        let hop = |position, status, body: &str| Failure::Hop {
            position,
            status,
            body: body.into(),
        };
        let keeps = [
            hop(1, 503, "Snode not ready"),
            hop(0, 502, "Next node is currently unreachable"),
            hop(1, 400, "Invalid ciphertext"),
            hop(2, 504, "Request time out"),
            Failure::Unauthenticated,
        ];
        let replaces = [Failure::GuardUnreachable, hop(0, 503, "Snode not ready")];
        for (failure, dropped) in keeps
            .iter()
            .map(|f| (f, false))
            .chain(replaces.iter().map(|f| (f, true)))
        {
            let mut m = PathManager::new(PathConfig::default());
            m.restore_guards(vec![Guard {
                node: key(1),
                since_ms: 0,
                confirmed: false,
                misses: 0,
            }]);
            let path = Path {
                id: 1,
                nodes: vec![node(1), node(2), node(3)],
                built_at_ms: 0,
                strikes: 0,
            };
            assert_eq!(
                m.reject(&path, Some(&key(9)), failure),
                dropped,
                "{failure:?}"
            );
            assert_eq!(m.guards().is_empty(), dropped, "{failure:?}");
            assert_eq!(m.guard_churn().dropped, u64::from(dropped), "{failure:?}");
        }
    }

    #[test]
    fn random_below_stays_in_range_and_covers_it() {
        let mut rng = umbra_crypto::SeededRandom::new(1);
        let mut seen = [false; 5];
        for _ in 0..200 {
            let i = random_below(&mut rng, 5);
            assert!(i < 5);
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(random_below(&mut rng, 1), 0);
    }
}
