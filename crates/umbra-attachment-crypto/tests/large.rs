//! A 64 MiB file generated on the fly goes through `encrypt` into a decryptor and back out,
//! never held in memory: the reader makes bytes as they are read, the blob is decrypted as it
//! is written, and the plaintext is compared as it comes out. Every write the encryptor makes
//! is at most one encrypted chunk, so its memory does not depend on the file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Seek, SeekFrom, Write};

use umbra_attachment_crypto::{
    AttachmentKey, Decryptor, Domain, PREFIX_LEN, STREAM_CHUNK_ENCRYPTED, SizeLimit, encrypt,
    encrypted_size,
};

const SIZE: u64 = 64 << 20;

const BLOCK: u64 = 1 << 16;

/// The generated file, 64 KiB at a time: a fixed pseudo-random block with its index stamped
/// in its first 8 bytes, so no two blocks (and no two 32 KiB chunks) are alike. Built by
/// copying, so the test spends its time in the code under test.
struct Pattern {
    table: Vec<u8>,
    index: u64,
    block: Vec<u8>,
}

impl Pattern {
    fn new() -> Self {
        let mut x = 0x9e37_79b9_u32;
        let table: Vec<u8> = (0..BLOCK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut p = Pattern {
            block: table.clone(),
            table,
            index: 0,
        };
        p.stamp(0);
        p
    }

    fn stamp(&mut self, index: u64) {
        self.block.copy_from_slice(&self.table);
        self.block[..8].copy_from_slice(&index.to_le_bytes());
        self.index = index;
    }

    /// Up to `len` bytes of the file from `pos`, within one block.
    fn at(&mut self, pos: u64, len: usize) -> &[u8] {
        if pos / BLOCK != self.index {
            self.stamp(pos / BLOCK);
        }
        let off = (pos % BLOCK) as usize;
        let n = len.min(BLOCK as usize - off);
        &self.block[off..off + n]
    }
}

struct Generated {
    pattern: Pattern,
    pos: u64,
    largest_read: usize,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = (SIZE - self.pos).min(buf.len() as u64) as usize;
        let src = self.pattern.at(self.pos, want);
        let n = src.len();
        buf[..n].copy_from_slice(src);
        self.pos += n as u64;
        self.largest_read = self.largest_read.max(buf.len());
        Ok(n)
    }
}

impl Seek for Generated {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match pos {
            SeekFrom::Start(p) => self.pos = p,
            SeekFrom::Current(0) => {}
            _ => return Err(std::io::Error::other("only absolute seeks")),
        }
        Ok(self.pos)
    }
}

/// Checks plaintext against the generator as it arrives.
struct Check {
    pattern: Pattern,
    pos: u64,
}

impl Write for Check {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let len = buf.len();
        while !buf.is_empty() {
            let want = self.pattern.at(self.pos, buf.len());
            let n = want.len();
            assert!(
                want == &buf[..n],
                "plaintext differs in [{}, {})",
                self.pos,
                self.pos + n as u64
            );
            self.pos += n as u64;
            buf = &buf[n..];
        }
        Ok(len)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decrypts the blob as the encryptor writes it; records the largest single write.
struct DecryptAsWritten {
    dec: Decryptor,
    check: Check,
    blob_len: u64,
    largest_write: usize,
}

impl Write for DecryptAsWritten {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.largest_write = self.largest_write.max(buf.len());
        self.blob_len += buf.len() as u64;
        self.dec
            .update(buf, &mut self.check)
            .map_err(std::io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn sixty_four_mib_stream_through_fixed_buffers() {
    let mut input = Generated {
        pattern: Pattern::new(),
        pos: 0,
        largest_read: 0,
    };
    // The decrypting sink needs the key before `encrypt` returns it: derive it in a pass of
    // its own (as `encrypt` does), then check `encrypt` found the same.
    let mut deriver = umbra_attachment_crypto::KeyDeriver::new(&[1; 32], Domain::Attachment);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = input.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        deriver.update(&buf[..n]);
    }
    let key: AttachmentKey = deriver.finalize().key;
    input.seek(SeekFrom::Start(0)).unwrap();

    let mut sink = DecryptAsWritten {
        dec: Decryptor::new(&key),
        check: Check {
            pattern: Pattern::new(),
            pos: 0,
        },
        blob_len: 0,
        largest_write: 0,
    };
    let info = encrypt(
        &[1; 32],
        Domain::Attachment,
        SizeLimit::Large,
        &mut input,
        &mut sink,
    )
    .unwrap();
    assert_eq!(info.key, key);
    assert_eq!(info.size, SIZE);
    assert_eq!(sink.blob_len, encrypted_size(SIZE));
    assert_eq!(info.encrypted_size, sink.blob_len);
    // Bounded buffers: the helper reads 64 KiB at a time and writes one chunk at a time.
    assert!(
        input.largest_read <= 1 << 16,
        "read buffer {}",
        input.largest_read
    );
    assert!(
        sink.largest_write <= STREAM_CHUNK_ENCRYPTED.max(PREFIX_LEN),
        "write {}",
        sink.largest_write
    );
    let DecryptAsWritten { dec, mut check, .. } = sink;
    assert_eq!(dec.finish(&mut check).unwrap(), SIZE);
    assert_eq!(check.pos, SIZE);
}
