//! Onion requests at a node: `POST /onion_req/v2` (`onion-requests.md` §4).
//!
//! The pure work (peeling a layer, sealing replies and errors) is [`umbra_onion`]'s; this module
//! is the I/O around it:
//!
//! ```text
//!  predecessor ──POST /onion_req/v2──► handle_onion ── peel (X25519 + AEAD) ──┐
//!  (client or node)                        ▲                                  │
//!                                          │        Forward ──► registered? ──► pooled HTTPS (h2)
//!                                          │                    no: 502 Next node not found
//!                                          │        Destination ─► rpc::handle_rpc (as /storage_rpc/v1)
//!                                          │        Exit ──► POST protocol://host[:port]/oxen|loki/…/lsrpc
//!                                          └── reply: the next hop's [status, body] unchanged,
//!                                              or this node's answer sealed under its layer key
//! ```
//!
//! ## Node to node
//!
//! Session nodes relay over OMQ (`sn.onion_request`, a bencoded dict). Umbra nodes serve no
//! OMQ, so a relay POSTs the next node's frame ([`umbra_onion::Forward::to_frame`]: the same
//! `u32 ‖ ciphertext ‖ {"ephemeral_key", "enc_type", "hop_no"[, "umbra"]}` form a client sends
//! the edge) to the next node's own `/onion_req/v2` over HTTPS. One [`reqwest::Client`] per
//! node carries every forward: connections are pooled and, since node listeners offer `h2`
//! through ALPN, multiplexed over HTTP/2, so a hop costs no TLS handshake once the first
//! request to that node has opened the connection. Certificates are self-signed and not
//! verified (as Session clients do with nodes): the next node is authenticated by the layer
//! itself, which only the holder of the X25519 key the client chose can peel; TLS only hides the
//! hop from passive observers. The relay adds nothing identifying: no client address, no
//! header beyond what HTTP needs.
//!
//! Only nodes in the node's current [`SwarmView`] are forwarded to (looked up by Ed25519 key);
//! an unknown key is answered `502 Next node not found: <hex>`, a node that cannot be reached
//! `502 Next node is currently unreachable: <hex>`, a hop that does not answer in time
//! `504 Request time out`. Each hop waits a little less than the one before it
//! ([`hop_timeout`]: 30 s at the edge, 3 s less per hop, at least 5 s), so the hop nearest a
//! failure answers first. `hop_no` above [`umbra_onion::MAX_HOPS`] is refused (loops stop).
//!
//! ## Exit
//!
//! The exit POSTs the decrypted frame to `protocol://host[:port]target` (target rules checked
//! by [`umbra_onion::peel`]) with a 25 s timeout, no redirects and no proxy, through a separate
//! pooled client that does not verify certificates (the payload is end-to-end encrypted to the
//! server's X25519 key). [`ExitPolicy`]: a node with a public address refuses exits to
//! loopback, private, link-local and other non-global addresses (IP literals are checked
//! directly, names after resolution), so a client cannot use it to reach the node's own
//! network; a node advertising a loopback or private address (a devnet) allows them.
//!
//! A node without a node list yet answers every layer `503 Snode not ready: <its hex>`.
//!
//! ## Bounds
//!
//! Frames above [`umbra_onion::MAX_FRAME_LEN`] (or the configured body limit, whichever is
//! smaller) are refused with `400 Error parsing onion request: …` before the body is read when
//! `Content-Length` says so, as soon as the stream passes the limit otherwise. Replies from the
//! next hop or the server are read up to [`umbra_onion::MAX_REPLY_LEN`]. Layers above 64 KiB
//! are peeled on the blocking pool so a large frame does not stall other connections.
//!
//! ## Observability
//!
//! `umbra_node_onion_requests_total{outcome}` counts requests by [`Outcome`]. With the
//! `test-support` feature every node also keeps a bounded log of what it saw
//! (`OnionEvent`: the connection's peer address, its position, what it did, whether it saw
//! a storage request in plaintext), so tests can check that the edge never sees a request and
//! the destination never sees the client's connection. Logs name keys and addresses only
//! through [`umbra_crypto::Redacted`], at debug level.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use umbra_crypto::Ed25519PublicKey;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Request, StatusCode};
use umbra_crypto::keys::X25519KeyPair;
use umbra_crypto::{Identity, OsRandom, Redacted};
use umbra_onion::{
    ExitRequest, Forward, MAX_FRAME_LEN, MAX_REPLY_LEN, OnionError, Peeled, ReplyBody, Response,
    peel,
};

