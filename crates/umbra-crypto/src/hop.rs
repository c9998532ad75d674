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
//! associated data. [`aead_open`] and [`aead_seal`] expose the bare AEAD step with an explicit
//! key and nonce, for conformance tests and cross-checks.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut as _, KeyInit as _};
use chacha20poly1305::XChaCha20Poly1305;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::hash::blake2b_32;
use crate::keys::X25519KeyPair;
use crate::{CryptoError, Random, X25519PublicKey};

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

/// The key is `Zeroizing`, wiped on drop (checked at compile time below); the cipher instances
/// built from it for each message are wiped too (the AEAD crates' `zeroize` features are on).
impl ZeroizeOnDrop for HopKey {}

const _: () = {
    const fn wipes_on_drop<T: ZeroizeOnDrop>() {}
    wipes_on_drop::<Zeroizing<[u8; 32]>>();
    wipes_on_drop::<Aes256Gcm>();
    wipes_on_drop::<XChaCha20Poly1305>();
};

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
        node_public: &X25519PublicKey,
    ) -> Result<Self, CryptoError> {
        let dh = ephemeral.dh(node_public)?;
        Self::from_dh(enc, &dh, &ephemeral.public(), node_public)
    }

    /// The node side: our X25519 key pair and the client's ephemeral public key.
    pub fn node(
        enc: EncType,
        node: &X25519KeyPair,
        client_ephemeral: &X25519PublicKey,
    ) -> Result<Self, CryptoError> {
        let dh = node.dh(client_ephemeral)?;
        Self::from_dh(enc, &dh, client_ephemeral, &node.public())
    }

    /// An aes-gcm key that is the raw `DH` value, as some external-server test code assumes
    /// (see the spec's note on the raw-key disagreement). Only for server-side fallback.
    pub fn node_raw_aes_gcm(
        node: &X25519KeyPair,
        client_ephemeral: &X25519PublicKey,
    ) -> Result<Self, CryptoError> {
        let dh = node.dh(client_ephemeral)?;
        Ok(Self {
            enc: EncType::AesGcm,
            key: dh,
        })
    }

    fn from_dh(
        enc: EncType,
        dh: &[u8; 32],
        client: &X25519PublicKey,
        node: &X25519PublicKey,
    ) -> Result<Self, CryptoError> {
        let key = match enc {
            EncType::AesGcm => {
                // HMAC accepts keys of any length, so this cannot fail; if it ever did, refuse
                // rather than go on with an all-zero key.
                let mut mac = <Hmac<Sha256>>::new_from_slice(b"LOKI")
                    .map_err(|_| CryptoError::Decrypt("HMAC key setup failed"))?;
                mac.update(dh);
                let mut out = Zeroizing::new([0u8; 32]);
                out.copy_from_slice(&mac.finalize().into_bytes());
                out
            }
            EncType::XChaCha20 => {
                Zeroizing::new(blake2b_32(&[dh, client.as_bytes(), node.as_bytes()]))
            }
        };
        Ok(Self { enc, key })
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
        let tag = seal_detached(self.enc, &self.key, nonce, NO_AAD, body)?;
        tag_out.copy_from_slice(&tag);
        Ok(out)
    }

    /// Decrypts `nonce ‖ ciphertext ‖ tag`; any modification or a wrong key is refused.
    pub fn decrypt(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let nlen = self.enc.nonce_len();
        if blob.len() < nlen + TAG_LEN {
            return Err(CryptoError::Decrypt(
                "onion layer shorter than nonce and tag",
            ));
        }
        let (nonce, rest) = blob.split_at(nlen);
        aead_open(self.enc, &self.key, nonce, NO_AAD, rest)
    }
}

/// Onion layers carry no associated data: [`HopKey`] always passes this.
const NO_AAD: &[u8] = b"";

