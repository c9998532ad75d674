//! TLS on the peer port: every node presents a self-signed certificate whose public key is its
//! own Ed25519 node key (the key of the signed node list), so the list itself says which
//! certificate each node may present. TLS 1.3 only, ALPN `h2`, ring provider.
//!
//! - **Server authentication** ([`client_config`]): a client dialing node N accepts the server
//!   only if the certificate's key is N's key from the list entry it dials
//!   ([`ExpectedServer`]); the handshake signature is still verified with the provider's
//!   algorithms (Ed25519 only), so only the holder of N's key completes the handshake.
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
//!   silent client cannot hold a slot; a failed handshake is counted
//!   (`umbra_replica_refused_handshake_total`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use umbra_crypto::{Ed25519PublicKey, Identity};

use crate::ReplicaError;
use crate::metrics::{ReplicaMetrics, add};
use crate::view::ViewHandle;

/// Longest time a client may take for its TLS handshake on the peer port.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most TLS handshakes in progress at once on the peer port; connections beyond it are closed.
pub const MAX_HANDSHAKES: usize = 64;
/// The name a client sends as SNI (nodes are known by key, not by name; never checked).
pub const PEER_SERVER_NAME: &str = "umbra-peer";

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of an Ed25519 private key in PKCS#8 v1 (RFC 8410); the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn tls_error(what: &'static str, e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError::Tls {
        what,
        reason: e.to_string(),
    }
}

/// The ring provider every peer TLS object uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's TLS identity: a self-signed certificate of its Ed25519 node key, and that key.
#[derive(Clone)]
pub struct NodeCertificate {
    cert: CertificateDer<'static>,
    key: Arc<PrivatePkcs8KeyDer<'static>>,
}

impl std::fmt::Debug for NodeCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCertificate").finish_non_exhaustive()
    }
}

impl NodeCertificate {
    /// The certificate of `identity`'s Ed25519 key (made in memory: nothing is stored, the
    /// node key is the identity).
    ///
    /// # Errors
    /// [`ReplicaError::Tls`] if the certificate cannot be made.
    pub fn new(identity: &Identity) -> Result<Self, ReplicaError> {
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&ED25519_PKCS8_PREFIX);
        der.extend_from_slice(identity.seed());
        let key = PrivatePkcs8KeyDer::from(der);
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)
            .map_err(|e| tls_error("loading the node key", e))?;
        let params = rcgen::CertificateParams::new(vec![PEER_SERVER_NAME.to_owned()])
            .map_err(|e| tls_error("the certificate's parameters", e))?;
        let cert = params
            .self_signed(&pair)
            .map_err(|e| tls_error("signing the node certificate", e))?;
        Ok(NodeCertificate {
            cert: cert.der().clone(),
            key: Arc::new(key),
        })
    }

    /// The certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    fn chain(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (
            vec![self.cert.clone()],
            PrivateKeyDer::Pkcs8(self.key.as_ref().clone_key()),
        )
    }
}

/// The Ed25519 key a certificate certifies, if it is an Ed25519 certificate.
pub fn certificate_key(cert: &CertificateDer<'_>) -> Option<Ed25519PublicKey> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let key = spki.as_ref().strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    let key: [u8; 32] = key.try_into().ok()?;
    Some(Ed25519PublicKey::from_bytes(key))
}

fn bad_certificate() -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)
}

/// The handshake-signature methods both verifiers share: TLS 1.3 only, Ed25519 only (node keys
/// are Ed25519), verified with the provider's algorithms against the certificate's key.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::Tls12NotOffered,
            ))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }
    };
}

/// Accepts a server only if its certificate certifies the Ed25519 key the client expects (the
/// dialed node's key in the list); the handshake signature is verified as usual.
#[derive(Debug)]
pub struct ExpectedServer {
    key: Ed25519PublicKey,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ExpectedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The key is the identity: names, dates and issuers of a self-signed certificate say
        // nothing more.
        match certificate_key(end_entity) {
            Some(k) if k == self.key => Ok(ServerCertVerified::assertion()),
            _ => Err(bad_certificate()),
        }
    }

    handshake_signatures!();
}

