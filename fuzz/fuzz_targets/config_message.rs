//! Session's config messages (`umbra-config`): decryption, padding removal, zstd inflation,
//! multi-part parts, the bounded bencode decoder, the message parser, and a device merging
//! what it retrieved.
//!
//! The first input byte picks the mode:
//! - `0..=63`: the rest is a plaintext message: bencode (canonical, so it re-encodes to
//!   itself) and the message parser (a parsed message re-serialises to bytes that parse to the
//!   same serialisation);
//! - `64..=127`: the rest is stored bytes, opened under the fixed key;
//! - `128..=191`: the rest is a decrypted body, padded and sealed under the fixed key first, so
//!   the fuzzer reaches the `d`/`z`/`m` forms behind the AEAD;
//! - otherwise the rest is cut into up to four bodies, each sealed, and merged by a device
//!   with local edits (adopt or merge, then push).
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_config::crypt::{self, Opened};
use umbra_config::{ConfigMessage, ConfigState, SwarmHash, Value, bt};

const SEED: [u8; 32] = [5; 32];
const DOMAIN: &str = "Contacts";

fn parse_plain(bytes: &[u8]) {
    if let Ok(v) = bt::decode(bytes) {
        assert_eq!(v.encode(), bytes, "canonical bencode re-encodes to itself");
    }
    if let Ok(p) = ConfigMessage::parse(bytes) {
        let again = p.message.serialise();
        let q = ConfigMessage::parse(&again).expect("a serialised message parses");
        assert_eq!(q.message.serialise(), again, "serialisation is stable");
        assert_eq!(q.hash, q.message.hash());
    }
}

fn open(stored: &[u8]) {
    match crypt::open(&SEED, DOMAIN, stored) {
        Ok(Opened::Whole(b)) => parse_plain(&b),
        Ok(Opened::Part(p)) => {
            let _ = crypt::assemble(&[p]);
        }
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0..=63 => parse_plain(rest),
        64..=127 => open(rest),
        128..=191 => {
            if let Ok(sealed) = crypt::encrypt(&SEED, DOMAIN, &crypt::pad(rest)) {
                open(&sealed);
            }
        }
        _ => {
            let mut dev = ConfigState::new(&SEED, DOMAIN).expect("valid domain");
            dev.edit(|d| d.insert(b"local".to_vec(), Value::from(1)));
            let sealed: Vec<(SwarmHash, Vec<u8>)> = rest
                .chunks(rest.len() / 4 + 1)
                .enumerate()
                .filter_map(|(i, body)| {
                    let ct = crypt::encrypt(&SEED, DOMAIN, &crypt::pad(body)).ok()?;
                    Some((SwarmHash(i.to_string()), ct))
                })
                .collect();
            let inputs: Vec<(SwarmHash, &[u8])> = sealed
                .iter()
                .map(|(h, m)| (h.clone(), m.as_slice()))
                .collect();
            let report = dev.merge(&inputs);
            assert!(report.accepted.len() + report.skipped.len() <= inputs.len());
            if let Ok(Some(p)) = dev.push() {
                dev.confirm_pushed(p.seqno, &[SwarmHash("pushed".into())]);
            }
        }
    }
});
