//! Starting processes: every command is echoed, run from the workspace root, and its failure
//! becomes one error line naming the command.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

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
    cmd
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
    run(&mut cargo(["install", "--locked", krate])).with_context(|| {
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
