//! The local database: schema migrations (versioned in code, `PRAGMA user_version`), row
//! mapping, and every query the messenger makes, as typed functions (the rest of the
//! messenger writes no SQL). Only the messenger's own modules use it.
//!
//! Never: change a migration that has shipped (add a new one), or open a schema newer than
//! [`SCHEMA_VERSION`].

use rusqlite_cipher::{Connection, OptionalExtension as _, Row, params};
use umbra_crypto::{MessageHash, SessionId};

use umbra_wire::{Attachment, AttachmentPointer};

use super::MessengerError;
use super::model::{Contact, Disappearing, Message, MessageId, MessageStatus, OutboxEntry};

/// `outbox.op` of a store of an encoded message in a swarm.
pub(crate) const OP_STORE: i64 = 0;
/// `outbox.op` of a delete of our own swarm's copies.
pub(crate) const OP_DELETE: i64 = 1;
/// `outbox.op` of a shortened expiry of our own swarm's copies.
pub(crate) const OP_EXPIRE: i64 = 2;

/// Migrations, in order: entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE contacts (
        session_id         TEXT PRIMARY KEY,
        nickname           TEXT,
        display_name       TEXT,
        profile_updated_s  INTEGER NOT NULL DEFAULT 0,
        approved           INTEGER NOT NULL DEFAULT 0,
        approved_me        INTEGER NOT NULL DEFAULT 0,
        blocked            INTEGER NOT NULL DEFAULT 0,
        expiration_type    INTEGER NOT NULL DEFAULT 0,
        expiration_timer_s INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE messages (
        id                 INTEGER PRIMARY KEY,
        conversation       TEXT NOT NULL,
        author             TEXT NOT NULL,
        sent_ms            INTEGER NOT NULL,
        body               TEXT NOT NULL,
        outgoing           INTEGER NOT NULL,
        status             INTEGER NOT NULL,
        received_ms        INTEGER NOT NULL,
        read_ms            INTEGER,
        read_by_peer       INTEGER NOT NULL DEFAULT 0,
        expiration_type    INTEGER NOT NULL DEFAULT 0,
        expiration_timer_s INTEGER NOT NULL DEFAULT 0,
        expires_at_ms      INTEGER,
        hash               TEXT,
        UNIQUE (author, sent_ms)
    );
    CREATE INDEX messages_by_conversation ON messages (conversation, sent_ms);
    CREATE INDEX messages_by_expiry ON messages (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
    -- Messages deleted for everyone, so that a late copy is not shown again.
    CREATE TABLE unsent (
        author   TEXT NOT NULL,
        sent_ms  INTEGER NOT NULL,
        until_ms INTEGER NOT NULL,
        PRIMARY KEY (author, sent_ms)
    );
    -- Storage hashes already processed (dedup across nodes and retries).
    CREATE TABLE seen (hash TEXT PRIMARY KEY, forget_after_ms INTEGER NOT NULL);
    -- retrieve positions, per node and namespace of our own swarm.
    CREATE TABLE cursors (
        node      TEXT NOT NULL,
        namespace INTEGER NOT NULL,
        last_hash TEXT NOT NULL,
        PRIMARY KEY (node, namespace)
    );
    -- Everything still to be acknowledged by a swarm. op: 0 store, 1 delete, 2 expire (shorten).
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        op              INTEGER NOT NULL,
        kind            TEXT NOT NULL,
        owner           TEXT NOT NULL,
        namespace       INTEGER NOT NULL DEFAULT 0,
        data            BLOB,
        hashes          TEXT NOT NULL DEFAULT '',
        timestamp_ms    INTEGER NOT NULL,
        ttl_ms          INTEGER NOT NULL DEFAULT 0,
        message_id      INTEGER,
        is_primary      INTEGER NOT NULL DEFAULT 0,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        last_error      TEXT
    );
    ",
    // 2: attachments of messages (`messages.md` §3.9), with where their download stands.
    r"
    CREATE TABLE attachments (
        message_id   INTEGER NOT NULL,
        idx          INTEGER NOT NULL,
        url          TEXT NOT NULL,
        key          BLOB NOT NULL,
        size         INTEGER NOT NULL,
        digest       BLOB,
        file_name    TEXT,
        content_type TEXT,
        width        INTEGER,
        height       INTEGER,
        caption      TEXT,
        voice        INTEGER NOT NULL DEFAULT 0,
        state        INTEGER NOT NULL,
        path         TEXT,
        PRIMARY KEY (message_id, idx)
    );
    -- An attachment goes with its message, however the message is deleted.
    CREATE TRIGGER attachments_follow_messages AFTER DELETE ON messages
    BEGIN
        DELETE FROM attachments WHERE message_id = old.id;
    END;
    ",
    // 3: closed groups v2 (`groups-config-attachments.md` §1): the groups we take part in,
    // the verified keys/info/members messages of their swarms (the key ring and configs are
    // rebuilt from them), retrieve positions, and group messages (a 03 group is not a
    // Session ID, so not a `messages.conversation`).
    r"
    CREATE TABLE groups (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        status      INTEGER NOT NULL,
        admin_seed  BLOB,
        member_auth BLOB,
        invited_by  TEXT,
        joined_ms   INTEGER NOT NULL
    );
    CREATE TABLE group_data (
        group_id     TEXT NOT NULL,
        namespace    INTEGER NOT NULL,
        hash         TEXT NOT NULL,
        data         BLOB NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        seq          INTEGER PRIMARY KEY,
        UNIQUE (group_id, namespace, hash)
    );
    CREATE TABLE group_cursors (
        group_id  TEXT NOT NULL,
        namespace INTEGER NOT NULL,
        last_hash TEXT NOT NULL,
        PRIMARY KEY (group_id, namespace)
    );
    CREATE TABLE group_messages (
        id          INTEGER PRIMARY KEY,
        group_id    TEXT NOT NULL,
        author      TEXT NOT NULL,
        sent_ms     INTEGER NOT NULL,
        body        TEXT NOT NULL,
        outgoing    INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        hash        TEXT,
        status      INTEGER NOT NULL,
        UNIQUE (group_id, author, sent_ms)
    );
    CREATE INDEX group_messages_by_group ON group_messages (group_id, sent_ms);
    ",
    // 4: disappearing group messages (the group's Info `E` timer, after send).
    "
    ALTER TABLE group_messages ADD COLUMN expires_at_ms INTEGER;
    CREATE INDEX group_messages_by_expiry ON group_messages (expires_at_ms)
        WHERE expires_at_ms IS NOT NULL;
    ",
    // 5: files in group messages. One-to-one and group messages are numbered apart, so an
    // attachment names its message's table (`chat`: 0 one-to-one, 1 group) as well as its id.
    r"
    CREATE TABLE attachments_v5 (
        chat         INTEGER NOT NULL,
        message_id   INTEGER NOT NULL,
        idx          INTEGER NOT NULL,
        url          TEXT NOT NULL,
        key          BLOB NOT NULL,
        size         INTEGER NOT NULL,
        digest       BLOB,
        file_name    TEXT,
        content_type TEXT,
        width        INTEGER,
        height       INTEGER,
        caption      TEXT,
        voice        INTEGER NOT NULL DEFAULT 0,
        state        INTEGER NOT NULL,
        path         TEXT,
        PRIMARY KEY (chat, message_id, idx)
    );
    INSERT INTO attachments_v5 (chat, message_id, idx, url, key, size, digest, file_name,
        content_type, width, height, caption, voice, state, path)
        SELECT 0, message_id, idx, url, key, size, digest, file_name, content_type, width,
            height, caption, voice, state, path FROM attachments;
    -- The old trigger is on `messages`: it would outlive the table it names.
    DROP TRIGGER attachments_follow_messages;
    DROP TABLE attachments;
    ALTER TABLE attachments_v5 RENAME TO attachments;
    CREATE TRIGGER attachments_follow_messages AFTER DELETE ON messages
    BEGIN
        DELETE FROM attachments WHERE chat = 0 AND message_id = old.id;
    END;
    CREATE TRIGGER attachments_follow_group_messages AFTER DELETE ON group_messages
    BEGIN
        DELETE FROM attachments WHERE chat = 1 AND message_id = old.id;
    END;
    ",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 5;

const _: () = assert!(MIGRATIONS.len() as i64 == SCHEMA_VERSION);

