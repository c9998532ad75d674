//! Start a conversation by pasting a Session ID, checked as it is typed.

use eframe::egui;

use super::widgets;
use crate::backend::Command;
use crate::model::{Model, Pane, check_session_id};

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, out: &mut Vec<Command>) {
    ui.heading("New conversation");
    ui.label("Paste the Session ID of the person you want to write to.");
    ui.add_space(8.0);
    let r = widgets::field(ui, "Session ID", &mut m.new_id, "05…");
    let checked = check_session_id(&m.new_id, m.me);
    match &checked {
        Ok(_) => {
            ui.colored_label(
                egui::Color32::from_rgb(0x2e, 0xa0, 0x43),
                "Valid Session ID.",
            );
        }
        // Nothing typed yet: a hint, not an error.
        Err(why) if m.new_id.trim().is_empty() => {
            ui.label(egui::RichText::new(why).weak());
        }
        Err(why) => widgets::error_line(ui, Some(why)),
    }
    ui.add_space(8.0);
    let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    let clicked = ui
        .add_enabled(checked.is_ok(), egui::Button::new("Start conversation"))
        .clicked();
    if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
        m.pane = Pane::Chat;
    }
    if let Ok(id) = checked
        && (clicked || enter)
    {
        m.new_id.clear();
        m.open(id);
        out.push(Command::Open(Some(id)));
    }
}
