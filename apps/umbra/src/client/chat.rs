//! `umbra chat CONTACT`: a conversation in the terminal.
//!
//! Two tasks share the messenger: one waits for news from the swarm (long-poll) and prints
//! what arrives (messages of this conversation, typing, read receipts, a one-line notice for
//! other conversations), the other reads what the user writes and sends it.
//!
//! - In a terminal, the input line is edited in raw mode ([`super::editor`]): incoming lines
//!   are printed above it without disturbing it, and the other side is told while we type
//!   (typing indicators, if the setting allows). Enter sends, `/quit`, Ctrl-C or Ctrl-D on an
//!   empty line leaves.
//! - Otherwise (standard input or output not a terminal, or `--json`), lines are read from
//!   standard input one at a time and each is sent; `/quit` or end of input leaves. With
//!   `--json` every event is one JSON object per line.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};
use umbra_report::ErrorExt as _;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::mpsc;
use umbra_crypto::SessionId;
use umbra_messenger::{Event, MessageStatus, Messenger};

use super::WhoArgs;
use super::context::{self, Reach, resolve};
use super::editor::{Action, Editor, Key, Typing};
use super::render::{self, message_json, print_json};

/// The longest single wait for news (a poll returns earlier when anything arrives).
const WAIT: Duration = Duration::from_secs(10);
/// Pause after a failed poll.
const RETRY_AFTER: Duration = Duration::from_secs(3);
/// Messages of the history shown when the chat opens.
const BACKLOG: usize = 20;

/// Runs the interactive chat until `/quit` or end of input.
pub(crate) async fn run(a: &WhoArgs) -> anyhow::Result<()> {
    let online = context::online(&a.g)?;
    let m = online.messenger.clone();
    let with = resolve(&m, &a.who)?;
    if with == m.session_id() {
        bail!("chat: that is your own Session ID (use `umbra send` for a note to self)");
    }
    if m.contact(&with)?.is_some_and(|c| c.blocked) {
        bail!("chat: the contact is blocked (`umbra unblock` first)");
    }
    let json = a.g.json;
    let terminal = !json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let out = if terminal {
        Out::Terminal(Arc::new(Mutex::new(Editor::default())))
    } else {
        Out::Lines { json }
    };
    let name = render::name_of(&m, &with);
    if let Reach::Unreachable(why) = online.connect().await? {
        out.say(&format!(
            "the network cannot be reached now ({why}); messages will be queued"
        ));
    }
    if !json {
        let hint = if terminal {
            "Type a message and press Enter; /quit or Ctrl-C to leave."
        } else {
            "Type a message and press Enter; /quit to leave."
        };
        println!("Chat with {name} ({with}). {hint}");
        let history = m.history(&with)?;
        for msg in history.iter().skip(history.len().saturating_sub(BACKLOG)) {
            println!("{}", render::message_line(&m, msg));
        }
    }
    if m.contact(&with)?.is_some_and(|c| c.approved) {
        m.mark_read(&with).await?;
    }

    let poller = tokio::spawn(poll(m.clone(), with, out.clone()));
    let result = match &out {
        Out::Terminal(editor) => write_in_terminal(&m, &with, &out, editor).await,
        Out::Lines { .. } => write_lines(&m, &with, &out).await,
    };
    poller.abort();
    result
}

/// Where the chat prints: plain lines (or JSON objects), or above the input line of a
/// terminal in raw mode.
#[derive(Clone)]
enum Out {
    Lines { json: bool },
    Terminal(Arc<Mutex<Editor>>),
}

/// The prompt in front of the input line.
const PROMPT: &str = "> ";

impl Out {
    fn json(&self) -> bool {
        matches!(self, Out::Lines { json: true })
    }

