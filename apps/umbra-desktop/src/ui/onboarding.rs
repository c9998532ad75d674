//! First start: create an account (a name, an optional passphrase, then the recovery phrase
//! with two of its words typed back) or restore one from its recovery phrase.

use eframe::egui;
use zeroize::Zeroizing;

use super::widgets;
use crate::backend::Command;
use crate::model::{Model, NetworkSwitch, Onboarding, Screen, SwitchTo};

pub(super) fn show(ui: &mut egui::Ui, m: &mut Model, out: &mut Vec<Command>) {
    if m.onboarding.phrase.is_some() {
        return confirm_phrase(ui, m);
    }
    let o = &mut m.onboarding;
    let switch = &mut m.switch;
    widgets::centered(ui, |ui| {
        ui.heading("Welcome to Umbra");
        ui.label("Private messages, carried through onion paths.");
        ui.add_space(12.0);
        ui.horizontal(|ui| {
            ui.selectable_value(&mut o.restoring, false, "I am new here");
            ui.selectable_value(&mut o.restoring, true, "I have a recovery phrase");
        });
        ui.separator();
        if o.restoring {
            let l = ui.label("Recovery phrase");
            ui.add(
                egui::TextEdit::multiline(&mut *o.phrase_input)
                    .hint_text("the 12 words, separated by spaces")
                    .desired_rows(3)
                    .desired_width(f32::INFINITY),
            )
            .labelled_by(l.id);
        }
        widgets::field(ui, "Display name", &mut o.name, "how others see you");
        ui.add_space(6.0);
        ui.label(
            egui::RichText::new(
                "A passphrase locks this profile on this computer (optional; it cannot be recovered).",
            )
            .small(),
        );
        widgets::secret(ui, "Passphrase (optional)", &mut o.passphrase);
        if !o.passphrase.is_empty() {
            widgets::secret(ui, "Passphrase again", &mut o.passphrase_again);
        }
        let problem = o.passphrase_problem();
        widgets::error_line(ui, problem.or(o.error.as_deref()));
        ui.add_space(10.0);
        if o.busy {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(if o.restoring {
                    "Restoring…"
                } else {
                    "Creating your account…"
                });
            });
            return;
        }
        let words = o.phrase_input.split_whitespace().count();
        let ready = problem.is_none() && !o.name.trim().is_empty() && (!o.restoring || words == 12);
        let label = if o.restoring {
            "Restore account"
        } else {
            "Create account"
        };
        if o.restoring && words != 12 && words > 0 {
            ui.label(format!("A recovery phrase has 12 words; this has {words}."));
        }
        if ui.add_enabled(ready, egui::Button::new(label)).clicked() {
            out.push(start(o));
        }
        after_switch(ui, switch);
    });
}

/// After switching to a network this profile has no account on: which network, and the way
/// back.
fn after_switch(ui: &mut egui::Ui, switch: &mut NetworkSwitch) {
    let (Some(current), Some(previous)) = (&switch.current, &switch.previous) else {
        return;
    };
    ui.add_space(16.0);
    ui.separator();
    ui.label(format!(
        "No account on the network of {} yet: create or restore one for it.",
        current.display()
    ));
    if switch.to.is_none() && ui.button("Back to the previous network").clicked() {
        switch.to = Some(SwitchTo {
            file: previous.clone(),
            separate: false,
        });
    }
    widgets::error_line(ui, switch.error.as_deref());
}

/// The command that creates or restores the account; the form keeps nothing secret after.
fn start(o: &mut Onboarding) -> Command {
    o.busy = true;
    o.error = None;
    let passphrase = (!o.passphrase.is_empty()).then(|| std::mem::take(&mut o.passphrase));
    o.passphrase_again = Zeroizing::default();
    let name = o.name.trim().to_string();
    if o.restoring {
        Command::Restore {
            phrase: std::mem::take(&mut o.phrase_input),
            name,
            passphrase,
        }
    } else {
        Command::Create { name, passphrase }
    }
}

/// The new account's recovery phrase, until two of its words are typed back.
fn confirm_phrase(ui: &mut egui::Ui, m: &mut Model) {
    let mut done = false;
    let o = &mut m.onboarding;
    widgets::centered(ui, |ui| {
        ui.heading("Your recovery phrase");
        ui.label(
            "These 12 words are your account. Write them down and keep them safe: anyone \
             with them can read your messages, and without them a lost computer is a lost account.",
        );
        ui.add_space(8.0);
        if let Some(phrase) = &o.phrase {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                egui::Grid::new("phrase")
                    .num_columns(3)
                    .spacing([24.0, 6.0])
                    .show(ui, |ui| {
                        for (i, w) in phrase.split_whitespace().enumerate() {
                            ui.label(egui::RichText::new(format!("{:>2}. {w}", i + 1)).monospace());
                            if i % 3 == 2 {
                                ui.end_row();
                            }
                        }
                    });
            });
        }
        ui.add_space(8.0);
        ui.label("To be sure you have them, type two of the words:");
        let [a, b] = o.ask;
        let [first, second] = &mut o.answers;
        widgets::field(ui, &format!("Word {}", a + 1), first, "");
        widgets::field(ui, &format!("Word {}", b + 1), second, "");
        let typed = !first.trim().is_empty() && !second.trim().is_empty();
        let ok = o.confirmed();
        if typed && !ok {
            widgets::error_line(ui, Some("Those words do not match the phrase."));
        }
        ui.add_space(8.0);
        if ui
            .add_enabled(ok, egui::Button::new("I wrote it down"))
            .clicked()
        {
            done = true;
        }
    });
    if done {
        m.onboarding = Onboarding::default();
        m.screen = if m.me.is_some() {
            Screen::Main
        } else {
            Screen::Loading
        };
    }
}
