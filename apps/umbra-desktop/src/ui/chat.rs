//! The open conversation: its header (`chat_header`), the messages as bubbles with day
//! separators, times, delivery states, disappearing timers and attachments (`attachments`),
//! and the composer ("Attach", Enter sends, Shift+Enter starts a new line).

use eframe::egui;

use super::{attachments, chat_header, disappearing, rows};
use crate::backend::{Command, To};
use crate::client::{AttachmentInfo, Message};
use crate::model::{Attachments, Delivery, Model};
use crate::time;

/// Typing indicators are repeated this often while the user types (Session's receivers
/// drop an indicator after 20 s without news).
const TYPING_REPEAT_MS: u64 = 10_000;

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, now: u64, out: &mut Vec<Command>) {
    let Some(with) = m.open else {
        ui.centered_and_justified(|ui| {
            ui.label("Choose a conversation, or start a new one.");
        });
        return;
    };
    egui::Panel::top("chat_header").show(ui, |ui| chat_header::show(ui, m, with, out));
    egui::Panel::bottom("composer").show(ui, |ui| composer(ui, m, now, out));

    // A running timer counts down on screen.
    if m.history.iter().any(|msg| msg.expires_at_ms.is_some()) {
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_secs(1));
    }
    let mut actions = Vec::new();
    let mut files = Vec::new();
    let mut near_top = false;
    let shown = messages_area().show_viewport(ui, |ui, viewport| {
        ui.add_space(8.0);
        let history = &m.history;
        near_top = rows::show(
            ui,
            viewport,
            egui::Id::unique(("chat rows", with)),
            history.len(),
            |i| egui::IdSalt::new((history[i].sent_ms, history[i].outgoing)),
            |ui, i| {
                let msg = &history[i];
                let previous = i.checked_sub(1).map(|p| history[p].sent_ms);
                new_day(ui, m.zone, previous, msg.sent_ms, now);
                let selected = m.selected == Some((msg.conversation, msg.sent_ms));
                let shown = Shown {
                    delivery: m.delivery(msg),
                    selected,
                    now,
                    zone: m.zone,
                };
                if let Some(a) = bubble(ui, msg, shown, &m.attachments, &mut files) {
                    actions.push(a);
                }
            },
        );
        attachments::uploads(ui, &m.attachments, &To::Chat(with), &mut files);
        for p in m.pending_here() {
            let state = if p.error.is_some() {
                "failed"
            } else {
                "sending…"
            };
            let r = bubble_frame(ui, true, |ui| {
                ui.label(&p.text);
                ui.label(egui::RichText::new(state).small());
                if let Some(e) = &p.error {
                    ui.label(egui::RichText::new(e).small());
                    ui.button("Retry").clicked()
                } else {
                    false
                }
            });
            if r {
                actions.push(Action::RetryPending(p.local));
            }
        }
        if m.history.is_empty() && m.pending_here().next().is_none() {
            ui.label("No messages yet. Say hello!");
        }
    });
    m.list_offset = Some(shown.state.clamped_offset().y);
    if near_top && m.history_more && !m.asked_more {
        m.asked_more = true;
        out.push(Command::MoreHistory);
    }
    attachments::apply(m, files, out);
    for a in actions {
        match a {
            Action::RetryNow => out.push(Command::RetryNow),
            Action::Select(sent_ms) => {
                let key = Some((with, sent_ms));
                m.selected = if m.selected == key { None } else { key };
            }
            Action::Unsend(sent_ms) => {
                m.selected = None;
                out.push(Command::Unsend { with, sent_ms });
            }
            Action::SendAgain(text) => {
                let (local, to, text) = m.queue(with, text);
                out.push(Command::Send { local, to, text });
            }
            Action::RetryPending(local) => {
                if let Some((local, to, text)) = m.retry_pending(local) {
                    out.push(Command::Send { local, to, text });
                }
            }
        }
    }
}

/// What a button under a message asks for.
enum Action {
    /// Deliver the outbox now.
    RetryNow,
    /// Show (or hide) the actions of the message sent at this time.
    Select(u64),
    /// Delete our message sent at this time for everyone.
    Unsend(u64),
    /// Send a refused message's text again.
    SendAgain(String),
    /// Try again a message that could not be queued.
    RetryPending(u64),
}

/// The scrolling list of a conversation's messages, kept at the newest.
pub(super) fn messages_area() -> egui::ScrollArea {
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .stick_to_bottom(true)
}

/// Before the message sent at `sent_ms` (the one before it sent at `previous`): draws a
/// separator when a new day begins, and says whether it did.
pub(super) fn new_day(
    ui: &mut egui::Ui,
    zone: time::Zone,
    previous: Option<u64>,
    sent_ms: u64,
    now: u64,
) -> bool {
    if previous.is_some_and(|p| zone.day(p) == zone.day(sent_ms)) {
        return false;
    }
    separator(ui, &zone.separator(sent_ms, now));
    true
}

fn separator(ui: &mut egui::Ui, text: &str) {
    ui.vertical_centered(|ui| {
        ui.add_space(6.0);
        ui.label(egui::RichText::new(text).small().weak());
        ui.add_space(2.0);
    });
}

