//! The links below the onion layer: posting a frame to a guard, fetching the registry's list.
//!
//! [`HttpLink`] is the client's only HTTP code, and its private `exchange` method its only
//! call site: a storage node can be reached only through [`OnionLink::post_onion`], whose URL
//! is always the guard's `/onion_req/v2`. Tests swap in an in-memory network implementing the
//! same traits.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use umbra_report::ErrorExt as _;

use umbra_crypto::Ed25519PublicKey;
use umbra_onion::MAX_REPLY_LEN;

use crate::directory::MAX_LIST_BYTES;
use crate::{ClientError, LinkError};
use umbra_clock::BoxFuture;

/// The node a client connects to: the guard of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Its Ed25519 key (for the caller's bookkeeping; authenticity comes from the onion
    /// layer, not from TLS).
    pub ed25519: Ed25519PublicKey,
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// Its HTTPS port.
    pub port: u16,
}

/// An HTTP answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkReply {
    /// HTTP status.
    pub status: u16,
    /// Body (bounded by the caller's limit).
    pub body: Vec<u8>,
}

/// Carries an onion frame to a guard and brings back its answer.
pub trait OnionLink: Send + Sync + 'static {
    /// POSTs `frame` to `https://<edge>/onion_req/v2` and returns the answer.
    fn post_onion<'a>(
        &'a self,
        edge: &'a Edge,
        frame: Vec<u8>,
    ) -> BoxFuture<'a, Result<LinkReply, LinkError>>;
}

/// Fetches the registry's signed node list (the JSON of `GET /v1/nodelist`).
pub trait RegistrySource: Send + Sync + 'static {
    /// The registry's answer.
    fn fetch_list(&self) -> BoxFuture<'_, Result<LinkReply, LinkError>>;
}

/// Settings of [`HttpLink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Whole-request timeout (an onion request crosses four nodes; 40 s).
    pub request_timeout: Duration,
    /// TCP/TLS connect timeout (10 s).
    pub connect_timeout: Duration,
    /// Idle connections kept per guard (2).
    pub max_idle_per_host: usize,
    /// Local address to connect from (`None`: the system's choice).
    pub local_address: Option<IpAddr>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(40),
            connect_timeout: Duration::from_secs(10),
            max_idle_per_host: 2,
            local_address: None,
        }
    }
}

/// The real links: one reqwest client (one connection pool, keep-alive and HTTP/2) for the
/// guards' `/onion_req/v2` and the registry.
///
/// Guards' certificates are self-signed and not checked: what proves a node's identity is
/// that only it can open its onion layer. No proxy from the environment is used.
#[derive(Debug, Clone)]
pub struct HttpLink {
    client: reqwest::Client,
    registry_url: String,
}

enum Method {
    Get,
    Post(Vec<u8>),
}

impl HttpLink {
    /// A link to the registry at `registry_url` (base URL) and to any guard.
    ///
    /// # Errors
    /// [`ClientError::HttpClient`] if the TLS or HTTP client cannot be set up.
    pub fn new(registry_url: &str, config: &HttpConfig) -> Result<Self, ClientError> {
        // reqwest is built without a default crypto provider; ring is the workspace's. An
        // already-installed provider is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.max_idle_per_host)
            // Danger on purpose: nodes have self-signed certificates (storage-rpc.md §1.1); every reply is authenticated by the onion layer keys instead.
            .tls_danger_accept_invalid_certs(true)
            .tls_danger_accept_invalid_hostnames(true)
            .no_proxy()
            .local_address(config.local_address)
            // What Session desktop sends, so that our requests do not stand out.
            .user_agent("WhatsApp")
            .build()
            .map_err(|e| ClientError::HttpClient(e.report().to_string()))?;
        Ok(Self {
            client,
            registry_url: registry_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The single HTTP call site of the client.
    async fn exchange(
        &self,
        url: String,
        method: Method,
        limit: usize,
    ) -> Result<LinkReply, LinkError> {
        let req = match method {
            Method::Get => self.client.get(url),
            Method::Post(body) => self
                .client
                .post(url)
                .header("Accept-Language", "en-us")
                .body(body),
        };
        let mut resp = req.send().await.map_err(map_err)?;
        let status = resp.status().as_u16();
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
        {
            return Err(LinkError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(map_err)? {
            if body.len() + chunk.len() > limit {
                return Err(LinkError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(LinkReply { status, body })
    }
}

fn map_err(e: reqwest::Error) -> LinkError {
    // The URL holds the guard's address: keep it out of error texts (they reach logs).
    let e = e.without_url();
    if e.is_timeout() {
        LinkError::Timeout
    } else if e.is_connect() {
        LinkError::Connect(e.report().to_string())
    } else {
        LinkError::Other(e.report().to_string())
    }
}

impl OnionLink for HttpLink {
    fn post_onion<'a>(
        &'a self,
        edge: &'a Edge,
        frame: Vec<u8>,
    ) -> BoxFuture<'a, Result<LinkReply, LinkError>> {
        let url = format!("https://{}:{}/onion_req/v2", edge.ip, edge.port);
        Box::pin(self.exchange(url, Method::Post(frame), MAX_REPLY_LEN))
    }
}

impl RegistrySource for HttpLink {
    fn fetch_list(&self) -> BoxFuture<'_, Result<LinkReply, LinkError>> {
        let url = format!("{}/v1/nodelist", self.registry_url);
        Box::pin(self.exchange(url, Method::Get, MAX_LIST_BYTES))
    }
}