use crate::config::LimitsConfig;
use crate::node::NodeState;
use crate::swarm::SwarmHandle;
use crate::{RpcBody, handle_rpc};
use umbra_nodelist::SwarmView;
use umbra_nodelist::list::NodeEntry;

/// The route clients (and relaying nodes) POST onion requests to.
pub const ONION_PATH: &str = "/onion_req/v2";

/// How long the edge waits for the next hop (Session: 30 s).
const EDGE_HOP_TIMEOUT_SECS: u64 = 30;
/// How much less each further hop waits.
const HOP_TIMEOUT_STEP_SECS: u64 = 3;
/// The shortest wait for a next hop.
const MIN_HOP_TIMEOUT_SECS: u64 = 5;
/// The exit's timeout for the external server (Session: 25 s).
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(25);
/// Connection set-up (TCP + TLS) to a next node or a server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Layers up to this size are peeled inline; larger ones on the blocking pool.
const INLINE_PEEL_MAX: usize = 64 * 1024;
/// How many [`OnionEvent`]s a node keeps (test support).
#[cfg(feature = "test-support")]
const EVENT_LOG_LEN: usize = 4096;

/// How long a relay at position `hop_no` (1 = edge) waits for its next hop: 30 s at the edge,
/// 3 s less per hop further in, never below 5 s.
pub fn hop_timeout(hop_no: u8) -> Duration {
    let less = u64::from(hop_no.saturating_sub(1)) * HOP_TIMEOUT_STEP_SECS;
    Duration::from_secs(
        EDGE_HOP_TIMEOUT_SECS
            .saturating_sub(less)
            .max(MIN_HOP_TIMEOUT_SECS),
    )
}

/// What a node did with one onion request (the `outcome` label of the metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Outcome {
    /// Relayed to the next node; its answer was passed back.
    Forwarded,
    /// This node was the destination and ran the storage RPC.
    Destination,
    /// This node was the exit; the server answered.
    Exit,
    /// The frame could not be parsed (or was too large).
    Malformed,
    /// The layer did not decrypt.
    InvalidCiphertext,
    /// The layer decrypted but its content was malformed.
    InvalidJson,
    /// The exit's target, protocol or host was not allowed.
    InvalidUrl,
    /// `hop_no` above the limit.
    HopLimit,
    /// The next node is not a registered node.
    NextNodeNotFound,
    /// The next node could not be reached.
    NextNodeUnreachable,
    /// The next node did not answer in time.
    NextNodeTimeout,
    /// The next node's answer was malformed or too large.
    InvalidNextReply,
    /// The external server could not be reached (or is not allowed by the [`ExitPolicy`]).
    ServerUnreachable,
    /// The external server did not answer in time.
    ServerTimeout,
    /// Refused before peeling: too many requests in flight.
    Busy,
    /// Refused before peeling: the node has no node list yet.
    NotReady,
}

impl Outcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Destination => "destination",
            Outcome::Exit => "exit",
            Outcome::Malformed => "malformed",
            Outcome::InvalidCiphertext => "invalid_ciphertext",
            Outcome::InvalidJson => "invalid_json",
            Outcome::InvalidUrl => "invalid_url",
            Outcome::HopLimit => "hop_limit",
            Outcome::NextNodeNotFound => "next_node_not_found",
            Outcome::NextNodeUnreachable => "next_node_unreachable",
            Outcome::NextNodeTimeout => "next_node_timeout",
            Outcome::InvalidNextReply => "invalid_next_reply",
            Outcome::ServerUnreachable => "server_unreachable",
            Outcome::ServerTimeout => "server_timeout",
            Outcome::Busy => "busy",
            Outcome::NotReady => "not_ready",
        }
    }

    fn of_error(e: &OnionError) -> Outcome {
        match e {
            OnionError::InvalidCiphertext => Outcome::InvalidCiphertext,
            OnionError::InvalidJson => Outcome::InvalidJson,
            OnionError::InvalidUrl => Outcome::InvalidUrl,
            OnionError::HopLimitExceeded => Outcome::HopLimit,
            _ => Outcome::Malformed,
        }
    }
}

