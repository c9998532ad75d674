//! Sending: encoding into the outbox (inside the caller's transaction) and `send_text`.

use rusqlite_cipher::Transaction;
use umbra_crypto::{AccountId, MessageHash, Redacted, SessionId};
use umbra_wire::{Attachment, Content, DataMessage, encode_one_to_one};

use super::attachments::save_sent_attachments;
use super::db::{self, NewStore};
use super::model::MessageId;
use super::{
    DEFAULT_TTL_MS, Disappearing, MAX_BODY_CHARS, MAX_OUTBOX, Message, MessageStatus, Messenger,
    MessengerError, lock, ttl_for, with_mode,
};

impl Messenger {
    /// Encodes `content` for `to` and adds it to the outbox (inside the caller's transaction).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn queue_store(
        &self,
        tx: &Transaction<'_>,
        to: &SessionId,
        content: &Content,
        sent_ms: u64,
        ttl_ms: u64,
        kind: &str,
        message_id: Option<i64>,
        is_primary: bool,
    ) -> Result<MessageHash, MessengerError> {
        let data = {
            let mut rng = lock(&self.rng);
            encode_one_to_one(&self.identity, to, content, sent_ms, &mut **rng)
                .map_err(MessengerError::Encoding)?
        };
        let hash = umbra_crypto::hash::message_hash(&AccountId::from(*to), 0, &data);
        db::queue_store(
            tx,
            &NewStore {
                kind,
                owner: to,
                data: &data,
                hash: &hash,
                timestamp_ms: sent_ms,
                ttl_ms,
                message_id,
                is_primary,
            },
        )
        .map_err(MessengerError::db("adding to the outbox"))?;
        Ok(hash)
    }

    /// Adds a delete ([`db::OP_DELETE`]) or shorten-expiry ([`db::OP_EXPIRE`]) of our own
    /// swarm's `hashes` to the outbox (inside the caller's transaction).
    pub(super) fn queue_own_swarm_op(
        tx: &Transaction<'_>,
        op: i64,
        hashes: &[MessageHash],
        expiry_ms: u64,
        now: u64,
    ) -> Result<(), MessengerError> {
        if hashes.is_empty() {
            return Ok(());
        }
        db::queue_own_swarm_op(tx, op, hashes, expiry_ms, now)
            .map_err(MessengerError::db("adding to the outbox"))
    }

    /// A sent time for a new message of ours: now, or later if (us, now) already names one.
    fn fresh_sent_ms(&self, tx: &Transaction<'_>) -> Result<u64, MessengerError> {
        let mut t = self.now();
        loop {
            let taken = db::sent_time_taken(tx, &self.me, t)
                .map_err(MessengerError::db("choosing a sent time"))?;
            if !taken {
                return Ok(t);
            }
            t += 1;
        }
    }

    /// Queues `content` for `to` and, unless `to` is ourselves, a copy for our own swarm built
    /// by `sync` (for our other devices). Both in the caller's transaction.
    pub(super) fn queue_control(
        &self,
        tx: &Transaction<'_>,
        to: &SessionId,
        content: &Content,
        sync: Option<&Content>,
    ) -> Result<(), MessengerError> {
        let now = self.now();
        self.queue_store(tx, to, content, now, DEFAULT_TTL_MS, "control", None, false)?;
        if let Some(sync) = sync
            && *to != self.me
        {
            self.queue_store(
                tx,
                &self.me,
                sync,
                now,
                DEFAULT_TTL_MS,
                "control",
                None,
                false,
            )?;
        }
        Ok(())
    }

    /// Sends a text message: saved and queued first, then one delivery attempt. Returns the
    /// message as saved (status [`MessageStatus::Sent`] if the swarm acknowledged it,
    /// [`MessageStatus::Queued`] if it stays in the outbox for a retry).
    pub async fn send_text(&self, to: &SessionId, text: &str) -> Result<Message, MessengerError> {
        let chars = text.chars().count();
        if text.trim().is_empty() {
            return Err(MessengerError::EmptyMessage);
        }
        if chars > MAX_BODY_CHARS {
            return Err(MessengerError::MessageTooLong {
                got: chars,
                max: MAX_BODY_CHARS,
            });
        }
        let (sent_ms, _) = self.save_and_queue(to, text, &[], None)?;
        tracing::debug!(to = %Redacted::new(to), sent_ms, "message queued");
        // Delivery failures stay in the outbox (flush_outbox handles them per entry); an error
        // here is the database that could not be written, which the user must see.
        self.flush_outbox().await?;
        db::message_by(&self.db(), &self.me, sent_ms)
            .map_err(MessengerError::db("reading the sent message"))
    }

    /// Saves an outgoing message (text `text`, possibly empty, and `attachments`, saved as
    /// [`super::AttachmentState::Sent`] with the local file `local_path`) and queues it for `to` and
    /// our own swarm, in one transaction. Returns its sent time and row id.
    pub(super) fn save_and_queue(
        &self,
        to: &SessionId,
        text: &str,
        attachments: &[Attachment],
        local_path: Option<&str>,
    ) -> Result<(u64, i64), MessengerError> {
        let what = "saving an outgoing message";
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        let queued = db::outbox_len(&tx).map_err(MessengerError::db(what))?;
        if queued >= MAX_OUTBOX {
            return Err(MessengerError::OutboxFull { limit: MAX_OUTBOX });
        }
        db::ensure_contact(&tx, to).map_err(MessengerError::db(what))?;
        let contact = db::contact(&tx, to)
            .map_err(MessengerError::db(what))?
            .ok_or(MessengerError::NoSuchMessage(what))?;
        if contact.blocked {
            return Err(MessengerError::Blocked("sending a message"));
        }
        let mode = contact.disappearing;
        let sent_ms = self.fresh_sent_ms(&tx)?;
        let (profile, profile_key) = self.profile_proto(&tx)?;
        let data_message = DataMessage {
            body: (!text.is_empty()).then(|| text.to_string()),
            attachments: attachments.iter().map(Attachment::to_pointer).collect(),
            profile,
            profile_key,
            ..DataMessage::default()
        };
        let content = with_mode(
            Content {
                data_message: Some(data_message.clone()),
                ..Content::default()
            },
            mode,
        );
        let sync = with_mode(
            Content {
                data_message: Some(DataMessage {
                    sync_target: Some(to.to_hex()),
                    ..data_message
                }),
                ..Content::default()
            },
            mode,
        );
        let expires_at = match mode {
            Disappearing::Off => None,
            Disappearing::AfterSend { seconds } | Disappearing::AfterRead { seconds } => {
                Some(sent_ms + u64::from(seconds) * 1000)
            }
        };
        db::approve(&tx, to).map_err(MessengerError::db(what))?;
        let id = db::insert_message(
            &tx,
            &Message {
                conversation: *to,
                author: self.me,
                sent_ms,
                body: text.to_string(),
                outgoing: true,
                status: MessageStatus::Queued,
                received_ms: sent_ms,
                read_ms: Some(sent_ms),
                read_by_peer: false,
                disappearing: mode,
                expires_at_ms: expires_at,
                hash: None,
            },
        )
        .map_err(MessengerError::db(what))?;
        let sync_hash = if *to == self.me {
            // A note to self: the one copy is the sync copy.
            self.queue_store(
                &tx,
                &self.me,
                &sync,
                sent_ms,
                ttl_for(mode, true),
                "message",
                Some(id),
                true,
            )?
        } else {
            self.queue_store(
                &tx,
                to,
                &content,
                sent_ms,
                ttl_for(mode, false),
                "message",
                Some(id),
                true,
            )?;
            self.queue_store(
                &tx,
                &self.me,
                &sync,
                sent_ms,
                ttl_for(mode, true),
                "sync",
                Some(id),
                false,
            )?
        };
        db::set_message_hash(&tx, id, &sync_hash).map_err(MessengerError::db(what))?;
        save_sent_attachments(&tx, MessageId::Direct(id), attachments, local_path)
            .map_err(MessengerError::db(what))?;
        tx.commit().map_err(MessengerError::db(what))?;
        Ok((sent_ms, id))
    }
}
