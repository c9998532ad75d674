//! The only module with `unsafe`: thin, length-checked calls into libsodium.
//!
//! Each wrapper allocates its outputs at the size libsodium documents, passes only pointers
//! to live Rust buffers of the stated lengths, and maps libsodium's `-1` to `None`/`false`.

#![allow(unsafe_code)]

use std::ptr;
use std::sync::Once;

use libsodium_sys as sys;

/// Bytes `crypto_box_seal` adds: ephemeral public key (32) and MAC (16).
pub const SEAL_OVERHEAD: usize = 48;
/// Bytes `crypto_box_easy` and the AEADs add: the 16-byte tag.
pub const MAC_LEN: usize = 16;

static INIT: Once = Once::new();

/// Initialises libsodium once (chooses its CPU-specific implementations). Every wrapper calls
/// it first, so tests need not.
pub fn init() {
    INIT.call_once(|| {
        // SAFETY: sodium_init takes no arguments and may be called from any thread; `Once`
        // makes sure it runs once.
        let rc = unsafe { sys::sodium_init() };
        // A test helper: if libsodium cannot start there is nothing to compare against.
        #[allow(clippy::panic)]
        if rc < 0 {
            panic!("sodium_init failed ({rc})");
        }
    });
}

/// `crypto_box_seal(msg, recipient_pk)`: `E ‖ MAC ‖ ciphertext`, `msg.len() + 48` bytes.
/// `None` if libsodium refuses (e.g. a low-order recipient key).
pub fn box_seal(msg: &[u8], recipient_pk: &[u8; 32]) -> Option<Vec<u8>> {
    init();
    let mut out = vec![0u8; msg.len() + SEAL_OVERHEAD];
    // SAFETY: `out` holds msg.len() + crypto_box_SEALBYTES bytes, `msg` is readable for
    // msg.len() bytes and `recipient_pk` for crypto_box_PUBLICKEYBYTES (32).
    let rc = unsafe {
        sys::crypto_box_seal(
            out.as_mut_ptr(),
            msg.as_ptr(),
            msg.len() as u64,
            recipient_pk.as_ptr(),
        )
    };
    (rc == 0).then_some(out)
}

/// `crypto_box_seal_open(ct, pk, sk)`: the plaintext, or `None` if the box does not open.
pub fn box_seal_open(ct: &[u8], pk: &[u8; 32], sk: &[u8; 32]) -> Option<Vec<u8>> {
    init();
    let len = ct.len().checked_sub(SEAL_OVERHEAD)?;
    let mut out = vec![0u8; len];
    // SAFETY: `out` holds ct.len() - crypto_box_SEALBYTES bytes, `ct` is readable for
    // ct.len() bytes, `pk` and `sk` for 32 bytes each.
    let rc = unsafe {
        sys::crypto_box_seal_open(
            out.as_mut_ptr(),
            ct.as_ptr(),
            ct.len() as u64,
            pk.as_ptr(),
            sk.as_ptr(),
        )
    };
    (rc == 0).then_some(out)
}

/// `crypto_box_seed_keypair(seed)`: `(public, secret)`.
pub fn box_seed_keypair(seed: &[u8; 32]) -> Option<([u8; 32], [u8; 32])> {
    init();
    let mut pk = [0u8; 32];
    let mut sk = [0u8; 32];
    // SAFETY: `pk` and `sk` are 32-byte writable buffers, `seed` is 32 readable bytes
    // (crypto_box_PUBLICKEYBYTES, _SECRETKEYBYTES, _SEEDBYTES).
    let rc =
        unsafe { sys::crypto_box_seed_keypair(pk.as_mut_ptr(), sk.as_mut_ptr(), seed.as_ptr()) };
    (rc == 0).then_some((pk, sk))
}

/// `crypto_box_easy(msg, nonce, pk, sk)`: `MAC ‖ ciphertext`, or `None` if libsodium refuses
/// (a low-order `pk`).
pub fn box_easy(msg: &[u8], nonce: &[u8; 24], pk: &[u8; 32], sk: &[u8; 32]) -> Option<Vec<u8>> {
    init();
    let mut out = vec![0u8; msg.len() + MAC_LEN];
    // SAFETY: `out` holds msg.len() + crypto_box_MACBYTES bytes; `msg` is readable for
    // msg.len() bytes, `nonce` for 24, `pk` and `sk` for 32 each.
    let rc = unsafe {
        sys::crypto_box_easy(
            out.as_mut_ptr(),
            msg.as_ptr(),
            msg.len() as u64,
            nonce.as_ptr(),
            pk.as_ptr(),
            sk.as_ptr(),
        )
    };
    (rc == 0).then_some(out)
}

