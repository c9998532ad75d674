//! Every storage RPC method, one file per family (`storage-rpc.md` §5), in the manner of
//! mini-redis's `cmd/`: each method is a `…Req` struct with a `parse_…` that loads it from
//! `params` (in the reference's field order, so the first error reported is the same) and an
//! `exec_…` that applies it. [`super::Request`] is the enum that dispatches.
//!
//! | file | methods |
//! | --- | --- |
//! | [`store`] | `store` (§5.1) |
//! | [`retrieve`] | `retrieve` (§5.2, addendum A1, A2) |
//! | [`delete`] | `delete`, `delete_all`, `delete_before` (§5.3–5.5) |
//! | [`expire`] | `expire`, `expire_all`, `get_expiries` (§5.6–5.8, addendum A3) |
//! | [`subaccounts`] | `revoke_subaccount`, `unrevoke_subaccount`, `revoked_subaccounts` (§5.9–5.10, addendum A5) |
//! | [`info`] | `get_swarm`, `info`, `oxend_request` (§5.11–5.13) |
//! | [`meta`] | `batch`, `sequence`, `ifelse` (§5.14–5.15, addendum A4) |
//!
//! What every authenticated write shares lives here, so a method file says only what is
//! particular to it: [`SignedBy`] loads the account and signature fields, [`check_swarm`] answers
//! 421, [`check_recent`] the ±60 s rule, [`require_signature`] checks the client's signature, and
//! [`recursive`] applies the write to the store, fans it out to the swarm and builds the reply of
//! per-node signed results (§7), whose bytes [`signed_bytes`] lays out.

mod delete;
mod expire;
mod info;
mod meta;
mod retrieve;
mod store;
mod subaccounts;

use std::future::Future;
use umbra_report::ErrorExt as _;

use serde_json::{Map, Value, json};
use umbra_crypto::MessageHash;
use umbra_store::{AccountId, ByNamespace, Namespace, NamespaceSel, StoreError, is_public_outbox};

use super::auth::{
    Auth, PERM_DELETE, Requirement, load_pk_signature, load_subaccount, verify_request,
};
use super::params::{PResult, Params, b64, require};
use super::{Ctx, Origin, RpcError, RpcResponse};
use crate::replicate::{MemberResults, RecursiveRequest};

pub(crate) use delete::{
    DeleteAllReq, DeleteBeforeReq, DeleteReq, exec_delete, exec_delete_all, exec_delete_before,
    parse_delete, parse_delete_all, parse_delete_before,
};
pub(crate) use expire::{
    ExpireAllReq, ExpireReq, GetExpiriesReq, exec_expire, exec_expire_all, exec_get_expiries,
    parse_expire, parse_expire_all, parse_get_expiries,
};
pub(crate) use info::{
    OxendReq, exec_get_swarm, exec_info, exec_oxend, parse_get_swarm, parse_oxend,
};
pub(crate) use meta::{IfElseReq, exec_batch, exec_ifelse, parse_batch, parse_ifelse};
pub(crate) use retrieve::{RetrieveReq, exec_retrieve, parse_retrieve};
pub(crate) use store::{StoreReq, exec_store, parse_store};
pub(crate) use subaccounts::{
    RevokeReq, RevokedListReq, exec_revoke, exec_revoked_list, parse_revoke, parse_revoked_list,
};

/// What an executor returns: the reply, or an early reply (error or 421).
pub(crate) type Exec = Result<RpcResponse, RpcResponse>;

// Limits: `storage-rpc.md` §8.
const SECOND: i64 = 1000;
const DAY: i64 = 24 * 3600 * SECOND;
/// Signature timestamp tolerance (§3.2, §8).
const SIG_WINDOW: i64 = 60 * SECOND;
/// Tolerance on forwarded `delete_all`/`expire_all` (§3.2, §8).
const FORWARDED_WINDOW: i64 = 70 * SECOND;

/// The namespace as it appears in signed strings: empty for 0 (`storage-rpc.md` §3.2).
fn ns_str(ns: Namespace) -> String {
    if ns == 0 {
        String::new()
    } else {
        ns.to_string()
    }
}

/// [`ns_str`], or `all` where a method allows it (§3.2).
fn ns_sel_str(sel: NamespaceSel) -> String {
    match sel {
        NamespaceSel::One(n) => ns_str(n),
        NamespaceSel::All => "all".to_string(),
    }
}

/// `−(100n + 11)`: revoked subaccounts may still retrieve here (`storage-rpc.md` §4, §3.1).
fn is_unrevocable(ns: Namespace) -> bool {
    let ns = i32::from(ns);
    ns < 0 && (-ns - 11) % 100 == 0
}

