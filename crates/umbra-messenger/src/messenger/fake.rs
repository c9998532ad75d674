//! In-memory swarms for tests (feature `test-support`): one mailbox per account, with the
//! storage semantics the messenger relies on (hash = `message_hash`, a store of identical
//! bytes is `already`, expiry against the shared [`Clock`], retrieve after `last_hash`), plus
//! fault injection: a swarm that is down, a store whose acknowledgement is lost, and a store
//! that never returns (before or after it wrote), to test interrupted sends.
//!
//! Test-only code: it may panic on a poisoned lock, nothing else.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use umbra_crypto::hash::message_hash;
use umbra_crypto::{AccountId, Identity, MessageHash, SessionId};

use umbra_groups::{Flags, GroupAdmin, GroupPublic, RevocationList, Token};

use super::swarm::{
    GroupAuth, NodeId, RetrievedPage, StoreAck, StoredMessage, SwarmApi, SwarmError,
    retrieve_signed_bytes, store_signed_bytes,
};
use umbra_net::{BoxFuture, Clock};

/// The one node of every fake swarm.
pub const FAKE_NODE: &str = "fake-node";

/// How the next store behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreFault {
    /// Normal.
    #[default]
    None,
    /// Fails as unreachable without writing.
    FailBeforeWrite,
    /// Writes, then fails as unreachable (the acknowledgement is lost).
    FailAfterWrite,
    /// Never returns, without writing (the client is killed while waiting).
    HangBeforeWrite,
    /// Writes, then never returns.
    HangAfterWrite,
}

#[derive(Debug, Clone)]
struct Entry {
    hash: MessageHash,
    data: Vec<u8>,
    timestamp_ms: u64,
    expiry_ms: u64,
}

#[derive(Default)]
struct State {
    // owner (hex) -> namespace -> entries in insertion order
    boxes: BTreeMap<String, BTreeMap<i32, Vec<Entry>>>,
    down: bool,
    faults: Vec<StoreFault>,
    stores: u64,
    retrieves: u64,
    own_faults: Vec<StoreFault>,
    own_stores: u64,
    // group (hex) -> revoked subaccount tokens
    revoked: BTreeMap<String, RevocationList>,
}

/// In-memory swarms keyed by owner. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FakeSwarms {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
    entered: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for FakeSwarms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSwarms").finish_non_exhaustive()
    }
}

