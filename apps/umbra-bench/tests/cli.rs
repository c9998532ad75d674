#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Wrong input to `umbra-bench` gets one line that says what to do, before any work.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_umbra-bench"))
        .args(args)
        .env_remove("UMBRA_NETWORK")
        .output()
        .unwrap()
}

fn one_error_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn a_missing_network_file_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("network.json");
    for mode in ["groups", "messenger"] {
        let out = bench(&[mode, "--network", missing.to_str().unwrap()]);
        let err = one_error_line(&out);
        assert!(err.contains("does not exist"), "{err}");
        assert!(err.contains("umbra devnet up"), "{err}");
    }
}

#[test]
fn a_group_needs_two_members_and_fits_the_messenger_limit() {
    let dir = tempfile::tempdir().unwrap();
    let network = dir.path().join("network.json");
    let net = network.to_str().unwrap();
    let err = one_error_line(&bench(&["groups", "--network", net, "--members", "1"]));
    assert!(err.contains("at least 2"), "{err}");
    let err = one_error_line(&bench(&["groups", "--network", net, "--members", "100000"]));
    assert!(err.contains("over the messenger's limit"), "{err}");
}