/// Which external servers an exit may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitPolicy {
    /// Only globally routable addresses (a node on the public network).
    PublicOnly,
    /// Any address, loopback and private ones included (a devnet or test network).
    AllowPrivate,
}

impl ExitPolicy {
    /// The policy for a node advertising `ip`: [`ExitPolicy::AllowPrivate`] for a loopback or
    /// private (RFC 1918) address, i.e. a devnet; [`ExitPolicy::PublicOnly`] otherwise
    /// (including the unconfigured `0.0.0.0`).
    pub fn for_node_ip(ip: Ipv4Addr) -> ExitPolicy {
        if ip.is_loopback() || ip.is_private() {
            ExitPolicy::AllowPrivate
        } else {
            ExitPolicy::PublicOnly
        }
    }

    /// Whether an exit may connect to `ip`.
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            ExitPolicy::AllowPrivate => true,
            ExitPolicy::PublicOnly => is_global(ip),
        }
    }
}

/// Conservative "globally routable" test (stable std has no `is_global`).
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10, shared address space
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15, benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_global(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

/// One request as a node saw it (test support: see the module docs).
#[cfg(feature = "test-support")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnionEvent {
    /// The address of the connection the request arrived on.
    pub peer: SocketAddr,
    /// This node's position, when the layer got as far as that.
    pub hop_no: Option<u8>,
    /// What the node did.
    pub outcome: Outcome,
    /// The next node's Ed25519 key, for a relay.
    pub next_node: Option<Ed25519PublicKey>,
    /// Whether this node saw a storage request in plaintext (only a destination does).
    pub saw_plaintext_rpc: bool,
    /// Whether the request arrived over HTTP/2 (relays multiplex forwards on one connection).
    pub http2: bool,
}

/// Which nodes a relay may forward to: every node of the current [`SwarmView`]'s list (also
/// those not placed in a swarm yet), indexed by Ed25519 key.
#[derive(Debug, Default)]
struct Directory {
    nodes: HashMap<Ed25519PublicKey, NodeEntry>,
    ips: HashSet<Ipv4Addr>,
}

impl Directory {
    fn of(view: &SwarmView) -> Directory {
        let mut d = Directory::default();
        for m in view.nodes().values() {
            d.ips.insert(m.public_ip);
            d.nodes.insert(m.pubkey_ed25519, m.clone());
        }
        d
    }
}

/// A node's onion-request machinery: its X25519 key, the pooled clients for forwards and
/// exits, the node directory cache and the counters. Held in [`NodeState::onion`].
pub struct OnionService {
    key: Arc<X25519KeyPair>,
    exit_policy: ExitPolicy,
    relay: Result<reqwest::Client, String>,
    exit: Result<reqwest::Client, String>,
    directory: Mutex<Option<(Arc<SwarmView>, Arc<Directory>)>>,
    outcomes: Mutex<BTreeMap<Outcome, u64>>,
    #[cfg(feature = "test-support")]
    events: Mutex<std::collections::VecDeque<OnionEvent>>,
}

