//! Session's stored-message layers (`umbra-wire`): the `WebSocketMessage` wrapper and the
//! `Envelope` ([`unwrap_envelope`]), the whole one-to-one decode with a fixed recipient
//! ([`decode_one_to_one`]) and prost's decoding of `Content` and everything under it.
//!
//! The first input byte picks the mode:
//! - `0..=63`: the rest is stored bytes: unwrapped (round trip through [`wrap_envelope`]) and
//!   decoded for the fixed recipient;
//! - `64..=127`: the rest is a `Content` protobuf (round trip through prost);
//! - otherwise the rest is the padded `Content` plaintext, sealed by a fixed sender to the fixed
//!   recipient with Session protocol v1 and wrapped, so the fuzzer reaches unpadding and the
//!   `Content` decoder behind the signature.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use umbra_crypto::{Identity, SeededRandom, session_v1};
use umbra_wire::{
    Content, Envelope, MAX_STORED_MESSAGE, decode_one_to_one, envelope, unwrap_envelope,
    wrap_envelope,
};

static SENDER: LazyLock<Identity> = LazyLock::new(|| Identity::from_seed(&[1; 32]));
static RECIPIENT: LazyLock<Identity> = LazyLock::new(|| Identity::from_seed(&[2; 32]));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0..=63 => {
            if let Ok(env) = unwrap_envelope(rest) {
                let wrapped = wrap_envelope(&env);
                if wrapped.len() <= MAX_STORED_MESSAGE {
                    let again = unwrap_envelope(&wrapped).expect("a wrapped envelope unwraps");
                    assert_eq!(again, env);
                }
            }
            let _ = decode_one_to_one(&RECIPIENT, rest);
        }
        64..=127 => {
            if let Ok(content) = Content::decode(rest) {
                let again = Content::decode(content.encode_to_vec().as_slice())
                    .expect("an encoded Content decodes");
                assert_eq!(again, content);
            }
        }
        _ => {
            let mut rng = SeededRandom::new(u64::from(mode));
            let Ok(sealed) = session_v1::encrypt(&SENDER, &RECIPIENT.session_id(), rest, &mut rng)
            else {
                return;
            };
            let env = Envelope {
                r#type: envelope::Type::SessionMessage as i32,
                source: None,
                timestamp: u64::from(mode),
                source_device: None,
                content: Some(sealed),
                pro_sig: None,
            };
            let stored = wrap_envelope(&env);
            if let Ok(m) = decode_one_to_one(&RECIPIENT, &stored) {
                assert_eq!(m.sender, SENDER.session_id());
                assert_eq!(m.sent_ms, u64::from(mode));
            }
        }
    }
});