    /// Prints a line of the conversation.
    fn line(&self, text: &str) {
        match self {
            Out::Lines { .. } => println!("{text}"),
            Out::Terminal(editor) => {
                let editor = editor.lock().unwrap_or_else(PoisonError::into_inner);
                let mut o = std::io::stdout().lock();
                // Clear the input line, print the text, draw the input line again.
                let _ = write!(
                    o,
                    "\r\x1b[2K{}\r\n{PROMPT}{}",
                    text.replace('\n', "\r\n"),
                    editor.line()
                );
                let _ = o.flush();
            }
        }
    }

    /// A notice: a line of text, or `{"notice": …}`.
    fn say(&self, line: &str) {
        if self.json() {
            print_json(&json!({ "notice": line }));
        } else {
            self.line(&format!("-- {line}"));
        }
    }

    /// An event as a JSON object (with `--json`) or as a line.
    fn event(&self, v: &Value, line: impl FnOnce() -> Option<String>) {
        if self.json() {
            print_json(v);
        } else if let Some(l) = line() {
            self.line(&l);
        }
    }
}

/// Reads lines from standard input and sends each one.
async fn write_lines(m: &Arc<Messenger>, with: &SessionId, out: &Out) -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(()),
            Err(e) => return Err(anyhow::Error::new(e).context("reading standard input")),
        };
        let text = line.trim_end();
        if text.trim() == "/quit" {
            return Ok(());
        }
        if text.trim().is_empty() {
            continue;
        }
        send(m, with, out, text).await;
    }
}

async fn send(m: &Messenger, with: &SessionId, out: &Out, text: &str) {
    match m.send_text(with, text).await {
        Ok(msg) if out.json() => print_json(&message_json(&msg, false)),
        Ok(msg) if msg.status == MessageStatus::Queued => {
            out.line("  (queued: it will be sent when the network answers)");
        }
        Ok(msg) if matches!(out, Out::Terminal(_)) => {
            out.line(&render::message_line(m, &msg));
        }
        Ok(_) => {}
        Err(e) => out.say(&format!("not sent: {}", e.report())),
    }
}

/// Raw mode for as long as it lives.
struct RawMode;

impl RawMode {
    fn enable() -> anyhow::Result<RawMode> {
        crossterm::terminal::enable_raw_mode().context("switching the terminal to raw mode")?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
        let mut o = std::io::stdout().lock();
        let _ = write!(o, "\r\n");
        let _ = o.flush();
    }
}

/// The key a terminal event stands for, if the chat cares about it.
fn key_of(ev: &crossterm::event::Event) -> Option<Key> {
    use crossterm::event::{Event as T, KeyCode, KeyEventKind, KeyModifiers};
    let T::Key(k) = ev else {
        return None;
    };
    if k.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    Some(match k.code {
        KeyCode::Char('c') if ctrl => Key::Interrupt,
        KeyCode::Char('d') if ctrl => Key::Eof,
        KeyCode::Char('u') if ctrl => Key::ClearLine,
        KeyCode::Char(_) if ctrl => return None,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Enter => Key::Enter,
        _ => return None,
    })
}

/// Reads terminal events on a thread of its own (they block) until `stop`.
fn read_keys(tx: mpsc::UnboundedSender<Key>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match crossterm::event::poll(Duration::from_millis(100)) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(_) => break,
        }
        let Ok(ev) = crossterm::event::read() else {
            break;
        };
        if let Some(k) = key_of(&ev)
            && tx.send(k).is_err()
        {
            break;
        }
    }
}