/// Namespaces readable without a signature (§4): legacy closed groups and public outboxes.
fn is_noauth_retrieve(ns: Namespace) -> bool {
    ns == -10 || is_public_outbox(ns)
}

/// `part_0 || part_1 || …`: a signed message with no list in it.
fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `head_0 || … || item_0 || item_1 || …`: the layout of every signed message that ends in a
/// list of hashes, expiries or tokens (client messages `storage-rpc.md` §3.2, node messages §7),
/// with nothing between the items.
fn signed_bytes<I>(head: &[&[u8]], items: I) -> Vec<u8>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut m = head.concat();
    for item in items {
        m.extend_from_slice(item.as_ref());
    }
    m
}

/// A non-empty list of well-formed hashes, parsed (`storage-rpc.md` §5.3, §5.6; texts §10).
/// A `MessageHash` keeps the characters it was given, so signatures over the parsed list
/// cover exactly the bytes the client signed.
fn parse_hashes(hashes: &[String]) -> PResult<Vec<MessageHash>> {
    if hashes.is_empty() {
        return Err(RpcError::invalid(
            "messages does not contain any message hashes".into(),
        ));
    }
    hashes
        .iter()
        .map(|h| {
            h.parse()
                .map_err(|_| RpcError::invalid(format!("invalid message hash: {h}")))
        })
        .collect()
}

/// `deleted`/`updated` as the reply shows it: a list, or a dict by namespace for `"all"`
/// (`storage-rpc.md` §5.4, §5.7).
fn by_ns_json(sel: NamespaceSel, v: &ByNamespace) -> Value {
    match sel {
        NamespaceSel::One(n) => json!(v.namespace(n)),
        NamespaceSel::All => Value::Object(
            v.0.iter()
                .map(|(ns, hashes)| (ns.to_string(), json!(hashes)))
                .collect(),
        ),
    }
}

/// A node's entry for a write across namespaces (`delete_all`, `delete_before`, `expire_all`):
/// `{<key>: hashes as [`by_ns_json`] shows them, "signature"}`, the signature over
/// `PUBKEY_HEX || value || hashes (sorted, across namespaces for "all")` (`storage-rpc.md` §7).
fn by_ns_entry(
    ctx: &Ctx<'_>,
    key: &str,
    owner: &AccountId,
    value: &str,
    sel: NamespaceSel,
    hashes: &ByNamespace,
) -> Value {
    let m = signed_bytes(
        &[hex::encode(owner).as_bytes(), value.as_bytes()],
        hashes.all_sorted().iter().map(MessageHash::as_str),
    );
    let mut entry = Map::new();
    entry.insert(key.into(), by_ns_json(sel, hashes));
    entry.insert("signature".into(), json!(node_sig(ctx, &m)));
    Value::Object(entry)
}

/// A write across namespaces: `delete_all` (`value` = `timestamp`), `delete_before` (`before`),
/// `expire_all` (`expiry`) (`storage-rpc.md` §5.4, §5.5, §5.7).
pub(crate) struct NamespaceReq {
    owner: AccountId,
    auth: Auth,
    ns: NamespaceSel,
    value: i64,
    raw: Value,
}

impl NamespaceReq {
    /// Reads `namespace` (default 0, or `"all"`), the account fields and `value_field`, in the
    /// reference's (alphabetical) order, so `before`/`expiry` come before `namespace` and
    /// `timestamp` after `subaccount_sig`.
    fn parse(p: Params<'_>, value_field: &str) -> PResult<NamespaceReq> {
        let value_first = value_field < "namespace";
        let first = if value_first {
            p.timestamp(value_field)?
        } else {
            None
        };
        let ns = p.namespace_var("namespace")?;
        let signed_by = SignedBy::read(p)?;
        let last = if value_first {
            None
        } else {
            p.timestamp(value_field)?
        };
        let (owner, auth) = signed_by.load()?;
        let value = require(value_field, first.or(last))?;
        Ok(NamespaceReq {
            owner,
            auth,
            ns: ns.unwrap_or(NamespaceSel::One(0)),
            value,
            raw: Value::Object(p.0.clone()),
        })
    }

