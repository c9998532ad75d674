//! The file commands: `umbra send ID --file PATH [--caption TEXT]`, `umbra attachments ID` and
//! `umbra download MESSAGE_ID [--out PATH]`, for one-to-one chats and groups alike (a group
//! message's id is written `g12`). The messenger encrypts, uploads, checks and
//! decrypts; this prints what it did, with a progress bar on a terminal.

use anyhow::bail;
use serde_json::{Value, json};
use umbra_messenger::{AttachmentInfo, MessageId, MessageStatus};

use super::context::{self, resolve};
use super::groups::{self, group_message_json};
use super::progress::{Reporter, human};
use super::render::{self, message_json, print_json};
use super::{DownloadArgs, SendArgs, WhoArgs};

/// `umbra send ID --file PATH [--caption TEXT]` (ID a Session ID, a contact or a group).
pub(crate) async fn send_file(a: &SendArgs) -> anyhow::Result<()> {
    let Some(path) = &a.file else {
        bail!("sending a file: no --file given");
    };
    let online = context::online(&a.g)?;
    let m = &online.messenger;
    let group = groups::is_group(&a.to);
    // A wrong recipient is refused before the network is touched.
    let to = if group {
        None
    } else {
        Some(resolve(m, &a.to)?)
    };
    let server = online.file_server()?;
    // Uploads go through onion paths: without the network there is nothing to do yet.
    online.connect_or_fail().await?;
    let reporter = Reporter::new(a.g.json);
    let caption = a.caption.as_deref();
    let sent = match &to {
        Some(to) => m
            .send_file(to, path, caption, &server, reporter.callback())
            .await
            .map(|(msg, id)| (message_json(&msg, false), msg.status, msg.sent_ms, id)),
        None => m
            .send_group_file(&a.to, path, caption, &server, reporter.callback())
            .await
            .map(|(msg, id)| (group_message_json(&msg), msg.status, msg.sent_ms, id)),
    };
    reporter.finish();
    let (mut v, status, sent_ms, message_id) = sent?;
    let size = std::fs::metadata(path).map(|md| md.len()).unwrap_or(0);
    if a.g.json {
        if let Value::Object(o) = &mut v {
            o.insert("message_id".into(), message_id_json(message_id));
            o.insert("size".into(), json!(size));
        }
        print_json(&v);
        return Ok(());
    }
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let whom = match &to {
        Some(to) => render::name_of(m, to),
        None => format!("the group {}", m.group(&a.to)?.name),
    };
    match status {
        MessageStatus::Sent => println!(
            "sent {name} ({}) to {whom} (message {message_id}, timestamp {sent_ms})",
            human(size),
        ),
        MessageStatus::Failed => bail!("sending the file's message: the swarm refused it"),
        _ => println!(
            "uploaded {name}; its message is queued (message {message_id}, timestamp {sent_ms}): `umbra receive` will retry it",
        ),
    }
    Ok(())
}

/// A message id in JSON: a number for a one-to-one message (as before groups had files), a
/// string `g12` for a group message; `umbra download` takes either as written.
fn message_id_json(id: MessageId) -> Value {
    match id {
        MessageId::Direct(n) => json!(n),
        MessageId::Group(_) => json!(id.to_string()),
    }
}

/// The JSON object of an attachment.
fn attachment_json(a: &AttachmentInfo) -> Value {
    json!({
        "message_id": message_id_json(a.message_id),
        "index": a.index,
        "name": a.file_name,
        "content_type": a.content_type,
        "size": a.size,
        "width": a.width,
        "height": a.height,
        "caption": a.caption,
        "state": a.state.as_str(),
        "path": a.path.as_ref().map(|p| p.display().to_string()),
        "from": a.author.to_hex(),
        "outgoing": a.outgoing,
        "timestamp": a.sent_ms,
    })
}

/// `umbra attachments ID` (a Session ID, a contact or a group).
pub(crate) fn attachments(a: &WhoArgs) -> anyhow::Result<()> {
    let m = context::offline(&a.g)?;
    let (list, with) = if groups::is_group(&a.who) {
        let name = m.group(&a.who)?.name;
        (m.group_attachments(&a.who)?, format!("the group {name}"))
    } else {
        let with = resolve(&m, &a.who)?;
        (m.attachments(&with)?, render::name_of(&m, &with))
    };
    if a.g.json {
        print_json(&Value::Array(list.iter().map(attachment_json).collect()));
        return Ok(());
    }
    if list.is_empty() {
        println!("no files with {with}");
        return Ok(());
    }
    println!(
        "{:>8}  {:>4}  {:<10}  {:>9}  {:<8}  NAME",
        "MESSAGE", "FILE", "STATE", "SIZE", "FROM"
    );
    for f in &list {
        println!(
            "{:>8}  {:>4}  {:<10}  {:>9}  {:<8}  {}",
            f.message_id,
            f.index + 1,
            f.state.as_str(),
            human(f.size),
            render::name_of(&m, &f.author),
            f.file_name.as_deref().unwrap_or("(no name)")
        );
    }
    Ok(())
}

/// `umbra download MESSAGE_ID [--file N] [--out PATH]`.
pub(crate) async fn download(a: &DownloadArgs) -> anyhow::Result<()> {
    let online = context::online(&a.g)?;
    let m = &online.messenger;
    // Refuse an unknown message or file before touching the network.
    let files = m.message_attachments(a.message_id)?.len();
    if files == 0 {
        return Err(umbra_messenger::MessengerError::NoAttachment(a.message_id).into());
    }
    let index = a.file - 1;
    if usize::try_from(index).map_or(true, |i| i >= files) {
        anyhow::bail!(
            "umbra download: message {} has {files} file(s); --file {} is not one of them",
            a.message_id,
            a.file
        );
    }
    let server = online.file_server()?;
    online.connect_or_fail().await?;
    let reporter = Reporter::new(a.g.json);
    let saved = m
        .download_attachment(
            a.message_id,
            index,
            a.out.as_deref(),
            &server,
            reporter.callback(),
        )
        .await;
    reporter.finish();
    let saved = saved?;
    let size = std::fs::metadata(&saved).map(|md| md.len()).unwrap_or(0);
    if a.g.json {
        print_json(&json!({
            "message_id": message_id_json(a.message_id),
            "path": saved.display().to_string(),
            "size": size,
        }));
    } else {
        println!(
            "saved {} ({}), size and digest checked",
            saved.display(),
            human(size)
        );
    }
    Ok(())
}
