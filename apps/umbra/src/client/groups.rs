//! `umbra group …` and the group side of `send`, `history`, `accept`, `decline` and
//! `receive`: a group id (`03…`) is accepted wherever a Session ID is. Every group decision
//! is umbra-messenger's; this prints.

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use umbra_crypto::{MessageHash, SessionId};
use umbra_messenger::{
    Disappearing, GroupChatMessage, GroupView, MessageStatus, Messenger, is_group_id,
};

use super::Globals;
use super::context::{self, Reach, resolve};
use super::render::{self, print_json};

/// `umbra group …`.
#[derive(Debug, Args)]
pub(crate) struct GroupArgs {
    #[command(subcommand)]
    pub(crate) cmd: GroupCommand,
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// The `umbra group` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Create a group with you as its admin and invite members; prints the group id (03…).
    Create {
        /// The group's name.
        name: String,
        /// Session IDs or contact names to invite.
        members: Vec<String>,
    },
    /// A group's name, state, members and admins.
    Info {
        /// The group id (03…).
        group: String,
    },
    /// Every group on this device, invitations included.
    List,
    /// Invite members (admins only); the group is rekeyed unless --history is given.
    Add {
        /// The group id (03…).
        group: String,
        /// Session IDs or contact names.
        #[arg(required = true)]
        members: Vec<String>,
        /// Give the new members the keys of earlier messages too.
        #[arg(long)]
        history: bool,
    },
    /// Remove members (admins only): they can read nothing sent afterwards.
    Remove {
        /// The group id (03…).
        group: String,
        /// Session IDs or contact names.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Make a member an admin (admins only).
    Promote {
        /// The group id (03…).
        group: String,
        /// A Session ID or contact name.
        member: String,
    },
    /// Leave a group (the admins are told) and forget it here.
    Leave {
        /// The group id (03…).
        group: String,
    },
    /// Delete the group for everyone (admins only).
    Delete {
        /// The group id (03…).
        group: String,
    },
}

fn ids(m: &Messenger, who: &[String]) -> anyhow::Result<Vec<SessionId>> {
    who.iter().map(|w| resolve(m, w)).collect()
}

fn group_json(v: &GroupView) -> Value {
    json!({
        "group_id": v.id,
        "name": v.name,
        "status": v.status.as_str(),
        "admin": v.admin,
        "invited_by": v.invited_by.map(|s| s.to_hex()),
        "members": v.members.iter().map(|m| m.session_id.to_hex()).collect::<Vec<_>>(),
        "admins": v.members.iter().filter(|m| m.admin).map(|m| m.session_id.to_hex()).collect::<Vec<_>>(),
        "invited": v.members.iter().filter(|m| m.invited).map(|m| m.session_id.to_hex()).collect::<Vec<_>>(),
        "disappearing": render::disappearing(v.disappearing),
    })
}

fn print_group(m: &Messenger, v: &GroupView) {
    println!("Group:   {} ({})", v.name, v.id);
    let role = if v.admin { ", you are an admin" } else { "" };
    println!("State:   {}{role}", v.status.as_str());
    println!(
        "Disappearing messages: {}",
        render::disappearing(v.disappearing)
    );
    if let Some(by) = &v.invited_by {
        println!("Invited by {}", render::name_of(m, by));
    }
    for member in &v.members {
        let mut tags = Vec::new();
        if member.admin {
            tags.push("admin");
        }
        if member.invited {
            tags.push("invited");
        }
        if member.promoting {
            tags.push("promotion pending");
        }
        if member.session_id == m.session_id() {
            tags.push("you");
        }
        let tail = if tags.is_empty() {
            String::new()
        } else {
            format!("  ({})", tags.join(", "))
        };
        println!("  {}{tail}", render::name_of(m, &member.session_id));
    }
}

/// The JSON object of a group message.
pub(crate) fn group_message_json(msg: &GroupChatMessage) -> Value {
    json!({
        "from": msg.author.to_hex(),
        "conversation": msg.group,
        "group": msg.group,
        "text": msg.body,
        "timestamp": msg.sent_ms,
        "hash": msg.hash.as_ref().map(MessageHash::as_str),
        "outgoing": msg.outgoing,
        "status": render::status(msg.status),
        "received_at": msg.received_ms,
    })
}

/// One line for a group message: `[2025-01-02 10:11:12] Hikers / alice: hello`.
pub(crate) fn group_message_line(m: &Messenger, msg: &GroupChatMessage) -> String {
    let view = m.group(&msg.group).ok();
    let group = view.as_ref().map(|g| g.name.clone()).unwrap_or_default();
    // A contact's name, else the name the group's members config gives, else a short ID.
    let mut who = render::name_of(m, &msg.author);
    if who == render::short(&msg.author)
        && let Some(name) = view
            .iter()
            .flat_map(|g| &g.members)
            .find(|p| p.session_id == msg.author)
            .and_then(|p| p.name.clone())
    {
        who = name;
    }
    let tail = match msg.status {
        MessageStatus::Queued => "  (queued)",
        MessageStatus::Failed => "  (failed)",
        _ => "",
    };
    format!(
        "[{}] {group} / {}: {}{tail}",
        render::timestamp(msg.sent_ms),
        who,
        msg.body
    )
}

fn done(g: &Globals, action: &str, group: &str, line: String) {
    if g.json {
        print_json(&json!({ "ok": true, "action": action, "group_id": group }));
    } else {
        println!("{line}");
    }
}

/// Connects, or explains in one line why group commands need the network.
async fn connect(online: &context::Online) -> anyhow::Result<()> {
    match online.connect().await? {
        Reach::Ready => Ok(()),
        Reach::Unreachable(why) => {
            bail!("the network cannot be reached ({why}); check --network and try again")
        }
    }
}

/// `umbra group …`.
pub(crate) async fn group(cmd: GroupCommand, g: &Globals) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::Info { group } => {
            let m = context::offline(g)?;
            let v = m.group(&group)?;
            if g.json {
                print_json(&group_json(&v));
            } else {
                print_group(&m, &v);
            }
            return Ok(());
        }
        GroupCommand::List => {
            let m = context::offline(g)?;
            let all = m.groups()?;
            if g.json {
                print_json(&Value::Array(all.iter().map(group_json).collect()));
            } else if all.is_empty() {
                println!("no groups (create one with `umbra group create NAME MEMBER…`)");
            } else {
                for v in &all {
                    println!("{}  {}  ({})", v.id, v.name, v.status.as_str());
                }
            }
            return Ok(());
        }
        _ => {}
    }
    let online = context::online(g)?;
    let m = &online.messenger;
    match cmd {
        GroupCommand::Create { name, members } => {
            let members = ids(m, &members)?;
            connect(&online).await?;
            let v = m.create_group(&name, &members).await?;
            if g.json {
                print_json(&group_json(&v));
            } else {
                println!("{}", v.id);
            }
        }
        GroupCommand::Add {
            group,
            members,
            history,
        } => {
            let members = ids(m, &members)?;
            connect(&online).await?;
            m.add_group_members(&group, &members, history).await?;
            done(
                g,
                "add",
                &group,
                format!("invited {} member(s)", members.len()),
            );
        }
        GroupCommand::Remove { group, members } => {
            let members = ids(m, &members)?;
            connect(&online).await?;
            m.remove_group_members(&group, &members).await?;
            done(
                g,
                "remove",
                &group,
                format!("removed {} member(s); the group was rekeyed", members.len()),
            );
        }
        GroupCommand::Promote { group, member } => {
            let member = resolve(m, &member)?;
            connect(&online).await?;
            m.promote_group_member(&group, &member).await?;
            let line = format!("{} is now an admin", render::name_of(m, &member));
            done(g, "promote", &group, line);
        }
        GroupCommand::Leave { group } => {
            connect(&online).await?;
            m.leave_group(&group).await?;
            done(g, "leave", &group, "left the group".into());
        }
        GroupCommand::Delete { group } => {
            connect(&online).await?;
            m.delete_group(&group).await?;
            done(g, "delete", &group, "deleted the group for everyone".into());
        }
        GroupCommand::Info { .. } | GroupCommand::List => {}
    }
    Ok(())
}

