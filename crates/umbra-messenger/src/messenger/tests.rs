//! Messenger tests on in-memory swarms and a hand-moved clock: nothing here sleeps or
//! depends on the machine's speed.

use std::sync::Arc;

use umbra_crypto::{Identity, SeededRandom, SessionId};
use umbra_wire::{Content, UnsendRequest, encode_one_to_one};

use super::fake::{FakeSwarms, StoreFault};
use super::*;
use umbra_net::{Clock as _, ManualClock, SystemClock};

pub(super) const T0: u64 = 1_700_000_000_000;
pub(super) const FAST_KDF: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

pub(super) struct Net {
    pub(super) clock: Arc<ManualClock>,
    pub(super) swarms: FakeSwarms,
    root: tempfile::TempDir,
}

impl Net {
    pub(super) fn new() -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        Self {
            swarms: FakeSwarms::new(clock.clone()),
            clock,
            root: tempfile::tempdir().unwrap(),
        }
    }

    pub(super) fn dir(&self, name: &str) -> std::path::PathBuf {
        self.root.path().join(name)
    }

    pub(super) fn messenger(&self, profile: Profile, seed: u64) -> Messenger {
        Messenger::new(
            profile,
            Arc::new(self.swarms.clone()),
            self.clock.clone(),
            Box::new(SeededRandom::new(seed + 1000)),
        )
    }

    /// A new user with a profile in `<root>/<name>`; returns it and its recovery phrase.
    pub(super) fn user(&self, name: &str, seed: u64) -> (Messenger, String) {
        let (p, phrase) = Profile::create(
            &self.dir(name),
            None,
            FAST_KDF,
            &mut SeededRandom::new(seed),
        )
        .unwrap();
        let m = self.messenger(p, seed);
        m.set_display_name(name).unwrap();
        (m, phrase.to_string())
    }

    pub(super) fn reopen(&self, name: &str, seed: u64) -> Messenger {
        self.messenger(Profile::open(&self.dir(name), None).unwrap(), seed)
    }
}

fn texts(h: &[Message]) -> Vec<(bool, &str)> {
    h.iter().map(|m| (m.outgoing, m.body.as_str())).collect()
}

fn new_messages(events: &[Event]) -> Vec<(&str, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { message, request } => Some((message.body.as_str(), *request)),
            _ => None,
        })
        .collect()
}

/// Against a node that answers at once (as a Session node, which ignores the long-poll
/// request, does), the waiting loop polls every `POLL_EVERY` rather than spinning, returns
/// what arrives, and returns empty at its deadline.
#[tokio::test]
async fn waiting_on_a_node_without_long_poll_polls_at_a_steady_pace() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let wait = std::time::Duration::from_millis(800);
    let t0 = SystemClock.instant();
    assert!(bob.receive_wait(wait).await.unwrap().is_empty());
    assert!(SystemClock.since(t0) >= wait, "waited until the deadline");
    let polls = net.swarms.retrieve_count();
    // 800 ms at one poll per 250 ms: 4 polls, fewer on a slow machine, never a spin.
    assert!((1..=6).contains(&polls), "{polls} polls in {wait:?}");

    alice.send_text(&bob.session_id(), "hello").await.unwrap();
    let ev = bob
        .receive_wait(std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(new_messages(&ev), vec![("hello", true)]);
}

