//! Downloading an attachment by message id: fetch the encrypted blob chunk by chunk through
//! onion paths into a partial file that survives interruptions, then check it (length,
//! SHA-256 against the pointer's digest, the file id against its content) while decrypting
//! to a temporary file, and only then move the file to where the caller asked.
//!
//! ```text
//! incoming/<msg>-<i>.part  ◄── GET /file/<id>/chunk/n, n = (part length / 1 MiB) … last
//!        │ one pass: SHA-256, file id, secretstream decrypt ──► .<name>.umbra-tmp
//!        ▼ all checks pass                                           │ rename
//!   discard .part                                                    ▼  out
//! ```
//!
//! A refused download (tampered, truncated, wrong key) is discarded whole, so the next try
//! starts from scratch rather than from bad bytes.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek as _, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use umbra_attachment_crypto::chunked::{CHUNK_SIZE, chunk_count, chunk_len};
use umbra_attachment_crypto::file_id::FILE_ID_LEN;
use umbra_attachment_crypto::legacy::LEGACY_MAX_BLOB;
use umbra_attachment_crypto::{AttachmentKey, Decryptor, FileIdHasher, encrypted_size};
use umbra_wire::{Attachment, AttachmentKeyBytes};

use super::db::{self, AttachmentRow};
use super::files::FileServer;
use super::model::{AttachmentState, MessageId, Progress, ProgressFn, TransferPhase};
use super::{Messenger, MessengerError};

/// Read buffer of the verification pass.
const READ_BUFFER: usize = 64 * 1024;

impl Messenger {
    /// Downloads attachment `index` (0 for the first) of message `message_id` from `server` to
    /// `out`, or to `<profile>/attachments/downloads/` under its own name. An interrupted download
    /// resumes from the chunks already fetched. The file appears at its place only after its
    /// size and digest have been checked. Returns where it is.
    ///
    /// # Errors
    /// [`MessengerError::NoAttachment`], [`MessengerError::ForeignFileServer`],
    /// [`MessengerError::FileServer`] (run again to resume),
    /// [`MessengerError::DownloadRefused`] (tampered or truncated: discarded),
    /// [`MessengerError::ProfileIo`].
    pub async fn download_attachment(
        &self,
        message_id: MessageId,
        index: u32,
        out: Option<&Path>,
        server: &FileServer,
        progress: ProgressFn,
    ) -> Result<PathBuf, MessengerError> {
        let row = db::message_attachments(&self.db(), message_id)
            .map_err(MessengerError::db("reading the attachment"))?
            .into_iter()
            .find(|r| r.idx == i64::from(index))
            .ok_or(MessengerError::NoAttachment(message_id))?;
        let a = &row.attachment;
        if a.url.base != server.url() {
            return Err(MessengerError::ForeignFileServer(a.url.base.clone()));
        }
        let out = match out {
            Some(p) => p.to_path_buf(),
            None => {
                let dir = self.dir.join("attachments").join("downloads");
                std::fs::create_dir_all(&dir)
                    .map_err(MessengerError::io("creating the download directory", &dir))?;
                // Two files of one message may share a name: the second on is numbered.
                let n = if index == 0 {
                    String::new()
                } else {
                    format!("-{}", index + 1)
                };
                dir.join(format!(
                    "{message_id}{n}-{}",
                    safe_name(a.file_name.as_deref())
                ))
            }
        };
        let incoming = self.dir.join("attachments").join("incoming");
        std::fs::create_dir_all(&incoming).map_err(MessengerError::io(
            "creating the attachment directory",
            &incoming,
        ))?;
        let part = incoming.join(format!("{message_id}-{}.part", row.idx));

        let blob_size = match &a.key {
            AttachmentKeyBytes::Stream(_) => encrypted_size(u64::from(a.size)),
            AttachmentKeyBytes::Legacy(_) => {
                let size = server.info(&a.url.file_id).await.map_err(download_error)?;
                if size > LEGACY_MAX_BLOB as u64 {
                    return Err(self.refuse(&row, &part, "a legacy attachment above 16 MiB"));
                }
                size
            }
        };
        fetch(server, a, &part, blob_size, &progress).await?;

        let tmp = temp_beside(&out);
        let (attachment, p, part_c, tmp_c) =
            (a.clone(), progress.clone(), part.clone(), tmp.clone());
        let checked = tokio::task::spawn_blocking(move || {
            verify_and_decrypt(&attachment, &part_c, &tmp_c, blob_size, &p)
        })
        .await
        .map_err(|_| MessengerError::Task("checking a download"))?;
        match checked {
            Ok(()) => {}
            Err(Check::Io(e)) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            Err(Check::Refused(why)) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(self.refuse(&row, &part, &why));
            }
        }
        std::fs::rename(&tmp, &out).map_err(MessengerError::io("writing", &out))?;
        let _ = std::fs::remove_file(&part);
        let shown = out.canonicalize().unwrap_or_else(|_| out.clone());
        db::set_attachment_state(
            &self.db(),
            message_id,
            row.idx,
            AttachmentState::Downloaded.to_i64(),
            shown.to_str(),
        )
        .map_err(MessengerError::db("saving the download"))?;
        Ok(shown)
    }

    /// Discards a refused download and records the refusal.
    fn refuse(&self, row: &AttachmentRow, part: &Path, why: &str) -> MessengerError {
        let _ = std::fs::remove_file(part);
        let _ = db::set_attachment_state(
            &self.db(),
            row.message_id,
            row.idx,
            AttachmentState::Failed.to_i64(),
            None,
        );
        tracing::debug!(message_id = %row.message_id, "download refused");
        MessengerError::DownloadRefused(why.to_owned())
    }
}