/// The AEAD primitive under [`HopKey::decrypt`], with the key and nonce given explicitly:
/// opens `ciphertext ‖ tag(16)` under a raw 32-byte key.
///
/// This is exactly the code `HopKey::decrypt` runs (after splitting off the nonce); it is
/// public so that conformance suites (Wycheproof) and cross-checks can drive it with arbitrary
/// keys and nonces. Production code should use [`HopKey`].
///
/// - `nonce` must be exactly [`EncType::nonce_len`] bytes (12 for AES-256-GCM, 24 for
///   XChaCha20-Poly1305); any other length is refused with [`CryptoError::BadLength`], even
///   where the cipher itself could accept it (GCM with a non-96-bit IV): our wire format fixes it.
/// - `aad` is associated data. **Onion layers have none** and `HopKey` always passes an empty
///   slice; the parameter exists only so that the full test suites, most of whose cases carry
///   associated data, exercise this very code.
/// - Fewer than 16 bytes, a wrong key, nonce or AAD, or any modified byte is refused with
///   [`CryptoError::Decrypt`]; nothing of a refused plaintext is returned.
pub fn aead_open(
    enc: EncType,
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    ct_with_tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    check_nonce(enc, nonce)?;
    if ct_with_tag.len() < TAG_LEN {
        return Err(CryptoError::Decrypt("ciphertext shorter than its tag"));
    }
    let (body, tag) = ct_with_tag.split_at(ct_with_tag.len() - TAG_LEN);
    let tag: &[u8; TAG_LEN] = tag
        .try_into()
        .map_err(|_| CryptoError::Decrypt("ciphertext shorter than its tag"))?;
    let mut buf = Zeroizing::new(body.to_vec());
    let ok = match enc {
        EncType::AesGcm => {
            let n: &[u8; 12] = nonce.try_into().map_err(|_| nonce_error(enc, nonce))?;
            Aes256Gcm::new(key.into()).decrypt_inout_detached(
                n.into(),
                aad,
                buf.as_mut_slice().into(),
                tag.into(),
            )
        }
        EncType::XChaCha20 => {
            let n: &[u8; 24] = nonce.try_into().map_err(|_| nonce_error(enc, nonce))?;
            XChaCha20Poly1305::new(key.into()).decrypt_inout_detached(
                n.into(),
                aad,
                buf.as_mut_slice().into(),
                tag.into(),
            )
        }
    };
    ok.map_err(|_| CryptoError::Decrypt("onion layer authentication failed"))?;
    Ok(buf)
}

/// The AEAD primitive under [`HopKey::encrypt`], with the key and nonce given explicitly:
/// returns `ciphertext ‖ tag(16)` (without the nonce).
///
/// Public for the same reason as [`aead_open`], whose rules for `nonce` and `aad` it shares.
/// **Never encrypt twice under one key with the same nonce**: that reveals the XOR of the
/// plaintexts and, for both ciphers, lets anyone forge messages. [`HopKey::encrypt`] draws a
/// fresh random nonce for every message; use it.
pub fn aead_seal(
    enc: EncType,
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
    out.extend_from_slice(plaintext);
    let tag = seal_detached(enc, key, nonce, aad, &mut out)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Encrypts `body` in place and returns the tag.
fn seal_detached(
    enc: EncType,
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    body: &mut [u8],
) -> Result<[u8; TAG_LEN], CryptoError> {
    check_nonce(enc, nonce)?;
    let tag = match enc {
        EncType::AesGcm => {
            let n: &[u8; 12] = nonce.try_into().map_err(|_| nonce_error(enc, nonce))?;
            Aes256Gcm::new(key.into())
                .encrypt_inout_detached(n.into(), aad, body.into())
                .map_err(|_| CryptoError::Encrypt)?
                .into()
        }
        EncType::XChaCha20 => {
            let n: &[u8; 24] = nonce.try_into().map_err(|_| nonce_error(enc, nonce))?;
            XChaCha20Poly1305::new(key.into())
                .encrypt_inout_detached(n.into(), aad, body.into())
                .map_err(|_| CryptoError::Encrypt)?
                .into()
        }
    };
    Ok(tag)
}

fn nonce_error(enc: EncType, nonce: &[u8]) -> CryptoError {
    CryptoError::BadLength {
        what: match enc {
            EncType::AesGcm => "AES-256-GCM nonce",
            EncType::XChaCha20 => "XChaCha20-Poly1305 nonce",
        },
        expected: enc.nonce_len(),
        got: nonce.len(),
    }
}

fn check_nonce(enc: EncType, nonce: &[u8]) -> Result<(), CryptoError> {
    if nonce.len() == enc.nonce_len() {
        Ok(())
    } else {
        Err(nonce_error(enc, nonce))
    }
}
