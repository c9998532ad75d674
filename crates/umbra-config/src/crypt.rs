//! Config encryption, padding, compression and multi-part messages
//! (`identity-and-crypto.md` §7.1–7.2, `groups-config-attachments.md` §2.1, §2.9).

use std::io::Read as _;

use blake2::digest::consts::{U24, U32};
use blake2::digest::{Digest, KeyInit, Mac};
use blake2::{Blake2b, Blake2bMac};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::AeadInOut;
use zeroize::Zeroizing;

use crate::ConfigError;
use crate::bt;

/// XChaCha20-Poly1305 tag (16) plus the nonce appended to the ciphertext (24).
pub const OVERHEAD: usize = 40;
/// Largest stored config message: the storage message limit (`identity-and-crypto.md` §7.2).
pub const MAX_MESSAGE: usize = 76_800;
/// Largest whole config, multi-part included (§2.9).
pub const MAX_TOTAL: usize = 5_000_000;
/// Most parts of a multi-part config (§2.9).
pub const MAX_PARTS: usize = 255;
/// Bytes of `padded` per part: 76 800 − 40 (encryption) − 50 (the part's own framing).
pub const PART_CHUNK: usize = MAX_MESSAGE - OVERHEAD - 50;

const NONCE_KEY_PREFIX: &[u8] = b"libsessionutil-config-encrypted-";
const TAG: usize = 16;
const NONCE: usize = 24;

/// The size a plaintext of `size` bytes is zero-padded to, so that `padded + overhead` is a
/// multiple of a chunk that grows with the size (`identity-and-crypto.md` §7.2).
pub fn padded_size(size: usize, overhead: usize) -> usize {
    let s2 = size.saturating_add(overhead);
    let chunk = match s2 {
        0..5120 => 256,
        5120..20480 => 1024,
        20480..40960 => 2048,
        _ => 5120,
    };
    s2.div_ceil(chunk)
        .saturating_mul(chunk)
        .saturating_sub(overhead)
}

fn check_domain(domain: &str) -> Result<(), ConfigError> {
    if (1..=24).contains(&domain.len()) {
        Ok(())
    } else {
        Err(ConfigError::BadDomain(domain.len()))
    }
}

fn message_key(key_base: &[u8; 32], len: usize, domain: &str) -> Zeroizing<[u8; 32]> {
    let mut h = Blake2b::<U32>::new();
    Digest::update(&mut h, key_base);
    Digest::update(&mut h, (len as u64).to_be_bytes());
    Digest::update(&mut h, domain.as_bytes());
    Zeroizing::new(h.finalize().into())
}

fn as_key(key: &Zeroizing<[u8; 32]>) -> &chacha20poly1305::Key {
    let k: &[u8; 32] = key;
    k.into()
}

fn nonce(plaintext: &[u8], domain: &str) -> Result<[u8; NONCE], ConfigError> {
    let key = [NONCE_KEY_PREFIX, domain.as_bytes()].concat();
    let mut mac = <Blake2bMac<U24> as KeyInit>::new_from_slice(&key)
        .map_err(|_| ConfigError::BadDomain(domain.len()))?;
    Mac::update(&mut mac, plaintext);
    Ok(mac.finalize().into_bytes().into())
}

