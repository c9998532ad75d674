//! The expiry sweep: removes messages expired for longer than the grace time and tombstones
//! past their keep time, walking the `expiry` column family in expiry order.
//!
//! The writer runs one `sweep_expired` call (at most [`crate::StoreConfig::sweep_limit`] rows
//! of each kind) as a series of small chunks, each [`chunk`] its own transaction, and lets the
//! commands queued meanwhile through between two chunks (`writer.rs`), so a store waits for at
//! most one chunk, never for a whole call.
//!
//! Each chunk starts where the previous one stopped ([`Cursor`]) instead of at the start of the
//! column family: the entries before it were just deleted, and their deletion markers stay until
//! compaction drops them, so scanning from the start would skip every marker of every earlier
//! chunk again (quadratic in the number of chunks). A pass ends when a chunk finds fewer due
//! entries than it asked for; the next chunk starts from the beginning again. An entry that
//! appears behind the cursor during a pass (an `expire` to an earlier time, a replicated message
//! that is already expired) is removed by the next pass; it is never returned meanwhile, since
//! every read filters on the expiry.

use crate::error::Result;
use crate::keys::{self, KIND_MESSAGE, KIND_TOMBSTONE};
use crate::rows::{Row, TombRow, Tx};
use crate::types::{Millis, SweepOutcome};

/// Where the next chunk of each kind starts: just past the last `expiry` entry the previous
/// chunk removed, or the start of the kind when `None` (a new pass).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) messages: Option<Vec<u8>>,
    pub(crate) tombstones: Option<Vec<u8>>,
}

/// What one chunk did, and where the next one starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChunkOutcome {
    pub(crate) messages: u64,
    pub(crate) tombstones: u64,
    /// The chunk found as many due messages (tombstones) as it asked for: more may remain.
    pub(crate) more_messages: bool,
    pub(crate) more_tombstones: bool,
    pub(crate) next: Cursor,
}

/// Due `expiry` keys, and where the next chunk of their kind starts (`None`: a new pass).
type Due = (Vec<Vec<u8>>, Option<Vec<u8>>);

/// Up to `limit` entries of one kind in the `expiry` column family due at or before
/// `cutoff_ms`, from `from` (the kind's start when `None`), and the cursor after them.
fn due(
    w: &Tx<'_, '_>,
    kind: u8,
    from: Option<&[u8]>,
    cutoff_ms: Millis,
    limit: usize,
) -> Result<Due> {
    let start = [kind];
    let lower = from.unwrap_or(&start);
    let upper = keys::expiry_key(kind, cutoff_ms.saturating_add(1), &[]);
    if limit == 0 || lower >= upper.as_slice() {
        return Ok((Vec::new(), None));
    }
    let found: Vec<Vec<u8>> = w
        .scan(w.cf.expiry, lower, &upper, limit)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    // A full chunk may have more after it: the next chunk starts just past its last entry (the
    // smallest key greater than it). A short one ends the pass.
    let next = match found.last() {
        Some(last) if found.len() >= limit => {
            let mut k = last.clone();
            k.push(0);
            Some(k)
        }
        _ => None,
    };
    Ok((found, next))
}

/// Removes up to `message_limit` due messages and `tombstone_limit` due tombstones, each kind
/// from its place in `from` (a limit of 0 leaves that kind, and its cursor, alone).
pub(crate) fn chunk(
    w: &mut Tx<'_, '_>,
    now_ms: Millis,
    message_limit: usize,
    tombstone_limit: usize,
    from: &Cursor,
) -> Result<ChunkOutcome> {
    let cutoff = now_ms.saturating_sub(w.config.expired_grace_ms);
    let mut out = ChunkOutcome {
        next: from.clone(),
        ..ChunkOutcome::default()
    };

    if message_limit > 0 {
        let (due_messages, next) = due(
            w,
            KIND_MESSAGE,
            from.messages.as_deref(),
            cutoff,
            message_limit,
        )?;
        out.more_messages = next.is_some();
        out.next.messages = next;
        for ek in due_messages {
            let (_, key) = keys::parse_expiry_key(&ek)?;
            match w.get(w.cf.messages, key)? {
                Some(v) => {
                    let row = Row::from_kv(key, &v)?;
                    w.delete_row(&row)?;
                    out.messages += 1;
                }
                // An index entry without its message: drop it.
                None => w.del(w.cf.expiry, &ek)?,
            }
        }
    }

    if tombstone_limit > 0 {
        let (due_tombs, next) = due(
            w,
            KIND_TOMBSTONE,
            from.tombstones.as_deref(),
            now_ms,
            tombstone_limit,
        )?;
        out.more_tombstones = next.is_some();
        out.next.tombstones = next;
        for ek in due_tombs {
            let (_, key) = keys::parse_expiry_key(&ek)?;
            match w.get(w.cf.tombstones, key)? {
                Some(v) => {
                    let (owner, namespace) = keys::parse_bucket(key)?;
                    let t = TombRow {
                        owner,
                        namespace,
                        hash: keys::tomb_hash(key)?,
                        v: keys::TombValue::parse(&v)?,
                    };
                    w.delete_tombstone(&t)?;
                    out.tombstones += 1;
                }
                None => w.del(w.cf.expiry, &ek)?,
            }
        }
    }
    Ok(out)
}

/// Adds one chunk to a call's totals.
pub(crate) fn add(total: &mut SweepOutcome, c: &ChunkOutcome) {
    total.messages += c.messages;
    total.tombstones += c.tombstones;
}
