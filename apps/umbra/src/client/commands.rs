//! One function per client command. Each checks its input before changing anything, then
//! calls the messenger and prints the outcome (JSON with `--json`).

use std::io::{IsTerminal as _, Read as _};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};
use umbra_crypto::SessionId;
use umbra_messenger::{ChatPriority, Event, Message, MessageStatus, Messenger, Settings};

use super::context::{self, Reach, resolve};
use super::render::{self, message_json, print_json};
use super::{
    ChatsArgs, ContactCommand, Globals, IdCommand, ReceiveArgs, SendArgs, SettingsArgs, UnsendArgs,
    WhoArgs,
};

// ----- identity ---------------------------------------------------------------------------------

/// `umbra id new | restore | show`.
pub(crate) fn id(cmd: IdCommand, g: &Globals) -> anyhow::Result<()> {
    match cmd {
        IdCommand::New { name } => {
            let (profile, phrase) = context::create_profile(g, None)?;
            let phrase = phrase.ok_or_else(|| anyhow!("no recovery phrase was made"))?;
            let dir = profile.dir().to_path_buf();
            let m = context::offline_from(profile);
            if let Some(n) = &name {
                m.set_display_name(n)?;
            }
            let id = m.session_id().to_hex();
            if g.json {
                print_json(&json!({
                    "session_id": id,
                    "recovery_phrase": phrase.as_str(),
                    "display_name": name,
                    "profile": dir.display().to_string(),
                }));
                eprintln!("{PHRASE_WARNING}");
            } else {
                println!("Session ID:      {id}");
                println!("Recovery phrase: {}", phrase.as_str());
                println!("Profile:         {}", dir.display());
                println!();
                println!("{PHRASE_WARNING}");
                println!("Share your Session ID with the people you want to talk to.");
            }
            Ok(())
        }
        IdCommand::Restore { name } => {
            let phrase = read_phrase()?;
            let (profile, _) = context::create_profile(g, Some(phrase.as_str()))?;
            let dir = profile.dir().to_path_buf();
            let m = context::offline_from(profile);
            if let Some(n) = &name {
                m.set_display_name(n)?;
            }
            let id = m.session_id().to_hex();
            if g.json {
                print_json(&json!({
                    "session_id": id,
                    "display_name": name,
                    "profile": dir.display().to_string(),
                }));
            } else {
                println!("Restored Session ID {id}");
                println!("Profile: {}", dir.display());
                println!(
                    "Run `umbra receive` (with --network) to fetch the history the swarm still holds."
                );
            }
            Ok(())
        }
        IdCommand::Show => {
            let m = context::offline(g)?;
            let id = m.session_id().to_hex();
            let name = m.display_name()?;
            if g.json {
                print_json(&json!({
                    "session_id": id,
                    "display_name": name,
                    "profile": m.dir().display().to_string(),
                }));
            } else {
                println!("Session ID: {id}");
                if let Some(n) = name {
                    println!("Name:       {n}");
                }
                println!("Profile:    {}", m.dir().display());
            }
            Ok(())
        }
    }
}

const PHRASE_WARNING: &str = "Write the recovery phrase down and keep it secret: it is the only way to restore this account, and anyone who has it can read and send your messages.";

/// The recovery phrase from standard input (a prompt when it is a terminal).
fn read_phrase() -> anyhow::Result<zeroize::Zeroizing<String>> {
    let stdin = std::io::stdin();
    let mut text = zeroize::Zeroizing::new(String::new());
    if stdin.is_terminal() {
        eprint!("Recovery phrase (12 words): ");
        stdin
            .read_line(&mut text)
            .context("reading the recovery phrase")?;
    } else {
        stdin
            .lock()
            .take(4096)
            .read_to_string(&mut text)
            .context("reading the recovery phrase from standard input")?;
    }
    let words = zeroize::Zeroizing::new(text.split_whitespace().collect::<Vec<_>>().join(" "));
    if words.is_empty() {
        bail!("restoring the identity: no recovery phrase on standard input");
    }
    Ok(words)
}

// ----- messages ---------------------------------------------------------------------------------

