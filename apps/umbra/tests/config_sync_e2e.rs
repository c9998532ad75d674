#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Config sync end to end on a real devnet: three devices of one account (CLI profiles
//! restored from the same recovery phrase, the third one later), edits on each while another
//! is offline — accept a request, nickname, block, read, display name and picture (uploaded
//! to the devnet's attachment server) — and then all three
//! agree; the device restored last sees the whole state, and a message unsent before it was
//! restored does not come back.
//!
//! Every command runs under the hang guard of `common`; "offline" is a device that runs no
//! command. Agreement is polled (a device's `receive`, then its state) until it holds or the
//! guard runs out, since a store reaches the other members of the swarm a moment later.

mod common;

use common::{Devnet, GUARD, User, alice_and_bob, build_daemons, json, ok, umbra};
use serde_json::{Value, json};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

/// What a device shows of the account's shared state.
fn state(u: &User) -> Value {
    let chats: Vec<Value> = u
        .json(&["chats"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!([c["session_id"], c["name"], c["unread"]]))
        .collect();
    let mut requests: Vec<String> = u
        .json(&["requests"])
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["conversation"].as_str().unwrap().to_owned())
        .collect();
    requests.sort();
    requests.dedup();
    let configs: Vec<Value> = u
        .json(&["devices"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!([c["config"], c["seqno"], c["needs_push"]]))
        .collect();
    let profile = u.json(&["profile", "show"]);
    json!({
        "name": profile["display_name"],
        "picture": profile["picture"]["url"],
        "chats": chats,
        "requests": requests,
        "configs": configs,
    })
}

/// Polls `device` until `check` holds of its state; returns that state.
fn until(device: &User, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let start = SystemClock.instant();
    loop {
        ok(&device.run(&["receive"], ""), "receive");
        let s = state(device);
        if check(&s) {
            return s;
        }
        assert!(
            SystemClock.since(start) < GUARD,
            "{what} never happened: {s}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn three_devices_of_one_account_agree() {
    build_daemons();
    let devnet = Devnet::new();
    let dir = devnet.arg().to_owned();
    ok(
        &umbra(
            &["devnet", "up", "--detach", "--nodes", "7", "--dir", &dir],
            &[],
            "",
        ),
        "devnet up",
    );
    let network = devnet.path().join("network.json");
    let homes = tempfile::tempdir().unwrap();
    let user = |name: &str| common::user(homes.path(), &network, name);
    let pair = alice_and_bob(homes.path(), &network);
    let (phone, bob) = (&pair.alice, &pair.bob);
    let (a_id, b_id) = (pair.a_id.as_str(), pair.b_id.as_str());
    let restore = |name: &str| {
        let u = user(name);
        let r = u.run(&["id", "restore", "--json"], &pair.phrase);
        assert_eq!(json(&r, "restore")["session_id"], a_id);
        u
    };
    let desktop = restore("alice-desktop");
    let (carol, dave) = (user("carol"), user("dave"));
    let id_of = |u: &User, name: &str| {
        u.json(&["id", "new", "--name", name])["session_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (c_id, d_id) = (id_of(&carol, "carol"), id_of(&dave, "dave"));

    // Three message requests reach the account.
    for (who, text) in [
        (bob, "hi from bob"),
        (&carol, "hi from carol"),
        (&dave, "buy now"),
    ] {
        assert_eq!(who.json(&["send", a_id, text])["status"], "sent");
    }
    let three = |s: &Value| s["requests"].as_array().unwrap().len() == 3;
    until(phone, "three requests on the phone", three);
    until(&desktop, "three requests on the desktop", three);

    // The phone accepts bob and names carol while the desktop is offline…
    ok(&phone.run(&["accept", b_id], ""), "accept");
    ok(
        &phone.run(&["contact", "rename", &c_id, "Caz"], ""),
        "rename",
    );
    ok(&phone.run(&["receive"], ""), "receive");
    // …and the desktop, which has not seen that, blocks dave and renames the account.
    ok(&desktop.run(&["block", &d_id], ""), "block");
    let picture = homes.path().join("me.jpg");
    std::fs::write(&picture, [0x5a_u8; 20_000]).unwrap();
    ok(
        &desktop.run(
            &[
                "profile",
                "set",
                "--name",
                "Alice A.",
                "--picture",
                picture.to_str().unwrap(),
            ],
            "",
        ),
        "profile set",
    );
    let pic_url = desktop.json(&["profile", "show"])["picture"]["url"].clone();
    assert!(
        pic_url.as_str().unwrap().contains("/file/"),
        "the picture was not uploaded: {pic_url}"
    );
    let merged = until(&desktop, "the desktop merges the phone's edits", |s| {
        s["chats"].as_array().unwrap().len() == 1
    });
    assert_eq!(
        merged["requests"],
        json!([c_id]),
        "dave is blocked, bob accepted"
    );
    // The phone reads bob's message while the desktop is offline.
    let phone_state = until(phone, "the phone merges the desktop's edits", |s| {
        s["name"] == "Alice A." && s["picture"] == pic_url && s["requests"] == json!([c_id])
    });
    assert_eq!(phone_state["chats"][0][2], 1);
    ok(&phone.run(&["history", b_id], ""), "history");

    let agreed = |s: &Value| {
        s["name"] == "Alice A."
            && s["picture"] == pic_url
            && s["chats"] == json!([[b_id, "bob", 0]])
            && s["requests"] == json!([c_id])
            && s["configs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c[2] == false)
    };
    let on_phone = until(phone, "the phone pushes its read state", agreed);
    let on_desktop = until(&desktop, "the desktop agrees", |s| {
        agreed(s) && s["configs"] == on_phone["configs"]
    });
    assert_eq!(on_phone, on_desktop);
    // The nickname resolves on the desktop too.
    let with_caz = desktop.json(&["history", "Caz"]);
    assert_eq!(with_caz[0]["text"], "hi from carol");

    // An unsent message, then a third device restored from the phrase.
    let oops = phone.json(&["send", b_id, "oops"]);
    let ts = oops["timestamp"].as_u64().unwrap().to_string();
    ok(&phone.run(&["unsend", &ts], ""), "unsend");
    let tablet = restore("alice-tablet");
    let on_tablet = until(&tablet, "the restored device agrees", |s| {
        agreed(s) && s["configs"] == on_phone["configs"]
    });
    assert_eq!(on_tablet, on_phone);
    let history = tablet.json(&["history", b_id]);
    let texts: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["hi from bob"],
        "the unsent message never comes back"
    );
    assert_eq!(tablet.json(&["history", "Caz"])[0]["text"], "hi from carol");
    assert!(
        tablet
            .json(&["history", &d_id])
            .as_array()
            .unwrap()
            .is_empty(),
        "the blocked account's request stays out"
    );

    // The tablet pins carol's conversation… (accepting it puts it in the chat list)
    ok(&tablet.run(&["accept", &c_id], ""), "accept carol");
    ok(&tablet.run(&["pin", "Caz"], ""), "pin");
    ok(&tablet.run(&["receive"], ""), "receive");
    let pinned_first = |u: &User| {
        let chats = u.json(&["chats"]);
        chats[0]["session_id"] == c_id.as_str() && chats[0]["pinned"] == true
    };
    assert!(pinned_first(&tablet));
    // …and the phone shows it pinned, above bob's.
    until(phone, "the phone shows the tablet's pin", |_| {
        pinned_first(phone)
    });

    // Bob has the account's picture from its messages, and downloads it.
    assert_eq!(phone.json(&["send", b_id, "new picture"])["status"], "sent");
    until(bob, "bob receives alice's message", |_| {
        bob.json(&["contact", "list"])[0]["picture"] == pic_url
    });
    let saved = homes.path().join("alice.jpg");
    ok(
        &bob.run(
            &["profile", "picture", a_id, "--out", saved.to_str().unwrap()],
            "",
        ),
        "profile picture",
    );
    assert_eq!(std::fs::read(&saved).unwrap(), vec![0x5a_u8; 20_000]);
}
