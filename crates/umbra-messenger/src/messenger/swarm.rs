//! The network side of the messaging core, as a small trait: what the messenger asks of the
//! swarms (`shared/spec/storage-rpc.md` §5.1–§5.6), and the exact bytes it signs (§3.2).
//!
//! Implementations: [`super::onion::OnionSwarm`] (the real one, through onion paths) and
//! `FakeSwarms` (in memory, feature `test-support`).

use thiserror::Error;
use umbra_crypto::{Identity, MessageHash, SessionId};
use umbra_groups::{GroupAdmin, GroupPublic, Subaccount, Token};

use umbra_net::BoxFuture;

/// Why a swarm request failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SwarmError {
    /// The swarm could not be reached, or did not answer: worth retrying later.
    #[error("swarm unreachable: {0}")]
    Unreachable(String),
    /// A node answered an error status.
    #[error("the node answered HTTP {status}: {body}")]
    Status {
        /// The storage RPC status.
        status: u16,
        /// Its body (plain-text reason).
        body: String,
    },
    /// A node answered 200 with a body that is not what the method returns.
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl SwarmError {
    /// Whether retrying the same request later can succeed (network failures, clock errors,
    /// overloaded or misdirected nodes); `false` for refusals such as an invalid TTL, an
    /// oversized message or a gone one (410), which would fail forever.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::Malformed(_) => true,
            Self::Status { status, .. } => !matches!(status, 400 | 403 | 410 | 413),
        }
    }
}

/// A node's acknowledgement of a `store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreAck {
    /// The message hash the swarm stored the data under.
    pub hash: MessageHash,
    /// The data was already stored (a retry of an acknowledged store).
    pub already: bool,
}

/// One stored message as `retrieve` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its storage hash.
    pub hash: MessageHash,
    /// The stored bytes (base64-decoded).
    pub data: Vec<u8>,
    /// The `timestamp` given at `store`, ms.
    pub timestamp_ms: u64,
    /// When the swarm forgets it, ms.
    pub expiry_ms: u64,
}

/// One page of `retrieve`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetrievedPage {
    /// Messages stored after `last_hash`, in the node's order.
    pub messages: Vec<StoredMessage>,
    /// The node cut the answer at a limit: ask again from the last hash.
    pub more: bool,
}

/// A node of a swarm, by an opaque identifier (the real adapter uses the node's Ed25519 key in
/// hex); `retrieve` positions (`last_hash`) are kept per node.
pub type NodeId = String;

