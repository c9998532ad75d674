//! Control messages and their local effects: typing indicators, read receipts (and the
//! delete-after-read timers they start), unsend, disappearing-messages settings, and purging
//! what expired.

use rusqlite_cipher::Transaction;
use umbra_crypto::SessionId;
use umbra_wire::data_message::FLAG_EXPIRATION_TIMER_UPDATE;
use umbra_wire::{
    Content, DataMessage, ReceiptMessage, TypingMessage, UnsendRequest, encode_one_to_one,
    receipt_message, typing_message,
};

use super::db::{self, OP_DELETE, OP_EXPIRE};
use super::{
    DEFAULT_TTL_MS, Disappearing, MAX_TIMER_S, MIN_TIMER_S, Messenger, MessengerError,
    SEEN_GRACE_MS, TYPING_TTL_MS, lock,
};

impl Messenger {
    /// Sends a typing indicator (20 s TTL), if the setting is on and the conversation is
    /// accepted. Not queued: a late typing indicator is worthless. Returns whether it was sent.
    pub async fn send_typing(&self, to: &SessionId, started: bool) -> Result<bool, MessengerError> {
        let allowed = self.settings()?.typing_indicators
            && self.contact(to)?.is_some_and(|c| c.approved && !c.blocked);
        if !allowed || *to == self.me {
            return Ok(false);
        }
        let now = self.now();
        let action = if started {
            typing_message::Action::Started
        } else {
            typing_message::Action::Stopped
        };
        let content = Content {
            typing_message: Some(TypingMessage {
                timestamp: now,
                action: action as i32,
            }),
            ..Content::default()
        };
        let data = {
            let mut rng = lock(&self.rng);
            encode_one_to_one(&self.identity, to, &content, now, &mut **rng)
                .map_err(MessengerError::Encoding)?
        };
        self.swarm
            .store(to, 0, &data, now, TYPING_TTL_MS)
            .await
            .map_err(|source| MessengerError::Swarm {
                what: "sending a typing indicator",
                source,
            })?;
        Ok(true)
    }

    /// Marks the conversation's incoming messages read: starts their delete-after-read timers
    /// (locally, and by shortening the copies in our swarm), and sends a read receipt if the
    /// setting is on. Returns how many messages were marked.
    pub async fn mark_read(&self, with: &SessionId) -> Result<usize, MessengerError> {
        let receipts = self.settings()?.read_receipts;
        let now = self.now();
        let count = {
            let what = "marking messages read";
            let mut conn = self.db();
            let tx = conn.transaction().map_err(MessengerError::db(what))?;
            let unread = self.read_incoming(&tx, with, now)?;
            let approved = db::contact(&tx, with)
                .map_err(MessengerError::db(what))?
                .is_some_and(|c| c.approved && !c.blocked);
            if receipts && approved && !unread.is_empty() && *with != self.me {
                let content = Content {
                    receipt_message: Some(ReceiptMessage {
                        r#type: receipt_message::Type::Read as i32,
                        timestamp: unread.iter().map(|(_, m)| m.sent_ms).collect(),
                    }),
                    ..Content::default()
                };
                self.queue_control(&tx, with, &content, None)?;
            }
            tx.commit().map_err(MessengerError::db(what))?;
            unread.len()
        };
        if count > 0 {
            self.flush_outbox().await?;
        }
        Ok(count)
    }

    /// Marks every unread incoming message of the conversation with `with` read at `now`,
    /// starts their after-read timers and notes the read state for the other devices;
    /// returns them (row id, message).
    pub(super) fn read_incoming(
        &self,
        tx: &Transaction<'_>,
        with: &SessionId,
        now: u64,
    ) -> Result<Vec<(i64, super::Message)>, MessengerError> {
        let what = "marking messages read";
        let unread = db::unread_incoming(tx, with).map_err(MessengerError::db(what))?;
        for (id, m) in &unread {
            let expires_at = match m.disappearing {
                Disappearing::AfterRead { seconds } => Some(now + u64::from(seconds) * 1000),
                _ => m.expires_at_ms,
            };
            db::mark_message_read(tx, *id, now, expires_at).map_err(MessengerError::db(what))?;
            if let (Disappearing::AfterRead { .. }, Some(exp), Some(h)) =
                (m.disappearing, expires_at, &m.hash)
            {
                Self::queue_own_swarm_op(tx, OP_EXPIRE, std::slice::from_ref(h), exp, now)?;
            }
        }
        if let Some(newest) = unread.iter().map(|(_, m)| m.sent_ms).max() {
            self.sync_note_read(tx, with, newest)?;
        }
        Ok(unread)
    }

