#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The app driven by its accessible labels, headless (no window, no renderer), against the
//! real messenger on in-memory swarms (`umbra_messenger::fake`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use umbra_crypto::{OsRandom, SessionId};
use umbra_desktop::{Backend, BackendConfig, DesktopApp, NetworkSource};
use umbra_messenger::fake::FakeSwarms;
use umbra_messenger::{Event, KdfParams, Messenger, Profile};
use umbra_net::SystemClock;

/// Argon2id as cheap as it goes: the tests are not about the key derivation.
const CHEAP: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

fn app(dir: &Path, swarms: &FakeSwarms) -> Harness<'static, DesktopApp> {
    let config = BackendConfig {
        profile_dir: dir.to_path_buf(),
        network: NetworkSource::Swarm(Arc::new(swarms.clone())),
        kdf: CHEAP,
    };
    let backend = Backend::start(config, || {}).unwrap();
    Harness::builder()
        .with_size([1000.0, 700.0])
        .build_ui_state(
            |ui, app: &mut DesktopApp| app.show(ui),
            DesktopApp::new(backend, dir.to_path_buf()),
        )
}

/// Steps the UI until `ready` holds (the back end runs on its own threads meanwhile).
#[track_caller]
fn wait_for(
    h: &mut Harness<'_, DesktopApp>,
    what: &str,
    ready: impl Fn(&Harness<'_, DesktopApp>) -> bool,
) {
    for _ in 0..1500 {
        h.step();
        if ready(h) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

#[track_caller]
fn wait_label(h: &mut Harness<'_, DesktopApp>, label: &str) {
    wait_for(h, label, |h| h.query_by_label_contains(label).is_some());
}

fn type_into(h: &mut Harness<'_, DesktopApp>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
}

fn click(h: &mut Harness<'_, DesktopApp>, label: &str) {
    h.get_by_label(label).click();
    // One frame sees the click, the next draws what it changed.
    h.run_steps(2);
}

/// Creates an account through the first-start screens, the recovery phrase confirmed by
/// typing back the two words asked for.
fn create_account(h: &mut Harness<'_, DesktopApp>, name: &str) -> SessionId {
    wait_label(h, "Display name");
    type_into(h, "Display name", name);
    click(h, "Create account");
    wait_label(h, "I wrote it down");
    let asked: Vec<usize> = h
        .query_all_by_label_contains("Word ")
        .filter_map(|n| {
            let label = n.accesskit_node().label()?;
            label.strip_prefix("Word ")?.parse().ok()
        })
        .collect();
    assert_eq!(asked.len(), 2, "two words are asked for");
    let word = |h: &Harness<'_, DesktopApp>, n: usize| -> String {
        let prefix = format!("{n:>2}. ");
        let text = h.get_by_label_contains(&prefix).value().unwrap();
        text.split_whitespace().last().unwrap().to_string()
    };
    // A wrong word keeps the account on this screen.
    type_into(h, &format!("Word {}", asked[0]), "notaword");
    type_into(h, &format!("Word {}", asked[1]), "x");
    assert!(h.query_by_label_contains("do not match").is_some());
    for n in &asked {
        let w = word(h, *n);
        let label = format!("Word {n}");
        h.get_by_label(&label).focus();
        h.step();
        // Select all and replace what was typed.
        h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
        h.get_by_label(&label).type_text(&w);
        h.step();
    }
    click(h, "I wrote it down");
    wait_label(h, "Copy my Session ID");
    h.state().session_id().unwrap()
}

fn messenger(dir: &Path, swarms: &FakeSwarms) -> Messenger {
    let (profile, _) = Profile::create(dir, None, CHEAP, &mut OsRandom).unwrap();
    Messenger::new(
        profile,
        Arc::new(swarms.clone()),
        Arc::new(SystemClock),
        Box::new(OsRandom),
    )
}

fn swarms() -> FakeSwarms {
    FakeSwarms::new(Arc::new(SystemClock))
}

#[test]
fn an_account_is_created_on_first_start_and_opens_again_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = swarms();
    let mut h = app(dir.path(), &s);
    let me = create_account(&mut h, "Alice");
    assert!(h.query_by_label_contains("Alice").is_some());
    drop(h);
    let mut h = app(dir.path(), &s);
    wait_label(&mut h, "Copy my Session ID");
    assert_eq!(h.state().session_id(), Some(me));
}

#[test]
fn an_invalid_session_id_shows_why() {
    let dir = tempfile::tempdir().unwrap();
    let s = swarms();
    let mut h = app(dir.path(), &s);
    create_account(&mut h, "Alice");
    click(&mut h, "New conversation");
    type_into(&mut h, "Session ID", "05abc");
    assert!(
        h.query_by_label_contains("has 66 characters; this has 5")
            .is_some()
    );
    assert!(
        h.get_by_label("Start conversation")
            .accesskit_node()
            .is_disabled()
    );
    type_into(&mut h, "Session ID", "g");
    assert!(
        h.query_by_label_contains("'g' is not one of them")
            .is_some()
    );
}

/// Alice in the app, Bob a plain messenger, on the same in-memory swarms.
struct Pair {
    h: Harness<'static, DesktopApp>,
    alice: SessionId,
    bob: Messenger,
    rt: tokio::runtime::Runtime,
    _dirs: [tempfile::TempDir; 2],
}

impl Pair {
    fn new() -> Self {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let s = swarms();
        let bob = messenger(dirs[1].path(), &s);
        let mut h = app(dirs[0].path(), &s);
        let alice = create_account(&mut h, "Alice");
        Self {
            h,
            alice,
            bob,
            rt: tokio::runtime::Runtime::new().unwrap(),
            _dirs: dirs,
        }
    }
}

#[test]
fn a_conversation_is_started_and_messages_go_both_ways() {
    let mut p = Pair::new();
    let (h, bob, rt, alice) = (&mut p.h, &p.bob, &p.rt, p.alice);

    click(h, "New conversation");
    type_into(h, "Session ID", &bob.session_id().to_hex());
    assert!(h.query_by_label_contains("Valid Session ID").is_some());
    click(h, "Start conversation");
    type_into(h, "Message", "hello bob");
    h.key_press(egui::Key::Enter);
    wait_label(h, "· sent");
    assert!(h.query_by_label("hello bob").is_some());

    let events = rt.block_on(bob.receive()).unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Message { message, request: true }
            if message.body == "hello bob" && message.author == alice)),
        "{events:?}"
    );
    rt.block_on(bob.send_text(&alice, "hi alice")).unwrap();
    wait_label(h, "hi alice");
}

