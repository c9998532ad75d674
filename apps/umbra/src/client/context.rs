//! From the global options to a [`Messenger`]: where the profile is, how it is unlocked, and
//! how the network is reached.
//!
//! Commands that only read or change local state get an offline messenger (its swarm access
//! refuses every request). Commands that talk to the network first load the network file, so
//! that a missing or malformed one is refused before anything is touched.
//!
//! In debug builds only, an online messenger's swarm access goes through the `crash` test
//! hook (`UMBRA_TEST_CRASH=before-store:N|after-store:N` aborts the process at that store;
//! unset, it changes nothing). Release builds do not contain it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use umbra_report::ErrorExt as _;

use anyhow::{anyhow, bail};
use umbra_crypto::{Identity, MessageHash, OsRandom, SessionId};
use umbra_messenger::{
    FileServer, FileServerAddress, KdfParams, Messenger, MessengerError, NodeId, OnionFileServer,
    OnionSwarm, Profile, RetrievedPage, StoreAck, SwarmApi, SwarmError,
};
use umbra_net::{
    BoxFuture, ClientError, NetworkConfig, OnionTransport, SystemClock, TransportConfig,
};
use zeroize::Zeroizing;

use super::Globals;

/// The environment variable holding a profile's passphrase.
pub(crate) const PASSPHRASE_ENV: &str = "UMBRA_PASSPHRASE";

/// The profile directory: `--profile`/`UMBRA_PROFILE`, else `<data dir>/umbra/default`.
pub(crate) fn profile_dir(g: &Globals) -> anyhow::Result<PathBuf> {
    if let Some(p) = &g.profile {
        return Ok(p.clone());
    }
    let data = dirs::data_dir().ok_or_else(|| {
        anyhow!("no data directory is known for this user: pass --profile DIR or set UMBRA_PROFILE")
    })?;
    Ok(data.join("umbra").join("default"))
}

