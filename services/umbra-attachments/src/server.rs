//! The HTTP shell around [`Store`]: axum routes, the expiry sweep, serving with bounded
//! connections and graceful shutdown.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt as _;
use serde_json::json;
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};
use umbra_clock::Clock;
use umbra_crypto::keys::X25519KeyPair;
use umbra_report::ErrorExt as _;

use crate::AttachmentError;
use crate::id::{ChunkHasher, FileId, FileIdHasher};
use crate::metrics::Metrics;
use crate::onion::{Destination, MAX_ONION_BODY, V4_PATHS};
use crate::parse::{self, ByteRange, CHUNK_SIZE, MAX_MANIFEST_BYTES, Manifest, RangeRequest};
use crate::store::{FileInfo, Store, UploadState};

/// The `X-FS-TTL` header (`messages.md` §7).
pub const TTL_HEADER: &str = "x-fs-ttl";

/// Session's default expiry, `FILE_EXPIRY` = 3 weeks (`messages.md` §7).
pub const DEFAULT_TTL_MS: u64 = 21 * 24 * 3600 * 1000;

/// The largest single `POST /file` body by default: 10 223 616 bytes, the encrypted size of
/// Session's `MAX_REGULAR_SIZE` (`groups-config-attachments.md` §3.1), so every attachment a
/// Session client sends fits; bigger files use chunked uploads.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 10_223_616;

/// The largest chunked upload by default: the blob of a 1 GiB file (1056 MiB: padding rounds a
/// blob of this size up to a multiple of 32 MiB, and the AEAD adds 17 bytes per 32 KiB), so a
/// file people see as "1 GB" — 10⁹ bytes or 1 GiB — is accepted, not refused for its padding.
pub const DEFAULT_MAX_LARGE_FILE_SIZE: u64 = 1056 << 20;

/// The server's limits and times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest `POST /file` body (larger → 413).
    pub max_file_size: u64,
    /// Largest chunked upload (larger manifest → 413).
    pub max_large_file_size: u64,
    /// Expiry of an upload without `X-FS-TTL`.
    pub default_ttl_ms: u64,
    /// Largest `X-FS-TTL` honoured, seconds; `None`: the header is ignored (Session's
    /// `MAX_FILE_TTL` unset).
    pub max_ttl_secs: Option<u64>,
    /// A chunked upload untouched this long is dropped (and, once completed, forgotten).
    pub upload_idle_ms: u64,
    /// Period of the expiry sweep.
    pub sweep_interval: Duration,
    /// Time a request may take until its answer starts (a body upload included).
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_large_file_size: DEFAULT_MAX_LARGE_FILE_SIZE,
            default_ttl_ms: DEFAULT_TTL_MS,
            max_ttl_secs: Some(DEFAULT_TTL_MS / 1000),
            upload_idle_ms: 24 * 3600 * 1000,
            sweep_interval: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
        }
    }
}

