//! Umbra's control layer: the `umbra` options a node reads from control JSON, and the sealed
//! hop message (authenticated hop errors, wrapped exit replies) a client opens.
//!
//! The first input byte picks the mode:
//! - `0..=63`: the rest is control JSON; `umbra` options read from it are written back and read
//!   again (round trip);
//! - `64..=127`: the rest is a sealed hop message, opened as received;
//! - otherwise the rest is a hop message *plaintext*, sealed under the fixed layer key and
//!   opened, so the fuzzer reaches the hop-message parser behind the AEAD; whatever opens is
//!   sealed again (padded or not) and must open to the same message.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use umbra_crypto::SeededRandom;
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_onion::fuzzing::{umbra_options_from_json, umbra_options_to_json};
use umbra_onion::{HopMessage, UMBRA_KEY};

static KEYS: LazyLock<Vec<HopKey>> = LazyLock::new(|| {
    let node = X25519KeyPair::from_secret([7; 32]);
    let eph = X25519KeyPair::from_secret([9; 32]);
    [EncType::AesGcm, EncType::XChaCha20]
        .into_iter()
        .filter_map(|enc| HopKey::client(enc, &eph, &node.public()).ok())
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut rng = SeededRandom::new(u64::from(mode));
    let key = &KEYS[usize::from(mode & 1) % KEYS.len()];
    match mode {
        0..=63 => {
            let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            if let Some(opts) = umbra_options_from_json(&map) {
                let mut again = Map::new();
                again.insert(UMBRA_KEY.into(), umbra_options_to_json(opts));
                assert_eq!(umbra_options_from_json(&again), Some(opts));
            }
        }
        64..=127 => {
            let _ = HopMessage::open(key, rest);
        }
        _ => {
            let Ok(sealed) = key.encrypt(rest, &mut rng) else {
                return;
            };
            if let Some(msg) = HopMessage::open(key, &sealed) {
                for pad in [false, true] {
                    let resealed = msg.seal(key, pad, &mut rng);
                    assert_eq!(HopMessage::open(key, &resealed).as_ref(), Some(&msg));
                }
            }
        }
    }
});
