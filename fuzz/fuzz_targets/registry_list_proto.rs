//! The registry's signed node list as nodes receive it on the gRPC `WatchNodeList` stream:
//! protobuf decoding (within the stream's message limit), then
//! `SignedNodeList::try_from` (`umbra-nodelist` `proto`) and `TrustPolicy::verify` with a fixed
//! registry key.
//!
//! Properties: never panics; whatever converts converts back to the same protobuf message (so
//! nothing is silently dropped or changed); a converted list re-signed by the trusted key
//! verifies exactly when its shape is canonical.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use umbra_crypto::Identity;
use umbra_nodelist::list::{SignedNodeList, TrustPolicy};
use umbra_nodelist::proto::MAX_LIST_MESSAGE_BYTES;
use umbra_proto::umbra::registry::v1 as pb;

static REGISTRY: LazyLock<Identity> = LazyLock::new(|| Identity::from_seed(&[4; 32]));

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_LIST_MESSAGE_BYTES {
        return;
    }
    let Ok(message) = pb::SignedNodeList::decode(data) else {
        return;
    };
    let Ok(signed) = SignedNodeList::try_from(&message) else {
        return;
    };
    let back = pb::SignedNodeList::from(&signed);
    assert_eq!(
        SignedNodeList::try_from(&back).expect("a converted list converts again"),
        signed
    );
    assert_eq!(back.signatures.len(), message.signatures.len());

    let policy = TrustPolicy::single(REGISTRY.ed25519_public());
    let _ = policy.verify(&signed);
    let shape_ok = signed.list.check_shape().is_ok();
    let resigned = SignedNodeList::sign(signed.list.clone(), &REGISTRY);
    assert_eq!(policy.verify(&resigned).is_ok(), shape_ok);
});