/// Shared state of the handlers.
pub struct AppState {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    metrics: Metrics,
    onion_key: Option<Arc<X25519KeyPair>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Wraps a store, a clock and the limits for serving.
    pub fn new(store: Store, clock: Arc<dyn Clock>, limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            store: Arc::new(store),
            clock,
            limits,
            metrics: Metrics::default(),
            onion_key: None,
        })
    }

    /// Like [`AppState::new`], and also a destination of onion requests under `key`
    /// (`POST /oxen/v4/lsrpc`, see [`crate::onion`]).
    pub fn with_onion_key(
        store: Store,
        clock: Arc<dyn Clock>,
        limits: Limits,
        key: X25519KeyPair,
    ) -> Arc<Self> {
        Arc::new(Self {
            store: Arc::new(store),
            clock,
            limits,
            metrics: Metrics::default(),
            onion_key: Some(Arc::new(key)),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Runs `f` on the store with the current time, on a blocking thread (SQLite and `fsync`
    /// block).
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store, u64) -> Result<T, AttachmentError> + Send + 'static,
    ) -> Result<T, AttachmentError> {
        let store = Arc::clone(&self.store);
        let now = self.clock.now_ms();
        tokio::task::spawn_blocking(move || f(&store, now))
            .await
            .map_err(|_| AttachmentError::Task)?
    }

    /// Runs one expiry sweep now.
    ///
    /// # Errors
    /// Those of [`Store::sweep`].
    pub async fn sweep(&self) -> Result<crate::store::Swept, AttachmentError> {
        let idle = self.limits.upload_idle_ms;
        let swept = self
            .with_store(move |store, now| store.sweep(now, idle))
            .await?;
        self.metrics.expired(swept.files);
        Ok(swept)
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn reason(e: &AttachmentError) -> &'static str {
    match e {
        AttachmentError::Empty | AttachmentError::TooLarge { .. } => "too_large",
        AttachmentError::QuotaFull { .. } => "quota",
        AttachmentError::NotFound => "not_found",
        AttachmentError::BadRequest(_)
        | AttachmentError::ChunkMismatch { .. }
        | AttachmentError::BodyRead(_) => "bad_request",
        AttachmentError::Incomplete { .. } => "incomplete",
        _ => "internal",
    }
}

/// Session's error answer: `{"status_code": N}` with status N (`messages.md` §7); Umbra's
/// extension endpoints add an `error` line.
fn error_response(state: &AppState, e: &AttachmentError) -> Response {
    let status = e.status();
    state.metrics.rejected(reason(e));
    if status.is_server_error() && status != StatusCode::INSUFFICIENT_STORAGE {
        tracing::error!(error = %e.report(), "attachment request failed");
    } else {
        tracing::debug!(error = %e.report(), "request refused");
    }
    json_response(status, &json!({"status_code": status.as_u16()}))
}

/// `200` with the JSON `f` makes of a result, or the error's answer.
fn reply<T>(
    state: &AppState,
    result: Result<T, AttachmentError>,
    f: impl FnOnce(&T) -> serde_json::Value,
) -> Response {
    match result {
        Ok(v) => json_response(StatusCode::OK, &f(&v)),
        Err(e) => error_response(state, &e),
    }
}

fn secs(ms: u64) -> f64 {
    // Millisecond times stay far below 2^53, so the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let s = ms as f64 / 1000.0;
    s
}

/// The answer to a stored file: Session's `{"id", "expires"}` (`messages.md` §7) plus
/// `uploaded` and `size`.
fn stored_json(i: &FileInfo) -> serde_json::Value {
    json!({
        "id": i.id.as_str(),
        "size": i.size,
        "uploaded": secs(i.uploaded_ms),
        "expires": secs(i.expires_ms),
    })
}

fn info_json(i: &FileInfo) -> serde_json::Value {
    json!({"size": i.size, "uploaded": secs(i.uploaded_ms), "expires": secs(i.expires_ms)})
}

fn header_bytes<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get(name).map(HeaderValue::as_bytes)
}

fn ttl(state: &AppState, headers: &HeaderMap) -> Result<u64, AttachmentError> {
    Ok(
        parse::ttl_ms(header_bytes(headers, TTL_HEADER), state.limits.max_ttl_secs)?
            .unwrap_or(state.limits.default_ttl_ms),
    )
}

/// Refuses early a body whose `Content-Length` already passes `limit`.
fn check_content_length(headers: &HeaderMap, limit: u64) -> Result<(), AttachmentError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .filter(|s| s.len() <= 20)
        .and_then(|s| s.parse::<u64>().ok());
    match announced {
        Some(size) if size > limit => Err(AttachmentError::TooLarge { size, limit }),
        _ => Ok(()),
    }
}

/// A file in `tmp/` removed when dropped (an error, a refused body, a client gone or a timeout
/// dropping the handler) unless [`TempFile::keep`] hands it on to the store.
struct TempFile(Option<std::path::PathBuf>);