/// Brings the schema up to [`SCHEMA_VERSION`], one migration per transaction; refuses a newer
/// schema.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), MessengerError> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(MessengerError::db("reading the schema version"))?;
    if current > SCHEMA_VERSION {
        return Err(MessengerError::ProfileTooNew {
            what: "database schema",
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn
            .transaction()
            .map_err(MessengerError::db("migrating the database"))?;
        tx.execute_batch(sql)
            .map_err(MessengerError::db("migrating the database"))?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(MessengerError::db("migrating the database"))?;
        tx.commit()
            .map_err(MessengerError::db("migrating the database"))?;
    }
    Ok(())
}

pub(crate) fn sid(text: &str) -> rusqlite_cipher::Result<SessionId> {
    text.parse().map_err(|e: umbra_crypto::CryptoError| {
        rusqlite_cipher::Error::FromSqlConversionFailure(
            0,
            rusqlite_cipher::types::Type::Text,
            Box::new(e),
        )
    })
}

/// A message hash kept as TEXT (the 43 characters as the swarm gave them).
pub(crate) fn parse_hash(text: &str) -> rusqlite_cipher::Result<MessageHash> {
    text.parse().map_err(|e: umbra_crypto::CryptoError| {
        rusqlite_cipher::Error::FromSqlConversionFailure(
            0,
            rusqlite_cipher::types::Type::Text,
            Box::new(e),
        )
    })
}

/// An optional [`parse_hash`].
pub(crate) fn parse_hash_opt(text: Option<String>) -> rusqlite_cipher::Result<Option<MessageHash>> {
    text.as_deref().map(parse_hash).transpose()
}

/// A number that the conversion between the messenger's numbers and the database's signed
/// 64-bit integers cannot carry unchanged. Never clamped: a clamped time or count would be
/// stored or shown as another, valid-looking one. [`MessengerError::db`] turns it into
/// [`MessengerError::NumberOutOfRange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{value} is {found}, outside {range}")]
pub(crate) struct OutOfRange {
    /// Which value ("sent_ms", "attempts", …).
    pub(crate) value: &'static str,
    /// The value found.
    pub(crate) found: i128,
    /// The range it had to fit.
    pub(crate) range: &'static str,
}

impl OutOfRange {
    /// The [`OutOfRange`] a database error carries, if any.
    pub(crate) fn in_error(e: &rusqlite_cipher::Error) -> Option<Self> {
        match e {
            rusqlite_cipher::Error::ToSqlConversionFailure(inner)
            | rusqlite_cipher::Error::FromSqlConversionFailure(_, _, inner) => {
                inner.downcast_ref::<Self>().copied()
            }
            _ => None,
        }
    }
}

/// `v`, named `value`, as the database's signed integer.
///
/// # Errors
/// [`OutOfRange`] (as a SQL conversion error) above `i64::MAX`.
pub(crate) fn i(value: &'static str, v: u64) -> rusqlite_cipher::Result<i64> {
    i64::try_from(v).map_err(|_| {
        rusqlite_cipher::Error::ToSqlConversionFailure(Box::new(OutOfRange {
            value,
            found: i128::from(v),
            range: "the database's integers (at most 2^63 - 1)",
        }))
    })
}

/// An optional [`i`].
pub(crate) fn i_opt(value: &'static str, v: Option<u64>) -> rusqlite_cipher::Result<Option<i64>> {
    v.map(|v| i(value, v)).transpose()
}

/// The database's integer `v`, named `value`, as the unsigned number it stands for.
///
/// # Errors
/// [`OutOfRange`] (as a SQL conversion error) if it is negative or too large for `T`.
pub(crate) fn u<T: TryFrom<i64>>(value: &'static str, v: i64) -> rusqlite_cipher::Result<T> {
    T::try_from(v).map_err(|_| {
        rusqlite_cipher::Error::FromSqlConversionFailure(
            0,
            rusqlite_cipher::types::Type::Integer,
            Box::new(OutOfRange {
                value,
                found: i128::from(v),
                range: std::any::type_name::<T>(),
            }),
        )
    })
}

/// An optional [`u`].
pub(crate) fn u_opt<T: TryFrom<i64>>(
    value: &'static str,
    v: Option<i64>,
) -> rusqlite_cipher::Result<Option<T>> {
    v.map(|v| u(value, v)).transpose()
}

fn disappearing(kind: i64, timer: i64) -> Disappearing {
    Disappearing::from_wire(i32::try_from(kind).ok(), u32::try_from(timer).ok())
}

/// [`MESSAGE_COLUMNS`] of a query where `messages` is aliased `m`.
const MESSAGE_COLUMNS_M: &str = "m.conversation, m.author, m.sent_ms, m.body, m.outgoing, \
     m.status, m.received_ms, m.read_ms, m.read_by_peer, m.expiration_type, \
     m.expiration_timer_s, m.expires_at_ms, m.hash";

/// Columns of [`message_row`].
pub(crate) const MESSAGE_COLUMNS: &str = "conversation, author, sent_ms, body, outgoing, status, \
     received_ms, read_ms, read_by_peer, expiration_type, expiration_timer_s, expires_at_ms, hash";

pub(crate) fn message_row(r: &Row<'_>) -> rusqlite_cipher::Result<Message> {
    message_row_at(r, 0)
}

/// A message whose [`MESSAGE_COLUMNS`] start at column `o`.
pub(crate) fn message_row_at(r: &Row<'_>, o: usize) -> rusqlite_cipher::Result<Message> {
    Ok(Message {
        conversation: sid(&r.get::<_, String>(o)?)?,
        author: sid(&r.get::<_, String>(o + 1)?)?,
        sent_ms: u("sent_ms", r.get(o + 2)?)?,
        body: r.get(o + 3)?,
        outgoing: r.get(o + 4)?,
        status: MessageStatus::from_i64(r.get(o + 5)?),
        received_ms: u("received_ms", r.get(o + 6)?)?,
        read_ms: u_opt("read_ms", r.get(o + 7)?)?,
        read_by_peer: r.get(o + 8)?,
        disappearing: disappearing(r.get(o + 9)?, r.get(o + 10)?),
        expires_at_ms: u_opt("expires_at_ms", r.get(o + 11)?)?,
        hash: parse_hash_opt(r.get(o + 12)?)?,
    })
}

/// Columns of [`contact_row`].
pub(crate) const CONTACT_COLUMNS: &str = "session_id, nickname, display_name, approved, \
     approved_me, blocked, expiration_type, expiration_timer_s";

pub(crate) fn contact_row(r: &Row<'_>) -> rusqlite_cipher::Result<Contact> {
    Ok(Contact {
        session_id: sid(&r.get::<_, String>(0)?)?,
        nickname: r.get(1)?,
        display_name: r.get(2)?,
        approved: r.get(3)?,
        approved_me: r.get(4)?,
        blocked: r.get(5)?,
        disappearing: disappearing(r.get(6)?, r.get(7)?),
    })
}

/// The contact row of `id`, created (unapproved) if missing.
pub(crate) fn ensure_contact(conn: &Connection, id: &SessionId) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO contacts (session_id) VALUES (?1)",
        params![id.to_hex()],
    )?;
    Ok(())
}

pub(crate) fn contact(
    conn: &Connection,
    id: &SessionId,
) -> rusqlite_cipher::Result<Option<Contact>> {
    conn.query_row(
        &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE session_id = ?1"),
        params![id.to_hex()],
        contact_row,
    )
    .optional()
}

pub(crate) fn meta_get(conn: &Connection, key: &str) -> rusqlite_cipher::Result<Option<Vec<u8>>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
        r.get(0)
    })
    .optional()
}

/// Adds `key` to the meta table; an error if it is there already.
pub(crate) fn meta_insert(
    conn: &Connection,
    key: &str,
    value: &[u8],
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
        params![key, value],
    )
    .map(drop)
}

pub(crate) fn meta_set(conn: &Connection, key: &str, value: &[u8]) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

// ----- contacts ----------------------------------------------------------------------------

/// Contacts whose nickname is `name`, or without a nickname whose display name is `name`.
pub(crate) fn contacts_named(
    conn: &Connection,
    name: &str,
) -> rusqlite_cipher::Result<Vec<SessionId>> {
    let mut stmt = conn.prepare(
        "SELECT session_id FROM contacts WHERE nickname = ?1
         UNION SELECT session_id FROM contacts WHERE nickname IS NULL AND display_name = ?1",
    )?;
    stmt.query_map(params![name], |r| sid(&r.get::<_, String>(0)?))
        .and_then(Iterator::collect)
}

