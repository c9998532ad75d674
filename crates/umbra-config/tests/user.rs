//! The typed views of the four user configs: field keys as `groups-config-attachments.md`
//! §2.11 gives them, round trips between devices, unknown keys kept.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use umbra_config::{
    Community, ConfigState, Contact, Contacts, ConvoInfo, ConvoInfoVolatile, ConvoKind, Expiration,
    Group, GroupRemoved, Notify, ProfilePic, SwarmHash, UserGroups, UserProfile, Value,
};

fn id(prefix: u8, n: u8) -> [u8; 33] {
    let mut id = [n; 33];
    id[0] = prefix;
    id
}

/// Pushes `from` and merges the result into `to`.
fn sync(from: &mut ConfigState, to: &mut ConfigState) {
    let p = from.push().unwrap().unwrap();
    let h = SwarmHash(format!("h{}", p.seqno));
    from.confirm_pushed(p.seqno, std::slice::from_ref(&h));
    let r = to.merge(&[(h, &p.messages[0])]);
    assert!(r.skipped.is_empty());
}

#[test]
fn user_profile_matches_the_upstream_push() {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../../shared/vectors/config.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let v = v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "user_profile_push_seqno1")
        .unwrap();
    let seed: [u8; 32] = hex::decode(v["key_base"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let mut p = UserProfile::new(&seed).unwrap();
    p.set_name("Kallie").unwrap();
    p.set_picture(
        Some(&ProfilePic {
            url: "http://example.org/omg-pic-123.bmp".into(),
            key: *b"secret78901234567890123456789012",
        }),
        0,
    )
    .unwrap();
    p.set_nts_priority(9);
    let push = p.state_mut().push().unwrap().unwrap();
    assert_eq!(push.seqno, 1);
    assert_eq!(
        push.messages,
        vec![hex::decode(v["ciphertext"].as_str().unwrap()).unwrap()]
    );

    let mut other = UserProfile::new(&seed).unwrap();
    other
        .state_mut()
        .merge(&[(SwarmHash("x".into()), &push.messages[0])]);
    assert_eq!(other.name().as_deref(), Some("Kallie"));
    assert_eq!(other.nts_priority(), 9);
    assert_eq!(other.picture(), p.picture());
    assert_eq!(other.blinded_msgreqs(), None);
    assert!(p.set_name(&"x".repeat(101)).is_err());
}

#[test]
fn contacts_round_trip_and_keys() {
    let seed = [1; 32];
    let mut a = Contacts::new(&seed).unwrap();
    let mut c = Contact::new(id(0x05, 7));
    c.name = "Alice".into();
    c.nickname = "Al".into();
    c.approved = true;
    c.blocked = true;
    c.notifications = Notify::MentionsOnly;
    c.expiration = Expiration::AfterRead(3600);
    c.priority = 2;
    c.created = 1_700_000_000;
    a.set(&c).unwrap();
    // A key this crate does not know, written by a newer client, survives updates.
    a.state_mut().edit(|d| {
        if let Some(Value::Dict(all)) = d.get_mut(b"c".as_slice())
            && let Some(Value::Dict(e)) = all.get_mut(id(0x05, 7).as_slice())
        {
            e.insert(b"Z".to_vec(), Value::from(5));
        }
    });
    c.blocked = false;
    a.set(&c).unwrap();

    let Some(Value::Dict(all)) = a.state().data().get(b"c".as_slice()) else {
        panic!("no c")
    };
    let Some(Value::Dict(e)) = all.get(id(0x05, 7).as_slice()) else {
        panic!("contact not under its 33 binary bytes")
    };
    let keys: Vec<&[u8]> = e.keys().map(Vec::as_slice).collect();
    assert_eq!(keys, [b"+", b"@", b"E", b"N", b"Z", b"a", b"e", b"j", b"n"]);
    assert_eq!(e[b"@".as_slice()], Value::from(1)); // mentions-only is stored as all
    assert_eq!(e[b"e".as_slice()], Value::from(2));
    assert_eq!(e[b"E".as_slice()], Value::from(3600));

    let mut b = Contacts::new(&seed).unwrap();
    sync(a.state_mut(), b.state_mut());
    let mut want = c.clone();
    want.notifications = Notify::All;
    assert_eq!(b.get(&id(0x05, 7)), Some(want.clone()));
    assert_eq!(b.all(), vec![want]);
    assert!(b.erase(&id(0x05, 7)));
    assert!(!b.erase(&id(0x05, 7)));
    sync(b.state_mut(), a.state_mut());
    assert_eq!(a.all(), vec![]);
}

#[test]
fn convo_info_read_state() {
    let seed = [2; 32];
    let mut a = ConvoInfoVolatile::new(&seed).unwrap();
    let one = id(0x05, 1);
    let grp = id(0x03, 2);
    a.set(
        ConvoKind::OneToOne,
        &one,
        ConvoInfo {
            last_read_ms: 5_000,
            unread: false,
        },
    );
    a.set(
        ConvoKind::Group,
        &grp,
        ConvoInfo {
            last_read_ms: 0,
            unread: true,
        },
    );
    // Read state only moves forward.
    a.set(
        ConvoKind::OneToOne,
        &one,
        ConvoInfo {
            last_read_ms: 4_000,
            unread: false,
        },
    );
    a.set_community(
        "HTTPS://Example.org:443/",
        &[9; 32],
        "Lokinet",
        ConvoInfo {
            last_read_ms: 7,
            unread: true,
        },
    );
    let mut b = ConvoInfoVolatile::new(&seed).unwrap();
    sync(a.state_mut(), b.state_mut());
    assert_eq!(
        b.get(ConvoKind::OneToOne, &one).unwrap().last_read_ms,
        5_000
    );
    assert!(b.get(ConvoKind::Group, &grp).unwrap().unread);
    assert_eq!(b.all(ConvoKind::LegacyGroup), vec![]);
    let (key, info) = b.community("https://example.org", "lokinet").unwrap();
    assert_eq!((key, info.last_read_ms, info.unread), ([9; 32], 7, true));
    let d = b.state().data();
    for k in [b"1".as_slice(), b"g", b"o"] {
        assert!(d.contains_key(k));
    }
    // `r` is always written, even as 0.
    let Some(Value::Dict(g)) = d.get(b"g".as_slice()) else {
        panic!()
    };
    let Some(Value::Dict(e)) = g.get(grp.as_slice()) else {
        panic!()
    };
    assert_eq!(e[b"r".as_slice()], Value::from(0));

    b.prune(5_000 + 46 * 24 * 3600 * 1000);
    assert_eq!(b.all(ConvoKind::OneToOne), vec![]);
}

#[test]
fn user_groups() {
    let seed = [3; 32];
    let mut a = UserGroups::new(&seed).unwrap();
    let mut member = Group::new(id(0x03, 4));
    member.auth_data = Some(vec![7; 100]);
    member.name = "Friends".into();
    member.invited = true;
    let mut admin = Group::new(id(0x03, 5));
    admin.secret_seed = Some([8; 32]);
    admin.removed = GroupRemoved::Kicked;
    admin.notifications = Notify::MentionsOnly;
    a.set_group(&member).unwrap();
    a.set_group(&admin).unwrap();
    let bad = Group {
        auth_data: Some(vec![1; 99]),
        ..Group::new(id(0x03, 6))
    };
    assert!(a.set_group(&bad).is_err());
    let room = Community {
        base_url: "http://Open.Example:80".into(),
        server_key: [1; 32],
        room: "Main".into(),
        name: "Main".into(),
        notifications: Notify::Default,
        mute_until: 0,
        priority: 1,
        invited: false,
        joined_at: 1_700_000_000,
    };
    a.set_community(&room).unwrap();

    let mut b = UserGroups::new(&seed).unwrap();
    sync(a.state_mut(), b.state_mut());
    assert_eq!(b.groups(), vec![member.clone(), admin.clone()]);
    let got = b.community("http://open.example", "MAIN").unwrap();
    assert_eq!(got.base_url, "http://open.example");
    assert_eq!((got.room.as_str(), got.name.as_str()), ("main", "Main"));
    assert_eq!(got.priority, 1);
    // A member's `K` is written empty; an admin's has no `s`.
    let Some(Value::Dict(g)) = b.state().data().get(b"g".as_slice()) else {
        panic!()
    };
    let Some(Value::Dict(m)) = g.get(id(0x03, 4).as_slice()) else {
        panic!()
    };
    assert_eq!(m[b"K".as_slice()], Value::from(b"".as_slice()));
    assert!(b.erase_community("http://open.example", "main"));
    assert!(!b.state().data().contains_key(b"o".as_slice()));
    assert!(b.erase_group(&id(0x03, 4)));
    assert_eq!(b.groups(), vec![admin]);
}
