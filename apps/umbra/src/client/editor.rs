//! The input line of `umbra chat` in a terminal, as pure state: keys in, actions out, and when
//! to tell the other side that we are typing. No I/O here (see `chat.rs`), so all of it is
//! unit-tested.

use std::time::{Duration, Instant};

/// A key the chat cares about (terminal key events are mapped to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// A printable character.
    Char(char),
    /// Delete the character before the cursor.
    Backspace,
    /// Send the line.
    Enter,
    /// Clear the line (Ctrl-U).
    ClearLine,
    /// End of input (Ctrl-D): leaves on an empty line.
    Eof,
    /// Interrupt (Ctrl-C): leaves.
    Interrupt,
}

/// What the chat does after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing changed.
    Nothing,
    /// The line changed: draw it again.
    Redraw,
    /// Send this text (the line is now empty).
    Submit(String),
    /// Leave the chat.
    Quit,
}

/// The longest line accepted, in characters (the messenger's limit is checked on send; this
/// only keeps a runaway paste from growing without bound).
const MAX_LINE_CHARS: usize = 10_000;

/// The line being written.
#[derive(Debug, Default)]
pub(crate) struct Editor {
    line: String,
}

impl Editor {
    /// The line as it stands.
    pub(crate) fn line(&self) -> &str {
        &self.line
    }

    /// Applies one key.
    pub(crate) fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Char(c) if c.is_control() => Action::Nothing,
            Key::Char(_) if self.line.chars().count() >= MAX_LINE_CHARS => Action::Nothing,
            Key::Char(c) => {
                self.line.push(c);
                Action::Redraw
            }
            Key::Backspace => {
                if self.line.pop().is_some() {
                    Action::Redraw
                } else {
                    Action::Nothing
                }
            }
            Key::ClearLine if self.line.is_empty() => Action::Nothing,
            Key::ClearLine => {
                self.line.clear();
                Action::Redraw
            }
            Key::Enter => {
                let text = std::mem::take(&mut self.line);
                let trimmed = text.trim();
                if trimmed == "/quit" {
                    Action::Quit
                } else if trimmed.is_empty() {
                    if text.is_empty() {
                        Action::Nothing
                    } else {
                        Action::Redraw
                    }
                } else {
                    Action::Submit(text.trim_end().to_string())
                }
            }
            Key::Eof if self.line.is_empty() => Action::Quit,
            Key::Eof => Action::Nothing,
            Key::Interrupt => Action::Quit,
        }
    }
}

/// After this long without a key, we have stopped typing.
pub(crate) const TYPING_IDLE: Duration = Duration::from_secs(5);
/// While typing goes on, "started" is sent again this often (the other side forgets a typing
/// indicator that is not refreshed).
pub(crate) const TYPING_REFRESH: Duration = Duration::from_secs(10);

/// When to send typing indicators: `Some(true)` = send "started", `Some(false)` = "stopped".
#[derive(Debug, Default)]
pub(crate) struct Typing {
    /// When we last sent "started", while we are typing.
    announced: Option<Instant>,
    last_key: Option<Instant>,
}

impl Typing {
    /// The line changed at `now`; `empty`: it is now empty.
    pub(crate) fn edited(&mut self, now: Instant, empty: bool) -> Option<bool> {
        if empty {
            return self.stop();
        }
        self.last_key = Some(now);
        match self.announced {
            Some(at) if now.duration_since(at) < TYPING_REFRESH => None,
            _ => {
                self.announced = Some(now);
                Some(true)
            }
        }
    }

    /// The line was sent: the message itself tells the other side we stopped.
    pub(crate) fn sent(&mut self) {
        self.announced = None;
        self.last_key = None;
    }

    /// Time passed: stopped after [`TYPING_IDLE`] without a key.
    pub(crate) fn tick(&mut self, now: Instant) -> Option<bool> {
        match self.last_key {
            Some(k) if self.announced.is_some() && now.duration_since(k) >= TYPING_IDLE => {
                self.stop()
            }
            _ => None,
        }
    }

