//! Round trips of the stream format for any size and any way of splitting the input and the
//! blob, and refusal of truncated, extended or modified blobs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Cursor, Read, Seek, SeekFrom};

use proptest::prelude::*;
use umbra_attachment_crypto::{
    AttachmentError, AttachmentKey, Decryptor, Domain, Encryptor, STREAM_CHUNK, SizeLimit, decrypt,
    decrypt_to_vec, derive_secrets, encrypt, encrypt_to_vec, encrypted_size,
};

const SEED: [u8; 32] = [0x42; 32];

fn data(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13) ^ salt)
        .collect()
}

/// Sizes where the padded stream or the blob crosses a boundary: 4 KiB buckets, 32 KiB
/// secretstream chunks, 1 MiB transfer chunks.
fn edge_sizes() -> Vec<usize> {
    let mut v = vec![0, 1, 2, 4052, 4053, 4054, 4055, 8149, 8150];
    for b in [STREAM_CHUNK, 2 * STREAM_CHUNK, 3 * STREAM_CHUNK, 1 << 20] {
        v.extend([b - 1, b, b + 1]);
    }
    v
}

/// Encrypts through an [`Encryptor`] fed in pieces cut at `cuts`.
fn encrypt_in_pieces(plain: &[u8], cuts: &[usize]) -> (Vec<u8>, AttachmentKey) {
    let secrets = derive_secrets(&SEED, Domain::Attachment, plain);
    let mut enc = Encryptor::new(&secrets, plain.len() as u64, SizeLimit::Large).unwrap();
    let mut blob = Vec::new();
    let mut at = 0;
    for &c in cuts {
        let c = c.min(plain.len()).max(at);
        enc.update(&plain[at..c], &mut blob).unwrap();
        at = c;
    }
    enc.update(&plain[at..], &mut blob).unwrap();
    enc.finish(&mut blob).unwrap();
    (blob, secrets.key)
}

fn decrypt_in_pieces(
    key: &AttachmentKey,
    blob: &[u8],
    cuts: &[usize],
) -> Result<Vec<u8>, AttachmentError> {
    let mut dec = Decryptor::new(key);
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts {
        let c = c.min(blob.len()).max(at);
        dec.update(&blob[at..c], &mut out)?;
        at = c;
    }
    dec.update(&blob[at..], &mut out)?;
    dec.finish(&mut out)?;
    Ok(out)
}

#[test]
fn edge_sizes_round_trip_and_are_deterministic() {
    for len in edge_sizes() {
        let plain = data(len, 1);
        let (blob, info) =
            encrypt_to_vec(&SEED, Domain::Attachment, SizeLimit::Regular, &plain).unwrap();
        assert_eq!(blob.len() as u64, encrypted_size(len as u64), "size {len}");
        assert_eq!(blob.len() % 4096, 0, "blobs are whole 4 KiB buckets");
        // Any split of the input gives the same bytes.
        let (again, key) = encrypt_in_pieces(&plain, &[1, 7, STREAM_CHUNK, STREAM_CHUNK + 3]);
        assert_eq!(again, blob, "size {len}");
        assert_eq!(key, info.key);
        assert_eq!(
            decrypt_to_vec(&info.key, &blob).unwrap(),
            plain,
            "size {len}"
        );
        // Another sender, or another domain, gives another blob.
        let (other, _) =
            encrypt_to_vec(&[1; 32], Domain::Attachment, SizeLimit::Regular, &plain).unwrap();
        assert_ne!(other, blob);
        let (pic, _) =
            encrypt_to_vec(&SEED, Domain::ProfilePicture, SizeLimit::Regular, &plain).unwrap();
        assert_ne!(pic, blob);
    }
}

