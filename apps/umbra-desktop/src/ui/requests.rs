//! Message requests: first messages from people not accepted yet. Accept moves the
//! conversation to the list (and tells the sender), decline deletes it, block drops their
//! messages from now on. Group invitations wait here too: join or decline.

use eframe::egui;

use crate::backend::{Command, GroupAction};
use crate::model::{Model, conversation_name, short_id};

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, now: u64, out: &mut Vec<Command>) {
    ui.heading("Message requests");
    ui.label(
        "People who wrote to you first. They do not know you saw their message until you accept.",
    );
    ui.add_space(8.0);
    let joined = invitations(ui, m, out);
    if let Some(group) = joined {
        m.open_group(group.clone());
        out.push(Command::OpenGroup(group));
        return;
    }
    if m.requests.is_empty() {
        ui.label("No message requests.");
        return;
    }
    let mut open = None;
    egui::ScrollArea::vertical().show(ui, |ui| {
        for c in &m.requests {
            let id = c.contact.session_id;
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.horizontal(|ui| {
                    ui.label(egui::RichText::new(conversation_name(c)).strong());
                    ui.label(egui::RichText::new(short_id(&id)).monospace().weak());
                    if let Some(last) = &c.last {
                        ui.label(egui::RichText::new(m.zone.short(last.sent_ms, now)).weak());
                    }
                });
                if let Some(last) = &c.last {
                    ui.label(&last.body);
                }
                ui.horizontal(|ui| {
                    if ui.button("Accept").clicked() {
                        out.push(Command::Accept(id));
                        open = Some(id);
                    }
                    if ui.button("Decline").clicked() {
                        out.push(Command::Decline(id));
                    }
                    if ui.button("Block").clicked() {
                        out.push(Command::Block(id));
                    }
                });
            });
        }
    });
    if let Some(id) = open {
        m.open(id);
        out.push(Command::Open(Some(id)));
    }
}

/// Invitations to groups: join or decline; returns the group joined.
fn invitations(ui: &mut egui::Ui, m: &Model, out: &mut Vec<Command>) -> Option<String> {
    let mut joined = None;
    let invites: Vec<_> = m.invitations().collect();
    if invites.is_empty() {
        return None;
    }
    ui.strong("Group invitations");
    for g in invites {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new(&g.view.name).strong());
                if let Some(by) = &g.view.invited_by {
                    ui.label(format!("invited by {}", m.name_of(by)));
                    ui.label(egui::RichText::new(short_id(by)).monospace().weak());
                }
            });
            ui.horizontal(|ui| {
                let action = |action| Command::Group {
                    group: g.view.id.clone(),
                    action,
                };
                if ui.button("Join group").clicked() {
                    out.push(action(GroupAction::Accept));
                    joined = Some(g.view.id.clone());
                }
                if ui.button("Decline invitation").clicked() {
                    out.push(action(GroupAction::Decline));
                }
            });
        });
    }
    ui.add_space(8.0);
    ui.strong("Message requests");
    joined
}
