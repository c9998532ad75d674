//! Closed groups on the in-memory swarms (which check subaccount tokens and revocations as
//! a node does): invitations, messages both ways, removal, catching up, forgeries.

use umbra_groups::{
    Flags, GroupAdmin, GroupInfo, GroupKeys, GroupPublic, Role, decrypt_message, namespace,
    rekey::build_rekey,
};

use super::groups::{group_content, parse_group_id};
use super::swarm::{GroupAuth, SwarmApi as _};
use super::tests::Net;
use super::*;
use umbra_crypto::MessageHash;
use umbra_wire::{GroupUpdateDeleteMemberContentMessage, GroupUpdateMessage};

fn group_texts(h: &[GroupChatMessage]) -> Vec<(bool, &str)> {
    h.iter().map(|m| (m.outgoing, m.body.as_str())).collect()
}

fn group_messages(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupMessage { message } => Some(message.body.as_str()),
            _ => None,
        })
        .collect()
}

/// `who` receives the invitation to `group` and accepts it.
async fn join(net: &Net, who: &Messenger, group: &str) {
    let ev = who.receive().await.unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::GroupInvite { group: g, .. } if g == group)),
        "an invitation arrives: {ev:?}"
    );
    assert_eq!(who.group(group).unwrap().status, GroupStatus::Invited);
    who.accept_group(group).await.unwrap();
    assert_eq!(who.group(group).unwrap().status, GroupStatus::Joined);
    net.clock.advance(1_000);
}

/// Alice's group "G" with Bob in it (he accepted her invitation).
pub(super) async fn alice_and_bob_in_a_group() -> (Net, Messenger, Messenger, GroupView) {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let view = alice.create_group("G", &[bob.session_id()]).await.unwrap();
    join(&net, &bob, &view.id).await;
    (net, alice, bob, view)
}

/// A member's key ring built from everything in the group swarm's keys namespace.
fn ring_of(net: &Net, who: &Messenger, group: &GroupPublic) -> GroupKeys {
    let mut keys = GroupKeys::new(*group);
    for (hash, data) in net.swarms.group_messages(group, i32::from(namespace::KEYS)) {
        let _ = keys.load(Role::Member(&who.identity), hash.as_str(), &data, 0);
    }
    keys
}

#[tokio::test]
async fn create_invite_accept_and_message_both_ways() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let view = alice
        .create_group("Hikers", &[bob.session_id()])
        .await
        .unwrap();
    assert!(view.id.starts_with("03") && view.id.len() == 66);
    assert!(view.admin);
    assert_eq!(view.name, "Hikers");
    let mut ids: Vec<_> = view
        .members
        .iter()
        .map(|m| (m.session_id, m.admin, m.invited))
        .collect();
    ids.sort();
    let mut want = vec![
        (alice.session_id(), true, false),
        (bob.session_id(), false, true),
    ];
    want.sort();
    assert_eq!(ids, want);

    join(&net, &bob, &view.id).await;
    let seen_by_bob = bob.group(&view.id).unwrap();
    assert_eq!(seen_by_bob.name, "Hikers");
    assert!(!seen_by_bob.admin);
    assert_eq!(seen_by_bob.invited_by, Some(alice.session_id()));
    assert_eq!(seen_by_bob.members.len(), 2);
    // The creator's own name is in the members config: Bob can name her without a contact.
    let creator = seen_by_bob
        .members
        .iter()
        .find(|m| m.session_id == alice.session_id())
        .unwrap();
    assert_eq!(creator.name.as_deref(), Some("alice"));

    // Alice sees Bob's acceptance and clears his invitation.
    alice.receive().await.unwrap();
    let member_bob = alice
        .group(&view.id)
        .unwrap()
        .members
        .into_iter()
        .find(|m| m.session_id == bob.session_id())
        .unwrap();
    assert!(!member_bob.invited);

    alice.send_group_text(&view.id, "hi all").await.unwrap();
    net.clock.advance(1_000);
    assert_eq!(
        group_messages(&bob.receive().await.unwrap()),
        vec!["hi all"]
    );
    bob.send_group_text(&view.id, "hi alice").await.unwrap();
    assert_eq!(
        group_messages(&alice.receive().await.unwrap()),
        vec!["hi alice"]
    );
    // Nothing twice.
    assert!(group_messages(&alice.receive().await.unwrap()).is_empty());

    assert_eq!(
        group_texts(&alice.group_history(&view.id).unwrap()),
        vec![(true, "hi all"), (false, "hi alice")]
    );
    assert_eq!(
        group_texts(&bob.group_history(&view.id).unwrap()),
        vec![(false, "hi all"), (true, "hi alice")]
    );
    // Stored once in the group swarm: two texts and Bob's acceptance, nothing per member.
    let public = parse_group_id(&view.id).unwrap();
    assert_eq!(
        net.swarms
            .group_messages(&public, i32::from(namespace::MESSAGES))
            .len(),
        3
    );
    // The 1:1 swarm of Bob holds the invitation only, none of the group texts.
    assert_eq!(net.swarms.messages(&bob.session_id(), 0).len(), 1);
}

