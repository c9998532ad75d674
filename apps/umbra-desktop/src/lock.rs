//! One process per profile: an exclusive advisory lock on `<profile>/desktop.lock`, held for
//! the life of the app. The operating system drops it when the process ends, crash included,
//! so a stale lock never blocks a restart.
//!
//! The CLI does not take this lock yet: the lock belongs in the messenger's `Profile::open`,
//! so that every front end honours it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The lock file's name inside the profile directory.
const LOCK_FILE: &str = "desktop.lock";

/// Why the profile could not be locked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileInUse {
    /// Another process holds the lock.
    #[error("the profile {0} is already open in another Umbra window or process; close it first")]
    Busy(PathBuf),
    /// The lock file could not be created or locked.
    #[error("locking the profile {path}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases the profile.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
}

impl ProfileLock {
    /// Locks the profile in `dir` (creating the directory 0700 if it does not exist yet, as
    /// the profile itself would be).
    pub fn acquire(dir: &Path) -> Result<Self, ProfileInUse> {
        use std::os::unix::fs::DirBuilderExt as _;
        let path = dir.join(LOCK_FILE);
        let io = |source| ProfileInUse::Io {
            path: path.clone(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(ProfileInUse::Busy(dir.to_path_buf())),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_profile_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = ProfileLock::acquire(dir.path()).unwrap();
        let second = ProfileLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(second, ProfileInUse::Busy(_)), "{second}");
        drop(first);
        ProfileLock::acquire(dir.path()).unwrap();
    }
}
