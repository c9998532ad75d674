//! The registry's signed node list as nodes and clients receive it (`GET /v1/nodelist`):
//! [`SignedNodeList::from_json`], then [`TrustPolicy::verify`] / [`ListVerifier::accept`] with a
//! fixed registry key, and the lookups a node does on an accepted list.
//!
//! Properties: never panics; whatever parses serializes to JSON that parses to the same list;
//! a list that parses and has a canonical shape, signed by the trusted key, verifies; the
//! parsed list as received verifies only if it carries a good signature by that key.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use umbra_crypto::Identity;
use umbra_nodelist::list::{ListVerifier, SignedNodeList, TrustPolicy};

const MAX_LEN: usize = 1 << 20;

static REGISTRY: LazyLock<Identity> = LazyLock::new(|| Identity::from_seed(&[4; 32]));

fuzz_target!(|data: &[u8]| {
    let Ok(signed) = SignedNodeList::from_json(data, MAX_LEN) else {
        return;
    };
    let text = serde_json::to_vec(&signed).expect("a parsed list serializes");
    let again = SignedNodeList::from_json(&text, usize::MAX).expect("a serialized list parses");
    assert_eq!(again, signed);

    let policy = TrustPolicy::single(REGISTRY.ed25519_public());
    let mut verifier = ListVerifier::new(policy.clone());
    let _ = verifier.accept(signed.clone());

    let shape_ok = signed.list.check_shape().is_ok();
    let mut resigned = SignedNodeList::sign(signed.list.clone(), &REGISTRY);
    resigned
        .signatures
        .extend(signed.signatures.iter().take(8).cloned());
    let verified = policy.verify(&resigned);
    assert_eq!(verified.is_ok(), shape_ok, "{verified:?}");
    if shape_ok {
        let mut v = ListVerifier::with_seen_epoch(policy, signed.list.epoch);
        assert!(matches!(v.accept(resigned.clone()), Ok(true)));
        assert!(matches!(v.accept(resigned), Ok(false)));
        let _ = signed
            .list
            .swarm_for_account(&umbra_crypto::AccountId::new([5; 33]));
        if let Some(first) = signed.list.nodes.first() {
            assert_eq!(signed.list.node(&first.pubkey_ed25519), Some(first));
        }
    }
});
