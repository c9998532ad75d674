//! Legacy formats, decode only (`groups-config-attachments.md` §3.2,
//! `identity-and-crypto.md` §8).
//!
//! ```text
//! attachment:       iv(16) ‖ AES-256-CBC-PKCS7(aes_key, zero-padded plaintext) ‖ HMAC-SHA256(mac_key, iv ‖ ct)(32)
//!                   key = aes_key(32) ‖ mac_key(32); AttachmentPointer.digest = SHA-256(blob)
//! display picture:  iv(12) ‖ AES-256-GCM(profile_key, plaintext) ‖ tag(16)
//! ```
//!
//! Session clients capped legacy uploads at 10 MB, so blobs are decrypted in memory, bounded
//! by [`LEGACY_MAX_BLOB`]. Umbra never produces these formats.

use aes::Aes256;
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut as _, KeyInit as _};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt as _, KeyIvInit as _};
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::error::AttachmentError;

/// Largest legacy blob accepted: 16 MiB, above the 10 000 064 bytes of the largest blob a
/// Session client made (10 000 000 padded bytes) and below anything a phone cannot hold.
pub const LEGACY_MAX_BLOB: usize = 16 * 1024 * 1024;
/// Length of the legacy key: `aes_key(32) ‖ mac_key(32)`.
pub const LEGACY_KEY_LEN: usize = 64;
const IV_LEN: usize = 16;
const MAC_LEN: usize = 32;
const BLOCK: usize = 16;
/// Smallest display-picture blob: `iv(12) ‖ one byte ‖ tag(16)` (§3.2).
const PROFILE_MIN: usize = 12 + 1 + 16;

/// The zero-filled size legacy senders padded `size` bytes to (§3.2, desktop
/// `addAttachmentPadding`): `max(541, floor(1.05^ceil(ln n / ln 1.05)))`, replaced by
/// 10 000 000 when larger while `n ≤ 10 000 000`, in IEEE doubles as desktop computes it.
/// Receivers do not depend on it (they truncate to the pointer's size).
pub fn legacy_padded_size(size: u64) -> u64 {
    const CAP: u64 = 10_000_000;
    let n = size.max(1) as f64;
    let padded = 1.05f64.powf((n.ln() / 1.05f64.ln()).ceil()).floor() as u64;
    let padded = padded.max(541);
    if padded > CAP && size <= CAP {
        CAP
    } else {
        padded
    }
}

/// The legacy blob size for a padded plaintext size: `16 + 16·(floor(padded/16) + 1) + 32`.
pub fn legacy_blob_size(padded: u64) -> u64 {
    IV_LEN as u64 + BLOCK as u64 * (padded / BLOCK as u64 + 1) + MAC_LEN as u64
}

/// Decrypts a legacy attachment in the order desktop checks it (§3.2): length, HMAC (all 32
/// bytes, constant time), SHA-256 of the blob against the pointer's `digest` (required), then
/// AES-CBC; the result is truncated to the pointer's `size` when given.
pub fn decrypt(
    key: &[u8],
    blob: &[u8],
    digest: Option<&[u8]>,
    size: Option<u64>,
) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
    if key.len() != LEGACY_KEY_LEN {
        return Err(AttachmentError::LegacyKeyLength { got: key.len() });
    }
    if blob.len() > LEGACY_MAX_BLOB {
        return Err(AttachmentError::LegacyTooLarge {
            len: blob.len(),
            limit: LEGACY_MAX_BLOB,
        });
    }
    // At least one cipher block, and whole blocks (CBC with PKCS#7 always adds one).
    if blob.len() < IV_LEN + BLOCK + MAC_LEN
        || !(blob.len() - IV_LEN - MAC_LEN).is_multiple_of(BLOCK)
    {
        return Err(AttachmentError::LegacyMalformed { len: blob.len() });
    }
    let (aes_key, mac_key) = key.split_at(32);
    let (signed, mac) = blob.split_at(blob.len() - MAC_LEN);
    let mut hmac = <Hmac<Sha256>>::new_from_slice(mac_key)
        .map_err(|_| AttachmentError::LegacyKeyLength { got: key.len() })?;
    hmac.update(signed);
    hmac.verify_slice(mac)
        .map_err(|_| AttachmentError::LegacyMac)?;
    let Some(digest) = digest else {
        return Err(AttachmentError::DigestMissing);
    };
    let actual = Sha256::digest(blob);
    if !bool::from(actual.as_slice().ct_eq(digest)) {
        return Err(AttachmentError::DigestMismatch);
    }
    let (iv, ct) = signed.split_at(IV_LEN);
    let mut buf = Zeroizing::new(ct.to_vec());
    let cipher = cbc::Decryptor::<Aes256>::new_from_slices(aes_key, iv)
        .map_err(|_| AttachmentError::LegacyKeyLength { got: key.len() })?;
    let len = cipher
        .decrypt_padded::<Pkcs7>(&mut buf)
        .map_err(|_| AttachmentError::LegacyPadding)?
        .len();
    buf.truncate(len);
    if let Some(size) = size {
        if (buf.len() as u64) < size {
            return Err(AttachmentError::LegacyShort {
                got: buf.len(),
                size,
            });
        }
        buf.truncate(size as usize);
    }
    Ok(buf)
}

/// Decrypts a legacy display picture: AES-256-GCM with the 32-byte profile key,
/// `iv(12) ‖ ciphertext ‖ tag(16)`, at least 29 bytes (§3.2).
pub fn decrypt_profile_picture(
    key: &[u8; 32],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
    if blob.len() < PROFILE_MIN || blob.len() > LEGACY_MAX_BLOB {
        return Err(AttachmentError::ProfilePicture);
    }
    let (iv, rest) = blob.split_at(12);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let iv: &[u8; 12] = iv.try_into().map_err(|_| AttachmentError::ProfilePicture)?;
    let tag: &[u8; 16] = tag
        .try_into()
        .map_err(|_| AttachmentError::ProfilePicture)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    Aes256Gcm::new(key.into())
        .decrypt_inout_detached(iv.into(), &[], buf.as_mut_slice().into(), tag.into())
        .map_err(|_| AttachmentError::ProfilePicture)?;
    Ok(buf)
}
