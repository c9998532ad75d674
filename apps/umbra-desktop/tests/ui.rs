#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The app driven by its accessible labels, headless (no window, no renderer), against the
//! real messenger on in-memory swarms (`umbra_messenger::fake`).

mod support;

use std::time::Duration;

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use umbra_crypto::OsRandom;
use umbra_desktop::{DesktopApp, RecordingNotifier, Zone};
use umbra_messenger::{Event, Profile};
use umbra_net::{Clock as _, SystemClock};

use support::*;

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

impl Pair {
    /// Alice starts a conversation with Bob in the app and sends `text`; Bob receives it and
    /// accepts, so that his replies are ordinary messages.
    fn start_chat(&mut self, text: &str) {
        let (h, bob, rt, alice) = (&mut self.h, &self.bob, &self.rt, self.alice);
        click(h, "New conversation");
        type_into(h, "Session ID", &bob.session_id().to_hex());
        click(h, "Start conversation");
        type_into(h, "Message", text);
        h.key_press(egui::Key::Enter);
        wait_label(h, "· sent");
        rt.block_on(bob.receive()).unwrap();
        rt.block_on(bob.accept_request(&alice)).unwrap();
    }

    /// Polls Bob's messenger until `found` holds for one of the events.
    #[track_caller]
    fn bob_sees(&self, what: &str, found: impl Fn(&Event) -> bool) {
        for _ in 0..100 {
            let events = self.rt.block_on(self.bob.receive()).unwrap();
            if events.iter().any(&found) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("bob never saw {what}");
    }
}

#[test]
fn a_message_is_deleted_for_everyone_on_both_sides() {
    let mut p = Pair::new();
    p.start_chat("oops");
    let alice = p.alice;

    // Ours: select it, delete it for everyone; it goes here and at Bob's.
    assert!(p.h.query_by_label("Delete for everyone").is_none());
    click(&mut p.h, "oops");
    click(&mut p.h, "Delete for everyone");
    wait_gone(&mut p.h, "oops");
    p.bob_sees(
        "the unsend",
        |e| matches!(e, Event::Unsent { author, .. } if *author == alice),
    );
    assert!(p.bob.history(&alice).unwrap().is_empty());

    // Theirs: Bob takes his back, and it goes from the app.
    let sent =
        p.rt.block_on(p.bob.send_text(&alice, "take it back"))
            .unwrap();
    wait_label(&mut p.h, "take it back");
    // Nobody can delete someone else's message for everyone.
    click(&mut p.h, "take it back");
    assert!(p.h.query_by_label("Delete for everyone").is_none());
    p.rt.block_on(p.bob.unsend(&alice, sent.sent_ms)).unwrap();
    wait_gone(&mut p.h, "take it back");
    assert!(p.bob.history(&alice).unwrap().is_empty());
}

#[test]
fn disappearing_messages_are_set_in_the_header_and_vanish_after_their_timer() {
    let mut p = Pair::new();
    p.start_chat("this one stays");
    let alice = p.alice;
    let h = &mut p.h;

    click(h, "Disappearing messages");
    click(h, "10 seconds");
    click(h, "Delete after send");
    wait_label(h, "Disappearing: 10 seconds after send");
    p.bob_sees("the new setting", |e| {
        matches!(e, Event::DisappearingChanged { conversation, setting }
            if *conversation == alice
            && *setting == umbra_messenger::Disappearing::AfterSend { seconds: 10 })
    });

    let h = &mut p.h;
    type_into(h, "Message", "gone soon");
    h.key_press(egui::Key::Enter);
    wait_label(h, "disappears in");
    wait_gone(h, "gone soon");
    assert!(h.query_by_label("this one stays").is_some());

    // Back off: the summary goes.
    click(h, "Off");
    wait_for(h, "the setting to go", |h| {
        h.query_by_label_contains("Disappearing: ").is_none()
    });
}

#[test]
fn a_contact_is_renamed_from_the_chat_header() {
    let mut p = Pair::new();
    p.start_chat("hi");
    let h = &mut p.h;

    click(h, "Rename");
    type_into(h, "Nickname", &"x".repeat(65));
    click(h, "Save nickname");
    assert!(h.query_by_label_contains("at most 64 characters").is_some());
    h.get_by_label("Nickname").focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Nickname").type_text("Bobby");
    h.step();
    click(h, "Save nickname");
    // The conversation list's row and the header.
    wait_for(h, "the nickname in the list and the header", |h| {
        h.query_all_by_label("Bobby").count() >= 2
    });
    // Bob's own view of himself is untouched: a nickname stays on this device.
    assert_eq!(p.bob.display_name().unwrap(), None);
}

#[test]
fn a_contact_is_blocked_from_the_header_and_unblocked_in_settings() {
    let mut p = Pair::new();
    p.start_chat("hi");
    let h = &mut p.h;

    click(h, "Block");
    click(h, "Block them");
    wait_label(h, "No conversations yet");
    click(h, "Settings");
    wait_label(h, "Unblock");
    click(h, "Unblock");
    wait_label(h, "Nobody is blocked.");
    wait_gone(
        h,
        "No conversations yet. Start one with “New conversation”.",
    );
}

#[test]
fn a_conversation_is_pinned_and_hidden_from_its_right_click_menu() {
    use egui::accesskit::Role;
    let mut p = Pair::new();
    p.start_chat("hi");
    let (h, bob, rt, alice) = (&mut p.h, &p.bob, &p.rt, p.alice);
    let name = short(&bob.session_id());
    let pinned = format!("{name} · pinned");
    // The row of the conversation list (the chat header names bob too).
    let row_shown = |h: &Harness<'_, DesktopApp>, label: &str| {
        h.query_by_role_and_label(Role::Button, label).is_some()
    };
    wait_for(h, "bob's row", |h| row_shown(h, &name));
    h.get_by_role_and_label(Role::Button, &name)
        .click_secondary();
    h.run();
    click(h, "Pin to the top");
    wait_for(h, "the pinned row", |h| row_shown(h, &pinned));
    h.get_by_role_and_label(Role::Button, &pinned)
        .click_secondary();
    h.run();
    click(h, "Hide until a new message arrives");
    wait_for(h, "the row to go", |h| {
        !row_shown(h, &pinned) && !row_shown(h, &name)
    });
    // A new message from bob brings it back (in its place: hiding ended the pin).
    rt.block_on(bob.send_text(&alice, "still there?")).unwrap();
    wait_for(h, "bob's row again", |h| row_shown(h, &name));
}

