//! The open conversation's header: its name and ID, and what can be done to it — a
//! nickname, disappearing messages, blocking.

use eframe::egui;
use umbra_crypto::SessionId;

use super::avatar::{self, Avatar};
use super::{disappearing, widgets};
use crate::backend::Command;
use crate::client::Disappearing;
use crate::model::{HeaderEdit, Model, conversation_name, short_id};

/// The longest nickname, in characters (a name, not a note).
const MAX_NICKNAME_CHARS: usize = 64;

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, with: SessionId, out: &mut Vec<Command>) {
    let contact = m.open_conversation().map(|c| c.contact.clone());
    let name = m
        .open_conversation()
        .map_or_else(|| short_id(&with), conversation_name);
    let setting = contact
        .as_ref()
        .map_or(Disappearing::Off, |c| c.disappearing);
    let key = with.to_hex();
    let face = Avatar {
        key: &key,
        name: &name,
        picture: m.pictures.get(&with),
    };
    ui.horizontal(|ui| {
        avatar::show(ui, 16.0, face);
        ui.heading(&name);
        ui.label(egui::RichText::new(short_id(&with)).monospace().weak());
        if ui.small_button("Copy ID").clicked() {
            ui.ctx().copy_text(with.to_hex());
        }
        let mut toggle = |ui: &mut egui::Ui, edit: HeaderEdit, label: &str| {
            if ui.selectable_label(m.header == Some(edit), label).clicked() {
                m.header = (m.header != Some(edit)).then_some(edit);
                m.nickname_edit = contact
                    .as_ref()
                    .and_then(|c| c.nickname.clone())
                    .unwrap_or_default();
                m.header_error = None;
            }
        };
        toggle(ui, HeaderEdit::Rename, "Rename");
        toggle(ui, HeaderEdit::Disappearing, "Disappearing messages");
        toggle(ui, HeaderEdit::Block, "Block");
    });
    if let Some(s) = disappearing::summary(setting) {
        ui.label(egui::RichText::new(s).small());
    }
    let open = m.header;
    match open {
        Some(HeaderEdit::Rename) => rename(ui, m, with, out),
        Some(HeaderEdit::Disappearing) => {
            disappearing::choose(ui, with, setting, &mut m.timer, out);
        }
        Some(HeaderEdit::Block) => {
            ui.label(format!(
                "Block {name}? Their messages are dropped until you unblock them in Settings."
            ));
            ui.horizontal(|ui| {
                if ui.button("Block them").clicked() {
                    out.push(Command::Block(with));
                    out.push(Command::Open(None));
                    m.open = None;
                    m.header = None;
                    m.notice = Some(format!("{name} is blocked (to undo: Settings, Blocked)."));
                }
                if ui.button("Cancel").clicked() {
                    m.header = None;
                }
            });
        }
        None => {}
    }
    if m.typing.contains(&with) {
        ui.label(egui::RichText::new("typing…").italics().weak());
    }
}

/// The nickname field: only this device sees it; empty clears it.
fn rename(ui: &mut egui::Ui, m: &mut Model, with: SessionId, out: &mut Vec<Command>) {
    let r = widgets::field(
        ui,
        "Nickname",
        &mut m.nickname_edit,
        "only you see it; empty: their own name",
    );
    let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    ui.horizontal(|ui| {
        if ui.button("Save nickname").clicked() || enter {
            match check_nickname(&m.nickname_edit) {
                Ok(nickname) => {
                    out.push(Command::Rename { with, nickname });
                    m.header = None;
                    m.header_error = None;
                }
                Err(e) => m.header_error = Some(e),
            }
        }
        if ui.button("Cancel").clicked() {
            m.header = None;
        }
    });
    widgets::error_line(ui, m.header_error.as_deref());
}

/// A typed nickname: `None` to clear it, or a one-line reason it cannot be used.
fn check_nickname(text: &str) -> Result<Option<String>, String> {
    let t = text.trim();
    let n = t.chars().count();
    if n > MAX_NICKNAME_CHARS {
        return Err(format!(
            "A nickname has at most {MAX_NICKNAME_CHARS} characters; this has {n}."
        ));
    }
    if t.chars().any(char::is_control) {
        return Err("A nickname is one line of text.".into());
    }
    Ok((!t.is_empty()).then(|| t.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_trimmed_bounded_and_cleared_when_empty() {
        assert_eq!(check_nickname("  Bobby "), Ok(Some("Bobby".into())));
        assert_eq!(check_nickname("   "), Ok(None));
        assert!(
            check_nickname(&"x".repeat(65))
                .unwrap_err()
                .contains("this has 65")
        );
        assert!(check_nickname("a\tb").is_err());
    }
}
