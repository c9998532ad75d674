//! `retrieve` (`storage-rpc.md` §5.2; `storage-rpc-addendum.md` A1, A2), with the long-poll of
//! [`crate::longpoll`].

use std::time::Duration;
use umbra_report::ErrorExt as _;

use serde_json::{Value, json};
use umbra_crypto::MessageHash;
use umbra_store::{AccountId, Namespace, RetrieveDirection, RetrieveLimits};

use super::{
    Exec, SIG_WINDOW, SignedBy, blocking, check_recent, check_swarm, concat, is_noauth_retrieve,
    is_unrevocable, ns_str, require_signature,
};
use crate::rpc::auth::{Auth, PERM_READ, Requirement};
use crate::rpc::params::{PResult, Params, b64, choose_pubkey, is_base64, load_pk, require};
use crate::rpc::{Ctx, RpcError, RpcResponse};

pub(crate) struct RetrieveReq {
    owner: AccountId,
    ns: Namespace,
    auth: Option<(Auth, i64)>,
    last_hash: Option<MessageHash>,
    max_count: i64,
    max_size: i64,
    /// `reverse_direction` (`storage-rpc-addendum.md` A2): newest first, paging backwards.
    reverse: bool,
    /// `umbra_wait_ms`, capped (`crate::longpoll`); 0: answer at once.
    wait_ms: u64,
}

pub(crate) fn parse_retrieve(p: Params<'_>) -> PResult<RetrieveReq> {
    let last_hash_alt = p.string("lastHash")?;
    let last_hash = p.string("last_hash")?;
    let max_count = p.int("max_count")?;
    let max_size = p.int("max_size")?;
    let ns = p.namespace("namespace")?;
    let pubkey_alt = p.string("pubKey")?;
    let pubkey = p.string("pubkey")?;
    let pk_ed = p.string("pubkey_ed25519")?;
    // storage-rpc-addendum.md A2: a boolean, not part of the signed message.
    let reverse = p.boolean("reverse_direction")?;
    let sig = p.string("signature")?;
    let subacc = p.string("subaccount")?;
    let subacc_sig = p.string("subaccount_sig")?;
    let ts = p.timestamp("timestamp")?;
    let wait_ms = p.uint("umbra_wait_ms")?.unwrap_or(0);

    let pk = choose_pubkey(pubkey, pubkey_alt)?;
    // storage-rpc.md §5.2 authentication rule: any of `pubkey_ed25519`, `signature`,
    // `timestamp`, or an explicit namespace that is not no-auth, makes the signature required.
    let needs_auth = pk_ed.is_some()
        || sig.is_some()
        || ts.is_some()
        || ns.is_some_and(|n| !is_noauth_retrieve(n));
    let (owner, auth) = if needs_auth {
        let (owner, auth) = SignedBy {
            pubkey: pk,
            pubkey_ed25519: pk_ed,
            signature: sig,
            subaccount: subacc,
            subaccount_sig: subacc_sig,
        }
        .load()?;
        let ts = require("timestamp", ts)?;
        (owner, Some((auth, ts)))
    } else {
        (load_pk(pk)?, None)
    };
    // §10: `Cannot specify both 'last_hash' and 'lastHash'`, then the two last_hash texts.
    if last_hash.is_some() && last_hash_alt.is_some() {
        return Err(RpcError::invalid(
            "Cannot specify both 'last_hash' and 'lastHash'".into(),
        ));
    }
    let last_hash = match last_hash.or(last_hash_alt) {
        None | Some("") => None,
        Some(h) if h.len() == 43 => {
            if !is_base64(h) {
                return Err(RpcError::invalid("Invalid last_hash: not base64".into()));
            }
            // Base64 with `=` inside is not a message hash: like an unknown one, it starts
            // the page at the beginning.
            h.parse().ok()
        }
        Some(_) => {
            return Err(RpcError::invalid(
                "Invalid last_hash: expected base64 (43 chars)".into(),
            ));
        }
    };
    Ok(RetrieveReq {
        owner,
        ns: ns.unwrap_or(0),
        auth,
        last_hash,
        max_count: max_count.unwrap_or(0),
        max_size: max_size.unwrap_or(0),
        reverse: reverse.unwrap_or(false),
        wait_ms: wait_ms.min(crate::longpoll::MAX_WAIT_MS),
    })
}

