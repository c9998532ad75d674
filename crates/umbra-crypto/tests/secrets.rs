//! Secrets stay secret: key types wipe themselves on drop, and no `Debug` output (plain or
//! pretty) ever shows key bytes, seeds, plaintexts or Session IDs in clear.
//!
//! Zeroization itself cannot be observed without `unsafe` (reading freed memory), so it is
//! checked by type: `Identity`, `X25519KeyPair` and `HopKey` implement `ZeroizeOnDrop`, and
//! their modules assert at compile time that every secret-bearing field type does too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_crypto::{Identity, Redacted, SeededRandom, session_v1};
use zeroize::ZeroizeOnDrop;

fn wipes_on_drop<T: ZeroizeOnDrop>() {}

#[test]
fn key_types_zeroize_on_drop() {
    wipes_on_drop::<Identity>();
    wipes_on_drop::<X25519KeyPair>();
    wipes_on_drop::<HopKey>();
    // What the accessors hand out is wiped too.
    let id = Identity::from_seed(&[3; 32]);
    let _: zeroize::Zeroizing<[u8; 32]> = id.x25519_secret();
    let _: zeroize::Zeroizing<[u8; 32]> = id.x25519_keypair().secret();
}

/// Ways a secret's bytes could appear in text: hex, and Rust's `[1, 2, 3, …]` array form.
fn renderings(bytes: &[u8]) -> Vec<String> {
    let list = format!("{:?}", &bytes[..8]);
    vec![
        hex::encode(bytes),
        hex::encode(&bytes[..8]),
        hex::encode_upper(&bytes[..8]),
        list.trim_end_matches(']').to_owned(),
    ]
}

fn assert_hides(shown: &str, secrets: &[&[u8]]) {
    for secret in secrets {
        for r in renderings(secret) {
            assert!(!shown.contains(&r), "{shown:?} contains {r:?}");
        }
    }
}

#[test]
fn debug_output_never_contains_key_bytes() {
    let seed = [0x5a; 32];
    let id = Identity::from_seed(&seed);
    let x_secret = *id.x25519_secret();
    let sid = id.session_id().to_hex();
    let (ed, x) = (id.ed25519_public(), id.x25519_public());
    let secrets: [&[u8]; 4] = [&seed, &x_secret, ed.as_bytes(), x.as_bytes()];
    for shown in [format!("{id:?}"), format!("{id:#?}")] {
        assert_hides(&shown, &secrets);
        assert!(!shown.contains(&sid[2..14]), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    let eph = X25519KeyPair::from_secret([0x77; 32]);
    let eph_secret = *eph.secret();
    let node = id.x25519_keypair();
    for shown in [format!("{eph:?}"), format!("{eph:#?}"), format!("{node:?}")] {
        assert_hides(&shown, &[&eph_secret, eph.public().as_bytes(), &x_secret]);
    }

    for enc in [EncType::AesGcm, EncType::XChaCha20] {
        let key = HopKey::client(enc, &eph, &id.x25519_public()).unwrap();
        let dh = eph.dh(&id.x25519_public()).unwrap();
        for shown in [format!("{key:?}"), format!("{key:#?}")] {
            assert_hides(&shown, &[&dh[..], &eph_secret]);
            assert!(shown.contains(&format!("{enc:?}")), "{shown}");
        }
    }

    // A decrypted message shows its length and a redacted sender, not its bytes.
    let plaintext = b"a secret message that must not reach a log line";
    let ct = session_v1::encrypt(
        &Identity::from_seed(&[1; 32]),
        &id.session_id(),
        plaintext,
        &mut SeededRandom::new(5),
    )
    .unwrap();
    let opened = session_v1::decrypt(&id, &ct).unwrap();
    for shown in [format!("{opened:?}"), format!("{opened:#?}")] {
        assert!(!shown.contains("secret message"), "{shown}");
        assert_hides(&shown, &[&plaintext[..], opened.sender_ed25519.as_bytes()]);
        assert!(!shown.contains(&opened.sender.to_hex()[2..14]), "{shown}");
    }
}

#[test]
fn redacted_session_ids_do_not_leak() {
    let sid = Identity::from_seed(&[9; 32]).session_id();
    let r = Redacted::new(sid);
    for shown in [format!("{r}"), format!("{r:?}"), format!("{r:#?}")] {
        assert!(shown.starts_with("[redacted:"), "{shown}");
        assert_hides(&shown, &[&sid.as_bytes()[1..]]);
    }
}
