//! An in-memory network for tests (feature `test-support`): a fake registry serving a signed
//! list, and fake storage nodes that peel onion layers with umbra-onion, forward to each other
//! as plain function calls, answer a few storage RPCs, and proxy to fake external servers.
//! Everything each node sees is recorded, so tests can check what leaked where.
//!
//! Test-only code: it may panic on a poisoned lock, nothing else.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use umbra_crypto::{AccountId, Ed25519PublicKey, Identity, Random, SeededRandom, X25519PublicKey};
use umbra_nodelist::list::{NodeEntry, NodeList, SignedNodeList, TrustPolicy};
use umbra_onion::{OnionError, Peeled, ReplyBody, Response, V4Response, open_server_request, peel};

use crate::link::{Edge, LinkReply, OnionLink, RegistrySource};
use crate::{ClientError, LinkError, OnionTransport, TransportConfig};
use umbra_clock::{BoxFuture, Clock};

/// How a fake node behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Does its job.
    Honest,
    /// Unreachable: connections to it fail, and relays answer "next node unreachable".
    Down,
    /// Peels its layer, then answers a sealed `503 Snode not ready` (as a hop or destination).
    NotReady,
    /// As a destination, answers its storage RPCs with `500 request failed` (relays normally).
    Failing,
    /// A rogue relay: instead of forwarding, answers a plain-text (unauthenticated)
    /// `502 Next node not found: <the next node>` in an honest node's name.
    Forger,
}

/// What one node did with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Relayed to the next node.
    Relay,
    /// Was the storage destination.
    Destination,
    /// Was the exit to an external server.
    Exit,
}

/// One request as the network saw it.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The node the client connected to.
    pub edge: Ed25519PublicKey,
    /// The bytes the client posted to it.
    pub posted: Vec<u8>,
    /// Every node that peeled a layer, in order, with its role.
    pub hops: Vec<(Ed25519PublicKey, Role)>,
    /// The storage RPC body the destination read (if the request reached one).
    pub destination_body: Option<Vec<u8>>,
    /// The server request plaintext the server read (if it reached one).
    pub server_plaintext: Option<Vec<u8>>,
    /// A down node a relay failed to forward to.
    pub unreachable: Option<Ed25519PublicKey>,
}

struct FakeNode {
    identity: Identity,
    behaviour: Behaviour,
}

struct FakeServer {
    host: String,
    identity: Identity,
}

struct State {
    nodes: BTreeMap<Ed25519PublicKey, FakeNode>,
    /// What the nodes believe (swarms for 421).
    truth: NodeList,
    /// What the registry serves.
    published: SignedNodeList,
    servers: Vec<FakeServer>,
    traces: Vec<Trace>,
    rng: SeededRandom,
}

/// The most traces kept.
const MAX_TRACES: usize = 100_000;

/// An in-memory Umbra network: a registry and storage nodes.
pub struct FakeNetwork {
    registry: Identity,
    registry_up: AtomicBool,
    list_fetches: AtomicUsize,
    state: Mutex<State>,
}

impl std::fmt::Debug for FakeNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeNetwork").finish_non_exhaustive()
    }
}

/// Addresses in distinct /24s: `10.0.<i>.1`.
pub fn distinct_subnets(n: usize) -> Vec<Ipv4Addr> {
    (0..n)
        .map(|i| Ipv4Addr::new(10, (i / 250) as u8, (i % 250) as u8, 1))
        .collect()
}

/// Every node on `127.0.0.1` (a devnet).
pub fn loopback(n: usize) -> Vec<Ipv4Addr> {
    vec![Ipv4Addr::LOCALHOST; n]
}

/// A 33-byte account id (`05` ‖ key) from a seed byte.
pub fn account(seed: u8) -> AccountId {
    let mut a = [seed; 33];
    a[0] = 0x05;
    AccountId::new(a)
}

