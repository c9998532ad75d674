//! Umbra's own extensions, negotiated only in Umbra layers: the `umbra` control-JSON key and
//! the hop message (authenticated hop errors and wrapped exit replies).

use serde_json::{Map, Value, json};
use umbra_crypto::Random;
use umbra_crypto::hop::HopKey;

use crate::padding::padded_len;

/// The control-JSON key that carries [`UmbraOptions`]. Session software never sends it and
/// ignores it when it sees it.
pub const UMBRA_KEY: &str = "umbra";

/// Version of Umbra's extensions: the `umbra` options object, padding scheme v1
/// ([`SIZE_CLASSES`](crate::padding::SIZE_CLASSES)) and hop message v1.
pub const UMBRA_VERSION: u8 = 1;

/// What an Umbra client asks of the Umbra nodes on its path.
///
/// Sent as `"umbra": {"v": 1, "pad": true, "herr": true}`. A node ignores an `umbra` object
/// whose `v` it does not know (and then behaves exactly like a Session node), so a newer
/// client meets an older node on common ground. Within `v: 1`, a missing or non-boolean flag
/// reads as `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UmbraOptions {
    /// Pad replies to the size classes of [`padding`](crate::padding): the destination pads
    /// its `{"status","body"}` reply, the exit wraps the server's reply in a padded hop
    /// message, and hop errors are padded too.
    pub pad: bool,
    /// Answer errors as hop messages sealed with this hop's layer key instead of plain text,
    /// so that the client can tell which hop failed and that no other hop forged it.
    pub hop_errors: bool,
}

impl UmbraOptions {
    /// Both extensions on: what Umbra clients send by default.
    pub fn all() -> Self {
        Self {
            pad: true,
            hop_errors: true,
        }
    }

    pub(crate) fn to_json(self) -> Value {
        json!({"v": UMBRA_VERSION, "pad": self.pad, "herr": self.hop_errors})
    }

    /// Reads `umbra` from a control JSON object; `None` when absent, not an object, or of a
    /// version this node does not speak.
    pub(crate) fn from_json(map: &Map<String, Value>) -> Option<Self> {
        let obj = map.get(UMBRA_KEY)?.as_object()?;
        if obj.get("v")?.as_u64()? != u64::from(UMBRA_VERSION) {
            return None;
        }
        let flag = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
        Some(Self {
            pad: flag("pad"),
            hop_errors: flag("herr"),
        })
    }

    /// The union of two option sets (flags that either asks for).
    pub(crate) fn merge(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (None, x) | (x, None) => x,
            (Some(a), Some(b)) => Some(Self {
                pad: a.pad || b.pad,
                hop_errors: a.hop_errors || b.hop_errors,
            }),
        }
    }
}

/// Magic at the start of every hop message plaintext.
///
/// It keeps a hop message apart from everything else sealed under a layer key: the client's own
/// layer (a frame, whose first four bytes are a length ≤ 10 MiB; `"UMBR"` read as a
/// little-endian length is about 1.4 GB) and a destination's `{"status", …}` JSON reply.
pub const HOP_MESSAGE_MAGIC: [u8; 4] = *b"UMBR";

const HEADER_LEN: usize = 4 + 1 + 1 + 2 + 4;

/// What a hop message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HopMessageKind {
    /// This hop failed; `status`/`body` are its error (the spec's status and body text).
    Error = 1,
    /// This hop (an exit) relays the external server's answer: `status` is the server's HTTP
    /// status and `body` its body, unchanged. Used to pad server replies.
    Relayed = 2,
}

/// A message a hop seals for the client under its own layer key.
///
/// Plaintext (version 1):
///
/// ```text
/// "UMBR" ‖ version = 1 ‖ kind (u8) ‖ status (u16 BE) ‖ body_len (u32 BE) ‖ body ‖ zero padding
/// ```
///
/// sealed with the layer's `enc_type` and key (`nonce ‖ ciphertext ‖ tag`) and sent raw (not
/// base64) as the reply body; the HTTP status outside is advisory, the client trusts the
/// sealed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopMessage {
    /// What it says.
    pub kind: HopMessageKind,
    /// HTTP status (the hop's error status, or the server's status).
    pub status: u16,
    /// The body (error text, or the server's body).
    pub body: Vec<u8>,
}

impl HopMessage {
    /// Seals the message under `key`; with `pad`, the sealed result is exactly a size class.
    pub fn seal(&self, key: &HopKey, pad: bool, rng: &mut dyn Random) -> Vec<u8> {
        // Bodies are bounded far below 4 GiB by the frame and reply limits.
        let body = &self.body;
        let body_len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        let mut pt = Vec::with_capacity(HEADER_LEN + body.len());
        pt.extend_from_slice(&HOP_MESSAGE_MAGIC);
        pt.push(UMBRA_VERSION);
        pt.push(self.kind as u8);
        pt.extend_from_slice(&self.status.to_be_bytes());
        pt.extend_from_slice(&body_len.to_be_bytes());
        pt.extend_from_slice(body);
        if pad {
            let ovh = key.enc_type().overhead();
            pt.resize(padded_len(pt.len() + ovh) - ovh, 0);
        }
        // Encryption fails only for inputs of gigabytes; an empty reply is then the safe answer.
        key.encrypt(&pt, rng).unwrap_or_default()
    }

    /// Opens a sealed hop message; `None` unless it authenticates under `key` and is a
    /// well-formed version-1 hop message.
    pub fn open(key: &HopKey, sealed: &[u8]) -> Option<Self> {
        let pt = key.decrypt(sealed).ok()?;
        let (header, rest) = pt.split_first_chunk::<HEADER_LEN>()?;
        if header[..4] != HOP_MESSAGE_MAGIC || header[4] != UMBRA_VERSION {
            return None;
        }
        let kind = match header[5] {
            1 => HopMessageKind::Error,
            2 => HopMessageKind::Relayed,
            _ => return None,
        };
        let status = u16::from_be_bytes([header[6], header[7]]);
        let len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let len = usize::try_from(len).ok()?;
        let body = rest.get(..len)?;
        if rest[len..].iter().any(|b| *b != 0) {
            return None;
        }
        Some(Self {
            kind,
            status,
            body: body.to_vec(),
        })
    }
}
