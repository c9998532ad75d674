//! # umbra-onion — onion requests, sans-IO
//!
//! Session-compatible onion requests (`shared/spec/onion-requests.md`, hop encryption in
//! `identity-and-crypto.md` §5) as plain functions over bytes: a client builds a request
//! through N hops to a storage node or an external server; each node peels one layer and is
//! told what to do next; the destination answers under its layer key; the client opens the
//! answer. Plus Umbra's own extensions, negotiated only between Umbra software: **padding** to
//! size classes and **hop-attributable errors**.
//!
//! ```text
//!  client                    N1 (edge)          N2             N3               D / server
//!  RequestBuilder::build ──► peel → Forward ──► peel → Forward ► peel → Forward ► peel → Destination
//!        │ (PendingReply)                                        (or → Exit ──► open_server_request)
//!        │                                                                        │
//!  PendingReply::open ◄──────── relays pass [status, body] back unchanged ◄──── reply (sealed)
//! ```
//!
//! ## What this crate must never do
//!
//! - Open a socket, read a clock or use global randomness: every function that needs random
//!   bytes takes a `&mut dyn umbra_crypto::Random`. Timeouts, connections, the node registry
//!   and the HTTP endpoint (`/onion_req/v2`) belong to `umbra-node`; paths, guards and retries
//!   to the client.
//! - Panic on any input, or parse anything larger than [`MAX_FRAME_LEN`] (10 MiB, the storage
//!   node's HTTPS body limit) at a node or [`MAX_REPLY_LEN`] (16 MiB) at a client.
//! - Log. Errors name what failed, never a key or plaintext.
//!
//! ## Using it
//!
//! ```
//! use umbra_crypto::{Identity, SeededRandom};
//! use umbra_onion::{
//!     Destination, Hop, Peeled, Reply, ReplyBody, RequestBuilder, peel,
//! };
//!
//! let mut rng = SeededRandom::new(7); // production: umbra_crypto::OsRandom
//! let ids: Vec<Identity> = (0..4).map(|_| Identity::generate(&mut rng)).collect();
//! let hop = |id: &Identity| Hop { ed25519: id.ed25519_public(), x25519: id.x25519_public() };
//!
//! // Client: three path nodes, then the storage node that runs the RPC.
//! let path = [hop(&ids[0]), hop(&ids[1]), hop(&ids[2])];
//! let rpc = br#"{"method":"info","params":{}}"#;
//! let req = RequestBuilder::umbra()
//!     .build(&path, Destination::Node { node: hop(&ids[3]), request: rpc }, &mut rng)?;
//!
//! // Nodes: each relay peels its layer and sends `to_frame()` to `next_node()`.
//! let mut frame = req.body.clone();
//! for i in 0..3 {
//!     match peel(&ids[i].x25519_keypair(), &frame)? {
//!         Peeled::Forward(fwd) => {
//!             assert_eq!(fwd.next_node(), &ids[i + 1].ed25519_public());
//!             frame = fwd.to_frame();
//!         }
//!         _ => unreachable!("relays forward"),
//!     }
//! }
//! // The destination runs the storage RPC and answers under its layer key.
//! let Peeled::Destination(dest) = peel(&ids[3].x25519_keypair(), &frame)? else {
//!     unreachable!("the last node is the destination")
//! };
//! assert_eq!(dest.body(), rpc);
//! let response = dest.reply(200, ReplyBody::Text("ok".into()), &mut rng);
//!
//! // Relays pass the answer back unchanged; the client opens it.
//! match req.reply.open(response.status, &response.body)? {
//!     Reply::Storage(r) => assert_eq!((r.status, r.body.as_str()), (200, Some("ok"))),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A node's handler is a `match` on [`peel`]:
//!
//! - [`Peeled::Forward`]: if [`Forward::next_node`] is not a registered node, answer
//!   [`Forward::fail`] with [`OnionError::NextNodeNotFound`]; otherwise send
//!   [`Forward::to_frame`] to it (it goes straight into that node's [`peel`]) and pass its
//!   `[status, body]` back **unchanged**; on timeout answer `fail(RequestTimeout)`.
//! - [`Peeled::Destination`]: run the storage RPC in [`DestinationRequest::body`] (the same code
//!   as `/storage_rpc/v1`, 421 included) and answer [`DestinationRequest::reply`].
//! - [`Peeled::Exit`]: POST [`ExitRequest::body`] to [`ExitRequest::url`] and answer
//!   [`ExitRequest::reply`] with the server's status and body, or `fail(ServerUnreachable/
//!   ServerTimeout)`.
//! - `Err(e)`: answer [`PeelError::response`].
//!
//! Every error maps to the spec's status and body through [`OnionError::status`] and
//! [`OnionError::body`]; errors raised before any layer is peeled ("not ready", "busy") are
//! answered with [`OnionError::plain_response`].
//!
//! Node-to-node, Umbra nodes send each other the frame [`Forward::to_frame`] makes (the same
//! format a client sends the edge, with `hop_no`); Session's bencoded OMQ form is available as
//! [`Forward::to_bencoded`] / [`peel_bencoded`]. Cascading timeouts are the node's business; a
//! node should wait less for its next hop the further it is from the edge, so that the hop
//! nearest a failure answers first.
//!
//! ## Compatibility
//!
//! - Frames are `u32_le(N) ‖ ciphertext[N] ‖ control JSON`; control keys and dispatch order
//!   (`headers`, then `host`, then `destination`) as the spec gives; any JSON formatting is
//!   accepted (the spec's vectors use spaces), trailing whitespace included.
//! - `enc_type` `aes-gcm` (default, alias `gcm`) and `xchacha20` (alias `xchacha20-poly1305`);
//!   unknown types are refused. The obsolete `aes-cbc` is not supported.
//! - Exit targets follow Session's rule (`/loki/` or `/oxen/`, ending `/lsrpc`, no `?`), and
//!   Umbra additionally refuses hosts with characters that could change the URL (`/`, `@`,
//!   whitespace…).
//! - A Session client's requests are served exactly as a Session node serves them: without an
//!   `umbra` key nothing below applies.
//!
//! ## Umbra extension v1: the `umbra` control key
//!
//! An Umbra client adds `"umbra": {"v": 1, "pad": true, "herr": true}` ([`UmbraOptions`]) to
//! every control JSON it writes: the outer frame (read by the edge before decrypting), every
//! relay layer (copied by that relay into the frame it forwards, so the next node reads it
//! before decrypting too), and the destination's or exit's layer. A node honours the union of
//! what its predecessor passed on and what its own decrypted layer says (the latter cannot be
//! stripped by a relay). Session nodes ignore the key; an Umbra node ignores an `umbra` object
//! whose `v` it does not know, falling back to Session behaviour. Session software never sends
//! it, so Session clients are never padded or answered in a format they do not know.
//!
//! ### Padding (`pad`), scheme v1
//!
//! Goal: a relay cannot tell a `store` from a `retrieve`, or a short text from a long one, by
//! size. [`padding::SIZE_CLASSES`]: 4 KiB, 16 KiB, 64 KiB, 256 KiB, 1 MiB, 4 MiB, 10 MiB (then
//! multiples of 4 MiB for replies).
//!
//! - **Requests**: the client knows every layer's size before it encrypts anything (keys are
//!   fixed-length hex, JSON is emitted deterministically), so it pads the **innermost frame**
//!   (the destination's, or the exit's for a server) with trailing spaces such that the body
//!   the edge receives is **exactly** a size class. Every relay then sees a size determined by
//!   the class and its position only; a storage request and a server request of the same class
//!   look the same up to the exit. Trailing whitespace after JSON is valid JSON, so even a
//!   Session node on the path or as destination accepts the padded layer; an exit strips it
//!   before POSTing.
//! - **Storage replies**: the destination pads the `{"status","body"}` JSON with trailing spaces
//!   so that the body it returns (base64 or raw) is exactly a size class.
//! - **Server replies**: the server's reply is the server's business, so the exit wraps it in a
//!   [`HopMessage`] of kind `Relayed`, padded to a class and sealed under the exit's layer key
//!   (relays before the exit see only the class).
//! - Hop errors are padded too, so their size does not say which hop failed.
//!
//! ### Hop-attributable errors (`herr`)
//!
//! In Session, errors from relays are plain text: any relay can claim "Next node not found:
//! `<an honest node>`" on behalf of another and so steer the client away from honest nodes. With
//! `herr`, a hop that fails answers a [`HopMessage`] of kind `Error` sealed under **its own
//! layer key**, which only it and the client know:
//!
//! ```text
//! plaintext v1 = "UMBR" ‖ 0x01 ‖ kind (1 = error, 2 = relayed server reply) ‖ status (u16 BE)
//!                ‖ body_len (u32 BE) ‖ body ‖ zero padding
//! wire         = nonce ‖ AEAD(layer key, plaintext) ‖ tag      (raw; outer status advisory)
//! ```
//!
//! Relays pass answers back unchanged. The client ([`PendingReply::open`]) tries the
//! destination's key, then each hop's key, and reports [`Reply::HopError`] with the hop's
//! position and Ed25519 key only when the seal verifies. What this buys, and what it cannot:
//!
//! - A relay cannot forge an error on behalf of another hop (it lacks that hop's key); a forged
//!   or unsealed error is [`Reply::Unauthenticated`], to be counted against the path as a whole,
//!   never against a single named node.
//! - A hop can still lie about its *own* neighbours ("next node unreachable"), but its claim is
//!   signed by its position: the client should treat it as a failed *link* (this hop and the
//!   next), so a rogue relay that accuses honest nodes accuses itself too.
//! - A relay can replace a later hop's sealed error with its own, or drop it (→ timeout): both
//!   again implicate the relay itself.
//! - A hop that cannot decrypt its layer still has its layer key (derived from the ephemeral key
//!   its predecessor passed on), so "Invalid ciphertext" is attributable to the link from its
//!   predecessor; if the predecessor stripped the `umbra` key or swapped the ephemeral key, the
//!   error becomes unauthenticated, which again blames the path.
//! - The magic `"UMBR"` keeps a hop message apart from anything else sealed under a layer key
//!   (the client's own layer, read as a little-endian length, would be ≈1.4 GB; a storage reply
//!   is JSON), so a relay cannot reflect the client's layer back as an error. The client also
//!   skips a "reply" that is its own request reflected back.
//! - Errors Session nodes already wrap under the layer key (`Invalid json`, `Invalid url`) are
//!   attributed the same way, so attribution partly works even through Session nodes.
//!
//! ### What the extension itself reveals
//!
//! The `umbra` key tells every node on the path (and the edge, before decrypting) that the
//! client is Umbra software rather than a Session client; it cannot be otherwise, since errors
//! raised before a layer is decrypted need the flag outside the layer. Within Umbra clients the
//! key is identical for everyone (same version, same flags), so it splits the anonymity set in
//! two and no further. A client that prefers to blend with Session clients builds with
//! [`RequestBuilder::new`] and gives up padding and attributable errors.

mod bencode;
mod client;
mod error;
pub mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod node;
pub mod padding;
mod server;
mod umbra;
pub mod v4;

pub use client::{
    Destination, Hop, HopFailure, MAX_REPLY_LEN, OnionRequest, PendingReply, Reply, RequestBuilder,
    Server, StorageReply,
};
pub use error::{BuildError, OnionError, ReplyError};
pub use frame::MAX_FRAME_LEN;
pub use node::{
    DestinationRequest, ExitRequest, Forward, MAX_HOPS, PeelError, Peeled, Replier, ReplyBody,
    Response, peel, peel_bencoded,
};
pub use server::{ServerRequest, open_server_request};
pub use umbra::{
    HOP_MESSAGE_MAGIC, HopMessage, HopMessageKind, UMBRA_KEY, UMBRA_VERSION, UmbraOptions,
};
pub use umbra_crypto::hop::EncType;
pub use v4::{V4Error, V4Request, V4Response};

/// The scheme an exit uses to reach an external server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTPS (default port 443).
    Https,
}

impl Protocol {
    /// Parses `http` or `https`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }

    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}
