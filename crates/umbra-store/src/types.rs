//! Values passed into and returned by the store.

use std::collections::BTreeMap;

/// Milliseconds since the Unix epoch. Every time in this crate is one of these, passed in by the
/// caller (the store never reads a clock).
pub type Millis = i64;

/// A storage namespace (`storage-rpc.md` §4): −32768 … 32767.
pub type Namespace = i16;

/// Length of a storage message hash: 43 characters of unpadded base64 (BLAKE2b-256).
pub const HASH_LEN: usize = umbra_crypto::MESSAGE_HASH_LEN;

/// The account that owns messages (`05…` Session ID, `03…` group, …): one type for the whole
/// workspace, see [`umbra_crypto::AccountId`].
pub use umbra_crypto::AccountId;

/// A storage message hash, checked once where it enters (see [`umbra_crypto::MessageHash`]).
pub use umbra_crypto::MessageHash;

/// One namespace or all of them (`delete_all`, `delete_before` and `expire_all` accept `"all"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamespaceSel {
    /// Only this namespace.
    One(Namespace),
    /// Every namespace of the account.
    All,
}

/// `true` for the public outbox namespaces `−(20n + 1)` (−1, −21, −41, …): a store there keeps
/// only one message (`storage-rpc.md` §4).
pub const fn is_public_outbox(ns: Namespace) -> bool {
    let ns = ns as i32;
    ns < 0 && (-ns - 1) % 20 == 0
}

/// `true` for public-inbox namespaces (`ns % 10 == 0`), where anyone may store.
pub const fn is_public_inbox(ns: Namespace) -> bool {
    (ns as i32) % 10 == 0
}

/// A message a client asked to store. The caller has already validated the request (signature,
/// TTL range, clock window) and computed `hash` from owner, namespace and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Recipient account.
    pub owner: AccountId,
    /// Namespace.
    pub namespace: Namespace,
    /// The 43-character storage hash (`identity-and-crypto.md` §6).
    pub hash: MessageHash,
    /// The message body (decoded bytes).
    pub data: Vec<u8>,
    /// The client's message timestamp.
    pub timestamp_ms: Millis,
    /// Absolute expiry.
    pub expiry_ms: Millis,
}

/// What happened to a `store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// A new message was stored.
    Stored {
        /// Its expiry.
        expiry_ms: Millis,
    },
    /// The hash was already stored: the data and timestamp are unchanged and the expiry was raised
    /// to the requested one if that is later. Reply with `already: true`.
    Already {
        /// The stored expiry after the call.
        expiry_ms: Millis,
    },
    /// The message was deleted earlier (a tombstone with a deletion time at or after the
    /// message's timestamp exists) and stays deleted. Reply as for `Already`, with the requested
    /// expiry.
    Deleted,
    /// Public outbox only: a newer message (later timestamp) is already kept in that namespace, so
    /// this one was not kept. Reply as for `Already`, with the requested expiry.
    Obsolete,
}

impl StoreOutcome {
    /// Whether the RPC reply should carry `already: true`.
    pub fn already(&self) -> bool {
        !matches!(self, StoreOutcome::Stored { .. })
    }
}

/// A message as returned by `retrieve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Storage hash.
    pub hash: MessageHash,
    /// Namespace.
    pub namespace: Namespace,
    /// Message body.
    pub data: Vec<u8>,
    /// Client timestamp.
    pub timestamp_ms: Millis,
    /// Current expiry (the RPC field is called `expiration`).
    pub expiry_ms: Millis,
}

/// The per-message overhead in retrieve size accounting.
pub const RETRIEVE_MESSAGE_OVERHEAD: usize = 100;
/// The largest `max_size` a retrieve may ask for (7 800 000 bytes), and the size cap of every
/// retrieve that sets no `max_size` (`storage-rpc-addendum.md` A1).
pub const RETRIEVE_MAX_SIZE: usize = 7_800_000;

/// Limits of one `retrieve` page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetrieveLimits {
    /// At most this many messages (`None` = no count limit; `Some(0)` acts as 1).
    pub max_count: Option<usize>,
    /// At most this many bytes by [`RetrieveLimits::message_size`] (`None` = no size limit;
    /// [`RetrieveLimits::from_request`] always sets one). The first message is always returned,
    /// even if it alone exceeds the limit.
    pub max_size: Option<usize>,
}

