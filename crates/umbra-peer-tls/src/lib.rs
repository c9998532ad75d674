#![doc = include_str!("../README.md")]

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use umbra_crypto::{Ed25519PublicKey, Identity};

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

/// What can go wrong while making the peer TLS objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerTlsError {
    /// A certificate, key or configuration could not be made.
    #[error("peer TLS ({what}): {reason}")]
    Tls {
        /// What was being made.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
}

fn tls_error(what: &'static str, e: impl std::fmt::Display) -> PeerTlsError {
    PeerTlsError::Tls {
        what,
        reason: e.to_string(),
    }
}

/// The ring provider every peer TLS object uses (client and server alike).
pub fn provider() -> Arc<CryptoProvider> {
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
        // Never the key.
        f.debug_struct("NodeCertificate").finish_non_exhaustive()
    }
}

impl NodeCertificate {
    /// The certificate of `identity`'s Ed25519 key (made in memory: nothing is stored, the
    /// node key is the identity).
    ///
    /// # Errors
    /// [`PeerTlsError::Tls`] if the certificate cannot be made.
    pub fn new(identity: &Identity) -> Result<Self, PeerTlsError> {
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

    /// The certificate chain (this one certificate) and its private key, as rustls takes them
    /// for a server or a client certificate.
    pub fn chain(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
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

/// The error of a verifier that refuses a certificate's key.
pub fn refused_certificate() -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)
}

/// The handshake-signature checks every peer verifier (server's and client's) shares: TLS 1.3
/// only, Ed25519 only (node keys are Ed25519), verified with the provider's algorithms against
/// the certificate's key.
#[derive(Debug, Clone)]
pub struct HandshakeSignatures {
    provider: Arc<CryptoProvider>,
}

impl HandshakeSignatures {
    /// The checks with `provider`'s algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        HandshakeSignatures { provider }
    }

    /// A TLS 1.2 signature: always refused (TLS 1.3 only).
    ///
    /// # Errors
    /// Always [`rustls::PeerIncompatible::Tls12NotOffered`].
    pub fn tls12(&self) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    /// Checks a TLS 1.3 handshake signature against `cert`'s key.
    ///
    /// # Errors
    /// rustls's, if the signature does not verify.
    pub fn tls13(
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

    /// The only scheme offered: Ed25519.
    pub fn schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// rustls, for [`handshake_signature_methods!`] in other crates.
#[doc(hidden)]
pub use rustls as __rustls;

/// The three handshake-signature methods of a rustls certificate verifier (server's or
/// client's), delegated to the verifier's [`HandshakeSignatures`] field named `$field`: every
/// peer verifier checks handshakes the same way, so each says only which certificates it takes.
#[macro_export]
macro_rules! handshake_signature_methods {
    ($field:ident) => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &$crate::__rustls::pki_types::CertificateDer<'_>,
            _dss: &$crate::__rustls::DigitallySignedStruct,
        ) -> ::std::result::Result<
            $crate::__rustls::client::danger::HandshakeSignatureValid,
            $crate::__rustls::Error,
        > {
            self.$field.tls12()
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &$crate::__rustls::pki_types::CertificateDer<'_>,
            dss: &$crate::__rustls::DigitallySignedStruct,
        ) -> ::std::result::Result<
            $crate::__rustls::client::danger::HandshakeSignatureValid,
            $crate::__rustls::Error,
        > {
            self.$field.tls13(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> ::std::vec::Vec<$crate::__rustls::SignatureScheme> {
            self.$field.schemes()
        }
    };
}

/// Accepts a server only if its certificate certifies the Ed25519 key the client expects (the
/// dialed node's key in the list); the handshake signature is verified as usual.
#[derive(Debug)]
pub struct ExpectedServer {
    key: Ed25519PublicKey,
    signatures: HandshakeSignatures,
}

impl ExpectedServer {
    /// A verifier that accepts only the holder of `key`.
    pub fn new(key: Ed25519PublicKey, provider: Arc<CryptoProvider>) -> Self {
        ExpectedServer {
            key,
            signatures: HandshakeSignatures::new(provider),
        }
    }
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
            _ => Err(refused_certificate()),
        }
    }

    handshake_signature_methods!(signatures);
}

/// The client side towards the node whose list key is `server`: TLS 1.3, ALPN `h2`, `own` as
/// client certificate (`None`: no client certificate, e.g. a health probe).
///
/// # Errors
/// [`PeerTlsError::Tls`] if rustls refuses the configuration.
pub fn client_config(
    own: Option<&NodeCertificate>,
    server: Ed25519PublicKey,
) -> Result<Arc<rustls::ClientConfig>, PeerTlsError> {
    let provider = provider();
    let verifier = ExpectedServer::new(server, provider.clone());
    // `dangerous()` is rustls's door to a custom verifier; this one is stricter than a CA's
    // (one exact key), not weaker.
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
    // No resumption: every connection proves the server's key by a full handshake.
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}