#[tokio::test]
async fn two_users_exchange_messages() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (a, b) = (alice.session_id(), bob.session_id());

    let sent = alice.send_text(&b, "hi bob").await.unwrap();
    assert_eq!(sent.status, MessageStatus::Sent);
    assert!(alice.outbox().unwrap().is_empty());

    let ev = bob.receive().await.unwrap();
    assert_eq!(
        new_messages(&ev),
        vec![("hi bob", true)],
        "a stranger's first message is a request"
    );
    // The profile travelled with the message.
    assert_eq!(
        bob.contact(&a).unwrap().unwrap().display_name.as_deref(),
        Some("alice")
    );
    bob.accept_request(&a).await.unwrap();
    bob.send_text(&a, "hi alice").await.unwrap();

    let ev = alice.receive().await.unwrap();
    assert!(ev.contains(&Event::RequestAccepted { by: b }));
    assert_eq!(new_messages(&ev), vec![("hi alice", false)]);
    assert!(alice.contact(&b).unwrap().unwrap().approved_me);

    // A second poll brings nothing new (last_hash and hash dedup).
    assert!(bob.receive().await.unwrap().is_empty());
    assert!(new_messages(&alice.receive().await.unwrap()).is_empty());

    assert_eq!(
        texts(&alice.history(&b).unwrap()),
        vec![(true, "hi bob"), (false, "hi alice")]
    );
    assert_eq!(
        texts(&bob.history(&a).unwrap()),
        vec![(false, "hi bob"), (true, "hi alice")]
    );
    let chats = alice.conversations().unwrap();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].unread, 1);
    assert_eq!(alice.mark_read(&b).await.unwrap(), 1);
    assert_eq!(alice.conversations().unwrap()[0].unread, 0);
}

#[tokio::test]
async fn a_strangers_first_message_lands_in_requests_until_accepted() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (carol, _) = net.user("carol", 3);
    let (dave, _) = net.user("dave", 4);
    let (eve, _) = net.user("eve", 5);
    let a = alice.session_id();

    carol.send_text(&a, "hello from carol").await.unwrap();
    dave.send_text(&a, "hello from dave").await.unwrap();
    eve.send_text(&a, "spam").await.unwrap();
    let ev = alice.receive().await.unwrap();
    assert_eq!(new_messages(&ev).iter().filter(|(_, r)| *r).count(), 3);
    let requests: Vec<SessionId> = alice
        .requests()
        .unwrap()
        .into_iter()
        .map(|c| c.contact.session_id)
        .collect();
    assert_eq!(requests.len(), 3);
    assert!(alice.conversations().unwrap().is_empty());

    // Accept carol: the chat moves, and carol learns it.
    alice.accept_request(&carol.session_id()).await.unwrap();
    assert_eq!(alice.conversations().unwrap().len(), 1);
    assert!(
        carol
            .receive()
            .await
            .unwrap()
            .contains(&Event::RequestAccepted { by: a })
    );
    assert!(carol.contact(&a).unwrap().unwrap().approved_me);

    // Declining an accepted chat changes nothing.
    alice.decline_request(&carol.session_id()).unwrap();
    assert_eq!(alice.history(&carol.session_id()).unwrap().len(), 1);

    // Decline dave: the request is gone; a new message is a new request.
    alice.decline_request(&dave.session_id()).unwrap();
    assert_eq!(alice.requests().unwrap().len(), 1);
    dave.send_text(&a, "please?").await.unwrap();
    let ev = alice.receive().await.unwrap();
    assert_eq!(new_messages(&ev), vec![("please?", true)]);

    // Block eve: the request is deleted and her next messages are dropped.
    alice.block(&eve.session_id()).unwrap();
    eve.send_text(&a, "more spam").await.unwrap();
    assert!(new_messages(&alice.receive().await.unwrap()).is_empty());
    assert!(alice.history(&eve.session_id()).unwrap().is_empty());
    assert!(matches!(
        alice.send_text(&eve.session_id(), "x").await,
        Err(MessengerError::Blocked(_))
    ));
    let requests = alice.requests().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].contact.session_id, dave.session_id());
}

