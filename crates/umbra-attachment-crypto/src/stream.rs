//! Session's deterministic stream format (`groups-config-attachments.md` §3.1).
//!
//! ```text
//! blob            = 'S' ‖ header(24) ‖ C_1 ‖ … ‖ C_m
//! stream plaintext = 0x00 × (P − 1) ‖ 0x01 ‖ data        cut into 32 768-byte chunks
//! C_i             = secretstream push(chunk_i, tag 0; the last with TAG_FINAL)
//! header ‖ key    = BLAKE2b-56(seed32 ‖ data, key = domain byte)     (variant A)
//! ```
//!
//! Both directions hold one 32 KiB chunk at a time and write each encrypted or decrypted
//! chunk to a [`Write`] as soon as it is complete, so memory does not depend on the file size.
//! Encryption needs the plaintext twice (the key is a hash of it), hence [`encrypt`] takes a
//! [`Seek`]able input, or the caller runs a [`KeyDeriver`] pass itself and then an
//! [`Encryptor`].

use std::io::{Read, Seek, SeekFrom, Write};

use blake2::digest::Mac;
use blake2::digest::consts::U56;
use blake2::{Blake2b, Blake2bMac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::AttachmentError;
use crate::file_id::FileIdHasher;
use crate::secretstream::{ABYTES, HEADER_LEN, State, TAG_FINAL, TAG_MESSAGE};

/// First byte of a stream-format blob (§3.1).
pub const FORMAT_BYTE: u8 = b'S';
/// Bytes before the first encrypted chunk: the format byte and the 24-byte header.
pub const PREFIX_LEN: usize = 1 + HEADER_LEN;
/// Plaintext bytes per secretstream message (§3.1); the last one may be shorter.
pub const STREAM_CHUNK: usize = 32_768;
/// Encrypted bytes per secretstream message: a chunk plus 17 bytes of tag and MAC.
pub const STREAM_CHUNK_ENCRYPTED: usize = STREAM_CHUNK + ABYTES;
/// Largest plaintext Session encrypts without its "allow large" flag (§3.1 "Limits"); its blob
/// is 10 223 616 bytes, the most one onion request carries.
pub const MAX_REGULAR_SIZE: u64 = 10_218_286;
/// Largest plaintext with [`SizeLimit::Large`]: `AttachmentPointer.size` is a `uint32`
/// (`messages.md` §3.9), so no larger file can be described to a recipient.
pub const MAX_LARGE_SIZE: u64 = u32::MAX as u64;
/// Buffer size of the [`Read`]-based helpers.
const IO_BUFFER: usize = 64 * 1024;

/// What a stream is for: the domain byte keying the derivation (§3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Domain {
    /// An attachment (`0x00`).
    Attachment,
    /// A display picture (`0x01`); its key goes in the profile-key slot.
    ProfilePicture,
}

impl Domain {
    fn byte(self) -> u8 {
        match self {
            Domain::Attachment => 0x00,
            Domain::ProfilePicture => 0x01,
        }
    }
}

/// How large a plaintext the encryptor accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SizeLimit {
    /// Up to [`MAX_REGULAR_SIZE`]: what Session clients send and accept through one request.
    Regular,
    /// Up to [`MAX_LARGE_SIZE`]: Umbra's large files, uploaded in chunks.
    Large,
}

impl SizeLimit {
    /// The largest plaintext this limit allows.
    pub fn max(self) -> u64 {
        match self {
            SizeLimit::Regular => MAX_REGULAR_SIZE,
            SizeLimit::Large => MAX_LARGE_SIZE,
        }
    }

    fn check(self, size: u64) -> Result<(), AttachmentError> {
        if size > self.max() {
            return Err(AttachmentError::TooLarge {
                size,
                limit: self.max(),
            });
        }
        Ok(())
    }
}

/// The 32-byte key of a stream-format attachment: what `AttachmentPointer.key` carries
/// (§3.1 "Pointers"). Compared in constant time, wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AttachmentKey([u8; 32]);

impl AttachmentKey {
    /// Wraps 32 key bytes (e.g. from a received pointer).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        AttachmentKey(bytes)
    }

    /// Parses the key slot of a pointer; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(AttachmentKey)
    }

    /// The key bytes, to put in `AttachmentPointer.key`.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for AttachmentKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for AttachmentKey {}

impl std::fmt::Debug for AttachmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttachmentKey(..)")
    }
}