/// Accepts a client certificate only if it certifies a key of the current verified node list
/// (any listed node: which calls it may make is the peer service's decision).
#[derive(Debug)]
pub struct ListedClient {
    view: ViewHandle,
    provider: Arc<CryptoProvider>,
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
            _ => Err(bad_certificate()),
        }
    }

    handshake_signatures!();
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
        provider: provider.clone(),
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

/// The client side towards the node whose list key is `server`: TLS 1.3, ALPN `h2`, this node's
/// certificate as client certificate (`None`: no client certificate, e.g. a health probe).
///
/// # Errors
/// [`ReplicaError::Tls`] if rustls refuses the configuration.
pub fn client_config(
    own: Option<&NodeCertificate>,
    server: Ed25519PublicKey,
) -> Result<Arc<rustls::ClientConfig>, ReplicaError> {
    let provider = provider();
    let verifier = ExpectedServer {
        key: server,
        provider: provider.clone(),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_error("choosing TLS versions", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut cfg = match own {
        Some(c) => {
            let (chain, key) = c.chain();
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error("loading the node certificate", e))?
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}

/// A gRPC channel over TLS to `addr`, accepting only the server holding `server`'s key; it
/// connects lazily, on the first call. Its calls have no timeout of their own.
///
/// # Errors
/// [`ReplicaError::Tls`] if the TLS configuration cannot be made.
pub fn channel(
    own: Option<&NodeCertificate>,
    server: Ed25519PublicKey,
    addr: SocketAddr,
    configure: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
) -> Result<tonic::transport::Channel, ReplicaError> {
    channel_with(client_config(own, server)?, addr, configure)
}

/// A gRPC channel over TLS to `addr` with the client configuration `config` (normally
/// [`client_config`]'s; tests give their own to play a bad peer). It connects lazily.
///
/// # Errors
/// [`ReplicaError::Tls`] if the address is not a valid URI.
pub fn channel_with(
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    configure: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
) -> Result<tonic::transport::Channel, ReplicaError> {
    let connector = tokio_rustls::TlsConnector::from(config);
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| tls_error("the peer address", e))?;
    let connect = tower::service_fn(move |_: tonic::transport::Uri| {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(PEER_SERVER_NAME)
                .map_err(std::io::Error::other)?
                .to_owned();
            let tls = connector.connect(name, tcp).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    Ok(configure(endpoint).connect_with_connector_lazy(connect))
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

/// The TLS connections of `listener`, for tonic's `serve_with_incoming`: handshakes run in
/// their own tasks, at most [`MAX_HANDSHAKES`] at once, each within [`HANDSHAKE_TIMEOUT`];
/// failures are counted in `metrics` and never end the stream. The accepting task ends when the
/// stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    metrics: Arc<ReplicaMetrics>,
) -> impl Stream<Item = Result<PeerTlsStream, std::io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel(MAX_HANDSHAKES);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
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
            let Ok(slot) = slots.clone().try_acquire_owned() else {
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
    fn the_certificate_certifies_the_node_key_and_nothing_else() {
        let id = Identity::from_seed(&[7; 32]);
        let cert = NodeCertificate::new(&id).expect("certificate");
        assert_eq!(
            certificate_key(cert.certificate()),
            Some(id.ed25519_public())
        );
        // The same key makes a certificate of the same key; another key, another.
        let again = NodeCertificate::new(&id).expect("certificate");
        assert_eq!(
            certificate_key(again.certificate()),
            Some(id.ed25519_public())
        );
        let other = NodeCertificate::new(&Identity::from_seed(&[8; 32])).expect("certificate");
        assert_ne!(
            certificate_key(other.certificate()),
            Some(id.ed25519_public())
        );
        // Not a certificate: no key.
        assert_eq!(
            certificate_key(&CertificateDer::from(vec![0x30, 0x00])),
            None
        );
        // Both configurations accept it (rustls loads the PKCS#8 key made from the seed).
        let view = ViewHandle::new(umbra_nodelist::SwarmView::empty(id.ed25519_public()));
        server_config(&cert, view).expect("server config");
        client_config(Some(&cert), id.ed25519_public()).expect("client config");
    }
}