impl std::fmt::Debug for OnionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnionService")
            .field("exit_policy", &self.exit_policy)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl OnionService {
    /// The service of a node with this identity. Building the HTTP clients cannot fail in
    /// practice; if it did, forwards and exits answer "unreachable" and a warning is logged.
    pub fn new(identity: &Identity, exit_policy: ExitPolicy) -> OnionService {
        let relay = relay_client().map_err(|e| {
            tracing::warn!("onion relay client unavailable: {e}");
            e
        });
        let exit = exit_client(exit_policy).map_err(|e| {
            tracing::warn!("onion exit client unavailable: {e}");
            e
        });
        OnionService {
            key: Arc::new(identity.x25519_keypair()),
            exit_policy,
            relay,
            exit,
            directory: Mutex::new(None),
            outcomes: Mutex::new(BTreeMap::new()),
            #[cfg(feature = "test-support")]
            events: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// The exit policy.
    pub fn exit_policy(&self) -> ExitPolicy {
        self.exit_policy
    }

    fn directory(&self, swarm: &SwarmHandle) -> Arc<Directory> {
        let view = swarm.get();
        let mut cache = lock(&self.directory);
        if let Some((v, d)) = cache.as_ref()
            && Arc::ptr_eq(v, &view)
        {
            return d.clone();
        }
        let d = Arc::new(Directory::of(&view));
        *cache = Some((view, d.clone()));
        d
    }

    /// The registered node with this Ed25519 key, if the node knows it.
    pub fn lookup(&self, swarm: &SwarmHandle, ed25519: &Ed25519PublicKey) -> Option<NodeEntry> {
        self.directory(swarm).nodes.get(ed25519).cloned()
    }

    /// Whether `ip` is the address of a registered node (relays are not rate-limited per IP
    /// on the onion route: they carry many clients' requests).
    pub fn is_node_ip(&self, swarm: &SwarmHandle, ip: Ipv4Addr) -> bool {
        self.directory(swarm).ips.contains(&ip)
    }

    /// Counts one request with this outcome.
    pub fn count(&self, outcome: Outcome) {
        *lock(&self.outcomes).entry(outcome).or_insert(0) += 1;
    }

    /// How many requests ended with `outcome`.
    pub fn outcome_count(&self, outcome: Outcome) -> u64 {
        lock(&self.outcomes).get(&outcome).copied().unwrap_or(0)
    }

    /// Appends `umbra_node_onion_requests_total{outcome}` in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("# HELP umbra_node_onion_requests_total Onion requests by outcome.\n");
        out.push_str("# TYPE umbra_node_onion_requests_total counter\n");
        for (o, n) in lock(&self.outcomes).iter() {
            let _ = writeln!(
                out,
                "umbra_node_onion_requests_total{{outcome=\"{}\"}} {n}",
                o.as_str()
            );
        }
    }

    /// What this node saw, oldest first (at most the last 4096 requests).
    #[cfg(feature = "test-support")]
    pub fn events(&self) -> Vec<OnionEvent> {
        lock(&self.events).iter().cloned().collect()
    }

    /// Forgets the event log.
    #[cfg(feature = "test-support")]
    pub fn clear_events(&self) {
        lock(&self.events).clear();
    }

    #[cfg(feature = "test-support")]
    fn record(&self, ev: OnionEvent) {
        let mut log = lock(&self.events);
        if log.len() >= EVENT_LOG_LEN {
            log.pop_front();
        }
        log.push_back(ev);
    }
}

/// What handling one layer produced, before it is counted and logged.
struct Handled {
    response: Response,
    outcome: Outcome,
    hop_no: Option<u8>,
    next_node: Option<Ed25519PublicKey>,
}

/// Handles one onion request (the body of `POST /onion_req/v2`) that arrived on a connection
/// from `peer`: peel, then forward, execute or proxy. Never panics; every failure is the
/// spec's status and body (sealed under the layer key when the client asked for it).
pub async fn handle_onion(state: &NodeState, peer: SocketAddr, frame: Bytes) -> Response {
    handle_layer(state, peer, false, frame).await
}

async fn handle_layer(state: &NodeState, peer: SocketAddr, http2: bool, frame: Bytes) -> Response {
    let svc = &state.onion;
    if !state.swarm.get().has_swarms() {
        // No node list yet (e.g. the registry has not answered): nothing to relay to, and a
        // destination could not tell whether an account is its own.
        svc.count(Outcome::NotReady);
        return OnionError::HopNotReady(state.identity.ed25519_public()).plain_response();
    }
    let peeled = if frame.len() <= INLINE_PEEL_MAX {
        peel(&svc.key, &frame)
    } else {
        let key = svc.key.clone();
        match tokio::task::spawn_blocking(move || peel(&key, &frame)).await {
            Ok(p) => p,
            // The peel task cannot panic on input; if the pool is gone we are shutting down.
            Err(_) => {
                return OnionError::ServerBusy.plain_response();
            }
        }
    };
    let h = match peeled {
        Err(e) => Handled {
            response: e.response(&mut OsRandom),
            outcome: Outcome::of_error(e.error()),
            hop_no: e.replier().map(|r| r.hop_no()),
            next_node: None,
        },
        Ok(Peeled::Forward(fwd)) => forward(state, fwd).await,
        Ok(Peeled::Destination(dest)) => {
            let rpc = handle_rpc(state, state.clock.now_ms_i64(), dest.body()).await;
            let body = match rpc.body {
                RpcBody::Json(v) => ReplyBody::Json(v),
                RpcBody::Text(s) => ReplyBody::Text(s),
            };
            Handled {
                response: dest.reply(rpc.status, body, &mut OsRandom),
                outcome: Outcome::Destination,
                hop_no: Some(dest.replier().hop_no()),
                next_node: None,
            }
        }
        Ok(Peeled::Exit(exit)) => exit_to_server(svc, exit).await,
        Ok(_) => Handled {
            response: OnionError::InvalidJson.plain_response(),
            outcome: Outcome::InvalidJson,
            hop_no: None,
            next_node: None,
        },
    };
    svc.count(h.outcome);
    tracing::debug!(
        peer = %Redacted::new(peer),
        hop = ?h.hop_no,
        outcome = h.outcome.as_str(),
        status = h.response.status,
        "onion request"
    );
    #[cfg(feature = "test-support")]
    svc.record(OnionEvent {
        peer,
        hop_no: h.hop_no,
        outcome: h.outcome,
        next_node: h.next_node,
        saw_plaintext_rpc: h.outcome == Outcome::Destination,
        http2,
    });
    #[cfg(not(feature = "test-support"))]
    let _ = (h.next_node, http2);
    h.response
}

/// Why a request to the next hop or server failed.
enum Fetch {
    Connect(String),
    Timeout(String),
    Body,
}

/// POSTs `body` to `url` and reads the answer (status, body of at most [`MAX_REPLY_LEN`]).
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), Fetch> {
    let call = async {
        let mut resp = client
            .post(url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let timeout = e.is_timeout();
                let text = e.without_url().to_string();
                if timeout {
                    Fetch::Timeout(text)
                } else {
                    Fetch::Connect(text)
                }
            })?;
        let status = resp.status().as_u16();
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_REPLY_LEN as u64)
        {
            return Err(Fetch::Body);
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|_| Fetch::Body)? {
            if out.len() + chunk.len() > MAX_REPLY_LEN {
                return Err(Fetch::Body);
            }
            out.extend_from_slice(&chunk);
        }
        Ok((status, out))
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(Fetch::Timeout("operation timed out".into())),
    }
}

