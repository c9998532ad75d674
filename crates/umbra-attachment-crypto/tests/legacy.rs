//! Legacy AES-CBC+HMAC attachments and AES-GCM display pictures (decode only, §3.2): blobs
//! made here the way desktop's `attachmentsEncrypter.ts` makes them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aes::Aes256;
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut as _, KeyInit as _};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeEncrypt as _, KeyIvInit as _};
use hmac::{Hmac, Mac as _};
use proptest::prelude::*;
use sha2::{Digest as _, Sha256};
use umbra_attachment_crypto::AttachmentError;
use umbra_attachment_crypto::legacy::{
    decrypt, decrypt_profile_picture, legacy_blob_size, legacy_padded_size,
};

/// Desktop's encryption: zero-fill to the padded size, AES-256-CBC-PKCS7, HMAC over iv ‖ ct.
fn legacy_encrypt(key: &[u8; 64], iv: &[u8; 16], data: &[u8]) -> (Vec<u8>, [u8; 32]) {
    let mut padded = data.to_vec();
    padded.resize(legacy_padded_size(data.len() as u64) as usize, 0);
    let len = padded.len();
    padded.resize(len + 16, 0);
    let ct = cbc::Encryptor::<Aes256>::new_from_slices(&key[..32], iv)
        .unwrap()
        .encrypt_padded::<Pkcs7>(&mut padded, len)
        .unwrap()
        .to_vec();
    let mut blob = iv.to_vec();
    blob.extend_from_slice(&ct);
    let mut mac = <Hmac<Sha256>>::new_from_slice(&key[32..]).unwrap();
    mac.update(&blob);
    blob.extend_from_slice(&mac.finalize().into_bytes());
    let digest = Sha256::digest(&blob).into();
    (blob, digest)
}

fn key() -> [u8; 64] {
    core::array::from_fn(|i| i as u8 * 3)
}

#[test]
fn decrypts_and_truncates_to_the_pointer_size() {
    let data = b"a legacy attachment from an older desktop client";
    let (blob, digest) = legacy_encrypt(&key(), &[9; 16], data);
    assert_eq!(blob.len() as u64, legacy_blob_size(541));
    let out = decrypt(&key(), &blob, Some(&digest), Some(data.len() as u64)).unwrap();
    assert_eq!(&out[..], data);
    // Without a size the zero-filled padding stays.
    let out = decrypt(&key(), &blob, Some(&digest), None).unwrap();
    assert_eq!(out.len(), 541);
}

#[test]
fn refuses_what_desktop_refuses() {
    let data = vec![0x42u8; 2000];
    let (blob, digest) = legacy_encrypt(&key(), &[1; 16], &data);
    let size = Some(data.len() as u64);
    let err = |r: Result<_, AttachmentError>| r.map(|_| ()).unwrap_err();

    for i in [0, 20, blob.len() / 2, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[i] ^= 0x80;
        assert!(matches!(
            err(decrypt(&key(), &bad, Some(&digest), size)),
            AttachmentError::LegacyMac
        ));
    }
    let truncated = &blob[..blob.len() - 16];
    assert!(matches!(
        err(decrypt(&key(), truncated, Some(&digest), size)),
        AttachmentError::LegacyMac
    ));
    assert!(matches!(
        err(decrypt(&key(), &blob[..47], Some(&digest), size)),
        AttachmentError::LegacyMalformed { len: 47 }
    ));
    assert!(matches!(
        err(decrypt(
            &key(),
            &blob[..blob.len() - 1],
            Some(&digest),
            size
        )),
        AttachmentError::LegacyMalformed { .. }
    ));
    assert!(matches!(
        err(decrypt(&key(), &blob, None, size)),
        AttachmentError::DigestMissing
    ));
    let mut wrong = digest;
    wrong[31] ^= 1;
    assert!(matches!(
        err(decrypt(&key(), &blob, Some(&wrong), size)),
        AttachmentError::DigestMismatch
    ));
    assert!(matches!(
        err(decrypt(&key(), &blob, Some(&digest[..31]), size)),
        AttachmentError::DigestMismatch
    ));
    assert!(matches!(
        err(decrypt(&key()[..32], &blob, Some(&digest), size)),
        AttachmentError::LegacyKeyLength { got: 32 }
    ));
    let mut other = key();
    other[0] ^= 1; // right MAC key, wrong AES key: PKCS#7 fails (or, rarely, garbage)
    let wrong_aes = decrypt(&other, &blob, Some(&digest), size);
    assert!(wrong_aes.map(|p| p.to_vec() != data).unwrap_or(true));
    let short = err(decrypt(&key(), &blob, Some(&digest), Some(5000)));
    assert!(matches!(
        short,
        AttachmentError::LegacyShort { size: 5000, .. }
    ));
    umbra_report::assert_cause_once(&short);
}

#[test]
fn profile_pictures() {
    let pk = [5u8; 32];
    let iv = [6u8; 12];
    let picture = b"\x89PNG not really".to_vec();
    let mut buf = picture.clone();
    let tag = Aes256Gcm::new((&pk).into())
        .encrypt_inout_detached((&iv).into(), &[], buf.as_mut_slice().into())
        .unwrap();
    let mut blob = iv.to_vec();
    blob.extend_from_slice(&buf);
    blob.extend_from_slice(&tag);
    assert_eq!(
        &decrypt_profile_picture(&pk, &blob).unwrap()[..],
        &picture[..]
    );
    let mut bad = blob.clone();
    bad[13] ^= 1;
    assert!(matches!(
        decrypt_profile_picture(&pk, &bad),
        Err(AttachmentError::ProfilePicture)
    ));
    assert!(matches!(
        decrypt_profile_picture(&pk, &blob[..28]),
        Err(AttachmentError::ProfilePicture)
    ));
}

proptest! {
    #[test]
    fn round_trips_any_size(data in proptest::collection::vec(any::<u8>(), 0..3000), iv in any::<[u8; 16]>()) {
        let (blob, digest) = legacy_encrypt(&key(), &iv, &data);
        let padded = legacy_padded_size(data.len() as u64);
        prop_assert_eq!(blob.len() as u64, legacy_blob_size(padded));
        let out = decrypt(&key(), &blob, Some(&digest), Some(data.len() as u64)).unwrap();
        prop_assert_eq!(&out[..], &data[..]);
    }

    #[test]
    fn never_panics_on_garbage(blob in proptest::collection::vec(any::<u8>(), 0..200), digest in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = decrypt(&key(), &blob, Some(&digest), Some(10));
        let _ = decrypt_profile_picture(&[0; 32], &blob);
    }
}
