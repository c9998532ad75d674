//! The writer thread: owns the write connection, applies queued commands in batches (one
//! transaction per batch, one savepoint per command) and completes replies after the commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::arrival::Hub;
use crate::columns::{hash_from, owner_from};
use crate::config::StoreConfig;
use crate::error::{QuotaLimit, Result, StoreError};
use crate::reply::{self, Reply, ReplySender};
use crate::schema;
use crate::types::{
    AccountId, ApplyOutcome, ByNamespace, ExpireMode, ExpireOutcome, ExpireRequest, ExpiryTarget,
    ExpiryUpdate, MAX_REVOCATIONS_PER_ACCOUNT, MAX_TOKENS_PER_REQUEST, MessageHash, Millis,
    Namespace, NamespaceSel, NewMessage, ReplicaMessage, StoreOutcome, SubaccountToken,
    SweepOutcome, Tombstone, UpdatedExpiry, is_public_outbox,
};

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
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    tx: Option<SyncSender<Cmd>>,
    thread: Option<JoinHandle<()>>,
    totals: Arc<Totals>,
    capacity: usize,
}

impl Writer {
    /// Opens the write connection, migrates, loads per-account usage and starts the thread.
    pub(crate) fn start(path: &Path, config: &StoreConfig, hub: Arc<Hub>) -> Result<Writer> {
        let conn = schema::open_writer(path, config)?;
        let usage = load_usage(&conn).map_err(|e| StoreError::db("open", None, e))?;
        let totals = Arc::new(Totals::default());
        let mut state = State {
            conn,
            config: config.clone(),
            usage,
            totals: totals.clone(),
            hub,
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

    /// `(messages, bytes)` currently held.
    pub(crate) fn totals(&self) -> (u64, u64) {
        (
            self.totals.messages.load(Ordering::Relaxed),
            self.totals.bytes.load(Ordering::Relaxed),
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

/// Messages and bytes one account holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Usage {
    count: u64,
    bytes: u64,
}

fn load_usage(conn: &Connection) -> rusqlite::Result<HashMap<AccountId, Usage>> {
    let mut st = conn.prepare(
        "SELECT owner, COUNT(*), COALESCE(SUM(length(data)), 0) FROM messages GROUP BY owner",
    )?;
    let mut rows = st.query([])?;
    let mut out = HashMap::new();
    while let Some(r) = rows.next()? {
        let owner: Vec<u8> = r.get(0)?;
        let count: i64 = r.get(1)?;
        let bytes: i64 = r.get(2)?;
        if let Ok(o) = AccountId::try_from(owner.as_slice()) {
            out.insert(
                o,
                Usage {
                    count: u64::try_from(count).unwrap_or(0),
                    bytes: u64::try_from(bytes).unwrap_or(0),
                },
            );
        }
    }
    Ok(out)
}

/// Usage changes made by one command, applied to the in-memory counters only once its savepoint
/// has been released.
#[derive(Default)]
struct Deltas(Vec<(AccountId, i64, i64)>);

impl Deltas {
    fn add(&mut self, owner: AccountId, count: i64, bytes: i64) {
        self.0.push((owner, count, bytes));
    }

    fn for_owner(&self, owner: &AccountId) -> (i64, i64) {
        self.0
            .iter()
            .filter(|(o, _, _)| o == owner)
            .fold((0, 0), |(c, b), (_, dc, db)| (c + dc, b + db))
    }
}

/// What a command's code may read besides the connection.
struct Ctx<'a> {
    config: &'a StoreConfig,
    usage: &'a HashMap<AccountId, Usage>,
}

impl Ctx<'_> {
    /// Keep time of a tombstone: `deleted_ms + tombstone_retention_ms`. A function of the
    /// deletion time only, so that it converges like `deleted_ms` does.
    fn keep_until(&self, deleted_ms: Millis) -> Millis {
        deleted_ms.saturating_add(self.config.tombstone_retention_ms)
    }

    fn db(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + use<> {
        let max = self.config.max_db_bytes;
        move |e| StoreError::db(op, max, e)
    }
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
    conn: Connection,
    config: StoreConfig,
    usage: HashMap<AccountId, Usage>,
    totals: Arc<Totals>,
    hub: Arc<Hub>,
}

impl State {
    fn run(mut self, rx: Receiver<Cmd>) {
        let max_batch = self.config.max_batch.max(1);
        while let Ok(first) = rx.recv() {
            let mut batch = Vec::with_capacity(64);
            batch.push(first);
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.run_batch(batch);
        }
    }

    fn publish_totals(&mut self) {
        let (c, b) = self
            .usage
            .values()
            .fold((0u64, 0u64), |(c, b), u| (c + u.count, b + u.bytes));
        self.totals.messages.store(c, Ordering::Relaxed);
        self.totals.bytes.store(b, Ordering::Relaxed);
    }

    fn run_batch(&mut self, batch: Vec<Cmd>) {
        let mut cmds = batch.into_iter().peekable();
        while cmds.peek().is_some() {
            self.run_transaction(&mut cmds);
        }
    }

    /// Applies commands from `cmds` in one transaction until they run out or SQLite rolls the
    /// transaction back by itself (it does so on `SQLITE_FULL`, I/O errors and a few others);
    /// then commits and completes the replies.
    fn run_transaction(&mut self, cmds: &mut impl Iterator<Item = Cmd>) {
        let State {
            conn,
            config,
            usage,
            totals,
            hub,
        } = self;
        let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let reason = e.to_string();
                for cmd in cmds {
                    fail(cmd, &reason);
                }
                return;
            }
        };
        let mut finishes: Vec<Finish> = Vec::new();
        let mut arrived: Vec<AccountId> = Vec::new();
        let mut rolled_back = false;
        for cmd in cmds.by_ref() {
            let (f, ok) = apply(&mut tx, config, usage, totals, &mut arrived, cmd);
            if tx.is_autocommit() {
                // This command's error made SQLite roll back the whole batch: it gets its own
                // error, the earlier ones a commit error; the rest go into a new transaction.
                if ok {
                    f(Some(ROLLED_BACK));
                } else {
                    f(None);
                }
                rolled_back = true;
                break;
            }
            finishes.push(f);
        }
        let result = if rolled_back {
            drop(tx);
            Err(ROLLED_BACK.to_string())
        } else {
            tx.commit().map_err(|e| e.to_string())
        };
        match result {
            Ok(()) => {
                // Only now can a waiter find the new messages; it is woken before the writes
                // are acknowledged, so an acknowledged store has always woken its waiters.
                arrived.sort_unstable();
                arrived.dedup();
                for owner in &arrived {
                    hub.notify(owner);
                }
                for f in finishes {
                    f(None);
                }
            }
            Err(reason) => {
                // Nothing of the batch was applied: the counters must come back from disk.
                if let Ok(u) = load_usage(conn) {
                    *usage = u;
                }
                self.publish_totals();
                for f in finishes {
                    f(Some(&reason));
                }
            }
        }
    }
}

const ROLLED_BACK: &str =
    "SQLite rolled back the batch transaction after an error in another write";

/// Completes a command that never ran (the batch transaction could not start).
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
        Cmd::ApplyMessage { reply, .. } => f!("apply_remote_message", reply),
        Cmd::ApplyTombstone { reply, .. } => f!("apply_remote_tombstone", reply),
        Cmd::ApplyExpiry { reply, .. } => f!("apply_remote_expiry", reply),
    }
}

