//! The client side: build an onion request, and open the reply.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};
use umbra_crypto::Random;
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::{X25519KeyPair, ed25519_pk_to_x25519};
use umbra_crypto::{Ed25519PublicKey, X25519PublicKey};

use crate::frame::{self, MAX_FRAME_LEN};
use crate::node::{MAX_HOPS, host_allowed, target_allowed};
use crate::padding::padded_len;
use crate::umbra::{HopMessage, HopMessageKind, UMBRA_KEY, UmbraOptions};
use crate::{BuildError, Protocol, ReplyError, V4Request, V4Response};

/// The largest reply body a client opens: 16 MiB. A storage node returns at most
/// 7 800 000 bytes of messages per `retrieve`; JSON escaping, base64 and padding
/// (10 MiB class) stay below this.
pub const MAX_REPLY_LEN: usize = 16 * 1024 * 1024;

/// One node on a path: its Ed25519 key (how nodes address each other) and its X25519 key (what
/// the layer is encrypted to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hop {
    /// Ed25519 public key.
    pub ed25519: Ed25519PublicKey,
    /// X25519 public key.
    pub x25519: X25519PublicKey,
}

impl Hop {
    /// A hop whose X25519 key is derived from its Ed25519 key (as Session nodes' are).
    pub fn from_ed25519(ed25519: Ed25519PublicKey) -> Result<Self, BuildError> {
        let x25519 = ed25519_pk_to_x25519(&ed25519).map_err(|_| BuildError::WeakKey)?;
        Ok(Self { ed25519, x25519 })
    }
}

/// An external server (community server, file server, …) reached through an exit node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Host name or IP address.
    pub host: String,
    /// Port; `None` for the protocol's default.
    pub port: Option<u16>,
    /// `http` or `https`.
    pub protocol: Protocol,
    /// Path of the onion endpoint, normally `/oxen/v4/lsrpc`.
    pub target: String,
    /// The server's X25519 public key.
    pub x25519: X25519PublicKey,
}

impl Server {
    /// The v4 endpoint of `host` over HTTPS on the default port.
    pub fn https(host: impl Into<String>, x25519: X25519PublicKey) -> Self {
        Self {
            host: host.into(),
            port: None,
            protocol: Protocol::Https,
            target: "/oxen/v4/lsrpc".into(),
            x25519,
        }
    }
}

/// Where an onion request goes after its path.
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    /// A storage node, which executes a storage RPC. The last path node forwards to it like any
    /// other hop, so the request crosses `path.len() + 1` nodes.
    Node {
        /// The storage node.
        node: Hop,
        /// The storage RPC request, `{"method": …, "params": {…}}` JSON.
        request: &'a [u8],
    },
    /// An external server, reached through the last path node as exit (v4 payload).
    Server {
        /// The server.
        server: &'a Server,
        /// The request.
        request: &'a V4Request,
    },
}

/// How to build onion requests. The default is exactly what libsession sends: `xchacha20`
/// on every layer, no Umbra extensions, `hop_no` not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBuilder {
    enc_type: EncType,
    umbra: Option<UmbraOptions>,
    start_hop_no: u8,
    embed_json: bool,
    base64: bool,
}

impl Default for RequestBuilder {
    fn default() -> Self {
        Self {
            enc_type: EncType::XChaCha20,
            umbra: None,
            start_hop_no: 0,
            embed_json: false,
            base64: true,
        }
    }
}

/// A built request: the body to POST to the edge, and what the client keeps to open the reply.
#[derive(Debug)]
pub struct OnionRequest {
    /// The frame for the edge (`/onion_req/v2`).
    pub body: Vec<u8>,
    /// Keys and expectations for the reply.
    pub reply: PendingReply,
}

impl RequestBuilder {
    /// Session-compatible requests (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Umbra requests: padding and hop-attributable errors on (see the crate docs).
    pub fn umbra() -> Self {
        Self {
            umbra: Some(UmbraOptions::all()),
            ..Self::default()
        }
    }

    /// The cipher of every layer.
    pub fn enc_type(mut self, enc_type: EncType) -> Self {
        self.enc_type = enc_type;
        self
    }

    /// Umbra options (`None`: behave exactly like a Session client).
    pub fn umbra_options(mut self, umbra: Option<UmbraOptions>) -> Self {
        self.umbra = umbra;
        self
    }

    /// The `hop_no` the edge sees (0, the default, is not sent and counts as 1). A client may
    /// start higher to hide the guard's position.
    pub fn start_hop_no(mut self, hop_no: u8) -> Self {
        self.start_hop_no = hop_no;
        self
    }

