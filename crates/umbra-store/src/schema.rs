//! Schema, migrations (by `PRAGMA user_version`) and connection setup.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::config::{Durability, StoreConfig};
use crate::error::{Result, StoreError};

/// Migrations in order; migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1
    r#"
    CREATE TABLE messages (
        id             INTEGER PRIMARY KEY AUTOINCREMENT, -- insertion order; never reused
        owner          BLOB    NOT NULL,                  -- 33 bytes, prefix included
        namespace      INTEGER NOT NULL,
        hash           TEXT    NOT NULL,                  -- 43 chars unpadded base64
        data           BLOB    NOT NULL,
        timestamp_ms   INTEGER NOT NULL,
        expiry_ms      INTEGER NOT NULL,
        expiry_version INTEGER NOT NULL                   -- LWW clock of expiry_ms
    );
    CREATE UNIQUE INDEX messages_hash ON messages(hash);
    -- Index entries end in the rowid (= id), so within one (owner, namespace) they are in
    -- insertion order: retrieve pages straight off this index.
    CREATE INDEX messages_owner_ns ON messages(owner, namespace);
    CREATE INDEX messages_expiry ON messages(expiry_ms);

    CREATE TABLE tombstones (
        hash          TEXT    PRIMARY KEY,
        owner         BLOB    NOT NULL,
        namespace     INTEGER NOT NULL,
        deleted_ms    INTEGER NOT NULL,
        keep_until_ms INTEGER NOT NULL,
        local_id      INTEGER            -- the row id the message had here (last_hash paging)
    ) WITHOUT ROWID;
    CREATE INDEX tombstones_owner_ns ON tombstones(owner, namespace);
    CREATE INDEX tombstones_keep ON tombstones(keep_until_ms);

    CREATE TABLE revoked_subaccounts (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,     -- recency order
        owner      BLOB    NOT NULL,
        token      BLOB    NOT NULL,
        revoked_ms INTEGER NOT NULL,
        UNIQUE (owner, token)
    );
    "#,
];

/// Page cache of the write connection (KiB).
const WRITER_CACHE_KIB: i64 = 32 * 1024;
/// Page cache of each read connection (KiB).
const READER_CACHE_KIB: i64 = 4 * 1024;

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn open_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens the write connection: WAL, durability, size cap, then migrations.
pub(crate) fn open_writer(path: &Path, config: &StoreConfig) -> Result<Connection> {
    let err = open_err(path);
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&err)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(&err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(&err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open {
            path: path.to_path_buf(),
            source: rusqlite::Error::InvalidParameterName(format!(
                "journal_mode WAL refused (got {mode})"
            )),
        });
    }
    let sync = match config.durability {
        Durability::ProcessCrash => "NORMAL",
        Durability::PowerLoss => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(&err)?;
    conn.pragma_update(None, "foreign_keys", false)
        .map_err(&err)?;
    if let Some(max) = config.max_db_bytes {
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(&err)?;
        let pages = i64::try_from(max).unwrap_or(i64::MAX) / page_size.max(1);
        conn.pragma_update(None, "max_page_count", pages.max(1))
            .map_err(&err)?;
    }
    // Negative = KiB. The hash index takes random inserts: keeping its pages cached is what
    // sustains the store rate once the database outgrows the default 2 MiB cache.
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
        .map_err(&err)?;
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens a read connection (after the writer has created and migrated the database).
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let err = open_err(path);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&err)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(&err)?;
    conn.pragma_update(None, "query_only", true).map_err(&err)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
        .map_err(&err)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|source| StoreError::Migrate {
            from: -1,
            to: SCHEMA_VERSION,
            source,
        })?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let from = i64::try_from(i).unwrap_or(i64::MAX);
        let to = from + 1;
        let e = |source| StoreError::Migrate { from, to, source };
        let tx = conn.transaction().map_err(e)?;
        tx.execute_batch(sql).map_err(e)?;
        tx.pragma_update(None, "user_version", to).map_err(e)?;
        tx.commit().map_err(e)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_gets_latest_version_and_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = open_writer(&path, &StoreConfig::default()).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let m: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(m, "wal");
        drop(conn);
        // Reopening is a no-op migration.
        let conn = open_writer(&path, &StoreConfig::default()).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        match open_writer(&path, &StoreConfig::default()) {
            Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
            other => panic!("unexpected {:?}", other.map(|_| ())),
        }
    }
}
