//! The node side: peel one layer and say what to do next; answer, or fail, under that layer's
//! key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_crypto::{Ed25519PublicKey, Random, X25519PublicKey};

use crate::bencode;
use crate::frame::{self, MAX_FRAME_LEN, hex32};
use crate::padding::padded_len;
use crate::umbra::{HopMessage, HopMessageKind, UMBRA_KEY, UmbraOptions};
use crate::{OnionError, Protocol};

/// The highest `hop_no` a node accepts (Session's `MAX_ONION_HOPS`): a loop stops after at most
/// this many nodes, and a client may start above 1 to hide its guard's position.
pub const MAX_HOPS: usize = 15;

/// An answer to send back: HTTP status (or OMQ status part) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status.
    pub status: u16,
    /// The body, sent as is.
    pub body: Vec<u8>,
}

/// The result of peeling one layer: what this node must do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Peeled {
    /// Relay: send [`Forward::to_frame`] (or [`Forward::to_bencoded`]) to the node whose Ed25519
    /// key is [`Forward::next_node`], then pass its `[status, body]` back unchanged.
    Forward(Forward),
    /// This node is the destination: execute the storage RPC in
    /// [`DestinationRequest::body`] and answer with [`DestinationRequest::reply`].
    Destination(DestinationRequest),
    /// This node is the exit: POST [`ExitRequest::body`] to [`ExitRequest::url`] and answer
    /// with [`ExitRequest::reply`].
    Exit(ExitRequest),
}

/// The key of the layer a node peeled, and how the client asked to be answered.
///
/// Every answer a node authors for the client — a destination's result, a wrapped exit reply,
/// an error — goes through here, so that it is sealed under this layer's key when the client
/// or the protocol asks for it.
pub struct Replier {
    key: HopKey,
    hop_no: u8,
    umbra: Option<UmbraOptions>,
    base64: bool,
}

impl std::fmt::Debug for Replier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replier")
            .field("enc_type", &self.key.enc_type())
            .field("hop_no", &self.hop_no)
            .field("umbra", &self.umbra)
            .finish_non_exhaustive()
    }
}

impl Replier {
    /// This node's position on the path (1 for the edge, unless the client started higher).
    pub fn hop_no(&self) -> u8 {
        self.hop_no
    }

    /// The Umbra options the client sent, if any (`None` for Session clients).
    pub fn umbra(&self) -> Option<UmbraOptions> {
        self.umbra
    }

    /// The cipher of this layer (replies use the same one).
    pub fn enc_type(&self) -> EncType {
        self.key.enc_type()
    }

    fn pad(&self) -> bool {
        self.umbra.is_some_and(|u| u.pad)
    }

    /// The answer to send for `err`, raised by this node after (or while) handling this layer:
    ///
    /// - the client asked for hop errors (`umbra.herr`): a [`HopMessage`] of kind `Error`
    ///   sealed under this layer's key, with the error's status outside;
    /// - else, for errors Session wraps ([`OnionError::is_wrapped`]): `200` with
    ///   base64(`Enc({"status": …, "body": "…"})`), as Session nodes do;
    /// - else the plain-text status and body.
    pub fn error(&self, err: &OnionError, rng: &mut dyn Random) -> Response {
        if self.umbra.is_some_and(|u| u.hop_errors) {
            let msg = HopMessage {
                kind: HopMessageKind::Error,
                status: err.status(),
                body: err.body().into_bytes(),
            };
            Response {
                status: err.status(),
                body: msg.seal(&self.key, self.pad(), rng),
            }
        } else if err.is_wrapped() {
            self.status_json(err.status(), Value::String(err.body()), rng)
        } else {
            err.plain_response()
        }
    }

    /// Session's wrapped answer: `200` and `Enc({"status": status, "body": body})`, base64
    /// unless the client said `"base64": false`; padded to a size class when asked.
    fn status_json(&self, status: u16, body: Value, rng: &mut dyn Random) -> Response {
        let mut pt = json!({"status": status, "body": body})
            .to_string()
            .into_bytes();
        if self.pad() {
            let ovh = self.key.enc_type().overhead();
            let wire = |raw: usize| {
                if self.base64 {
                    raw.div_ceil(3) * 4
                } else {
                    raw
                }
            };
            let target = padded_len(wire(pt.len() + ovh));
            let raw = if self.base64 { target / 4 * 3 } else { target };
            pt.resize(raw - ovh, b' ');
        }
        // Encryption fails only for inputs of gigabytes; an empty body is then the safe answer.
        let sealed = self.key.encrypt(&pt, rng).unwrap_or_default();
        let body = if self.base64 {
            B64.encode(sealed).into_bytes()
        } else {
            sealed
        };
        Response { status: 200, body }
    }
}

