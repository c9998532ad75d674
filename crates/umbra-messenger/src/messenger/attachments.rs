//! Attachments as the messenger keeps them: saved with their message (sent or received), and
//! listed per conversation. Sending is in `upload`, downloading in `download`, the server's
//! API in `files`.

use std::path::PathBuf;

use umbra_crypto::SessionId;

use super::db::{self, AttachmentRow};
use super::model::{AttachmentInfo, AttachmentState, Message};
use super::{Messenger, MessengerError};

impl Messenger {
    /// The attachments of the conversation with `with`, oldest first.
    pub fn attachments(&self, with: &SessionId) -> Result<Vec<AttachmentInfo>, MessengerError> {
        let rows = db::conversation_attachments(&self.db(), with)
            .map_err(MessengerError::db("listing attachments"))?;
        Ok(rows.into_iter().map(|(r, m)| info(r, m)).collect())
    }

    /// The attachments of message `message_id` (empty when it has none or does not exist).
    pub fn message_attachments(
        &self,
        message_id: i64,
    ) -> Result<Vec<AttachmentRowView>, MessengerError> {
        let rows = db::message_attachments(&self.db(), message_id)
            .map_err(MessengerError::db("reading attachments"))?;
        Ok(rows
            .into_iter()
            .map(|r| AttachmentRowView {
                file_name: r.attachment.file_name.clone(),
                size: u64::from(r.attachment.size),
                state: AttachmentState::from_i64(r.state),
            })
            .collect())
    }
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
}

fn info(r: AttachmentRow, message: Message) -> AttachmentInfo {
    let a = &r.attachment;
    AttachmentInfo {
        message_id: r.message_id,
        index: u32::try_from(r.idx).unwrap_or(u32::MAX),
        file_name: a.file_name.clone(),
        content_type: a.content_type.clone(),
        size: u64::from(a.size),
        width: a.width,
        height: a.height,
        caption: a
            .caption
            .clone()
            .or_else(|| (!message.body.is_empty()).then(|| message.body.clone())),
        state: AttachmentState::from_i64(r.state),
        path: r.path.map(PathBuf::from),
        message,
    }
}
