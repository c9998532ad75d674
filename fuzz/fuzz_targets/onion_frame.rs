//! The onion frame parser (`u32_le(N) ‖ payload[N] ‖ control JSON`), the first thing a node
//! reads of `/onion_req/v2` and of every decrypted layer.
//!
//! Properties: never panics; a frame that parses re-encodes (with any trailing padding) to a
//! frame that parses to the same payload and JSON; `trimmed_len` never exceeds the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_onion::fuzzing::{encode_frame_padded, parse_frame};

fuzz_target!(|data: &[u8]| {
    let Ok((payload, json, trimmed_len)) = parse_frame(data) else {
        return;
    };
    assert!(trimmed_len <= data.len(), "trimmed_len past the input");
    assert!(payload.len() + 4 <= trimmed_len, "payload past trimmed_len");
    let text = serde_json::Value::Object(json.clone()).to_string();
    let pad = data.len() % 7;
    let again = encode_frame_padded(&payload, text.as_bytes(), pad);
    let (p2, j2, t2) = parse_frame(&again).expect("a re-encoded frame parses");
    assert_eq!(p2, payload);
    // Compared with the JSON re-read from the same text (float parsing need not round-trip).
    let reread: serde_json::Value =
        serde_json::from_str(&text).expect("serde_json reads its own output");
    assert_eq!(serde_json::Value::Object(j2), reread);
    assert_eq!(t2, again.len() - pad);
});
