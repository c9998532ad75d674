//! Starting processes: every command is echoed, run from the workspace root, and its failure
//! becomes one error line naming the command.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What a child gets after a Ctrl-C to end by itself before [`run_interruptible`] sends it one.
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `cargo` as the one running xtask (so the same toolchain), from the workspace root.
pub(crate) fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root()).args(args);
    if let Some(dir) = ROCKSDB_ARCHIVE.get() {
        cmd.env("ROCKSDB_LIB_DIR", dir).env("ROCKSDB_STATIC", "1");
    }
    if let Some(driver) = CLIPPY_DRIVER.get() {
        // clippy-driver reads its own arguments from `CLIPPY_ARGS`, separated by this marker
        // (as `cargo clippy` passes them).
        cmd.env("RUSTC_WORKSPACE_WRAPPER", driver).env(
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
        );
    }
    cmd
}

/// clippy-driver, once [`lint_every_build`] was called.
static CLIPPY_DRIVER: OnceLock<PathBuf> = OnceLock::new();

/// From now on every [`cargo`] command compiles the workspace's own crates through
/// clippy-driver with every warning denied: what `cargo clippy -- -D warnings` checks, but
/// while producing the real artifacts, so the test build is also the lint run and CI compiles
/// the workspace once instead of once to check and once to test. Dependencies are compiled
/// by rustc as before (cargo applies `RUSTC_WORKSPACE_WRAPPER` to workspace members only);
/// the workspace's own crates get their own fingerprint, so every later command of the run
/// must keep the wrapper or they are compiled again.
///
/// # Errors
/// When the toolchain has no clippy-driver (`rustup component add clippy`).
pub(crate) fn lint_every_build() -> anyhow::Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .context("asking rustc for its sysroot")?;
    if !out.status.success() {
        bail!("`rustc --print sysroot` failed: {}", out.status);
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let driver = sysroot.join("bin").join("clippy-driver");
    if !driver.is_file() {
        bail!(
            "{} is missing: install clippy for this toolchain (`rustup component add clippy`)",
            driver.display()
        );
    }
    let _ = CLIPPY_DRIVER.set(driver);
    Ok(())
}

/// A [`cargo`] command without the lint wrapper of [`lint_every_build`] (for another
/// workspace, such as `fuzz/`, whose crates are not the ones being linted).
pub(crate) fn cargo_unlinted<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = cargo(args);
    cmd.env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS");
    cmd
}

/// The directory of the RocksDB archive every later cargo command links (see
/// [`crate::rocksdb`]); unset until it has been built.
static ROCKSDB_ARCHIVE: OnceLock<PathBuf> = OnceLock::new();

/// From now on every [`cargo`] command links the RocksDB archive in `dir` instead of compiling
/// RocksDB (`ROCKSDB_LIB_DIR` and `ROCKSDB_STATIC`, read by librocksdb-sys's build script).
pub(crate) fn link_rocksdb_archive(dir: PathBuf) {
    let _ = ROCKSDB_ARCHIVE.set(dir);
}

/// The directory [`link_rocksdb_archive`] set, if any.
pub(crate) fn rocksdb_archive() -> Option<&'static Path> {
    ROCKSDB_ARCHIVE.get().map(PathBuf::as_path)
}

/// Runs `cmd` to completion with inherited output, failing when it does.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = show(cmd);
    eprintln!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("starting `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` to completion with inherited standard error and returns its standard output,
/// failing when it fails.
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<Vec<u8>> {
    let shown = show(cmd);
    eprintln!("$ {shown}");
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("starting `{shown}`"))?;
    if !out.status.success() {
        bail!("`{shown}` failed ({})", out.status);
    }
    Ok(out.stdout)
}

/// Runs `cmd` to completion with inherited output and returns how it ended, whether it
/// succeeded or not. Once `interrupted` is set (by this program's Ctrl-C handler) the child,
/// which normally got the same Ctrl-C from the terminal, gets [`INTERRUPT_GRACE`] to wind
/// down by itself before it is sent a SIGINT of its own (it may have been spared the first:
/// `kill -INT` of this process alone).
pub(crate) fn run_interruptible(
    cmd: &mut Command,
    interrupted: &AtomicBool,
) -> anyhow::Result<ExitStatus> {
    let shown = show(cmd);
    eprintln!("$ {shown}");
    let mut child = cmd.spawn().with_context(|| format!("starting `{shown}`"))?;
    let mut interrupted_at: Option<Instant> = None;
    let mut forwarded = false;
    loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for `{shown}`"))?
        {
            return Ok(status);
        }
        if interrupted.load(Ordering::SeqCst) {
            let at = *interrupted_at.get_or_insert_with(Instant::now);
            if !forwarded && at.elapsed() >= INTERRUPT_GRACE {
                forwarded = true;
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `cmd` runs and exits successfully, with its output hidden.
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a cargo subcommand (`cargo nextest`, `cargo fuzz`, `cargo deny`) is installed.
pub(crate) fn has_cargo_tool(name: &str) -> bool {
    succeeds(&mut cargo([name, "--version"]))
}

/// Installs a cargo subcommand from crates.io when it is missing, saying so in one line.
pub(crate) fn ensure_cargo_tool(name: &str, krate: &str) -> anyhow::Result<()> {
    if has_cargo_tool(name) {
        return Ok(());
    }
    eprintln!(
        "xtask: `cargo {name}` is not installed; installing it with `cargo install --locked {krate}`"
    );
    run(&mut cargo_unlinted(["install", "--locked", krate])).with_context(|| {
        format!("installing {krate} (install it by hand: `cargo install --locked {krate}`)")
    })
}

/// The command line of `cmd`, for people.
fn show(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    if let Some(first) = parts.first_mut()
        && first.ends_with("cargo")
    {
        "cargo".clone_into(first);
    }
    parts.join(" ")
}
