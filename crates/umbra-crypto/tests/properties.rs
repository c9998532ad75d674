//! Property tests (proptest) of umbra-crypto's public API: round trips, refusals and "never
//! panics" on arbitrary input.
//!
//! Case counts are sized so the whole default `cargo test -p umbra-crypto` stays well under a
//! minute on two cores; set `PROPTEST_CASES` to run every property with more cases (e.g.
//! `PROPTEST_CASES=5000 cargo test -p umbra-crypto --release --test properties`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::collection::vec;
use proptest::prelude::*;
use umbra_crypto::hop::{self, EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_crypto::session_v1::{self, OVERHEAD, PADDING_BLOCK, SEAL_OVERHEAD};
use umbra_crypto::{
    CryptoError, Identity, SeededRandom, SessionId, Signature, X25519PublicKey, mnemonic, sign,
};

/// `PROPTEST_CASES` if set, else `default`.
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(n)
}

/// Identities made both ways a client makes them: from 16 bytes of entropy (new accounts,
/// recovery phrases) and from a full 32-byte seed.
fn identity() -> impl Strategy<Value = Identity> {
    prop_oneof![
        any::<[u8; 16]>().prop_map(|e| Identity::from_entropy16(&e)),
        any::<[u8; 32]>().prop_map(|s| Identity::from_seed(&s)),
    ]
}

fn enc_type() -> impl Strategy<Value = EncType> {
    prop_oneof![Just(EncType::AesGcm), Just(EncType::XChaCha20)]
}

/// Encrypts one protocol-v1 message, with a random or the deterministic ephemeral key.
fn seal(sender: &Identity, to: &SessionId, msg: &[u8], deterministic: bool, seed: u64) -> Vec<u8> {
    if deterministic {
        session_v1::encrypt_deterministic(sender, to, msg).unwrap()
    } else {
        session_v1::encrypt(sender, to, msg, &mut SeededRandom::new(seed)).unwrap()
    }
}

