//! The messenger itself; the crate docs (README.md) describe it.

mod db;
mod error;
#[cfg(any(test, feature = "test-support"))]
pub mod fake;
mod model;
pub mod onion;
pub mod profile;
pub mod swarm;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use umbra_report::ErrorExt as _;

use rusqlite_cipher::{Connection, OptionalExtension as _, Transaction, params};
use umbra_crypto::{Identity, Random, Redacted, SessionId};
use umbra_wire::data_message::FLAG_EXPIRATION_TIMER_UPDATE;
use umbra_wire::{
    Content, DataMessage, LokiProfile, MessageRequestResponse, ReceiptMessage, TypingMessage,
    UnsendRequest, decode_one_to_one, encode_one_to_one, receipt_message, typing_message,
};

use umbra_net::Clock;

pub use db::SCHEMA_VERSION;
pub use error::MessengerError;
pub use model::{
    Contact, Conversation, Disappearing, Event, FlushReport, Message, MessageStatus, OutboxEntry,
    Settings,
};
pub use onion::OnionSwarm;
pub use profile::{KdfParams, Profile};
pub use swarm::{NodeId, RetrievedPage, StoreAck, StoredMessage, SwarmApi, SwarmError};

use db::{i, u};

/// The longest message text, in characters (Session's limit without Pro).
pub const MAX_BODY_CHARS: usize = 2_000;
/// Storage TTL of ordinary messages: 14 days.
pub const DEFAULT_TTL_MS: u64 = 14 * 24 * 3_600_000;
/// Storage TTL of typing indicators (`messages.md` §5.1).
pub const TYPING_TTL_MS: u64 = 20_000;
/// The shortest disappearing timer, seconds (the swarm's minimum TTL is 10 s).
pub const MIN_TIMER_S: u32 = 10;
/// The longest disappearing timer, seconds (14 days, the public inbox's longest TTL).
pub const MAX_TIMER_S: u32 = 14 * 24 * 3_600;
/// First retry delay of a failed outbox entry; doubles per attempt.
pub const BACKOFF_MIN_MS: u64 = 1_000;
/// Largest retry delay.
pub const BACKOFF_MAX_MS: u64 = 5 * 60_000;
/// Pause between two polls while [`Messenger::receive_wait`] waits on a node that does not
/// long-poll.
pub const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// The longest wait one long-poll retrieve asks of a node (nodes cap it at 20 s; the onion
/// relays' hop timeouts are 24 s and more).
pub const LONG_POLL: std::time::Duration = std::time::Duration::from_secs(10);
/// Pages fetched per poll at most (each page is bounded by the node).
const MAX_PAGES_PER_POLL: usize = 64;
/// How long a processed hash is remembered after the swarm's expiry of it.
const SEEN_GRACE_MS: u64 = 3_600_000;
/// The most entries the outbox holds; sending more fails with
/// [`MessengerError::OutboxFull`] until the swarm can be reached again.
pub const MAX_OUTBOX: i64 = 10_000;
/// Retrieved messages saved per transaction at most (one disk flush each; the database lock
/// is held that long).
const INGEST_BATCH: usize = 256;
/// Outbox entries attempted per flush at most.
const FLUSH_BATCH: i64 = 256;

const OP_STORE: i64 = 0;
const OP_DELETE: i64 = 1;
const OP_EXPIRE: i64 = 2;

/// The one-to-one messaging client of one profile. Cheap to share behind an `Arc`; all
/// methods take `&self`.
pub struct Messenger {
    dir: PathBuf,
    identity: Identity,
    me: SessionId,
    conn: Mutex<Connection>,
    swarm: Arc<dyn SwarmApi>,
    clock: Arc<dyn Clock>,
    rng: Mutex<Box<dyn Random + Send>>,
    poll_node: Mutex<usize>,
}

impl std::fmt::Debug for Messenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messenger")
            .field("me", &Redacted::new(self.me))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Storage TTL of a message in `mode`, for the recipient's copy or our sync copy.
fn ttl_for(mode: Disappearing, sync_copy: bool) -> u64 {
    match mode {
        Disappearing::Off => DEFAULT_TTL_MS,
        Disappearing::AfterSend { seconds } => timer_ms(seconds),
        Disappearing::AfterRead { seconds } if sync_copy => timer_ms(seconds),
        Disappearing::AfterRead { .. } => DEFAULT_TTL_MS,
    }
}

fn timer_ms(seconds: u32) -> u64 {
    (u64::from(seconds) * 1000).clamp(10_000, DEFAULT_TTL_MS)
}

fn with_mode(mut content: Content, mode: Disappearing) -> Content {
    if mode != Disappearing::Off {
        let (kind, timer) = mode.wire();
        content.expiration_type = Some(kind);
        content.expiration_timer = Some(timer);
    }
    content
}

fn backoff_ms(attempts: u32) -> u64 {
    let shift = attempts.saturating_sub(1).min(20);
    (BACKOFF_MIN_MS << shift).min(BACKOFF_MAX_MS)
}

/// A row of the outbox, as flush reads it.
struct Pending {
    id: i64,
    op: i64,
    owner: String,
    namespace: i32,
    data: Vec<u8>,
    hashes: Vec<String>,
    timestamp_ms: u64,
    ttl_ms: u64,
    message_id: Option<i64>,
    is_primary: bool,
    attempts: u32,
}

impl Messenger {
    /// A messenger for an open profile, talking to `swarm`, reading time from `clock`.
    pub fn new(
        profile: Profile,
        swarm: Arc<dyn SwarmApi>,
        clock: Arc<dyn Clock>,
        rng: Box<dyn Random + Send>,
    ) -> Self {
        let (dir, identity, conn) = profile.into_parts();
        let me = identity.session_id();
        Self {
            dir,
            identity,
            me,
            conn: Mutex::new(conn),
            swarm,
            clock,
            rng: Mutex::new(rng),
            poll_node: Mutex::new(0),
        }
    }

