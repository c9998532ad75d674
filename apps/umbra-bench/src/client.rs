//! The HTTPS load generator: a few keep-alive TLS connections carrying many concurrent
//! requests (HTTP/2 streams), or one HTTP/1.1 keep-alive connection per in-flight request.
//!
//! Built on hyper's connection-level client so that the number of connections is exactly what
//! was asked for (a pooled client opens connections as it sees fit). Connections are opened
//! before the timed phase starts; the clock covers only requests and replies.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, Response, body::Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where and how to send.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The node's HTTPS address.
    pub(crate) addr: SocketAddr,
    /// HTTP/1.1 (one connection per in-flight request) instead of HTTP/2.
    pub(crate) http1: bool,
    /// Connections (HTTP/2 only).
    pub(crate) connections: usize,
    /// Requests in flight.
    pub(crate) inflight: usize,
}

/// What a phase measured.
#[derive(Debug, Default)]
pub(crate) struct PhaseResult {
    /// Requests answered `200`.
    pub(crate) ok: u64,
    /// Failures by kind (`"406"`, `"transport"`, …).
    pub(crate) errors: BTreeMap<String, u64>,
    /// The first failure's body or error text.
    pub(crate) first_error: Option<String>,
    /// Latency of every request (µs), sorted.
    pub(crate) latencies_us: Vec<u32>,
    /// From the first request sent to the last reply received.
    pub(crate) wall: Duration,
    /// Messages counted in `200` replies (retrieves).
    pub(crate) messages_returned: u64,
    /// Reply body bytes.
    pub(crate) reply_bytes: u64,
}

impl PhaseResult {
    /// Successful requests per second.
    pub(crate) fn per_sec(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile of the latency (0.0..=1.0), in milliseconds.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let last = self.latencies_us.len() - 1;
        let i = ((last as f64) * q).round() as usize;
        f64::from(self.latencies_us[i.min(last)]) / 1000.0
    }

    /// Total failures.
    pub(crate) fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    fn merge(&mut self, other: WorkerResult) {
        self.ok += other.ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
        self.messages_returned += other.messages_returned;
        self.reply_bytes += other.reply_bytes;
    }
}

#[derive(Default)]
struct WorkerResult {
    ok: u64,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
    messages_returned: u64,
    reply_bytes: u64,
}

impl WorkerResult {
    fn fail(&mut self, kind: String, detail: String) {
        *self.errors.entry(kind).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(detail);
        }
    }
}

fn connector(http1: bool) -> anyhow::Result<TlsConnector> {
    let mut cfg =
        // Danger on purpose: the benchmarked node has a self-signed certificate (storage-rpc.md §1.1).
        umbra_node::identity::danger_any_cert_client_config().context("TLS protocol versions")?;
    cfg.alpn_protocols = if http1 {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec()]
    };
    Ok(TlsConnector::from(Arc::new(cfg)))
}

