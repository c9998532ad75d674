//! Attachments in a chat: the rows of a message's files (name, size, state, progress,
//! "Download", "Save as…", "Retry", an image's preview), the files being sent, the path
//! dialog of "Attach" and "Save as…", and files dropped onto the window.
//!
//! Drawing only reads the model; what a click asks for comes back as an [`Action`], applied
//! after the frame's list is drawn (the list borrows the model meanwhile).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;

use super::widgets;
use crate::backend::{AttachmentRef, Command, To};
use crate::client::{AttachmentInfo, AttachmentState, human_size};
use crate::model::{
    AUTO_FETCH_MAX, Attachments, DialogPurpose, Model, Pane, PathDialog, Preview,
    default_save_path, is_image, progress_line,
};
use crate::picture::Thumbnail;

/// The largest a preview is drawn, points.
const PREVIEW_MAX: f32 = 240.0;

/// What a click on an attachment row asks for.
pub(super) enum Action {
    /// Fetch an attachment into the profile (for its preview, or "Download").
    Fetch(AttachmentRef),
    /// Open "Save as…" for an attachment, proposing its name.
    SaveAs(AttachmentRef, String),
    /// Decode the preview of a local image.
    Preview(PathBuf),
    /// Send a failed upload again.
    RetryUpload(u64),
    /// Forget a failed upload.
    DropUpload(u64),
}

/// Applies what the rows asked for.
pub(super) fn apply(m: &mut Model, actions: Vec<Action>, out: &mut Vec<Command>) {
    for a in actions {
        match a {
            Action::Fetch(r) => out.push(m.attachments.fetch(r, None)),
            Action::SaveAs(r, name) => {
                let path = default_save_path(&name, &m.profile_dir);
                m.attachments.dialog = Some(PathDialog::new(
                    DialogPurpose::SaveAs(r),
                    path.display().to_string(),
                ));
            }
            Action::Preview(path) => out.extend(m.attachments.preview(&path)),
            Action::RetryUpload(local) => out.extend(m.attachments.retry_upload(local)),
            Action::DropUpload(local) => m.attachments.uploads.retain(|u| u.local != local),
        }
    }
}

/// The rows of one message's attachments.
pub(super) fn rows(
    ui: &mut egui::Ui,
    at: &Attachments,
    files: &[&AttachmentInfo],
    actions: &mut Vec<Action>,
) {
    for a in files {
        row(ui, at, a, actions);
    }
}

fn row(ui: &mut egui::Ui, at: &Attachments, a: &AttachmentInfo, actions: &mut Vec<Action>) {
    let r = AttachmentRef {
        message_id: a.message_id,
        index: a.index,
    };
    let name = a.file_name.clone().unwrap_or_else(|| "file".to_string());
    let fetch = at.fetches.get(&r);
    let running = fetch.is_some_and(|f| f.running);
    let local = a
        .path
        .as_deref()
        .filter(|_| matches!(a.state, AttachmentState::Sent | AttachmentState::Downloaded));

    if is_image(a) {
        match local {
            Some(path) => preview(ui, at, path, &name, PREVIEW_MAX, actions),
            // Small images come by themselves; a refused one waits for "Retry".
            None if a.state == AttachmentState::Available
                && a.size <= AUTO_FETCH_MAX
                && fetch.is_none() =>
            {
                actions.push(Action::Fetch(r));
            }
            None => {}
        }
    }
    ui.label(egui::RichText::new(&name).strong());
    let state = match (a.state, running) {
        (_, true) => "transferring",
        (AttachmentState::Sent, _) => "sent",
        (AttachmentState::Available, _) => "not downloaded",
        (AttachmentState::Downloaded, _) => "downloaded",
        (AttachmentState::Failed, _) => "refused",
    };
    ui.label(egui::RichText::new(format!("{} · {state}", human_size(a.size))).small());
    if let Some(p) = fetch.and_then(|f| f.progress.as_ref()) {
        progress(ui, p);
    }
    let error = fetch.and_then(|f| f.error.as_deref());
    widgets::error_line(ui, error);
    if let Some(to) = fetch.and_then(|f| f.saved_to.as_deref()) {
        ui.label(egui::RichText::new(format!("Saved to {}", to.display())).small());
    }
    if running {
        return;
    }
    ui.horizontal(|ui| {
        if (error.is_some() || a.state == AttachmentState::Failed) && local.is_none() {
            if ui.small_button("Retry").clicked() {
                actions.push(Action::Fetch(r));
            }
        } else if a.state == AttachmentState::Available && ui.small_button("Download").clicked() {
            actions.push(Action::Fetch(r));
        }
        if ui.small_button("Save as…").clicked() {
            actions.push(Action::SaveAs(r, name.clone()));
        }
    });
}

fn progress(ui: &mut egui::Ui, p: &crate::client::Progress) {
    #[allow(clippy::cast_precision_loss)]
    let fraction = if p.total == 0 {
        0.0
    } else {
        p.done as f32 / p.total as f32
    };
    ui.add(
        egui::ProgressBar::new(fraction)
            .desired_width(200.0)
            .text(progress_line(p)),
    );
}