#[tokio::test]
async fn a_declined_or_unknown_invitation_is_not_joined() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let view = alice.create_group("G", &[bob.session_id()]).await.unwrap();
    bob.receive().await.unwrap();
    bob.decline_group(&view.id).unwrap();
    assert!(bob.groups().unwrap().is_empty());
    assert!(matches!(
        bob.send_group_text(&view.id, "x").await,
        Err(MessengerError::UnknownGroup(_))
    ));
    assert!(matches!(
        bob.group("05abc"),
        Err(MessengerError::InvalidGroupId(_))
    ));
}

#[tokio::test]
async fn a_removed_member_cannot_read_newer_messages_and_its_token_is_refused() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (carol, _) = net.user("carol", 3);
    let view = alice
        .create_group("G", &[bob.session_id(), carol.session_id()])
        .await
        .unwrap();
    join(&net, &bob, &view.id).await;
    join(&net, &carol, &view.id).await;
    alice.receive().await.unwrap();
    alice.send_group_text(&view.id, "before").await.unwrap();
    net.clock.advance(1_000);
    assert_eq!(
        group_messages(&carol.receive().await.unwrap()),
        vec!["before"]
    );

    alice
        .remove_group_members(&view.id, &[carol.session_id()])
        .await
        .unwrap();
    net.clock.advance(1_000);
    alice.send_group_text(&view.id, "after").await.unwrap();
    net.clock.advance(1_000);

    // Carol reads the kicked notice and stops.
    let ev = carol.receive().await.unwrap();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::GroupClosed {
            status: GroupStatus::Kicked,
            ..
        }
    )));
    assert_eq!(carol.group(&view.id).unwrap().status, GroupStatus::Kicked);
    assert_eq!(
        group_texts(&carol.group_history(&view.id).unwrap()),
        vec![(false, "before")]
    );

    // Even with every keys message, Carol holds no key that opens "after"; Bob does.
    let public = parse_group_id(&view.id).unwrap();
    let stored = net
        .swarms
        .group_messages(&public, i32::from(namespace::MESSAGES));
    let (_, newest) = stored.last().unwrap();
    assert!(decrypt_message(&ring_of(&net, &carol, &public), newest).is_err());
    let opened = decrypt_message(&ring_of(&net, &bob, &public), newest).unwrap();
    assert_eq!(opened.sender, alice.session_id());
    assert_eq!(
        group_messages(&bob.receive().await.unwrap()),
        vec!["before", "after"]
    );

    // Her token is revoked: the swarm refuses her reads and writes.
    let admin = GroupAdmin::from_seed(alice.held_of(&view.id).unwrap().admin.unwrap().seed());
    let token = admin.member_token(&carol.session_id(), Flags::member(true, false));
    assert!(net.swarms.is_revoked(&public, &token));
    let sub = carol.subaccount(&carol.held_of(&view.id).unwrap()).unwrap();
    let refused = net
        .swarms
        .group_retrieve(&public, GroupAuth::Member(&sub), 11, None)
        .await
        .unwrap_err();
    assert!(matches!(refused, SwarmError::Status { status: 401, .. }));
    let refused = net
        .swarms
        .group_store(
            &public,
            GroupAuth::Member(&sub),
            11,
            b"x",
            net.clock.now_ms(),
            86_400_000,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, SwarmError::Status { status: 401, .. }));
    // And the messenger will not send for her.
    assert!(matches!(
        carol.send_group_text(&view.id, "let me in").await,
        Err(MessengerError::GroupNotActive { .. })
    ));
    // Alice's member list no longer has her.
    assert!(
        !alice
            .group(&view.id)
            .unwrap()
            .members
            .iter()
            .any(|m| m.session_id == carol.session_id())
    );
}