/// Approves and unblocks `id`, setting its nickname if one is given.
pub(crate) fn approve_contact(
    conn: &Connection,
    id: &SessionId,
    nickname: Option<&str>,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "UPDATE contacts SET approved = 1, blocked = 0,
         nickname = COALESCE(?2, nickname) WHERE session_id = ?1",
        params![id.to_hex(), nickname],
    )
    .map(drop)
}

/// Sets the flags `set` (a constant `column = value, …`) of contact `id`.
fn update_contact(
    conn: &Connection,
    id: &SessionId,
    set: &'static str,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        &format!("UPDATE contacts SET {set} WHERE session_id = ?1"),
        params![id.to_hex()],
    )
    .map(drop)
}

/// Approves `id` (its block, if any, stays).
pub(crate) fn approve(conn: &Connection, id: &SessionId) -> rusqlite_cipher::Result<()> {
    update_contact(conn, id, "approved = 1")
}

/// Notes that `id` accepted our conversation.
pub(crate) fn set_approved_me(conn: &Connection, id: &SessionId) -> rusqlite_cipher::Result<()> {
    update_contact(conn, id, "approved_me = 1")
}

/// Sets (or with `None` clears) the nickname of `id`.
pub(crate) fn set_nickname(
    conn: &Connection,
    id: &SessionId,
    nickname: Option<&str>,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "UPDATE contacts SET nickname = ?2 WHERE session_id = ?1",
        params![id.to_hex(), nickname],
    )
    .map(drop)
}

/// Sets the display name of `id` from a profile updated at `updated_s`, unless the one we
/// have is newer.
pub(crate) fn update_display_name(
    conn: &Connection,
    id: &SessionId,
    name: &str,
    updated_s: u64,
) -> rusqlite_cipher::Result<bool> {
    conn.execute(
        "UPDATE contacts SET display_name = ?2, profile_updated_s = ?3
         WHERE session_id = ?1 AND (display_name IS NULL OR profile_updated_s <= ?3)",
        params![id.to_hex(), name, i("updated_s", updated_s)?],
    )
    .map(|rows| rows > 0)
}

/// Approved contacts other than `me`, by name.
pub(crate) fn approved_contacts(
    conn: &Connection,
    me: &SessionId,
) -> rusqlite_cipher::Result<Vec<Contact>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE approved = 1 AND session_id != ?1
         ORDER BY COALESCE(nickname, display_name, session_id)"
    ))?;
    stmt.query_map(params![me.to_hex()], contact_row)
        .and_then(Iterator::collect)
}

/// Blocked contacts, by name.
pub(crate) fn blocked_contacts(conn: &Connection) -> rusqlite_cipher::Result<Vec<Contact>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE blocked = 1
         ORDER BY COALESCE(nickname, display_name, session_id)"
    ))?;
    stmt.query_map([], contact_row).and_then(Iterator::collect)
}

/// Unblocked contacts with at least one message, accepted (`approved`) or requests.
pub(crate) fn contacts_with_messages(
    conn: &Connection,
    approved: bool,
) -> rusqlite_cipher::Result<Vec<Contact>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE blocked = 0 AND approved = ?1
         AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation = c.session_id)"
    ))?;
    stmt.query_map(params![approved], contact_row)
        .and_then(Iterator::collect)
}

/// Deletes an unaccepted conversation of `id` (its messages and its unblocked contact row);
/// an accepted one keeps its history.
pub(crate) fn delete_request(conn: &Connection, id: &SessionId) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "DELETE FROM messages WHERE conversation = ?1 AND EXISTS
             (SELECT 1 FROM contacts WHERE session_id = ?1 AND approved = 0)",
        params![id.to_hex()],
    )?;
    conn.execute(
        "DELETE FROM contacts WHERE session_id = ?1 AND approved = 0 AND blocked = 0",
        params![id.to_hex()],
    )
    .map(drop)
}

/// Blocks `id` (and withdraws its approval).
pub(crate) fn block_contact(conn: &Connection, id: &SessionId) -> rusqlite_cipher::Result<()> {
    update_contact(conn, id, "blocked = 1, approved = 0")
}

/// Unblocks `id`, whose conversation becomes an accepted one.
pub(crate) fn unblock_contact(conn: &Connection, id: &SessionId) -> rusqlite_cipher::Result<()> {
    update_contact(conn, id, "blocked = 0, approved = 1")
}

/// Sets the disappearing-messages mode of the conversation with `id`; returns whether it
/// changed.
pub(crate) fn set_contact_timer(
    conn: &Connection,
    id: &SessionId,
    mode: Disappearing,
) -> rusqlite_cipher::Result<bool> {
    let (kind, timer) = mode.wire();
    let changed = conn.execute(
        "UPDATE contacts SET expiration_type = ?2, expiration_timer_s = ?3
         WHERE session_id = ?1 AND (expiration_type != ?2 OR expiration_timer_s != ?3)",
        params![id.to_hex(), kind, timer],
    )?;
    Ok(changed > 0)
}

// ----- messages ----------------------------------------------------------------------------

/// Unexpired messages of the conversation with `with`, oldest first.
pub(crate) fn history(
    conn: &Connection,
    with: &SessionId,
    now: u64,
) -> rusqlite_cipher::Result<Vec<Message>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation = ?1
         AND (expires_at_ms IS NULL OR expires_at_ms > ?2) ORDER BY sent_ms, id"
    ))?;
    stmt.query_map(params![with.to_hex(), i("now", now)?], message_row)
        .and_then(Iterator::collect)
}

/// The newest `limit` unexpired messages of the conversation with `with`, oldest first, and
/// whether older ones exist.
pub(crate) fn recent_history(
    conn: &Connection,
    with: &SessionId,
    now: u64,
    limit: usize,
) -> rusqlite_cipher::Result<(Vec<Message>, bool)> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation = ?1
         AND (expires_at_ms IS NULL OR expires_at_ms > ?2) ORDER BY sent_ms DESC, id DESC
         LIMIT ?3"
    ))?;
    let newest: Vec<Message> = stmt
        .query_map(
            params![
                with.to_hex(),
                i("now", now)?,
                i("limit", limit.saturating_add(1) as u64)?
            ],
            message_row,
        )
        .and_then(Iterator::collect)?;
    Ok(oldest_first_page(newest, limit))
}

/// The rows of a newest-first query asked for `limit + 1`: the newest `limit`, oldest first,
/// and whether there were more.
fn oldest_first_page<T>(mut newest: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let more = newest.len() > limit;
    newest.truncate(limit);
    newest.reverse();
    (newest, more)
}

/// Unread, unexpired incoming messages of the conversation with `with`.
pub(crate) fn unread_count(
    conn: &Connection,
    with: &SessionId,
    now: u64,
) -> rusqlite_cipher::Result<u64> {
    conn.query_row(
        "SELECT count(*) FROM messages WHERE conversation = ?1 AND outgoing = 0
         AND read_ms IS NULL AND (expires_at_ms IS NULL OR expires_at_ms > ?2)",
        params![with.to_hex(), i("now", now)?],
        |r| r.get(0),
    )
    .and_then(|n| u("unread count", n))
}

/// The newest unexpired message of the conversation with `with`.
pub(crate) fn last_message(
    conn: &Connection,
    with: &SessionId,
    now: u64,
) -> rusqlite_cipher::Result<Option<Message>> {
    conn.query_row(
        &format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation = ?1
             AND (expires_at_ms IS NULL OR expires_at_ms > ?2)
             ORDER BY sent_ms DESC, id DESC LIMIT 1"
        ),
        params![with.to_hex(), i("now", now)?],
        message_row,
    )
    .optional()
}

/// The message `author` sent at `sent_ms`.
pub(crate) fn message_by(
    conn: &Connection,
    author: &SessionId,
    sent_ms: u64,
) -> rusqlite_cipher::Result<Message> {
    conn.query_row(
        &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE author = ?1 AND sent_ms = ?2"),
        params![author.to_hex(), i("sent_ms", sent_ms)?],
        message_row,
    )
}

/// Whether (`author`, `sent_ms`) names a message we have or one that was unsent.
pub(crate) fn sent_time_taken(
    conn: &Connection,
    author: &SessionId,
    sent_ms: u64,
) -> rusqlite_cipher::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE author = ?1 AND sent_ms = ?2)
         OR EXISTS (SELECT 1 FROM unsent WHERE author = ?1 AND sent_ms = ?2)",
        params![author.to_hex(), i("sent_ms", sent_ms)?],
        |r| r.get(0),
    )
}

