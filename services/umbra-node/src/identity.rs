//! The node's long-term identity (Ed25519 key and the X25519 key derived from it) and its
//! self-signed TLS certificate, both created in the data directory at first start (files
//! readable only by the owner) and reused afterwards.
//!
//! Files: `node_ed25519.key` (the raw 32-byte seed, mode 0600), `node.pub` (the public keys in
//! hex, for operators), `tls_cert.pem` and `tls_key.pem` (mode 0600).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use umbra_crypto::{Identity, OsRandom, Random};
use zeroize::Zeroizing;

use crate::NodeError;

/// File name of the node's Ed25519 seed.
pub const NODE_KEY_FILE: &str = "node_ed25519.key";
/// File name of the public-key summary written next to it.
pub const NODE_PUB_FILE: &str = "node.pub";
/// File name of the TLS certificate.
pub const TLS_CERT_FILE: &str = "tls_cert.pem";
/// File name of the TLS private key.
pub const TLS_KEY_FILE: &str = "tls_key.pem";

/// Creates the data directory (mode 0700 on creation) if needed.
pub fn ensure_data_dir(dir: &Path) -> Result<(), NodeError> {
    let err = |source| NodeError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir).map_err(err)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename) with the given mode.
fn write_private(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent()
        && let Ok(d) = std::fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Warns when a secret file is readable by group or others.
fn check_private_mode(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(md) = std::fs::metadata(path)
            && md.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %path.display(),
                "secret file is readable by group or others; run chmod 600 on it"
            );
        }
    }
}

/// Loads the node identity from `data_dir`, creating it from 32 random bytes on first start.
pub fn load_or_create_identity(data_dir: &Path) -> Result<Identity, NodeError> {
    ensure_data_dir(data_dir)?;
    let path = data_dir.join(NODE_KEY_FILE);
    let key_err = |reason: String| NodeError::NodeKey {
        path: path.clone(),
        reason,
    };
    if path.exists() {
        check_private_mode(&path);
        let bytes = Zeroizing::new(std::fs::read(&path).map_err(|e| key_err(e.to_string()))?);
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| key_err(format!("expected 32 bytes, found {}", bytes.len())))?,
        );
        return Ok(Identity::from_seed(&seed));
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    OsRandom.fill(&mut seed[..]);
    write_private(&path, &seed[..], 0o600).map_err(|e| key_err(e.to_string()))?;
    let identity = Identity::from_seed(&seed);
    let summary = format!(
        "ed25519 {}\nx25519 {}\n",
        hex::encode(identity.ed25519_public()),
        hex::encode(identity.x25519_public())
    );
    let pub_path = data_dir.join(NODE_PUB_FILE);
    write_private(&pub_path, summary.as_bytes(), 0o644).map_err(|e| NodeError::NodeKey {
        path: pub_path.clone(),
        reason: e.to_string(),
    })?;
    tracing::info!("created a new node identity in {}", data_dir.display());
    Ok(identity)
}

/// The TLS certificate chain and key of the client HTTPS listener.
pub struct TlsMaterial {
    /// The certificate (self-signed, a chain of one).
    pub certs: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("certs", &self.certs.len())
            .finish_non_exhaustive()
    }
}

fn tls_err(what: &'static str) -> impl Fn(String) -> NodeError {
    move |reason| NodeError::Tls { what, reason }
}

/// Loads the TLS certificate and key from `data_dir`, generating a self-signed pair (as
/// Session nodes do) at first start.
pub fn load_or_create_tls(data_dir: &Path) -> Result<TlsMaterial, NodeError> {
    ensure_data_dir(data_dir)?;
    let cert_path: PathBuf = data_dir.join(TLS_CERT_FILE);
    let key_path: PathBuf = data_dir.join(TLS_KEY_FILE);
    if !cert_path.exists() || !key_path.exists() {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .map_err(|e| tls_err("generating the self-signed certificate")(e.to_string()))?;
        let key_pem = Zeroizing::new(generated.signing_key.serialize_pem());
        write_private(&key_path, key_pem.as_bytes(), 0o600)
            .map_err(|e| tls_err("writing the TLS key")(e.to_string()))?;
        write_private(&cert_path, generated.cert.pem().as_bytes(), 0o644)
            .map_err(|e| tls_err("writing the TLS certificate")(e.to_string()))?;
        tracing::info!(
            "generated a self-signed TLS certificate in {}",
            data_dir.display()
        );
    }
    check_private_mode(&key_path);
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| tls_err("reading the TLS certificate")(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err("parsing the TLS certificate")(e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_err("parsing the TLS certificate")(
            "no certificate in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| tls_err("reading the TLS key")(e.to_string()))?;
    Ok(TlsMaterial { certs, key })
}

/// The ring crypto provider every rustls object of this crate uses.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs the ring provider as the process default if none is installed yet (reqwest, built
/// without a provider, needs one).
pub fn install_default_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A rustls server configuration (HTTP/2 and HTTP/1.1) for the client listener.
pub fn server_tls_config(tls: TlsMaterial) -> Result<Arc<rustls::ServerConfig>, NodeError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("choosing TLS versions")(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(tls.certs, tls.key)
        .map_err(|e| tls_err("loading the certificate and key")(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_identity(dir.path()).unwrap();
        let b = load_or_create_identity(dir.path()).unwrap();
        assert_eq!(a.ed25519_public(), b.ed25519_public());
        assert_eq!(a.x25519_public(), b.x25519_public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(NODE_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let summary = std::fs::read_to_string(dir.path().join(NODE_PUB_FILE)).unwrap();
        assert!(summary.contains(&hex::encode(a.ed25519_public())));
    }

    #[test]
    fn corrupt_key_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NODE_KEY_FILE), b"short").unwrap();
        let e = load_or_create_identity(dir.path()).unwrap_err().to_string();
        assert!(e.contains(NODE_KEY_FILE) && e.contains("32 bytes"), "{e}");
    }

    #[test]
    fn tls_material_is_created_once_and_usable() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_tls(dir.path()).unwrap();
        let b = load_or_create_tls(dir.path()).unwrap();
        assert_eq!(a.certs, b.certs);
        server_tls_config(a).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TLS_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

/// A TLS client configuration (ring, TLS 1.2 and 1.3, no ALPN) that accepts any server
/// certificate while still checking the handshake signature against it.
///
/// Storage nodes present self-signed certificates that nobody pins (`storage-rpc.md` §1.1):
/// what authenticates a node is its onion-layer key or its signed peer-channel replies, never
/// TLS. Used by the onion relay, the test clients and the load generator.
pub fn danger_any_cert_client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = crypto_provider();
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
            .with_no_client_auth(),
    )
}

/// Accepts any server certificate, verifying only that the peer holds its key.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
