//! Settings: changing, setting or removing the profile's passphrase. The current one is
//! asked first; a wrong one is one line, and nothing changes.

use eframe::egui;

use super::widgets;
use crate::backend::Command;
use crate::model::{Model, passphrase_problem};

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, out: &mut Vec<Command>) {
    ui.label(egui::RichText::new("Profile passphrase").strong());
    ui.label(if m.has_passphrase {
        "Umbra asks for it when it starts. Leave the new one empty to remove it."
    } else {
        "No passphrase: anyone with this computer's account can open the profile."
    });
    let p = &mut m.passphrase_change;
    if m.has_passphrase {
        widgets::secret(ui, "Current passphrase", &mut p.current);
    }
    widgets::secret(ui, "New passphrase", &mut p.new);
    widgets::secret(ui, "New passphrase again", &mut p.again);
    let problem = passphrase_problem(&p.new, &p.again);
    let removing = p.new.is_empty();
    let ready = problem.is_none()
        && !p.busy
        && (m.has_passphrase || !removing)
        && (!m.has_passphrase || !p.current.is_empty());
    if let Some(why) = problem.filter(|_| !p.again.is_empty() || p.new.chars().count() >= 8) {
        widgets::error_line(ui, Some(why));
    }
    ui.horizontal(|ui| {
        let label = if removing && m.has_passphrase {
            "Remove passphrase"
        } else {
            "Change passphrase"
        };
        if ui.add_enabled(ready, egui::Button::new(label)).clicked() {
            p.busy = true;
            p.result = None;
            let current = m.has_passphrase.then(|| std::mem::take(&mut p.current));
            let new = (!removing).then(|| std::mem::take(&mut p.new));
            p.again = Default::default();
            out.push(Command::ChangePassphrase { current, new });
        }
        if p.busy {
            ui.spinner();
            ui.label("Re-encrypting…");
        }
    });
    match &p.result {
        Some(Ok(done)) => {
            ui.label(done.as_str());
        }
        Some(Err(why)) => widgets::error_line(ui, Some(why)),
        None => {}
    }
}