/// An image's preview, decoded off the UI thread the first time it is shown.
pub(super) fn preview(
    ui: &mut egui::Ui,
    at: &Attachments,
    path: &Path,
    name: &str,
    max_side: f32,
    actions: &mut Vec<Action>,
) {
    match at.previews.get(path) {
        None => actions.push(Action::Preview(path.to_path_buf())),
        Some(Preview::Decoding) => {
            ui.spinner();
        }
        Some(Preview::Ready(t)) => {
            let texture = texture(ui.ctx(), path, t);
            #[allow(clippy::cast_precision_loss)]
            let size = egui::vec2(t.size[0] as f32, t.size[1] as f32);
            let scale = (max_side / size.x.max(size.y)).min(1.0);
            ui.add(
                egui::Image::new(&texture)
                    .fit_to_exact_size(size * scale)
                    .corner_radius(6.0)
                    .alt_text(format!("Preview of {name}")),
            );
        }
        Some(Preview::Failed(why)) => {
            ui.label(
                egui::RichText::new(format!("No preview: {why}"))
                    .small()
                    .weak(),
            );
        }
    }
}

/// Textures of thumbnails kept at most (each up to 320×320 RGBA, 400 KiB): past this the
/// cache starts over, and what is on screen is made again.
const MAX_TEXTURES: usize = 128;

/// The texture of a thumbnail, made once and kept in egui's memory while it is the same
/// thumbnail (a new one for the same path replaces it).
fn texture(ctx: &egui::Context, path: &Path, t: &Arc<Thumbnail>) -> egui::TextureHandle {
    type Cache = std::collections::BTreeMap<PathBuf, (Arc<Thumbnail>, egui::TextureHandle)>;
    let id = egui::Id::unique("thumbnail_textures");
    if let Some(handle) = ctx.data_mut(|d| {
        let cache = d.get_temp_mut_or_default::<Cache>(id);
        cache
            .get(path)
            .filter(|(cached, _)| Arc::ptr_eq(cached, t))
            .map(|(_, h)| h.clone())
    }) {
        return handle;
    }
    let image = egui::ColorImage::from_rgba_unmultiplied(t.size, &t.rgba);
    let handle = ctx.load_texture(
        format!("thumbnail-{}", path.display()),
        image,
        egui::TextureOptions::LINEAR,
    );
    ctx.data_mut(|d| {
        let cache = d.get_temp_mut_or_default::<Cache>(id);
        if cache.len() >= MAX_TEXTURES {
            cache.clear();
        }
        cache.insert(path.to_path_buf(), (t.clone(), handle.clone()));
    });
    handle
}

