//! What the window knows of attachments: the open conversation's (from the snapshot), files
//! being sent, fetches and saves in progress, decoded thumbnails, the path dialogs and the
//! profile-picture edit in Settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use umbra_crypto::SessionId;

use crate::backend::{AttachmentRef, Command, To, TransferId};
use crate::client::{AttachmentInfo, Progress, human_size};
use crate::picture::Thumbnail;

/// Images up to this size are fetched by themselves when their conversation is shown, so
/// that their preview appears without a click (larger ones wait for "Download").
pub(crate) const AUTO_FETCH_MAX: u64 = 10 * 1024 * 1024;

/// Thumbnails kept at most (each up to 320×320 RGBA, 400 KiB).
const MAX_PREVIEWS: usize = 128;

/// A file being sent (until its message is saved).
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub(crate) local: u64,
    pub(crate) to: To,
    pub(crate) path: PathBuf,
    pub(crate) caption: Option<String>,
    pub(crate) progress: Option<Progress>,
    /// Why it failed (it can be retried: the server keeps what it already has).
    pub(crate) error: Option<String>,
}

/// A fetch or save of an attachment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fetch {
    pub(crate) progress: Option<Progress>,
    /// Where it was asked to go (`None`: the profile's download directory).
    pub(crate) out: Option<PathBuf>,
    pub(crate) running: bool,
    pub(crate) error: Option<String>,
    /// Where the last save put it.
    pub(crate) saved_to: Option<PathBuf>,
}

/// A thumbnail: being decoded, decoded, or why not.
#[derive(Debug, Clone)]
pub(crate) enum Preview {
    Decoding,
    Ready(Arc<Thumbnail>),
    Failed(String),
}

/// What a path dialog is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DialogPurpose {
    /// Attach a file to the open conversation or group.
    Attach(To),
    /// Save an attachment.
    SaveAs(AttachmentRef),
}

/// The small dialog where a path is typed or pasted (no native file dialog: it must work
/// without a desktop portal, e.g. under Xvfb).
#[derive(Debug, Clone)]
pub(crate) struct PathDialog {
    pub(crate) purpose: DialogPurpose,
    pub(crate) path: String,
    pub(crate) caption: String,
    pub(crate) error: Option<String>,
    /// Not drawn yet: its path field takes the keyboard focus when it is.
    pub(crate) fresh: bool,
}

impl PathDialog {
    /// A dialog for `purpose` with `path` filled in.
    pub(crate) fn new(purpose: DialogPurpose, path: String) -> Self {
        Self {
            purpose,
            path,
            caption: String::new(),
            error: None,
            fresh: true,
        }
    }
}

/// Settings' profile picture: the path chosen and what the upload said.
#[derive(Debug, Clone, Default)]
pub(crate) struct PictureEdit {
    pub(crate) path: String,
    pub(crate) busy: bool,
    pub(crate) result: Option<Result<String, String>>,
}

/// All of the above.
#[derive(Debug, Default)]
pub(crate) struct Attachments {
    /// The open conversation's attachments, oldest first.
    pub(crate) list: Vec<AttachmentInfo>,
    pub(crate) uploads: Vec<Upload>,
    pub(crate) fetches: BTreeMap<AttachmentRef, Fetch>,
    /// Thumbnails by the image file's path.
    pub(crate) previews: BTreeMap<PathBuf, Preview>,
    pub(crate) dialog: Option<PathDialog>,
    pub(crate) picture: PictureEdit,
}

impl Attachments {
    /// The attachments of the message `author` sent at `sent_ms`.
    pub(crate) fn of_message(
        &self,
        author: SessionId,
        sent_ms: u64,
    ) -> impl Iterator<Item = &AttachmentInfo> {
        self.list
            .iter()
            .filter(move |a| a.author == author && a.sent_ms == sent_ms)
    }

    /// Starts sending `path` to `to`.
    pub(crate) fn send(
        &mut self,
        local: u64,
        to: To,
        path: PathBuf,
        caption: Option<String>,
    ) -> Command {
        self.uploads.push(Upload {
            local,
            to: to.clone(),
            path: path.clone(),
            caption: caption.clone(),
            progress: None,
            error: None,
        });
        Command::SendFile {
            local,
            to,
            path,
            caption,
        }
    }