/// `umbra send`.
pub(crate) async fn send(a: &SendArgs) -> anyhow::Result<()> {
    let online = context::online(&a.g)?;
    let m = &online.messenger;
    let to = resolve(m, &a.to)?;
    let offline_reason = match online.connect().await? {
        Reach::Ready => None,
        Reach::Unreachable(why) => Some(why),
    };
    let msg = m
        .send_text(&to, a.text.as_deref().unwrap_or_default())
        .await?;
    if a.g.json {
        print_json(&message_json(&msg, false));
        return Ok(());
    }
    match msg.status {
        MessageStatus::Sent => println!(
            "sent to {} at {} (timestamp {})",
            render::name_of(m, &to),
            render::timestamp(msg.sent_ms),
            msg.sent_ms
        ),
        MessageStatus::Failed => bail!("sending the message: the swarm refused it"),
        _ => {
            let why = offline_reason.unwrap_or_else(|| "the swarm did not acknowledge it".into());
            println!(
                "queued (timestamp {}): {why}; `umbra receive` or `umbra chat` will retry it",
                msg.sent_ms
            );
        }
    }
    Ok(())
}

/// What a poll brought, split for printing.
#[derive(Default)]
struct Polled {
    messages: Vec<(Message, bool)>,
    group_messages: Vec<umbra_messenger::GroupChatMessage>,
    notes: Vec<String>,
}

fn sort_events(m: &Messenger, events: Vec<Event>, out: &mut Polled) {
    for e in events {
        match e {
            Event::Message { message, request } => out.messages.push((message, request)),
            Event::GroupMessage { message } => out.group_messages.push(message),
            Event::GroupInvite { group, name, from } => out.notes.push(format!(
                "{} invited you to the group {name} ({group}); `umbra accept {group}` joins it",
                render::name_of(m, &from)
            )),
            Event::GroupClosed { group, status } => {
                out.notes
                    .push(format!("group {group}: {}", status.as_str()));
            }
            Event::Unsent {
                author, sent_ms, ..
            } => out.notes.push(format!(
                "{} deleted a message (timestamp {sent_ms})",
                render::name_of(m, &author)
            )),
            Event::GroupUnsent {
                group,
                author,
                sent_ms,
            } => out.notes.push(format!(
                "{} deleted a message in the group {group} (timestamp {sent_ms})",
                render::name_of(m, &author)
            )),
            Event::Read { by, sent_ms } => out.notes.push(format!(
                "{} read {} of your messages",
                render::name_of(m, &by),
                sent_ms.len()
            )),
            Event::RequestAccepted { by } => out.notes.push(format!(
                "{} accepted your message request",
                render::name_of(m, &by)
            )),
            Event::DisappearingChanged {
                conversation,
                setting,
            } => out.notes.push(format!(
                "disappearing messages with {}: {}",
                render::name_of(m, &conversation),
                render::disappearing(setting)
            )),
            _ => {}
        }
    }
}

/// `umbra receive [--wait SECONDS]`.
pub(crate) async fn receive(a: &ReceiveArgs) -> anyhow::Result<()> {
    let online = context::online(&a.g)?;
    online.connect_or_fail().await?;
    let m = &online.messenger;
    let deadline = a
        .wait
        .map(|s| tokio::time::Instant::from_std(SystemClock.instant()) + Duration::from_secs(s));
    let mut polled = Polled::default();
    loop {
        let left = deadline.map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(tokio::time::Instant::from_std(SystemClock.instant()))
        });
        let events = m.receive_wait(left).await?;
        sort_events(m, events, &mut polled);
        if !polled.messages.is_empty() || !polled.group_messages.is_empty() || left.is_zero() {
            break;
        }
    }
    if a.g.json {
        let list: Vec<Value> = polled
            .messages
            .iter()
            .map(|(msg, req)| message_json(msg, *req))
            .chain(
                polled
                    .group_messages
                    .iter()
                    .map(super::groups::group_message_json),
            )
            .collect();
        print_json(&Value::Array(list));
        return Ok(());
    }
    for (msg, request) in &polled.messages {
        let tag = if *request { "  [request]" } else { "" };
        println!("{}{tag}", render::message_line(m, msg));
    }
    for msg in &polled.group_messages {
        println!("{}", super::groups::group_message_line(m, msg));
    }
    for n in &polled.notes {
        println!("{n}");
    }
    if polled.messages.is_empty() && polled.group_messages.is_empty() && polled.notes.is_empty() {
        println!("no new messages");
    }
    Ok(())
}

