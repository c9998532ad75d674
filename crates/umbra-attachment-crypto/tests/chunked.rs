//! The chunked view: manifests as `docs/attachments.md` defines them, in-order verification,
//! and downloads that decrypt chunk by chunk and resume from a checkpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use umbra_attachment_crypto::chunked::{
    CHUNK_SIZE, ChunkVerifier, ChunkedDecryptor, Manifest, ManifestBuilder, chunk_count, chunk_len,
};
use umbra_attachment_crypto::{
    AttachmentError, Domain, EncryptedAttachment, SizeLimit, encrypt_to_vec,
};

const C: usize = CHUNK_SIZE as usize;

fn blob_of(len: usize) -> (Vec<u8>, Vec<u8>, EncryptedAttachment) {
    let data: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
    let (blob, info) =
        encrypt_to_vec(&[3; 32], Domain::Attachment, SizeLimit::Large, &data).unwrap();
    (data, blob, info)
}

/// Values computed independently with Python's hashlib from `docs/attachments.md`.
#[test]
fn manifest_matches_the_server_format() {
    let blob = vec![7u8; 2 * C + 5];
    let m = Manifest::of(&blob);
    assert_eq!((m.size, m.chunks.len()), (blob.len() as u64, 3));
    assert_eq!(
        hex::encode(m.chunks[2]),
        "c300b0d0f58c80a47475810435ead363e4d1f0124a03cea1bd9ea3118eae3885"
    );
    assert_eq!(
        m.upload_id(),
        "O_6wrEYHBCsQBjz8WYcxHFNf04dHcWkeD3ekzPjmcaCe"
    );
    let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    assert_eq!(json["v"], 1);
    assert_eq!(json["size"], 2 * C as u64 + 5);
    assert_eq!(json["chunk_size"], CHUNK_SIZE);
    assert_eq!(
        json["chunks"][2],
        "c300b0d0f58c80a47475810435ead363e4d1f0124a03cea1bd9ea3118eae3885"
    );
    assert_eq!(json.as_object().unwrap().len(), 4);
    // Streamed in odd pieces, the same manifest.
    let mut b = ManifestBuilder::new();
    for piece in blob.chunks(99_991) {
        b.update(piece);
    }
    assert_eq!(b.finish(), m);
}

#[test]
fn chunk_arithmetic() {
    assert_eq!(chunk_count(0), 0);
    assert_eq!(chunk_count(1), 1);
    assert_eq!(chunk_count(CHUNK_SIZE), 1);
    assert_eq!(chunk_count(CHUNK_SIZE + 1), 2);
    assert_eq!(chunk_len(CHUNK_SIZE + 1, 0), CHUNK_SIZE);
    assert_eq!(chunk_len(CHUNK_SIZE + 1, 1), 1);
    assert_eq!(chunk_len(CHUNK_SIZE + 1, 2), 0);
    assert_eq!(chunk_len(u64::MAX, u64::MAX), 0);
}

#[test]
fn verifier_refuses_reordering_truncation_and_changes() {
    let (_, blob, _) = blob_of(3 * C);
    let m = Manifest::of(&blob);
    let chunks: Vec<&[u8]> = blob.chunks(C).collect();
    assert_eq!(chunks.len(), 4);

    let mut v = ChunkVerifier::new(m.clone());
    assert!(matches!(
        v.push(1, chunks[1]),
        Err(AttachmentError::ChunkOutOfOrder {
            expected: 0,
            got: 1
        })
    ));
    // Chunk 1's bytes announced as chunk 0: right length, wrong hash.
    assert!(matches!(
        v.push(0, chunks[1]),
        Err(AttachmentError::ChunkHash { index: 0 })
    ));
    v.push(0, chunks[0]).unwrap();
    let mut flipped = chunks[1].to_vec();
    flipped[12345] ^= 4;
    assert!(matches!(
        v.push(1, &flipped),
        Err(AttachmentError::ChunkHash { index: 1 })
    ));
    assert!(matches!(
        v.push(1, &chunks[1][1..]),
        Err(AttachmentError::ChunkLength { index: 1, .. })
    ));
    v.push(1, chunks[1]).unwrap();
    assert!(matches!(
        v.finish(),
        Err(AttachmentError::ChunksMissing {
            received: 2,
            expected: 4
        })
    ));

    // Resume at chunk 2 (0 and 1 were verified before a restart).
    let mut v = ChunkVerifier::resume_at(m, 2);
    v.push(2, chunks[2]).unwrap();
    v.push(3, chunks[3]).unwrap();
    v.finish().unwrap();
    assert!(v.clone().push(4, b"x").is_err());
}

