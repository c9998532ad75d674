//! RocksDB compiled once per run of xtask: its C++ (bundled in librocksdb-sys, behind the
//! node's store) takes ≈ 13 minutes on 2 cores, and cargo compiles it again for every
//! *variant* of librocksdb-sys's build script. A variant is not only another profile: the build
//! script's own build dependencies (bindgen, and syn under it) are compiled with the features of
//! whatever else the command selects, so `cargo doc` (no dev-dependencies), `cargo nextest`
//! and the fuzz workspace would each get their own. So xtask builds the store once, then points
//! every later cargo command at that archive (`ROCKSDB_LIB_DIR`, `ROCKSDB_STATIC`): a new
//! variant then only runs bindgen and links.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, bail};

use crate::run::{cargo, link_rocksdb_archive, rocksdb_archive};

/// Builds the store (dev profile, the one CI uses) unless done already, and makes every later
/// cargo command of this run link its RocksDB archive. Returns the archive's directory.
pub(crate) fn ensure_archive() -> anyhow::Result<PathBuf> {
    if let Some(dir) = rocksdb_archive() {
        return Ok(dir.to_path_buf());
    }
    let mut cmd = cargo([
        "build",
        "--locked",
        "-p",
        "umbra-store",
        "--message-format=json-render-diagnostics",
    ]);
    eprintln!("xtask: building RocksDB once (umbra-store), then linking it everywhere");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("building umbra-store for its RocksDB archive")?;
    if !out.status.success() {
        bail!("building umbra-store (and RocksDB) failed");
    }
    let dir = archive_dir(&String::from_utf8_lossy(&out.stdout))?;
    link_rocksdb_archive(dir.clone());
    Ok(dir)
}

/// The output directory of librocksdb-sys's build script in cargo's JSON messages.
fn archive_dir(messages: &str) -> anyhow::Result<PathBuf> {
    for line in messages.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_rocksdb = msg["reason"] == "build-script-executed"
            && msg["package_id"]
                .as_str()
                .is_some_and(|id| id.contains("librocksdb-sys"));
        if let (true, Some(dir)) = (is_rocksdb, msg["out_dir"].as_str()) {
            let dir = PathBuf::from(dir);
            if dir.join("librocksdb.a").is_file() {
                return Ok(dir);
            }
            bail!("{} has no librocksdb.a", dir.display());
        }
    }
    bail!("the build of umbra-store did not report librocksdb-sys's output directory")
}

#[cfg(test)]
mod tests {
    use super::archive_dir;

    #[test]
    fn the_archive_directory_comes_from_the_build_script_message() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("librocksdb.a"), b"!<arch>\n").expect("writing");
        let msgs = format!(
            "{{\"reason\":\"compiler-artifact\"}}\nnot json\n{{\"reason\":\"build-script-executed\",\"package_id\":\"registry+https://github.com/rust-lang/crates.io-index#librocksdb-sys@0.19.0+11.8.1\",\"out_dir\":{}}}\n",
            serde_json::to_string(&dir).expect("a path serializes")
        );
        assert_eq!(archive_dir(&msgs).expect("found"), dir);
        assert!(archive_dir("{}").is_err());
        std::fs::remove_dir_all(&dir).expect("cleaning up");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-rocksdb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        dir
    }
}
