//! Following the registry: the signed node list, registration and heartbeats.
//!
//! [`RegistryClient`] speaks the registry's HTTP API (described in the `umbra-registry` service's
//! docs; the types are [`umbra_nodelist::api`]): `GET /v1/nodelist` (verified with [`umbra_nodelist::list::ListVerifier`] against the pinned
//! key(s): bad signatures, tampered lists and older epochs are refused), `POST /v1/register`,
//! `/v1/heartbeat` and `/v1/leave` (signed by the node). Each accepted list replaces the
//! [`ViewHandle`]'s view; when the registry is down nothing changes, so the node keeps working
//! with the last list it verified.
//!
//! [`run_membership`] is the background task: register (retrying), heartbeat at the interval
//! the registry asks for, re-register when the registry forgot the node, fetch the list whenever
//! an answer announces a newer epoch and every `refresh_interval` anyway, and leave on stop.
//!
//! Every epoch a registry answer announces is also published on [`RegistryClient::heard_epochs`]
//! as soon as it is heard, before the list itself is fetched: a node serving an older list knows
//! it from then on (and answers as a node not responsible for any account until the list
//! arrives, `storage-rpc.md` §11).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use umbra_report::ErrorExt as _;

use serde::de::DeserializeOwned;
use tokio::sync::watch;
use umbra_crypto::{Ed25519PublicKey, Identity};
use umbra_nodelist::api::{
    Announcement, HeartbeatRequest, LeaveRequest, NodeStatus, RegisterRequest,
};
use umbra_nodelist::list::{ListVerifier, SignedNodeList, TrustPolicy};

use crate::view::ViewHandle;
use umbra_clock::Clock;
use umbra_nodelist::SwarmView;

use crate::ReplicaError;

/// Largest node list body read (bytes).
pub const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;
/// Largest answer to register/heartbeat/leave read (bytes).
const MAX_STATUS_BYTES: usize = 64 * 1024;

/// A client of one registry that verifies every list it accepts and publishes it as a
/// [`SwarmView`].
pub struct RegistryClient {
    base: String,
    http: reqwest::Client,
    registry_pubkey: Ed25519PublicKey,
    our_key: Ed25519PublicKey,
    policy: TrustPolicy,
    verifier: Mutex<ListVerifier>,
    view: ViewHandle,
    heard: watch::Sender<u64>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient").finish_non_exhaustive()
    }
}

fn transport(what: &'static str, e: &reqwest::Error) -> ReplicaError {
    ReplicaError::Registry {
        what,
        reason: if e.is_timeout() {
            "timed out".into()
        } else if e.is_connect() {
            "connection failed".into()
        } else {
            "request failed".into()
        },
    }
}

