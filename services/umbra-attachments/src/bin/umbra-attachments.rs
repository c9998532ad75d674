//! `umbra-attachments`: runs an Umbra attachment server over plain HTTP.
//!
//! On start it prints one JSON line to stdout (and writes it to `--ready-file` if given):
//! `{"pid", "listen", "url", "x25519_pubkey"}`, so a launcher can learn the bound port
//! (`--listen 127.0.0.1:0`) and the key clients encrypt onion requests to.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use umbra_attachments::onion::load_or_create_key;
use umbra_attachments::server::{self, AppState, Limits};
use umbra_attachments::store::Store;
use umbra_clock::SystemClock;
use umbra_report::{ErrorExt as _, Report};

/// Umbra attachment server: Session file-server API plus resumable chunked uploads.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0", env = "UMBRA_ATTACHMENTS_LISTEN")]
    listen: String,
    /// Directory for the blobs and the metadata database (created if missing).
    #[arg(long, default_value = ".", env = "UMBRA_ATTACHMENTS_DIR")]
    data_dir: PathBuf,
    /// The server's X25519 key for onion requests (64 hex digits of the secret; created if
    /// missing). Default: `attachments.key` in the data directory.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Largest `POST /file` body, in bytes.
    #[arg(long, default_value_t = server::DEFAULT_MAX_FILE_SIZE)]
    max_file_size: u64,
    /// Largest chunked upload, in bytes.
    #[arg(long, default_value_t = server::DEFAULT_MAX_LARGE_FILE_SIZE)]
    max_large_file_size: u64,
    /// Total bytes the server stores (files plus open chunked uploads); past it uploads get 507.
    #[arg(long, default_value_t = 10 << 30)]
    quota_bytes: u64,
    /// Expiry of an upload without `X-FS-TTL`, in seconds (Session's default: 3 weeks).
    #[arg(long, default_value_t = server::DEFAULT_TTL_MS / 1000)]
    default_ttl_secs: u64,
    /// Largest `X-FS-TTL` honoured, in seconds; 0 ignores the header.
    #[arg(long, default_value_t = server::DEFAULT_TTL_MS / 1000)]
    max_ttl_secs: u64,
    /// Drop a chunked upload untouched for this many seconds.
    #[arg(long, default_value_t = 24 * 3600)]
    upload_idle_secs: u64,
    /// Seconds between expiry sweeps.
    #[arg(long, default_value_t = 60)]
    sweep_interval_secs: u64,
    /// Seconds a request may take until its answer starts (uploads included).
    #[arg(long, default_value_t = 300)]
    request_timeout_secs: u64,
    /// Also write the start-up JSON line to this file (atomically).
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Log filter (e.g. `info`, `debug`); overrides RUST_LOG.
    #[arg(long)]
    log: Option<String>,
    /// Show metadata in clear in debug logs (operators only).
    #[arg(long)]
    reveal_metadata: bool,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn limits(args: &Args) -> anyhow::Result<Limits> {
    if args.max_file_size == 0 || args.max_large_file_size == 0 {
        bail!("--max-file-size and --max-large-file-size must be at least 1");
    }
    if args.default_ttl_secs == 0 || args.sweep_interval_secs == 0 {
        bail!("--default-ttl-secs and --sweep-interval-secs must be at least 1");
    }
    Ok(Limits {
        max_file_size: args.max_file_size,
        max_large_file_size: args.max_large_file_size,
        default_ttl_ms: args.default_ttl_secs.saturating_mul(1000),
        max_ttl_secs: (args.max_ttl_secs > 0).then_some(args.max_ttl_secs),
        upload_idle_ms: args.upload_idle_secs.saturating_mul(1000),
        sweep_interval: Duration::from_secs(args.sweep_interval_secs),
        request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let limits = limits(&args)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let (store, recovery) = Store::open(&args.data_dir, args.quota_bytes)
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    if recovery != Default::default() {
        tracing::info!(
            temp_files = recovery.temp_files,
            orphan_blobs = recovery.orphan_blobs,
            missing_blobs = recovery.missing_blobs,
            orphan_uploads = recovery.orphan_uploads,
            "cleaned up after an unclean stop"
        );
    }
    let key_path = args
        .key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("attachments.key"));
    let key = load_or_create_key(&key_path)
        .with_context(|| format!("loading the server key {}", key_path.display()))?;
    let pubkey = hex::encode(key.public());
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!(
                "{} is already in use: choose another --listen address or port 0",
                args.listen
            )
        }
        Err(e) => return Err(e).with_context(|| format!("listening on {}", args.listen)),
    };
    let addr = listener.local_addr()?;
    let ready = serde_json::json!({
        "pid": std::process::id(),
        "listen": addr.to_string(),
        "url": format!("http://{addr}"),
        "x25519_pubkey": pubkey,
    });
    let line = serde_json::to_string(&ready)?;
    if let Some(path) = &args.ready_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{line}\n"))
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{line}");
    tracing::info!("attachment server listening");
    let state = AppState::with_onion_key(store, Arc::new(SystemClock), limits, key);
    // Graceful shutdown on SIGINT/SIGTERM (`serve` bounds the wait for open connections).
    server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("attachment server stopped");
    Ok(())
}

fn main() {
    let args = Args::parse();
    let filter = args
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    umbra_redact::set_reveal(args.reveal_metadata);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "umbra-attachments: starting the async runtime: {}",
                e.report()
            );
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("umbra-attachments: {}", Report(e.as_ref()));
        std::process::exit(1);
    }
}
