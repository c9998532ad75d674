//! The node-to-node client: signs each request, verifies each answer, reuses connections.
//!
//! Built on reqwest (rustls with the ring provider; HTTP/2 by ALPN over TLS, keep-alive
//! HTTP/1.1 otherwise). Peers use self-signed certificates that nobody pins, so certificate
//! verification is off: a peer is authenticated by the signature on its answer
//! ([`crate::auth::ResponseAuth`]), checked against the key the membership view lists for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use umbra_crypto::Identity;

use crate::auth::{AUTH_HEADER, RequestAuth, ResponseAuth};
use crate::wire::{Endpoint, MAX_RESPONSE_BYTES};
use umbra_clock::Clock;
use umbra_nodelist::list::NodeEntry;

use crate::ReplicaError;

/// How peers are addressed from their list entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerScheme {
    /// `https://` (production: the node's self-signed TLS listener).
    Https,
    /// `http://` (in-process tests and loopback devnets).
    Http,
}

/// Which advertised port serves the peer endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerPort {
    /// `storage_port`: the client HTTPS listener also serves `/umbra/peer/v1/*` (the default).
    Storage,
    /// `storage_lmq_port`: a separate node-to-node listener.
    Lmq,
}

/// Where to reach a peer's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddressing {
    /// URL scheme.
    pub scheme: PeerScheme,
    /// Port.
    pub port: PeerPort,
}

impl Default for PeerAddressing {
    fn default() -> Self {
        PeerAddressing {
            scheme: PeerScheme::Https,
            port: PeerPort::Storage,
        }
    }
}

impl PeerAddressing {
    /// The base URL of a member (`scheme://ip:port`).
    pub fn base_url(&self, m: &NodeEntry) -> String {
        let scheme = match self.scheme {
            PeerScheme::Https => "https",
            PeerScheme::Http => "http",
        };
        let port = match self.port {
            PeerPort::Storage => m.storage_port,
            PeerPort::Lmq => m.storage_lmq_port,
        };
        format!("{scheme}://{}:{port}", m.public_ip)
    }
}

/// A signed, connection-reusing client for the peer endpoints. Cheap to clone.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    identity: Arc<Identity>,
    clock: Arc<dyn Clock>,
    addressing: PeerAddressing,
    /// The last request timestamp used: each request gets a later one, so that two identical
    /// requests sent within one millisecond are not signed alike (the receiver would refuse
    /// the second as a replay).
    last_ts: Arc<AtomicI64>,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient")
            .field("addressing", &self.addressing)
            .finish_non_exhaustive()
    }
}

