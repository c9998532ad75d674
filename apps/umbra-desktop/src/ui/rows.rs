//! Long message lists drawn row by row: only the rows in view, and a margin around them, are
//! laid out and painted; every other row takes the height it had when last drawn, or an
//! estimate (the mean of those measured) until it is first drawn. A frame's cost so follows
//! the window's height, not the conversation's length.
//!
//! A row drawn for the first time seldom has the estimated height. When that happens above
//! the view (scrolling up into older messages), the list is scrolled by the difference, so
//! that what is on screen does not jump; so is it when a page of older rows arrives above
//! the first one.

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
    /// The first row of the last frame: found further down, older rows came before it.
    first: Option<egui::IdSalt>,
    /// The last frame showed the end of the list (the scroll area keeps it there as rows
    /// come, so no correction is needed then).
    at_end: bool,
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
/// `i` (stable while the row exists), `draw(ui, i)` draws it from the top of `ui`. Returns
/// whether the user has scrolled to within a screen of the first row (time for older ones).
pub(super) fn show(
    ui: &mut egui::Ui,
    viewport: egui::Rect,
    list: egui::Id,
    count: usize,
    key: impl Fn(usize) -> egui::IdSalt,
    mut draw: impl FnMut(&mut egui::Ui, usize),
) -> bool {
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
    let old_first = heights.first;
    heights.first = (count > 0).then(|| key(0));
    // Where last frame's first row is now, when rows came before it.
    let mut prepended = None;
    for i in 0..count {
        let k = key(i);
        if i > 0 && Some(k) == old_first {
            prepended = Some(y);
        }
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
    let was_at_end = heights.at_end;
    heights.at_end = viewport.max.y >= origin.y - content_top + y - 1.0;
    drop(heights);
    if let Some(above) = prepended {
        // Everything before last frame's first row is new; the rows measured in the view
        // this frame were the wrong ones, and are counted in `above` already.
        shift = above;
    }
    if was_at_end {
        // Kept at the end by the scroll area; scrolling here would unstick it.
        shift = 0.0;
    }
    ui.allocate_rect(
        egui::Rect::from_min_size(origin, egui::vec2(width, y)),
        egui::Sense::hover(),
    );
    if shift.abs() > 0.5 {
        ui.scroll_with_delta(egui::vec2(0.0, -shift));
    }
    !was_at_end && viewport.min.y < viewport.height()
}
