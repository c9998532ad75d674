//! Ingesting a retrieved page: dedup, decrypt and verify, then apply what each message means
//! (`messages.md` §5) — a message, a request, a receipt, typing, an unsend, a request
//! response, a timer change — in one transaction with the cursor.

use rusqlite_cipher::Transaction;
use umbra_crypto::{MessageHash, Redacted, SessionId};
use umbra_report::ErrorExt as _;
use umbra_wire::data_message::FLAG_EXPIRATION_TIMER_UPDATE;
use umbra_wire::{
    AttachmentPointer, Content, DataMessage, LokiProfile, decode_one_to_one, receipt_message,
    typing_message,
};

use super::attachments::save_received_attachments;
use super::db::{self, OP_DELETE};
use super::model::MessageId;
use super::{
    DEFAULT_TTL_MS, Disappearing, Event, Message, MessageStatus, Messenger, MessengerError,
    SEEN_GRACE_MS, StoredMessage,
};

impl Messenger {
    /// Applies a retrieved page: for each message dedup, decrypt, verify, save; then move the
    /// cursor past the page — one transaction for the whole page (one disk flush instead of one
    /// per message: a restore of thousands of messages is bound by those flushes).
    pub(super) fn ingest(
        &self,
        node: &str,
        page: &[StoredMessage],
    ) -> Result<Vec<Event>, MessengerError> {
        let Some(last) = page.last() else {
            return Ok(Vec::new());
        };
        let what = "saving a received message";
        let now = self.now();
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        let mut events = Vec::new();
        for stored in page {
            if db::is_seen(&tx, &stored.hash).map_err(MessengerError::db(what))? {
                continue;
            }
            db::mark_seen(&tx, &stored.hash, stored.expiry_ms.max(now) + SEEN_GRACE_MS)
                .map_err(MessengerError::db(what))?;
            match decode_one_to_one(&self.identity, &stored.data) {
                Ok(decoded) => events.extend(self.apply(
                    &tx,
                    decoded.sender,
                    decoded.sent_ms,
                    decoded.content,
                    stored,
                )?),
                Err(e) => {
                    tracing::debug!(error = %e.report(), "dropping a stored message that does not open");
                }
            }
        }
        db::set_cursor(&tx, node, &last.hash).map_err(MessengerError::db(what))?;
        tx.commit().map_err(MessengerError::db(what))?;
        Ok(events)
    }

    /// Saves a visible message unless it is known or was unsent; returns it if new.
    #[allow(clippy::too_many_arguments)]
    fn insert_message(
        &self,
        tx: &Transaction<'_>,
        conversation: &SessionId,
        author: &SessionId,
        sent_ms: u64,
        body: &str,
        attachments: &[AttachmentPointer],
        mode: Disappearing,
        hash: &MessageHash,
    ) -> Result<Option<Message>, MessengerError> {
        let what = "saving a received message";
        let now = self.now();
        let outgoing = *author == self.me;
        let expires_at = match mode {
            Disappearing::AfterSend { seconds } => Some(sent_ms + u64::from(seconds) * 1000),
            Disappearing::AfterRead { seconds } if outgoing => {
                Some(sent_ms + u64::from(seconds) * 1000)
            }
            _ => None,
        };
        if expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        if db::is_tombstoned(tx, author, sent_ms).map_err(MessengerError::db(what))? {
            return Ok(None);
        }
        let message = Message {
            conversation: *conversation,
            author: *author,
            sent_ms,
            body: body.to_string(),
            outgoing,
            status: if outgoing {
                MessageStatus::Sent
            } else {
                MessageStatus::Received
            },
            received_ms: now,
            read_ms: outgoing.then_some(now),
            read_by_peer: false,
            disappearing: mode,
            expires_at_ms: expires_at,
            hash: Some(*hash),
        };
        let new = db::insert_message_if_new(tx, &message).map_err(MessengerError::db(what))?;
        if new && !outgoing {
            self.sync_unhide(tx, conversation, sent_ms)?;
        }
        if new {
            let id = MessageId::Direct(tx.last_insert_rowid());
            save_received_attachments(tx, id, attachments, outgoing)
                .map_err(MessengerError::db(what))?;
        }
        Ok(new.then_some(message))
    }

