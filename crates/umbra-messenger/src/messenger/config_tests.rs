//! Config sync between devices of one account, on the in-memory swarms and hand-moved clock
//! of `tests.rs`.

use umbra_config::{Contact as SyncContact, Contacts};
use umbra_crypto::{SeededRandom, SessionId};

use super::config_legacy::tests::wrap;
use super::fake::StoreFault;
use super::tests::{FAST_KDF, Net, T0};
use super::*;

/// Another device of the account whose recovery phrase is `phrase`.
fn device(net: &Net, name: &str, phrase: &str, seed: u64) -> Messenger {
    let p = Profile::restore(
        &net.dir(name),
        phrase,
        None,
        FAST_KDF,
        &mut SeededRandom::new(seed),
    )
    .unwrap();
    net.messenger(p, seed)
}

/// What the user sees of the account's shared state on one device.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    name: Option<String>,
    chats: Vec<(SessionId, u64)>,
    requests: Vec<(SessionId, u64)>,
    blocked: Vec<SessionId>,
    nicknames: Vec<(SessionId, Option<String>)>,
}

fn seen(m: &Messenger, people: &[SessionId]) -> Seen {
    let list = |v: Vec<Conversation>| {
        let mut l: Vec<(SessionId, u64)> = v
            .into_iter()
            .map(|c| (c.contact.session_id, c.unread))
            .collect();
        l.sort();
        l
    };
    Seen {
        name: m.display_name().unwrap(),
        chats: list(m.conversations().unwrap()),
        requests: list(m.requests().unwrap()),
        blocked: m
            .blocked()
            .unwrap()
            .into_iter()
            .map(|c| c.session_id)
            .collect(),
        nicknames: people
            .iter()
            .map(|p| (*p, m.contact(p).unwrap().and_then(|c| c.nickname)))
            .collect(),
    }
}

/// Alice's phone, her recovery phrase and her desktop (one account), and bob, carol and dave.
fn household(net: &Net) -> (Messenger, String, Messenger, [Messenger; 3]) {
    let (phone, phrase) = net.user("alice", 1);
    let desktop = device(net, "alice-desktop", &phrase, 2);
    let others = [("bob", 3), ("carol", 4), ("dave", 5)].map(|(name, seed)| net.user(name, seed).0);
    (phone, phrase, desktop, others)
}

#[tokio::test]
async fn devices_of_one_account_converge_on_edits_made_while_the_other_was_offline() {
    let net = Net::new();
    let (phone, phrase, desktop, [bob, carol, dave]) = household(&net);
    let a = phone.session_id();
    let (b, c, d) = (bob.session_id(), carol.session_id(), dave.session_id());
    for (who, text) in [
        (&bob, "hi from bob"),
        (&carol, "hi from carol"),
        (&dave, "buy now"),
    ] {
        who.send_text(&a, text).await.unwrap();
        net.clock.advance(10);
    }
    phone.receive().await.unwrap();
    desktop.receive().await.unwrap();
    assert_eq!(desktop.display_name().unwrap().as_deref(), Some("alice"));
    assert_eq!(phone.requests().unwrap().len(), 3);

    // The phone accepts carol and names bob while the desktop is offline…
    phone.accept_request(&c).await.unwrap();
    phone.rename_contact(&b, Some("Bobby")).unwrap();
    phone.receive().await.unwrap();
    // …and the desktop, not having seen that, blocks dave, reads bob and renames itself.
    desktop.block(&d).unwrap();
    assert_eq!(desktop.mark_read(&b).await.unwrap(), 1);
    desktop.set_display_name("Alice A.").unwrap();
    net.clock.advance(1_000);
    desktop.receive().await.unwrap();
    phone.receive().await.unwrap();

    let people = [b, c, d];
    let want = Seen {
        name: Some("Alice A.".into()),
        chats: vec![(c, 1)],
        requests: vec![(b, 0)],
        blocked: vec![d],
        nicknames: vec![(b, Some("Bobby".into())), (c, None), (d, None)],
    };
    assert_eq!(seen(&phone, &people), want);
    assert_eq!(seen(&desktop, &people), want);

    // One more round each way changes nothing: they agree.
    phone.receive().await.unwrap();
    desktop.receive().await.unwrap();
    assert_eq!(seen(&phone, &people), want);
    assert_eq!(seen(&desktop, &people), want);
    let seqnos = |m: &Messenger| -> Vec<(u64, bool)> {
        m.config_status()
            .unwrap()
            .iter()
            .map(|s| (s.seqno, s.needs_push))
            .collect()
    };
    assert_eq!(seqnos(&phone), seqnos(&desktop));
    assert!(seqnos(&phone).iter().all(|(_, dirty)| !dirty));

    // A device restored later, after one of ours was unsent, sees the same state and not
    // the unsent message.
    let unsent = phone.send_text(&c, "oops").await.unwrap();
    phone.unsend(&c, unsent.sent_ms).await.unwrap();
    let tablet = device(&net, "alice-tablet", &phrase, 6);
    tablet.receive().await.unwrap();
    assert_eq!(seen(&tablet, &people), want);
    assert!(
        tablet
            .history(&c)
            .unwrap()
            .iter()
            .all(|m| m.sent_ms != unsent.sent_ms),
        "an unsent message never comes back"
    );
    assert!(
        tablet.history(&d).unwrap().is_empty(),
        "a blocked account's request stays out"
    );
    let status = tablet.config_status().unwrap();
    assert!(status.iter().all(|s| s.pulled.is_some() || s.seqno == 0));
}