/// The insert of a message row: `INSERT` or `INSERT OR IGNORE`.
fn insert_message_row(
    conn: &Connection,
    verb: &str,
    m: &Message,
) -> rusqlite_cipher::Result<usize> {
    let (kind, timer) = m.disappearing.wire();
    conn.execute(
        &format!(
            "{verb} INTO messages (conversation, author, sent_ms, body, outgoing, status,
                 received_ms, read_ms, read_by_peer, expiration_type, expiration_timer_s,
                 expires_at_ms, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ),
        params![
            m.conversation.to_hex(),
            m.author.to_hex(),
            i("sent_ms", m.sent_ms)?,
            m.body,
            m.outgoing,
            m.status.to_i64(),
            i("received_ms", m.received_ms)?,
            i_opt("read_ms", m.read_ms)?,
            m.read_by_peer,
            kind,
            timer,
            i_opt("expires_at_ms", m.expires_at_ms)?,
            m.hash.as_ref().map(MessageHash::as_str)
        ],
    )
}

/// Saves a new message; returns its row id. (author, sent time) must be new.
pub(crate) fn insert_message(conn: &Connection, m: &Message) -> rusqlite_cipher::Result<i64> {
    insert_message_row(conn, "INSERT", m)?;
    Ok(conn.last_insert_rowid())
}

/// Saves a message unless (author, sent time) is already there; returns whether it was new.
pub(crate) fn insert_message_if_new(
    conn: &Connection,
    m: &Message,
) -> rusqlite_cipher::Result<bool> {
    Ok(insert_message_row(conn, "INSERT OR IGNORE", m)? > 0)
}

/// Sets the storage hash of message `id`.
pub(crate) fn set_message_hash(
    conn: &Connection,
    id: i64,
    hash: &MessageHash,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "UPDATE messages SET hash = ?2 WHERE id = ?1",
        params![id, hash.as_str()],
    )
    .map(drop)
}

/// Marks message `id` sent, if it was still queued.
pub(crate) fn mark_message_sent(conn: &Connection, id: i64) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "UPDATE messages SET status = ?2 WHERE id = ?1 AND status = ?3",
        params![
            id,
            MessageStatus::Sent.to_i64(),
            MessageStatus::Queued.to_i64()
        ],
    )
    .map(drop)
}

/// Marks message `id` failed.
pub(crate) fn mark_message_failed(conn: &Connection, id: i64) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "UPDATE messages SET status = ?2 WHERE id = ?1",
        params![id, MessageStatus::Failed.to_i64()],
    )
    .map(drop)
}

/// Unread incoming messages of the conversation with `with`, with their row ids.
pub(crate) fn unread_incoming(
    conn: &Connection,
    with: &SessionId,
) -> rusqlite_cipher::Result<Vec<(i64, Message)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT id, {MESSAGE_COLUMNS} FROM messages WHERE conversation = ?1
         AND outgoing = 0 AND read_ms IS NULL"
    ))?;
    stmt.query_map(params![with.to_hex()], |r| {
        Ok((r.get(0)?, message_row_at(r, 1)?))
    })
    .and_then(Iterator::collect)
}

/// Marks message `id` read at `now`, expiring at `expires_at_ms`.
pub(crate) fn mark_message_read(
    conn: &Connection,
    id: i64,
    now: u64,
    expires_at_ms: Option<u64>,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "UPDATE messages SET read_ms = ?2, expires_at_ms = ?3 WHERE id = ?1",
        params![id, i("now", now)?, i_opt("expires_at_ms", expires_at_ms)?],
    )
    .map(drop)
}

/// Notes that the peer of a conversation read our messages sent at `sent_ms`.
pub(crate) fn mark_read_by_peer(
    conn: &Connection,
    peer: &SessionId,
    me: &SessionId,
    sent_ms: u64,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "UPDATE messages SET read_by_peer = 1
         WHERE conversation = ?1 AND author = ?2 AND sent_ms = ?3",
        params![peer.to_hex(), me.to_hex(), i("sent_ms", sent_ms)?],
    )
    .map(drop)
}

/// A message row found by an unsend: its row id, author (or conversation) and hash.
pub(crate) struct MessageRef {
    /// Row id.
    pub(crate) id: i64,
    /// The author ([`ours_at`]) or the conversation ([`by_author_at`]).
    pub(crate) who: SessionId,
    /// Storage hash, if known.
    pub(crate) hash: Option<MessageHash>,
}

/// The message of the conversation with `with` sent at `sent_ms` (ours first), with its
/// author.
pub(crate) fn ours_at(
    conn: &Connection,
    with: &SessionId,
    sent_ms: u64,
) -> rusqlite_cipher::Result<Option<MessageRef>> {
    conn.query_row(
        "SELECT id, author, hash FROM messages WHERE conversation = ?1 AND sent_ms = ?2
         ORDER BY outgoing DESC LIMIT 1",
        params![with.to_hex(), i("sent_ms", sent_ms)?],
        |r| {
            Ok(MessageRef {
                id: r.get(0)?,
                who: sid(&r.get::<_, String>(1)?)?,
                hash: parse_hash_opt(r.get(2)?)?,
            })
        },
    )
    .optional()
}

/// The message `author` sent at `sent_ms`, with its conversation.
pub(crate) fn by_author_at(
    conn: &Connection,
    author: &SessionId,
    sent_ms: u64,
) -> rusqlite_cipher::Result<Option<MessageRef>> {
    conn.query_row(
        "SELECT id, conversation, hash FROM messages WHERE author = ?1 AND sent_ms = ?2",
        params![author.to_hex(), i("sent_ms", sent_ms)?],
        |r| {
            Ok(MessageRef {
                id: r.get(0)?,
                who: sid(&r.get::<_, String>(1)?)?,
                hash: parse_hash_opt(r.get(2)?)?,
            })
        },
    )
    .optional()
}

/// Deletes message `id`.
pub(crate) fn delete_message(conn: &Connection, id: i64) -> rusqlite_cipher::Result<()> {
    conn.execute("DELETE FROM messages WHERE id = ?1", params![id])
        .map(drop)
}

/// Deletes every message of the conversation with `with`.
pub(crate) fn delete_conversation(
    conn: &Connection,
    with: &SessionId,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "DELETE FROM messages WHERE conversation = ?1",
        params![with.to_hex()],
    )
    .map(drop)
}

/// Remembers until `until_ms` that (`author`, `sent_ms`) was unsent.
pub(crate) fn insert_tombstone(
    conn: &Connection,
    author: &SessionId,
    sent_ms: u64,
    until_ms: u64,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO unsent (author, sent_ms, until_ms) VALUES (?1, ?2, ?3)",
        params![
            author.to_hex(),
            i("sent_ms", sent_ms)?,
            i("until_ms", until_ms)?
        ],
    )
    .map(drop)
}

/// Whether (`author`, `sent_ms`) was unsent.
pub(crate) fn is_tombstoned(
    conn: &Connection,
    author: &SessionId,
    sent_ms: u64,
) -> rusqlite_cipher::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM unsent WHERE author = ?1 AND sent_ms = ?2)",
        params![author.to_hex(), i("sent_ms", sent_ms)?],
        |r| r.get(0),
    )
}

/// Deletes messages expired at `now`, and dedup state and tombstones due to be forgotten;
/// returns how many messages were deleted.
pub(crate) fn purge_expired(conn: &Connection, now: u64) -> rusqlite_cipher::Result<usize> {
    let now = i("now", now)?;
    let n = conn.execute(
        "DELETE FROM messages WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?1",
        params![now],
    )? + conn.execute(
        "DELETE FROM group_messages WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?1",
        params![now],
    )?;
    conn.execute("DELETE FROM seen WHERE forget_after_ms <= ?1", params![now])?;
    conn.execute("DELETE FROM unsent WHERE until_ms <= ?1", params![now])?;
    Ok(n)
}

// ----- outbox ------------------------------------------------------------------------------

/// Entries in the outbox.
pub(crate) fn outbox_len(conn: &Connection) -> rusqlite_cipher::Result<i64> {
    conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
}

/// The outbox as shown to the user (`me` owns the entries for our own swarm).
pub(crate) fn outbox_entries(
    conn: &Connection,
    me: &SessionId,
) -> rusqlite_cipher::Result<Vec<OutboxEntry>> {
    let mut stmt = conn.prepare(
        "SELECT o.id, o.kind, o.owner, m.conversation, m.sent_ms, o.attempts,
                o.next_attempt_ms, o.last_error
         FROM outbox o LEFT JOIN messages m ON m.id = o.message_id
         WHERE o.kind <> 'group' ORDER BY o.id",
    )?;
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
            owner: if owner.is_empty() { *me } else { sid(&owner)? },
            message: match (conv, sent) {
                (Some(c), Some(s)) => Some((sid(&c)?, u("sent_ms", s)?)),
                _ => None,
            },
            attempts: u("attempts", r.get(5)?)?,
            next_attempt_ms: u("next_attempt_ms", r.get(6)?)?,
            last_error: r.get(7)?,
        })
    })
    .and_then(Iterator::collect)
}

