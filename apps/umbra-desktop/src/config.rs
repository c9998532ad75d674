//! Where the profile is and which network to use: the same options, environment variables
//! and default as the `umbra` CLI, so that one profile works in both.
//!
//! The default profile directory and the devnet check are repeated from `apps/umbra`
//! (`client/context.rs`); they belong in the messenger crate, so that every front end gets
//! them from one place.

use std::path::{Path, PathBuf};

use clap::Parser;

/// Command-line options of `umbra-desktop`.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "umbra-desktop",
    version,
    about = "Umbra Desktop: private messages through onion paths"
)]
pub struct Options {
    /// The profile directory (identity and encrypted database) [default: the user's data
    /// directory, …/umbra/default, as the CLI's].
    #[arg(long, env = "UMBRA_PROFILE", value_name = "DIR")]
    pub profile: Option<PathBuf>,
    /// The network file (`umbra devnet up` writes DIR/network.json). Without one the app
    /// works offline: your conversations, no sending or receiving.
    #[arg(long, env = "UMBRA_NETWORK", value_name = "FILE")]
    pub network: Option<PathBuf>,
    /// Print one JSON line on stdout per event (the profile is open, a message arrived, a
    /// screenshot was written), for scripts and the integration scenario. Shows message text.
    #[arg(long)]
    pub status_json: bool,
    /// Write the window as a PNG to this file after each message that arrives.
    #[arg(long, value_name = "PATH")]
    pub screenshot: Option<PathBuf>,
    /// Benchmark: scroll the most recent conversation to its first message and back, print
    /// the frame times as one JSON line and quit (`umbra-bench desktop`).
    #[arg(long, hide = true)]
    pub bench_scroll: bool,
}

/// The profile directory: `--profile`/`UMBRA_PROFILE`, else `<data dir>/umbra/default`.
pub fn resolve_profile(opts: &Options) -> anyhow::Result<PathBuf> {
    if let Some(p) = &opts.profile {
        return Ok(p.clone());
    }
    let data = dirs::data_dir().ok_or_else(|| {
        anyhow::anyhow!(
            "no data directory is known for this user: pass --profile DIR or set UMBRA_PROFILE"
        )
    })?;
    Ok(data.join("umbra").join("default"))
}

/// The network file, checked to exist (it is parsed when the profile is opened, so that a
/// malformed one is shown in the window rather than on a terminal nobody reads).
pub fn resolve_network(opts: &Options) -> anyhow::Result<Option<PathBuf>> {
    match &opts.network {
        None => Ok(None),
        Some(p) if !p.exists() => anyhow::bail!(
            "reading the network file: {} does not exist (`umbra devnet up` writes .umbra-devnet/network.json)",
            p.display()
        ),
        Some(p) => Ok(Some(p.clone())),
    }
}

/// Whether the network file describes a devnet (`"network": "devnet"`): every node is on
/// 127.0.0.1, so paths cannot be spread over subnets.
pub(crate) fn is_devnet(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["network"] == "devnet")
}