impl RetrieveLimits {
    /// Builds limits from the raw request values (`storage-rpc-addendum.md` A1, which
    /// overrides `storage-rpc.md` §5.2): `0` means unset; neither set means `max_size = −5`; a
    /// negative `max_size = −k` means `7 800 000 / k` bytes; an unset (only `max_count` given)
    /// or larger `max_size` means 7 800 000, so a size cap always applies; `max_count < 1`
    /// acts as 1.
    pub fn from_request(max_count: i64, max_size: i64) -> Self {
        let max_count_opt = match max_count {
            0 => None,
            n if n < 1 => Some(1),
            n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        let raw_size = if max_count == 0 && max_size == 0 {
            -5
        } else {
            max_size
        };
        let size = match raw_size {
            // Only `max_count` was given: the cap still applies (A1 rule 4).
            0 => RETRIEVE_MAX_SIZE,
            n if n < 0 => {
                let k = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
                RETRIEVE_MAX_SIZE / k
            }
            n => usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(RETRIEVE_MAX_SIZE),
        };
        RetrieveLimits {
            max_count: max_count_opt,
            max_size: Some(size),
        }
    }

    /// The size one message counts for: `100 + len(hash) + ⌊len(data) · 4 / 3⌋`, the 4/3 taken
    /// of the raw length whatever the request's encoding (`storage-rpc-addendum.md` A1).
    pub fn message_size(hash_len: usize, data_len: usize) -> usize {
        RETRIEVE_MESSAGE_OVERHEAD
            .saturating_add(hash_len)
            .saturating_add(data_len.saturating_mul(4) / 3)
    }
}

/// Which way `retrieve` pages (`storage-rpc-addendum.md` A2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetrieveDirection {
    /// Oldest first (ascending node row id), continuing after `last_hash`.
    #[default]
    Forward,
    /// Newest first (descending node row id), continuing with messages strictly older than
    /// `last_hash` (`reverse_direction: true`).
    Reverse,
}

/// One page of `retrieve`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Retrieved {
    /// Messages in this node's insertion order (newest first for
    /// [`RetrieveDirection::Reverse`]).
    pub messages: Vec<StoredMessage>,
    /// `true` only when a further message exists beyond the page and the count or size limit
    /// left it out; `false` when the page reaches the last (or, reversed, the oldest) message.
    pub more: bool,
}

/// Hashes affected by a bulk operation, grouped by namespace; each list is sorted.
///
/// For a single-namespace request the RPC reply is the one list; for `"all"` it is the dict
/// `{"<ns>": [...]}`; node signatures use [`ByNamespace::all_sorted`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ByNamespace(pub BTreeMap<Namespace, Vec<MessageHash>>);

impl ByNamespace {
    /// Every hash across namespaces, sorted.
    pub fn all_sorted(&self) -> Vec<MessageHash> {
        let mut v: Vec<MessageHash> = self.0.values().flatten().cloned().collect();
        v.sort();
        v
    }

    /// The sorted list of one namespace (empty when none).
    pub fn namespace(&self, ns: Namespace) -> &[MessageHash] {
        self.0.get(&ns).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Total number of hashes.
    pub fn len(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }

    /// `true` when no hash was affected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How `expire` may move an expiry (`storage-rpc.md` §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpireMode {
    /// Set the expiry either way.
    #[default]
    Set,
    /// Only lower expiries (`shorten: true`).
    Shorten,
    /// Only raise expiries (the implicit extend-only of a subaccount without Delete).
    Extend,
    /// Only raise expiries, and skip trivial extensions: a message is updated only when
    /// `100 × (requested − current) ≥ (current − timestamp)`, i.e. by at least 1 % of its current
    /// lifetime (an explicit `extend: true`, `storage-rpc-addendum.md` A3).
    ExtendNonTrivial,
}

/// The requested expiry of an `expire`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiryTarget {
    /// One expiry for every hash.
    Single(Millis),
    /// `expiries[i]` for `hashes[i]` (multi-expiry mode); lengths must match.
    PerMessage(Vec<Millis>),
}

/// An `expire` request (already authenticated and time-checked by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireRequest {
    /// Account.
    pub owner: AccountId,
    /// Hashes, in request order (any namespace).
    pub hashes: Vec<MessageHash>,
    /// New expiry or expiries; each is capped at `now + max_expire_ahead_ms`.
    pub expiry: ExpiryTarget,
    /// Set, shorten-only or extend-only.
    pub mode: ExpireMode,
}

/// One updated message of an `expire`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedExpiry {
    /// Hash.
    pub hash: MessageHash,
    /// The expiry now applied.
    pub expiry_ms: Millis,
}

