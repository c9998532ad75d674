//! The real attachment server in process, its routes called directly (no socket, no onion
//! path), with a switch that makes it unreachable as a stopped server would be, and one
//! that flips a byte of every downloaded chunk (a tampered download).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tower::ServiceExt as _;
use umbra_messenger::files::{FileServer, FileServerError, FileServerLink};
use umbra_net::{BoxFuture, V4Request};

/// The attachment server's routes and the "stopped" switch.
pub(crate) struct TestFiles {
    router: axum::Router,
    down: AtomicBool,
    tamper: AtomicBool,
    _dir: tempfile::TempDir,
}

impl TestFiles {
    pub(crate) fn start() -> Arc<Self> {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = umbra_attachments::store::Store::open(dir.path(), 1 << 30).unwrap();
        let state = umbra_attachments::server::AppState::new(
            store,
            Arc::new(umbra_clock::SystemClock),
            umbra_attachments::server::Limits::default(),
        );
        Arc::new(Self {
            router: umbra_attachments::server::router(state),
            down: AtomicBool::new(false),
            tamper: AtomicBool::new(false),
            _dir: dir,
        })
    }

    /// The client's view of it.
    pub(crate) fn server(self: &Arc<Self>) -> FileServer {
        FileServer::new(self.clone(), "http://files.test")
    }

    /// Makes every request fail as if the server were stopped (`false`: back again).
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Flips the first byte of every chunk downloaded from now on (`false`: stops).
    pub(crate) fn set_tamper(&self, tamper: bool) {
        self.tamper.store(tamper, Ordering::SeqCst);
    }
}

impl FileServerLink for TestFiles {
    fn send(&self, r: V4Request) -> BoxFuture<'_, Result<(u16, Vec<u8>), FileServerError>> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err(FileServerError::Unreachable(
                    "the test stopped the server".into(),
                ));
            }
            let mut req = axum::http::Request::builder()
                .method(r.method.as_str())
                .uri(format!("http://files.test{}", r.endpoint));
            for (k, v) in &r.headers {
                req = req.header(k, v);
            }
            let req = req
                .body(axum::body::Body::from(r.body.unwrap_or_default()))
                .unwrap();
            let chunk_get = r.method == "GET" && r.endpoint.contains("/chunk/");
            let resp = self.router.clone().oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let mut body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            if chunk_get && status == 200 && self.tamper.load(Ordering::SeqCst) {
                body[0] ^= 1;
            }
            Ok((status, body))
        })
    }
}
