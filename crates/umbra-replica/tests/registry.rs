//! The registry client against a real in-process registry over gRPC: registration, the signed
//! list pushed by the `WatchNodeList` stream, refusing older, tampered or foreign lists,
//! keeping the last list while the registry is down, reconnecting, and the membership task.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use umbra_clock::{Clock, SystemClock};
use umbra_crypto::Identity;
use umbra_nodelist::SwarmView;
use umbra_nodelist::api::{Announcement, RegisterRequest};
use umbra_nodelist::list::{NodeList, SignedNodeList, TrustPolicy};
use umbra_registry::registry::{Registry, RegistryConfig};
use umbra_registry::server::AppState;
use umbra_replica::registry_client::{MembershipConfig, RegistryClient, run_membership};
use umbra_replica::{ReplicaError, ViewHandle};

/// Hang guard only: every wait ends on an event long before.
const HANG: Duration = Duration::from_secs(60);

fn node(i: u8) -> Identity {
    Identity::from_seed(&[0x30 + i; 32])
}

fn registry_identity() -> Identity {
    Identity::from_seed(&[0x52; 32])
}

fn announcement(i: u8) -> Announcement {
    Announcement {
        public_ip: Ipv4Addr::LOCALHOST,
        storage_port: 30_000 + u16::from(i),
        storage_lmq_port: 31_000 + u16::from(i),
        version: [2, 8, 0],
    }
}

/// A registry serving gRPC (and HTTP) on loopback.
struct Reg {
    url: String,
    addr: SocketAddr,
    key: umbra_crypto::Ed25519PublicKey,
    identity: Identity,
    state: Arc<AppState>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Reg {
    /// Stops both servers and waits for them.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        for t in self.tasks.drain(..) {
            tokio::time::timeout(HANG, t).await.unwrap().unwrap();
        }
    }

    /// Registers node `i` directly in the registry (publishing a new list).
    fn register(&self, i: u8) -> u64 {
        let now = SystemClock.now_ms();
        let req = RegisterRequest::new(&node(i), &self.key, announcement(i), now).unwrap();
        self.state
            .with_registry(|r, now| r.register(&req, now))
            .unwrap()
            .epoch
    }
}

/// A registry signing with `identity`, its database in `db` (`None`: in memory), its gRPC
/// listener on `grpc` (port 0: any), nodes `joined` registered before it serves. Heartbeats
/// are asked for once a minute, so a list that arrives sooner came by the stream.
async fn start_registry_with(
    identity: Identity,
    db: Option<&Path>,
    grpc: SocketAddr,
    joined: &[u8],
) -> Reg {
    let store = match db {
        Some(p) => umbra_registry::store::Store::open(p).unwrap(),
        None => umbra_registry::store::Store::open_in_memory().unwrap(),
    };
    let key = identity.ed25519_public();
    let mut registry = Registry::open(
        store,
        Identity::from_seed(identity.seed()),
        RegistryConfig {
            heartbeat_interval_ms: 60_000,
            inactive_after_ms: 600_000,
            ..RegistryConfig::default()
        },
        SystemClock.now_ms(),
    )
    .unwrap();
    for &i in joined {
        let now = SystemClock.now_ms();
        let req = RegisterRequest::new(&node(i), &key, announcement(i), now).unwrap();
        registry.register(&req, now).unwrap();
    }
    let state = AppState::new(registry, Arc::new(SystemClock));
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = tokio::net::TcpListener::bind(grpc).await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let tasks = vec![
        tokio::spawn({
            let (state, stop) = (state.clone(), stopped(rx.clone()));
            async move {
                umbra_registry::server::serve(http, state, stop)
                    .await
                    .unwrap()
            }
        }),
        tokio::spawn({
            let (state, stop) = (state.clone(), stopped(rx));
            async move {
                umbra_registry::grpc::serve_grpc(grpc, state, stop)
                    .await
                    .unwrap()
            }
        }),
    ];
    Reg {
        url: format!("http://{addr}"),
        addr,
        key,
        identity,
        state,
        stop: Some(tx),
        tasks,
    }
}

fn any() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

async fn start_registry() -> Reg {
    start_registry_with(registry_identity(), None, any(), &[]).await
}

fn client_for(
    url: &str,
    key: umbra_crypto::Ed25519PublicKey,
    me: &Identity,
) -> (RegistryClient, ViewHandle) {
    let view = ViewHandle::new(SwarmView::empty(me.ed25519_public()));
    let c = RegistryClient::new(
        url,
        TrustPolicy::single(key),
        key,
        me.ed25519_public(),
        view.clone(),
        Duration::from_secs(10),
    )
    .unwrap();
    (c, view)
}