/// `umbra chats`.
pub(crate) fn chats(a: &ChatsArgs) -> anyhow::Result<()> {
    let g = &a.g;
    let m = context::offline(g)?;
    let list = if a.all {
        m.all_conversations()?
    } else {
        m.conversations()?
    };
    if g.json {
        print_json(&Value::Array(
            list.iter()
                .map(|c| render::conversation_json(c, false))
                .collect(),
        ));
        return Ok(());
    }
    if list.is_empty() {
        println!("no conversations yet");
    }
    for c in &list {
        let place = match c.priority {
            ChatPriority::Pinned { .. } => "[pinned] ",
            ChatPriority::Hidden => "[hidden] ",
            ChatPriority::Normal => "",
        };
        let unread = if c.unread > 0 {
            format!(" ({} unread)", c.unread)
        } else {
            String::new()
        };
        let last = c
            .last
            .as_ref()
            .map(|msg| format!("  — {}", render::message_line(&m, msg)))
            .unwrap_or_default();
        println!("{place}{}{unread}{last}", c.contact.name());
    }
    let requests = m.requests()?.len();
    if requests > 0 {
        println!("{requests} message request(s): see `umbra requests`");
    }
    Ok(())
}

/// What `umbra pin | unpin | hide` does to a conversation's place in the chat list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place {
    /// Above the others.
    Pin,
    /// Back in its place by its newest message.
    Unpin,
    /// Out of the list until a new message arrives.
    Hide,
}

/// `umbra pin | unpin | hide`: synced to the account's other devices at the next poll.
pub(crate) fn place(a: &WhoArgs, place: Place) -> anyhow::Result<()> {
    let m = context::offline(&a.g)?;
    let who = resolve(&m, &a.who)?;
    let name = render::name_of(&m, &who);
    let (action, line) = match place {
        Place::Pin => {
            m.pin_conversation(&who)?;
            ("pin", format!("pinned {name}"))
        }
        Place::Unpin => {
            m.unpin_conversation(&who)?;
            ("unpin", format!("{name} is back in its place"))
        }
        Place::Hide => {
            m.hide_conversation(&who)?;
            (
                "hide",
                format!("hid {name} until a new message arrives (`umbra chats --all` shows it)"),
            )
        }
    };
    done(&a.g, action, &who, line);
    Ok(())
}

/// `umbra requests`.
pub(crate) fn requests(g: &Globals) -> anyhow::Result<()> {
    let m = context::offline(g)?;
    let mut out = Vec::new();
    for c in m.requests()? {
        out.push((c.contact.session_id, m.history(&c.contact.session_id)?));
    }
    if g.json {
        let list: Vec<Value> = out
            .iter()
            .flat_map(|(_, msgs)| msgs.iter().map(|msg| message_json(msg, true)))
            .collect();
        print_json(&Value::Array(list));
        return Ok(());
    }
    if out.is_empty() {
        println!("no message requests");
    }
    for (from, msgs) in &out {
        println!(
            "request from {from} — `umbra accept {from}`, `umbra decline …` or `umbra block …`"
        );
        for msg in msgs {
            println!("  {}", render::message_line(&m, msg));
        }
    }
    Ok(())
}

/// `umbra history CONTACT` (marks the conversation read afterwards).
pub(crate) async fn history(a: &WhoArgs) -> anyhow::Result<()> {
    let m = context::offline(&a.g)?;
    let with = resolve(&m, &a.who)?;
    let request = m.contact(&with)?.is_some_and(|c| !c.approved);
    let msgs = m.history(&with)?;
    if a.g.json {
        print_json(&Value::Array(
            msgs.iter().map(|msg| message_json(msg, request)).collect(),
        ));
    } else {
        if msgs.is_empty() {
            println!("no messages with {}", render::name_of(&m, &with));
        }
        for msg in &msgs {
            println!("{}", render::message_line(&m, msg));
        }
    }
    // Read receipts and timer changes this produces wait in the outbox for the next online
    // command.
    if !request {
        m.mark_read(&with).await?;
    }
    Ok(())
}

