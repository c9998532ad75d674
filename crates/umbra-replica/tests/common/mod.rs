//! An in-process swarm: several stores with their gRPC peer APIs on 127.0.0.1:0, a stand-in for
//! the registry view, and a stand-in for the node's RPC layer (store/delete/expire only).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use umbra_clock::{Clock, ManualClock};
use umbra_crypto::{Identity, MessageHash};
use umbra_nodelist::SwarmView;
use umbra_nodelist::list::NodeEntry;
use umbra_replica::{
    ForwardFuture, ForwardHandler, ForwardReply, MemberResult, Replica, ReplicaConfig, ViewHandle,
};
use umbra_store::{
    AccountId, ExpireMode, ExpireRequest, ExpiryTarget, NewMessage, RetrieveLimits, Store,
    StoreConfig,
};
use umbra_swarm::{SwarmId, UNASSIGNED_SWARM_ID};

pub const NOW: u64 = 1_764_000_000_000;
pub const DAY: i64 = 24 * 3600 * 1000;
/// Two swarm ids far apart on the ring.
pub const SWARM_A: SwarmId = 1 << 62;
pub const SWARM_B: SwarmId = 3 << 62;

/// An account whose swarm space is `space` (`w0 ^ r ^ r ^ 0 = w0`); `r` makes it unique.
pub fn owner_at(space: u64, r: u64) -> AccountId {
    let mut b = [0u8; 33];
    b[0] = 0x05;
    b[1..9].copy_from_slice(&space.to_be_bytes());
    b[9..17].copy_from_slice(&r.to_be_bytes());
    b[17..25].copy_from_slice(&r.to_be_bytes());
    AccountId::new(b)
}

/// The stand-in for umbra-node's RPC: applies a forwarded write to the store and answers with
/// a signed result, as a member would.
pub struct TestRpc {
    pub identity: Arc<Identity>,
    pub store: Store,
}

impl TestRpc {
    pub async fn apply(&self, method: &str, params: &Value, now: i64) -> ForwardReply {
        let owner_hex = params["pubkey"].as_str().unwrap();
        let owner = AccountId::try_from(hex::decode(owner_hex).unwrap().as_slice()).unwrap();
        let sign =
            |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(self.identity.sign(s));
        match method {
            "store" => {
                let ns = params["namespace"].as_i64().unwrap() as i16;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(params["data"].as_str().unwrap())
                    .unwrap();
                let ts = params["timestamp"].as_i64().unwrap();
                let ttl = params["ttl"].as_i64().unwrap();
                let hash = umbra_crypto::hash::message_hash(&owner, i32::from(ns), &data);
                let out = self
                    .store
                    .store(
                        NewMessage {
                            owner,
                            namespace: ns,
                            hash,
                            data,
                            timestamp_ms: ts,
                            expiry_ms: ts + ttl,
                        },
                        now,
                    )
                    .await
                    .unwrap();
                let mut body = json!({"hash": hash, "signature": sign(hash.as_str().as_bytes()), "expiry": ts + ttl});
                if out.already() {
                    body["already"] = json!(true);
                }
                ForwardReply { status: 200, body }
            }
            "delete" => {
                let hashes: Vec<MessageHash> =
                    serde_json::from_value(params["messages"].clone()).unwrap();
                let deleted = self.store.delete(owner, hashes.clone(), now).await.unwrap();
                let mut signed = owner_hex.as_bytes().to_vec();
                for h in hashes.iter().chain(&deleted) {
                    signed.extend_from_slice(h.as_str().as_bytes());
                }
                ForwardReply {
                    status: 200,
                    body: json!({"deleted": deleted, "signature": sign(&signed)}),
                }
            }
            "expire" => {
                let hashes: Vec<MessageHash> =
                    serde_json::from_value(params["messages"].clone()).unwrap();
                let expiry = params["expiry"].as_i64().unwrap();
                let out = self
                    .store
                    .expire(
                        ExpireRequest {
                            owner,
                            hashes,
                            expiry: ExpiryTarget::Single(expiry),
                            mode: ExpireMode::Set,
                        },
                        now,
                    )
                    .await
                    .unwrap();
                let updated: Vec<MessageHash> = out.updated.iter().map(|u| u.hash).collect();
                ForwardReply {
                    status: 200,
                    body: json!({"updated": updated, "expiry": expiry, "signature": sign(b"expire")}),
                }
            }
            _ => ForwardReply {
                status: 400,
                body: Value::String(format!("no method {method}")),
            },
        }
    }
}

struct Handler {
    rpc: Arc<TestRpc>,
}

impl ForwardHandler for Handler {
    fn handle_forwarded(&self, method: String, params: Value, now_ms: i64) -> ForwardFuture<'_> {
        Box::pin(async move { self.rpc.apply(&method, &params, now_ms).await })
    }
}

/// Serves `replica`'s peer API over TLS on a fresh loopback port; while `up` is false every call is
/// refused with `UNAVAILABLE` (a node that is down).
pub async fn serve_replica(replica: &Replica, up: Arc<AtomicBool>) -> (SocketAddr, JoinHandle<()>) {
    let gate = move |req: tonic::Request<()>| {
        if up.load(Ordering::SeqCst) {
            Ok(req)
        } else {
            Err(tonic::Status::unavailable("down"))
        }
    };
    let svc = tonic::service::interceptor::InterceptedService::new(replica.grpc_server(), gate);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let replica = replica.clone();
    let server = tokio::spawn(async move {
        let _ = umbra_replica::server::builder()
            .add_service(svc)
            .serve_with_incoming(replica.tls_incoming(listener).unwrap())
            .await;
    });
    (addr, server)
}