async fn forward(state: &NodeState, fwd: Forward) -> Handled {
    let svc = &state.onion;
    let next = *fwd.next_node();
    let hop_no = fwd.replier().hop_no();
    let done = |response: Response, outcome: Outcome| Handled {
        response,
        outcome,
        hop_no: Some(hop_no),
        next_node: Some(next),
    };
    let Some(info) = svc.lookup(&state.swarm, &next) else {
        let e = OnionError::NextNodeNotFound(next);
        return done(fwd.fail(&e, &mut OsRandom), Outcome::NextNodeNotFound);
    };
    let Ok(client) = &svc.relay else {
        let e = OnionError::NextNodeUnreachable(next);
        return done(fwd.fail(&e, &mut OsRandom), Outcome::NextNodeUnreachable);
    };
    let url = format!(
        "https://{}:{}{ONION_PATH}",
        info.public_ip, info.storage_port
    );
    match post(client, &url, fwd.to_frame(), hop_timeout(hop_no)).await {
        Ok((status, body)) => done(Response { status, body }, Outcome::Forwarded),
        Err(Fetch::Connect(e)) => {
            tracing::debug!(next = %Redacted::new(hex::encode(next)), "next hop unreachable: {e}");
            let e = OnionError::NextNodeUnreachable(next);
            done(fwd.fail(&e, &mut OsRandom), Outcome::NextNodeUnreachable)
        }
        Err(Fetch::Timeout(_)) => done(
            fwd.fail(&OnionError::RequestTimeout, &mut OsRandom),
            Outcome::NextNodeTimeout,
        ),
        Err(Fetch::Body) => done(
            fwd.fail(&OnionError::InvalidSnodeResponse, &mut OsRandom),
            Outcome::InvalidNextReply,
        ),
    }
}

