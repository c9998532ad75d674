//! Benchmarks of groups v2 at 10, 100 and 1 000 members (divan).
//!
//! `cargo bench -p umbra-groups` measures and first prints the keys-message sizes; `cargo test
//! --benches` runs each bench once as a smoke test.
//!
//! - `rekey_on_removal`: an admin removes one member of an `n`-member group and builds the
//!   new keys message for the `n − 1` left (derivation, one X25519 + AEAD per member, junk,
//!   signature).
//! - `member_finds_key`: a member parses and verifies that message and finds and decrypts
//!   its copy; the member measured is the one whose copy comes last (the worst case: every
//!   other entry is tried first).
//! - `ceiling_x25519_per_member`: the floor under `rekey_on_removal`, measured in the same
//!   run: one X25519 with each of the `n − 1` members and nothing else. A rekey cannot cost
//!   less; its ratio to this says what the rest (AEAD, junk, encoding, signature) adds.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use divan::{Bencher, black_box};
use umbra_crypto::{Identity, SessionId};
use umbra_groups::rekey::build_rekey;
use umbra_groups::{GroupAdmin, KeysMessage};

const SIZES: [usize; 3] = [10, 100, 1000];

fn people(n: usize) -> Vec<Identity> {
    (0..n)
        .map(|i| {
            let mut seed = [0x5au8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Identity::from_seed(&seed)
        })
        .collect()
}

fn main() {
    let admin = GroupAdmin::from_seed(&[1; 32]);
    for n in SIZES {
        let ids: Vec<SessionId> = people(n).iter().map(Identity::session_id).collect();
        let rekey = build_rekey(&admin, &ids[1..], 1).unwrap();
        println!(
            "keys message after removing one of {n} members: {} bytes ({} copies, {} entries)",
            rekey.message.len(),
            rekey.copies,
            rekey.copies.div_ceil(75) * 75
        );
    }
    divan::main();
}

#[divan::bench(args = SIZES, sample_count = 20)]
fn rekey_on_removal(bencher: Bencher, n: usize) {
    let admin = GroupAdmin::from_seed(&[1; 32]);
    let ids: Vec<SessionId> = people(n).iter().map(Identity::session_id).collect();
    bencher.bench(|| build_rekey(&admin, black_box(&ids[1..]), 1).unwrap());
}

#[divan::bench(args = SIZES, sample_count = 50)]
fn member_finds_key(bencher: Bencher, n: usize) {
    let admin = GroupAdmin::from_seed(&[1; 32]);
    let all = people(n);
    let ids: Vec<SessionId> = all.iter().map(Identity::session_id).collect();
    let msg = build_rekey(&admin, &ids, 1).unwrap().message;
    let last = all
        .iter()
        .max_by(|a, b| a.session_id().as_bytes().cmp(b.session_id().as_bytes()))
        .unwrap();
    let group = *admin.public();
    bencher.bench(|| {
        let KeysMessage::Full(f) = KeysMessage::parse(black_box(&msg), &group).unwrap() else {
            unreachable!("a full keys message")
        };
        f.decrypt_member(last, &group).unwrap().unwrap()
    });
}

#[divan::bench(args = SIZES, sample_count = 20)]
fn ceiling_x25519_per_member(bencher: Bencher, n: usize) {
    let sender = Identity::from_seed(&[1; 32]);
    let keys: Vec<_> = people(n)[1..].iter().map(Identity::x25519_public).collect();
    bencher.bench(|| {
        for k in black_box(&keys) {
            black_box(sender.x25519_dh(k).unwrap());
        }
    });
}