#[tokio::test]
async fn unsend_removes_the_message_on_the_other_side_and_in_our_swarm() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (a, b) = (alice.session_id(), bob.session_id());

    let keep = alice.send_text(&b, "keep me").await.unwrap();
    net.clock.advance(1);
    let oops = alice.send_text(&b, "oops").await.unwrap();
    bob.receive().await.unwrap();
    assert_eq!(bob.history(&a).unwrap().len(), 2);
    let sync_hash = oops.hash.unwrap();
    assert!(net.swarms.hashes(&a, 0).contains(&sync_hash));
    let bob_copy = bob.history(&a).unwrap()[1].hash.unwrap();

    alice.unsend(&b, oops.sent_ms).await.unwrap();
    assert_eq!(texts(&alice.history(&b).unwrap()), vec![(true, "keep me")]);
    assert!(
        !net.swarms.hashes(&a, 0).contains(&sync_hash),
        "our sync copy is deleted"
    );

    let ev = bob.receive().await.unwrap();
    assert!(ev.contains(&Event::Unsent {
        conversation: a,
        author: a,
        sent_ms: oops.sent_ms
    }));
    assert_eq!(texts(&bob.history(&a).unwrap()), vec![(false, "keep me")]);
    // Bob's next poll deletes his swarm's copy too.
    bob.receive().await.unwrap();
    assert!(!net.swarms.hashes(&b, 0).contains(&bob_copy));

    // An unsend request for alice's message sent by someone else is ignored.
    let mallory = Identity::generate(&mut SeededRandom::new(66));
    let forged = Content {
        unsend_request: Some(UnsendRequest {
            timestamp: keep.sent_ms,
            author: a.to_hex(),
        }),
        ..Content::default()
    };
    let data =
        encode_one_to_one(&mallory, &b, &forged, T0 + 5, &mut SeededRandom::new(67)).unwrap();
    net.swarms
        .store(&b, 0, &data, T0 + 5, DEFAULT_TTL_MS)
        .await
        .unwrap();
    bob.receive().await.unwrap();
    assert_eq!(texts(&bob.history(&a).unwrap()), vec![(false, "keep me")]);

    // Only our own messages can be unsent.
    let theirs = bob.send_text(&a, "mine").await.unwrap();
    alice.receive().await.unwrap();
    assert!(matches!(
        alice.unsend(&b, theirs.sent_ms).await,
        Err(MessengerError::NotOwnMessage)
    ));
}

#[tokio::test]
async fn disappearing_after_send_vanishes_on_both_sides_and_in_the_swarm() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (a, b) = (alice.session_id(), bob.session_id());
    alice.send_text(&b, "before").await.unwrap();
    bob.receive().await.unwrap();
    bob.accept_request(&a).await.unwrap();

    let mode = Disappearing::AfterSend { seconds: 60 };
    alice.set_disappearing(&b, mode).await.unwrap();
    let ev = bob.receive().await.unwrap();
    assert!(ev.contains(&Event::DisappearingChanged {
        conversation: a,
        setting: mode
    }));
    assert_eq!(bob.contact(&a).unwrap().unwrap().disappearing, mode);

    net.clock.advance(1_000);
    let m = alice.send_text(&b, "vanishing").await.unwrap();
    assert_eq!(m.expires_at_ms, Some(m.sent_ms + 60_000));
    bob.receive().await.unwrap();
    let got = bob.history(&a).unwrap();
    assert_eq!(got.last().unwrap().body, "vanishing");
    assert_eq!(got.last().unwrap().expires_at_ms, Some(m.sent_ms + 60_000));
    let stored_in_bob = got.last().unwrap().hash.unwrap();

    net.clock.advance(59_000);
    assert_eq!(alice.history(&b).unwrap().len(), 2, "not yet");
    net.clock.advance(1_001);
    assert_eq!(texts(&alice.history(&b).unwrap()), vec![(true, "before")]);
    assert_eq!(texts(&bob.history(&a).unwrap()), vec![(false, "before")]);
    assert_eq!(alice.purge_expired().unwrap(), 1);
    assert_eq!(bob.purge_expired().unwrap(), 1);
    // The swarms forgot it too (stored with the timer as TTL).
    assert!(!net.swarms.hashes(&b, 0).contains(&stored_in_bob));
    assert!(!net.swarms.hashes(&a, 0).contains(&m.hash.unwrap()));
}

