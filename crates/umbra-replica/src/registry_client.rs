//! Following the registry over gRPC: the signed node list, registration and heartbeats.
//!
//! [`RegistryClient`] speaks the registry's gRPC node API (`proto/umbra/registry/v1/
//! registry.proto`; the payloads are [`umbra_nodelist::api`]'s, converted by
//! [`umbra_nodelist::proto`]): `Register`, `Heartbeat` and `Leave` (signed by the node, each
//! with a deadline), and `WatchNodeList`, a server stream that sends the current signed list
//! and then every newer one the moment the registry signs it. Every list goes through a
//! [`ListVerifier`] holding the pinned key(s): bad signatures, tampered lists and older epochs
//! are refused. Each accepted list replaces the [`ViewHandle`]'s view; when the registry is
//! down nothing changes, so the node keeps working with the last list it verified.
//!
//! [`run_membership`] is the background task: it follows the stream (reopening it with
//! exponential backoff while the registry is down; each new stream starts with the current
//! list, so nothing signed meanwhile is missed), and beside it registers (retrying with
//! backoff), heartbeats at the interval the registry asks for, re-registers when the registry
//! forgot the node, and leaves on stop.
//!
//! ## Why the channel to the registry is plain HTTP/2
//!
//! The trust anchor is the registry's signature, not the connection: a list is believed only
//! when it verifies against the key pinned in the node's configuration, and never when it is
//! older than one already accepted (the epoch is persisted across restarts), so whoever sits
//! on the path cannot forge, tamper with or roll back a list. The node's requests are signed
//! by the node, name the registry's key and carry a fresh timestamp the registry checks for
//! replay, so they cannot be forged or reused elsewhere either. What TLS would add here is
//! hiding which node talks to the registry (node addresses are public in the list anyway) and
//! making it harder to withhold new lists; a withheld list is noticed when a heartbeat answer
//! announces a newer epoch ([`RegistryClient::heard_epochs`]: the node then stops claiming
//! accounts, and the stream is reopened after `resubscribe_after`).
//!
//! Every epoch a registry answer announces is also published on [`RegistryClient::heard_epochs`]
//! as soon as it is heard, before the list itself arrives: a node serving an older list knows
//! it from then on (and answers as a node not responsible for any account until the list
//! arrives, `storage-rpc.md` §11).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use umbra_report::ErrorExt as _;

use tokio::sync::{Notify, watch};
use tonic::transport::{Channel, Endpoint};
use umbra_clock::Clock;
use umbra_crypto::{Ed25519PublicKey, Identity};
use umbra_nodelist::SwarmView;
use umbra_nodelist::api::{
    Announcement, HeartbeatRequest, LeaveRequest, MAX_REQUEST_BYTES, NodeStatus, RegisterRequest,
};
use umbra_nodelist::list::{ListVerifier, SignedNodeList, TrustPolicy};
use umbra_nodelist::proto::MAX_LIST_MESSAGE_BYTES;
use umbra_proto::umbra::registry::v1 as pb;
use umbra_proto::umbra::registry::v1::registry_client::RegistryClient as Grpc;

use crate::ReplicaError;
use crate::view::ViewHandle;

/// Interval of the HTTP/2 keep-alive pings on the registry connection, and how long an answer
/// may take: a registry that vanished without closing the connection is noticed within both.
pub const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(20), Duration::from_secs(10));

/// A client of one registry that verifies every list it accepts and publishes it as a
/// [`SwarmView`].
pub struct RegistryClient {
    grpc: Grpc<Channel>,
    timeout: Duration,
    registry_pubkey: Ed25519PublicKey,
    our_key: Ed25519PublicKey,
    policy: TrustPolicy,
    verifier: Mutex<ListVerifier>,
    view: ViewHandle,
    heard: watch::Sender<u64>,
    resubscribe: Notify,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient").finish_non_exhaustive()
    }
}

/// The error of a failed gRPC call: the registry's refusal, or a transport failure.
fn call_error(what: &'static str, status: &tonic::Status) -> ReplicaError {
    use tonic::Code;
    let reason = match status.code() {
        Code::Unavailable => "registry unreachable",
        Code::DeadlineExceeded => "timed out",
        Code::Cancelled => "cancelled",
        _ => {
            return ReplicaError::RegistryRefused {
                what,
                code: status.code(),
                message: crate::client::truncate_reason(status.message()),
            };
        }
    };
    ReplicaError::Registry {
        what,
        reason: reason.into(),
    }
}

fn timed_out(what: &'static str) -> ReplicaError {
    ReplicaError::Registry {
        what,
        reason: "timed out".into(),
    }
}

