//! Round avatars: a contact's profile picture once the back end has downloaded it, else
//! initials on a colour of their own (groups always show initials). The picture's texture
//! is made once and kept in egui's memory until the picture changes.

use std::sync::Arc;

use eframe::egui;

use crate::picture::{Picture, hue_of, initials};

/// Who an avatar stands for.
#[derive(Clone, Copy)]
pub(super) struct Avatar<'a> {
    /// What tells them apart (a Session ID or group id, hex).
    pub(super) key: &'a str,
    /// The name shown (its initials are the fallback).
    pub(super) name: &'a str,
    pub(super) picture: Option<&'a Arc<Picture>>,
}

/// Paints `avatar` as a circle of `radius` around `center`.
pub(super) fn paint(ui: &egui::Ui, center: egui::Pos2, radius: f32, avatar: Avatar<'_>) {
    let rect = egui::Rect::from_center_size(center, egui::Vec2::splat(radius * 2.0));
    if let Some(picture) = avatar.picture {
        let texture = texture(ui.ctx(), avatar.key, picture);
        egui::Image::new(&texture)
            .corner_radius(radius)
            .paint_at(ui, rect);
        return;
    }
    let [r, g, b] = hue_of(avatar.key);
    let painter = ui.painter();
    painter.circle_filled(center, radius, egui::Color32::from_rgb(r, g, b));
    painter.text(
        center,
        egui::Align2::CENTER_CENTER,
        initials(avatar.name),
        egui::FontId::proportional(radius * 0.8),
        egui::Color32::WHITE,
    );
}

/// An avatar of `radius` in the layout (the chat headers).
pub(super) fn show(ui: &mut egui::Ui, radius: f32, avatar: Avatar<'_>) {
    let (rect, _) = ui.allocate_exact_size(egui::Vec2::splat(radius * 2.0), egui::Sense::hover());
    if ui.is_rect_visible(rect) {
        paint(ui, rect.center(), radius, avatar);
    }
}

fn texture(ctx: &egui::Context, key: &str, picture: &Arc<Picture>) -> egui::TextureHandle {
    type Cached = (Arc<Picture>, egui::TextureHandle);
    let id = egui::Id::unique(("avatar", key));
    if let Some((p, t)) = ctx.data(|d| d.get_temp::<Cached>(id))
        && Arc::ptr_eq(&p, picture)
    {
        return t;
    }
    let image =
        egui::ColorImage::from_rgba_unmultiplied([picture.side, picture.side], &picture.rgba);
    let t = ctx.load_texture(format!("avatar-{key}"), image, egui::TextureOptions::LINEAR);
    ctx.data_mut(|d| d.insert_temp::<Cached>(id, (picture.clone(), t.clone())));
    t
}
