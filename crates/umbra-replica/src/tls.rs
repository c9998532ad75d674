//! TLS on the peer port: every node presents a self-signed certificate whose public key is its
//! own Ed25519 node key (the key of the signed node list), so the list itself says which
//! certificate each node may present. TLS 1.3 only, ALPN `h2`, ring provider.
//!
//! - **Server authentication** ([`client_config`], from `umbra-peer-tls` and re-exported here):
//!   a client dialing node N accepts the server only if the certificate's key is N's key from
//!   the list entry it dials ([`ExpectedServer`]); the handshake signature is still verified
//!   with the provider's algorithms (Ed25519 only), so only the holder of N's key completes the
//!   handshake. That client side lives in its own crate so that the CLI can probe a node's
//!   health without linking the node's store.
//! - **Client certificates** ([`server_config`]): offered, not mandatory at the TLS layer. A
//!   client that presents one must present a key of the current verified list
//!   ([`ListedClient`]), else the handshake fails; the peer service itself (not
//!   `grpc.health.v1`) refuses a connection without one before any gRPC work
//!   ([`RequireNodeCert`]), and takes the certificate's key as the caller of every call on the
//!   connection ([`PeerConnectInfo`]), checking it against the current list on each call. So a
//!   stranger costs the node one handshake, never a decoded message, while an operator can
//!   still ask the health service over TLS without a node key.
//!
//! This is the channel's whole authentication (messages carry no signature since version 2 of
//! the peer API): the handshake proves both node keys (rustls verifies each side's
//! `CertificateVerify` signature against the certificate's key), and TLS 1.3's record
//! protection binds every later byte of the connection to it — no tampering, reordering or
//! replay inside a connection, and no replay of a recorded connection (fresh secrets each
//! handshake).
//! - **Accepting** ([`incoming`]): at most [`MAX_HANDSHAKES`] handshakes at once (more
//!   connections are dropped at once) and each within [`HANDSHAKE_TIMEOUT`], so a slow or
//!   silent client cannot hold a slot for long; connections from addresses that are no listed
//!   node's hold at most [`MAX_STRANGER_HANDSHAKES`] slots together and
//!   [`MAX_HANDSHAKES_PER_STRANGER`] each, so hosts stalling their handshakes cannot lock the
//!   list's nodes out; a refused or failed handshake is counted
//!   (`umbra_replica_refused_handshake_total`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::DistinguishedName;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use umbra_crypto::Ed25519PublicKey;
pub use umbra_peer_tls::{
    ExpectedServer, NodeCertificate, PEER_SERVER_NAME, PeerTlsError, certificate_key, channel,
    channel_with, client_config,
};
use umbra_peer_tls::{HandshakeSignatures, provider, refused_certificate};

use crate::ReplicaError;
use crate::metrics::{ReplicaMetrics, add};
use crate::view::ViewHandle;

/// Longest time a client may take for its TLS handshake on the peer port.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most TLS handshakes in progress at once on the peer port; connections beyond it are closed.
pub const MAX_HANDSHAKES: usize = 64;
/// Of [`MAX_HANDSHAKES`], most held at once by connections from addresses that are no listed
/// node's (a stranger, or a node whose address the list does not know yet): the rest stay
/// free for the list's nodes.
pub const MAX_STRANGER_HANDSHAKES: usize = MAX_HANDSHAKES / 4;
/// Most handshakes at once from one address that is no listed node's.
pub const MAX_HANDSHAKES_PER_STRANGER: usize = 4;

/// Accepts a client certificate only if it certifies a key of the current verified node list
/// (any listed node: which calls it may make is the peer service's decision).
#[derive(Debug)]
pub struct ListedClient {
    view: ViewHandle,
    signatures: HandshakeSignatures,
}

impl ClientCertVerifier for ListedClient {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // The health service stays reachable without a node key; the peer service refuses
        // such a connection ([`RequireNodeCert`]).
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match certificate_key(end_entity) {
            Some(k) if self.view.get().node(&k).is_some() => Ok(ClientCertVerified::assertion()),
            _ => Err(refused_certificate()),
        }
    }

    umbra_peer_tls::handshake_signature_methods!(signatures);
}

fn tls_error(what: &'static str, e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError::Tls {
        what,
        reason: e.to_string(),
    }
}

/// The server side of the peer port: TLS 1.3, ALPN `h2`, this node's certificate, client
/// certificates of listed nodes.
///
/// # Errors
/// [`ReplicaError::Tls`] if rustls refuses the configuration.
pub fn server_config(
    cert: &NodeCertificate,
    view: ViewHandle,
) -> Result<Arc<rustls::ServerConfig>, ReplicaError> {
    let provider = provider();
    let verifier = ListedClient {
        view,
        signatures: HandshakeSignatures::new(provider.clone()),
    };
    let (chain, key) = cert.chain();
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_error("choosing TLS versions", e))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain, key)
        .map_err(|e| tls_error("loading the node certificate", e))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    // No session resumption: every connection proves both keys by a full handshake (peers keep
    // their connection, so resuming would save next to nothing).
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    Ok(Arc::new(cfg))
}

/// What the peer port knows of a connection: the address and, if the client presented a listed
/// node's certificate, its key. Every request's extensions carry it.
#[derive(Debug, Clone, Copy)]
pub struct PeerConnectInfo {
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// The client's node key, from its verified certificate.
    pub node_key: Option<Ed25519PublicKey>,
}

impl PeerConnectInfo {
    /// The connection information of a request served on the peer port.
    pub fn of<T>(req: &tonic::Request<T>) -> Option<&PeerConnectInfo> {
        req.extensions().get::<PeerConnectInfo>()
    }
}