#[test]
fn new_messages_are_notified_with_the_text_only_when_chosen() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let s = swarms();
    let bob = messenger(dirs[1].path(), &s);
    let notes = RecordingNotifier::default();
    let mut h = app_notifying(dirs[0].path(), &s, Zone::utc(), notes.clone());
    let alice = create_account(&mut h, "Alice");
    let rt = tokio::runtime::Runtime::new().unwrap();

    rt.block_on(bob.send_text(&alice, "secret plans")).unwrap();
    wait_for(&mut h, "a notification", |_| !notes.shown().is_empty());
    let request = format!("Message request from {}", short(&bob.session_id()));
    assert_eq!(
        notes.shown(),
        vec![(request, String::new())],
        "no text by default"
    );

    click(&mut h, "Settings");
    wait_label(&mut h, "Sender and text");
    click(&mut h, "Sender and text");
    rt.block_on(bob.send_text(&alice, "more plans")).unwrap();
    wait_for(&mut h, "a second notification", |_| {
        notes.shown().len() == 2
    });
    assert_eq!(notes.shown()[1].1, "more plans");

    click(&mut h, "Off");
    rt.block_on(bob.send_text(&alice, "unheard")).unwrap();
    wait_label(&mut h, "Requests (1)");
    std::thread::sleep(Duration::from_millis(300));
    h.run();
    assert_eq!(notes.shown().len(), 2, "off is off");
}

#[test]
fn a_draft_typed_just_before_quitting_is_kept() {
    let mut p = Pair::new();
    p.start_chat("hi");
    let h = &mut p.h;
    type_into(h, "Message", "last words");
    // Closing the window (or SIGTERM) right after typing, before the periodic save.
    h.state_mut().quit();
    let dir = p._dirs[0].path().to_path_buf();
    drop(std::mem::replace(&mut p.h, app(&dir, &swarms())));
    let h = &mut p.h;
    wait_label(h, "Copy my Session ID");
    // The conversation list comes with the back end's first snapshot, maybe a frame later.
    let row = short(&p.bob.session_id());
    wait_label(h, &row);
    click(h, &row);
    assert_eq!(
        h.get_by_label("Message").value().as_deref(),
        Some("last words")
    );
}

