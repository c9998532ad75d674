#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The messenger over real HTTPS to in-process storage nodes (`umbra_node::testing`), through
//! umbra-net's onion paths: long-polling, and disappearing messages leaving the swarms.

#[path = "../../umbra-net/tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use umbra_crypto::{Identity, SeededRandom};
use umbra_net::{Clock as _, SystemClock};

use common::{Net, start, transport};

/// Six one-node swarms: whichever swarm owns an account, the node that holds its messages is
/// the node its owner retrieves from (no replication between test nodes is needed).
const ONE_NODE_SWARMS: [u64; 6] = [
    0x1000_0000_0000_0000,
    0x3000_0000_0000_0000,
    0x5000_0000_0000_0000,
    0x9000_0000_0000_0000,
    0xb000_0000_0000_0000,
    0xd000_0000_0000_0000,
];

/// A messenger on `net` whose profile lives in `dir`.
fn messenger(net: &Net, dir: &std::path::Path, seed: u64) -> Arc<umbra_messenger::Messenger> {
    use umbra_messenger::{KdfParams, Messenger, OnionSwarm, Profile};
    let (profile, _phrase) = Profile::create(
        dir,
        None,
        KdfParams::default(),
        &mut SeededRandom::new(seed),
    )
    .unwrap();
    let clock = Arc::new(SystemClock);
    let swarm = OnionSwarm::new(transport(net), clock.clone());
    Arc::new(Messenger::new(
        profile,
        Arc::new(swarm),
        clock,
        Box::new(SeededRandom::new(seed + 1)),
    ))
}

/// The messenger's waiting loop long-polls through the onion path: the recipient's retrieve is
/// held at its node (seen from the node), and the message sent meanwhile wakes it up (the
/// node counts a wake-up, not a deadline) and is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_recipient_is_woken_by_the_message_through_onion_paths() {
    use umbra_messenger::{Event, MessageStatus};
    let net = start(&ONE_NODE_SWARMS).await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = messenger(&net, dirs.0.path(), 100);
    let bob = messenger(&net, dirs.1.path(), 200);
    let waiting = || -> usize {
        net.nodes
            .iter()
            .flatten()
            .map(|n| n.node().unwrap().state().long_poll.waiting())
            .sum()
    };
    let woken = || -> u64 {
        net.nodes
            .iter()
            .flatten()
            .map(|n| n.node().unwrap().state().long_poll.woken())
            .sum()
    };

    let receiver = {
        let bob = bob.clone();
        tokio::spawn(async move { bob.receive_wait(std::time::Duration::from_secs(120)).await })
    };
    let guard = SystemClock.instant();
    while waiting() == 0 {
        assert!(
            SystemClock.since(guard) < std::time::Duration::from_secs(120),
            "the recipient's retrieve never waited at a node"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(woken(), 0);
    let sent = alice
        .send_text(&bob.session_id(), "are you there?")
        .await
        .unwrap();
    assert_eq!(sent.status, MessageStatus::Sent);
    let events = receiver.await.unwrap().unwrap();
    let shown: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message { message, request } => Some((message.body.clone(), *request)),
            _ => None,
        })
        .collect();
    assert_eq!(shown, vec![("are you there?".to_string(), true)]);
    assert!(woken() >= 1, "answered by a wake-up, not a deadline");
}