/// Peeling failed. Carries the error and, when this node got as far as deriving the layer key,
/// the [`Replier`] to answer with.
#[derive(Debug)]
pub struct PeelError {
    error: OnionError,
    replier: Option<Replier>,
}

impl PeelError {
    fn plain(error: OnionError) -> Self {
        Self {
            error,
            replier: None,
        }
    }

    /// What went wrong.
    pub fn error(&self) -> &OnionError {
        &self.error
    }

    /// The layer's replier, if the key could be derived.
    pub fn replier(&self) -> Option<&Replier> {
        self.replier.as_ref()
    }

    /// The answer to send: see [`Replier::error`]; plain text when there is no replier.
    pub fn response(&self, rng: &mut dyn Random) -> Response {
        match &self.replier {
            Some(r) => r.error(&self.error, rng),
            None => self.error.plain_response(),
        }
    }
}

impl std::fmt::Display for PeelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for PeelError {}

/// Relay this layer's inner ciphertext to the next node.
#[derive(Debug)]
pub struct Forward {
    next_node: Ed25519PublicKey,
    ciphertext: Vec<u8>,
    ephemeral_key: X25519PublicKey,
    enc_type: EncType,
    hop_no: u8,
    umbra: Option<UmbraOptions>,
    replier: Replier,
}

impl Forward {
    /// The Ed25519 public key of the next node. Forward only to a registered node; an unknown
    /// key is answered with [`OnionError::NextNodeNotFound`] through [`Self::fail`].
    pub fn next_node(&self) -> &Ed25519PublicKey {
        &self.next_node
    }

    /// The `hop_no` the next node will see.
    pub fn next_hop_no(&self) -> u8 {
        self.hop_no
    }

    /// The inner ciphertext for the next node.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The next node's frame, in the same format the edge receives from a client:
    /// `u32 ‖ ciphertext ‖ {"ephemeral_key", "enc_type", "hop_no"[, "umbra"]}`. This is what
    /// Umbra nodes send each other (it goes straight into the next node's [`peel`]).
    pub fn to_frame(&self) -> Vec<u8> {
        let mut j = Map::new();
        j.insert(
            "ephemeral_key".into(),
            hex::encode(self.ephemeral_key).into(),
        );
        j.insert("enc_type".into(), self.enc_type.as_str().into());
        j.insert("hop_no".into(), self.hop_no.into());
        if let Some(u) = self.umbra {
            j.insert(UMBRA_KEY.into(), u.to_json());
        }
        frame::encode(&self.ciphertext, Value::Object(j).to_string().as_bytes())
    }

    /// The same in Session's node-to-node form (the one bencoded dict part of OMQ
    /// `onion_request`, keys sorted: `data`, `enc_type`, `ephemeral_key` (32 raw bytes),
    /// `hop_no`, and Umbra's `umbra` (JSON text) when the client sent it). Read by
    /// [`peel_bencoded`].
    pub fn to_bencoded(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ciphertext.len() + 128);
        out.push(b'd');
        bencode::put_bytes(&mut out, b"data");
        bencode::put_bytes(&mut out, &self.ciphertext);
        bencode::put_bytes(&mut out, b"enc_type");
        bencode::put_bytes(&mut out, self.enc_type.as_str().as_bytes());
        bencode::put_bytes(&mut out, b"ephemeral_key");
        bencode::put_bytes(&mut out, self.ephemeral_key.as_bytes());
        bencode::put_bytes(&mut out, b"hop_no");
        bencode::put_int(&mut out, i64::from(self.hop_no));
        if let Some(u) = self.umbra {
            bencode::put_bytes(&mut out, UMBRA_KEY.as_bytes());
            bencode::put_bytes(&mut out, u.to_json().to_string().as_bytes());
        }
        out.push(b'e');
        out
    }

    /// The answer when forwarding failed ([`OnionError::NextNodeNotFound`],
    /// [`OnionError::NextNodeUnreachable`], [`OnionError::RequestTimeout`],
    /// [`OnionError::InvalidSnodeResponse`]). When forwarding worked, pass the next node's
    /// answer back unchanged instead.
    pub fn fail(&self, err: &OnionError, rng: &mut dyn Random) -> Response {
        self.replier.error(err, rng)
    }

    /// This layer's replier.
    pub fn replier(&self) -> &Replier {
        &self.replier
    }
}