async fn exit_to_server(svc: &OnionService, exit: ExitRequest) -> Handled {
    let hop_no = Some(exit.replier().hop_no());
    let done = |response: Response, outcome: Outcome| Handled {
        response,
        outcome,
        hop_no,
        next_node: None,
    };
    let literal = exit
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>();
    if let Ok(ip) = literal
        && !svc.exit_policy.allows(ip)
    {
        let e = OnionError::ServerUnreachable("exit refuses non-public addresses".into());
        return done(exit.fail(&e, &mut OsRandom), Outcome::ServerUnreachable);
    }
    let client = match &svc.exit {
        Ok(c) => c,
        Err(e) => {
            let e = OnionError::ServerUnreachable(e.clone());
            return done(exit.fail(&e, &mut OsRandom), Outcome::ServerUnreachable);
        }
    };
    match post(client, &exit.url(), exit.body().to_vec(), EXIT_TIMEOUT).await {
        Ok((status, body)) => done(exit.reply(status, body, &mut OsRandom), Outcome::Exit),
        Err(Fetch::Timeout(e)) => done(
            exit.fail(&OnionError::ServerTimeout(e), &mut OsRandom),
            Outcome::ServerTimeout,
        ),
        Err(Fetch::Connect(e)) => done(
            exit.fail(&OnionError::ServerUnreachable(e), &mut OsRandom),
            Outcome::ServerUnreachable,
        ),
        Err(Fetch::Body) => done(
            exit.fail(
                &OnionError::ServerUnreachable("invalid or oversized server response".into()),
                &mut OsRandom,
            ),
            Outcome::ServerUnreachable,
        ),
    }
}

/// Serves `POST /onion_req/v2` for the HTTP layer (which has already applied the rate limit and
/// the in-flight limit): reads the frame with the onion limits, then [`handle_onion`].
pub(crate) async fn serve(
    state: &NodeState,
    limits: &LimitsConfig,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let http2 = req.version() == hyper::Version::HTTP_2;
    let frame = match read_frame(req, limits).await {
        Ok(f) => f,
        Err(resp) => {
            state.onion.count(Outcome::Malformed);
            return resp;
        }
    };
    to_http(handle_layer(state, peer, http2, frame).await)
}

/// Reads the frame: at most `min(limits.max_body_bytes, MAX_FRAME_LEN)` bytes, refusing a
/// larger one with the spec's `400 Error parsing onion request: …` (before reading anything
/// when `Content-Length` says so). Slow or broken bodies get the HTTP layer's 408/400.
async fn read_frame(
    req: Request<Incoming>,
    limits: &LimitsConfig,
) -> Result<Bytes, hyper::Response<Full<Bytes>>> {
    let limit = usize::try_from(limits.max_body_bytes)
        .unwrap_or(usize::MAX)
        .min(MAX_FRAME_LEN);
    let too_large = |len: usize| to_http(OnionError::FrameTooLarge { len, limit }.plain_response());
    if let Some(n) = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        && n > limit as u64
    {
        return Err(too_large(usize::try_from(n).unwrap_or(usize::MAX)));
    }
    let onion_limits = LimitsConfig {
        max_body_bytes: limit as u64,
        ..*limits
    };
    match crate::http::read_limited_body(req, &onion_limits).await {
        Ok(b) => Ok(b),
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large(limit + 1)),
        Err(r) => Err(r),
    }
}

/// An onion answer as an HTTP response: plain-text errors as text, everything else (sealed
/// replies, base64, relayed answers) as an opaque body.
fn to_http(r: Response) -> hyper::Response<Full<Bytes>> {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let ctype = if std::str::from_utf8(&r.body).is_ok() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp
}

