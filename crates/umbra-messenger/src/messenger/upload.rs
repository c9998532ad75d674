//! Sending a file (`groups-config-attachments.md` §3.1, `docs/attachments.md`): encrypt it to
//! a blob on disk, upload the blob to the attachment server through onion paths, then send a
//! message whose `AttachmentPointer` carries the key, size and digest.
//!
//! ```text
//! file ──(pass 1: key = hash of file; pass 2: encrypt)──► outgoing/<name>.blob + manifest
//! blob ≤ 1 MiB ──► POST /file
//! blob > 1 MiB ──► POST /upload (manifest) → have ──► PUT chunk n ∉ have … ──► complete
//! ──► DataMessage { body: caption, attachments: [pointer] } ──► outbox
//! ```
//!
//! Memory does not depend on the file size: both passes stream through fixed buffers and the
//! upload reads one 1 MiB chunk at a time. Resuming needs no local state: the encryption is
//! deterministic, so the same file gives the same manifest and upload id, and the server says
//! which chunks it already holds.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Read, Seek as _, SeekFrom, Write};
use std::path::{Path, PathBuf};

use umbra_attachment_crypto::chunked::{CHUNK_SIZE, Manifest, ManifestBuilder, chunk_len};
use umbra_attachment_crypto::{Domain, EncryptedAttachment, SizeLimit, encrypt};
use umbra_crypto::{Redacted, SessionId};
use umbra_wire::{Attachment, AttachmentKeyBytes, FileUrl};
use zeroize::Zeroizing;

use super::files::{FileServer, FileServerError};
use super::model::{MessageId, Progress, ProgressFn, TransferPhase};
use super::{
    GroupChatMessage, MAX_BODY_CHARS, Message, Messenger, MessengerError, db, lock, media,
};

/// The largest file sent as an attachment (the attachment server's default limit for chunked
/// uploads).
pub const MAX_ATTACHMENT_SIZE: u64 = 1 << 30;
/// Blobs up to this size go in one `POST /file` (the Session-compatible path); larger ones in
/// resumable chunks of the same size.
pub const SINGLE_UPLOAD_MAX: u64 = CHUNK_SIZE;
/// Read buffer of the encryption passes.
const READ_BUFFER: usize = 64 * 1024;

