//! The error type of the attachment server.

use axum::http::StatusCode;

use crate::id::HashInitError;
use crate::parse::ParseError;

/// Everything that can go wrong while storing or serving a file.
///
/// [`AttachmentError::status`] maps each to the status Session's file server answers
/// (`messages.md` §7); the `Display` text is for logs (Session clients get only
/// `{"status_code": N}`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentError {
    /// An upload with no bytes (Session's server answers 413 for an empty body).
    #[error("empty upload")]
    Empty,
    /// A body larger than the server accepts.
    #[error("upload of at least {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Bytes seen (or announced) so far.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Storing the file would pass the server's total quota.
    #[error("storing {size} more bytes would pass the quota of {quota} bytes ({used} in use)")]
    QuotaFull {
        /// Bytes asked for.
        size: u64,
        /// Bytes in use or reserved.
        used: u64,
        /// The configured quota.
        quota: u64,
    },
    /// No such file or upload, or it expired.
    #[error("unknown or expired")]
    NotFound,
    /// A header, path segment or manifest that does not parse.
    #[error(transparent)]
    BadRequest(#[from] ParseError),
    /// A chunk whose length or BLAKE2b-32 differs from the manifest's.
    #[error("chunk {index} does not match the manifest ({what})")]
    ChunkMismatch {
        /// The chunk.
        index: u64,
        /// `"length"` or `"hash"`.
        what: &'static str,
    },
    /// `complete` before every chunk arrived.
    #[error("upload is missing {missing} chunk(s)")]
    Incomplete {
        /// Chunks still missing.
        missing: u64,
    },
    /// The client's body ended with an error (disconnect, timeout).
    #[error("reading the request body")]
    BodyRead(#[source] axum::Error),
    /// A file system operation failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The metadata database failed.
    #[error("metadata database error while {what}")]
    Db {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The metadata database holds something this code cannot read.
    #[error("metadata database is corrupt: {0}")]
    Corrupt(String),
    /// The id hash could not be set up.
    #[error(transparent)]
    HashInit(#[from] HashInitError),
    /// A blocking task died (a bug; the runtime reports it).
    #[error("a storage task ended abnormally")]
    Task,
}

impl AttachmentError {
    /// The HTTP status answering this error.
    pub fn status(&self) -> StatusCode {
        match self {
            // `messages.md` §7: empty or too large → 413.
            Self::Empty | Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            // Session's server answers 507 (`http.INSUFFICIENT_STORAGE`) when it cannot store.
            Self::QuotaFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) | Self::ChunkMismatch { .. } | Self::BodyRead(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Incomplete { .. } => StatusCode::CONFLICT,
            Self::Io { .. }
            | Self::Db { .. }
            | Self::Corrupt(_)
            | Self::HashInit(_)
            | Self::Task => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { what, source }
    }

    pub(crate) fn db(what: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| Self::Db { what, source }
    }
}
