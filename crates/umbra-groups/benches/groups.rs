//! Benchmarks of groups v2 at 10, 100 and 1 000 members (divan).
//!
//! `cargo bench -p umbra-groups` first prints the bytes stored (keys messages, configs, one
//! message) and the thread CPU time per call of create, rekey, send and open with their
//! ceilings (which a busy machine's wall-clock medians do not give), then measures with
//! divan; `cargo test --benches` runs each bench once as a smoke test, without the CPU times.
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
//! - `create_group`: what an admin computes to create an `n`-member group, as the messenger's
//!   `create_group` does: the first keys message for all `n` (creator included), the Info
//!   config (name, creation time) and the Members config (the creator as admin, `n − 1`
//!   invited entries set one by one), both signed and encrypted for their first push. The
//!   one-to-one invitations are not included. Its floor is `ceiling_x25519_all`: one X25519
//!   with each of the `n` members. `create_group_one_edit` is the same with the Members
//!   entries written in one edit (`GroupMembers::set_all`) instead of one edit per member.
//! - `send_message`: encrypting and signing one group message (a 160-byte payload, as a short
//!   text's `Envelope`; zstd tried as the messenger asks) under the key of an `n`-member
//!   group; `member_opens_message`: a member decrypting and verifying it. Neither depends on
//!   `n` (one key, one signature). Floor: `ceiling_sign_and_seal`, one Ed25519 signature of
//!   the payload and one XChaCha20-Poly1305 seal of the padded plaintext.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use divan::{Bencher, black_box};
use umbra_crypto::{Identity, SeededRandom, SessionId};
use umbra_groups::rekey::build_rekey;
use umbra_groups::{
    GroupAdmin, GroupInfo, GroupKeys, GroupMembers, KeysMessage, Member, Role, decrypt_message,
    encrypt_message,
};

const SIZES: [usize; 3] = [10, 100, 1000];
/// Swarm time of the first keys message.
const NOW_MS: i64 = 1_700_000_000_000;
/// Bytes of the payload of one group message: a short text's `Envelope`.
const PAYLOAD: usize = 160;

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
    for n in SIZES {
        let ids: Vec<SessionId> = people(n).iter().map(Identity::session_id).collect();
        let c = create(&admin, &ids, false);
        let info: usize = c.info.iter().map(Vec::len).sum();
        let members: usize = c.members.iter().map(Vec::len).sum();
        println!(
            "creating a group of {n}: keys message {} B + Info {info} B ({} message) + \
             Members {members} B ({} message(s)) = {} B",
            c.keys_message.len(),
            c.info.len(),
            c.members.len(),
            c.keys_message.len() + info + members,
        );
    }
    let (sender, keys) = group_of(10);
    let sent =
        encrypt_message(&sender, &keys, &payload(), true, &mut SeededRandom::new(1)).unwrap();
    println!(
        "one group message ({PAYLOAD} B payload): {} B stored once in namespace 11",
        sent.len()
    );
    // Under `cargo bench` only: `cargo test --benches` runs each bench once and no more.
    if std::env::args().any(|a| a == "--bench") {
        cpu_times(&admin);
    }
    divan::main();
}

/// CPU time this thread has used, in ms (`/proc/thread-self/stat` utime + stime, 10 ms ticks).
fn thread_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 * 10.0
}

/// CPU ms per call of `f`: repeated until at least 1 s of CPU (≤ 1 % tick error).
fn cpu_per_call(mut f: impl FnMut()) -> f64 {
    let start = thread_cpu_ms();
    let mut calls = 0u32;
    loop {
        f();
        calls += 1;
        let used = thread_cpu_ms() - start;
        if calls >= 3 && used >= 1000.0 {
            return used / f64::from(calls);
        }
    }
}