/// `umbra outbox`.
pub(crate) fn outbox(g: &Globals) -> anyhow::Result<()> {
    let m = context::offline(g)?;
    let entries = m.outbox()?;
    let mut rows = Vec::new();
    for e in &entries {
        let msg = match e.message {
            Some((conv, sent)) => m.history(&conv)?.into_iter().find(|x| x.sent_ms == sent),
            None => None,
        };
        rows.push((e, msg));
    }
    if g.json {
        let list: Vec<Value> = rows
            .iter()
            .map(|(e, msg)| {
                let mut v = msg
                    .as_ref()
                    .map_or_else(|| json!({}), |x| message_json(x, false));
                if let Value::Object(o) = &mut v {
                    o.insert("kind".into(), json!(e.kind));
                    o.insert("to".into(), json!(e.owner.to_hex()));
                    o.insert("attempts".into(), json!(e.attempts));
                    o.insert("next_attempt".into(), json!(e.next_attempt_ms));
                    o.insert("last_error".into(), json!(e.last_error));
                }
                v
            })
            .collect();
        print_json(&Value::Array(list));
        return Ok(());
    }
    if rows.is_empty() {
        println!("the outbox is empty");
    }
    for (e, msg) in &rows {
        let what = msg
            .as_ref()
            .map(|x| format!(": {:?}", x.body))
            .unwrap_or_default();
        let err = e
            .last_error
            .as_deref()
            .map(|x| format!(", last error: {x}"))
            .unwrap_or_default();
        println!(
            "{} for {}{what} — {} attempt(s){err}",
            e.kind,
            render::name_of(&m, &e.owner),
            e.attempts
        );
    }
    Ok(())
}

/// `umbra paths`: the guards and the current onion paths, as Session's path screen shows
/// them (you → entry node → service node → service node → destination).
pub(crate) async fn paths(g: &Globals) -> anyhow::Result<()> {
    let online = context::online(g)?;
    online.connect_or_fail().await?;
    let t = &online.transport;
    let guards = t.guards();
    let nodes = t.guard_nodes();
    let address = |key: &umbra_crypto::Ed25519PublicKey| {
        nodes
            .iter()
            .find(|n| &n.pubkey_ed25519 == key)
            .map(|n| format!("{}:{}", n.public_ip, n.storage_port))
    };
    let paths = t.paths();
    let churn = t.guard_churn();
    if g.json {
        let guards: Vec<Value> = guards
            .iter()
            .map(|gd| {
                json!({
                    "node": render::key_hex(&gd.node),
                    "address": address(&gd.node),
                    "since": gd.since_ms,
                    "confirmed": gd.confirmed,
                })
            })
            .collect();
        let paths: Vec<Value> = paths
            .iter()
            .map(|p| json!({ "nodes": p.nodes.iter().map(render::node_json).collect::<Vec<_>>() }))
            .collect();
        print_json(&json!({
            "guards": guards,
            "paths": paths,
            "guards_chosen_now": churn.chosen,
            "guards_dropped_now": churn.dropped,
        }));
        return Ok(());
    }
    println!("Entry nodes (guards; they see your IP address and are kept across runs):");
    for gd in &guards {
        println!(
            "  {}  {}  since {}",
            render::key_hex(&gd.node),
            address(&gd.node).unwrap_or_else(|| "(not in the node list)".into()),
            render::timestamp(gd.since_ms)
        );
    }
    for (i, p) in paths.iter().enumerate() {
        println!("Path {}:", i + 1);
        println!("  you");
        for (j, n) in p.nodes.iter().enumerate() {
            let role = if j == 0 {
                "entry node  "
            } else {
                "service node"
            };
            println!("  → {role}  {}", render::node_line(n));
        }
        println!("  → destination");
    }
    if churn.chosen > 0 {
        println!(
            "{} new entry node(s) were chosen in this run (none are while the kept ones work).",
            churn.chosen
        );
    }
    Ok(())
}

// ----- requests, blocking, contacts -------------------------------------------------------------

fn done(g: &Globals, action: &str, who: &SessionId, line: String) {
    if g.json {
        print_json(&json!({ "ok": true, "action": action, "session_id": who.to_hex() }));
    } else {
        println!("{line}");
    }
}

/// `umbra accept`.
pub(crate) async fn accept(a: &WhoArgs) -> anyhow::Result<()> {
    let online = context::online(&a.g)?;
    let m = &online.messenger;
    let who = resolve(m, &a.who)?;
    online.connect().await?;
    m.accept_request(&who).await?;
    let queued = !m.outbox()?.is_empty();
    let tail = if queued {
        " (the answer waits in the outbox until the network can be reached)"
    } else {
        ""
    };
    done(
        &a.g,
        "accept",
        &who,
        format!("accepted {}{tail}", render::name_of(m, &who)),
    );
    Ok(())
}