/// The chat list as a device shows it: who, pinned or not, in order.
fn chat_list(m: &Messenger) -> Vec<(SessionId, bool)> {
    m.conversations()
        .unwrap()
        .into_iter()
        .map(|c| (c.contact.session_id, c.priority.is_pinned()))
        .collect()
}

#[tokio::test]
async fn pinned_and_hidden_conversations_are_the_same_on_every_device() {
    let net = Net::new();
    let (phone, phrase, desktop, [bob, carol, dave]) = household(&net);
    let a = phone.session_id();
    let (b, c, d) = (bob.session_id(), carol.session_id(), dave.session_id());
    for who in [&bob, &carol, &dave] {
        phone.add_contact(&who.session_id(), None).unwrap();
    }
    for who in [&bob, &carol, &dave] {
        who.send_text(&a, "hello").await.unwrap();
        net.clock.advance(10);
    }
    phone.receive().await.unwrap();
    desktop.receive().await.unwrap();
    // Newest first: dave, carol, bob.
    assert_eq!(
        chat_list(&desktop),
        vec![(d, false), (c, false), (b, false)]
    );

    // The phone pins bob then carol (the later pin on top) and hides dave.
    phone.pin_conversation(&b).unwrap();
    phone.pin_conversation(&c).unwrap();
    phone.hide_conversation(&d).unwrap();
    let want = vec![(c, true), (b, true)];
    assert_eq!(chat_list(&phone), want);
    phone.receive().await.unwrap();
    desktop.receive().await.unwrap();
    assert_eq!(
        chat_list(&desktop),
        want,
        "the desktop shows what the phone decided"
    );
    assert_eq!(
        desktop.all_conversations().unwrap().len(),
        3,
        "hidden, not deleted"
    );
    assert_eq!(desktop.history(&d).unwrap().len(), 1);

    // A restored device shows the same list.
    let tablet = device(&net, "alice-tablet", &phrase, 6);
    tablet.receive().await.unwrap();
    assert_eq!(chat_list(&tablet), want);

    // A new message from dave brings his conversation back, on every device; unpinning
    // carol on the desktop reaches the phone.
    dave.send_text(&a, "still there?").await.unwrap();
    net.clock.advance(10);
    desktop.unpin_conversation(&c).unwrap();
    desktop.receive().await.unwrap();
    phone.receive().await.unwrap();
    desktop.receive().await.unwrap();
    let want = vec![(b, true), (d, false), (c, false)];
    assert_eq!(chat_list(&desktop), want);
    assert_eq!(chat_list(&phone), want);

    // Only conversations of the chat list can be pinned.
    assert!(matches!(
        phone.pin_conversation(&a),
        Err(MessengerError::NotAChat(_))
    ));
    let stranger = SessionId::from_bytes([5; 33]).unwrap();
    assert!(matches!(
        phone.hide_conversation(&stranger),
        Err(MessengerError::NotAChat(_))
    ));
}

