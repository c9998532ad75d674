//! Small pieces the screens share: labelled fields (the label is the field's accessible
//! name, so screen readers and the UI tests find it by that name), a centred column, the
//! network badge.

use eframe::egui;

use crate::backend::NetworkStatus;

/// A one-line text field under its label.
pub(super) fn field(
    ui: &mut egui::Ui,
    label: &str,
    text: &mut String,
    hint: &str,
) -> egui::Response {
    labelled(ui, label, egui::TextEdit::singleline(text).hint_text(hint))
}

/// A hidden one-line field (passphrases).
pub(super) fn secret(ui: &mut egui::Ui, label: &str, text: &mut String) -> egui::Response {
    labelled(ui, label, egui::TextEdit::singleline(text).password(true))
}

fn labelled(ui: &mut egui::Ui, label: &str, edit: egui::TextEdit<'_>) -> egui::Response {
    let l = ui.label(label);
    ui.add(edit.desired_width(f32::INFINITY)).labelled_by(l.id)
}

/// A line in the error colour (nothing when `text` is `None`).
pub(super) fn error_line(ui: &mut egui::Ui, text: Option<&str>) {
    if let Some(t) = text {
        ui.colored_label(ui.visuals().error_fg_color, t);
    }
}

/// A column of at most 420 points in the middle of the window.
pub(super) fn centered(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui)) {
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| {
            let width = ui.available_width().min(420.0);
            let margin = ((ui.available_width() - width) / 2.0).max(0.0);
            ui.add_space(40.0);
            ui.horizontal(|ui| {
                ui.add_space(margin);
                ui.vertical(|ui| {
                    ui.set_width(width);
                    add(ui);
                });
            });
        });
    });
}

/// A coloured dot and "Connected" / "Connecting…" / "Offline", with the reason on hover.
/// (The dot is painted: egui's proportional font has no circle glyphs.)
pub(super) fn network_badge(ui: &mut egui::Ui, n: &NetworkStatus) {
    let (text, colour) = if n.connected {
        ("Connected", egui::Color32::from_rgb(0x2e, 0xa0, 0x43))
    } else if n.progress.is_some() {
        ("Connecting…", ui.visuals().warn_fg_color)
    } else {
        ("Offline", ui.visuals().error_fg_color)
    };
    let r = ui
        .horizontal(|ui| {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
            ui.painter().circle_filled(rect.center(), 5.0, colour);
            ui.label(egui::RichText::new(text).color(colour))
        })
        .inner;
    if let Some(p) = n.problem.as_deref().or(n.progress.as_deref()) {
        r.on_hover_text(p);
    }
}