/// Thread CPU time per operation, which wall-clock medians do not give on a busy machine:
/// creating (as the messenger does, and in one edit), rekeying, sending and opening one
/// message, each next to its ceiling.
fn cpu_times(admin: &GroupAdmin) {
    println!("thread CPU time per call (at least 1 s of CPU each, 10 ms ticks):");
    for n in SIZES {
        let all = people(n);
        let ids: Vec<SessionId> = all.iter().map(Identity::session_id).collect();
        let x: Vec<_> = all.iter().map(Identity::x25519_public).collect();
        let me = Identity::from_seed(&[1; 32]);
        let ceiling_all = cpu_per_call(|| x25519_with_all(&me, &x));
        let ceiling_rest = cpu_per_call(|| x25519_with_all(&me, &x[1..]));
        let create_now = cpu_per_call(|| drop(black_box(create(admin, &ids, false))));
        let create_one = cpu_per_call(|| drop(black_box(create(admin, &ids, true))));
        let rekey = cpu_per_call(|| drop(black_box(build_rekey(admin, &ids[1..], 1).unwrap())));
        println!(
            "  n = {n}: create {create_now:.3} ms ({:.2}× ceiling), in one edit \
             {create_one:.3} ms ({:.2}×), ceiling n X25519 {ceiling_all:.3} ms; rekey \
             {rekey:.3} ms ({:.2}× its ceiling {ceiling_rest:.3} ms)",
            create_now / ceiling_all,
            create_one / ceiling_all,
            rekey / ceiling_rest,
        );
    }
    let (sender, keys) = group_of(1000);
    let mut rng = SeededRandom::new(5);
    let p = payload();
    let send = cpu_per_call(|| {
        drop(black_box(encrypt_message(
            &sender, &keys, &p, true, &mut rng,
        )))
    });
    let sent = encrypt_message(&sender, &keys, &p, true, &mut rng).unwrap();
    let open = cpu_per_call(|| drop(black_box(decrypt_message(&keys, &sent).unwrap())));
    let (signed, plain) = sign_and_seal_inputs(&sender, &keys);
    let ceiling = cpu_per_call(|| drop(sign_and_seal(&sender, &signed, &plain)));
    println!(
        "  one message (any n): send {:.1} µs ({:.2}× ceiling), open {:.1} µs, ceiling sign + \
         seal {:.1} µs",
        send * 1000.0,
        send / ceiling,
        open * 1000.0,
        ceiling * 1000.0,
    );
}

/// One X25519 of `me` with each key.
fn x25519_with_all(me: &Identity, keys: &[umbra_crypto::X25519PublicKey]) {
    for k in black_box(keys) {
        black_box(me.x25519_dh(k).unwrap());
    }
}

/// What a message signs (payload ‖ group key) and its padded plaintext, for the ceiling.
fn sign_and_seal_inputs(sender: &Identity, keys: &GroupKeys) -> (Vec<u8>, Vec<u8>) {
    let signed = [payload(), vec![0x42; 32]].concat();
    // The padded plaintext of a real message: its stored size less the nonce and the tag.
    let sent = encrypt_message(sender, keys, &payload(), true, &mut SeededRandom::new(4)).unwrap();
    (signed, vec![0u8; sent.len() - 24 - 16])
}

/// The floor of sending: one signature and one seal, nothing else.
fn sign_and_seal(sender: &Identity, signed: &[u8], plain: &[u8]) -> Vec<u8> {
    black_box(sender.sign(black_box(signed)));
    umbra_groups::multi::seal(&[9; 32], &[3; 24], black_box(plain)).unwrap()
}

/// What creating a group stores: namespace 12, 13 and 14 messages.
struct Created {
    keys_message: Vec<u8>,
    info: Vec<Vec<u8>>,
    members: Vec<Vec<u8>>,
}