/// A store to queue: the encoded message for `owner`'s swarm (namespace 0).
pub(crate) struct NewStore<'a> {
    /// "message", "sync" or "control".
    pub(crate) kind: &'a str,
    /// Whose swarm stores it.
    pub(crate) owner: &'a SessionId,
    /// The encoded message.
    pub(crate) data: &'a [u8],
    /// Its storage hash.
    pub(crate) hash: &'a MessageHash,
    /// Its timestamp (the sent time).
    pub(crate) timestamp_ms: u64,
    /// Its storage TTL.
    pub(crate) ttl_ms: u64,
    /// The message row it delivers, if any.
    pub(crate) message_id: Option<i64>,
    /// Whether its acknowledgement marks that message sent.
    pub(crate) is_primary: bool,
}

/// Adds a store to the outbox, due at once.
pub(crate) fn queue_store(conn: &Connection, s: &NewStore<'_>) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT INTO outbox (op, kind, owner, namespace, data, hashes, timestamp_ms, ttl_ms,
                             message_id, is_primary, next_attempt_ms)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, 0)",
        params![
            OP_STORE,
            s.kind,
            s.owner.to_hex(),
            s.data,
            s.hash.as_str(),
            i("timestamp_ms", s.timestamp_ms)?,
            i("ttl_ms", s.ttl_ms)?,
            s.message_id,
            s.is_primary
        ],
    )
    .map(drop)
}

/// Adds a delete ([`OP_DELETE`]) or shortened expiry ([`OP_EXPIRE`], to `expiry_ms`) of our
/// own swarm's `hashes` to the outbox, due at once.
pub(crate) fn queue_own_swarm_op(
    conn: &Connection,
    op: i64,
    hashes: &[MessageHash],
    expiry_ms: u64,
    now: u64,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT INTO outbox (op, kind, owner, hashes, timestamp_ms, ttl_ms, next_attempt_ms)
         VALUES (?1, ?2, '', ?3, ?4, ?5, 0)",
        params![
            op,
            if op == OP_DELETE { "delete" } else { "expire" },
            hashes
                .iter()
                .map(MessageHash::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            i("now", now)?,
            i("expiry_ms", expiry_ms)?
        ],
    )
    .map(drop)
}

/// A row of the outbox, as flush reads it.
pub(crate) struct Pending {
    pub(crate) id: i64,
    pub(crate) op: i64,
    /// "group" for a group message (its `message_id` is a `group_messages` row).
    pub(crate) kind: String,
    pub(crate) owner: String,
    pub(crate) namespace: i32,
    pub(crate) data: Vec<u8>,
    pub(crate) hashes: Vec<MessageHash>,
    pub(crate) timestamp_ms: u64,
    pub(crate) ttl_ms: u64,
    pub(crate) message_id: Option<i64>,
    pub(crate) is_primary: bool,
    pub(crate) attempts: u32,
}

/// Up to `limit` outbox entries due at `now`, oldest first.
pub(crate) fn due_entries(
    conn: &Connection,
    now: u64,
    limit: i64,
) -> rusqlite_cipher::Result<Vec<Pending>> {
    let mut stmt = conn.prepare(
        "SELECT id, op, owner, namespace, data, hashes, timestamp_ms, ttl_ms, message_id,
                is_primary, attempts, kind
         FROM outbox WHERE next_attempt_ms <= ?1 ORDER BY id LIMIT ?2",
    )?;
    stmt.query_map(params![i("now", now)?, limit], |r| {
        let hashes: String = r.get(5)?;
        Ok(Pending {
            id: r.get(0)?,
            op: r.get(1)?,
            owner: r.get(2)?,
            namespace: r.get(3)?,
            data: r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
            hashes: hashes
                .split_whitespace()
                .map(parse_hash)
                .collect::<rusqlite_cipher::Result<_>>()?,
            timestamp_ms: u("timestamp_ms", r.get(6)?)?,
            ttl_ms: u("ttl_ms", r.get(7)?)?,
            message_id: r.get(8)?,
            is_primary: r.get(9)?,
            attempts: u("attempts", r.get(10)?)?,
            kind: r.get(11)?,
        })
    })
    .and_then(Iterator::collect)
}

/// Removes outbox entry `id`.
pub(crate) fn delete_outbox_entry(conn: &Connection, id: i64) -> rusqlite_cipher::Result<()> {
    conn.execute("DELETE FROM outbox WHERE id = ?1", params![id])
        .map(drop)
}

/// Records a failed attempt of outbox entry `id` and when to try again.
pub(crate) fn retry_outbox_entry(
    conn: &Connection,
    id: i64,
    attempts: u32,
    next_attempt_ms: u64,
    last_error: &str,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "UPDATE outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1",
        params![
            id,
            attempts,
            i("next_attempt_ms", next_attempt_ms)?,
            last_error
        ],
    )
    .map(drop)
}

// ----- receiving ---------------------------------------------------------------------------

/// Where retrieving from `node` resumes (namespace 0).
pub(crate) fn cursor(
    conn: &Connection,
    node: &str,
) -> rusqlite_cipher::Result<Option<MessageHash>> {
    conn.query_row(
        "SELECT last_hash FROM cursors WHERE node = ?1 AND namespace = 0",
        params![node],
        |r| parse_hash(&r.get::<_, String>(0)?),
    )
    .optional()
}

/// Moves the retrieve position of `node` (namespace 0) to `last_hash`.
pub(crate) fn set_cursor(
    conn: &Connection,
    node: &str,
    last_hash: &MessageHash,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT INTO cursors (node, namespace, last_hash) VALUES (?1, 0, ?2)
         ON CONFLICT (node, namespace) DO UPDATE SET last_hash = excluded.last_hash",
        params![node, last_hash.as_str()],
    )
    .map(drop)
}

/// Whether a stored message's `hash` was processed already.
pub(crate) fn is_seen(conn: &Connection, hash: &MessageHash) -> rusqlite_cipher::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM seen WHERE hash = ?1)",
        params![hash.as_str()],
        |r| r.get(0),
    )
}

/// Remembers `hash` as processed until `forget_after_ms`.
pub(crate) fn mark_seen(
    conn: &Connection,
    hash: &MessageHash,
    forget_after_ms: u64,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT INTO seen (hash, forget_after_ms) VALUES (?1, ?2)",
        params![hash.as_str(), i("forget_after_ms", forget_after_ms)?],
    )
    .map(drop)
}

/// One saved attachment row.
pub(crate) struct AttachmentRow {
    /// The message it belongs to.
    pub(crate) message_id: MessageId,
    /// Its position in the message.
    pub(crate) idx: i64,
    /// The pointer, checked when it was saved.
    pub(crate) attachment: Attachment,
    /// [`AttachmentState`] as stored.
    pub(crate) state: i64,
    /// The local file, once there is one.
    pub(crate) path: Option<String>,
}

/// `(chat, message_id)` columns of a message id (migration 5).
fn chat_of(id: MessageId) -> (i64, i64) {
    match id {
        MessageId::Direct(n) => (0, n),
        MessageId::Group(n) => (1, n),
    }
}

/// Saves attachment `idx` of message `message_id` in `state`.
pub(crate) fn insert_attachment(
    conn: &Connection,
    message_id: MessageId,
    idx: i64,
    a: &Attachment,
    state: i64,
    path: Option<&str>,
) -> rusqlite_cipher::Result<()> {
    let (chat, id) = chat_of(message_id);
    conn.execute(
        "INSERT OR REPLACE INTO attachments (chat, message_id, idx, url, key, size, digest,
             file_name, content_type, width, height, caption, voice, state, path)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            chat,
            id,
            idx,
            a.url.to_url(),
            a.key.as_slice(),
            i64::from(a.size),
            a.digest.as_ref().map(|d| d.as_slice()),
            a.file_name,
            a.content_type,
            a.width.map(i64::from),
            a.height.map(i64::from),
            a.caption,
            i64::from(a.voice_message),
            state,
            path,
        ],
    )
    .map(drop)
}

