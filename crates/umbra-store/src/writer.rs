//! The writer thread and its batching: the only writer of the database. It takes the first
//! queued command, drains up to `max_batch` more without waiting, applies them in one RocksDB
//! transaction (a savepoint per command, so one failing command does not undo the others),
//! commits it with one write-ahead-log write (and, with `Durability::PowerLoss`, one fsync), and
//! only then completes every command's reply. What each command does is in `ops` (client
//! operations), `merge` (remote merge) and `sweep`.
//!
//! A `sweep_expired` call is the exception to "one command, one batch": it may delete thousands
//! of rows, and every command committed in its batch would wait for all of them. The writer
//! runs it as chunks of at most [`SWEEP_CHUNK`] rows of each kind, each committed on its own,
//! and between two chunks commits one batch of the commands queued meanwhile: a store waits
//! for at most one chunk (plus its own batch), however long the sweep.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use rocksdb::{OptimisticTransactionOptions, Transaction, WriteOptions};

use crate::arrival::Hub;
use crate::config::{Durability, StoreConfig};
use crate::engine::Db;
use crate::error::{Result, StoreError};
use crate::keys::{self, META_SEQ};
use crate::ops::add_signed;
use crate::reply::{self, Reply, ReplySender};
use crate::rows::{Cfs, Deltas, MESSAGE_OVERHEAD, TOMBSTONE_OVERHEAD, Tx, Usage};
use crate::types::{
    AccountId, ApplyOutcome, ByNamespace, ExpireOutcome, ExpireRequest, ExpiryUpdate, MessageHash,
    Millis, NamespaceSel, NewMessage, ReplicaMessage, StoreOutcome, SubaccountToken, SweepOutcome,
    Tombstone,
};
use crate::{merge, ops, sweep};

/// Most expired messages (and, separately, tombstones) one chunk of a sweep call removes in
/// one transaction: under a millisecond of the writer's time at 1 M messages (`store_scale`),
/// so the stores queued behind a chunk wait no longer than behind an ordinary batch.
pub(crate) const SWEEP_CHUNK: usize = 16;

/// How long the writer stays idle between two chunks of a sweep call when no command is queued.
const SWEEP_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// One queued write.
pub(crate) enum Cmd {
    Store {
        msg: NewMessage,
        now_ms: Millis,
        reply: ReplySender<StoreOutcome>,
    },
    Delete {
        owner: AccountId,
        hashes: Vec<MessageHash>,
        now_ms: Millis,
        reply: ReplySender<Vec<MessageHash>>,
    },
    DeleteAll {
        owner: AccountId,
        ns: NamespaceSel,
        before_ms: Option<Millis>,
        now_ms: Millis,
        reply: ReplySender<ByNamespace>,
    },
    Expire {
        req: ExpireRequest,
        now_ms: Millis,
        reply: ReplySender<ExpireOutcome>,
    },
    ExpireAll {
        owner: AccountId,
        ns: NamespaceSel,
        expiry_ms: Millis,
        now_ms: Millis,
        reply: ReplySender<ByNamespace>,
    },
    Revoke {
        owner: AccountId,
        tokens: Vec<SubaccountToken>,
        now_ms: Millis,
        reply: ReplySender<()>,
    },
    Unrevoke {
        owner: AccountId,
        tokens: Vec<SubaccountToken>,
        reply: ReplySender<u64>,
    },
    Sweep {
        now_ms: Millis,
        reply: ReplySender<SweepOutcome>,
    },
    /// One chunk of a sweep call, run by the writer itself (never submitted).
    SweepChunk {
        now_ms: Millis,
        message_limit: usize,
        tombstone_limit: usize,
        from: sweep::Cursor,
        reply: ReplySender<sweep::ChunkOutcome>,
    },
    ApplyMessage {
        msg: ReplicaMessage,
        now_ms: Millis,
        reply: ReplySender<ApplyOutcome>,
    },
    ApplyTombstone {
        t: Tombstone,
        now_ms: Millis,
        reply: ReplySender<ApplyOutcome>,
    },
    ApplyExpiry {
        e: ExpiryUpdate,
        now_ms: Millis,
        reply: ReplySender<ApplyOutcome>,
    },
}

