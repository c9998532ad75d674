//! The open group: its header (name, members, the member panel's toggle, the group's
//! disappearing timer), the messages as bubbles with their senders' names, files and
//! "Delete for everyone", and the composer with Attach (Enter sends, Shift+Enter starts a
//! new line). Read receipts and typing indicators are off in groups, as in Session.

use eframe::egui;
use umbra_crypto::MessageHash;

use super::avatar::{self, Avatar};
use super::chat::{bubble_frame, messages_area, new_day};
use super::{attachments, disappearing, group_members, rows, sidebar};
use crate::backend::{Command, GroupAction, To};
use crate::client::{Disappearing, GroupChatMessage, GroupStatus, MessageStatus};
use crate::model::{Model, short_id};
use crate::time;

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, now: u64, out: &mut Vec<Command>) {
    let Some(group) = m.open_group.clone() else {
        return;
    };
    egui::Panel::top("group_header").show(ui, |ui| header(ui, m, &group, out));
    if m.group_panel.open {
        egui::Panel::right("group_members")
            .resizable(true)
            .default_size(280.0)
            .min_size(220.0)
            .show(ui, |ui| group_members::show(ui, m, &group, out));
    }
    egui::Panel::bottom("group_composer").show(ui, |ui| composer(ui, m, &group, now, out));

    let mut retry = None;
    let mut files = Vec::new();
    let mut chosen = None;
    let admin = m.open_group_summary().is_some_and(|g| g.view.admin);
    let active = m.open_group_active();
    let mut near_top = false;
    messages_area().show_viewport(ui, |ui, viewport| {
        ui.add_space(8.0);
        let history = &m.group_history;
        // The newest page; scrolling near its top asks for the one before.
        near_top = rows::show(
            ui,
            viewport,
            egui::Id::unique(("group rows", &group)),
            history.len(),
            |i| egui::IdSalt::new((history[i].sent_ms, history[i].author, history[i].hash)),
            |ui, i| {
                let msg = &history[i];
                let previous = i.checked_sub(1).map(|p| &history[p]);
                let day = new_day(ui, m.zone, previous.map(|p| p.sent_ms), msg.sent_ms, now);
                // A run of messages from one person names them once a day.
                let name = (day || previous.is_none_or(|p| p.author != msg.author))
                    .then(|| m.name_of(&msg.author));
                let shown = Shown {
                    name,
                    selected: msg.hash.is_some() && m.group_panel.selected_message == msg.hash,
                    can_unsend: active && (msg.outgoing || admin),
                    now,
                };
                if let Some(a) = bubble(ui, m, msg, shown, &mut files) {
                    chosen = Some(a);
                }
            },
        );
        attachments::uploads(ui, &m.attachments, &To::Group(group.clone()), &mut files);
        for p in m.group_pending_here() {
            let failed = bubble_frame(ui, true, |ui| {
                ui.label(&p.text);
                if let Some(e) = &p.error {
                    ui.label(egui::RichText::new(format!("failed: {e}")).small());
                    ui.button("Retry").clicked()
                } else {
                    ui.label(egui::RichText::new("sending…").small());
                    false
                }
            });
            if failed {
                retry = Some(p.local);
            }
        }
        if m.group_history.is_empty() && m.group_pending_here().next().is_none() {
            ui.label("No messages yet. Say hello to the group!");
        }
    });
    if near_top && m.group_history_more && !m.asked_more {
        m.asked_more = true;
        out.push(Command::MoreHistory);
    }
    attachments::apply(m, files, out);
    match chosen {
        Some(Chosen::Select(hash)) => {
            let p = &mut m.group_panel;
            p.selected_message = (p.selected_message != Some(hash)).then_some(hash);
        }
        Some(Chosen::Unsend(hash)) => {
            m.group_panel.busy = Some("Deleting the message for everyone…".into());
            out.push(Command::Group {
                group: group.clone(),
                action: GroupAction::Unsend(hash),
            });
        }
        None => {}
    }
    if let Some(local) = retry
        && let Some((local, group, text)) = m.retry_group_pending(local)
    {
        out.push(Command::SendGroup { local, group, text });
    }
}