    fn stop(&mut self) -> Option<bool> {
        self.last_key = None;
        self.announced.take().map(|_| false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use umbra_clock::{Clock as _, SystemClock};

    fn typed(e: &mut Editor, s: &str) {
        for c in s.chars() {
            assert_eq!(e.key(Key::Char(c)), Action::Redraw);
        }
    }

    #[test]
    fn a_line_is_written_edited_and_sent() {
        let mut e = Editor::default();
        assert_eq!(
            e.key(Key::Enter),
            Action::Nothing,
            "an empty line sends nothing"
        );
        typed(&mut e, "helo");
        assert_eq!(e.key(Key::Backspace), Action::Redraw);
        assert_eq!(e.key(Key::Backspace), Action::Redraw);
        typed(&mut e, "llo wörld  ");
        assert_eq!(e.line(), "hello wörld  ");
        assert_eq!(
            e.key(Key::Char('\u{7}')),
            Action::Nothing,
            "no control characters"
        );
        assert_eq!(
            e.key(Key::Enter),
            Action::Submit("hello wörld".into()),
            "trailing spaces trimmed"
        );
        assert_eq!(e.line(), "");
        assert_eq!(e.key(Key::Backspace), Action::Nothing);
        typed(&mut e, "   ");
        assert_eq!(
            e.key(Key::Enter),
            Action::Redraw,
            "blank: cleared, not sent"
        );
        typed(&mut e, "oops");
        assert_eq!(e.key(Key::ClearLine), Action::Redraw);
        assert_eq!(e.line(), "");
    }

    #[test]
    fn quit_by_command_ctrl_d_on_an_empty_line_or_ctrl_c() {
        let mut e = Editor::default();
        typed(&mut e, " /quit ");
        assert_eq!(e.key(Key::Enter), Action::Quit);
        typed(&mut e, "draft");
        assert_eq!(e.key(Key::Eof), Action::Nothing, "Ctrl-D keeps a draft");
        assert_eq!(e.key(Key::Interrupt), Action::Quit);
        let mut e = Editor::default();
        assert_eq!(e.key(Key::Eof), Action::Quit);
    }

    #[test]
    fn a_runaway_paste_is_bounded() {
        let mut e = Editor::default();
        for _ in 0..MAX_LINE_CHARS + 10 {
            e.key(Key::Char('x'));
        }
        assert_eq!(e.line().chars().count(), MAX_LINE_CHARS);
    }

    #[test]
    fn typing_is_announced_once_refreshed_and_stopped_when_idle_or_cleared() {
        let t0 = SystemClock.instant();
        let s = Duration::from_secs;
        let mut t = Typing::default();
        assert_eq!(t.tick(t0), None, "nothing to stop");
        assert_eq!(t.edited(t0, false), Some(true), "first key: started");
        assert_eq!(t.edited(t0 + s(1), false), None, "already announced");
        assert_eq!(t.tick(t0 + s(5)), None, "4 s idle: still typing");
        assert_eq!(
            t.edited(t0 + s(11), false),
            Some(true),
            "refreshed after 10 s"
        );
        assert_eq!(t.tick(t0 + s(16)), Some(false), "5 s idle: stopped");
        assert_eq!(t.tick(t0 + s(30)), None, "stopped once");

        assert_eq!(t.edited(t0 + s(40), false), Some(true));
        assert_eq!(
            t.edited(t0 + s(41), true),
            Some(false),
            "line cleared: stopped"
        );
        assert_eq!(t.edited(t0 + s(42), true), None);

        assert_eq!(t.edited(t0 + s(50), false), Some(true));
        t.sent();
        assert_eq!(t.tick(t0 + s(60)), None, "a sent message needs no stop");
        assert_eq!(
            t.edited(t0 + s(61), false),
            Some(true),
            "a new line starts again"
        );
    }
}