/// `umbra decline`.
pub(crate) fn decline(a: &WhoArgs) -> anyhow::Result<()> {
    let m = context::offline(&a.g)?;
    let who = resolve(&m, &a.who)?;
    if !m.requests()?.iter().any(|c| c.contact.session_id == who) {
        bail!(
            "declining: there is no message request from {}",
            a.who.trim()
        );
    }
    m.decline_request(&who)?;
    done(
        &a.g,
        "decline",
        &who,
        format!("declined the request from {who}"),
    );
    Ok(())
}

/// `umbra block` / `umbra unblock`.
pub(crate) fn block(a: &WhoArgs, block: bool) -> anyhow::Result<()> {
    let m = context::offline(&a.g)?;
    let who = resolve(&m, &a.who)?;
    if who == m.session_id() {
        bail!("you cannot block yourself");
    }
    let name = render::name_of(&m, &who);
    if block {
        m.block(&who)?;
        done(&a.g, "block", &who, format!("blocked {name}"));
    } else {
        m.unblock(&who)?;
        done(&a.g, "unblock", &who, format!("unblocked {name}"));
    }
    Ok(())
}

/// `umbra contact add | rename | list`.
pub(crate) fn contact(cmd: ContactCommand, g: &Globals) -> anyhow::Result<()> {
    let m = context::offline(g)?;
    match cmd {
        ContactCommand::Add { session_id, name } => {
            let id: SessionId = session_id.parse().map_err(|e| anyhow!("{e}"))?;
            if id == m.session_id() {
                bail!("adding a contact: that is your own Session ID");
            }
            let name = checked_name(name.as_deref())?;
            m.add_contact(&id, name)?;
            contact_done(g, &m, &id, "added")
        }
        ContactCommand::Rename { who, name, clear } => {
            let id = resolve(&m, &who)?;
            let name = if clear {
                None
            } else {
                checked_name(name.as_deref())?
            };
            m.rename_contact(&id, name)?;
            contact_done(g, &m, &id, "renamed")
        }
        ContactCommand::List => {
            let list = m.contacts()?;
            if g.json {
                let mut out = Vec::with_capacity(list.len());
                for c in &list {
                    let mut v = render::contact_json(c);
                    // The URL only: `umbra profile picture WHO` downloads it.
                    v["picture"] = json!(m.contact_picture(&c.session_id)?.map(|p| p.url));
                    out.push(v);
                }
                print_json(&Value::Array(out));
                return Ok(());
            }
            if list.is_empty() {
                println!("no contacts yet (`umbra contact add SESSION_ID NAME`)");
            }
            for c in &list {
                let mut flags = Vec::new();
                if c.blocked {
                    flags.push("blocked".to_owned());
                }
                if m.contact_picture(&c.session_id)?.is_some() {
                    flags.push("picture".to_owned());
                }
                if c.disappearing != Default::default() {
                    flags.push(format!(
                        "disappearing {}",
                        render::disappearing(c.disappearing)
                    ));
                }
                let flags = if flags.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", flags.join(", "))
                };
                println!("{:<20} {}{flags}", c.name(), c.session_id);
            }
            Ok(())
        }
    }
}

/// A contact name must be non-empty and must not look like a Session ID.
fn checked_name(name: Option<&str>) -> anyhow::Result<Option<&str>> {
    let Some(n) = name.map(str::trim) else {
        return Ok(None);
    };
    if n.is_empty() {
        bail!("a contact name cannot be empty");
    }
    if n.len() == 66 && n.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("a contact name cannot be a Session ID");
    }
    Ok(Some(n))
}

fn contact_done(g: &Globals, m: &Messenger, id: &SessionId, what: &str) -> anyhow::Result<()> {
    let c = m
        .contact(id)?
        .ok_or_else(|| anyhow!("the contact was not saved"))?;
    if g.json {
        print_json(&render::contact_json(&c));
    } else {
        println!("{what} {} ({})", c.name(), c.session_id);
    }
    Ok(())
}

// ----- unsend, settings -------------------------------------------------------------------------

