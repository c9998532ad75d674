//! Session protocol v1: one-to-one message encryption.
//!
//! ```text
//! M      = padded Content bytes
//! A      = sender Ed25519 public key                       (32)
//! Y      = recipient X25519 public key                     (32)
//! SIG    = Ed25519_sign(sender, M ‖ A ‖ Y)                 (64)
//! output = crypto_box_seal(M ‖ A ‖ SIG, Y)
//!        = E(32) ‖ MAC(16) ‖ XSalsa20(M ‖ A ‖ SIG)         nonce = BLAKE2b-24(E ‖ Y)
//! ```
//!
//! The deterministic variant derives the ephemeral key from
//! `BLAKE2b-32(seed ‖ Y ‖ M, key = "SessionBoxEphemeralHashKey")`, so equal input gives equal
//! output; the output is an ordinary sealed box and decrypts the same way.

use crypto_box::aead::AeadInPlace as _;
use crypto_box::{Nonce, PublicKey as BoxPublic, SalsaBox, SecretKey as BoxSecret, Tag};
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::hash::{blake2b_24, blake2b_32_keyed};
use crate::keys::{X25519KeyPair, ed25519_pk_to_x25519};
use crate::{
    CryptoError, Ed25519PublicKey, Identity, Random, SessionId, Signature, X25519PublicKey,
};

/// Bytes a sealed box adds: ephemeral public key (32) and MAC (16).
pub const SEAL_OVERHEAD: usize = 48;
/// Bytes the signed inner layer adds: sender Ed25519 key (32) and signature (64).
pub const SIGNED_OVERHEAD: usize = 96;
/// Total bytes protocol v1 adds to the (padded) plaintext.
pub const OVERHEAD: usize = SEAL_OVERHEAD + SIGNED_OVERHEAD;
/// Content padding block size.
pub const PADDING_BLOCK: usize = 160;

const EPHEMERAL_HASH_KEY: &[u8] = b"SessionBoxEphemeralHashKey";

/// A decrypted one-to-one message.
#[derive(Clone, PartialEq, Eq)]
pub struct Opened {
    /// The plaintext (still padded, see [`unpad`]).
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The sender's Ed25519 public key, as signed.
    pub sender_ed25519: Ed25519PublicKey,
    /// The sender's Session ID, derived from the Ed25519 key.
    pub sender: SessionId,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("len", &self.plaintext.len())
            .field("sender", &crate::Redacted::new(self.sender))
            .finish()
    }
}

/// Encrypts `message` from `sender` to the recipient's Session ID with a fresh random
/// ephemeral key (libsodium `crypto_box_seal`).
pub fn encrypt(
    sender: &Identity,
    recipient: &SessionId,
    message: &[u8],
    rng: &mut dyn Random,
) -> Result<Vec<u8>, CryptoError> {
    let eph = X25519KeyPair::generate(rng);
    seal_signed(sender, &recipient.x25519(), message, &eph)
}

/// The deterministic variant: identical input gives identical output.
pub fn encrypt_deterministic(
    sender: &Identity,
    recipient: &SessionId,
    message: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let y = recipient.x25519();
    let eph_seed = Zeroizing::new(blake2b_32_keyed(
        EPHEMERAL_HASH_KEY,
        &[sender.seed(), y.as_bytes(), message],
    ));
    // libsodium crypto_box_seed_keypair: secret = SHA-512(seed)[..32].
    let digest: Zeroizing<[u8; 64]> = Zeroizing::new(Sha512::digest(&eph_seed[..]).into());
    let mut sk = Zeroizing::new([0u8; 32]);
    sk.copy_from_slice(&digest[..32]);
    let eph = X25519KeyPair::from_secret(*sk);
    seal_signed(sender, &y, message, &eph)
}

fn seal_signed(
    sender: &Identity,
    recipient_x: &X25519PublicKey,
    message: &[u8],
    eph: &X25519KeyPair,
) -> Result<Vec<u8>, CryptoError> {
    let a = sender.ed25519_public();
    let mut to_sign = Zeroizing::new(Vec::with_capacity(message.len() + 64));
    to_sign.extend_from_slice(message);
    to_sign.extend_from_slice(a.as_bytes());
    to_sign.extend_from_slice(recipient_x.as_bytes());
    let sig = sender.sign(&to_sign);
    let mut inner = Zeroizing::new(Vec::with_capacity(message.len() + SIGNED_OVERHEAD));
    inner.extend_from_slice(message);
    inner.extend_from_slice(a.as_bytes());
    inner.extend_from_slice(sig.as_bytes());
    seal_with(eph, recipient_x, &inner)
}