    /// Ask a storage destination to embed JSON results (`"json": true`).
    pub fn embed_json(mut self, embed: bool) -> Self {
        self.embed_json = embed;
        self
    }

    /// Ask a storage destination for a raw rather than base64 reply (`"base64": false`).
    pub fn base64(mut self, base64: bool) -> Self {
        self.base64 = base64;
        self
    }

    /// Builds the request through `path` (edge first) to `dest`.
    pub fn build(
        &self,
        path: &[Hop],
        dest: Destination<'_>,
        rng: &mut dyn Random,
    ) -> Result<OnionRequest, BuildError> {
        if path.is_empty() {
            return Err(BuildError::EmptyPath);
        }
        let nodes = path.len() + usize::from(matches!(dest, Destination::Node { .. }));
        let first = usize::from(self.start_hop_no.max(1));
        if first + nodes - 1 > MAX_HOPS {
            return Err(BuildError::TooManyHops {
                hops: nodes,
                start: self.start_hop_no,
                limit: MAX_HOPS,
            });
        }
        let enc = self.enc_type;
        let t = enc.as_str();

        // Every node the request crosses, edge first, with a fresh ephemeral key each; for a
        // server, its own key comes last.
        let mut targets: Vec<X25519PublicKey> = path.iter().map(|h| h.x25519).collect();
        match dest {
            Destination::Node { node, .. } => targets.push(node.x25519),
            Destination::Server { server, .. } => {
                if !(target_allowed(&server.target) && host_allowed(&server.host)) {
                    return Err(BuildError::InvalidServer(
                        "the target must be /oxen/… or /loki/… ending in /lsrpc, without a query, on a plain host",
                    ));
                }
                targets.push(server.x25519);
            }
        }
        let ephemerals: Vec<X25519KeyPair> = targets
            .iter()
            .map(|_| X25519KeyPair::generate(rng))
            .collect();
        let keys = targets
            .iter()
            .zip(&ephemerals)
            .map(|(pk, eph)| HopKey::client(enc, eph, pk))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| BuildError::WeakKey)?;
        let eph_hex = |i: usize| hex::encode(ephemerals[i].public());

        let umbra_json = |j: &mut Map<String, Value>| {
            if let Some(u) = self.umbra {
                j.insert(UMBRA_KEY.into(), u.to_json());
            }
        };
        let finish = |j: Map<String, Value>| Value::Object(j).to_string().into_bytes();

        // Control JSON of each encrypted frame, innermost first, paired with its key index.
        let n = path.len();
        let mut layers: Vec<(usize, Vec<u8>)> = Vec::with_capacity(nodes);
        let inner_payload: Vec<u8> = match dest {
            Destination::Node { node, request } => {
                let mut j = Map::new();
                j.insert("headers".into(), "".into());
                if self.embed_json {
                    j.insert("json".into(), true.into());
                }
                if !self.base64 {
                    j.insert("base64".into(), false.into());
                }
                umbra_json(&mut j);
                layers.push((n, finish(j)));
                let mut j = Map::new();
                j.insert("destination".into(), hex::encode(node.ed25519).into());
                j.insert("ephemeral_key".into(), eph_hex(n).into());
                j.insert("enc_type".into(), t.into());
                umbra_json(&mut j);
                layers.push((n - 1, finish(j)));
                request.to_vec()
            }
            Destination::Server { server, request } => {
                let mut j = Map::new();
                j.insert("host".into(), server.host.clone().into());
                j.insert("target".into(), server.target.clone().into());
                j.insert("method".into(), "POST".into());
                j.insert("protocol".into(), server.protocol.as_str().into());
                j.insert(
                    "port".into(),
                    server.port.unwrap_or(server.protocol.default_port()).into(),
                );
                j.insert("ephemeral_key".into(), eph_hex(n).into());
                j.insert("enc_type".into(), t.into());
                umbra_json(&mut j);
                layers.push((n - 1, finish(j)));
                keys[n]
                    .encrypt(&request.encode(), rng)
                    .map_err(|_| BuildError::Encrypt)?
            }
        };
        for i in (0..n - 1).rev() {
            let mut j = Map::new();
            j.insert(
                "destination".into(),
                hex::encode(path[i + 1].ed25519).into(),
            );
            j.insert("ephemeral_key".into(), eph_hex(i + 1).into());
            j.insert("enc_type".into(), t.into());
            umbra_json(&mut j);
            layers.push((i, finish(j)));
        }
        let mut outer = Map::new();
        outer.insert("ephemeral_key".into(), eph_hex(0).into());
        outer.insert("enc_type".into(), t.into());
        if self.start_hop_no > 0 {
            outer.insert("hop_no".into(), self.start_hop_no.into());
        }
        umbra_json(&mut outer);
        let outer = finish(outer);

