//! Cost of peeling one onion layer at a relay, next to one X25519 scalar multiplication and
//! the bare AEAD on the same payload, measured in the same run.
//!
//! `cargo bench -p umbra-onion --bench peel`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use divan::{Bencher, black_box};
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_crypto::{Identity, SeededRandom};
use umbra_onion::{Destination, Hop, Peeled, RequestBuilder, peel};

fn main() {
    divan::main();
}

const SIZES: [usize; 2] = [1024, 64 * 1024];

fn hop(id: &Identity) -> Hop {
    Hop {
        ed25519: id.ed25519_public(),
        x25519: id.x25519_public(),
    }
}

/// A request whose first layer (what the edge peels) carries `size` bytes of storage RPC.
fn edge_frame(enc: EncType, size: usize) -> (X25519KeyPair, Vec<u8>) {
    let mut rng = SeededRandom::new(size as u64);
    let ids: Vec<Identity> = (0..4).map(|_| Identity::generate(&mut rng)).collect();
    let path: Vec<Hop> = ids[..3].iter().map(hop).collect();
    let request = vec![b'x'; size];
    let req = RequestBuilder::new()
        .enc_type(enc)
        .build(
            &path,
            Destination::Node {
                node: hop(&ids[3]),
                request: &request,
            },
            &mut rng,
        )
        .unwrap();
    let keys = ids[0].x25519_keypair();
    assert!(matches!(peel(&keys, &req.body), Ok(Peeled::Forward(_))));
    (keys, req.body)
}

fn bench_peel(b: Bencher<'_, '_>, enc: EncType, size: usize) {
    let (keys, frame) = edge_frame(enc, size);
    b.counter(divan::counter::BytesCount::new(frame.len()))
        .bench(|| peel(black_box(&keys), black_box(&frame)).is_ok());
}

#[divan::bench(args = SIZES)]
fn peel_layer_aes_gcm(b: Bencher<'_, '_>, size: usize) {
    bench_peel(b, EncType::AesGcm, size);
}

#[divan::bench(args = SIZES)]
fn peel_layer_xchacha20(b: Bencher<'_, '_>, size: usize) {
    bench_peel(b, EncType::XChaCha20, size);
}

fn bench_aead(b: Bencher<'_, '_>, enc: EncType, size: usize) {
    let mut rng = SeededRandom::new(1);
    let node = X25519KeyPair::generate(&mut rng);
    let eph = X25519KeyPair::generate(&mut rng);
    let key = HopKey::client(enc, &eph, &node.public()).unwrap();
    let blob = key.encrypt(&vec![b'x'; size], &mut rng).unwrap();
    // As `peel` does: the plaintext buffer is moved out of its `Zeroizing` wrapper (relay
    // plaintext is forwarded anyway), so the timing holds the copy and the AEAD, not a
    // byte-by-byte zeroing of the buffer on drop.
    b.counter(divan::counter::BytesCount::new(blob.len()))
        .bench(|| {
            key.decrypt(black_box(&blob))
                .map(|mut pt| std::mem::take(&mut *pt))
        });
}

/// The AEAD step alone (no DH, no parsing), for the "X25519 + AEAD" budget.
#[divan::bench(args = SIZES)]
fn aead_open_aes_gcm(b: Bencher<'_, '_>, size: usize) {
    bench_aead(b, EncType::AesGcm, size);
}

/// The AEAD step alone (no DH, no parsing).
#[divan::bench(args = SIZES)]
fn aead_open_xchacha20(b: Bencher<'_, '_>, size: usize) {
    bench_aead(b, EncType::XChaCha20, size);
}

/// One X25519 scalar multiplication (variable base), the ceiling a peel is compared with.
#[divan::bench]
fn x25519_scalar_mult(b: Bencher<'_, '_>) {
    let scalar = [0x42u8; 32];
    let point = x25519_dalek::x25519([7u8; 32], x25519_dalek::X25519_BASEPOINT_BYTES);
    b.bench(|| x25519_dalek::x25519(black_box(scalar), black_box(point)));
}