/// The body a destination answers with.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    /// A plain-text result (most storage RPC errors).
    Text(String),
    /// A JSON result: embedded when the client asked for `"json": true`, otherwise serialized
    /// into a string (Session's double encoding).
    Json(Value),
}

/// This node is the destination of a storage RPC.
#[derive(Debug)]
pub struct DestinationRequest {
    body: Vec<u8>,
    embed_json: bool,
    replier: Replier,
}

impl DestinationRequest {
    /// The storage RPC request, `{"method": …, "params": {…}}` JSON (not yet validated).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Whether JSON results are embedded in the reply rather than double-encoded.
    pub fn embed_json(&self) -> bool {
        self.embed_json
    }

    /// The answer carrying the storage RPC's result: HTTP `200` with
    /// `Enc({"status": status, "body": body})` (base64 unless the client said
    /// `"base64": false`), under this layer's key and cipher; padded to a size class when an
    /// Umbra client asked for it.
    pub fn reply(&self, status: u16, body: ReplyBody, rng: &mut dyn Random) -> Response {
        let body = match body {
            ReplyBody::Text(s) => Value::String(s),
            ReplyBody::Json(v) if self.embed_json => v,
            ReplyBody::Json(v) => Value::String(v.to_string()),
        };
        self.replier.status_json(status, body, rng)
    }

    /// The answer when the destination cannot run the request, e.g.
    /// [`OnionError::DestinationNotReady`].
    pub fn fail(&self, err: &OnionError, rng: &mut dyn Random) -> Response {
        self.replier.error(err, rng)
    }

    /// This layer's replier.
    pub fn replier(&self) -> &Replier {
        &self.replier
    }
}

/// This node is the exit to an external server.
#[derive(Debug)]
pub struct ExitRequest {
    protocol: Protocol,
    host: String,
    port: u16,
    target: String,
    body: Vec<u8>,
    replier: Replier,
}

impl ExitRequest {
    /// `http` or `https`.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Host name or IP address, as the client gave it (checked to be a plausible host).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Port (443 when the client gave none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Path on the server: `/oxen/…` or `/loki/…`, ending in `/lsrpc`, without a query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// `protocol://host[:port]target`, the port omitted when it is the protocol's default.
    ///
    /// Which hosts an exit may reach (e.g. no private addresses) is the node's policy, not
    /// this crate's.
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.protocol.default_port() {
            format!("{}://{host}{}", self.protocol.as_str(), self.target)
        } else {
            format!(
                "{}://{host}:{}{}",
                self.protocol.as_str(),
                self.port,
                self.target
            )
        }
    }

    /// The body to POST: this layer's entire decrypted frame (`u32 ‖ L_S ‖ control JSON`), as
    /// Session does, without Umbra's trailing padding.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The answer carrying the server's reply. For Session clients (and Umbra clients that did
    /// not ask for padding) it is the server's status and body unchanged. When padding was
    /// asked for, the server's answer is wrapped in a padded [`HopMessage`] of kind `Relayed`
    /// under this layer's key, sent with status `200`.
    pub fn reply(
        &self,
        server_status: u16,
        server_body: Vec<u8>,
        rng: &mut dyn Random,
    ) -> Response {
        if self.replier.pad() {
            let msg = HopMessage {
                kind: HopMessageKind::Relayed,
                status: server_status,
                body: server_body,
            };
            Response {
                status: 200,
                body: msg.seal(&self.replier.key, true, rng),
            }
        } else {
            Response {
                status: server_status,
                body: server_body,
            }
        }
    }

    /// The answer when the server could not be reached ([`OnionError::ServerUnreachable`],
    /// [`OnionError::ServerTimeout`]).
    pub fn fail(&self, err: &OnionError, rng: &mut dyn Random) -> Response {
        self.replier.error(err, rng)
    }

    /// This layer's replier.
    pub fn replier(&self) -> &Replier {
        &self.replier
    }
}

/// What a node reads from the outside of a layer, whichever form it came in.
struct Incoming<'a> {
    ciphertext: &'a [u8],
    ephemeral_key: X25519PublicKey,
    enc_type: EncType,
    hop_no: i64,
    umbra: Option<UmbraOptions>,
}