#[tokio::test]
async fn a_member_offline_during_two_rekeys_catches_up() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (carol, _) = net.user("carol", 3);
    let (dave, _) = net.user("dave", 4);
    let view = alice
        .create_group(
            "G",
            &[bob.session_id(), carol.session_id(), dave.session_id()],
        )
        .await
        .unwrap();
    join(&net, &bob, &view.id).await;
    // Bob is offline from here on.
    alice
        .remove_group_members(&view.id, &[carol.session_id()])
        .await
        .unwrap();
    net.clock.advance(1_000);
    alice
        .remove_group_members(&view.id, &[dave.session_id()])
        .await
        .unwrap();
    net.clock.advance(1_000);
    let alice_generation = alice.held_of(&view.id).unwrap().keys.current_generation();
    assert_eq!(alice_generation, Some(2));
    alice
        .send_group_text(&view.id, "two rekeys later")
        .await
        .unwrap();
    net.clock.advance(1_000);

    let ev = bob.receive().await.unwrap();
    assert_eq!(group_messages(&ev), vec!["two rekeys later"]);
    assert_eq!(
        bob.held_of(&view.id).unwrap().keys.current_generation(),
        alice_generation
    );
    let mut members: Vec<_> = bob
        .group(&view.id)
        .unwrap()
        .members
        .into_iter()
        .map(|m| m.session_id)
        .collect();
    members.sort();
    let mut want = vec![alice.session_id(), bob.session_id()];
    want.sort();
    assert_eq!(members, want);
    // And Bob still writes with the newest key.
    bob.send_group_text(&view.id, "back").await.unwrap();
    assert_eq!(
        group_messages(&alice.receive().await.unwrap()),
        vec!["back"]
    );
}

#[tokio::test]
async fn forged_keys_messages_and_configs_are_ignored() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let view = alice
        .create_group("Real", &[bob.session_id()])
        .await
        .unwrap();
    join(&net, &bob, &view.id).await;
    let public = parse_group_id(&view.id).unwrap();
    let before = bob.held_of(&view.id).unwrap().keys.keys().to_vec();

    // A forger without the group key writes a rekey for Bob and a renamed Info config,
    // signed with its own key.
    let forger = GroupAdmin::from_seed(&[66; 32]);
    let forged_keys = build_rekey(&forger, &[bob.session_id()], 7)
        .unwrap()
        .message;
    net.swarms
        .inject_group_message(&public, i32::from(namespace::KEYS), &forged_keys);
    let alice_keys = alice.held_of(&view.id).unwrap().keys;
    let mut forged_info = GroupInfo::new(&public, Some(&forger), &alice_keys).unwrap();
    forged_info.state_mut().merge(
        &net.swarms
            .group_messages(&public, i32::from(namespace::INFO))
            .iter()
            .map(|(h, d)| (umbra_config::SwarmHash(h.to_string()), d.as_slice()))
            .collect::<Vec<_>>(),
    );
    forged_info.set_name("Pwned").unwrap();
    let push = forged_info.state_mut().push().unwrap().unwrap();
    for m in &push.messages {
        net.swarms
            .inject_group_message(&public, i32::from(namespace::INFO), m);
    }
    net.clock.advance(1_000);

    bob.receive().await.unwrap();
    let after = bob.held_of(&view.id).unwrap().keys;
    assert_eq!(after.keys(), before.as_slice(), "no forged key loaded");
    assert_eq!(after.current_generation(), Some(0));
    assert_eq!(bob.group(&view.id).unwrap().name, "Real");
    // Nothing forged was kept.
    let kept = db::group_data(&bob.db(), &view.id, i32::from(namespace::KEYS)).unwrap();
    assert_eq!(kept.len(), 1);

    // The group still works.
    alice.send_group_text(&view.id, "still us").await.unwrap();
    assert_eq!(
        group_messages(&bob.receive().await.unwrap()),
        vec!["still us"]
    );
}