impl TempFile {
    fn new(path: std::path::PathBuf) -> Self {
        Self(Some(path))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    fn keep(mut self) -> std::path::PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Streams `body` into a new file at `temp` (at most `limit` bytes, each piece also fed to
/// `seen`) and `fsync`s it; returns its size.
async fn receive(
    mut body: Body,
    temp: &Path,
    limit: u64,
    seen: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<u64, AttachmentError> {
    let mut file = tokio::fs::File::create(temp)
        .await
        .map_err(AttachmentError::io("creating a temporary file"))?;
    let mut size: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(AttachmentError::BodyRead)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        size = size.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        if size > limit {
            return Err(AttachmentError::TooLarge { size, limit });
        }
        seen(&data);
        file.write_all(&data)
            .await
            .map_err(AttachmentError::io("writing a temporary file"))?;
    }
    file.sync_all()
        .await
        .map_err(AttachmentError::io("syncing a temporary file"))?;
    Ok(size)
}

async fn post_file(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let result = post_file_inner(&s, &headers, body).await;
    if let Ok(info) = &result {
        s.metrics.upload(info.size);
    }
    reply(&s, result, stored_json)
}

async fn post_file_inner(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<FileInfo, AttachmentError> {
    let ttl_ms = ttl(s, headers)?;
    let limit = s.limits.max_file_size;
    check_content_length(headers, limit)?;
    let temp = TempFile::new(s.store.temp_path());
    let mut hasher = FileIdHasher::new()?;
    let size = receive(body, temp.path(), limit, &mut |b| hasher.update(b)).await?;
    if size == 0 {
        return Err(AttachmentError::Empty);
    }
    let id = hasher.finish();
    let temp = temp.keep();
    s.with_store(move |store, now| store.commit_blob(&temp, &id, size, now, ttl_ms))
        .await
}

fn file_id(raw: &str) -> Result<FileId, AttachmentError> {
    // An id we could never have issued is simply unknown (Session answers 404).
    FileId::parse(raw).ok_or(AttachmentError::NotFound)
}

async fn open(s: &AppState, raw: &str) -> Result<(std::fs::File, FileInfo), AttachmentError> {
    let id = file_id(raw)?;
    s.with_store(move |store, now| store.open_blob(&id, now))
        .await
}

/// Streams `range` of an open blob (never read whole).
async fn stream(
    s: &AppState,
    file: std::fs::File,
    range: ByteRange,
    status: StatusCode,
    total: u64,
) -> Result<Response, AttachmentError> {
    use tokio::io::AsyncReadExt as _;
    let mut file = tokio::fs::File::from_std(file);
    file.seek(std::io::SeekFrom::Start(range.start))
        .await
        .map_err(AttachmentError::io("seeking in a blob"))?;
    let len = range.end.saturating_sub(range.start);
    s.metrics.download(len);
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(len)));
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{total}",
            range.start,
            range.end.saturating_sub(1)
        ))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(resp)
}

async fn get_file(
    State(s): State<Arc<AppState>>,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let (file, info) = open(&s, &raw).await?;
        let whole = ByteRange {
            start: 0,
            end: info.size,
        };
        match parse::range(header_bytes(&headers, "range"), info.size) {
            RangeRequest::Whole => stream(&s, file, whole, StatusCode::OK, info.size).await,
            RangeRequest::Part(r) => {
                stream(&s, file, r, StatusCode::PARTIAL_CONTENT, info.size).await
            }
            RangeRequest::Unsatisfiable => {
                let mut resp = json_response(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    &json!({"status_code": 416}),
                );
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", info.size)) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                Ok(resp)
            }
        }
    }
    .await;
    result.unwrap_or_else(|e| error_response(&s, &e))
}