/// Runs one command inside its own savepoint and returns how to complete its reply.
fn apply(
    tx: &mut Transaction<'_>,
    config: &StoreConfig,
    usage: &mut HashMap<AccountId, Usage>,
    totals: &Totals,
    arrived: &mut Vec<AccountId>,
    cmd: Cmd,
) -> (Finish, bool) {
    #[allow(clippy::too_many_arguments)]
    fn run<T: Send + 'static>(
        tx: &mut Transaction<'_>,
        config: &StoreConfig,
        usage: &mut HashMap<AccountId, Usage>,
        totals: &Totals,
        arrived: &mut Vec<AccountId>,
        op: &'static str,
        reply: ReplySender<T>,
        f: impl FnOnce(&Connection, &Ctx<'_>, &mut Deltas) -> Result<T>,
    ) -> (Finish, bool) {
        let mut deltas = Deltas::default();
        let ctx = Ctx {
            config,
            usage: &*usage,
        };
        let db = ctx.db(op);
        let r = (|| {
            let sp = tx.savepoint().map_err(&db)?;
            let v = f(&sp, &ctx, &mut deltas)?;
            sp.commit().map_err(&db)?;
            Ok(v)
        })();
        let ok = r.is_ok();
        if ok {
            arrived.extend(deltas.0.iter().filter(|d| d.1 > 0).map(|d| d.0));
            apply_deltas(usage, totals, deltas);
        }
        (finish(op, reply, r), ok)
    }
    let (c, u, t, a) = (config, usage, totals, arrived);
    match cmd {
        Cmd::Store { msg, now_ms, reply } => run(tx, c, u, t, a, "store", reply, |cn, cx, d| {
            op_store(cn, cx, d, msg, now_ms)
        }),
        Cmd::Delete {
            owner,
            hashes,
            now_ms,
            reply,
        } => run(tx, c, u, t, a, "delete", reply, |cn, cx, d| {
            op_delete(cn, cx, d, &owner, &hashes, now_ms)
        }),
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
            run(tx, c, u, t, a, op, reply, |cn, cx, d| {
                op_delete_all(cn, cx, d, op, &owner, ns, before_ms, now_ms)
            })
        }
        Cmd::Expire { req, now_ms, reply } => run(tx, c, u, t, a, "expire", reply, |cn, cx, _| {
            op_expire(cn, cx, &req, now_ms)
        }),
        Cmd::ExpireAll {
            owner,
            ns,
            expiry_ms,
            now_ms,
            reply,
        } => run(tx, c, u, t, a, "expire_all", reply, |cn, cx, _| {
            op_expire_all(cn, cx, &owner, ns, expiry_ms, now_ms)
        }),
        Cmd::Revoke {
            owner,
            tokens,
            now_ms,
            reply,
        } => run(tx, c, u, t, a, "revoke_subaccount", reply, |cn, cx, _| {
            op_revoke(cn, cx, &owner, &tokens, now_ms)
        }),
        Cmd::Unrevoke {
            owner,
            tokens,
            reply,
        } => run(tx, c, u, t, a, "unrevoke_subaccount", reply, |cn, cx, _| {
            op_unrevoke(cn, cx, &owner, &tokens)
        }),
        Cmd::Sweep { now_ms, reply } => run(tx, c, u, t, a, "sweep_expired", reply, |cn, cx, d| {
            op_sweep(cn, cx, d, now_ms)
        }),
        Cmd::ApplyMessage { msg, now_ms, reply } => run(
            tx,
            c,
            u,
            t,
            a,
            "apply_remote_message",
            reply,
            |cn, cx, d| op_apply_message(cn, cx, d, msg, now_ms),
        ),
        Cmd::ApplyTombstone {
            t: tomb,
            now_ms,
            reply,
        } => run(
            tx,
            c,
            u,
            t,
            a,
            "apply_remote_tombstone",
            reply,
            |cn, cx, d| op_apply_tombstone(cn, cx, d, tomb, now_ms),
        ),
        Cmd::ApplyExpiry { e, now_ms, reply } => {
            run(tx, c, u, t, a, "apply_remote_expiry", reply, |cn, cx, d| {
                op_apply_expiry(cn, cx, d, e, now_ms)
            })
        }
    }
}

