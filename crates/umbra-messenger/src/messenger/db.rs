//! The local database: schema migrations (versioned in code, `PRAGMA user_version`) and row
//! mapping. Only the messenger's own modules use it.
//!
//! Never: change a migration that has shipped (add a new one), or open a schema newer than
//! [`SCHEMA_VERSION`].

use rusqlite_cipher::{Connection, OptionalExtension as _, Row, params};
use umbra_crypto::SessionId;

use super::MessengerError;
use super::model::{Contact, Disappearing, Message, MessageStatus};

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
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

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

pub(crate) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn disappearing(kind: i64, timer: i64) -> Disappearing {
    Disappearing::from_wire(i32::try_from(kind).ok(), u32::try_from(timer).ok())
}

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
        sent_ms: u(r.get(o + 2)?),
        body: r.get(o + 3)?,
        outgoing: r.get(o + 4)?,
        status: MessageStatus::from_i64(r.get(o + 5)?),
        received_ms: u(r.get(o + 6)?),
        read_ms: r.get::<_, Option<i64>>(o + 7)?.map(u),
        read_by_peer: r.get(o + 8)?,
        disappearing: disappearing(r.get(o + 9)?, r.get(o + 10)?),
        expires_at_ms: r.get::<_, Option<i64>>(o + 11)?.map(u),
        hash: r.get(o + 12)?,
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

pub(crate) fn meta_set(conn: &Connection, key: &str, value: &[u8]) -> rusqlite_cipher::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
