//! A test hook, compiled only in debug builds (`cfg(debug_assertions)`; a release binary has
//! no trace of it and never reads the variable): `UMBRA_TEST_CRASH` makes the process die at
//! an exact step of a delivery, so that end-to-end tests can check that a send interrupted
//! there is neither lost nor delivered twice.
//!
//! ```text
//!  UMBRA_TEST_CRASH=before-store:N   abort right before the Nth `store` of this process starts
//!  UMBRA_TEST_CRASH=after-store:N    abort right after the Nth `store` was acknowledged by the
//!                                    swarm, before the messenger can record it
//! ```
//!
//! `umbra send` stores the recipient's copy first (store 1), then the sync copy in our own
//! swarm (store 2). The process dies with [`std::process::abort`], like `kill -9`: no
//! destructor runs, nothing is flushed. A store that fails is not "acknowledged": `after-store`
//! then lets the process go on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::anyhow;
use umbra_crypto::{Identity, MessageHash, SessionId};
use umbra_messenger::{NodeId, RetrievedPage, StoreAck, SwarmApi, SwarmError};
use umbra_net::BoxFuture;

/// The environment variable of the hook.
pub(crate) const CRASH_ENV: &str = "UMBRA_TEST_CRASH";

/// When the process dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Before the Nth store starts.
    BeforeStore(u64),
    /// After the Nth store was acknowledged.
    AfterStore(u64),
}

fn parse(value: &str) -> Option<Plan> {
    let (step, n) = value.trim().split_once(':')?;
    let n: u64 = n.parse().ok().filter(|n| *n >= 1)?;
    match step {
        "before-store" => Some(Plan::BeforeStore(n)),
        "after-store" => Some(Plan::AfterStore(n)),
        _ => None,
    }
}

/// `inner`, wrapped to abort as `UMBRA_TEST_CRASH` says (or `inner` itself when it is unset).
pub(crate) fn wrap(inner: Arc<dyn SwarmApi>) -> anyhow::Result<Arc<dyn SwarmApi>> {
    let Some(value) = std::env::var_os(CRASH_ENV) else {
        return Ok(inner);
    };
    let plan = value.to_str().and_then(parse).ok_or_else(|| {
        anyhow!("{CRASH_ENV} must be before-store:N or after-store:N with N >= 1 (a test hook of debug builds); unset it to run normally")
    })?;
    Ok(Arc::new(Crashing {
        inner,
        plan,
        stores: AtomicU64::new(0),
    }))
}

/// A [`SwarmApi`] that aborts the process at one store.
struct Crashing {
    inner: Arc<dyn SwarmApi>,
    plan: Plan,
    stores: AtomicU64,
}

impl SwarmApi for Crashing {
    fn nodes<'a>(&'a self, owner: &'a SessionId) -> BoxFuture<'a, Result<Vec<NodeId>, SwarmError>> {
        self.inner.nodes(owner)
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
            let n = self.stores.fetch_add(1, Ordering::SeqCst) + 1;
            if self.plan == Plan::BeforeStore(n) {
                std::process::abort();
            }
            let result = self
                .inner
                .store(owner, namespace, data, timestamp_ms, ttl_ms)
                .await;
            if result.is_ok() && self.plan == Plan::AfterStore(n) {
                std::process::abort();
            }
            result
        })
    }

    fn retrieve<'a>(
        &'a self,
        identity: &'a Identity,
        namespace: i32,
        node: &'a str,
        last_hash: Option<&'a MessageHash>,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        self.inner.retrieve(identity, namespace, node, last_hash)
    }

    fn retrieve_wait<'a>(
        &'a self,
        identity: &'a Identity,
        namespace: i32,
        node: &'a str,
        last_hash: Option<&'a MessageHash>,
        wait_ms: u64,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        self.inner
            .retrieve_wait(identity, namespace, node, last_hash, wait_ms)
    }

    fn delete<'a>(
        &'a self,
        identity: &'a Identity,
        hashes: &'a [MessageHash],
    ) -> BoxFuture<'a, Result<Vec<MessageHash>, SwarmError>> {
        self.inner.delete(identity, hashes)
    }

    fn expire<'a>(
        &'a self,
        identity: &'a Identity,
        hashes: &'a [MessageHash],
        expiry_ms: u64,
        shorten: bool,
    ) -> BoxFuture<'a, Result<(), SwarmError>> {
        self.inner.expire(identity, hashes, expiry_ms, shorten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_reads_two_steps_and_a_count() {
        assert_eq!(parse("before-store:1"), Some(Plan::BeforeStore(1)));
        assert_eq!(parse("after-store:2"), Some(Plan::AfterStore(2)));
        for bad in [
            "",
            "before-store",
            "before-store:0",
            "after-store:x",
            "during:1",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