#[derive(Clone)]
enum Sender {
    H1(Arc<tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, hyper::Error> {
        match self {
            Sender::H1(s) => {
                let mut s = s.lock().await;
                s.ready().await?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                let mut s = s.clone();
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }
}

async fn connect(addr: SocketAddr, tls: &TlsConnector, http1: bool) -> anyhow::Result<Sender> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    let name = ServerName::try_from("localhost").map_err(|e| anyhow!("server name: {e}"))?;
    let stream = tls
        .connect(name, tcp)
        .await
        .context("TLS handshake with the node")?;
    let io = TokioIo::new(stream);
    if http1 {
        let (send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H1(Arc::new(tokio::sync::Mutex::new(send))))
    } else {
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await
            .context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H2(send))
    }
}

fn request(target: &Target, body: Bytes) -> anyhow::Result<Request<Full<Bytes>>> {
    let host = target.addr.to_string();
    let builder = if target.http1 {
        Request::post("/storage_rpc/v1").header(HOST, host)
    } else {
        Request::post(format!("https://{host}/storage_rpc/v1"))
    };
    builder
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(Full::new(body))
        .context("building a request")
}

/// Counts `"expiration"` keys: one per message in a retrieve reply.
fn count_messages(body: &[u8]) -> u64 {
    const KEY: &[u8] = b"\"expiration\"";
    body.windows(KEY.len()).filter(|w| *w == KEY).count() as u64
}

/// Opens the connections of `target` (untimed), then sends every body in `bodies` with
/// `target.inflight` requests in flight, and measures.
pub(crate) async fn run_phase(
    target: &Target,
    bodies: Arc<Vec<Bytes>>,
) -> anyhow::Result<PhaseResult> {
    let tls = connector(target.http1)?;
    let n_conns = if target.http1 {
        target.inflight
    } else {
        target.connections
    };
    let mut senders = Vec::with_capacity(n_conns);
    for _ in 0..n_conns {
        senders.push(connect(target.addr, &tls, target.http1).await?);
    }
    // Requests are built before the clock starts as well.
    let requests: Vec<Request<Full<Bytes>>> = bodies
        .iter()
        .map(|b| request(target, b.clone()))
        .collect::<anyhow::Result<_>>()?;
    let requests = Arc::new(std::sync::Mutex::new(
        requests.into_iter().map(Some).collect::<Vec<_>>(),
    ));
    let next = Arc::new(AtomicUsize::new(0));
    let total = bodies.len();
    let per_worker = total / target.inflight.max(1) + 1;

    let started = SystemClock.instant();
    let mut workers = Vec::with_capacity(target.inflight);
    for w in 0..target.inflight {
        let sender = senders[w % senders.len()].clone();
        let next = next.clone();
        let requests = requests.clone();
        workers.push(tokio::spawn(async move {
            let mut r = WorkerResult {
                latencies_us: Vec::with_capacity(per_worker),
                ..WorkerResult::default()
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let req = requests
                    .lock()
                    .ok()
                    .and_then(|mut v| v.get_mut(i).and_then(Option::take));
                let Some(req) = req else {
                    r.fail("internal".into(), "request already taken".into());
                    continue;
                };
                let t = SystemClock.instant();
                let outcome = match sender.send(req).await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        match resp.into_body().collect().await {
                            Ok(b) => Ok((status, b.to_bytes())),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                };
                let us = u32::try_from(SystemClock.since(t).as_micros()).unwrap_or(u32::MAX);
                r.latencies_us.push(us);
                match outcome {
                    Ok((200, body)) => {
                        r.ok += 1;
                        r.reply_bytes += body.len() as u64;
                        r.messages_returned += count_messages(&body);
                    }
                    Ok((status, body)) => {
                        r.reply_bytes += body.len() as u64;
                        r.fail(
                            status.to_string(),
                            format!("{status}: {}", String::from_utf8_lossy(&body)),
                        );
                    }
                    Err(e) => r.fail("transport".into(), format!("transport: {e}")),
                }
            }
            r
        }));
    }
    let mut result = PhaseResult::default();
    for w in workers {
        result.merge(w.await.context("a client task failed")?);
    }
    result.wall = SystemClock.since(started);
    result.latencies_us.sort_unstable();
    Ok(result)
}

/// One HTTP/1.1 keep-alive connection carrying requests one at a time (checks and probes, not
/// load). Clones share the connection.
#[derive(Clone)]
pub(crate) struct Conn {
    sender: Sender,
    target: Target,
}

impl Conn {
    /// Connects to the node at `addr`.
    pub(crate) async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let sender = connect(addr, &connector(true)?, true).await?;
        Ok(Conn {
            sender,
            target: Target {
                addr,
                http1: true,
                connections: 1,
                inflight: 1,
            },
        })
    }

    /// Sends `body` and returns the reply's status and body.
    pub(crate) async fn post(&self, body: Bytes) -> anyhow::Result<(u16, Bytes)> {
        let resp = self
            .sender
            .send(request(&self.target, body)?)
            .await
            .with_context(|| format!("sending a request to {}", self.target.addr))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading a reply")?
            .to_bytes();
        Ok((status, body))
    }
}

/// Sends each body once, one after the other on one connection; returns status and body.
pub(crate) async fn post_each(
    target: &Target,
    bodies: &[Bytes],
) -> anyhow::Result<Vec<(u16, Bytes)>> {
    let conn = Conn::open(target.addr).await?;
    let mut out = Vec::with_capacity(bodies.len());
    for b in bodies {
        out.push(conn.post(b.clone()).await?);
    }
    Ok(out)
}
