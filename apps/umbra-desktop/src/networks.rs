//! Which network the app uses, and which profile holds each network's data.
//!
//! A profile belongs to the network it was first used on (the messenger records the
//! network's registry key and refuses any other), so that two networks' contacts, messages
//! and onion guards never mix. Switching networks in the app therefore also switches
//! profile: the profile the app was started with (`--profile`, or the default one) keeps its
//! network, and every other network gets a profile of its own under
//! `<profile>/other-networks/<registry key>`. Which is which, and the network used last, are
//! kept in `<profile>/desktop-networks.json` (paths and public keys only: nothing secret).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::client::NetworkConfig;
use serde::{Deserialize, Serialize};
use umbra_crypto::Ed25519PublicKey;

/// The index file inside the starting profile.
const INDEX_FILE: &str = "desktop-networks.json";
/// Where the other networks' profiles live inside the starting profile.
const OTHER_NETWORKS_DIR: &str = "other-networks";
/// Hex digits of the registry key that name a network's profile directory (64 bits: two
/// networks of one user do not collide by chance).
const DIR_KEY_HEX: usize = 16;
/// Largest index read (a user has a handful of networks).
const MAX_INDEX_BYTES: u64 = 64 * 1024;

/// What the index file holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Index {
    /// The network file used last: the app starts on it when none is given.
    last: Option<PathBuf>,
    /// Registry key (hex) → the profile directory holding that network's data.
    profiles: BTreeMap<String, PathBuf>,
}

/// The networks and their profiles, rooted at the profile the app was started with.
#[derive(Debug, Clone)]
pub struct Networks {
    base: PathBuf,
}

impl Networks {
    /// The networks of the starting profile `base`.
    pub fn new(base: PathBuf) -> Self {
        Self { base }
    }

    /// The starting profile.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The registry key of the network file at `path`, or why it is not a network file.
    pub fn key_of(path: &Path) -> Result<Ed25519PublicKey, String> {
        if !path.is_file() {
            return Err(format!(
                "{} is not a file (`umbra devnet up` writes .umbra-devnet/network.json)",
                path.display()
            ));
        }
        NetworkConfig::load(path)
            .map(|n| n.registry_pubkey)
            .map_err(|e| umbra_report::Report(&e).to_string())
    }

    /// The network file used last, if it is still there.
    pub fn last(&self) -> Option<PathBuf> {
        self.read().last.filter(|p| p.is_file())
    }

    /// The profile that holds (or will hold) the data of the network with `key`: the one
    /// recorded for it; else the starting profile while no network has claimed it; else a
    /// profile of the network's own.
    pub fn profile_for(&self, key: &Ed25519PublicKey) -> PathBuf {
        let index = self.read();
        if let Some(dir) = index.profiles.get(&key.to_hex()) {
            return dir.clone();
        }
        if index.profiles.values().any(|d| d == &self.base) {
            self.separate_profile(key)
        } else {
            self.base.clone()
        }
    }

    /// The profile of its own for the network with `key`.
    pub fn separate_profile(&self, key: &Ed25519PublicKey) -> PathBuf {
        let hex = key.to_hex();
        self.base
            .join(OTHER_NETWORKS_DIR)
            .join(&hex[..DIR_KEY_HEX.min(hex.len())])
    }

    /// Records that `profile` holds the network with `key`, read from `file`, and that this
    /// network is the one to start on next time.
    pub fn record(
        &self,
        key: &Ed25519PublicKey,
        profile: &Path,
        file: &Path,
    ) -> std::io::Result<()> {
        let mut index = self.read();
        let file = std::path::absolute(file)?;
        let unchanged = index.last.as_deref() == Some(file.as_path())
            && index.profiles.get(&key.to_hex()).map(PathBuf::as_path) == Some(profile);
        if unchanged {
            return Ok(());
        }
        index.last = Some(file);
        index
            .profiles
            .insert(key.to_hex(), std::path::absolute(profile)?);
        self.write(&index)
    }

    fn path(&self) -> PathBuf {
        self.base.join(INDEX_FILE)
    }

    /// The index; an unreadable or damaged one counts as empty (it only saves choosing a
    /// network again: each profile still refuses a network that is not its own).
    fn read(&self) -> Index {
        use std::io::Read as _;
        let Ok(file) = std::fs::File::open(self.path()) else {
            return Index::default();
        };
        let mut bytes = Vec::new();
        if file.take(MAX_INDEX_BYTES).read_to_end(&mut bytes).is_err() {
            return Index::default();
        }
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(
                "ignoring the damaged network index {}: {e}",
                self.path().display()
            );
            Index::default()
        })
    }

    /// Writes the index whole (temporary file, then rename: never half a file).
    fn write(&self, index: &Index) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.base)?;
        let tmp = self.base.join(format!("{INDEX_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(index).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, self.path())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(b: u8) -> Ed25519PublicKey {
        Ed25519PublicKey::from_bytes([b; 32])
    }

    #[test]
    fn the_starting_profile_serves_the_first_network_and_others_get_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("p");
        let n = Networks::new(base.clone());
        let file = dir.path().join("a.json");
        std::fs::write(&file, "{}").unwrap();
        assert_eq!(n.profile_for(&key(1)), base);
        n.record(&key(1), &base, &file).unwrap();
        assert_eq!(n.profile_for(&key(1)), base);
        let other = n.profile_for(&key(2));
        assert_eq!(other, base.join("other-networks").join("0202020202020202"));
        n.record(&key(2), &other, &file).unwrap();
        assert_eq!(n.profile_for(&key(2)), other);
        assert_eq!(n.profile_for(&key(1)), base);
        assert_eq!(n.last(), Some(std::path::absolute(&file).unwrap()));
    }

    #[test]
    fn a_damaged_index_counts_as_empty_and_a_vanished_network_is_not_last() {
        let dir = tempfile::tempdir().unwrap();
        let n = Networks::new(dir.path().to_path_buf());
        std::fs::write(dir.path().join(INDEX_FILE), b"{not json").unwrap();
        assert_eq!(n.profile_for(&key(1)), dir.path());
        let file = dir.path().join("gone.json");
        std::fs::write(&file, "{}").unwrap();
        n.record(&key(1), dir.path(), &file).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(n.last(), None);
    }

    #[test]
    fn a_missing_or_malformed_network_file_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Networks::key_of(&dir.path().join("nope.json")).unwrap_err();
        assert!(missing.contains("is not a file"), "{missing}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"registry_url\": 3}").unwrap();
        let e = Networks::key_of(&bad).unwrap_err();
        assert!(!e.contains('\n') && e.contains("registry_url"), "{e}");
    }
}
