#![doc = include_str!("../README.md")]

mod arrival;
mod config;
mod digest;
mod engine;
mod error;
mod keys;
mod merge;
mod ops;
mod reader;
mod reply;
mod rows;
mod sweep;
mod types;
mod writer;

use std::path::Path;
use std::sync::Arc;

pub use arrival::{Arrival, SHARDS as ARRIVAL_SHARDS};
pub use config::{Durability, Quota, Resources, StoreConfig};
pub use engine::refuse_old_format;
pub use error::{QuotaLimit, Result, StoreError};
pub use reply::Reply;
pub use types::{
    AccountId, ApplyOutcome, BucketDigest, BucketEntries, ByNamespace, ExpireMode, ExpireOutcome,
    ExpireRequest, ExpiryTarget, ExpiryUpdate, ExportCursor, ExportPage, HASH_LEN,
    MAX_REVOCATIONS_PER_ACCOUNT, MAX_TOKENS_PER_REQUEST, MessageHash, MessageVersion, Millis,
    Namespace, NamespaceSel, NewMessage, RETRIEVE_MAX_SIZE, RETRIEVE_MESSAGE_OVERHEAD,
    ReplicaMessage, RetrieveDirection, RetrieveLimits, Retrieved, Stats, StoreOutcome,
    StoredMessage, SubaccountToken, SweepOutcome, Tombstone, UpdatedExpiry, is_public_inbox,
    is_public_outbox,
};

use engine::Db;
use reader::Reader;
use writer::{Cmd, Writer};

