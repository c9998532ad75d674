//! What the transport keeps across restarts, in a directory the caller gives, written
//! atomically: the guards (a small JSON file) and the last verified node list (the registry's
//! signed body, verbatim), so that a client starts while the registry is unreachable.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ClientError;
use crate::paths::Guard;

/// The file name inside the caller's directory.
pub const GUARD_FILE: &str = "onion-guards.json";

/// The last node list accepted, as the registry signed and served it.
pub const NODE_LIST_FILE: &str = "node-list.json";

/// The largest guard file read (64 KiB).
const MAX_GUARD_FILE_BYTES: u64 = 64 * 1024;

/// The format version written.
pub const GUARD_FILE_VERSION: u32 = 1;

/// What survives a restart: the guards and the newest node list epoch seen (so that an older
/// list is refused after a restart too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    /// [`GUARD_FILE_VERSION`].
    pub version: u32,
    /// Newest node list epoch accepted.
    pub list_epoch: Option<u64>,
    /// The guards.
    pub guards: Vec<Guard>,
    /// When the registry last answered with a valid list (Unix ms): the saved list
    /// ([`NODE_LIST_FILE`]) counts as fetched then, so a restart does not refetch it early.
    #[serde(default)]
    pub list_fetched_at_ms: Option<u64>,
}

/// Reads and writes [`GUARD_FILE`] in one directory.
#[derive(Debug, Clone)]
pub struct GuardStore {
    path: PathBuf,
    list_path: PathBuf,
}

impl GuardStore {
    /// A store for `dir/`[`GUARD_FILE`] (the directory must exist; see [`Self::open`]).
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(GUARD_FILE),
            list_path: dir.join(NODE_LIST_FILE),
        }
    }

    /// A store for `dir/`[`GUARD_FILE`], creating `dir` (and its parents) if it is missing,
    /// owner-only (0700) on Unix: a directory that does not exist would make every write of
    /// the guards fail, and every run choose new guards.
    ///
    /// # Errors
    /// [`ClientError::CreatingStateDir`].
    pub fn open(dir: &Path) -> Result<Self, ClientError> {
        create_private_dir(dir).map_err(|source| ClientError::CreatingStateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self::new(dir))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file; `Ok(None)` if there is none yet.
    ///
    /// # Errors
    /// [`ClientError::LoadingGuards`] if it cannot be read, is too large, is malformed or of
    /// an unknown version.
    pub fn load(&self) -> Result<Option<PersistedState>, ClientError> {
        let err = |reason: String| ClientError::LoadingGuards {
            path: self.path.clone(),
            reason,
        };
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_GUARD_FILE_BYTES + 1),
            &mut bytes,
        )
        .map_err(|e| err(e.to_string()))?;
        if bytes.len() as u64 > MAX_GUARD_FILE_BYTES {
            return Err(err("larger than 64 KiB".into()));
        }
        let state: PersistedState =
            serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
        if state.version != GUARD_FILE_VERSION {
            return Err(err(format!("unknown version {}", state.version)));
        }
        Ok(Some(state))
    }

    /// Writes the file atomically: a temporary file in the same directory, flushed to disk,
    /// then renamed over the old one (owner-only permissions on Unix).
    ///
    /// # Errors
    /// [`ClientError::SavingGuards`].
    pub fn save(&self, state: &PersistedState) -> Result<(), ClientError> {
        let err = |source: std::io::Error| ClientError::SavingGuards {
            path: self.path.clone(),
            source,
        };
        let text = serde_json::to_vec_pretty(state).map_err(|e| err(std::io::Error::other(e)))?;
        write_atomically(&self.path, &text).map_err(err)
    }

    /// The saved node list body, if there is one of at most `max_bytes`. Only a cache: it is
    /// verified again before use, and an unreadable one is as good as none.
    pub fn load_list(&self, max_bytes: usize) -> Option<Vec<u8>> {
        let file = std::fs::File::open(&self.list_path).ok()?;
        let mut bytes = Vec::new();
        let limit = u64::try_from(max_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, limit), &mut bytes).ok()?;
        (bytes.len() <= max_bytes).then_some(bytes)
    }

    /// Saves the body of a node list just accepted (atomically, as the guards).
    ///
    /// # Errors
    /// The I/O error; the caller only warns: the list is a cache.
    pub fn save_list(&self, body: &[u8]) -> std::io::Result<()> {
        write_atomically(&self.list_path, body)
    }
}

/// Writes `path` atomically: a temporary file in the same directory, flushed to disk, then
/// renamed over the old one (owner-only permissions on Unix).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        // Makes the rename durable where the platform allows syncing a directory.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates `dir` and its missing parents; a directory this call creates is owner-only on
/// Unix (an existing one keeps its permissions: it may be shared on purpose).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_corrupt_and_future_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = GuardStore::new(dir.path());
        assert_eq!(store.load().unwrap(), None);
        let state = PersistedState {
            version: GUARD_FILE_VERSION,
            list_epoch: Some(9),
            guards: vec![Guard {
                node: umbra_crypto::Ed25519PublicKey::from_bytes([3; 32]),
                since_ms: 42,
                confirmed: true,
                misses: 0,
            }],
            list_fetched_at_ms: Some(1_700_000_000_000),
        };
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap(), Some(state.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "owner-only");
        }
        std::fs::write(store.path(), b"{not json").unwrap();
        assert!(matches!(
            store.load(),
            Err(ClientError::LoadingGuards { .. })
        ));
        let future = serde_json::json!({"version": 2, "list_epoch": null, "guards": []});
        std::fs::write(store.path(), future.to_string()).unwrap();
        assert!(matches!(
            store.load(),
            Err(ClientError::LoadingGuards { .. })
        ));
        std::fs::write(store.path(), vec![b' '; 70 * 1024]).unwrap();
        assert!(matches!(
            store.load(),
            Err(ClientError::LoadingGuards { .. })
        ));
    }

    #[test]
    fn open_creates_a_missing_directory_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("profile").join("network");
        assert!(matches!(
            GuardStore::new(&dir).save(&PersistedState {
                version: GUARD_FILE_VERSION,
                list_epoch: None,
                guards: Vec::new(),
                list_fetched_at_ms: None,
            }),
            Err(ClientError::SavingGuards { .. })
        ));
        let store = GuardStore::open(&dir).unwrap();
        assert!(dir.is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        store
            .save(&PersistedState {
                version: GUARD_FILE_VERSION,
                list_epoch: None,
                guards: Vec::new(),
                list_fetched_at_ms: None,
            })
            .unwrap();
        // Opening again is fine.
        GuardStore::open(&dir).unwrap();
        // A file where the directory should be is an error.
        let file = root.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            GuardStore::open(&file.join("network")),
            Err(ClientError::CreatingStateDir { .. })
        ));
    }
}