/// Disappearing messages on real nodes: a message sent with a 10 s after-send timer is gone
/// after 10 s from both users' histories and from the swarms (the nodes no longer return it
/// to a retrieve from the start), while the message before the timer stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disappearing_message_vanishes_on_both_sides_and_in_the_swarms() {
    use umbra_messenger::{Disappearing, Event, SwarmApi as _};
    let net = start(&ONE_NODE_SWARMS).await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = messenger(&net, dirs.0.path(), 300);
    let bob = messenger(&net, dirs.1.path(), 400);
    let (a, b) = (alice.session_id(), bob.session_id());
    let wait = std::time::Duration::from_secs(60);

    alice.send_text(&b, "stays").await.unwrap();
    bob.receive_wait(wait).await.unwrap();
    bob.accept_request(&a).await.unwrap();
    let mode = Disappearing::AfterSend { seconds: 10 };
    alice.set_disappearing(&b, mode).await.unwrap();
    let vanishing = alice.send_text(&b, "vanishes").await.unwrap();
    let mut got_timer = false;
    while bob.history(&a).unwrap().len() < 2 {
        for e in bob.receive_wait(wait).await.unwrap() {
            got_timer |= e
                == Event::DisappearingChanged {
                    conversation: a,
                    setting: mode,
                };
        }
    }
    assert!(got_timer, "the timer change reached the other side");
    let hash_at_bob = bob.history(&a).unwrap()[1].hash.unwrap();
    assert_eq!(
        bob.history(&a).unwrap()[1].expires_at_ms,
        Some(vanishing.sent_ms + 10_000)
    );

    // Past the timer (by the wall clock the nodes and the messengers read).
    let due = vanishing.sent_ms + 10_000 + 500;
    while umbra_node::testing::now_ms() <= i64::try_from(due).unwrap() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let bodies = |m: &umbra_messenger::Messenger, with| -> Vec<String> {
        m.history(with)
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect()
    };
    assert_eq!(bodies(&alice, &b), vec!["stays".to_string()]);
    assert_eq!(bodies(&bob, &a), vec!["stays".to_string()]);

    // Every node of the recipient's swarm returns the message that stays, not the other.
    let stays_at_bob = bob.history(&a).unwrap()[0].hash.unwrap();
    let bob_identity = Identity::generate(&mut SeededRandom::new(400));
    assert_eq!(
        bob_identity.session_id(),
        b,
        "the profile's identity, from its seed"
    );
    let swarm = umbra_messenger::OnionSwarm::new(transport(&net), Arc::new(SystemClock));
    let nodes = swarm.nodes(&b).await.unwrap();
    assert!(!nodes.is_empty());
    for node in &nodes {
        let page = swarm.retrieve(&bob_identity, 0, node, None).await.unwrap();
        let hashes: Vec<&str> = page.messages.iter().map(|m| m.hash.as_str()).collect();
        assert!(hashes.contains(&stays_at_bob.as_str()), "{hashes:?}");
        assert!(
            !hashes.contains(&hash_at_bob.as_str()),
            "expired in the swarm"
        );
    }
}

/// Closed groups on real nodes through onion paths: the node accepts the group key's and the
/// members' subaccount signatures, stores a group message once, and refuses a removed
/// member's token after the admin revoked it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_works_on_real_nodes_and_a_removed_member_is_refused() {
    use umbra_messenger::{Event, GroupStatus};
    let net = start(&ONE_NODE_SWARMS).await;
    let dirs = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let alice = messenger(&net, dirs.0.path(), 300);
    let bob = messenger(&net, dirs.1.path(), 400);
    let carol = messenger(&net, dirs.2.path(), 500);
    let group = alice
        .create_group("Real nodes", &[bob.session_id(), carol.session_id()])
        .await
        .unwrap();
    for member in [&bob, &carol] {
        let invited = member.receive().await.unwrap();
        assert!(
            invited
                .iter()
                .any(|e| matches!(e, Event::GroupInvite { group: g, .. } if *g == group.id)),
            "{invited:?}"
        );
        member.accept_group(&group.id).await.unwrap();
        assert_eq!(member.group(&group.id).unwrap().name, "Real nodes");
    }
    alice
        .send_group_text(&group.id, "hello group")
        .await
        .unwrap();
    let texts = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::GroupMessage { message } => Some(message.body.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(texts(&bob.receive().await.unwrap()), vec!["hello group"]);
    bob.send_group_text(&group.id, "hello alice").await.unwrap();
    assert_eq!(texts(&alice.receive().await.unwrap()), vec!["hello alice"]);

    alice
        .remove_group_members(&group.id, &[carol.session_id()])
        .await
        .unwrap();
    let closed = carol.receive().await.unwrap();
    assert!(
        closed.iter().any(|e| matches!(
            e,
            Event::GroupClosed {
                status: GroupStatus::Kicked,
                ..
            }
        )),
        "{closed:?}"
    );
    // Carol's token is revoked at the node: even a client that ignored the notice is refused.
    let err = carol.refresh_group(&group.id).await.unwrap_err();
    assert!(
        umbra_report::Report(&err).to_string().contains("401"),
        "{}",
        umbra_report::Report(&err)
    );
    alice
        .send_group_text(&group.id, "without carol")
        .await
        .unwrap();
    assert_eq!(texts(&bob.receive().await.unwrap()), vec!["without carol"]);
}

