//! Long message lists drawn row by row: only the rows in view, and a margin around them, are
//! laid out and painted; every other row takes the height it had when last drawn, or an
//! estimate (the mean of those measured) until it is first drawn. A frame's cost so follows
//! the window's height, not the conversation's length.
//!
//! A row drawn for the first time seldom has the estimated height. When that happens above
//! the view (scrolling up into older messages), the list is scrolled by the difference, so
//! that what is on screen does not jump.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use eframe::egui;

/// Rows within this many points of the view are drawn too (measured before they show).
const MARGIN: f32 = 300.0;

/// Measured row heights of one list, for one width.
#[derive(Debug, Default)]
struct Heights {
    width: f32,
    rows: HashMap<egui::IdSalt, f32>,
    total: f64,
}

impl Heights {
    fn estimate(&self) -> f32 {
        if self.rows.is_empty() {
            60.0
        } else {
            (self.total / self.rows.len() as f64) as f32
        }
    }

    fn set(&mut self, key: egui::IdSalt, height: f32) -> Option<f32> {
        let old = self.rows.insert(key, height);
        self.total += f64::from(height) - f64::from(old.unwrap_or(0.0));
        old
    }
}

type Shared = Arc<Mutex<Heights>>;

/// Draws `count` rows inside a [`egui::ScrollArea::show_viewport`]: `key(i)` names row
/// `i` (stable while the row exists), `draw(ui, i)` draws it from the top of `ui`.
pub(super) fn show(
    ui: &mut egui::Ui,
    viewport: egui::Rect,
    list: egui::Id,
    count: usize,
    key: impl Fn(usize) -> egui::IdSalt,
    mut draw: impl FnMut(&mut egui::Ui, usize),
) {
    let store: Shared = ui.data_mut(|d| d.get_temp_mut_or_default::<Shared>(list).clone());
    let mut heights = store.lock().unwrap_or_else(PoisonError::into_inner);
    let width = ui.available_width();
    if (heights.width - width).abs() > 0.5 {
        // Text wraps differently: every height is stale.
        *heights = Heights {
            width,
            ..Heights::default()
        };
    }
    let content_top = ui.min_rect().top();
    let origin = ui.cursor().min;
    let gap = ui.spacing().item_spacing.y;
    let estimate = heights.estimate();
    let mut y = 0.0_f32;
    // How much the rows above the view grew when measured this frame.
    let mut shift = 0.0_f32;
    for i in 0..count {
        let k = key(i);
        let known = heights.rows.get(&k).copied();
        let guess = known.unwrap_or(estimate);
        let top = origin.y - content_top + y;
        let near = top + guess >= viewport.min.y - MARGIN && top <= viewport.max.y + MARGIN;
        if !near {
            y += guess;
            continue;
        }
        let rect = egui::Rect::from_min_size(
            egui::pos2(origin.x, origin.y + y),
            egui::vec2(width, f32::INFINITY),
        );
        let drawn = ui
            .scope_builder(
                egui::UiBuilder::new()
                    .max_rect(rect)
                    .layout(egui::Layout::top_down(egui::Align::Min))
                    .id_salt(k),
                |ui| draw(ui, i),
            )
            .response
            .rect
            .height()
            + gap;
        heights.set(k, drawn);
        if top + guess <= viewport.min.y {
            shift += drawn - guess;
        }
        y += drawn;
    }
    drop(heights);
    ui.allocate_rect(
        egui::Rect::from_min_size(origin, egui::vec2(width, y)),
        egui::Sense::hover(),
    );
    if shift.abs() > 0.5 {
        ui.scroll_with_delta(egui::vec2(0.0, -shift));
    }
}