/// The key and header derived for one plaintext: everything an [`Encryptor`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSecrets {
    /// The attachment key (goes in the pointer).
    pub key: AttachmentKey,
    /// The secretstream header (goes in the blob, after `'S'`).
    pub header: [u8; HEADER_LEN],
}

/// Incremental key derivation, variant A of §3.1:
/// `nk = BLAKE2b-56(seed32 ‖ plaintext, key = domain byte)`, `header = nk[0..24]`,
/// `key = nk[24..56]`. Feed the whole plaintext in any pieces.
pub struct KeyDeriver {
    hash: Nk,
    len: u64,
}

/// The BLAKE2b-56 state. `Fallback` is never built: keying with one byte and no salt or
/// personalisation is always within BLAKE2b's limits, but the constructor returns a `Result`,
/// and a domain-separated unkeyed hash is a safer answer to the impossible than a panic.
enum Nk {
    Keyed(Blake2bMac<U56>),
    Fallback(Blake2b<U56>),
}

impl KeyDeriver {
    /// Starts a derivation for the uploader's 32-byte seed (the first 32 bytes of a longer
    /// secret key) and a domain.
    pub fn new(seed: &[u8; 32], domain: Domain) -> Self {
        let mut hash =
            match Blake2bMac::<U56>::new_with_salt_and_personal(Some(&[domain.byte()]), &[], &[]) {
                Ok(mac) => Nk::Keyed(mac),
                Err(_) => Nk::Fallback(Blake2b::<U56>::new_with_prefix([0xff, domain.byte()])),
            };
        hash.update(seed);
        KeyDeriver { hash, len: 0 }
    }

    /// Feeds the next plaintext bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.hash.update(data);
        self.len += data.len() as u64;
    }

    /// Plaintext bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True until the first non-empty [`update`](Self::update).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The derived key and header.
    pub fn finalize(self) -> StreamSecrets {
        let mut nk: [u8; 56] = match self.hash {
            Nk::Keyed(mac) => mac.finalize().into_bytes().into(),
            Nk::Fallback(h) => h.finalize().into(),
        };
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&nk[..HEADER_LEN]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&nk[HEADER_LEN..]);
        nk.zeroize();
        StreamSecrets {
            key: AttachmentKey(key),
            header,
        }
    }
}

impl Nk {
    fn update(&mut self, data: &[u8]) {
        match self {
            Nk::Keyed(mac) => Mac::update(mac, data),
            Nk::Fallback(h) => Digest::update(h, data),
        }
    }
}

/// Derives the key and header of a whole in-memory plaintext (§3.1, variant A).
pub fn derive_secrets(seed: &[u8; 32], domain: Domain, data: &[u8]) -> StreamSecrets {
    let mut d = KeyDeriver::new(seed, domain);
    d.update(data);
    d.finalize()
}

/// Padding bytes (including the final `0x01`) before `size` bytes of data (§3.1,
/// `encrypted_padding`). Always at least 1.
pub fn padding_len(size: u64) -> u64 {
    const C: u64 = STREAM_CHUNK as u64;
    const CE: u64 = STREAM_CHUNK_ENCRYPTED as u64;
    let chunks = size.div_ceil(C);
    let e = size + PREFIX_LEN as u64 + 1 + ABYTES as u64 * chunks;
    let f = bit_floor(e.max(131_072)) >> 5;
    let p0 = e.div_ceil(f) * f - e + 1;
    let mut overhead = (p0 / CE) * ABYTES as u64;
    if p0 % CE > C * chunks - size {
        overhead += ABYTES as u64;
    }
    p0 - overhead
}

/// Largest power of two not above `x` (`x` > 0).
fn bit_floor(x: u64) -> u64 {
    1u64 << (63 - x.leading_zeros())
}

/// Size of the blob for `size` bytes of data (§3.1):
/// `1 + 24 + N + P + 17·ceil((N + P) / 32768)`.
pub fn encrypted_size(size: u64) -> u64 {
    let stream = size + padding_len(size);
    PREFIX_LEN as u64 + stream + ABYTES as u64 * stream.div_ceil(STREAM_CHUNK as u64)
}

