#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Groups in the app, driven by accessible labels against the real messenger on in-memory
//! swarms (which check group tokens and revocations as a node does): creating one, sending
//! and receiving with the senders' names, the member panel's admin actions, invitations as
//! requests, leaving, and an action that fails.

mod support;

use egui_kittest::kittest::{NodeT as _, Queryable as _};
use umbra_clock::{Clock as _, SystemClock};
use umbra_messenger::{Event, GroupStatus, Messenger};

use support::*;

/// Bob's pending invitation (after `receive`), its group id.
fn invitation(p: &Pair) -> String {
    for _ in 0..50 {
        let events = p.rt.block_on(p.bob.receive()).unwrap();
        if let Some(group) = events.iter().find_map(|e| match e {
            Event::GroupInvite { group, .. } => Some(group.clone()),
            _ => None,
        }) {
            return group;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("no invitation reached Bob");
}

/// Alice creates "Hikers" with Bob from the "New group" form; Bob accepts.
fn hikers(p: &mut Pair) -> String {
    let bob = p.bob.session_id();
    let h = &mut p.h;
    click(h, "New group");
    type_into(h, "Group name", "Hikers");
    type_into(h, "Member 1", "05abc");
    assert!(
        h.query_by_label_contains("has 66 characters; this has 5")
            .is_some()
    );
    assert!(
        h.get_by_label("Create group")
            .accesskit_node()
            .is_disabled()
    );
    // Replace what was typed with Bob's ID.
    h.get_by_label("Member 1").focus();
    h.step();
    h.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::A);
    h.get_by_label("Member 1").type_text(&bob.to_hex());
    h.step();
    assert!(h.query_by_label_contains("Valid Session ID").is_some());
    click(h, "Add another member");
    type_into(h, "Member 2", &bob.to_hex());
    assert!(h.query_by_label_contains("Already in the list").is_some());
    h.get_all_by_label("Remove").last().unwrap().click();
    h.run_steps(2);
    assert!(h.query_by_label_contains("Already in the list").is_none());
    click(h, "Create group");
    wait_label(h, "Group · 2 members");
    let group = invitation(p);
    p.rt.block_on(p.bob.accept_group(&group)).unwrap();
    group
}

/// Waits until the member panel is no longer busy (the snapshot can show an action's
/// outcome a frame before the panel hears that it finished, and its buttons wait till then).
fn wait_idle(h: &mut egui_kittest::Harness<'_, umbra_desktop::DesktopApp>) {
    wait_for(h, "the member panel to be idle", |h| {
        ["Inviting ", "Making ", "Removing "]
            .iter()
            .all(|busy| h.query_by_label_contains(busy).is_none())
    });
}

fn bob_group_texts(bob: &Messenger, rt: &tokio::runtime::Runtime, group: &str) -> Vec<String> {
    let _ = rt.block_on(bob.receive());
    bob.group_history(group)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

#[test]
fn a_group_is_created_and_messages_show_their_senders() {
    let mut p = Pair::new();
    let group = hikers(&mut p);
    let bob = p.bob.session_id();

    type_into(&mut p.h, "Message", "hello hikers");
    p.h.key_press(eframe::egui::Key::Enter);
    wait_label(&mut p.h, "· sent");
    let mut seen = false;
    for _ in 0..50 {
        if bob_group_texts(&p.bob, &p.rt, &group).contains(&"hello hikers".to_string()) {
            seen = true;
            break;
        }
    }
    assert!(seen, "Bob reads Alice's group message");

    p.rt.block_on(p.bob.send_group_text(&group, "hi all"))
        .unwrap();
    wait_label(&mut p.h, "hi all");
    // Bob has no display name here: his message is signed with his short ID.
    assert!(p.h.query_by_label(&short(&bob)).is_some());
    // The list and the header both name the group.
    assert_eq!(p.h.query_all_by_label("Hikers").count(), 2);
}

#[test]
fn an_admin_adds_promotes_and_removes_members_then_deletes_the_group() {
    let mut p = Pair::new();
    let group = hikers(&mut p);
    let bob = p.bob.session_id();
    let carol_dir = tempfile::tempdir().unwrap();
    let carol = messenger(carol_dir.path(), &p.swarms).session_id();
    let h = &mut p.h;
    click(h, "Members");
    wait_label(h, &short(&bob));

    type_into(h, "Add member", &bob.to_hex());
    assert!(h.query_by_label("Already in the group.").is_some());
    h.get_by_label("Add member").focus();
    h.step();
    h.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::A);
    h.get_by_label("Add member").type_text(&carol.to_hex());
    h.run_steps(2);
    click(h, "Invite to group");
    wait_label(h, "Group · 3 members");
    wait_idle(h);

    click(h, &short(&carol));
    click(h, "Make admin");
    wait_label(h, "becoming admin");
    wait_idle(h);
    // Admins are not removed (they hold the group's key); the button is not offered.
    assert!(h.query_by_label("Remove from group").is_none());

    click(h, &short(&bob));
    click(h, "Remove from group");
    wait_for(h, "Bob to leave the member list", |h| {
        h.query_by_label(&short(&bob)).is_none()
    });
    assert!(h.query_by_label("Group · 2 members").is_some());
    wait_idle(h);
    let mut status = GroupStatus::Joined;
    for _ in 0..20 {
        let _ = p.rt.block_on(p.bob.receive());
        status = p.bob.group(&group).unwrap().status;
        if status == GroupStatus::Kicked {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status, GroupStatus::Kicked, "Bob reads that he was removed");

    click(h, "Delete group for everyone");
    click(h, "Yes, delete for everyone");
    wait_label(h, "An admin deleted this group for everyone.");
    assert!(
        h.query_by_label("You can no longer write to this group.")
            .is_some()
    );
}

#[test]
fn an_invitation_waits_in_requests_and_the_group_is_left() {
    let mut p = Pair::new();
    let alice = p.alice;
    let view =
        p.rt.block_on(p.bob.create_group("Book club", &[alice]))
            .unwrap();
    let h = &mut p.h;
    wait_label(h, "Requests (1)");
    click(h, "Requests (1)");
    assert!(h.query_by_label("Book club").is_some());
    click(h, "Join group");
    wait_label(h, "Group · 2 members");
    wait_for(h, "the invitation to leave the requests", |h| {
        h.query_by_label_contains("Requests (").is_none()
    });
    p.rt.block_on(p.bob.send_group_text(&view.id, "welcome"))
        .unwrap();
    wait_label(h, "welcome");

    click(h, "Members");
    assert!(h.query_by_label("admin").is_some(), "Bob is badged admin");
    assert!(h.query_by_label("Make admin").is_none());
    click(h, "Leave group");
    // Esc takes the question back; the panel stays.
    h.key_press(eframe::egui::Key::Escape);
    h.run_steps(2);
    assert!(h.query_by_label("Yes, leave").is_none());
    click(h, "Leave group");
    click(h, "Yes, leave");
    wait_label(h, "You left the group.");
    wait_for(h, "the group to leave the list", |h| {
        h.query_all_by_label("Book club").next().is_none()
    });
}

#[test]
fn a_failed_action_is_one_line_in_the_member_panel() {
    let mut p = Pair::new();
    hikers(&mut p);
    let bob = p.bob.session_id();
    let h = &mut p.h;
    click(h, "Members");
    wait_label(h, &short(&bob));
    p.swarms.set_down(true);
    click(h, &short(&bob));
    click(h, "Make admin");
    wait_label(h, "making them an admin:");
    assert!(
        h.query_by_label_contains("Making ").is_none(),
        "no longer busy"
    );
}

#[test]
fn files_go_to_the_group_and_members_files_show_and_save() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let scratch = tempfile::tempdir().unwrap();
    let s = swarms();
    let files = support::files::TestFiles::start();
    let bob = messenger(dirs[1].path(), &s);
    let mut h = app_with_files(dirs[0].path(), &s, &files);
    let alice = create_account(&mut h, "Alice");
    let mut p = Pair {
        h,
        alice,
        bob,
        rt: tokio::runtime::Runtime::new().unwrap(),
        swarms: s,
        _dirs: dirs,
    };
    let group = hikers(&mut p);
    let quiet: umbra_messenger::ProgressFn = std::sync::Arc::new(|_| {});

    // Alice attaches a file in the group's composer.
    let path = scratch.path().join("route.gpx");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    // Bob's acceptance changes the header: let the layout settle before clicking.
    p.h.run_steps(10);
    click(&mut p.h, "Attach");
    type_into(&mut p.h, "File path", &path.display().to_string());
    type_into(&mut p.h, "Caption (optional)", "the route");
    click(&mut p.h, "Send file");
    wait_label(&mut p.h, "200.0 kB · sent");
    assert!(p.h.query_by_label("the route").is_some());

    // Bob receives it as a group file and downloads it intact.
    let mut got = None;
    for _ in 0..50 {
        let _ = p.rt.block_on(p.bob.receive());
        got = p.bob.group_attachments(&group).unwrap().into_iter().next();
        if got.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let got = got.expect("Bob sees Alice's group file");
    assert_eq!(got.file_name.as_deref(), Some("route.gpx"));
    assert_eq!(got.caption.as_deref(), Some("the route"));
    let out = scratch.path().join("bob.gpx");
    p.rt.block_on(p.bob.download_attachment(
        got.message_id,
        0,
        Some(&out),
        &files.server(),
        quiet.clone(),
    ))
    .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), data);

    // Bob's file shows in Alice's group, and "Save as…" writes it.
    let notes = scratch.path().join("notes.txt");
    std::fs::write(&notes, b"water at km 12").unwrap();
    p.rt.block_on(
        p.bob
            .send_group_file(&group, &notes, None, &files.server(), quiet),
    )
    .unwrap();
    wait_label(&mut p.h, "notes.txt");
    assert!(p.h.query_by_label_contains("not downloaded").is_some());
    let saved = scratch.path().join("alice-notes.txt");
    // Bob's file is the newer of the two in the chat.
    p.h.get_all_by_label("Save as…").last().unwrap().click();
    p.h.run_steps(2);
    wait_label(&mut p.h, "File path");
    p.h.get_by_label("File path").focus();
    p.h.step();
    p.h.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::A);
    p.h.get_by_label("File path")
        .type_text(&saved.display().to_string());
    p.h.step();
    click(&mut p.h, "Save");
    wait_label(&mut p.h, "Saved to");
    assert_eq!(std::fs::read(&saved).unwrap(), b"water at km 12");
}