const ATTACHMENT_COLUMNS: &str = "a.message_id, a.idx, a.url, a.key, a.size, a.digest, \
     a.file_name, a.content_type, a.width, a.height, a.caption, a.voice, a.state, a.path, a.chat";
/// How many columns [`ATTACHMENT_COLUMNS`] has (a message's columns follow them).
const ATTACHMENT_COLUMN_COUNT: usize = 15;

fn attachment_row(r: &Row<'_>) -> rusqlite_cipher::Result<AttachmentRow> {
    let bad = |what: &str| {
        rusqlite_cipher::Error::InvalidColumnType(
            0,
            format!("attachment {what}"),
            rusqlite_cipher::types::Type::Blob,
        )
    };
    let key: Vec<u8> = r.get(3)?;
    let digest: Option<Vec<u8>> = r.get(5)?;
    let url: String = r.get(2)?;
    let pointer = AttachmentPointer {
        deprecated_id: 0,
        content_type: r.get(7)?,
        key: Some(key),
        size: Some(u("attachment size", r.get(4)?)?),
        digest,
        file_name: r.get(6)?,
        flags: Some(u("attachment flags", r.get(11)?)?),
        width: u_opt("attachment width", r.get(8)?)?,
        height: u_opt("attachment height", r.get(9)?)?,
        caption: r.get(10)?,
        url: Some(url),
    };
    let attachment = Attachment::from_pointer(&pointer).map_err(|_| bad("pointer"))?;
    let id: i64 = r.get(0)?;
    let message_id = match r.get::<_, i64>(14)? {
        0 => MessageId::Direct(id),
        1 => MessageId::Group(id),
        _ => return Err(bad("chat")),
    };
    Ok(AttachmentRow {
        message_id,
        idx: r.get(1)?,
        attachment,
        state: r.get(12)?,
        path: r.get(13)?,
    })
}

/// The attachments of the messages of a conversation, oldest message first.
pub(crate) fn conversation_attachments(
    conn: &Connection,
    conversation: &SessionId,
) -> rusqlite_cipher::Result<Vec<(AttachmentRow, Message)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ATTACHMENT_COLUMNS}, {MESSAGE_COLUMNS_M} FROM attachments a
         JOIN messages m ON a.chat = 0 AND m.id = a.message_id
         WHERE m.conversation = ?1 ORDER BY m.sent_ms, a.message_id, a.idx"
    ))?;
    let rows = stmt.query_map(params![conversation.to_hex()], |r| {
        Ok((
            attachment_row(r)?,
            message_row_at(r, ATTACHMENT_COLUMN_COUNT)?,
        ))
    })?;
    rows.collect()
}

/// The attachments of the messages of group `id` not expired at `now`, oldest message first.
pub(crate) fn group_attachments(
    conn: &Connection,
    id: &str,
    now: u64,
) -> rusqlite_cipher::Result<Vec<(AttachmentRow, super::model::GroupChatMessage)>> {
    let columns = GROUP_MESSAGE_COLUMNS
        .split(", ")
        .map(|c| format!("g.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare(&format!(
        "SELECT {ATTACHMENT_COLUMNS}, {columns} FROM attachments a
         JOIN group_messages g ON a.chat = 1 AND g.id = a.message_id
         WHERE g.group_id = ?1 AND (g.expires_at_ms IS NULL OR g.expires_at_ms > ?2)
         ORDER BY g.sent_ms, a.message_id, a.idx"
    ))?;
    let rows = stmt.query_map(params![id, i("now", now)?], |r| {
        Ok((
            attachment_row(r)?,
            group_message_row_at(r, ATTACHMENT_COLUMN_COUNT)?,
        ))
    })?;
    rows.collect()
}

/// The attachments of message `message_id`, in order.
pub(crate) fn message_attachments(
    conn: &Connection,
    message_id: MessageId,
) -> rusqlite_cipher::Result<Vec<AttachmentRow>> {
    let (chat, id) = chat_of(message_id);
    let mut stmt = conn.prepare(&format!(
        "SELECT {ATTACHMENT_COLUMNS} FROM attachments a
         WHERE a.chat = ?1 AND a.message_id = ?2 ORDER BY a.idx"
    ))?;
    let rows = stmt.query_map(params![chat, id], attachment_row)?;
    rows.collect()
}

/// Records where attachment (`message_id`, `idx`) stands.
pub(crate) fn set_attachment_state(
    conn: &Connection,
    message_id: MessageId,
    idx: i64,
    state: i64,
    path: Option<&str>,
) -> rusqlite_cipher::Result<()> {
    let (chat, id) = chat_of(message_id);
    conn.execute(
        "UPDATE attachments SET state = ?4, path = ?5
         WHERE chat = ?1 AND message_id = ?2 AND idx = ?3",
        params![chat, id, idx, state, path],
    )
    .map(drop)
}

// ----- config sync -------------------------------------------------------------------------

/// Where retrieving `namespace` from `node` resumes.
pub(crate) fn cursor_in(
    conn: &Connection,
    node: &str,
    namespace: i32,
) -> rusqlite_cipher::Result<Option<MessageHash>> {
    conn.query_row(
        "SELECT last_hash FROM cursors WHERE node = ?1 AND namespace = ?2",
        params![node, namespace],
        |r| parse_hash(&r.get::<_, String>(0)?),
    )
    .optional()
}

/// Moves the retrieve position of `namespace` at `node` to `last_hash`.
pub(crate) fn set_cursor_in(
    conn: &Connection,
    node: &str,
    namespace: i32,
    last_hash: &MessageHash,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT INTO cursors (node, namespace, last_hash) VALUES (?1, ?2, ?3)
         ON CONFLICT (node, namespace) DO UPDATE SET last_hash = excluded.last_hash",
        params![node, namespace, last_hash.as_str()],
    )
    .map(drop)
}

/// A contact's state as the synced contacts config holds it.
pub(crate) struct SyncedContact<'a> {
    pub(crate) nickname: Option<&'a str>,
    pub(crate) display_name: Option<&'a str>,
    pub(crate) approved: bool,
    pub(crate) approved_me: bool,
    pub(crate) blocked: bool,
    pub(crate) disappearing: Disappearing,
}

/// Applies the synced state of contact `id` (created if missing). Approvals only ever turn
/// on (no device un-approves); the nickname, block and timer follow the config; the display
/// name fills a missing one only (their own messages carry newer profiles).
pub(crate) fn apply_synced_contact(
    conn: &Connection,
    id: &SessionId,
    c: &SyncedContact<'_>,
) -> rusqlite_cipher::Result<()> {
    ensure_contact(conn, id)?;
    let (kind, timer) = c.disappearing.wire();
    conn.execute(
        "UPDATE contacts SET nickname = ?2, display_name = COALESCE(display_name, ?3),
             approved = approved OR ?4, approved_me = approved_me OR ?5, blocked = ?6,
             expiration_type = ?7, expiration_timer_s = ?8
         WHERE session_id = ?1",
        params![
            id.to_hex(),
            c.nickname,
            c.display_name,
            c.approved,
            c.approved_me,
            c.blocked,
            kind,
            timer
        ],
    )
    .map(drop)
}

/// Marks incoming messages of the conversation with `with` sent up to `last_read_ms` read
/// at `now` (read on another device), starting their delete-after-read timers. Returns how
/// many changed.
pub(crate) fn mark_read_until(
    conn: &Connection,
    with: &SessionId,
    last_read_ms: u64,
    now: u64,
) -> rusqlite_cipher::Result<usize> {
    let (after_read, _) = Disappearing::AfterRead { seconds: 1 }.wire();
    let now = i("now", now)?;
    conn.execute(
        "UPDATE messages SET read_ms = ?3,
             expires_at_ms = CASE WHEN expiration_type = ?4 AND expiration_timer_s > 0
                 THEN ?3 + expiration_timer_s * 1000 ELSE expires_at_ms END
         WHERE conversation = ?1 AND outgoing = 0 AND read_ms IS NULL AND sent_ms <= ?2",
        params![
            with.to_hex(),
            i("last_read_ms", last_read_ms)?,
            now,
            after_read
        ],
    )
}

// ----- groups ------------------------------------------------------------------------------

/// A group row as stored.
pub(crate) struct GroupRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) status: i64,
    pub(crate) admin_seed: Option<Vec<u8>>,
    pub(crate) member_auth: Option<Vec<u8>>,
    pub(crate) invited_by: Option<String>,
    pub(crate) joined_ms: u64,
}

const GROUP_COLUMNS: &str = "id, name, status, admin_seed, member_auth, invited_by, joined_ms";

