//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use blake2::{Blake2b256, Digest};
use umbra_store::{AccountId, NewMessage, Store, StoreConfig};

pub const NOW: i64 = 1_700_000_000_000;
pub const DAY: i64 = 24 * 3600 * 1000;

pub fn owner(n: u8) -> AccountId {
    let mut b = [n; 33];
    b[0] = 0x05;
    AccountId::new(b)
}

/// A 43-character hash-looking string derived from owner, namespace and data.
pub fn hash_of(owner: &AccountId, ns: i16, data: &[u8]) -> String {
    let d = Blake2b256::new()
        .chain_update(owner.as_bytes())
        .chain_update(ns.to_be_bytes())
        .chain_update(data)
        .finalize();
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    hex[..43].to_string()
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
