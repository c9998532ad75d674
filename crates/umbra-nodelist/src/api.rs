//! Requests and answers of the registry's node API (pure: no I/O, no clock).
//!
//! A storage node builds a [`RegisterRequest`], [`HeartbeatRequest`] or [`LeaveRequest`]
//! with its [`Identity`] and the registry's pinned Ed25519 key, serialises it as JSON and
//! `POST`s it (the HTTP side is described in the `umbra-registry` service's docs). The
//! registry checks it with the matching `verify` method, passing its own clock reading.
//!
//! ## What is signed
//!
//! All integers big-endian; every message starts with a domain string and the registry's
//! Ed25519 key, so a request is only valid for one registry and one purpose.
//!
//! ```text
//! register:  "umbra-registry/register/v1\0"  ‖ registry_ed25519[32] ‖ pubkey_ed25519[32] ‖
//!            pubkey_x25519[32] ‖ public_ip[4] ‖ storage_port u16 ‖ storage_lmq_port u16 ‖
//!            version 3×u16 ‖ timestamp_ms u64
//! heartbeat: "umbra-registry/heartbeat/v1\0" ‖ registry_ed25519[32] ‖ pubkey_ed25519[32] ‖ timestamp_ms u64
//! leave:     "umbra-registry/leave/v1\0"     ‖ registry_ed25519[32] ‖ pubkey_ed25519[32] ‖ timestamp_ms u64
//! ```
//!
//! `signature` is the node's Ed25519 signature over those bytes. A registration also proves
//! possession of the X25519 key it announces:
//!
//! ```text
//! shared       = X25519(node_x25519_secret, registry_x25519_public)
//!                (registry_x25519_public = Ed25519→X25519 conversion of the registry key)
//! x25519_proof = BLAKE2b-256(key = shared, "umbra-registry/x25519-proof/v1\0" ‖ register bytes)
//! ```

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use umbra_crypto::{Ed25519PublicKey, Identity, Signature, X25519PublicKey};
use umbra_swarm::SwarmId;

use crate::NodeListError;

/// Default largest accepted difference between a request's timestamp and the registry clock.
pub const DEFAULT_MAX_CLOCK_SKEW_MS: u64 = 60_000;
/// Largest request body the registry reads (bytes).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

const REGISTER_DOMAIN: &[u8] = b"umbra-registry/register/v1\0";
const HEARTBEAT_DOMAIN: &[u8] = b"umbra-registry/heartbeat/v1\0";
const LEAVE_DOMAIN: &[u8] = b"umbra-registry/leave/v1\0";
const PROOF_DOMAIN: &[u8] = b"umbra-registry/x25519-proof/v1\0";

/// What a node announces about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// IPv4 address where the node listens (not `0.0.0.0`).
    pub public_ip: Ipv4Addr,
    /// HTTPS port of the storage API (non-zero).
    pub storage_port: u16,
    /// OMQ/QUIC port (non-zero; libsession requires it).
    pub storage_lmq_port: u16,
    /// Storage server version, e.g. `[2, 8, 0]`.
    pub version: [u16; 3],
}

/// `POST /v1/register` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// The node's Ed25519 public key.
    #[serde(with = "crate::hexser")]
    pub pubkey_ed25519: Ed25519PublicKey,
    /// The node's X25519 public key.
    #[serde(with = "crate::hexser")]
    pub pubkey_x25519: X25519PublicKey,
    /// Address, ports and version.
    #[serde(flatten)]
    pub announcement: Announcement,
    /// Unix milliseconds when the request was made.
    pub timestamp_ms: u64,
    /// Proof of the X25519 key (see the module docs).
    #[serde(with = "crate::hexser")]
    pub x25519_proof: [u8; 32],
    /// Ed25519 signature over the register bytes.
    #[serde(with = "crate::hexser")]
    pub signature: Signature,
}

fn register_bytes(
    registry: &Ed25519PublicKey,
    ed: &Ed25519PublicKey,
    x: &X25519PublicKey,
    a: &Announcement,
    timestamp_ms: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(REGISTER_DOMAIN.len() + 32 * 3 + 4 + 4 + 6 + 8);
    out.extend_from_slice(REGISTER_DOMAIN);
    out.extend_from_slice(registry.as_bytes());
    out.extend_from_slice(ed.as_bytes());
    out.extend_from_slice(x.as_bytes());
    out.extend_from_slice(&a.public_ip.octets());
    out.extend_from_slice(&a.storage_port.to_be_bytes());
    out.extend_from_slice(&a.storage_lmq_port.to_be_bytes());
    for v in a.version {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out
}

fn short_bytes(
    domain: &[u8],
    registry: &Ed25519PublicKey,
    ed: &Ed25519PublicKey,
    timestamp_ms: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + 72);
    out.extend_from_slice(domain);
    out.extend_from_slice(registry.as_bytes());
    out.extend_from_slice(ed.as_bytes());
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out
}

