//! The lock screen of a profile with a passphrase.

use eframe::egui;

use super::widgets;
use crate::backend::Command;
use crate::model::Model;

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, out: &mut Vec<Command>) {
    widgets::centered(ui, |ui| {
        ui.heading("Unlock Umbra");
        ui.label("This profile is protected by a passphrase.");
        ui.add_space(8.0);
        let r = widgets::secret(ui, "Passphrase", &mut m.unlock);
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        widgets::error_line(ui, m.unlock_error.as_deref());
        ui.add_space(8.0);
        if m.unlock_busy {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Unlocking…");
            });
        } else {
            let ready = !m.unlock.is_empty();
            let clicked = ui.add_enabled(ready, egui::Button::new("Unlock")).clicked();
            if ready && (clicked || enter) {
                m.unlock_busy = true;
                m.unlock_error = None;
                out.push(Command::Unlock {
                    passphrase: std::mem::take(&mut m.unlock),
                });
            }
        }
        ui.add_space(16.0);
        ui.label(
            egui::RichText::new(format!("Profile: {}", m.profile_dir.display()))
                .small()
                .weak(),
        );
    });
}
