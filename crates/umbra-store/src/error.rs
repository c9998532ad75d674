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
    /// The store's directory could not be opened or configured.
    #[error("opening the message store at {path}")]
    Open {
        /// Path of the store's directory.
        path: PathBuf,
        /// What RocksDB said.
        #[source]
        source: rocksdb::Error,
    },
    /// Another open store (another node process, or a handle still alive in this one) holds
    /// the directory's lock: two writers on one store would corrupt it.
    #[error(
        "the message store at {path} is in use by another node (or another store handle): stop it, or give this node its own data directory"
    )]
    InUse {
        /// Path of the store's directory.
        path: PathBuf,
    },
    /// The path holds a message store of the SQLite format of earlier builds, which this build
    /// does not read (and never overwrites).
    #[error(
        "{path} is a message store in the old SQLite format, which this build no longer reads: stop the node, move the file (and its -wal/-shm files) out of the data directory and start again; the swarm's anti-entropy refills the new store"
    )]
    OldSqliteFormat {
        /// The SQLite file found.
        path: PathBuf,
    },
    /// The path exists but is not a directory of this store (a file of another kind).
    #[error("{path} is not a message store directory (expected a directory)")]
    NotAStore {
        /// The path given.
        path: PathBuf,
    },
    /// The store was written by a newer build whose layout this build does not know.
    #[error(
        "opening the message store: layout version {found} is newer than this build supports ({supported})"
    )]
    SchemaTooNew {
        /// Version found on disk.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// A stored record does not have the shape this build writes (damage on disk).
    #[error("the message store holds a damaged record: {what}")]
    Corrupt {
        /// Which part of which record.
        what: &'static str,
    },
    /// The writer thread could not be started.
    #[error("starting the message store writer thread")]
    Spawn(#[source] std::io::Error),
    /// RocksDB reported an error while performing `op`.
    #[error("{op}: database error")]
    Database {
        /// The operation being performed.
        op: &'static str,
        /// What RocksDB said.
        #[source]
        source: rocksdb::Error,
    },
    /// The stored data reached its configured size cap ([`crate::StoreConfig::max_db_bytes`]).
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
        /// What RocksDB said.
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
    /// Wraps a RocksDB error met while performing `op`.
    pub(crate) fn db(op: &'static str) -> impl Fn(rocksdb::Error) -> StoreError {
        move |source| StoreError::Database { op, source }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
