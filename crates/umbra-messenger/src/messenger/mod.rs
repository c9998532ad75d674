//! The messenger itself; the crate docs (README.md) describe it.

// One file per concern, each an `impl Messenger` block; the SQL of all of them is in `db`.
mod attachments;
mod avatar;
mod config_apply;
mod config_legacy;
mod config_state;
mod config_sync;
#[cfg(test)]
mod config_tests;
mod contacts;
mod control;
mod conversations;
mod db;
mod download;
mod error;
#[cfg(any(test, feature = "test-support"))]
pub mod fake;
pub mod files;
mod group_disappearing;
mod group_receive;
#[cfg(test)]
mod group_tests;
mod group_unsend;
mod groups;
mod ingest;
mod media;
mod model;
pub mod onion;
mod outbox;
pub mod profile;
mod receive;
mod send;
pub mod swarm;
#[cfg(test)]
mod tests;
mod upload;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite_cipher::Connection;
use umbra_crypto::{Identity, Random, Redacted, SessionId};
use umbra_net::Clock;
use umbra_wire::Content;

pub use attachments::AttachmentRowView;
pub use avatar::MAX_PICTURE_SIZE;
pub use config_apply::{MAX_SYNCED_NAME, ProfilePicture};
pub use config_state::{ConfigKind, ConfigStatus, SyncMark};
pub use config_sync::{CONFIG_TTL_MS, ConfigSyncReport, MAX_CONFIG_MESSAGE};
pub use db::SCHEMA_VERSION;
pub use error::MessengerError;
pub use files::{FileServer, FileServerAddress, FileServerError, FileServerLink, OnionFileServer};
pub use groups::{GROUP_CONFIG_TTL_MS, MAX_GROUP_MEMBERS, is_group_id, parse_group_id};
pub use model::{
    AttachmentInfo, AttachmentState, BadMessageId, ChatPriority, Contact, Conversation,
    Disappearing, Event, FlushReport, GroupActivity, GroupChatMessage, GroupMemberView,
    GroupStatus, GroupView, Message, MessageId, MessageStatus, OutboxEntry, Progress, ProgressFn,
    Settings, TransferPhase, human_size,
};
pub use onion::OnionSwarm;
pub use profile::{KdfParams, Profile};
pub use swarm::{GroupAuth, NodeId, RetrievedPage, StoreAck, StoredMessage, SwarmApi, SwarmError};
pub use upload::{MAX_ATTACHMENT_SIZE, SINGLE_UPLOAD_MAX};

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

    /// The network's time: this device's clock, corrected by what the nodes' answers showed
    /// (a device whose clock is off still stamps messages the nodes accept).
    fn now(&self) -> u64 {
        self.clock
            .now_ms()
            .saturating_add_signed(self.swarm.network_offset_ms())
    }
}
