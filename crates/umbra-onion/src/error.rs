//! Errors, and the HTTP status and body each one maps to on the wire.

use thiserror::Error;
use umbra_crypto::Ed25519PublicKey;

use crate::frame::MAX_FRAME_LEN;

/// Something went wrong with an onion request at a node (or at an external server).
///
/// Each variant is one row of the spec's error table (`onion-requests.md` §5.3).
/// [`status`](Self::status) and [`body`](Self::body) give the exact status and body a Session
/// node answers with, and [`is_wrapped`](Self::is_wrapped) says whether Session software
/// encrypts that answer back to the client (as `{"status": …, "body": …}`, base64) or sends it
/// as plain text. How a node actually answers — plain, Session-wrapped, or as an Umbra
/// hop-attributable error — is decided by [`Replier::error`](crate::Replier::error).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OnionError {
    /// The frame a node received could not be parsed: too short, a length past the end, not a
    /// JSON object, a missing or malformed `ephemeral_key`, an unknown `enc_type`, or a bad
    /// `hop_no`. `400 Error parsing onion request: <detail>`, plain.
    #[error("Error parsing onion request: {0}")]
    MalformedFrame(String),
    /// The frame is longer than [`MAX_FRAME_LEN`]. Answered like [`Self::MalformedFrame`].
    #[error("Error parsing onion request: frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Length received.
        len: usize,
        /// The limit ([`MAX_FRAME_LEN`]).
        limit: usize,
    },
    /// A node-to-node (bencoded) onion message could not be parsed.
    /// `400 Invalid internal onion request: <detail>`, plain.
    #[error("Invalid internal onion request: {0}")]
    InvalidInternal(String),
    /// `hop_no` above [`MAX_HOPS`](crate::MAX_HOPS). `400 onion request max path length exceeded`.
    #[error("onion request max path length exceeded")]
    HopLimitExceeded,
    /// The layer did not decrypt (wrong key, truncated, modified, low-order ephemeral key).
    /// `400 Invalid ciphertext`, plain.
    #[error("Invalid ciphertext")]
    InvalidCiphertext,
    /// The layer decrypted but its inner frame or control JSON is malformed.
    /// `400 Invalid json`, encrypted to the client.
    #[error("Invalid json")]
    InvalidJson,
    /// The exit's `protocol`, `target` or `host` is not allowed. `400 Invalid url`, encrypted.
    #[error("Invalid url")]
    InvalidUrl,
    /// A relay does not know the next node. `502 Next node not found: <ed25519 hex>`.
    #[error("Next node not found: {}", hex::encode(.0))]
    NextNodeNotFound(Ed25519PublicKey),
    /// A relay knows the next node but cannot reach it.
    /// `502 Next node is currently unreachable: <ed25519 hex>`.
    #[error("Next node is currently unreachable: {}", hex::encode(.0))]
    NextNodeUnreachable(Ed25519PublicKey),
    /// The next node did not answer in time. `504 Request time out`.
    #[error("Request time out")]
    RequestTimeout,
    /// The next node's reply was malformed. `500 Invalid response from snode`.
    #[error("Invalid response from snode")]
    InvalidSnodeResponse,
    /// The exit could not reach the external server: `502` with the HTTP library's text.
    #[error("{0}")]
    ServerUnreachable(String),
    /// The exit's request to the external server timed out: `504` with the library's text.
    #[error("{0}")]
    ServerTimeout(String),
    /// A hop is not ready. `503 Snode not ready: <its ed25519 hex>`, plain.
    #[error("Snode not ready: {}", hex::encode(.0))]
    HopNotReady(Ed25519PublicKey),
    /// The destination is not ready. `503 Snode not ready`, encrypted.
    #[error("Snode not ready")]
    DestinationNotReady,
    /// The edge's HTTPS layer is not ready. `503 Service node is not ready: <reason>\n`.
    #[error("Service node is not ready: {0}\n")]
    EdgeNotReady(String),
    /// The node dropped a queued request under load. `503 Server busy, try again later`.
    #[error("Server busy, try again later")]
    ServerBusy,
}

impl OnionError {
    /// The HTTP status Session software answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::MalformedFrame(_)
            | Self::FrameTooLarge { .. }
            | Self::InvalidInternal(_)
            | Self::HopLimitExceeded
            | Self::InvalidCiphertext
            | Self::InvalidJson
            | Self::InvalidUrl => 400,
            Self::NextNodeNotFound(_)
            | Self::NextNodeUnreachable(_)
            | Self::ServerUnreachable(_) => 502,
            Self::RequestTimeout | Self::ServerTimeout(_) => 504,
            Self::InvalidSnodeResponse => 500,
            Self::HopNotReady(_)
            | Self::DestinationNotReady
            | Self::EdgeNotReady(_)
            | Self::ServerBusy => 503,
        }
    }

    /// The exact body text Session software answers with.
    pub fn body(&self) -> String {
        self.to_string()
    }

    /// Whether Session software encrypts this error back to the client
    /// (`{"status": …, "body": …}` under the layer key, base64) instead of sending plain text.
    pub fn is_wrapped(&self) -> bool {
        matches!(
            self,
            Self::InvalidJson | Self::InvalidUrl | Self::DestinationNotReady
        )
    }

    /// The plain-text answer: `(status, body)` as bytes.
    pub fn plain_response(&self) -> crate::Response {
        crate::Response {
            status: self.status(),
            body: self.body().into_bytes(),
        }
    }

    pub(crate) fn too_large(len: usize) -> Self {
        Self::FrameTooLarge {
            len,
            limit: MAX_FRAME_LEN,
        }
    }
}

/// Why a client could not build an onion request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The path has no hop.
    #[error("an onion path needs at least one hop")]
    EmptyPath,
    /// More nodes than a node accepts (`hop_no` above [`MAX_HOPS`](crate::MAX_HOPS)).
    #[error("an onion request crosses {hops} nodes starting at hop {start}; the limit is {limit}")]
    TooManyHops {
        /// Nodes the request would cross.
        hops: usize,
        /// The starting `hop_no`.
        start: u8,
        /// [`MAX_HOPS`](crate::MAX_HOPS).
        limit: usize,
    },
    /// The request would exceed [`MAX_FRAME_LEN`] at the edge.
    #[error("the onion request would be {len} bytes; the limit is {limit}")]
    TooLarge {
        /// Size the edge would receive.
        len: usize,
        /// [`MAX_FRAME_LEN`].
        limit: usize,
    },
    /// The external server's address is not one an exit node accepts (spec §4.5).
    #[error("invalid server address: {0}")]
    InvalidServer(&'static str),
    /// A hop's or the server's X25519 key is a low-order point.
    #[error("a node key is a low-order point")]
    WeakKey,
    /// Encryption failed (only for absurd sizes).
    #[error("encryption failed")]
    Encrypt,
}

/// A reply that authenticated but whose content is malformed, or that is too large to open.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The reply body is larger than [`MAX_REPLY_LEN`](crate::MAX_REPLY_LEN).
    #[error("reply of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Length received.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The destination's reply decrypted but is not `{"status": int, "body": …}` JSON.
    #[error("the destination's reply is not a status/body JSON object")]
    MalformedStorageReply,
    /// The server's reply decrypted but is not a v4 response.
    #[error("the server's reply is not a v4 response: {0}")]
    MalformedServerReply(crate::V4Error),
}