    /// Sends a failed upload again (the attachment server resumes it).
    pub(crate) fn retry_upload(&mut self, local: u64) -> Option<Command> {
        let u = self.uploads.iter_mut().find(|u| u.local == local)?;
        u.error = None;
        u.progress = None;
        Some(Command::SendFile {
            local,
            to: u.to.clone(),
            path: u.path.clone(),
            caption: u.caption.clone(),
        })
    }

    /// Starts fetching `a` to `out` (or the download directory).
    pub(crate) fn fetch(&mut self, a: AttachmentRef, out: Option<PathBuf>) -> Command {
        let f = self.fetches.entry(a).or_default();
        f.running = true;
        f.error = None;
        f.progress = None;
        f.out.clone_from(&out);
        Command::Download { attachment: a, out }
    }

    /// Asks for the thumbnail of `path` unless it is known or on its way.
    pub(crate) fn preview(&mut self, path: &Path) -> Option<Command> {
        if self.previews.contains_key(path) {
            return None;
        }
        // Memory stays bounded however many images a profile holds: past the cap the
        // thumbnails start over (those on screen are decoded again).
        if self.previews.len() >= MAX_PREVIEWS {
            self.previews.clear();
        }
        self.previews.insert(path.to_path_buf(), Preview::Decoding);
        Some(Command::Thumbnail(path.to_path_buf()))
    }

    pub(crate) fn progress(&mut self, id: TransferId, p: Progress) {
        match id {
            TransferId::Upload(local) => {
                if let Some(u) = self.uploads.iter_mut().find(|u| u.local == local) {
                    u.progress = Some(p);
                }
            }
            TransferId::Download(a) => self.fetches.entry(a).or_default().progress = Some(p),
        }
    }

    pub(crate) fn done(&mut self, id: TransferId, result: Result<PathBuf, String>) {
        match (id, result) {
            (TransferId::Upload(local), Ok(_)) => self.uploads.retain(|u| u.local != local),
            (TransferId::Upload(local), Err(e)) => {
                if let Some(u) = self.uploads.iter_mut().find(|u| u.local == local) {
                    u.error = Some(e);
                }
            }
            (TransferId::Download(a), result) => {
                let f = self.fetches.entry(a).or_default();
                f.running = false;
                f.progress = None;
                match result {
                    Ok(path) => f.saved_to = f.out.is_some().then_some(path),
                    Err(e) => f.error = Some(e),
                }
            }
        }
    }
}

/// Whether an attachment is an image the preview can show.
pub(crate) fn is_image(a: &AttachmentInfo) -> bool {
    a.content_type
        .as_deref()
        .is_some_and(|t| t == "image/png" || t == "image/jpeg")
}

/// Where "Save as…" proposes to put a file: the user's download directory (else the
/// profile's), under the file's name, numbered when that name is taken.
pub(crate) fn default_save_path(name: &str, profile_dir: &Path) -> PathBuf {
    let dir =
        dirs::download_dir().unwrap_or_else(|| profile_dir.join("attachments").join("downloads"));
    free_name(&dir, name)
}

/// `dir/name`, or `dir/stem (2).ext`, … the first that does not exist.
pub(crate) fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let p = Path::new(name);
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or(name);
    let ext = p.extension().and_then(|s| s.to_str());
    (2..1000)
        .map(|n| match ext {
            Some(e) => dir.join(format!("{stem} ({n}).{e}")),
            None => dir.join(format!("{stem} ({n})")),
        })
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Progress as a line: "uploading 1.2 MB / 4.0 MB".
pub(crate) fn progress_line(p: &Progress) -> String {
    format!(
        "{} {} / {}",
        p.phase.as_str(),
        human_size(p.done),
        human_size(p.total)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_says_phase_and_bytes() {
        let p = Progress {
            phase: crate::client::TransferPhase::Uploading,
            done: 12_300,
            total: 4_500_000,
        };
        assert_eq!(progress_line(&p), "uploading 12.3 kB / 4.5 MB");
    }

    #[test]
    fn a_taken_name_is_numbered_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_name(dir.path(), "a.txt"), dir.path().join("a.txt"));
        std::fs::write(dir.path().join("a.txt"), b"x").unwrap();
        assert_eq!(free_name(dir.path(), "a.txt"), dir.path().join("a (2).txt"));
        std::fs::write(dir.path().join("a (2).txt"), b"x").unwrap();
        assert_eq!(free_name(dir.path(), "a.txt"), dir.path().join("a (3).txt"));
        assert_eq!(free_name(dir.path(), "README"), dir.path().join("README"));
    }
}
