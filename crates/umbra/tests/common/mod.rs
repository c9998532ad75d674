//! Helpers shared by the devnet end-to-end tests: the `umbra` binary under test, a child
//! process under a hang guard, and building the daemons next to it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Hang guard of one client command.
pub(crate) const GUARD: Duration = Duration::from_secs(240);

/// Hang guard of building the daemons.
const BUILD_GUARD: Duration = Duration::from_secs(1800);

/// The `umbra` binary under test.
pub(crate) fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_umbra"))
}

/// Waits for `child`, killing it and failing the test if it runs longer than `guard`.
pub(crate) fn finish(mut child: Child, guard: Duration, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > guard {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} hung for {guard:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Builds umbra-node and umbra-registry next to the `umbra` binary under test.
pub(crate) fn build_daemons() {
    let bin_dir = exe().parent().unwrap().to_path_buf();
    let profile = bin_dir.file_name().unwrap().to_str().unwrap().to_owned();
    let target = bin_dir.parent().unwrap().to_path_buf();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "-p",
            "umbra-node",
            "-p",
            "umbra-registry",
            "--target-dir",
        ])
        .arg(&target);
    if profile == "release" {
        cmd.arg("--release");
    } else if profile != "debug" {
        cmd.args(["--profile", &profile]);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(child, BUILD_GUARD, "building the daemons");
    assert!(
        out.status.success(),
        "building the daemons failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `umbra ARGS` with `stdin`, the environment cleared of every `UMBRA_*` variable the CLI
/// reads but for `env`, under the [`GUARD`].
#[allow(dead_code)] // not every test file runs client commands
pub(crate) fn umbra(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = Command::new(exe());
    cmd.args(args)
        .env_remove("UMBRA_PROFILE")
        .env_remove("UMBRA_NETWORK")
        .env_remove("UMBRA_PASSPHRASE")
        .env_remove("UMBRA_DEVNET_DIR")
        .env_remove("UMBRA_TEST_CRASH")
        .env_remove("UMBRA_DEVNET_INACTIVE_AFTER_MS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    finish(child, GUARD, &format!("umbra {}", args.join(" ")))
}

/// The standard output of a command that must have succeeded.
#[allow(dead_code)]
pub(crate) fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The standard output of a command that must have succeeded, as JSON.
#[allow(dead_code)]
pub(crate) fn json(out: &Output, what: &str) -> Value {
    let s = ok(out, what);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {s}"))
}