/// Deterministic config encryption (§7.1): `XChaCha20-Poly1305(plaintext) ‖ nonce`, the key
/// from `key_base`, the plaintext's length and `domain`, the nonce a keyed hash of the
/// plaintext. The same plaintext always gives the same bytes. No padding is added here.
pub fn encrypt(
    key_base: &[u8; 32],
    domain: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, ConfigError> {
    check_domain(domain)?;
    let key = message_key(key_base, plaintext.len(), domain);
    let nonce = nonce(plaintext, domain)?;
    let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
    out.extend_from_slice(plaintext);
    let tag = XChaCha20Poly1305::new(as_key(&key))
        .encrypt_inout_detached((&nonce).into(), b"", out.as_mut_slice().into())
        .map_err(|_| ConfigError::TooLarge {
            what: "config plaintext",
            len: plaintext.len(),
            limit: MAX_TOTAL,
        })?;
    out.extend_from_slice(&tag);
    out.extend_from_slice(&nonce);
    Ok(out)
}

/// Opens [`encrypt`]'s output. Refuses more than [`MAX_MESSAGE`] bytes before any work.
pub fn decrypt(
    key_base: &[u8; 32],
    domain: &str,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    check_domain(domain)?;
    if ciphertext.len() > MAX_MESSAGE {
        return Err(ConfigError::TooLarge {
            what: "encrypted config message",
            len: ciphertext.len(),
            limit: MAX_MESSAGE,
        });
    }
    let Some(body_len) = ciphertext.len().checked_sub(OVERHEAD) else {
        return Err(ConfigError::Decrypt);
    };
    let (body, rest) = ciphertext.split_at(body_len);
    let (tag, nonce) = rest.split_at(TAG);
    let tag: &[u8; TAG] = tag.try_into().map_err(|_| ConfigError::Decrypt)?;
    let nonce: &[u8; NONCE] = nonce.try_into().map_err(|_| ConfigError::Decrypt)?;
    let key = message_key(key_base, body_len, domain);
    let mut out = Zeroizing::new(body.to_vec());
    XChaCha20Poly1305::new(as_key(&key))
        .decrypt_inout_detached(nonce.into(), b"", out.as_mut_slice().into(), tag.into())
        .map_err(|_| ConfigError::Decrypt)?;
    Ok(out)
}

/// `plaintext` with zero bytes prepended up to [`padded_size`] (§7.2).
pub fn pad(plaintext: &[u8]) -> Vec<u8> {
    let size = padded_size(plaintext.len(), OVERHEAD);
    let mut out = vec![0u8; size.saturating_sub(plaintext.len())];
    out.extend_from_slice(plaintext);
    out
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&x| x == 0).count();
    &b[n..]
}

/// zstd level 1, as libsession compresses configs and group messages; `None` if zstd fails.
pub fn zstd_compress(data: &[u8]) -> Option<Vec<u8>> {
    zstd::bulk::compress(data, 1).ok()
}

/// zstd level 1 with a `z` prefix, kept only if smaller (§2.1).
fn compress(message: &[u8]) -> Vec<u8> {
    match zstd_compress(message) {
        Some(c) if c.len() + 1 < message.len() => [b"z".as_slice(), &c].concat(),
        _ => message.to_vec(),
    }
}

/// Inflates zstd data, refusing more than `limit` bytes of output (a small input can claim a
/// huge output) and zstd windows beyond 8 MiB (the decoder's memory).
pub fn zstd_decompress(z: &[u8], limit: usize) -> Result<Vec<u8>, ConfigError> {
    let fail = ConfigError::Decompress { limit };
    let mut dec = zstd::stream::read::Decoder::with_buffer(z).map_err(|_| fail.clone())?;
    dec.window_log_max(23).map_err(|_| fail.clone())?;
    let mut out = Vec::new();
    dec.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| fail.clone())?;
    if out.len() > limit {
        return Err(fail);
    }
    Ok(out)
}

/// Inflates a `z` config body within [`MAX_TOTAL`].
fn decompress(z: &[u8]) -> Result<Vec<u8>, ConfigError> {
    zstd_decompress(z, MAX_TOTAL)
}

/// The message dict out of a whole decrypted body: zeros stripped, `z` inflated, must be `d…`.
fn whole(body: &[u8]) -> Result<Vec<u8>, ConfigError> {
    let body = strip_zeros(body);
    match body.first() {
        Some(b'd') => Ok(body.to_vec()),
        Some(b'z') => {
            let inflated = decompress(&body[1..])?;
            match inflated.first() {
                Some(b'd') => Ok(inflated),
                Some(&other) => Err(ConfigError::UnknownForm(other)),
                None => Err(ConfigError::Message("empty")),
            }
        }
        Some(&other) => Err(ConfigError::UnknownForm(other)),
        None => Err(ConfigError::Message("empty")),
    }
}

/// One part of a multi-part config (§2.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// BLAKE2b-32 of the whole padded body; identifies the set of parts.
    pub final_hash: [u8; 32],
    /// This part's place, `< count`.
    pub index: u8,
    /// How many parts, `≥ 2`.
    pub count: u8,
    /// This part's slice of the padded body (non-empty).
    pub chunk: Vec<u8>,
}

/// A decrypted config message: a whole message dict, or one part of a multi-part one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The serialised message (starts with `d`); hash these bytes.
    Whole(Vec<u8>),
    /// A part, to be put together with [`assemble`].
    Part(Part),
}