/// The passphrase from the environment, if any (never echoed, never logged).
pub(crate) fn passphrase() -> Option<Zeroizing<String>> {
    std::env::var(PASSPHRASE_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .map(Zeroizing::new)
}

/// Opens the profile of `g`, unlocking it with `UMBRA_PASSPHRASE` when it has a passphrase.
pub(crate) fn open_profile(g: &Globals) -> anyhow::Result<Profile> {
    let dir = profile_dir(g)?;
    if !Profile::exists(&dir) {
        return Err(MessengerError::NoProfile(dir).into());
    }
    let pass = passphrase();
    let needs = Profile::needs_passphrase(&dir)?;
    if needs && pass.is_none() {
        bail!(
            "opening the profile: it is locked (set {PASSPHRASE_ENV} to its passphrase to open it)"
        );
    }
    let opened = Profile::open(
        &dir,
        if needs {
            pass.as_deref().map(String::as_str)
        } else {
            None
        },
    );
    match opened {
        Err(MessengerError::ProfileLocked(_)) => bail!(
            "opening the profile: it is locked and the passphrase in {PASSPHRASE_ENV} does not open it"
        ),
        other => Ok(other?),
    }
}

/// Creates a profile (new identity, or restored from `phrase`), protected by
/// `UMBRA_PASSPHRASE` when it is set. Returns it with the recovery phrase of a new identity.
pub(crate) fn create_profile(
    g: &Globals,
    phrase: Option<&str>,
) -> anyhow::Result<(Profile, Option<Zeroizing<String>>)> {
    let dir = profile_dir(g)?;
    let pass = passphrase();
    let pass = pass.as_deref().map(String::as_str);
    let mut rng = OsRandom;
    match phrase {
        None => {
            let (p, phrase) = Profile::create(&dir, pass, KdfParams::default(), &mut rng)?;
            Ok((p, Some(phrase)))
        }
        Some(words) => Ok((
            Profile::restore(&dir, words, pass, KdfParams::default(), &mut rng)?,
            None,
        )),
    }
}

/// A messenger that never reaches the network (for local commands).
pub(crate) fn offline(g: &Globals) -> anyhow::Result<Messenger> {
    let profile = open_profile(g)?;
    Ok(messenger(profile, Arc::new(NoNetwork)))
}

/// An offline messenger for a profile just created or opened.
pub(crate) fn offline_from(profile: Profile) -> Messenger {
    messenger(profile, Arc::new(NoNetwork))
}

fn messenger(profile: Profile, swarm: Arc<dyn SwarmApi>) -> Messenger {
    Messenger::new(profile, swarm, Arc::new(SystemClock), Box::new(OsRandom))
}

/// An online messenger and its transport.
pub(crate) struct Online {
    pub(crate) messenger: Arc<Messenger>,
    pub(crate) transport: OnionTransport,
    pub(crate) network: PathBuf,
    /// Where the transport keeps its guards.
    pub(crate) state_dir: PathBuf,
}

/// Loads the network file of `g` (required).
pub(crate) fn network_file(g: &Globals) -> anyhow::Result<(PathBuf, NetworkConfig)> {
    let path = g.network.clone().ok_or_else(|| {
        anyhow!(
            "no network: pass --network PATH or set UMBRA_NETWORK (`umbra devnet up` writes .umbra-devnet/network.json)"
        )
    })?;
    if !path.exists() {
        bail!(
            "reading the network file: {} does not exist",
            path.display()
        );
    }
    let config = NetworkConfig::load(&path)?;
    Ok((path, config))
}

/// Opens the profile and connects it to the network of `g` (the network file is read first).
pub(crate) fn online(g: &Globals) -> anyhow::Result<Online> {
    let (path, network) = network_file(g)?;
    let profile = open_profile(g)?;
    online_with(profile, &path, &network, g.bind_address)
}

/// Connects an open profile to `network`; onion guards are kept in the profile directory
/// (`<profile>/network/`, so that every run enters the network through the same two nodes).
/// A guard file that could not be used is replaced, and the user told so on standard error.
/// Connections leave from `bind_address` when given.
pub(crate) fn online_with(
    profile: Profile,
    path: &Path,
    network: &NetworkConfig,
    bind_address: Option<std::net::IpAddr>,
) -> anyhow::Result<Online> {
    // Before anything of this network touches the profile.
    profile.bind_network(&network.registry_pubkey)?;
    let mut config = TransportConfig {
        state_dir: Some(profile.network_dir()),
        ..TransportConfig::default()
    };
    config.http.local_address = bind_address;
    // A devnet runs every node on 127.0.0.1: one /24, so paths cannot be spread over subnets.
    config.paths.subnet_diversity = !is_devnet(path);
    let dir = profile.network_dir();
    let transport = OnionTransport::new(network, config).map_err(|e| guard_store_error(e, &dir))?;
    if let Some(ClientError::LoadingGuards { path, reason }) = transport.replaced_guard_file() {
        eprintln!(
            "umbra: warning: the guard file {} could not be used ({reason}); it was replaced, and new entry nodes will be chosen",
            path.display()
        );
    }
    let swarm: Arc<dyn SwarmApi> =
        Arc::new(OnionSwarm::new(transport.clone(), Arc::new(SystemClock)));
    // Debug builds only: `UMBRA_TEST_CRASH` aborts at a chosen store (see `crash`).
    #[cfg(debug_assertions)]
    let swarm = super::crash::wrap(swarm)?;
    Ok(Online {
        messenger: Arc::new(messenger(profile, swarm)),
        transport,
        network: path.to_path_buf(),
        state_dir: dir,
    })
}

impl Online {
    /// The network's attachment server (`attachment_server` in the network file), reached
    /// through this transport's onion paths.
    pub(crate) fn file_server(&self) -> anyhow::Result<FileServer> {
        let bytes = std::fs::read(&self.network).map_err(|e| {
            anyhow!(
                "reading the network file {}: {}",
                self.network.display(),
                e.report()
            )
        })?;
        let address = FileServerAddress::from_network_json(&bytes)?;
        let link = OnionFileServer::new(self.transport.clone(), &address)?;
        Ok(FileServer::new(Arc::new(link), address.url))
    }
}

/// A transport error with what to do when it is about the guards' directory.
pub(crate) fn guard_store_error(e: ClientError, dir: &Path) -> anyhow::Error {
    match e {
        ClientError::SavingGuards { .. } | ClientError::CreatingStateDir { .. } => {
            anyhow::Error::new(e).context(format!(
                "cannot keep the onion guards, so every run would use new entry nodes (make {} a directory you can write)",
                dir.display()
            ))
        }
        e => anyhow::Error::new(e).context("setting up the onion transport"),
    }
}

/// Whether the network file describes a devnet (`"network": "devnet"`, as `umbra devnet`
/// writes it).
fn is_devnet(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["network"] == "devnet")
}

