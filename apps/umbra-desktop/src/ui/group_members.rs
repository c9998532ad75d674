//! The member panel of the open group: who is in it (admins badged, pending invitations
//! and promotions marked). Clicking a member shows what an admin can do to them (remove,
//! make admin); admins add members and delete the group for everyone; everyone can leave.
//! Each action goes to the back end; the panel says what is being done meanwhile and why
//! it failed, in one line.

use eframe::egui;
use umbra_crypto::SessionId;

use super::widgets;
use crate::backend::{Command, GroupAction};
use crate::client::{GroupMemberView, GroupStatus};
use crate::model::{Confirm, Model, check_session_id, short_id};

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, group: &str, out: &mut Vec<Command>) {
    let Some(summary) = m.open_group_summary() else {
        return;
    };
    let admin = summary.view.admin;
    let active = summary.view.status == GroupStatus::Joined;
    let mut members = summary.view.members.clone();
    // Admins first, then by name.
    members.sort_by_key(|p| (!p.admin, m.name_of(&p.session_id).to_lowercase()));
    ui.add_space(6.0);
    ui.heading("Group members");
    if members.is_empty() {
        ui.label(egui::RichText::new("Not known yet: they arrive with the group's keys.").weak());
    }
    let mut act = None;
    egui::ScrollArea::vertical()
        .max_height(ui.available_height() * 0.55)
        .auto_shrink([false, true])
        .show(ui, |ui| {
            for p in &members {
                member_row(ui, m, p);
                if m.group_panel.selected == Some(p.session_id)
                    && admin
                    && active
                    && Some(p.session_id) != m.me
                    && act.is_none()
                {
                    act = member_actions(ui, m, p);
                }
            }
        });
    ui.separator();
    if let Some(busy) = &m.group_panel.busy {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(busy);
        });
    }
    widgets::error_line(ui, m.group_panel.error.as_deref());
    if admin && active {
        act = act.or(add_members(ui, m));
    }
    if active {
        act = act.or(leave_or_delete(ui, m, admin));
    }
    // Esc takes back a question first, then closes the panel.
    if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
        if m.group_panel.confirm.is_some() {
            m.group_panel.confirm = None;
        } else {
            m.group_panel.open = false;
        }
    }
    if let Some((action, busy)) = act {
        let p = &mut m.group_panel;
        p.busy = Some(busy);
        p.error = None;
        p.confirm = None;
        out.push(Command::Group {
            group: group.to_string(),
            action,
        });
    }
}

/// A member: name, badges; clicking selects it.
fn member_row(ui: &mut egui::Ui, m: &mut Model, p: &GroupMemberView) {
    let mut tags = Vec::new();
    if p.admin {
        tags.push("admin");
    }
    if p.invited {
        tags.push("invited");
    }
    if p.promoting {
        tags.push("becoming admin");
    }
    let name = m.name_of(&p.session_id);
    ui.horizontal(|ui| {
        let selected = m.group_panel.selected == Some(p.session_id);
        let mut r = ui.selectable_label(selected, &name);
        if m.names.contains_key(&p.session_id) {
            r = r.on_hover_text(short_id(&p.session_id));
        }
        if r.clicked() {
            m.group_panel.selected = (!selected).then_some(p.session_id);
        }
        for t in tags {
            badge(ui, t);
        }
    });
}

/// A small rounded tag ("admin").
fn badge(ui: &mut egui::Ui, text: &str) {
    egui::Frame::new()
        .fill(ui.visuals().selection.bg_fill)
        .corner_radius(6.0)
        .inner_margin(egui::Margin::symmetric(5, 1))
        .show(ui, |ui| {
            ui.label(
                egui::RichText::new(text)
                    .small()
                    .color(ui.visuals().selection.stroke.color),
            );
        });
}