    /// Our Session ID.
    pub fn session_id(&self) -> SessionId {
        self.me
    }

    /// The profile directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    // ----- profile, settings, contacts -------------------------------------------------------

    /// Our display name, if set.
    pub fn display_name(&self) -> Result<Option<String>, MessengerError> {
        let conn = self.db();
        let v = db::meta_get(&conn, "display_name")
            .map_err(MessengerError::db("reading the display name"))?;
        Ok(v.and_then(|b| String::from_utf8(b).ok()))
    }

    /// Sets our display name; it travels with our messages (`LokiProfile`).
    pub fn set_display_name(&self, name: &str) -> Result<(), MessengerError> {
        let now_s = self.now() / 1000;
        let conn = self.db();
        db::meta_set(&conn, "display_name", name.as_bytes())
            .and_then(|()| db::meta_set(&conn, "profile_updated_s", now_s.to_string().as_bytes()))
            .map_err(MessengerError::db("saving the display name"))
    }

    fn profile_proto(conn: &Connection) -> rusqlite_cipher::Result<Option<LokiProfile>> {
        let name = db::meta_get(conn, "display_name")?.and_then(|b| String::from_utf8(b).ok());
        let updated = db::meta_get(conn, "profile_updated_s")?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<u64>().ok());
        Ok(name.map(|n| LokiProfile {
            display_name: Some(n),
            profile_picture: None,
            last_profile_update_seconds: updated,
        }))
    }

    /// The user settings.
    pub fn settings(&self) -> Result<Settings, MessengerError> {
        let conn = self.db();
        let flag = |k: &str| -> Result<bool, MessengerError> {
            Ok(db::meta_get(&conn, k)
                .map_err(MessengerError::db("reading the settings"))?
                .is_some_and(|v| v == b"1"))
        };
        Ok(Settings {
            read_receipts: flag("read_receipts")?,
            typing_indicators: flag("typing_indicators")?,
        })
    }

    /// Saves the user settings.
    pub fn set_settings(&self, settings: Settings) -> Result<(), MessengerError> {
        let conn = self.db();
        let b = |v: bool| if v { b"1" } else { b"0" };
        db::meta_set(&conn, "read_receipts", b(settings.read_receipts))
            .and_then(|()| db::meta_set(&conn, "typing_indicators", b(settings.typing_indicators)))
            .map_err(MessengerError::db("saving the settings"))
    }

    /// Resolves what a user typed: a Session ID, or a contact's nickname or display name.
    pub fn resolve(&self, who: &str) -> Result<SessionId, MessengerError> {
        let who = who.trim();
        if who.len() == 66 && who.bytes().all(|b| b.is_ascii_hexdigit()) {
            return who.parse().map_err(|e: umbra_crypto::CryptoError| {
                MessengerError::InvalidSessionId(e.to_string())
            });
        }
        let conn = self.db();
        let mut stmt = conn
            .prepare(
                "SELECT session_id FROM contacts WHERE nickname = ?1
                 UNION SELECT session_id FROM contacts WHERE nickname IS NULL AND display_name = ?1",
            )
            .map_err(MessengerError::db("looking up a contact"))?;
        let ids: Vec<String> = stmt
            .query_map(params![who], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(MessengerError::db("looking up a contact"))?;
        match ids.as_slice() {
            [one] => db::sid(one).map_err(MessengerError::db("looking up a contact")),
            [] if who.len() == 66 || who.starts_with("05") && who.len() > 20 => {
                Err(MessengerError::InvalidSessionId(
                    "expected 66 hex characters starting with 05".into(),
                ))
            }
            [] => Err(MessengerError::UnknownContact(who.to_string())),
            _ => Err(MessengerError::AmbiguousContact(who.to_string())),
        }
    }

    /// Adds (or approves) a contact, with an optional local nickname.
    pub fn add_contact(
        &self,
        id: &SessionId,
        nickname: Option<&str>,
    ) -> Result<(), MessengerError> {
        let conn = self.db();
        db::ensure_contact(&conn, id)
            .and_then(|()| {
                conn.execute(
                    "UPDATE contacts SET approved = 1, blocked = 0,
                     nickname = COALESCE(?2, nickname) WHERE session_id = ?1",
                    params![id.to_hex(), nickname],
                )
            })
            .map(drop)
            .map_err(MessengerError::db("adding a contact"))
    }

    /// Sets (or with `None` clears) a contact's local nickname.
    pub fn rename_contact(
        &self,
        id: &SessionId,
        nickname: Option<&str>,
    ) -> Result<(), MessengerError> {
        let conn = self.db();
        db::ensure_contact(&conn, id)
            .and_then(|()| {
                conn.execute(
                    "UPDATE contacts SET nickname = ?2 WHERE session_id = ?1",
                    params![id.to_hex(), nickname],
                )
            })
            .map(drop)
            .map_err(MessengerError::db("renaming a contact"))
    }

    /// One contact.
    pub fn contact(&self, id: &SessionId) -> Result<Option<Contact>, MessengerError> {
        db::contact(&self.db(), id).map_err(MessengerError::db("reading a contact"))
    }

    /// Approved contacts, by name.
    pub fn contacts(&self) -> Result<Vec<Contact>, MessengerError> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM contacts WHERE approved = 1 AND session_id != ?1
                 ORDER BY COALESCE(nickname, display_name, session_id)",
                db::CONTACT_COLUMNS
            ))
            .map_err(MessengerError::db("listing contacts"))?;
        stmt.query_map(params![self.me.to_hex()], db::contact_row)
            .and_then(Iterator::collect)
            .map_err(MessengerError::db("listing contacts"))
    }

    // ----- conversations ----------------------------------------------------------------------

    fn conversation_list(&self, requests: bool) -> Result<Vec<Conversation>, MessengerError> {
        let now = i(self.now());
        let conn = self.db();
        let what = "listing conversations";
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM contacts c WHERE blocked = 0 AND approved = ?1
                 AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation = c.session_id)",
                db::CONTACT_COLUMNS
            ))
            .map_err(MessengerError::db(what))?;
        let contacts: Vec<Contact> = stmt
            .query_map(params![!requests], db::contact_row)
            .and_then(Iterator::collect)
            .map_err(MessengerError::db(what))?;
        let mut out = Vec::with_capacity(contacts.len());
        for contact in contacts {
            let cid = contact.session_id.to_hex();
            let unread: i64 = conn
                .query_row(
                    "SELECT count(*) FROM messages WHERE conversation = ?1 AND outgoing = 0
                     AND read_ms IS NULL AND (expires_at_ms IS NULL OR expires_at_ms > ?2)",
                    params![cid, now],
                    |r| r.get(0),
                )
                .map_err(MessengerError::db(what))?;
            let last = conn
                .query_row(
                    &format!(
                        "SELECT {} FROM messages WHERE conversation = ?1
                         AND (expires_at_ms IS NULL OR expires_at_ms > ?2)
                         ORDER BY sent_ms DESC, id DESC LIMIT 1",
                        db::MESSAGE_COLUMNS
                    ),
                    params![cid, now],
                    db::message_row,
                )
                .optional()
                .map_err(MessengerError::db(what))?;
            out.push(Conversation {
                contact,
                unread: u(unread),
                last,
            });
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.last.as_ref().map_or(0, |m| m.sent_ms)));
        Ok(out)
    }

    /// Accepted conversations, newest first, with unread counts.
    pub fn conversations(&self) -> Result<Vec<Conversation>, MessengerError> {
        self.conversation_list(false)
    }

    /// Message requests: conversations started by senders we have not accepted.
    pub fn requests(&self) -> Result<Vec<Conversation>, MessengerError> {
        self.conversation_list(true)
    }

    /// The messages of a conversation, oldest first (expired ones excluded).
    pub fn history(&self, with: &SessionId) -> Result<Vec<Message>, MessengerError> {
        let now = i(self.now());
        let conn = self.db();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM messages WHERE conversation = ?1
                 AND (expires_at_ms IS NULL OR expires_at_ms > ?2) ORDER BY sent_ms, id",
                db::MESSAGE_COLUMNS
            ))
            .map_err(MessengerError::db("reading the history"))?;
        stmt.query_map(params![with.to_hex(), now], db::message_row)
            .and_then(Iterator::collect)
            .map_err(MessengerError::db("reading the history"))
    }

    /// The outbox: what is still to be acknowledged by a swarm.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, MessengerError> {
        let conn = self.db();
        let what = "reading the outbox";
        let mut stmt = conn
            .prepare(
                "SELECT o.id, o.kind, o.owner, m.conversation, m.sent_ms, o.attempts,
                        o.next_attempt_ms, o.last_error
                 FROM outbox o LEFT JOIN messages m ON m.id = o.message_id ORDER BY o.id",
            )
            .map_err(MessengerError::db(what))?;
        stmt.query_map([], |r| {
            let kind: String = r.get(1)?;
            let owner: String = r.get(2)?;
            let conv: Option<String> = r.get(3)?;
            let sent: Option<i64> = r.get(4)?;
            Ok(OutboxEntry {
                id: r.get(0)?,
                kind: match kind.as_str() {
                    "message" => "message",
                    "sync" => "sync copy",
                    "delete" => "delete",
                    "expire" => "expire",
                    _ => "control",
                },
                owner: if owner.is_empty() {
                    self.me
                } else {
                    db::sid(&owner)?
                },
                message: match (conv, sent) {
                    (Some(c), Some(s)) => Some((db::sid(&c)?, u(s))),
                    _ => None,
                },
                attempts: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(u32::MAX),
                next_attempt_ms: u(r.get(6)?),
                last_error: r.get(7)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(MessengerError::db(what))
    }

    // ----- sending ----------------------------------------------------------------------------

    /// Encodes `content` for `to` and adds it to the outbox (inside the caller's transaction).
    #[allow(clippy::too_many_arguments)]
    fn queue_store(
        &self,
        tx: &Transaction<'_>,
        to: &SessionId,
        content: &Content,
        sent_ms: u64,
        ttl_ms: u64,
        kind: &str,
        message_id: Option<i64>,
        is_primary: bool,
    ) -> Result<String, MessengerError> {
        let data = {
            let mut rng = lock(&self.rng);
            encode_one_to_one(&self.identity, to, content, sent_ms, &mut **rng)
                .map_err(MessengerError::Encoding)?
        };
        let hash = umbra_crypto::hash::message_hash(to.as_bytes(), 0, &data);
        tx.execute(
            "INSERT INTO outbox (op, kind, owner, namespace, data, hashes, timestamp_ms, ttl_ms,
                                 message_id, is_primary, next_attempt_ms)
             VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, 0)",
            params![
                OP_STORE,
                kind,
                to.to_hex(),
                data,
                hash,
                i(sent_ms),
                i(ttl_ms),
                message_id,
                is_primary
            ],
        )
        .map_err(MessengerError::db("adding to the outbox"))?;
        Ok(hash)
    }

    /// Adds a delete (op 1) or shorten-expiry (op 2) of our own swarm's `hashes` to the outbox.
    fn queue_own_swarm_op(
        tx: &Transaction<'_>,
        op: i64,
        hashes: &[String],
        expiry_ms: u64,
        now: u64,
    ) -> Result<(), MessengerError> {
        if hashes.is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO outbox (op, kind, owner, hashes, timestamp_ms, ttl_ms, next_attempt_ms)
             VALUES (?1, ?2, '', ?3, ?4, ?5, 0)",
            params![
                op,
                if op == OP_DELETE { "delete" } else { "expire" },
                hashes.join(" "),
                i(now),
                i(expiry_ms)
            ],
        )
        .map_err(MessengerError::db("adding to the outbox"))?;
        Ok(())
    }

    /// A sent time for a new message of ours: now, or later if (us, now) already names one.
    fn fresh_sent_ms(&self, tx: &Transaction<'_>) -> Result<u64, MessengerError> {
        let mut t = self.now();
        loop {
            let taken: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE author = ?1 AND sent_ms = ?2)
                     OR EXISTS (SELECT 1 FROM unsent WHERE author = ?1 AND sent_ms = ?2)",
                    params![self.me.to_hex(), i(t)],
                    |r| r.get(0),
                )
                .map_err(MessengerError::db("choosing a sent time"))?;
            if !taken {
                return Ok(t);
            }
            t += 1;
        }
    }

    /// Queues `content` for `to` and, unless `to` is ourselves, a copy for our own swarm built
    /// by `sync` (for our other devices). Both in the caller's transaction.
    fn queue_control(
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
        let sent_ms = {
            let mut conn = self.db();
            let tx = conn
                .transaction()
                .map_err(MessengerError::db("saving an outgoing message"))?;
            let queued: i64 = tx
                .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
                .map_err(MessengerError::db("saving an outgoing message"))?;
            if queued >= MAX_OUTBOX {
                return Err(MessengerError::OutboxFull { limit: MAX_OUTBOX });
            }
            db::ensure_contact(&tx, to)
                .map_err(MessengerError::db("saving an outgoing message"))?;
            let contact = db::contact(&tx, to)
                .map_err(MessengerError::db("saving an outgoing message"))?
                .ok_or(MessengerError::NoSuchMessage("saving an outgoing message"))?;
            if contact.blocked {
                return Err(MessengerError::Blocked("sending a message"));
            }
            let mode = contact.disappearing;
            let sent_ms = self.fresh_sent_ms(&tx)?;
            let profile = Self::profile_proto(&tx)
                .map_err(MessengerError::db("saving an outgoing message"))?;
            let data_message = DataMessage {
                body: Some(text.to_string()),
                profile,
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
            let (kind, timer) = mode.wire();
            tx.execute(
                "UPDATE contacts SET approved = 1 WHERE session_id = ?1",
                params![to.to_hex()],
            )
            .map_err(MessengerError::db("saving an outgoing message"))?;
            tx.execute(
                "INSERT INTO messages (conversation, author, sent_ms, body, outgoing, status,
                     received_ms, read_ms, expiration_type, expiration_timer_s, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?3, ?3, ?6, ?7, ?8)",
                params![
                    to.to_hex(),
                    self.me.to_hex(),
                    i(sent_ms),
                    text,
                    MessageStatus::Queued.to_i64(),
                    kind,
                    timer,
                    expires_at.map(i)
                ],
            )
            .map_err(MessengerError::db("saving an outgoing message"))?;
            let id = tx.last_insert_rowid();
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
            tx.execute(
                "UPDATE messages SET hash = ?2 WHERE id = ?1",
                params![id, sync_hash],
            )
            .map_err(MessengerError::db("saving an outgoing message"))?;
            tx.commit()
                .map_err(MessengerError::db("saving an outgoing message"))?;
            sent_ms
        };
        tracing::debug!(to = %Redacted::new(to), sent_ms, "message queued");
        // Delivery failures stay in the outbox (flush_outbox handles them per entry); an error
        // here is the database that could not be written, which the user must see.
        self.flush_outbox().await?;
        let conn = self.db();
        conn.query_row(
            &format!(
                "SELECT {} FROM messages WHERE author = ?1 AND sent_ms = ?2",
                db::MESSAGE_COLUMNS
            ),
            params![self.me.to_hex(), i(sent_ms)],
            db::message_row,
        )
        .map_err(MessengerError::db("reading the sent message"))
    }

    /// Tries every due outbox entry once: acknowledged entries leave the outbox, transient
    /// failures wait for their next attempt (exponential backoff from [`BACKOFF_MIN_MS`] to
    /// [`BACKOFF_MAX_MS`]), permanent refusals are dropped (the message shows as failed).
    pub async fn flush_outbox(&self) -> Result<FlushReport, MessengerError> {
        let now = self.now();
        let due = self.due_entries(now)?;
        let mut report = FlushReport::default();
        for p in due {
            let result: Result<(), SwarmError> = match p.op {
                OP_STORE => {
                    if p.timestamp_ms.saturating_add(p.ttl_ms) <= now {
                        // It would already have expired in the swarm: give up on it.
                        Err(SwarmError::Status {
                            status: 410,
                            body: "expired before it could be delivered".into(),
                        })
                    } else {
                        match db::sid(&p.owner) {
                            Ok(owner) => self
                                .swarm
                                .store(&owner, p.namespace, &p.data, p.timestamp_ms, p.ttl_ms)
                                .await
                                .map(|ack| {
                                    if p.hashes.first().is_some_and(|h| *h != ack.hash) {
                                        tracing::warn!(
                                            "the swarm stored a message under an unexpected hash"
                                        );
                                    }
                                }),
                            Err(_) => Err(SwarmError::Status {
                                status: 400,
                                body: "malformed recipient in the outbox".into(),
                            }),
                        }
                    }
                }
                OP_DELETE => self.swarm.delete(&self.identity, &p.hashes).await.map(drop),
                _ => {
                    if p.ttl_ms <= now {
                        Ok(())
                    } else {
                        self.swarm
                            .expire(&self.identity, &p.hashes, p.ttl_ms, true)
                            .await
                    }
                }
            };
            self.settle(&p, result, &mut report)?;
        }
        report.pending = {
            let conn = self.db();
            let n: i64 = conn
                .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
                .map_err(MessengerError::db("counting the outbox"))?;
            usize::try_from(n).unwrap_or(usize::MAX)
        };
        Ok(report)
    }

    fn due_entries(&self, now: u64) -> Result<Vec<Pending>, MessengerError> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(
                "SELECT id, op, owner, namespace, data, hashes, timestamp_ms, ttl_ms, message_id,
                        is_primary, attempts
                 FROM outbox WHERE next_attempt_ms <= ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(MessengerError::db("reading the outbox"))?;
        stmt.query_map(params![i(now), FLUSH_BATCH], |r| {
            let hashes: String = r.get(5)?;
            Ok(Pending {
                id: r.get(0)?,
                op: r.get(1)?,
                owner: r.get(2)?,
                namespace: r.get(3)?,
                data: r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
                hashes: hashes.split_whitespace().map(str::to_string).collect(),
                timestamp_ms: u(r.get(6)?),
                ttl_ms: u(r.get(7)?),
                message_id: r.get(8)?,
                is_primary: r.get(9)?,
                attempts: u32::try_from(r.get::<_, i64>(10)?).unwrap_or(u32::MAX),
            })
        })
        .and_then(Iterator::collect)
        .map_err(MessengerError::db("reading the outbox"))
    }

    fn settle(
        &self,
        p: &Pending,
        result: Result<(), SwarmError>,
        report: &mut FlushReport,
    ) -> Result<(), MessengerError> {
        let what = "updating the outbox";
        let now = self.now();
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        match result {
            Ok(()) => {
                tx.execute("DELETE FROM outbox WHERE id = ?1", params![p.id])
                    .map_err(MessengerError::db(what))?;
                if p.is_primary
                    && let Some(mid) = p.message_id
                {
                    tx.execute(
                        "UPDATE messages SET status = ?2 WHERE id = ?1 AND status = ?3",
                        params![
                            mid,
                            MessageStatus::Sent.to_i64(),
                            MessageStatus::Queued.to_i64()
                        ],
                    )
                    .map_err(MessengerError::db(what))?;
                }
                report.done += 1;
            }
            Err(e) if e.is_transient() => {
                let attempts = p.attempts.saturating_add(1);
                tx.execute(
                    "UPDATE outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4
                     WHERE id = ?1",
                    params![
                        p.id,
                        attempts,
                        i(now + backoff_ms(attempts)),
                        e.report().to_string()
                    ],
                )
                .map_err(MessengerError::db(what))?;
                tracing::debug!(error = %e.report(), attempts, "outbox entry will be retried");
                report.retrying += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e.report(), "the swarm refused an outbox entry for good");
                tx.execute("DELETE FROM outbox WHERE id = ?1", params![p.id])
                    .map_err(MessengerError::db(what))?;
                if p.is_primary
                    && let Some(mid) = p.message_id
                {
                    tx.execute(
                        "UPDATE messages SET status = ?2 WHERE id = ?1",
                        params![mid, MessageStatus::Failed.to_i64()],
                    )
                    .map_err(MessengerError::db(what))?;
                }
                report.failed += 1;
            }
        }
        tx.commit().map_err(MessengerError::db(what))
    }

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
            let unread: Vec<(i64, u64, Message)> = {
                let mut stmt = tx
                    .prepare(&format!(
                        "SELECT id, sent_ms, {} FROM messages WHERE conversation = ?1
                         AND outgoing = 0 AND read_ms IS NULL",
                        db::MESSAGE_COLUMNS
                    ))
                    .map_err(MessengerError::db(what))?;
                stmt.query_map(params![with.to_hex()], |r| {
                    let id: i64 = r.get(0)?;
                    let sent: i64 = r.get(1)?;
                    Ok((id, u(sent), db::message_row_at(r, 2)?))
                })
                .and_then(Iterator::collect)
                .map_err(MessengerError::db(what))?
            };
            for (id, _, m) in &unread {
                let expires_at = match m.disappearing {
                    Disappearing::AfterRead { seconds } => Some(now + u64::from(seconds) * 1000),
                    _ => m.expires_at_ms,
                };
                tx.execute(
                    "UPDATE messages SET read_ms = ?2, expires_at_ms = ?3 WHERE id = ?1",
                    params![id, i(now), expires_at.map(i)],
                )
                .map_err(MessengerError::db(what))?;
                if let (Disappearing::AfterRead { .. }, Some(exp), Some(h)) =
                    (m.disappearing, expires_at, &m.hash)
                {
                    Self::queue_own_swarm_op(&tx, OP_EXPIRE, std::slice::from_ref(h), exp, now)?;
                }
            }
            let approved = db::contact(&tx, with)
                .map_err(MessengerError::db(what))?
                .is_some_and(|c| c.approved && !c.blocked);
            if receipts && approved && !unread.is_empty() && *with != self.me {
                let content = Content {
                    receipt_message: Some(ReceiptMessage {
                        r#type: receipt_message::Type::Read as i32,
                        timestamp: unread.iter().map(|(_, s, _)| *s).collect(),
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

    /// Deletes one of our messages for everyone (`messages.md` §5.2): sends an
    /// `UnsendRequest` to the recipient and to our other devices, deletes our sync copy from
    /// our swarm, and deletes it locally.
    pub async fn unsend(&self, with: &SessionId, sent_ms: u64) -> Result<(), MessengerError> {
        {
            let what = "unsending a message";
            let mut conn = self.db();
            let tx = conn.transaction().map_err(MessengerError::db(what))?;
            let row: Option<(i64, String, Option<String>)> = tx
                .query_row(
                    "SELECT id, author, hash FROM messages WHERE conversation = ?1 AND sent_ms = ?2
                     ORDER BY outgoing DESC LIMIT 1",
                    params![with.to_hex(), i(sent_ms)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(MessengerError::db(what))?;
            let (id, author, hash) = row.ok_or(MessengerError::NoSuchMessage(what))?;
            if author != self.me.to_hex() {
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
            if let Some(h) = hash {
                Self::queue_own_swarm_op(&tx, OP_DELETE, &[h], 0, now)?;
            }
            self.forget_message(&tx, id, &self.me, sent_ms, now)?;
            tx.commit().map_err(MessengerError::db(what))?;
        }
        self.flush_outbox().await?;
        Ok(())
    }

    /// Deletes a message row and leaves a tombstone so that a late copy is not shown again.
    fn forget_message(
        &self,
        tx: &Transaction<'_>,
        id: i64,
        author: &SessionId,
        sent_ms: u64,
        now: u64,
    ) -> Result<(), MessengerError> {
        let what = "deleting a message";
        tx.execute("DELETE FROM messages WHERE id = ?1", params![id])
            .map_err(MessengerError::db(what))?;
        tx.execute(
            "INSERT OR REPLACE INTO unsent (author, sent_ms, until_ms) VALUES (?1, ?2, ?3)",
            params![
                author.to_hex(),
                i(sent_ms),
                i(now + DEFAULT_TTL_MS + SEEN_GRACE_MS)
            ],
        )
        .map_err(MessengerError::db(what))?;
        Ok(())
    }

    /// Accepts a message request: the conversation moves to the chats, and the sender gets a
    /// `MessageRequestResponse{isApproved}` with our profile.
    pub async fn accept_request(&self, from: &SessionId) -> Result<(), MessengerError> {
        {
            let what = "accepting a message request";
            let mut conn = self.db();
            let tx = conn.transaction().map_err(MessengerError::db(what))?;
            db::ensure_contact(&tx, from).map_err(MessengerError::db(what))?;
            tx.execute(
                "UPDATE contacts SET approved = 1, blocked = 0 WHERE session_id = ?1",
                params![from.to_hex()],
            )
            .map_err(MessengerError::db(what))?;
            let content = Content {
                message_request_response: Some(MessageRequestResponse {
                    is_approved: true,
                    profile_key: None,
                    profile: Self::profile_proto(&tx).map_err(MessengerError::db(what))?,
                }),
                ..Content::default()
            };
            self.queue_control(&tx, from, &content, None)?;
            tx.commit().map_err(MessengerError::db(what))?;
        }
        self.flush_outbox().await?;
        Ok(())
    }

    /// Declines a message request: its messages and the unapproved contact are deleted (a
    /// later message from the sender is a new request).
    pub fn decline_request(&self, from: &SessionId) -> Result<(), MessengerError> {
        let what = "declining a message request";
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        // Only an unaccepted conversation is a request: an accepted chat keeps its history.
        tx.execute(
            "DELETE FROM messages WHERE conversation = ?1 AND EXISTS
                 (SELECT 1 FROM contacts WHERE session_id = ?1 AND approved = 0)",
            params![from.to_hex()],
        )
        .and_then(|_| {
            tx.execute(
                "DELETE FROM contacts WHERE session_id = ?1 AND approved = 0 AND blocked = 0",
                params![from.to_hex()],
            )
        })
        .map_err(MessengerError::db(what))?;
        tx.commit().map_err(MessengerError::db(what))
    }

    /// Blocks an account: its messages are dropped from now on; a pending request from it is
    /// deleted.
    pub fn block(&self, id: &SessionId) -> Result<(), MessengerError> {
        let what = "blocking a contact";
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        db::ensure_contact(&tx, id).map_err(MessengerError::db(what))?;
        let approved = db::contact(&tx, id)
            .map_err(MessengerError::db(what))?
            .is_some_and(|c| c.approved);
        if !approved {
            tx.execute(
                "DELETE FROM messages WHERE conversation = ?1",
                params![id.to_hex()],
            )
            .map_err(MessengerError::db(what))?;
        }
        tx.execute(
            "UPDATE contacts SET blocked = 1, approved = 0 WHERE session_id = ?1",
            params![id.to_hex()],
        )
        .map_err(MessengerError::db(what))?;
        tx.commit().map_err(MessengerError::db(what))
    }

    /// Unblocks an account (its conversation becomes an ordinary accepted one).
    pub fn unblock(&self, id: &SessionId) -> Result<(), MessengerError> {
        self.db()
            .execute(
                "UPDATE contacts SET blocked = 0, approved = 1 WHERE session_id = ?1",
                params![id.to_hex()],
            )
            .map(drop)
            .map_err(MessengerError::db("unblocking a contact"))
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
            db::ensure_contact(&tx, with).map_err(MessengerError::db(what))?;
            let (kind, timer) = setting.wire();
            tx.execute(
                "UPDATE contacts SET expiration_type = ?2, expiration_timer_s = ?3
                 WHERE session_id = ?1",
                params![with.to_hex(), kind, timer],
            )
            .map_err(MessengerError::db(what))?;
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
        let now = i(self.now());
        let conn = self.db();
        let what = "deleting expired messages";
        let n = conn
            .execute(
                "DELETE FROM messages WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?1",
                params![now],
            )
            .map_err(MessengerError::db(what))?;
        conn.execute("DELETE FROM seen WHERE forget_after_ms <= ?1", params![now])
            .and_then(|_| conn.execute("DELETE FROM unsent WHERE until_ms <= ?1", params![now]))
            .map_err(MessengerError::db(what))?;
        Ok(n)
    }

    // ----- receiving --------------------------------------------------------------------------

    /// Polls our own swarm: delivers due outbox entries, retrieves what is new (from one node
    /// of the swarm, from its `last_hash` on), and saves what it brought (up to 256
    /// messages per transaction) before returning the events. A node that fails is replaced by the next one of the swarm
    /// in the same poll (one live member is enough); the poll fails only when all failed.
    pub async fn receive(&self) -> Result<Vec<Event>, MessengerError> {
        self.receive_inner(std::time::Duration::ZERO).await
    }

    /// [`Messenger::receive`] whose first retrieve may wait at the node up to `wait`.
    async fn receive_inner(&self, wait: std::time::Duration) -> Result<Vec<Event>, MessengerError> {
        self.purge_expired()?;
        // Only a database that cannot be written fails here (see send_text).
        self.flush_outbox().await?;
        let nodes = self
            .swarm
            .nodes(&self.me)
            .await
            .map_err(|source| MessengerError::Swarm {
                what: "finding our swarm",
                source,
            })?;
        if nodes.is_empty() {
            return Err(MessengerError::Swarm {
                what: "finding our swarm",
                source: SwarmError::Unreachable("the swarm has no node".into()),
            });
        }
        // A node that fails is replaced by the next one of the swarm at once, so one live
        // member is enough; the poll fails only when every member failed.
        let first = *lock(&self.poll_node);
        let mut node = nodes[first % nodes.len()].clone();
        let mut failed_nodes = 0;
        let mut events = Vec::new();
        let mut wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let mut pages = 0;
        while pages < MAX_PAGES_PER_POLL {
            let last = self.cursor(&node)?;
            let page = match self
                .swarm
                .retrieve_wait(&self.identity, 0, &node, last.as_deref(), wait_ms)
                .await
            {
                Ok(p) => p,
                Err(source) => {
                    let idx = {
                        let mut i = lock(&self.poll_node);
                        *i += 1;
                        *i
                    };
                    failed_nodes += 1;
                    if pages > 0 || failed_nodes >= nodes.len() {
                        if pages > 0 {
                            // What the earlier pages brought is saved: show it.
                            break;
                        }
                        return Err(MessengerError::Swarm {
                            what: "retrieving new messages",
                            source,
                        });
                    }
                    tracing::debug!(error = %source.report(), "a swarm member failed; polling the next");
                    node = nodes[idx % nodes.len()].clone();
                    continue;
                }
            };
            pages += 1;
            wait_ms = 0;
            for chunk in page.messages.chunks(INGEST_BATCH) {
                events.extend(self.ingest(&node, chunk)?);
            }
            if !page.more || page.messages.is_empty() {
                break;
            }
        }
        self.purge_expired()?;
        Ok(events)
    }

    /// Receives until something happens or `max_wait` has passed, and returns the events (an
    /// empty list at the deadline). At least one retrieve is made.
    ///
    /// Each retrieve long-polls: it asks the node to hold the answer until something new
    /// arrives (up to [`LONG_POLL`]), so a message is shown one onion round trip after it
    /// reaches the swarm instead of at the next poll. A node that answers at once with nothing
    /// (a Session node, which ignores the request to wait) is polled every [`POLL_EVERY`]
    /// instead. The outbox is delivered before each retrieve. This is the one waiting loop
    /// every front end uses.
    pub async fn receive_wait(
        &self,
        max_wait: std::time::Duration,
    ) -> Result<Vec<Event>, MessengerError> {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let started = tokio::time::Instant::now();
            let wait = deadline.saturating_duration_since(started).min(LONG_POLL);
            let events = self.receive_inner(wait).await?;
            let now = tokio::time::Instant::now();
            if !events.is_empty() || now >= deadline {
                return Ok(events);
            }
            if now - started < wait / 2 {
                // Answered early with nothing for us: do not spin.
                tokio::time::sleep(POLL_EVERY.min(deadline - now)).await;
            }
        }
    }

    fn cursor(&self, node: &str) -> Result<Option<String>, MessengerError> {
        self.db()
            .query_row(
                "SELECT last_hash FROM cursors WHERE node = ?1 AND namespace = 0",
                params![node],
                |r| r.get(0),
            )
            .optional()
            .map_err(MessengerError::db("reading the retrieve position"))
    }

    /// Applies a retrieved page: for each message dedup, decrypt, verify, save; then move the
    /// cursor past the page — one transaction for the whole page (one disk flush instead of one
    /// per message: a restore of thousands of messages is bound by those flushes).
    fn ingest(&self, node: &str, page: &[StoredMessage]) -> Result<Vec<Event>, MessengerError> {
        let Some(last) = page.last() else {
            return Ok(Vec::new());
        };
        let what = "saving a received message";
        let now = self.now();
        let mut conn = self.db();
        let tx = conn.transaction().map_err(MessengerError::db(what))?;
        let mut events = Vec::new();
        for stored in page {
            let seen: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM seen WHERE hash = ?1)",
                    params![stored.hash],
                    |r| r.get(0),
                )
                .map_err(MessengerError::db(what))?;
            if seen {
                continue;
            }
            tx.execute(
                "INSERT INTO seen (hash, forget_after_ms) VALUES (?1, ?2)",
                params![stored.hash, i(stored.expiry_ms.max(now) + SEEN_GRACE_MS)],
            )
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
        tx.execute(
            "INSERT INTO cursors (node, namespace, last_hash) VALUES (?1, 0, ?2)
             ON CONFLICT (node, namespace) DO UPDATE SET last_hash = excluded.last_hash",
            params![node, last.hash],
        )
        .map_err(MessengerError::db(what))?;
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
        mode: Disappearing,
        hash: &str,
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
        let tombstone: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM unsent WHERE author = ?1 AND sent_ms = ?2)",
                params![author.to_hex(), i(sent_ms)],
                |r| r.get(0),
            )
            .map_err(MessengerError::db(what))?;
        if tombstone {
            return Ok(None);
        }
        let (kind, timer) = mode.wire();
        let status = if outgoing {
            MessageStatus::Sent
        } else {
            MessageStatus::Received
        };
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO messages (conversation, author, sent_ms, body, outgoing,
                     status, received_ms, read_ms, expiration_type, expiration_timer_s,
                     expires_at_ms, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    conversation.to_hex(),
                    author.to_hex(),
                    i(sent_ms),
                    body,
                    outgoing,
                    status.to_i64(),
                    i(now),
                    outgoing.then_some(i(now)),
                    kind,
                    timer,
                    expires_at.map(i),
                    hash
                ],
            )
            .map_err(MessengerError::db(what))?;
        if inserted == 0 {
            return Ok(None);
        }
        Ok(Some(Message {
            conversation: *conversation,
            author: *author,
            sent_ms,
            body: body.to_string(),
            outgoing,
            status,
            received_ms: now,
            read_ms: outgoing.then_some(now),
            read_by_peer: false,
            disappearing: mode,
            expires_at_ms: expires_at,
            hash: Some(hash.to_string()),
        }))
    }

    fn update_profile(
        tx: &Transaction<'_>,
        who: &SessionId,
        profile: Option<&LokiProfile>,
    ) -> Result<(), MessengerError> {
        let Some(p) = profile else { return Ok(()) };
        let Some(name) = p.display_name.as_deref() else {
            return Ok(());
        };
        let updated = p.last_profile_update_seconds.unwrap_or(0);
        tx.execute(
            "UPDATE contacts SET display_name = ?2, profile_updated_s = ?3
             WHERE session_id = ?1 AND (display_name IS NULL OR profile_updated_s <= ?3)",
            params![who.to_hex(), name, i(updated)],
        )
        .map_err(MessengerError::db("saving a profile"))?;
        Ok(())
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
                db::ensure_contact(tx, &target).map_err(MessengerError::db(what))?;
                tx.execute(
                    "UPDATE contacts SET approved = 1 WHERE session_id = ?1",
                    params![target.to_hex()],
                )
                .map_err(MessengerError::db(what))?;
                if dm.flags.unwrap_or(0) & FLAG_EXPIRATION_TIMER_UPDATE != 0 {
                    events.extend(self.apply_timer(tx, &target, mode)?);
                } else if let Some(body) = dm.body.as_deref().filter(|b| !b.is_empty())
                    && let Some(m) = self.insert_message(
                        tx,
                        &target,
                        &self.me,
                        sent_ms,
                        body,
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

        if let Some(dm) = &content.data_message {
            db::ensure_contact(tx, &sender).map_err(MessengerError::db(what))?;
            Self::update_profile(tx, &sender, dm.profile.as_ref())?;
            if dm.flags.unwrap_or(0) & FLAG_EXPIRATION_TIMER_UPDATE != 0 {
                events.extend(self.apply_timer(tx, &sender, mode)?);
            } else if let Some(body) = dm.body.as_deref().filter(|b| !b.is_empty()) {
                if approved {
                    // They wrote back in an accepted conversation: they accept us too.
                    tx.execute(
                        "UPDATE contacts SET approved_me = 1 WHERE session_id = ?1",
                        params![sender.to_hex()],
                    )
                    .map_err(MessengerError::db(what))?;
                }
                if let Some(m) =
                    self.insert_message(tx, &sender, &sender, sent_ms, body, mode, &stored.hash)?
                {
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
                tx.execute(
                    "UPDATE messages SET read_by_peer = 1
                     WHERE conversation = ?1 AND author = ?2 AND sent_ms = ?3",
                    params![sender.to_hex(), self.me.to_hex(), i(*ts)],
                )
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
            Self::update_profile(tx, &sender, resp.profile.as_ref())?;
            tx.execute(
                "UPDATE contacts SET approved_me = 1 WHERE session_id = ?1",
                params![sender.to_hex()],
            )
            .map_err(MessengerError::db(what))?;
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
        let (kind, timer) = mode.wire();
        let changed = tx
            .execute(
                "UPDATE contacts SET expiration_type = ?2, expiration_timer_s = ?3
                 WHERE session_id = ?1 AND (expiration_type != ?2 OR expiration_timer_s != ?3)",
                params![conversation.to_hex(), kind, timer],
            )
            .map_err(MessengerError::db("saving a timer change"))?;
        Ok(if changed > 0 {
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
        let row: Option<(i64, String, Option<String>)> = tx
            .query_row(
                "SELECT id, conversation, hash FROM messages WHERE author = ?1 AND sent_ms = ?2",
                params![author.to_hex(), i(sent_ms)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(MessengerError::db("applying an unsend request"))?;
        let Some((id, conversation, hash)) = row else {
            // Not (yet) here: the tombstone keeps a late copy out.
            tx.execute(
                "INSERT OR REPLACE INTO unsent (author, sent_ms, until_ms) VALUES (?1, ?2, ?3)",
                params![
                    author.to_hex(),
                    i(sent_ms),
                    i(now + DEFAULT_TTL_MS + SEEN_GRACE_MS)
                ],
            )
            .map_err(MessengerError::db("applying an unsend request"))?;
            return Ok(Vec::new());
        };
        if let Some(h) = hash {
            // Our swarm's copy of it (a received copy, or our sync copy) goes too.
            Self::queue_own_swarm_op(tx, OP_DELETE, &[h], 0, now)?;
        }
        self.forget_message(tx, id, author, sent_ms, now)?;
        Ok(vec![Event::Unsent {
            conversation: db::sid(&conversation)
                .map_err(MessengerError::db("applying an unsend request"))?,
            author: *author,
            sent_ms,
        }])
    }
}
