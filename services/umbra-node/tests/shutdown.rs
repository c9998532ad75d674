#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Graceful shutdown: a `store` whose body is still arriving when shutdown starts is finished
//! with its normal reply, new connections are refused meanwhile, and the acknowledged message
//! is in the store after a restart on the same data directory.
//!
//! The in-flight state is made deterministic with `Expect: 100-continue`: the server sends
//! `100 Continue` only once the handler is reading the body, i.e. the request has been parsed,
//! admitted and is inside `storage_rpc`. Shutdown is started only after that, and the rest of
//! the body is sent only after the listener is observably closed. Timeouts are hang guards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::client::TlsStream;
use umbra_node::testing::{TestAccount, TestNode, https_client, now_ms, rpc};

/// Generous upper bound for every wait: only there so a broken node fails instead of hanging.
const GUARD: Duration = Duration::from_secs(60);

async fn tls_connect(addr: SocketAddr) -> TlsStream<tokio::net::TcpStream> {
    let cfg = umbra_node::identity::danger_any_cert_client_config().unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Reads until the end of one response head (`\r\n\r\n`) and returns it.
async fn read_head(tls: &mut TlsStream<tokio::net::TcpStream>) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tls.read(&mut byte).await.unwrap();
        assert_eq!(n, 1, "connection closed mid-head: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_store_finishes_during_shutdown_and_is_durable() {
    // A long grace period: shutdown must end because the request finished, not because the
    // grace period ran out.
    let node = TestNode::start_with(|c| c.limits.shutdown_grace_secs = 600)
        .await
        .unwrap();
    let addr = node.node().unwrap().client_addr();
    let a = TestAccount::new(77);
    let data = b"stored while the node shuts down".to_vec();
    let body = json!({
        "method": "store",
        "params": a.store_params(0, now_ms(), 86_400_000, &data),
    })
    .to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);

    // Headers with `Expect: 100-continue`, then wait for the interim reply: the handler is
    // now reading this request's body.
    let mut tls = tls_connect(addr).await;
    let head = format!(
        "POST /storage_rpc/v1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let interim = tokio::time::timeout(GUARD, read_head(&mut tls))
        .await
        .expect("no 100 Continue");
    assert!(
        interim.starts_with("HTTP/1.1 100 Continue\r\n"),
        "{interim}"
    );
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();

    // Start the graceful shutdown while the body is half sent.
    let stopping = tokio::spawn(node.stop());

    // The listener closes: new connections are refused.
    tokio::time::timeout(GUARD, async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("listener still accepting after shutdown started");
    let client = https_client().unwrap();
    let refused = rpc(
        &client,
        &format!("https://{addr}/storage_rpc/v1"),
        "info",
        json!({}),
    )
    .await;
    assert!(refused.is_err(), "new request served: {refused:?}");
    // Shutdown waits for the open request (the grace period is far away).
    assert!(!stopping.is_finished(), "shutdown did not wait");

    // The rest of the body: the server answers normally and then closes the connection.
    tls.write_all(rest).await.unwrap();
    tls.flush().await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(GUARD, tls.read_to_end(&mut raw))
        .await
        .expect("connection not closed after the reply")
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    let (_, reply) = raw.split_once("\r\n\r\n").unwrap();
    let reply: Value = serde_json::from_str(reply).unwrap();
    let hash = reply["hash"].as_str().expect("store reply without hash");
    assert!(!hash.is_empty(), "{reply}");

    // Shutdown completes once the request is done.
    let dir = tokio::time::timeout(GUARD, stopping)
        .await
        .expect("shutdown did not finish after the in-flight request")
        .unwrap();

    // The acknowledged store survives a restart on the same data directory.
    let node = TestNode::start_in(dir, |_| {}).await.unwrap();
    let (status, body) = rpc(
        &client,
        &node.rpc_url(),
        "retrieve",
        a.retrieve_params(0, now_ms()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let messages = v["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{body}");
    assert_eq!(messages[0]["hash"].as_str(), Some(hash), "{body}");
    node.stop().await;
}
