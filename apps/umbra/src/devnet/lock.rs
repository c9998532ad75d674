//! One changing command at a time per devnet directory: `up`, `down`, `add-node`,
//! `stop-node` and `start-node` hold an advisory lock on `DIR/.lock` while they work.
//! The lock belongs to the open file, so it goes away with the process, even on a crash.

use std::fs::{File, TryLockError};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use anyhow::{Context as _, bail};

use super::layout::Layout;

/// The held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock (creating the directory if needed), or fails at once with what to do.
    pub(crate) fn acquire(layout: &Layout) -> anyhow::Result<DirLock> {
        let file = open(layout)?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) => bail!(
                "another `umbra devnet` command is changing {} right now: wait for it to finish and try again",
                layout.shown()
            ),
            Err(TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", layout.lock_file().display()))
            }
        }
    }

    /// Takes the lock, waiting up to `patience` for another command to finish.
    pub(crate) async fn acquire_patiently(
        layout: &Layout,
        patience: Duration,
    ) -> anyhow::Result<DirLock> {
        let deadline = SystemClock.instant() + patience;
        loop {
            match DirLock::acquire(layout) {
                Ok(l) => return Ok(l),
                Err(e) if SystemClock.instant() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

fn open(layout: &Layout) -> anyhow::Result<File> {
    std::fs::create_dir_all(layout.root())
        .with_context(|| format!("creating {}", layout.root().display()))?;
    let path = layout.lock_file();
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path()).unwrap();
        let first = DirLock::acquire(&layout).unwrap();
        let e = DirLock::acquire(&layout).unwrap_err().to_string();
        assert!(e.contains("another `umbra devnet` command"), "{e}");
        drop(first);
        DirLock::acquire(&layout).unwrap();
    }
}