fn swarm_id(k: usize, swarms: usize) -> u64 {
    (k as u64 + 1) * (u64::MAX / (swarms as u64 + 1))
}

impl FakeNetwork {
    /// A network of one node per address in `ips` (ports 20000 + i), spread round-robin over
    /// `swarms` swarms, with the list of epoch 1 published. Deterministic for a `seed`.
    pub fn new(seed: u64, ips: &[Ipv4Addr], swarms: usize) -> Arc<Self> {
        let mut rng = SeededRandom::new(seed);
        let registry = Identity::generate(&mut rng);
        let swarms = swarms.max(1);
        let mut nodes = BTreeMap::new();
        let mut entries = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let identity = Identity::generate(&mut rng);
            entries.push(NodeEntry {
                pubkey_ed25519: identity.ed25519_public(),
                pubkey_x25519: identity.x25519_public(),
                public_ip: *ip,
                storage_port: 20_000 + i as u16,
                storage_lmq_port: 30_000 + i as u16,
                swarm_id: swarm_id(i % swarms, swarms),
                active: true,
                version: [2, 8, 0],
            });
            nodes.insert(
                identity.ed25519_public(),
                FakeNode {
                    identity,
                    behaviour: Behaviour::Honest,
                },
            );
        }
        let truth = NodeList::new(1, 1, entries);
        let published = SignedNodeList::sign(truth.clone(), &registry);
        Arc::new(Self {
            registry,
            registry_up: AtomicBool::new(true),
            list_fetches: AtomicUsize::new(0),
            state: Mutex::new(State {
                nodes,
                truth,
                published,
                servers: Vec::new(),
                traces: Vec::new(),
                rng,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The trust policy pinning this network's registry.
    pub fn trust_policy(&self) -> TrustPolicy {
        TrustPolicy::single(self.registry.ed25519_public())
    }

    /// The registry's identity (to sign forged or old lists in tests).
    pub fn registry_identity(&self) -> &Identity {
        &self.registry
    }

    /// The Ed25519 keys of all nodes, in list order.
    pub fn node_keys(&self) -> Vec<Ed25519PublicKey> {
        self.lock()
            .truth
            .nodes
            .iter()
            .map(|n| n.pubkey_ed25519)
            .collect()
    }

    /// The list the nodes currently believe.
    pub fn truth(&self) -> NodeList {
        self.lock().truth.clone()
    }

    /// Sets how a node behaves.
    pub fn set_behaviour(&self, node: &Ed25519PublicKey, behaviour: Behaviour) {
        if let Some(n) = self.lock().nodes.get_mut(node) {
            n.behaviour = behaviour;
        }
    }

    /// Makes the registry unreachable (`false`) or reachable again.
    pub fn set_registry_up(&self, up: bool) {
        self.registry_up.store(up, Ordering::SeqCst);
    }

    /// How many times the registry was asked for the list.
    pub fn list_fetches(&self) -> usize {
        self.list_fetches.load(Ordering::SeqCst)
    }

    /// Moves a node to another swarm in what the nodes believe, without publishing it.
    pub fn move_node(&self, node: &Ed25519PublicKey, swarm: u64) {
        let mut st = self.lock();
        if let Some(n) = st
            .truth
            .nodes
            .iter_mut()
            .find(|n| &n.pubkey_ed25519 == node)
        {
            n.swarm_id = swarm;
        }
    }

    /// Publishes what the nodes believe as the next epoch's signed list.
    pub fn publish(&self) {
        let mut st = self.lock();
        st.truth.epoch += 1;
        let list = st.truth.clone();
        st.published = SignedNodeList::sign(list, &self.registry);
    }

    /// Makes the registry serve `signed` as is (an old or forged list).
    pub fn serve_list(&self, signed: SignedNodeList) {
        self.lock().published = signed;
    }

    /// The list the registry serves now.
    pub fn published(&self) -> SignedNodeList {
        self.lock().published.clone()
    }

    /// Adds an external server reachable as `host`; returns its X25519 key.
    pub fn add_server(&self, host: &str) -> X25519PublicKey {
        let mut st = self.lock();
        let identity = Identity::generate(&mut st.rng);
        let pk = identity.x25519_public();
        st.servers.push(FakeServer {
            host: host.to_owned(),
            identity,
        });
        pk
    }

    /// Every request the network saw so far.
    pub fn traces(&self) -> Vec<Trace> {
        self.lock().traces.clone()
    }

    /// Forgets the traces.
    pub fn clear_traces(&self) {
        self.lock().traces.clear();
    }

    /// A transport using this network for both links, with `clock` and a seeded generator.
    ///
    /// # Errors
    /// As [`OnionTransport::with_parts`].
    pub fn transport(
        self: &Arc<Self>,
        config: TransportConfig,
        clock: Arc<dyn Clock>,
        seed: u64,
    ) -> Result<OnionTransport, ClientError> {
        OnionTransport::with_parts(
            self.trust_policy(),
            config,
            self.clone(),
            self.clone(),
            clock,
            Box::new(SeededRandom::new(seed)),
        )
    }

    /// One node handles one frame, forwarding to the next as a function call.
    fn handle(
        st: &mut State,
        node: &Ed25519PublicKey,
        frame: &[u8],
        trace: &mut Trace,
    ) -> Response {
        let Some(me) = st.nodes.get(node) else {
            return OnionError::NextNodeNotFound(*node).plain_response();
        };
        let behaviour = me.behaviour;
        let kp = me.identity.x25519_keypair();
        let peeled = peel(&kp, frame);
        let rng: &mut dyn Random = &mut st.rng;
        match peeled {
            Err(e) => e.response(rng),
            Ok(Peeled::Forward(fwd)) => {
                trace.hops.push((*node, Role::Relay));
                let next = *fwd.next_node();
                match behaviour {
                    Behaviour::NotReady => return fwd.fail(&OnionError::HopNotReady(*node), rng),
                    Behaviour::Forger => {
                        return OnionError::NextNodeNotFound(next).plain_response();
                    }
                    Behaviour::Honest | Behaviour::Down | Behaviour::Failing => {}
                }
                match st.nodes.get(&next).map(|n| n.behaviour) {
                    None => fwd.fail(&OnionError::NextNodeNotFound(next), rng),
                    Some(Behaviour::Down) => {
                        trace.unreachable = Some(next);
                        fwd.fail(&OnionError::NextNodeUnreachable(next), rng)
                    }
                    Some(_) => Self::handle(st, &next, &fwd.to_frame(), trace),
                }
            }
            Ok(Peeled::Destination(dest)) => {
                trace.hops.push((*node, Role::Destination));
                trace.destination_body = Some(dest.body().to_vec());
                match behaviour {
                    Behaviour::NotReady => return dest.fail(&OnionError::DestinationNotReady, rng),
                    Behaviour::Failing => {
                        return dest.reply(500, ReplyBody::Text("request failed".into()), rng);
                    }
                    _ => {}
                }
                let (status, body) = storage_rpc(&st.truth, node, dest.body());
                dest.reply(status, body, &mut st.rng)
            }
            Ok(Peeled::Exit(exit)) => {
                trace.hops.push((*node, Role::Exit));
                let Some(server) = st.servers.iter().find(|s| s.host == exit.host()) else {
                    return exit.fail(
                        &OnionError::ServerUnreachable("error trying to connect".into()),
                        rng,
                    );
                };
                let kp = server.identity.x25519_keypair();
                match open_server_request(&kp, exit.body()) {
                    Err(e) => exit.reply(e.status(), e.body().into_bytes(), rng),
                    Ok(req) => {
                        trace.server_plaintext = Some(req.plaintext().to_vec());
                        let endpoint = req.v4().map(|r| r.endpoint).unwrap_or_default();
                        let resp = V4Response {
                            code: 200,
                            headers: BTreeMap::from([(
                                "content-type".to_owned(),
                                "application/json".to_owned(),
                            )]),
                            body: json!({"endpoint": endpoint}).to_string().into_bytes(),
                        };
                        let sealed = req.reply(&resp, &mut st.rng);
                        exit.reply(200, sealed, &mut st.rng)
                    }
                }
            }
            Ok(_) => OnionError::InvalidJson.plain_response(),
        }
    }
}

/// The fake storage RPC: `info` anywhere; any method with a `pubkey` answers `421` (with the
/// right swarm) unless this node is in the account's swarm, else echoes the method.
fn storage_rpc(truth: &NodeList, me: &Ed25519PublicKey, body: &[u8]) -> (u16, ReplyBody) {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return (400, ReplyBody::Text("invalid json".into()));
    };
    let method = req
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if method == "info" {
        return (
            200,
            ReplyBody::Json(json!({"version": [2, 8, 0], "hf": [19, 3]})),
        );
    }
    if let Some(pk) = req.pointer("/params/pubkey").and_then(Value::as_str) {
        let mut account = [0u8; 33];
        if hex::decode_to_slice(pk, &mut account).is_err() {
            return (400, ReplyBody::Text("invalid pubkey".into()));
        }
        if let Ok(Some((_, members))) = truth.swarm_for_account(&AccountId::new(account))
            && !members.iter().any(|n| &n.pubkey_ed25519 == me)
        {
            let snodes: Vec<Value> = members
                .iter()
                .map(|n| json!({"pubkey_ed25519": hex::encode(n.pubkey_ed25519), "ip": n.public_ip.to_string()}))
                .collect();
            return (421, ReplyBody::Json(json!({"snodes": snodes})));
        }
    }
    (
        200,
        ReplyBody::Json(json!({"method": method, "node": hex::encode(me)})),
    )
}

impl OnionLink for FakeNetwork {
    fn post_onion<'a>(
        &'a self,
        edge: &'a Edge,
        frame: Vec<u8>,
    ) -> BoxFuture<'a, Result<LinkReply, LinkError>> {
        let mut st = self.lock();
        // Routed by address, as a real connection is: the key in `edge` is not trusted.
        let key = st
            .truth
            .nodes
            .iter()
            .find(|n| n.public_ip == edge.ip && n.storage_port == edge.port)
            .map(|n| n.pubkey_ed25519);
        let behaviour = key.and_then(|k| st.nodes.get(&k).map(|n| n.behaviour));
        let result = match (key, behaviour) {
            (None, _) | (_, None | Some(Behaviour::Down)) => {
                Err(LinkError::Connect("connection refused".into()))
            }
            (Some(key), Some(_)) => {
                let mut trace = Trace {
                    edge: key,
                    posted: frame.clone(),
                    hops: Vec::new(),
                    destination_body: None,
                    server_plaintext: None,
                    unreachable: None,
                };
                let resp = Self::handle(&mut st, &key, &frame, &mut trace);
                if st.traces.len() < MAX_TRACES {
                    st.traces.push(trace);
                }
                Ok(LinkReply {
                    status: resp.status,
                    body: resp.body,
                })
            }
        };
        Box::pin(std::future::ready(result))
    }
}

impl RegistrySource for FakeNetwork {
    fn fetch_list(&self) -> BoxFuture<'_, Result<LinkReply, LinkError>> {
        self.list_fetches.fetch_add(1, Ordering::SeqCst);
        let result = if self.registry_up.load(Ordering::SeqCst) {
            serde_json::to_vec(&self.lock().published)
                .map(|body| LinkReply { status: 200, body })
                .map_err(|e| LinkError::Other(e.to_string()))
        } else {
            Err(LinkError::Connect("connection refused".into()))
        };
        Box::pin(std::future::ready(result))
    }
}