fn group_row(r: &Row<'_>) -> rusqlite_cipher::Result<GroupRow> {
    Ok(GroupRow {
        id: r.get(0)?,
        name: r.get(1)?,
        status: r.get(2)?,
        admin_seed: r.get(3)?,
        member_auth: r.get(4)?,
        invited_by: r.get(5)?,
        joined_ms: u("joined_ms", r.get(6)?)?,
    })
}

/// The group `id`, if known.
pub(crate) fn group(conn: &Connection, id: &str) -> rusqlite_cipher::Result<Option<GroupRow>> {
    conn.query_row(
        &format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?1"),
        params![id],
        group_row,
    )
    .optional()
}

/// Every group, by id.
pub(crate) fn groups(conn: &Connection) -> rusqlite_cipher::Result<Vec<GroupRow>> {
    let mut stmt = conn.prepare(&format!("SELECT {GROUP_COLUMNS} FROM groups ORDER BY id"))?;
    stmt.query_map([], group_row).and_then(Iterator::collect)
}

/// Adds or replaces a group row.
pub(crate) fn put_group(conn: &Connection, g: &GroupRow) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT INTO groups (id, name, status, admin_seed, member_auth, invited_by, joined_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status,
           admin_seed = excluded.admin_seed, member_auth = excluded.member_auth,
           invited_by = excluded.invited_by, joined_ms = excluded.joined_ms",
        params![
            g.id,
            g.name,
            g.status,
            g.admin_seed,
            g.member_auth,
            g.invited_by,
            i("joined_ms", g.joined_ms)?
        ],
    )
    .map(drop)
}

/// Sets a group's status (and name, when given).
pub(crate) fn set_group_status(
    conn: &Connection,
    id: &str,
    status: i64,
    name: Option<&str>,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "UPDATE groups SET status = ?2, name = COALESCE(?3, name) WHERE id = ?1",
        params![id, status, name],
    )
    .map(drop)
}

/// Forgets a group: its row, swarm data, positions and messages.
pub(crate) fn delete_group(conn: &Connection, id: &str) -> rusqlite_cipher::Result<()> {
    for table in ["group_data", "group_cursors", "group_messages"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE group_id = ?1"),
            params![id],
        )?;
    }
    conn.execute("DELETE FROM groups WHERE id = ?1", params![id])
        .map(drop)
}

/// Keeps a verified message of a group swarm namespace (12, 13 or 14).
pub(crate) fn put_group_data(
    conn: &Connection,
    id: &str,
    namespace: i32,
    hash: &MessageHash,
    data: &[u8],
    timestamp_ms: u64,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO group_data (group_id, namespace, hash, data, timestamp_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            id,
            namespace,
            hash.as_str(),
            data,
            i("timestamp_ms", timestamp_ms)?
        ],
    )
    .map(drop)
}

/// The kept messages of a group namespace, in the order they were kept.
pub(crate) fn group_data(
    conn: &Connection,
    id: &str,
    namespace: i32,
) -> rusqlite_cipher::Result<Vec<(MessageHash, Vec<u8>, u64)>> {
    let mut stmt = conn.prepare(
        "SELECT hash, data, timestamp_ms FROM group_data WHERE group_id = ?1 AND namespace = ?2
         ORDER BY seq",
    )?;
    stmt.query_map(params![id, namespace], |r| {
        Ok((
            parse_hash(&r.get::<_, String>(0)?)?,
            r.get(1)?,
            u("timestamp_ms", r.get(2)?)?,
        ))
    })
    .and_then(Iterator::collect)
}

/// Drops the kept messages of a group namespace that are not in `keep`.
pub(crate) fn prune_group_data(
    conn: &Connection,
    id: &str,
    namespace: i32,
    keep: &[MessageHash],
) -> rusqlite_cipher::Result<()> {
    for (hash, _, _) in group_data(conn, id, namespace)? {
        if !keep.contains(&hash) {
            conn.execute(
                "DELETE FROM group_data WHERE group_id = ?1 AND namespace = ?2 AND hash = ?3",
                params![id, namespace, hash.as_str()],
            )?;
        }
    }
    Ok(())
}

/// Where retrieving a group namespace resumes.
pub(crate) fn group_cursor(
    conn: &Connection,
    id: &str,
    namespace: i32,
) -> rusqlite_cipher::Result<Option<MessageHash>> {
    conn.query_row(
        "SELECT last_hash FROM group_cursors WHERE group_id = ?1 AND namespace = ?2",
        params![id, namespace],
        |r| parse_hash(&r.get::<_, String>(0)?),
    )
    .optional()
}

/// Moves the retrieve position of a group namespace.
pub(crate) fn set_group_cursor(
    conn: &Connection,
    id: &str,
    namespace: i32,
    last_hash: &MessageHash,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT INTO group_cursors (group_id, namespace, last_hash) VALUES (?1, ?2, ?3)
         ON CONFLICT (group_id, namespace) DO UPDATE SET last_hash = excluded.last_hash",
        params![id, namespace, last_hash.as_str()],
    )
    .map(drop)
}

/// Saves a group message unless (group, author, sent time) is known; whether it was new.
pub(crate) fn insert_group_message(
    conn: &Connection,
    m: &super::model::GroupChatMessage,
) -> rusqlite_cipher::Result<bool> {
    conn.execute(
        "INSERT OR IGNORE INTO group_messages
         (group_id, author, sent_ms, body, outgoing, received_ms, hash, status, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            m.group,
            m.author.to_hex(),
            i("sent_ms", m.sent_ms)?,
            m.body,
            m.outgoing,
            i("received_ms", m.received_ms)?,
            m.hash.as_ref().map(MessageHash::as_str),
            m.status.to_i64(),
            i_opt("expires_at_ms", m.expires_at_ms)?
        ],
    )
    .map(|n| n > 0)
}

/// The columns [`group_message_row`] reads, in its order.
const GROUP_MESSAGE_COLUMNS: &str =
    "group_id, author, sent_ms, body, outgoing, received_ms, hash, status, expires_at_ms";

fn group_message_row(r: &Row<'_>) -> rusqlite_cipher::Result<super::model::GroupChatMessage> {
    group_message_row_at(r, 0)
}

/// A group message read from [`GROUP_MESSAGE_COLUMNS`] starting at column `at`.
fn group_message_row_at(
    r: &Row<'_>,
    at: usize,
) -> rusqlite_cipher::Result<super::model::GroupChatMessage> {
    Ok(super::model::GroupChatMessage {
        group: r.get(at)?,
        author: sid(&r.get::<_, String>(at + 1)?)?,
        sent_ms: u("sent_ms", r.get(at + 2)?)?,
        body: r.get(at + 3)?,
        outgoing: r.get(at + 4)?,
        received_ms: u("received_ms", r.get(at + 5)?)?,
        hash: parse_hash_opt(r.get(at + 6)?)?,
        status: MessageStatus::from_i64(r.get(at + 7)?),
        expires_at_ms: u_opt("expires_at_ms", r.get(at + 8)?)?,
    })
}

/// The messages of a group not expired at `now`, oldest first.
pub(crate) fn group_history(
    conn: &Connection,
    id: &str,
    now: u64,
) -> rusqlite_cipher::Result<Vec<super::model::GroupChatMessage>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {GROUP_MESSAGE_COLUMNS} FROM group_messages WHERE group_id = ?1
         AND (expires_at_ms IS NULL OR expires_at_ms > ?2) ORDER BY sent_ms, id"
    ))?;
    stmt.query_map(params![id, i("now", now)?], group_message_row)
        .and_then(Iterator::collect)
}

/// The newest `limit` messages of group `id` not expired at `now`, oldest first, and whether
/// older ones exist.
pub(crate) fn recent_group_history(
    conn: &Connection,
    id: &str,
    now: u64,
    limit: usize,
) -> rusqlite_cipher::Result<(Vec<super::model::GroupChatMessage>, bool)> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {GROUP_MESSAGE_COLUMNS} FROM group_messages WHERE group_id = ?1
         AND (expires_at_ms IS NULL OR expires_at_ms > ?2) ORDER BY sent_ms DESC, id DESC
         LIMIT ?3"
    ))?;
    let newest: Vec<super::model::GroupChatMessage> = stmt
        .query_map(
            params![
                id,
                i("now", now)?,
                i("limit", limit.saturating_add(1) as u64)?
            ],
            group_message_row,
        )
        .and_then(Iterator::collect)?;
    Ok(oldest_first_page(newest, limit))
}

