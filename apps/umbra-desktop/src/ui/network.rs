//! The network panel: which network, whether the last poll worked, the onion paths (entry
//! node first) and the node list's epoch.

use eframe::egui;

use super::widgets;
use crate::model::Model;

pub(super) fn show(ui: &mut egui::Ui, m: &Model) {
    let n = &m.network;
    ui.heading("Network");
    ui.add_space(6.0);
    egui::Grid::new("network_facts")
        .num_columns(2)
        .spacing([16.0, 6.0])
        .show(ui, |ui| {
            ui.label("Status");
            widgets::network_badge(ui, n);
            ui.end_row();
            ui.label("Network");
            ui.label(n.network.as_deref().unwrap_or("none (offline)"));
            ui.end_row();
            ui.label("Node list epoch");
            ui.label(
                n.epoch
                    .map_or_else(|| "not known yet".into(), |e| e.to_string()),
            );
            ui.end_row();
        });
    if let Some(p) = &n.progress {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(p);
        });
    }
    widgets::error_line(ui, n.problem.as_deref());
    ui.add_space(10.0);
    ui.label(egui::RichText::new("Onion paths").strong());
    ui.label(
        egui::RichText::new(
            "Your messages travel through three service nodes; the entry node sees your IP \
             address, the others do not.",
        )
        .small(),
    );
    if n.paths.is_empty() {
        ui.label("No path built yet.");
    }
    for (i, path) in n.paths.iter().enumerate() {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.label(format!("Path {}", i + 1));
            ui.label(egui::RichText::new("you").monospace());
            for (j, (key, addr)) in path.iter().enumerate() {
                let role = if j == 0 { "entry node" } else { "service node" };
                ui.label(egui::RichText::new(format!("→ {role}  {key}  {addr}")).monospace());
            }
            ui.label(egui::RichText::new("→ destination").monospace());
        });
    }
}