#[tokio::test]
async fn disappearing_after_read_starts_when_read() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (a, b) = (alice.session_id(), bob.session_id());
    alice
        .set_disappearing(&b, Disappearing::AfterRead { seconds: 30 })
        .await
        .unwrap();
    let m = alice.send_text(&b, "read me").await.unwrap();
    bob.receive().await.unwrap();
    let hash = bob.history(&a).unwrap()[0].hash.unwrap();

    net.clock.advance(3_600_000);
    assert_eq!(bob.history(&a).unwrap().len(), 1, "unread: still there");
    assert!(
        alice.history(&b).unwrap().is_empty(),
        "the sender's copy counts from sending"
    );
    assert!(!net.swarms.hashes(&a, 0).contains(&m.hash.unwrap()));
    assert!(
        net.swarms.hashes(&b, 0).contains(&hash),
        "14-day TTL for the recipient's copy"
    );

    assert_eq!(bob.mark_read(&a).await.unwrap(), 1);
    net.clock.advance(29_000);
    assert_eq!(bob.history(&a).unwrap().len(), 1);
    net.clock.advance(1_001);
    assert!(bob.history(&a).unwrap().is_empty());
    assert!(
        !net.swarms.hashes(&b, 0).contains(&hash),
        "the stored copy was shortened to read time + timer"
    );
}

#[tokio::test]
async fn a_second_device_restored_from_the_phrase_sees_history_and_new_messages() {
    let net = Net::new();
    let (alice, phrase) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (a, b) = (alice.session_id(), bob.session_id());
    alice.send_text(&b, "one").await.unwrap();
    bob.receive().await.unwrap();
    bob.accept_request(&a).await.unwrap();
    net.clock.advance(10);
    bob.send_text(&a, "two").await.unwrap();
    alice.receive().await.unwrap();

    let p2 = Profile::restore(
        &net.dir("alice2"),
        &phrase,
        None,
        FAST_KDF,
        &mut SeededRandom::new(9),
    )
    .unwrap();
    let alice2 = net.messenger(p2, 9);
    assert_eq!(alice2.session_id(), a);
    alice2.receive().await.unwrap();
    assert_eq!(
        texts(&alice2.history(&b).unwrap()),
        vec![(true, "one"), (false, "two")]
    );
    assert!(
        alice2.requests().unwrap().is_empty(),
        "our own messages approve the chat"
    );
    assert_eq!(alice2.conversations().unwrap().len(), 1);

    // From now on both devices receive everything.
    net.clock.advance(10);
    bob.send_text(&a, "three").await.unwrap();
    net.clock.advance(10);
    alice2.send_text(&b, "four").await.unwrap();
    let ev1 = alice.receive().await.unwrap();
    alice2.receive().await.unwrap();
    bob.receive().await.unwrap();
    assert!(new_messages(&ev1).contains(&("four", false)));
    let want = vec![
        (true, "one"),
        (false, "two"),
        (false, "three"),
        (true, "four"),
    ];
    assert_eq!(texts(&alice.history(&b).unwrap()), want);
    assert_eq!(texts(&alice2.history(&b).unwrap()), want);
    assert_eq!(
        texts(&bob.history(&a).unwrap()),
        vec![
            (false, "one"),
            (true, "two"),
            (true, "three"),
            (false, "four")
        ]
    );
}

/// Bob's copies of messages in his swarm, and what his history shows, after he polls.
async fn delivered(net: &Net, bob: &Messenger, from: &SessionId) -> (usize, Vec<String>) {
    bob.receive().await.unwrap();
    let bodies = bob
        .history(from)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    (net.swarms.hashes(&bob.session_id(), 0).len(), bodies)
}

#[tokio::test]
async fn a_send_while_the_swarm_is_down_is_queued_and_survives_a_restart() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let b = bob.session_id();
    net.swarms.set_down(true);
    let m = alice.send_text(&b, "later").await.unwrap();
    assert_eq!(m.status, MessageStatus::Queued);
    let outbox = alice.outbox().unwrap();
    assert_eq!(outbox.len(), 2, "the message and its sync copy");
    assert_eq!(outbox[0].attempts, 1);
    assert_eq!(outbox[0].next_attempt_ms, T0 + BACKOFF_MIN_MS, "backed off");
    assert!(
        outbox[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("unreachable")
    );
    // A second failure doubles the wait.
    net.clock.advance(BACKOFF_MIN_MS);
    assert_eq!(alice.flush_outbox().await.unwrap().retrying, 2);
    let outbox = alice.outbox().unwrap();
    assert_eq!(outbox[0].attempts, 2);
    assert_eq!(
        outbox[0].next_attempt_ms,
        net.clock.now_ms() + 2 * BACKOFF_MIN_MS
    );
    drop(alice); // the client dies

    net.swarms.set_down(false);
    let alice = net.reopen("alice", 1);
    // Not due yet: nothing is sent before the backoff.
    let r = alice.flush_outbox().await.unwrap();
    assert_eq!((r.done, r.pending), (0, 2));
    net.clock.advance(2 * BACKOFF_MIN_MS);
    let r = alice.flush_outbox().await.unwrap();
    assert_eq!((r.done, r.pending), (2, 0));
    assert_eq!(alice.history(&b).unwrap()[0].status, MessageStatus::Sent);
    assert_eq!(
        delivered(&net, &bob, &alice.session_id()).await,
        (1, vec!["later".into()])
    );
}

