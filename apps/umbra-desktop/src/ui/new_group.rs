//! Create a group: its name and members, one Session ID per field, each checked as it is
//! typed with a one-line reason. Creating writes to the group swarm, so it waits for the
//! back end; the new group opens when it is there.

use eframe::egui;

use super::widgets;
use crate::backend::Command;
use crate::model::{Model, NewGroup, Pane, check_member};

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, out: &mut Vec<Command>) {
    ui.heading("New group");
    ui.label("You are its admin. Members get an invitation they accept or decline.");
    ui.add_space(8.0);
    let form = &mut m.new_group;
    if form.members.is_empty() {
        form.members.push(String::new());
    }
    widgets::field(ui, "Group name", &mut form.name, "e.g. Hikers");
    match form.checked_name() {
        Ok(_) => {}
        Err(why) if form.name.is_empty() => {
            ui.label(egui::RichText::new(why).weak());
        }
        Err(why) => widgets::error_line(ui, Some(&why)),
    }
    ui.add_space(8.0);
    let mut seen = Vec::new();
    let mut remove = None;
    let rows = form.members.len();
    egui::ScrollArea::vertical()
        .max_height((ui.available_height() - 120.0).max(80.0))
        .show(ui, |ui| {
            for (i, text) in form.members.iter_mut().enumerate() {
                let label = format!("Member {}", i + 1);
                ui.horizontal(|ui| {
                    let l = ui.label(&label);
                    ui.add(
                        egui::TextEdit::singleline(text)
                            .hint_text("Session ID (05…)")
                            .desired_width(ui.available_width() - 80.0),
                    )
                    .labelled_by(l.id);
                    if rows > 1 && ui.small_button("Remove").clicked() {
                        remove = Some(i);
                    }
                });
                // Checked after the field, so the line says what was just typed.
                match check_member(text, m.me, &mut seen) {
                    None => {}
                    Some(Ok(id)) => {
                        let name = m.names.get(&id).cloned();
                        let line = match name {
                            Some(n) => format!("Valid Session ID ({n})."),
                            None => "Valid Session ID.".to_string(),
                        };
                        ui.colored_label(egui::Color32::from_rgb(0x2e, 0xa0, 0x43), line);
                    }
                    Some(Err(why)) => widgets::error_line(ui, Some(&why)),
                }
            }
        });
    if let Some(i) = remove {
        form.members.remove(i);
    }
    if ui.button("Add another member").clicked() {
        form.members.push(String::new());
    }
    ui.add_space(8.0);
    let ready = form.ready(m.me);
    ui.horizontal(|ui| {
        let create = ui
            .add_enabled(
                ready.is_ok() && !form.busy,
                egui::Button::new("Create group"),
            )
            .clicked();
        if form.busy {
            ui.spinner();
            ui.label("Creating the group…");
        }
        if create && let Ok((name, members)) = ready {
            form.busy = true;
            form.error = None;
            out.push(Command::CreateGroup { name, members });
        }
        if ui.button("Cancel").clicked() {
            *form = NewGroup::default();
            m.pane = Pane::Chat;
        }
    });
    widgets::error_line(ui, m.new_group.error.as_deref());
    if ui.input(|i| i.key_pressed(egui::Key::Escape)) && !m.new_group.busy {
        m.pane = Pane::Chat;
    }
}