    /// The rest once the method's time rule has passed: the client's signature over
    /// `method || ns || value` (§3.2, `ns` may be `all`) with the Delete permission (§9), else
    /// `401 <method> signature verification failed` (§10); then `write`, recursive (§7), each
    /// node's entry `{<key>: hashes, "signature"}` made by [`by_ns_entry`].
    async fn apply<W, F>(self, ctx: &Ctx<'_>, method: &'static str, key: &str, write: W) -> Exec
    where
        W: FnOnce(AccountId, NamespaceSel, i64) -> F,
        F: Future<Output = Result<ByNamespace, StoreError>>,
    {
        let r = self;
        let value = r.value.to_string();
        let msg = concat(&[
            method.as_bytes(),
            ns_sel_str(r.ns).as_bytes(),
            value.as_bytes(),
        ]);
        require_signature(
            ctx,
            &r.owner,
            &r.auth,
            Requirement::perms(PERM_DELETE),
            &msg,
            format!("{method} signature verification failed"),
        )
        .await?;
        let write = || write(r.owner, r.ns, r.value);
        let entry = |hashes: ByNamespace| by_ns_entry(ctx, key, &r.owner, &value, r.ns, &hashes);
        Ok(recursive(ctx, method, r.owner, r.raw, Map::new(), write, entry).await)
    }
}

/// `500 request failed` (`storage-rpc.md` §10: an unexpected failure).
fn server_error() -> RpcResponse {
    RpcResponse::text(500, "request failed")
}

/// Runs a store read on the blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(StoreError::WriterGone { op: "read" }))
}

/// 421 with the account's swarm (`storage-rpc.md` §5, §11), or 503 when no swarm is known at
/// all, unless the account is ours.
fn check_swarm(ctx: &Ctx<'_>, owner: &AccountId) -> Result<(), RpcResponse> {
    let view = ctx.state.swarm.get();
    if !view.has_swarms() {
        return Err(RpcResponse::text(
            503,
            "Service node is not ready: no swarm information yet\n",
        ));
    }
    if view.is_ours(owner) {
        return Ok(());
    }
    Err(RpcResponse::json(
        421,
        ctx.stamp(crate::swarm::swarm_json(&view, owner)),
    ))
}

/// The time rule of `storage-rpc.md` §3.2: `406 <too_far>` (§10) when `ts` is more than
/// `window` from the node's time.
fn check_recent(
    ctx: &Ctx<'_>,
    ts: i64,
    window: i64,
    too_far: impl Into<String>,
) -> Result<(), RpcResponse> {
    if ts.abs_diff(ctx.now) > window.unsigned_abs() {
        return Err(RpcResponse::text(406, too_far));
    }
    Ok(())
}

/// The time window of `delete_all`/`expire_all`: ±60 s, ±70 s on a forwarded copy (§3.2).
fn window(ctx: &Ctx<'_>) -> i64 {
    if ctx.origin == Origin::Peer {
        FORWARDED_WINDOW
    } else {
        SIG_WINDOW
    }
}

/// The account and authentication fields (`storage-rpc.md` §3.1, §9), as `parse_…` read them.
struct SignedBy<'a> {
    pubkey: Option<&'a str>,
    pubkey_ed25519: Option<&'a str>,
    signature: Option<&'a str>,
    subaccount: Option<&'a str>,
    subaccount_sig: Option<&'a str>,
}

