//! The read pool and the read-only queries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::columns::{hash_from, owner_bytes, owner_from};
use crate::config::StoreConfig;
use crate::error::{Result, StoreError};
use crate::schema;
use crate::types::{
    AccountId, ExportCursor, ExportPage, MessageHash, Millis, Namespace, ReplicaMessage,
    RetrieveDirection, RetrieveLimits, Retrieved, StoredMessage, SubaccountToken,
};

struct PoolState {
    idle: Vec<Connection>,
    opened: usize,
}

/// A small pool of read connections, opened lazily up to `max`.
pub(crate) struct ReadPool {
    path: PathBuf,
    max: usize,
    max_db_bytes: Option<u64>,
    state: Mutex<PoolState>,
    returned: Condvar,
}

impl ReadPool {
    pub(crate) fn new(path: &Path, config: &StoreConfig) -> Self {
        ReadPool {
            path: path.to_path_buf(),
            max: config.readers.max(1),
            max_db_bytes: config.max_db_bytes,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                opened: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a pooled connection (blocking while all are busy).
    pub(crate) fn with<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let conn = {
            let mut st = self.lock();
            loop {
                if let Some(c) = st.idle.pop() {
                    break Some(c);
                }
                if st.opened < self.max {
                    st.opened += 1;
                    break None;
                }
                st = self.returned.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        let conn = match conn {
            Some(c) => c,
            None => match schema::open_reader(&self.path) {
                Ok(c) => c,
                Err(e) => {
                    self.lock().opened -= 1;
                    self.returned.notify_one();
                    return Err(e);
                }
            },
        };
        let r = f(&conn).map_err(|e| StoreError::db(op, self.max_db_bytes, e));
        self.lock().idle.push(conn);
        self.returned.notify_one();
        r
    }
}

/// The local row id `last_hash` stands for: a live (or not yet swept) message, or a deleted one
/// whose tombstone remembers its position. `None` when this node knows no such message of the
/// account in the namespace.
fn anchor(
    c: &Connection,
    owner: &AccountId,
    ns: Namespace,
    hash: &str,
) -> rusqlite::Result<Option<i64>> {
    let id: Option<i64> = c
        .prepare_cached(
            "SELECT id FROM messages WHERE hash = ?1 AND owner = ?2 AND namespace = ?3",
        )?
        .query_row(params![hash, owner_bytes(owner), ns], |r| r.get(0))
        .optional()?;
    if id.is_some() {
        return Ok(id);
    }
    let id: Option<Option<i64>> = c
        .prepare_cached(
            "SELECT local_id FROM tombstones WHERE hash = ?1 AND owner = ?2 AND namespace = ?3",
        )?
        .query_row(params![hash, owner_bytes(owner), ns], |r| r.get(0))
        .optional()?;
    Ok(id.flatten())
}

pub(crate) fn retrieve(
    c: &Connection,
    owner: &AccountId,
    ns: Namespace,
    last_hash: Option<&MessageHash>,
    limits: RetrieveLimits,
    direction: RetrieveDirection,
    now_ms: Millis,
) -> rusqlite::Result<Retrieved> {
    let known = match last_hash {
        Some(h) => anchor(c, owner, ns, h.as_str())?,
        None => None,
    };
    let max_count = limits.max_count.map(|n| n.max(1));
    let sql_limit: i64 = max_count
        .map(|n| i64::try_from(n).unwrap_or(i64::MAX - 1).saturating_add(1))
        .unwrap_or(-1);
    // storage-rpc-addendum.md A2: reversed, strictly older than `last_hash`, newest first; an
    // absent or unknown `last_hash` starts at the newest (forward: at the oldest).
    let (sql, bound) = match direction {
        RetrieveDirection::Forward => (
            "SELECT hash, data, timestamp_ms, expiry_ms FROM messages
             WHERE owner = ?1 AND namespace = ?2 AND id > ?3 AND expiry_ms > ?4
             ORDER BY id LIMIT ?5",
            known.unwrap_or(0),
        ),
        RetrieveDirection::Reverse => (
            "SELECT hash, data, timestamp_ms, expiry_ms FROM messages
             WHERE owner = ?1 AND namespace = ?2 AND id < ?3 AND expiry_ms > ?4
             ORDER BY id DESC LIMIT ?5",
            known.unwrap_or(i64::MAX),
        ),
    };
    let mut st = c.prepare_cached(sql)?;
    let mut rows = st.query(params![owner_bytes(owner), ns, bound, now_ms, sql_limit])?;
    let mut out = Retrieved::default();
    let mut total = 0usize;
    while let Some(r) = rows.next()? {
        // storage-rpc-addendum.md A1: `more` only when a further message exists and a limit
        // left it out (this row is that message).
        if max_count.is_some_and(|m| out.messages.len() >= m) {
            out.more = true;
            break;
        }
        let hash: String = r.get(0)?;
        let data: Vec<u8> = r.get(1)?;
        if let Some(max) = limits.max_size {
            total = total.saturating_add(RetrieveLimits::message_size(hash.len(), data.len()));
            // The first message is always returned, even when alone it is over the cap.
            if !out.messages.is_empty() && total > max {
                out.more = true;
                break;
            }
        }
        out.messages.push(StoredMessage {
            hash: hash_from(hash)?,
            namespace: ns,
            data,
            timestamp_ms: r.get(2)?,
            expiry_ms: r.get(3)?,
        });
    }
    Ok(out)
}

pub(crate) fn get_expiries(
    c: &Connection,
    owner: &AccountId,
    hashes: &[MessageHash],
    now_ms: Millis,
) -> rusqlite::Result<BTreeMap<MessageHash, Millis>> {
    let mut out = BTreeMap::new();
    let mut st = c.prepare_cached(
        "SELECT expiry_ms FROM messages WHERE hash = ?1 AND owner = ?2 AND expiry_ms > ?3",
    )?;
    for h in hashes {
        if let Some(e) = st
            .query_row(params![h.as_str(), owner_bytes(owner), now_ms], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
        {
            out.insert(*h, e);
        }
    }
    Ok(out)
}

pub(crate) fn revoked(c: &Connection, owner: &AccountId) -> rusqlite::Result<Vec<SubaccountToken>> {
    let mut st = c.prepare_cached(
        "SELECT token FROM revoked_subaccounts WHERE owner = ?1 ORDER BY id DESC",
    )?;
    let rows = st.query_map([owner_bytes(owner)], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for t in rows {
        let t = t?;
        if let Ok(arr) = <[u8; 36]>::try_from(t.as_slice()) {
            out.push(SubaccountToken(arr));
        }
    }
    Ok(out)
}

pub(crate) fn is_revoked(
    c: &Connection,
    owner: &AccountId,
    token: &SubaccountToken,
) -> rusqlite::Result<bool> {
    let n: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM revoked_subaccounts WHERE owner = ?1 AND token = ?2")?
        .query_row(params![owner_bytes(owner), &token.0[..]], |r| r.get(0))?;
    Ok(n > 0)
}

fn replica_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReplicaMessage> {
    Ok(ReplicaMessage {
        owner: owner_from(r.get(0)?)?,
        namespace: r.get(1)?,
        hash: hash_from(r.get(2)?)?,
        data: r.get(3)?,
        timestamp_ms: r.get(4)?,
        expiry_ms: r.get(5)?,
        expiry_version: r.get(6)?,
    })
}

const REPLICA_COLUMNS: &str =
    "owner, namespace, hash, data, timestamp_ms, expiry_ms, expiry_version";

pub(crate) fn get_replicas(
    c: &Connection,
    hashes: &[MessageHash],
    now_ms: Millis,
) -> rusqlite::Result<Vec<ReplicaMessage>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {REPLICA_COLUMNS} FROM messages WHERE hash = ?1 AND expiry_ms > ?2"
    ))?;
    let mut out = Vec::new();
    for h in hashes {
        if let Some(m) = st
            .query_row(params![h.as_str(), now_ms], replica_from_row)
            .optional()?
        {
            out.push(m);
        }
    }
    Ok(out)
}

pub(crate) fn owners(c: &Connection, now_ms: Millis) -> rusqlite::Result<Vec<AccountId>> {
    let mut st = c.prepare_cached(
        "SELECT DISTINCT owner FROM messages WHERE expiry_ms > ?1 ORDER BY owner",
    )?;
    let rows = st.query_map([now_ms], |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|r| owner_from(r?)).collect()
}

pub(crate) fn export_messages(
    c: &Connection,
    filter: &dyn Fn(&AccountId) -> bool,
    after: ExportCursor,
    scan_limit: usize,
    now_ms: Millis,
) -> rusqlite::Result<ExportPage> {
    let scan_limit = scan_limit.max(1);
    let scanned: Vec<(i64, Vec<u8>, i64)> = {
        let mut st = c.prepare_cached(
            "SELECT id, owner, expiry_ms FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        st.query_map(
            params![after.0, i64::try_from(scan_limit).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?
        .collect::<rusqlite::Result<_>>()?
    };
    let mut page = ExportPage::default();
    let mut full = c.prepare_cached(&format!(
        "SELECT {REPLICA_COLUMNS} FROM messages WHERE id = ?1"
    ))?;
    for (id, owner, expiry) in &scanned {
        if *expiry <= now_ms {
            continue;
        }
        let o = owner_from(owner.clone())?;
        if !filter(&o) {
            continue;
        }
        if let Some(m) = full.query_row([id], replica_from_row).optional()? {
            page.messages.push(m);
        }
    }
    if scanned.len() >= scan_limit {
        page.next = scanned.last().map(|(id, _, _)| ExportCursor(*id));
    }
    Ok(page)
}

pub(crate) fn db_stats(c: &Connection) -> rusqlite::Result<(u64, u64)> {
    let tombstones: i64 = c.query_row("SELECT COUNT(*) FROM tombstones", [], |r| r.get(0))?;
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok((
        u64::try_from(tombstones).unwrap_or(0),
        u64::try_from(pages.saturating_mul(size)).unwrap_or(0),
    ))
}
