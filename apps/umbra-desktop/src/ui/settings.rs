//! Settings: display name, read receipts, typing indicators, theme, and where the data
//! lives.

use eframe::egui;

use super::widgets;
use crate::backend::Command;
use crate::model::{Model, Theme};

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, out: &mut Vec<Command>) {
    ui.heading("Settings");
    ui.add_space(6.0);
    let r = widgets::field(ui, "Display name", &mut m.name_edit, "how others see you");
    let changed = m.name_edit.trim() != m.display_name;
    let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    if ui
        .add_enabled(changed, egui::Button::new("Save display name"))
        .clicked()
        || (changed && enter)
    {
        m.display_name = m.name_edit.trim().to_string();
        out.push(Command::SetDisplayName(m.display_name.clone()));
    }
    ui.add_space(10.0);
    ui.label(egui::RichText::new("Privacy").strong());
    let mut s = m.settings;
    ui.checkbox(&mut s.read_receipts, "Send read receipts");
    ui.checkbox(&mut s.typing_indicators, "Send typing indicators");
    if s != m.settings {
        m.settings = s;
        out.push(Command::SetSettings(s));
    }
    ui.add_space(10.0);
    ui.label(egui::RichText::new("Theme").strong());
    ui.horizontal(|ui| {
        ui.radio_value(&mut m.theme, Theme::System, "System");
        ui.radio_value(&mut m.theme, Theme::Light, "Light");
        ui.radio_value(&mut m.theme, Theme::Dark, "Dark");
    });
    ui.add_space(10.0);
    ui.label(egui::RichText::new("Your data").strong());
    ui.label(format!("Profile: {}", m.profile_dir.display()));
    ui.label(format!(
        "Network: {}",
        m.network.network.as_deref().unwrap_or("none (offline)")
    ));
}
