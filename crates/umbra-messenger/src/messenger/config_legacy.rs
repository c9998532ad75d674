//! The legacy wrapper some libsession versions put around user configs for old clients
//! (`identity-and-crypto.md` §7.3, `messages.md` §6.1): the encrypted config bytes become
//! `SharedConfigMessage.data` (field 3) inside `Content.sharedConfigMessage` (field 11),
//! padded with one `0x80`, encrypted to ourselves, in an `Envelope` in a `WebSocketMessage`.
//! One client release wrapped twice, so readers unwrap up to twice; bytes that do not unwrap
//! are the bare encrypted config.
//!
//! `Content` as umbra-wire models it has no field 11 (nothing else uses it), so the two
//! fields are read here with a small protobuf reader, bounded by its input and never
//! panicking.

use umbra_crypto::{Identity, session_v1};
use umbra_wire::envelope;
use umbra_wire::one_to_one::unwrap_envelope;

/// `Content.sharedConfigMessage`.
const CONTENT_SHARED_CONFIG: u64 = 11;
/// `SharedConfigMessage.data`.
const SHARED_CONFIG_DATA: u64 = 3;
/// Wrapping levels removed at most (one release wrapped twice).
const MAX_WRAPS: usize = 2;

/// The encrypted config inside `stored`: the bytes themselves when they are not wrapped, the
/// wrapped bytes otherwise (unwrapping up to twice). Only a wrapper encrypted and signed by
/// this account counts.
pub(super) fn unwrap_config(identity: &Identity, stored: &[u8]) -> Vec<u8> {
    let mut data = stored.to_vec();
    for _ in 0..MAX_WRAPS {
        match unwrap_once(identity, &data) {
            Some(inner) => data = inner,
            None => break,
        }
    }
    data
}

/// One level of the wrapper, or `None` when `stored` is not wrapped.
fn unwrap_once(identity: &Identity, stored: &[u8]) -> Option<Vec<u8>> {
    let env = unwrap_envelope(stored).ok()?;
    if env.r#type != envelope::Type::SessionMessage as i32 {
        return None;
    }
    let opened = session_v1::decrypt(identity, env.content.as_deref()?).ok()?;
    if opened.sender != identity.session_id() {
        return None;
    }
    let content = session_v1::unpad(&opened.plaintext);
    let shared = length_delimited(content, CONTENT_SHARED_CONFIG)?;
    length_delimited(shared, SHARED_CONFIG_DATA).map(<[u8]>::to_vec)
}

/// Reads a protobuf varint from the front of `buf`.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The last occurrence of length-delimited field `field` in the protobuf message `msg`
/// (protobuf's rule for a repeated non-repeated field); `None` if it is absent or `msg` is
/// malformed.
fn length_delimited(msg: &[u8], field: u64) -> Option<&[u8]> {
    let mut buf = msg;
    let mut found = None;
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let skip = match key & 7 {
            0 => {
                varint(&mut buf)?;
                0
            }
            1 => 8,
            2 => {
                let len = usize::try_from(varint(&mut buf)?).ok()?;
                if len > buf.len() {
                    return None;
                }
                if key >> 3 == field {
                    found = Some(&buf[..len]);
                }
                len
            }
            5 => 4,
            _ => return None,
        };
        buf = buf.get(skip..)?;
    }
    found
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use umbra_crypto::SeededRandom;
    use umbra_wire::Envelope;
    use umbra_wire::one_to_one::wrap_envelope;

    /// A protobuf length-delimited field.
    fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
        out.push(number << 3 | 2);
        let mut len = bytes.len();
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(bytes);
    }

    /// `config` wrapped as libsession's legacy writer does (§7.3).
    pub(crate) fn wrap(identity: &Identity, config: &[u8], kind: u8, seqno: u8) -> Vec<u8> {
        let mut shared = vec![0x08, kind, 0x10, seqno];
        field(&mut shared, 3, config);
        // A varint field (15, sigTimestamp) before it, which the reader skips.
        let mut content = vec![15 << 3, 1];
        field(&mut content, 11, &shared);
        content.push(0x80);
        let sealed =
            session_v1::encrypt_deterministic(identity, &identity.session_id(), &content).unwrap();
        wrap_envelope(&Envelope {
            r#type: envelope::Type::SessionMessage as i32,
            source: None,
            timestamp: 1,
            source_device: None,
            content: Some(sealed),
            pro_sig: None,
        })
    }

    #[test]
    fn wrapped_configs_unwrap_once_or_twice_and_bare_ones_stay() {
        let me = Identity::generate(&mut SeededRandom::new(5));
        let config = vec![0xab; 300];
        assert_eq!(unwrap_config(&me, &config), config);
        let once = wrap(&me, &config, 2, 7);
        assert_eq!(unwrap_config(&me, &once), config);
        let twice = wrap(&me, &once, 2, 7);
        assert_eq!(unwrap_config(&me, &twice), config);
        // Someone else's wrapper does not open: the bytes are left as they are.
        let other = Identity::generate(&mut SeededRandom::new(6));
        let foreign = wrap(&other, &config, 2, 7);
        assert_eq!(unwrap_config(&me, &foreign), foreign);
    }

    #[test]
    fn the_protobuf_reader_refuses_malformed_input() {
        assert_eq!(length_delimited(&[0x5a, 0x05, 1, 2], 11), None);
        assert_eq!(
            length_delimited(&[0x5a, 0x02, 1, 2], 11),
            Some(&[1u8, 2][..])
        );
        assert_eq!(
            length_delimited(&[0x08, 0x96, 0x01, 0x5a, 0x00], 11),
            Some(&[][..])
        );
        assert_eq!(length_delimited(&[0x0b], 1), None); // groups are not read
        assert_eq!(length_delimited(&[0xff; 12], 1), None);
        assert_eq!(length_delimited(&[0x09, 1, 2], 1), None); // truncated fixed64
    }
}