/// Waits (hang guard only) until the view holds a list of at least `epoch`.
async fn wait_for_epoch(view: &ViewHandle, epoch: u64) {
    let mut changes = view.subscribe();
    tokio::time::timeout(HANG, async {
        while view.get().epoch() < epoch {
            changes.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no list of epoch {epoch} within {HANG:?}"));
}

/// Starts the membership task of node 1 (quick retries); stop it with the sender.
fn spawn_membership(
    c: &Arc<RegistryClient>,
    me: &Arc<Identity>,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run_membership(
        c.clone(),
        me.clone(),
        announcement(1),
        Arc::new(SystemClock),
        MembershipConfig {
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_millis(400),
            ..MembershipConfig::default()
        },
        stop_rx,
    ));
    (stop_tx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_and_refuses_older_tampered_and_foreign_lists() {
    let mut reg = start_registry().await;
    let nodes: Vec<Identity> = (0..3).map(node).collect();
    let (c, view) = client_for(&reg.url, reg.key, &nodes[0]);
    for (i, n) in nodes.iter().enumerate() {
        let status = c
            .register(n, announcement(i as u8), SystemClock.now_ms_i64())
            .await
            .unwrap();
        assert!(status.active);
    }
    assert!(c.refresh().await.unwrap());
    let v = view.get();
    let ours = v
        .our_swarm()
        .expect("fewer nodes than the minimum form one swarm");
    assert_eq!(v.members(ours).len(), 3);
    assert_eq!(v.peers().len(), 2);
    let epoch = v.epoch();
    assert_eq!(c.seen_epoch(), Some(epoch));
    // The same list again changes nothing.
    assert!(!c.refresh().await.unwrap());
    let hb = c
        .heartbeat(&nodes[0], SystemClock.now_ms_i64())
        .await
        .unwrap();
    assert!(hb.epoch >= epoch);

    // An older list, even validly signed, is refused; so is a tampered one, and one signed by
    // another key.
    let older = SignedNodeList::sign(NodeList::new(epoch - 1, 0, vec![]), &reg.identity);
    assert!(matches!(c.accept(older), Err(ReplicaError::ListRefused(_))));
    let mut tampered = SignedNodeList::sign(NodeList::new(epoch + 5, 0, vec![]), &reg.identity);
    tampered.list.epoch += 1;
    assert!(matches!(
        c.accept(tampered),
        Err(ReplicaError::ListRefused(_))
    ));
    let forged = SignedNodeList::sign(NodeList::new(epoch + 9, 0, vec![]), &node(9));
    assert!(matches!(
        c.accept(forged),
        Err(ReplicaError::ListRefused(_))
    ));
    assert_eq!(view.get().epoch(), epoch);

    // A registry signing with another key: its stream's lists are refused, the view stays.
    let mut other = start_registry_with(node(8), None, any(), &[5]).await;
    let (impostor, impostor_view) = client_for(&other.url, reg.key, &nodes[0]);
    assert!(matches!(
        impostor.refresh().await,
        Err(ReplicaError::ListRefused(_))
    ));
    assert_eq!(impostor_view.get().epoch(), 0);
    other.stop().await;

    // Registry down: refresh fails, the last list stays.
    reg.stop().await;
    assert!(matches!(
        c.refresh().await,
        Err(ReplicaError::Registry { .. })
    ));
    assert_eq!(view.get().epoch(), epoch);
    assert_eq!(view.get().members(ours).len(), 3);
    // Unknown node heartbeat: the membership task answers it by registering again.
    let reg2 = start_registry().await;
    let (c2, _) = client_for(&reg2.url, reg2.key, &nodes[1]);
    let r = c2.heartbeat(&nodes[1], SystemClock.now_ms_i64()).await;
    assert!(
        r.as_ref().is_err_and(ReplicaError::is_not_registered),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_signed_list_is_pushed_within_a_short_bound() {
    let reg = start_registry().await;
    let me = Arc::new(node(1));
    let (c, view) = client_for(&reg.url, reg.key, &me);
    let c = Arc::new(c);
    let (stop_tx, task) = spawn_membership(&c, &me);
    // The task registers (a new list) and the stream brings it.
    tokio::time::timeout(HANG, async {
        let mut changes = view.subscribe();
        while view.get().our_swarm().is_none() {
            changes.changed().await.unwrap();
        }
    })
    .await
    .unwrap();

    // Each newly signed list arrives without waiting for a heartbeat (asked for once a
    // minute here): well within a second on loopback.
    let clock = SystemClock;
    for i in 2..5 {
        let started = clock.instant();
        let epoch = reg.register(i);
        wait_for_epoch(&view, epoch).await;
        let took = clock.since(started);
        assert!(took < Duration::from_secs(2), "list {epoch} took {took:?}");
    }
    assert_eq!(view.get().members(view.get().our_swarm().unwrap()).len(), 4);

    stop_tx.send(true).unwrap();
    tokio::time::timeout(HANG, task).await.unwrap().unwrap();
    // After leaving, the registry lists the node as inactive.
    assert!(c.refresh().await.unwrap());
    let v = view.get();
    assert!(v.is_listed());
    assert_eq!(v.our_swarm(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_keeps_its_list_while_the_registry_is_down_and_catches_up_on_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("registry.sqlite");
    let mut reg = start_registry_with(registry_identity(), Some(&db), any(), &[]).await;
    let grpc_addr = reg.addr;
    let me = Arc::new(node(1));
    let (c, view) = client_for(&reg.url, reg.key, &me);
    let c = Arc::new(c);
    let (stop_tx, task) = spawn_membership(&c, &me);
    reg.register(2);
    // Both registrations (ours, by the task, and node 2's) in the list the node holds: nothing
    // else changes the list until the registry stops.
    tokio::time::timeout(HANG, async {
        let mut changes = view.subscribe();
        loop {
            let v = view.get();
            if v.our_swarm().is_some() && v.node(&node(2).ed25519_public()).is_some() {
                break;
            }
            changes.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    let before = view.get();

    // Down: the view stays as it was (the stream ended; reconnects fail and back off).
    reg.stop().await;
    drop(reg);
    assert_eq!(view.get().epoch(), before.epoch());
    assert_eq!(view.get().our_swarm(), before.our_swarm());

    // Back on the same address with a list signed while the node was away (its database
    // kept, plus a node that joined before it serves again): the reconnected stream starts
    // with that list.
    let reg = start_registry_with(registry_identity(), Some(&db), grpc_addr, &[3]).await;
    let newer = reg.state.with_registry(|r, _| Ok(r.epoch())).unwrap();
    assert!(newer > before.epoch());
    wait_for_epoch(&view, newer).await;
    assert!(view.get().node(&node(3).ed25519_public()).is_some());
    stop_tx.send(true).unwrap();
    tokio::time::timeout(HANG, task).await.unwrap().unwrap();
}
