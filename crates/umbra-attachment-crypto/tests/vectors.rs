//! The contract: every attachment vector of `shared/vectors/groups-config-attachments.json`
//! (`attachment_stream_cross_client`, `attachment_stream_encrypted_sizes`,
//! `attachment_stream_padding`, `legacy_attachment_padded_sizes`, `file_server_ids`), byte
//! for byte, plus a multi-chunk blob made by libsodium itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use umbra_attachment_crypto::{
    AttachmentKey, Domain, Encryptor, SizeLimit, StreamSecrets, decrypt_to_vec, derive_secrets,
    encrypt_to_vec, encrypted_size, file_id, padding_len,
};

fn vector(name: &str) -> Value {
    let path = format!(
        "{}/../../../shared/vectors/groups-config-attachments.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
        .clone()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn cases(v: &Value) -> Vec<Vec<u64>> {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn cross_client_keys_and_ciphertexts() {
    let v = vector("attachment_stream_cross_client");
    let seed: [u8; 32] = hx(&v["seed"]).try_into().unwrap();
    let plaintext = v["plaintext_utf8"].as_str().unwrap().as_bytes();
    for (field, domain) in [
        ("attachment_domain", Domain::Attachment),
        ("profile_pic_domain", Domain::ProfilePicture),
    ] {
        let case = &v[field];
        assert_eq!(
            case["domain_byte"].as_u64().unwrap(),
            u64::from(domain == Domain::ProfilePicture)
        );
        let key = hx(&case["key"]);
        assert_eq!(
            derive_secrets(&seed, domain, plaintext).key.as_bytes(),
            &key[..],
            "{field}"
        );
        let (blob, info) = encrypt_to_vec(&seed, domain, SizeLimit::Regular, plaintext).unwrap();
        let expected = hx(&case["ciphertext_hex"]);
        let first_diff = blob.iter().zip(&expected).position(|(a, b)| a != b);
        assert_eq!(
            (blob.len(), first_diff),
            (expected.len(), None),
            "{field}: ciphertext"
        );
        assert_eq!(
            hex::encode(Sha256::digest(&blob)),
            case["ciphertext_sha256"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(info.sha256),
            case["ciphertext_sha256"].as_str().unwrap()
        );
        assert_eq!(info.key.as_bytes(), &key[..]);
        assert_eq!(info.size, plaintext.len() as u64);
        assert_eq!(info.encrypted_size, blob.len() as u64);
        if let Some(len) = case["ciphertext_length"].as_u64() {
            assert_eq!(blob.len() as u64, len);
        }
        let key = AttachmentKey::from_slice(&key).unwrap();
        assert_eq!(decrypt_to_vec(&key, &blob).unwrap(), plaintext);
    }
}

#[test]
fn encrypted_sizes() {
    for c in cases(&vector("attachment_stream_encrypted_sizes")) {
        assert_eq!(encrypted_size(c[0]), c[1], "plaintext size {}", c[0]);
    }
}

#[test]
fn encrypted_sizes_are_what_the_encryptor_writes() {
    // The real blob length for every vector size the regular limit allows (up to 10 MB).
    let seed = [5u8; 32];
    for c in cases(&vector("attachment_stream_encrypted_sizes")) {
        if c[0] > umbra_attachment_crypto::MAX_REGULAR_SIZE {
            continue;
        }
        let data = vec![0xa5u8; c[0] as usize];
        let (blob, info) =
            encrypt_to_vec(&seed, Domain::Attachment, SizeLimit::Regular, &data).unwrap();
        assert_eq!(blob.len() as u64, c[1], "plaintext size {}", c[0]);
        assert_eq!(info.encrypted_size, c[1]);
        assert_eq!(decrypt_to_vec(&info.key, &blob).unwrap(), data);
    }
}

#[test]
fn padding_amounts() {
    for c in cases(&vector("attachment_stream_padding")) {
        assert_eq!(padding_len(c[0]), c[1], "plaintext size {}", c[0]);
        assert_eq!(encrypted_size(c[0]), c[2], "plaintext size {}", c[0]);
    }
}

#[test]
fn file_server_ids() {
    let v = vector("file_server_ids");
    for c in v["cases"].as_array().unwrap() {
        let id = file_id(c["body_utf8"].as_str().unwrap().as_bytes());
        assert_eq!(id, c["id"].as_str().unwrap());
        assert_eq!(id.len(), umbra_attachment_crypto::file_id::FILE_ID_LEN);
    }
}

/// `tests/data/secretstream_libsodium.py`: libsodium pushed these four chunks (100 000 bytes
/// of data, 2 307 of padding) from this key and the header its `init_push` chose.
#[test]
fn multi_chunk_blob_matches_libsodium() {
    let key: [u8; 32] =
        hex::decode("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f")
            .unwrap()
            .try_into()
            .unwrap();
    let header: [u8; 24] = hex::decode("fe10e384720cd751e5ff84e74c67777249cc8e269b808e77")
        .unwrap()
        .try_into()
        .unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| ((i * 7 + 3) % 251) as u8).collect();
    assert_eq!(padding_len(100_000), 2307);
    let secrets = StreamSecrets {
        key: AttachmentKey::from_bytes(key),
        header,
    };
    let mut blob = Vec::new();
    let mut enc = Encryptor::new(&secrets, data.len() as u64, SizeLimit::Regular).unwrap();
    for piece in data.chunks(7_777) {
        enc.update(piece, &mut blob).unwrap();
    }
    enc.finish(&mut blob).unwrap();
    assert_eq!(blob.len(), 102_400);
    assert_eq!(
        hex::encode(Sha256::digest(&blob)),
        "62465b7dabcb2e1bbc562f052a97478ef55f551148db8b5e53babd25783f546a"
    );
    assert_eq!(decrypt_to_vec(&secrets.key, &blob).unwrap(), data);
}

#[test]
fn legacy_attachment_padded_sizes() {
    use umbra_attachment_crypto::legacy::{legacy_blob_size, legacy_padded_size};
    for c in cases(&vector("legacy_attachment_padded_sizes")) {
        assert_eq!(legacy_padded_size(c[0]), c[1], "plaintext size {}", c[0]);
        assert_eq!(legacy_blob_size(c[1]), c[2], "padded size {}", c[1]);
    }
}