/// A gRPC channel over TLS to `addr`, accepting only the server holding `server`'s key; it
/// connects lazily, on the first call. Its calls have no timeout of their own: `configure`
/// sets the endpoint's timeouts and limits.
///
/// # Errors
/// [`PeerTlsError::Tls`] if the TLS configuration cannot be made.
pub fn channel(
    own: Option<&NodeCertificate>,
    server: Ed25519PublicKey,
    addr: SocketAddr,
    configure: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
) -> Result<tonic::transport::Channel, PeerTlsError> {
    channel_with(client_config(own, server)?, addr, configure)
}

/// A gRPC channel over TLS to `addr` with the client configuration `config` (normally
/// [`client_config`]'s; tests give their own to play a bad peer). It connects lazily.
///
/// # Errors
/// [`PeerTlsError::Tls`] if the address is not a valid URI.
pub fn channel_with(
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    configure: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
) -> Result<tonic::transport::Channel, PeerTlsError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(seed: u8) -> Identity {
        Identity::from_seed(&[seed; 32])
    }

    /// A TLS 1.3 server configuration presenting `cert`, without client certificates.
    fn server_config(cert: &NodeCertificate) -> Arc<rustls::ServerConfig> {
        let (chain, key) = cert.chain();
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(cfg)
    }

    /// A whole handshake in memory: `server` presents its certificate, the client expects
    /// `expected`'s key. `Ok` when the client accepted the server.
    async fn handshake(server: &Identity, expected: Ed25519PublicKey) -> std::io::Result<()> {
        let acceptor =
            tokio_rustls::TlsAcceptor::from(server_config(&NodeCertificate::new(server).unwrap()));
        let connector = tokio_rustls::TlsConnector::from(client_config(None, expected).unwrap());
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let name = ServerName::try_from(PEER_SERVER_NAME).unwrap().to_owned();
        let (client, _server) = tokio::join!(
            connector.connect(name, client_io),
            acceptor.accept(server_io)
        );
        client.map(drop)
    }

    #[test]
    fn the_certificate_certifies_the_node_key_and_nothing_else() {
        let id = node(7);
        let cert = NodeCertificate::new(&id).unwrap();
        assert_eq!(
            certificate_key(cert.certificate()),
            Some(id.ed25519_public())
        );
        // The same key makes a certificate of the same key; another key, another.
        let again = NodeCertificate::new(&id).unwrap();
        assert_eq!(
            certificate_key(again.certificate()),
            Some(id.ed25519_public())
        );
        let other = NodeCertificate::new(&node(8)).unwrap();
        assert_ne!(
            certificate_key(other.certificate()),
            Some(id.ed25519_public())
        );
        // Not a certificate: no key.
        assert_eq!(
            certificate_key(&CertificateDer::from(vec![0x30, 0x00])),
            None
        );
        // The configuration loads the PKCS#8 key made from the seed as client certificate.
        client_config(Some(&cert), id.ed25519_public()).unwrap();
        assert!(
            !format!("{cert:?}").contains("key:"),
            "the key is never shown"
        );
    }

    #[test]
    fn the_verifier_accepts_only_the_expected_key() {
        let (id, other) = (node(1), node(2));
        let verifier = ExpectedServer::new(id.ed25519_public(), provider());
        let name = ServerName::try_from(PEER_SERVER_NAME).unwrap();
        let at = UnixTime::since_unix_epoch(std::time::Duration::ZERO);
        let verify = |cert: &NodeCertificate| {
            verifier.verify_server_cert(cert.certificate(), &[], &name, &[], at)
        };
        assert!(verify(&NodeCertificate::new(&id).unwrap()).is_ok());
        assert_eq!(
            verify(&NodeCertificate::new(&other).unwrap()).unwrap_err(),
            refused_certificate()
        );
        assert_eq!(
            verifier.supported_verify_schemes(),
            [SignatureScheme::ED25519]
        );
    }

    #[tokio::test]
    async fn a_handshake_succeeds_only_with_the_servers_own_key() {
        let (id, other) = (node(3), node(4));
        handshake(&id, id.ed25519_public())
            .await
            .expect("the expected server is accepted");
        let e = handshake(&other, id.ed25519_public())
            .await
            .expect_err("a server with another key is refused");
        assert!(e.to_string().contains("certificate"), "{e}");
    }
}