/// Removes a file when dropped (the encrypted blob, once uploaded or on failure: a retry
/// encrypts the file again to the same bytes).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Messenger {
    /// Sends the file at `path` to `to`, with an optional caption: encrypts it, uploads it to
    /// `server` (resuming an upload the server already has part of), then sends the message.
    /// Returns the message as saved and its id. `progress` hears of each phase.
    ///
    /// # Errors
    /// The file's checks ([`MessengerError::NotAFile`], [`MessengerError::FileTooLarge`],
    /// [`MessengerError::ProfileIo`]), [`MessengerError::Blocked`],
    /// [`MessengerError::MessageTooLong`] for the caption, [`MessengerError::FileServer`] when
    /// the upload fails (run it again to resume), and what saving a message returns.
    pub async fn send_file(
        &self,
        to: &SessionId,
        path: &Path,
        caption: Option<&str>,
        server: &FileServer,
        progress: ProgressFn,
    ) -> Result<(Message, MessageId), MessengerError> {
        let caption = checked_caption(caption)?;
        self.check_not_blocked(to)?;
        let (attachment, local) = self.upload_file(path, server, progress).await?;
        let (sent_ms, id) =
            self.save_and_queue(to, caption.unwrap_or(""), &[attachment], local.as_deref())?;
        tracing::debug!(to = %Redacted::new(to), sent_ms, "file message queued");
        self.flush_outbox().await?;
        let message = db::message_by(&self.db(), &self.me, sent_ms)
            .map_err(MessengerError::db("reading the sent message"))?;
        Ok((message, MessageId::Direct(id)))
    }

    /// Sends the file at `path` to group `group`, with an optional caption: uploaded once to
    /// `server` like a one-to-one file, then one message (encrypted with the group key,
    /// stored once in the group swarm) carries its pointer to every member. Returns the
    /// message as saved and its id.
    ///
    /// # Errors
    /// As [`Messenger::send_file`], with the group's instead of the contact's:
    /// [`MessengerError::InvalidGroupId`], [`MessengerError::UnknownGroup`] and
    /// [`MessengerError::GroupNotActive`] come before any upload.
    pub async fn send_group_file(
        &self,
        group: &str,
        path: &Path,
        caption: Option<&str>,
        server: &FileServer,
        progress: ProgressFn,
    ) -> Result<(GroupChatMessage, MessageId), MessengerError> {
        let caption = checked_caption(caption)?;
        let h = self.writable_group(group, "sending a file to a group")?;
        let (attachment, local) = self.upload_file(path, server, progress).await?;
        let (message, id) = self
            .send_group_data(&h, caption.unwrap_or(""), &[attachment], local.as_deref())
            .await?;
        Ok((message, MessageId::Group(id)))
    }

    /// Encrypts the file at `path` and uploads it to `server`: the pointer a message carries,
    /// and the file's canonical path (kept as the sender's local copy).
    pub(super) async fn upload_file(
        &self,
        path: &Path,
        server: &FileServer,
        progress: ProgressFn,
    ) -> Result<(Attachment, Option<String>), MessengerError> {
        let meta = std::fs::metadata(path).map_err(MessengerError::io("reading", path))?;
        if !meta.is_file() {
            return Err(MessengerError::NotAFile(path.to_path_buf()));
        }
        if meta.len() > MAX_ATTACHMENT_SIZE {
            return Err(MessengerError::FileTooLarge {
                path: path.to_path_buf(),
                size: meta.len(),
                max: MAX_ATTACHMENT_SIZE,
            });
        }
        let file_name = file_name_of(path);
        let dims = read_head(path).and_then(|h| media::dimensions(&h));

        let work = self.dir.join("attachments").join("outgoing");
        std::fs::create_dir_all(&work).map_err(MessengerError::io(
            "creating the attachment directory",
            &work,
        ))?;
        let blob_path = {
            let mut rng = lock(&self.rng);
            let mut tag = [0u8; 8];
            rng.fill(&mut tag);
            work.join(format!("{}.blob", hex::encode(tag)))
        };
        let _blob_guard = RemoveOnDrop(blob_path.clone());
        let seed = Zeroizing::new(*self.identity.seed());
        let (src, blob, p) = (path.to_path_buf(), blob_path.clone(), progress.clone());
        let (info, manifest) =
            tokio::task::spawn_blocking(move || encrypt_file(&seed, &src, &blob, &p))
                .await
                .map_err(|_| MessengerError::Task("encrypting a file"))??;
        tracing::debug!(
            size = info.size,
            blob = info.encrypted_size,
            "file encrypted"
        );

        let uploaded = if info.encrypted_size <= SINGLE_UPLOAD_MAX {
            upload_whole(server, &blob_path, &info, &progress).await?
        } else {
            upload_chunked(server, &blob_path, &manifest, &progress).await?
        };
        if uploaded != info.file_id {
            return Err(MessengerError::FileServer {
                what: "uploading a file",
                source: FileServerError::BadReply {
                    what: "an upload",
                    why: "the server names the file differently from its content",
                },
            });
        }

        let key = AttachmentKeyBytes::Stream(*info.key.as_bytes());
        let size = u32::try_from(info.size).map_err(|_| MessengerError::FileTooLarge {
            path: path.to_path_buf(),
            size: info.size,
            max: MAX_ATTACHMENT_SIZE,
        })?;
        let attachment = Attachment {
            url: FileUrl {
                base: server.url().to_owned(),
                file_id: info.file_id.clone(),
                server_pubkey: None,
                stream_format: true,
            },
            key,
            size,
            digest: Some(info.sha256),
            content_type: Some(media::content_type(&file_name).to_owned()),
            file_name: Some(file_name),
            width: dims.map(|d| d.0),
            height: dims.map(|d| d.1),
            caption: None,
            voice_message: false,
        };
        let local = path
            .canonicalize()
            .ok()
            .and_then(|p| p.to_str().map(str::to_owned));
        Ok((attachment, local))
    }

    /// Refuses to send to a blocked contact before any work is done.
    fn check_not_blocked(&self, to: &SessionId) -> Result<(), MessengerError> {
        let what = "sending a file";
        let contact = db::contact(&self.db(), to).map_err(MessengerError::db(what))?;
        if contact.is_some_and(|c| c.blocked) {
            return Err(MessengerError::Blocked(what));
        }
        Ok(())
    }
}

/// A caption as sent: trimmed, `None` when empty.
///
/// # Errors
/// [`MessengerError::MessageTooLong`] above [`MAX_BODY_CHARS`].
pub(super) fn checked_caption(caption: Option<&str>) -> Result<Option<&str>, MessengerError> {
    let caption = caption.map(str::trim).filter(|c| !c.is_empty());
    if let Some(c) = caption {
        let got = c.chars().count();
        if got > MAX_BODY_CHARS {
            return Err(MessengerError::MessageTooLong {
                got,
                max: MAX_BODY_CHARS,
            });
        }
    }
    Ok(caption)
}

/// The name the recipient sees: the last component of `path`, at most 255 bytes.
fn file_name_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let mut end = name.len().min(umbra_wire::attachment::MAX_FILE_NAME_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// The first bytes of a file (for its image dimensions), if it can be read.
fn read_head(path: &Path) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(media::HEAD_LEN);
    File::open(path)
        .ok()?
        .take(media::HEAD_LEN as u64)
        .read_to_end(&mut head)
        .ok()?;
    Some(head)
}