async fn get_file_chunk(
    State(s): State<Arc<AppState>>,
    UrlPath((raw, index)): UrlPath<(String, String)>,
) -> Response {
    let result = async {
        let (file, info) = open(&s, &raw).await?;
        let count = parse::chunk_count(info.size, CHUNK_SIZE);
        let index = parse::chunk_index(&index, count)?;
        let start = index.saturating_mul(CHUNK_SIZE);
        let range = ByteRange {
            start,
            end: start.saturating_add(CHUNK_SIZE).min(info.size),
        };
        stream(&s, file, range, StatusCode::OK, info.size).await
    }
    .await;
    result.unwrap_or_else(|e| error_response(&s, &e))
}

async fn get_info(State(s): State<Arc<AppState>>, UrlPath(raw): UrlPath<String>) -> Response {
    let result = async {
        let id = file_id(&raw)?;
        s.with_store(move |store, now| store.info(&id, now))
            .await?
            .ok_or(AttachmentError::NotFound)
    }
    .await;
    reply(&s, result, info_json)
}

async fn post_extend(
    State(s): State<Arc<AppState>>,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        // `messages.md` §7: only 44-character ids can be extended (others → 404).
        let id = file_id(&raw)?;
        let ttl_ms = ttl(&s, &headers)?;
        s.with_store(move |store, now| store.extend(&id, now, ttl_ms))
            .await
    }
    .await;
    reply(&s, result, info_json)
}

fn upload_json(u: &UploadState) -> serde_json::Value {
    let count = u.manifest.count();
    let missing = if u.file.is_some() {
        0
    } else {
        count.saturating_sub(u64::try_from(u.have.len()).unwrap_or(0))
    };
    json!({
        "upload_id": u.id.as_str(),
        "size": u.manifest.size,
        "chunk_size": u.manifest.chunk_size,
        "chunks": count,
        "have": u.have,
        "missing": missing,
        "id": u.file.as_ref().map(FileId::as_str),
    })
}

async fn post_upload(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    let result = async {
        let manifest = Manifest::parse(&body)?;
        if manifest.size > s.limits.max_large_file_size {
            return Err(AttachmentError::TooLarge {
                size: manifest.size,
                limit: s.limits.max_large_file_size,
            });
        }
        s.with_store(move |store, now| store.open_upload(&manifest, now))
            .await
    }
    .await;
    reply(&s, result, upload_json)
}

async fn upload_state(s: &AppState, raw: &str) -> Result<UploadState, AttachmentError> {
    let id = file_id(raw)?;
    s.with_store(move |store, _| store.upload(&id)).await
}

async fn get_upload(State(s): State<Arc<AppState>>, UrlPath(raw): UrlPath<String>) -> Response {
    match upload_state(&s, &raw).await {
        Ok(u) => json_response(StatusCode::OK, &upload_json(&u)),
        Err(e) => error_response(&s, &e),
    }
}

async fn put_chunk(
    State(s): State<Arc<AppState>>,
    UrlPath((raw, index)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let u = upload_state(&s, &raw).await?;
        if u.file.is_some() {
            return Ok(u);
        }
        let index = parse::chunk_index(&index, u.manifest.count())?;
        if u.have.binary_search(&index).is_ok() {
            // Already held (a retry after a lost answer): nothing to store.
            return Ok(u);
        }
        let want_len = u.manifest.chunk_len(index);
        let too_long = |e| match e {
            AttachmentError::TooLarge { .. } => AttachmentError::ChunkMismatch {
                index,
                what: "length",
            },
            other => other,
        };
        check_content_length(&headers, want_len).map_err(too_long)?;
        let temp = TempFile::new(s.store.temp_path());
        let mut hasher = ChunkHasher::new();
        let size = receive(body, temp.path(), want_len, &mut |b| hasher.update(b))
            .await
            .map_err(too_long)?;
        let expected = u
            .manifest
            .chunks
            .get(usize::try_from(index).unwrap_or(usize::MAX))
            .copied();
        let what = if size != want_len {
            Some("length")
        } else if Some(hasher.finish()) != expected {
            Some("hash")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(AttachmentError::ChunkMismatch { index, what });
        }
        s.metrics.chunk(size);
        let id = u.id.clone();
        let temp = temp.keep();
        s.with_store(move |store, now| {
            store.commit_chunk(&id, index, &temp, now)?;
            store.upload(&id)
        })
        .await
    }
    .await;
    reply(&s, result, upload_json)
}

