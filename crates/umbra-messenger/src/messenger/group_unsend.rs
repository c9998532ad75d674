//! Deleting group messages for everyone (`messages.md` §5.2, groups v2): a
//! `GroupUpdateDeleteMemberContentMessage` in the group's messages namespace.
//!
//! A member deletes its own messages with an unsigned one: receivers delete only the listed
//! hashes written by its sender, and the swarm keeps the bytes until they expire (a member's
//! subaccount cannot delete). An admin may delete anyone's: it signs the message with the
//! group key over `"DELETE_CONTENT" ‖ timestamp ‖ ids… ‖ hashes…` and deletes the hashes
//! from the group swarm too, so a member restoring later does not even fetch them.

use umbra_crypto::{MessageHash, Redacted, SessionId, Signature};
use umbra_report::ErrorExt as _;
use umbra_wire::{GroupUpdateDeleteMemberContentMessage, GroupUpdateMessage};

use super::db;
use super::groups::{Held, group_content};
use super::{Event, MessageStatus, Messenger, MessengerError};

/// The most hashes and member ids one deletion is acted on for (a stored group message is
/// at most 76 800 bytes, so more would only come from a sender padding it out).
const MAX_DELETED: usize = 1_000;

/// What an admin signs: `"DELETE_CONTENT" ‖ timestamp ‖ ids… ‖ hashes…` (`messages.md` §4).
fn delete_content_signed(sent_ms: u64, ids: &[String], hashes: &[String]) -> Vec<u8> {
    let mut out = format!("DELETE_CONTENT{sent_ms}").into_bytes();
    for s in ids.iter().chain(hashes) {
        out.extend_from_slice(s.as_bytes());
    }
    out
}

impl Messenger {
    /// Deletes the message stored under `hash` in `group` for everyone: ours, or anyone's
    /// when we are an admin (which also deletes it from the group swarm).
    ///
    /// # Errors
    /// [`MessengerError::NoSuchMessage`] when the group has no message with that hash,
    /// [`MessengerError::NotOwnMessage`] for someone else's message without admin rights,
    /// [`MessengerError::StillSending`] for one of ours not acknowledged yet, and the
    /// group's and network's errors.
    pub async fn unsend_group_message(
        &self,
        group: &str,
        hash: &MessageHash,
    ) -> Result<(), MessengerError> {
        let what = "deleting a group message for everyone";
        let h = self.writable_group(group, what)?;
        let message = db::group_message_by_hash(&self.db(), &h.row.id, hash)
            .map_err(MessengerError::db(what))?
            .ok_or(MessengerError::NoSuchMessage(what))?;
        if message.author != self.me && h.admin.is_none() {
            return Err(MessengerError::NotOwnMessage);
        }
        if message.status == MessageStatus::Queued {
            return Err(MessengerError::StillSending);
        }
        let sent_ms = self.now();
        let hashes = vec![hash.to_string()];
        let admin_signature = h.admin.as_ref().map(|admin| {
            admin
                .sign(&delete_content_signed(sent_ms, &[], &hashes))
                .to_bytes()
                .to_vec()
        });
        let content = group_content(GroupUpdateMessage {
            delete_member_content: Some(GroupUpdateDeleteMemberContentMessage {
                member_session_ids: Vec::new(),
                message_hashes: hashes,
                admin_signature,
            }),
            ..GroupUpdateMessage::default()
        });
        self.send_group_content(&h, &content, sent_ms).await?;
        if let Some(admin) = &h.admin
            && let Err(e) = self.swarm.group_delete(admin, &[*hash]).await
        {
            // Members already drop it; the swarm forgets it at its expiry.
            tracing::debug!(error = %e.report(), "deleting a group message from the swarm failed");
        }
        db::delete_group_messages(&self.db(), &h.row.id, &[*hash], &[], None)
            .map_err(MessengerError::db(what))?;
        Ok(())
    }

    /// Applies a deletion that `sender` sent to the group at `sent_ms`: signed by the group
    /// key, anything it lists; unsigned, only the sender's own messages among its hashes.
    /// What does not verify is logged and dropped.
    pub(super) fn apply_group_deletion(
        &self,
        conn: &rusqlite_cipher::Connection,
        h: &Held,
        sender: &SessionId,
        sent_ms: u64,
        deletion: &GroupUpdateDeleteMemberContentMessage,
    ) -> Result<Vec<Event>, MessengerError> {
        let what = "applying a group deletion";
        let ids = &deletion.member_session_ids;
        let listed = &deletion.message_hashes;
        if ids.len() + listed.len() > MAX_DELETED {
            tracing::warn!(from = %Redacted::new(sender), "ignoring a group deletion of too many messages");
            return Ok(Vec::new());
        }
        let hashes: Vec<MessageHash> = listed.iter().filter_map(|s| s.parse().ok()).collect();
        let gone = match &deletion.admin_signature {
            Some(sig) => {
                let signed = delete_content_signed(sent_ms, ids, listed);
                let valid = Signature::from_slice(sig)
                    .ok()
                    .is_some_and(|sig| h.public.verify(&signed, &sig));
                if !valid {
                    tracing::warn!(from = %Redacted::new(sender), "ignoring a group deletion whose admin signature does not verify");
                    return Ok(Vec::new());
                }
                let authors: Vec<SessionId> = ids.iter().filter_map(|s| s.parse().ok()).collect();
                db::delete_group_messages(conn, &h.row.id, &hashes, &authors, None)
            }
            None => db::delete_group_messages(conn, &h.row.id, &hashes, &[], Some(sender)),
        }
        .map_err(MessengerError::db(what))?;
        Ok(gone
            .into_iter()
            .map(|m| Event::GroupUnsent {
                group: m.group,
                author: m.author,
                sent_ms: m.sent_ms,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_text_is_the_prefix_then_time_ids_and_hashes() {
        let signed = delete_content_signed(
            1_700_000_000_123,
            &["05aa".into(), "05bb".into()],
            &["h1".into()],
        );
        assert_eq!(signed, b"DELETE_CONTENT170000000012305aa05bbh1");
    }
}