/// Result of `expire`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExpireOutcome {
    /// Updated messages sorted by hash, each with its applied expiry (in multi-expiry mode this is
    /// the reply's `expiry` array aligned with `updated`). In `Set` mode every found message counts
    /// as updated, as in the reference server.
    pub updated: Vec<UpdatedExpiry>,
    /// Found but unchanged messages (only possible with `Shorten`/`Extend`): hash → current expiry.
    /// Emit it in the reply only when `shorten` or `extend` was given explicitly.
    pub unchanged: BTreeMap<MessageHash, Millis>,
    /// In single-expiry mode, the applied expiry after capping (present even if nothing changed).
    pub applied_expiry_ms: Option<Millis>,
}

/// A 36-byte subaccount token (`storage-rpc.md` §9).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubaccountToken(pub [u8; 36]);

impl std::fmt::Debug for SubaccountToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SubaccountToken(flags {:02x}, …)", self.0[1])
    }
}

/// The most recent revocations kept per account (older ones are dropped automatically).
pub const MAX_REVOCATIONS_PER_ACCOUNT: usize = 50;
/// The most tokens one `revoke_subaccount` request may carry; `unrevoke_subaccount` has no
/// count limit (`storage-rpc-addendum.md` A5).
pub const MAX_TOKENS_PER_REQUEST: usize = 50;

/// Result of `sweep_expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepOutcome {
    /// Expired messages removed.
    pub messages: u64,
    /// Tombstones past their keep-until time removed.
    pub tombstones: u64,
    /// `true` when the per-call limit was reached and more expired rows remain (call again).
    pub more: bool,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Messages held (including expired ones not yet swept).
    pub messages: u64,
    /// Data bytes held (message bodies only).
    pub bytes: u64,
    /// Tombstones held.
    pub tombstones: u64,
    /// Size of the store's files in bytes (SST files and memtables of every column family).
    pub db_bytes: u64,
}

// ---------------------------------------------------------------------------------------------
// Replication / anti-entropy
// ---------------------------------------------------------------------------------------------

/// A message with the full replicated state that peers exchange (handover, reconciliation pulls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaMessage {
    /// Account.
    pub owner: AccountId,
    /// Namespace.
    pub namespace: Namespace,
    /// Storage hash. The **receiving node must verify** it equals the hash of owner, namespace and
    /// data before applying: the store trusts it.
    pub hash: MessageHash,
    /// Body.
    pub data: Vec<u8>,
    /// Client timestamp.
    pub timestamp_ms: Millis,
    /// Expiry.
    pub expiry_ms: Millis,
    /// Version of the expiry (last-writer-wins clock, see the crate docs).
    pub expiry_version: Millis,
}

/// A deletion record, kept until `keep_until_ms` so that reconciliation never resurrects a
/// deleted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// Account.
    pub owner: AccountId,
    /// Namespace of the deleted message.
    pub namespace: Namespace,
    /// Hash of the deleted message.
    pub hash: MessageHash,
    /// When it was deleted. It beats any copy of the message whose `timestamp_ms` is ≤ this.
    pub deleted_ms: Millis,
    /// Kept until then: `deleted_ms + tombstone_retention_ms` (recomputed by the receiver).
    pub keep_until_ms: Millis,
}

/// A replicated change of a message's state (its timestamp/expiry register) without the data:
/// what a peer sends when both hold the message but [`MessageVersion`]s differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryUpdate {
    /// Account.
    pub owner: AccountId,
    /// Hash.
    pub hash: MessageHash,
    /// The message timestamp of that state.
    pub timestamp_ms: Millis,
    /// New expiry.
    pub expiry_ms: Millis,
    /// Its version: the triple `(timestamp_ms, expiry_version, expiry_ms)` that is larger wins.
    pub expiry_version: Millis,
}

/// What applying a replicated item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Local state changed (inserted, merged or deleted).
    Changed,
    /// Local state already included it; nothing changed.
    Unchanged,
    /// A tombstone here beats the incoming message; it was not stored.
    Tombstoned,
    /// Public outbox: a newer message is kept; the incoming one was recorded as deleted.
    Obsolete,
    /// The item had already expired (or, for a tombstone, was past its keep time with nothing to
    /// delete); ignored.
    Expired,
    /// Expiry update for a message not held here; pull the message instead.
    NotFound,
}

/// The digest of one bucket (one account's namespace) at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketDigest {
    /// Account.
    pub owner: AccountId,
    /// Namespace.
    pub namespace: Namespace,
    /// XOR of `BLAKE2b-256("umbra-store digest v1" ‖ kind ‖ hash ‖ expiry)` over live items (see
    /// crate docs).
    pub digest: [u8; 32],
    /// Live messages counted.
    pub messages: u64,
    /// Live tombstones counted.
    pub tombstones: u64,
}