#[tokio::test]
async fn promote_leave_and_delete_for_everyone() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (carol, _) = net.user("carol", 3);
    let view = alice
        .create_group("G", &[bob.session_id(), carol.session_id()])
        .await
        .unwrap();
    join(&net, &bob, &view.id).await;
    join(&net, &carol, &view.id).await;

    // Bob becomes an admin: he holds the group key and can add members.
    assert!(matches!(
        bob.remove_group_members(&view.id, &[carol.session_id()])
            .await,
        Err(MessengerError::NotGroupAdmin(_))
    ));
    alice
        .promote_group_member(&view.id, &bob.session_id())
        .await
        .unwrap();
    let bob_in = |v: GroupView| {
        v.members
            .into_iter()
            .find(|m| m.session_id == bob.session_id())
            .unwrap()
    };
    let pending = bob_in(alice.group(&view.id).unwrap());
    assert!(pending.admin && pending.promoting);
    bob.receive().await.unwrap();
    let bob_view = bob.group(&view.id).unwrap();
    assert!(bob_view.admin);
    let confirmed = bob_in(bob_view);
    assert!(
        confirmed.admin && !confirmed.promoting,
        "Bob confirms his promotion"
    );
    net.clock.advance(1_000);
    alice.receive().await.unwrap();
    assert!(!bob_in(alice.group(&view.id).unwrap()).promoting);

    // Carol leaves; an admin removes her at its next poll and rekeys.
    carol.leave_group(&view.id).await.unwrap();
    assert!(carol.groups().unwrap().is_empty());
    net.clock.advance(1_000);
    alice.receive().await.unwrap();
    assert!(
        !alice
            .group(&view.id)
            .unwrap()
            .members
            .iter()
            .any(|m| m.session_id == carol.session_id())
    );
    assert_eq!(
        alice.held_of(&view.id).unwrap().keys.current_generation(),
        Some(1)
    );

    // Alice deletes the group for everyone.
    net.clock.advance(1_000);
    alice.delete_group(&view.id).await.unwrap();
    let ev = bob.receive().await.unwrap();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::GroupClosed {
            status: GroupStatus::Destroyed,
            ..
        }
    )));
    assert_eq!(bob.group(&view.id).unwrap().status, GroupStatus::Destroyed);
    assert!(matches!(
        bob.send_group_text(&view.id, "anyone?").await,
        Err(MessengerError::GroupNotActive { .. })
    ));
}

#[tokio::test]
async fn groups_survive_a_restart() {
    let (net, alice, bob, view) = alice_and_bob_in_a_group().await;
    drop(bob);
    let bob = net.reopen("bob", 2);
    assert_eq!(bob.group(&view.id).unwrap().status, GroupStatus::Joined);
    alice
        .send_group_text(&view.id, "after restart")
        .await
        .unwrap();
    assert_eq!(
        group_messages(&bob.receive().await.unwrap()),
        vec!["after restart"]
    );
}

#[tokio::test]
async fn two_messages_in_the_same_millisecond_both_arrive() {
    let (_net, alice, bob, view) = alice_and_bob_in_a_group().await;
    // The clock does not move between the two.
    let first = alice.send_group_text(&view.id, "one").await.unwrap();
    let second = alice.send_group_text(&view.id, "two").await.unwrap();
    assert_ne!(first.sent_ms, second.sent_ms);
    assert_eq!(
        group_messages(&bob.receive().await.unwrap()),
        vec!["one", "two"]
    );
    assert_eq!(alice.group_history(&view.id).unwrap().len(), 2);
    // A page of the newest: the last one, and older ones said to exist.
    let (page, more) = alice.recent_group_history(&view.id, 1).unwrap();
    assert_eq!(group_texts(&page), vec![(true, "two")]);
    assert!(more);
    let (page, more) = alice.recent_group_history(&view.id, 5).unwrap();
    assert_eq!(group_texts(&page), vec![(true, "one"), (true, "two")]);
    assert!(!more);
}

