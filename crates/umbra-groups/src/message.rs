//! Group messages of namespace 11 (`identity-and-crypto.md` §2.1,
//! `groups-config-attachments.md` §1.7): encrypted with the current group key, signed by the
//! sender over `payload ‖ group Ed25519 key`.
//!
//! ```text
//! nonce(24) ‖ XChaCha20-Poly1305( d 0:i1e 1:a<sender Ed25519> 1:d|z<payload> 1:s<sig> e ‖ 0…,
//!                                  key = group key )       padded so the total is ×256
//! ```

use umbra_config::bt::Value;
use umbra_config::crypt::{zstd_compress, zstd_decompress};
use umbra_crypto::keys::ed25519_pk_to_x25519;
use umbra_crypto::{Ed25519PublicKey, Identity, Random, SessionId, Signature};

use crate::bt::{bytes_of, int_of, put_bytes, put_int};
use crate::multi::{self, TAG_LEN};
use crate::{GroupError, GroupKeys, GroupPublic};

/// Largest payload, before compression and after decompression.
pub const MAX_PAYLOAD: usize = 1_000_000;
/// Largest stored message read (the storage server's limit).
pub const MAX_STORED: usize = 76_800;
/// Encrypted messages are padded to a multiple of this.
pub const PADDING_BLOCK: usize = 256;

const NONCE_LEN: usize = 24;

/// A group message that decrypted and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMessage {
    /// The sender's Session ID (from its Ed25519 key).
    pub sender: SessionId,
    /// The sender's Ed25519 key, `a`.
    pub sender_ed25519: Ed25519PublicKey,
    /// The payload (a serialised `Envelope` for Session clients), decompressed.
    pub payload: Vec<u8>,
    /// Signed in the older payload-only form (§1.7), from a sender on an old libsession.
    pub legacy_signature: bool,
}

fn bad(why: &'static str) -> GroupError {
    GroupError::Message(why)
}

/// Encrypts `payload` from `sender` to the group under the key `keys` encrypts with; zstd
/// when `compress` and it makes the payload smaller.
pub fn encrypt_message(
    sender: &Identity,
    keys: &GroupKeys,
    payload: &[u8],
    compress: bool,
    rng: &mut dyn Random,
) -> Result<Vec<u8>, GroupError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce);
    encrypt_message_with_nonce(sender, keys, payload, compress, &nonce)
}

/// [`encrypt_message`] with the nonce given (tests; never reuse a nonce under one key).
pub fn encrypt_message_with_nonce(
    sender: &Identity,
    keys: &GroupKeys,
    payload: &[u8],
    compress: bool,
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, GroupError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(GroupError::TooLarge {
            what: "group message payload",
            len: payload.len(),
            limit: MAX_PAYLOAD,
        });
    }
    let key = keys
        .encryption_key()
        .ok_or(bad("no group key to encrypt with"))?;
    let compressed = compress
        .then(|| zstd_compress(payload))
        .flatten()
        .filter(|c| c.len() < payload.len());
    let (field, stored): (&[u8], &[u8]) = match &compressed {
        Some(c) => (b"z", c),
        None => (b"d", payload),
    };
    let sig = sender.sign(&[stored, keys.group().ed25519().as_bytes()].concat());

    let mut dict = Vec::with_capacity(stored.len() + 128);
    dict.push(b'd');
    put_bytes(&mut dict, b"");
    put_int(&mut dict, 1);
    put_bytes(&mut dict, b"a");
    put_bytes(&mut dict, sender.ed25519_public().as_bytes());
    // Keys in bt order: "", a, d, s, z.
    if field == b"d" {
        put_bytes(&mut dict, field);
        put_bytes(&mut dict, stored);
    }
    put_bytes(&mut dict, b"s");
    put_bytes(&mut dict, sig.as_bytes());
    if field == b"z" {
        put_bytes(&mut dict, field);
        put_bytes(&mut dict, stored);
    }
    dict.push(b'e');
    let total = (NONCE_LEN + dict.len() + TAG_LEN).next_multiple_of(PADDING_BLOCK);
    dict.resize(total - NONCE_LEN - TAG_LEN, 0);

    let mut out = nonce.to_vec();
    out.extend_from_slice(&multi::seal(key.key(), nonce, &dict)?);
    Ok(out)
}

/// Decrypts a message retrieved from namespace 11 with any key held, and verifies its
/// sender's signature. Bounded; refuses anything malformed.
pub fn decrypt_message(keys: &GroupKeys, stored: &[u8]) -> Result<GroupMessage, GroupError> {
    if stored.len() > MAX_STORED {
        return Err(GroupError::TooLarge {
            what: "group message",
            len: stored.len(),
            limit: MAX_STORED,
        });
    }
    if stored.len() < NONCE_LEN + TAG_LEN {
        return Err(bad("shorter than nonce and tag"));
    }
    let (nonce, ct) = stored.split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| bad("nonce"))?;
    let plain = keys
        .decryption_keys()
        .find_map(|k| multi::open(k.key(), nonce, ct).ok())
        .ok_or(bad("no group key held decrypts it"))?;
    let end = plain.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let fields = crate::bt::dict(&plain[..end]).map_err(GroupError::Bencode)?;
    if int_of(&fields, b"") != Some(1) {
        return Err(bad("version is not 1"));
    }
    let sender_ed25519 = bytes_of(&fields, b"a")
        .and_then(|a| Ed25519PublicKey::from_slice(a).ok())
        .ok_or(bad("sender key `a` missing or not 32 bytes"))?;
    let sender = SessionId::from_x25519(
        ed25519_pk_to_x25519(&sender_ed25519).map_err(|_| bad("sender key `a` is not valid"))?,
    );
    let sig = bytes_of(&fields, b"s")
        .and_then(|s| Signature::from_slice(s).ok())
        .ok_or(bad("signature `s` missing or not 64 bytes"))?;
    let (stored_payload, compressed) =
        match (fields.get(b"d".as_slice()), fields.get(b"z".as_slice())) {
            (Some(Value::Bytes(d)), None) => (d, false),
            (None, Some(Value::Bytes(z))) => (z, true),
            _ => return Err(bad("exactly one of `d` and `z` must hold the payload")),
        };
    if stored_payload.is_empty() {
        return Err(bad("empty payload"));
    }
    let group: &GroupPublic = keys.group();
    let signed = [stored_payload.as_slice(), group.ed25519().as_bytes()].concat();
    let legacy_signature = if umbra_crypto::sign::verify(&sender_ed25519, &signed, &sig).is_ok() {
        false
    } else if umbra_crypto::sign::verify(&sender_ed25519, stored_payload, &sig).is_ok() {
        true
    } else {
        return Err(bad("sender signature does not verify"));
    };
    let payload = if compressed {
        zstd_decompress(stored_payload, MAX_PAYLOAD)?
    } else {
        stored_payload.clone()
    };
    Ok(GroupMessage {
        sender,
        sender_ed25519,
        payload,
        legacy_signature,
    })
}
