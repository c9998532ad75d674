//! [`OnionSwarm`]: the [`SwarmApi`] of the messenger over [`OnionTransport`] — storage RPC JSON
//! (`shared/spec/storage-rpc.md` §5.1–§5.6) signed as §3.2 says, sent through onion paths.
//!
//! Never: send a request other than through the transport, or put a secret in a request
//! (only the Ed25519 public key and signatures leave the client).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use umbra_report::ErrorExt as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use umbra_crypto::{AccountId, Identity, MessageHash, SessionId};

use umbra_groups::{GroupAdmin, GroupPublic, Token};

use super::swarm::{
    GroupAuth, NodeId, RetrievedPage, StoreAck, StoredMessage, SwarmApi, SwarmError,
    delete_signed_bytes, expire_signed_bytes, retrieve_signed_bytes, store_signed_bytes,
};
use umbra_net::{BoxFuture, Clock};
use umbra_net::{Destination, OnionTransport, Request, Response};

/// The messenger's swarm access through onion paths.
#[derive(Clone)]
pub struct OnionSwarm {
    transport: OnionTransport,
    clock: Arc<dyn Clock>,
    /// Network time minus local time, ms, learnt from the nodes' `t` (signatures must be
    /// within ±60 s of the node's clock).
    offset_ms: Arc<AtomicI64>,
    /// Whether `offset_ms` was learnt since start or since a node refused a request's time.
    time_known: Arc<AtomicBool>,
}

impl std::fmt::Debug for OnionSwarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnionSwarm").finish_non_exhaustive()
    }
}

/// The JSON of a storage RPC.
fn rpc(method: &str, params: Value) -> Vec<u8> {
    json!({ "method": method, "params": params })
        .to_string()
        .into_bytes()
}

/// The authentication parameters of a request by `identity` over `signed` bytes.
fn auth(identity: &Identity, signed: &[u8]) -> (String, String, String) {
    (
        identity.session_id().to_hex(),
        hex::encode(identity.ed25519_public()),
        STANDARD.encode(identity.sign(signed)),
    )
}

/// `retrieve` request JSON (§5.2).
pub fn retrieve_request(
    identity: &Identity,
    namespace: i32,
    last_hash: Option<&MessageHash>,
    timestamp_ms: u64,
) -> Vec<u8> {
    long_poll_request(identity, namespace, last_hash, timestamp_ms, 0)
}

/// `retrieve` request JSON (§5.2) asking an Umbra node to wait up to `wait_ms` for something
/// new (`umbra_wait_ms`, outside the signed bytes; Session nodes ignore it). `wait_ms == 0`:
/// a plain retrieve.
pub fn long_poll_request(
    identity: &Identity,
    namespace: i32,
    last_hash: Option<&MessageHash>,
    timestamp_ms: u64,
    wait_ms: u64,
) -> Vec<u8> {
    let (pubkey, ed, sig) = auth(identity, &retrieve_signed_bytes(namespace, timestamp_ms));
    let mut p = json!({
        "pubkey": pubkey,
        "pubkey_ed25519": ed,
        "timestamp": timestamp_ms,
        "signature": sig,
    });
    if namespace != 0 {
        p["namespace"] = json!(namespace);
    }
    if let Some(h) = last_hash {
        p["last_hash"] = json!(h);
    }
    if wait_ms > 0 {
        p["umbra_wait_ms"] = json!(wait_ms);
    }
    rpc("retrieve", p)
}

/// The authentication fields of a request to a group swarm over `signed` bytes (§3.1, §9):
/// the group key's signature (admins), or the subaccount token, the group's signature of it
/// and the blinded key's signature (members).
fn group_auth(auth: GroupAuth<'_>, signed: &[u8], params: &mut Value) {
    match auth {
        GroupAuth::Admin(admin) => {
            params["signature"] = json!(STANDARD.encode(admin.sign(signed)));
        }
        GroupAuth::Member(sub) => {
            let a = sub.authorize(signed);
            params["subaccount"] = json!(a.subaccount);
            params["subaccount_sig"] = json!(a.subaccount_sig);
            params["signature"] = json!(a.signature);
        }
    }
}