fn apply_deltas(usage: &mut HashMap<AccountId, Usage>, totals: &Totals, deltas: Deltas) {
    for (owner, dc, db) in deltas.0 {
        let e = usage.entry(owner).or_default();
        e.count = add_signed(e.count, dc);
        e.bytes = add_signed(e.bytes, db);
        if e.count == 0 {
            usage.remove(&owner);
        }
        update_atomic(&totals.messages, dc);
        update_atomic(&totals.bytes, db);
    }
}

fn add_signed(v: u64, d: i64) -> u64 {
    if d >= 0 {
        v.saturating_add(d.unsigned_abs())
    } else {
        v.saturating_sub(d.unsigned_abs())
    }
}

fn update_atomic(a: &AtomicU64, d: i64) {
    let cur = a.load(Ordering::Relaxed);
    a.store(add_signed(cur, d), Ordering::Relaxed);
}

fn ns_param(ns: NamespaceSel) -> Option<i64> {
    match ns {
        NamespaceSel::One(n) => Some(i64::from(n)),
        NamespaceSel::All => None,
    }
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Row helpers
// ---------------------------------------------------------------------------------------------

/// A message row as the writer sees it.
struct Row {
    id: i64,
    owner: AccountId,
    namespace: Namespace,
    timestamp_ms: Millis,
    expiry_ms: Millis,
    expiry_version: Millis,
    len: i64,
}

fn find_row(c: &Connection, hash: &str) -> rusqlite::Result<Option<Row>> {
    let mut st = c.prepare_cached(
        "SELECT id, owner, namespace, timestamp_ms, expiry_ms, expiry_version, length(data)
         FROM messages WHERE hash = ?1",
    )?;
    st.query_row([hash], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, Namespace>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
        ))
    })
    .optional()?
    .map(|(id, owner, namespace, ts, exp, ver, len)| {
        Ok(Row {
            id,
            owner: owner_from(owner)?,
            namespace,
            timestamp_ms: ts,
            expiry_ms: exp,
            expiry_version: ver,
            len,
        })
    })
    .transpose()
}

/// The live row for `hash`; an expired row found on the way is removed (it is garbage the sweep
/// has not reached yet, and must not influence merges).
fn find_live(
    c: &Connection,
    d: &mut Deltas,
    hash: &str,
    now_ms: Millis,
) -> rusqlite::Result<Option<Row>> {
    match find_row(c, hash)? {
        Some(r) if r.expiry_ms <= now_ms => {
            c.prepare_cached("DELETE FROM messages WHERE id = ?1")?
                .execute([r.id])?;
            d.add(r.owner, -1, -r.len);
            Ok(None)
        }
        other => Ok(other),
    }
}

fn delete_row(c: &Connection, d: &mut Deltas, r: &Row) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM messages WHERE id = ?1")?
        .execute([r.id])?;
    d.add(r.owner, -1, -r.len);
    Ok(())
}