fn download_error(source: super::files::FileServerError) -> MessengerError {
    MessengerError::FileServer {
        what: "downloading the attachment (run the same command again to resume)",
        source,
    }
}

/// A file name safe to create in a directory: its last component, no control characters,
/// not hidden, at most 200 bytes.
fn safe_name(name: Option<&str>) -> String {
    let base = name
        .and_then(|n| n.rsplit(['/', '\\']).next())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>();
    let base = base.trim_start_matches('.').trim();
    let mut end = base.len().min(200);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    if end == 0 {
        "attachment".to_owned()
    } else {
        base[..end].to_owned()
    }
}

/// `.<name>.umbra-tmp` in `out`'s directory (a rename within one directory is atomic).
fn temp_beside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".to_owned());
    out.with_file_name(format!(".{name}.umbra-tmp"))
}

/// Fetches the chunks `part` lacks (whole chunks kept from an earlier run count).
async fn fetch(
    server: &FileServer,
    a: &Attachment,
    part: &Path,
    blob_size: u64,
    progress: &ProgressFn,
) -> Result<(), MessengerError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(part)
        .map_err(MessengerError::io("writing", part))?;
    let len = file
        .metadata()
        .map_err(MessengerError::io("reading", part))?
        .len();
    let count = chunk_count(blob_size);
    // Whole chunks only; a partial file longer than the blob is not this blob's: start over.
    let next = if len > blob_size {
        0
    } else {
        (len / CHUNK_SIZE).min(count)
    };
    let mut done = (next * CHUNK_SIZE).min(blob_size);
    file.set_len(done)
        .and_then(|()| file.seek(SeekFrom::Start(done)).map(drop))
        .map_err(MessengerError::io("writing", part))?;
    if next > 0 {
        tracing::debug!(next, count, "resuming a download");
    }
    progress(Progress {
        phase: TransferPhase::Downloading,
        done,
        total: blob_size,
    });
    for index in next..count {
        let chunk = server
            .get_chunk(&a.url.file_id, index)
            .await
            .map_err(download_error)?;
        let want = chunk_len(blob_size, index);
        if chunk.len() as u64 != want {
            // Keep the chunks before it: they are checked with the whole blob at the end.
            return Err(MessengerError::DownloadRefused(format!(
                "chunk {index} has {} bytes where {want} were expected (truncated or not this file)",
                chunk.len()
            )));
        }
        file.write_all(&chunk)
            .map_err(MessengerError::io("writing", part))?;
        done += want;
        progress(Progress {
            phase: TransferPhase::Downloading,
            done,
            total: blob_size,
        });
    }
    file.sync_data()
        .map_err(MessengerError::io("writing", part))?;
    Ok(())
}

/// Why a check failed: the local disk, or the download itself.
enum Check {
    Io(MessengerError),
    Refused(String),
}

