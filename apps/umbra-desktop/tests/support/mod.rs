#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]
//! What the UI tests share: the app on in-memory swarms, stepping until something shows,
//! typing and clicking by accessible label, a first start, a plain messenger to talk to,
//! an attachment server (`files`).

pub(crate) mod files;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use umbra_crypto::{OsRandom, SessionId};
use umbra_desktop::{Backend, BackendConfig, DesktopApp, NetworkSource, RecordingNotifier, Zone};
use umbra_messenger::fake::FakeSwarms;
use umbra_messenger::{KdfParams, Messenger, Profile};
use umbra_net::{Clock as _, SystemClock};

/// Argon2id as cheap as it goes: the tests are not about the key derivation.
pub(crate) const CHEAP: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

pub(crate) fn app(dir: &Path, swarms: &FakeSwarms) -> Harness<'static, DesktopApp> {
    app_in(dir, swarms, Zone::utc())
}

/// The app with an attachment server.
pub(crate) fn app_with_files(
    dir: &Path,
    swarms: &FakeSwarms,
    files: &Arc<files::TestFiles>,
) -> Harness<'static, DesktopApp> {
    start(
        dir,
        swarms,
        Zone::utc(),
        RecordingNotifier::default(),
        Some(files.server()),
    )
}

pub(crate) fn app_in(dir: &Path, swarms: &FakeSwarms, zone: Zone) -> Harness<'static, DesktopApp> {
    app_notifying(dir, swarms, zone, RecordingNotifier::default())
}

/// The app, its notifications going to `notifier` (never to this machine's desktop).
pub(crate) fn app_notifying(
    dir: &Path,
    swarms: &FakeSwarms,
    zone: Zone,
    notifier: RecordingNotifier,
) -> Harness<'static, DesktopApp> {
    start(dir, swarms, zone, notifier, None)
}

fn start(
    dir: &Path,
    swarms: &FakeSwarms,
    zone: Zone,
    notifier: RecordingNotifier,
    file_server: Option<umbra_messenger::FileServer>,
) -> Harness<'static, DesktopApp> {
    let config = BackendConfig {
        profile_dir: dir.to_path_buf(),
        network: NetworkSource::Swarm(Arc::new(swarms.clone())),
        kdf: CHEAP,
        notifier: Arc::new(notifier),
        file_server,
        networks: None,
    };
    let backend = Backend::start(config, || {}).unwrap();
    Harness::builder()
        .with_size([1000.0, 700.0])
        .build_ui_state(
            |ui, app: &mut DesktopApp| app.show(ui),
            DesktopApp::new(backend, dir.to_path_buf()).with_zone(zone),
        )
}

/// Steps the UI until `ready` holds (the back end runs on its own threads meanwhile).
#[track_caller]
pub(crate) fn wait_for(
    h: &mut Harness<'_, DesktopApp>,
    what: &str,
    ready: impl Fn(&Harness<'_, DesktopApp>) -> bool,
) {
    // Long enough for the shortest disappearing timer (10 s) on a busy machine.
    let deadline = SystemClock.instant() + Duration::from_secs(30);
    while SystemClock.instant() < deadline {
        h.step();
        if ready(h) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

#[track_caller]
pub(crate) fn wait_label(h: &mut Harness<'_, DesktopApp>, label: &str) {
    wait_for(h, label, |h| h.query_by_label_contains(label).is_some());
}

pub(crate) fn type_into(h: &mut Harness<'_, DesktopApp>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
}

pub(crate) fn click(h: &mut Harness<'_, DesktopApp>, label: &str) {
    h.get_by_label(label).click();
    // One frame sees the click, the next draws what it changed.
    h.run_steps(2);
}

/// Creates an account through the first-start screens, the recovery phrase confirmed by
/// typing back the two words asked for.
pub(crate) fn create_account(h: &mut Harness<'_, DesktopApp>, name: &str) -> SessionId {
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

pub(crate) fn messenger(dir: &Path, swarms: &FakeSwarms) -> Messenger {
    let (profile, _) = Profile::create(dir, None, CHEAP, &mut OsRandom).unwrap();
    Messenger::new(
        profile,
        Arc::new(swarms.clone()),
        Arc::new(SystemClock),
        Box::new(OsRandom),
    )
}

pub(crate) fn swarms() -> FakeSwarms {
    FakeSwarms::new(Arc::new(SystemClock))
}

/// Alice in the app, Bob a plain messenger, on the same in-memory swarms.
pub(crate) struct Pair {
    pub(crate) h: Harness<'static, DesktopApp>,
    pub(crate) alice: SessionId,
    pub(crate) bob: Messenger,
    pub(crate) rt: tokio::runtime::Runtime,
    /// The in-memory network both use (`set_down` makes it unreachable).
    pub(crate) swarms: FakeSwarms,
    pub(crate) _dirs: [tempfile::TempDir; 2],
}

impl Pair {
    pub(crate) fn new() -> Self {
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
            swarms: s,
            _dirs: dirs,
        }
    }
}

#[track_caller]
pub(crate) fn wait_gone(h: &mut Harness<'_, DesktopApp>, label: &str) {
    wait_for(h, &format!("{label} to go"), |h| {
        h.query_by_label(label).is_none()
    });
}

/// The name the conversation list gives an account without a display name.
pub(crate) fn short(id: &SessionId) -> String {
    let hex = id.to_hex();
    format!("{}…{}", &hex[..6], &hex[hex.len() - 4..])
}

/// The open list holds "line 000" to "line 259": it lays out only what is in view (the
/// oldest rows not at all), and the mouse wheel reaches its first row.
pub(crate) fn a_long_list_is_windowed_and_scrolls_to_its_start(h: &mut Harness<'_, DesktopApp>) {
    wait_label(h, "line 259");
    h.run_steps(5);
    let drawn = h.query_all_by_label_contains("line ").count();
    assert!(drawn < 60, "{drawn} of 260 rows laid out");
    assert!(h.query_by_label("line 000").is_none());
    let over = h.get_by_label("line 259").rect().center();
    wheel_up_until(h, over, "line 000");
    let drawn = h.query_all_by_label_contains("line ").count();
    assert!(drawn < 60, "{drawn} rows laid out at the top");
}

/// Turns the mouse wheel up over `over` until `label` is in view (at most 2 000 turns; the
/// back end answers between frames, so pages of older rows arrive on the way).
pub(crate) fn wheel_up_until(h: &mut Harness<'_, DesktopApp>, over: egui::Pos2, label: &str) {
    let mut turns = 0;
    while h.query_by_label(label).is_none() {
        turns += 1;
        assert!(turns < 2_000, "{label:?} never came into view");
        h.event(egui::Event::PointerMoved(over));
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, 400.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
            modifiers: egui::Modifiers::NONE,
        });
        h.step();
        std::thread::sleep(Duration::from_millis(2));
    }
}