#[tokio::test]
async fn members_added_later_read_history_only_when_it_is_shared() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (carol, _) = net.user("carol", 3);
    let (dave, _) = net.user("dave", 4);
    let view = alice.create_group("G", &[bob.session_id()]).await.unwrap();
    join(&net, &bob, &view.id).await;
    alice.send_group_text(&view.id, "old news").await.unwrap();
    net.clock.advance(1_000);

    // Without history: a rekey; Carol reads from her arrival on.
    assert!(matches!(
        bob.add_group_members(&view.id, &[carol.session_id()], false)
            .await,
        Err(MessengerError::NotGroupAdmin(_))
    ));
    alice
        .add_group_members(&view.id, &[carol.session_id()], false)
        .await
        .unwrap();
    assert_eq!(
        alice.held_of(&view.id).unwrap().keys.current_generation(),
        Some(1)
    );
    net.clock.advance(1_000);
    join(&net, &carol, &view.id).await;
    // With history: a supplemental keys message; Dave reads the old message too.
    alice
        .add_group_members(&view.id, &[dave.session_id()], true)
        .await
        .unwrap();
    assert_eq!(
        alice.held_of(&view.id).unwrap().keys.current_generation(),
        Some(1),
        "no rekey for a member added with history"
    );
    net.clock.advance(1_000);
    join(&net, &dave, &view.id).await;
    alice.send_group_text(&view.id, "welcome").await.unwrap();
    net.clock.advance(1_000);

    let carol_saw = carol.group_history(&view.id).unwrap();
    let dave_saw = dave.group_history(&view.id).unwrap();
    carol.receive().await.unwrap();
    dave.receive().await.unwrap();
    let carol_all: Vec<_> = carol
        .group_history(&view.id)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    let dave_all: Vec<_> = dave
        .group_history(&view.id)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert!(carol_saw.iter().all(|m| m.body != "old news"));
    assert_eq!(carol_all, vec!["welcome"]);
    assert!(dave_saw.iter().any(|m| m.body == "old news"));
    assert_eq!(dave_all, vec!["old news", "welcome"]);
    // Bob, there from the start (and offline since), reads both across the rekey.
    assert_eq!(
        group_messages(&bob.receive().await.unwrap()),
        vec!["old news", "welcome"]
    );
    // Everyone is in Alice's list, invitations accepted.
    alice.receive().await.unwrap();
    let v = alice.group(&view.id).unwrap();
    assert_eq!(v.members.len(), 4);
    assert!(v.members.iter().all(|m| !m.invited), "{:?}", v.members);
}

#[tokio::test]
async fn a_group_message_sent_while_the_swarm_is_down_is_delivered_later() {
    let (net, alice, bob, view) = alice_and_bob_in_a_group().await;
    net.swarms.set_down(true);
    let queued = alice
        .send_group_text(&view.id, "when you can")
        .await
        .unwrap();
    assert_eq!(queued.status, MessageStatus::Queued);
    assert_eq!(
        alice.group_history(&view.id).unwrap()[0].status,
        MessageStatus::Queued
    );
    // Group entries are not one-to-one outbox entries (whose owner is a Session ID).
    assert!(alice.outbox().unwrap().is_empty());
    net.swarms.set_down(false);
    net.clock.advance(super::BACKOFF_MIN_MS);
    let report = alice.flush_outbox().await.unwrap();
    assert_eq!((report.done, report.pending), (1, 0));
    assert_eq!(
        alice.group_history(&view.id).unwrap()[0].status,
        MessageStatus::Sent
    );
    assert_eq!(
        group_messages(&bob.receive().await.unwrap()),
        vec!["when you can"]
    );
    // Shown once on Alice's side, although the copy comes back from the swarm.
    alice.receive().await.unwrap();
    assert_eq!(alice.group_history(&view.id).unwrap().len(), 1);
}

#[tokio::test]
async fn a_queued_group_message_of_a_removed_member_fails_for_good() {
    let (net, alice, bob, view) = alice_and_bob_in_a_group().await;
    net.swarms.set_down(true);
    bob.send_group_text(&view.id, "too late").await.unwrap();
    net.swarms.set_down(false);
    alice
        .remove_group_members(&view.id, &[bob.session_id()])
        .await
        .unwrap();
    net.clock.advance(super::BACKOFF_MIN_MS);
    // Bob's poll delivers the outbox first: the revoked token is refused for good.
    bob.receive().await.unwrap();
    assert_eq!(
        bob.group_history(&view.id).unwrap()[0].status,
        MessageStatus::Failed
    );
    assert_eq!(bob.flush_outbox().await.unwrap().pending, 0);
}

/// Another device of the account with `phrase`.
fn second_device(net: &Net, name: &str, phrase: &str, seed: u64) -> Messenger {
    let p = Profile::restore(
        &net.dir(name),
        phrase,
        None,
        super::tests::FAST_KDF,
        &mut umbra_crypto::SeededRandom::new(seed),
    )
    .unwrap();
    net.messenger(p, seed)
}