/// `crypto_sign_seed_keypair(seed)`: `(public, secret64 = seed ‖ public)`.
pub fn sign_seed_keypair(seed: &[u8; 32]) -> Option<([u8; 32], [u8; 64])> {
    init();
    let mut pk = [0u8; 32];
    let mut sk = [0u8; 64];
    // SAFETY: `pk` is 32 and `sk` 64 writable bytes (crypto_sign_PUBLICKEYBYTES,
    // _SECRETKEYBYTES); `seed` is 32 readable bytes.
    let rc =
        unsafe { sys::crypto_sign_seed_keypair(pk.as_mut_ptr(), sk.as_mut_ptr(), seed.as_ptr()) };
    (rc == 0).then_some((pk, sk))
}

/// `crypto_sign_detached(msg, sk64)`: the 64-byte signature.
pub fn sign_detached(msg: &[u8], sk: &[u8; 64]) -> Option<[u8; 64]> {
    init();
    let mut sig = [0u8; 64];
    let mut sig_len = 0u64;
    // SAFETY: `sig` is 64 writable bytes (crypto_sign_BYTES), `sig_len` a writable u64, `msg`
    // readable for msg.len() bytes and `sk` for 64.
    let rc = unsafe {
        sys::crypto_sign_detached(
            sig.as_mut_ptr(),
            &mut sig_len,
            msg.as_ptr(),
            msg.len() as u64,
            sk.as_ptr(),
        )
    };
    (rc == 0 && sig_len == 64).then_some(sig)
}

/// `crypto_sign_verify_detached(sig, msg, pk) == 0`.
pub fn sign_verify_detached(sig: &[u8; 64], msg: &[u8], pk: &[u8; 32]) -> bool {
    init();
    // SAFETY: `sig` is 64 readable bytes, `msg` msg.len() bytes, `pk` 32 bytes.
    let rc = unsafe {
        sys::crypto_sign_verify_detached(sig.as_ptr(), msg.as_ptr(), msg.len() as u64, pk.as_ptr())
    };
    rc == 0
}

/// `crypto_sign_ed25519_pk_to_curve25519(pk)`, `None` where libsodium refuses the point.
pub fn ed25519_pk_to_curve25519(ed_pk: &[u8; 32]) -> Option<[u8; 32]> {
    init();
    let mut out = [0u8; 32];
    // SAFETY: `out` is 32 writable bytes, `ed_pk` 32 readable bytes.
    let rc = unsafe { sys::crypto_sign_ed25519_pk_to_curve25519(out.as_mut_ptr(), ed_pk.as_ptr()) };
    (rc == 0).then_some(out)
}

/// `crypto_sign_ed25519_sk_to_curve25519(sk64)`: the clamped X25519 secret.
pub fn ed25519_sk_to_curve25519(ed_sk: &[u8; 64]) -> Option<[u8; 32]> {
    init();
    let mut out = [0u8; 32];
    // SAFETY: `out` is 32 writable bytes, `ed_sk` 64 readable bytes.
    let rc = unsafe { sys::crypto_sign_ed25519_sk_to_curve25519(out.as_mut_ptr(), ed_sk.as_ptr()) };
    (rc == 0).then_some(out)
}

/// `crypto_scalarmult(n, p)` (X25519), `None` where libsodium refuses (all-zero result).
pub fn scalarmult(n: &[u8; 32], p: &[u8; 32]) -> Option<[u8; 32]> {
    init();
    let mut q = [0u8; 32];
    // SAFETY: `q` is 32 writable bytes, `n` and `p` 32 readable bytes each.
    let rc = unsafe { sys::crypto_scalarmult(q.as_mut_ptr(), n.as_ptr(), p.as_ptr()) };
    (rc == 0).then_some(q)
}