#[tokio::test]
async fn a_lost_acknowledgement_is_retried_with_the_same_bytes_and_delivered_once() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let b = bob.session_id();
    net.swarms.push_store_fault(StoreFault::FailAfterWrite);
    let m = alice.send_text(&b, "once").await.unwrap();
    assert_eq!(m.status, MessageStatus::Queued);
    net.clock.advance(BACKOFF_MIN_MS);
    alice.flush_outbox().await.unwrap();
    assert_eq!(alice.history(&b).unwrap()[0].status, MessageStatus::Sent);
    assert_eq!(
        delivered(&net, &bob, &alice.session_id()).await,
        (1, vec!["once".into()])
    );
}

async fn interrupted(fault: StoreFault) {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let b = bob.session_id();
    net.swarms.push_store_fault(fault);
    tokio::select! {
        biased;
        _ = alice.send_text(&b, "interrupted") => panic!("the store was meant to hang"),
        () = net.swarms.hung() => {}
    }
    // The send future is dropped mid-call: the client is killed here.
    drop(alice);
    let alice = net.reopen("alice", 1);
    // The sync copy to our own swarm goes out beside the hung store (another swarm), so it
    // may be delivered already; the message to Bob is still queued.
    let queued: Vec<_> = alice
        .outbox()
        .unwrap()
        .into_iter()
        .map(|e| e.owner)
        .collect();
    assert!(
        queued.contains(&b),
        "still queued after the crash: {queued:?}"
    );
    alice.flush_outbox().await.unwrap();
    assert!(alice.outbox().unwrap().is_empty());
    assert_eq!(
        delivered(&net, &bob, &alice.session_id()).await,
        (1, vec!["interrupted".into()])
    );
    // Later polls and flushes change nothing.
    alice.flush_outbox().await.unwrap();
    assert_eq!(
        delivered(&net, &bob, &alice.session_id()).await,
        (1, vec!["interrupted".into()])
    );
}

#[tokio::test]
async fn a_send_killed_before_the_network_call_completes_is_neither_lost_nor_doubled() {
    interrupted(StoreFault::HangBeforeWrite).await;
}

#[tokio::test]
async fn a_send_killed_after_the_swarm_stored_it_is_neither_lost_nor_doubled() {
    interrupted(StoreFault::HangAfterWrite).await;
}

#[tokio::test]
async fn the_database_file_does_not_contain_plaintext() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let secret = "the-eagle-lands-at-midnight-7391";
    alice.send_text(&bob.session_id(), secret).await.unwrap();
    bob.receive().await.unwrap();
    drop(alice);
    drop(bob);
    for name in ["alice", "bob"] {
        let mut found_db = false;
        for entry in std::fs::read_dir(net.dir(name)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // `network/`: the transport's state (unused by the in-memory swarm).
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "plaintext found in {path:?}"
            );
            if path.file_name().unwrap() == "umbra.db" {
                found_db = true;
                assert!(!bytes.starts_with(b"SQLite format 3"), "not encrypted");
                assert!(!bytes.windows(6).any(|w| w == b"seed\0\0" || w == b"CREATE"));
            }
        }
        assert!(found_db);
    }
}

