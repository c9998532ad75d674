//! Session's bencoded node-to-node onion form (`peel_bencoded`) and the bencode decoder under
//! it (also used by v4 payloads).
//!
//! Properties: never panics; the decoder accepts only canonical bencoding, so anything it
//! decodes re-encodes to exactly the input.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use umbra_crypto::SeededRandom;
use umbra_crypto::keys::X25519KeyPair;
use umbra_onion::fuzzing::bencode_reencode;
use umbra_onion::{Peeled, peel_bencoded};

static NODE: LazyLock<X25519KeyPair> = LazyLock::new(|| X25519KeyPair::from_secret([7; 32]));

fuzz_target!(|data: &[u8]| {
    if let Some(again) = bencode_reencode(data) {
        assert_eq!(again, data, "canonical bencode re-encodes to itself");
    }
    let mut rng = SeededRandom::new(1);
    match peel_bencoded(&NODE, data) {
        Ok(Peeled::Forward(f)) => {
            let _ = (f.to_frame(), f.to_bencoded());
        }
        Ok(Peeled::Destination(d)) => {
            let _ = d.reply(200, umbra_onion::ReplyBody::Text("ok".into()), &mut rng);
        }
        Ok(Peeled::Exit(e)) => {
            let _ = e.url();
        }
        Ok(_) => {}
        Err(e) => {
            let _ = e.response(&mut rng);
        }
    }
});