impl RegistryClient {
    /// A client of the registry's gRPC API at `grpc_url` (e.g. `http://10.0.0.1:22001`) whose
    /// lists must satisfy `policy`; requests are addressed to `registry_pubkey` (the key
    /// registration signatures name). Accepted lists are published to `view` as seen by the
    /// node `our_key`. `timeout` bounds connecting and every unary call. The connection is
    /// made on first use (and again after it broke), so the registry may be down now.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`ReplicaError::HttpClient`] if `grpc_url` is not a usable URL.
    pub fn new(
        grpc_url: &str,
        policy: TrustPolicy,
        registry_pubkey: Ed25519PublicKey,
        our_key: Ed25519PublicKey,
        view: ViewHandle,
        timeout: Duration,
    ) -> Result<Self, ReplicaError> {
        let endpoint = Endpoint::from_shared(grpc_url.to_owned())
            .map_err(|e| ReplicaError::HttpClient {
                what: "registry gRPC",
                reason: e.to_string(),
            })?
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE.0)
            .keep_alive_timeout(KEEPALIVE.1)
            .keep_alive_while_idle(true);
        let grpc = Grpc::new(endpoint.connect_lazy())
            .max_decoding_message_size(MAX_LIST_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_REQUEST_BYTES);
        Ok(RegistryClient {
            grpc,
            timeout,
            registry_pubkey,
            our_key,
            verifier: Mutex::new(ListVerifier::new(policy.clone())),
            policy,
            view,
            heard: watch::Sender::new(0),
            resubscribe: Notify::new(),
        })
    }

    /// Remembers (e.g. from disk across a restart) that `epoch` was already seen, so that no
    /// older list is accepted.
    pub fn with_seen_epoch(self, epoch: u64) -> Self {
        RegistryClient {
            verifier: Mutex::new(ListVerifier::with_seen_epoch(self.policy.clone(), epoch)),
            ..self
        }
    }

    /// The view handle lists are published to.
    pub fn view(&self) -> &ViewHandle {
        &self.view
    }

    /// The newest list epoch a registry answer announced (0 before the first), changing as
    /// soon as a heartbeat or registration answer announces a newer one, before that list
    /// arrives on the stream.
    pub fn heard_epochs(&self) -> watch::Receiver<u64> {
        self.heard.subscribe()
    }

    /// Records that the registry announced a list of `epoch`. Returns whether it is newer than
    /// every epoch heard of before.
    pub fn announced(&self, epoch: u64) -> bool {
        self.heard.send_if_modified(|e| {
            let newer = epoch > *e;
            if newer {
                *e = epoch;
            }
            newer
        })
    }

    /// The newest list accepted (persist it to serve with it after a restart while the
    /// registry is down).
    pub fn current_list(&self) -> Option<SignedNodeList> {
        self.verifier
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current()
            .cloned()
    }

    /// The newest epoch accepted (persist it to refuse older lists after a restart).
    pub fn seen_epoch(&self) -> Option<u64> {
        self.verifier
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen_epoch()
    }

    async fn open_stream(&self) -> Result<tonic::Streaming<pb::SignedNodeList>, ReplicaError> {
        const WHAT: &str = "node list stream";
        let mut grpc = self.grpc.clone();
        let call = grpc.watch_node_list(pb::WatchNodeListRequest {});
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| timed_out(WHAT))?
            .map(tonic::Response::into_inner)
            .map_err(|s| call_error(WHAT, &s))
    }

    /// Converts, verifies and publishes one list received on the stream.
    fn receive(&self, message: &pb::SignedNodeList) -> Result<bool, ReplicaError> {
        let signed = SignedNodeList::try_from(message).map_err(ReplicaError::ListRefused)?;
        self.accept(signed)
    }

    /// Fetches the current list once (the first message of a new `WatchNodeList` stream),
    /// verifies it and, if it is newer, publishes it. Returns whether the view changed.
    ///
    /// # Errors
    /// [`ReplicaError::Registry`] / [`ReplicaError::RegistryRefused`] when the registry cannot
    /// be reached or ends the stream at once, [`ReplicaError::ListRefused`] when the list does
    /// not verify or is older than one already accepted; the current view is unchanged in
    /// every error case.
    pub async fn refresh(&self) -> Result<bool, ReplicaError> {
        const WHAT: &str = "node list";
        let mut stream = self.open_stream().await?;
        let first = tokio::time::timeout(self.timeout, stream.message())
            .await
            .map_err(|_| timed_out(WHAT))?
            .map_err(|s| call_error(WHAT, &s))?
            .ok_or_else(|| ReplicaError::Registry {
                what: WHAT,
                reason: "the stream ended before the first list".into(),
            })?;
        self.receive(&first)
    }

    /// Follows the `WatchNodeList` stream: accepts every list it brings until the stream ends,
    /// fails, `stop` turns `true` or a resubscription is asked for. Refused lists are logged
    /// and skipped (the current view stays). Returns how many lists arrived.
    ///
    /// # Errors
    /// Opening or reading the stream failed ([`ReplicaError::Registry`],
    /// [`ReplicaError::RegistryRefused`]).
    pub async fn follow(&self, stop: &mut watch::Receiver<bool>) -> Result<u64, ReplicaError> {
        const WHAT: &str = "node list stream";
        let mut stream = self.open_stream().await?;
        let mut received = 0u64;
        loop {
            let message = tokio::select! {
                m = stream.message() => m.map_err(|s| call_error(WHAT, &s))?,
                () = self.resubscribe.notified() => return Ok(received),
                _ = stop.wait_for(|s| *s) => return Ok(received),
            };
            let Some(message) = message else {
                return Ok(received);
            };
            received += 1;
            // Not `announced` first: an epoch counts as heard only from a list that verifies
            // (a refused list must not make the node give up the list it serves by).
            if let Err(e) = self.receive(&message) {
                tracing::warn!("node list from the registry stream refused: {}", e.report());
            }
        }
    }

    /// Verifies a list obtained some other way (e.g. from disk or a peer) and publishes it if
    /// newer. Returns whether the view changed.
    ///
    /// # Errors
    /// [`ReplicaError::ListRefused`].
    pub fn accept(&self, signed: SignedNodeList) -> Result<bool, ReplicaError> {
        let view = {
            let mut v = self.verifier.lock().unwrap_or_else(|e| e.into_inner());
            let newer = v.accept(signed).map_err(ReplicaError::ListRefused)?;
            if !newer {
                return Ok(false);
            }
            match v.current() {
                Some(cur) => SwarmView::from_list(&cur.list, self.our_key),
                None => return Ok(false),
            }
        };
        let epoch = view.epoch();
        let changed = self.view.set(view);
        if changed {
            tracing::info!(epoch, "accepted a new registry node list");
        }
        Ok(changed)
    }

    /// Runs one unary call with the client's deadline (sent to the registry as `grpc-timeout`
    /// and enforced here too).
    async fn unary<Q, F>(
        &self,
        what: &'static str,
        message: Q,
        call: impl FnOnce(Grpc<Channel>, tonic::Request<Q>) -> F,
    ) -> Result<NodeStatus, ReplicaError>
    where
        F: Future<Output = Result<tonic::Response<pb::NodeStatus>, tonic::Status>>,
    {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        let answer = tokio::time::timeout(self.timeout, call(self.grpc.clone(), request))
            .await
            .map_err(|_| timed_out(what))?
            .map_err(|s| call_error(what, &s))?;
        Ok(NodeStatus::from(answer.get_ref()))
    }

    /// Registers (or re-registers) the node with its announcement.
    ///
    /// # Errors
    /// [`ReplicaError::RegistryRequest`], [`ReplicaError::Registry`],
    /// [`ReplicaError::RegistryRefused`].
    pub async fn register(
        &self,
        identity: &Identity,
        announcement: Announcement,
        now_ms: i64,
    ) -> Result<NodeStatus, ReplicaError> {
        let req = RegisterRequest::new(
            identity,
            &self.registry_pubkey,
            announcement,
            u64::try_from(now_ms).unwrap_or(0),
        )
        .map_err(|source| ReplicaError::RegistryRequest {
            what: "register",
            source,
        })?;
        self.unary(
            "register",
            pb::RegisterRequest::from(&req),
            |mut g, r| async move { g.register(r).await },
        )
        .await
    }

    /// Sends a heartbeat. [`ReplicaError::is_not_registered`] means the registry does not
    /// know the node: register again.
    ///
    /// # Errors
    /// [`ReplicaError::Registry`], [`ReplicaError::RegistryRefused`].
    pub async fn heartbeat(
        &self,
        identity: &Identity,
        now_ms: i64,
    ) -> Result<NodeStatus, ReplicaError> {
        let req = HeartbeatRequest::new(
            identity,
            &self.registry_pubkey,
            u64::try_from(now_ms).unwrap_or(0),
        );
        self.unary(
            "heartbeat",
            pb::HeartbeatRequest::from(&req),
            |mut g, r| async move { g.heartbeat(r).await },
        )
        .await
    }

    /// Tells the registry the node leaves now (clean shutdown).
    ///
    /// # Errors
    /// [`ReplicaError::Registry`], [`ReplicaError::RegistryRefused`].
    pub async fn leave(
        &self,
        identity: &Identity,
        now_ms: i64,
    ) -> Result<NodeStatus, ReplicaError> {
        let req = LeaveRequest::new(
            identity,
            &self.registry_pubkey,
            u64::try_from(now_ms).unwrap_or(0),
        );
        self.unary(
            "leave",
            pb::LeaveRequest::from(&req),
            |mut g, r| async move { g.leave(r).await },
        )
        .await
    }
}