        // Sizes are known before anything is encrypted, so the innermost frame can be padded
        // such that the edge receives exactly a size class.
        let unpadded = layers.iter().fold(inner_payload.len(), |size, (_, json)| {
            size + 4 + json.len() + enc.overhead()
        }) + 4
            + outer.len();
        if unpadded > MAX_FRAME_LEN {
            return Err(BuildError::TooLarge {
                len: unpadded,
                limit: MAX_FRAME_LEN,
            });
        }
        let pad = if self.umbra.is_some_and(|u| u.pad) {
            padded_len(unpadded).min(MAX_FRAME_LEN) - unpadded
        } else {
            0
        };

        let mut blob = inner_payload;
        for (idx, (key, json)) in layers.iter().enumerate() {
            let pt = frame::encode_padded(&blob, json, if idx == 0 { pad } else { 0 });
            blob = keys[*key]
                .encrypt(&pt, rng)
                .map_err(|_| BuildError::Encrypt)?;
        }
        let body = frame::encode(&blob, &outer);

        // Keep every layer key: the destination's to open its reply, the others to verify
        // hop errors.
        let mut keys = keys.into_iter();
        let mut hops: Vec<(Hop, HopKey)> = path.iter().copied().zip(keys.by_ref()).collect();
        let expect = match dest {
            Destination::Node { node, .. } => {
                hops.extend(keys.next().map(|k| (node, k)));
                Expect::Storage {
                    base64: self.base64,
                }
            }
            Destination::Server { server, .. } => {
                let mut server_keys: Vec<HopKey> = keys.collect();
                // Session's reply parser also accepts aes-gcm (an old push server answers
                // errors that way), and some servers use the raw DH as aes-gcm key.
                let eph = &ephemerals[n];
                let alt = match enc {
                    EncType::XChaCha20 => HopKey::client(EncType::AesGcm, eph, &server.x25519),
                    EncType::AesGcm => HopKey::node_raw_aes_gcm(eph, &server.x25519),
                };
                server_keys.extend(alt.ok());
                Expect::Server { keys: server_keys }
            }
        };
        Ok(OnionRequest {
            body,
            reply: PendingReply { hops, expect },
        })
    }
}

#[derive(Debug)]
enum Expect {
    Storage { base64: bool },
    Server { keys: Vec<HopKey> },
}

/// What the client keeps after sending a request: every layer's key, to open the reply and to
/// verify hop errors. Keys are zeroized when it is dropped.
#[derive(Debug)]
pub struct PendingReply {
    /// Path nodes, then the storage destination (if any), each with its layer key.
    hops: Vec<(Hop, HopKey)>,
    expect: Expect,
}

/// A storage node's answer to a storage RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageReply {
    /// The storage RPC's own status (200, 421, 401, 406, …).
    pub status: u16,
    /// The body: a string (plain text, or JSON double-encoded as Session does) or embedded JSON.
    pub body: Value,
}

impl StorageReply {
    /// The body as JSON: embedded JSON as is, a string parsed as JSON; `None` for plain text.
    pub fn json(&self) -> Option<Value> {
        match &self.body {
            Value::String(s) => serde_json::from_str(s).ok(),
            other => Some(other.clone()),
        }
    }
}

/// A hop's error, proven by that hop's layer key: no other node could have produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopFailure {
    /// Position of the hop: `0` for the edge, … , `path.len()` for a storage destination.
    pub hop: usize,
    /// The hop's Ed25519 key.
    pub node: Ed25519PublicKey,
    /// The error's status.
    pub status: u16,
    /// The error's body text.
    pub body: String,
}

/// What an onion reply turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// The storage destination answered (its real status is inside).
    Storage(StorageReply),
    /// The external server answered.
    Server(V4Response),
    /// A hop reported an error sealed under its layer key (an Umbra hop error, or one of the
    /// errors Session nodes wrap, such as `Invalid json`).
    HopError(HopFailure),
    /// The exit vouches (under its layer key) that the server answered this, unencrypted —
    /// e.g. `400` when the server could not decrypt the request.
    ServerUnencrypted {
        /// Position of the exit on the path.
        exit: usize,
        /// The server's status.
        status: u16,
        /// The server's body.
        body: Vec<u8>,
    },
    /// Nothing authenticates this answer: any relay could have produced it. Do not blame any
    /// single node on its word (count it against the path as a whole).
    Unauthenticated {
        /// The status received.
        status: u16,
        /// The body received.
        body: Vec<u8>,
    },
}