/// The system clock, `offset_ms` off: a device whose clock is wrong.
struct SkewedClock {
    offset_ms: i64,
}

impl umbra_net::Clock for SkewedClock {
    fn now_ms(&self) -> u64 {
        let real = i64::try_from(SystemClock.now_ms()).unwrap();
        u64::try_from(real + self.offset_ms).unwrap()
    }

    fn instant(&self) -> std::time::Instant {
        SystemClock.instant()
    }

    fn sleep(&self, duration: std::time::Duration) -> umbra_clock::BoxFuture<'static, ()> {
        SystemClock.sleep(duration)
    }
}

/// Clock skew between devices loses no edit: a laptop whose clock runs a day and a half ahead
/// signs its requests with the nodes' time (learnt from their answers, not its own clock, so
/// the nodes accept them), and its config edits and the phone's meet on both devices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_a_skewed_clock_still_syncs_its_edits() {
    use umbra_messenger::{KdfParams, Messenger, OnionSwarm, Profile};
    let net = start(&ONE_NODE_SWARMS).await;
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let (phone_profile, phrase) = Profile::create(
        dirs[0].path(),
        None,
        KdfParams::default(),
        &mut SeededRandom::new(500),
    )
    .unwrap();
    let device = |profile: Profile, clock: Arc<dyn umbra_net::Clock>, seed: u64| {
        let swarm = OnionSwarm::new(transport(&net), clock.clone());
        Messenger::new(
            profile,
            Arc::new(swarm),
            clock,
            Box::new(SeededRandom::new(seed)),
        )
    };
    let phone = device(phone_profile, Arc::new(SystemClock), 501);
    let laptop_profile = Profile::restore(
        dirs[1].path(),
        &phrase,
        None,
        KdfParams::default(),
        &mut SeededRandom::new(502),
    )
    .unwrap();
    let skewed = Arc::new(SkewedClock {
        offset_ms: 36 * 3_600_000,
    });
    let laptop = device(laptop_profile, skewed, 503);
    let bob = messenger(&net, dirs[2].path(), 600);
    let (a, b) = (phone.session_id(), bob.session_id());
    let wait = std::time::Duration::from_secs(60);

    bob.send_text(&a, "hi alice").await.unwrap();
    phone.receive_wait(wait).await.unwrap();
    laptop.receive().await.unwrap();
    assert_eq!(laptop.history(&b).unwrap().len(), 1, "the laptop retrieves");

    laptop.rename_contact(&b, Some("Bobby")).unwrap();
    phone.set_display_name("Alice (phone)").unwrap();
    for _ in 0..2 {
        laptop.receive().await.unwrap();
        phone.receive().await.unwrap();
    }
    for (who, m) in [("phone", &phone), ("laptop", &laptop)] {
        assert_eq!(
            m.contact(&b).unwrap().and_then(|c| c.nickname).as_deref(),
            Some("Bobby"),
            "{who}"
        );
        assert_eq!(
            m.display_name().unwrap().as_deref(),
            Some("Alice (phone)"),
            "{who}"
        );
        assert!(
            m.config_status().unwrap().iter().all(|s| !s.needs_push),
            "{who}: every edit pushed"
        );
    }
    // Its messages carry the network's time, not its own clock's.
    let sent = laptop.send_text(&b, "from the laptop").await.unwrap();
    let real = SystemClock.now_ms();
    assert!(
        sent.sent_ms.abs_diff(real) < 60_000,
        "stamped {} ms from the network's time",
        sent.sent_ms.abs_diff(real)
    );
    assert_eq!(
        sent.status,
        umbra_messenger::MessageStatus::Sent,
        "the node took it"
    );
}
