//! The registry's gRPC messages (`proto/umbra/registry/v1/registry.proto`, generated in
//! [`umbra_proto::umbra::registry::v1`]) and this crate's types, both ways (pure).
//!
//! Nothing here is signed: the requests carry the same signatures as their JSON forms in
//! [`crate::api`], and a list's signatures cover [`NodeList::signing_bytes`], so a list that
//! travelled as protobuf verifies exactly as one that travelled as JSON. Decoding checks every
//! length and range and the list bounds ([`MAX_LIST_NODES`], [`MAX_LIST_SIGNATURES`]) before
//! building a value; the size of the protobuf message itself is bounded by the transport
//! ([`MAX_LIST_MESSAGE_BYTES`], [`crate::api::MAX_REQUEST_BYTES`]).

use std::net::Ipv4Addr;

use umbra_crypto::{Ed25519PublicKey, Signature, X25519PublicKey};
use umbra_proto::umbra::registry::v1 as pb;

use crate::NodeListError;
use crate::api::{Announcement, HeartbeatRequest, LeaveRequest, NodeStatus, RegisterRequest};
use crate::list::{
    ListSignature, MAX_LIST_NODES, MAX_LIST_SIGNATURES, NodeEntry, NodeList, SignedNodeList,
};

/// Largest `SignedNodeList` protobuf message sent or read on the `WatchNodeList` stream
/// (bytes). A full list of [`MAX_LIST_NODES`] nodes encodes to about 2.2 MB (≈ 110 bytes per
/// node) plus [`MAX_LIST_SIGNATURES`] signatures of 100 bytes: 4 MiB holds it with room.
pub const MAX_LIST_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

fn bad(what: &str) -> NodeListError {
    NodeListError::BadRequest(format!("{what} has the wrong length or range"))
}

fn ed(what: &str, b: &[u8]) -> Result<Ed25519PublicKey, NodeListError> {
    Ed25519PublicKey::from_slice(b).map_err(|_| bad(what))
}

fn x(what: &str, b: &[u8]) -> Result<X25519PublicKey, NodeListError> {
    X25519PublicKey::from_slice(b).map_err(|_| bad(what))
}

fn sig(what: &str, b: &[u8]) -> Result<Signature, NodeListError> {
    Signature::from_slice(b).map_err(|_| bad(what))
}

fn ip(what: &str, b: &[u8]) -> Result<Ipv4Addr, NodeListError> {
    <[u8; 4]>::try_from(b)
        .map(Ipv4Addr::from)
        .map_err(|_| bad(what))
}

fn port(what: &str, p: u32) -> Result<u16, NodeListError> {
    u16::try_from(p).map_err(|_| bad(what))
}

fn version(what: &str, v: &[u32]) -> Result<[u16; 3], NodeListError> {
    match v {
        [a, b, c] => Ok([port(what, *a)?, port(what, *b)?, port(what, *c)?]),
        _ => Err(bad(what)),
    }
}

fn version_out(v: [u16; 3]) -> Vec<u32> {
    v.iter().map(|n| u32::from(*n)).collect()
}

impl From<&Announcement> for pb::Announcement {
    fn from(a: &Announcement) -> Self {
        Self {
            public_ip: a.public_ip.octets().to_vec(),
            storage_port: u32::from(a.storage_port),
            storage_lmq_port: u32::from(a.storage_lmq_port),
            version: version_out(a.version),
        }
    }
}

impl TryFrom<&pb::Announcement> for Announcement {
    type Error = NodeListError;

    fn try_from(a: &pb::Announcement) -> Result<Self, Self::Error> {
        Ok(Self {
            public_ip: ip("announcement public_ip", &a.public_ip)?,
            storage_port: port("announcement storage_port", a.storage_port)?,
            storage_lmq_port: port("announcement storage_lmq_port", a.storage_lmq_port)?,
            version: version("announcement version", &a.version)?,
        })
    }
}

impl From<&RegisterRequest> for pb::RegisterRequest {
    fn from(r: &RegisterRequest) -> Self {
        Self {
            pubkey_ed25519: r.pubkey_ed25519.as_bytes().to_vec(),
            pubkey_x25519: r.pubkey_x25519.as_bytes().to_vec(),
            announcement: Some((&r.announcement).into()),
            timestamp_ms: r.timestamp_ms,
            x25519_proof: r.x25519_proof.to_vec(),
            signature: r.signature.as_bytes().to_vec(),
        }
    }
}

impl TryFrom<&pb::RegisterRequest> for RegisterRequest {
    type Error = NodeListError;

    fn try_from(r: &pb::RegisterRequest) -> Result<Self, Self::Error> {
        let announcement = r
            .announcement
            .as_ref()
            .ok_or_else(|| NodeListError::BadRequest("register: announcement missing".into()))?;
        Ok(Self {
            pubkey_ed25519: ed("register pubkey_ed25519", &r.pubkey_ed25519)?,
            pubkey_x25519: x("register pubkey_x25519", &r.pubkey_x25519)?,
            announcement: announcement.try_into()?,
            timestamp_ms: r.timestamp_ms,
            x25519_proof: <[u8; 32]>::try_from(r.x25519_proof.as_slice())
                .map_err(|_| bad("register x25519_proof"))?,
            signature: sig("register signature", &r.signature)?,
        })
    }
}