#[test]
fn download_resumes_from_every_chunk() {
    let (data, blob, info) = blob_of(3 * C + 777);
    let chunks: Vec<&[u8]> = blob.chunks(C).collect();
    for stop in 0..=chunks.len() {
        let mut out = Vec::new();
        let mut d = ChunkedDecryptor::new(&info.key, blob.len() as u64).unwrap();
        for (i, c) in chunks[..stop].iter().enumerate() {
            d.push(i as u64, c, &mut out).unwrap();
        }
        let cp = d.checkpoint();
        assert_eq!(cp.next_index(), stop as u64);
        assert_eq!(cp.plaintext_len(), out.len() as u64);
        let saved = cp.as_bytes().to_vec();
        drop(d); // the process is killed here

        let mut d = ChunkedDecryptor::resume(&info.key, &saved).unwrap();
        out.truncate(cp.plaintext_len() as usize);
        for (i, c) in chunks.iter().enumerate().skip(d.next_index() as usize) {
            d.push(i as u64, c, &mut out).unwrap();
        }
        assert_eq!(d.finish(&mut out).unwrap(), data.len() as u64);
        assert_eq!(out, data, "resumed at chunk {stop}");
    }
}

#[test]
fn download_refuses_reordering_truncation_and_tampering() {
    let (_, blob, info) = blob_of(2 * C);
    let chunks: Vec<&[u8]> = blob.chunks(C).collect();
    assert_eq!(chunks.len(), 3);
    let size = blob.len() as u64;
    let start = || ChunkedDecryptor::new(&info.key, size).unwrap();
    let mut sink = Vec::new();

    // Reordered: index check, and bytes swapped under the right index fail the AEAD.
    let mut d = start();
    assert!(matches!(
        d.push(1, chunks[1], &mut sink),
        Err(AttachmentError::ChunkOutOfOrder { .. })
    ));
    let mut d = start();
    d.push(0, chunks[0], &mut sink).unwrap();
    let mut swapped = chunks[2].to_vec();
    swapped.resize(C, 0);
    assert!(d.push(1, &swapped, &mut sink).is_err());

    // Truncated: missing chunks, or a short chunk.
    let mut d = start();
    d.push(0, chunks[0], &mut sink).unwrap();
    d.push(1, chunks[1], &mut sink).unwrap();
    assert!(matches!(
        d.finish(&mut sink),
        Err(AttachmentError::ChunksMissing {
            received: 2,
            expected: 3
        })
    ));
    let mut d = start();
    assert!(matches!(
        d.push(0, &chunks[0][..C - 1], &mut sink),
        Err(AttachmentError::ChunkLength { .. })
    ));

    // A flipped bit in the middle chunk.
    let mut d = start();
    d.push(0, chunks[0], &mut sink).unwrap();
    let mut bad = chunks[1].to_vec();
    bad[500_000] ^= 1;
    assert!(matches!(
        d.push(1, &bad, &mut sink),
        Err(AttachmentError::ChunkAuthentication { .. })
    ));

    // A blob longer than the stream: the extra bytes either land after the final tag
    // (trailing data) or inside the last secretstream chunk (its MAC fails at the end).
    let mut d = ChunkedDecryptor::new(&info.key, size + 10).unwrap();
    d.push(0, chunks[0], &mut sink).unwrap();
    d.push(1, chunks[1], &mut sink).unwrap();
    let mut longer = chunks[2].to_vec();
    longer.extend_from_slice(&[0; 10]);
    let e = d
        .push(2, &longer, &mut sink)
        .and_then(|()| d.finish(&mut sink).map(|_| ()))
        .unwrap_err();
    assert!(
        matches!(
            e,
            AttachmentError::TrailingData | AttachmentError::ChunkAuthentication { .. }
        ),
        "{e}"
    );

    // Corrupt checkpoints are refused, never trusted.
    let cp = start().checkpoint().as_bytes().to_vec();
    for cut in 0..cp.len() {
        assert!(
            ChunkedDecryptor::resume(&info.key, &cp[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut v2 = cp.clone();
    v2[0] = 2;
    assert!(matches!(
        ChunkedDecryptor::resume(&info.key, &v2),
        Err(AttachmentError::Checkpoint(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any blob split at chunk boundaries: hashing and checking agree; chunk lengths add up.
    #[test]
    fn manifests_cover_the_blob(len in 0usize..(3 * C + 3)) {
        let blob: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
        let m = Manifest::of(&blob);
        prop_assert_eq!(m.chunks.len() as u64, chunk_count(len as u64));
        let total: u64 = (0..chunk_count(len as u64)).map(|i| chunk_len(len as u64, i)).sum();
        prop_assert_eq!(total, len as u64);
        let mut v = ChunkVerifier::new(m);
        for (i, c) in blob.chunks(C).enumerate() {
            v.push(i as u64, c).unwrap();
        }
        prop_assert!(v.finish().is_ok());
    }
}