/// Counts bytes read for the progress of both encryption passes.
struct Counting<'a> {
    inner: File,
    done: u64,
    total: u64,
    last: u64,
    progress: &'a ProgressFn,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.last >= CHUNK_SIZE || (n == 0 && self.done != self.last) {
            self.last = self.done;
            (self.progress)(Progress {
                phase: TransferPhase::Encrypting,
                done: self.done.min(self.total),
                total: self.total,
            });
        }
        Ok(n)
    }
}

impl std::io::Seek for Counting<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Writes the blob to its file while building its manifest.
struct BlobWriter {
    file: BufWriter<File>,
    manifest: ManifestBuilder,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.manifest.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Encrypts `src` to `blob` (both passes streamed), returning the pointer's fields and the
/// blob's manifest.
fn encrypt_file(
    seed: &[u8; 32],
    src: &Path,
    blob: &Path,
    progress: &ProgressFn,
) -> Result<(EncryptedAttachment, Manifest), MessengerError> {
    let input = File::open(src).map_err(MessengerError::io("reading", src))?;
    let total = input
        .metadata()
        .map_err(MessengerError::io("reading", src))?
        .len()
        .saturating_mul(2);
    let mut reader = Counting {
        inner: input,
        done: 0,
        total,
        last: 0,
        progress,
    };
    let out = File::create(blob).map_err(MessengerError::io("writing", blob))?;
    let mut writer = BlobWriter {
        file: BufWriter::with_capacity(READ_BUFFER, out),
        manifest: ManifestBuilder::new(),
    };
    let info = encrypt(
        seed,
        Domain::Attachment,
        SizeLimit::Large,
        &mut reader,
        &mut writer,
    )
    .map_err(|source| MessengerError::AttachmentCrypto {
        what: "encrypting the file",
        source,
    })?;
    writer
        .file
        .flush()
        .map_err(MessengerError::io("writing", blob))?;
    Ok((info, writer.manifest.finish()))
}

fn upload_error(source: FileServerError) -> MessengerError {
    MessengerError::FileServer {
        what: "uploading the file (run the same command again to resume)",
        source,
    }
}

/// `POST /file` of a small blob; returns the server's file id.
async fn upload_whole(
    server: &FileServer,
    blob_path: &Path,
    info: &EncryptedAttachment,
    progress: &ProgressFn,
) -> Result<String, MessengerError> {
    let blob = std::fs::read(blob_path).map_err(MessengerError::io("reading", blob_path))?;
    let total = blob.len() as u64;
    progress(Progress {
        phase: TransferPhase::Uploading,
        done: 0,
        total,
    });
    let answer = server.post_file(blob).await.map_err(upload_error)?;
    progress(Progress {
        phase: TransferPhase::Uploading,
        done: total,
        total,
    });
    debug_assert_eq!(total, info.encrypted_size);
    Ok(answer.id)
}

/// The chunked upload of a blob, resumed from the chunks the server holds; returns the
/// server's file id.
async fn upload_chunked(
    server: &FileServer,
    blob_path: &Path,
    manifest: &Manifest,
    progress: &ProgressFn,
) -> Result<String, MessengerError> {
    let state = server
        .open_upload(manifest.to_json())
        .await
        .map_err(upload_error)?;
    let count = manifest.chunks.len() as u64;
    if state.chunks != count || state.upload_id != manifest.upload_id() {
        return Err(upload_error(FileServerError::BadReply {
            what: "opening a chunked upload",
            why: "the upload state does not match the manifest",
        }));
    }
    let total = manifest.size;
    let have: BTreeSet<u64> = state.have.iter().copied().collect();
    let mut done: u64 = have.iter().map(|n| chunk_len(total, *n)).sum();
    if state.id.is_some() {
        done = total;
    }
    if !have.is_empty() || state.id.is_some() {
        tracing::debug!(have = have.len(), count, "resuming an upload");
    }
    progress(Progress {
        phase: TransferPhase::Uploading,
        done,
        total,
    });
    if state.id.is_none() {
        let mut blob = File::open(blob_path).map_err(MessengerError::io("reading", blob_path))?;
        for index in (0..count).filter(|n| !have.contains(n)) {
            let len = chunk_len(total, index);
            let mut chunk = vec![0u8; usize::try_from(len).unwrap_or(0)];
            blob.seek(SeekFrom::Start(index * CHUNK_SIZE))
                .and_then(|_| blob.read_exact(&mut chunk))
                .map_err(MessengerError::io("reading", blob_path))?;
            server
                .put_chunk(&state.upload_id, index, chunk)
                .await
                .map_err(upload_error)?;
            done += len;
            progress(Progress {
                phase: TransferPhase::Uploading,
                done,
                total,
            });
        }
    }
    let file = server
        .complete_upload(&state.upload_id)
        .await
        .map_err(upload_error)?;
    Ok(file.id)
}
