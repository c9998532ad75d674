//! A conversation's disappearing messages, in the chat header: off, after send or after
//! read, with a timer. The messenger tells the other side; the back end deletes what
//! expired.

use eframe::egui;
use umbra_crypto::SessionId;

use crate::backend::Command;
use crate::client::Disappearing;
use crate::time;

/// The timers offered, seconds (Session's choices, within the messenger's 10 s – 14 days).
pub(super) const TIMERS: [u32; 7] = [10, 30, 300, 3_600, 43_200, 86_400, 604_800];

/// The timer a new setting starts with.
const DEFAULT_TIMER: u32 = 86_400;

/// The header's one-line summary, or `None` when messages stay.
pub(super) fn summary(setting: Disappearing) -> Option<String> {
    match setting {
        Disappearing::Off => None,
        Disappearing::AfterSend { seconds } => {
            Some(format!("Disappearing: {} after send", time::timer(seconds)))
        }
        Disappearing::AfterRead { seconds } => {
            Some(format!("Disappearing: {} after read", time::timer(seconds)))
        }
    }
}

/// The choices of a conversation, whose setting is `current`; `timer` is the timer picked
/// while the setting is off. Pushes the command of a change.
pub(super) fn choose(
    ui: &mut egui::Ui,
    with: SessionId,
    current: Disappearing,
    timer: &mut u32,
    out: &mut Vec<Command>,
) {
    if let Some(setting) = choices(ui, current, timer, true) {
        out.push(Command::SetDisappearing { with, setting });
    }
}

/// The choices (after read only when `after_read`), whose setting is `current`; `timer` is
/// the timer picked while the setting is off. The new setting when it changed.
pub(super) fn choices(
    ui: &mut egui::Ui,
    current: Disappearing,
    timer: &mut u32,
    after_read: bool,
) -> Option<Disappearing> {
    let seconds = match current {
        // Never picked yet (the model's default is 0).
        Disappearing::Off if *timer == 0 => DEFAULT_TIMER,
        Disappearing::Off => *timer,
        Disappearing::AfterSend { seconds } | Disappearing::AfterRead { seconds } => seconds,
    };
    let mut next = current;
    ui.horizontal_wrapped(|ui| {
        ui.label("Messages:");
        ui.radio_value(&mut next, Disappearing::Off, "Off");
        ui.radio_value(
            &mut next,
            Disappearing::AfterSend { seconds },
            "Delete after send",
        );
        if after_read {
            ui.radio_value(
                &mut next,
                Disappearing::AfterRead { seconds },
                "Delete after read",
            );
        }
    });
    let mut picked = seconds;
    ui.horizontal_wrapped(|ui| {
        ui.label("Timer:");
        for t in TIMERS {
            ui.radio_value(&mut picked, t, time::timer(t));
        }
    });
    if picked != seconds {
        *timer = picked;
        next = match next {
            Disappearing::Off => Disappearing::Off,
            Disappearing::AfterSend { .. } => Disappearing::AfterSend { seconds: picked },
            Disappearing::AfterRead { .. } => Disappearing::AfterRead { seconds: picked },
        };
    }
    (next != current).then_some(next)
}

/// The line under a message whose timer runs: time left, or when it starts.
pub(super) fn footer(
    setting: Disappearing,
    expires_at_ms: Option<u64>,
    now: u64,
) -> Option<String> {
    match (setting, expires_at_ms) {
        (Disappearing::Off, None) => None,
        (_, Some(at)) => Some(format!(
            "disappears in {}",
            time::remaining(at.saturating_sub(now))
        )),
        (Disappearing::AfterRead { seconds }, None) => Some(format!(
            "disappears {} after it is read",
            time::timer(seconds)
        )),
        (Disappearing::AfterSend { seconds }, None) => {
            Some(format!("disappears {} after send", time::timer(seconds)))
        }
    }
}
