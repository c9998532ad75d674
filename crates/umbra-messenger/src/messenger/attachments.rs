//! Attachments as the messenger keeps them: saved with their message (sent or received), and
//! listed per conversation. Sending is in `upload`, downloading in `download`, the server's
//! API in `files`.

use std::path::PathBuf;

use umbra_crypto::SessionId;
use umbra_wire::{Attachment, AttachmentPointer};

use super::db::{self, AttachmentRow};
use super::model::{AttachmentInfo, AttachmentState, MessageId};
use super::{Messenger, MessengerError, groups};

impl Messenger {
    /// The attachments of the conversation with `with`, oldest first.
    pub fn attachments(&self, with: &SessionId) -> Result<Vec<AttachmentInfo>, MessengerError> {
        let rows = db::conversation_attachments(&self.db(), with)
            .map_err(MessengerError::db("listing attachments"))?;
        Ok(rows
            .into_iter()
            .map(|(r, m)| info(r, m.author, m.sent_ms, m.outgoing, &m.body))
            .collect())
    }

    /// The attachments of group `group`'s messages (not expired), oldest first.
    ///
    /// # Errors
    /// [`MessengerError::InvalidGroupId`] for text that is not a group id, and database errors.
    pub fn group_attachments(&self, group: &str) -> Result<Vec<AttachmentInfo>, MessengerError> {
        let id = groups::parse_group_id(group)?.id().to_hex();
        let rows = db::group_attachments(&self.db(), &id, self.now())
            .map_err(MessengerError::db("listing attachments"))?;
        Ok(rows
            .into_iter()
            .map(|(r, m)| info(r, m.author, m.sent_ms, m.outgoing, &m.body))
            .collect())
    }

    /// The attachments of message `message_id` (empty when it has none or does not exist).
    pub fn message_attachments(
        &self,
        message_id: MessageId,
    ) -> Result<Vec<AttachmentRowView>, MessengerError> {
        let rows = db::message_attachments(&self.db(), message_id)
            .map_err(MessengerError::db("reading attachments"))?;
        Ok(rows
            .into_iter()
            .map(|r| AttachmentRowView {
                file_name: r.attachment.file_name.clone(),
                size: u64::from(r.attachment.size),
                state: AttachmentState::from_i64(r.state),
                path: r.path.map(PathBuf::from),
            })
            .collect())
    }
}

/// Attachments saved per message at most (Session clients send up to 32).
const MAX_ATTACHMENTS_PER_MESSAGE: usize = 32;

/// Saves the attachments of a message just received (one-to-one or group): available to
/// download, or sent when `outgoing` (a copy of our own from another device, which has no
/// local file here). A pointer that fails its checks cannot be downloaded and is skipped; the
/// message still shows.
pub(super) fn save_received_attachments(
    conn: &rusqlite_cipher::Connection,
    message_id: MessageId,
    attachments: &[AttachmentPointer],
    outgoing: bool,
) -> rusqlite_cipher::Result<()> {
    let state = if outgoing {
        AttachmentState::Sent
    } else {
        AttachmentState::Available
    };
    let valid = attachments
        .iter()
        .filter_map(|p| match Attachment::from_pointer(p) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::debug!(error = %e, "ignoring an attachment pointer");
                None
            }
        })
        .take(MAX_ATTACHMENTS_PER_MESSAGE);
    for (idx, a) in (0i64..).zip(valid) {
        db::insert_attachment(conn, message_id, idx, &a, state.to_i64(), None)?;
    }
    Ok(())
}

/// Saves the attachments of a message of ours as sent, our copy of the file at `local_path`.
pub(super) fn save_sent_attachments(
    conn: &rusqlite_cipher::Connection,
    message_id: MessageId,
    attachments: &[Attachment],
    local_path: Option<&str>,
) -> rusqlite_cipher::Result<()> {
    for (idx, a) in (0i64..).zip(attachments) {
        let state = AttachmentState::Sent.to_i64();
        db::insert_attachment(conn, message_id, idx, a, state, local_path)?;
    }
    Ok(())
}

/// What a message's attachment is, without the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRowView {
    /// The file's name.
    pub file_name: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// Where it stands.
    pub state: AttachmentState,
    /// The local file, once there is one (ours as sent, or downloaded).
    pub path: Option<PathBuf>,
}

fn info(
    r: AttachmentRow,
    author: SessionId,
    sent_ms: u64,
    outgoing: bool,
    body: &str,
) -> AttachmentInfo {
    let a = &r.attachment;
    AttachmentInfo {
        message_id: r.message_id,
        index: u32::try_from(r.idx).unwrap_or(u32::MAX),
        author,
        sent_ms,
        outgoing,
        file_name: a.file_name.clone(),
        content_type: a.content_type.clone(),
        size: u64::from(a.size),
        width: a.width,
        height: a.height,
        caption: a
            .caption
            .clone()
            .or_else(|| (!body.is_empty()).then(|| body.to_owned())),
        state: AttachmentState::from_i64(r.state),
        path: r.path.map(PathBuf::from),
    }
}