#[tokio::test]
async fn bad_config_messages_are_skipped_and_wrapped_ones_merged() {
    let net = Net::new();
    let (phone, phrase) = net.user("alice", 1);
    let desktop = device(&net, "alice-desktop", &phrase, 2);
    let a = phone.session_id();
    let (bob, _) = net.user("bob", 3);
    let b = bob.session_id();
    let put = |data: Vec<u8>| {
        let swarms = net.swarms.clone();
        async move {
            swarms
                .store(&a, 3, &data, T0, DEFAULT_TTL_MS)
                .await
                .unwrap();
        }
    };

    // Noise, a config of another account, and one over the size of a stored message.
    put(vec![0x42; 500]).await;
    let mut stranger = Contacts::new(&[9u8; 32]).unwrap();
    stranger.set(&SyncContact::new(*b.as_bytes())).unwrap();
    put(stranger.state_mut().push().unwrap().unwrap().messages[0].clone()).await;
    put(vec![0x43; MAX_CONFIG_MESSAGE + 1]).await;
    // A real config of this account from an older client, in the legacy wrapper.
    let identity = umbra_crypto::Identity::from_entropy16(
        &umbra_crypto::mnemonic::from_phrase(&phrase).unwrap(),
    );
    let mut old = Contacts::new(identity.seed()).unwrap();
    let mut named = SyncContact::new(*b.as_bytes());
    named.nickname = "Bob (old client)".into();
    old.set(&named).unwrap();
    let bytes = old.state_mut().push().unwrap().unwrap().messages[0].clone();
    put(wrap(&identity, &bytes, 2, 1)).await;

    let report = desktop.sync_config().await.unwrap();
    assert_eq!(report.skipped, 3, "{report:?}");
    assert!(report.changed.contains(&ConfigKind::Contacts));
    assert_eq!(
        desktop.contact(&b).unwrap().unwrap().nickname.as_deref(),
        Some("Bob (old client)")
    );
    // Skipped messages are left alone (a newer client's format must survive), and the
    // wrapped one, adopted as it is, stays the current message.
    assert_eq!(net.swarms.hashes(&a, 3).len(), 4);
    // The phone agrees.
    phone.sync_config().await.unwrap();
    assert_eq!(
        phone.contact(&b).unwrap().unwrap().nickname.as_deref(),
        Some("Bob (old client)")
    );
}

#[tokio::test]
async fn a_lost_push_is_retried_and_current_configs_never_lapse_while_online() {
    let net = Net::new();
    let (phone, phrase) = net.user("alice", 1);
    let a = phone.session_id();

    net.swarms.push_own_store_fault(StoreFault::FailBeforeWrite);
    let r = phone.sync_config().await.unwrap();
    assert_eq!((r.push_failures, r.pushed.len()), (1, 0));
    assert!(phone.config_status().unwrap()[0].needs_push);
    // Stored, but the acknowledgement is lost: the next pull recognises our own message, so
    // nothing is stored twice.
    net.swarms.push_own_store_fault(StoreFault::FailAfterWrite);
    assert_eq!(phone.sync_config().await.unwrap().push_failures, 1);
    let r = phone.sync_config().await.unwrap();
    assert_eq!((r.push_failures, r.pushed.len()), (0, 0));
    assert_eq!(net.swarms.own_store_count(), 2);
    assert_eq!(net.swarms.hashes(&a, 2).len(), 1);
    assert!(!phone.config_status().unwrap()[0].needs_push);

    // A change supersedes the stored message in the same request.
    phone.set_display_name("Alice").unwrap();
    let r = phone.sync_config().await.unwrap();
    assert_eq!(r.pushed, vec![ConfigKind::UserProfile]);
    assert_eq!(net.swarms.hashes(&a, 2).len(), 1);
    let status = phone.config_status().unwrap();
    assert_eq!(status[0].pushed.map(|p| p.seqno), Some(2));

    // 30-day TTL, extended while a device polls: still there after 50 days.
    for _ in 0..5 {
        net.clock.advance(10 * 24 * 3_600_000);
        phone.sync_config().await.unwrap();
    }
    assert_eq!(net.swarms.hashes(&a, 2).len(), 1);
    let restored = device(&net, "alice-restored", &phrase, 7);
    restored.sync_config().await.unwrap();
    assert_eq!(restored.display_name().unwrap().as_deref(), Some("Alice"));
}

#[test]
fn names_longer_than_a_config_holds_are_refused_before_anything_changes() {
    let net = Net::new();
    let (phone, _) = net.user("alice", 1);
    let (bob, _) = net.user("bob", 2);
    let long = "é".repeat(51);
    assert!(matches!(
        phone.set_display_name(&long),
        Err(MessengerError::Config { .. })
    ));
    assert_eq!(phone.display_name().unwrap().as_deref(), Some("alice"));
    assert!(
        phone
            .rename_contact(&bob.session_id(), Some(&long))
            .is_err()
    );
    assert!(phone.contact(&bob.session_id()).unwrap().is_none());
}
