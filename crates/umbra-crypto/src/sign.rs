//! Ed25519 signature verification with libsodium's strictness.

use ed25519_dalek::VerifyingKey;

use crate::{CryptoError, Ed25519PublicKey, Signature};

/// Verifies an Ed25519 signature as libsodium's `crypto_sign_verify_detached` does: the
/// public key must be the canonical encoding (`y < p`) of a curve point that is not of small
/// order, the signature's `S` must be canonical (`S < L`), `R` must not be of small order, and
/// the check is the cofactorless `[S]B = R + [k]A` compared on the encoding of `R`.
///
/// A public key that is not acceptable at all gives [`CryptoError::BadEd25519Key`]; anything
/// else that fails gives [`CryptoError::BadSignature`].
pub fn verify(
    public: &Ed25519PublicKey,
    msg: &[u8],
    signature: &Signature,
) -> Result<(), CryptoError> {
    let vk = VerifyingKey::from_bytes(public.as_bytes()).map_err(|_| CryptoError::BadEd25519Key)?;
    // ed25519-dalek reduces a non-canonical `y` (p <= y < 2^255) when decompressing; libsodium
    // refuses such keys (`ge25519_is_canonical`), and so do we. Small-order keys would also be
    // refused by `verify_strict`, but as a bad signature: report them as the bad key they are.
    if vk.to_edwards().compress().as_bytes() != public.as_bytes() || vk.is_weak() {
        return Err(CryptoError::BadEd25519Key);
    }
    let sig = ed25519_dalek::Signature::from_bytes(signature.as_bytes());
    vk.verify_strict(msg, &sig)
        .map_err(|_| CryptoError::BadSignature)
}

/// Like [`verify`] but takes slices, checking their lengths first.
pub fn verify_slices(public: &[u8], msg: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    let public = Ed25519PublicKey::from_slice(public)?;
    let signature = Signature::from_slice(signature)?;
    verify(&public, msg, &signature)
}
