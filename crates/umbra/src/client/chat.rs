//! `umbra chat CONTACT`: a line-based conversation in the terminal.
//!
//! Two tasks share the messenger: one polls the swarm and prints what arrives (messages of
//! this conversation, typing, read receipts, a one-line notice for other conversations), the
//! other reads standard input one line at a time and sends each line. `/quit` or end of input
//! leaves. With `--json` every event is one JSON object per line.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use umbra_client::messenger::{Event, MessageStatus, Messenger};
use umbra_crypto::SessionId;

use super::WhoArgs;
use super::context::{self, Reach, resolve};
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
    let name = render::name_of(&m, &with);
    if let Reach::Unreachable(why) = online.connect().await? {
        say(
            json,
            &format!("the network cannot be reached now ({why}); messages will be queued"),
        );
    }
    if !json {
        println!("Chat with {name} ({with}). Type a message and press Enter; /quit to leave.");
        let history = m.history(&with)?;
        for msg in history.iter().skip(history.len().saturating_sub(BACKLOG)) {
            println!("{}", render::message_line(&m, msg));
        }
    }
    if m.contact(&with)?.is_some_and(|c| c.approved) {
        m.mark_read(&with).await?;
    }

    let poller = tokio::spawn(poll(m.clone(), with, json));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let result = loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => break Ok(()),
            Err(e) => break Err(anyhow::Error::new(e).context("reading standard input")),
        };
        let text = line.trim_end();
        if text.trim() == "/quit" {
            break Ok(());
        }
        if text.trim().is_empty() {
            continue;
        }
        match m.send_text(&with, text).await {
            Ok(msg) if json => print_json(&message_json(&msg, false)),
            Ok(msg) if msg.status == MessageStatus::Queued => {
                println!("  (queued: it will be sent when the network answers)");
            }
            Ok(_) => {}
            Err(e) => say(json, &format!("not sent: {e}")),
        }
    };
    poller.abort();
    result
}

/// A notice: a line of text, or `{"notice": …}`.
fn say(json: bool, line: &str) {
    if json {
        print_json(&json!({ "notice": line }));
    } else {
        println!("-- {line}");
    }
}

/// Polls the swarm forever, printing what concerns the user.
async fn poll(m: Arc<Messenger>, with: SessionId, json: bool) {
    let mut failing = false;
    loop {
        match m.receive_wait(WAIT).await {
            Ok(events) => {
                if failing {
                    say(json, "connected again");
                    failing = false;
                }
                let mut read_any = false;
                for e in events {
                    read_any |= show(&m, &with, json, e);
                }
                if read_any
                    && m.contact(&with).ok().flatten().is_some_and(|c| c.approved)
                    && let Err(e) = m.mark_read(&with).await
                {
                    say(json, &format!("marking read failed: {e}"));
                }
            }
            Err(e) => {
                if !failing {
                    say(json, &format!("receiving failed, retrying: {e}"));
                    failing = true;
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// Prints one event; returns whether it was an incoming message of this conversation.
fn show(m: &Messenger, with: &SessionId, json: bool, e: Event) -> bool {
    let here = |id: &SessionId| id == with;
    match e {
        Event::Message { message, request } if here(&message.conversation) => {
            if json {
                print_json(&message_json(&message, request));
            } else {
                println!("{}", render::message_line(m, &message));
            }
            !message.outgoing
        }
        Event::Message { message, request } => {
            if json {
                print_json(&message_json(&message, request));
            } else {
                let kind = if request {
                    "message request"
                } else {
                    "message"
                };
                println!(
                    "-- new {kind} from {} (`umbra chat` with them to answer)",
                    render::name_of(m, &message.conversation)
                );
            }
            false
        }
        Event::Typing { from, started } if here(&from) => {
            if json {
                print_json(&json!({ "typing": started, "from": from.to_hex() }));
            } else if started {
                println!("-- {} is typing…", render::name_of(m, &from));
            }
            false
        }
        Event::Read { by, sent_ms } if here(&by) => {
            if json {
                print_json(&json!({ "read_by": by.to_hex(), "timestamps": sent_ms }));
            } else {
                println!("-- {} read your messages", render::name_of(m, &by));
            }
            false
        }
        Event::Unsent {
            conversation,
            sent_ms,
            ..
        } if here(&conversation) => {
            if json {
                print_json(&json!({ "unsent": sent_ms, "conversation": conversation.to_hex() }));
            } else {
                println!("-- a message was deleted (timestamp {sent_ms})");
            }
            false
        }
        Event::RequestAccepted { by } if here(&by) => {
            say(
                json,
                &format!("{} accepted your message request", render::name_of(m, &by)),
            );
            false
        }
        Event::DisappearingChanged {
            conversation,
            setting,
        } if here(&conversation) => {
            say(
                json,
                &format!("disappearing messages: {}", render::disappearing(setting)),
            );
            false
        }
        _ => false,
    }
}
