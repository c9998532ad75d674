//! What a script sees of a running app: with `--status-json`, one JSON line on stdout per
//! event (the profile is open, a message arrived, a screenshot was written); with
//! `--screenshot PATH`, the window as a PNG after each message that arrives.
//!
//! This is how the Xvfb integration scenario checks the real binary from outside without
//! reading its database (the profile is locked while the app runs). Message text goes to
//! stdout only because the user asked for it with the flag; nothing here logs.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use serde_json::{Value, json};
use umbra_crypto::SessionId;

use crate::model::{Model, Screen};

/// The automation options of one run.
#[derive(Debug, Clone, Default)]
pub struct Automation {
    status_json: bool,
    screenshot: Option<PathBuf>,
    announced_ready: bool,
    /// Incoming messages already reported: (conversation, author's sent time).
    seen: HashSet<(SessionId, u64)>,
}

impl Automation {
    /// `status_json`: print event lines; `screenshot`: where each screenshot goes.
    pub fn new(status_json: bool, screenshot: Option<PathBuf>) -> Self {
        Self {
            status_json,
            screenshot,
            ..Self::default()
        }
    }

    /// Whether anything is asked of it at all.
    pub fn is_active(&self) -> bool {
        self.status_json || self.screenshot.is_some()
    }

    /// Looks at the model after the back end's updates of this frame.
    pub(crate) fn observe(&mut self, model: &Model, ctx: &egui::Context) {
        if model.screen != Screen::Main {
            return;
        }
        if !self.announced_ready
            && let Some(me) = model.me
        {
            self.announced_ready = true;
            self.emit(&json!({"event": "ready", "session_id": me.to_hex()}));
        }
        let mut arrived = false;
        for (conv, request) in model
            .chats
            .iter()
            .map(|c| (c, false))
            .chain(model.requests.iter().map(|c| (c, true)))
        {
            let Some(last) = conv.last.as_ref().filter(|m| !m.outgoing) else {
                continue;
            };
            if self.seen.insert((last.conversation, last.sent_ms)) {
                arrived = true;
                self.emit(&json!({
                    "event": "message",
                    "from": last.author.to_hex(),
                    "request": request,
                    "sent_ms": last.sent_ms,
                    "text": last.body,
                }));
            }
        }
        if arrived && let Some(path) = &self.screenshot {
            request_screenshot(ctx, path.clone(), self.status_json);
        }
    }

    fn emit(&self, event: &Value) {
        if self.status_json {
            print_line(event);
        }
    }
}

/// One event line on stdout, flushed (a script reads it while the app runs).
fn print_line(event: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the script went away) must not stop the app.
    let _ = writeln!(out, "{event}").and_then(|()| out.flush());
}

/// Asks for the next painted frame and writes it to `path` as a PNG when it comes.
fn request_screenshot(ctx: &egui::Context, path: PathBuf, status_json: bool) {
    ctx.request_screenshot(move |image| {
        let event = match write_png(&path, &image) {
            Ok(()) => json!({
                "event": "screenshot",
                "path": path.display().to_string(),
                "width": image.size[0],
                "height": image.size[1],
            }),
            Err(e) => json!({"event": "screenshot_failed", "error": format!("{e:#}")}),
        };
        if status_json {
            print_line(&event);
        }
    });
    ctx.request_repaint();
}

/// The image as an 8-bit RGBA PNG, written next to `path` and renamed over it, so that a
/// reader never sees half a file.
fn write_png(path: &Path, image: &Arc<egui::ColorImage>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let [w, h] = image.size;
    let width = u32::try_from(w).context("screenshot width")?;
    let height = u32::try_from(h).context("screenshot height")?;
    let tmp = path.with_extension("png.partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("writing the PNG header")?;
    writer
        .write_image_data(image.as_raw())
        .context("writing the PNG pixels")?;
    writer.finish().context("finishing the PNG")?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}