/// Store-wide totals, updated by the writer, read by `stats()`.
#[derive(Default)]
struct Totals {
    messages: AtomicU64,
    bytes: AtomicU64,
    tombstones: AtomicU64,
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    tx: Option<SyncSender<Cmd>>,
    thread: Option<JoinHandle<()>>,
    totals: Arc<Totals>,
    capacity: usize,
}

impl Writer {
    /// Loads per-account usage and starts the thread, the only writer of `db`.
    pub(crate) fn start(
        db: Arc<Db>,
        next_seq: u64,
        config: &StoreConfig,
        hub: Arc<Hub>,
    ) -> Result<Writer> {
        let (usage, tombstones) = load_usage(&db)?;
        let totals = Arc::new(Totals::default());
        let state = State {
            db,
            next_seq,
            config: config.clone(),
            usage,
            tombstones,
            totals: totals.clone(),
            hub,
            sweep_from: sweep::Cursor::default(),
        };
        state.publish_totals();
        let capacity = config.write_queue_capacity.max(1);
        let (tx, rx) = sync_channel(capacity);
        let thread = std::thread::Builder::new()
            .name("umbra-store-writer".into())
            .spawn(move || state.run(rx))
            .map_err(StoreError::Spawn)?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            totals,
            capacity,
        })
    }

    /// Queues a command without blocking. A full queue or a stopped writer resolves the reply at
    /// once with an error.
    pub(crate) fn submit<T>(
        &self,
        op: &'static str,
        make: impl FnOnce(ReplySender<T>) -> Cmd,
    ) -> Reply<T> {
        let Some(tx) = &self.tx else {
            return Reply::ready(op, Err(StoreError::WriterGone { op }));
        };
        let (sender, reply) = reply::channel(op);
        match tx.try_send(make(sender)) {
            Ok(()) => reply,
            Err(TrySendError::Full(_)) => Reply::ready(
                op,
                Err(StoreError::QueueFull {
                    op,
                    capacity: self.capacity,
                }),
            ),
            Err(TrySendError::Disconnected(_)) => {
                Reply::ready(op, Err(StoreError::WriterGone { op }))
            }
        }
    }

    /// `(messages, bytes, tombstones)` currently held.
    pub(crate) fn totals(&self) -> (u64, u64, u64) {
        (
            self.totals.messages.load(Ordering::Relaxed),
            self.totals.bytes.load(Ordering::Relaxed),
            self.totals.tombstones.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue lets the thread finish what is queued and exit.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Per-account usage and the tombstone count, read once at open.
fn load_usage(db: &Db) -> Result<(HashMap<AccountId, Usage>, u64)> {
    let err = StoreError::db("open");
    let cfs = Cfs::new(db)?;
    let mut usage: HashMap<AccountId, Usage> = HashMap::new();
    let mut it = db.raw_iterator_cf(cfs.messages);
    it.seek_to_first();
    while let Some((k, v)) = it.item() {
        let (owner, _) = keys::parse_bucket(k)?;
        let (_, data) = keys::parse_msg(v)?;
        let u = usage.entry(owner).or_default();
        u.count += 1;
        u.bytes += u64::try_from(data.len()).unwrap_or(u64::MAX);
        it.next();
    }
    it.status().map_err(&err)?;
    let mut tombstones = 0u64;
    let mut it = db.raw_iterator_cf(cfs.tombstones);
    it.seek_to_first();
    while it.valid() {
        tombstones += 1;
        it.next();
    }
    it.status().map_err(&err)?;
    Ok((usage, tombstones))
}

type Finish = Box<dyn FnOnce(Option<&str>) + Send>;

fn finish<T: Send + 'static>(op: &'static str, reply: ReplySender<T>, r: Result<T>) -> Finish {
    Box::new(move |commit_err| match commit_err {
        None => reply.send(r),
        Some(reason) => reply.send(Err(StoreError::Commit {
            op,
            reason: reason.to_string(),
        })),
    })
}

struct State {
    db: Arc<Db>,
    next_seq: u64,
    config: StoreConfig,
    usage: HashMap<AccountId, Usage>,
    tombstones: u64,
    totals: Arc<Totals>,
    hub: Arc<Hub>,
    /// Where the next sweep chunk starts (advanced only by a committed chunk).
    sweep_from: sweep::Cursor,
}

/// What one batch has done so far.
#[derive(Default)]
struct BatchLog {
    finishes: Vec<Finish>,
    arrived: Vec<AccountId>,
}

impl State {
    fn run(mut self, rx: Receiver<Cmd>) {
        let max_batch = self.config.max_batch.max(1);
        // Commands taken from the queue, not run yet (at most `max_batch` taken ahead).
        let mut pending: VecDeque<Cmd> = VecDeque::new();
        loop {
            if pending.is_empty() {
                match rx.recv() {
                    Ok(c) => pending.push_back(c),
                    Err(_) => break,
                }
            }
            take_queued(&rx, &mut pending, max_batch);
            if let Some(Cmd::Sweep { .. }) = pending.front() {
                if let Some(Cmd::Sweep { now_ms, reply }) = pending.pop_front() {
                    self.run_sweep(now_ms, reply, &rx, &mut pending, max_batch);
                }
            } else {
                self.run_leading_batch(&mut pending, max_batch);
            }
        }
    }

    /// Runs, as one batch, the commands at the front of `pending` up to the first sweep call.
    fn run_leading_batch(&mut self, pending: &mut VecDeque<Cmd>, max_batch: usize) {
        let n = pending
            .iter()
            .take(max_batch)
            .take_while(|c| !matches!(c, Cmd::Sweep { .. }))
            .count();
        if n > 0 {
            self.run_batch(pending.drain(..n).collect());
        }
    }

    /// One `sweep_expired` call: chunks of at most [`SWEEP_CHUNK`] rows per kind, each its own
    /// transaction, until `sweep_limit` rows of a kind are removed or none is due; between two
    /// chunks, one batch of the commands queued meanwhile (those queued after this call
    /// included: a sweep's rows are due whatever they do, and they never see its rows).
    fn run_sweep(
        &mut self,
        now_ms: Millis,
        reply: ReplySender<SweepOutcome>,
        rx: &Receiver<Cmd>,
        pending: &mut VecDeque<Cmd>,
        max_batch: usize,
    ) {
        let limit = self.config.sweep_limit.max(1);
        let mut total = SweepOutcome::default();
        // Whether more rows of each kind may be due; a kind stops at its limit or when none is.
        let (mut more_messages, mut more_tombstones) = (true, true);
        let mut first = true;
        loop {
            let done_m = usize::try_from(total.messages).unwrap_or(usize::MAX);
            let done_t = usize::try_from(total.tombstones).unwrap_or(usize::MAX);
            let left = |more: bool, done: usize| {
                if more {
                    limit.saturating_sub(done).min(SWEEP_CHUNK)
                } else {
                    0
                }
            };
            let (message_limit, tombstone_limit) =
                (left(more_messages, done_m), left(more_tombstones, done_t));
            if message_limit == 0 && tombstone_limit == 0 {
                break;
            }
            if !first {
                // Let the commands queued during the last chunk through before the next one;
                // with none queued, leave the writer idle a moment (the next command that
                // arrives is run at once), so that a sweep does not keep its thread busy
                // without a break and the scheduler still wakes it promptly for a store.
                take_queued(rx, pending, max_batch);
                if pending.is_empty()
                    && let Ok(c) = rx.recv_timeout(SWEEP_PAUSE)
                {
                    pending.push_back(c);
                    take_queued(rx, pending, max_batch);
                }
                self.run_leading_batch(pending, max_batch);
            }
            first = false;
            let (sender, mut chunk_reply) = reply::channel("sweep_expired");
            let from = self.sweep_from.clone();
            self.run_batch(vec![Cmd::SweepChunk {
                now_ms,
                message_limit,
                tombstone_limit,
                from,
                reply: sender,
            }]);
            let chunk = match chunk_reply.try_take() {
                Some(Ok(c)) => c,
                Some(Err(e)) => return reply.send(Err(e)),
                None => {
                    return reply.send(Err(StoreError::WriterGone {
                        op: "sweep_expired",
                    }));
                }
            };
            // The chunk is committed: the next one starts after it.
            self.sweep_from = chunk.next.clone();
            sweep::add(&mut total, &chunk);
            if message_limit > 0 {
                more_messages = chunk.more_messages;
            }
            if tombstone_limit > 0 {
                more_tombstones = chunk.more_tombstones;
            }
        }
        // A kind still marked `more` stopped at its limit with rows possibly left.
        total.more = more_messages || more_tombstones;
        reply.send(Ok(total));
    }

    fn publish_totals(&self) {
        let (c, b) = self
            .usage
            .values()
            .fold((0u64, 0u64), |(c, b), u| (c + u.count, b + u.bytes));
        self.totals.messages.store(c, Ordering::Relaxed);
        self.totals.bytes.store(b, Ordering::Relaxed);
        self.totals
            .tombstones
            .store(self.tombstones, Ordering::Relaxed);
    }

    /// The store's tally of its stored bytes (the size cap's measure).
    fn stored_bytes(&self) -> u64 {
        let t = &self.totals;
        t.bytes
            .load(Ordering::Relaxed)
            .saturating_add(
                t.messages
                    .load(Ordering::Relaxed)
                    .saturating_mul(MESSAGE_OVERHEAD),
            )
            .saturating_add(self.tombstones.saturating_mul(TOMBSTONE_OVERHEAD))
    }

    /// Applies the batch in one transaction, commits it, then completes the replies.
    fn run_batch(&mut self, batch: Vec<Cmd>) {
        let db = Arc::clone(&self.db);
        let cfs = match Cfs::new(&db) {
            Ok(c) => c,
            Err(e) => {
                let reason = e.to_string();
                for cmd in batch {
                    fail(cmd, &reason);
                }
                return;
            }
        };
        let mut wo = WriteOptions::default();
        wo.set_sync(self.config.durability == Durability::PowerLoss);
        let txn = db.transaction_opt(&wo, &OptimisticTransactionOptions::default());
        let mut log = BatchLog::default();
        for cmd in batch {
            txn.set_savepoint();
            let (f, ok) = self.apply(&txn, &cfs, &mut log.arrived, cmd);
            if !ok && let Err(e) = txn.rollback_to_savepoint() {
                // The transaction cannot be trusted any more: nothing of the batch is applied.
                f(Some(e.as_ref()));
                self.abort(log, e.as_ref());
                return;
            }
            log.finishes.push(f);
        }
        let seq = self.next_seq.to_be_bytes();
        let committed = txn
            .put_cf(cfs.meta, META_SEQ, seq)
            .and_then(|()| txn.commit());
        match committed {
            Ok(()) => {
                // Only now can a waiter find the new messages; it is woken before the writes
                // are acknowledged, so an acknowledged store has always woken its waiters.
                log.arrived.sort_unstable();
                log.arrived.dedup();
                for owner in &log.arrived {
                    self.hub.notify(owner);
                }
                for f in log.finishes {
                    f(None);
                }
            }
            Err(e) => self.abort(log, e.as_ref()),
        }
    }

    /// Nothing of the batch was applied: the tallies come back, every reply gets the reason.
    fn abort(&mut self, log: BatchLog, reason: &str) {
        // The tallies come back from disk (rare: a failed commit is an I/O error). The seqs the
        // batch took stay taken; skipping them is harmless.
        if let Ok((usage, tombstones)) = load_usage(&self.db) {
            self.usage = usage;
            self.tombstones = tombstones;
        }
        self.publish_totals();
        for f in log.finishes {
            f(Some(reason));
        }
    }

    /// Runs one command and returns how to complete its reply, and whether it succeeded (a
    /// failed command's writes must be rolled back to its savepoint).
    fn apply(
        &mut self,
        txn: &Transaction<'_, Db>,
        cfs: &Cfs<'_>,
        arrived: &mut Vec<AccountId>,
        cmd: Cmd,
    ) -> (Finish, bool) {
        let mut run = Runner {
            state: self,
            txn,
            cfs,
            arrived,
        };
        match cmd {
            Cmd::Store { msg, now_ms, reply } => {
                run.op("store", reply, |w| ops::store(w, msg, now_ms))
            }
            Cmd::Delete {
                owner,
                hashes,
                now_ms,
                reply,
            } => run.op("delete", reply, |w| ops::delete(w, &owner, &hashes, now_ms)),
            Cmd::DeleteAll {
                owner,
                ns,
                before_ms,
                now_ms,
                reply,
            } => {
                let op = if before_ms.is_some() {
                    "delete_before"
                } else {
                    "delete_all"
                };
                run.op(op, reply, |w| {
                    ops::delete_all(w, &owner, ns, before_ms, now_ms)
                })
            }
            Cmd::Expire { req, now_ms, reply } => {
                run.op("expire", reply, |w| ops::expire(w, &req, now_ms))
            }
            Cmd::ExpireAll {
                owner,
                ns,
                expiry_ms,
                now_ms,
                reply,
            } => run.op("expire_all", reply, |w| {
                ops::expire_all(w, &owner, ns, expiry_ms, now_ms)
            }),
            Cmd::Revoke {
                owner,
                tokens,
                now_ms,
                reply,
            } => run.op("revoke_subaccount", reply, |w| {
                ops::revoke(w, &owner, &tokens, now_ms)
            }),
            Cmd::Unrevoke {
                owner,
                tokens,
                reply,
            } => run.op("unrevoke_subaccount", reply, |w| {
                ops::unrevoke(w, &owner, &tokens)
            }),
            // `run` takes every sweep call out of the batches (`run_sweep`); one that got here
            // anyway is one chunk of the whole limit from the start.
            Cmd::Sweep { now_ms, reply } => run.op("sweep_expired", reply, |w| {
                let limit = w.config.sweep_limit.max(1);
                let c = sweep::chunk(w, now_ms, limit, limit, &sweep::Cursor::default())?;
                let mut out = SweepOutcome {
                    more: c.more_messages || c.more_tombstones,
                    ..SweepOutcome::default()
                };
                sweep::add(&mut out, &c);
                Ok(out)
            }),
            Cmd::SweepChunk {
                now_ms,
                message_limit,
                tombstone_limit,
                from,
                reply,
            } => run.op("sweep_expired", reply, |w| {
                sweep::chunk(w, now_ms, message_limit, tombstone_limit, &from)
            }),
            Cmd::ApplyMessage { msg, now_ms, reply } => {
                run.op("apply_remote_message", reply, |w| {
                    merge::apply_message(w, msg, now_ms)
                })
            }
            Cmd::ApplyTombstone { t, now_ms, reply } => {
                run.op("apply_remote_tombstone", reply, |w| {
                    merge::apply_tombstone(w, t, now_ms)
                })
            }
            Cmd::ApplyExpiry { e, now_ms, reply } => run.op("apply_remote_expiry", reply, |w| {
                merge::apply_expiry(w, e, now_ms)
            }),
        }
    }

    fn apply_deltas(&mut self, d: Deltas) {
        for (owner, dc, db) in d.usage {
            let e = self.usage.entry(owner).or_default();
            e.count = add_signed(e.count, dc);
            e.bytes = add_signed(e.bytes, db);
            if e.count == 0 {
                self.usage.remove(&owner);
            }
            update_atomic(&self.totals.messages, dc);
            update_atomic(&self.totals.bytes, db);
        }
        self.tombstones = add_signed(self.tombstones, d.tombstones);
        self.totals
            .tombstones
            .store(self.tombstones, Ordering::Relaxed);
    }
}

/// One command's run inside the batch.
struct Runner<'s, 't, 'db> {
    state: &'s mut State,
    txn: &'t Transaction<'db, Db>,
    cfs: &'t Cfs<'db>,
    arrived: &'t mut Vec<AccountId>,
}