#[test]
fn profile_files_are_private_and_errors_are_clear() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("p");
    let mut rng = SeededRandom::new(1);
    let (p, phrase) = Profile::create(&dir, None, FAST_KDF, &mut rng).unwrap();
    let id = p.identity().session_id();
    assert_eq!(p.recovery_phrase().unwrap().as_str(), phrase.as_str());
    drop(p);
    let mode = |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(""), 0o700);
    assert_eq!(mode("db.key"), 0o600);
    assert_eq!(mode("profile.json"), 0o600);
    assert!(matches!(
        Profile::create(&dir, None, FAST_KDF, &mut rng),
        Err(MessengerError::ProfileExists(_))
    ));
    assert!(matches!(
        Profile::open(&root.path().join("none"), None),
        Err(MessengerError::NoProfile(_))
    ));

    // Set a passphrase: the key file goes, the right passphrase opens, others are refused.
    let mut p = Profile::open(&dir, None).unwrap();
    p.set_passphrase(Some("correct horse"), FAST_KDF, &mut rng)
        .unwrap();
    drop(p);
    assert!(!dir.join("db.key").exists());
    assert!(Profile::needs_passphrase(&dir).unwrap());
    assert!(matches!(
        Profile::open(&dir, None),
        Err(MessengerError::ProfileLocked(_))
    ));
    let err = Profile::open(&dir, Some("wrong")).unwrap_err();
    assert!(matches!(err, MessengerError::ProfileLocked(_)));
    assert!(err.to_string().contains("locked"));
    let p = Profile::open(&dir, Some("correct horse")).unwrap();
    assert_eq!(p.identity().session_id(), id);

    // A schema from the future.
    let (_, _, conn) = p.into_parts();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Profile::open(&dir, Some("correct horse")).unwrap_err();
    assert!(matches!(
        err,
        MessengerError::ProfileTooNew { found: 99, .. }
    ));
    assert!(err.to_string().contains("newer version"));

    // A profile format from the future.
    let dir2 = root.path().join("q");
    drop(Profile::create(&dir2, None, FAST_KDF, &mut rng).unwrap());
    std::fs::write(
        dir2.join("profile.json"),
        br#"{"format": 7, "key": "file"}"#,
    )
    .unwrap();
    assert!(matches!(
        Profile::open(&dir2, None),
        Err(MessengerError::ProfileTooNew { found: 7, .. })
    ));
    // A bad phrase.
    assert!(matches!(
        Profile::restore(
            &root.path().join("r"),
            "not a phrase",
            None,
            FAST_KDF,
            &mut rng
        ),
        Err(MessengerError::Identity(_))
    ));
}

#[tokio::test]
async fn read_receipts_and_typing_are_opt_in() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let (a, b) = (alice.session_id(), bob.session_id());
    let m = alice.send_text(&b, "ping").await.unwrap();
    bob.receive().await.unwrap();
    bob.accept_request(&a).await.unwrap();

    // Off by default: reading sends nothing, typing is not sent.
    assert!(!bob.send_typing(&a, true).await.unwrap());
    bob.mark_read(&a).await.unwrap();
    assert!(
        !alice
            .receive()
            .await
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::Read { .. } | Event::Typing { .. }))
    );

    bob.set_settings(Settings {
        read_receipts: true,
        typing_indicators: true,
    })
    .unwrap();
    let before = net.swarms.hashes(&a, 0).len();
    assert!(bob.send_typing(&a, true).await.unwrap());
    assert_eq!(net.swarms.hashes(&a, 0).len(), before + 1);
    assert!(alice.receive().await.unwrap().contains(&Event::Typing {
        from: b,
        started: true
    }));
    // Typing indicators live 20 s in the swarm.
    net.clock.advance(TYPING_TTL_MS + 1);
    assert_eq!(net.swarms.hashes(&a, 0).len(), before);

    net.clock.advance(1);
    let m2 = alice.send_text(&b, "pong").await.unwrap();
    bob.receive().await.unwrap();
    bob.mark_read(&a).await.unwrap();
    let ev = alice.receive().await.unwrap();
    assert!(ev.contains(&Event::Read {
        by: b,
        sent_ms: vec![m2.sent_ms]
    }));
    let h = alice.history(&b).unwrap();
    assert!(
        !h.iter()
            .find(|x| x.sent_ms == m.sent_ms)
            .unwrap()
            .read_by_peer
    );
    assert!(
        h.iter()
            .find(|x| x.sent_ms == m2.sent_ms)
            .unwrap()
            .read_by_peer
    );
}

