//! Entry points for the cargo-fuzz targets (`fuzz/` at the workspace root), behind the
//! `fuzzing` feature: the crate-private parsers of network bytes, exposed as they are, plus the
//! encoders a round-trip property needs. Not an API; nothing here is used by the crate itself.

use serde_json::{Map, Value};

use crate::UmbraOptions;
use crate::bencode;
use crate::frame;

/// A parsed frame: the length-prefixed payload, the control JSON, the length without trailing
/// whitespace.
pub type Frame = (Vec<u8>, Map<String, Value>, usize);

/// [`frame::parse`]: `Err` carries the message a node would answer with.
pub fn parse_frame(bytes: &[u8]) -> Result<Frame, String> {
    frame::parse(bytes)
        .map(|p| (p.payload.to_vec(), p.json, p.trimmed_len))
        .map_err(|e| e.detail())
}

/// [`frame::encode_padded`]: `payload ‖ json` framed, then `pad` spaces.
pub fn encode_frame_padded(payload: &[u8], json: &[u8], pad: usize) -> Vec<u8> {
    frame::encode_padded(payload, json, pad)
}

/// Decodes `bytes` as one bencoded value and encodes it again (`None` when it does not decode).
///
/// The decoder accepts only canonical bencoding (no leading zeros, dict keys strictly
/// ascending), so a value that decodes re-encodes to exactly its input.
pub fn bencode_reencode(bytes: &[u8]) -> Option<Vec<u8>> {
    let v = bencode::decode(bytes).ok()?;
    let mut out = Vec::with_capacity(bytes.len());
    encode(&v, &mut out);
    Some(out)
}

fn encode(v: &bencode::Value<'_>, out: &mut Vec<u8>) {
    match v {
        bencode::Value::Bytes(b) => bencode::put_bytes(out, b),
        bencode::Value::Int(n) => bencode::put_int(out, *n),
        bencode::Value::List(items) => {
            out.push(b'l');
            for item in items {
                encode(item, out);
            }
            out.push(b'e');
        }
        bencode::Value::Dict(items) => {
            out.push(b'd');
            for (k, item) in items {
                bencode::put_bytes(out, k);
                encode(item, out);
            }
            out.push(b'e');
        }
    }
}

/// [`UmbraOptions`] as a node reads them from a control JSON object.
pub fn umbra_options_from_json(map: &Map<String, Value>) -> Option<UmbraOptions> {
    UmbraOptions::from_json(map)
}

/// [`UmbraOptions`] as a client writes them (the value of the `umbra` key).
pub fn umbra_options_to_json(options: UmbraOptions) -> Value {
    options.to_json()
}
