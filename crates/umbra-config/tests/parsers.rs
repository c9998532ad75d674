//! Every parser of bytes is total (never panics) and what we write parses back to itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use umbra_config::crypt::{self, Opened};
use umbra_config::{ConfigMessage, Dict, Scalar, Value, bt};

const SEED: [u8; 32] = [3; 32];

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        any::<i64>().prop_map(Scalar::Int),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Scalar::Bytes),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        scalar().prop_map(Value::Scalar),
        proptest::collection::btree_set(scalar(), 1..4).prop_map(Value::Set),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 0..3), inner, 1..4)
            .prop_map(Value::Dict)
    })
}

fn dict() -> impl Strategy<Value = Dict> {
    proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 0..3), value(), 0..5)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(v) = bt::decode(&bytes) {
            prop_assert_eq!(v.encode(), bytes.clone());
        }
        let _ = ConfigMessage::parse(&bytes);
        let _ = crypt::open(&SEED, "Contacts", &bytes);
        // Behind the AEAD: whatever the body, opening is total.
        let sealed = crypt::encrypt(&SEED, "Contacts", &crypt::pad(&bytes)).unwrap();
        match crypt::open(&SEED, "Contacts", &sealed) {
            Ok(Opened::Whole(b)) => { let _ = ConfigMessage::parse(&b); }
            Ok(Opened::Part(p)) => { let _ = crypt::assemble(&[p]); }
            Err(_) => {}
        }
    }

    #[test]
    fn messages_round_trip(old in dict(), new in dict(), seqno in 0u64..1000) {
        let mut base = ConfigMessage::empty();
        base.seqno = seqno;
        base.data = old.clone();
        umbra_config::data::prune(&mut base.data);
        let mut m = base.increment(base.hash());
        m.data = new;
        umbra_config::data::prune(&mut m.data);
        m.diff = umbra_config::diff::diff(&base.data, &m.data);
        let bytes = m.serialise();
        let p = ConfigMessage::parse(&bytes).unwrap();
        prop_assert_eq!(&p.message, &m);
        prop_assert_eq!(p.hash, m.hash());
        // Replaying the diff onto the old data with the new data as source gives the new data.
        let mut replayed = base.data.clone();
        umbra_config::diff::replay(&mut replayed, &m.diff, &m.data);
        umbra_config::data::prune(&mut replayed);
        prop_assert_eq!(&replayed, &m.data);
        let sealed = crypt::seal(&SEED, "Contacts", &bytes).unwrap();
        prop_assert_eq!(
            crypt::open(&SEED, "Contacts", &sealed[0]).unwrap(),
            Opened::Whole(bytes)
        );
    }
}

#[test]
fn zstd_bomb_is_refused() {
    // 6 MB of zeros in a few hundred bytes; inflating it must stop at the 5 MB limit.
    // The same frame under the limit inflates (to zeros, which are no config).
    let small = [b"z".as_slice(), &rle_frame(1_000_000)].concat();
    let sealed = crypt::encrypt(&SEED, "Contacts", &crypt::pad(&small)).unwrap();
    assert_eq!(
        crypt::open(&SEED, "Contacts", &sealed),
        Err(umbra_config::ConfigError::UnknownForm(0))
    );
    let bomb = rle_frame(6_000_000);
    let body = [b"z".as_slice(), &bomb].concat();
    let sealed = crypt::encrypt(&SEED, "Contacts", &crypt::pad(&body)).unwrap();
    assert!(matches!(
        crypt::open(&SEED, "Contacts", &sealed),
        Err(umbra_config::ConfigError::Decompress { .. })
    ));
}

/// A minimal zstd frame of `n` zero bytes: RLE blocks of at most 128 KiB, no checksum, no
/// content size.
fn rle_frame(n: usize) -> Vec<u8> {
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd];
    // Frame header descriptor: no content size, not single-segment, no checksum, no dict id.
    f.push(0x00);
    // Window descriptor: exponent 10, mantissa 0: a 2^20-byte window.
    f.push(0x50);
    let max_block = 128 * 1024;
    let mut left = n;
    while left > 0 {
        let len = left.min(max_block);
        left -= len;
        let last = u32::from(left == 0);
        // Block header: last(1) | type(2) = 1 (RLE) | size(21).
        let header = last | (1 << 1) | ((len as u32) << 3);
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}