/// `05ab…xyz`: enough to recognise an account in an error, not to identify it (§5.2).
fn obfuscate(owner: &AccountId) -> String {
    let h = hex::encode(owner);
    format!("{}...{}", &h[..4], &h[h.len() - 3..])
}

/// `retrieve`; with `may_wait` (a client's top-level request) an authenticated retrieve that
/// asks for it long-polls (`crate::longpoll`).
pub(crate) async fn exec_retrieve(ctx: &Ctx<'_>, r: RetrieveReq, may_wait: bool) -> Exec {
    check_swarm(ctx, &r.owner)?;
    match &r.auth {
        Some((auth, ts)) => {
            // storage-rpc.md §5.2: 406 outside ±60 s, 401 when the signature fails.
            check_recent(
                ctx,
                *ts,
                SIG_WINDOW,
                "retrieve timestamp too far from current time",
            )?;
            // §3.2: "retrieve" || ns || timestamp.
            let msg = concat(&[
                b"retrieve",
                ns_str(r.ns).as_bytes(),
                ts.to_string().as_bytes(),
            ]);
            // §9: Read; a revoked subaccount still reads an unrevocable namespace (§4).
            let req = Requirement {
                perms: PERM_READ,
                allow_revoked: is_unrevocable(r.ns),
            };
            require_signature(
                ctx,
                &r.owner,
                auth,
                req,
                &msg,
                "retrieve signature verification failed",
            )
            .await?;
        }
        None => {
            // §5.2: no auth field at all and a namespace that needs one: 401.
            if !is_noauth_retrieve(r.ns) {
                return Err(RpcResponse::text(
                    401,
                    "retrieve: request signature required",
                ));
            }
        }
    }
    let store = &ctx.state.store;
    let owner = r.owner;
    // storage-rpc-addendum.md A1: a 7 800 000-byte cap even with only `max_count`, every
    // message counted as 100 + len(hash) + ⌊len(data)·4/3⌋ whatever the request's encoding.
    let limits = RetrieveLimits::from_request(r.max_count, r.max_size);
    let direction = if r.reverse {
        RetrieveDirection::Reverse
    } else {
        RetrieveDirection::Forward
    };
    let fetch = |now: i64| {
        let (store, ns, last_hash) = (store.clone(), r.ns, r.last_hash);
        async move {
            blocking(move || {
                store.retrieve_in(&owner, ns, last_hash.as_ref(), limits, direction, now)
            })
            .await
            .map_err(|e| {
                tracing::warn!("retrieve failed: {}", e.report());
                // storage-rpc.md §5.2, §10: the database-failure text.
                RpcResponse::text(
                    500,
                    format!(
                        "Internal Server Error. Could not retrieve messages for {}",
                        obfuscate(&r.owner)
                    ),
                )
            })
        }
    };
    let clock = &ctx.state.clock;
    let started = clock.instant();
    let now = || {
        let waited = clock.instant().saturating_duration_since(started);
        ctx.now + i64::try_from(waited.as_millis()).unwrap_or(i64::MAX)
    };
    // Taken before the first look, so that a message committed in between is not missed.
    let mut arrival = store.arrival(&owner);
    let mut page = fetch(ctx.now).await?;
    let wait = may_wait && r.wait_ms > 0 && r.auth.is_some() && page.messages.is_empty();
    if let Some(_slot) = wait.then(|| ctx.state.long_poll.enter()).flatten() {
        let deadline = tokio::time::Instant::from_std(started) + Duration::from_millis(r.wait_ms);
        while page.messages.is_empty() && ctx.state.long_poll.wait(arrival, deadline).await {
            arrival = store.arrival(&owner);
            page = fetch(now()).await?;
        }
    }
    // §5.2: exactly these keys; the field is `expiration`, not `expiry`.
    let messages: Vec<Value> = page
        .messages
        .iter()
        .map(|m| {
            json!({
                "data": b64(&m.data),
                "expiration": m.expiry_ms,
                "hash": m.hash,
                "timestamp": m.timestamp_ms,
            })
        })
        .collect();
    Ok(RpcResponse::json(
        200,
        ctx.stamp_at(json!({"messages": messages, "more": page.more}), now()),
    ))
}
