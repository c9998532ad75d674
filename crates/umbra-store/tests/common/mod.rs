//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use umbra_store::{AccountId, MessageHash, NewMessage, Store, StoreConfig};

pub const NOW: i64 = 1_700_000_000_000;
pub const DAY: i64 = 24 * 3600 * 1000;

pub fn owner(n: u8) -> AccountId {
    let mut b = [n; 33];
    b[0] = 0x05;
    AccountId::new(b)
}

/// The storage hash of a message (`identity-and-crypto.md` §6).
pub fn hash_of(owner: &AccountId, ns: i16, data: &[u8]) -> MessageHash {
    umbra_crypto::hash::message_hash(owner, i32::from(ns), data)
}

/// `s` as a message hash (43 base64 characters).
pub fn h(s: &str) -> MessageHash {
    s.parse().unwrap()
}

pub fn msg(owner: &AccountId, ns: i16, data: &[u8], ts: i64, expiry: i64) -> NewMessage {
    NewMessage {
        owner: *owner,
        namespace: ns,
        hash: hash_of(owner, ns, data),
        data: data.to_vec(),
        timestamp_ms: ts,
        expiry_ms: expiry,
    }
}

pub fn open(dir: &tempfile::TempDir) -> Store {
    open_with(dir, StoreConfig::default())
}

pub fn open_with(dir: &tempfile::TempDir, config: StoreConfig) -> Store {
    Store::open(dir.path().join("store.db"), config).unwrap()
}
