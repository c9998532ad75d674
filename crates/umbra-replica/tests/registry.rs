//! The registry client against a real in-process registry: registration, the signed list,
//! refusing older or tampered lists, keeping the last list while the registry is down, and the
//! membership task.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use umbra_clock::{Clock, SystemClock};
use umbra_crypto::Identity;
use umbra_nodelist::SwarmView;
use umbra_nodelist::api::Announcement;
use umbra_nodelist::list::{NodeList, SignedNodeList, TrustPolicy};
use umbra_registry::registry::{Registry, RegistryConfig};
use umbra_registry::server::AppState;
use umbra_replica::registry_client::{MembershipConfig, RegistryClient, run_membership};
use umbra_replica::{ReplicaError, ViewHandle};

fn node(i: u8) -> Identity {
    Identity::from_seed(&[0x30 + i; 32])
}

fn announcement(i: u8) -> Announcement {
    Announcement {
        public_ip: Ipv4Addr::LOCALHOST,
        storage_port: 30_000 + u16::from(i),
        storage_lmq_port: 31_000 + u16::from(i),
        version: [2, 8, 0],
    }
}

struct Reg {
    url: String,
    key: umbra_crypto::Ed25519PublicKey,
    identity: Identity,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_registry() -> Reg {
    let identity = Identity::from_seed(&[0x52; 32]);
    let now = SystemClock.now_ms();
    let registry = Registry::open(
        umbra_registry::store::Store::open_in_memory().unwrap(),
        Identity::from_seed(&[0x52; 32]),
        RegistryConfig {
            heartbeat_interval_ms: 200,
            inactive_after_ms: 60_000,
            ..RegistryConfig::default()
        },
        now,
    )
    .unwrap();
    let state = AppState::new(registry, Arc::new(SystemClock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = umbra_registry::server::serve(listener, state, async move {
            let _ = rx.await;
        })
        .await;
    });
    Reg {
        url,
        key: identity.ed25519_public(),
        identity,
        stop: Some(tx),
        task,
    }
}

fn client_for(reg: &Reg, me: &Identity) -> (RegistryClient, ViewHandle) {
    let view = ViewHandle::new(SwarmView::empty(me.ed25519_public()));
    let c = RegistryClient::new(
        &reg.url,
        TrustPolicy::single(reg.key),
        reg.key,
        me.ed25519_public(),
        view.clone(),
        Duration::from_secs(10),
    )
    .unwrap();
    (c, view)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_the_signed_list_and_keeps_it_while_the_registry_is_down() {
    let mut reg = start_registry().await;
    let nodes: Vec<Identity> = (0..3).map(node).collect();
    let (c, view) = client_for(&reg, &nodes[0]);
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

    // An older list, even validly signed, is refused; so is a tampered one.
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

    // Registry down: refresh fails, the last list stays.
    if let Some(stop) = reg.stop.take() {
        let _ = stop.send(());
    }
    let _ = (&mut reg.task).await;
    assert!(c.refresh().await.is_err());
    assert_eq!(view.get().epoch(), epoch);
    assert_eq!(view.get().members(ours).len(), 3);
    // Unknown node heartbeat is a 404 the membership task answers by registering again.
    let reg2 = start_registry().await;
    let (c2, _) = client_for(&reg2, &nodes[1]);
    let r = c2.heartbeat(&nodes[1], SystemClock.now_ms_i64()).await;
    assert!(
        matches!(r, Err(ReplicaError::RegistryStatus { status: 404, .. })),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_membership_task_registers_follows_and_leaves() {
    let reg = start_registry().await;
    let me = Arc::new(node(1));
    let (c, view) = client_for(&reg, &me);
    let c = Arc::new(c);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut changes = view.subscribe();
    let task = tokio::spawn(run_membership(
        c.clone(),
        me.clone(),
        announcement(1),
        Arc::new(SystemClock),
        MembershipConfig::default(),
        stop_rx,
    ));
    // Hang guard only: the view changes as soon as the task has registered and fetched.
    tokio::time::timeout(Duration::from_secs(60), async {
        while view.get().our_swarm().is_none() {
            changes.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .unwrap()
        .unwrap();
    // After leaving, the registry lists the node as inactive.
    assert!(c.refresh().await.unwrap());
    let v = view.get();
    assert!(v.is_listed());
    assert_eq!(v.our_swarm(), None);
}