macro_rules! short_conversions {
    ($ours:ident, $what:literal) => {
        impl From<&$ours> for pb::$ours {
            fn from(r: &$ours) -> Self {
                Self {
                    pubkey_ed25519: r.pubkey_ed25519.as_bytes().to_vec(),
                    timestamp_ms: r.timestamp_ms,
                    signature: r.signature.as_bytes().to_vec(),
                }
            }
        }

        impl TryFrom<&pb::$ours> for $ours {
            type Error = NodeListError;

            fn try_from(r: &pb::$ours) -> Result<Self, Self::Error> {
                Ok(Self {
                    pubkey_ed25519: ed(concat!($what, " pubkey_ed25519"), &r.pubkey_ed25519)?,
                    timestamp_ms: r.timestamp_ms,
                    signature: sig(concat!($what, " signature"), &r.signature)?,
                })
            }
        }
    };
}

short_conversions!(HeartbeatRequest, "heartbeat");
short_conversions!(LeaveRequest, "leave");

impl From<&NodeStatus> for pb::NodeStatus {
    fn from(s: &NodeStatus) -> Self {
        Self {
            epoch: s.epoch,
            swarm_id: s.swarm_id,
            active: s.active,
            heartbeat_interval_ms: s.heartbeat_interval_ms,
        }
    }
}

impl From<&pb::NodeStatus> for NodeStatus {
    fn from(s: &pb::NodeStatus) -> Self {
        Self {
            epoch: s.epoch,
            swarm_id: s.swarm_id,
            swarm: format!("{:x}", s.swarm_id),
            active: s.active,
            heartbeat_interval_ms: s.heartbeat_interval_ms,
        }
    }
}

impl From<&NodeEntry> for pb::NodeEntry {
    fn from(n: &NodeEntry) -> Self {
        Self {
            pubkey_ed25519: n.pubkey_ed25519.as_bytes().to_vec(),
            pubkey_x25519: n.pubkey_x25519.as_bytes().to_vec(),
            public_ip: n.public_ip.octets().to_vec(),
            storage_port: u32::from(n.storage_port),
            storage_lmq_port: u32::from(n.storage_lmq_port),
            swarm_id: n.swarm_id,
            active: n.active,
            version: version_out(n.version),
        }
    }
}

impl TryFrom<&pb::NodeEntry> for NodeEntry {
    type Error = NodeListError;

    fn try_from(n: &pb::NodeEntry) -> Result<Self, Self::Error> {
        Ok(Self {
            pubkey_ed25519: ed("node pubkey_ed25519", &n.pubkey_ed25519)?,
            pubkey_x25519: x("node pubkey_x25519", &n.pubkey_x25519)?,
            public_ip: ip("node public_ip", &n.public_ip)?,
            storage_port: port("node storage_port", n.storage_port)?,
            storage_lmq_port: port("node storage_lmq_port", n.storage_lmq_port)?,
            swarm_id: n.swarm_id,
            active: n.active,
            version: version("node version", &n.version)?,
        })
    }
}

impl From<&SignedNodeList> for pb::SignedNodeList {
    fn from(s: &SignedNodeList) -> Self {
        Self {
            list: Some(pb::NodeList {
                version: u32::from(s.list.version),
                epoch: s.list.epoch,
                issued_at_ms: s.list.issued_at_ms,
                nodes: s.list.nodes.iter().map(Into::into).collect(),
            }),
            signatures: s
                .signatures
                .iter()
                .map(|g| pb::ListSignature {
                    signer: g.signer.as_bytes().to_vec(),
                    signature: g.signature.as_bytes().to_vec(),
                })
                .collect(),
        }
    }
}

impl TryFrom<&pb::SignedNodeList> for SignedNodeList {
    type Error = NodeListError;

    /// Checks the bounds first, then every field; the list keeps the order it came in
    /// ([`crate::list::TrustPolicy::verify`] refuses a non-canonical one).
    fn try_from(s: &pb::SignedNodeList) -> Result<Self, Self::Error> {
        let list = s
            .list
            .as_ref()
            .ok_or_else(|| NodeListError::BadRequest("node list: list missing".into()))?;
        if list.nodes.len() > MAX_LIST_NODES {
            return Err(NodeListError::ListTooLarge {
                what: "nodes",
                got: list.nodes.len(),
                limit: MAX_LIST_NODES,
            });
        }
        if s.signatures.len() > MAX_LIST_SIGNATURES {
            return Err(NodeListError::ListTooLarge {
                what: "signatures",
                got: s.signatures.len(),
                limit: MAX_LIST_SIGNATURES,
            });
        }
        let version = u8::try_from(list.version).map_err(|_| bad("node list version"))?;
        Ok(Self {
            list: NodeList {
                version,
                epoch: list.epoch,
                issued_at_ms: list.issued_at_ms,
                nodes: list
                    .nodes
                    .iter()
                    .map(NodeEntry::try_from)
                    .collect::<Result<_, _>>()?,
            },
            signatures: s
                .signatures
                .iter()
                .map(|g| {
                    Ok(ListSignature {
                        signer: ed("list signer", &g.signer)?,
                        signature: sig("list signature", &g.signature)?,
                    })
                })
                .collect::<Result<_, NodeListError>>()?,
        })
    }
}
