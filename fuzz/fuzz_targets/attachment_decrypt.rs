//! The attachment decryptors (`umbra-attachment-crypto`): the deterministic stream format
//! whole, in pieces and as transfer chunks; blobs sealed from raw secretstream messages (so
//! the checks behind the MACs are reached); legacy AES-CBC+HMAC and display pictures; and
//! saved download checkpoints.
//!
//! The first input byte picks the mode:
//! - `0..=63`: the rest is a blob under the key of the cross-client vector: `decrypt_to_vec`,
//!   the streaming `Decryptor` fed in pieces and the `ChunkedDecryptor` must agree;
//! - `64..=95`: the rest is a plaintext: encrypted, it decrypts to itself;
//! - `96..=127`: the rest is a list of `tag(1) ‖ len(u16 le) ‖ bytes` secretstream messages,
//!   sealed under valid MACs and decrypted (padding, tags, stream end);
//! - `128..=191`: the rest is a legacy attachment or display picture;
//! - `192..=255`: the rest is a download checkpoint: if it resumes, it saves to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_attachment_crypto::chunked::ChunkedDecryptor;
use umbra_attachment_crypto::fuzzing::seal_messages;
use umbra_attachment_crypto::{
    AttachmentKey, Decryptor, Domain, SizeLimit, decrypt_to_vec, encrypt_to_vec, legacy,
};

/// `attachment_stream_cross_client`, attachment domain (`shared/vectors`).
const KEY: [u8; 32] = [
    0x22, 0x27, 0xf0, 0x27, 0x16, 0x70, 0xf5, 0xa6, 0x87, 0x3d, 0x65, 0x50, 0x1c, 0x3e, 0x33, 0x62,
    0xb3, 0x4a, 0xab, 0x5d, 0xa0, 0xae, 0xc3, 0xb9, 0x86, 0xac, 0xcb, 0x7a, 0xa5, 0xa1, 0x64, 0x3a,
];

/// Decrypts `blob` whole, in pieces of `step` bytes and as one transfer; all three agree.
fn decrypt_three_ways(key: &AttachmentKey, blob: &[u8], step: usize) -> Option<Vec<u8>> {
    let whole = decrypt_to_vec(key, blob).ok();
    let mut dec = Decryptor::new(key);
    let mut out = Vec::new();
    let pieces = blob
        .chunks(step.max(1))
        .try_for_each(|p| dec.update(p, &mut out))
        .and_then(|()| dec.finish(&mut out));
    assert_eq!(pieces.ok().map(|_| out), whole, "pieces differ from whole");
    if let Ok(mut chunked) = ChunkedDecryptor::new(key, blob.len() as u64) {
        let mut out = Vec::new();
        let r = blob
            .chunks(1 << 20)
            .enumerate()
            .try_for_each(|(i, c)| chunked.push(i as u64, c, &mut out));
        let r = r.and_then(|()| chunked.finish(&mut out));
        assert_eq!(r.ok().map(|_| out), whole, "chunks differ from whole");
    }
    whole
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = AttachmentKey::from_bytes(KEY);
    match mode {
        0..=63 => {
            decrypt_three_ways(&key, rest, 1 + usize::from(mode) * 523);
        }
        64..=95 => {
            let (blob, info) =
                encrypt_to_vec(&[mode; 32], Domain::Attachment, SizeLimit::Regular, rest)
                    .expect("a small plaintext encrypts");
            assert_eq!(blob.len() as u64, info.encrypted_size);
            let out = decrypt_three_ways(&info.key, &blob, usize::from(mode));
            assert_eq!(out.as_deref(), Some(rest), "round trip");
        }
        96..=127 => {
            let mut messages = Vec::new();
            let mut r = rest;
            while let [tag, a, b, tail @ ..] = r {
                let len = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
                let (m, tail) = tail.split_at(len);
                messages.push((m, *tag));
                r = tail;
            }
            let header = [mode; 24];
            let blob = seal_messages(&key, &header, &messages);
            if let Some(out) = decrypt_three_ways(&key, &blob, 4096) {
                let total: usize = messages.iter().map(|(m, _)| m.len()).sum();
                assert!(out.len() < total.max(1), "data is what follows the padding");
            }
        }
        128..=191 => {
            let mut legacy_key = [0u8; 64];
            legacy_key[0] = mode;
            let digest = rest.get(..32);
            let size = Some(u64::from(mode) * 7);
            let _ = legacy::decrypt(&legacy_key, rest, digest, size);
            let _ = legacy::decrypt(&legacy_key, rest, None, None);
            let _ = legacy::decrypt_profile_picture(&KEY, rest);
        }
        _ => {
            if let Ok(mut dec) = ChunkedDecryptor::resume(&key, rest) {
                assert_eq!(
                    dec.checkpoint().as_bytes(),
                    rest,
                    "a checkpoint re-saves to itself"
                );
                let next = dec.next_index();
                let _ = dec.push(next, &rest[..rest.len().min(64)], &mut Vec::new());
            }
        }
    }
});