    /// Keeps the name and picture a contact sent with a message, unless we have a newer
    /// profile of theirs. The picture (URL and `profile_key`) goes into the contacts config,
    /// where our other devices find it too; a newer profile without one removes it.
    fn update_profile(
        &self,
        tx: &Transaction<'_>,
        who: &SessionId,
        profile: Option<&LokiProfile>,
        profile_key: Option<&[u8]>,
    ) -> Result<(), MessengerError> {
        let Some(p) = profile else { return Ok(()) };
        let Some(name) = p.display_name.as_deref() else {
            return Ok(());
        };
        let updated = p.last_profile_update_seconds.unwrap_or(0);
        let newer = db::update_display_name(tx, who, name, updated)
            .map_err(MessengerError::db("saving a profile"))?;
        if !newer {
            return Ok(());
        }
        let picture = match (p.profile_picture.as_deref(), profile_key) {
            (Some(url), Some(key)) if !url.is_empty() => {
                let Ok(key) = <[u8; 32]>::try_from(key) else {
                    tracing::debug!("ignoring a profile picture with a key of the wrong size");
                    return Ok(());
                };
                Some(super::ProfilePicture {
                    url: url.to_owned(),
                    key,
                })
            }
            _ => None,
        };
        self.sync_note_contact_picture(tx, who, picture)
    }
    /// What a verified message means (`messages.md` §5), applied in the caller's transaction.
    fn apply(
        &self,
        tx: &Transaction<'_>,
        sender: SessionId,
        sent_ms: u64,
        content: Content,
        stored: &StoredMessage,
    ) -> Result<Vec<Event>, MessengerError> {
        let what = "saving a received message";
        let mut events = Vec::new();
        let mode = Disappearing::from_wire(content.expiration_type, content.expiration_timer);
        let now = self.now();

        if sender == self.me {
            // From another device of ours (or our own sync copy coming back).
            if let Some(dm) = &content.data_message
                && let Some(target) = dm
                    .sync_target
                    .as_deref()
                    .and_then(|t| t.parse::<SessionId>().ok())
            {
                db::ensure_contact(tx, &target)
                    .and_then(|()| db::approve(tx, &target))
                    .map_err(MessengerError::db(what))?;
                if dm.flags.unwrap_or(0) & FLAG_EXPIRATION_TIMER_UPDATE != 0 {
                    events.extend(self.apply_timer(tx, &target, mode)?);
                } else if let Some(body) = visible_body(dm)
                    && let Some(m) = self.insert_message(
                        tx,
                        &target,
                        &self.me,
                        sent_ms,
                        body,
                        &dm.attachments,
                        mode,
                        &stored.hash,
                    )?
                {
                    events.push(Event::Message {
                        message: m,
                        request: false,
                    });
                }
            }
            if let Some(un) = &content.unsend_request
                && un.author == self.me.to_hex()
            {
                events.extend(self.apply_unsend(tx, &self.me, un.timestamp, now)?);
            }
            return Ok(events);
        }

        let contact = db::contact(tx, &sender).map_err(MessengerError::db(what))?;
        if contact.as_ref().is_some_and(|c| c.blocked) {
            tracing::debug!(from = %Redacted::new(sender), "dropping a message from a blocked account");
            return Ok(events);
        }
        let approved = contact.as_ref().is_some_and(|c| c.approved);

        if let Some(update) = content
            .data_message
            .as_ref()
            .and_then(|d| d.group_update_message.as_ref())
        {
            // Invitations and promotions (`messages.md` §4); checked there.
            events.extend(self.apply_group_update(tx, &sender, sent_ms, update)?);
            return Ok(events);
        }

        if let Some(dm) = &content.data_message {
            db::ensure_contact(tx, &sender).map_err(MessengerError::db(what))?;
            self.update_profile(tx, &sender, dm.profile.as_ref(), dm.profile_key.as_deref())?;
            if dm.flags.unwrap_or(0) & FLAG_EXPIRATION_TIMER_UPDATE != 0 {
                events.extend(self.apply_timer(tx, &sender, mode)?);
            } else if let Some(body) = visible_body(dm) {
                if approved {
                    // They wrote back in an accepted conversation: they accept us too.
                    db::set_approved_me(tx, &sender).map_err(MessengerError::db(what))?;
                }
                if let Some(m) = self.insert_message(
                    tx,
                    &sender,
                    &sender,
                    sent_ms,
                    body,
                    &dm.attachments,
                    mode,
                    &stored.hash,
                )? {
                    tracing::debug!(from = %Redacted::new(sender), sent_ms, request = !approved, "message received");
                    events.push(Event::Message {
                        message: m,
                        request: !approved,
                    });
                }
            }
        }
        if let Some(r) = &content.receipt_message
            && r.r#type == receipt_message::Type::Read as i32
        {
            for ts in &r.timestamp {
                db::mark_read_by_peer(tx, &sender, &self.me, *ts)
                    .map_err(MessengerError::db(what))?;
            }
            events.push(Event::Read {
                by: sender,
                sent_ms: r.timestamp.clone(),
            });
        }
        if let Some(t) = &content.typing_message {
            events.push(Event::Typing {
                from: sender,
                started: t.action == typing_message::Action::Started as i32,
            });
        }
        if let Some(un) = &content.unsend_request {
            // Only the author may delete a message for everyone.
            if un.author == sender.to_hex() {
                events.extend(self.apply_unsend(tx, &sender, un.timestamp, now)?);
            } else {
                tracing::debug!("ignoring an unsend request for someone else's message");
            }
        }
        if let Some(resp) = &content.message_request_response
            && resp.is_approved
        {
            db::ensure_contact(tx, &sender).map_err(MessengerError::db(what))?;
            self.update_profile(
                tx,
                &sender,
                resp.profile.as_ref(),
                resp.profile_key.as_deref(),
            )?;
            db::set_approved_me(tx, &sender).map_err(MessengerError::db(what))?;
            events.push(Event::RequestAccepted { by: sender });
        }
        Ok(events)
    }

