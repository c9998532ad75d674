//! Settings: our profile picture. A PNG or JPEG chosen by path (typed, pasted, or a file
//! dropped onto the window), previewed, then uploaded in the background; once set it is our
//! avatar in the top bar (and contacts get it with our next messages).

use eframe::egui;

use super::avatar::{self, Avatar};
use super::{attachments, widgets};
use crate::backend::Command;
use crate::model::Model;

/// The side of the chosen picture's preview, points (kept small: Settings is one column).
const PREVIEW_SIDE: f32 = 56.0;

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, out: &mut Vec<Command>) {
    ui.label(egui::RichText::new("Profile picture").strong());
    let chosen = attachments::typed_path(&m.attachments.picture.path).filter(|p| p.is_file());
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        if let Some(me) = m.me {
            let key = me.to_hex();
            avatar::show(
                ui,
                PREVIEW_SIDE / 2.0,
                Avatar {
                    key: &key,
                    name: &m.display_name,
                    picture: m.pictures.get(&me),
                },
            );
        }
        if let Some(path) = &chosen {
            ui.label("new:");
            attachments::preview(
                ui,
                &m.attachments,
                path,
                "your new picture",
                PREVIEW_SIDE,
                &mut actions,
            );
        }
        ui.vertical(|ui| {
            let edit = &mut m.attachments.picture;
            let r = widgets::field(
                ui,
                "Picture file",
                &mut edit.path,
                "a PNG or JPEG up to 1 MB (or drop one onto the window)",
            );
            if r.changed() {
                edit.result = None;
            }
            ui.horizontal(|ui| {
                let can = chosen.is_some() && !edit.busy;
                if ui
                    .add_enabled(can, egui::Button::new("Upload picture"))
                    .clicked()
                    && let Some(path) = chosen.clone()
                {
                    edit.busy = true;
                    edit.result = None;
                    out.push(Command::SetPicture(path));
                }
                if edit.busy {
                    ui.spinner();
                    ui.label("Uploading…");
                }
                if !edit.path.trim().is_empty() && chosen.is_none() {
                    widgets::error_line(ui, Some("No file at that path: check it."));
                }
                match &edit.result {
                    Some(Ok(line)) => {
                        ui.label(line);
                    }
                    Some(Err(e)) => widgets::error_line(ui, Some(e)),
                    None => {}
                }
            });
        });
    });
    attachments::apply(m, actions, out);
}
