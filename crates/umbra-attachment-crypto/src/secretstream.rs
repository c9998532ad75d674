//! libsodium's `crypto_secretstream_xchacha20poly1305`, built from HChaCha20, ChaCha20 (IETF)
//! and Poly1305 (no RustCrypto crate implements it).
//!
//! The state is a 32-byte key and a 12-byte nonce `counter(4, LE) ‖ inonce(8)`. Starting from
//! a 24-byte header: `key = HChaCha20(k, header[0..16])`, `counter = 1`,
//! `inonce = header[16..24]` (`groups-config-attachments.md` §3.1). Each message `m` with tag
//! `t` becomes `tag_byte ‖ c ‖ mac` (17 bytes of overhead):
//!
//! ```text
//! block 0 of ChaCha20(key, nonce)      → Poly1305 key (first 32 bytes)
//! block 1 XOR (t ‖ 0^63)               → the encrypted tag block; its first byte is sent
//! blocks 2.. XOR m                     → c
//! mac = Poly1305(tag block(64) ‖ c ‖ 0^(|c| mod 16) ‖ le64(|ad|) ‖ le64(64 + |c|))
//! inonce ^= mac[0..8]; counter += 1; rekey if t has the REKEY bit or counter wrapped to 0
//! ```
//!
//! Umbra never uses associated data, so `ad` is always empty here.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::{ChaCha20, R20, hchacha};
use poly1305::Poly1305;
use poly1305::universal_hash::{KeyInit, UniversalHash};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes a pushed message grows by: the tag byte and the 16-byte MAC.
pub(crate) const ABYTES: usize = 17;
/// Length of the stream header.
pub(crate) const HEADER_LEN: usize = 24;
/// Tag of an ordinary message.
pub(crate) const TAG_MESSAGE: u8 = 0;
/// Tag of the last message of a stream.
pub(crate) const TAG_FINAL: u8 = 3;
/// The bit of a tag that asks both sides to rekey after the message.
const TAG_REKEY: u8 = 2;

/// One direction of a secretstream: the same state pushes and pulls.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct State {
    key: [u8; 32],
    nonce: [u8; 12],
}

impl State {
    /// The state `init_push`/`init_pull` produce for `header` and `key`.
    pub(crate) fn new(key: &[u8; 32], header: &[u8; HEADER_LEN]) -> Self {
        let mut input = [0u8; 16];
        input.copy_from_slice(&header[..16]);
        let mut subkey = hchacha::<R20>(&(*key).into(), &input.into());
        let mut state = State {
            key: [0; 32],
            nonce: [0; 12],
        };
        state.key.copy_from_slice(&subkey);
        subkey.zeroize();
        state.nonce[0] = 1;
        state.nonce[4..].copy_from_slice(&header[16..]);
        state
    }

    /// The state as `key(32) ‖ nonce(12)`, for a resumable checkpoint (secret).
    pub(crate) fn to_bytes(&self) -> [u8; 44] {
        let mut out = [0u8; 44];
        out[..32].copy_from_slice(&self.key);
        out[32..].copy_from_slice(&self.nonce);
        out
    }

    /// The inverse of [`to_bytes`](Self::to_bytes).
    pub(crate) fn from_bytes(bytes: &[u8; 44]) -> Self {
        let mut state = State {
            key: [0; 32],
            nonce: [0; 12],
        };
        state.key.copy_from_slice(&bytes[..32]);
        state.nonce.copy_from_slice(&bytes[32..]);
        state
    }

    fn cipher(&self) -> ChaCha20 {
        ChaCha20::new(&self.key.into(), &self.nonce.into())
    }

    /// After each message: `inonce ^= mac[0..8]`, `counter += 1`, and rekey when asked or when
    /// the counter wraps (libsodium's `crypto_secretstream_xchacha20poly1305_push` epilogue).
    fn advance(&mut self, mac: &[u8; 16], tag: u8) {
        for (n, m) in self.nonce[4..].iter_mut().zip(&mac[..8]) {
            *n ^= m;
        }
        let counter =
            u32::from_le_bytes([self.nonce[0], self.nonce[1], self.nonce[2], self.nonce[3]])
                .wrapping_add(1);
        self.nonce[..4].copy_from_slice(&counter.to_le_bytes());
        if tag & TAG_REKEY != 0 || counter == 0 {
            self.rekey();
        }
    }

    /// `crypto_secretstream_xchacha20poly1305_rekey`: `key ‖ inonce` is encrypted in place
    /// with the current state, then the counter restarts at 1.
    fn rekey(&mut self) {
        let mut buf = [0u8; 40];
        buf[..32].copy_from_slice(&self.key);
        buf[32..].copy_from_slice(&self.nonce[4..]);
        self.cipher().apply_keystream(&mut buf);
        self.key.copy_from_slice(&buf[..32]);
        self.nonce[4..].copy_from_slice(&buf[32..]);
        buf.zeroize();
        self.nonce[..4].copy_from_slice(&1u32.to_le_bytes());
    }

