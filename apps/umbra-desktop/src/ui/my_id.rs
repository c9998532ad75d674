//! Your Session ID, as text and as a QR code another device can scan. The code is painted
//! module by module (no image, no texture): black on white whatever the theme, with the
//! four-module quiet zone scanners need.

use eframe::egui;

use crate::model::Model;

/// Modules of white around the code (ISO/IEC 18004 asks for four).
const QUIET: usize = 4;
/// The code's side on screen at most, points.
const SIDE: f32 = 260.0;

/// The dark modules of the QR code of `text`, row by row, and the width; `None` if it does
/// not fit a QR code (never for a Session ID).
pub(super) fn modules(text: &str) -> Option<(usize, Vec<bool>)> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    Some((code.width(), dark))
}

pub(super) fn show(ui: &mut egui::Ui, m: &Model) {
    ui.heading("Your Session ID");
    let Some(me) = m.me else { return };
    let hex = me.to_hex();
    ui.label("People write to you at this ID. Scan the code with another device, or copy it.");
    ui.add_space(6.0);
    ui.label(egui::RichText::new(&hex).monospace());
    ui.add_space(10.0);
    match modules(&hex) {
        Some((width, dark)) => paint(ui, width, &dark),
        None => {
            ui.label("This ID does not fit a QR code.");
        }
    }
}

fn paint(ui: &mut egui::Ui, width: usize, dark: &[bool]) {
    let cells = width + 2 * QUIET;
    // Whole points per module, so every module has the same size on screen.
    let module = (SIDE / cells as f32).floor().max(1.0);
    let side = module * cells as f32;
    let (rect, response) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
    response.widget_info(|| {
        egui::WidgetInfo::labeled(egui::Role::Image, true, "QR code of your Session ID")
    });
    if !ui.is_rect_visible(rect) {
        return;
    }
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, egui::Color32::WHITE);
    for (i, _) in dark.iter().enumerate().filter(|(_, d)| **d) {
        let (x, y) = (i % width + QUIET, i / width + QUIET);
        let min = rect.min + egui::vec2(x as f32 * module, y as f32 * module);
        painter.rect_filled(
            egui::Rect::from_min_size(min, egui::vec2(module, module)),
            0.0,
            egui::Color32::BLACK,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_id_makes_a_square_code_with_its_finder_patterns() {
        let id = format!("05{}", "ab".repeat(32));
        let (width, dark) = modules(&id).unwrap();
        assert_eq!(dark.len(), width * width);
        assert!(width >= 21 && (width - 17) % 4 == 0, "a QR version's width");
        let at = |x: usize, y: usize| dark[y * width + x];
        // The three finder patterns: a dark 7×7 ring with a light ring inside it.
        for (x0, y0) in [(0, 0), (width - 7, 0), (0, width - 7)] {
            assert!(at(x0, y0) && at(x0 + 6, y0 + 6) && at(x0 + 3, y0 + 3));
            assert!(!at(x0 + 1, y0 + 1));
        }
    }
}
