//! Files going up and down, on the runtime's threads: sending a file (the messenger encrypts
//! and uploads it, then sends the message), fetching an attachment (the messenger checks its
//! size and digest before the file appears), copying one already here, thumbnails of images
//! and our own profile picture. Progress goes to the UI as [`Update::Progress`], a few
//! hundred updates per transfer at most, whatever its size.
//!
//! Everything about the protocol (encryption, chunks, resuming) is the messenger's; a retry is
//! the same call again, which resumes from what the attachment server already holds.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::worker::{Shared, report};
use super::{AttachmentRef, To, TransferId, Update};
use crate::client::{FileServer, MessengerError, Progress, ProgressFn, TransferPhase};

/// Progress is reported when it moved by this many thousandths (or the phase changed).
const REPORT_EVERY_PERMILLE: u64 = 5;

/// What to say when the network names no attachment server.
const NO_SERVER: &str = "This network has no attachment server: choose a network.json that \
                         names one (Settings → Your data).";

fn server(shared: &Shared) -> Result<&FileServer, String> {
    shared.files.as_ref().ok_or_else(|| NO_SERVER.to_string())
}

/// A progress callback for the messenger that tells the UI of `id`'s progress, throttled.
fn progress_to_ui(shared: &Shared, id: TransferId) -> ProgressFn {
    let out = shared.out.clone();
    let last: Mutex<Option<(TransferPhase, u64)>> = Mutex::new(None);
    Arc::new(move |p: Progress| {
        let permille = p
            .done
            .saturating_mul(1000)
            .checked_div(p.total)
            .unwrap_or(0);
        let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
        let due = match *last {
            Some((phase, at)) => {
                phase != p.phase
                    || permille >= at + REPORT_EVERY_PERMILLE
                    || (p.done == p.total && at < 1000)
            }
            None => true,
        };
        if due {
            *last = Some((p.phase, permille));
            // A dropped progress update is harmless: the next one or the result follows.
            out.try_send(Update::Progress { id, progress: p });
        }
    })
}

/// Sends the file at `path` to `to` and reports the result as transfer `Upload(local)`.
pub(super) async fn send_file(
    shared: Arc<Shared>,
    local: u64,
    to: To,
    path: PathBuf,
    caption: Option<String>,
) {
    let id = TransferId::Upload(local);
    let result = match server(&shared) {
        Ok(files) => {
            let (caption, progress) = (caption.as_deref(), progress_to_ui(&shared, id));
            let sent = match &to {
                To::Chat(to) => shared
                    .m
                    .send_file(to, &path, caption, files, progress)
                    .await
                    .map(drop),
                To::Group(group) => shared
                    .m
                    .send_group_file(group, &path, caption, files, progress)
                    .await
                    .map(drop),
            };
            sent.map(|()| path).or_else(|e| match e {
                // Uploaded and saved: only the delivery failed, and the outbox retries it
                // (the message shows "retrying"); sending the file again would send it twice.
                MessengerError::Swarm { .. } => Ok(PathBuf::new()),
                e => Err(report(&e)),
            })
        }
        Err(e) => Err(e),
    };
    // The message is in the snapshot before the UI drops its "uploading" row.
    shared.refresh().await;
    shared.out.send(Update::TransferDone { id, result }).await;
}

/// Fetches attachment `a` (or copies it when it is here already) to `out`, or to the
/// profile's download directory.
pub(super) async fn download(shared: Arc<Shared>, a: AttachmentRef, out: Option<PathBuf>) {
    let id = TransferId::Download(a);
    let result = fetch_or_copy(&shared, a, out.as_deref(), id).await;
    shared.refresh().await;
    shared.out.send(Update::TransferDone { id, result }).await;
}

async fn fetch_or_copy(
    shared: &Arc<Shared>,
    a: AttachmentRef,
    out: Option<&Path>,
    id: TransferId,
) -> Result<PathBuf, String> {
    if let Some(out) = out
        && out.exists()
    {
        return Err(exists(out));
    }
    let here = local_copy(shared, a);
    match (here, out) {
        (Some(src), Some(out)) => {
            let out = out.to_path_buf();
            tokio::task::spawn_blocking(move || copy_new(&src, &out).map(|()| out))
                .await
                .unwrap_or_else(|e| Err(format!("the copying task stopped: {e}")))
        }
        (Some(src), None) => Ok(src),
        (None, out) => {
            let files = server(shared)?;
            shared
                .m
                .download_attachment(
                    a.message_id,
                    a.index,
                    out,
                    files,
                    progress_to_ui(shared, id),
                )
                .await
                .map_err(|e| report(&e))
        }
    }
}

/// The local file of an attachment we sent or already fetched, if it is still there.
fn local_copy(shared: &Shared, a: AttachmentRef) -> Option<PathBuf> {
    let list = shared.m.message_attachments(a.message_id).ok()?;
    list.into_iter()
        .nth(usize::try_from(a.index).ok()?)
        .and_then(|i| i.path)
        .filter(|p| p.is_file())
}

fn exists(path: &Path) -> String {
    format!("{} already exists: choose another name.", path.display())
}

/// Copies `src` to `out`, which must not exist (never overwritten, even if it appeared since
/// the check).
fn copy_new(src: &Path, out: &Path) -> Result<(), String> {
    let mut from =
        std::fs::File::open(src).map_err(|e| format!("reading {}: {e}", src.display()))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => exists(out),
            _ => format!("writing {}: {e}", out.display()),
        })?;
    std::io::copy(&mut from, &mut to)
        .and_then(|_| to.sync_all())
        .map_err(|e| {
            let _ = std::fs::remove_file(out);
            format!("writing {}: {e}", out.display())
        })
}

/// Decodes the preview of the image at `path`.
pub(super) async fn thumbnail(shared: Arc<Shared>, path: PathBuf) {
    let p = path.clone();
    let result = tokio::task::spawn_blocking(move || crate::picture::thumbnail(&p))
        .await
        .unwrap_or_else(|e| Err(format!("the decoding task stopped: {e}")))
        .map(Arc::new);
    shared.out.send(Update::Thumbnail { path, result }).await;
}

/// Uploads the picture at `path` as our profile picture; once set, it is decoded and shown
/// as our avatar.
pub(super) async fn set_picture(shared: Arc<Shared>, path: PathBuf) {
    let result = match server(&shared) {
        Ok(files) => shared
            .m
            .upload_profile_picture(&path, files)
            .await
            .map_err(|e| report(&e)),
        Err(e) => Err(e),
    };
    let result = match result {
        Ok(_) => {
            let decoded = tokio::task::spawn_blocking(move || {
                std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| crate::picture::decode(&b))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            if let Ok(p) = decoded {
                super::pictures::show(&shared, shared.m.session_id(), p).await;
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    shared.out.send(Update::PictureSet(result)).await;
}