async fn post_complete(
    State(s): State<Arc<AppState>>,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let id = file_id(&raw)?;
        let ttl_ms = ttl(&s, &headers)?;
        s.with_store(move |store, now| store.complete_upload(&id, now, ttl_ms))
            .await
    }
    .await;
    if result.is_ok() {
        s.metrics.upload(0);
    }
    reply(&s, result, stored_json)
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let gauges = s
        .with_store(|store, _| Ok((store.file_count()?, store.used_bytes()?)))
        .await;
    let (files, used) = gauges.unwrap_or((0, 0));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(files, used),
    )
        .into_response()
}

/// The server's routes (see `docs/attachments.md` and the crate docs), with the v4 onion
/// endpoints when the state has an onion key.
pub fn router(state: Arc<AppState>) -> Router {
    let key = state.onion_key.clone();
    let routes = http_routes(state);
    let Some(key) = key else {
        return routes;
    };
    let destination = Destination::new(key, routes.clone());
    let mut app = routes;
    for path in V4_PATHS {
        let destination = destination.clone();
        app = app.route(
            path,
            post(move |body: Bytes| destination.handle(body))
                .layer(DefaultBodyLimit::max(MAX_ONION_BODY)),
        );
    }
    app
}

fn http_routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/file", post(post_file))
        .route("/file/{id}", get(get_file))
        .route("/file/{id}/info", get(get_info))
        .route("/file/{id}/extend", post(post_extend))
        .route("/file/{id}/chunk/{index}", get(get_file_chunk))
        .route(
            "/upload",
            post(post_upload).layer(DefaultBodyLimit::max(MAX_MANIFEST_BYTES)),
        )
        .route("/upload/{id}", get(get_upload))
        .route("/upload/{id}/chunk/{index}", post(put_chunk).put(put_chunk))
        .route("/upload/{id}/complete", post(post_complete))
        .route("/metrics", get(metrics))
        // The streamed bodies count their own bytes against the configured limits.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Sweeps expired files and idle uploads every `period`, forever.
pub async fn sweep_loop(state: Arc<AppState>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        match state.sweep().await {
            Ok(swept) if swept.files > 0 || swept.uploads > 0 => {
                tracing::info!(files = swept.files, uploads = swept.uploads, "expiry sweep");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e.report(), "expiry sweep failed"),
        }
    }
}

/// Most connections served at once; further ones are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time a client has to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for open connections before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves on `listener` until `shutdown` completes, sweeping in the background. Connections
/// are bounded ([`MAX_CONNECTIONS`]), headers must arrive within [`HEADER_READ_TIMEOUT`] and a
/// request must start its answer within [`Limits::request_timeout`]; on shutdown open
/// connections get [`SHUTDOWN_GRACE`] to finish.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let sweeper = tokio::spawn(sweep_loop(Arc::clone(&state), state.limits.sweep_interval));
    let timeout = state.limits.request_timeout;
    let app = router(state).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            match tokio::time::timeout(timeout, next.run(req)).await {
                Ok(resp) => resp,
                Err(_) => json_response(StatusCode::REQUEST_TIMEOUT, &json!({"status_code": 408})),
            }
        },
    ));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, peer)) => {
                        // Redacted unless the operator asked for metadata in clear: who
                        // connects is exactly what the server must not keep.
                        tracing::debug!(peer = %umbra_redact::Redacted::new(peer), "connection");
                        stream
                    }
                    Err(e) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e.report(), "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(limit = MAX_CONNECTIONS, "connection limit reached; closing a new connection");
                    continue;
                };
                let service = TowerToHyperService::new(app.clone());
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %umbra_report::Report(&*e), "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    sweeper.abort();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; dropping them");
    }
    Ok(())
}