impl Runner<'_, '_, '_> {
    fn op<T: Send + 'static>(
        &mut self,
        op: &'static str,
        reply: ReplySender<T>,
        f: impl FnOnce(&mut Tx<'_, '_>) -> Result<T>,
    ) -> (Finish, bool) {
        let stored_bytes = self.state.stored_bytes();
        let mut seq = self.state.next_seq;
        let mut w = Tx {
            txn: self.txn,
            cf: self.cfs,
            op,
            config: &self.state.config,
            usage: &self.state.usage,
            stored_bytes,
            next_seq: &mut seq,
            d: Deltas::default(),
        };
        let r = f(&mut w);
        let deltas = std::mem::take(&mut w.d);
        // Seqs taken by a failed command are skipped, never reused.
        self.state.next_seq = seq;
        let ok = r.is_ok();
        if ok {
            self.arrived
                .extend(deltas.usage.iter().filter(|d| d.1 > 0).map(|d| d.0));
            self.state.apply_deltas(deltas);
        }
        (finish(op, reply, r), ok)
    }
}

/// Moves the commands already queued into `pending`, up to `max_batch` of them, without waiting.
fn take_queued(rx: &Receiver<Cmd>, pending: &mut VecDeque<Cmd>, max_batch: usize) {
    while pending.len() < max_batch {
        match rx.try_recv() {
            Ok(c) => pending.push_back(c),
            Err(_) => break,
        }
    }
}