/// Decrypts one stored config message and removes padding and compression.
pub fn open(key_base: &[u8; 32], domain: &str, ciphertext: &[u8]) -> Result<Opened, ConfigError> {
    let plain = decrypt(key_base, domain, ciphertext)?;
    let body = strip_zeros(&plain);
    if body.first() == Some(&b'm') {
        return Ok(Opened::Part(part(&body[1..])?));
    }
    whole(body).map(Opened::Whole)
}

fn part(list: &[u8]) -> Result<Part, ConfigError> {
    let bad = ConfigError::Multipart;
    // Bytes after the list are ignored: the encoder may leave zeros there (§2.9).
    let (bt::Value::List(items), _) = bt::decode_prefix(list)? else {
        return Err(bad("part is not a list"));
    };
    let [
        bt::Value::Bytes(h),
        bt::Value::Bytes(i),
        bt::Value::Bytes(n),
        bt::Value::Bytes(chunk),
    ] = items.as_slice()
    else {
        return Err(bad("part is not [hash, index, count, chunk]"));
    };
    let final_hash: [u8; 32] = h
        .as_slice()
        .try_into()
        .map_err(|_| bad("hash is not 32 bytes"))?;
    let (&[index], &[count]) = (i.as_slice(), n.as_slice()) else {
        return Err(bad("index or count is not one byte"));
    };
    if count < 2 || index >= count || chunk.is_empty() {
        return Err(bad("index, count or chunk out of range"));
    }
    Ok(Part {
        final_hash,
        index,
        count,
        chunk: chunk.clone(),
    })
}

/// Puts a complete set of parts (any order, all with the same hash and count) back together
/// and opens it like a whole message.
pub fn assemble(parts: &[Part]) -> Result<Vec<u8>, ConfigError> {
    let bad = ConfigError::Multipart;
    let first = parts.first().ok_or(bad("no parts"))?;
    if parts.len() != usize::from(first.count)
        || parts
            .iter()
            .any(|p| p.count != first.count || p.final_hash != first.final_hash)
    {
        return Err(bad("parts disagree on their set"));
    }
    let mut sorted: Vec<&Part> = parts.iter().collect();
    sorted.sort_by_key(|p| p.index);
    if sorted
        .iter()
        .enumerate()
        .any(|(i, p)| usize::from(p.index) != i)
    {
        return Err(bad("a part index is missing or repeated"));
    }
    let total: usize = sorted.iter().map(|p| p.chunk.len()).sum();
    if total > MAX_TOTAL {
        return Err(ConfigError::TooLarge {
            what: "multi-part config",
            len: total,
            limit: MAX_TOTAL,
        });
    }
    let padded: Vec<u8> = sorted
        .iter()
        .flat_map(|p| p.chunk.iter().copied())
        .collect();
    if <[u8; 32]>::from(Blake2b::<U32>::digest(&padded)) != first.final_hash {
        return Err(bad("parts do not hash to their final hash"));
    }
    whole(&padded)
}

/// A serialised message ready to store: compressed if that is smaller, padded, encrypted; one
/// message, or several parts if it does not fit in one (§2.1, §2.9).
pub fn seal(
    key_base: &[u8; 32],
    domain: &str,
    message: &[u8],
) -> Result<Vec<Vec<u8>>, ConfigError> {
    let padded = pad(&compress(message));
    if padded.len() + OVERHEAD <= MAX_MESSAGE {
        return Ok(vec![encrypt(key_base, domain, &padded)?]);
    }
    if padded.len() > MAX_TOTAL {
        return Err(ConfigError::TooLarge {
            what: "config message",
            len: padded.len(),
            limit: MAX_TOTAL,
        });
    }
    let final_hash: [u8; 32] = Blake2b::<U32>::digest(&padded).into();
    let chunks: Vec<&[u8]> = padded.chunks(PART_CHUNK).collect();
    let count = u8::try_from(chunks.len()).map_err(|_| ConfigError::TooLarge {
        what: "config message parts",
        len: chunks.len(),
        limit: MAX_PARTS,
    })?;
    let mut out = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let index = u8::try_from(i).map_err(|_| ConfigError::TooLarge {
            what: "config message parts",
            len: i,
            limit: MAX_PARTS,
        })?;
        let mut p = b"ml".to_vec();
        bt::put_bytes(&mut p, &final_hash);
        bt::put_bytes(&mut p, &[index]);
        bt::put_bytes(&mut p, &[count]);
        bt::put_bytes(&mut p, chunk);
        p.push(b'e');
        out.push(encrypt(key_base, domain, &p)?);
    }
    Ok(out)
}
