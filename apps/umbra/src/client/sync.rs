//! `umbra profile …` and `umbra devices`: the account's own profile, synced to its other
//! devices through the account's config messages, and what this device last pushed and
//! pulled of each config.
//!
//! Local commands: the change is made here and kept in the profile's database; the next
//! online command (`umbra receive`, `umbra chat`) pushes it to the swarm. Only `--picture`
//! goes online at once: the picture is encrypted and uploaded to the network's attachment
//! server through onion paths before the profile names it.

use std::path::Path;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use umbra_messenger::{ConfigStatus, MAX_PICTURE_SIZE, MAX_SYNCED_NAME, Messenger, SyncMark};

use super::render::{self, print_json};
use super::{Globals, context};

/// `umbra profile …`.
#[derive(Debug, Args)]
pub(crate) struct ProfileArgs {
    #[command(subcommand)]
    pub(crate) cmd: ProfileCommand,
    #[arg(skip)]
    pub(crate) g: Globals,
}

/// The `umbra profile` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ProfileCommand {
    /// Set your display name (sent with your messages, synced to your other devices) and
    /// optionally your picture.
    Set {
        /// Your display name (at most 100 bytes).
        #[arg(long)]
        name: Option<String>,
        /// A picture file, uploaded through the network's attachment server.
        #[arg(long, value_name = "PATH")]
        picture: Option<std::path::PathBuf>,
    },
    /// Show your profile.
    Show,
    /// Download and decrypt a profile picture: yours, or the one a contact sent with their
    /// messages (through the network's attachment server).
    Picture {
        /// A contact's Session ID or name (yours when left out).
        who: Option<String>,
        /// Where to write the picture.
        #[arg(long, value_name = "PATH")]
        out: std::path::PathBuf,
    },
}

/// `umbra profile set | show`.
pub(crate) async fn profile(cmd: ProfileCommand, g: &Globals) -> anyhow::Result<()> {
    match cmd {
        ProfileCommand::Set { name, picture } => {
            if name.is_none() && picture.is_none() {
                bail!("umbra profile set: give --name, --picture or both");
            }
            if let Some(n) = &name {
                let n = n.trim();
                if n.is_empty() || n.len() > MAX_SYNCED_NAME {
                    bail!("umbra profile set: the name must be 1 to {MAX_SYNCED_NAME} bytes");
                }
            }
            // Every check first: nothing changes when the picture cannot be set.
            let m = match &picture {
                Some(path) => {
                    check_picture(path)?;
                    let online = context::online(g)?;
                    let server = online.file_server()?;
                    // The upload goes through onion paths: without the network, nothing
                    // changes.
                    online.connect_or_fail().await?;
                    online
                        .messenger
                        .upload_profile_picture(path, &server)
                        .await?;
                    online.messenger
                }
                None => std::sync::Arc::new(context::offline(g)?),
            };
            if let Some(n) = &name {
                m.set_display_name(n.trim())?;
            }
            if g.json {
                print_json(&profile_json(&m)?);
            } else {
                println!(
                    "profile updated; your other devices get it at the next `umbra receive` here"
                );
            }
            Ok(())
        }
        ProfileCommand::Picture { who, out } => download_picture(g, who.as_deref(), &out).await,
        ProfileCommand::Show => {
            let m = context::offline(g)?;
            let v = profile_json(&m)?;
            if g.json {
                print_json(&v);
                return Ok(());
            }
            println!("Session ID: {}", m.session_id());
            match m.display_name()? {
                Some(n) => println!("Name:       {n}"),
                None => println!("Name:       (none; `umbra profile set --name NAME`)"),
            }
            match m.profile_picture()? {
                Some(p) => println!("Picture:    {}", p.url),
                None => println!("Picture:    (none)"),
            }
            Ok(())
        }
    }
}

/// `umbra profile picture [WHO] --out PATH`.
async fn download_picture(g: &Globals, who: Option<&str>, out: &Path) -> anyhow::Result<()> {
    let online = context::online(g)?;
    let m = &online.messenger;
    let (whose, picture) = match who {
        None => ("your".to_owned(), m.profile_picture()?),
        Some(who) => {
            let id = context::resolve(m, who)?;
            let name = render::name_of(m, &id);
            (format!("{name}'s"), m.contact_picture(&id)?)
        }
    };
    let Some(picture) = picture else {
        bail!("umbra profile picture: no picture known for {whose} profile");
    };
    if out.exists() {
        bail!(
            "umbra profile picture: {} exists; choose another --out or remove it",
            out.display()
        );
    }
    let server = online.file_server()?;
    online.connect_or_fail().await?;
    let bytes = m.download_picture(&picture, &server).await?;
    std::fs::write(out, &bytes[..])
        .with_context(|| format!("umbra profile picture: writing {}", out.display()))?;
    if g.json {
        print_json(&json!({ "ok": true, "path": out.display().to_string(), "size": bytes.len() }));
    } else {
        println!(
            "saved {whose} picture to {} ({} bytes)",
            out.display(),
            bytes.len()
        );
    }
    Ok(())
}

/// The picture file must be a readable, non-empty file of a sensible size.
fn check_picture(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("umbra profile set --picture: reading {}", path.display()))?;
    if !meta.is_file() || meta.len() == 0 || meta.len() > MAX_PICTURE_SIZE {
        bail!(
            "umbra profile set --picture: {} must be a non-empty file of at most {} bytes (resize it)",
            path.display(),
            MAX_PICTURE_SIZE
        );
    }
    Ok(())
}

fn profile_json(m: &Messenger) -> anyhow::Result<Value> {
    Ok(json!({
        "session_id": m.session_id().to_hex(),
        "display_name": m.display_name()?,
        // The URL only: the key that decrypts the picture stays in the profile.
        "picture": m.profile_picture()?.map(|p| json!({ "url": p.url })),
    }))
}

fn mark_json(mark: Option<SyncMark>) -> Value {
    mark.map_or(Value::Null, |s| json!({ "seqno": s.seqno, "at": s.at_ms }))
}

fn mark_text(mark: Option<SyncMark>) -> String {
    mark.map_or_else(
        || "never".to_owned(),
        |s| format!("seqno {} at {}", s.seqno, render::timestamp(s.at_ms)),
    )
}

fn status_json(s: &ConfigStatus) -> Value {
    json!({
        "config": s.kind.domain(),
        "namespace": s.kind.namespace(),
        "seqno": s.seqno,
        "needs_push": s.needs_push,
        "pushed": mark_json(s.pushed),
        "pulled": mark_json(s.pulled),
    })
}

/// `umbra devices`: what this device holds of each synced config, and what it last pushed
/// and pulled.
pub(crate) fn devices(g: &Globals) -> anyhow::Result<()> {
    let m = context::offline(g)?;
    let list = m.config_status()?;
    if g.json {
        print_json(&Value::Array(list.iter().map(status_json).collect()));
        return Ok(());
    }
    for s in &list {
        let pending = if s.needs_push {
            "  (changes to push)"
        } else {
            ""
        };
        println!(
            "{:<18} seqno {:<4} pushed {}, pulled {}{pending}",
            s.kind.domain(),
            s.seqno,
            mark_text(s.pushed),
            mark_text(s.pulled)
        );
    }
    Ok(())
}
