//! The storage RPC request parser: the body of `POST /storage_rpc/v1` (and an onion
//! destination's payload) up to a typed request, without a node or a store
//! (`umbra_node::rpc::fuzzing`).
//!
//! Properties: never panics; every refusal is a 4xx with a body; the outcome depends only on
//! the JSON value, not on its formatting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_node::rpc::fuzzing::parse_rpc_body;

fuzz_target!(|data: &[u8]| {
    let outcome = parse_rpc_body(data);
    if let Err((status, body)) = &outcome {
        assert!((400..500).contains(status), "refused with {status}");
        assert!(!body.is_empty(), "refusal without a body");
    }
    // The same request, reformatted: same outcome (compared after one normalisation, since
    // float parsing need not round-trip).
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let once = serde_json::to_vec(&v).expect("a JSON value serializes");
        let v2: serde_json::Value = serde_json::from_slice(&once).expect("reads its own output");
        let twice = serde_json::to_vec_pretty(&v2).expect("a JSON value serializes");
        assert_eq!(parse_rpc_body(&once), parse_rpc_body(&twice));
    }
});
