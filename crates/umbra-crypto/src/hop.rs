//! Onion-request hop encryption.
//!
//! Each onion layer is encrypted from a fresh client ephemeral X25519 key `A` to a node's (or
//! server's) X25519 key `B`; both sides compute `DH = X25519(a, B) = X25519(b, A)` and derive
//! a 32-byte symmetric key:
//!
//! | [`EncType`] | key | blob |
//! |---|---|---|
//! | `aes-gcm` (alias `gcm`, the default) | `HMAC-SHA256(key = "LOKI", DH)` | `iv(12) ‖ ciphertext ‖ tag(16)` |
//! | `xchacha20` (alias `xchacha20-poly1305`) | `BLAKE2b-32(DH ‖ A ‖ B)` | `nonce(24) ‖ ciphertext ‖ tag(16)` |
//!
//! The reply travels back under the same key with a new random nonce. Neither variant uses
//! associated data.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut as _, KeyInit as _};
use chacha20poly1305::XChaCha20Poly1305;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::hash::blake2b_32;
use crate::keys::X25519KeyPair;
use crate::{CryptoError, Random};

const TAG_LEN: usize = 16;

/// The symmetric cipher of one onion layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncType {
    /// AES-256-GCM with a 12-byte IV and the HMAC("LOKI") key.
    AesGcm,
    /// XChaCha20-Poly1305 with a 24-byte nonce and the BLAKE2b key.
    XChaCha20,
}

impl EncType {
    /// Parses an `enc_type` value; an absent value means `aes-gcm`.
    pub fn parse(value: Option<&str>) -> Result<Self, CryptoError> {
        match value {
            None | Some("aes-gcm") | Some("gcm") => Ok(Self::AesGcm),
            Some("xchacha20") | Some("xchacha20-poly1305") => Ok(Self::XChaCha20),
            Some(other) => Err(CryptoError::UnknownEncType(
                other.chars().take(32).collect(),
            )),
        }
    }

    /// The canonical `enc_type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AesGcm => "aes-gcm",
            Self::XChaCha20 => "xchacha20",
        }
    }

    /// Length of the nonce prefix.
    pub fn nonce_len(self) -> usize {
        match self {
            Self::AesGcm => 12,
            Self::XChaCha20 => 24,
        }
    }

    /// Bytes a blob adds to its plaintext (nonce and tag).
    pub fn overhead(self) -> usize {
        self.nonce_len() + TAG_LEN
    }
}

/// The symmetric key of one onion layer, known to the client and to that layer's node.
pub struct HopKey {
    enc: EncType,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for HopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HopKey")
            .field("enc", &self.enc)
            .finish_non_exhaustive()
    }
}

impl HopKey {
    /// The client side: our ephemeral key pair and the node's X25519 public key.
    pub fn client(
        enc: EncType,
        ephemeral: &X25519KeyPair,
        node_public: &[u8; 32],
    ) -> Result<Self, CryptoError> {
        let dh = ephemeral.dh(node_public)?;
        Ok(Self::from_dh(enc, &dh, &ephemeral.public(), node_public))
    }

    /// The node side: our X25519 key pair and the client's ephemeral public key.
    pub fn node(
        enc: EncType,
        node: &X25519KeyPair,
        client_ephemeral: &[u8; 32],
    ) -> Result<Self, CryptoError> {
        let dh = node.dh(client_ephemeral)?;
        Ok(Self::from_dh(enc, &dh, client_ephemeral, &node.public()))
    }

    /// An aes-gcm key that is the raw `DH` value, as some external-server test code assumes
    /// (see the spec's note on the raw-key disagreement). Only for server-side fallback.
    pub fn node_raw_aes_gcm(
        node: &X25519KeyPair,
        client_ephemeral: &[u8; 32],
    ) -> Result<Self, CryptoError> {
        let dh = node.dh(client_ephemeral)?;
        Ok(Self {
            enc: EncType::AesGcm,
            key: dh,
        })
    }

    fn from_dh(enc: EncType, dh: &[u8; 32], client: &[u8; 32], node: &[u8; 32]) -> Self {
        let key = match enc {
            EncType::AesGcm => {
                let mut out = Zeroizing::new([0u8; 32]);
                // HMAC accepts keys of any length; "LOKI" cannot fail.
                if let Ok(mut mac) = <Hmac<Sha256>>::new_from_slice(b"LOKI") {
                    mac.update(dh);
                    out.copy_from_slice(&mac.finalize().into_bytes());
                }
                out
            }
            EncType::XChaCha20 => Zeroizing::new(blake2b_32(&[dh, client, node])),
        };
        Self { enc, key }
    }

    /// The cipher of this layer.
    pub fn enc_type(&self) -> EncType {
        self.enc
    }

    /// Encrypts with a fresh random nonce: `nonce ‖ ciphertext ‖ tag`.
    pub fn encrypt(&self, plaintext: &[u8], rng: &mut dyn Random) -> Result<Vec<u8>, CryptoError> {
        let nlen = self.enc.nonce_len();
        let mut out = vec![0u8; nlen + plaintext.len() + TAG_LEN];
        let (nonce, rest) = out.split_at_mut(nlen);
        rng.fill(nonce);
        let (body, tag_out) = rest.split_at_mut(plaintext.len());
        body.copy_from_slice(plaintext);
        let key: &[u8; 32] = &self.key;
        let tag: [u8; TAG_LEN] = match self.enc {
            EncType::AesGcm => {
                let n: [u8; 12] = nonce.try_into().map_err(|_| CryptoError::Encrypt)?;
                Aes256Gcm::new(key.into())
                    .encrypt_inout_detached((&n).into(), b"", body.into())
                    .map_err(|_| CryptoError::Encrypt)?
                    .into()
            }
            EncType::XChaCha20 => {
                let n: [u8; 24] = nonce.try_into().map_err(|_| CryptoError::Encrypt)?;
                XChaCha20Poly1305::new(key.into())
                    .encrypt_inout_detached((&n).into(), b"", body.into())
                    .map_err(|_| CryptoError::Encrypt)?
                    .into()
            }
        };
        tag_out.copy_from_slice(&tag);
        Ok(out)
    }

    /// Decrypts `nonce ‖ ciphertext ‖ tag`; any modification or a wrong key is refused.
    pub fn decrypt(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        const SHORT: CryptoError = CryptoError::Decrypt("onion layer shorter than nonce and tag");
        let nlen = self.enc.nonce_len();
        if blob.len() < nlen + TAG_LEN {
            return Err(SHORT);
        }
        let (nonce, rest) = blob.split_at(nlen);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| SHORT)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let key: &[u8; 32] = &self.key;
        let ok = match self.enc {
            EncType::AesGcm => {
                let n: [u8; 12] = nonce.try_into().map_err(|_| SHORT)?;
                Aes256Gcm::new(key.into()).decrypt_inout_detached(
                    (&n).into(),
                    b"",
                    buf.as_mut_slice().into(),
                    (&tag).into(),
                )
            }
            EncType::XChaCha20 => {
                let n: [u8; 24] = nonce.try_into().map_err(|_| SHORT)?;
                XChaCha20Poly1305::new(key.into()).decrypt_inout_detached(
                    (&n).into(),
                    b"",
                    buf.as_mut_slice().into(),
                    (&tag).into(),
                )
            }
        };
        ok.map_err(|_| CryptoError::Decrypt("onion layer authentication failed"))?;
        Ok(buf)
    }
}
