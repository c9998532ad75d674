//! The messaging core's error type.

use std::path::PathBuf;

use thiserror::Error;

use super::model::MessageId;

/// Something the messaging core could not do. Each variant says what was being done.
///
/// Messages never contain a secret (keys, passphrases, recovery phrases) nor a message's text.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MessengerError {
    /// A file or directory of the profile could not be read, written or created.
    #[error("{what} {path}")]
    ProfileIo {
        /// What was being done ("creating the profile directory", …).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `create`/`restore` was asked for a directory that already holds a profile.
    #[error("creating a profile: {0} already holds a profile")]
    ProfileExists(PathBuf),
    /// The profile holds another network's data: opening it on this one would mix both.
    #[error(
        "this profile belongs to another network (registry key {bound}), not to the one in the network file (registry key {given}); use that network's file, or another profile (--profile DIR) for this network"
    )]
    OtherNetwork {
        /// The short form of the key of the network the profile belongs to.
        bound: String,
        /// The short form of the key of the network it was opened on.
        given: String,
    },
    /// `open` was asked for a directory without a profile.
    #[error("opening the profile: no profile in {0} (create one with `umbra id new`)")]
    NoProfile(PathBuf),
    /// The profile's files are malformed.
    #[error("opening the profile: {0}")]
    ProfileCorrupt(String),
    /// The profile was written by a newer version of Umbra.
    #[error(
        "opening the profile: it was written by a newer version of Umbra ({what} {found}, this version knows up to {known}); upgrade Umbra"
    )]
    ProfileTooNew {
        /// Which version number ("profile format", "database schema").
        what: &'static str,
        /// The version found.
        found: i64,
        /// The newest version this build understands.
        known: i64,
    },
    /// The database could not be decrypted: the passphrase is wrong or missing, or the key file
    /// does not belong to this database.
    #[error("opening the profile: it is locked ({0})")]
    ProfileLocked(&'static str),
    /// A database operation failed.
    #[error("{what}: database error")]
    Database {
        /// What was being done.
        what: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite_cipher::Error,
    },
    /// A number could not cross between the messenger and the database unchanged (a time,
    /// count or timer beyond the database's signed 64-bit integers, or a negative or too
    /// large number read back): a bug or a damaged database. Never clamped.
    #[error("{what}: {value} is {found}, outside {range}")]
    NumberOutOfRange {
        /// What was being done.
        what: &'static str,
        /// Which value ("sent_ms", "attempts", …).
        value: &'static str,
        /// The value found.
        found: i128,
        /// The range it had to fit.
        range: &'static str,
    },
    /// Deriving the database key from the passphrase failed.
    #[error("deriving the database key from the passphrase: {0}")]
    Kdf(String),
    /// The recovery phrase or seed is invalid.
    #[error("restoring the identity")]
    Identity(#[source] umbra_crypto::CryptoError),
    /// A Session ID given by the user is malformed.
    #[error("invalid Session ID: {0}")]
    InvalidSessionId(String),
    /// A name matches no contact and is not a Session ID.
    #[error("unknown contact: {0:?} is neither a Session ID nor a contact's name")]
    UnknownContact(String),
    /// Pinning or hiding named a conversation the chat list does not hold (Note to Self, or
    /// an account never written with).
    #[error("{0} is not a conversation of the chat list (see `umbra chats`)")]
    NotAChat(String),
    /// A name matches several contacts.
    #[error("ambiguous contact: {0:?} names several contacts; use the Session ID")]
    AmbiguousContact(String),
    /// The message text is over Session's limit.
    #[error("sending a message: the text has {got} characters, the limit is {max}")]
    MessageTooLong {
        /// Characters given.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// The message is empty.
    #[error("sending a message: the text is empty")]
    EmptyMessage,
    /// The outbox is full (the network has been unreachable for a long time).
    #[error("sending a message: the outbox is full ({limit} entries waiting for the network)")]
    OutboxFull {
        /// The limit.
        limit: i64,
    },
    /// The contact is blocked; unblock it first.
    #[error("{0}: the contact is blocked (unblock it first)")]
    Blocked(&'static str),
    /// No such message in the conversation.
    #[error("{0}: no such message")]
    NoSuchMessage(&'static str),
    /// Only one's own messages can be unsent.
    #[error("unsending a message: only your own messages can be deleted for everyone")]
    NotOwnMessage,
    /// The message is not acknowledged by the swarm yet, so it cannot be unsent yet.
    #[error("unsending a message: it is still being sent; try again once it is sent")]
    StillSending,
    /// The disappearing-messages timer is out of range.
    #[error("setting disappearing messages: the timer must be between {min} and {max} seconds")]
    InvalidTimer {
        /// Smallest timer, seconds.
        min: u32,
        /// Largest timer, seconds.
        max: u32,
    },
    /// Encoding an outgoing message failed.
    #[error("encoding a message")]
    Encoding(#[source] umbra_wire::WireError),
    /// A synced config (profile, contacts, read state) refused a value or could not be
    /// built.
    #[error("{what}")]
    Config {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: umbra_config::ConfigError,
    },
    /// A request to the attachment server failed.
    #[error("{what}")]
    FileServer {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: super::files::FileServerError,
    },
    /// Encrypting a file failed.
    #[error("{what}")]
    AttachmentCrypto {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: umbra_attachment_crypto::AttachmentError,
    },
    /// A file to send is larger than an attachment may be.
    #[error("sending a file: {path} has {size} bytes, the limit is {max}")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A path to send is not a regular file.
    #[error("sending a file: {0} is not a regular file")]
    NotAFile(PathBuf),
    /// The message has no attachment (or no such message).
    #[error("downloading: message {0} has no attachment (see `umbra attachments`)")]
    NoAttachment(MessageId),
    /// The attachment is on a server whose onion key this client does not know.
    #[error(
        "downloading: the attachment is on {0}, not on this network's attachment server, and its key is unknown"
    )]
    ForeignFileServer(String),
    /// A downloaded attachment failed its checks; it was discarded.
    #[error(
        "downloading: the attachment was refused: {0}; it was discarded (run the command again to fetch it anew)"
    )]
    DownloadRefused(String),
    /// A task of the messenger ended abnormally.
    #[error("{0}: an internal task failed")]
    Task(&'static str),
    /// A swarm request failed.
    #[error("{what}")]
    Swarm {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: super::swarm::SwarmError,
    },
    /// A group operation failed in the group layer (keys, configs, subaccount).
    #[error("{what}")]
    Group {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: umbra_groups::GroupError,
    },
    /// Not a group id (`03` followed by 64 hex characters).
    #[error("invalid group id {0:?}: a group id is 66 hex characters starting with 03")]
    InvalidGroupId(String),
    /// The group is not known on this device.
    #[error("unknown group {0}: see `umbra group info` of a group you created or accepted")]
    UnknownGroup(String),
    /// Only an admin (holder of the group key) can do this.
    #[error("{0}: only a group admin can do this (ask an admin to promote you)")]
    NotGroupAdmin(&'static str),
    /// The group is not one we take part in now.
    #[error("{what}: the group is {state} (accept an invitation with `umbra accept GROUP`)")]
    GroupNotActive {
        /// What was being done.
        what: &'static str,
        /// Its state.
        state: &'static str,
    },
}

impl MessengerError {
    pub(crate) fn group(what: &'static str) -> impl FnOnce(umbra_groups::GroupError) -> Self {
        move |source| Self::Group { what, source }
    }

    /// The error of a database call made while doing `what`: [`Self::NumberOutOfRange`] for
    /// a number the call could not convert, [`Self::Database`] otherwise.
    pub(crate) fn db(what: &'static str) -> impl FnOnce(rusqlite_cipher::Error) -> Self {
        move |source| match super::db::OutOfRange::in_error(&source) {
            Some(o) => Self::NumberOutOfRange {
                what,
                value: o.value,
                found: o.found,
                range: o.range,
            },
            None => Self::Database { what, source },
        }
    }

    /// The error of a config call made while doing `what`.
    pub(crate) fn config(what: &'static str) -> impl FnOnce(umbra_config::ConfigError) -> Self {
        move |source| Self::Config { what, source }
    }

    pub(crate) fn io<'a>(
        what: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self + 'a {
        move |source| Self::ProfileIo {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