/// Incremental encryptor of one attachment whose size and secrets are known in advance.
///
/// Holds one 32 KiB chunk; each complete encrypted chunk is written out at once. Write the
/// blob to a temporary place: it is only a valid attachment once [`finish`](Self::finish)
/// returns `Ok`.
pub struct Encryptor {
    state: State,
    header: [u8; HEADER_LEN],
    pending: Vec<u8>,
    out_buf: Vec<u8>,
    announced: u64,
    received: u64,
    /// Padded-stream bytes not yet placed in `pending`.
    stream_left: u64,
    started: bool,
}

impl Encryptor {
    /// An encryptor for `size` bytes of plaintext with the given secrets.
    pub fn new(
        secrets: &StreamSecrets,
        size: u64,
        limit: SizeLimit,
    ) -> Result<Self, AttachmentError> {
        limit.check(size)?;
        Ok(Encryptor {
            state: State::new(secrets.key.as_bytes(), &secrets.header),
            header: secrets.header,
            pending: Vec::with_capacity(STREAM_CHUNK),
            out_buf: Vec::with_capacity(STREAM_CHUNK_ENCRYPTED),
            announced: size,
            received: 0,
            stream_left: size + padding_len(size),
            started: false,
        })
    }

    /// The blob size this encryptor will produce.
    pub fn encrypted_size(&self) -> u64 {
        encrypted_size(self.announced)
    }

    /// Encrypts the next plaintext bytes, writing every completed chunk to `out`.
    pub fn update<W: Write + ?Sized>(
        &mut self,
        data: &[u8],
        out: &mut W,
    ) -> Result<(), AttachmentError> {
        let received = self.received + data.len() as u64;
        if received > self.announced {
            return Err(AttachmentError::LengthMismatch {
                announced: self.announced,
                received,
            });
        }
        self.start(out)?;
        self.received = received;
        self.feed(data, out)
    }

    /// Writes the final chunk. Fails if fewer bytes than announced were given.
    pub fn finish<W: Write + ?Sized>(mut self, out: &mut W) -> Result<(), AttachmentError> {
        if self.received != self.announced {
            return Err(AttachmentError::LengthMismatch {
                announced: self.announced,
                received: self.received,
            });
        }
        // For empty data, the prefix and padding have not been written yet.
        self.start(out)?;
        out.flush()?;
        Ok(())
    }

    /// On first use: the prefix, then the padding `0x00 × (P − 1) ‖ 0x01`.
    fn start<W: Write + ?Sized>(&mut self, out: &mut W) -> Result<(), AttachmentError> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        out.write_all(&[FORMAT_BYTE])?;
        out.write_all(&self.header)?;
        let zeros = [0u8; STREAM_CHUNK];
        let mut zeros_left = padding_len(self.announced) - 1;
        while zeros_left > 0 {
            let n = zeros_left.min(STREAM_CHUNK as u64) as usize;
            self.feed(&zeros[..n], out)?;
            zeros_left -= n as u64;
        }
        self.feed(&[0x01], out)
    }

    /// Places padded-stream bytes in chunks, pushing each full chunk (tag 0 while more
    /// follow, `TAG_FINAL` for the last).
    fn feed<W: Write + ?Sized>(
        &mut self,
        mut data: &[u8],
        out: &mut W,
    ) -> Result<(), AttachmentError> {
        while !data.is_empty() {
            let n = (STREAM_CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.stream_left -= n as u64;
            if self.stream_left == 0 {
                self.push(TAG_FINAL, out)?;
            } else if self.pending.len() == STREAM_CHUNK {
                self.push(TAG_MESSAGE, out)?;
            }
        }
        Ok(())
    }

    fn push<W: Write + ?Sized>(&mut self, tag: u8, out: &mut W) -> Result<(), AttachmentError> {
        self.out_buf.clear();
        self.state.push(&self.pending, tag, &mut self.out_buf);
        self.pending.zeroize();
        self.pending.clear();
        out.write_all(&self.out_buf)?;
        Ok(())
    }
}

impl Drop for Encryptor {
    fn drop(&mut self) {
        self.pending.zeroize();
    }
}

/// Incremental decryptor of a stream-format blob.
///
/// Holds at most one 32 785-byte encrypted chunk; each verified chunk's data is written out
/// at once. The output is only the attachment once [`finish`](Self::finish) returns `Ok`:
/// on any error discard everything written (§3.1 "any failure discards the output").
pub struct Decryptor {
    key: AttachmentKey,
    prefix: Vec<u8>,
    state: Option<State>,
    pending: Vec<u8>,
    plain: Vec<u8>,
    chunks: u64,
    in_padding: bool,
    done: bool,
    written: u64,
}