/// The X25519 possession proof for `register_bytes` given the DH shared secret.
#[must_use]
pub fn x25519_proof(shared: &[u8; 32], signed_bytes: &[u8]) -> [u8; 32] {
    umbra_crypto::hash::blake2b_32_keyed(shared, &[PROOF_DOMAIN, signed_bytes])
}

fn registry_x25519(registry_pubkey: &Ed25519PublicKey) -> Result<X25519PublicKey, NodeListError> {
    umbra_crypto::keys::ed25519_pk_to_x25519(registry_pubkey).map_err(|source| {
        NodeListError::Crypto {
            what: "converting the registry key to X25519",
            source,
        }
    })
}

/// Checks `timestamp_ms` is within `max_skew_ms` of `now_ms`.
///
/// # Errors
/// [`NodeListError::StaleTimestamp`].
pub fn check_fresh(
    what: &'static str,
    timestamp_ms: u64,
    now_ms: u64,
    max_skew_ms: u64,
) -> Result<(), NodeListError> {
    let skew_ms = timestamp_ms.abs_diff(now_ms);
    if skew_ms > max_skew_ms {
        return Err(NodeListError::StaleTimestamp {
            what,
            skew_ms,
            max_ms: max_skew_ms,
        });
    }
    Ok(())
}

impl RegisterRequest {
    /// Builds and signs a registration for `node` (its Ed25519 and X25519 keys) to the
    /// registry whose Ed25519 key is `registry_pubkey`.
    ///
    /// # Errors
    /// [`NodeListError::Crypto`] if the registry key is not a valid Ed25519 point.
    pub fn new(
        node: &Identity,
        registry_pubkey: &Ed25519PublicKey,
        announcement: Announcement,
        timestamp_ms: u64,
    ) -> Result<Self, NodeListError> {
        let ed = node.ed25519_public();
        let x = node.x25519_public();
        let bytes = register_bytes(registry_pubkey, &ed, &x, &announcement, timestamp_ms);
        let shared = node
            .x25519_dh(&registry_x25519(registry_pubkey)?)
            .map_err(|source| NodeListError::Crypto {
                what: "computing the X25519 proof",
                source,
            })?;
        let x25519_proof = x25519_proof(&shared, &bytes);
        Ok(Self {
            pubkey_ed25519: ed,
            pubkey_x25519: x,
            announcement,
            timestamp_ms,
            x25519_proof,
            signature: node.sign(&bytes),
        })
    }

    /// The bytes the signature and proof cover, for the registry `registry_pubkey`.
    #[must_use]
    pub fn signed_bytes(&self, registry_pubkey: &Ed25519PublicKey) -> Vec<u8> {
        register_bytes(
            registry_pubkey,
            &self.pubkey_ed25519,
            &self.pubkey_x25519,
            &self.announcement,
            self.timestamp_ms,
        )
    }

    /// The registry's check: announcement sane, timestamp fresh, Ed25519 signature valid,
    /// X25519 proof matching the announced X25519 key.
    ///
    /// # Errors
    /// [`NodeListError::BadAnnouncement`], [`NodeListError::StaleTimestamp`],
    /// [`NodeListError::BadSignature`], [`NodeListError::BadX25519Key`],
    /// [`NodeListError::X25519ProofMismatch`].
    pub fn verify(
        &self,
        registry: &Identity,
        now_ms: u64,
        max_skew_ms: u64,
    ) -> Result<(), NodeListError> {
        let a = &self.announcement;
        if a.public_ip.is_unspecified() {
            return Err(NodeListError::BadAnnouncement(
                "public_ip must not be 0.0.0.0",
            ));
        }
        if a.storage_port == 0 || a.storage_lmq_port == 0 {
            return Err(NodeListError::BadAnnouncement(
                "storage_port and storage_lmq_port must be non-zero",
            ));
        }
        check_fresh("register", self.timestamp_ms, now_ms, max_skew_ms)?;
        let bytes = self.signed_bytes(&registry.ed25519_public());
        umbra_crypto::sign::verify(&self.pubkey_ed25519, &bytes, &self.signature)
            .map_err(|_| NodeListError::BadSignature { what: "register" })?;
        let shared = registry
            .x25519_dh(&self.pubkey_x25519)
            .map_err(|_| NodeListError::BadX25519Key)?;
        let expected = x25519_proof(&shared, &bytes);
        if !bool::from(expected.ct_eq(&self.x25519_proof)) {
            return Err(NodeListError::X25519ProofMismatch);
        }
        Ok(())
    }
}

