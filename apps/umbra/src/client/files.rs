//! The file commands: `umbra send ID --file PATH [--caption TEXT]`, `umbra attachments ID` and
//! `umbra download MESSAGE_ID [--out PATH]`. The messenger encrypts, uploads, checks and
//! decrypts; this prints what it did, with a progress bar on a terminal.

use anyhow::bail;
use serde_json::{Value, json};
use umbra_messenger::{AttachmentInfo, MessageStatus};

use super::context::{self, resolve};
use super::progress::{Reporter, human};
use super::render::{self, message_json, print_json};
use super::{DownloadArgs, SendArgs, WhoArgs};

/// `umbra send ID --file PATH [--caption TEXT]`.
pub(crate) async fn send_file(a: &SendArgs) -> anyhow::Result<()> {
    let Some(path) = &a.file else {
        bail!("sending a file: no --file given");
    };
    let online = context::online(&a.g)?;
    let m = &online.messenger;
    let to = resolve(m, &a.to)?;
    let server = online.file_server()?;
    // Uploads go through onion paths: without the network there is nothing to do yet.
    online.connect_or_fail().await?;
    let reporter = Reporter::new(a.g.json);
    let sent = m
        .send_file(
            &to,
            path,
            a.caption.as_deref(),
            &server,
            reporter.callback(),
        )
        .await;
    reporter.finish();
    let (msg, message_id) = sent?;
    let size = std::fs::metadata(path).map(|md| md.len()).unwrap_or(0);
    if a.g.json {
        let mut v = message_json(&msg, false);
        if let Value::Object(o) = &mut v {
            o.insert("message_id".into(), json!(message_id));
            o.insert("size".into(), json!(size));
        }
        print_json(&v);
        return Ok(());
    }
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    match msg.status {
        MessageStatus::Sent => println!(
            "sent {name} ({}) to {} (message {message_id}, timestamp {})",
            human(size),
            render::name_of(m, &to),
            msg.sent_ms
        ),
        MessageStatus::Failed => bail!("sending the file's message: the swarm refused it"),
        _ => println!(
            "uploaded {name}; its message is queued (message {message_id}, timestamp {}): `umbra receive` will retry it",
            msg.sent_ms
        ),
    }
    Ok(())
}

/// The JSON object of an attachment.
fn attachment_json(a: &AttachmentInfo) -> Value {
    json!({
        "message_id": a.message_id,
        "index": a.index,
        "name": a.file_name,
        "content_type": a.content_type,
        "size": a.size,
        "width": a.width,
        "height": a.height,
        "caption": a.caption,
        "state": a.state.as_str(),
        "path": a.path.as_ref().map(|p| p.display().to_string()),
        "from": a.message.author.to_hex(),
        "outgoing": a.message.outgoing,
        "timestamp": a.message.sent_ms,
    })
}

/// `umbra attachments ID`.
pub(crate) fn attachments(a: &WhoArgs) -> anyhow::Result<()> {
    let m = context::offline(&a.g)?;
    let with = resolve(&m, &a.who)?;
    let list = m.attachments(&with)?;
    if a.g.json {
        print_json(&Value::Array(list.iter().map(attachment_json).collect()));
        return Ok(());
    }
    if list.is_empty() {
        println!("no files with {}", render::name_of(&m, &with));
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
            render::name_of(&m, &f.message.author),
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
            "message_id": a.message_id,
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