impl Decryptor {
    /// A decryptor with the key from the pointer.
    pub fn new(key: &AttachmentKey) -> Self {
        Decryptor {
            key: key.clone(),
            prefix: Vec::with_capacity(PREFIX_LEN),
            state: None,
            pending: Vec::with_capacity(STREAM_CHUNK_ENCRYPTED),
            plain: Vec::with_capacity(STREAM_CHUNK),
            chunks: 0,
            in_padding: true,
            done: false,
            written: 0,
        }
    }

    /// Plaintext bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Decrypts the next blob bytes (any split), writing the data of each verified chunk.
    pub fn update<W: Write + ?Sized>(
        &mut self,
        mut data: &[u8],
        out: &mut W,
    ) -> Result<(), AttachmentError> {
        while !data.is_empty() {
            if self.done {
                return Err(AttachmentError::TrailingData);
            }
            if self.state.is_none() {
                let n = (PREFIX_LEN - self.prefix.len()).min(data.len());
                self.prefix.extend_from_slice(&data[..n]);
                data = &data[n..];
                self.start()?;
                continue;
            }
            let n = (STREAM_CHUNK_ENCRYPTED - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.pending.len() == STREAM_CHUNK_ENCRYPTED {
                self.pull(out)?;
            }
        }
        Ok(())
    }

    /// Checks the end of the stream and returns the plaintext size.
    pub fn finish<W: Write + ?Sized>(mut self, out: &mut W) -> Result<u64, AttachmentError> {
        if !self.done {
            if self.state.is_none() || self.pending.is_empty() {
                return Err(AttachmentError::Truncated);
            }
            self.pull(out)?;
            if !self.done {
                return Err(AttachmentError::Truncated);
            }
        }
        if self.in_padding {
            return Err(AttachmentError::InvalidPadding);
        }
        out.flush()?;
        Ok(self.written)
    }

    /// Serialises the whole state (secret: it holds the stream key) for a checkpoint:
    /// `prefix_len(1) ‖ prefix ‖ has_state(1) ‖ [state(44)] ‖ chunks(8) ‖ flags(1) ‖
    /// written(8) ‖ pending_len(4) ‖ pending`, integers little-endian.
    pub(crate) fn save(&self, out: &mut Vec<u8>) {
        out.push(self.prefix.len() as u8);
        out.extend_from_slice(&self.prefix);
        match &self.state {
            Some(state) => {
                out.push(1);
                let mut bytes = state.to_bytes();
                out.extend_from_slice(&bytes);
                bytes.zeroize();
            }
            None => out.push(0),
        }
        out.extend_from_slice(&self.chunks.to_le_bytes());
        out.push(u8::from(self.in_padding) | (u8::from(self.done) << 1));
        out.extend_from_slice(&self.written.to_le_bytes());
        out.extend_from_slice(&(self.pending.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.pending);
    }

    /// The inverse of [`save`](Self::save); `None` if `bytes` is not exactly one saved state.
    pub(crate) fn load(key: &AttachmentKey, mut bytes: &[u8]) -> Option<Self> {
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, rest) = bytes.split_at_checked(n)?;
            bytes = rest;
            Some(head)
        };
        let mut dec = Decryptor::new(key);
        let prefix_len = usize::from(*take(1)?.first()?);
        if prefix_len > PREFIX_LEN {
            return None;
        }
        dec.prefix.extend_from_slice(take(prefix_len)?);
        match take(1)? {
            [0] if prefix_len < PREFIX_LEN => {}
            [1] if prefix_len == PREFIX_LEN => {
                let state: &[u8; 44] = take(44)?.try_into().ok()?;
                dec.state = Some(State::from_bytes(state));
            }
            _ => return None,
        }
        dec.chunks = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let flags = *take(1)?.first()?;
        if flags > 3 {
            return None;
        }
        dec.in_padding = flags & 1 != 0;
        dec.done = flags & 2 != 0;
        dec.written = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let pending_len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        if pending_len >= STREAM_CHUNK_ENCRYPTED {
            return None;
        }
        dec.pending.extend_from_slice(take(pending_len)?);
        if !bytes.is_empty() {
            return None;
        }
        Some(dec)
    }