/// `store` request JSON (§5.1) in `namespace` of a group swarm, signed at
/// `sig_timestamp_ms` (now: a retried message keeps its own `timestamp`).
pub fn group_store_request(
    group: &GroupPublic,
    auth: GroupAuth<'_>,
    namespace: i32,
    data: &[u8],
    timestamp_ms: u64,
    ttl_ms: u64,
    sig_timestamp_ms: u64,
) -> Vec<u8> {
    let mut p = json!({
        "pubkey": group.id().to_hex(),
        "namespace": namespace,
        "timestamp": timestamp_ms,
        "sig_timestamp": sig_timestamp_ms,
        "ttl": ttl_ms,
        "data": STANDARD.encode(data),
    });
    group_auth(
        auth,
        &store_signed_bytes(namespace, sig_timestamp_ms),
        &mut p,
    );
    rpc("store", p)
}

/// `retrieve` request JSON (§5.2) of `namespace` of a group swarm, waiting at the node up to
/// `wait_ms` for something new (as [`long_poll_request`]; 0: a plain retrieve).
pub fn group_retrieve_request(
    group: &GroupPublic,
    auth: GroupAuth<'_>,
    namespace: i32,
    last_hash: Option<&MessageHash>,
    timestamp_ms: u64,
    wait_ms: u64,
) -> Vec<u8> {
    let mut p = json!({
        "pubkey": group.id().to_hex(),
        "namespace": namespace,
        "timestamp": timestamp_ms,
    });
    if let Some(h) = last_hash {
        p["last_hash"] = json!(h);
    }
    if wait_ms > 0 {
        p["umbra_wait_ms"] = json!(wait_ms);
    }
    group_auth(
        auth,
        &retrieve_signed_bytes(namespace, timestamp_ms),
        &mut p,
    );
    rpc("retrieve", p)
}

/// `delete` request JSON (§5.5) of `hashes` from a group swarm, signed by the group key.
pub fn group_delete_request(admin: &GroupAdmin, hashes: &[MessageHash]) -> Vec<u8> {
    let sig = admin.sign(&delete_signed_bytes(hashes));
    rpc(
        "delete",
        json!({
            "pubkey": admin.id().to_hex(),
            "messages": hashes,
            "signature": STANDARD.encode(sig),
        }),
    )
}

/// `expire` request JSON (§5.6) of `hashes` in a group swarm, signed by the group key.
pub fn group_expire_request(admin: &GroupAdmin, hashes: &[MessageHash], expiry_ms: u64) -> Vec<u8> {
    let sig = admin.sign(&expire_signed_bytes(false, expiry_ms, hashes));
    rpc(
        "expire",
        json!({
            "pubkey": admin.id().to_hex(),
            "messages": hashes,
            "expiry": expiry_ms,
            "signature": STANDARD.encode(sig),
        }),
    )
}

/// `revoke_subaccount` (or, `revoke = false`, `unrevoke_subaccount`) request JSON (§5.9),
/// signed by the group key.
pub fn group_revoke_request(
    admin: &GroupAdmin,
    tokens: &[Token],
    revoke: bool,
    timestamp_ms: u64,
) -> Result<Vec<u8>, SwarmError> {
    let ts = i64::try_from(timestamp_ms).unwrap_or(i64::MAX);
    let sig = admin
        .revoke_signature(revoke, ts, tokens)
        .map_err(|e| SwarmError::Malformed(e.to_string()))?;
    let list: Vec<String> = tokens.iter().map(Token::to_base64).collect();
    let (method, field) = if revoke {
        ("revoke_subaccount", "revoke")
    } else {
        ("unrevoke_subaccount", "unrevoke")
    };
    let mut p = json!({
        "pubkey": admin.id().to_hex(),
        "timestamp": timestamp_ms,
        "signature": STANDARD.encode(sig),
    });
    p[field] = json!(list);
    Ok(rpc(method, p))
}

/// `store` request JSON (§5.1) for a public-inbox namespace (no signature).
pub fn store_request(
    owner: &SessionId,
    namespace: i32,
    data: &[u8],
    timestamp_ms: u64,
    ttl_ms: u64,
) -> Vec<u8> {
    let mut p = json!({
        "pubkey": owner.to_hex(),
        "timestamp": timestamp_ms,
        "ttl": ttl_ms,
        "data": STANDARD.encode(data),
    });
    if namespace != 0 {
        p["namespace"] = json!(namespace);
    }
    rpc("store", p)
}