pub struct TestNode {
    pub identity: Arc<Identity>,
    pub key: umbra_crypto::Ed25519PublicKey,
    pub store: Store,
    pub replica: Replica,
    pub view: ViewHandle,
    pub rpc: Arc<TestRpc>,
    pub up: Arc<AtomicBool>,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    server: JoinHandle<()>,
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestNode {
    pub fn member(&self, swarm: SwarmId, active: bool) -> NodeEntry {
        NodeEntry {
            pubkey_ed25519: self.key,
            pubkey_x25519: self.identity.x25519_public(),
            public_ip: Ipv4Addr::LOCALHOST,
            storage_port: self.addr.port(),
            storage_lmq_port: self.addr.port(),
            swarm_id: swarm,
            active,
            version: [2, 11, 0],
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    /// The hashes of the account's live messages in a namespace.
    pub fn hashes(&self, owner: &AccountId, ns: i16, now: i64) -> BTreeSet<MessageHash> {
        // No count or size limit: everything.
        let limits = RetrieveLimits::default();
        self.store
            .retrieve(owner, ns, None, limits, now)
            .unwrap()
            .messages
            .into_iter()
            .map(|m| m.hash)
            .collect()
    }

    /// Every bucket digest.
    pub fn digests(&self, now: i64) -> BTreeMap<(AccountId, i16), [u8; 32]> {
        self.store
            .bucket_digests(None, now)
            .unwrap()
            .into_iter()
            .map(|d| ((d.owner, d.namespace), d.digest))
            .collect()
    }

    /// A client write through this node as entry node: apply locally, fan out to the swarm.
    pub async fn write(
        &self,
        method: &str,
        params: Value,
        now: i64,
    ) -> (ForwardReply, Vec<MemberResult>) {
        let local = self.rpc.apply(method, &params, now).await;
        let results = self.replica.replicate(method, &params).await;
        (local, results)
    }
}

pub fn store_params(owner: &AccountId, ns: i16, data: &[u8], ts: i64) -> Value {
    json!({
        "pubkey": hex::encode(owner.as_bytes()),
        "namespace": ns,
        "data": base64::engine::general_purpose::STANDARD.encode(data),
        "timestamp": ts,
        "ttl": 14 * DAY,
    })
}

pub fn hash_of(owner: &AccountId, ns: i16, data: &[u8]) -> MessageHash {
    umbra_crypto::hash::message_hash(owner, i32::from(ns), data)
}

/// The identity of test node `i`.
pub fn node_identity(i: usize) -> Identity {
    let mut seed = [0u8; 32];
    seed[0] = 0x77;
    seed[1] = u8::try_from(i).unwrap();
    Identity::from_seed(&seed)
}

pub struct Net {
    pub clock: Arc<ManualClock>,
    pub nodes: Vec<TestNode>,
    epoch: u64,
}

impl Net {
    /// `n` nodes with empty views; call [`Net::assign`] to form swarms.
    pub async fn start(n: usize) -> Net {
        Net::start_with(n, |_| {}).await
    }

    /// As [`Net::start`], with the replica configuration adjusted by `tune`.
    pub async fn start_with(n: usize, tune: impl Fn(&mut ReplicaConfig)) -> Net {
        let clock = Arc::new(ManualClock::new(NOW));
        let mut nodes = Vec::new();
        for i in 0..n {
            let identity = Arc::new(node_identity(i));
            let key = identity.ed25519_public();
            let dir = tempfile::tempdir().unwrap();
            let store =
                Store::open(dir.path().join("messages.rocksdb"), StoreConfig::default()).unwrap();
            let view = ViewHandle::new(SwarmView::empty(key));
            let mut config = ReplicaConfig {
                // Small pages and batches so that paging and chunking are exercised.
                digest_page: 3,
                ..ReplicaConfig::default()
            };
            tune(&mut config);
            let c: Arc<dyn Clock> = clock.clone();
            let replica = Replica::new(config, identity.clone(), store.clone(), view.clone(), c);
            let rpc = Arc::new(TestRpc {
                identity: identity.clone(),
                store: store.clone(),
            });
            assert!(replica.set_forward_handler(Arc::new(Handler { rpc: rpc.clone() })));
            let up = Arc::new(AtomicBool::new(true));
            let (addr, server) = serve_replica(&replica, up.clone()).await;
            nodes.push(TestNode {
                identity,
                key,
                store,
                replica,
                view,
                rpc,
                up,
                addr,
                _dir: dir,
                server,
            });
        }
        Net {
            clock,
            nodes,
            epoch: 0,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms_i64()
    }

    /// Publishes a new list (next epoch) to every node: `assignment[i]` is node i's swarm, or
    /// `None` for a registered node outside any swarm.
    pub fn assign(&mut self, assignment: &[Option<SwarmId>]) {
        let members: Vec<NodeEntry> = self
            .nodes
            .iter()
            .zip(assignment)
            .map(|(n, s)| match s {
                Some(id) => n.member(*id, true),
                None => n.member(UNASSIGNED_SWARM_ID, false),
            })
            .collect();
        self.publish(members);
    }

    /// Publishes a new list (next epoch) of exactly `members` to every node (a node left out is
    /// not registered at all).
    pub fn publish(&mut self, members: Vec<NodeEntry>) {
        self.epoch += 1;
        for n in &self.nodes {
            assert!(
                n.view
                    .set(SwarmView::new(self.epoch, n.key, members.clone()))
            );
        }
    }
}