    fn apply_timer(
        &self,
        tx: &Transaction<'_>,
        conversation: &SessionId,
        mode: Disappearing,
    ) -> Result<Vec<Event>, MessengerError> {
        let changed = db::set_contact_timer(tx, conversation, mode)
            .map_err(MessengerError::db("saving a timer change"))?;
        Ok(if changed {
            vec![Event::DisappearingChanged {
                conversation: *conversation,
                setting: mode,
            }]
        } else {
            Vec::new()
        })
    }

    fn apply_unsend(
        &self,
        tx: &Transaction<'_>,
        author: &SessionId,
        sent_ms: u64,
        now: u64,
    ) -> Result<Vec<Event>, MessengerError> {
        let what = "applying an unsend request";
        let Some(found) =
            db::by_author_at(tx, author, sent_ms).map_err(MessengerError::db(what))?
        else {
            // Not (yet) here: the tombstone keeps a late copy out.
            db::insert_tombstone(tx, author, sent_ms, now + DEFAULT_TTL_MS + SEEN_GRACE_MS)
                .map_err(MessengerError::db(what))?;
            return Ok(Vec::new());
        };
        if let Some(h) = found.hash {
            // Our swarm's copy of it (a received copy, or our sync copy) goes too.
            Self::queue_own_swarm_op(tx, OP_DELETE, &[h], 0, now)?;
        }
        Self::forget_message(tx, found.id, author, sent_ms, now)?;
        Ok(vec![Event::Unsent {
            conversation: found.who,
            author: *author,
            sent_ms,
        }])
    }
}

/// The text of a data message that shows as a message: its body, or an empty one when it
/// carries attachments only. `None` for a message with neither.
pub(super) fn visible_body(dm: &DataMessage) -> Option<&str> {
    match dm.body.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => Some(b),
        None if !dm.attachments.is_empty() => Some(""),
        None => None,
    }
}
