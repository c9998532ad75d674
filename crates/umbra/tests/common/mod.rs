//! Helpers shared by the devnet end-to-end tests: the `umbra` binary under test, a child
//! process under a hang guard, and building the daemons next to it.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