impl RegistryClient {
    /// A client of the registry at `base_url` (e.g. `http://10.0.0.1:22000`) whose lists must
    /// satisfy `policy`; requests are addressed to `registry_pubkey` (the key registration
    /// signatures name). Accepted lists are published to `view` as seen by the node `our_key`.
    ///
    /// # Errors
    /// [`ReplicaError::HttpClient`] if the HTTP client cannot be built.
    pub fn new(
        base_url: &str,
        policy: TrustPolicy,
        registry_pubkey: Ed25519PublicKey,
        our_key: Ed25519PublicKey,
        view: ViewHandle,
        timeout: Duration,
    ) -> Result<Self, ReplicaError> {
        crate::client::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ReplicaError::HttpClient {
                what: "registry",
                reason: e.to_string(),
            })?;
        Ok(RegistryClient {
            base: base_url.trim_end_matches('/').to_string(),
            http,
            registry_pubkey,
            our_key,
            verifier: Mutex::new(ListVerifier::new(policy.clone())),
            policy,
            view,
            heard: watch::Sender::new(0),
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
    /// soon as an answer announces a newer one, before that list is fetched.
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

    /// The newest epoch accepted (persist it to refuse older lists after a restart).
    pub fn seen_epoch(&self) -> Option<u64> {
        self.verifier
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen_epoch()
    }

    async fn read_body(
        what: &'static str,
        mut resp: reqwest::Response,
        max: usize,
    ) -> Result<Vec<u8>, ReplicaError> {
        if resp.content_length().is_some_and(|l| l > max as u64) {
            return Err(ReplicaError::Registry {
                what,
                reason: format!("answer larger than {max} bytes"),
            });
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport(what, &e))? {
            if buf.len() + chunk.len() > max {
                return Err(ReplicaError::Registry {
                    what,
                    reason: format!("answer larger than {max} bytes"),
                });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    }

    /// Fetches the node list, verifies it and, if it is newer, publishes it. Returns whether
    /// the view changed.
    ///
    /// # Errors
    /// [`ReplicaError::Registry`] / [`ReplicaError::RegistryStatus`] when the registry cannot be
    /// reached, [`ReplicaError::ListRefused`] when the list does not verify or is older than
    /// one already accepted; the current view is unchanged in every error case.
    pub async fn refresh(&self) -> Result<bool, ReplicaError> {
        const WHAT: &str = "nodelist";
        let resp = self
            .http
            .get(format!("{}/v1/nodelist", self.base))
            .send()
            .await
            .map_err(|e| transport(WHAT, &e))?;
        let status = resp.status().as_u16();
        let body = Self::read_body(WHAT, resp, MAX_LIST_BYTES).await?;
        if status != 200 {
            return Err(ReplicaError::RegistryStatus {
                what: WHAT,
                status,
                message: crate::client::truncate_reason(&String::from_utf8_lossy(&body)),
            });
        }
        let signed =
            SignedNodeList::from_json(&body, MAX_LIST_BYTES).map_err(ReplicaError::ListRefused)?;
        self.accept(signed)
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

    async fn post<T: serde::Serialize, R: DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
        body: &T,
    ) -> Result<R, ReplicaError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .map_err(|e| transport(what, &e))?;
        let status = resp.status().as_u16();
        let bytes = Self::read_body(what, resp, MAX_STATUS_BYTES).await?;
        if status != 200 {
            let message = serde_json::from_slice::<umbra_nodelist::api::ErrorBody>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ReplicaError::RegistryStatus {
                what,
                status,
                message: crate::client::truncate_reason(&message),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ReplicaError::Registry {
            what,
            reason: format!("unparsable answer: {e}"),
        })
    }

    /// Registers (or re-registers) the node with its announcement.
    ///
    /// # Errors
    /// [`ReplicaError::RegistryRequest`], [`ReplicaError::Registry`],
    /// [`ReplicaError::RegistryStatus`].
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
        self.post("register", "/v1/register", &req).await
    }

    /// Sends a heartbeat. A `404` [`ReplicaError::RegistryStatus`] means the registry does not
    /// know the node: register again.
    ///
    /// # Errors
    /// [`ReplicaError::Registry`], [`ReplicaError::RegistryStatus`].
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
        self.post("heartbeat", "/v1/heartbeat", &req).await
    }

    /// Tells the registry the node leaves now (clean shutdown).
    ///
    /// # Errors
    /// [`ReplicaError::Registry`], [`ReplicaError::RegistryStatus`].
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
        self.post("leave", "/v1/leave", &req).await
    }

    /// Fetches the list if `status` announces a newer epoch than the one held.
    async fn follow(&self, status: &NodeStatus) {
        self.announced(status.epoch);
        if self.seen_epoch().is_none_or(|e| status.epoch > e)
            && let Err(e) = self.refresh().await
        {
            tracing::warn!("fetching the registry node list: {}", e.report());
        }
    }
}

/// Timing of [`run_membership`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipConfig {
    /// Fetch the list at least this often, even without a newer epoch announced.
    pub refresh_interval: Duration,
    /// Wait this long before retrying a failed registration.
    pub retry_interval: Duration,
    /// Heartbeat interval used until the registry tells its own.
    pub default_heartbeat: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            refresh_interval: Duration::from_secs(30),
            retry_interval: Duration::from_secs(5),
            default_heartbeat: Duration::from_secs(3),
        }
    }
}

/// Registers the node, heartbeats, follows the list, and leaves the registry when `stop` turns
/// `true` (or its sender is dropped). Spawn it as a background task.
pub async fn run_membership(
    client: Arc<RegistryClient>,
    identity: Arc<Identity>,
    announcement: Announcement,
    clock: Arc<dyn Clock>,
    config: MembershipConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut registered = false;
    let mut heartbeat = config.default_heartbeat;
    let mut last_refresh: Option<i64> = None;
    loop {
        let now = clock.now_ms_i64();
        let wait = if registered {
            match client.heartbeat(&identity, now).await {
                Ok(status) => {
                    heartbeat =
                        Duration::from_millis(status.heartbeat_interval_ms.clamp(100, 600_000));
                    client.follow(&status).await;
                    heartbeat
                }
                Err(ReplicaError::RegistryStatus { status: 404, .. }) => {
                    tracing::info!("the registry forgot this node; registering again");
                    registered = false;
                    Duration::ZERO
                }
                Err(e) => {
                    tracing::warn!("registry heartbeat: {}", e.report());
                    heartbeat
                }
            }
        } else {
            match client.register(&identity, announcement.clone(), now).await {
                Ok(status) => {
                    registered = true;
                    heartbeat =
                        Duration::from_millis(status.heartbeat_interval_ms.clamp(100, 600_000));
                    tracing::info!(active = status.active, "registered with the registry");
                    client.follow(&status).await;
                    heartbeat
                }
                Err(e) => {
                    tracing::warn!("registry registration: {}", e.report());
                    config.retry_interval
                }
            }
        };
        let now = clock.now_ms_i64();
        let refresh_ms = i64::try_from(config.refresh_interval.as_millis()).unwrap_or(i64::MAX);
        if last_refresh.is_none_or(|t| now.saturating_sub(t) >= refresh_ms) {
            last_refresh = Some(now);
            if let Err(e) = client.refresh().await {
                tracing::warn!("refreshing the registry node list: {}", e.report());
            }
        }
        let wait = wait.min(config.refresh_interval);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if registered && let Err(e) = client.leave(&identity, clock.now_ms_i64()).await {
        tracing::warn!("leaving the registry: {}", e.report());
    }
}
