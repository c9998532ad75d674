#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Parsers of bytes from the network or disk never panic, whatever they are given.

use proptest::prelude::*;
use umbra_crypto::{AccountId, Ed25519PublicKey};
use umbra_net::NodeDirectory;
use umbra_net::directory::NetworkConfig;
use umbra_nodelist::list::TrustPolicy;

proptest! {
    #[test]
    fn node_list_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut d = NodeDirectory::new(TrustPolicy::single(Ed25519PublicKey::from_bytes([1; 32])), 1000);
        prop_assert!(d.accept_json(&body, 0).is_err());
        prop_assert!(d.list().is_none());
    }

    #[test]
    fn network_files_never_panic(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = NetworkConfig::from_json(&body);
    }

    #[test]
    fn wrong_swarm_bodies_never_panic(text in ".{0,512}") {
        let mut d = NodeDirectory::new(TrustPolicy::single(Ed25519PublicKey::from_bytes([1; 32])), 1000);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            prop_assert_eq!(d.note_wrong_swarm(&AccountId::new([5; 33]), &v), 0);
        }
    }
}