macro_rules! short_request {
    ($name:ident, $domain:expr, $what:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name {
            /// The node's Ed25519 public key.
            #[serde(with = "crate::hexser")]
            pub pubkey_ed25519: Ed25519PublicKey,
            /// Unix milliseconds when the request was made.
            pub timestamp_ms: u64,
            /// Ed25519 signature (see the module docs).
            #[serde(with = "crate::hexser")]
            pub signature: Signature,
        }

        impl $name {
            /// Builds and signs the request for the registry `registry_pubkey`.
            #[must_use]
            pub fn new(
                node: &Identity,
                registry_pubkey: &Ed25519PublicKey,
                timestamp_ms: u64,
            ) -> Self {
                let ed = node.ed25519_public();
                let bytes = short_bytes($domain, registry_pubkey, &ed, timestamp_ms);
                Self {
                    pubkey_ed25519: ed,
                    timestamp_ms,
                    signature: node.sign(&bytes),
                }
            }

            /// The registry's check: timestamp fresh and signature valid.
            ///
            /// # Errors
            /// [`NodeListError::StaleTimestamp`], [`NodeListError::BadSignature`].
            pub fn verify(
                &self,
                registry_pubkey: &Ed25519PublicKey,
                now_ms: u64,
                max_skew_ms: u64,
            ) -> Result<(), NodeListError> {
                check_fresh($what, self.timestamp_ms, now_ms, max_skew_ms)?;
                let bytes = short_bytes(
                    $domain,
                    registry_pubkey,
                    &self.pubkey_ed25519,
                    self.timestamp_ms,
                );
                umbra_crypto::sign::verify(&self.pubkey_ed25519, &bytes, &self.signature)
                    .map_err(|_| NodeListError::BadSignature { what: $what })
            }
        }
    };
}

short_request!(
    HeartbeatRequest,
    HEARTBEAT_DOMAIN,
    "heartbeat",
    "`POST /v1/heartbeat` body: the node is alive (and rejoins if it had been marked inactive)."
);
short_request!(
    LeaveRequest,
    LEAVE_DOMAIN,
    "leave",
    "`POST /v1/leave` body: the node shuts down cleanly and leaves its swarm now."
);

/// Answer to register, heartbeat and leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The current list epoch (fetch `/v1/nodelist` when it is newer than yours).
    pub epoch: u64,
    /// The node's swarm ([`umbra_swarm::UNASSIGNED_SWARM_ID`] when not in one).
    pub swarm_id: SwarmId,
    /// The same id in lowercase hex without leading zeros.
    pub swarm: String,
    /// Whether the registry counts the node as active.
    pub active: bool,
    /// How often the node should send a heartbeat, in milliseconds.
    pub heartbeat_interval_ms: u64,
}

/// `GET /v1/info` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryInfo {
    /// The registry's Ed25519 key (pin it; it signs the lists).
    #[serde(with = "crate::hexser")]
    pub registry_pubkey: Ed25519PublicKey,
    /// The registry's X25519 key (used in the registration proof).
    #[serde(with = "crate::hexser")]
    pub registry_pubkey_x25519: X25519PublicKey,
    /// The current list epoch.
    pub epoch: u64,
    /// Node list format version.
    pub list_format_version: u8,
    /// How often nodes should send heartbeats, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// After how long without a heartbeat a node is marked inactive, in milliseconds.
    pub inactive_after_ms: u64,
    /// Largest accepted timestamp skew of signed requests, in milliseconds.
    pub max_clock_skew_ms: u64,
}

/// Body of every error answer: `{"error": "<one line for people>", "code": "<stable code>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable reason.
    pub error: String,
    /// Stable machine-readable code ([`NodeListError::code`]).
    pub code: String,
}

impl From<&NodeListError> for ErrorBody {
    fn from(e: &NodeListError) -> Self {
        Self {
            error: e.to_string(),
            code: e.code().to_owned(),
        }
    }
}