    fn start(&mut self) -> Result<(), AttachmentError> {
        if let Some(&first_byte) = self.prefix.first()
            && first_byte != FORMAT_BYTE
        {
            return Err(AttachmentError::UnknownFormat { first_byte });
        }
        if self.prefix.len() == PREFIX_LEN {
            let mut header = [0u8; HEADER_LEN];
            header.copy_from_slice(&self.prefix[1..]);
            self.state = Some(State::new(self.key.as_bytes(), &header));
        }
        Ok(())
    }

    fn pull<W: Write + ?Sized>(&mut self, out: &mut W) -> Result<(), AttachmentError> {
        let Some(state) = self.state.as_mut() else {
            return Err(AttachmentError::Truncated);
        };
        if self.pending.len() < ABYTES {
            return Err(AttachmentError::Truncated);
        }
        self.plain.clear();
        let Some(tag) = state.pull(&self.pending, &mut self.plain) else {
            return Err(AttachmentError::ChunkAuthentication { index: self.chunks });
        };
        self.pending.clear();
        self.chunks += 1;
        if tag == TAG_FINAL {
            self.done = true;
        }
        let mut data = &self.plain[..];
        if self.in_padding {
            match data.iter().position(|&b| b != 0) {
                None => data = &[],
                Some(i) if data[i] == 0x01 => {
                    self.in_padding = false;
                    data = &data[i + 1..];
                }
                Some(_) => return Err(AttachmentError::InvalidPadding),
            }
        }
        out.write_all(data)?;
        self.written += data.len() as u64;
        self.plain.zeroize();
        Ok(())
    }
}

/// What [`encrypt`] produced: the pointer's fields and the blob's identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedAttachment {
    /// `AttachmentPointer.key` (32 bytes; the pointer omits `digest`, the URL gets `#d`).
    pub key: AttachmentKey,
    /// `AttachmentPointer.size`: the plaintext size.
    pub size: u64,
    /// Bytes written: the blob size, [`encrypted_size`]`(size)`.
    pub encrypted_size: u64,
    /// SHA-256 of the blob (what a legacy pointer's `digest` would hold; useful to check a
    /// download end to end).
    pub sha256: [u8; 32],
    /// The file server's hash ID of the blob (`groups-config-attachments.md` §3.3).
    pub file_id: String,
}

/// Encrypts everything `input` yields from its current position, in two passes (derive the
/// key, then encrypt), writing the blob to `output` through fixed-size buffers.
///
/// Fails with [`AttachmentError::InputChanged`] if the input differs between the passes.
pub fn encrypt<R, W>(
    seed: &[u8; 32],
    domain: Domain,
    limit: SizeLimit,
    input: &mut R,
    output: &mut W,
) -> Result<EncryptedAttachment, AttachmentError>
where
    R: Read + Seek + ?Sized,
    W: Write + ?Sized,
{
    let start = input.stream_position()?;
    let mut buf = vec![0u8; IO_BUFFER];
    let mut deriver = KeyDeriver::new(seed, domain);
    loop {
        let n = read_some(input, &mut buf)?;
        if n == 0 {
            break;
        }
        deriver.update(&buf[..n]);
        limit.check(deriver.len())?;
    }
    let size = deriver.len();
    let secrets = deriver.finalize();
    input.seek(SeekFrom::Start(start))?;

    let mut check = KeyDeriver::new(seed, domain);
    let mut enc = Encryptor::new(&secrets, size, limit)?;
    let mut tee = Tee::new(output);
    loop {
        let n = read_some(input, &mut buf)?;
        if n == 0 {
            break;
        }
        check.update(&buf[..n]);
        if check.len() > size {
            return Err(AttachmentError::InputChanged);
        }
        enc.update(&buf[..n], &mut tee)?;
    }
    buf.zeroize();
    if check.len() != size || check.finalize() != secrets {
        return Err(AttachmentError::InputChanged);
    }
    enc.finish(&mut tee)?;
    let (sha256, file_id, encrypted_size) = tee.finish();
    Ok(EncryptedAttachment {
        key: secrets.key,
        size,
        encrypted_size,
        sha256,
        file_id,
    })
}

/// Encrypts an in-memory plaintext; the blob is returned with the pointer fields.
pub fn encrypt_to_vec(
    seed: &[u8; 32],
    domain: Domain,
    limit: SizeLimit,
    data: &[u8],
) -> Result<(Vec<u8>, EncryptedAttachment), AttachmentError> {
    let mut blob = Vec::new();
    let info = encrypt(
        seed,
        domain,
        limit,
        &mut std::io::Cursor::new(data),
        &mut blob,
    )?;
    Ok((blob, info))
}