#[tokio::test]
async fn a_second_device_learns_the_groups_through_the_user_groups_config() {
    let net = Net::new();
    let (alice, phrase) = net.user("alice", 1);
    let (bob, bob_phrase) = net.user("bob", 2);
    let view = alice
        .create_group("Synced", &[bob.session_id()])
        .await
        .unwrap();
    join(&net, &bob, &view.id).await;
    alice.receive().await.unwrap();
    alice
        .send_group_text(&view.id, "from device one")
        .await
        .unwrap();
    net.clock.advance(1_000);

    // Alice's second device pulls UserGroups (with the seed) and reads the group as admin.
    let alice2 = second_device(&net, "alice2", &phrase, 11);
    let ev = alice2.receive().await.unwrap();
    assert_eq!(group_messages(&ev), vec!["from device one"]);
    let v = alice2.group(&view.id).unwrap();
    assert_eq!(v.status, GroupStatus::Joined);
    assert!(v.admin);
    assert_eq!(v.name, "Synced");
    assert_eq!(v.members.len(), 2);

    // Bob's second device: a member (auth data from the config), joined, not a request.
    let bob2 = second_device(&net, "bob2", &bob_phrase, 12);
    assert_eq!(
        group_messages(&bob2.receive().await.unwrap()),
        vec!["from device one"]
    );
    let v = bob2.group(&view.id).unwrap();
    assert_eq!(v.status, GroupStatus::Joined);
    assert!(!v.admin);

    net.clock.advance(1_000);
    alice2
        .send_group_text(&view.id, "from device two")
        .await
        .unwrap();
    assert_eq!(
        group_messages(&bob2.receive().await.unwrap()),
        vec!["from device two"]
    );
    assert_eq!(
        group_messages(&bob.receive().await.unwrap()),
        vec!["from device one", "from device two"]
    );

    // A removal seen by one device closes the group on the other through the config too.
    alice
        .remove_group_members(&view.id, &[bob.session_id()])
        .await
        .unwrap();
    net.clock.advance(1_000);
    bob.receive().await.unwrap();
    assert_eq!(bob.group(&view.id).unwrap().status, GroupStatus::Kicked);
    net.clock.advance(1_000);
    bob.receive().await.unwrap();
    bob2.sync_config().await.unwrap();
    assert_eq!(bob2.group(&view.id).unwrap().status, GroupStatus::Kicked);
}

#[tokio::test]
async fn an_admin_keeps_the_group_alive_beyond_the_config_ttl() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (carol, _) = net.user("carol", 3);
    let view = alice
        .create_group("Old", &[bob.session_id()])
        .await
        .unwrap();
    join(&net, &bob, &view.id).await;
    let public = parse_group_id(&view.id).unwrap();
    let day = 24 * 3_600_000;
    // Alice polls now and then for 40 days; the keys and configs outlive their 30-day TTL.
    for _ in 0..4 {
        net.clock.advance(10 * day);
        alice.receive().await.unwrap();
    }
    for ns in [namespace::KEYS, namespace::INFO, namespace::MEMBERS] {
        assert!(
            !net.swarms.group_messages(&public, i32::from(ns)).is_empty(),
            "namespace {ns} expired"
        );
    }
    // So a member added now still finds its keys and the group's name.
    alice
        .add_group_members(&view.id, &[carol.session_id()], true)
        .await
        .unwrap();
    join(&net, &carol, &view.id).await;
    assert_eq!(carol.group(&view.id).unwrap().name, "Old");
    alice
        .send_group_text(&view.id, "forty days on")
        .await
        .unwrap();
    assert_eq!(
        group_messages(&carol.receive().await.unwrap()),
        vec!["forty days on"]
    );
}

/// The hash of the group message `body` in `who`'s history.
fn hash_of(who: &Messenger, group: &str, body: &str) -> MessageHash {
    who.group_history(group)
        .unwrap()
        .into_iter()
        .find(|m| m.body == body)
        .and_then(|m| m.hash)
        .unwrap_or_else(|| panic!("{body:?} is in the history with its hash"))
}

fn unsent(events: &[Event]) -> Vec<(SessionId, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupUnsent {
                author, sent_ms, ..
            } => Some((*author, *sent_ms)),
            _ => None,
        })
        .collect()
}