/// Who signs a request to a group swarm (`storage-rpc.md` §3.1, §9).
#[derive(Debug, Clone, Copy)]
pub enum GroupAuth<'a> {
    /// An admin, with the group's own Ed25519 key.
    Admin(&'a GroupAdmin),
    /// A member, with its subaccount token (signed by the group) and blinded key.
    Member(&'a Subaccount),
}

fn no_group_access<T: Send + 'static>() -> BoxFuture<'static, Result<T, SwarmError>> {
    Box::pin(async {
        Err(SwarmError::Unreachable(
            "this swarm access cannot reach group swarms".into(),
        ))
    })
}

/// What the messenger needs from the network. Every method is one storage RPC (or its
/// in-memory equivalent); retries and backoff are the messenger's job.
pub trait SwarmApi: Send + Sync {
    /// The network's time minus this device's clock, ms, as the nodes' answers showed it (0
    /// until one answered, and for an adapter whose clock is the network's). The messenger
    /// stamps messages with its clock plus this, so a device whose clock is off still sends
    /// messages the nodes accept and that sort right on the other side.
    fn network_offset_ms(&self) -> i64 {
        0
    }

    /// The nodes of the swarm that owns `owner`, in a stable order (computed locally from the
    /// verified node list; never a `get_swarm` request).
    fn nodes<'a>(&'a self, owner: &'a SessionId) -> BoxFuture<'a, Result<Vec<NodeId>, SwarmError>>;

    /// `store` (§5.1) of `data` in `owner`'s swarm, in a public-inbox `namespace`
    /// (`namespace % 10 == 0`; no signature), with `timestamp_ms` and `ttl_ms`.
    fn store<'a>(
        &'a self,
        owner: &'a SessionId,
        namespace: i32,
        data: &'a [u8],
        timestamp_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<'a, Result<StoreAck, SwarmError>>;

    /// Authenticated `retrieve` (§5.2) from `identity`'s own swarm, at `node`, of the messages
    /// after `last_hash`.
    fn retrieve<'a>(
        &'a self,
        identity: &'a Identity,
        namespace: i32,
        node: &'a str,
        last_hash: Option<&'a MessageHash>,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>>;

    /// [`SwarmApi::retrieve`] that may wait at the node up to `wait_ms` for something new
    /// (Umbra's long-poll extension, `umbra_wait_ms`; a node without it answers at once).
    /// The default does not wait: adapters without long-poll need nothing more.
    fn retrieve_wait<'a>(
        &'a self,
        identity: &'a Identity,
        namespace: i32,
        node: &'a str,
        last_hash: Option<&'a MessageHash>,
        wait_ms: u64,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        let _ = wait_ms;
        self.retrieve(identity, namespace, node, last_hash)
    }

    /// Authenticated `store` (§5.1) of `data` in `identity`'s own swarm, in a `namespace`
    /// that needs the owner's signature (the config namespaces 2–5), then — in the same
    /// request (`sequence`, §5.14), so only when the store succeeded — a `delete` of
    /// `obsolete` (when not empty): the messages the stored one supersedes. The default
    /// refuses as unreachable: swarm access without a network (offline stand-ins) needs
    /// nothing more.
    fn store_own<'a>(
        &'a self,
        identity: &'a Identity,
        namespace: i32,
        data: &'a [u8],
        timestamp_ms: u64,
        ttl_ms: u64,
        obsolete: &'a [MessageHash],
    ) -> BoxFuture<'a, Result<StoreAck, SwarmError>> {
        let _ = (identity, namespace, data, timestamp_ms, ttl_ms, obsolete);
        Box::pin(async {
            Err(SwarmError::Unreachable(
                "this swarm access cannot store in our own namespaces".into(),
            ))
        })
    }

    /// Authenticated `store` (§5.1) of `data` in `namespace` of the swarm of `group`, signed
    /// by `auth` (an admin's group key, or a member's subaccount: Write). The default refuses
    /// as unreachable.
    #[allow(clippy::too_many_arguments)]
    fn group_store<'a>(
        &'a self,
        group: &'a GroupPublic,
        auth: GroupAuth<'a>,
        namespace: i32,
        data: &'a [u8],
        timestamp_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<'a, Result<StoreAck, SwarmError>> {
        let _ = (group, auth, namespace, data, timestamp_ms, ttl_ms);
        no_group_access()
    }

    /// Authenticated `retrieve` (§5.2) of `namespace` of the swarm of `group`, after
    /// `last_hash`, signed by `auth` (a member needs Read; a revoked one may still read the
    /// unrevocable namespace −11). The default refuses as unreachable.
    fn group_retrieve<'a>(
        &'a self,
        group: &'a GroupPublic,
        auth: GroupAuth<'a>,
        namespace: i32,
        last_hash: Option<&'a MessageHash>,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        let _ = (group, auth, namespace, last_hash);
        no_group_access()
    }

    /// [`SwarmApi::group_retrieve`] that may wait at the node up to `wait_ms` for something
    /// new (`umbra_wait_ms`, as [`SwarmApi::retrieve_wait`]). The default does not wait.
    fn group_retrieve_wait<'a>(
        &'a self,
        group: &'a GroupPublic,
        auth: GroupAuth<'a>,
        namespace: i32,
        last_hash: Option<&'a MessageHash>,
        wait_ms: u64,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        let _ = wait_ms;
        self.group_retrieve(group, auth, namespace, last_hash)
    }

    /// `delete` (§5.5) of `hashes` from the swarm of `admin`'s group, signed by the group key
    /// (an admin deleting messages for everyone). Returns the hashes deleted. The default
    /// refuses as unreachable.
    fn group_delete<'a>(
        &'a self,
        admin: &'a GroupAdmin,
        hashes: &'a [MessageHash],
    ) -> BoxFuture<'a, Result<Vec<MessageHash>, SwarmError>> {
        let _ = (admin, hashes);
        no_group_access()
    }

    /// `expire` (§5.6) of `hashes` in the swarm of `admin`'s group to `expiry_ms`, signed by
    /// the group key: an admin keeps the keys messages and configs alive (§1.1, §2.10). The
    /// default refuses as unreachable.
    fn group_expire<'a>(
        &'a self,
        admin: &'a GroupAdmin,
        hashes: &'a [MessageHash],
        expiry_ms: u64,
    ) -> BoxFuture<'a, Result<(), SwarmError>> {
        let _ = (admin, hashes, expiry_ms);
        no_group_access()
    }

    /// `revoke_subaccount` (§5.9) of `tokens` (at most 50) in the swarm of `admin`'s group:
    /// those members can no longer read or write it; with `revoke = false`,
    /// `unrevoke_subaccount` (a removed member invited again). The default refuses as
    /// unreachable.
    fn group_revoke<'a>(
        &'a self,
        admin: &'a GroupAdmin,
        tokens: &'a [Token],
        revoke: bool,
    ) -> BoxFuture<'a, Result<(), SwarmError>> {
        let _ = (admin, tokens, revoke);
        no_group_access()
    }

    /// Authenticated `delete` (§5.3) of `hashes` from `identity`'s own swarm; returns the
    /// hashes some node deleted.
    fn delete<'a>(
        &'a self,
        identity: &'a Identity,
        hashes: &'a [MessageHash],
    ) -> BoxFuture<'a, Result<Vec<MessageHash>, SwarmError>>;

    /// Authenticated `expire` (§5.6) of `hashes` in `identity`'s own swarm to `expiry_ms`;
    /// with `shorten`, only expiries later than `expiry_ms` change.
    fn expire<'a>(
        &'a self,
        identity: &'a Identity,
        hashes: &'a [MessageHash],
        expiry_ms: u64,
        shorten: bool,
    ) -> BoxFuture<'a, Result<(), SwarmError>>;
}