fn update_atomic(a: &AtomicU64, d: i64) {
    let cur = a.load(Ordering::Relaxed);
    a.store(add_signed(cur, d), Ordering::Relaxed);
}

/// Completes a command that never ran.
fn fail(cmd: Cmd, reason: &str) {
    macro_rules! f {
        ($op:expr, $reply:expr) => {
            finish($op, $reply, Err(StoreError::WriterGone { op: $op }))(Some(reason))
        };
    }
    match cmd {
        Cmd::Store { reply, .. } => f!("store", reply),
        Cmd::Delete { reply, .. } => f!("delete", reply),
        Cmd::DeleteAll { reply, .. } => f!("delete_all", reply),
        Cmd::Expire { reply, .. } => f!("expire", reply),
        Cmd::ExpireAll { reply, .. } => f!("expire_all", reply),
        Cmd::Revoke { reply, .. } => f!("revoke_subaccount", reply),
        Cmd::Unrevoke { reply, .. } => f!("unrevoke_subaccount", reply),
        Cmd::Sweep { reply, .. } => f!("sweep_expired", reply),
        Cmd::SweepChunk { reply, .. } => f!("sweep_expired", reply),
        Cmd::ApplyMessage { reply, .. } => f!("apply_remote_message", reply),
        Cmd::ApplyTombstone { reply, .. } => f!("apply_remote_tombstone", reply),
        Cmd::ApplyExpiry { reply, .. } => f!("apply_remote_expiry", reply),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Mutex;
    use std::task::{Context, Wake, Waker};

    use super::*;
    use crate::Store;

    const NOW: Millis = 1_700_000_000_000;

    fn config(sweep_limit: usize) -> StoreConfig {
        StoreConfig {
            sweep_limit,
            expired_grace_ms: 0,
            ..StoreConfig::default()
        }
    }

    fn message(i: u32, expiry_ms: Millis) -> NewMessage {
        let owner = AccountId::new([0x05; 33]);
        let data = i.to_be_bytes().to_vec();
        NewMessage {
            owner,
            namespace: 0,
            hash: umbra_crypto::hash::message_hash(&owner, 0, &data),
            data,
            timestamp_ms: NOW,
            expiry_ms,
        }
    }

    /// A store at `dir` holding `n` messages expiring at `NOW + 1000`, closed again.
    fn expired_store(dir: &std::path::Path, n: u32) {
        let s = Store::open(dir, config(5_000)).unwrap();
        let replies: Vec<_> = (0..n)
            .map(|i| s.store(message(i, NOW + 1000), NOW))
            .collect();
        for r in replies {
            r.wait().unwrap();
        }
    }

    /// The writer's state over the store at `dir`, to run on the calling thread.
    fn state(dir: &std::path::Path, config: StoreConfig) -> State {
        let (db, next_seq) = crate::engine::open(dir, &config).unwrap();
        let db = Arc::new(db);
        let (usage, tombstones) = load_usage(&db).unwrap();
        State {
            db,
            next_seq,
            config,
            usage,
            tombstones,
            totals: Arc::new(Totals::default()),
            hub: Arc::new(Hub::new()),
            sweep_from: sweep::Cursor::default(),
        }
    }

    /// Records the messages held when it is woken (when its reply is sent).
    struct HeldAtReply {
        totals: Arc<Totals>,
        held: Mutex<Option<u64>>,
    }

    impl Wake for HeldAtReply {
        fn wake(self: Arc<Self>) {
            let held = self.totals.messages.load(Ordering::Relaxed);
            *self.held.lock().unwrap() = Some(held);
        }
    }

    #[test]
    fn a_store_queued_behind_a_long_sweep_waits_for_one_chunk_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        expired_store(&path, 1_000);
        let st = state(&path, config(5_000));
        st.publish_totals();
        let totals = st.totals.clone();

        // Both queued before the writer runs: the sweep call (1 000 rows due, limit 5 000),
        // then a store.
        let (tx, rx) = sync_channel(16);
        let (sweep_tx, sweep_reply) = reply::channel("sweep_expired");
        tx.send(Cmd::Sweep {
            now_ms: NOW + 2000,
            reply: sweep_tx,
        })
        .unwrap();
        let (store_tx, mut store_reply) = reply::channel("store");
        tx.send(Cmd::Store {
            msg: message(1_000_000, NOW + 100_000),
            now_ms: NOW + 2000,
            reply: store_tx,
        })
        .unwrap();
        drop(tx);
        let probe = Arc::new(HeldAtReply {
            totals,
            held: Mutex::new(None),
        });
        let waker = Waker::from(probe.clone());
        assert!(
            std::pin::Pin::new(&mut store_reply)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );

        st.run(rx);

        let out = sweep_reply.wait().unwrap();
        assert_eq!((out.messages, out.more), (1_000, false));
        store_reply.wait().unwrap();
        // When the store was acknowledged, the sweep had removed one chunk, not the 1 000 rows
        // (it used to be committed in the same batch as the whole call: 1 held).
        let held = probe.held.lock().unwrap().expect("store reply sent");
        assert_eq!(held, 1_000 - SWEEP_CHUNK as u64 + 1);
    }

    #[test]
    fn each_sweep_chunk_resumes_where_the_last_stopped() {
        use rocksdb::perf::{PerfContext, PerfMetric, PerfStatsLevel, set_perf_stats};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let n = 2_000u32;
        expired_store(&path, n);
        // Calls of one chunk each, as the node makes them: again while `more`.
        let st = state(&path, config(SWEEP_CHUNK));
        let calls = n as usize / SWEEP_CHUNK + 1;
        let (tx, rx) = sync_channel(calls);
        let replies: Vec<_> = (0..calls)
            .map(|_| {
                let (s, r) = reply::channel("sweep_expired");
                tx.send(Cmd::Sweep {
                    now_ms: NOW + 2000,
                    reply: s,
                })
                .unwrap();
                r
            })
            .collect();
        drop(tx);

        // The writer runs on this thread: its iterators count here the deletion markers they
        // step over. From the start each time, chunk k would step over the k × SWEEP_CHUNK
        // markers of the chunks before it (quadratic); resuming, over none of the sweep's.
        set_perf_stats(PerfStatsLevel::EnableCount);
        let mut perf = PerfContext::default();
        perf.reset();
        st.run(rx);
        let skipped = perf.metric(PerfMetric::InternalDeleteSkippedCount);
        set_perf_stats(PerfStatsLevel::Disable);

        let outs: Vec<SweepOutcome> = replies.into_iter().map(|r| r.wait().unwrap()).collect();
        assert_eq!(outs.iter().map(|o| o.messages).sum::<u64>(), u64::from(n));
        assert!(outs[..calls - 2].iter().all(|o| o.more));
        assert!(!outs[calls - 1].more);
        assert!(skipped < u64::from(n), "{skipped} deletion markers skipped");
    }
}
