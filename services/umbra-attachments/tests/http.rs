//! Every endpoint through the real router (no socket), with a hand-moved clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;
use umbra_attachments::id::FileId;
use umbra_attachments::parse::{CHUNK_SIZE, Manifest};
use umbra_attachments::server::{AppState, Limits, router};
use umbra_attachments::store::Store;
use umbra_clock::ManualClock;

const T0: u64 = 1_764_000_000_000;

struct App {
    router: Router,
    state: Arc<AppState>,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
}

fn app_with(limits: Limits, quota: u64) -> App {
    let dir = tempfile::tempdir().unwrap();
    app_in(dir, limits, quota)
}

fn app_in(dir: tempfile::TempDir, limits: Limits, quota: u64) -> App {
    let (store, _) = Store::open(dir.path(), quota).unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let state = AppState::new(store, clock.clone(), limits);
    App {
        router: router(Arc::clone(&state)),
        state,
        clock,
        dir,
    }
}

fn app() -> App {
    app_with(Limits::default(), 1 << 40)
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn call(
    app: &App,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .router
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

async fn upload(app: &App, body: &[u8]) -> Answer {
    call(app, "POST", "/file", &[], body.to_vec()).await
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

#[tokio::test]
async fn post_get_info_with_session_ids() {
    let app = app();
    let a = upload(&app, b"hello").await;
    assert_eq!(a.status, StatusCode::OK);
    let j = a.json();
    // shared/vectors/groups-config-attachments.json, file_server_ids.
    assert_eq!(j["id"], "tKO2VVg1JPHwgZuvqK_7bDHJeSr4UJ_8i13ETlwAn0jB");
    assert_eq!(j["uploaded"], secs(T0));
    assert_eq!(j["expires"], secs(T0 + Limits::default().default_ttl_ms));

    let g = call(
        &app,
        "GET",
        "/file/tKO2VVg1JPHwgZuvqK_7bDHJeSr4UJ_8i13ETlwAn0jB",
        &[],
        vec![],
    )
    .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.body, b"hello");
    assert_eq!(g.headers["content-type"], "application/octet-stream");

    let i = call(
        &app,
        "GET",
        "/file/tKO2VVg1JPHwgZuvqK_7bDHJeSr4UJ_8i13ETlwAn0jB/info",
        &[],
        vec![],
    )
    .await;
    assert_eq!(i.status, StatusCode::OK);
    assert_eq!(i.json()["size"], 5);
    assert_eq!(i.json()["uploaded"], secs(T0));
}

#[tokio::test]
async fn reupload_keeps_id_and_resets_times() {
    let app = app();
    let first = upload(&app, b"hello world").await.json();
    app.clock.advance(60_000);
    let second = upload(&app, b"hello world").await.json();
    assert_eq!(first["id"], "3qXfYbeRSxXa89I8ApcbKl0_BshkLQ6myd0DsvcrDEy3");
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["uploaded"], secs(T0 + 60_000));
    assert_eq!(app.state.store().file_count().unwrap(), 1);
    assert_eq!(app.state.store().used_bytes().unwrap(), 11);
}

#[tokio::test]
async fn empty_and_too_large_are_413() {
    let app = app_with(
        Limits {
            max_file_size: 8,
            ..Limits::default()
        },
        1 << 40,
    );
    for body in [&b""[..], b"123456789"] {
        let a = upload(&app, body).await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(a.json(), serde_json::json!({"status_code": 413}));
    }
    // Announced too large: refused before reading.
    let a = call(
        &app,
        "POST",
        "/file",
        &[("content-length", "9")],
        b"123456789".to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Streamed without a length, cut at the limit.
    let stream = framed(vec![b"1234".to_vec(), b"5678".to_vec(), b"9".to_vec()]);
    let resp = app
        .router
        .clone()
        .oneshot(Request::post("/file").body(stream).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(upload(&app, b"12345678").await.status, StatusCode::OK);
    // Nothing of the refused bodies is left behind.
    assert_eq!(
        std::fs::read_dir(app.dir.path().join("tmp"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(app.dir.path().join("blobs"))
            .unwrap()
            .count(),
        1
    );
}

/// A body sent in several frames, without a `Content-Length`.
fn framed(parts: Vec<Vec<u8>>) -> Body {
    Body::new(Frames(parts.into_iter().map(Into::into).collect(), false))
}

/// Frames, then the end, or (`.1`) a wait that never ends (a client that stalls).
struct Frames(std::collections::VecDeque<axum::body::Bytes>, bool);

impl axum::body::HttpBody for Frames {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        match self.0.pop_front() {
            Some(b) => std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(b)))),
            None if self.1 => std::task::Poll::Pending,
            None => std::task::Poll::Ready(None),
        }
    }
}

#[tokio::test]
async fn unknown_malformed_and_expired_are_404() {
    let app = app();
    let unknown = FileId::of(b"never uploaded").unwrap();
    for uri in [
        format!("/file/{unknown}"),
        format!("/file/{unknown}/info"),
        "/file/12345".to_owned(),
        "/file/..%2F..%2Fetc".to_owned(),
        format!("/file/{}", "a".repeat(300)),
    ] {
        let a = call(&app, "GET", &uri, &[], vec![]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(a.json(), serde_json::json!({"status_code": 404}));
    }
    let a = call(
        &app,
        "POST",
        &format!("/file/{unknown}/extend"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = call(&app, "POST", "/file/12345/extend", &[], vec![]).await;
    assert_eq!(
        a.status,
        StatusCode::NOT_FOUND,
        "only 44-character ids extend"
    );

    let id = upload(&app, b"short-lived").await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(Limits::default().default_ttl_ms);
    for uri in [format!("/file/{id}"), format!("/file/{id}/info")] {
        assert_eq!(
            call(&app, "GET", &uri, &[], vec![]).await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        call(&app, "POST", &format!("/file/{id}/extend"), &[], vec![])
            .await
            .status,
        StatusCode::NOT_FOUND,
        "an expired file cannot be revived"
    );
}

#[tokio::test]
async fn ttl_header_bounds_and_extend_only_extends() {
    let app = app_with(
        Limits {
            max_ttl_secs: Some(3600),
            ..Limits::default()
        },
        1 << 40,
    );
    let a = call(
        &app,
        "POST",
        "/file",
        &[("X-FS-TTL", "60")],
        b"ttl".to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["expires"], secs(T0 + 60_000));
    let id = a.json()["id"].as_str().unwrap().to_owned();
    for bad in [
        "0",
        "3601",
        "-5",
        "1.5",
        "soon",
        "99999999999999999999999999",
    ] {
        let a = call(
            &app,
            "POST",
            "/file",
            &[("X-FS-TTL", bad)],
            b"ttl2".to_vec(),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(a.json(), serde_json::json!({"status_code": 400}));
    }
    // Shorter than what is left: unchanged. Longer: extended.
    app.clock.advance(10_000);
    let e = call(
        &app,
        "POST",
        &format!("/file/{id}/extend"),
        &[("X-FS-TTL", "30")],
        vec![],
    )
    .await;
    assert_eq!(e.status, StatusCode::OK);
    assert_eq!(e.json()["expires"], secs(T0 + 60_000));
    let e = call(
        &app,
        "POST",
        &format!("/file/{id}/extend"),
        &[("X-FS-TTL", "3600")],
        vec![],
    )
    .await;
    assert_eq!(e.json()["expires"], secs(T0 + 10_000 + 3_600_000));
    assert_eq!(e.json()["size"], 3);
    let e = call(
        &app,
        "POST",
        &format!("/file/{id}/extend"),
        &[("X-FS-TTL", "x")],
        vec![],
    )
    .await;
    assert_eq!(e.status, StatusCode::BAD_REQUEST);
    // Without the header: the default expiry.
    let e = call(&app, "POST", &format!("/file/{id}/extend"), &[], vec![]).await;
    assert_eq!(
        e.json()["expires"],
        secs(T0 + 10_000 + Limits::default().default_ttl_ms)
    );

    // A server that does not honour the header ignores it, as Session's without MAX_FILE_TTL.
    let plain = app_with(
        Limits {
            max_ttl_secs: None,
            ..Limits::default()
        },
        1 << 40,
    );
    let a = call(
        &plain,
        "POST",
        "/file",
        &[("X-FS-TTL", "nonsense")],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json()["expires"],
        secs(T0 + Limits::default().default_ttl_ms)
    );
}

#[tokio::test]
async fn sweep_removes_expired_blobs() {
    let app = app();
    let keep = upload(&app, b"keep").await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = call(
        &app,
        "POST",
        "/file",
        &[("X-FS-TTL", "5")],
        b"gone".to_vec(),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(5_000);
    let swept = app.state.sweep().await.unwrap();
    assert_eq!(swept.files, 1);
    assert!(!app.dir.path().join("blobs").join(&gone).exists());
    assert!(app.dir.path().join("blobs").join(&keep).exists());
    assert_eq!(app.state.store().used_bytes().unwrap(), 4);
    let m = call(&app, "GET", "/metrics", &[], vec![]).await;
    let text = String::from_utf8(m.body).unwrap();
    assert!(text.contains("umbra_attachments_expired_total 1"), "{text}");
    assert!(text.contains("umbra_attachments_uploads_total 2"), "{text}");
    assert!(text.contains("umbra_attachments_files 1"), "{text}");
}

#[tokio::test]
async fn quota_full_is_507_but_dedup_still_works() {
    let app = app_with(Limits::default(), 10);
    assert_eq!(upload(&app, b"12345678").await.status, StatusCode::OK);
    let a = upload(&app, b"abcdefgh").await;
    assert_eq!(a.status, StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(a.json(), serde_json::json!({"status_code": 507}));
    assert_eq!(
        upload(&app, b"12345678").await.status,
        StatusCode::OK,
        "same bytes take no room"
    );
    assert_eq!(upload(&app, b"ab").await.status, StatusCode::OK);
    assert_eq!(
        std::fs::read_dir(app.dir.path().join("tmp"))
            .unwrap()
            .count(),
        0
    );
    // A chunked upload reserves its size up front.
    let m = Manifest::of(b"xyz");
    let a = call(&app, "POST", "/upload", &[], m.to_json().into_bytes()).await;
    assert_eq!(a.status, StatusCode::INSUFFICIENT_STORAGE);
}

#[tokio::test]
async fn ranges_and_chunks_of_a_file() {
    let app = app();
    let body: Vec<u8> = (0..100u8).collect();
    let id = upload(&app, &body).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(
        &app,
        "GET",
        &format!("/file/{id}"),
        &[("Range", "bytes=10-19")],
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body, &body[10..20]);
    assert_eq!(r.headers["content-range"], "bytes 10-19/100");
    let r = call(
        &app,
        "GET",
        &format!("/file/{id}"),
        &[("Range", "bytes=-5")],
        vec![],
    )
    .await;
    assert_eq!(r.body, &body[95..]);
    let r = call(
        &app,
        "GET",
        &format!("/file/{id}"),
        &[("Range", "bytes=100-")],
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers["content-range"], "bytes */100");
    let r = call(
        &app,
        "GET",
        &format!("/file/{id}"),
        &[("Range", "bytes=1-2,5-6")],
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "several ranges: the whole file");
    assert_eq!(r.body, body);
    let r = call(&app, "GET", &format!("/file/{id}/chunk/0"), &[], vec![]).await;
    assert_eq!(r.body, body);
    for bad in ["1", "x", "-1", "99999999999999999999999"] {
        let r = call(&app, "GET", &format!("/file/{id}/chunk/{bad}"), &[], vec![]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

fn big_blob() -> Vec<u8> {
    // Two and a half chunks, every byte position distinct enough to catch a reordering.
    let len = usize::try_from(CHUNK_SIZE).unwrap() * 5 / 2;
    (0..len)
        .map(|i| u8::try_from((i * 7 + i / 1000) % 251).unwrap())
        .collect()
}

fn chunk(blob: &[u8], i: usize) -> Vec<u8> {
    let c = usize::try_from(CHUNK_SIZE).unwrap();
    blob[i * c..((i + 1) * c).min(blob.len())].to_vec()
}

#[tokio::test]
async fn chunked_upload_happy_path_and_errors() {
    let app = app();
    let blob = big_blob();
    let m = Manifest::of(&blob);
    let open = call(&app, "POST", "/upload", &[], m.to_json().into_bytes()).await;
    assert_eq!(open.status, StatusCode::OK);
    let j = open.json();
    let uid = j["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(j["chunks"], 3);
    assert_eq!(j["have"], serde_json::json!([]));
    assert_eq!(j["missing"], 3);
    assert_eq!(j["id"], Value::Null);

    let put = |i: usize, body: Vec<u8>| {
        let app = &app;
        let uid = uid.clone();
        async move { call(app, "PUT", &format!("/upload/{uid}/chunk/{i}"), &[], body).await }
    };
    // Wrong bytes, wrong length, wrong index: 400, nothing kept.
    let mut wrong = chunk(&blob, 1);
    wrong[0] ^= 1;
    assert_eq!(put(1, wrong).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        put(1, chunk(&blob, 1)[..10].to_vec()).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put(1, [chunk(&blob, 1), vec![0]].concat()).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put(0, chunk(&blob, 1)).await.status,
        StatusCode::BAD_REQUEST,
        "chunks cannot be swapped"
    );
    assert_eq!(
        put(3, chunk(&blob, 2)).await.status,
        StatusCode::BAD_REQUEST
    );
    let none = call(
        &app,
        "PUT",
        &format!("/upload/{}/chunk/0", FileId::of(b"no").unwrap()),
        &[],
        vec![1],
    )
    .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);

    let a = put(2, chunk(&blob, 2)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["have"], serde_json::json!([2]));
    let early = call(
        &app,
        "POST",
        &format!("/upload/{uid}/complete"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(put(0, chunk(&blob, 0)).await.status, StatusCode::OK);
    // A retried chunk is fine.
    assert_eq!(
        put(0, chunk(&blob, 0)).await.json()["have"],
        serde_json::json!([0, 2])
    );
    let post = call(
        &app,
        "POST",
        &format!("/upload/{uid}/chunk/1"),
        &[],
        chunk(&blob, 1),
    )
    .await;
    assert_eq!(post.json()["missing"], 0);

    let done = call(
        &app,
        "POST",
        &format!("/upload/{uid}/complete"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(
        done.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&done.body)
    );
    let id = FileId::of(&blob).unwrap();
    assert_eq!(
        done.json()["id"],
        id.as_str(),
        "the id is Session's, over the whole blob"
    );
    assert_eq!(done.json()["size"], blob.len());
    // Completing again answers the same file (a lost answer is retried safely).
    let again = call(
        &app,
        "POST",
        &format!("/upload/{uid}/complete"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(again.json()["id"], id.as_str());
    assert_eq!(
        call(&app, "GET", &format!("/upload/{uid}"), &[], vec![])
            .await
            .json()["id"],
        id.as_str()
    );
    assert!(
        !app.dir.path().join("uploads").join(&uid).exists(),
        "chunks are gone"
    );

    let whole = call(&app, "GET", &format!("/file/{id}"), &[], vec![]).await;
    assert_eq!(whole.body, blob);
    for i in 0..3 {
        let c = call(&app, "GET", &format!("/file/{id}/chunk/{i}"), &[], vec![]).await;
        assert_eq!(c.body, chunk(&blob, i), "chunk {i}");
    }
    // The reservation became the file: counted once.
    assert_eq!(
        app.state.store().used_bytes().unwrap(),
        u64::try_from(blob.len()).unwrap()
    );
}

#[tokio::test]
async fn manifest_errors() {
    let app = app_with(
        Limits {
            max_large_file_size: 100,
            ..Limits::default()
        },
        1 << 40,
    );
    for bad in [
        &b"{"[..],
        b"{}",
        b"[]",
        br#"{"v":1,"size":0,"chunk_size":1048576,"chunks":[]}"#,
    ] {
        let a = call(&app, "POST", "/upload", &[], bad.to_vec()).await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let big = Manifest::of(&[0u8; 101]);
    let a = call(&app, "POST", "/upload", &[], big.to_json().into_bytes()).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let a = call(&app, "POST", "/upload", &[], vec![b' '; 2 << 20]).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let a = call(
        &app,
        "GET",
        &format!("/upload/{}", FileId::of(b"x").unwrap()),
        &[],
        vec![],
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn restart_mid_chunked_upload_resumes() {
    let first = app();
    let blob = big_blob();
    let m = Manifest::of(&blob);
    let uid = call(&first, "POST", "/upload", &[], m.to_json().into_bytes())
        .await
        .json()["upload_id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &first,
        "PUT",
        &format!("/upload/{uid}/chunk/1"),
        &[],
        chunk(&blob, 1),
    )
    .await;
    // A crash mid-chunk leaves a partial temp file; the server is then restarted.
    std::fs::write(
        first.dir.path().join("tmp").join("7.part"),
        &chunk(&blob, 0)[..1000],
    )
    .unwrap();
    let App {
        dir, state, router, ..
    } = first;
    drop((state, router));
    let second = app_in(dir, Limits::default(), 1 << 40);
    assert!(
        std::fs::read_dir(second.dir.path().join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
    // The client, knowing nothing, opens the same manifest again and learns what is missing.
    let j = call(&second, "POST", "/upload", &[], m.to_json().into_bytes())
        .await
        .json();
    assert_eq!(j["upload_id"], uid.as_str());
    assert_eq!(j["have"], serde_json::json!([1]));
    for i in [0, 2] {
        let a = call(
            &second,
            "PUT",
            &format!("/upload/{uid}/chunk/{i}"),
            &[],
            chunk(&blob, i),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let done = call(
        &second,
        "POST",
        &format!("/upload/{uid}/complete"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(done.json()["id"], FileId::of(&blob).unwrap().as_str());
}

#[tokio::test]
async fn crash_leftovers_are_never_served_and_cleaned_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir, Limits::default(), 1 << 40);
    let kept = upload(&app, b"completed upload").await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let App {
        dir, state, router, ..
    } = app;
    drop((state, router));
    // What kill -9 can leave: a half-written body in tmp/, a blob renamed into place whose row
    // never committed, and an upload directory whose row never committed.
    let half = FileId::of(b"half-written").unwrap();
    std::fs::write(dir.path().join("tmp").join("0.part"), b"half-wr").unwrap();
    let orphan = FileId::of(b"renamed, not registered").unwrap();
    std::fs::write(
        dir.path().join("blobs").join(orphan.as_str()),
        b"renamed, not registered",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("uploads").join(half.as_str())).unwrap();

    let (_, recovery) = Store::open(dir.path(), 1 << 40).unwrap();
    assert_eq!(recovery.temp_files, 1);
    assert_eq!(recovery.orphan_blobs, 1);
    assert_eq!(recovery.orphan_uploads, 1);
    let app = app_in(dir, Limits::default(), 1 << 40);
    for id in [half.as_str(), orphan.as_str()] {
        let a = call(&app, "GET", &format!("/file/{id}"), &[], vec![]).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
    }
    assert!(!app.dir.path().join("blobs").join(orphan.as_str()).exists());
    // The completed upload survived.
    let a = call(&app, "GET", &format!("/file/{kept}"), &[], vec![]).await;
    assert_eq!(a.body, b"completed upload");
}

#[tokio::test]
async fn an_abandoned_upload_leaves_no_temp_file() {
    let app = app();
    let router = app.router.clone();
    let task = tokio::spawn(async move {
        router
            .oneshot(
                Request::post("/file")
                    .body(Body::new(Frames([vec![1u8; 1000].into()].into(), true)))
                    .unwrap(),
            )
            .await
    });
    let tmp = app.dir.path().join("tmp");
    for _ in 0..200 {
        if std::fs::read_dir(&tmp).unwrap().count() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        1,
        "the body is being received"
    );
    // The connection closes or the request times out: hyper drops the handler.
    task.abort();
    let _ = task.await;
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[tokio::test]
async fn announced_oversized_chunk_is_a_400() {
    let app = app();
    let m = Manifest::of(b"abc");
    let uid = call(&app, "POST", "/upload", &[], m.to_json().into_bytes())
        .await
        .json()["upload_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = call(
        &app,
        "PUT",
        &format!("/upload/{uid}/chunk/0"),
        &[("content-length", "4")],
        b"abcd".to_vec(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = call(
        &app,
        "PUT",
        &format!("/upload/{uid}/chunk/0"),
        &[],
        b"abc".to_vec(),
    )
    .await;
    assert_eq!(a.json()["missing"], 0);
}

#[test]
fn the_default_limit_is_the_blob_of_a_1_gib_file() {
    use umbra_attachment_crypto::encrypted_size;
    use umbra_attachments::server::DEFAULT_MAX_LARGE_FILE_SIZE;

    assert!(encrypted_size(1_000_000_000) <= DEFAULT_MAX_LARGE_FILE_SIZE);
    assert_eq!(encrypted_size(1 << 30), DEFAULT_MAX_LARGE_FILE_SIZE);
}