#[test]
fn a_message_request_is_accepted() {
    let mut p = Pair::new();
    let (h, bob, rt, alice) = (&mut p.h, &p.bob, &p.rt, p.alice);

    rt.block_on(bob.send_text(&alice, "may I write to you?"))
        .unwrap();
    wait_label(h, "Requests (1)");
    click(h, "Requests (1)");
    assert!(h.query_by_label("may I write to you?").is_some());
    click(h, "Accept");
    wait_for(h, "the request to leave the list", |h| {
        h.query_by_label_contains("Requests (").is_none()
    });
    let mut accepted = false;
    for _ in 0..50 {
        let events = rt.block_on(bob.receive()).unwrap();
        if events
            .iter()
            .any(|e| matches!(e, Event::RequestAccepted { by } if *by == alice))
        {
            accepted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(accepted, "bob was told");
}

#[test]
fn a_locked_profile_asks_for_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    Profile::create(dir.path(), Some("correct horse"), CHEAP, &mut OsRandom).unwrap();
    let s = swarms();
    let mut h = app(dir.path(), &s);
    wait_label(&mut h, "Unlock Umbra");
    type_into(&mut h, "Passphrase", "wrong one");
    click(&mut h, "Unlock");
    wait_label(&mut h, "does not open this profile");
    type_into(&mut h, "Passphrase", "correct horse");
    click(&mut h, "Unlock");
    wait_label(&mut h, "Copy my Session ID");
}