/// Three distinct identities (sender, recipient, bystander).
fn three_identities() -> impl Strategy<Value = (Identity, Identity, Identity)> {
    (identity(), identity(), identity()).prop_filter("distinct identities", |(a, b, c)| {
        let (a, b, c) = (a.session_id(), b.session_id(), c.session_id());
        a != b && b != c && a != c
    })
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn session_v1_round_trip(
        (sender, recipient, bystander) in three_identities(),
        msg in vec(any::<u8>(), 0..700),
        deterministic: bool,
        seed: u64,
    ) {
        let rid = recipient.session_id();
        let ct = seal(&sender, &rid, &msg, deterministic, seed);
        prop_assert_eq!(ct.len(), msg.len() + OVERHEAD);

        let opened = session_v1::decrypt(&recipient, &ct).unwrap();
        prop_assert_eq!(&opened.plaintext[..], &msg[..]);
        prop_assert_eq!(opened.sender, sender.session_id());
        prop_assert_eq!(opened.sender_ed25519, sender.ed25519_public());

        // Nobody else can open it, the sender included.
        for other in [&bystander, &sender] {
            prop_assert!(matches!(session_v1::decrypt(other, &ct), Err(CryptoError::Decrypt(_))));
            prop_assert!(session_v1::open_sealed(other, &ct).is_err());
        }

        // Deterministic: same input, same bytes. Random: a new ephemeral key every time.
        let again = seal(&sender, &rid, &msg, deterministic, seed.wrapping_add(1));
        prop_assert_eq!(again == ct, deterministic);
        prop_assert_eq!(&session_v1::decrypt(&recipient, &again).unwrap().plaintext[..], &msg[..]);
    }

    /// Flipping any one bit anywhere (ephemeral key, MAC, body; including the top bit of the
    /// ephemeral key, which X25519 ignores but the nonce does not) is refused.
    #[test]
    fn session_v1_any_bit_flip_is_refused(
        (sender, recipient) in (identity(), identity()),
        msg in vec(any::<u8>(), 0..300),
        deterministic: bool,
        bit: prop::sample::Index,
    ) {
        let mut ct = seal(&sender, &recipient.session_id(), &msg, deterministic, 1);
        let bit = bit.index(ct.len() * 8);
        ct[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(session_v1::decrypt(&recipient, &ct).is_err(), "bit {}", bit);
    }

    /// Cutting a message short anywhere, or extending it, is refused.
    #[test]
    fn session_v1_truncation_and_extension_are_refused(
        (sender, recipient) in (identity(), identity()),
        msg in vec(any::<u8>(), 0..300),
        cut: prop::sample::Index,
        extra in vec(any::<u8>(), 1..20),
    ) {
        let ct = seal(&sender, &recipient.session_id(), &msg, false, 2);
        let cut = cut.index(ct.len());
        prop_assert!(session_v1::decrypt(&recipient, &ct[..cut]).is_err(), "cut at {}", cut);
        let mut longer = ct.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(session_v1::decrypt(&recipient, &longer).is_err());
    }

    /// Arbitrary bytes never panic and never decrypt.
    #[test]
    fn session_v1_decrypt_of_arbitrary_bytes_is_an_error(
        recipient in identity(),
        bytes in vec(any::<u8>(), 0..400),
    ) {
        prop_assert!(session_v1::decrypt(&recipient, &bytes).is_err());
        prop_assert!(session_v1::open_sealed(&recipient, &bytes).is_err());
    }

    /// A sealed box whose ephemeral key is a low-order point is refused as such.
    #[test]
    fn session_v1_low_order_ephemeral_is_refused(
        recipient in identity(),
        body in vec(any::<u8>(), SEAL_OVERHEAD - 32..300),
        which in 0usize..3,
    ) {
        // u = 0, u = 1 and u = p - 1 (all of small order on Curve25519 or its twist).
        let mut low = [0u8; 32];
        match which {
            0 => {}
            1 => low[0] = 1,
            _ => {
                low = [0xff; 32];
                low[0] = 0xec;
                low[31] = 0x7f;
            }
        }
        let mut ct = low.to_vec();
        ct.extend_from_slice(&body);
        prop_assert_eq!(session_v1::open_sealed(&recipient, &ct).unwrap_err(), CryptoError::WeakKeyExchange);
    }

    #[test]
    fn hop_round_trip_both_directions(
        enc in enc_type(),
        client_secret: [u8; 32],
        node_secret: [u8; 32],
        request in vec(any::<u8>(), 0..2000),
        reply in vec(any::<u8>(), 0..2000),
        seed: u64,
    ) {
        let client = X25519KeyPair::from_secret(client_secret);
        let node = X25519KeyPair::from_secret(node_secret);
        let ck = HopKey::client(enc, &client, &node.public()).unwrap();
        let nk = HopKey::node(enc, &node, &client.public()).unwrap();
        prop_assert_eq!(ck.enc_type(), enc);
        let mut rng = SeededRandom::new(seed);

        let blob = ck.encrypt(&request, &mut rng).unwrap();
        prop_assert_eq!(blob.len(), request.len() + enc.overhead());
        prop_assert_eq!(&nk.decrypt(&blob).unwrap()[..], &request[..]);
        prop_assert_eq!(&ck.decrypt(&blob).unwrap()[..], &request[..]);

        let back = nk.encrypt(&reply, &mut rng).unwrap();
        prop_assert_eq!(&ck.decrypt(&back).unwrap()[..], &reply[..]);

        // A fresh nonce every time.
        let blob2 = ck.encrypt(&request, &mut rng).unwrap();
        prop_assert_ne!(&blob2[..enc.nonce_len()], &blob[..enc.nonce_len()]);
    }

    /// Another node's key, the other cipher over the same DH, or a raw-DH aes-gcm key: refused.
    #[test]
    fn hop_wrong_key_is_refused(
        enc in enc_type(),
        client_secret: [u8; 32],
        node_secret: [u8; 32],
        other_secret: [u8; 32],
        msg in vec(any::<u8>(), 0..500),
    ) {
        let client = X25519KeyPair::from_secret(client_secret);
        let node = X25519KeyPair::from_secret(node_secret);
        let other = X25519KeyPair::from_secret(other_secret);
        prop_assume!(other.public() != node.public());
        let blob = HopKey::client(enc, &client, &node.public()).unwrap().encrypt(&msg, &mut SeededRandom::new(3)).unwrap();

        let wrong_node = HopKey::node(enc, &other, &client.public()).unwrap();
        prop_assert!(matches!(wrong_node.decrypt(&blob), Err(CryptoError::Decrypt(_))));
        let other_enc = match enc {
            EncType::AesGcm => EncType::XChaCha20,
            EncType::XChaCha20 => EncType::AesGcm,
        };
        prop_assert!(HopKey::node(other_enc, &node, &client.public()).unwrap().decrypt(&blob).is_err());
        if enc == EncType::AesGcm {
            let raw = HopKey::node_raw_aes_gcm(&node, &client.public()).unwrap();
            prop_assert!(raw.decrypt(&blob).is_err());
        }
    }

    #[test]
    fn hop_any_bit_flip_or_truncation_is_refused(
        enc in enc_type(),
        client_secret: [u8; 32],
        node_secret: [u8; 32],
        msg in vec(any::<u8>(), 0..500),
        bit: prop::sample::Index,
        cut: prop::sample::Index,
        extra in vec(any::<u8>(), 1..8),
    ) {
        let client = X25519KeyPair::from_secret(client_secret);
        let node = X25519KeyPair::from_secret(node_secret);
        let blob = HopKey::client(enc, &client, &node.public()).unwrap().encrypt(&msg, &mut SeededRandom::new(4)).unwrap();
        let nk = HopKey::node(enc, &node, &client.public()).unwrap();

        let mut flipped = blob.clone();
        let bit = bit.index(blob.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(nk.decrypt(&flipped).is_err(), "bit {}", bit);

        let cut = cut.index(blob.len());
        prop_assert!(nk.decrypt(&blob[..cut]).is_err(), "cut at {}", cut);

        let mut longer = blob.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(nk.decrypt(&longer).is_err());
    }

    /// Arbitrary bytes never panic and never decrypt, under either cipher.
    #[test]
    fn hop_decrypt_of_arbitrary_bytes_is_an_error(
        enc in enc_type(),
        node_secret: [u8; 32],
        client_public: [u8; 32],
        bytes in vec(any::<u8>(), 0..200),
    ) {
        let node = X25519KeyPair::from_secret(node_secret);
        // A low-order client key is refused at key agreement; otherwise decryption fails.
        if let Ok(k) = HopKey::node(enc, &node, &X25519PublicKey::from_bytes(client_public)) {
            prop_assert!(k.decrypt(&bytes).is_err());
        }
    }

    /// The bare AEAD step: round trip with AAD, wrong AAD and wrong nonce length refused.
    #[test]
    fn aead_seal_open_round_trip(
        enc in enc_type(),
        key: [u8; 32],
        nonce in vec(any::<u8>(), 24),
        aad in vec(any::<u8>(), 0..40),
        msg in vec(any::<u8>(), 0..500),
        bad_len in 0usize..40,
    ) {
        let nonce = &nonce[..enc.nonce_len()];
        let ct = hop::aead_seal(enc, &key, nonce, &aad, &msg).unwrap();
        prop_assert_eq!(ct.len(), msg.len() + 16);
        prop_assert_eq!(&hop::aead_open(enc, &key, nonce, &aad, &ct).unwrap()[..], &msg[..]);
        let mut other_aad = aad.clone();
        other_aad.push(0);
        prop_assert!(hop::aead_open(enc, &key, nonce, &other_aad, &ct).is_err());
        prop_assume!(bad_len != enc.nonce_len());
        let bad_nonce = vec![0u8; bad_len];
        let is_bad_length = |r: Result<(), CryptoError>| matches!(r, Err(CryptoError::BadLength { .. }));
        prop_assert!(is_bad_length(hop::aead_open(enc, &key, &bad_nonce, &aad, &ct).map(|_| ())));
        prop_assert!(is_bad_length(hop::aead_seal(enc, &key, &bad_nonce, &aad, &msg).map(|_| ())));
    }
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn pad_unpad_round_trip(content in vec(any::<u8>(), 0..1000)) {
        let padded = session_v1::pad(&content);
        // The reference rule: n = len + 1; n += 160 - (n mod 160).
        let mut n = content.len() + 1;
        n += PADDING_BLOCK - n % PADDING_BLOCK;
        prop_assert_eq!(padded.len(), n);
        prop_assert_eq!(padded.len() % PADDING_BLOCK, 0);
        prop_assert!(padded.len() > content.len());
        prop_assert_eq!(&padded[..content.len()], &content[..]);
        prop_assert_eq!(padded[content.len()], 0x80);
        prop_assert!(padded[content.len() + 1..].iter().all(|b| *b == 0));
        prop_assert_eq!(session_v1::unpad(&padded), &content[..]);
    }

    /// Unpadded data (last byte neither 0 nor 0x80) is returned unchanged; unpad never panics
    /// and only ever removes a suffix.
    #[test]
    fn unpad_accepts_anything(data in vec(any::<u8>(), 0..400)) {
        let out = session_v1::unpad(&data);
        prop_assert!(data.starts_with(out));
        if let Some(&last) = data.last() && last != 0 && last != 0x80 {
            prop_assert_eq!(out, &data[..]);
        }
    }

    #[test]
    fn mnemonic_round_trip(entropy: [u8; 16], shout: bool, spaces in 1usize..4) {
        let phrase = mnemonic::to_phrase(&entropy).unwrap();
        prop_assert_eq!(phrase.split(' ').count(), 12);
        prop_assert_eq!(*mnemonic::from_phrase(&phrase).unwrap(), entropy);
        // Case and whitespace do not matter.
        let sep = " ".repeat(spaces);
        let mut messy = format!("\t{}\n", phrase.split(' ').collect::<Vec<_>>().join(&sep));
        if shout {
            messy = messy.to_uppercase();
        }
        prop_assert_eq!(*mnemonic::from_phrase(&messy).unwrap(), entropy);
        // The phrase restores the identity it was made for.
        let id = Identity::from_entropy16(&entropy);
        prop_assert_eq!(id.entropy16(), Some(entropy));
        prop_assert_eq!(Identity::from_entropy16(&mnemonic::from_phrase(&phrase).unwrap()).session_id(), id.session_id());
    }

    #[test]
    fn session_id_display_parse_round_trip(x: [u8; 32]) {
        let id = SessionId::from_x25519(X25519PublicKey::from_bytes(x));
        let text = id.to_string();
        prop_assert_eq!(text.len(), 66);
        prop_assert!(text.starts_with("05"));
        prop_assert_eq!(&text, &id.to_hex());
        prop_assert_eq!(text.parse::<SessionId>().unwrap(), id);
        prop_assert_eq!(text.to_uppercase().parse::<SessionId>().unwrap(), id);
        prop_assert_eq!(format!("  {text}\n").parse::<SessionId>().unwrap(), id);
        prop_assert_eq!(SessionId::from_bytes(*id.as_bytes()).unwrap(), id);
        prop_assert_eq!(id.x25519().to_bytes(), x);
    }

    #[test]
    fn session_id_wrong_length_is_an_error(x: [u8; 32], keep in 0usize..66, extra in "[0-9a-f]{1,8}") {
        let text = SessionId::from_x25519(X25519PublicKey::from_bytes(x)).to_string();
        let short = &text[..keep];
        prop_assert!(matches!(short.parse::<SessionId>(), Err(CryptoError::BadSessionId(_))));
        let long = format!("{text}{extra}");
        prop_assert!(matches!(long.parse::<SessionId>(), Err(CryptoError::BadSessionId(_))));
    }

    #[test]
    fn session_id_wrong_prefix_is_an_error(x: [u8; 32], prefix in 0u8..=255) {
        prop_assume!(prefix != 0x05);
        let text = format!("{prefix:02x}{}", hex::encode(x));
        prop_assert!(matches!(text.parse::<SessionId>(), Err(CryptoError::BadSessionId(_))));
        let mut bytes = [0u8; 33];
        bytes[0] = prefix;
        bytes[1..].copy_from_slice(&x);
        prop_assert!(SessionId::from_bytes(bytes).is_err());
    }

    #[test]
    fn session_id_non_hex_is_an_error(x: [u8; 32], at in 0usize..66, bad in "[g-zG-Z_ .:!-]") {
        let mut text = SessionId::from_x25519(X25519PublicKey::from_bytes(x)).to_string().into_bytes();
        text[at] = bad.as_bytes()[0];
        let text = String::from_utf8(text).unwrap();
        // A space at either end is trimmed and then the length is wrong; either way an error.
        prop_assert!(matches!(text.parse::<SessionId>(), Err(CryptoError::BadSessionId(_))));
    }

    /// Any string at all: an error or a valid ID, never a panic (multi-byte characters
    /// included, which must not be sliced mid-character).
    #[test]
    fn session_id_parse_of_any_string_does_not_panic(s in "\\PC{0,80}") {
        if let Ok(id) = s.parse::<SessionId>() {
            prop_assert_eq!(id.to_string(), s.trim().to_lowercase());
        }
    }

    #[test]
    fn x25519_agreement_is_symmetric(a: [u8; 32], b: [u8; 32]) {
        let (a, b) = (X25519KeyPair::from_secret(a), X25519KeyPair::from_secret(b));
        prop_assert_eq!(*a.dh(&b.public()).unwrap(), *b.dh(&a.public()).unwrap());
    }

    #[test]
    fn signatures_verify_and_any_change_is_refused(
        signer in identity(),
        msg in vec(any::<u8>(), 0..200),
        bit in 0usize..512,
    ) {
        let pk = signer.ed25519_public();
        let sig = signer.sign(&msg);
        prop_assert_eq!(sign::verify(&pk, &msg, &sig), Ok(()));
        prop_assert_eq!(sign::verify_slices(pk.as_bytes(), &msg, sig.as_bytes()), Ok(()));
        let mut bad = sig.to_bytes();
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(sign::verify(&pk, &msg, &Signature::from_bytes(bad)).is_err());
        let mut other = msg.clone();
        other.push(1);
        prop_assert!(sign::verify(&pk, &other, &sig).is_err());
        let short_sig = sign::verify_slices(pk.as_bytes(), &msg, &sig.as_bytes()[..63]);
        let short_key = sign::verify_slices(&pk.as_bytes()[..31], &msg, sig.as_bytes());
        for r in [short_sig, short_key] {
            prop_assert!(matches!(r, Err(CryptoError::BadLength { .. })), "{:?}", r);
        }
    }
}
