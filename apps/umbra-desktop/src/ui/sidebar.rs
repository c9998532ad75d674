//! The left side: where to go (new conversation, new group, requests, network, settings),
//! the search field and the conversation list (chats and groups): pinned conversations
//! first, then most recent activity first; a right click pins, unpins or hides a chat.

use eframe::egui;

use super::avatar::{self, Avatar};
use crate::backend::Command;
use crate::backend::GroupSummary;
use crate::client::GroupStatus;
use crate::model::{ListRow, Model, Pane, conversation_name};

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
        if ui
            .selectable_label(m.pane == Pane::NewGroup, "New group")
            .clicked()
        {
            m.pane = Pane::NewGroup;
        }
        let waiting = m.requests.len() + m.invitations().count();
        let requests = if waiting == 0 {
            "Requests".to_string()
        } else {
            format!("Requests ({waiting})")
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
    let mut clicked_group = None;
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let rows = m.visible_rows();
            if rows.is_empty() {
                ui.add_space(12.0);
                ui.label(if m.search.trim().is_empty() {
                    "No conversations yet. Start one with “New conversation”."
                } else {
                    "No conversation matches."
                });
            }
            for row_data in rows {
                let c = match row_data {
                    ListRow::Chat(c) => c,
                    ListRow::Group(g) => {
                        let selected =
                            m.pane == Pane::Chat && m.open_group.as_deref() == Some(&g.view.id);
                        if group_row(ui, m, g, now, selected).clicked() {
                            clicked_group = Some(g.view.id.clone());
                        }
                        continue;
                    }
                };
                let id = c.contact.session_id;
                let selected = m.pane == Pane::Chat && m.open == Some(id);
                let preview = c.last.as_ref().map(|msg| {
                    let mut p: String = msg.body.chars().take(PREVIEW_CHARS).collect();
                    if msg.body.chars().count() > PREVIEW_CHARS {
                        p.push('…');
                    }
                    // A text is never empty: an empty body is a file sent without a caption.
                    let p = if p.is_empty() {
                        "File".to_string()
                    } else {
                        p.replace('\n', " ")
                    };
                    if msg.outgoing { format!("You: {p}") } else { p }
                });
                let when = c.last.as_ref().map(|msg| m.zone.short(msg.sent_ms, now));
                let pinned = c.priority.is_pinned();
                let plain = conversation_name(c);
                let name = if pinned {
                    format!("{plain} · pinned")
                } else {
                    plain.clone()
                };
                let key = id.to_hex();
                let face = Avatar {
                    key: &key,
                    name: &plain,
                    picture: m.pictures.get(&id),
                };
                let r = row(ui, &name, face, preview, when, c.unread, selected);
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
    if let Some(id) = clicked_group {
        m.open_group(id.clone());
        out.push(Command::OpenGroup(id));
    }
}

/// A group's row: its name, then "Bob: hello" (or how many members, or why it is closed).
fn group_row(
    ui: &mut egui::Ui,
    m: &Model,
    g: &GroupSummary,
    now: u64,
    selected: bool,
) -> egui::Response {
    let preview = match (g.view.status, &g.last) {
        (GroupStatus::Kicked, _) => "You were removed from this group".to_string(),
        (GroupStatus::Destroyed, _) => "An admin deleted this group".to_string(),
        (_, Some(msg)) => {
            let mut p: String = msg.body.chars().take(PREVIEW_CHARS).collect();
            if msg.body.chars().count() > PREVIEW_CHARS {
                p.push('…');
            }
            format!("{}: {}", m.name_of(&msg.author), p.replace('\n', " "))
        }
        (_, None) => members_line(g.view.members.len()),
    };
    let when = g.last.as_ref().map(|msg| m.zone.short(msg.sent_ms, now));
    let face = Avatar {
        key: &g.view.id,
        name: &g.view.name,
        picture: None,
    };
    row(
        ui,
        &g.view.name,
        face,
        Some(preview),
        when,
        g.unread,
        selected,
    )
}

/// "Group · 3 members".
pub(super) fn members_line(n: usize) -> String {
    if n == 1 {
        "Group · 1 member".into()
    } else {
        format!("Group · {n} members")
    }
}

/// One conversation: its avatar, then name and time on the first line, the preview and the
/// unread count on the second. Its accessible name is the conversation's name.
fn row(
    ui: &mut egui::Ui,
    name: &str,
    face: Avatar<'_>,
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
    avatar::paint(
        ui,
        egui::pos2(rect.left() + 26.0, rect.center().y),
        18.0,
        face,
    );
    let left = rect.left() + 54.0;
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