/// `umbra unsend HASH|TIMESTAMP`.
pub(crate) async fn unsend(a: &UnsendArgs) -> anyhow::Result<()> {
    let online = context::online(&a.g)?;
    let m = &online.messenger;
    let key = a.message.trim();
    let ts: Option<u64> = key.parse().ok();
    let mut found = None;
    let convs = m.conversations()?.into_iter().chain(m.requests()?);
    'search: for c in convs {
        for msg in m.history(&c.contact.session_id)? {
            if msg.hash.is_some_and(|h| h == key) || ts == Some(msg.sent_ms) {
                found = Some(msg);
                break 'search;
            }
        }
    }
    let Some(msg) = found else {
        return unsend_in_group(&online, key, ts, a.g.json).await;
    };
    if !msg.outgoing {
        bail!("unsending: only your own messages can be deleted for everyone");
    }
    online.connect().await?;
    m.unsend(&msg.conversation, msg.sent_ms).await?;
    if a.g.json {
        print_json(&json!({
            "ok": true,
            "action": "unsend",
            "conversation": msg.conversation.to_hex(),
            "timestamp": msg.sent_ms,
        }));
    } else {
        println!(
            "deleted for everyone: {:?} (to {})",
            msg.body,
            render::name_of(m, &msg.conversation)
        );
    }
    Ok(())
}

/// `umbra unsend` of a group message: ours, or anyone's when we are an admin of the group.
async fn unsend_in_group(
    online: &context::Online,
    key: &str,
    ts: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let m = &online.messenger;
    let found = m.groups()?.into_iter().find_map(|g| {
        m.group_history(&g.id).ok()?.into_iter().find(|msg| {
            msg.hash.is_some_and(|h| h == key) || (msg.outgoing && ts == Some(msg.sent_ms))
        })
    });
    let msg = found.ok_or_else(|| {
        anyhow!("unsending: no message has the hash or timestamp {key:?} (see `umbra history`)")
    })?;
    let hash = msg.hash.ok_or_else(|| {
        anyhow!("unsending: that group message has no hash yet; try again once it is sent")
    })?;
    online.connect().await?;
    m.unsend_group_message(&msg.group, &hash).await?;
    if json {
        print_json(&json!({
            "ok": true,
            "action": "unsend",
            "group": msg.group,
            "hash": hash,
            "timestamp": msg.sent_ms,
        }));
    } else {
        println!("deleted for everyone in the group: {:?}", msg.body);
    }
    Ok(())
}

/// `umbra settings`.
pub(crate) async fn settings(a: &SettingsArgs) -> anyhow::Result<()> {
    // Every argument is checked before anything changes.
    let mode = a
        .disappearing
        .as_deref()
        .map(render::parse_disappearing)
        .transpose()?;
    if let Some(group) = a.contact.as_deref().filter(|w| super::groups::is_group(w)) {
        if a.read_receipts.is_some() || a.typing.is_some() {
            bail!(
                "settings: read receipts and typing indicators are not per group (leave out the group id)"
            );
        }
        return super::groups::settings(group, mode, &a.g).await;
    }
    let online = match mode {
        Some(_) => Some(context::online(&a.g)?),
        None => None,
    };
    let offline;
    let m: &Messenger = match &online {
        Some(o) => &o.messenger,
        None => {
            offline = context::offline(&a.g)?;
            &offline
        }
    };
    let contact = a.contact.as_deref().map(|w| resolve(m, w)).transpose()?;
    if let (Some(mode), Some(with), Some(o)) = (mode, contact, &online) {
        o.connect().await?;
        m.set_disappearing(&with, mode).await?;
    }
    let mut s: Settings = m.settings()?;
    if a.read_receipts.is_some() || a.typing.is_some() {
        if let Some(v) = a.read_receipts {
            s.read_receipts = v.is_on();
        }
        if let Some(v) = a.typing {
            s.typing_indicators = v.is_on();
        }
        m.set_settings(s)?;
    }
    let conv = match contact {
        Some(id) => Some(
            m.contact(&id)?
                .map(|c| (id, c.disappearing))
                .unwrap_or((id, Default::default())),
        ),
        None => None,
    };
    if a.g.json {
        let mut v = json!({
            "read_receipts": s.read_receipts,
            "typing": s.typing_indicators,
        });
        if let (Value::Object(o), Some((id, d))) = (&mut v, conv) {
            o.insert("session_id".into(), json!(id.to_hex()));
            o.insert("disappearing".into(), json!(render::disappearing(d)));
        }
        print_json(&v);
    } else {
        let onoff = |b: bool| if b { "on" } else { "off" };
        println!("read receipts:         {}", onoff(s.read_receipts));
        println!("typing indicators:     {}", onoff(s.typing_indicators));
        if let Some((id, d)) = conv {
            println!(
                "disappearing messages: {} (with {})",
                render::disappearing(d),
                render::name_of(m, &id)
            );
        }
    }
    Ok(())
}