/// Peels one layer of an onion request received as a frame: the body a client POSTs to
/// `/onion_req/v2`, or a frame another Umbra node made with [`Forward::to_frame`].
///
/// Never panics; frames above [`MAX_FRAME_LEN`] are refused before anything is parsed.
pub fn peel(node: &X25519KeyPair, frame: &[u8]) -> Result<Peeled, PeelError> {
    if frame.len() > MAX_FRAME_LEN {
        return Err(PeelError::plain(OnionError::too_large(frame.len())));
    }
    let parsed = frame::parse(frame).map_err(|e| malformed(e.detail()))?;
    let json = &parsed.json;
    let ephemeral_key = json
        .get("ephemeral_key")
        .and_then(hex32)
        .map(X25519PublicKey::from_bytes)
        .ok_or_else(|| malformed("missing or invalid ephemeral_key".into()))?;
    let enc_type = match json.get("enc_type") {
        None => EncType::AesGcm,
        Some(v) => v
            .as_str()
            .and_then(|s| EncType::parse(Some(s)).ok())
            .ok_or_else(|| malformed("unknown enc_type".into()))?,
    };
    let hop_no = match json.get("hop_no") {
        None => 0,
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_u64().map(|_| i64::MAX))
            .ok_or_else(|| malformed("hop_no is not an integer".into()))?,
    };
    peel_incoming(
        node,
        Incoming {
            ciphertext: parsed.payload,
            ephemeral_key,
            enc_type,
            hop_no,
            umbra: UmbraOptions::from_json(json),
        },
    )
}

/// Peels one layer received in Session's node-to-node form (a bencoded dict with `data`,
/// `enc_type`, `ephemeral_key` (32 raw bytes) and `hop_no`), as [`Forward::to_bencoded`]
/// writes it. Errors are [`OnionError::InvalidInternal`] until the layer key is known.
pub fn peel_bencoded(node: &X25519KeyPair, message: &[u8]) -> Result<Peeled, PeelError> {
    if message.len() > MAX_FRAME_LEN {
        return Err(PeelError::plain(OnionError::too_large(message.len())));
    }
    let internal = |d: &str| PeelError::plain(OnionError::InvalidInternal(d.into()));
    let bencode::Value::Dict(items) = bencode::decode(message).map_err(internal)? else {
        return Err(internal("expected a dict"));
    };
    let get = |k: &[u8]| items.iter().find(|(key, _)| *key == k).map(|(_, v)| v);
    let Some(bencode::Value::Bytes(ciphertext)) = get(b"data") else {
        return Err(internal("missing data"));
    };
    let ephemeral_key = match get(b"ephemeral_key") {
        Some(bencode::Value::Bytes(k)) => X25519PublicKey::from_slice(k)
            .map_err(|_| internal("ephemeral_key must be 32 bytes"))?,
        _ => return Err(internal("missing ephemeral_key")),
    };
    let enc_type = match get(b"enc_type") {
        None => EncType::AesGcm,
        Some(bencode::Value::Bytes(s)) => std::str::from_utf8(s)
            .ok()
            .and_then(|s| EncType::parse(Some(s)).ok())
            .ok_or_else(|| internal("unknown enc_type"))?,
        Some(_) => return Err(internal("enc_type must be a string")),
    };
    let hop_no = match get(b"hop_no") {
        None => 0,
        Some(bencode::Value::Int(n)) => *n,
        Some(_) => return Err(internal("hop_no must be an integer")),
    };
    let umbra = match get(UMBRA_KEY.as_bytes()) {
        Some(bencode::Value::Bytes(j)) => match serde_json::from_slice(j) {
            Ok(v @ Value::Object(_)) => {
                let mut m = Map::new();
                m.insert(UMBRA_KEY.into(), v);
                UmbraOptions::from_json(&m)
            }
            _ => None,
        },
        _ => None,
    };
    peel_incoming(
        node,
        Incoming {
            ciphertext,
            ephemeral_key,
            enc_type,
            hop_no,
            umbra,
        },
    )
}

fn malformed(detail: String) -> PeelError {
    PeelError::plain(OnionError::MalformedFrame(detail))
}

