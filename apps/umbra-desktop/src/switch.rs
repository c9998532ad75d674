//! Switching networks while the app runs: the back end is asked to stop once every command
//! before it is done (so a draft saved a moment ago is kept), the profile's lock is
//! released, and a new back end starts on the profile that holds the chosen network's data
//! (see [`Networks`]). Nothing of one network ever reaches the other's profile.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use umbra_crypto::Ed25519PublicKey;
use umbra_report::ErrorExt as _;

use crate::backend::{Backend, BackendConfig, NetworkSource};
use crate::lock::ProfileLock;
use crate::model::SwitchTo;
use crate::networks::Networks;

/// How long the old back end gets to finish its commands before it is stopped anyway, ms.
pub(crate) const CLOSE_WAIT_MS: u64 = 3_000;

/// What the app needs to start a back end on another network.
pub struct Switcher {
    networks: Networks,
    /// Everything but the profile and the network (key derivation, notifier).
    template: BackendConfig,
    wake: Arc<dyn Fn() + Send + Sync>,
    /// The current profile's lock (`None` in tests that take none).
    lock: Option<ProfileLock>,
    /// The switch under way: where to, and since when the old back end is closing.
    pending: Option<(Target, u64)>,
    /// The previous back end stopping on a thread of its own, with its profile's lock.
    stopping: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Switcher {
    fn drop(&mut self) {
        self.wait_for_the_old_back_end();
    }
}

impl std::fmt::Debug for Switcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switcher")
            .field("networks", &self.networks)
            .finish_non_exhaustive()
    }
}

/// Where a switch goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) profile: PathBuf,
    pub(crate) file: PathBuf,
    /// The network's identity: its registry key.
    pub(crate) key: Ed25519PublicKey,
}

impl Target {
    /// Whether the app already runs here: the same profile, on a network file (`network`, the
    /// one the back end reports) with the same registry key, whatever its path says.
    pub(crate) fn is_current(&self, profile: &Path, network: Option<&Path>) -> bool {
        self.profile == profile
            && network.and_then(|f| Networks::key_of(f).ok()).as_ref() == Some(&self.key)
    }
}

impl Switcher {
    /// Switching among the networks of `networks`; new back ends are configured like
    /// `template` and wake the UI with `wake`; `lock` is the current profile's.
    pub fn new(
        networks: Networks,
        template: BackendConfig,
        wake: impl Fn() + Send + Sync + 'static,
        lock: Option<ProfileLock>,
    ) -> Self {
        Self {
            networks,
            template,
            wake: Arc::new(wake),
            lock,
            pending: None,
            stopping: None,
        }
    }

    /// Where switching to `to` goes, or why it cannot.
    pub(crate) fn target(&self, to: &SwitchTo) -> Result<Target, String> {
        let file =
            std::path::absolute(&to.file).map_err(|e| format!("{}: {e}", to.file.display()))?;
        let key = Networks::key_of(&file)?;
        let profile = if to.separate {
            self.networks.separate_profile(&key)
        } else {
            self.networks.profile_for(&key)
        };
        Ok(Target { profile, file, key })
    }

    /// Remembers the switch under way, begun at `now` (ms).
    pub(crate) fn begin(&mut self, target: Target, now: u64) {
        self.pending = Some((target, now));
    }

    /// The switch under way, if the old back end has closed or had its time.
    pub(crate) fn due(&mut self, closed: bool, now: u64) -> Option<Target> {
        let (_, since) = self.pending.as_ref()?;
        if closed || now.saturating_sub(*since) >= CLOSE_WAIT_MS {
            self.pending.take().map(|(t, _)| t)
        } else {
            None
        }
    }

    /// Whether a switch is under way.
    pub(crate) fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Stops `old` (after it closed), releases its profile and starts a back end on
    /// `target`'s profile and network.
    ///
    /// Stopping a back end's runtime can take up to a second (a poll or a delivery attempt
    /// cut short), so it happens on a thread of its own and the window does not freeze; the
    /// old profile's lock goes with it and is released only once it has stopped. Only a
    /// switch back to that profile before then waits for it.
    pub(crate) fn start(
        &mut self,
        old: Option<Backend>,
        target: &Target,
    ) -> Result<Backend, String> {
        self.wait_for_the_old_back_end();
        let old_lock = self.lock.take();
        let stop = move || {
            drop(old);
            drop(old_lock);
        };
        // Should no thread be available, it is stopped here, as it would be without one.
        self.stopping = std::thread::Builder::new()
            .name("umbra-stop-backend".into())
            .spawn(stop)
            .ok();
        let lock = match ProfileLock::acquire(&target.profile) {
            Ok(lock) => lock,
            Err(_) if self.stopping.is_some() => {
                self.wait_for_the_old_back_end();
                ProfileLock::acquire(&target.profile).map_err(|e| e.report().to_string())?
            }
            Err(e) => return Err(e.report().to_string()),
        };
        self.lock = Some(lock);
        let config = BackendConfig {
            profile_dir: target.profile.clone(),
            network: NetworkSource::File(target.file.clone()),
            networks: Some(self.networks.clone()),
            ..self.template.clone()
        };
        let wake = self.wake.clone();
        Backend::start(config, move || wake())
            .map_err(|e| format!("starting the back end: {}", e.report()))
    }

    /// Waits until the back end stopped by the last switch has stopped and released its
    /// profile.
    fn wait_for_the_old_back_end(&mut self) {
        if let Some(stopping) = self.stopping.take() {
            let _ = stopping.join();
        }
    }

    /// The starting profile (shown in Settings).
    pub(crate) fn base(&self) -> &Path {
        self.networks.base()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use umbra_crypto::{Identity, OsRandom};

    fn network_file(path: &Path, key: &Ed25519PublicKey) {
        let json = serde_json::json!({
            "network": "test",
            "registry_url": "http://127.0.0.1:9",
            "registry_pubkey": key.to_hex(),
        });
        std::fs::write(path, json.to_string()).unwrap();
    }

    #[test]
    fn the_current_network_is_known_by_its_registry_key_not_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, k2) = (
            Identity::generate(&mut OsRandom).ed25519_public(),
            Identity::generate(&mut OsRandom).ed25519_public(),
        );
        let a = dir.path().join("a.json");
        network_file(&a, &k1);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let copy = dir.path().join("copy.json");
        network_file(&copy, &k1);
        let other = dir.path().join("other.json");
        network_file(&other, &k2);
        let profile = dir.path().join("p");
        let t = Target {
            profile: profile.clone(),
            file: a.clone(),
            key: k1,
        };
        // Another spelling of the same file, and a copy of it: the same network.
        assert!(t.is_current(&profile, Some(&dir.path().join("sub/../a.json"))));
        assert!(t.is_current(&profile, Some(&copy)));
        // Another network, another profile, no network, an unreadable one: not current.
        assert!(!t.is_current(&profile, Some(&other)));
        assert!(!t.is_current(&dir.path().join("q"), Some(&a)));
        assert!(!t.is_current(&profile, None));
        assert!(!t.is_current(&profile, Some(&dir.path().join("gone.json"))));
    }
}
