//! The left side: where to go (new conversation, requests, network, settings), the search
//! field and the conversation list: pinned conversations first, then most recent activity
//! first; a right click pins, unpins or hides one.

use eframe::egui;

use crate::backend::Command;
use crate::model::{Model, Pane, conversation_name};

/// The longest preview shown in a row, in characters.
const PREVIEW_CHARS: usize = 48;

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, now: u64, out: &mut Vec<Command>) {
    ui.add_space(6.0);
    ui.horizontal_wrapped(|ui| {
        if ui
            .selectable_label(m.pane == Pane::NewConversation, "New conversation")
            .clicked()
        {
            m.pane = Pane::NewConversation;
        }
        let requests = if m.requests.is_empty() {
            "Requests".to_string()
        } else {
            format!("Requests ({})", m.requests.len())
        };
        if ui
            .selectable_label(m.pane == Pane::Requests, requests)
            .clicked()
        {
            m.pane = Pane::Requests;
        }
        if ui
            .selectable_label(m.pane == Pane::Network, "Network")
            .clicked()
        {
            m.pane = Pane::Network;
        }
        if ui
            .selectable_label(m.pane == Pane::Settings, "Settings")
            .clicked()
        {
            m.pane = Pane::Settings;
        }
    });
    ui.add_space(4.0);
    let search_id = egui::Id::unique("conversation_search");
    if ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::K)) {
        ui.memory_mut(|mem| mem.request_focus(search_id));
    }
    let l = ui.label("Search conversations");
    ui.add(
        egui::TextEdit::singleline(&mut m.search)
            .id(search_id)
            .hint_text("name or Session ID  (Ctrl+K)")
            .desired_width(f32::INFINITY),
    )
    .labelled_by(l.id);
    ui.separator();

    let mut clicked = None;
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let chats = m.visible_chats();
            if chats.is_empty() {
                ui.add_space(12.0);
                ui.label(if m.search.trim().is_empty() {
                    "No conversations yet. Start one with “New conversation”."
                } else {
                    "No conversation matches."
                });
            }
            for c in chats {
                let id = c.contact.session_id;
                let selected = m.pane == Pane::Chat && m.open == Some(id);
                let preview = c.last.as_ref().map(|msg| {
                    let mut p: String = msg.body.chars().take(PREVIEW_CHARS).collect();
                    if msg.body.chars().count() > PREVIEW_CHARS {
                        p.push('…');
                    }
                    let p = p.replace('\n', " ");
                    if msg.outgoing { format!("You: {p}") } else { p }
                });
                let when = c.last.as_ref().map(|msg| m.zone.short(msg.sent_ms, now));
                let pinned = c.priority.is_pinned();
                let name = if pinned {
                    format!("{} · pinned", conversation_name(c))
                } else {
                    conversation_name(c)
                };
                let r = row(ui, &name, preview, when, c.unread, selected);
                if r.clicked() {
                    clicked = Some(id);
                }
                // Right click: where the conversation sits in the list, on every device.
                r.context_menu(|ui| {
                    let (label, command) = if pinned {
                        ("Unpin", Command::Unpin(id))
                    } else {
                        ("Pin to the top", Command::Pin(id))
                    };
                    if ui.button(label).clicked() {
                        out.push(command);
                        ui.close();
                    }
                    if ui
                        .button("Hide until a new message arrives")
                        .on_hover_text("Its messages stay, marked read.")
                        .clicked()
                    {
                        out.push(Command::Hide(id));
                        ui.close();
                    }
                });
            }
        });
    if let Some(id) = clicked {
        m.open(id);
        out.push(Command::Open(Some(id)));
    }
}

/// One conversation: name and time on the first line, the preview and the unread count on
/// the second. Its accessible name is the conversation's name.
fn row(
    ui: &mut egui::Ui,
    name: &str,
    preview: Option<String>,
    when: Option<String>,
    unread: u64,
    selected: bool,
) -> egui::Response {
    let width = ui.available_width();
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, 52.0), egui::Sense::click());
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, selected, name));
    if !ui.is_rect_visible(rect) {
        return response;
    }
    let visuals = ui.visuals();
    let painter = ui.painter_at(rect);
    if selected {
        painter.rect_filled(rect, 6.0, visuals.selection.bg_fill);
    } else if response.hovered() {
        painter.rect_filled(rect, 6.0, visuals.widgets.hovered.weak_bg_fill);
    }
    let text = if selected {
        visuals.selection.stroke.color
    } else {
        visuals.text_color()
    };
    let weak = if selected {
        text
    } else {
        visuals.weak_text_color()
    };
    let left = rect.left() + 8.0;
    let right = rect.right() - 8.0;
    let body = egui::FontId::proportional(14.0);
    let small = egui::FontId::proportional(12.0);
    painter.text(
        egui::pos2(left, rect.top() + 8.0),
        egui::Align2::LEFT_TOP,
        name,
        egui::FontId::proportional(15.0),
        text,
    );
    if let Some(when) = when {
        painter.text(
            egui::pos2(right, rect.top() + 9.0),
            egui::Align2::RIGHT_TOP,
            when,
            small.clone(),
            weak,
        );
    }
    let mut preview_right = right;
    if unread > 0 {
        let badge = egui::pos2(right - 10.0, rect.top() + 36.0);
        painter.circle_filled(badge, 10.0, visuals.hyperlink_color);
        painter.text(
            badge,
            egui::Align2::CENTER_CENTER,
            unread.min(99).to_string(),
            small,
            visuals.extreme_bg_color,
        );
        preview_right -= 24.0;
    }
    if let Some(p) = preview {
        let clip = egui::Rect::from_min_max(
            egui::pos2(left, rect.top() + 28.0),
            egui::pos2(preview_right, rect.bottom()),
        );
        ui.painter_at(clip).text(
            egui::pos2(left, rect.top() + 29.0),
            egui::Align2::LEFT_TOP,
            p,
            body,
            weak,
        );
    }
    response
}