/// What the first contact with the network showed.
pub(crate) enum Reach {
    /// A verified node list and live onion paths.
    Ready,
    /// The network cannot be reached now (worth retrying later).
    Unreachable(String),
}

impl Online {
    /// Fetches and verifies the node list and builds paths. A list that does not verify
    /// against the network file's key is an error (nothing must be sent with it); a network
    /// that does not answer is reported as [`Reach::Unreachable`].
    pub(crate) async fn connect(&self) -> anyhow::Result<Reach> {
        match self.transport.ensure_ready().await {
            Ok(()) => Ok(Reach::Ready),
            Err(ClientError::VerifyingNodeList(why)) => Err(anyhow!(
                "the registry's node list does not verify against registry_pubkey in {}: {}",
                self.network.display(),
                why.report()
            )),
            // Guards that cannot be kept would make every run hand the user's address to new
            // entry nodes: never a mere "unreachable".
            Err(
                e @ (ClientError::NetworkFile(_)
                | ClientError::HttpClient(_)
                | ClientError::SavingGuards { .. }
                | ClientError::CreatingStateDir { .. }),
            ) => Err(guard_store_error(e, &self.state_dir)),
            Err(e) => Ok(Reach::Unreachable(e.report().to_string())),
        }
    }

    /// [`Self::connect`], where an unreachable network is an error too.
    pub(crate) async fn connect_or_fail(&self) -> anyhow::Result<()> {
        match self.connect().await? {
            Reach::Ready => Ok(()),
            Reach::Unreachable(why) => bail!("the network cannot be reached: {why}"),
        }
    }
}

/// Resolves a Session ID or a contact's name.
pub(crate) fn resolve(m: &Messenger, who: &str) -> anyhow::Result<SessionId> {
    Ok(m.resolve(who)?)
}

/// The swarm access of an offline messenger: every request fails as unreachable.
struct NoNetwork;

fn no_network<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, SwarmError>> {
    Box::pin(std::future::ready(Err(SwarmError::Unreachable(
        "this command works offline".into(),
    ))))
}

impl SwarmApi for NoNetwork {
    fn nodes<'a>(&'a self, _: &'a SessionId) -> BoxFuture<'a, Result<Vec<NodeId>, SwarmError>> {
        no_network()
    }

    fn store<'a>(
        &'a self,
        _: &'a SessionId,
        _: i32,
        _: &'a [u8],
        _: u64,
        _: u64,
    ) -> BoxFuture<'a, Result<StoreAck, SwarmError>> {
        no_network()
    }

    fn retrieve<'a>(
        &'a self,
        _: &'a Identity,
        _: i32,
        _: &'a str,
        _: Option<&'a MessageHash>,
    ) -> BoxFuture<'a, Result<RetrievedPage, SwarmError>> {
        no_network()
    }

    fn delete<'a>(
        &'a self,
        _: &'a Identity,
        _: &'a [MessageHash],
    ) -> BoxFuture<'a, Result<Vec<MessageHash>, SwarmError>> {
        no_network()
    }

    fn expire<'a>(
        &'a self,
        _: &'a Identity,
        _: &'a [MessageHash],
        _: u64,
        _: bool,
    ) -> BoxFuture<'a, Result<(), SwarmError>> {
        no_network()
    }
}
