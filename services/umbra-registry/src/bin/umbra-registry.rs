//! `umbra-registry`: runs an Umbra registry (seed node) over plain HTTP.
//!
//! On start it prints one JSON line to stdout (and writes it to `--ready-file` if given):
//! `{"pid", "listen", "url", "seed_url", "grpc_listen", "grpc_url", "registry_pubkey"}`, so a
//! launcher can learn the bound ports (`--listen 127.0.0.1:0`, `--grpc-listen 127.0.0.1:0`)
//! and the key to pin.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Parser;
use umbra_crypto::{Identity, OsRandom};
use umbra_registry::grpc::serve_grpc;
use umbra_registry::registry::{Registry, RegistryConfig};
use umbra_registry::server::{AppState, Clock as _, SystemClock, serve};
use umbra_registry::store::Store;
use umbra_report::{ErrorExt as _, Report};

/// Umbra registry: admits storage nodes, forms swarms, publishes the signed node list.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0", env = "UMBRA_REGISTRY_LISTEN")]
    listen: String,
    /// Address of the gRPC node API (register, heartbeat, leave, the node list stream) that
    /// nodes use; port 0 picks a free port.
    #[arg(
        long,
        default_value = "127.0.0.1:0",
        env = "UMBRA_REGISTRY_GRPC_LISTEN"
    )]
    grpc_listen: String,
    /// Directory for the database and the key (created if missing).
    #[arg(long, default_value = ".", env = "UMBRA_REGISTRY_DIR")]
    dir: PathBuf,
    /// Seed of the swarm formation randomness (assignments are reproducible for a seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Mark a node inactive after this many milliseconds without heartbeat.
    #[arg(long, default_value_t = 15_000)]
    inactive_after_ms: u64,
    /// Heartbeat interval announced to nodes, in milliseconds.
    #[arg(long, default_value_t = 3_000)]
    heartbeat_interval_ms: u64,
    /// Largest accepted clock skew of signed requests, in milliseconds.
    #[arg(long, default_value_t = umbra_nodelist::api::DEFAULT_MAX_CLOCK_SKEW_MS)]
    max_clock_skew_ms: u64,
    /// Also write the start-up JSON line to this file (atomically).
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Log filter (e.g. `info`, `debug`); overrides RUST_LOG.
    #[arg(long)]
    log: Option<String>,
    /// Show node keys and addresses in clear in debug logs (operators only).
    #[arg(long)]
    reveal_metadata: bool,
}

fn load_or_create_identity(path: &Path) -> anyhow::Result<Identity> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the registry key {}", path.display()))?;
        let seed = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .with_context(|| {
                format!(
                    "{} is not a 64-hex-digit key: restore it or delete it to make a new registry key",
                    path.display()
                )
            })?;
        return Ok(Identity::from_seed(&seed));
    }
    let id = Identity::generate(&mut OsRandom);
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(hex::encode(id.seed()).as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
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

async fn run(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let identity = load_or_create_identity(&args.dir.join("registry.key"))?;
    let pubkey = identity.ed25519_public();
    let db_path = args.dir.join("registry.sqlite");
    let store = Store::open(&db_path).with_context(|| format!("opening {}", db_path.display()))?;
    let clock = Arc::new(SystemClock);
    let config = RegistryConfig {
        inactive_after_ms: args.inactive_after_ms,
        heartbeat_interval_ms: args.heartbeat_interval_ms,
        max_clock_skew_ms: args.max_clock_skew_ms,
        seed: args.seed,
    };
    if config.heartbeat_interval_ms == 0 || config.inactive_after_ms <= config.heartbeat_interval_ms
    {
        bail!(
            "--inactive-after-ms must be larger than --heartbeat-interval-ms (and both non-zero)"
        );
    }
    let registry = Registry::open(store, identity, config, clock.now_ms())?;
    let listener = bind(&args.listen, "--listen").await?;
    let grpc_listener = bind(&args.grpc_listen, "--grpc-listen").await?;
    let addr = listener.local_addr()?;
    let grpc_addr = grpc_listener.local_addr()?;
    let url = format!("http://{addr}");
    let ready = serde_json::json!({
        "pid": std::process::id(),
        "listen": addr.to_string(),
        "url": url,
        "seed_url": format!("{url}/json_rpc"),
        "grpc_listen": grpc_addr.to_string(),
        "grpc_url": format!("http://{grpc_addr}"),
        "registry_pubkey": hex::encode(pubkey),
    });
    let line = serde_json::to_string(&ready)?;
    if let Some(path) = &args.ready_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{line}\n"))
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{line}");
    tracing::info!("registry listening");
    let state = AppState::new(registry, clock);
    // Graceful shutdown on SIGINT/SIGTERM, of both listeners (each bounds its wait for open
    // connections).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut grpc = tokio::spawn(serve_grpc(
        grpc_listener,
        Arc::clone(&state),
        stopped(stop_rx.clone()),
    ));
    let mut http = tokio::spawn(serve(listener, state, stopped(stop_rx)));
    tokio::select! {
        () = shutdown_signal() => {}
        r = &mut http => {
            r.context("the HTTP server task")??;
            bail!("the HTTP server stopped by itself");
        }
        r = &mut grpc => {
            r.context("the gRPC server task")?.context("serving gRPC")?;
            bail!("the gRPC server stopped by itself");
        }
    }
    let _ = stop_tx.send(true);
    http.await.context("the HTTP server task")??;
    grpc.await
        .context("the gRPC server task")?
        .context("serving gRPC")?;
    tracing::info!("registry stopped");
    Ok(())
}

/// Binds `addr` (given as `flag`), with one clear line when the port is taken.
async fn bind(addr: &str, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!("{addr} is already in use: choose another {flag} address or port 0")
        }
        Err(e) => Err(e).with_context(|| format!("listening on {addr}")),
    }
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
            eprintln!("umbra-registry: starting the async runtime: {}", e.report());
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("umbra-registry: {}", Report(e.as_ref()));
        std::process::exit(1);
    }
}
