//! The group's Info and Members configs: written and signed by admins under the current
//! group key, read by members with any key they hold; forged or unsigned ones are skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use umbra_config::{ConfigError, SwarmHash};
use umbra_crypto::{Identity, SessionId};
use umbra_groups::{
    GroupAdmin, GroupError, GroupInfo, GroupKeys, GroupMembers, Member, Pending, Removal, Role,
};

struct Setup {
    admin: GroupAdmin,
    admin_keys: GroupKeys,
    member: Identity,
    member_keys: GroupKeys,
    stored: Vec<Vec<u8>>,
}

fn setup() -> Setup {
    let admin = GroupAdmin::from_seed(&[5; 32]);
    let member = Identity::from_seed(&[6; 32]);
    let mut s = Setup {
        admin_keys: GroupKeys::new(*admin.public()),
        member_keys: GroupKeys::new(*admin.public()),
        admin,
        member,
        stored: Vec::new(),
    };
    rekey(&mut s);
    s
}

fn rekey(s: &mut Setup) {
    let ids: Vec<SessionId> = vec![s.member.session_id()];
    let msg = s.admin_keys.rekey(&s.admin, &ids, 0).unwrap();
    let ts = s.stored.len() as i64 + 1;
    s.admin_keys
        .load(Role::Admin(&s.admin), &format!("k{ts}"), &msg, ts)
        .unwrap();
    s.member_keys
        .load(Role::Member(&s.member), &format!("k{ts}"), &msg, ts)
        .unwrap();
    s.stored.push(msg);
}

fn push(state: &mut umbra_config::ConfigState, name: &str) -> Vec<u8> {
    let p = state.push().unwrap().expect("something to push");
    assert_eq!(p.messages.len(), 1);
    state.confirm_pushed(p.seqno, &[SwarmHash(name.into())]);
    p.messages[0].clone()
}

#[test]
fn info_written_by_an_admin_is_read_by_a_member() {
    let mut s = setup();
    let mut info = GroupInfo::new(s.admin.public(), Some(&s.admin), &s.admin_keys).unwrap();
    info.set_name("Tomato sauce").unwrap();
    info.set_description("friends sitting in it").unwrap();
    info.set_expiry_timer(Some(3600));
    info.set_created(1_700_000_000);
    let stored = push(info.state_mut(), "i1");

    let mut seen = GroupInfo::new(s.admin.public(), None, &s.member_keys).unwrap();
    let r = seen.state_mut().merge(&[(SwarmHash("i1".into()), &stored)]);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert_eq!(seen.name(), "Tomato sauce");
    assert_eq!(seen.description(), "friends sitting in it");
    assert_eq!(seen.expiry_timer(), Some(3600));
    assert_eq!(seen.created(), Some(1_700_000_000));
    assert!(!seen.is_destroyed());
    // A member cannot sign: it never pushes.
    seen.set_name("mine").unwrap();
    assert_eq!(
        seen.state_mut().push().map(|_| ()),
        Err(ConfigError::Signature)
    );

    // After a rekey the admin re-encrypts under the new key (a new seqno); a member holding
    // both keys reads it, one stuck on the old key cannot.
    let stale_keys = s.member_keys.clone();
    rekey(&mut s);
    info.set_keys(&s.admin_keys, true).unwrap();
    assert!(info.state().needs_push());
    let seqno = info.state().seqno();
    let stored2 = push(info.state_mut(), "i2");
    assert_eq!(seqno, 2);

    let mut fresh = GroupInfo::new(s.admin.public(), None, &s.member_keys).unwrap();
    let r = fresh.state_mut().merge(&[
        (SwarmHash("i1".into()), &stored),
        (SwarmHash("i2".into()), &stored2),
    ]);
    assert!(r.skipped.is_empty());
    assert_eq!(fresh.state().seqno(), 2);
    assert_eq!(fresh.name(), "Tomato sauce");

    let mut stale = GroupInfo::new(s.admin.public(), None, &stale_keys).unwrap();
    let r = stale
        .state_mut()
        .merge(&[(SwarmHash("i2".into()), &stored2)]);
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(stale.name(), "");
}

#[test]
fn a_config_signed_by_another_key_is_skipped() {
    let s = setup();
    // Someone holding the group key but not the seed (a member) forges an Info config.
    let forger = GroupAdmin::from_seed(&[9; 32]);
    let mut forged = GroupInfo::new(s.admin.public(), Some(&forger), &s.admin_keys).unwrap();
    forged.set_name("pwned").unwrap();
    let bytes = push(forged.state_mut(), "f");

    let mut seen = GroupInfo::new(s.admin.public(), None, &s.member_keys).unwrap();
    let r = seen.state_mut().merge(&[(SwarmHash("f".into()), &bytes)]);
    assert_eq!(
        r.skipped,
        vec![(SwarmHash("f".into()), ConfigError::Signature)]
    );
    assert_eq!(seen.name(), "");
}

