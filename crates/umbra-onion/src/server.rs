//! The external-server side of the last layer (what a community or file server does with the
//! body an exit POSTs to `/oxen/v4/lsrpc`): open the request, seal the v4 reply.

use umbra_crypto::Random;
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;

use crate::OnionError;
use crate::frame::{self, MAX_FRAME_LEN, hex32};
use crate::v4::{V4Error, V4Request, V4Response};

/// A decrypted request at an external server, holding the key to answer under.
pub struct ServerRequest {
    plaintext: Vec<u8>,
    key: HopKey,
}

impl std::fmt::Debug for ServerRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerRequest")
            .field("len", &self.plaintext.len())
            .field("enc_type", &self.key.enc_type())
            .finish_non_exhaustive()
    }
}

/// Opens the body an exit POSTed: `u32 ‖ L_S ‖ control JSON`, decrypting `L_S` with the
/// server's X25519 key and the JSON's `ephemeral_key`/`enc_type` (default `aes-gcm`).
///
/// For `aes-gcm`, the HMAC("LOKI") key is tried first and the raw DH second (spec
/// `identity-and-crypto.md` §5.1); the reply uses whichever worked. Failures are answered with
/// a plain `400` (see [`OnionError::plain_response`]).
pub fn open_server_request(
    server: &X25519KeyPair,
    frame: &[u8],
) -> Result<ServerRequest, OnionError> {
    if frame.len() > MAX_FRAME_LEN {
        return Err(OnionError::too_large(frame.len()));
    }
    let parsed = frame::parse(frame).map_err(|e| OnionError::MalformedFrame(e.detail()))?;
    let eph = parsed
        .json
        .get("ephemeral_key")
        .and_then(hex32)
        .map(umbra_crypto::X25519PublicKey::from_bytes)
        .ok_or_else(|| OnionError::MalformedFrame("missing or invalid ephemeral_key".into()))?;
    let enc = match parsed.json.get("enc_type") {
        None => EncType::AesGcm,
        Some(v) => v
            .as_str()
            .and_then(|s| EncType::parse(Some(s)).ok())
            .ok_or_else(|| OnionError::MalformedFrame("unknown enc_type".into()))?,
    };
    let mut candidates = vec![HopKey::node(enc, server, &eph)];
    if enc == EncType::AesGcm {
        candidates.push(HopKey::node_raw_aes_gcm(server, &eph));
    }
    for key in candidates.into_iter().flatten() {
        if let Ok(mut pt) = key.decrypt(parsed.payload) {
            return Ok(ServerRequest {
                plaintext: std::mem::take(&mut *pt),
                key,
            });
        }
    }
    Err(OnionError::InvalidCiphertext)
}

impl ServerRequest {
    /// The decrypted v4 request bytes.
    pub fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }

    /// The decoded v4 request. On error a server answers [`Self::reply`] with status 400 and
    /// body [`INVALID_V4_REQUEST`](crate::v4::INVALID_V4_REQUEST).
    pub fn v4(&self) -> Result<V4Request, V4Error> {
        V4Request::decode(&self.plaintext)
    }

    /// The HTTP 200 body answering with `response`: `Enc(v4 response)`, raw (not base64), under
    /// the key the request was decrypted with.
    pub fn reply(&self, response: &V4Response, rng: &mut dyn Random) -> Vec<u8> {
        // Encryption fails only for inputs of gigabytes; an empty body is then the safe answer.
        self.key
            .encrypt(&response.encode(), rng)
            .unwrap_or_default()
    }
}
