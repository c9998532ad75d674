#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Switching networks in Settings: each network's account and messages stay in a profile of
//! its own, the app comes back to the first one intact, and a profile of another network is
//! offered a separate profile instead of an error only.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use support::{CHEAP, click, create_account, type_into, wait_for, wait_label};
use umbra_crypto::{Ed25519PublicKey, Identity, OsRandom};
use umbra_desktop::{
    Backend, BackendConfig, DesktopApp, NetworkSource, Networks, RecordingNotifier, Switcher,
};
use umbra_messenger::Profile;

/// A network file of a network nobody runs (its registry refuses connections): enough to
/// bind a profile to it; the app shows it as offline.
fn network_file(dir: &Path, name: &str) -> (PathBuf, Ed25519PublicKey) {
    let key = Identity::generate(&mut OsRandom).ed25519_public();
    let path = dir.join(format!("{name}.json"));
    let json = serde_json::json!({
        "network": name,
        "registry_url": "http://127.0.0.1:9",
        "registry_pubkey": key.to_hex(),
    });
    std::fs::write(&path, json.to_string()).unwrap();
    (path, key)
}

/// The app as `main` starts it: the profile for `file` among the networks of `base`.
fn app(base: &Path, file: &Path) -> Harness<'static, DesktopApp> {
    let networks = Networks::new(base.to_path_buf());
    let dir = networks.profile_for(&Networks::key_of(file).unwrap());
    let config = BackendConfig {
        profile_dir: dir.clone(),
        network: NetworkSource::File(file.to_path_buf()),
        kdf: CHEAP,
        notifier: Arc::new(RecordingNotifier::default()),
        file_server: None,
        networks: Some(networks.clone()),
    };
    let backend = Backend::start(config.clone(), || {}).unwrap();
    let lock = umbra_desktop::ProfileLock::acquire(&dir).unwrap();
    let app = DesktopApp::new(backend, dir).with_switcher(Switcher::new(
        networks,
        config,
        || {},
        Some(lock),
    ));
    Harness::builder()
        .with_size([1000.0, 900.0])
        .build_ui_state(|ui, app: &mut DesktopApp| app.show(ui), app)
}

/// Opens Settings unless it is open (its heading and the sidebar's button share the label).
fn settings(h: &mut Harness<'_, DesktopApp>) {
    if h.query_all_by_label("Settings").count() < 2 {
        click(h, "Settings");
    }
}

fn switch_to(h: &mut Harness<'_, DesktopApp>, file: &Path) {
    settings(h);
    h.run_steps(5);
    type_into(h, "Network file to use", &file.display().to_string());
    click(h, "Switch network");
}

#[test]
fn each_network_keeps_its_own_account_and_switching_back_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("profile");
    let (a, _) = network_file(dir.path(), "first");
    let (b, b_key) = network_file(dir.path(), "second");
    let mut h = app(&base, &a);
    let alice = create_account(&mut h, "Alice");
    // A message waiting in the outbox (the network is down) and a draft typed just now.
    let bob = Identity::generate(&mut OsRandom).session_id();
    click(&mut h, "New conversation");
    type_into(&mut h, "Session ID", &bob.to_hex());
    click(&mut h, "Start conversation");
    type_into(&mut h, "Message", "queued");
    h.key_press(egui::Key::Enter);
    wait_label(&mut h, "queued");
    type_into(&mut h, "Message", "half a thought");

    // A file that is not there is one line, and nothing changes.
    switch_to(&mut h, &dir.path().join("missing.json"));
    wait_label(&mut h, "is not a file");
    assert_eq!(h.state().session_id(), Some(alice));

    // The second network starts with no account: its own profile, inside the first.
    h.get_by_label("Network file to use").focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Network file to use")
        .type_text(&b.display().to_string());
    h.step();
    click(&mut h, "Switch network");
    wait_label(&mut h, "Create account");
    // Changing one's mind: back, and there again.
    wait_label(&mut h, "No account on the network of");
    click(&mut h, "Back to the previous network");
    wait_for(&mut h, "the first account again", |h| {
        h.state().session_id() == Some(alice)
    });
    switch_to(&mut h, &b);
    wait_label(&mut h, "Create account");
    let other = create_account(&mut h, "Alice elsewhere");
    assert_ne!(other, alice);
    let b_dir = base.join("other-networks").join(&b_key.to_hex()[..16]);
    assert!(Profile::exists(&b_dir), "{}", b_dir.display());
    settings(&mut h);
    wait_label(&mut h, "second.json");

    // Back to the first: the first account, its name, and the second profile untouched.
    switch_to(&mut h, &a);
    wait_for(&mut h, "the first account", |h| {
        h.state().session_id() == Some(alice)
    });
    wait_label(&mut h, "Alice");
    assert!(h.query_by_label_contains("Alice elsewhere").is_none());
    let row = support::short(&bob);
    wait_label(&mut h, &row);
    click(&mut h, &row);
    wait_label(&mut h, "queued");
    assert_eq!(
        h.get_by_label("Message").value().as_deref(),
        Some("half a thought"),
        "the draft typed right before switching is kept"
    );
    let networks = Networks::new(base.clone());
    assert_eq!(networks.profile_for(&Networks::key_of(&b).unwrap()), b_dir);
    assert_eq!(networks.last(), Some(std::path::absolute(&a).unwrap()));
    drop(h);

    // The profiles refuse each other's network: the data never mixed.
    let first = Profile::open(&base, None).unwrap();
    let e = first.bind_network(&b_key).unwrap_err();
    assert!(e.to_string().contains("network"), "{e}");
}

#[test]
fn a_profile_of_another_network_is_offered_a_separate_profile() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("profile");
    let (a, a_key) = network_file(dir.path(), "first");
    let (b, b_key) = network_file(dir.path(), "second");
    // Made and used on the first network by the CLI: the app's index knows nothing of it.
    let (profile, _) = Profile::create(&base, None, CHEAP, &mut OsRandom).unwrap();
    profile.bind_network(&a_key).unwrap();
    let cli_id = profile.identity().session_id();
    drop(profile);

    let mut h = app(&base, &b);
    wait_for(&mut h, "the profile", |h| {
        h.state().session_id() == Some(cli_id)
    });
    settings(&mut h);
    wait_label(&mut h, "Use a separate profile for this network");
    click(&mut h, "Use a separate profile for this network");
    wait_label(&mut h, "Create account");
    let other = create_account(&mut h, "Bob");
    assert_ne!(other, cli_id);
    let b_dir = base.join("other-networks").join(&b_key.to_hex()[..16]);
    assert!(Profile::exists(&b_dir));
    // The next start on the second network opens its own profile directly.
    drop(h);
    assert_eq!(
        Networks::new(base.clone()).profile_for(&b_key),
        b_dir,
        "recorded once bound"
    );
    let _ = a;
}