/// A raw, verified answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    /// HTTP status.
    pub status: u16,
    /// Body bytes (at most [`MAX_RESPONSE_BYTES`]).
    pub body: Vec<u8>,
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Installs rustls's ring provider as the process default (idempotent). reqwest is built with
/// `rustls-no-provider`, so some provider must be installed before the first client is built.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl PeerClient {
    /// A client signing with `identity`; each call gives up after `timeout`.
    ///
    /// # Errors
    /// [`ReplicaError::HttpClient`] if the HTTP client cannot be built.
    pub fn new(
        identity: Arc<Identity>,
        clock: Arc<dyn Clock>,
        addressing: PeerAddressing,
        timeout: Duration,
    ) -> Result<Self, ReplicaError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(4)
            // Danger on purpose: peers have self-signed certificates; every peer reply is signed with the member's Ed25519 key and checked.
            .tls_danger_accept_invalid_certs(true)
            .tls_danger_accept_invalid_hostnames(true)
            .build()
            .map_err(|e| ReplicaError::HttpClient {
                what: "peer",
                reason: e.to_string(),
            })?;
        Ok(PeerClient {
            http,
            identity,
            clock,
            addressing,
            last_ts: Arc::new(AtomicI64::new(i64::MIN)),
        })
    }

    /// The clock's time, or one millisecond after the previous request's if that is not later.
    fn next_timestamp(&self) -> i64 {
        let now = self.clock.now_ms_i64();
        let prev = self
            .last_ts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                Some(now.max(p.saturating_add(1)))
            })
            .unwrap_or_else(|p| p);
        now.max(prev.saturating_add(1))
    }

    /// The addressing in use.
    pub fn addressing(&self) -> PeerAddressing {
        self.addressing
    }

    /// Sends `body` to `peer`'s `endpoint` and returns the verified status and body. The answer
    /// must be signed by `peer`'s key and bound to this request, whatever its status.
    ///
    /// # Errors
    /// [`ReplicaError::PeerTimeout`], [`ReplicaError::PeerUnreachable`],
    /// [`ReplicaError::BadPeerResponse`] (unsigned, wrongly signed or too large).
    pub async fn call_raw(
        &self,
        peer: &NodeEntry,
        endpoint: Endpoint,
        body: Vec<u8>,
    ) -> Result<RawAnswer, ReplicaError> {
        let name = endpoint.name();
        let url = format!("{}{}", self.addressing.base_url(peer), endpoint.path());
        let auth = RequestAuth::sign(
            &self.identity,
            &peer.pubkey_ed25519,
            self.next_timestamp(),
            "POST",
            endpoint.path(),
            &body,
        );
        let send = self
            .http
            .post(url)
            .header(AUTH_HEADER, auth.to_header())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let mut resp = send.map_err(|e| transport_error(name, &e))?;
        let status = resp.status().as_u16();
        let header = resp
            .headers()
            .get(AUTH_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if resp
            .content_length()
            .is_some_and(|l| l > MAX_RESPONSE_BYTES as u64)
        {
            return Err(bad(name, "answer too large"));
        }
        let mut buf: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(bad(name, "answer too large"));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(transport_error(name, &e)),
            }
        }
        let Some(header) = header else {
            return Err(bad(name, "unsigned answer"));
        };
        let rauth = ResponseAuth::parse_header(&header).map_err(|e| bad(name, e.to_string()))?;
        rauth
            .verify(&peer.pubkey_ed25519, &auth, status, &buf)
            .map_err(|e| bad(name, e.to_string()))?;
        Ok(RawAnswer { status, body: buf })
    }

    /// Sends a JSON request and parses a JSON answer; a non-2xx status is an error.
    ///
    /// # Errors
    /// Everything [`PeerClient::call_raw`] returns, [`ReplicaError::PeerStatus`] and
    /// [`ReplicaError::BadPeerResponse`] for an unparsable answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        peer: &NodeEntry,
        endpoint: Endpoint,
        req: &Req,
    ) -> Result<Resp, ReplicaError> {
        let name = endpoint.name();
        let body = serde_json::to_vec(req).map_err(|e| ReplicaError::Wire {
            what: "peer request",
            reason: e.to_string(),
        })?;
        let answer = self.call_raw(peer, endpoint, body).await?;
        if !(200..300).contains(&answer.status) {
            return Err(ReplicaError::PeerStatus {
                endpoint: name,
                status: answer.status,
                reason: truncate(&String::from_utf8_lossy(&answer.body), 200),
            });
        }
        serde_json::from_slice(&answer.body).map_err(|e| bad(name, e.to_string()))
    }
}

fn bad(endpoint: &'static str, reason: impl Into<String>) -> ReplicaError {
    ReplicaError::BadPeerResponse {
        endpoint,
        reason: reason.into(),
    }
}

fn transport_error(endpoint: &'static str, e: &reqwest::Error) -> ReplicaError {
    if e.is_timeout() {
        ReplicaError::PeerTimeout { endpoint }
    } else {
        ReplicaError::PeerUnreachable {
            endpoint,
            // reqwest's message names the URL, i.e. the peer's IP: keep only the kind.
            reason: if e.is_connect() {
                "connection failed".into()
            } else if e.is_body() || e.is_decode() {
                "reading the answer failed".into()
            } else {
                "request failed".into()
            },
        }
    }
}

pub(crate) fn truncate_reason(s: &str) -> String {
    truncate(s, 200)
}
