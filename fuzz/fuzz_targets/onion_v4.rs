//! The v4 payload to and from external servers (`onion-requests.md` §6): what a server decodes
//! after decrypting ([`V4Request::decode`]) and what a client decodes from a server's answer
//! ([`V4Response::decode`]).
//!
//! Properties: never panics; whatever decodes re-encodes to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_onion::{V4Request, V4Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = V4Request::decode(data) {
        let again = V4Request::decode(&req.encode()).expect("an encoded request decodes");
        assert_eq!(again, req);
    }
    if let Ok(resp) = V4Response::decode(data) {
        let again = V4Response::decode(&resp.encode()).expect("an encoded response decodes");
        assert_eq!(again, resp);
    }
});
