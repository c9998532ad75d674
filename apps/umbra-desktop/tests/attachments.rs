#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Attachments and the profile picture, driven by accessible labels: two apps on the same
//! in-memory swarms and the real attachment server (in process).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use umbra_desktop::DesktopApp;

use support::files::TestFiles;
use support::*;

/// Alice and Bob, each in the app, in an accepted conversation, sharing an attachment server.
struct Two {
    alice: Harness<'static, DesktopApp>,
    bob: Harness<'static, DesktopApp>,
    files: Arc<TestFiles>,
    dirs: [tempfile::TempDir; 3],
}

impl Two {
    fn new() -> Self {
        let dirs = [
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        ];
        let s = swarms();
        let files = TestFiles::start();
        let mut alice = app_with_files(dirs[0].path(), &s, &files);
        let mut bob = app_with_files(dirs[1].path(), &s, &files);
        create_account(&mut alice, "Alice");
        let bob_id = create_account(&mut bob, "Bob");
        click(&mut alice, "New conversation");
        type_into(&mut alice, "Session ID", &bob_id.to_hex());
        click(&mut alice, "Start conversation");
        type_into(&mut alice, "Message", "hello bob");
        alice.key_press(egui::Key::Enter);
        wait_label(&mut alice, "· sent");
        wait_label(&mut bob, "Requests (1)");
        click(&mut bob, "Requests (1)");
        click(&mut bob, "Accept");
        wait_label(&mut bob, "hello bob");
        Self {
            alice,
            bob,
            files,
            dirs,
        }
    }

    /// A scratch directory for files to send and save.
    fn scratch(&self) -> &Path {
        self.dirs[2].path()
    }
}

/// Bytes that do not repeat (so a misplaced chunk would show).
fn file_of(path: &Path, len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(path, &data).unwrap();
    data
}

/// A file dropped onto the window, as the windowing integration hands it over.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn png_file(path: &Path, w: u32, h: u32) {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 0x80, 0xff])
    });
    img.save(path).unwrap();
}

/// Types `text` into `label`, replacing what is there.
fn replace_text(h: &mut Harness<'_, DesktopApp>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label(label).type_text(text);
    h.step();
}

/// Attaches `path` with the composer's button and the path dialog.
fn attach(h: &mut Harness<'_, DesktopApp>, path: &Path, caption: &str) {
    click(h, "Attach");
    type_into(h, "File path", &path.display().to_string());
    if !caption.is_empty() {
        type_into(h, "Caption (optional)", caption);
    }
    click(h, "Send file");
}

/// Saves the (only) attachment shown to `out` through "Save as…".
fn save_as(h: &mut Harness<'_, DesktopApp>, out: &Path) {
    click(h, "Save as…");
    wait_label(h, "File path");
    replace_text(h, "File path", &out.display().to_string());
    click(h, "Save");
    wait_label(h, "Saved to");
}

#[test]
fn a_file_attached_by_path_arrives_and_is_saved_intact() {
    let mut t = Two::new();
    let path = t.scratch().join("report.bin");
    let data = file_of(&path, 300_000);

    attach(&mut t.alice, &path, "the numbers");
    wait_label(&mut t.alice, "300.0 kB · sent");
    assert!(t.alice.query_by_label("the numbers").is_some());

    wait_label(&mut t.bob, "report.bin");
    assert!(t.bob.query_by_label("the numbers").is_some());
    assert!(t.bob.query_by_label_contains("not downloaded").is_some());
    let out = t.scratch().join("saved.bin");
    save_as(&mut t.bob, &out);
    assert_eq!(std::fs::read(&out).unwrap(), data);

    // Saving again to the same place is refused, never overwritten.
    click(&mut t.bob, "Save as…");
    replace_text(&mut t.bob, "File path", &out.display().to_string());
    click(&mut t.bob, "Save");
    wait_label(&mut t.bob, "already exists: choose another name");
    click(&mut t.bob, "Cancel");
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[test]
fn an_image_shows_a_preview_on_both_sides() {
    let mut t = Two::new();
    let path = t.scratch().join("cat.png");
    png_file(&path, 1200, 800);

    // Dropped onto the window rather than typed.
    t.alice
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped(path.clone())));
    t.alice.run_steps(2);
    wait_label(&mut t.alice, "File path");
    click(&mut t.alice, "Send file");
    wait_label(&mut t.alice, "Preview of cat.png");

    // The recipient fetches a small image by itself (checked by the messenger) and previews it.
    wait_label(&mut t.bob, "Preview of cat.png");
    assert!(t.bob.query_by_label_contains("downloaded").is_some());
}

#[test]
fn a_failed_upload_offers_retry_and_the_retry_succeeds() {
    let mut t = Two::new();
    let path = t.scratch().join("notes.txt");
    let data = file_of(&path, 5_000);

    t.files.set_down(true);
    attach(&mut t.alice, &path, "");
    wait_label(&mut t.alice, "upload failed");
    assert!(
        t.alice
            .query_by_label_contains("the test stopped the server")
            .is_some()
    );

    t.files.set_down(false);
    click(&mut t.alice, "Retry");
    wait_for(&mut t.alice, "the upload row to go", |h| {
        h.query_by_label("upload failed").is_none() && h.query_by_label("Retry").is_none()
    });
    wait_label(&mut t.bob, "notes.txt");
    let out = t.scratch().join("notes-copy.txt");
    save_as(&mut t.bob, &out);
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[test]
fn a_tampered_download_is_refused_in_one_line_and_a_retry_shows_it() {
    let mut t = Two::new();
    let path = t.scratch().join("map.png");
    png_file(&path, 64, 64);
    t.files.set_tamper(true);
    attach(&mut t.alice, &path, "");
    wait_label(&mut t.alice, "Preview of map.png");

    // Bob's app fetches the small image by itself; the messenger refuses the bad bytes.
    wait_label(&mut t.bob, "the attachment was refused");
    assert!(t.bob.query_by_label("Preview of map.png").is_none());
    t.files.set_tamper(false);
    click(&mut t.bob, "Retry");
    wait_label(&mut t.bob, "Preview of map.png");
}

#[test]
fn a_missing_file_is_refused_in_the_dialog() {
    let mut t = Two::new();
    let missing = t.scratch().join("nope.txt");
    attach(&mut t.alice, &missing, "");
    wait_label(&mut t.alice, "is not a file: check the path.");
    t.alice.key_press(egui::Key::Escape);
    t.alice.run_steps(2);
    assert!(t.alice.query_by_label("File path").is_none());
}

#[test]
fn own_profile_picture_is_set_from_settings() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let s = swarms();
    let files = TestFiles::start();
    let mut h = app_with_files(dir.path(), &s, &files);
    create_account(&mut h, "Alice");
    let path = scratch.path().join("me.png");
    png_file(&path, 300, 200);

    click(&mut h, "Settings");
    type_into(&mut h, "Picture file", &path.display().to_string());
    wait_label(&mut h, "Preview of your new picture");
    click(&mut h, "Upload picture");
    wait_label(&mut h, "Your profile picture is set.");
}