/// `crypto_scalarmult_base(n)`: the X25519 public key of `n`.
pub fn scalarmult_base(n: &[u8; 32]) -> Option<[u8; 32]> {
    init();
    let mut q = [0u8; 32];
    // SAFETY: `q` is 32 writable bytes, `n` 32 readable bytes.
    let rc = unsafe { sys::crypto_scalarmult_base(q.as_mut_ptr(), n.as_ptr()) };
    (rc == 0).then_some(q)
}

/// `crypto_generichash(out_len, msg, key)` (BLAKE2b; an empty key means unkeyed).
/// `out_len` must be 16..=64 and `key` at most 64 bytes, else `None`.
pub fn generichash(out_len: usize, key: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
    init();
    if !(16..=64).contains(&out_len) || key.len() > 64 {
        return None;
    }
    let mut out = vec![0u8; out_len];
    let key_ptr = if key.is_empty() {
        ptr::null()
    } else {
        key.as_ptr()
    };
    // SAFETY: `out` holds out_len writable bytes (checked in range above), `msg` is readable
    // for msg.len() bytes, `key_ptr` is null (unkeyed) or readable for key.len() <= 64 bytes.
    let rc = unsafe {
        sys::crypto_generichash(
            out.as_mut_ptr(),
            out_len,
            msg.as_ptr(),
            msg.len() as u64,
            key_ptr,
            key.len(),
        )
    };
    (rc == 0).then_some(out)
}

/// `crypto_aead_xchacha20poly1305_ietf_encrypt`: `ciphertext ‖ tag`.
pub fn xchacha20poly1305_encrypt(
    msg: &[u8],
    aad: &[u8],
    nonce: &[u8; 24],
    key: &[u8; 32],
) -> Option<Vec<u8>> {
    init();
    let mut out = vec![0u8; msg.len() + MAC_LEN];
    let mut out_len = 0u64;
    // SAFETY: `out` holds msg.len() + crypto_aead_xchacha20poly1305_ietf_ABYTES bytes,
    // `out_len` is a writable u64, `msg`/`aad` are readable for their lengths, nsec is null as
    // documented, `nonce` is 24 and `key` 32 readable bytes.
    let rc = unsafe {
        sys::crypto_aead_xchacha20poly1305_ietf_encrypt(
            out.as_mut_ptr(),
            &mut out_len,
            msg.as_ptr(),
            msg.len() as u64,
            aad.as_ptr(),
            aad.len() as u64,
            ptr::null(),
            nonce.as_ptr(),
            key.as_ptr(),
        )
    };
    (rc == 0 && out_len == out.len() as u64).then_some(out)
}

/// `crypto_aead_xchacha20poly1305_ietf_decrypt`: the plaintext, or `None` if it does not open.
pub fn xchacha20poly1305_decrypt(
    ct: &[u8],
    aad: &[u8],
    nonce: &[u8; 24],
    key: &[u8; 32],
) -> Option<Vec<u8>> {
    init();
    let len = ct.len().checked_sub(MAC_LEN)?;
    let mut out = vec![0u8; len];
    let mut out_len = 0u64;
    // SAFETY: `out` holds ct.len() - ABYTES bytes (the most libsodium writes), `out_len` is a
    // writable u64, nsec is null as documented, `ct`/`aad` are readable for their lengths,
    // `nonce` is 24 and `key` 32 readable bytes.
    let rc = unsafe {
        sys::crypto_aead_xchacha20poly1305_ietf_decrypt(
            out.as_mut_ptr(),
            &mut out_len,
            ptr::null_mut(),
            ct.as_ptr(),
            ct.len() as u64,
            aad.as_ptr(),
            aad.len() as u64,
            nonce.as_ptr(),
            key.as_ptr(),
        )
    };
    (rc == 0 && out_len == len as u64).then_some(out)
}

/// `randombytes_buf_deterministic(len, seed)`: `len` bytes of libsodium's deterministic
/// generator (the junk entries of a groups v2 keys message).
pub fn randombytes_buf_deterministic(len: usize, seed: &[u8; 32]) -> Vec<u8> {
    init();
    let mut out = vec![0u8; len];
    // SAFETY: `out` holds `len` writable bytes, `seed` 32 readable bytes
    // (randombytes_SEEDBYTES).
    unsafe { sys::randombytes_buf_deterministic(out.as_mut_ptr().cast(), len, seed.as_ptr()) };
    out
}