fn bodies(who: &Messenger, group: &str) -> Vec<String> {
    who.group_history(group)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

#[tokio::test]
async fn members_unsend_their_own_group_messages_and_admins_anyones() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (carol, _) = net.user("carol", 3);
    let id = alice
        .create_group("G", &[bob.session_id(), carol.session_id()])
        .await
        .unwrap()
        .id;
    join(&net, &bob, &id).await;
    join(&net, &carol, &id).await;
    alice.receive().await.unwrap();
    let public = parse_group_id(&id).unwrap();
    let stored = |h: &MessageHash| {
        net.swarms
            .group_messages(&public, i32::from(namespace::MESSAGES))
            .iter()
            .any(|(x, _)| x == h)
    };

    bob.send_group_text(&id, "typo").await.unwrap();
    net.clock.advance(1_000);
    alice.send_group_text(&id, "hello").await.unwrap();
    net.clock.advance(1_000);
    carol.receive().await.unwrap();
    bob.receive().await.unwrap();
    assert_eq!(bodies(&carol, &id), ["typo", "hello"]);

    // Bob deletes his own message: gone for him at once, for Carol at her next poll. A
    // member cannot delete from the swarm, so the bytes stay there.
    let typo = hash_of(&bob, &id, "typo");
    bob.unsend_group_message(&id, &typo).await.unwrap();
    assert_eq!(bodies(&bob, &id), ["hello"]);
    net.clock.advance(1_000);
    let ev = carol.receive().await.unwrap();
    assert_eq!(unsent(&ev).len(), 1);
    assert_eq!(unsent(&ev)[0].0, bob.session_id());
    assert_eq!(bodies(&carol, &id), ["hello"]);
    assert!(stored(&typo));

    // Bob is no admin: Alice's message is not his to delete, through the API or by hand.
    let hello = hash_of(&bob, &id, "hello");
    assert!(matches!(
        bob.unsend_group_message(&id, &hello).await,
        Err(MessengerError::NotOwnMessage)
    ));
    let h = bob.held_of(&id).unwrap();
    let now = net.clock.now_ms();
    let forged = |admin_signature: Option<Vec<u8>>| {
        group_content(GroupUpdateMessage {
            delete_member_content: Some(GroupUpdateDeleteMemberContentMessage {
                member_session_ids: vec![alice.session_id().to_hex()],
                message_hashes: vec![hello.to_string()],
                admin_signature,
            }),
            ..GroupUpdateMessage::default()
        })
    };
    bob.send_group_content(&h, &forged(None), now)
        .await
        .unwrap();
    let signed = format!("DELETE_CONTENT{now}{}{hello}", alice.session_id().to_hex());
    let wrong_key = bob.identity.sign(signed.as_bytes()).to_bytes().to_vec();
    bob.send_group_content(&h, &forged(Some(wrong_key)), now + 1)
        .await
        .unwrap();
    net.clock.advance(1_000);
    assert!(unsent(&carol.receive().await.unwrap()).is_empty());
    assert_eq!(bodies(&carol, &id), ["hello"]);

    // Alice, an admin, deletes Carol's message: for everyone, and from the swarm.
    carol.send_group_text(&id, "oops").await.unwrap();
    net.clock.advance(1_000);
    alice.receive().await.unwrap();
    let oops = hash_of(&alice, &id, "oops");
    alice.unsend_group_message(&id, &oops).await.unwrap();
    assert!(!stored(&oops));
    assert_eq!(bodies(&alice, &id), ["hello"]);
    net.clock.advance(1_000);
    let ev = carol.receive().await.unwrap();
    let gone = unsent(&ev);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].0, carol.session_id());
    assert_eq!(bodies(&carol, &id), ["hello"]);
    bob.receive().await.unwrap();
    assert_eq!(bodies(&bob, &id), ["hello"]);
    // Unknown hashes are refused with a clear error.
    assert!(matches!(
        alice.unsend_group_message(&id, &oops).await,
        Err(MessengerError::NoSuchMessage(_))
    ));
}