/// The `params` of an owner-signed `store` (§5.1) in our own swarm, signed at
/// `sig_timestamp_ms` (§3.2).
fn own_store_params(
    identity: &Identity,
    namespace: i32,
    data: &[u8],
    timestamp_ms: u64,
    ttl_ms: u64,
    sig_timestamp_ms: u64,
) -> Value {
    let (pubkey, ed, sig) = auth(identity, &store_signed_bytes(namespace, sig_timestamp_ms));
    json!({
        "pubkey": pubkey,
        "pubkey_ed25519": ed,
        "namespace": namespace,
        "timestamp": timestamp_ms,
        "sig_timestamp": sig_timestamp_ms,
        "ttl": ttl_ms,
        "data": STANDARD.encode(data),
        "signature": sig,
    })
}

/// A `sequence` (§5.14): an owner-signed store in our own swarm, then the delete of the
/// messages it makes obsolete (omitted when there are none). The node stops at the first
/// failure, so nothing is deleted unless the new message is stored.
pub fn store_own_request(
    identity: &Identity,
    namespace: i32,
    data: &[u8],
    timestamp_ms: u64,
    ttl_ms: u64,
    sig_timestamp_ms: u64,
    obsolete: &[MessageHash],
) -> Vec<u8> {
    let mut requests = vec![json!({
        "method": "store",
        "params": own_store_params(identity, namespace, data, timestamp_ms, ttl_ms, sig_timestamp_ms),
    })];
    if !obsolete.is_empty() {
        let (pubkey, ed, sig) = auth(identity, &delete_signed_bytes(obsolete));
        requests.push(json!({
            "method": "delete",
            "params": {"pubkey": pubkey, "pubkey_ed25519": ed, "messages": obsolete, "signature": sig},
        }));
    }
    rpc("sequence", json!({ "requests": requests }))
}

/// Reads the answer of [`store_own_request`]: the store's acknowledgement. A failed delete
/// is not an error (the obsolete messages lapse with their TTL); a failed store is.
pub fn parse_store_own(body: &Value) -> Result<StoreAck, SwarmError> {
    let results = body
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| SwarmError::Malformed("sequence answer has no results".into()))?;
    let first = results
        .first()
        .ok_or_else(|| SwarmError::Malformed("sequence answer is empty".into()))?;
    let code = first.get("code").and_then(Value::as_u64).unwrap_or(0);
    let inner = first.get("body").cloned().unwrap_or(Value::Null);
    if code != 200 {
        return Err(SwarmError::Status {
            status: u16::try_from(code).unwrap_or(0),
            body: match inner {
                Value::String(s) => s,
                other => other.to_string(),
            },
        });
    }
    if let Some(del) = results.get(1)
        && del.get("code").and_then(Value::as_u64) != Some(200)
    {
        tracing::debug!("the delete of obsolete config messages failed; they lapse with their TTL");
    }
    parse_store(&inner)
}

/// `delete` request JSON (§5.3).
pub fn delete_request(identity: &Identity, hashes: &[MessageHash]) -> Vec<u8> {
    let (pubkey, ed, sig) = auth(identity, &delete_signed_bytes(hashes));
    rpc(
        "delete",
        json!({ "pubkey": pubkey, "pubkey_ed25519": ed, "messages": hashes, "signature": sig }),
    )
}

/// `expire` request JSON (§5.6).
pub fn expire_request(
    identity: &Identity,
    hashes: &[MessageHash],
    expiry_ms: u64,
    shorten: bool,
) -> Vec<u8> {
    let (pubkey, ed, sig) = auth(identity, &expire_signed_bytes(shorten, expiry_ms, hashes));
    let mut p = json!({
        "pubkey": pubkey,
        "pubkey_ed25519": ed,
        "messages": hashes,
        "expiry": expiry_ms,
        "signature": sig,
    });
    if shorten {
        p["shorten"] = json!(true);
    }
    rpc("expire", p)
}

