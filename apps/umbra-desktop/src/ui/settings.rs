//! Settings: display name, profile picture (`profile_picture`), read receipts, typing indicators, theme, notifications, blocked
//! accounts, where the data lives, and which network (switching to another).

use eframe::egui;

use super::widgets;
use crate::NotifyLevel;
use crate::backend::Command;
use crate::model::{Model, SwitchTo, Theme, short_id};

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, out: &mut Vec<Command>) {
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| sections(ui, m, out));
}

fn sections(ui: &mut egui::Ui, m: &mut Model, out: &mut Vec<Command>) {
    ui.heading("Settings");
    ui.add_space(6.0);
    let r = widgets::field(ui, "Display name", &mut m.name_edit, "how others see you");
    let changed = m.name_edit.trim() != m.display_name;
    let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    if ui
        .add_enabled(changed, egui::Button::new("Save display name"))
        .clicked()
        || (changed && enter)
    {
        m.display_name = m.name_edit.trim().to_string();
        out.push(Command::SetDisplayName(m.display_name.clone()));
    }
    ui.add_space(10.0);
    super::profile_picture::show(ui, m, out);
    ui.add_space(10.0);
    ui.label(egui::RichText::new("Privacy").strong());
    let mut s = m.settings;
    ui.checkbox(&mut s.read_receipts, "Send read receipts");
    ui.checkbox(&mut s.typing_indicators, "Send typing indicators");
    if s != m.settings {
        m.settings = s;
        out.push(Command::SetSettings(s));
    }
    ui.add_space(10.0);
    ui.label(egui::RichText::new("Theme").strong());
    let before = m.theme;
    ui.horizontal(|ui| {
        ui.radio_value(&mut m.theme, Theme::System, "System");
        ui.radio_value(&mut m.theme, Theme::Light, "Light");
        ui.radio_value(&mut m.theme, Theme::Dark, "Dark");
    });
    if m.theme != before {
        out.push(Command::SaveAppValue {
            key: crate::persist::THEME_KEY,
            value: crate::persist::encode_theme(m.theme),
        });
    }
    ui.add_space(10.0);
    ui.label(egui::RichText::new("Notifications").strong());
    let before = m.notify;
    ui.horizontal_wrapped(|ui| {
        ui.radio_value(&mut m.notify, NotifyLevel::Off, "Off");
        ui.radio_value(&mut m.notify, NotifyLevel::SenderOnly, "Sender only");
        ui.radio_value(&mut m.notify, NotifyLevel::SenderAndText, "Sender and text");
    });
    if m.notify != before {
        out.push(Command::SaveAppValue {
            key: crate::persist::NOTIFY_KEY,
            value: m.notify.encode(),
        });
    }
    ui.add_space(10.0);
    blocked(ui, m, out);
    ui.add_space(10.0);
    super::passphrase::show(ui, m, out);
    ui.add_space(10.0);
    ui.label(egui::RichText::new("Your data").strong());
    ui.label(format!("Profile: {}", m.profile_dir.display()));
    ui.add_space(10.0);
    network(ui, m);
}

/// Which network, and the choice of another (each network's data in a profile of its own).
fn network(ui: &mut egui::Ui, m: &mut Model) {
    ui.label(egui::RichText::new("Network").strong());
    ui.label(format!(
        "Network file: {}",
        m.network.network.as_deref().unwrap_or("none (offline)")
    ));
    widgets::error_line(ui, m.network.problem.as_deref());
    if m.base_profile.is_none() {
        ui.label(
            egui::RichText::new(
                "A profile belongs to the network it was first used on, so networks never mix. \
                 For another network, start Umbra with --network FILE.",
            )
            .small()
            .weak(),
        );
        return;
    }
    let switching = m.switch.to.is_some();
    if m.network.other_network
        && let Some(file) = m.network.network.clone()
    {
        ui.label(
            "This profile holds another network's data. Umbra can keep this network's data \
             in a profile of its own.",
        );
        if ui
            .add_enabled(
                !switching,
                egui::Button::new("Use a separate profile for this network"),
            )
            .clicked()
        {
            m.switch.to = Some(SwitchTo {
                file: file.into(),
                separate: true,
            });
        }
    }
    let r = widgets::field(
        ui,
        "Network file to use",
        &mut m.switch.file,
        "path of a network.json",
    );
    let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    let file = m.switch.file.trim();
    if (ui
        .add_enabled(
            !switching && !file.is_empty(),
            egui::Button::new("Switch network"),
        )
        .clicked()
        || (enter && !file.is_empty()))
        && !switching
    {
        m.switch.to = Some(SwitchTo {
            file: file.into(),
            separate: false,
        });
    }
    if switching {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Switching network…");
        });
    }
    widgets::error_line(ui, m.switch.error.as_deref());
    ui.label(
        egui::RichText::new(
            "Each network keeps its own profile (account, contacts, messages), so networks \
             never mix: the first network uses this profile, others get one inside it. Umbra \
             starts on the network used last.",
        )
        .small()
        .weak(),
    );
}

/// Blocked accounts, each with "Unblock" (its conversation comes back as an accepted one).
fn blocked(ui: &mut egui::Ui, m: &Model, out: &mut Vec<Command>) {
    ui.label(egui::RichText::new("Blocked").strong());
    if m.blocked.is_empty() {
        ui.label(egui::RichText::new("Nobody is blocked.").weak());
    }
    for c in &m.blocked {
        ui.horizontal(|ui| {
            let name = c
                .nickname
                .clone()
                .or_else(|| c.display_name.clone())
                .unwrap_or_else(|| short_id(&c.session_id));
            ui.label(name);
            ui.label(
                egui::RichText::new(short_id(&c.session_id))
                    .monospace()
                    .weak(),
            );
            if ui.small_button("Unblock").clicked() {
                out.push(Command::Unblock(c.session_id));
            }
        });
    }
}