#[tokio::test]
async fn contacts_nicknames_and_bad_input() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let b = bob.session_id();
    alice.add_contact(&b, Some("Bobby")).unwrap();
    assert_eq!(alice.resolve("Bobby").unwrap(), b);
    assert_eq!(alice.resolve(&b.to_hex()).unwrap(), b);
    alice.rename_contact(&b, Some("Robert")).unwrap();
    assert_eq!(alice.contacts().unwrap()[0].name(), "Robert");
    assert!(matches!(
        alice.resolve("Bobby"),
        Err(MessengerError::UnknownContact(_))
    ));
    assert!(matches!(
        alice.resolve(&format!("06{}", &b.to_hex()[2..])),
        Err(MessengerError::InvalidSessionId(_))
    ));

    let long = "x".repeat(MAX_BODY_CHARS + 1);
    assert!(matches!(
        alice.send_text(&b, &long).await,
        Err(MessengerError::MessageTooLong {
            got: 2001,
            max: 2000
        })
    ));
    assert!(matches!(
        alice.send_text(&b, "  ").await,
        Err(MessengerError::EmptyMessage)
    ));
    assert!(alice.outbox().unwrap().is_empty());
    assert!(alice.history(&b).unwrap().is_empty());
    assert!(matches!(
        alice
            .set_disappearing(&b, Disappearing::AfterSend { seconds: 1 })
            .await,
        Err(MessengerError::InvalidTimer { .. })
    ));
    assert_eq!(net.swarms.store_count(), 0, "bad input reaches no swarm");
}

#[tokio::test]
async fn a_message_that_expires_before_delivery_is_marked_failed() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let b = bob.session_id();
    net.swarms.set_down(true);
    alice.send_text(&b, "too late").await.unwrap();
    net.swarms.set_down(false);
    net.clock.advance(DEFAULT_TTL_MS);
    let r = alice.flush_outbox().await.unwrap();
    assert_eq!((r.failed, r.pending), (2, 0));
    assert_eq!(alice.history(&b).unwrap()[0].status, MessageStatus::Failed);
    assert_eq!(
        net.swarms.store_count(),
        2,
        "only the first, failed attempts"
    );
}

/// A time past the database's signed 64-bit integers is an error naming the value, never a
/// clamp: nothing is saved or sent.
#[tokio::test]
async fn a_time_beyond_the_databases_integers_is_an_error_not_a_clamp() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let b = bob.session_id();
    let too_late = u64::try_from(i64::MAX).unwrap() + 1;
    net.clock.set(too_late);

    let err = alice
        .send_text(&b, "from the far future")
        .await
        .unwrap_err();
    match &err {
        MessengerError::NumberOutOfRange {
            what, value, found, ..
        } => {
            assert_eq!((*what, *value), ("choosing a sent time", "sent_ms"));
            assert_eq!(*found, i128::from(too_late));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("choosing a sent time: sent_ms is 9223372036854775808, outside"),
        "{err}"
    );
    assert!(matches!(
        alice.history(&b),
        Err(MessengerError::NumberOutOfRange { value: "now", .. })
    ));

    net.clock.set(T0);
    assert!(alice.history(&b).unwrap().is_empty(), "nothing was saved");
    assert!(alice.outbox().unwrap().is_empty());
    assert_eq!(net.swarms.store_count(), 0, "nothing was sent");
}