/// `umbra send GROUP TEXT`.
pub(crate) async fn send(g: &Globals, group: &str, text: &str) -> anyhow::Result<()> {
    let online = context::online(g)?;
    let m = &online.messenger;
    connect(&online).await?;
    let msg = m.send_group_text(group, text).await?;
    if g.json {
        print_json(&group_message_json(&msg));
        return Ok(());
    }
    match msg.status {
        MessageStatus::Sent => println!(
            "sent to the group at {} (timestamp {})",
            render::timestamp(msg.sent_ms),
            msg.sent_ms
        ),
        MessageStatus::Failed => bail!("sending to the group: the group swarm refused it"),
        _ => println!(
            "queued (timestamp {}): the group swarm did not acknowledge it; `umbra receive` will retry it",
            msg.sent_ms
        ),
    }
    Ok(())
}

/// `umbra history GROUP`.
pub(crate) fn history(g: &Globals, group: &str) -> anyhow::Result<()> {
    let m = context::offline(g)?;
    let msgs = m.group_history(group)?;
    if g.json {
        print_json(&Value::Array(msgs.iter().map(group_message_json).collect()));
    } else {
        if msgs.is_empty() {
            println!("no messages in the group");
        }
        for msg in &msgs {
            println!("{}", group_message_line(&m, msg));
        }
    }
    Ok(())
}