/// Decrypts while checking; the plaintext lands in `tmp`, which the caller keeps only on
/// success.
fn verify_and_decrypt(
    a: &Attachment,
    part: &Path,
    tmp: &Path,
    blob_size: u64,
    progress: &ProgressFn,
) -> Result<(), Check> {
    let io = |what: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |e| Check::Io(MessengerError::io(what, &p)(e))
    };
    let len = std::fs::metadata(part).map_err(io("reading", part))?.len();
    if len != blob_size {
        return Err(Check::Refused(format!(
            "it has {len} bytes where {blob_size} were expected (truncated)"
        )));
    }
    let mut input = BufReader::new(File::open(part).map_err(io("reading", part))?);
    let mut output = BufWriter::new(File::create(tmp).map_err(io("writing", tmp))?);
    let mut sha = Sha256::new();
    let mut id = FileIdHasher::new();
    let written = match &a.key {
        AttachmentKeyBytes::Stream(k) => {
            let key = AttachmentKey::from_bytes(*k);
            let mut dec = Decryptor::new(&key);
            let mut buf = vec![0u8; READ_BUFFER];
            let mut done = 0u64;
            let mut failure = None;
            loop {
                let n = input.read(&mut buf).map_err(io("reading", part))?;
                if n == 0 {
                    break;
                }
                sha.update(&buf[..n]);
                id.update(&buf[..n]);
                // Keep hashing after a decryption failure: a digest mismatch is the better
                // explanation of what happened.
                if failure.is_none()
                    && let Err(e) = dec.update(&buf[..n], &mut output)
                {
                    failure = Some(e);
                }
                done += n as u64;
                if done % CHUNK_SIZE < n as u64 || done == blob_size {
                    progress(Progress {
                        phase: TransferPhase::Verifying,
                        done,
                        total: blob_size,
                    });
                }
            }
            check_hashes(a, sha, id)?;
            if let Some(e) = failure {
                return Err(Check::Refused(format!("it does not decrypt ({e})")));
            }
            dec.finish(&mut output)
                .map_err(|e| Check::Refused(format!("it does not decrypt ({e})")))?
        }
        AttachmentKeyBytes::Legacy(k) => {
            let mut blob = Vec::new();
            input
                .take(LEGACY_MAX_BLOB as u64 + 1)
                .read_to_end(&mut blob)
                .map_err(io("reading", part))?;
            sha.update(&blob);
            id.update(&blob);
            check_hashes(a, sha, id)?;
            let digest = a.digest.as_ref().map(|d| d.as_slice());
            let plain =
                umbra_attachment_crypto::legacy::decrypt(k, &blob, digest, Some(u64::from(a.size)))
                    .map_err(|e| Check::Refused(format!("it does not decrypt ({e})")))?;
            output.write_all(&plain).map_err(io("writing", tmp))?;
            plain.len() as u64
        }
    };
    output.flush().map_err(io("writing", tmp))?;
    output.get_ref().sync_all().map_err(io("writing", tmp))?;
    if written != u64::from(a.size) {
        return Err(Check::Refused(format!(
            "it decrypts to {written} bytes where the message says {}",
            a.size
        )));
    }
    Ok(())
}

/// The pointer's digest (when it has one) and the file id (a hash of the content, when the
/// URL names a hash id) must both match the blob.
fn check_hashes(a: &Attachment, sha: Sha256, id: FileIdHasher) -> Result<(), Check> {
    if let Some(d) = &a.digest {
        let got: [u8; 32] = sha.finalize().into();
        if &got != d {
            return Err(Check::Refused(
                "its SHA-256 differs from the digest in the message (tampered with or truncated)"
                    .into(),
            ));
        }
    }
    if a.url.file_id.len() == FILE_ID_LEN && id.finalize() != a.url.file_id {
        return Err(Check::Refused(
            "its content does not match its file id (tampered with)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_network_cannot_escape_the_directory() {
        assert_eq!(safe_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(safe_name(Some("..")), "attachment");
        assert_eq!(safe_name(Some(".hidden")), "hidden");
        assert_eq!(safe_name(Some("a\u{7}b.txt")), "ab.txt");
        assert_eq!(safe_name(Some("C:\\x\\y.png")), "y.png");
        assert_eq!(safe_name(None), "attachment");
        assert!(safe_name(Some(&"é".repeat(300))).len() <= 200);
    }
}
