//! # umbra-wire
//!
//! What travels inside a swarm: Session's protobuf messages and the layers that wrap a
//! one-to-one message before it is stored in the recipient's swarm (namespace 0).
//!
//! ```text
//!   Content ──pad160──► session_v1::encrypt ──► Envelope{SESSION_MESSAGE, timestamp, content}
//!                                                  │
//!            WebSocketMessage{REQUEST, request{verb "", path "", id 0, body = Envelope}}
//!                                                  │
//!                                   bytes stored by `store` (base64 in the JSON RPC)
//! ```
//!
//! Field numbers and labels follow `shared/spec/messages.md` (Session's `SessionProtos`,
//! proto2). The message types are generated from `proto/session/SessionProtos.proto` by the
//! `umbra-proto` crate (pure Rust, no `protoc`) and re-exported here: [`protos`] and the crate
//! root name the same types.
//!
//! ## What this crate must never do
//! - No I/O, no clock, no global randomness: the send time and a [`umbra_crypto::Random`] come
//!   in as arguments.
//! - Never panic on bytes from the network: every decoder checks the size first
//!   ([`MAX_STORED_MESSAGE`]) and returns [`WireError`].

pub mod one_to_one;
pub mod protos;

pub use one_to_one::{
    DecodedMessage, MAX_STORED_MESSAGE, WireError, decode_one_to_one, encode_one_to_one,
    unwrap_envelope, wrap_envelope,
};
pub use protos::*;
