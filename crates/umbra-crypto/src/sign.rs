//! Ed25519 signature verification with libsodium's strictness.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::CryptoError;

/// Verifies an Ed25519 signature as libsodium's `crypto_sign_verify_detached` does: the
/// public key must be a valid point of large order, the signature's `S` must be canonical and
/// `R` must not be of small order.
pub fn verify(public: &[u8; 32], msg: &[u8], signature: &[u8; 64]) -> Result<(), CryptoError> {
    let vk = VerifyingKey::from_bytes(public).map_err(|_| CryptoError::BadEd25519Key)?;
    let sig = Signature::from_bytes(signature);
    vk.verify_strict(msg, &sig)
        .map_err(|_| CryptoError::BadSignature)
}

/// Like [`verify`] but takes slices, checking their lengths first.
pub fn verify_slices(public: &[u8], msg: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    let public: &[u8; 32] = public.try_into().map_err(|_| CryptoError::BadLength {
        what: "Ed25519 public key",
        expected: 32,
        got: public.len(),
    })?;
    let signature: &[u8; 64] = signature.try_into().map_err(|_| CryptoError::BadLength {
        what: "Ed25519 signature",
        expected: 64,
        got: signature.len(),
    })?;
    verify(public, msg, signature)
}
