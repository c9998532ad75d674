//! Benchmarks of umbra-crypto's hot paths (divan).
//!
//! `cargo bench -p umbra-crypto` measures; `cargo test` does not run benches at all, and
//! `cargo test --benches` (or `--all-targets`) runs each one once, as a smoke test, because
//! divan only measures when cargo passes `--bench`.
//!
//! Inputs are fixed and setup (key agreement, ciphertexts) happens outside the timed closure.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_crypto::{Identity, SeededRandom, session_v1, sign};

fn main() {
    divan::main();
}

const KIB: usize = 1024;

/// One X25519 scalar multiplication (a Diffie-Hellman agreement, with the all-zero check).
#[divan::bench]
fn x25519_dh(bencher: Bencher) {
    let ours = X25519KeyPair::from_secret([1; 32]);
    let theirs = X25519KeyPair::from_secret([2; 32]).public();
    bencher.bench(|| ours.dh(black_box(&theirs)).unwrap());
}

#[divan::bench]
fn ed25519_sign(bencher: Bencher) {
    let id = Identity::from_seed(&[3; 32]);
    let msg = [7u8; 256];
    bencher.bench(|| id.sign(black_box(&msg)));
}

/// `sign::verify`: libsodium-strict verification (canonical key, small-order checks).
#[divan::bench]
fn ed25519_verify(bencher: Bencher) {
    let id = Identity::from_seed(&[3; 32]);
    let msg = [7u8; 256];
    let sig = id.sign(&msg);
    let pk = id.ed25519_public();
    bencher.bench(|| sign::verify(black_box(&pk), black_box(&msg), black_box(&sig)).unwrap());
}

fn hop_decrypt(bencher: Bencher, enc: EncType, len: usize) {
    let client = X25519KeyPair::from_secret([4; 32]);
    let node = X25519KeyPair::from_secret([5; 32]);
    let blob = HopKey::client(enc, &client, &node.public())
        .unwrap()
        .encrypt(&vec![0xab; len], &mut SeededRandom::new(1))
        .unwrap();
    let key = HopKey::node(enc, &node, &client.public()).unwrap();
    bencher
        .counter(BytesCount::new(len))
        .bench(|| key.decrypt(black_box(&blob)).unwrap());
}

/// `HopKey::decrypt` with AES-256-GCM (key already derived).
#[divan::bench(args = [KIB, 64 * KIB])]
fn hop_decrypt_aes_gcm(bencher: Bencher, len: usize) {
    hop_decrypt(bencher, EncType::AesGcm, len);
}

/// `HopKey::decrypt` with XChaCha20-Poly1305 (key already derived).
#[divan::bench(args = [KIB, 64 * KIB])]
fn hop_decrypt_xchacha20(bencher: Bencher, len: usize) {
    hop_decrypt(bencher, EncType::XChaCha20, len);
}

/// Protocol v1 encryption of 1 KiB: sign, ephemeral key, X25519, XSalsa20-Poly1305.
#[divan::bench]
fn session_v1_encrypt_1kib(bencher: Bencher) {
    let sender = Identity::from_seed(&[6; 32]);
    let recipient = Identity::from_seed(&[8; 32]).session_id();
    let msg = vec![0x42u8; KIB];
    let mut rng = SeededRandom::new(2);
    bencher.counter(BytesCount::new(KIB)).bench_local(|| {
        session_v1::encrypt(&sender, black_box(&recipient), black_box(&msg), &mut rng).unwrap()
    });
}

/// Protocol v1 decryption of 1 KiB: X25519, open, verify, Ed25519 → X25519 conversion.
#[divan::bench]
fn session_v1_decrypt_1kib(bencher: Bencher) {
    let sender = Identity::from_seed(&[6; 32]);
    let recipient = Identity::from_seed(&[8; 32]);
    let ct = session_v1::encrypt(
        &sender,
        &recipient.session_id(),
        &vec![0x42u8; KIB],
        &mut SeededRandom::new(2),
    )
    .unwrap();
    bencher
        .counter(BytesCount::new(KIB))
        .bench(|| session_v1::decrypt(&recipient, black_box(&ct)).unwrap());
}