/// Timing of [`run_membership`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipConfig {
    /// First wait before reopening the list stream or retrying a registration after a
    /// failure; it doubles at each further failure.
    pub retry_min: Duration,
    /// Longest wait between two attempts.
    pub retry_max: Duration,
    /// Heartbeat interval used until the registry tells its own.
    pub default_heartbeat: Duration,
    /// When heartbeat answers announce a newer list than the stream brought for this long,
    /// the stream is reopened (it may be stuck behind a broken path).
    pub resubscribe_after: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            retry_min: Duration::from_millis(250),
            retry_max: Duration::from_secs(30),
            default_heartbeat: Duration::from_secs(3),
            resubscribe_after: Duration::from_secs(30),
        }
    }
}

/// Exponential backoff between `min` and `max`.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(config: &MembershipConfig) -> Self {
        Self {
            min: config.retry_min,
            max: config.retry_max.max(config.retry_min),
            next: config.retry_min,
        }
    }

    /// The wait before the next attempt (doubling each time).
    fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Waits `wait` or until `stop` turns `true`; returns whether to stop.
async fn pause(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        _ = stop.wait_for(|s| *s) => return true,
    }
    *stop.borrow()
}

/// Keeps the `WatchNodeList` stream open until `stop`, reopening it with backoff.
async fn follow_lists(
    client: Arc<RegistryClient>,
    config: MembershipConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(&config);
    while !*stop.borrow() {
        let wait = match client.follow(&mut stop).await {
            Ok(0) => backoff.failed(),
            Ok(_) => {
                backoff.reset();
                backoff.failed()
            }
            Err(e) => {
                tracing::warn!("following the registry node list: {}", e.report());
                backoff.failed()
            }
        };
        if pause(wait, &mut stop).await {
            break;
        }
    }
}

