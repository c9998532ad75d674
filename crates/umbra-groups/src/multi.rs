//! Per-recipient encryption with one shared nonce (libsession's `multi_encrypt`): the member
//! copies of a keys message, the supplemental copies and the kicked notice
//! (`groups-config-attachments.md` §1.3, §1.9; vector `multi_encrypt_per_recipient`).
//!
//! ```text
//! copy key = BLAKE2b-32( X25519(a, B) ‖ A ‖ B , key = domain )     sender (a, A), recipient B
//! copy     = XChaCha20-Poly1305(message, nonce, copy key), no AAD
//! ```
//!
//! The recipient computes the same key from `X25519(b, A)`. Every copy has its own key, so the
//! one nonce is never reused under a key.

use umbra_crypto::hash::blake2b_32_keyed;
use umbra_crypto::hop::{EncType, aead_open, aead_seal};
use umbra_crypto::{Identity, X25519PublicKey};
use zeroize::Zeroizing;

use crate::GroupError;

/// Domain of the member copies of group keys (keys and supplemental messages).
pub const DOMAIN_MEMBER_KEY: &[u8] = b"SessionGroupKeyMemberKey";
/// Domain of the kicked notice of namespace −11.
pub const DOMAIN_KICKED: &[u8] = b"SessionGroupKickedMessage";

/// Bytes XChaCha20-Poly1305 adds.
pub const TAG_LEN: usize = 16;

/// The key of the copy from `sender` to `recipient`, computed by the sender. `None` when the
/// key agreement gives the all-zero secret (a low-order recipient key): libsession skips such
/// recipients silently.
pub fn sender_key(
    domain: &[u8],
    sender: &Identity,
    recipient: &X25519PublicKey,
) -> Option<Zeroizing<[u8; 32]>> {
    let shared = sender.x25519_dh(recipient).ok()?;
    Some(Zeroizing::new(blake2b_32_keyed(
        domain,
        &[
            &shared[..],
            sender.x25519_public().as_bytes(),
            recipient.as_bytes(),
        ],
    )))
}

/// The same key computed by the recipient from the sender's public key.
pub fn recipient_key(
    domain: &[u8],
    recipient: &Identity,
    sender: &X25519PublicKey,
) -> Result<Zeroizing<[u8; 32]>, GroupError> {
    let shared = recipient.x25519_dh(sender)?;
    Ok(Zeroizing::new(blake2b_32_keyed(
        domain,
        &[
            &shared[..],
            sender.as_bytes(),
            recipient.x25519_public().as_bytes(),
        ],
    )))
}

/// Encrypts one copy: `ciphertext ‖ tag`, 16 bytes longer than `message`.
pub fn seal(key: &[u8; 32], nonce: &[u8; 24], message: &[u8]) -> Result<Vec<u8>, GroupError> {
    Ok(aead_seal(EncType::XChaCha20, key, nonce, &[], message)?)
}

/// Decrypts one copy; fails on any other key, nonce or byte.
pub fn open(
    key: &[u8; 32],
    nonce: &[u8; 24],
    copy: &[u8],
) -> Result<Zeroizing<Vec<u8>>, GroupError> {
    Ok(aead_open(EncType::XChaCha20, key, nonce, &[], copy)?)
}

/// `encrypt_for_multiple_simple`: one copy per recipient (its own message each) under one
/// nonce, encoded `{"#": nonce, "e": [copy…]}`. Recipients with a low-order key are skipped.
pub fn encrypt_simple(
    domain: &[u8],
    sender: &Identity,
    recipients: &[(X25519PublicKey, &[u8])],
    nonce: &[u8; 24],
) -> Result<Vec<u8>, GroupError> {
    let mut copies = Vec::with_capacity(recipients.len());
    for (to, message) in recipients {
        if let Some(key) = sender_key(domain, sender, to) {
            copies.push(seal(&key, nonce, message)?);
        }
    }
    let mut out = Vec::with_capacity(40 + copies.iter().map(|c| c.len() + 8).sum::<usize>());
    out.extend_from_slice(b"d1:#");
    crate::bt::put_bytes(&mut out, nonce);
    out.extend_from_slice(b"1:el");
    for c in &copies {
        crate::bt::put_bytes(&mut out, c);
    }
    out.extend_from_slice(b"ee");
    Ok(out)
}

/// Largest `{"#", "e"}` message read (a kicked notice to every member of a large group).
pub const MAX_SIMPLE: usize = 76_800;

/// Opens the copy meant for `recipient` in an [`encrypt_simple`] message from `sender`:
/// `Ok(None)` when none of the copies is for it.
pub fn decrypt_simple(
    domain: &[u8],
    recipient: &Identity,
    sender: &X25519PublicKey,
    encoded: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>, GroupError> {
    if encoded.len() > MAX_SIMPLE {
        return Err(GroupError::TooLarge {
            what: "multi-recipient message",
            len: encoded.len(),
            limit: MAX_SIMPLE,
        });
    }
    let fields = crate::bt::dict(encoded).map_err(GroupError::Bencode)?;
    let bad = GroupError::KickedNotice;
    let nonce: [u8; 24] = crate::bt::bytes_of(&fields, b"#")
        .and_then(|n| n.try_into().ok())
        .ok_or(bad("nonce `#` missing or not 24 bytes"))?;
    let copies = crate::bt::list_of(&fields, b"e").ok_or(bad("copies `e` missing"))?;
    let key = recipient_key(domain, recipient, sender)?;
    for c in copies {
        let umbra_config::bt::Value::Bytes(c) = c else {
            return Err(bad("a copy is not a byte string"));
        };
        if let Ok(m) = open(&key, &nonce, c) {
            return Ok(Some(m));
        }
    }
    Ok(None)
}
