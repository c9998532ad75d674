//! Where everything of one devnet lives inside its directory.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The paths of one devnet directory. The root is made absolute once, so that the paths
/// written into configuration files and compared with process command lines stay valid
/// whatever the current directory of a later command.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of `dir` (which need not exist yet).
    pub(crate) fn new(dir: &Path) -> anyhow::Result<Layout> {
        let root = std::path::absolute(dir)
            .with_context(|| format!("resolving the devnet directory {}", dir.display()))?;
        Ok(Layout { root })
    }

    /// The devnet directory itself.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// What clients read: seed URL, registry key, nodes.
    pub(crate) fn network_file(&self) -> PathBuf {
        self.root.join("network.json")
    }

    /// What this CLI reads: processes, ports, keys.
    pub(crate) fn state_file(&self) -> PathBuf {
        self.root.join("devnet.json")
    }

    /// The lock file held while a command changes the network.
    pub(crate) fn lock_file(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// The directory of all logs.
    pub(crate) fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The registry's own directory (key, database).
    pub(crate) fn registry_dir(&self) -> PathBuf {
        self.root.join("registry")
    }

    /// The file in which the registry announces its address and key at start.
    pub(crate) fn registry_ready_file(&self) -> PathBuf {
        self.registry_dir().join("ready.json")
    }

    /// The registry's log.
    pub(crate) fn registry_log(&self) -> PathBuf {
        self.logs_dir().join("registry.log")
    }

    /// The attachment server's directory (its ready file; its data below).
    pub(crate) fn attachments_dir(&self) -> PathBuf {
        self.root.join("attachments")
    }

    /// The attachment server's data directory (blobs, database, X25519 key).
    pub(crate) fn attachments_data_dir(&self) -> PathBuf {
        self.attachments_dir().join("data")
    }

    /// The file in which the attachment server announces its address and key at start.
    pub(crate) fn attachments_ready_file(&self) -> PathBuf {
        self.attachments_dir().join("ready.json")
    }

    /// The attachment server's log.
    pub(crate) fn attachments_log(&self) -> PathBuf {
        self.logs_dir().join("attachments.log")
    }

    /// The directory of one node.
    pub(crate) fn node_dir(&self, name: &str) -> PathBuf {
        self.root.join("nodes").join(name)
    }

    /// One node's data directory (key, TLS certificate, messages).
    pub(crate) fn node_data_dir(&self, name: &str) -> PathBuf {
        self.node_dir(name).join("data")
    }

    /// One node's configuration file.
    pub(crate) fn node_config(&self, name: &str) -> PathBuf {
        self.node_dir(name).join("node.toml")
    }

    /// One node's log.
    pub(crate) fn node_log(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }

    /// The directory as the user should type it in a suggested command.
    pub(crate) fn shown(&self) -> String {
        shown_path(&self.root)
    }

    /// `--dir X` to append to a suggested command, or nothing for the default directory.
    pub(crate) fn dir_flag(&self) -> String {
        let shown = self.shown();
        if shown == super::DEFAULT_DIR {
            String::new()
        } else {
            format!(" --dir {shown}")
        }
    }
}

/// `path` relative to the current directory when it lies inside it, else as it is.
pub(crate) fn shown_path(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    match cwd.as_deref().and_then(|c| path.strip_prefix(c).ok()) {
        Some(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see half a
/// file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_absolute_and_inside_the_root() {
        let l = Layout::new(Path::new("some/devnet")).unwrap();
        assert!(l.root().is_absolute());
        for p in [
            l.network_file(),
            l.state_file(),
            l.registry_log(),
            l.node_config("node-01"),
            l.node_data_dir("node-01"),
            l.node_log("node-01"),
        ] {
            assert!(p.starts_with(l.root()), "{}", p.display());
        }
        assert_eq!(l.node_log("node-07").file_name().unwrap(), "node-07.log");
    }

    #[test]
    fn default_dir_needs_no_flag() {
        let l = Layout::new(Path::new(crate::devnet::DEFAULT_DIR)).unwrap();
        assert_eq!(l.dir_flag(), "");
        let l = Layout::new(Path::new("elsewhere")).unwrap();
        assert_eq!(l.dir_flag(), " --dir elsewhere");
    }
}