/// Registers the node, heartbeats, follows the list stream, and leaves the registry when
/// `stop` turns `true` (or its sender is dropped). Spawn it as a background task.
pub async fn run_membership(
    client: Arc<RegistryClient>,
    identity: Arc<Identity>,
    announcement: Announcement,
    clock: Arc<dyn Clock>,
    config: MembershipConfig,
    stop: watch::Receiver<bool>,
) {
    let lists = follow_lists(client.clone(), config, stop.clone());
    let beats = heartbeats(client, identity, announcement, clock, config, stop);
    tokio::join!(lists, beats);
}

/// The register/heartbeat half of [`run_membership`].
async fn heartbeats(
    client: Arc<RegistryClient>,
    identity: Arc<Identity>,
    announcement: Announcement,
    clock: Arc<dyn Clock>,
    config: MembershipConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut registered = false;
    let mut heartbeat = config.default_heartbeat;
    let mut backoff = Backoff::new(&config);
    // Since when heartbeat answers announce a list the stream has not brought.
    let mut behind_since = None;
    loop {
        let now = clock.now_ms_i64();
        let result = if registered {
            client.heartbeat(&identity, now).await
        } else {
            client.register(&identity, announcement.clone(), now).await
        };
        let wait = match result {
            Ok(status) => {
                if !registered {
                    tracing::info!(active = status.active, "registered with the registry");
                }
                registered = true;
                backoff.reset();
                heartbeat = Duration::from_millis(status.heartbeat_interval_ms.clamp(100, 600_000));
                client.announced(status.epoch);
                if client.seen_epoch().is_none_or(|e| status.epoch > e) {
                    let since = *behind_since.get_or_insert_with(|| clock.instant());
                    if clock.since(since) >= config.resubscribe_after {
                        tracing::info!("the node list stream is behind the registry; reopening it");
                        client.resubscribe.notify_waiters();
                        behind_since = None;
                    }
                } else {
                    behind_since = None;
                }
                heartbeat
            }
            Err(e) if e.is_not_registered() => {
                tracing::info!("the registry forgot this node; registering again");
                registered = false;
                Duration::ZERO
            }
            Err(e) if registered => {
                tracing::warn!("registry heartbeat: {}", e.report());
                heartbeat.min(backoff.failed().max(config.retry_min))
            }
            Err(e) => {
                tracing::warn!("registry registration: {}", e.report());
                backoff.failed()
            }
        };
        if pause(wait, &mut stop).await {
            break;
        }
    }
    if registered && let Err(e) = client.leave(&identity, clock.now_ms_i64()).await {
        tracing::warn!("leaving the registry: {}", e.report());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(&MembershipConfig {
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_millis(500),
            ..MembershipConfig::default()
        });
        let waits: Vec<u128> = (0..5).map(|_| b.failed().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.failed(), Duration::from_millis(100));
    }
}
