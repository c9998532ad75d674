//! The store's error type.

use std::path::PathBuf;

/// Which per-account quota was exceeded (see [`crate::Quota`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaLimit {
    /// The maximum number of messages one account may hold on this node.
    MessageCount,
    /// The maximum number of data bytes one account may hold on this node.
    Bytes,
}

impl std::fmt::Display for QuotaLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuotaLimit::MessageCount => f.write_str("per-account message count"),
            QuotaLimit::Bytes => f.write_str("per-account bytes"),
        }
    }
}

/// Everything that can go wrong in the store. Each variant says what was being done.
///
/// `op` fields name the operation (`"store"`, `"retrieve"`, `"delete"`, …) so that a log line or
/// an error reply can say which request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or configured.
    #[error("opening the message store at {path}")]
    Open {
        /// Path of the database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A schema migration failed.
    #[error("migrating the message store schema from version {from} to {to}")]
    Migrate {
        /// Version found on disk.
        from: i64,
        /// Version the migration was moving to.
        to: i64,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer build whose schema this build does not know.
    #[error(
        "opening the message store: schema version {found} is newer than this build supports ({supported})"
    )]
    SchemaTooNew {
        /// Version found on disk.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// The writer thread could not be started.
    #[error("starting the message store writer thread")]
    Spawn(#[source] std::io::Error),
    /// SQLite reported an error while performing `op`.
    #[error("{op}: database error")]
    Database {
        /// The operation being performed.
        op: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database reached its configured size cap ([`crate::StoreConfig::max_db_bytes`]).
    #[error("{op}: message store is full (database size limit of {max_db_bytes} bytes reached)")]
    DatabaseFull {
        /// The operation being performed.
        op: &'static str,
        /// The configured cap.
        max_db_bytes: u64,
    },
    /// The batch transaction holding this write could not be committed; the write was not applied.
    #[error("{op}: committing the write batch failed: {reason}")]
    Commit {
        /// The operation being performed.
        op: &'static str,
        /// What SQLite said.
        reason: String,
    },
    /// Storing would take the account over one of its quotas.
    #[error("store: account quota exceeded: {limit} limit of {max} reached")]
    QuotaExceeded {
        /// Which limit.
        limit: QuotaLimit,
        /// The configured value of that limit.
        max: u64,
    },
    /// The message body is larger than [`crate::StoreConfig::max_message_bytes`].
    #[error("store: message data of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Size of the rejected body.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A hash already exists for another account or namespace (the caller computed it wrongly, or a
    /// peer sent a forged replica).
    #[error("{op}: message hash already belongs to another account or namespace")]
    HashConflict {
        /// The operation being performed.
        op: &'static str,
    },
    /// `expire` was given a per-message expiry list whose length differs from the hash list.
    #[error("expire: {expiries} expiries given for {hashes} message hashes")]
    ExpiryCountMismatch {
        /// Number of expiries.
        expiries: usize,
        /// Number of hashes.
        hashes: usize,
    },
    /// Too many tokens in one revocation request.
    #[error("{op}: {given} subaccount tokens given, the limit is {max}")]
    TooManyTokens {
        /// The operation being performed.
        op: &'static str,
        /// Number of tokens given.
        given: usize,
        /// The limit.
        max: usize,
    },
    /// The write queue is full: the node is overloaded (reply `503 Server busy`).
    #[error("{op}: write queue full ({capacity} pending writes)")]
    QueueFull {
        /// The operation being performed.
        op: &'static str,
        /// The configured queue capacity.
        capacity: usize,
    },
    /// The writer thread has stopped (the store is shutting down or crashed); the write may or may
    /// not have been applied.
    #[error("{op}: the message store writer has stopped")]
    WriterGone {
        /// The operation being performed.
        op: &'static str,
    },
}

impl StoreError {
    /// Wraps a SQLite error, recognising "database or disk is full".
    pub(crate) fn db(op: &'static str, max_db_bytes: Option<u64>, source: rusqlite::Error) -> Self {
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return StoreError::DatabaseFull {
                op,
                max_db_bytes: max_db_bytes.unwrap_or(0),
            };
        }
        StoreError::Database { op, source }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