/// The admin side of the messenger's `create_group` for `ids` (the creator first): the
/// Members entries set one by one as it does now, or in one edit (`GroupMembers::set_all`).
fn create(admin: &GroupAdmin, ids: &[SessionId], one_edit: bool) -> Created {
    let mut keys = GroupKeys::new(*admin.public());
    let keys_message = keys.rekey(admin, ids, NOW_MS).unwrap();
    keys.load(Role::Admin(admin), "k0", &keys_message, NOW_MS)
        .unwrap();
    let mut info = GroupInfo::new(admin.public(), Some(admin), &keys).unwrap();
    info.set_name("Benchmark group").unwrap();
    info.set_created(NOW_MS / 1000);
    let mut list = GroupMembers::new(admin.public(), Some(admin), &keys).unwrap();
    let entries = Member::founding(ids[0], "Creator", &ids[1..]);
    if one_edit {
        list.set_all(&entries).unwrap();
    } else {
        for m in &entries {
            list.set(m).unwrap();
        }
    }
    Created {
        keys_message,
        info: info.state_mut().push().unwrap().unwrap().messages,
        members: list.state_mut().push().unwrap().unwrap().messages,
    }
}

/// A member of an `n`-member group holding its key (loaded from the first keys message).
fn group_of(n: usize) -> (Identity, GroupKeys) {
    let admin = GroupAdmin::from_seed(&[1; 32]);
    let mut all = people(n);
    let ids: Vec<SessionId> = all.iter().map(Identity::session_id).collect();
    let msg = build_rekey(&admin, &ids, 0).unwrap().message;
    let me = all.swap_remove(n / 2);
    let mut keys = GroupKeys::new(*admin.public());
    keys.load(Role::Member(&me), "k0", &msg, NOW_MS).unwrap();
    (me, keys)
}

/// An incompressible payload (a text envelope carries keys and signatures).
fn payload() -> Vec<u8> {
    let mut p = vec![0u8; PAYLOAD];
    umbra_crypto::Random::fill(&mut SeededRandom::new(7), &mut p);
    p
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
    bencher.bench(|| x25519_with_all(&sender, &keys));
}

#[divan::bench(args = SIZES, sample_count = 20)]
fn create_group(bencher: Bencher, n: usize) {
    let admin = GroupAdmin::from_seed(&[1; 32]);
    let ids: Vec<SessionId> = people(n).iter().map(Identity::session_id).collect();
    bencher.bench(|| create(&admin, black_box(&ids), false));
}

#[divan::bench(args = SIZES, sample_count = 20)]
fn create_group_one_edit(bencher: Bencher, n: usize) {
    let admin = GroupAdmin::from_seed(&[1; 32]);
    let ids: Vec<SessionId> = people(n).iter().map(Identity::session_id).collect();
    bencher.bench(|| create(&admin, black_box(&ids), true));
}

#[divan::bench(args = SIZES, sample_count = 20)]
fn ceiling_x25519_all(bencher: Bencher, n: usize) {
    let sender = Identity::from_seed(&[1; 32]);
    let keys: Vec<_> = people(n).iter().map(Identity::x25519_public).collect();
    bencher.bench(|| x25519_with_all(&sender, &keys));
}

#[divan::bench(args = SIZES, sample_count = 200)]
fn send_message(bencher: Bencher, n: usize) {
    let (sender, keys) = group_of(n);
    let payload = payload();
    let mut rng = SeededRandom::new(2);
    bencher.bench_local(|| {
        encrypt_message(&sender, &keys, black_box(&payload), true, &mut rng).unwrap()
    });
}

#[divan::bench(args = SIZES, sample_count = 200)]
fn member_opens_message(bencher: Bencher, n: usize) {
    let (sender, keys) = group_of(n);
    let sent =
        encrypt_message(&sender, &keys, &payload(), true, &mut SeededRandom::new(3)).unwrap();
    bencher.bench(|| decrypt_message(&keys, black_box(&sent)).unwrap());
}

#[divan::bench(sample_count = 200)]
fn ceiling_sign_and_seal(bencher: Bencher) {
    let (sender, keys) = group_of(10);
    let (signed, plain) = sign_and_seal_inputs(&sender, &keys);
    bencher.bench(|| sign_and_seal(&sender, &signed, &plain));
}