#[tokio::test]
async fn an_admin_sets_disappearing_messages_for_the_whole_group() {
    let (net, alice, bob, view) = alice_and_bob_in_a_group().await;
    let id = view.id;
    alice.receive().await.unwrap();
    alice.send_group_text(&id, "stays").await.unwrap();

    // Only admins set it, within the one-to-one bounds.
    assert!(matches!(
        bob.set_group_disappearing(&id, Some(60)).await,
        Err(MessengerError::NotGroupAdmin(_))
    ));
    assert!(matches!(
        alice.set_group_disappearing(&id, Some(1)).await,
        Err(MessengerError::InvalidTimer { .. })
    ));
    alice.set_group_disappearing(&id, Some(60)).await.unwrap();
    let after = Disappearing::AfterSend { seconds: 60 };
    assert_eq!(alice.group(&id).unwrap().disappearing, after);
    net.clock.advance(1_000);
    bob.receive().await.unwrap();
    assert_eq!(
        bob.group(&id).unwrap().disappearing,
        after,
        "through the Info config"
    );

    // Both sides' later messages disappear 60 s after they were sent, on both sides.
    bob.send_group_text(&id, "gone soon").await.unwrap();
    net.clock.advance(1_000);
    alice.receive().await.unwrap();
    for who in [&alice, &bob] {
        let h = who.group_history(&id).unwrap();
        assert_eq!(bodies(who, &id), ["stays", "gone soon"]);
        assert_eq!(h[0].expires_at_ms, None, "sent before the timer");
        let sent = h[1].sent_ms;
        assert_eq!(h[1].expires_at_ms, Some(sent + 60_000));
    }
    let gone = hash_of(&bob, &id, "gone soon");
    let public = parse_group_id(&id).unwrap();
    let in_swarm = |h: &MessageHash| {
        net.swarms
            .group_messages(&public, i32::from(namespace::MESSAGES))
            .iter()
            .any(|(x, _)| x == h)
    };
    assert!(in_swarm(&gone));
    net.clock.advance(59_000);
    for who in [&alice, &bob] {
        assert_eq!(bodies(who, &id), ["stays"]);
    }
    assert!(!in_swarm(&gone), "stored for 60 s only");

    // Off again: new messages stay.
    alice.set_group_disappearing(&id, None).await.unwrap();
    net.clock.advance(1_000);
    bob.receive().await.unwrap();
    assert_eq!(bob.group(&id).unwrap().disappearing, Disappearing::Off);
    bob.send_group_text(&id, "for good").await.unwrap();
    net.clock.advance(120_000);
    assert_eq!(bodies(&bob, &id), ["stays", "for good"]);
}

#[tokio::test]
async fn a_groups_activity_is_its_newest_message_and_unread_count() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let id = alice
        .create_group("G", &[bob.session_id()])
        .await
        .unwrap()
        .id;
    let empty = bob.group_activity(&id, 0).unwrap();
    assert_eq!(
        (empty.last, empty.unread, empty.newest_received_ms),
        (None, 0, 0)
    );
    join(&net, &bob, &id).await;
    alice.send_group_text(&id, "one").await.unwrap();
    net.clock.advance(1_000);
    alice.send_group_text(&id, "two").await.unwrap();
    net.clock.advance(1_000);
    bob.receive().await.unwrap();
    bob.send_group_text(&id, "mine").await.unwrap();
    let all = bob.group_activity(&id, 0).unwrap();
    assert_eq!(all.last.map(|m| m.body).as_deref(), Some("mine"));
    assert_eq!(all.unread, 2, "our own message is never unread");
    let history = bob.group_history(&id).unwrap();
    let newest = history.iter().map(|m| m.received_ms).max().unwrap();
    assert_eq!(all.newest_received_ms, newest);
    assert_eq!(bob.group_activity(&id, newest).unwrap().unread, 0);
}

#[tokio::test]
async fn members_are_named_as_they_name_themselves_and_odd_names_fit() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (carol, _) = net.user("carol", 3);
    // Alice knows Bob's own name from his message, and gives him a private nickname.
    bob.send_text(&alice.session_id(), "hi").await.unwrap();
    net.clock.advance(1_000);
    alice.receive().await.unwrap();
    alice
        .rename_contact(&bob.session_id(), Some("Bobby (work)"))
        .unwrap();
    // A display name the members config cannot hold (a NUL) must not stop the group.
    alice.set_display_name("Al\0ice").unwrap();

    let view = alice
        .create_group("G", &[bob.session_id(), carol.session_id()])
        .await
        .unwrap();
    let name_of = |id: SessionId| {
        view.members
            .iter()
            .find(|m| m.session_id == id)
            .unwrap()
            .name
            .clone()
    };
    assert_eq!(name_of(alice.session_id()), Some("Alice".to_string()));
    // His own name, never Alice's nickname for him; Carol is unknown to Alice.
    assert_eq!(name_of(bob.session_id()), Some("bob".to_string()));
    assert_eq!(name_of(carol.session_id()), None);
}