/// The files being sent to `to`: name, progress, and when it failed why and "Retry".
pub(super) fn uploads(ui: &mut egui::Ui, at: &Attachments, to: &To, actions: &mut Vec<Action>) {
    for u in at.uploads.iter().filter(|u| u.to == *to) {
        super::chat::bubble_frame(ui, true, |ui| {
            let name = u.path.file_name().map_or_else(
                || u.path.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            ui.label(egui::RichText::new(name).strong());
            if let Some(c) = &u.caption {
                ui.label(c);
            }
            match (&u.error, &u.progress) {
                (Some(e), _) => {
                    ui.label(egui::RichText::new("upload failed").small());
                    widgets::error_line(ui, Some(e));
                    ui.horizontal(|ui| {
                        if ui.small_button("Retry").clicked() {
                            actions.push(Action::RetryUpload(u.local));
                        }
                        if ui.small_button("Discard").clicked() {
                            actions.push(Action::DropUpload(u.local));
                        }
                    });
                }
                (None, Some(p)) => progress(ui, p),
                (None, None) => {
                    ui.label(egui::RichText::new("preparing…").small());
                }
            }
        });
    }
}

/// Opens the attach dialog for the open conversation or group (one we can still write to),
/// with `path` filled in.
pub(super) fn open_attach(m: &mut Model, path: String) {
    let to = match (m.open, &m.open_group) {
        (Some(with), _) => To::Chat(with),
        (None, Some(group)) if m.open_group_active() => To::Group(group.clone()),
        _ => return,
    };
    m.attachments.dialog = Some(PathDialog::new(DialogPurpose::Attach(to), path));
}

/// Files dropped onto the window: attached to the open conversation, or in Settings chosen
/// as the profile picture. While files hover over the window, says where they will go.
pub(super) fn dropped(ctx: &egui::Context, m: &mut Model) {
    let (dropped, hovering) = ctx.input(|i| {
        let first = i.raw.dropped_files.first().map(|f| f.path().to_path_buf());
        (first, !i.raw.hovered_files.is_empty())
    });
    let target = match m.pane {
        Pane::Settings => Some("Drop to choose it as your profile picture"),
        Pane::Chat if m.open.is_some() || m.open_group_active() => Some("Drop to attach it"),
        _ => None,
    };
    if hovering && let Some(text) = target {
        let screen = ctx.content_rect();
        let painter = ctx.layer_painter(egui::LayerId::new(
            egui::Order::Foreground,
            egui::Id::unique("drop_overlay"),
        ));
        painter.rect_filled(screen, 0.0, egui::Color32::from_black_alpha(160));
        painter.text(
            screen.center(),
            egui::Align2::CENTER_CENTER,
            text,
            egui::FontId::proportional(22.0),
            egui::Color32::WHITE,
        );
    }
    let Some(path) = dropped else { return };
    let path = path.display().to_string();
    match m.pane {
        Pane::Settings => {
            m.attachments.picture.path = path;
            m.attachments.picture.result = None;
        }
        Pane::Chat => open_attach(m, path),
        _ => {}
    }
}

/// What a typed or pasted path means: quotes and a `file://` prefix (what file managers
/// copy) are taken off, `~/` is the home directory.
pub(super) fn typed_path(text: &str) -> Option<PathBuf> {
    let t = text.trim().trim_matches(['"', '\'']);
    let t = t.strip_prefix("file://").unwrap_or(t);
    if t.is_empty() {
        return None;
    }
    if let Some(rest) = t.strip_prefix("~/")
        && let Some(home) = dirs::home_dir()
    {
        return Some(home.join(rest));
    }
    Some(PathBuf::from(t))
}

/// The path dialog ("Attach a file" or "Save as"), when one is open. Esc closes it.
pub(super) fn dialog(ctx: &egui::Context, m: &mut Model, out: &mut Vec<Command>) {
    let Some(d) = m.attachments.dialog.as_mut() else {
        return;
    };
    let (title, confirm) = match d.purpose {
        DialogPurpose::Attach(_) => ("Attach a file", "Send file"),
        DialogPurpose::SaveAs(_) => ("Save as", "Save"),
    };
    let mut close = ctx.input(|i| i.key_pressed(egui::Key::Escape));
    let mut confirmed = false;
    egui::Window::new(title)
        .collapsible(false)
        .resizable(false)
        .default_width(460.0)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            let hint = match d.purpose {
                DialogPurpose::Attach(_) => "/home/you/Pictures/photo.jpg (or drop a file here)",
                DialogPurpose::SaveAs(_) => "where to put the file",
            };
            let r = widgets::field(ui, "File path", &mut d.path, hint);
            // Asked until it has it: the click that opened the dialog takes the focus
            // away again on the frame it is released.
            if d.fresh {
                if r.has_focus() {
                    d.fresh = false;
                } else {
                    r.request_focus();
                }
            }
            let mut enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if matches!(d.purpose, DialogPurpose::Attach(_)) {
                let c = widgets::field(ui, "Caption (optional)", &mut d.caption, "");
                enter |= c.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            }
            widgets::error_line(ui, d.error.as_deref());
            ui.horizontal(|ui| {
                confirmed = ui.button(confirm).clicked() || enter;
                if ui.button("Cancel").clicked() {
                    close = true;
                }
            });
        });
    if close {
        m.attachments.dialog = None;
        return;
    }
    if !confirmed {
        return;
    }
    let d = d.clone();
    match check(&d) {
        Err(e) => {
            if let Some(open) = m.attachments.dialog.as_mut() {
                open.error = Some(e);
            }
        }
        Ok(path) => {
            m.attachments.dialog = None;
            match d.purpose {
                DialogPurpose::Attach(to) => {
                    let caption = Some(d.caption.trim().to_string()).filter(|c| !c.is_empty());
                    let local = m.next_local();
                    out.push(m.attachments.send(local, to, path, caption));
                }
                DialogPurpose::SaveAs(r) => out.push(m.attachments.fetch(r, Some(path))),
            }
        }
    }
}

/// The dialog's path, checked: a file to attach must exist; a place to save must be in an
/// existing directory and must not exist (nothing is overwritten).
fn check(d: &PathDialog) -> Result<PathBuf, String> {
    let path = typed_path(&d.path).ok_or("Type or paste the path of a file.")?;
    match d.purpose {
        DialogPurpose::Attach(_) => {
            if !path.is_file() {
                return Err(format!("{} is not a file: check the path.", path.display()));
            }
        }
        DialogPurpose::SaveAs(_) => {
            if path.exists() {
                return Err(format!(
                    "{} already exists: choose another name.",
                    path.display()
                ));
            }
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            if parent.is_some_and(|p| !p.is_dir()) {
                return Err(format!(
                    "The folder {} does not exist: choose another place.",
                    parent.map_or_else(String::new, |p| p.display().to_string())
                ));
            }
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_paths_lose_quotes_and_file_prefixes() {
        assert_eq!(
            typed_path(" '/tmp/a b.png' "),
            Some(PathBuf::from("/tmp/a b.png"))
        );
        assert_eq!(typed_path("file:///tmp/x"), Some(PathBuf::from("/tmp/x")));
        assert_eq!(typed_path("  "), None);
    }
}