#[test]
fn a_draft_and_the_theme_survive_the_app_being_killed() {
    let mut p = Pair::new();
    p.start_chat("hi");
    let h = &mut p.h;
    click(h, "Settings");
    click(h, "Dark");
    click(h, short(&p.bob.session_id()).as_str());
    type_into(h, "Message", "half a thought");
    // A second after the last keystroke, then the app dies without a chance to save.
    let typed = SystemClock.instant();
    wait_for(h, "a second to pass", |_| {
        SystemClock.instant().duration_since(typed) >= Duration::from_secs(1)
    });
    let dir = p._dirs[0].path().to_path_buf();
    std::mem::forget(std::mem::replace(&mut p.h, app(&dir, &swarms())));

    let h = &mut p.h;
    wait_label(h, "Copy my Session ID");
    assert_eq!(
        h.ctx.options(|o| o.theme_preference),
        egui::ThemePreference::Dark
    );
    let row = short(&p.bob.session_id());
    wait_label(h, &row);
    click(h, &row);
    assert_eq!(
        h.get_by_label("Message").value().as_deref(),
        Some("half a thought")
    );
    // Sent, it is no draft any more, after a restart too.
    h.get_by_label("Message").focus();
    h.step();
    h.key_press(egui::Key::Enter);
    wait_for(h, "the draft to be sent", |h| {
        h.query_all_by_label_contains("· sent").count() == 2
    });
    let typed = SystemClock.instant();
    wait_for(h, "a second to pass", |_| {
        SystemClock.instant().duration_since(typed) >= Duration::from_secs(1)
    });
    std::mem::forget(std::mem::replace(&mut p.h, app(&dir, &swarms())));
    let h = &mut p.h;
    wait_label(h, "Copy my Session ID");
    click(h, short(&p.bob.session_id()).as_str());
    assert_eq!(h.get_by_label("Message").value().as_deref(), Some(""));
}

#[test]
fn the_passphrase_is_set_and_a_wrong_current_one_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = swarms();
    let mut h = app(dir.path(), &s);
    create_account(&mut h, "Alice");
    click(&mut h, "Settings");
    assert!(h.query_by_label("Current passphrase").is_none());
    type_into(&mut h, "New passphrase", "correct horse");
    type_into(&mut h, "New passphrase again", "correct horse");
    click(&mut h, "Change passphrase");
    wait_label(&mut h, "Passphrase changed.");
    assert!(Profile::needs_passphrase(dir.path()).unwrap());

    type_into(&mut h, "Current passphrase", "not it at all");
    type_into(&mut h, "New passphrase", "battery staple");
    type_into(&mut h, "New passphrase again", "battery staple");
    click(&mut h, "Change passphrase");
    wait_label(&mut h, "The current passphrase is wrong.");
    // The app goes on working on the re-encrypted database.
    click(&mut h, "New conversation");
    drop(h);
    assert!(Profile::open(dir.path(), Some("battery staple")).is_err());
    Profile::open(dir.path(), Some("correct horse")).unwrap();
}

#[test]
fn times_are_shown_in_the_local_offset() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let s = swarms();
    let bob = messenger(dirs[1].path(), &s);
    // India: +05:30, so that hours and minutes both move.
    let mut h = app_in(
        dirs[0].path(),
        &s,
        Zone::from_offset_seconds(5 * 3600 + 1800),
    );
    let alice = create_account(&mut h, "Alice");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sent = rt
        .block_on(bob.send_text(&alice, "what time is it?"))
        .unwrap();
    wait_label(&mut h, "Requests (1)");
    click(&mut h, "Requests (1)");
    click(&mut h, "Accept");
    wait_label(&mut h, "what time is it?");
    let local_s = sent.sent_ms / 1000 + 5 * 3600 + 1800;
    let clock = format!("{:02}:{:02}", local_s % 86_400 / 3600, local_s % 3600 / 60);
    assert!(
        h.query_by_label(&clock).is_some(),
        "the message's time is {clock} at +05:30"
    );
}

#[test]
fn your_session_id_is_shown_as_a_qr_code() {
    let dir = tempfile::tempdir().unwrap();
    let s = swarms();
    let mut h = app(dir.path(), &s);
    let me = create_account(&mut h, "Alice");
    click(&mut h, "Show my QR code");
    assert!(h.query_by_label("QR code of your Session ID").is_some());
    assert!(h.query_by_label(&me.to_hex()).is_some());
}

#[test]
fn a_long_conversation_lays_out_only_what_is_in_view_and_scrolls_to_its_start() {
    let mut p = Pair::new();
    p.start_chat("hello");
    let alice = p.alice;
    for i in 0..260 {
        p.rt.block_on(p.bob.send_text(&alice, &format!("line {i:03}")))
            .unwrap();
    }
    a_long_list_is_windowed_and_scrolls_to_its_start(&mut p.h);
}
