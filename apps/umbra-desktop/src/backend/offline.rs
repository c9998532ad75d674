//! The swarm access of a profile with no usable network: every request fails as
//! unreachable, so the conversations stay readable and new messages wait in the outbox.
//!
//! The CLI has the same type (`apps/umbra/src/client/context.rs`); it belongs in the
//! messenger crate beside `SwarmApi`.

use umbra_crypto::{Identity, MessageHash, SessionId};

use crate::client::{BoxFuture, NodeId, RetrievedPage, StoreAck, SwarmApi, SwarmError};

/// Refuses every request with the reason given.
pub(crate) struct Offline(pub(crate) &'static str);

impl Offline {
    fn refuse<'a, T: Send + 'a>(&self) -> BoxFuture<'a, Result<T, SwarmError>> {
        Box::pin(std::future::ready(Err(SwarmError::Unreachable(
            self.0.into(),
        ))))
    }
}

impl SwarmApi for Offline {
    fn nodes<'a>(&'a self, _: &'a SessionId) -> BoxFuture<'a, Result<Vec<NodeId>, SwarmError>> {
        self.refuse()
    }

    fn store<'a>(
        &'a self,
        _: &'a SessionId,
        _: i32,
        _: &'a [u8],
        _: u64,
        _: u64,
    ) -> BoxFuture<'a, Result<StoreAck, SwarmError>> {
        self.refuse()
    }

    fn retrieve<'a>(
        &'a self,
        _: &'a Identity,
        _: i32,
        _: &'a str,
        _: Option<&'a MessageHash>,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        self.refuse()
    }

    fn delete<'a>(
        &'a self,
        _: &'a Identity,
        _: &'a [MessageHash],
    ) -> BoxFuture<'a, Result<Vec<MessageHash>, SwarmError>> {
        self.refuse()
    }

    fn expire<'a>(
        &'a self,
        _: &'a Identity,
        _: &'a [MessageHash],
        _: u64,
        _: bool,
    ) -> BoxFuture<'a, Result<(), SwarmError>> {
        self.refuse()
    }
}