#[test]
fn members_round_trip_and_limits() {
    let s = setup();
    let mut members = GroupMembers::new(s.admin.public(), Some(&s.admin), &s.admin_keys).unwrap();
    let admin_id = Identity::from_seed(&[7; 32]).session_id();
    let mut a = Member::new(admin_id);
    a.name = "Admin".into();
    a.admin = true;
    members.set(&a).unwrap();
    let mut m = Member::new(s.member.session_id());
    m.supplement = true;
    m.invite = Some(Pending::Sent);
    members.set(&m).unwrap();
    let stored = push(members.state_mut(), "m1");

    let mut seen = GroupMembers::new(s.admin.public(), None, &s.member_keys).unwrap();
    seen.state_mut().merge(&[(SwarmHash("m1".into()), &stored)]);
    let got_admin = seen.get(&admin_id).unwrap();
    assert!(got_admin.admin);
    assert_eq!(
        got_admin.invite, None,
        "admins never carry an invite status"
    );
    assert_eq!(seen.get(&s.member.session_id()), Some(m.clone()));
    let mut ids = vec![admin_id, s.member.session_id()];
    ids.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    assert_eq!(seen.session_ids(), ids);

    let mut too_long = m.clone();
    too_long.name = "x".repeat(101);
    assert!(matches!(
        members.set(&too_long),
        Err(GroupError::Config(ConfigError::FieldTooLong { .. }))
    ));
    let mut removing = m.clone();
    removing.removal = Removal::MemberAndMessages;
    members.set(&removing).unwrap();
    assert_eq!(
        members.get(&s.member.session_id()).unwrap().removal,
        Removal::MemberAndMessages
    );
    assert!(members.erase(&s.member.session_id()));
    assert!(!members.erase(&s.member.session_id()));
    assert_eq!(members.session_ids(), vec![admin_id]);
}

#[test]
fn setting_all_at_once_equals_setting_one_by_one() {
    let s = setup();
    let list: Vec<Member> = (0..40u8)
        .map(|i| {
            let mut m = Member::new(Identity::from_seed(&[i + 20; 32]).session_id());
            m.name = format!("m{i}");
            m.admin = i % 7 == 0;
            m.invite = (i % 3 == 0).then_some(Pending::Sent);
            m
        })
        .collect();
    let mut one = GroupMembers::new(s.admin.public(), Some(&s.admin), &s.admin_keys).unwrap();
    for m in &list {
        one.set(m).unwrap();
    }
    let mut all = GroupMembers::new(s.admin.public(), Some(&s.admin), &s.admin_keys).unwrap();
    all.set_all(&list).unwrap();
    assert_eq!(all.all(), one.all());
    assert_eq!(all.state().data(), one.state().data());
    assert_eq!(all.all().len(), 40);

    // One bad entry: nothing is written.
    let mut bad = list.clone();
    bad[5].name = "x".repeat(101);
    let mut none = GroupMembers::new(s.admin.public(), Some(&s.admin), &s.admin_keys).unwrap();
    assert!(none.set_all(&bad).is_err());
    assert!(none.all().is_empty());
    assert!(!none.state().needs_push());
}

#[test]
fn a_config_needs_a_key() {
    let admin = GroupAdmin::from_seed(&[5; 32]);
    let keys = GroupKeys::new(*admin.public());
    assert!(GroupInfo::new(admin.public(), Some(&admin), &keys).is_err());
}

#[test]
fn a_new_group_lists_its_creator_as_admin_and_the_invitees_as_invited() {
    let people: Vec<SessionId> = (1..=3u8)
        .map(|i| Identity::from_seed(&[i; 32]).session_id())
        .collect();
    let long_name = "é".repeat(150);
    let entries = Member::founding(people[0], &long_name, &people[1..]);
    assert_eq!(entries.len(), 3);
    let creator = &entries[0];
    assert_eq!(creator.session_id, people[0]);
    assert!(creator.admin);
    assert_eq!(creator.invite, None, "the creator is not invited");
    // The config holds at most 100 bytes: 50 two-byte characters (100 characters, as this
    // cut before, were 200 bytes, and the list then refused to be written).
    assert_eq!(creator.name.len(), 100, "names are cut at 100 bytes");
    assert_eq!(creator.name, "é".repeat(50));
    for (entry, id) in entries[1..].iter().zip(&people[1..]) {
        assert_eq!(entry.session_id, *id);
        assert!(!entry.admin);
        assert_eq!(entry.invite, Some(Pending::Sent));
        assert!(entry.name.is_empty());
    }
}

#[test]
fn names_are_made_to_fit_an_entry() {
    use umbra_groups::Member;
    assert_eq!(Member::fit_name("Alice"), "Alice");
    assert_eq!(Member::fit_name("a\0b"), "ab");
    // 60 two-byte characters are 120 bytes: cut at 100, on a character boundary.
    let long = "é".repeat(60);
    let fit = Member::fit_name(&long);
    assert_eq!(fit.len(), 100);
    assert_eq!(fit, "é".repeat(50));
    let odd = format!("a{}", "é".repeat(60));
    assert_eq!(Member::fit_name(&odd).len(), 99);
}