impl<'a> SignedBy<'a> {
    /// Reads the five fields in the reference's order (`pubkey`, `pubkey_ed25519`, `signature`,
    /// `subaccount`, `subaccount_sig`), for methods with no other field among them.
    fn read(p: Params<'a>) -> PResult<SignedBy<'a>> {
        Ok(SignedBy::read_around(p, || Ok(()))?.0)
    }

    /// [`read`](Self::read) for a method with a field of its own that sorts between
    /// `pubkey_ed25519` and `signature` (`required`, `shorten`): `between` reads it in its turn.
    fn read_around<T>(
        p: Params<'a>,
        between: impl FnOnce() -> PResult<T>,
    ) -> PResult<(SignedBy<'a>, T)> {
        let pubkey = p.string("pubkey")?;
        let pubkey_ed25519 = p.string("pubkey_ed25519")?;
        let own = between()?;
        let signed_by = SignedBy {
            pubkey,
            pubkey_ed25519,
            signature: p.string("signature")?,
            subaccount: p.string("subaccount")?,
            subaccount_sig: p.string("subaccount_sig")?,
        };
        Ok((signed_by, own))
    }

    /// The account and its (required) signature, then the optional subaccount.
    fn load(self) -> PResult<(AccountId, Auth)> {
        let (owner, mut auth) =
            load_pk_signature(self.pubkey, self.pubkey_ed25519, self.signature)?;
        auth.subaccount = load_subaccount(self.subaccount, self.subaccount_sig)?;
        Ok((owner, auth))
    }
}

/// Verifies, mapping a database failure to `500 request failed`.
async fn authenticate(
    ctx: &Ctx<'_>,
    owner: &AccountId,
    auth: &Auth,
    req: Requirement,
    msg: &[u8],
) -> Result<bool, RpcResponse> {
    verify_request(
        &ctx.state.store,
        &ctx.state.key_matches,
        owner,
        auth,
        req,
        msg,
    )
    .await
    .map_err(|e| {
        tracing::warn!("checking a subaccount revocation failed: {}", e.report());
        server_error()
    })
}

/// The signature check of `storage-rpc.md` §3.1 over `msg` (§3.2) with the permissions `req`
/// (§9): `401 <failed>` (§10) when it fails. Made by the entry node only: a forwarded copy
/// ([`Origin::Peer`]) trusts the check its sender made.
async fn require_signature(
    ctx: &Ctx<'_>,
    owner: &AccountId,
    auth: &Auth,
    req: Requirement,
    msg: &[u8],
    failed: impl Into<String>,
) -> Result<(), RpcResponse> {
    // A forwarded copy reaches this node only from an active member of its own swarm,
    // authenticated by its TLS key against the signed list (umbra-replica), and that member
    // made this very check before forwarding (§7). Making it again would protect nothing: a
    // listed member can already hand this node messages, tombstones and expiries without any
    // client signature through anti-entropy, which copies stored state, not requests. And it
    // was the largest single cost of a member copy (≈ 58 µs of ≈ 238, BENCHMARKS.md).
    if ctx.origin == Origin::Peer {
        return Ok(());
    }
    if authenticate(ctx, owner, auth, req, msg).await? {
        Ok(())
    } else {
        Err(RpcResponse::text(401, failed))
    }
}

/// The failure entry of this node in a swarm reply (`storage-rpc.md` §5.1, §7).
fn failure_entry(e: &StoreError) -> Value {
    tracing::warn!("write failed: {}", e.report());
    json!({"failed": true, "query_failure": true, "reason": e.report().to_string()})
}

/// The node's Ed25519 signature over `msg`, base64 (`storage-rpc.md` §7).
fn node_sig(ctx: &Ctx<'_>, msg: &[u8]) -> String {
    b64(ctx.state.identity.sign(msg).as_bytes())
}

/// A recursive write (`storage-rpc.md` §7) after its checks: applies `write` to the store here
/// while the replicator forwards the request to the other members (a peer's copy is only
/// applied), turns this node's outcome into its entry with `entry` (a failure into
/// [`failure_entry`]), and builds the reply with [`swarm_reply`].
async fn recursive<T, W, F>(
    ctx: &Ctx<'_>,
    method: &'static str,
    owner: AccountId,
    raw: Value,
    extra: Map<String, Value>,
    write: W,
    entry: impl FnOnce(T) -> Value,
) -> RpcResponse
where
    W: FnOnce() -> F,
    F: Future<Output = Result<T, StoreError>>,
{
    let mut busy = false;
    let apply = async {
        match write().await {
            Ok(outcome) => entry(outcome),
            Err(e) => {
                busy = is_busy(&e);
                failure_entry(&e)
            }
        }
    };
    let (own, others) = fan_out(ctx, method, owner, raw, apply).await;
    swarm_reply(ctx, own, others, extra, busy)
}

/// Applies a recursive request locally while the replicator forwards it to the other members.
async fn fan_out<F>(
    ctx: &Ctx<'_>,
    method: &'static str,
    owner: AccountId,
    raw: Value,
    apply: F,
) -> (Value, MemberResults)
where
    F: Future<Output = Value>,
{
    if ctx.origin == Origin::Peer {
        return (apply.await, MemberResults::new());
    }
    let forward = ctx.state.replicator.replicate(RecursiveRequest {
        method,
        params: raw,
        owner,
    });
    tokio::join!(apply, forward)
}

/// Builds the reply of a recursive method (`storage-rpc.md` §7): this node's result alone for a
/// peer; for a client `{"swarm": {...}, "t", "hf"}` plus `extra` keys, 500 if every member
/// failed (503 when the only failure is this node's full write queue).
fn swarm_reply(
    ctx: &Ctx<'_>,
    own: Value,
    mut others: MemberResults,
    extra: Map<String, Value>,
    busy: bool,
) -> RpcResponse {
    if ctx.origin == Origin::Peer {
        let status = if own.get("failed").is_some() {
            500
        } else {
            200
        };
        return RpcResponse::json(status, own);
    }
    others.insert(hex::encode(ctx.state.identity.ed25519_public()), own);
    let all_failed = others.values().all(|v| v.get("failed").is_some());
    if all_failed && busy && others.len() == 1 {
        return RpcResponse::text(503, "Server busy, try again later");
    }
    let mut body = Map::new();
    body.insert("swarm".into(), Value::Object(others.into_iter().collect()));
    body.extend(extra);
    let status = if all_failed { 500 } else { 200 };
    RpcResponse::json(status, ctx.stamp(Value::Object(body)))
}

fn is_busy(e: &StoreError) -> bool {
    matches!(e, StoreError::QueueFull { .. })
}
