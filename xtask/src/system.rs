//! System packages the tests need beyond the Rust toolchain, installed on a fresh machine.
//!
//! The desktop scenario runs the real app in a window on Xvfb with Mesa's software renderer,
//! and winit/glutin open the X and GL libraries at run time, so nothing fails at build time
//! when they are missing: the scenario would fail instead. On Debian, run as root (CI's
//! machines), the missing packages are installed with apt-get; anywhere else xtask stops with
//! the one command to run.

use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::run::run;

/// Debian packages of the desktop scenario: the X server, Mesa's software GL (EGL and GLX),
/// and the X libraries winit loads.
pub(crate) const DESKTOP_SCENARIO: &[&str] = &[
    "xvfb",
    "libgl1-mesa-dri",
    "libegl1",
    "libgl1",
    "libxkbcommon-x11-0",
    "libxcursor1",
    "libxrandr2",
    "libxi6",
];

/// Debian packages that building RocksDB (bundled in `librocksdb-sys`, the node's store) needs:
/// a C++ compiler, and libclang for bindgen (the image has only `libclang-cpp`).
pub(crate) const ROCKSDB_BUILD: &[&str] = &["g++", "libclang-dev"];

/// Makes sure a C++ compiler and libclang are there before anything builds RocksDB: installed
/// with apt-get on Debian as root, otherwise the one command to run.
pub(crate) fn ensure_rocksdb_build_tools() -> anyhow::Result<()> {
    const WHY: &str = "building RocksDB (the service node's store)";
    if !has_program("dpkg-query") {
        if has_program("c++") && has_libclang() {
            return Ok(());
        }
        bail!(
            "{WHY} needs a C++ compiler and libclang: install them with your package manager (Debian: `apt-get install -y g++ libclang-dev`), or point LIBCLANG_PATH at libclang"
        );
    }
    install_missing(ROCKSDB_BUILD, WHY)
}

/// Whether the dynamic loader knows a libclang (what bindgen loads at build time), or
/// `LIBCLANG_PATH` names one.
fn has_libclang() -> bool {
    if std::env::var_os("LIBCLANG_PATH").is_some() {
        return true;
    }
    Command::new("ldconfig")
        .arg("-p")
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                let l = l.trim_start();
                l.starts_with("libclang.so")
                    || (l.starts_with("libclang-") && !l.starts_with("libclang-cpp"))
            })
        })
}

/// Makes sure every package of `packages` is installed (Debian), installing the missing ones
/// when we are root; `why` says in a few words what needs them.
pub(crate) fn ensure_debian_packages(packages: &[&str], why: &str) -> anyhow::Result<()> {
    if !has_program("dpkg-query") {
        // Not Debian: the one program we can check for is the X server.
        if has_program("Xvfb") {
            return Ok(());
        }
        bail!("{why} need Xvfb and Mesa's software OpenGL: install them with your package manager");
    }
    install_missing(packages, why)
}

/// On Debian: installs the packages of `packages` that are missing (as root), or says the one
/// command to run.
fn install_missing(packages: &[&str], why: &str) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!("{why} need Debian packages that are missing: run `sudo apt-get install -y {list}`");
    }
    eprintln!("xtask: installing what {why} need: {list}");
    let quiet = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    // A fresh machine's package lists may be empty or stale; one update, then the install.
    run(&mut quiet(&["-q", "update"])).context("updating the package lists")?;
    let mut install = quiet(&["-q", "install", "-y", "--no-install-recommends"]);
    install.args(&missing);
    run(&mut install).with_context(|| format!("installing {list}"))
}

/// Whether `name` is an executable on `PATH`.
fn has_program(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// Whether Debian says `package` is installed.
fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).ends_with(" installed")
        })
}

/// Whether this process runs as root.
fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}