    /// Encrypts `m` with `tag`, appending `m.len() + 17` bytes to `out`.
    pub(crate) fn push(&mut self, m: &[u8], tag: u8, out: &mut Vec<u8>) {
        let mut cipher = self.cipher();
        // Keystream order: block 0 (Poly1305 key), block 1 (tag block), blocks 2.. (message).
        let mut poly_block = [0u8; 64];
        cipher.apply_keystream(&mut poly_block);
        let mut tag_block = [0u8; 64];
        tag_block[0] = tag;
        cipher.apply_keystream(&mut tag_block);
        let start = out.len();
        out.push(tag_block[0]);
        out.extend_from_slice(m);
        cipher.apply_keystream(&mut out[start + 1..]);
        let mac = mac_with_key(&poly_block, &tag_block, &out[start + 1..]);
        poly_block.zeroize();
        out.extend_from_slice(&mac);
        self.advance(&mac, tag);
    }

    /// Decrypts one pushed message `input` (`tag ‖ c ‖ mac`), appending the plaintext to
    /// `out` and returning the tag. `None` (and nothing appended, the state unchanged) if the
    /// message is shorter than 17 bytes or its MAC does not verify.
    pub(crate) fn pull(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<u8> {
        if input.len() < ABYTES {
            return None;
        }
        let (c, stored_mac) = input[1..].split_at(input.len() - ABYTES);
        let mut cipher = self.cipher();
        let mut poly_block = [0u8; 64];
        cipher.apply_keystream(&mut poly_block);
        let mut tag_block = [0u8; 64];
        cipher.apply_keystream(&mut tag_block);
        let tag = tag_block[0] ^ input[0];
        // The MAC covers the encrypted tag block with the byte as sent.
        tag_block[0] = input[0];
        let mac = mac_with_key(&poly_block, &tag_block, c);
        poly_block.zeroize();
        if !bool::from(mac.ct_eq(stored_mac)) {
            return None;
        }
        let start = out.len();
        out.extend_from_slice(c);
        cipher.apply_keystream(&mut out[start..]);
        self.advance(&mac, tag);
        Some(tag)
    }
}

/// The MAC of one message, keyed with the first 32 bytes of keystream block 0, over
/// `tag block(64) ‖ c ‖ 0^(|c| mod 16) ‖ le64(|ad| = 0) ‖ le64(64 + |c|)`.
///
/// libsodium pads `c` with `(0x10 - (sizeof block) + mlen) & 0xf` zero bytes, which by C's
/// precedence is `|c| mod 16`, not the `(16 − |c| mod 16) mod 16` of RFC 8439; the whole input
/// is then MACed as one unpadded Poly1305 message. Byte-exact compatibility needs the quirk.
fn mac_with_key(block0: &[u8; 64], tag_block: &[u8; 64], c: &[u8]) -> [u8; 16] {
    let mut poly_key = [0u8; 32];
    poly_key.copy_from_slice(&block0[..32]);
    let mut mac = PolyStream::new(&poly_key);
    poly_key.zeroize();
    mac.update(tag_block);
    mac.update(c);
    mac.update(&[0u8; 16][..c.len() % 16]);
    mac.update(&0u64.to_le_bytes());
    mac.update(&(64 + c.len() as u64).to_le_bytes());
    mac.finalize()
}

/// Poly1305 over a byte string fed in pieces of any length (the RustCrypto API takes whole
/// 16-byte blocks, or the unpadded tail at the end).
struct PolyStream {
    poly: Poly1305,
    buf: [u8; 16],
    len: usize,
}

impl PolyStream {
    fn new(key: &[u8; 32]) -> Self {
        PolyStream {
            poly: Poly1305::new(&(*key).into()),
            buf: [0; 16],
            len: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        if self.len > 0 {
            let n = (16 - self.len).min(data.len());
            self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
            if self.len < 16 {
                return;
            }
            self.poly.update(&[self.buf.into()]);
            self.len = 0;
        }
        let whole = data.len() - data.len() % 16;
        let (blocks, tail) = data.split_at(whole);
        let (blocks, _) = poly1305::Block::slice_as_chunks(blocks);
        self.poly.update(blocks);
        self.buf[..tail.len()].copy_from_slice(tail);
        self.len = tail.len();
    }

    fn finalize(mut self) -> [u8; 16] {
        let tail = self.buf;
        self.buf.zeroize();
        self.poly.compute_unpadded(&tail[..self.len]).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_then_pull_round_trips_and_refuses_a_flipped_bit() {
        let key = [7u8; 32];
        let header = [9u8; 24];
        let mut push = State::new(&key, &header);
        let mut pull = State::new(&key, &header);
        let mut c1 = Vec::new();
        push.push(b"hello", TAG_MESSAGE, &mut c1);
        let mut c2 = Vec::new();
        push.push(b"", TAG_FINAL, &mut c2);
        assert_eq!(c1.len(), 5 + ABYTES);
        let mut bad = c1.clone();
        bad[3] ^= 1;
        let mut out = Vec::new();
        assert_eq!(pull.clone().pull(&bad, &mut out), None);
        assert!(out.is_empty());
        assert_eq!(pull.pull(&c1, &mut out), Some(TAG_MESSAGE));
        assert_eq!(pull.pull(&c2, &mut out), Some(TAG_FINAL));
        assert_eq!(out, b"hello");
    }
}