/// What an admin can do to the selected member.
fn member_actions(
    ui: &mut egui::Ui,
    m: &Model,
    p: &GroupMemberView,
) -> Option<(GroupAction, String)> {
    let name = m.name_of(&p.session_id);
    let idle = m.group_panel.busy.is_none();
    let mut act = None;
    ui.horizontal(|ui| {
        ui.add_space(12.0);
        // Admins hold the group's key pair: removing one would not lock them out (Session
        // does not offer it either).
        if !p.admin
            && !p.promoting
            && ui
                .add_enabled(idle, egui::Button::new("Remove from group"))
                .on_hover_text("They can read nothing sent afterwards")
                .clicked()
        {
            act = Some((
                GroupAction::Remove(p.session_id),
                format!("Removing {name}…"),
            ));
        }
        if !p.admin
            && !p.promoting
            && ui
                .add_enabled(idle, egui::Button::new("Make admin"))
                .on_hover_text("Admins add, remove and promote members")
                .clicked()
        {
            act = Some((
                GroupAction::Promote(p.session_id),
                format!("Making {name} an admin…"),
            ));
        }
    });
    act
}

/// The admin's "add member" field, checked as it is typed.
fn add_members(ui: &mut egui::Ui, m: &mut Model) -> Option<(GroupAction, String)> {
    let in_group: Vec<SessionId> = m
        .open_group_summary()
        .map(|g| g.view.members.iter().map(|p| p.session_id).collect())
        .unwrap_or_default();
    let r = widgets::field(ui, "Add member", &mut m.group_panel.add, "Session ID (05…)");
    let checked = check_session_id(&m.group_panel.add, m.me).and_then(|id| {
        if in_group.contains(&id) {
            Err("Already in the group.".to_string())
        } else {
            Ok(id)
        }
    });
    match &checked {
        Err(why) if !m.group_panel.add.trim().is_empty() => widgets::error_line(ui, Some(why)),
        _ => {}
    }
    let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    let idle = m.group_panel.busy.is_none();
    let clicked = ui
        .add_enabled(
            checked.is_ok() && idle,
            egui::Button::new("Invite to group"),
        )
        .clicked();
    match checked {
        Ok(id) if idle && (clicked || enter) => Some((
            GroupAction::Add(vec![id]),
            format!("Inviting {}…", m.name_of(&id)),
        )),
        _ => None,
    }
}

/// "Leave group" for everyone, "Delete group for everyone" for admins: each asks first.
fn leave_or_delete(ui: &mut egui::Ui, m: &mut Model, admin: bool) -> Option<(GroupAction, String)> {
    ui.add_space(8.0);
    let idle = m.group_panel.busy.is_none();
    let mut act = None;
    match m.group_panel.confirm {
        None => {
            ui.horizontal_wrapped(|ui| {
                if ui
                    .add_enabled(idle, egui::Button::new("Leave group"))
                    .clicked()
                {
                    m.group_panel.confirm = Some(Confirm::Leave);
                }
                if admin
                    && ui
                        .add_enabled(idle, egui::Button::new("Delete group for everyone"))
                        .clicked()
                {
                    m.group_panel.confirm = Some(Confirm::Delete);
                }
            });
        }
        Some(c) => {
            let (question, yes, action, busy) = match c {
                Confirm::Leave => (
                    "Leave this group? Its messages are deleted from this device.",
                    "Yes, leave",
                    GroupAction::Leave,
                    "Leaving the group…",
                ),
                Confirm::Delete => (
                    "Delete this group for every member? This cannot be undone.",
                    "Yes, delete for everyone",
                    GroupAction::Delete,
                    "Deleting the group…",
                ),
            };
            ui.label(question);
            ui.horizontal(|ui| {
                if ui.add_enabled(idle, egui::Button::new(yes)).clicked() {
                    act = Some((action, busy.to_string()));
                }
                if ui.button("Cancel").clicked() {
                    m.group_panel.confirm = None;
                }
            });
        }
    }
    act
}