/// Inserts or merges (max of both times) a tombstone.
fn upsert_tombstone(
    c: &Connection,
    owner: &AccountId,
    ns: Namespace,
    hash: &str,
    deleted_ms: Millis,
    keep_until_ms: Millis,
    local_id: Option<i64>,
) -> rusqlite::Result<bool> {
    let n = c
        .prepare_cached(
            "INSERT INTO tombstones (hash, owner, namespace, deleted_ms, keep_until_ms, local_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (hash) DO UPDATE SET
                deleted_ms = max(deleted_ms, excluded.deleted_ms),
                keep_until_ms = max(keep_until_ms, excluded.keep_until_ms),
                local_id = coalesce(excluded.local_id, local_id)
             WHERE excluded.deleted_ms > deleted_ms OR excluded.keep_until_ms > keep_until_ms
                OR (excluded.local_id IS NOT NULL AND local_id IS NULL)",
        )?
        .execute(params![
            hash,
            &owner.as_bytes()[..],
            ns,
            deleted_ms,
            keep_until_ms,
            local_id
        ])?;
    Ok(n > 0)
}

struct TombRow {
    owner: AccountId,
    namespace: Namespace,
    deleted_ms: Millis,
}

fn find_tombstone(c: &Connection, hash: &str) -> rusqlite::Result<Option<TombRow>> {
    let mut st =
        c.prepare_cached("SELECT owner, namespace, deleted_ms FROM tombstones WHERE hash = ?1")?;
    st.query_row([hash], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Namespace>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })
    .optional()?
    .map(|(o, namespace, deleted_ms)| {
        Ok(TombRow {
            owner: owner_from(o)?,
            namespace,
            deleted_ms,
        })
    })
    .transpose()
}

enum TombCheck {
    /// No tombstone, or it was beaten (and removed).
    Clear,
    /// The tombstone beats the message.
    Wins,
}

/// Resolves an incoming message against a tombstone of the same hash.
fn check_tombstone(
    c: &Connection,
    op: &'static str,
    owner: &AccountId,
    ns: Namespace,
    hash: &str,
    timestamp_ms: Millis,
) -> Result<TombCheck, OpError> {
    let Some(t) = find_tombstone(c, hash)? else {
        return Ok(TombCheck::Clear);
    };
    if t.owner != *owner || t.namespace != ns {
        return Err(OpError::Store(StoreError::HashConflict { op }));
    }
    if t.deleted_ms >= timestamp_ms {
        Ok(TombCheck::Wins)
    } else {
        c.prepare_cached("DELETE FROM tombstones WHERE hash = ?1")?
            .execute([hash])?;
        Ok(TombCheck::Clear)
    }
}

enum OutboxCheck {
    Wins,
    Loses,
}