#[test]
fn an_admin_sets_the_groups_timer_and_deletes_messages_for_everyone() {
    let mut p = Pair::new();
    let group = hikers(&mut p);
    p.h.run_steps(10);

    // The timer, for everyone: after send only (no "after read" in groups).
    click(&mut p.h, "Disappearing messages");
    assert!(p.h.query_by_label("Delete after read").is_none());
    click(&mut p.h, "Delete after send");
    wait_label(&mut p.h, "Disappearing: 1 day after send");
    let mut set = false;
    for _ in 0..50 {
        let _ = p.rt.block_on(p.bob.receive());
        if p.bob.group(&group).unwrap().disappearing
            == (umbra_messenger::Disappearing::AfterSend { seconds: 86_400 })
        {
            set = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(set, "Bob's copy of the group has the timer");
    click(&mut p.h, "Disappearing messages");

    // Bob's message, deleted by Alice as an admin: gone on both sides.
    p.rt.block_on(p.bob.send_group_text(&group, "oops wrong group"))
        .unwrap();
    wait_label(&mut p.h, "oops wrong group");
    assert!(p.h.query_by_label_contains("disappears in").is_some());
    assert!(p.h.query_by_label("Delete for everyone").is_none());
    click(&mut p.h, "oops wrong group");
    click(&mut p.h, "Delete for everyone");
    wait_gone(&mut p.h, "oops wrong group");
    let mut gone = false;
    for _ in 0..50 {
        if !bob_group_texts(&p.bob, &p.rt, &group).contains(&"oops wrong group".to_string()) {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(gone, "Alice's deletion reaches Bob");
}

#[test]
fn a_group_draft_survives_the_app_being_killed() {
    let mut p = Pair::new();
    hikers(&mut p);
    p.h.run_steps(10);
    type_into(&mut p.h, "Message", "bring water");
    // A second after the last keystroke, then the app dies without a chance to save.
    let typed = SystemClock.instant();
    wait_for(&mut p.h, "a second to pass", |_| {
        SystemClock.since(typed) >= std::time::Duration::from_secs(1)
    });
    let dir = p._dirs[0].path().to_path_buf();
    std::mem::forget(std::mem::replace(&mut p.h, app(&dir, &p.swarms)));

    let h = &mut p.h;
    wait_label(h, "Hikers");
    click(h, "Hikers");
    wait_label(h, "Group · 2 members");
    assert_eq!(
        h.get_by_label("Message").value().as_deref(),
        Some("bring water")
    );
}

#[test]
fn a_long_group_history_comes_a_page_at_a_time_and_scrolls_to_its_start() {
    let mut p = Pair::new();
    let group = hikers(&mut p);
    // More than one page (200) of Bob's messages.
    for i in 0..260 {
        p.rt.block_on(p.bob.send_group_text(&group, &format!("line {i:03}")))
            .unwrap();
    }
    // The first message is not in the first page: only scrolling for the next brings it.
    a_long_list_is_windowed_and_scrolls_to_its_start(&mut p.h);
}