/// Reads a retrieve answer.
pub fn parse_retrieve(body: &Value) -> Result<RetrievedPage, SwarmError> {
    let bad = |w: &str| SwarmError::Malformed(format!("retrieve answer: {w}"));
    let list = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no messages list"))?;
    let mut messages = Vec::with_capacity(list.len());
    for m in list {
        let hash = m
            .get("hash")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a message has no hash"))?;
        let hash = parse_hash(hash).map_err(|e| bad(&e))?;
        let data = m
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a message has no data"))?;
        let data = STANDARD
            .decode(data)
            .map_err(|_| bad("a message's data is not base64"))?;
        messages.push(StoredMessage {
            hash,
            data,
            timestamp_ms: m.get("timestamp").and_then(Value::as_u64).unwrap_or(0),
            expiry_ms: m
                .get("expiration")
                .or_else(|| m.get("expiry"))
                .and_then(Value::as_u64)
                .unwrap_or(0),
        });
    }
    Ok(RetrievedPage {
        messages,
        more: body.get("more").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// A message hash as a node wrote it in an answer: parsed here, once, where it enters the
/// client; the error says what was wrong with it.
fn parse_hash(text: &str) -> Result<MessageHash, String> {
    text.parse()
        .map_err(|e: umbra_crypto::CryptoError| format!("malformed message hash {text:?}: {e}"))
}

/// Reads a store answer: the hash, and whether any node reports it already stored. Fails
/// when every node of the swarm reports a failure, or when the hash is malformed.
pub fn parse_store(body: &Value) -> Result<StoreAck, SwarmError> {
    let swarm = body.get("swarm").and_then(Value::as_object);
    let mut hash = body.get("hash").and_then(Value::as_str);
    let mut already = false;
    if let Some(nodes) = swarm {
        let ok: Vec<&Value> = nodes
            .values()
            .filter(|n| !n.get("failed").and_then(Value::as_bool).unwrap_or(false))
            .collect();
        if ok.is_empty() && !nodes.is_empty() {
            return Err(SwarmError::Unreachable(
                "every node of the swarm failed to store".into(),
            ));
        }
        for n in ok {
            already |= n.get("already").and_then(Value::as_bool).unwrap_or(false);
            if hash.is_none() {
                hash = n.get("hash").and_then(Value::as_str);
            }
        }
    }
    Ok(StoreAck {
        hash: parse_hash(
            hash.ok_or_else(|| SwarmError::Malformed("store answer has no hash".into()))?,
        )
        .map_err(|e| SwarmError::Malformed(format!("store answer: {e}")))?,
        already,
    })
}

/// Reads the hashes deleted by any node from a delete answer; a malformed one (no hash we
/// asked to delete) is left out.
pub fn parse_delete(body: &Value) -> Vec<MessageHash> {
    let mut out: Vec<MessageHash> = body
        .get("swarm")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|n| n.get("deleted").and_then(Value::as_array))
        .flatten()
        .filter_map(|h| h.as_str().and_then(|h| h.parse().ok()))
        .collect();
    out.sort();
    out.dedup();
    out
}

impl OnionSwarm {
    /// Swarm access through `transport`, signing with times from `clock` (corrected by the
    /// nodes' clocks as answers come in).
    pub fn new(transport: OnionTransport, clock: Arc<dyn Clock>) -> Self {
        Self {
            transport,
            clock,
            offset_ms: Arc::new(AtomicI64::new(0)),
            time_known: Arc::new(AtomicBool::new(false)),
        }
    }

    fn network_now(&self) -> u64 {
        let local = i64::try_from(self.clock.now_ms()).unwrap_or(i64::MAX);
        u64::try_from(local.saturating_add(self.offset_ms.load(Ordering::Relaxed))).unwrap_or(0)
    }

    /// The network's time to sign a request to `destination` with. Until a node has answered
    /// (and again after a node refused a request's time), an unsigned `info` (§5.12) asks
    /// `destination` for it first: a device whose clock is a day off would otherwise have
    /// every signed request refused (406) and never hear a node's time at all.
    async fn signing_now(&self, destination: &Destination) -> u64 {
        if !self.time_known.load(Ordering::Relaxed) {
            let info = serde_json::json!({"method": "info", "params": {}});
            if let Err(e) = self
                .call(destination.clone(), info.to_string().into_bytes())
                .await
            {
                tracing::debug!("asking a node for the time: {e}");
            }
        }
        self.network_now()
    }

    async fn call(&self, destination: Destination, body: Vec<u8>) -> Result<Value, SwarmError> {
        let reply = self
            .transport
            .send(destination, Request::Storage(body))
            .await
            .map_err(|e| SwarmError::Unreachable(e.report().to_string()))?;
        let Response::Storage(reply) = reply else {
            return Err(SwarmError::Malformed("not a storage answer".into()));
        };
        if reply.status != 200 {
            if reply.status == 406 {
                // A request's time out of the node's window (or another refusal of the
                // request's terms): learn the network's time again before the next one.
                self.time_known.store(false, Ordering::Relaxed);
            }
            let body = match &reply.body {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            return Err(SwarmError::Status {
                status: reply.status,
                body,
            });
        }
        let json = reply
            .json()
            .ok_or_else(|| SwarmError::Malformed("the answer is not JSON".into()))?;
        if let Some(t) = json.get("t").and_then(Value::as_u64) {
            // `t` is when the node answered (after a long-poll's wait, not when it was asked):
            // compared with when the answer got here, off by the way back only.
            let local = i64::try_from(self.clock.now_ms()).unwrap_or(i64::MAX);
            let node = i64::try_from(t).unwrap_or(i64::MAX);
            self.offset_ms
                .store(node.saturating_sub(local), Ordering::Relaxed);
            self.time_known.store(true, Ordering::Relaxed);
        }
        Ok(json)
    }

    fn node_key(node: &str) -> Result<umbra_crypto::Ed25519PublicKey, SwarmError> {
        node.parse()
            .map_err(|_| SwarmError::Malformed("node id".into()))
    }
}

impl SwarmApi for OnionSwarm {
    fn network_offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    fn nodes<'a>(&'a self, owner: &'a SessionId) -> BoxFuture<'a, Result<Vec<NodeId>, SwarmError>> {
        Box::pin(async move {
            self.transport
                .ensure_ready()
                .await
                .map_err(|e| SwarmError::Unreachable(e.report().to_string()))?;
            Ok(self
                .transport
                .swarm_of(&AccountId::from(*owner))
                .iter()
                .map(|n| hex::encode(n.pubkey_ed25519))
                .collect())
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
            let body = store_request(owner, namespace, data, timestamp_ms, ttl_ms);
            let json = self
                .call(Destination::Swarm(AccountId::from(*owner)), body)
                .await?;
            parse_store(&json)
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
            let destination = Destination::Swarm(AccountId::from(identity.session_id()));
            let body = store_own_request(
                identity,
                namespace,
                data,
                timestamp_ms,
                ttl_ms,
                self.signing_now(&destination).await,
                obsolete,
            );
            let json = self.call(destination, body).await?;
            parse_store_own(&json)
        })
    }

    fn retrieve<'a>(
        &'a self,
        identity: &'a Identity,
        namespace: i32,
        node: &'a str,
        last_hash: Option<&'a MessageHash>,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        self.retrieve_wait(identity, namespace, node, last_hash, 0)
    }

    fn retrieve_wait<'a>(
        &'a self,
        identity: &'a Identity,
        namespace: i32,
        node: &'a str,
        last_hash: Option<&'a MessageHash>,
        wait_ms: u64,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        Box::pin(async move {
            let key = Self::node_key(node)?;
            let destination = Destination::Node(key);
            let now = self.signing_now(&destination).await;
            let body = long_poll_request(identity, namespace, last_hash, now, wait_ms);
            let json = self.call(destination, body).await?;
            parse_retrieve(&json)
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
            // Signed now (±60 s of the node), stored with the message's own time.
            let destination = Destination::Swarm(group.id());
            let body = group_store_request(
                group,
                auth,
                namespace,
                data,
                timestamp_ms,
                ttl_ms,
                self.signing_now(&destination).await,
            );
            let json = self.call(destination, body).await?;
            parse_store(&json)
        })
    }

    fn group_retrieve<'a>(
        &'a self,
        group: &'a GroupPublic,
        auth: GroupAuth<'a>,
        namespace: i32,
        last_hash: Option<&'a MessageHash>,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        self.group_retrieve_wait(group, auth, namespace, last_hash, 0)
    }

    fn group_retrieve_wait<'a>(
        &'a self,
        group: &'a GroupPublic,
        auth: GroupAuth<'a>,
        namespace: i32,
        last_hash: Option<&'a MessageHash>,
        wait_ms: u64,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        Box::pin(async move {
            let destination = Destination::Swarm(group.id());
            let now = self.signing_now(&destination).await;
            let body = group_retrieve_request(group, auth, namespace, last_hash, now, wait_ms);
            let json = self.call(destination, body).await?;
            parse_retrieve(&json)
        })
    }

    fn group_delete<'a>(
        &'a self,
        admin: &'a GroupAdmin,
        hashes: &'a [MessageHash],
    ) -> BoxFuture<'a, Result<Vec<MessageHash>, SwarmError>> {
        Box::pin(async move {
            let json = self
                .call(
                    Destination::Swarm(admin.id()),
                    group_delete_request(admin, hashes),
                )
                .await?;
            Ok(parse_delete(&json))
        })
    }

    fn group_expire<'a>(
        &'a self,
        admin: &'a GroupAdmin,
        hashes: &'a [MessageHash],
        expiry_ms: u64,
    ) -> BoxFuture<'a, Result<(), SwarmError>> {
        Box::pin(async move {
            let body = group_expire_request(admin, hashes, expiry_ms);
            self.call(Destination::Swarm(admin.id()), body)
                .await
                .map(drop)
        })
    }

    fn group_revoke<'a>(
        &'a self,
        admin: &'a GroupAdmin,
        tokens: &'a [Token],
        revoke: bool,
    ) -> BoxFuture<'a, Result<(), SwarmError>> {
        Box::pin(async move {
            let destination = Destination::Swarm(admin.id());
            let now = self.signing_now(&destination).await;
            let body = group_revoke_request(admin, tokens, revoke, now)?;
            self.call(destination, body).await.map(drop)
        })
    }

    fn delete<'a>(
        &'a self,
        identity: &'a Identity,
        hashes: &'a [MessageHash],
    ) -> BoxFuture<'a, Result<Vec<MessageHash>, SwarmError>> {
        Box::pin(async move {
            let owner = AccountId::from(identity.session_id());
            let json = self
                .call(Destination::Swarm(owner), delete_request(identity, hashes))
                .await?;
            Ok(parse_delete(&json))
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
            let owner = AccountId::from(identity.session_id());
            self.call(
                Destination::Swarm(owner),
                expire_request(identity, hashes, expiry_ms, shorten),
            )
            .await
            .map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use umbra_crypto::SeededRandom;

    /// A well-formed message hash of 43 `c`s.
    fn h(c: char) -> MessageHash {
        c.to_string().repeat(43).parse().unwrap()
    }

    fn sig_ok(identity: &Identity, req: &[u8], signed: &[u8]) -> Value {
        let v: Value = serde_json::from_slice(req).unwrap();
        let p = &v["params"];
        assert_eq!(p["pubkey"], identity.session_id().to_hex());
        assert_eq!(p["pubkey_ed25519"], hex::encode(identity.ed25519_public()));
        let sig = STANDARD.decode(p["signature"].as_str().unwrap()).unwrap();
        umbra_crypto::sign::verify_slices(identity.ed25519_public().as_bytes(), signed, &sig)
            .unwrap();
        v
    }

    #[test]
    fn requests_carry_the_exact_signatures() {
        let id = Identity::generate(&mut SeededRandom::new(1));
        let r = retrieve_request(&id, 0, Some(&h('h')), 1_700_000_000_000);
        let v = sig_ok(&id, &r, b"retrieve1700000000000");
        assert_eq!(v["method"], "retrieve");
        assert_eq!(v["params"]["last_hash"], h('h').as_str());
        assert!(v["params"].get("namespace").is_none());

        let (a, b) = (h('a'), h('b'));
        let hashes = vec![a, b];
        let v = sig_ok(
            &id,
            &delete_request(&id, &hashes),
            format!("delete{a}{b}").as_bytes(),
        );
        assert_eq!(v["params"]["messages"], json!([a.as_str(), b.as_str()]));

        let v = sig_ok(
            &id,
            &expire_request(&id, &hashes, 1_700_000_000_000, true),
            format!("expireshorten1700000000000{a}{b}").as_bytes(),
        );
        assert_eq!(v["params"]["shorten"], true);
        assert_eq!(v["params"]["expiry"], 1_700_000_000_000u64);

        let s: Value =
            serde_json::from_slice(&store_request(&id.session_id(), 0, b"xyz", 5, DEFAULT_TTL))
                .unwrap();
        assert_eq!(s["params"]["data"], STANDARD.encode(b"xyz"));
        assert!(s["params"].get("signature").is_none());
    }

    #[test]
    fn group_requests_carry_the_group_or_subaccount_signature() {
        let admin = GroupAdmin::from_seed(&[5; 32]);
        let member = Identity::from_seed(&[6; 32]);
        let group = *admin.public();
        let req = group_store_request(
            &group,
            GroupAuth::Admin(&admin),
            11,
            b"x",
            1_600_000_000_000,
            20_000,
            1_700_000_000_000,
        );
        let v: Value = serde_json::from_slice(&req).unwrap();
        let p = &v["params"];
        assert_eq!(p["pubkey"], group.id().to_hex());
        assert_eq!(p["timestamp"], 1_600_000_000_000_u64);
        assert_eq!(p["sig_timestamp"], 1_700_000_000_000_u64);
        assert!(p["pubkey"].as_str().unwrap().starts_with("03"));
        let sig = STANDARD.decode(p["signature"].as_str().unwrap()).unwrap();
        let sig = umbra_crypto::Signature::from_slice(&sig).unwrap();
        assert!(group.verify(b"store111700000000000", &sig));

        let auth = admin.member_auth(
            &member.session_id(),
            umbra_groups::Flags::member(true, false),
        );
        let sub = umbra_groups::Subaccount::verify(&auth, &member, &group, 0).unwrap();
        let req = group_retrieve_request(
            &group,
            GroupAuth::Member(&sub),
            12,
            Some(&h('h')),
            1_700_000_000_000,
            0,
        );
        let v: Value = serde_json::from_slice(&req).unwrap();
        let p = &v["params"];
        assert_eq!(p["subaccount"], sub.token().to_base64());
        assert_eq!(p["last_hash"], h('h').as_str());
        assert!(
            p.get("umbra_wait_ms").is_none(),
            "a plain retrieve asks no wait"
        );
        // The wait is outside the signed bytes, as for one's own swarm.
        let waiting = group_retrieve_request(
            &group,
            GroupAuth::Member(&sub),
            12,
            Some(&h('h')),
            1_700_000_000_000,
            15_000,
        );
        let w: Value = serde_json::from_slice(&waiting).unwrap();
        assert_eq!(w["params"]["umbra_wait_ms"], 15_000);
        assert_eq!(w["params"]["subaccount"], p["subaccount"]);
        let sig = STANDARD.decode(p["signature"].as_str().unwrap()).unwrap();
        let sig = umbra_crypto::Signature::from_slice(&sig).unwrap();
        assert!(
            umbra_crypto::sign::verify(&sub.token().signer(), b"retrieve121700000000000", &sig)
                .is_ok()
        );
    }

    #[test]
    fn own_stores_are_signed_and_delete_in_the_same_sequence() {
        let id = Identity::generate(&mut SeededRandom::new(2));
        let obsolete = vec![h('1'), h('2')];
        let req = store_own_request(&id, 3, b"cfg", 5, 10_000, 1_700_000_000_000, &obsolete);
        let v: Value = serde_json::from_slice(&req).unwrap();
        assert_eq!(v["method"], "sequence");
        let reqs = v["params"]["requests"].as_array().unwrap();
        assert_eq!(reqs.len(), 2);
        let store = json!({"method": "store", "params": reqs[0]["params"].clone()});
        sig_ok(&id, store.to_string().as_bytes(), b"store31700000000000");
        assert_eq!(reqs[0]["params"]["namespace"], 3);
        assert_eq!(reqs[0]["params"]["data"], STANDARD.encode(b"cfg"));
        let delete = json!({"method": "delete", "params": reqs[1]["params"].clone()});
        sig_ok(
            &id,
            delete.to_string().as_bytes(),
            format!("delete{}{}", h('1'), h('2')).as_bytes(),
        );
        let alone = store_own_request(&id, 3, b"cfg", 5, 10_000, 1_700_000_000_000, &[]);
        let v: Value = serde_json::from_slice(&alone).unwrap();
        assert_eq!(v["params"]["requests"].as_array().unwrap().len(), 1);

        let ok = json!({"results": [{"code": 200, "body": {"hash": h('H'), "swarm": {}}},
            {"code": 404, "body": "gone"}]});
        assert_eq!(parse_store_own(&ok).unwrap().hash, h('H'));
        let refused =
            json!({"results": [{"code": 401, "body": "store signature verification failed"}]});
        assert!(matches!(
            parse_store_own(&refused),
            Err(SwarmError::Status { status: 401, .. })
        ));
        assert!(parse_store_own(&json!({})).is_err());
    }

    const DEFAULT_TTL: u64 = super::super::DEFAULT_TTL_MS;

    /// Through the transport's in-memory onion network: the swarm is computed locally, and
    /// the destination node reads exactly the signed JSON built above.
    #[cfg(feature = "test-support")]
    #[tokio::test]
    async fn requests_reach_a_swarm_member_through_onion_paths() {
        use umbra_net::ManualClock;
        use umbra_net::testing::{FakeNetwork, distinct_subnets};

        const T0: u64 = 1_764_000_000_000;
        let net = FakeNetwork::new(7, &distinct_subnets(12), 2);
        let clock = Arc::new(ManualClock::new(T0));
        let transport = net
            .transport(umbra_net::TransportConfig::default(), clock.clone(), 11)
            .unwrap();
        let swarm = OnionSwarm::new(transport.clone(), clock.clone());
        let id = Identity::generate(&mut SeededRandom::new(3));
        let me = id.session_id();

        let nodes = swarm.nodes(&me).await.unwrap();
        let members: Vec<String> = transport
            .swarm_of(&AccountId::from(me))
            .iter()
            .map(|n| hex::encode(n.pubkey_ed25519))
            .collect();
        assert!(!nodes.is_empty());
        assert_eq!(nodes, members);

        net.clear_traces();
        // The fake node echoes the method instead of a retrieve answer: the adapter says so.
        // (It first asks the node for the time with `info`: the echo has none.)
        let err = swarm.retrieve(&id, 0, &nodes[0], None).await.unwrap_err();
        assert!(matches!(err, SwarmError::Malformed(_)), "{err:?}");
        let method = |t: &umbra_net::testing::Trace| {
            let body = t.destination_body.as_deref()?;
            serde_json::from_slice::<Value>(body).ok()?["method"]
                .as_str()
                .map(str::to_owned)
        };
        let traces = net.traces();
        let methods: Vec<String> = traces.iter().filter_map(method).collect();
        assert_eq!(methods, ["info", "retrieve"]);
        let trace = traces
            .into_iter()
            .find(|t| method(t).as_deref() == Some("retrieve"))
            .unwrap();
        let (dest, _) = trace.hops.last().unwrap().clone();
        assert_eq!(hex::encode(dest), nodes[0], "sent to the node asked for");
        let body = trace.destination_body.unwrap();
        let ts = serde_json::from_slice::<Value>(&body).unwrap()["params"]["timestamp"]
            .as_u64()
            .unwrap();
        assert!(
            (T0..=clock.now_ms()).contains(&ts),
            "signed with the clock's time"
        );
        sig_ok(&id, &body, format!("retrieve{ts}").as_bytes());

        net.clear_traces();
        let err = swarm
            .store(&me, 0, b"abc", T0, DEFAULT_TTL)
            .await
            .unwrap_err();
        assert!(matches!(err, SwarmError::Malformed(_)), "{err:?}");
        let body = net
            .traces()
            .into_iter()
            .find_map(|t| t.destination_body)
            .unwrap();
        assert_eq!(body, store_request(&me, 0, b"abc", T0, DEFAULT_TTL));
    }

    #[test]
    fn answers_are_read_as_the_spec_shows_them() {
        let page = parse_retrieve(&json!({"messages": [{"data": STANDARD.encode(b"hi"),
            "expiration": 9, "hash": h('H'), "timestamp": 7}], "more": true, "t": 1}))
        .unwrap();
        assert_eq!(page.messages[0].hash, h('H'));
        assert_eq!(page.messages[0].data, b"hi");
        assert_eq!(page.messages[0].expiry_ms, 9);
        assert!(page.more);
        let ack = parse_store(&json!({"swarm": {"n1": {"hash": h('H'), "already": true},
            "n2": {"failed": true, "timeout": true}}, "hash": h('H')}))
        .unwrap();
        assert_eq!(
            ack,
            StoreAck {
                hash: h('H'),
                already: true
            }
        );
        assert!(parse_store(&json!({"swarm": {"n2": {"failed": true}}})).is_err());
        assert_eq!(
            parse_delete(
                &json!({"swarm": {"a": {"deleted": [h('x'), h('y')]}, "b": {"deleted": [h('x')]}}})
            ),
            vec![h('x'), h('y')]
        );
    }

    #[test]
    fn a_malformed_hash_from_a_node_is_refused_where_it_arrives() {
        let short = "A".repeat(42);
        let err = parse_retrieve(&json!({"messages": [{"data": "", "hash": short}]})).unwrap_err();
        assert!(
            matches!(&err, SwarmError::Malformed(m) if m.contains("malformed message hash")
                && m.contains("42 characters")),
            "{err}"
        );
        let err = parse_store(&json!({"hash": "not/a=hash", "swarm": {}})).unwrap_err();
        assert!(
            matches!(&err, SwarmError::Malformed(m) if m.starts_with("store answer: malformed message hash")),
            "{err}"
        );
        let ok = json!({"results": [{"code": 200, "body": {"hash": "H", "swarm": {}}}]});
        assert!(matches!(
            parse_store_own(&ok),
            Err(SwarmError::Malformed(_))
        ));
        // A delete answer naming something that is no hash names nothing we asked to delete.
        assert_eq!(
            parse_delete(&json!({"swarm": {"a": {"deleted": ["x", h('y')]}}})),
            vec![h('y')]
        );
    }
}