/// Public outbox rule: the live message with the largest `(timestamp, hash)` is kept; the others
/// become tombstones with `deleted_ms` = their own timestamp (deterministic on every node).
#[allow(clippy::too_many_arguments)]
fn check_outbox(
    c: &Connection,
    d: &mut Deltas,
    owner: &AccountId,
    ns: Namespace,
    hash: &str,
    timestamp_ms: Millis,
    now_ms: Millis,
    retention_ms: Millis,
) -> rusqlite::Result<OutboxCheck> {
    let rows: Vec<(i64, String, i64, i64, i64)> = {
        let mut st = c.prepare_cached(
            "SELECT id, hash, timestamp_ms, expiry_ms, length(data) FROM messages
             WHERE owner = ?1 AND namespace = ?2",
        )?;
        st.query_map(params![&owner.as_bytes()[..], ns], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let incoming = (timestamp_ms, hash);
    let loses = rows
        .iter()
        .any(|(_, h, ts, exp, _)| *exp > now_ms && (*ts, h.as_str()) > incoming);
    if loses {
        let keep = timestamp_ms.saturating_add(retention_ms);
        upsert_tombstone(c, owner, ns, hash, timestamp_ms, keep, None)?;
        return Ok(OutboxCheck::Loses);
    }
    for (id, h, ts, exp, len) in rows {
        c.prepare_cached("DELETE FROM messages WHERE id = ?1")?
            .execute([id])?;
        d.add(*owner, -1, -len);
        if exp > now_ms {
            upsert_tombstone(
                c,
                owner,
                ns,
                &h,
                ts,
                ts.saturating_add(retention_ms),
                Some(id),
            )?;
        }
    }
    Ok(OutboxCheck::Wins)
}

/// Internal error of an op: either a finished `StoreError` or a SQLite error still to be wrapped
/// with the op name.
enum OpError {
    Store(StoreError),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for OpError {
    fn from(e: rusqlite::Error) -> Self {
        OpError::Sql(e)
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Store(e)
    }
}

fn lift<T>(cx: &Ctx<'_>, op: &'static str, r: Result<T, OpError>) -> Result<T> {
    r.map_err(|e| match e {
        OpError::Store(s) => s,
        OpError::Sql(s) => cx.db(op)(s),
    })
}

#[allow(clippy::too_many_arguments)]
fn insert_message(
    c: &Connection,
    d: &mut Deltas,
    owner: &AccountId,
    ns: Namespace,
    hash: &str,
    data: &[u8],
    timestamp_ms: Millis,
    expiry_ms: Millis,
    expiry_version: Millis,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO messages (owner, namespace, hash, data, timestamp_ms, expiry_ms, expiry_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        &owner.as_bytes()[..],
        ns,
        hash,
        data,
        timestamp_ms,
        expiry_ms,
        expiry_version
    ])?;
    d.add(*owner, 1, len_i64(data.len()));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

fn op_store(
    c: &Connection,
    cx: &Ctx<'_>,
    d: &mut Deltas,
    msg: NewMessage,
    now_ms: Millis,
) -> Result<StoreOutcome> {
    const OP: &str = "store";
    if msg.data.len() > cx.config.max_message_bytes {
        return Err(StoreError::MessageTooLarge {
            len: msg.data.len(),
            max: cx.config.max_message_bytes,
        });
    }
    let r = (|| -> Result<StoreOutcome, OpError> {
        if let Some(row) = find_live(c, d, msg.hash.as_str(), now_ms)? {
            if row.owner != msg.owner || row.namespace != msg.namespace {
                return Err(StoreError::HashConflict { op: OP }.into());
            }
            if msg.expiry_ms > row.expiry_ms {
                let version = now_ms.max(row.expiry_version.saturating_add(1));
                c.prepare_cached(
                    "UPDATE messages SET expiry_ms = ?2, expiry_version = ?3 WHERE id = ?1",
                )?
                .execute(params![row.id, msg.expiry_ms, version])?;
                return Ok(StoreOutcome::Already {
                    expiry_ms: msg.expiry_ms,
                });
            }
            return Ok(StoreOutcome::Already {
                expiry_ms: row.expiry_ms,
            });
        }
        if let TombCheck::Wins = check_tombstone(
            c,
            OP,
            &msg.owner,
            msg.namespace,
            msg.hash.as_str(),
            msg.timestamp_ms,
        )? {
            return Ok(StoreOutcome::Deleted);
        }
        if is_public_outbox(msg.namespace)
            && let OutboxCheck::Loses = check_outbox(
                c,
                d,
                &msg.owner,
                msg.namespace,
                msg.hash.as_str(),
                msg.timestamp_ms,
                now_ms,
                cx.config.tombstone_retention_ms,
            )?
        {
            return Ok(StoreOutcome::Obsolete);
        }
        // Quota: what the account holds now, plus what this command already changed.
        let held = cx.usage.get(&msg.owner).copied().unwrap_or_default();
        let (dc, db) = d.for_owner(&msg.owner);
        let count = add_signed(held.count, dc);
        let bytes = add_signed(held.bytes, db);
        let q = cx.config.quota;
        if count.saturating_add(1) > q.max_messages {
            return Err(StoreError::QuotaExceeded {
                limit: QuotaLimit::MessageCount,
                max: q.max_messages,
            }
            .into());
        }
        let len = u64::try_from(msg.data.len()).unwrap_or(u64::MAX);
        if bytes.saturating_add(len) > q.max_bytes {
            return Err(StoreError::QuotaExceeded {
                limit: QuotaLimit::Bytes,
                max: q.max_bytes,
            }
            .into());
        }
        insert_message(
            c,
            d,
            &msg.owner,
            msg.namespace,
            msg.hash.as_str(),
            &msg.data,
            msg.timestamp_ms,
            msg.expiry_ms,
            msg.timestamp_ms,
        )?;
        Ok(StoreOutcome::Stored {
            expiry_ms: msg.expiry_ms,
        })
    })();
    lift(cx, OP, r)
}

fn op_delete(
    c: &Connection,
    cx: &Ctx<'_>,
    d: &mut Deltas,
    owner: &AccountId,
    hashes: &[MessageHash],
    now_ms: Millis,
) -> Result<Vec<MessageHash>> {
    let r = (|| -> rusqlite::Result<Vec<MessageHash>> {
        let mut deleted = Vec::new();
        let mut seen = HashSet::new();
        for h in hashes {
            if !seen.insert(h) {
                continue;
            }
            let Some(row) = find_row(c, h.as_str())? else {
                continue;
            };
            if row.owner != *owner || row.expiry_ms <= now_ms {
                continue;
            }
            delete_row(c, d, &row)?;
            upsert_tombstone(
                c,
                owner,
                row.namespace,
                h.as_str(),
                now_ms.max(row.timestamp_ms),
                cx.keep_until(now_ms.max(row.timestamp_ms)),
                Some(row.id),
            )?;
            deleted.push(*h);
        }
        deleted.sort();
        Ok(deleted)
    })();
    r.map_err(cx.db("delete"))
}

#[allow(clippy::too_many_arguments)]
fn op_delete_all(
    c: &Connection,
    cx: &Ctx<'_>,
    d: &mut Deltas,
    op: &'static str,
    owner: &AccountId,
    ns: NamespaceSel,
    before_ms: Option<Millis>,
    now_ms: Millis,
) -> Result<ByNamespace> {
    let r = (|| -> rusqlite::Result<ByNamespace> {
        let rows: Vec<(i64, Namespace, String, i64, i64)> = {
            let mut st = c.prepare_cached(
                "DELETE FROM messages
                 WHERE owner = ?1 AND (?2 IS NULL OR namespace = ?2) AND expiry_ms > ?3
                   AND (?4 IS NULL OR timestamp_ms <= ?4)
                 RETURNING id, namespace, hash, timestamp_ms, length(data)",
            )?;
            st.query_map(
                params![&owner.as_bytes()[..], ns_param(ns), now_ms, before_ms],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?
            .collect::<rusqlite::Result<_>>()?
        };
        let mut out: BTreeMap<Namespace, Vec<MessageHash>> = BTreeMap::new();
        for (id, n, hash, ts, len) in rows {
            d.add(*owner, -1, -len);
            let deleted_ms = now_ms.max(ts);
            let keep = cx.keep_until(deleted_ms);
            upsert_tombstone(c, owner, n, &hash, deleted_ms, keep, Some(id))?;
            out.entry(n).or_default().push(hash_from(hash)?);
        }
        for v in out.values_mut() {
            v.sort();
        }
        Ok(ByNamespace(out))
    })();
    r.map_err(cx.db(op))
}

fn op_expire(
    c: &Connection,
    cx: &Ctx<'_>,
    req: &ExpireRequest,
    now_ms: Millis,
) -> Result<ExpireOutcome> {
    const OP: &str = "expire";
    if let ExpiryTarget::PerMessage(v) = &req.expiry
        && v.len() != req.hashes.len()
    {
        return Err(StoreError::ExpiryCountMismatch {
            expiries: v.len(),
            hashes: req.hashes.len(),
        });
    }
    let cap = now_ms.saturating_add(cx.config.max_expire_ahead_ms);
    let r = (|| -> rusqlite::Result<ExpireOutcome> {
        let mut out = ExpireOutcome::default();
        if let ExpiryTarget::Single(e) = req.expiry {
            out.applied_expiry_ms = Some(e.min(cap));
        }
        let mut seen = HashSet::new();
        for (i, h) in req.hashes.iter().enumerate() {
            let target = match &req.expiry {
                ExpiryTarget::Single(e) => {
                    if !seen.insert(h) {
                        continue;
                    }
                    (*e).min(cap)
                }
                ExpiryTarget::PerMessage(v) => v.get(i).copied().unwrap_or(cap).min(cap),
            };
            let Some(row) = find_row(c, h.as_str())? else {
                continue;
            };
            if row.owner != req.owner || row.expiry_ms <= now_ms {
                continue;
            }
            let apply = match req.mode {
                ExpireMode::Set => true,
                ExpireMode::Extend => row.expiry_ms < target,
                ExpireMode::ExtendNonTrivial => {
                    row.expiry_ms < target && !is_trivial_extension(&row, target)
                }
                ExpireMode::Shorten => row.expiry_ms > target,
            };
            if apply {
                if row.expiry_ms != target {
                    let version = now_ms.max(row.expiry_version.saturating_add(1));
                    c.prepare_cached(
                        "UPDATE messages SET expiry_ms = ?2, expiry_version = ?3 WHERE id = ?1",
                    )?
                    .execute(params![row.id, target, version])?;
                }
                out.unchanged.remove(h);
                out.updated.push(UpdatedExpiry {
                    hash: *h,
                    expiry_ms: target,
                });
            } else {
                out.unchanged.insert(*h, row.expiry_ms);
            }
        }
        out.updated.sort_by_key(|a| a.hash);
        Ok(out)
    })();
    r.map_err(cx.db(OP))
}

/// `storage-rpc-addendum.md` A3: raising the expiry of `row` to `target` is trivial when it adds
/// less than 1 % of the message's current lifetime, `100 × (target − expiry) < expiry −
/// timestamp`. A skipped message is not rewritten, so its expiry version does not move and
/// anti-entropy has nothing of it to spread.
fn is_trivial_extension(row: &Row, target: Millis) -> bool {
    const TRIVIAL_EXTENSION_DIVISOR: i128 = 100;
    let gain = i128::from(target) - i128::from(row.expiry_ms);
    let lifetime = i128::from(row.expiry_ms) - i128::from(row.timestamp_ms);
    TRIVIAL_EXTENSION_DIVISOR * gain < lifetime
}

fn op_expire_all(
    c: &Connection,
    cx: &Ctx<'_>,
    owner: &AccountId,
    ns: NamespaceSel,
    expiry_ms: Millis,
    now_ms: Millis,
) -> Result<ByNamespace> {
    let r = (|| -> rusqlite::Result<ByNamespace> {
        let rows: Vec<(Namespace, String)> = {
            let mut st = c.prepare_cached(
                "UPDATE messages SET expiry_ms = ?3, expiry_version = max(?4, expiry_version + 1)
                 WHERE owner = ?1 AND (?2 IS NULL OR namespace = ?2)
                   AND expiry_ms > ?3 AND expiry_ms > ?4
                 RETURNING namespace, hash",
            )?;
            st.query_map(
                params![&owner.as_bytes()[..], ns_param(ns), expiry_ms, now_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<rusqlite::Result<_>>()?
        };
        let mut out: BTreeMap<Namespace, Vec<MessageHash>> = BTreeMap::new();
        for (n, h) in rows {
            out.entry(n).or_default().push(hash_from(h)?);
        }
        for v in out.values_mut() {
            v.sort();
        }
        Ok(ByNamespace(out))
    })();
    r.map_err(cx.db("expire_all"))
}

fn op_revoke(
    c: &Connection,
    cx: &Ctx<'_>,
    owner: &AccountId,
    tokens: &[SubaccountToken],
    now_ms: Millis,
) -> Result<()> {
    const OP: &str = "revoke_subaccount";
    if tokens.len() > MAX_TOKENS_PER_REQUEST {
        return Err(StoreError::TooManyTokens {
            op: OP,
            given: tokens.len(),
            max: MAX_TOKENS_PER_REQUEST,
        });
    }
    let r = (|| -> rusqlite::Result<()> {
        let o = &owner.as_bytes()[..];
        for t in tokens {
            c.prepare_cached("DELETE FROM revoked_subaccounts WHERE owner = ?1 AND token = ?2")?
                .execute(params![o, &t.0[..]])?;
            c.prepare_cached(
                "INSERT INTO revoked_subaccounts (owner, token, revoked_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![o, &t.0[..], now_ms])?;
        }
        c.prepare_cached(
            "DELETE FROM revoked_subaccounts WHERE owner = ?1 AND id NOT IN
               (SELECT id FROM revoked_subaccounts WHERE owner = ?1 ORDER BY id DESC LIMIT ?2)",
        )?
        .execute(params![o, len_i64(MAX_REVOCATIONS_PER_ACCOUNT)])?;
        Ok(())
    })();
    r.map_err(cx.db(OP))
}

fn op_unrevoke(
    c: &Connection,
    cx: &Ctx<'_>,
    owner: &AccountId,
    tokens: &[SubaccountToken],
) -> Result<u64> {
    // storage-rpc-addendum.md A5: no count limit (the request body bounds it); a token listed
    // twice is removed, and counted, once (its second DELETE finds nothing).
    const OP: &str = "unrevoke_subaccount";
    let r = (|| -> rusqlite::Result<u64> {
        let mut n = 0u64;
        for t in tokens {
            let k = c
                .prepare_cached("DELETE FROM revoked_subaccounts WHERE owner = ?1 AND token = ?2")?
                .execute(params![&owner.as_bytes()[..], &t.0[..]])?;
            n += u64::try_from(k).unwrap_or(0);
        }
        Ok(n)
    })();
    r.map_err(cx.db(OP))
}

fn op_sweep(c: &Connection, cx: &Ctx<'_>, d: &mut Deltas, now_ms: Millis) -> Result<SweepOutcome> {
    let limit = cx.config.sweep_limit.max(1);
    let r = (|| -> rusqlite::Result<SweepOutcome> {
        let rows: Vec<(Vec<u8>, i64)> = {
            let mut st = c.prepare_cached(
                "DELETE FROM messages WHERE id IN
                   (SELECT id FROM messages WHERE expiry_ms <= ?1 LIMIT ?2)
                 RETURNING owner, length(data)",
            )?;
            let cutoff = now_ms.saturating_sub(cx.config.expired_grace_ms);
            st.query_map(params![cutoff, len_i64(limit)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let messages = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        let more = rows.len() >= limit;
        for (o, len) in rows {
            d.add(owner_from(o)?, -1, -len);
        }
        let tombstones = c
            .prepare_cached("DELETE FROM tombstones WHERE keep_until_ms <= ?1")?
            .execute([now_ms])?;
        Ok(SweepOutcome {
            messages,
            tombstones: u64::try_from(tombstones).unwrap_or(u64::MAX),
            more,
        })
    })();
    r.map_err(cx.db("sweep_expired"))
}

fn op_apply_message(
    c: &Connection,
    cx: &Ctx<'_>,
    d: &mut Deltas,
    m: ReplicaMessage,
    now_ms: Millis,
) -> Result<ApplyOutcome> {
    const OP: &str = "apply_remote_message";
    if m.data.len() > cx.config.max_message_bytes {
        return Err(StoreError::MessageTooLarge {
            len: m.data.len(),
            max: cx.config.max_message_bytes,
        });
    }
    let r = (|| -> Result<ApplyOutcome, OpError> {
        if let Some(row) = find_live(c, d, m.hash.as_str(), now_ms)? {
            if row.owner != m.owner || row.namespace != m.namespace {
                return Err(StoreError::HashConflict { op: OP }.into());
            }
            // The message state is a last-writer-wins register ordered by
            // (timestamp, expiry_version, expiry); the data is fixed by the hash.
            let incoming = (m.timestamp_ms, m.expiry_version, m.expiry_ms);
            if incoming <= (row.timestamp_ms, row.expiry_version, row.expiry_ms) {
                return Ok(ApplyOutcome::Unchanged);
            }
            c.prepare_cached(
                "UPDATE messages SET timestamp_ms = ?2, expiry_version = ?3, expiry_ms = ?4
                 WHERE id = ?1",
            )?
            .execute(params![
                row.id,
                m.timestamp_ms,
                m.expiry_version,
                m.expiry_ms
            ])?;
            return Ok(ApplyOutcome::Changed);
        }
        if m.expiry_ms <= now_ms {
            return Ok(ApplyOutcome::Expired);
        }
        if let TombCheck::Wins = check_tombstone(
            c,
            OP,
            &m.owner,
            m.namespace,
            m.hash.as_str(),
            m.timestamp_ms,
        )? {
            return Ok(ApplyOutcome::Tombstoned);
        }
        if is_public_outbox(m.namespace)
            && let OutboxCheck::Loses = check_outbox(
                c,
                d,
                &m.owner,
                m.namespace,
                m.hash.as_str(),
                m.timestamp_ms,
                now_ms,
                cx.config.tombstone_retention_ms,
            )?
        {
            return Ok(ApplyOutcome::Obsolete);
        }
        insert_message(
            c,
            d,
            &m.owner,
            m.namespace,
            m.hash.as_str(),
            &m.data,
            m.timestamp_ms,
            m.expiry_ms,
            m.expiry_version,
        )?;
        Ok(ApplyOutcome::Changed)
    })();
    lift(cx, OP, r)
}

fn op_apply_tombstone(
    c: &Connection,
    cx: &Ctx<'_>,
    d: &mut Deltas,
    t: Tombstone,
    now_ms: Millis,
) -> Result<ApplyOutcome> {
    const OP: &str = "apply_remote_tombstone";
    // The keep time is recomputed from the deletion time, whatever the peer sent.
    let keep = cx.keep_until(t.deleted_ms);
    let r = (|| -> Result<ApplyOutcome, OpError> {
        if let Some(row) = find_live(c, d, t.hash.as_str(), now_ms)? {
            if row.owner != t.owner || row.namespace != t.namespace {
                return Err(StoreError::HashConflict { op: OP }.into());
            }
            if t.deleted_ms < row.timestamp_ms {
                // The message was stored again after this deletion: it wins.
                return Ok(ApplyOutcome::Unchanged);
            }
            delete_row(c, d, &row)?;
            upsert_tombstone(
                c,
                &t.owner,
                t.namespace,
                t.hash.as_str(),
                t.deleted_ms,
                keep,
                Some(row.id),
            )?;
            return Ok(ApplyOutcome::Changed);
        }
        if let Some(existing) = find_tombstone(c, t.hash.as_str())? {
            if existing.owner != t.owner || existing.namespace != t.namespace {
                return Err(StoreError::HashConflict { op: OP }.into());
            }
        } else if keep <= now_ms {
            return Ok(ApplyOutcome::Expired);
        }
        let changed = upsert_tombstone(
            c,
            &t.owner,
            t.namespace,
            t.hash.as_str(),
            t.deleted_ms,
            keep,
            None,
        )?;
        Ok(if changed {
            ApplyOutcome::Changed
        } else {
            ApplyOutcome::Unchanged
        })
    })();
    lift(cx, OP, r)
}

fn op_apply_expiry(
    c: &Connection,
    cx: &Ctx<'_>,
    d: &mut Deltas,
    e: ExpiryUpdate,
    now_ms: Millis,
) -> Result<ApplyOutcome> {
    const OP: &str = "apply_remote_expiry";
    let r = (|| -> Result<ApplyOutcome, OpError> {
        let Some(row) = find_live(c, d, e.hash.as_str(), now_ms)? else {
            return Ok(ApplyOutcome::NotFound);
        };
        if row.owner != e.owner {
            return Err(StoreError::HashConflict { op: OP }.into());
        }
        let incoming = (e.timestamp_ms, e.expiry_version, e.expiry_ms);
        if incoming <= (row.timestamp_ms, row.expiry_version, row.expiry_ms) {
            return Ok(ApplyOutcome::Unchanged);
        }
        c.prepare_cached(
            "UPDATE messages SET timestamp_ms = ?2, expiry_version = ?3, expiry_ms = ?4
             WHERE id = ?1",
        )?
        .execute(params![
            row.id,
            e.timestamp_ms,
            e.expiry_version,
            e.expiry_ms
        ])?;
        Ok(ApplyOutcome::Changed)
    })();
    lift(cx, OP, r)
}