/// A handle to an open message store. Cheap to clone; all clones share the writer thread and the
/// database. The writer stops (after finishing queued writes) when the last handle is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    hub: Arc<arrival::Hub>,
    db: Arc<Db>,
    config: StoreConfig,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store's directory at `path`, checks its layout, and
    /// starts the writer thread. A file at `path` is refused: one of the old SQLite format with
    /// [`StoreError::OldSqliteFormat`] (it is never read, changed or overwritten).
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Store> {
        let path = path.as_ref();
        let hub = Arc::new(arrival::Hub::new());
        let (db, next_seq) = engine::open(path, &config)?;
        let db = Arc::new(db);
        let writer = Writer::start(Arc::clone(&db), next_seq, &config, hub.clone())?;
        Ok(Store {
            inner: Arc::new(Inner {
                writer,
                hub,
                db,
                config,
            }),
        })
    }

    /// Runs a read for `op`.
    fn read<T>(&self, op: &'static str, f: impl FnOnce(&Reader<'_>) -> Result<T>) -> Result<T> {
        f(&Reader::new(&self.inner.db, op)?)
    }

    /// A future that resolves once a message for `owner` (or another account sharing its
    /// shard) has been committed after this call — stored by a client or applied from a peer.
    /// Take it *before* reading the store, await it only if the read found nothing, then read
    /// again (see [`Arrival`]). The base of the node's long-poll retrieve.
    pub fn arrival(&self, owner: &AccountId) -> Arrival {
        Arrival::new(&self.inner.hub, owner)
    }

    /// The configuration this store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    // -----------------------------------------------------------------------------------------
    // Writes (group-committed; the Reply resolves after the batch is durable)
    // -----------------------------------------------------------------------------------------

    /// Stores a client message (`store`, `storage-rpc.md` §5.1).
    ///
    /// Idempotent: an existing hash yields [`StoreOutcome::Already`] with the expiry raised to the
    /// requested one if later (timestamp and data unchanged). In a public outbox the newest
    /// message (by timestamp) is kept and the others are deleted. Checks the per-account
    /// [`Quota`] (error names the limit) and the message size; the hash format is checked, the
    /// hash value is trusted.
    pub fn store(&self, msg: NewMessage, now_ms: Millis) -> Reply<StoreOutcome> {
        self.inner
            .writer
            .submit("store", |reply| Cmd::Store { msg, now_ms, reply })
    }

    /// Deletes the account's messages with these hashes (`delete`, §5.3). Returns the hashes that
    /// were deleted, sorted. Unknown, foreign or expired hashes are skipped.
    pub fn delete(
        &self,
        owner: AccountId,
        hashes: Vec<MessageHash>,
        now_ms: Millis,
    ) -> Reply<Vec<MessageHash>> {
        self.inner.writer.submit("delete", |reply| Cmd::Delete {
            owner,
            hashes,
            now_ms,
            reply,
        })
    }

    /// Deletes all of the account's messages in one or all namespaces (`delete_all`, §5.4).
    pub fn delete_all(
        &self,
        owner: AccountId,
        ns: NamespaceSel,
        now_ms: Millis,
    ) -> Reply<ByNamespace> {
        self.inner
            .writer
            .submit("delete_all", |reply| Cmd::DeleteAll {
                owner,
                ns,
                before_ms: None,
                now_ms,
                reply,
            })
    }

    /// Deletes the account's messages with `timestamp_ms <= before_ms` (`delete_before`, §5.5).
    pub fn delete_before(
        &self,
        owner: AccountId,
        ns: NamespaceSel,
        before_ms: Millis,
        now_ms: Millis,
    ) -> Reply<ByNamespace> {
        self.inner
            .writer
            .submit("delete_before", |reply| Cmd::DeleteAll {
                owner,
                ns,
                before_ms: Some(before_ms),
                now_ms,
                reply,
            })
    }

    /// Changes expiries (`expire`, §5.6): plain sets either way, `Shorten` only lowers, `Extend`
    /// only raises, `ExtendNonTrivial` only raises by at least 1 % of the current lifetime
    /// (`storage-rpc-addendum.md` A3); every target is capped at `now + max_expire_ahead_ms`. In `Set` mode every
    /// found message is reported updated (as the reference does); with `Shorten`/`Extend` the
    /// found-but-unchanged ones are in `unchanged`. With one expiry a repeated hash counts once.
    pub fn expire(&self, req: ExpireRequest, now_ms: Millis) -> Reply<ExpireOutcome> {
        self.inner
            .writer
            .submit("expire", |reply| Cmd::Expire { req, now_ms, reply })
    }

    /// Shortens every expiry later than `expiry_ms` to `expiry_ms` (`expire_all`, §5.7). Returns
    /// the updated hashes.
    pub fn expire_all(
        &self,
        owner: AccountId,
        ns: NamespaceSel,
        expiry_ms: Millis,
        now_ms: Millis,
    ) -> Reply<ByNamespace> {
        self.inner
            .writer
            .submit("expire_all", |reply| Cmd::ExpireAll {
                owner,
                ns,
                expiry_ms,
                now_ms,
                reply,
            })
    }

    /// Revokes subaccount tokens (`revoke_subaccount`, §5.9). Re-revoking refreshes a token's
    /// recency; only the [`MAX_REVOCATIONS_PER_ACCOUNT`] most recent are kept.
    pub fn revoke_subaccounts(
        &self,
        owner: AccountId,
        tokens: Vec<SubaccountToken>,
        now_ms: Millis,
    ) -> Reply<()> {
        self.inner
            .writer
            .submit("revoke_subaccount", |reply| Cmd::Revoke {
                owner,
                tokens,
                now_ms,
                reply,
            })
    }

    /// Removes revocations (`unrevoke_subaccount`, §5.9). Any number of tokens; returns how many
    /// of them were actually removed (the reply's `count`; a token listed twice counts once,
    /// `storage-rpc-addendum.md` A5).
    pub fn unrevoke_subaccounts(
        &self,
        owner: AccountId,
        tokens: Vec<SubaccountToken>,
    ) -> Reply<u64> {
        self.inner
            .writer
            .submit("unrevoke_subaccount", |reply| Cmd::Unrevoke {
                owner,
                tokens,
                reply,
            })
    }

    /// Removes messages expired for longer than [`StoreConfig::expired_grace_ms`] (at most
    /// [`StoreConfig::sweep_limit`] per call) and tombstones past their keep time. The node calls it periodically (the reference: every 10 s), again at
    /// once while `more` is set. The writer runs a call as small chunks and lets the writes
    /// queued meanwhile through between two of them, each chunk resuming where the last one
    /// stopped; the reply resolves once every chunk is committed.
    pub fn sweep_expired(&self, now_ms: Millis) -> Reply<SweepOutcome> {
        self.inner
            .writer
            .submit("sweep_expired", |reply| Cmd::Sweep { now_ms, reply })
    }

    /// Applies a message received from a peer (handover or reconciliation pull). Idempotent and
    /// order-independent (see the crate docs); not subject to the quota. The caller must have
    /// checked the hash against owner, namespace and data.
    pub fn apply_remote_message(&self, msg: ReplicaMessage, now_ms: Millis) -> Reply<ApplyOutcome> {
        self.inner
            .writer
            .submit("apply_remote_message", |reply| Cmd::ApplyMessage {
                msg,
                now_ms,
                reply,
            })
    }

    /// Applies a tombstone received from a peer. Idempotent and order-independent.
    pub fn apply_remote_tombstone(&self, t: Tombstone, now_ms: Millis) -> Reply<ApplyOutcome> {
        self.inner
            .writer
            .submit("apply_remote_tombstone", |reply| Cmd::ApplyTombstone {
                t,
                now_ms,
                reply,
            })
    }

    /// Applies a message state received from a peer (the larger
    /// `(timestamp_ms, expiry_version, expiry_ms)` wins). Idempotent and order-independent.
    pub fn apply_remote_expiry(&self, e: ExpiryUpdate, now_ms: Millis) -> Reply<ApplyOutcome> {
        self.inner
            .writer
            .submit("apply_remote_expiry", |reply| Cmd::ApplyExpiry {
                e,
                now_ms,
                reply,
            })
    }

    // -----------------------------------------------------------------------------------------
    // Reads (any thread; see every write whose Reply has resolved)
    // -----------------------------------------------------------------------------------------

    /// One page of the account's live messages in a namespace, in this node's insertion order,
    /// after `last_hash` (`retrieve`, §5.2). An unknown `last_hash` starts from the beginning; the
    /// hash of a message deleted since is still a valid position.
    pub fn retrieve(
        &self,
        owner: &AccountId,
        namespace: Namespace,
        last_hash: Option<&MessageHash>,
        limits: RetrieveLimits,
        now_ms: Millis,
    ) -> Result<Retrieved> {
        self.retrieve_in(
            owner,
            namespace,
            last_hash,
            limits,
            RetrieveDirection::Forward,
            now_ms,
        )
    }

    /// [`Store::retrieve`] in either direction (`storage-rpc-addendum.md` A2). Reversed, the
    /// page is newest first and holds only messages strictly older than `last_hash`; an absent
    /// or unknown `last_hash` starts at the newest message (forward: at the oldest).
    pub fn retrieve_in(
        &self,
        owner: &AccountId,
        namespace: Namespace,
        last_hash: Option<&MessageHash>,
        limits: RetrieveLimits,
        direction: RetrieveDirection,
        now_ms: Millis,
    ) -> Result<Retrieved> {
        self.read("retrieve", |r| {
            reader::retrieve(r, owner, namespace, last_hash, limits, direction, now_ms)
        })
    }

    /// Current expiries of the account's live messages among `hashes` (`get_expiries`, §5.8).
    pub fn get_expiries(
        &self,
        owner: &AccountId,
        hashes: &[MessageHash],
        now_ms: Millis,
    ) -> Result<std::collections::BTreeMap<MessageHash, Millis>> {
        self.read("get_expiries", |c| {
            reader::get_expiries(c, owner, hashes, now_ms)
        })
    }

    /// The account's revoked subaccount tokens, most recently revoked first
    /// (`revoked_subaccounts`, §5.10).
    pub fn revoked_subaccounts(&self, owner: &AccountId) -> Result<Vec<SubaccountToken>> {
        self.read("revoked_subaccounts", |c| reader::revoked(c, owner))
    }

    /// Whether `token` is revoked for the account.
    pub fn is_subaccount_revoked(
        &self,
        owner: &AccountId,
        token: &SubaccountToken,
    ) -> Result<bool> {
        self.read("is_subaccount_revoked", |c| {
            reader::is_revoked(c, owner, token)
        })
    }

    /// Full replicated state of the live messages among `hashes` (serving a peer's pull).
    pub fn get_replicas(
        &self,
        hashes: &[MessageHash],
        now_ms: Millis,
    ) -> Result<Vec<ReplicaMessage>> {
        self.read("get_replicas", |c| reader::get_replicas(c, hashes, now_ms))
    }

    /// Digests of every non-empty bucket (optionally only the account `owner`'s), ordered by
    /// owner then namespace. Scans the table: call it at reconciliation pace, not per request.
    pub fn bucket_digests(
        &self,
        owner: Option<&AccountId>,
        now_ms: Millis,
    ) -> Result<Vec<BucketDigest>> {
        self.read("bucket_digests", |c| {
            digest::bucket_digests(c, owner, now_ms)
        })
    }

    /// The live messages' versions and live tombstones of one bucket, sorted by hash.
    pub fn bucket_entries(
        &self,
        owner: &AccountId,
        namespace: Namespace,
        now_ms: Millis,
    ) -> Result<BucketEntries> {
        self.read("bucket_entries", |c| {
            digest::bucket_entries(c, owner, namespace, now_ms)
        })
    }

    /// Distinct accounts holding live messages, sorted.
    pub fn owners(&self, now_ms: Millis) -> Result<Vec<AccountId>> {
        self.read("owners", |c| reader::owners(c, now_ms))
    }

    /// Pages through all live messages in local row order and returns those whose owner
    /// satisfies `filter` (e.g. "maps to another swarm now", for handover). Scans at most
    /// `scan_limit` rows per call; continue from `next` until it is `None`.
    pub fn export_messages(
        &self,
        filter: &dyn Fn(&AccountId) -> bool,
        after: ExportCursor,
        scan_limit: usize,
        now_ms: Millis,
    ) -> Result<ExportPage> {
        self.read("export_messages", |c| {
            reader::export_messages(c, filter, after, scan_limit, now_ms)
        })
    }

    /// Counters for metrics. `messages`, `bytes` and `tombstones` are kept in memory by the
    /// writer (no query); `db_bytes` is read from RocksDB's properties.
    pub fn stats(&self) -> Result<Stats> {
        let (messages, bytes, tombstones) = self.inner.writer.totals();
        let db_bytes = self.read("stats", |r| Ok(reader::disk_bytes(r)))?;
        Ok(Stats {
            messages,
            bytes,
            tombstones,
            db_bytes,
        })
    }
}
