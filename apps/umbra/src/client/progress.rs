//! Transfer progress for people and programs: a one-line bar on standard error when it is a
//! terminal, JSON lines (`{"event": "progress", "phase", "done", "total"}`) on standard error
//! with `--json`, nothing otherwise (a log file should not fill with carriage returns).

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;
use umbra_messenger::{Progress, ProgressFn, TransferPhase};

/// Width of the bar in characters.
const BAR: u64 = 30;

/// How progress is shown.
pub(crate) struct Reporter {
    json: bool,
    terminal: bool,
    /// The last phase and percentage shown (to redraw only on change).
    last: Mutex<Option<(TransferPhase, u64)>>,
}

impl Reporter {
    /// A reporter for this run (`json`: the command's `--json`).
    pub(crate) fn new(json: bool) -> Arc<Reporter> {
        Arc::new(Reporter {
            json,
            terminal: std::io::stderr().is_terminal(),
            last: Mutex::new(None),
        })
    }

    /// The callback to hand to the messenger.
    pub(crate) fn callback(self: &Arc<Self>) -> ProgressFn {
        let me = self.clone();
        Arc::new(move |p| me.show(p))
    }

    fn show(&self, p: Progress) {
        let percent = (p.done.saturating_mul(100))
            .checked_div(p.total)
            .unwrap_or(100)
            .min(100);
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let changed_phase = last.is_none_or(|(phase, _)| phase != p.phase);
        if last.is_some_and(|l| l == (p.phase, percent)) {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.json {
            let _ = writeln!(
                err,
                "{}",
                json!({"event": "progress", "phase": p.phase.as_str(), "done": p.done, "total": p.total})
            );
        } else if self.terminal {
            if changed_phase && last.is_some() {
                let _ = writeln!(err);
            }
            let filled = BAR * percent / 100;
            let _ = write!(
                err,
                "\r{:<11} [{}{}] {percent:>3}%  {} / {}",
                p.phase.as_str(),
                "#".repeat(usize::try_from(filled).unwrap_or(0)),
                " ".repeat(usize::try_from(BAR - filled).unwrap_or(0)),
                human(p.done),
                human(p.total)
            );
            let _ = err.flush();
        }
        *last = Some((p.phase, percent));
    }

    /// Ends the bar's line (call once the transfer is over, whatever its outcome).
    pub(crate) fn finish(&self) {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if self.terminal && !self.json && last.is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// `1.5 MB`, `320 kB`, `12 B` (the messenger's, so that the desktop app says the same).
pub(crate) use umbra_messenger::human_size as human;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1_500_000), "1.5 MB");
        assert_eq!(human(320_000), "320.0 kB");
        assert_eq!(human(1 << 30), "1.1 GB");
    }
}
