//! Helpers shared by the registry tests.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::Ipv4Addr;

use umbra_crypto::Identity;
use umbra_nodelist::api::{Announcement, RegisterRequest};

/// A deterministic identity for test node `i` (registry uses `registry_identity`).
pub fn node_identity(i: u32) -> Identity {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    seed[31] = 0x4e;
    Identity::from_seed(&seed)
}

pub fn registry_identity() -> Identity {
    Identity::from_seed(&[0x52; 32])
}

pub fn announcement(i: u32) -> Announcement {
    Announcement {
        public_ip: Ipv4Addr::LOCALHOST,
        storage_port: 20_000 + u16::try_from(i).unwrap() * 2,
        storage_lmq_port: 20_001 + u16::try_from(i).unwrap() * 2,
        version: [2, 8, 0],
    }
}

pub fn register_req(i: u32, registry: &umbra_crypto::Ed25519PublicKey, ts: u64) -> RegisterRequest {
    RegisterRequest::new(&node_identity(i), registry, announcement(i), ts).unwrap()
}

pub const T0: u64 = 1_764_130_000_000;