/// Decrypts a blob from `input` to `output` through fixed-size buffers and returns the
/// plaintext size. On error, discard what was written.
pub fn decrypt<R, W>(
    key: &AttachmentKey,
    input: &mut R,
    output: &mut W,
) -> Result<u64, AttachmentError>
where
    R: Read + ?Sized,
    W: Write + ?Sized,
{
    let mut dec = Decryptor::new(key);
    let mut buf = vec![0u8; IO_BUFFER];
    loop {
        let n = read_some(input, &mut buf)?;
        if n == 0 {
            break;
        }
        dec.update(&buf[..n], output)?;
    }
    dec.finish(output)
}

/// Decrypts an in-memory blob.
pub fn decrypt_to_vec(key: &AttachmentKey, blob: &[u8]) -> Result<Vec<u8>, AttachmentError> {
    let mut out = Vec::with_capacity(blob.len());
    let mut dec = Decryptor::new(key);
    dec.update(blob, &mut out)?;
    dec.finish(&mut out)?;
    Ok(out)
}

/// `read` that retries on `Interrupted`.
fn read_some<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<usize, AttachmentError> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(AttachmentError::Io(e)),
        }
    }
}

/// Passes writes through while hashing them (SHA-256 and the file server ID).
struct Tee<'a, W: Write + ?Sized> {
    inner: &'a mut W,
    sha: Sha256,
    id: FileIdHasher,
    len: u64,
}

impl<'a, W: Write + ?Sized> Tee<'a, W> {
    fn new(inner: &'a mut W) -> Self {
        Tee {
            inner,
            sha: Sha256::new(),
            id: FileIdHasher::new(),
            len: 0,
        }
    }

    fn finish(self) -> ([u8; 32], String, u64) {
        (self.sha.finalize().into(), self.id.finalize(), self.len)
    }
}

impl<W: Write + ?Sized> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.id.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `'S' ‖ header ‖ push(chunk, TAG_FINAL)` under key `[4; 32]`: a one-chunk blob whose
    /// content no Umbra encoder would produce.
    fn one_chunk_blob(chunk: &[u8]) -> (AttachmentKey, Vec<u8>) {
        let key = AttachmentKey::from_bytes([4; 32]);
        let header = [8u8; HEADER_LEN];
        let mut blob = vec![FORMAT_BYTE];
        blob.extend_from_slice(&header);
        State::new(key.as_bytes(), &header).push(chunk, TAG_FINAL, &mut blob);
        (key, blob)
    }

    /// A final chunk that is exactly full (Umbra's padding never makes one, another encoder
    /// may): the stream ends there and any byte after it is refused.
    #[test]
    fn bytes_after_a_full_final_chunk_are_trailing_data() {
        let mut chunk = vec![0x01u8];
        chunk.extend(std::iter::repeat_n(0x61, STREAM_CHUNK - 1));
        let (key, mut blob) = one_chunk_blob(&chunk);
        assert_eq!(
            decrypt_to_vec(&key, &blob).map(|p| p.len()).ok(),
            Some(STREAM_CHUNK - 1)
        );
        blob.push(0);
        assert!(matches!(
            decrypt_to_vec(&key, &blob),
            Err(AttachmentError::TrailingData)
        ));
    }

    #[test]
    fn all_padding_and_no_marker_is_invalid() {
        let key = AttachmentKey::from_bytes([4; 32]);
        let header = [8u8; HEADER_LEN];
        let mut blob = vec![FORMAT_BYTE];
        blob.extend_from_slice(&header);
        State::new(key.as_bytes(), &header).push(&[0; 100], TAG_FINAL, &mut blob);
        assert!(matches!(
            decrypt_to_vec(&key, &blob),
            Err(AttachmentError::InvalidPadding)
        ));
        let mut blob = vec![FORMAT_BYTE];
        blob.extend_from_slice(&header);
        State::new(key.as_bytes(), &header).push(&[0, 0, 2, 1], TAG_FINAL, &mut blob);
        assert!(matches!(
            decrypt_to_vec(&key, &blob),
            Err(AttachmentError::InvalidPadding)
        ));
    }
}
