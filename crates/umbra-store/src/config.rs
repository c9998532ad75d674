//! Store configuration.

use crate::types::Millis;

/// How hard a commit is pushed to disk before writes are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A committed batch has been written to RocksDB's write-ahead log file (handed to the
    /// operating system with `write(2)`) before any of its writes is acknowledged, so it
    /// survives the node process being killed (`kill -9`, panic, OOM). An operating-system
    /// crash or power loss may lose the last batches; the swarm's other replicas and
    /// reconciliation cover that. The default: no fsync on the write path.
    #[default]
    ProcessCrash,
    /// The write-ahead log is fsynced at every commit (`WriteOptions::sync`; one fsync per batch
    /// thanks to group commit), so acknowledged writes also survive power loss, at the cost of
    /// one fsync of latency per batch.
    PowerLoss,
}

/// Per-account limits on what one account may keep on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Maximum messages per account (all namespaces together).
    pub max_messages: u64,
    /// Maximum message data bytes per account (all namespaces together).
    pub max_bytes: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            max_messages: 100_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// The RocksDB engine's resources. Every one is a hard or soft bound the engine keeps; the
/// defaults total ≈ 40 MiB of memory and 2 background threads per store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// Memory for write buffers (memtables) of all column families together
    /// (`db_write_buffer_size`); one column family's memtable is at most a quarter of it.
    pub write_buffer_bytes: usize,
    /// Shared block cache for reads (LRU), all column families together.
    pub block_cache_bytes: usize,
    /// Most files RocksDB keeps open (`max_open_files`; each SST file is one).
    pub max_open_files: i32,
    /// Background flush and compaction threads (`max_background_jobs`).
    pub background_jobs: i32,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            write_buffer_bytes: 16 * 1024 * 1024,
            block_cache_bytes: 24 * 1024 * 1024,
            max_open_files: 256,
            background_jobs: 2,
        }
    }
}

/// Tunables of a [`crate::Store`]. `Default` gives the production values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Commit durability.
    pub durability: Durability,
    /// Per-account quota, checked on client stores.
    pub quota: Quota,
    /// Largest accepted message body (76 800 bytes by the spec).
    pub max_message_bytes: usize,
    /// Capacity of the bounded write queue; a write submitted while it is full fails at once with
    /// [`crate::StoreError::QueueFull`].
    pub write_queue_capacity: usize,
    /// Most writes applied in one transaction.
    pub max_batch: usize,
    /// Cap on the stored data in bytes (3.5 GiB in the reference); `None` = unlimited. Counted
    /// as the keys and values of the live records (the store's own tally, so it does not move
    /// with compaction); the files on disk may be larger until RocksDB has compacted deletions.
    pub max_db_bytes: Option<u64>,
    /// Bounded memory and files of the RocksDB engine (set per node; small enough by default
    /// for a 14-node devnet on one machine).
    pub resources: Resources,
    /// `expire` caps every requested expiry at `now + max_expire_ahead_ms` (30 days).
    pub max_expire_ahead_ms: Millis,
    /// Most expired messages (and, separately, tombstones) removed by one `sweep_expired` call.
    /// The writer runs a call as small chunks, each committed on its own with the commands
    /// queued meanwhile let through between two chunks, so this bounds the call's duration,
    /// not how long it holds writes back.
    pub sweep_limit: usize,
    /// Expired messages are physically removed by `sweep_expired` only this long after their
    /// expiry (15 minutes). They are never returned meanwhile; keeping the row lets a client whose
    /// `last_hash` just expired continue paging from the right place instead of from the
    /// beginning. They count against the quota until removed.
    pub expired_grace_ms: Millis,
    /// How long a tombstone is kept after the deletion (31 days: longer than any expiry a copy
    /// of the deleted message can have had, since every TTL and `expire` is capped at 30 days).
    /// All nodes of a swarm should use the same value.
    pub tombstone_retention_ms: Millis,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            durability: Durability::default(),
            quota: Quota::default(),
            max_message_bytes: 76_800,
            write_queue_capacity: 65_536,
            max_batch: 4096,
            resources: Resources::default(),
            max_db_bytes: Some(3584 * 1024 * 1024),
            max_expire_ahead_ms: 30 * 24 * 3600 * 1000,
            sweep_limit: 5_000,
            expired_grace_ms: 15 * 60 * 1000,
            tombstone_retention_ms: 31 * 24 * 3600 * 1000,
        }
    }
}