fn peel_incoming(node: &X25519KeyPair, inc: Incoming<'_>) -> Result<Peeled, PeelError> {
    let key = HopKey::node(inc.enc_type, node, &inc.ephemeral_key)
        .map_err(|_| PeelError::plain(OnionError::InvalidCiphertext))?;
    // hop_no below 1 counts as 1; anything above MAX_HOPS is refused below.
    let hop = inc.hop_no.max(1);
    let mut replier = Replier {
        key,
        hop_no: u8::try_from(hop.min(i64::from(u8::MAX))).unwrap_or(u8::MAX),
        umbra: inc.umbra,
        base64: true,
    };
    let fail = |error: OnionError, replier: Replier| PeelError {
        error,
        replier: Some(replier),
    };
    if hop > MAX_HOPS as i64 {
        return Err(fail(OnionError::HopLimitExceeded, replier));
    }
    let mut plaintext = match replier.key.decrypt(inc.ciphertext) {
        Ok(p) => p,
        Err(_) => return Err(fail(OnionError::InvalidCiphertext, replier)),
    };
    let (payload_len, trimmed_len, json) = match frame::parse(&plaintext) {
        Ok(p) => (p.payload.len(), p.trimmed_len, p.json),
        Err(_) => return Err(fail(OnionError::InvalidJson, replier)),
    };
    // The client's options for this node, sealed in its own layer, count as much as the ones
    // its predecessor passed on (which that predecessor could have stripped).
    let own_umbra = UmbraOptions::from_json(&json);
    replier.umbra = UmbraOptions::merge(replier.umbra, own_umbra);
    // Take the decrypted buffer out and reuse it (no copy, no byte-by-byte zeroing on drop):
    // nothing in a layer is a secret of this node, and the payload is forwarded or handed to
    // the caller anyway.
    let mut buf = std::mem::take(&mut *plaintext);
    let take_payload = |mut buf: Vec<u8>| {
        buf.copy_within(4..4 + payload_len, 0);
        buf.truncate(payload_len);
        buf
    };

    if json.contains_key("headers") {
        let (Some(embed_json), Some(base64)) =
            (flag(&json, "json", false), flag(&json, "base64", true))
        else {
            return Err(fail(OnionError::InvalidJson, replier));
        };
        replier.base64 = base64;
        return Ok(Peeled::Destination(DestinationRequest {
            body: take_payload(buf),
            embed_json,
            replier,
        }));
    }

    if let Some(host) = json.get("host") {
        let exit = (|| {
            let host = host.as_str()?.to_owned();
            let target = json.get("target")?.as_str()?.to_owned();
            let port = match json.get("port") {
                None => None,
                Some(p) => Some(u16::try_from(p.as_u64()?).ok()?),
            };
            let protocol = match json.get("protocol") {
                None => "https",
                Some(p) => p.as_str()?,
            };
            Some((host, target, port, protocol.to_owned()))
        })();
        let Some((host, target, port, protocol)) = exit else {
            return Err(fail(OnionError::InvalidJson, replier));
        };
        let protocol = match Protocol::parse(&protocol) {
            Some(p) if target_allowed(&target) && host_allowed(&host) => p,
            _ => return Err(fail(OnionError::InvalidUrl, replier)),
        };
        buf.truncate(trimmed_len);
        return Ok(Peeled::Exit(ExitRequest {
            protocol,
            host,
            port: port.unwrap_or(443),
            target,
            body: buf,
            replier,
        }));
    }

    let next = json
        .get("destination")
        .and_then(hex32)
        .map(Ed25519PublicKey::from_bytes);
    let eph = json
        .get("ephemeral_key")
        .and_then(hex32)
        .map(X25519PublicKey::from_bytes);
    let enc = match json.get("enc_type") {
        None => Some(EncType::AesGcm),
        Some(v) => v.as_str().and_then(|s| EncType::parse(Some(s)).ok()),
    };
    let (Some(next_node), Some(ephemeral_key), Some(enc_type)) = (next, eph, enc) else {
        return Err(fail(OnionError::InvalidJson, replier));
    };
    Ok(Peeled::Forward(Forward {
        next_node,
        ciphertext: take_payload(buf),
        ephemeral_key,
        enc_type,
        hop_no: replier.hop_no.saturating_add(1),
        umbra: own_umbra,
        replier,
    }))
}

/// A boolean control flag: `Some(default)` when absent, `None` when not a boolean.
fn flag(json: &Map<String, Value>, key: &str, default: bool) -> Option<bool> {
    match json.get(key) {
        None => Some(default),
        Some(v) => v.as_bool(),
    }
}

/// Session's rule for exit targets: `/loki/…` or `/oxen/…`, ending in `/lsrpc`, no `?`.
pub(crate) fn target_allowed(target: &str) -> bool {
    (target.starts_with("/loki/") || target.starts_with("/oxen/"))
        && target.ends_with("/lsrpc")
        && !target.contains('?')
}

/// Umbra's extra rule for exit hosts: a DNS name or an IP literal, nothing that could change
/// the URL's meaning (`/`, `@`, `?`, `#`, whitespace, …).
pub(crate) fn host_allowed(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
}
