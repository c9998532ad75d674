//! Wrapping and unwrapping one-to-one messages (`shared/spec/messages.md` §1.1).

use prost::Message as _;
use umbra_crypto::{CryptoError, Identity, Random, SessionId, session_v1};

use crate::protos::{Content, Envelope, WebSocketMessage, WebSocketRequestMessage};
use crate::protos::{envelope, web_socket_message};

/// The largest stored message a node accepts (76 800 bytes of data, `storage-rpc.md` §8);
/// nothing larger is ever decoded.
pub const MAX_STORED_MESSAGE: usize = 76_800;

/// Errors while wrapping or unwrapping a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The data is larger than any stored message can be.
    #[error("message of {got} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Bytes given.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A protobuf layer did not decode.
    #[error("malformed {layer}")]
    Decode {
        /// Which layer.
        layer: &'static str,
        /// Why.
        #[source]
        source: prost::DecodeError,
    },
    /// A layer decoded but lacks what a one-to-one message needs.
    #[error("not a one-to-one message: {0}")]
    NotOneToOne(&'static str),
    /// The envelope and content timestamps disagree (`messages.md` §5.0).
    #[error("envelope timestamp {envelope} differs from the signed content timestamp {content}")]
    TimestampMismatch {
        /// `Envelope.timestamp`.
        envelope: u64,
        /// `Content.sigTimestamp`.
        content: u64,
    },
    /// Decryption or signature verification failed.
    #[error("cannot open the message")]
    Crypto(#[from] CryptoError),
}

/// Wraps a serialized envelope in the `WebSocketMessage{REQUEST}` layer.
pub fn wrap_envelope(envelope: &Envelope) -> Vec<u8> {
    WebSocketMessage {
        r#type: Some(web_socket_message::Type::Request as i32),
        request: Some(WebSocketRequestMessage {
            verb: Some(String::new()),
            path: Some(String::new()),
            body: Some(envelope.encode_to_vec()),
            id: Some(0),
            headers: Vec::new(),
        }),
    }
    .encode_to_vec()
}

/// Unwraps stored bytes to the envelope they carry.
pub fn unwrap_envelope(stored: &[u8]) -> Result<Envelope, WireError> {
    if stored.len() > MAX_STORED_MESSAGE {
        return Err(WireError::TooLarge {
            got: stored.len(),
            max: MAX_STORED_MESSAGE,
        });
    }
    let ws = WebSocketMessage::decode(stored).map_err(|source| WireError::Decode {
        layer: "WebSocketMessage",
        source,
    })?;
    let body = ws
        .request
        .and_then(|r| r.body)
        .ok_or(WireError::NotOneToOne("the wrapper has no request body"))?;
    Envelope::decode(body.as_slice()).map_err(|source| WireError::Decode {
        layer: "Envelope",
        source,
    })
}

/// Encodes `content` from `sender` to `recipient` as stored bytes: sets `sigTimestamp`,
/// pads, encrypts with Session protocol v1, and wraps in Envelope and WebSocketMessage.
pub fn encode_one_to_one(
    sender: &Identity,
    recipient: &SessionId,
    content: &Content,
    sent_ms: u64,
    rng: &mut dyn Random,
) -> Result<Vec<u8>, WireError> {
    let mut content = content.clone();
    content.sig_timestamp = Some(sent_ms);
    let padded = session_v1::pad(&content.encode_to_vec());
    let sealed = session_v1::encrypt(sender, recipient, &padded, rng)?;
    let envelope = Envelope {
        r#type: envelope::Type::SessionMessage as i32,
        source: None,
        timestamp: sent_ms,
        source_device: None,
        content: Some(sealed),
        pro_sig: None,
    };
    let out = wrap_envelope(&envelope);
    if out.len() > MAX_STORED_MESSAGE {
        return Err(WireError::TooLarge {
            got: out.len(),
            max: MAX_STORED_MESSAGE,
        });
    }
    Ok(out)
}

/// A one-to-one message opened by its recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedMessage {
    /// The verified sender.
    pub sender: SessionId,
    /// The sent time in ms (`Envelope.timestamp`).
    pub sent_ms: u64,
    /// The content.
    pub content: Content,
}

/// Opens stored bytes addressed to `recipient`: unwraps, decrypts, verifies the sender's
/// signature, unpads, decodes `Content` and checks that its signed timestamp (when present)
/// equals the envelope's.
pub fn decode_one_to_one(recipient: &Identity, stored: &[u8]) -> Result<DecodedMessage, WireError> {
    let env = unwrap_envelope(stored)?;
    if env.r#type != envelope::Type::SessionMessage as i32 {
        return Err(WireError::NotOneToOne(
            "the envelope is not a SESSION_MESSAGE",
        ));
    }
    let sealed = env
        .content
        .as_deref()
        .ok_or(WireError::NotOneToOne("the envelope has no content"))?;
    if env.pro_sig.as_ref().is_some_and(|s| s.len() != 64) {
        return Err(WireError::NotOneToOne(
            "proSig must be 64 bytes when present",
        ));
    }
    let opened = session_v1::decrypt(recipient, sealed)?;
    let content = Content::decode(session_v1::unpad(&opened.plaintext)).map_err(|source| {
        WireError::Decode {
            layer: "Content",
            source,
        }
    })?;
    if let Some(sig_ts) = content.sig_timestamp
        && sig_ts != env.timestamp
    {
        return Err(WireError::TimestampMismatch {
            envelope: env.timestamp,
            content: sig_ts,
        });
    }
    Ok(DecodedMessage {
        sender: opened.sender,
        sent_ms: env.timestamp,
        content,
    })
}

/// The plaintext of a group message (`messages.md` §1.3): `Envelope{CLOSED_GROUP_MESSAGE,
/// sourceDevice = 1, timestamp = sent_ms, content = Content}` with `sigTimestamp` set, not
/// encrypted, not padded (the group layer encrypts and pads it).
pub fn encode_group_envelope(content: &Content, sent_ms: u64) -> Vec<u8> {
    let mut content = content.clone();
    content.sig_timestamp = Some(sent_ms);
    Envelope {
        r#type: envelope::Type::ClosedGroupMessage as i32,
        source: None,
        timestamp: sent_ms,
        source_device: Some(1),
        content: Some(content.encode_to_vec()),
        pro_sig: None,
    }
    .encode_to_vec()
}

/// Reads the plaintext of a group message: its `Content` and sent time, checking the type
/// and that the signed timestamp (when present) equals the envelope's.
pub fn decode_group_envelope(plain: &[u8]) -> Result<(Content, u64), WireError> {
    if plain.len() > 1_000_000 {
        return Err(WireError::TooLarge {
            got: plain.len(),
            max: 1_000_000,
        });
    }
    let env = Envelope::decode(plain).map_err(|source| WireError::Decode {
        layer: "Envelope",
        source,
    })?;
    if env.r#type != envelope::Type::ClosedGroupMessage as i32 {
        return Err(WireError::NotOneToOne(
            "a group message's envelope must be CLOSED_GROUP_MESSAGE",
        ));
    }
    let content =
        Content::decode(env.content.as_deref().unwrap_or_default()).map_err(|source| {
            WireError::Decode {
                layer: "Content",
                source,
            }
        })?;
    if let Some(sig_ts) = content.sig_timestamp
        && sig_ts != env.timestamp
    {
        return Err(WireError::TimestampMismatch {
            envelope: env.timestamp,
            content: sig_ts,
        });
    }
    Ok((content, env.timestamp))
}