impl PendingReply {
    /// The nodes the request crosses, edge first (for a storage destination, it is last).
    pub fn nodes(&self) -> impl Iterator<Item = &Hop> {
        self.hops.iter().map(|(h, _)| h)
    }

    /// Opens the answer the edge returned (`status`, `body`).
    ///
    /// Tries, in order: the destination's reply under its key; a hop message or a
    /// Session-wrapped error under each hop's key (edge first); otherwise the answer is
    /// [`Reply::Unauthenticated`]. Errors only for an authenticated reply whose content is
    /// malformed, or a body above [`MAX_REPLY_LEN`].
    pub fn open(&self, status: u16, body: &[u8]) -> Result<Reply, ReplyError> {
        if body.len() > MAX_REPLY_LEN {
            return Err(ReplyError::TooLarge {
                len: body.len(),
                limit: MAX_REPLY_LEN,
            });
        }
        let b64 = B64.decode(body.trim_ascii()).ok();
        // The destination's own reply. The outer status is not authenticated, so it is not
        // looked at. A relay may reflect the client's own layer (sealed under the same key) as a
        // "reply": that plaintext is a request, not a reply, and is skipped.
        match &self.expect {
            Expect::Storage { base64 } => {
                let sealed = if *base64 { b64.as_deref() } else { Some(body) };
                if let (Some(sealed), Some((_, key))) = (sealed, self.hops.last())
                    && let Ok(pt) = key.decrypt(sealed)
                {
                    match status_json(&pt) {
                        Some((status, body)) => {
                            return Ok(Reply::Storage(StorageReply { status, body }));
                        }
                        None if frame::parse(&pt).is_ok() => {}
                        None => return Err(ReplyError::MalformedStorageReply),
                    }
                }
            }
            Expect::Server { .. } => {
                if let Some(r) = self.open_server(body) {
                    return r;
                }
            }
        }
        for (i, (hop, key)) in self.hops.iter().enumerate() {
            if let Some(msg) = HopMessage::open(key, body) {
                return match msg.kind {
                    HopMessageKind::Error => Ok(Reply::HopError(HopFailure {
                        hop: i,
                        node: hop.ed25519,
                        status: msg.status,
                        body: String::from_utf8_lossy(&msg.body).into_owned(),
                    })),
                    HopMessageKind::Relayed => match self.open_server(&msg.body) {
                        Some(r) => r,
                        None => Ok(Reply::ServerUnencrypted {
                            exit: i,
                            status: msg.status,
                            body: msg.body,
                        }),
                    },
                };
            }
            // Session nodes wrap some errors ("Invalid json", "Invalid url") under the layer
            // key of the hop that raised them.
            if let Some((st, b)) = b64
                .as_deref()
                .and_then(|s| key.decrypt(s).ok())
                .and_then(|pt| status_json(&pt))
            {
                return Ok(Reply::HopError(HopFailure {
                    hop: i,
                    node: hop.ed25519,
                    status: st,
                    body: match b {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                }));
            }
        }
        Ok(Reply::Unauthenticated {
            status,
            body: body.to_vec(),
        })
    }

    /// A v4 reply from the server, if `sealed` authenticates under one of its keys and is not
    /// the client's own request reflected back.
    fn open_server(&self, sealed: &[u8]) -> Option<Result<Reply, ReplyError>> {
        let Expect::Server { keys } = &self.expect else {
            return None;
        };
        let pt = keys.iter().find_map(|k| k.decrypt(sealed).ok())?;
        match V4Response::decode(&pt) {
            Ok(r) => Some(Ok(Reply::Server(r))),
            Err(_) if V4Request::decode(&pt).is_ok() => None,
            Err(e) => Some(Err(ReplyError::MalformedServerReply(e))),
        }
    }
}

/// Reads `{"status": u16, "body": …}` (trailing padding allowed).
fn status_json(pt: &[u8]) -> Option<(u16, Value)> {
    let Value::Object(mut m) = serde_json::from_slice(pt.trim_ascii_end()).ok()? else {
        return None;
    };
    let status = u16::try_from(m.get("status")?.as_u64()?).ok()?;
    Some((status, m.remove("body").unwrap_or(Value::Null)))
}