/// `umbra accept GROUP`.
pub(crate) async fn accept(g: &Globals, group: &str) -> anyhow::Result<()> {
    let online = context::online(g)?;
    let m = &online.messenger;
    connect(&online).await?;
    m.accept_group(group).await?;
    let name = m.group(group)?.name;
    done(g, "accept", group, format!("joined the group {name}"));
    Ok(())
}

/// `umbra decline GROUP`.
pub(crate) fn decline(g: &Globals, group: &str) -> anyhow::Result<()> {
    let m = context::offline(g)?;
    m.decline_group(group)?;
    done(g, "decline", group, "declined the group invitation".into());
    Ok(())
}

/// `umbra settings GROUP [--disappearing MODE]`: the group's disappearing timer, set by an
/// admin (after send only: nobody tracks who read a group message).
pub(crate) async fn settings(
    group: &str,
    mode: Option<Disappearing>,
    g: &Globals,
) -> anyhow::Result<()> {
    let m = match mode {
        Some(mode) => {
            let seconds = match mode {
                Disappearing::Off => None,
                Disappearing::AfterSend { seconds } => Some(seconds),
                Disappearing::AfterRead { .. } => bail!(
                    "setting disappearing messages: groups only have after-send timers (use after-send:DURATION)"
                ),
            };
            let online = context::online(g)?;
            online.connect().await?;
            online
                .messenger
                .set_group_disappearing(group, seconds)
                .await?;
            online.messenger
        }
        None => std::sync::Arc::new(context::offline(g)?),
    };
    let v = m.group(group)?;
    if g.json {
        print_json(&json!({
            "group_id": v.id,
            "disappearing": render::disappearing(v.disappearing),
        }));
    } else {
        println!(
            "disappearing messages: {} (in the group {})",
            render::disappearing(v.disappearing),
            v.name
        );
    }
    Ok(())
}

/// Whether a command's target names a group.
pub(crate) fn is_group(who: &str) -> bool {
    is_group_id(who)
}

/// Messages of the history shown when a group chat opens.
const CHAT_BACKLOG: usize = 20;

/// `umbra chat GROUP`: the group's recent messages, then one line sent per line read from
/// standard input (`/quit` or end of input leaves) while a background task long-polls and
/// prints what arrives in the group (one JSON object per line with `--json`).
pub(crate) async fn chat(g: &Globals, group: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt as _, BufReader};
    use umbra_messenger::{Event, GroupStatus};
    use umbra_report::ErrorExt as _;

    let online = context::online(g)?;
    let m = online.messenger.clone();
    let view = m.group(group)?;
    if view.status != GroupStatus::Joined {
        bail!(
            "chat: the group is {} (accept an invitation with `umbra accept {}`)",
            view.status.as_str(),
            view.id
        );
    }
    connect(&online).await?;
    let json = g.json;
    let show = move |m: &Messenger, msg: &GroupChatMessage| {
        if json {
            print_json(&group_message_json(msg));
        } else {
            println!("{}", group_message_line(m, msg));
        }
    };
    if !json {
        println!("chat with the group {} — /quit leaves", view.name);
    }
    let history = m.group_history(&view.id)?;
    for msg in history
        .iter()
        .skip(history.len().saturating_sub(CHAT_BACKLOG))
    {
        show(&m, msg);
    }
    let poller = {
        let m = m.clone();
        let id = view.id.clone();
        tokio::spawn(async move {
            loop {
                match m.receive_wait(std::time::Duration::from_secs(10)).await {
                    Ok(events) => {
                        for e in events {
                            match e {
                                Event::GroupMessage { message }
                                    if message.group == id && !message.outgoing =>
                                {
                                    show(&m, &message);
                                }
                                Event::GroupClosed { group, status } if group == id && !json => {
                                    println!("the group is now {}", status.as_str());
                                }
                                Event::GroupUnsent {
                                    group,
                                    author,
                                    sent_ms,
                                } if group == id && !json => {
                                    println!(
                                        "-- {} deleted a message (timestamp {sent_ms})",
                                        render::name_of(&m, &author)
                                    );
                                }
                                _ => {}
                            }
                        }
                    }
                    Err(e) => {
                        if !json {
                            eprintln!("receiving failed, retrying: {}", e.report());
                        }
                        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                    }
                }
            }
        })
    };
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
        match m.send_group_text(&view.id, text).await {
            Ok(msg) if json => print_json(&group_message_json(&msg)),
            Ok(msg) if msg.status == MessageStatus::Queued => {
                println!("  (queued: it will be sent when the group swarm answers)");
            }
            Ok(_) => {}
            Err(e) => eprintln!("not sent: {}", e.report()),
        }
    };
    poller.abort();
    result
}