/// Version metadata of one message in a bucket listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageVersion {
    /// Hash.
    pub hash: MessageHash,
    /// Client timestamp.
    pub timestamp_ms: Millis,
    /// Expiry.
    pub expiry_ms: Millis,
    /// Expiry version.
    pub expiry_version: Millis,
}

/// Everything a peer needs to reconcile one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BucketEntries {
    /// Live messages, sorted by hash.
    pub messages: Vec<MessageVersion>,
    /// Live tombstones, sorted by hash.
    pub tombstones: Vec<Tombstone>,
}

/// Cursor of [`crate::Store::export_messages`]: where to continue (opaque; the default starts
/// at the beginning).
#[derive(Debug, Clone, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct ExportCursor(pub(crate) Option<Vec<u8>>);

/// One page of [`crate::Store::export_messages`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportPage {
    /// Matching messages.
    pub messages: Vec<ReplicaMessage>,
    /// Where to continue; `None` when the whole table has been scanned.
    pub next: Option<ExportCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_and_inbox_rules() {
        for ns in [-1, -21, -41, -32761] {
            assert!(is_public_outbox(ns), "{ns}");
        }
        for ns in [0, 1, -2, -11, -20, -22, 19, 21, -10] {
            assert!(!is_public_outbox(ns), "{ns}");
        }
        for ns in [0, 10, -30, -10, 32760] {
            assert!(is_public_inbox(ns), "{ns}");
        }
        for ns in [1, -1, 11, 5] {
            assert!(!is_public_inbox(ns), "{ns}");
        }
    }

    #[test]
    fn hashes_are_checked_where_they_are_parsed() {
        // The store takes `MessageHash`, so a hash of the wrong shape cannot reach it.
        let ok = |s: &str| s.parse::<MessageHash>().is_ok();
        assert!(ok(&"A".repeat(43)));
        assert!(ok(&"a+/9"
            .repeat(10)
            .chars()
            .chain("abc".chars())
            .collect::<String>()));
        assert!(!ok(&"A".repeat(42)));
        assert!(!ok(&"A".repeat(44)));
        assert!(!ok(&format!("{}=", "A".repeat(42))));
    }

    #[test]
    fn retrieve_limits_from_request() {
        // storage-rpc-addendum.md A1.
        let l = RetrieveLimits::from_request(0, 0);
        assert_eq!((l.max_count, l.max_size), (None, Some(1_560_000)));
        // Only max_count: the 7 800 000-byte cap still applies.
        let l = RetrieveLimits::from_request(10, 0);
        assert_eq!((l.max_count, l.max_size), (Some(10), Some(7_800_000)));
        let l = RetrieveLimits::from_request(-3, 0);
        assert_eq!((l.max_count, l.max_size), (Some(1), Some(7_800_000)));
        let l = RetrieveLimits::from_request(0, -1);
        assert_eq!((l.max_count, l.max_size), (None, Some(7_800_000)));
        let l = RetrieveLimits::from_request(0, -3);
        assert_eq!(l.max_size, Some(2_600_000));
        let l = RetrieveLimits::from_request(0, -5);
        assert_eq!(l.max_size, Some(1_560_000));
        let l = RetrieveLimits::from_request(0, 99_000_000);
        assert_eq!(l.max_size, Some(7_800_000));
        let l = RetrieveLimits::from_request(500, 1000);
        assert_eq!((l.max_count, l.max_size), (Some(500), Some(1000)));
        // The 4/3 of the raw length, integer division, for every encoding.
        assert_eq!(RetrieveLimits::message_size(43, 300), 100 + 43 + 400);
        assert_eq!(RetrieveLimits::message_size(43, 50_000), 66_809);
        assert_eq!(RetrieveLimits::message_size(43, 2), 100 + 43 + 2);
    }

    #[test]
    fn owner_debug_is_redacted() {
        let o = AccountId::new([0x05; 33]);
        assert_eq!(format!("{o:?}"), "AccountId(050505…)");
        assert!(AccountId::try_from(&[1u8; 32][..]).is_err());
        assert_eq!(AccountId::try_from(&[5u8; 33][..]).unwrap(), o);
    }

    #[test]
    fn by_namespace_helpers() {
        let mut m = BTreeMap::new();
        let h = |c: char| c.to_string().repeat(43).parse::<MessageHash>().unwrap();
        m.insert(1, vec![h('b'), h('d')]);
        m.insert(-3, vec![h('a'), h('c')]);
        let b = ByNamespace(m);
        assert_eq!(b.all_sorted(), [h('a'), h('b'), h('c'), h('d')]);
        assert_eq!(b.len(), 4);
        assert!(b.namespace(7).is_empty());
    }
}
