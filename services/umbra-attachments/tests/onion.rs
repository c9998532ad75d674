//! The server as a destination of onion requests: the body an exit POSTs to `/oxen/v4/lsrpc`
//! (`onion-requests.md` §6), sealed here as a client would, answered under the same key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use umbra_attachments::id::FileId;
use umbra_attachments::parse::{CHUNK_SIZE, Manifest};
use umbra_attachments::server::{AppState, Limits, router};
use umbra_attachments::store::Store;
use umbra_clock::ManualClock;
use umbra_crypto::SeededRandom;
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_onion::{V4Request, V4Response, frame};

struct Server {
    router: Router,
    key: X25519KeyPair,
    _dir: tempfile::TempDir,
}

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), 1 << 40).unwrap();
    let key = X25519KeyPair::from_secret([9; 32]);
    let state = AppState::with_onion_key(
        store,
        Arc::new(ManualClock::new(1_764_000_000_000)),
        Limits::default(),
        X25519KeyPair::from_secret([9; 32]),
    );
    Server {
        router: router(state),
        key,
        _dir: dir,
    }
}

async fn post(s: &Server, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let resp = s
        .router
        .clone()
        .oneshot(Request::post(path).body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

/// Sends `plaintext` as a client would through an exit, and opens the sealed answer.
async fn onion(s: &Server, enc: EncType, plaintext: &[u8]) -> (StatusCode, Vec<u8>) {
    let mut rng = SeededRandom::new(7);
    let eph = X25519KeyPair::generate(&mut rng);
    let key = HopKey::client(enc, &eph, &s.key.public()).unwrap();
    let sealed = key.encrypt(plaintext, &mut rng).unwrap();
    let control = json!({"ephemeral_key": hex::encode(eph.public()), "enc_type": enc.as_str()});
    let (status, body) = post(
        s,
        "/oxen/v4/lsrpc",
        frame::encode(&sealed, control.to_string().as_bytes()),
    )
    .await;
    if status != StatusCode::OK {
        return (status, body);
    }
    (status, key.decrypt(&body).unwrap().to_vec())
}

async fn v4(s: &Server, enc: EncType, req: &V4Request) -> V4Response {
    let (status, body) = onion(s, enc, &req.encode()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    V4Response::decode(&body).unwrap()
}

fn upload_request(body: &[u8]) -> V4Request {
    V4Request {
        method: "POST".into(),
        endpoint: "/file".into(),
        headers: [(
            "Content-Type".to_owned(),
            "application/octet-stream".to_owned(),
        )]
        .into(),
        body: Some(body.to_vec()),
    }
}

#[tokio::test]
async fn upload_info_and_download_through_onion() {
    let s = server();
    for enc in [EncType::XChaCha20, EncType::AesGcm] {
        let up = v4(&s, enc, &upload_request(b"hello")).await;
        assert_eq!(up.code, 200);
        assert_eq!(up.headers["content-type"], "application/json");
        assert!(!up.headers.contains_key("content-length"));
        let j: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(j["id"], FileId::of(b"hello").unwrap().as_str());

        let id = j["id"].as_str().unwrap();
        let got = v4(&s, enc, &V4Request::get(format!("/file/{id}"))).await;
        assert_eq!((got.code, got.body.as_slice()), (200, &b"hello"[..]));
        let info = v4(&s, enc, &V4Request::get(format!("/file/{id}/info"))).await;
        assert_eq!(
            serde_json::from_slice::<Value>(&info.body).unwrap()["size"],
            5
        );
        let missing = v4(&s, enc, &V4Request::get("/file/12345")).await;
        assert_eq!(missing.code, 404);
        assert_eq!(missing.body, br#"{"status_code":404}"#);
    }
}

#[tokio::test]
async fn chunked_upload_through_onion() {
    let s = server();
    let blob: Vec<u8> = (0..CHUNK_SIZE + 10).map(|i| (i % 253) as u8).collect();
    let m = Manifest::of(&blob);
    let open = v4(
        &s,
        EncType::XChaCha20,
        &V4Request::post_json("/upload", &serde_json::from_str(&m.to_json()).unwrap()),
    )
    .await;
    assert_eq!(open.code, 200, "{}", String::from_utf8_lossy(&open.body));
    let uid = serde_json::from_slice::<Value>(&open.body).unwrap()["upload_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = usize::try_from(CHUNK_SIZE).unwrap();
    for (i, part) in [&blob[..c], &blob[c..]].into_iter().enumerate() {
        let req = V4Request {
            method: "PUT".into(),
            endpoint: format!("/upload/{uid}/chunk/{i}"),
            headers: Default::default(),
            body: Some(part.to_vec()),
        };
        assert_eq!(v4(&s, EncType::XChaCha20, &req).await.code, 200);
    }
    let done = v4(
        &s,
        EncType::XChaCha20,
        &V4Request {
            method: "POST".into(),
            endpoint: format!("/upload/{uid}/complete"),
            headers: Default::default(),
            body: Some(vec![]),
        },
    )
    .await;
    let id = serde_json::from_slice::<Value>(&done.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(id, FileId::of(&blob).unwrap().as_str());
    let second = v4(
        &s,
        EncType::XChaCha20,
        &V4Request::get(format!("/file/{id}/chunk/1")),
    )
    .await;
    assert_eq!(second.body, &blob[c..]);
}

#[tokio::test]
async fn refusals() {
    let s = server();
    // Not a frame, or sealed to another key: plain 400, not encrypted.
    let (status, body) = post(&s, "/oxen/v4/lsrpc", b"xx".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.is_empty());
    let other = Server {
        key: X25519KeyPair::from_secret([5; 32]),
        ..server()
    };
    let mut rng = SeededRandom::new(1);
    let eph = X25519KeyPair::generate(&mut rng);
    let key = HopKey::client(EncType::XChaCha20, &eph, &other.key.public()).unwrap();
    let sealed = key.encrypt(b"l2:{}e", &mut rng).unwrap();
    let control = json!({"ephemeral_key": hex::encode(eph.public()), "enc_type": "xchacha20"});
    let (status, body) = post(
        &s,
        "/oxen/v4/lsrpc",
        frame::encode(&sealed, control.to_string().as_bytes()),
    )
    .await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::BAD_REQUEST, &b"Invalid ciphertext"[..])
    );

    // Opened but not v4: the encrypted 400 of the spec.
    let bad = V4Response::decode(&onion(&s, EncType::XChaCha20, b"not bencode").await.1).unwrap();
    assert_eq!(
        (bad.code, bad.body.as_slice()),
        (400, &b"Invalid v4 onion request"[..])
    );
    // Bad method or header, and onion-in-onion.
    for req in [
        V4Request {
            method: "G ET".into(),
            ..V4Request::get("/file/x")
        },
        V4Request {
            headers: [("Bad Header".to_owned(), "v".to_owned())].into(),
            ..V4Request::get("/file/x")
        },
    ] {
        assert_eq!(v4(&s, EncType::XChaCha20, &req).await.code, 400);
    }
    assert_eq!(
        v4(
            &s,
            EncType::XChaCha20,
            &V4Request::post_json("/oxen/v4/lsrpc", &json!({}))
        )
        .await
        .code,
        404
    );
    // A TTL out of range travels inside the v4 headers too.
    let mut up = upload_request(b"x");
    up.headers.insert("X-FS-TTL".into(), "0".into());
    assert_eq!(v4(&s, EncType::XChaCha20, &up).await.code, 400);
}

#[tokio::test]
async fn without_a_key_there_is_no_onion_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), 1 << 40).unwrap();
    let state = AppState::new(store, Arc::new(ManualClock::new(0)), Limits::default());
    let resp = router(state)
        .oneshot(
            Request::post("/oxen/v4/lsrpc")
                .body(Body::from("x"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[test]
fn key_file_is_created_once_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attachments.key");
    let a = umbra_attachments::onion::load_or_create_key(&path).unwrap();
    let b = umbra_attachments::onion::load_or_create_key(&path).unwrap();
    assert_eq!(hex::encode(a.public()), hex::encode(b.public()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    std::fs::write(&path, "not hex").unwrap();
    assert!(umbra_attachments::onion::load_or_create_key(&path).is_err());
}