/// The namespace part of a signed message: empty for namespace 0, else its decimal value
/// (`storage-rpc.md` §3.2).
pub fn namespace_part(namespace: i32) -> String {
    if namespace == 0 {
        String::new()
    } else {
        namespace.to_string()
    }
}

/// The exact bytes a `retrieve` signs: `"retrieve" || ns || timestamp`.
pub fn retrieve_signed_bytes(namespace: i32, timestamp_ms: u64) -> Vec<u8> {
    format!("retrieve{}{timestamp_ms}", namespace_part(namespace)).into_bytes()
}

/// The exact bytes an owner-signed `store` signs: `"store" || ns || sig_timestamp`.
pub fn store_signed_bytes(namespace: i32, sig_timestamp_ms: u64) -> Vec<u8> {
    format!("store{}{sig_timestamp_ms}", namespace_part(namespace)).into_bytes()
}

/// The exact bytes a `delete` signs: `"delete" || hash_0 || … || hash_n` (request order).
pub fn delete_signed_bytes<H: AsRef<str>>(hashes: &[H]) -> Vec<u8> {
    let mut out = b"delete".to_vec();
    for h in hashes {
        out.extend_from_slice(h.as_ref().as_bytes());
    }
    out
}

/// The exact bytes an `expire` signs: `"expire" || mode || expiry || hash_0 || … || hash_n`,
/// `mode` being `""` or `"shorten"` here.
pub fn expire_signed_bytes<H: AsRef<str>>(shorten: bool, expiry_ms: u64, hashes: &[H]) -> Vec<u8> {
    let mode = if shorten { "shorten" } else { "" };
    let mut out = format!("expire{mode}{expiry_ms}").into_bytes();
    for h in hashes {
        out.extend_from_slice(h.as_ref().as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_bytes_match_the_spec_examples() {
        assert_eq!(
            retrieve_signed_bytes(0, 1_700_000_000_000),
            b"retrieve1700000000000".to_vec()
        );
        assert_eq!(
            retrieve_signed_bytes(-11, 1_700_000_000_000),
            b"retrieve-111700000000000".to_vec()
        );
        assert_eq!(
            store_signed_bytes(3, 1_700_000_000_000),
            b"store31700000000000".to_vec()
        );
        assert_eq!(delete_signed_bytes(&["aa", "bb"]), b"deleteaabb".to_vec());
        assert_eq!(
            expire_signed_bytes(true, 1_700_000_000_000, &["h1"]),
            b"expireshorten1700000000000h1".to_vec()
        );
        assert_eq!(
            expire_signed_bytes::<&str>(false, 5_000_000_000_000, &[]),
            b"expire5000000000000".to_vec()
        );
    }

    #[test]
    fn only_refusals_are_permanent() {
        assert!(SwarmError::Unreachable("x".into()).is_transient());
        assert!(
            SwarmError::Status {
                status: 406,
                body: String::new()
            }
            .is_transient()
        );
        assert!(
            !SwarmError::Status {
                status: 403,
                body: String::new()
            }
            .is_transient()
        );
    }
}
