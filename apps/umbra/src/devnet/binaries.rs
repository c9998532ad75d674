//! Finding the daemon binaries: an environment variable naming the file, else the directory of
//! the running `umbra` (a cargo target directory holds them all side by side), else `PATH`.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// What to build when a daemon is missing.
pub(crate) const BUILD_HINT: &str =
    "cargo build --release -p umbra-node -p umbra-registry -p umbra-attachments";

/// One daemon binary this CLI runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Daemon {
    /// File name without extension.
    pub(crate) name: &'static str,
    /// Environment variable that overrides the search.
    pub(crate) env: &'static str,
}

/// The storage node.
pub(crate) const NODE: Daemon = Daemon {
    name: "umbra-node",
    env: "UMBRA_NODE_BIN",
};

/// The registry.
pub(crate) const REGISTRY: Daemon = Daemon {
    name: "umbra-registry",
    env: "UMBRA_REGISTRY_BIN",
};

/// The attachment server.
pub(crate) const ATTACHMENTS: Daemon = Daemon {
    name: "umbra-attachments",
    env: "UMBRA_ATTACHMENTS_BIN",
};

/// Finds `daemon`, or fails with one line saying what to build or set.
pub(crate) fn locate(daemon: Daemon) -> anyhow::Result<PathBuf> {
    let from_env = std::env::var_os(daemon.env).filter(|v| !v.is_empty());
    let own_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let path = std::env::var_os("PATH");
    search(
        daemon,
        from_env.map(PathBuf::from),
        own_dir.as_deref(),
        path.as_deref(),
    )
}

fn search(
    daemon: Daemon,
    from_env: Option<PathBuf>,
    own_dir: Option<&Path>,
    path: Option<&std::ffi::OsStr>,
) -> anyhow::Result<PathBuf> {
    if let Some(p) = from_env {
        if is_executable(&p) {
            return Ok(p);
        }
        bail!(
            "{}={} is not an executable file: fix the variable or unset it (or build it with `{BUILD_HINT}`)",
            daemon.env,
            p.display()
        );
    }
    let file = format!("{}{}", daemon.name, std::env::consts::EXE_SUFFIX);
    let beside = own_dir.map(|d| d.join(&file));
    if let Some(p) = beside.as_ref().filter(|p| is_executable(p)) {
        return Ok(p.clone());
    }
    if let Some(p) = path
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(&file))
        .find(|p| is_executable(p))
    {
        return Ok(p);
    }
    let place = match own_dir {
        Some(d) => format!("next to umbra in {} or on PATH", d.display()),
        None => "on PATH".to_owned(),
    };
    bail!(
        "{} not found {place}: build it with `{BUILD_HINT}` (with the same profile as umbra), or set {}",
        daemon.name,
        daemon.env
    )
}

fn is_executable(p: &Path) -> bool {
    let Ok(md) = std::fs::metadata(p) else {
        return false;
    };
    if !md.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        md.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_exe(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        p
    }

    #[test]
    fn env_then_own_dir_then_path() {
        let own = tempfile::tempdir().unwrap();
        let on_path = tempfile::tempdir().unwrap();
        let via_env = tempfile::tempdir().unwrap();
        let env_file = make_exe(via_env.path(), "custom-node");
        let path_file = make_exe(on_path.path(), "umbra-node");
        let path_var = std::env::join_paths([on_path.path()]).unwrap();

        let found = search(NODE, None, Some(own.path()), Some(&path_var)).unwrap();
        assert_eq!(found, path_file);
        let own_file = make_exe(own.path(), "umbra-node");
        let found = search(NODE, None, Some(own.path()), Some(&path_var)).unwrap();
        assert_eq!(found, own_file);
        let found = search(NODE, Some(env_file.clone()), Some(own.path()), None).unwrap();
        assert_eq!(found, env_file);
    }

    #[test]
    fn missing_binary_says_what_to_build() {
        let own = tempfile::tempdir().unwrap();
        let e = search(REGISTRY, None, Some(own.path()), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("umbra-registry not found"), "{e}");
        assert!(e.contains(BUILD_HINT), "{e}");
        assert!(!e.contains('\n'));
        let e = search(REGISTRY, Some(own.path().join("nope")), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("UMBRA_REGISTRY_BIN="), "{e}");
    }
}
