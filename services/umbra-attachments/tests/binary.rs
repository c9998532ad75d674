//! The real `umbra-attachments` binary: the start-up line, an upload over a socket, a clean
//! stop on SIGTERM, and the one-line fatal error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_umbra-attachments"))
}

/// One HTTP/1.1 request over a fresh connection; the whole answer as text.
fn http(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Starts the server on `dir`; the child and its start-up line.
fn start(dir: &std::path::Path) -> (std::process::Child, serde_json::Value) {
    let mut child = bin()
        .args(["--listen", "127.0.0.1:0", "--log", "warn", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, serde_json::from_str(&line).unwrap())
}

#[test]
fn kill_9_mid_upload_loses_nothing_completed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, ready) = start(dir.path());
    let addr = ready["listen"].as_str().unwrap().to_owned();
    let done = http(
        &addr,
        b"POST /file HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert!(done.starts_with("HTTP/1.1 200"), "{done}");
    // A second upload is half sent when the server is killed.
    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(b"POST /file HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    half.write_all(&[7u8; 50_000]).unwrap();
    // Wait until its body reaches the temporary file.
    for _ in 0..100 {
        let seen = std::fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .flatten()
            .any(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false));
        if seen {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(half);

    let (mut child, ready) = start(dir.path());
    let addr = ready["listen"].as_str().unwrap().to_owned();
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "temp files wiped"
    );
    let got = http(
        &addr,
        b"GET /file/tKO2VVg1JPHwgZuvqK_7bDHJeSr4UJ_8i13ETlwAn0jB HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        got.starts_with("HTTP/1.1 200") && got.ends_with("hello"),
        "{got}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
        1
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, ready) = start(dir.path());
    let addr = ready["listen"].as_str().unwrap().to_owned();
    assert_eq!(ready["url"], format!("http://{addr}"));
    assert_eq!(ready["x25519_pubkey"].as_str().unwrap().len(), 64);
    assert!(dir.path().join("attachments.key").is_file());

    let answer = http(
        &addr,
        b"POST /file HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("tKO2VVg1JPHwgZuvqK_7bDHJeSr4UJ_8i13ETlwAn0jB"),
        "{answer}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "exit {code:?}");
            let (_, again) = umbra_attachments::store::Store::open(dir.path(), 1 << 30).unwrap();
            assert_eq!(
                again,
                Default::default(),
                "a clean stop leaves nothing to clean"
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("no exit within 5 s of SIGTERM");
}

#[test]
fn fatal_error_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("attachments.key"), "not a key").unwrap();
    let out = bin()
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("umbra-attachments: loading the server key"),
        "{err}"
    );
    assert!(last.contains("is not a 64-hex-digit key"), "{err}");
    assert_eq!(
        err.matches("64-hex-digit").count(),
        1,
        "each cause once: {err}"
    );
}
