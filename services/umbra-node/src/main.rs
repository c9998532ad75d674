//! `umbra-node`: the Umbra storage node daemon.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use umbra_node::{Config, NodeBuilder};
use umbra_report::Report;

/// Umbra storage node: keeps accounts' encrypted messages and serves Session's storage RPC.
#[derive(Debug, Parser)]
#[command(name = "umbra-node", version)]
struct Cli {
    /// TOML configuration file (flags override its values).
    #[arg(long, short = 'c', env = "UMBRA_NODE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (node key, TLS certificate, message database).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Client HTTPS listen address, e.g. 0.0.0.0:22021.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Peer gRPC listen address, e.g. 0.0.0.0:22020 (default: the client listener's IP with a
    /// port picked at start).
    #[arg(long)]
    peer_listen: Option<std::net::SocketAddr>,
    /// The peer port announced to the registry, when peers reach this node through a port
    /// forward or proxy (default: the port peer_listen bound).
    #[arg(long)]
    public_peer_port: Option<u16>,
    /// Operator (metrics) listen address, e.g. 127.0.0.1:22029.
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// The public IPv4 address advertised to clients.
    #[arg(long)]
    public_ip: Option<std::net::Ipv4Addr>,
    /// Registry (seed) base URL.
    #[arg(long)]
    registry_url: Option<String>,
    /// Registry gRPC node API URL (register, heartbeat, node list stream), e.g.
    /// http://10.0.0.1:22001.
    #[arg(long)]
    registry_grpc_url: Option<String>,
    /// Registry Ed25519 public key (64 hex digits).
    #[arg(long)]
    registry_pubkey: Option<String>,
    /// Log filter (error, warn, info, debug, trace, or tracing directives).
    #[arg(long)]
    log_level: Option<String>,
    /// Per-account message quota.
    #[arg(long)]
    quota_messages: Option<u64>,
    /// Per-account byte quota.
    #[arg(long)]
    quota_bytes: Option<u64>,
    /// Rate limit: bucket depth per client IP.
    #[arg(long)]
    rate_burst: Option<u32>,
    /// Rate limit: refill per second per client IP.
    #[arg(long)]
    rate_per_second: Option<u32>,
    /// Validate the configuration, print it, and exit.
    #[arg(long)]
    check_config: bool,
}

impl Cli {
    fn into_config(self) -> anyhow::Result<(Config, bool)> {
        let mut cfg = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        if let Some(v) = self.data_dir {
            cfg.data_dir = v;
        }
        if let Some(v) = self.listen {
            cfg.listen = v;
        }
        if let Some(v) = self.peer_listen {
            cfg.peer_listen = Some(v);
        }
        if let Some(v) = self.public_peer_port {
            cfg.public_peer_port = Some(v);
        }
        if let Some(v) = self.metrics_listen {
            cfg.metrics_listen = v;
        }
        if let Some(v) = self.public_ip {
            cfg.public_ip = v;
        }
        if let Some(v) = self.registry_url {
            cfg.registry_url = Some(v);
        }
        if let Some(v) = self.registry_grpc_url {
            cfg.registry_grpc_url = Some(v);
        }
        if let Some(v) = self.registry_pubkey {
            cfg.registry_pubkey = Some(v);
        }
        if let Some(v) = self.log_level {
            cfg.log_level = v;
        }
        if let Some(v) = self.quota_messages {
            cfg.quota.max_messages = v;
        }
        if let Some(v) = self.quota_bytes {
            cfg.quota.max_bytes = v;
        }
        if let Some(v) = self.rate_burst {
            cfg.rate_limit.burst = v;
        }
        if let Some(v) = self.rate_per_second {
            cfg.rate_limit.per_second = v;
        }
        cfg.validate()?;
        Ok((cfg, self.check_config))
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("umbra-node: {}", Report(e.as_ref()));
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let (cfg, check_only) = Cli::parse().into_config()?;
    if check_only {
        let text = toml::to_string(&cfg).context("printing the configuration")?;
        println!("# configuration OK\n{text}");
        return Ok(());
    }
    // Colour only on a terminal: a pipe, a file or a service manager gets plain text.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cfg.log_level))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    umbra_redact::set_reveal(cfg.reveal_metadata());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let node = NodeBuilder::new(cfg).start().await?;
        wait_for_signal().await?;
        tracing::info!("shutting down: finishing in-flight requests");
        node.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