/// A bubble: ours on the right in the accent colour, theirs on the left in the faint
/// background colour.
pub(super) fn bubble_frame<R>(
    ui: &mut egui::Ui,
    outgoing: bool,
    add: impl FnOnce(&mut egui::Ui) -> R,
) -> R {
    let max = ui.available_width() * 0.7;
    // Ours hug the right edge: their content is aligned right too, or the bubble would
    // stretch to the widest it may be.
    let (layout, inner, fill, text) = if outgoing {
        (
            egui::Layout::right_to_left(egui::Align::TOP),
            egui::Align::Max,
            ui.visuals().selection.bg_fill,
            Some(ui.visuals().selection.stroke.color),
        )
    } else {
        (
            egui::Layout::left_to_right(egui::Align::TOP),
            egui::Align::Min,
            ui.visuals().faint_bg_color,
            None,
        )
    };
    ui.with_layout(layout, |ui| {
        egui::Frame::new()
            .fill(fill)
            .corner_radius(10.0)
            .inner_margin(egui::Margin::symmetric(10, 6))
            .show(ui, |ui| {
                ui.set_max_width(max);
                ui.visuals_mut().override_text_color = text;
                ui.with_layout(egui::Layout::top_down(inner), add).inner
            })
            .inner
    })
    .inner
}

/// How a message is shown besides its content.
#[derive(Clone, Copy)]
struct Shown {
    delivery: Delivery,
    selected: bool,
    now: u64,
    zone: time::Zone,
}

/// One message; returns what its button asked for. Clicking the text selects it: a selected
/// message of ours offers "Delete for everyone" (a button under every message would crowd
/// the conversation). Its attachments come above its text (the caption).
fn bubble(
    ui: &mut egui::Ui,
    msg: &Message,
    shown: Shown,
    at: &Attachments,
    file_actions: &mut Vec<attachments::Action>,
) -> Option<Action> {
    let Shown {
        delivery,
        selected,
        now,
        zone,
    } = shown;
    let files: Vec<&AttachmentInfo> = at.of_message(msg.author, msg.sent_ms).collect();
    ui.add_space(2.0);
    let footer = |ui: &mut egui::Ui| {
        let mut line = zone.clock(msg.sent_ms);
        if !delivery.label().is_empty() {
            line.push_str(" · ");
            line.push_str(delivery.label());
        }
        ui.label(egui::RichText::new(line).small());
        if let Some(t) = disappearing::footer(msg.disappearing, msg.expires_at_ms, now) {
            ui.label(egui::RichText::new(t).small());
        }
        match delivery {
            Delivery::Retrying => ui
                .small_button("Retry now")
                .clicked()
                .then_some(Action::RetryNow),
            Delivery::Failed => ui
                .small_button("Send again")
                .clicked()
                .then(|| Action::SendAgain(msg.body.clone())),
            _ => None,
        }
    };
    bubble_frame(ui, msg.outgoing, |ui| {
        attachments::rows(ui, at, &files, file_actions);
        let text = (!msg.body.is_empty() || files.is_empty())
            .then(|| ui.add(egui::Label::new(&msg.body).sense(egui::Sense::click())));
        let mut action = footer(ui);
        if text.is_some_and(|t| t.clicked()) {
            action = Some(Action::Select(msg.sent_ms));
        }
        if selected
            && msg.outgoing
            && ui
                .small_button("Delete for everyone")
                .on_hover_text("Deletes it here, for them and on your other devices")
                .clicked()
        {
            action = Some(Action::Unsend(msg.sent_ms));
        }
        action
    })
}

fn composer(ui: &mut egui::Ui, m: &mut Model, now: u64, out: &mut Vec<Command>) {
    let Some(with) = m.open else { return };
    ui.add_space(6.0);
    let mut send = false;
    ui.horizontal(|ui| {
        if ui
            .button("Attach")
            .on_hover_text("Send a file (or drop one onto the window)")
            .clicked()
        {
            attachments::open_attach(m, String::new());
        }
        let send_width = 64.0;
        let draft = m.drafts.entry(with).or_default();
        let l = ui.label("Message");
        let r = ui
            .add(
                egui::TextEdit::multiline(draft)
                    .id(egui::Id::unique(("composer", with.to_hex())))
                    .hint_text("Write a message (Enter sends, Shift+Enter: new line)")
                    .desired_rows(2)
                    .desired_width(ui.available_width() - send_width)
                    .return_key(egui::KeyboardShortcut::new(
                        egui::Modifiers::SHIFT,
                        egui::Key::Enter,
                    )),
            )
            .labelled_by(l.id);
        if r.has_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter) && !i.modifiers.shift) {
            send = true;
        }
        if r.changed() {
            m.drafts_changed_at = Some(now);
        }
        if r.changed() && m.settings.typing_indicators {
            let typing = !draft.trim().is_empty();
            match (typing, m.typing_sent) {
                (true, Some((to, at)))
                    if to == with && now.saturating_sub(at) < TYPING_REPEAT_MS => {}
                (true, _) => {
                    m.typing_sent = Some((with, now));
                    out.push(Command::Typing {
                        to: with,
                        started: true,
                    });
                }
                (false, Some((to, _))) => {
                    m.typing_sent = None;
                    out.push(Command::Typing { to, started: false });
                }
                (false, None) => {}
            }
        }
        if ui.button("Send").clicked() {
            send = true;
        }
    });
    ui.add_space(6.0);
    if send && let Some((local, to, text)) = m.take_draft() {
        if let Some((typed_to, _)) = m.typing_sent.take() {
            out.push(Command::Typing {
                to: typed_to,
                started: false,
            });
        }
        out.push(Command::Send { local, to, text });
    }
}