/// The group's name, its state and size, its disappearing timer (admins change it), and the
/// member panel's toggle.
fn header(ui: &mut egui::Ui, m: &mut Model, group: &str, out: &mut Vec<Command>) {
    let summary = m.open_group_summary();
    let name = summary.map_or_else(|| "Group".to_string(), |g| g.view.name.clone());
    let members = summary.map_or(0, |g| g.view.members.len());
    let status = summary.map(|g| g.view.status);
    let setting = summary.map_or(Disappearing::Off, |g| g.view.disappearing);
    let admin = summary.is_some_and(|g| g.view.admin) && m.open_group_active();
    ui.horizontal(|ui| {
        let face = Avatar {
            key: group,
            name: &name,
            picture: None,
        };
        avatar::show(ui, 16.0, face);
        ui.heading(&name);
        ui.label(egui::RichText::new(sidebar::members_line(members)).weak());
        if ui.small_button("Copy group ID").clicked() {
            ui.ctx().copy_text(group.to_string());
        }
        if ui
            .selectable_label(m.group_panel.open, "Members")
            .on_hover_text("Who is in the group; admins add, remove and promote here")
            .clicked()
        {
            m.group_panel.open = !m.group_panel.open;
        }
        if admin
            && ui
                .selectable_label(m.group_panel.timer_open, "Disappearing messages")
                .on_hover_text("For everyone in the group, after each message is sent")
                .clicked()
        {
            m.group_panel.timer_open = !m.group_panel.timer_open;
        }
    });
    if let Some(s) = disappearing::summary(setting) {
        ui.label(egui::RichText::new(s).small());
    }
    if admin && m.group_panel.timer_open {
        // Groups have one timer for everyone, after send (as Session's groups).
        if let Some(next) = disappearing::choices(ui, setting, &mut m.group_panel.timer, false) {
            let seconds = match next {
                Disappearing::AfterSend { seconds } | Disappearing::AfterRead { seconds } => {
                    Some(seconds)
                }
                Disappearing::Off => None,
            };
            m.group_panel.busy = Some("Setting disappearing messages…".into());
            out.push(Command::Group {
                group: group.to_string(),
                action: GroupAction::SetDisappearing(seconds),
            });
        }
    }
    match status {
        Some(GroupStatus::Kicked) => {
            ui.label("You were removed from this group: you can read what you had, no more.");
        }
        Some(GroupStatus::Destroyed) => {
            ui.label("An admin deleted this group for everyone.");
        }
        _ => {}
    }
}

/// How one message is shown.
struct Shown {
    /// The sender's name (over the first of a run of theirs).
    name: Option<String>,
    /// Clicked: its "Delete for everyone" shows.
    selected: bool,
    /// Ours, or we are an admin, in a group we are still in.
    can_unsend: bool,
    now: u64,
}

/// What a click on a message asks for.
enum Chosen {
    Select(MessageHash),
    Unsend(MessageHash),
}

/// One group message: the sender's name over the first of a run of theirs, its files, the
/// text (a file's caption), the time, (ours) the delivery state and the time left when it
/// disappears. Clicking the text selects it: a selected message we may delete offers
/// "Delete for everyone".
fn bubble(
    ui: &mut egui::Ui,
    m: &Model,
    msg: &GroupChatMessage,
    shown: Shown,
    file_actions: &mut Vec<attachments::Action>,
) -> Option<Chosen> {
    let Shown {
        name,
        selected,
        can_unsend,
        now,
    } = shown;
    ui.add_space(2.0);
    bubble_frame(ui, msg.outgoing, |ui| {
        if !msg.outgoing
            && let Some(name) = name
        {
            let r = ui.label(egui::RichText::new(&name).strong().small());
            if m.names.contains_key(&msg.author) {
                r.on_hover_text(short_id(&msg.author));
            }
        }
        let files: Vec<_> = m.attachments.of_message(msg.author, msg.sent_ms).collect();
        attachments::rows(ui, &m.attachments, &files, file_actions);
        let text = (!msg.body.is_empty() || files.is_empty())
            .then(|| ui.add(egui::Label::new(&msg.body).sense(egui::Sense::click())));
        let mut chosen = None;
        if let Some(hash) = msg.hash
            && text.is_some_and(|t| t.clicked())
        {
            chosen = Some(Chosen::Select(hash));
        }
        let mut line = m.zone.clock(msg.sent_ms);
        let state = match msg.status {
            _ if !msg.outgoing => "",
            MessageStatus::Queued => "sending…",
            MessageStatus::Sent | MessageStatus::Received => "sent",
            MessageStatus::Failed => "failed",
        };
        if !state.is_empty() {
            line.push_str(" · ");
            line.push_str(state);
        }
        ui.label(egui::RichText::new(line).small());
        if let Some(at) = msg.expires_at_ms {
            let left = time::remaining(at.saturating_sub(now));
            ui.label(egui::RichText::new(format!("disappears in {left}")).small());
        }
        // A message still queued has no place in the swarm to delete yet.
        if selected
            && can_unsend
            && msg.status != MessageStatus::Queued
            && let Some(hash) = msg.hash
            && ui
                .small_button("Delete for everyone")
                .on_hover_text("Deletes it for every member and on your other devices")
                .clicked()
        {
            chosen = Some(Chosen::Unsend(hash));
        }
        chosen
    })
}

fn composer(ui: &mut egui::Ui, m: &mut Model, group: &str, now: u64, out: &mut Vec<Command>) {
    ui.add_space(6.0);
    if !m.open_group_active() {
        ui.label(egui::RichText::new("You can no longer write to this group.").weak());
        ui.add_space(6.0);
        return;
    }
    let mut send = false;
    ui.horizontal(|ui| {
        if ui
            .button("Attach")
            .on_hover_text("Send a file to the group (or drop one onto the window)")
            .clicked()
        {
            attachments::open_attach(m, String::new());
        }
        let send_width = 64.0;
        let draft = m.group_drafts.entry(group.to_string()).or_default();
        let l = ui.label("Message");
        let r = ui
            .add(
                egui::TextEdit::multiline(draft)
                    .id(egui::Id::unique(("group_composer", group)))
                    .hint_text("Write to the group (Enter sends, Shift+Enter: new line)")
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
        if ui.button("Send").clicked() {
            send = true;
        }
    });
    ui.add_space(6.0);
    if send && let Some((local, group, text)) = m.take_group_draft() {
        out.push(Command::SendGroup { local, group, text });
    }
}