#[test]
fn refusals_name_what_failed() {
    let plain = data(100_000, 2);
    let (blob, info) =
        encrypt_to_vec(&SEED, Domain::Attachment, SizeLimit::Regular, &plain).unwrap();
    let key = &info.key;
    let err = |b: &[u8]| decrypt_to_vec(key, b).unwrap_err();

    assert!(matches!(err(&[]), AttachmentError::Truncated));
    assert!(matches!(err(&blob[..25]), AttachmentError::Truncated));
    assert!(matches!(
        err(&blob[..blob.len() - 1]),
        AttachmentError::ChunkAuthentication { index: 3 }
    ));
    assert!(matches!(
        err(&blob[..25 + 32_785]),
        AttachmentError::Truncated
    ));
    assert!(matches!(err(&blob[..25 + 16]), AttachmentError::Truncated));
    let mut longer = blob.clone();
    longer.push(0);
    // The last chunk is never full (the padding sees to it), so an extra byte joins it.
    assert!(matches!(
        err(&longer),
        AttachmentError::ChunkAuthentication { index: 3 }
    ));
    let mut legacy = blob.clone();
    legacy[0] = 0x10;
    assert!(matches!(
        err(&legacy),
        AttachmentError::UnknownFormat { first_byte: 0x10 }
    ));
    let mut header = blob.clone();
    header[5] ^= 1;
    assert!(matches!(
        err(&header),
        AttachmentError::ChunkAuthentication { index: 0 }
    ));
    // Chunks swapped: authentication fails at the first moved chunk.
    let mut swapped = blob.clone();
    let (a, b) = (25..25 + 32_785, 25 + 32_785..25 + 2 * 32_785);
    let first = swapped[a.clone()].to_vec();
    swapped.copy_within(b.clone(), a.start);
    swapped[b].copy_from_slice(&first);
    assert!(matches!(
        err(&swapped),
        AttachmentError::ChunkAuthentication { index: 0 }
    ));
    let wrong = AttachmentKey::from_bytes([9; 32]);
    assert!(matches!(
        decrypt_to_vec(&wrong, &blob),
        Err(AttachmentError::ChunkAuthentication { index: 0 })
    ));

    // The encryptor holds the caller to the announced size.
    let secrets = derive_secrets(&SEED, Domain::Attachment, &plain);
    let mut enc = Encryptor::new(&secrets, 10, SizeLimit::Regular).unwrap();
    assert!(matches!(
        enc.update(&plain[..11], &mut Vec::new()),
        Err(AttachmentError::LengthMismatch {
            announced: 10,
            received: 11
        })
    ));
    let enc = Encryptor::new(&secrets, 10, SizeLimit::Regular).unwrap();
    assert!(matches!(
        enc.finish(&mut Vec::new()),
        Err(AttachmentError::LengthMismatch {
            announced: 10,
            received: 0
        })
    ));
    assert!(matches!(
        Encryptor::new(&secrets, 10_218_287, SizeLimit::Regular).map(|_| ()),
        Err(AttachmentError::TooLarge {
            size: 10_218_287,
            limit: 10_218_286
        })
    ));
    let e = AttachmentError::Io(std::io::Error::other("disk full"));
    umbra_report::assert_cause_once(&e);
}

/// A reader whose bytes change between the two passes of `encrypt`.
struct Shifty {
    inner: Cursor<Vec<u8>>,
    rewound: bool,
}

impl Read for Shifty {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.rewound && n > 0 {
            buf[0] ^= 1;
        }
        Ok(n)
    }
}

impl Seek for Shifty {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        if matches!(pos, SeekFrom::Start(_)) {
            self.rewound = true;
        }
        self.inner.seek(pos)
    }
}

#[test]
fn a_file_changed_during_encryption_is_refused() {
    let mut r = Shifty {
        inner: Cursor::new(data(50_000, 3)),
        rewound: false,
    };
    let e = encrypt(
        &SEED,
        Domain::Attachment,
        SizeLimit::Regular,
        &mut r,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(e, AttachmentError::InputChanged));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_size_any_split_round_trips(
        len in prop_oneof![proptest::sample::select(edge_sizes()), 0usize..140_000],
        salt in any::<u8>(),
        enc_cuts in proptest::collection::vec(0usize..140_000, 0..6),
        dec_cuts in proptest::collection::vec(0usize..150_000, 0..6),
    ) {
        let plain = data(len, salt);
        let mut enc_cuts = enc_cuts;
        enc_cuts.sort_unstable();
        let mut dec_cuts = dec_cuts;
        dec_cuts.sort_unstable();
        let (blob, key) = encrypt_in_pieces(&plain, &enc_cuts);
        prop_assert_eq!(blob.len() as u64, encrypted_size(len as u64));
        prop_assert_eq!(decrypt_in_pieces(&key, &blob, &dec_cuts).unwrap(), plain.clone());
        // The Read/Write helpers with a reader that returns at most `step` bytes per call.
        let step = dec_cuts.first().copied().unwrap_or(1).max(1);
        let mut out = Vec::new();
        let n = decrypt(&key, &mut Trickle { data: &blob, step }, &mut out).unwrap();
        prop_assert_eq!(n, len as u64);
        prop_assert_eq!(out, plain);
    }

    #[test]
    fn truncation_extension_and_bit_flips_are_refused(
        len in 0usize..70_000,
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        extra in proptest::collection::vec(any::<u8>(), 1..40),
    ) {
        let plain = data(len, 7);
        let (blob, info) = encrypt_to_vec(&SEED, Domain::Attachment, SizeLimit::Regular, &plain).unwrap();
        let i = at.index(blob.len());
        prop_assert!(decrypt_to_vec(&info.key, &blob[..i]).is_err(), "truncated at {}", i);
        let mut flipped = blob.clone();
        flipped[i] ^= 1 << bit;
        prop_assert!(decrypt_to_vec(&info.key, &flipped).is_err(), "bit flip at {}", i);
        let mut longer = blob.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(decrypt_to_vec(&info.key, &longer).is_err());
    }

    #[test]
    fn garbage_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..70_000), key in any::<[u8; 32]>()) {
        let mut blob = blob;
        if let Some(b) = blob.first_mut() { *b = b'S'; }
        prop_assert!(decrypt_to_vec(&AttachmentKey::from_bytes(key), &blob).is_err());
    }
}

/// A reader that hands out at most `step` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