/// The newest message of group `id` not expired at `now`, how many incoming ones arrived
/// after `read_up_to_ms` (received time), and the newest received time.
pub(crate) fn group_activity(
    conn: &Connection,
    id: &str,
    now: u64,
    read_up_to_ms: u64,
) -> rusqlite_cipher::Result<super::model::GroupActivity> {
    let now = i("now", now)?;
    let last = conn
        .query_row(
            &format!(
                "SELECT {GROUP_MESSAGE_COLUMNS} FROM group_messages WHERE group_id = ?1
                 AND (expires_at_ms IS NULL OR expires_at_ms > ?2)
                 ORDER BY sent_ms DESC, id DESC LIMIT 1"
            ),
            params![id, now],
            group_message_row,
        )
        .optional()?;
    let (unread, newest): (i64, Option<i64>) = conn.query_row(
        "SELECT COUNT(*) FILTER (WHERE outgoing = 0 AND received_ms > ?3), MAX(received_ms)
         FROM group_messages WHERE group_id = ?1
         AND (expires_at_ms IS NULL OR expires_at_ms > ?2)",
        params![id, now, i("read_up_to_ms", read_up_to_ms)?],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(super::model::GroupActivity {
        last,
        unread: u("unread", unread)?,
        newest_received_ms: u_opt("newest", newest)?.unwrap_or(0),
    })
}

/// The message of group `id` stored under `hash`.
pub(crate) fn group_message_by_hash(
    conn: &Connection,
    id: &str,
    hash: &MessageHash,
) -> rusqlite_cipher::Result<Option<super::model::GroupChatMessage>> {
    conn.query_row(
        &format!(
            "SELECT {GROUP_MESSAGE_COLUMNS} FROM group_messages
             WHERE group_id = ?1 AND hash = ?2"
        ),
        params![id, hash.as_str()],
        group_message_row,
    )
    .optional()
}

/// Deletes the messages of group `id` stored under one of `hashes` (only those written by
/// `by`, when given) and every message written by one of `authors`; returns what was deleted.
pub(crate) fn delete_group_messages(
    conn: &Connection,
    id: &str,
    hashes: &[MessageHash],
    authors: &[SessionId],
    by: Option<&SessionId>,
) -> rusqlite_cipher::Result<Vec<super::model::GroupChatMessage>> {
    let mut gone = Vec::new();
    let by = by.map(SessionId::to_hex);
    let mut by_hash = conn.prepare(&format!(
        "DELETE FROM group_messages WHERE group_id = ?1 AND hash = ?2
         AND (?3 IS NULL OR author = ?3) RETURNING {GROUP_MESSAGE_COLUMNS}"
    ))?;
    for h in hashes {
        let rows = by_hash.query_map(params![id, h.as_str(), by], group_message_row)?;
        for m in rows {
            gone.push(m?);
        }
    }
    let mut by_author = conn.prepare(&format!(
        "DELETE FROM group_messages WHERE group_id = ?1 AND author = ?2
         RETURNING {GROUP_MESSAGE_COLUMNS}"
    ))?;
    for a in authors {
        let rows = by_author.query_map(params![id, a.to_hex()], group_message_row)?;
        for m in rows {
            gone.push(m?);
        }
    }
    Ok(gone)
}

/// Whether (group, author, sent time) already names a group message.
pub(crate) fn group_sent_time_taken(
    conn: &Connection,
    id: &str,
    author: &SessionId,
    sent_ms: u64,
) -> rusqlite_cipher::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM group_messages
         WHERE group_id = ?1 AND author = ?2 AND sent_ms = ?3)",
        params![id, author.to_hex(), i("sent_ms", sent_ms)?],
        |r| r.get(0),
    )
}

/// Adds the store of a group message (namespace 11 of `group_id`'s swarm) to the outbox; its
/// acknowledgement marks the `group_messages` row `message_id` sent.
pub(crate) fn queue_group_store(
    conn: &Connection,
    group_id: &str,
    data: &[u8],
    hash: &MessageHash,
    timestamp_ms: u64,
    ttl_ms: u64,
    message_id: i64,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT INTO outbox (op, kind, owner, namespace, data, hashes, timestamp_ms, ttl_ms,
                             message_id, is_primary, next_attempt_ms)
         VALUES (?1, 'group', ?2, 11, ?3, ?4, ?5, ?6, ?7, 1, 0)",
        params![
            OP_STORE,
            group_id,
            data,
            hash.as_str(),
            i("timestamp_ms", timestamp_ms)?,
            i("ttl_ms", ttl_ms)?,
            message_id
        ],
    )
    .map(drop)
}

/// Sets the delivery status of a group message row.
pub(crate) fn set_group_message_status(
    conn: &Connection,
    id: i64,
    status: MessageStatus,
) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "UPDATE group_messages SET status = ?2 WHERE id = ?1",
        params![id, status.to_i64()],
    )
    .map(drop)
}

/// Our group message of `group_id` sent at `sent_ms`.
pub(crate) fn own_group_message(
    conn: &Connection,
    id: &str,
    me: &SessionId,
    sent_ms: u64,
) -> rusqlite_cipher::Result<Option<super::model::GroupChatMessage>> {
    conn.query_row(
        &format!(
            "SELECT {GROUP_MESSAGE_COLUMNS} FROM group_messages
             WHERE group_id = ?1 AND author = ?2 AND sent_ms = ?3"
        ),
        params![id, me.to_hex(), i("sent_ms", sent_ms)?],
        group_message_row,
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest page, oldest first; `more` only when older messages exist; expired ones
    /// count for nothing.
    #[test]
    fn recent_history_is_the_newest_page_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let mut id = [7_u8; 33];
        id[0] = 0x05;
        let with = SessionId::from_bytes(id).unwrap();
        for sent in 1..=10_u64 {
            let expires = if sent == 10 { Some(50_i64) } else { None };
            conn.execute(
                "INSERT INTO messages (conversation, author, sent_ms, body, outgoing, status,
                     received_ms, expires_at_ms) VALUES (?1, ?1, ?2, 'x', 0, 0, ?2, ?3)",
                params![with.to_hex(), i64::try_from(sent).unwrap(), expires],
            )
            .unwrap();
        }
        let sent = |m: &[Message]| m.iter().map(|m| m.sent_ms).collect::<Vec<_>>();
        let (page, more) = recent_history(&conn, &with, 100, 4).unwrap();
        assert_eq!((sent(&page), more), (vec![6, 7, 8, 9], true));
        let (page, more) = recent_history(&conn, &with, 100, 9).unwrap();
        assert_eq!((sent(&page).len(), more), (9, false));
        assert_eq!(sent(&page), sent(&history(&conn, &with, 100).unwrap()));
    }

    /// A profile of schema 4 with a file in a one-to-one message keeps it through
    /// migration 5, and files follow their messages (one-to-one or group) when deleted.
    #[test]
    fn migration_5_keeps_files_and_files_follow_their_messages() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute(
            "INSERT INTO messages (conversation, author, sent_ms, body, outgoing, status,
                 received_ms) VALUES ('c', 'a', 1, '', 0, 0, 1)",
            [],
        )
        .unwrap();
        let direct = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO attachments (message_id, idx, url, key, size, state)
             VALUES (?1, 0, 'http://f/file/x', x'00', 3, 1)",
            params![direct],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO group_messages (group_id, author, sent_ms, body, outgoing,
                 received_ms, status) VALUES ('g', 'a', 1, '', 0, 1, 0)",
            [],
        )
        .unwrap();
        let group = conn.last_insert_rowid();

        migrate(&mut conn).unwrap();
        let count = |conn: &Connection, chat: i64, id: i64| -> i64 {
            conn.query_row(
                "SELECT COUNT(*) FROM attachments WHERE chat = ?1 AND message_id = ?2",
                params![chat, id],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(count(&conn, 0, direct), 1, "the old file is kept");
        // Same row id in the other table: a separate attachment.
        conn.execute(
            "INSERT INTO attachments (chat, message_id, idx, url, key, size, state)
             VALUES (1, ?1, 0, 'http://f/file/y', x'00', 3, 1)",
            params![group],
        )
        .unwrap();
        assert_eq!(count(&conn, 1, group), 1);

        conn.execute("DELETE FROM group_messages WHERE id = ?1", params![group])
            .unwrap();
        assert_eq!(count(&conn, 1, group), 0);
        assert_eq!(
            count(&conn, 0, direct),
            1,
            "only the group message's file went"
        );
        conn.execute("DELETE FROM messages WHERE id = ?1", params![direct])
            .unwrap();
        assert_eq!(count(&conn, 0, direct), 0);
    }
}