    /// Deletes one of our messages for everyone (`messages.md` §5.2): sends an
    /// `UnsendRequest` to the recipient and to our other devices, deletes our sync copy from
    /// our swarm, and deletes it locally.
    pub async fn unsend(&self, with: &SessionId, sent_ms: u64) -> Result<(), MessengerError> {
        {
            let what = "unsending a message";
            let mut conn = self.db();
            let tx = conn.transaction().map_err(MessengerError::db(what))?;
            let found = db::ours_at(&tx, with, sent_ms)
                .map_err(MessengerError::db(what))?
                .ok_or(MessengerError::NoSuchMessage(what))?;
            if found.who != self.me {
                return Err(MessengerError::NotOwnMessage);
            }
            let content = Content {
                unsend_request: Some(UnsendRequest {
                    timestamp: sent_ms,
                    author: self.me.to_hex(),
                }),
                ..Content::default()
            };
            self.queue_control(&tx, with, &content, Some(&content))?;
            let now = self.now();
            if let Some(h) = found.hash {
                Self::queue_own_swarm_op(&tx, OP_DELETE, &[h], 0, now)?;
            }
            Self::forget_message(&tx, found.id, &self.me, sent_ms, now)?;
            tx.commit().map_err(MessengerError::db(what))?;
        }
        self.flush_outbox().await?;
        Ok(())
    }

    /// Deletes a message row and leaves a tombstone so that a late copy is not shown again.
    pub(super) fn forget_message(
        tx: &Transaction<'_>,
        id: i64,
        author: &SessionId,
        sent_ms: u64,
        now: u64,
    ) -> Result<(), MessengerError> {
        db::delete_message(tx, id)
            .and_then(|()| {
                db::insert_tombstone(tx, author, sent_ms, now + DEFAULT_TTL_MS + SEEN_GRACE_MS)
            })
            .map_err(MessengerError::db("deleting a message"))
    }

    /// Sets the disappearing-messages mode of a conversation and tells the other party (and
    /// our other devices) with a `DataMessage{flags = EXPIRATION_TIMER_UPDATE}`.
    pub async fn set_disappearing(
        &self,
        with: &SessionId,
        setting: Disappearing,
    ) -> Result<(), MessengerError> {
        if let Disappearing::AfterSend { seconds } | Disappearing::AfterRead { seconds } = setting
            && !(MIN_TIMER_S..=MAX_TIMER_S).contains(&seconds)
        {
            return Err(MessengerError::InvalidTimer {
                min: MIN_TIMER_S,
                max: MAX_TIMER_S,
            });
        }
        {
            let what = "setting disappearing messages";
            let mut conn = self.db();
            let tx = conn.transaction().map_err(MessengerError::db(what))?;
            db::ensure_contact(&tx, with)
                .and_then(|()| db::set_contact_timer(&tx, with, setting))
                .map_err(MessengerError::db(what))?;
            self.sync_note_contact(&tx, with)?;
            let (kind, timer) = setting.wire();
            let update = |target: Option<String>| Content {
                data_message: Some(DataMessage {
                    flags: Some(FLAG_EXPIRATION_TIMER_UPDATE),
                    sync_target: target,
                    ..DataMessage::default()
                }),
                expiration_type: Some(kind),
                expiration_timer: Some(timer),
                ..Content::default()
            };
            self.queue_control(&tx, with, &update(None), Some(&update(Some(with.to_hex()))))?;
            tx.commit().map_err(MessengerError::db(what))?;
        }
        self.flush_outbox().await?;
        Ok(())
    }

    /// Deletes messages whose disappearing timer ran out, and forgets old dedup state.
    /// Returns how many messages were deleted.
    pub fn purge_expired(&self) -> Result<usize, MessengerError> {
        let now = self.now();
        db::purge_expired(&self.db(), now).map_err(MessengerError::db("deleting expired messages"))
    }
}