/// A number read back that does not fit (a negative time, an attempt count beyond `u32`) is
/// an error naming the value, never shown as 0 or the largest number.
#[tokio::test]
async fn a_stored_number_out_of_range_is_an_error_not_a_clamp() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let b = bob.session_id();
    net.swarms.set_down(true);
    alice.send_text(&b, "queued").await.unwrap();

    alice
        .db()
        .execute("UPDATE messages SET sent_ms = -1", [])
        .unwrap();
    assert!(matches!(
        alice.history(&b),
        Err(MessengerError::NumberOutOfRange {
            what: "reading the history",
            value: "sent_ms",
            found: -1,
            ..
        })
    ));

    alice
        .db()
        .execute_batch(
            "UPDATE messages SET sent_ms = 1;
             UPDATE outbox SET attempts = 5000000000;",
        )
        .unwrap();
    assert!(matches!(
        alice.outbox(),
        Err(MessengerError::NumberOutOfRange {
            what: "reading the outbox",
            value: "attempts",
            found: 5_000_000_000,
            ..
        })
    ));
}

#[tokio::test]
async fn an_open_messenger_changes_its_passphrase_keeps_app_values_and_lists_blocked() {
    let net = Net::new();
    let (alice, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let b = bob.session_id();

    assert_eq!(alice.app_value("theme").unwrap(), None);
    alice.set_app_value("theme", b"dark").unwrap();
    alice.set_app_value("theme", b"light").unwrap();
    // An app's key never reaches the messenger's own.
    alice.set_app_value("display_name", b"x").unwrap();
    assert_eq!(alice.display_name().unwrap().as_deref(), Some("alice"));

    assert!(alice.blocked().unwrap().is_empty());
    alice.block(&b).unwrap();
    let blocked = alice.blocked().unwrap();
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].session_id, b);
    alice.unblock(&b).unwrap();
    assert!(alice.blocked().unwrap().is_empty());

    // No passphrase yet: set one while the messenger runs, and it keeps working.
    alice
        .set_passphrase(None, Some("correct horse"), FAST_KDF)
        .unwrap();
    alice.send_text(&b, "still here").await.unwrap();
    let err = alice
        .set_passphrase(Some("wrong"), Some("other"), FAST_KDF)
        .unwrap_err();
    assert!(matches!(err, MessengerError::ProfileLocked(_)), "{err}");
    alice
        .set_passphrase(Some("correct horse"), Some("battery staple"), FAST_KDF)
        .unwrap();
    drop(alice);
    let dir = net.dir("alice");
    assert!(matches!(
        Profile::open(&dir, Some("correct horse")),
        Err(MessengerError::ProfileLocked(_))
    ));
    let alice = net.messenger(Profile::open(&dir, Some("battery staple")).unwrap(), 1);
    assert_eq!(
        alice.app_value("theme").unwrap().as_deref(),
        Some(&b"light"[..])
    );
    assert_eq!(
        texts(&alice.history(&b).unwrap()),
        vec![(true, "still here")]
    );
    // Back to no passphrase: a key file again.
    alice
        .set_passphrase(Some("battery staple"), None, FAST_KDF)
        .unwrap();
    drop(alice);
    drop(Profile::open(&dir, None).unwrap());
}

#[path = "attachment_tests.rs"]
mod attachment_tests;

#[test]
fn a_profile_belongs_to_the_first_network_it_is_used_on() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("p");
    let mut rng = SeededRandom::new(7);
    let (p, _) = Profile::create(&dir, None, FAST_KDF, &mut rng).unwrap();
    let (a, b) = (
        umbra_crypto::Ed25519PublicKey::from_bytes([0xa1; 32]),
        umbra_crypto::Ed25519PublicKey::from_bytes([0xb2; 32]),
    );
    assert_eq!(p.network_key().unwrap(), None);
    p.bind_network(&a).unwrap();
    p.bind_network(&a).unwrap();
    drop(p);

    // Reopened: still network a's, and b is refused in one line that says what to do.
    let p = Profile::open(&dir, None).unwrap();
    assert_eq!(p.network_key().unwrap(), Some(a));
    let e = p.bind_network(&b).unwrap_err();
    assert!(matches!(e, MessengerError::OtherNetwork { .. }));
    let text = e.to_string();
    assert!(
        text.contains("a1a1a1…a1a1") && text.contains("b2b2b2…b2b2"),
        "{text}"
    );
    assert!(
        text.contains("--profile DIR") && !text.contains('\n'),
        "{text}"
    );
    assert_eq!(p.network_key().unwrap(), Some(a));
}
