//! Message requests: first messages from people not accepted yet. Accept moves the
//! conversation to the list (and tells the sender), decline deletes it, block drops their
//! messages from now on.

use eframe::egui;

use crate::backend::Command;
use crate::model::{Model, conversation_name, short_id};

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, now: u64, out: &mut Vec<Command>) {
    ui.heading("Message requests");
    ui.label(
        "People who wrote to you first. They do not know you saw their message until you accept.",
    );
    ui.add_space(8.0);
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
