#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The node list over real HTTP from an in-process `umbra-registry` service: fetched by
//! [`HttpLink`], verified against the pinned key, swarms computed locally exactly as the
//! registry computes them; a wrong pinned key is refused.

use std::net::Ipv4Addr;
use std::sync::Arc;

use umbra_crypto::{Identity, SeededRandom};
use umbra_net::{ClientError, NetworkConfig, OnionTransport, TransportConfig};
use umbra_nodelist::api::{Announcement, RegisterRequest};
use umbra_registry::registry::{Registry, RegistryConfig};
use umbra_registry::server::{AppState, Clock as _, SystemClock};
use umbra_registry::store::Store;

#[tokio::test]
async fn fetches_and_verifies_the_registry_list_over_http() {
    let mut rng = SeededRandom::new(31);
    let reg_id = Identity::generate(&mut rng);
    let reg_pk = reg_id.ed25519_public();
    let clock = Arc::new(SystemClock);
    let mut registry = Registry::open(
        Store::open_in_memory().unwrap(),
        reg_id,
        RegistryConfig::default(),
        clock.now_ms(),
    )
    .unwrap();
    for i in 0..7u16 {
        let node = Identity::generate(&mut rng);
        let ann = Announcement {
            public_ip: Ipv4Addr::new(10, 0, i as u8, 1),
            storage_port: 22_021,
            storage_lmq_port: 22_022,
            version: [2, 8, 0],
        };
        let req = RegisterRequest::new(&node, &reg_pk, ann, clock.now_ms()).unwrap();
        registry.register(&req, clock.now_ms()).unwrap();
    }
    let expected = registry.current().clone();
    let state = AppState::new(registry, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(umbra_registry::server::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));

    let network = NetworkConfig::from_json(
        format!(
            r#"{{"registry_url":"http://{addr}","registry_pubkey":"{}"}}"#,
            hex::encode(reg_pk)
        )
        .as_bytes(),
    )
    .unwrap();
    let t = OnionTransport::new(&network, TransportConfig::default()).unwrap();
    assert!(t.refresh_list().await.unwrap());
    assert_eq!(t.list_epoch(), Some(expected.list.epoch));
    for seed in 1..20u8 {
        let mut acc = [seed; 33];
        acc[0] = 0x05;
        let acc = umbra_crypto::AccountId::new(acc);
        let ours: Vec<_> = t.swarm_of(&acc).iter().map(|n| n.pubkey_ed25519).collect();
        let theirs: Vec<_> = expected
            .list
            .swarm_for_account(&acc)
            .unwrap()
            .map(|(_, m)| m.iter().map(|n| n.pubkey_ed25519).collect())
            .unwrap_or_default();
        assert_eq!(ours, theirs);
        assert!(!ours.is_empty());
    }
    assert!(!t.refresh_list().await.unwrap(), "the same list again");

    // Pinned to another key, the same list is refused.
    let wrong = NetworkConfig {
        registry_pubkey: Identity::generate(&mut rng).ed25519_public(),
        ..network
    };
    let t = OnionTransport::new(&wrong, TransportConfig::default()).unwrap();
    assert!(matches!(
        t.refresh_list().await,
        Err(ClientError::VerifyingNodeList(_))
    ));
    assert_eq!(t.list_epoch(), None);

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
