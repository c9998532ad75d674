//! `ConfigState`'s bookkeeping: pushes, confirmations, retries, bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use umbra_config::{ConfigError, ConfigState, SwarmHash, Value};

const SEED: [u8; 32] = [9; 32];

fn h(s: &str) -> SwarmHash {
    SwarmHash(s.to_string())
}

#[test]
fn push_confirm_and_retry() {
    let mut a = ConfigState::new(&SEED, "UserProfile").unwrap();
    assert!(!a.needs_push());
    assert_eq!(a.push().unwrap(), None);
    // Assigning what is already there is no change.
    a.edit(|d| d.remove(b"n".as_slice()));
    assert!(!a.needs_push());

    a.edit(|d| d.insert(b"n".to_vec(), Value::from("Ann")));
    assert!(a.is_dirty());
    assert_eq!(a.seqno(), 1);
    let p1 = a.push().unwrap().unwrap();
    assert_eq!(p1.seqno, 1);
    assert!(p1.obsolete.is_empty());
    // A lost push is retried with the same bytes.
    assert_eq!(a.push().unwrap().unwrap(), p1);
    a.confirm_pushed(1, &[h("m1")]);
    assert!(!a.needs_push());
    assert_eq!(a.current_hashes(), &[h("m1")]);

    // The next change makes the stored message obsolete, deleted with the next push.
    a.edit(|d| d.insert(b"n".to_vec(), Value::from("Bea")));
    assert_eq!(a.seqno(), 2);
    let p2 = a.push().unwrap().unwrap();
    assert_eq!(p2.obsolete, vec![h("m1")]);
    // An edit before the confirmation gets the next seqno.
    a.edit(|d| d.insert(b"n".to_vec(), Value::from("Cy")));
    assert_eq!(a.seqno(), 3);
    a.confirm_pushed(2, &[h("m2")]);
    assert!(a.needs_push());
    let p3 = a.push().unwrap().unwrap();
    assert_eq!(p3.obsolete, vec![h("m2")]);

    // Another device merges what was stored and agrees.
    let mut b = ConfigState::new(&SEED, "UserProfile").unwrap();
    let report = b.merge(&[(h("m3"), &p3.messages[0]), (h("m2"), &p2.messages[0])]);
    assert_eq!(report.accepted.len(), 2);
    assert!(report.changed);
    assert_eq!(b.data(), a.data());
    assert_eq!(b.seqno(), 3);
    assert!(!b.needs_push());
    assert_eq!(b.current_hashes(), &[h("m3")]);
    assert_eq!(b.deletable_hashes(), vec![h("m2")]);
}

#[test]
fn bad_messages_are_skipped_not_applied() {
    let mut a = ConfigState::new(&SEED, "Contacts").unwrap();
    a.edit(|d| d.insert(b"x".to_vec(), Value::from(1)));
    let good = a.push().unwrap().unwrap().messages.remove(0);
    let mut flipped = good.clone();
    flipped[10] ^= 1;
    let other_domain = {
        let mut o = ConfigState::new(&SEED, "UserGroups").unwrap();
        o.edit(|d| d.insert(b"x".to_vec(), Value::from(2)));
        o.push().unwrap().unwrap().messages.remove(0)
    };
    let huge = vec![0u8; 80_000];
    let mut b = ConfigState::new(&SEED, "Contacts").unwrap();
    let report = b.merge(&[
        (h("flipped"), &flipped),
        (h("other"), &other_domain),
        (h("huge"), &huge),
        (h("short"), b"abc"),
        (h("good"), &good),
    ]);
    assert_eq!(report.accepted, vec![h("good")]);
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|(h, e)| (h.0.as_str(), e.clone()))
        .collect();
    assert_eq!(skipped[0], ("flipped", ConfigError::Decrypt));
    assert_eq!(skipped[1], ("other", ConfigError::Decrypt));
    assert!(matches!(
        skipped[2],
        ("huge", ConfigError::TooLarge { limit: 76_800, .. })
    ));
    assert_eq!(skipped[3], ("short", ConfigError::Decrypt));
    assert_eq!(b.data(), a.data());
    // Skipped messages are never marked for deletion.
    assert!(b.deletable_hashes().is_empty());
}

#[test]
fn large_config_goes_in_parts() {
    let mut a = ConfigState::new(&SEED, "Contacts").unwrap();
    // Incompressible values: a simple xorshift stream.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    a.edit(|d| {
        for i in 0..200u32 {
            let v: Vec<u8> = (0..1000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            d.insert(i.to_be_bytes().to_vec(), Value::from(v));
        }
    });
    let p = a.push().unwrap().unwrap();
    assert_eq!(p.messages.len(), 3);
    assert!(p.messages.iter().all(|m| m.len() <= 76_800));
    let mut b = ConfigState::new(&SEED, "Contacts").unwrap();
    // Parts arrive out of order and in separate retrievals.
    let r1 = b.merge(&[(h("p2"), &p.messages[2]), (h("p0"), &p.messages[0])]);
    assert!(r1.accepted.is_empty() && r1.skipped.is_empty());
    let r2 = b.merge(&[(h("p1"), &p.messages[1])]);
    assert_eq!(r2.accepted.len(), 3);
    assert_eq!(b.data(), a.data());
    assert_eq!(b.current_hashes().len(), 3);
}

#[test]
fn dump_and_load_in_every_phase() {
    let mut a = ConfigState::new(&SEED, "Contacts").unwrap();
    let same = |a: &ConfigState| {
        let mut b = ConfigState::load(&SEED, "Contacts", &a.dump()).unwrap();
        assert_eq!(b.data(), a.data());
        assert_eq!(b.seqno(), a.seqno());
        assert_eq!(b.needs_push(), a.needs_push());
        assert_eq!(b.current_hashes(), a.current_hashes());
        assert_eq!(b.dump(), a.dump());
        b.push().unwrap()
    };
    assert_eq!(same(&a), None);
    a.edit(|d| d.insert(b"x".to_vec(), Value::from(1)));
    a.confirm_pushed(0, &[h("gone")]);
    let from_load = same(&a); // dirty
    let p = a.push().unwrap();
    assert_eq!(from_load, p);
    assert_eq!(same(&a), p); // waiting
    a.confirm_pushed(1, &[h("m1")]);
    assert_eq!(same(&a), None); // clean
    assert!(ConfigState::load(&SEED, "Contacts", b"de").is_err());
    assert!(ConfigState::load(&SEED, "Contacts", b"garbage").is_err());
}