/// The node-to-node client: pooled keep-alive connections, HTTP/2 when the next node offers it
/// (ALPN), no certificate verification (see the module docs), no proxy, no redirects.
fn relay_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        // Danger on purpose: nodes use self-signed certificates nobody pins (storage-rpc.md §1.1); the onion layer key authenticates the next hop.
        .tls_backend_preconfigured(danger_any_cert_tls_config()?)
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_timeout(Duration::from_secs(10))
        .http2_adaptive_window(true)
        .tcp_nodelay(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

/// The exit's client for external servers: as the relay client, plus a resolver that applies
/// the [`ExitPolicy`] to every address a name resolves to.
fn exit_client(policy: ExitPolicy) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        // Danger on purpose: nodes use self-signed certificates nobody pins (storage-rpc.md §1.1); the onion layer key authenticates the next hop.
        .tls_backend_preconfigured(danger_any_cert_tls_config()?)
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(PolicyResolver(policy)))
        .build()
        .map_err(|e| e.to_string())
}

/// Resolves names with the system resolver and drops addresses the [`ExitPolicy`] refuses.
struct PolicyResolver(ExitPolicy);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host.as_str(), 0)))
                    .await
                    .map_err(|_| "name resolution timed out")??;
            let allowed: Vec<SocketAddr> = addrs.filter(|a| policy.allows(a.ip())).collect();
            if allowed.is_empty() {
                return Err("the server's address is not allowed for exits".into());
            }
            let it: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(it)
        })
    }
}

/// A rustls client configuration (ring, TLS 1.2/1.3, ALPN `h2` then `http/1.1`) that accepts
/// any server certificate but still checks the handshake signature against it.
fn danger_any_cert_tls_config() -> Result<rustls::ClientConfig, String> {
    let mut cfg = crate::identity::danger_any_cert_client_config().map_err(|e| e.to_string())?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_timeouts_shrink_towards_the_destination() {
        assert_eq!(hop_timeout(0), Duration::from_secs(30));
        assert_eq!(hop_timeout(1), Duration::from_secs(30));
        assert_eq!(hop_timeout(2), Duration::from_secs(27));
        assert_eq!(hop_timeout(3), Duration::from_secs(24));
        assert!(hop_timeout(3) < EXIT_TIMEOUT + Duration::from_secs(3));
        assert_eq!(hop_timeout(15), Duration::from_secs(5));
        assert_eq!(hop_timeout(255), Duration::from_secs(5));
    }

    #[test]
    fn exit_policy_follows_the_node_address() {
        let devnet = ExitPolicy::for_node_ip(Ipv4Addr::LOCALHOST);
        assert_eq!(devnet, ExitPolicy::AllowPrivate);
        assert_eq!(
            ExitPolicy::for_node_ip(Ipv4Addr::new(10, 1, 2, 3)),
            ExitPolicy::AllowPrivate
        );
        let public = ExitPolicy::for_node_ip(Ipv4Addr::new(203, 0, 113, 7));
        assert_eq!(public, ExitPolicy::PublicOnly);
        assert_eq!(
            ExitPolicy::for_node_ip(Ipv4Addr::UNSPECIFIED),
            ExitPolicy::PublicOnly
        );
        for refused in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(!public.allows(ip), "{refused}");
            assert!(devnet.allows(ip), "{refused}");
        }
        for allowed in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(public.allows(allowed.parse().unwrap()), "{allowed}");
        }
    }

    #[test]
    fn outcome_labels_are_distinct() {
        let all = [
            Outcome::Forwarded,
            Outcome::Destination,
            Outcome::Exit,
            Outcome::Malformed,
            Outcome::InvalidCiphertext,
            Outcome::InvalidJson,
            Outcome::InvalidUrl,
            Outcome::HopLimit,
            Outcome::NextNodeNotFound,
            Outcome::NextNodeUnreachable,
            Outcome::NextNodeTimeout,
            Outcome::InvalidNextReply,
            Outcome::ServerUnreachable,
            Outcome::ServerTimeout,
            Outcome::Busy,
            Outcome::NotReady,
        ];
        let labels: HashSet<&str> = all.iter().map(|o| o.as_str()).collect();
        assert_eq!(labels.len(), all.len());
    }
}