/// The terminal chat: edits the input line key by key, sends typing indicators, sends lines.
async fn write_in_terminal(
    m: &Arc<Messenger>,
    with: &SessionId,
    out: &Out,
    editor: &Arc<Mutex<Editor>>,
) -> anyhow::Result<()> {
    let _raw = RawMode::enable()?;
    redraw(editor);
    let (tx, mut keys) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("umbra-chat-keys".into())
            .spawn(move || read_keys(tx, stop))
            .context("starting the keyboard reader")?
    };
    let mut typing = Typing::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let tell = |started: bool| {
        let (m, with) = (m.clone(), *with);
        // Never holds up the input line; a lost indicator does not matter.
        tokio::spawn(async move {
            let _ = m.send_typing(&with, started).await;
        });
    };
    loop {
        let key = tokio::select! {
            k = keys.recv() => k,
            _ = tick.tick() => {
                if let Some(started) = typing.tick(SystemClock.instant()) {
                    tell(started);
                }
                continue;
            }
        };
        let Some(key) = key else { break };
        let (action, empty) = {
            let mut e = editor.lock().unwrap_or_else(PoisonError::into_inner);
            let action = e.key(key);
            (action, e.line().is_empty())
        };
        match action {
            Action::Nothing => {}
            Action::Redraw => {
                redraw(editor);
                if let Some(started) = typing.edited(SystemClock.instant(), empty) {
                    tell(started);
                }
            }
            Action::Submit(text) => {
                redraw(editor);
                typing.sent();
                send(m, with, out, &text).await;
            }
            Action::Quit => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    Ok(())
}

/// Draws the input line again.
fn redraw(editor: &Arc<Mutex<Editor>>) {
    let e = editor.lock().unwrap_or_else(PoisonError::into_inner);
    let mut o = std::io::stdout().lock();
    let _ = write!(o, "\r\x1b[2K{PROMPT}{}", e.line());
    let _ = o.flush();
}

/// Polls the swarm forever, printing what concerns the user.
async fn poll(m: Arc<Messenger>, with: SessionId, out: Out) {
    let mut failing = false;
    loop {
        match m.receive_wait(WAIT).await {
            Ok(events) => {
                if failing {
                    out.say("connected again");
                    failing = false;
                }
                let mut read_any = false;
                for e in events {
                    read_any |= show(&m, &with, &out, e);
                }
                if read_any
                    && m.contact(&with).ok().flatten().is_some_and(|c| c.approved)
                    && let Err(e) = m.mark_read(&with).await
                {
                    out.say(&format!("marking read failed: {}", e.report()));
                }
            }
            Err(e) => {
                if !failing {
                    out.say(&format!("receiving failed, retrying: {}", e.report()));
                    failing = true;
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// Prints one event; returns whether it was an incoming message of this conversation.
fn show(m: &Messenger, with: &SessionId, out: &Out, e: Event) -> bool {
    let here = |id: &SessionId| id == with;
    match e {
        Event::Message { message, request } if here(&message.conversation) => {
            out.event(&message_json(&message, request), || {
                Some(render::message_line(m, &message))
            });
            !message.outgoing
        }
        Event::Message { message, request } => {
            out.event(&message_json(&message, request), || {
                let kind = if request {
                    "message request"
                } else {
                    "message"
                };
                Some(format!(
                    "-- new {kind} from {} (`umbra chat` with them to answer)",
                    render::name_of(m, &message.conversation)
                ))
            });
            false
        }
        Event::Typing { from, started } if here(&from) => {
            out.event(&json!({ "typing": started, "from": from.to_hex() }), || {
                started.then(|| format!("-- {} is typing…", render::name_of(m, &from)))
            });
            false
        }
        Event::Read { by, sent_ms } if here(&by) => {
            out.event(
                &json!({ "read_by": by.to_hex(), "timestamps": sent_ms }),
                || Some(format!("-- {} read your messages", render::name_of(m, &by))),
            );
            false
        }
        Event::Unsent {
            conversation,
            sent_ms,
            ..
        } if here(&conversation) => {
            out.event(
                &json!({ "unsent": sent_ms, "conversation": conversation.to_hex() }),
                || Some(format!("-- a message was deleted (timestamp {sent_ms})")),
            );
            false
        }
        Event::RequestAccepted { by } if here(&by) => {
            out.say(&format!(
                "{} accepted your message request",
                render::name_of(m, &by)
            ));
            false
        }
        Event::DisappearingChanged {
            conversation,
            setting,
        } if here(&conversation) => {
            out.say(&format!(
                "disappearing messages: {}",
                render::disappearing(setting)
            ));
            false
        }
        _ => false,
    }
}