impl FakeSwarms {
    /// Empty swarms whose expiries follow `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            clock,
            entered: Arc::new(tokio::sync::Notify::new()),
        }
    }

    #[allow(clippy::expect_used)]
    fn st(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake swarm lock poisoned")
    }

    /// Makes every request fail as unreachable (`true`) or work again.
    pub fn set_down(&self, down: bool) {
        self.st().down = down;
    }

    /// Queues a fault for the next store (faults are used in order, one per store).
    pub fn push_store_fault(&self, fault: StoreFault) {
        self.st().faults.push(fault);
    }

    /// Waits until a store with a `Hang*` fault has been entered (and written, for
    /// [`StoreFault::HangAfterWrite`]).
    pub async fn hung(&self) {
        self.entered.notified().await;
    }

    /// Store requests received so far (including failed and repeated ones).
    pub fn store_count(&self) -> u64 {
        self.st().stores
    }

    /// Retrieve requests of the messages namespace (0) received so far: one per poll.
    pub fn retrieve_count(&self) -> u64 {
        self.st().retrieves
    }

    /// Queues a fault for the next owner-signed store (`store_own`, the config pushes),
    /// apart from the faults of [`push_store_fault`](Self::push_store_fault).
    pub fn push_own_store_fault(&self, fault: StoreFault) {
        self.st().own_faults.push(fault);
    }

    /// Owner-signed stores (config pushes) received so far, failed ones included.
    pub fn own_store_count(&self) -> u64 {
        self.st().own_stores
    }

    /// The stored bytes of `owner`'s messages in `namespace`, in order, with their hashes.
    pub fn messages(&self, owner: &SessionId, namespace: i32) -> Vec<(MessageHash, Vec<u8>)> {
        let now = self.clock.now_ms();
        self.st()
            .boxes
            .get(&owner.to_hex())
            .and_then(|b| b.get(&namespace))
            .map(|v| {
                v.iter()
                    .filter(|e| e.expiry_ms > now)
                    .map(|e| (e.hash, e.data.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Hashes currently stored (not expired) for `owner` in `namespace`, in order.
    pub fn hashes(&self, owner: &SessionId, namespace: i32) -> Vec<MessageHash> {
        let now = self.clock.now_ms();
        self.st()
            .boxes
            .get(&owner.to_hex())
            .and_then(|b| b.get(&namespace))
            .map(|v| {
                v.iter()
                    .filter(|e| e.expiry_ms > now)
                    .map(|e| e.hash)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn write(&self, owner: &SessionId, namespace: i32, data: &[u8], ts: u64, ttl: u64) -> StoreAck {
        self.write_hex(&AccountId::from(*owner), namespace, data, ts, ttl)
    }

    /// Entries of `owner_hex`'s `namespace` after `last_hash` (from the start if unknown).
    fn page(
        &self,
        owner_hex: &str,
        namespace: i32,
        last_hash: Option<&MessageHash>,
    ) -> RetrievedPage {
        let now = self.clock.now_ms();
        let st = self.st();
        let Some(entries) = st.boxes.get(owner_hex).and_then(|b| b.get(&namespace)) else {
            return RetrievedPage::default();
        };
        // An unknown last_hash returns from the beginning, as real nodes do.
        let start = last_hash
            .and_then(|h| entries.iter().position(|e| e.hash == *h))
            .map_or(0, |i| i + 1);
        RetrievedPage {
            messages: entries[start..]
                .iter()
                .filter(|e| e.expiry_ms > now)
                .map(|e| StoredMessage {
                    hash: e.hash,
                    data: e.data.clone(),
                    timestamp_ms: e.timestamp_ms,
                    expiry_ms: e.expiry_ms,
                })
                .collect(),
            more: false,
        }
    }

    /// Checks a group request as a node does (`storage-rpc.md` §3.1, §9): an admin's key must
    /// be the group's; a member's subaccount must carry `required`, be signed by the group,
    /// not be revoked (unless the namespace is unrevocable, −11) and sign `msg`.
    fn check_group(
        &self,
        group: &GroupPublic,
        auth: GroupAuth<'_>,
        msg: &[u8],
        required: u8,
        namespace: i32,
    ) -> Result<(), SwarmError> {
        let refused = |why: String| SwarmError::Status {
            status: 401,
            body: format!("subaccount refused: {why}"),
        };
        match auth {
            GroupAuth::Admin(admin) if admin.public() == group => Ok(()),
            GroupAuth::Admin(_) => Err(refused("not the group's key".into())),
            GroupAuth::Member(sub) => {
                let st = self.st();
                let empty = RevocationList::new();
                let list = st.revoked.get(&group.id().to_hex()).unwrap_or(&empty);
                list.check_request(group, &sub.request(msg), required, namespace == -11)
                    .map_err(|e| refused(e.to_string()))
            }
        }
    }

    /// Whether `token` is revoked in `group`'s swarm.
    pub fn is_revoked(&self, group: &GroupPublic, token: &Token) -> bool {
        self.st()
            .revoked
            .get(&group.id().to_hex())
            .is_some_and(|l| l.contains(token))
    }

    /// The stored bytes of `group`'s swarm in `namespace`, in order, with their hashes.
    pub fn group_messages(
        &self,
        group: &GroupPublic,
        namespace: i32,
    ) -> Vec<(MessageHash, Vec<u8>)> {
        self.page(&group.id().to_hex(), namespace, None)
            .messages
            .into_iter()
            .map(|m| (m.hash, m.data))
            .collect()
    }

    /// Removes `hashes` from the swarm of account `owner` (hex); the hashes removed, sorted.
    fn remove(&self, owner: &str, hashes: &[MessageHash]) -> Vec<MessageHash> {
        let mut st = self.st();
        let mut deleted = Vec::new();
        if let Some(b) = st.boxes.get_mut(owner) {
            for entries in b.values_mut() {
                entries.retain(|e| {
                    let hit = hashes.contains(&e.hash);
                    if hit {
                        deleted.push(e.hash);
                    }
                    !hit
                });
            }
        }
        deleted.sort();
        deleted
    }

    /// Stores `data` in `group`'s swarm without any check (a forger that reached a node).
    pub fn inject_group_message(&self, group: &GroupPublic, namespace: i32, data: &[u8]) {
        let now = self.clock.now_ms();
        self.write_hex(&group.id(), namespace, data, now, 86_400_000);
    }

    fn write_hex(
        &self,
        owner: &AccountId,
        namespace: i32,
        data: &[u8],
        ts: u64,
        ttl: u64,
    ) -> StoreAck {
        let hash = message_hash(owner, namespace, data);
        let expiry = ts.saturating_add(ttl);
        let mut st = self.st();
        let mailbox = st
            .boxes
            .entry(owner.to_hex())
            .or_default()
            .entry(namespace)
            .or_default();
        if let Some(e) = mailbox.iter_mut().find(|e| e.hash == hash) {
            e.expiry_ms = e.expiry_ms.max(expiry);
            return StoreAck {
                hash,
                already: true,
            };
        }
        mailbox.push(Entry {
            hash,
            data: data.to_vec(),
            timestamp_ms: ts,
            expiry_ms: expiry,
        });
        StoreAck {
            hash,
            already: false,
        }
    }

    fn check_up(&self) -> Result<(), SwarmError> {
        if self.st().down {
            return Err(SwarmError::Unreachable("fake swarm is down".into()));
        }
        Ok(())
    }
}

impl SwarmApi for FakeSwarms {
    fn nodes<'a>(
        &'a self,
        _owner: &'a SessionId,
    ) -> BoxFuture<'a, Result<Vec<NodeId>, SwarmError>> {
        Box::pin(async move {
            self.check_up()?;
            Ok(vec![FAKE_NODE.to_string()])
        })
    }

    fn store<'a>(
        &'a self,
        owner: &'a SessionId,
        namespace: i32,
        data: &'a [u8],
        timestamp_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<'a, Result<StoreAck, SwarmError>> {
        Box::pin(async move {
            let fault = {
                let mut st = self.st();
                st.stores += 1;
                if st.faults.is_empty() {
                    StoreFault::None
                } else {
                    st.faults.remove(0)
                }
            };
            self.check_up()?;
            let now = self.clock.now_ms();
            if !(10_000..=14 * 86_400_000).contains(&ttl_ms) {
                return Err(SwarmError::Status {
                    status: 403,
                    body: "Provided expiry/TTL is not valid.".into(),
                });
            }
            if timestamp_ms > now + 10_000 || timestamp_ms.saturating_add(ttl_ms) + 10_000 < now {
                return Err(SwarmError::Status {
                    status: 406,
                    body: "Timestamp error: check your clock".into(),
                });
            }
            match fault {
                StoreFault::None => Ok(self.write(owner, namespace, data, timestamp_ms, ttl_ms)),
                StoreFault::FailBeforeWrite => {
                    Err(SwarmError::Unreachable("injected failure".into()))
                }
                StoreFault::FailAfterWrite => {
                    self.write(owner, namespace, data, timestamp_ms, ttl_ms);
                    Err(SwarmError::Unreachable(
                        "injected lost acknowledgement".into(),
                    ))
                }
                StoreFault::HangBeforeWrite => {
                    self.entered.notify_one();
                    std::future::pending().await
                }
                StoreFault::HangAfterWrite => {
                    self.write(owner, namespace, data, timestamp_ms, ttl_ms);
                    self.entered.notify_one();
                    std::future::pending().await
                }
            }
        })
    }

    fn store_own<'a>(
        &'a self,
        identity: &'a Identity,
        namespace: i32,
        data: &'a [u8],
        timestamp_ms: u64,
        ttl_ms: u64,
        obsolete: &'a [MessageHash],
    ) -> BoxFuture<'a, Result<StoreAck, SwarmError>> {
        Box::pin(async move {
            let fault = {
                let mut st = self.st();
                st.own_stores += 1;
                if st.own_faults.is_empty() {
                    StoreFault::None
                } else {
                    st.own_faults.remove(0)
                }
            };
            self.check_up()?;
            let now = self.clock.now_ms();
            // Owner-signed namespaces keep messages up to 30 days (§5.1).
            if !(10_000..=30 * 86_400_000).contains(&ttl_ms) {
                return Err(SwarmError::Status {
                    status: 403,
                    body: "Provided expiry/TTL is not valid.".into(),
                });
            }
            if timestamp_ms > now + 10_000 || timestamp_ms.saturating_add(ttl_ms) + 10_000 < now {
                return Err(SwarmError::Status {
                    status: 406,
                    body: "Timestamp error: check your clock".into(),
                });
            }
            let owner = identity.session_id();
            let stored = |this: &Self| {
                let ack = this.write(&owner, namespace, data, timestamp_ms, ttl_ms);
                // The `delete` of the same `sequence`, after the store succeeded.
                if let Some(b) = this.st().boxes.get_mut(&owner.to_hex()) {
                    for entries in b.values_mut() {
                        entries.retain(|e| !obsolete.contains(&e.hash));
                    }
                }
                ack
            };
            match fault {
                StoreFault::None => Ok(stored(self)),
                StoreFault::FailBeforeWrite => {
                    Err(SwarmError::Unreachable("injected failure".into()))
                }
                StoreFault::FailAfterWrite => {
                    stored(self);
                    Err(SwarmError::Unreachable(
                        "injected lost acknowledgement".into(),
                    ))
                }
                StoreFault::HangBeforeWrite => {
                    self.entered.notify_one();
                    std::future::pending().await
                }
                StoreFault::HangAfterWrite => {
                    stored(self);
                    self.entered.notify_one();
                    std::future::pending().await
                }
            }
        })
    }

    fn retrieve<'a>(
        &'a self,
        identity: &'a Identity,
        namespace: i32,
        _node: &'a str,
        last_hash: Option<&'a MessageHash>,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        Box::pin(async move {
            self.check_up()?;
            if namespace == 0 {
                self.st().retrieves += 1;
            }
            Ok(self.page(&identity.session_id().to_hex(), namespace, last_hash))
        })
    }

    fn group_store<'a>(
        &'a self,
        group: &'a GroupPublic,
        auth: GroupAuth<'a>,
        namespace: i32,
        data: &'a [u8],
        timestamp_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<'a, Result<StoreAck, SwarmError>> {
        Box::pin(async move {
            self.check_up()?;
            let msg = store_signed_bytes(namespace, timestamp_ms);
            self.check_group(group, auth, &msg, Flags::WRITE, namespace)?;
            if !(10_000..=30 * 86_400_000).contains(&ttl_ms) {
                return Err(SwarmError::Status {
                    status: 403,
                    body: "Provided expiry/TTL is not valid.".into(),
                });
            }
            Ok(self.write_hex(&group.id(), namespace, data, timestamp_ms, ttl_ms))
        })
    }

    fn group_retrieve<'a>(
        &'a self,
        group: &'a GroupPublic,
        auth: GroupAuth<'a>,
        namespace: i32,
        last_hash: Option<&'a MessageHash>,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        Box::pin(async move {
            self.check_up()?;
            let msg = retrieve_signed_bytes(namespace, self.clock.now_ms());
            self.check_group(group, auth, &msg, Flags::READ, namespace)?;
            Ok(self.page(&group.id().to_hex(), namespace, last_hash))
        })
    }

    fn group_delete<'a>(
        &'a self,
        admin: &'a GroupAdmin,
        hashes: &'a [MessageHash],
    ) -> BoxFuture<'a, Result<Vec<MessageHash>, SwarmError>> {
        Box::pin(async move {
            self.check_up()?;
            Ok(self.remove(&admin.id().to_hex(), hashes))
        })
    }

    fn group_expire<'a>(
        &'a self,
        admin: &'a GroupAdmin,
        hashes: &'a [MessageHash],
        expiry_ms: u64,
    ) -> BoxFuture<'a, Result<(), SwarmError>> {
        Box::pin(async move {
            self.check_up()?;
            let mut st = self.st();
            if let Some(b) = st.boxes.get_mut(&admin.id().to_hex()) {
                for e in b.values_mut().flatten() {
                    if hashes.contains(&e.hash) {
                        e.expiry_ms = expiry_ms;
                    }
                }
            }
            Ok(())
        })
    }

    fn group_revoke<'a>(
        &'a self,
        admin: &'a GroupAdmin,
        tokens: &'a [Token],
        revoke: bool,
    ) -> BoxFuture<'a, Result<(), SwarmError>> {
        Box::pin(async move {
            self.check_up()?;
            let mut st = self.st();
            let list = st.revoked.entry(admin.id().to_hex()).or_default();
            if revoke {
                list.revoke(tokens);
            } else {
                list.unrevoke(tokens);
            }
            Ok(())
        })
    }

    fn delete<'a>(
        &'a self,
        identity: &'a Identity,
        hashes: &'a [MessageHash],
    ) -> BoxFuture<'a, Result<Vec<MessageHash>, SwarmError>> {
        Box::pin(async move {
            self.check_up()?;
            Ok(self.remove(&identity.session_id().to_hex(), hashes))
        })
    }

    fn expire<'a>(
        &'a self,
        identity: &'a Identity,
        hashes: &'a [MessageHash],
        expiry_ms: u64,
        shorten: bool,
    ) -> BoxFuture<'a, Result<(), SwarmError>> {
        Box::pin(async move {
            self.check_up()?;
            let mut st = self.st();
            if let Some(b) = st.boxes.get_mut(&identity.session_id().to_hex()) {
                for e in b.values_mut().flatten() {
                    if hashes.contains(&e.hash) && (!shorten || expiry_ms < e.expiry_ms) {
                        e.expiry_ms = expiry_ms;
                    }
                }
            }
            Ok(())
        })
    }
}