/// `crypto_box_seal` with a given ephemeral key pair: `E ‖ MAC ‖ ciphertext`.
fn seal_with(
    eph: &X25519KeyPair,
    recipient_x: &X25519PublicKey,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    // Refuse a low-order recipient key, as libsodium's crypto_box_beforenm does.
    eph.dh(recipient_x)?;
    let e_pub = eph.public();
    let nonce_bytes = blake2b_24(&[e_pub.as_bytes(), recipient_x.as_bytes()]);
    let nonce = Nonce::from_slice(&nonce_bytes);
    let cbox = SalsaBox::new(
        &BoxPublic::from_bytes(recipient_x.to_bytes()),
        &BoxSecret::from_bytes(*eph.secret()),
    );
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    out.extend_from_slice(e_pub.as_bytes());
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(plaintext);
    let tag = cbox
        .encrypt_in_place_detached(nonce, b"", &mut out[SEAL_OVERHEAD..])
        .map_err(|_| CryptoError::Encrypt)?;
    out[32..SEAL_OVERHEAD].copy_from_slice(&tag);
    Ok(out)
}

/// Opens a sealed box addressed to `recipient` (libsodium `crypto_box_seal_open`).
pub fn open_sealed(
    recipient: &Identity,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if ciphertext.len() < SEAL_OVERHEAD {
        return Err(CryptoError::Decrypt("sealed box shorter than 48 bytes"));
    }
    let (e_pub, rest) = ciphertext.split_at(32);
    let (mac, body) = rest.split_at(16);
    let e = X25519PublicKey::from_slice(e_pub)?;
    // Refuse a low-order ephemeral key, as libsodium does.
    recipient.x25519_dh(&e)?;
    let y = recipient.x25519_public();
    let nonce_bytes = blake2b_24(&[e.as_bytes(), y.as_bytes()]);
    let cbox = SalsaBox::new(
        &BoxPublic::from_bytes(e.to_bytes()),
        &BoxSecret::from_bytes(*recipient.x25519_secret()),
    );
    let mut buf = Zeroizing::new(body.to_vec());
    cbox.decrypt_in_place_detached(
        Nonce::from_slice(&nonce_bytes),
        b"",
        &mut buf,
        Tag::from_slice(mac),
    )
    .map_err(|_| CryptoError::Decrypt("sealed box authentication failed"))?;
    Ok(buf)
}

/// Decrypts a protocol v1 message addressed to `recipient` and verifies the sender's signature.
pub fn decrypt(recipient: &Identity, ciphertext: &[u8]) -> Result<Opened, CryptoError> {
    if ciphertext.len() < OVERHEAD {
        return Err(CryptoError::Decrypt("message shorter than 144 bytes"));
    }
    let inner = open_sealed(recipient, ciphertext)?;
    let n = inner.len();
    let m = &inner[..n - SIGNED_OVERHEAD];
    let a = Ed25519PublicKey::from_slice(&inner[n - SIGNED_OVERHEAD..n - 64])?;
    let sig = Signature::from_slice(&inner[n - 64..])?;
    let y = recipient.x25519_public();
    let mut signed = Zeroizing::new(Vec::with_capacity(m.len() + 64));
    signed.extend_from_slice(m);
    signed.extend_from_slice(a.as_bytes());
    signed.extend_from_slice(y.as_bytes());
    crate::sign::verify(&a, &signed, &sig)?;
    let sender = SessionId::from_x25519(ed25519_pk_to_x25519(&a)?);
    Ok(Opened {
        plaintext: Zeroizing::new(m.to_vec()),
        sender_ed25519: a,
        sender,
    })
}

/// Pads serialized `Content` as Session does: `0x80`, then zeros to a multiple of 160 bytes
/// (a whole extra block when `len + 1` is already a multiple, as the reference does).
pub fn pad(content: &[u8]) -> Vec<u8> {
    let mut n = content.len() + 1;
    n += PADDING_BLOCK - (n % PADDING_BLOCK);
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(content);
    out.push(0x80);
    out.resize(n, 0);
    out
}

/// Removes Session padding: trailing zeros and one `0x80`. Data that is not padded (a non-zero
/// byte other than `0x80` met first) is returned unchanged, as receivers do.
pub fn unpad(padded: &[u8]) -> &[u8] {
    let mut end = padded.len();
    while end > 0 && padded[end - 1] == 0 {
        end -= 1;
    }
    if end > 0 && padded[end - 1] == 0x80 {
        &padded[..end - 1]
    } else {
        padded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_follows_the_reference_rule() {
        assert_eq!(pad(&[1u8; 5]).len(), 160);
        assert_eq!(pad(&[1u8; 158]).len(), 160);
        assert_eq!(pad(&[1u8; 159]).len(), 320);
        assert_eq!(pad(&[1u8; 160]).len(), 320);
        for len in [0usize, 1, 100, 159, 160, 400] {
            let m = vec![7u8; len];
            assert_eq!(unpad(&pad(&m)), &m[..]);
        }
        assert_eq!(unpad(b"abc"), b"abc");
    }
}