/// An accepted TLS connection of the peer port.
#[derive(Debug)]
pub struct PeerTlsStream {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    info: PeerConnectInfo,
}

impl tonic::transport::server::Connected for PeerTlsStream {
    type ConnectInfo = PeerConnectInfo;

    fn connect_info(&self) -> PeerConnectInfo {
        self.info
    }
}

impl AsyncRead for PeerTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The handshake slots of the peer port (see [`incoming`]).
#[derive(Debug)]
struct HandshakeSlots {
    all: Arc<Semaphore>,
    strangers: Arc<Semaphore>,
    per_stranger: Mutex<HashMap<IpAddr, usize>>,
}

/// A handshake's hold on its slots, given back when dropped.
struct HandshakeSlot {
    _all: OwnedSemaphorePermit,
    _stranger: Option<StrangerSlot>,
}

/// The stranger's share of a [`HandshakeSlot`].
struct StrangerSlot {
    _permit: OwnedSemaphorePermit,
    ip: IpAddr,
    slots: Arc<HandshakeSlots>,
}

impl Drop for StrangerSlot {
    fn drop(&mut self) {
        let mut per = self
            .slots
            .per_stranger
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = per.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&self.ip);
            }
        }
    }
}

impl HandshakeSlots {
    fn new() -> Arc<Self> {
        Arc::new(HandshakeSlots {
            all: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
            strangers: Arc::new(Semaphore::new(MAX_STRANGER_HANDSHAKES)),
            per_stranger: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a handshake from `ip` (`listed`: the address of a node of the list), or
    /// `None` when its share is taken.
    fn take(self: &Arc<Self>, ip: IpAddr, listed: bool) -> Option<HandshakeSlot> {
        let all = self.all.clone().try_acquire_owned().ok()?;
        if listed {
            return Some(HandshakeSlot {
                _all: all,
                _stranger: None,
            });
        }
        let mut per = self
            .per_stranger
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if per.get(&ip).copied().unwrap_or(0) >= MAX_HANDSHAKES_PER_STRANGER {
            return None;
        }
        let permit = self.strangers.clone().try_acquire_owned().ok()?;
        *per.entry(ip).or_insert(0) += 1;
        Some(HandshakeSlot {
            _all: all,
            _stranger: Some(StrangerSlot {
                _permit: permit,
                ip,
                slots: self.clone(),
            }),
        })
    }
}

/// Whether `ip` is the address of a node of `view`'s list.
fn is_listed(view: &ViewHandle, ip: IpAddr) -> bool {
    let IpAddr::V4(ip) = ip.to_canonical() else {
        return false;
    };
    view.get().nodes().values().any(|n| n.public_ip == ip)
}

/// The TLS connections of `listener`, for tonic's `serve_with_incoming`: handshakes run in
/// their own tasks, at most [`MAX_HANDSHAKES`] at once (of which connections from addresses
/// that are no node's of `view` hold at most [`MAX_STRANGER_HANDSHAKES`], and
/// [`MAX_HANDSHAKES_PER_STRANGER`] per address), each within [`HANDSHAKE_TIMEOUT`]; refusals
/// and failures are counted in `metrics` and never end the stream. The accepting task ends
/// when the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    view: ViewHandle,
    metrics: Arc<ReplicaMetrics>,
) -> impl Stream<Item = Result<PeerTlsStream, std::io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel(MAX_HANDSHAKES);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let slots = HandshakeSlots::new();
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = tokio::select! {
                () = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::debug!("peer port: accept failed: {e}");
                        // E.g. out of file descriptors: do not spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let ip = remote.ip();
            let Some(slot) = slots.take(ip, is_listed(&view, ip)) else {
                add(&metrics.refused_handshake, 1);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx, metrics) = (acceptor.clone(), tx.clone(), metrics.clone());
            tokio::spawn(async move {
                let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                drop(slot);
                let Ok(Ok(inner)) = accepted else {
                    add(&metrics.refused_handshake, 1);
                    tracing::debug!("peer port: TLS handshake failed or timed out");
                    return;
                };
                let node_key = inner
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(certificate_key);
                let info = PeerConnectInfo {
                    remote_addr: Some(remote),
                    node_key,
                };
                let _ = tx.send(Ok(PeerTlsStream { inner, info })).await;
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Refuses a peer-service call on a connection without a listed node's certificate, before
/// the request is decoded (`UNAUTHENTICATED`, counted).
#[derive(Debug, Clone)]
pub struct RequireNodeCert {
    pub(crate) metrics: Arc<ReplicaMetrics>,
}

impl tonic::service::Interceptor for RequireNodeCert {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if PeerConnectInfo::of(&req).and_then(|i| i.node_key).is_some() {
            return Ok(req);
        }
        add(&self.metrics.requests_refused, 1);
        add(&self.metrics.refused_unauthenticated, 1);
        Err(tonic::Status::unauthenticated(
            "the peer service needs a client certificate of a listed node",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_configuration_loads_the_node_certificate() {
        // The certificate itself is tested in umbra-peer-tls; here, that rustls takes it as
        // the server's, beside the listed-client verifier.
        let id = umbra_crypto::Identity::from_seed(&[7; 32]);
        let cert = NodeCertificate::new(&id).expect("certificate");
        let view = ViewHandle::new(umbra_nodelist::SwarmView::empty(id.ed25519_public()));
        server_config(&cert, view).expect("server config");
        client_config(Some(&cert), id.ed25519_public()).expect("client config");
    }
}
