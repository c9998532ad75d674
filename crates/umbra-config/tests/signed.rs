//! Signed (group) configs: admins sign and merge, members verify and adopt (§2.7 step 6, §2.8).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
use umbra_config::{ConfigError, ConfigSigning, ConfigState, SwarmHash, Value};

const KEY: [u8; 32] = [4; 32];

struct Group {
    key: SigningKey,
    admin: bool,
}

impl ConfigSigning for Group {
    fn verify(&self, signed: &[u8], signature: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.key.verifying_key().verify(signed, &sig).is_ok()
    }
    fn can_sign(&self) -> bool {
        self.admin
    }
    fn sign(&self, signed: &[u8]) -> Option<[u8; 64]> {
        self.admin.then(|| self.key.sign(signed).to_bytes())
    }
}

fn device(admin: bool) -> ConfigState {
    ConfigState::new(&KEY, "groupInfo")
        .unwrap()
        .with_signing(Box::new(Group {
            key: SigningKey::from_bytes(&[8; 32]),
            admin,
        }))
}

fn push(dev: &mut ConfigState, name: &str) -> (SwarmHash, Vec<u8>) {
    let p = dev.push().unwrap().unwrap();
    let h = SwarmHash(name.into());
    dev.confirm_pushed(p.seqno, std::slice::from_ref(&h));
    (h, p.messages.into_iter().next().unwrap())
}

#[test]
fn admins_merge_members_adopt() {
    let mut a1 = device(true);
    let mut a2 = device(true);
    let mut member = device(false);
    a1.edit(|d| d.insert(b"x".to_vec(), Value::from(1)));
    a2.edit(|d| d.insert(b"y".to_vec(), Value::from(2)));
    let m1 = push(&mut a1, "m1");
    let m2 = push(&mut a2, "m2");

    // A member cannot push, and of two concurrent messages adopts the higher one.
    member.edit(|d| d.insert(b"z".to_vec(), Value::from(3)));
    assert_eq!(member.push(), Err(ConfigError::Signature));
    let mut member = device(false);
    let r = member.merge(&[(m1.0.clone(), &m1.1), (m2.0.clone(), &m2.1)]);
    assert_eq!(r.accepted.len(), 2);
    assert!(!member.needs_push());
    assert_eq!(member.data().len(), 1);

    // An admin merges both and signs the result; the member takes it.
    let r = a1.merge(&[(m2.0.clone(), &m2.1)]);
    assert!(r.skipped.is_empty());
    assert!(a1.needs_push());
    let merged = push(&mut a1, "m3");
    member.merge(&[(merged.0.clone(), &merged.1)]);
    assert_eq!(member.data(), a1.data());
    assert_eq!(member.data().len(), 2);
    assert_eq!(member.seqno(), 2);

    // Messages signed by another key, or unsigned, are skipped.
    let mut forger = ConfigState::new(&KEY, "groupInfo")
        .unwrap()
        .with_signing(Box::new(Group {
            key: SigningKey::from_bytes(&[9; 32]),
            admin: true,
        }));
    forger.edit(|d| d.insert(b"evil".to_vec(), Value::from(1)));
    let forged = push(&mut forger, "f");
    let mut plain = ConfigState::new(&KEY, "groupInfo").unwrap();
    plain.edit(|d| d.insert(b"evil".to_vec(), Value::from(2)));
    let unsigned = push(&mut plain, "u");
    let r = member.merge(&[(forged.0, &forged.1), (unsigned.0, &unsigned.1)]);
    assert_eq!(r.skipped.len(), 2);
    assert!(r.skipped.iter().all(|(_, e)| *e == ConfigError::Signature));
    assert_eq!(member.data(), a1.data());
}

/// After a rekey (`set_keys`): an admin re-pushes under the new key with a new seqno and the
/// old message becomes obsolete; a member holding both keys reads old and new messages, one
/// without the new key cannot.
#[test]
fn rekeyed_configs_reencrypt_and_read_with_any_key() {
    let new_key = [5u8; 32];
    let mut admin = device(true);
    admin.edit(|d| d.insert(b"n".to_vec(), Value::from("g")));
    let old = push(&mut admin, "old");

    admin.set_keys(&[new_key, KEY], true).unwrap();
    assert!(admin.is_dirty());
    assert_eq!(admin.seqno(), 2);
    let p = admin.push().unwrap().unwrap();
    assert_eq!(p.obsolete, vec![old.0.clone()]);
    let new = (SwarmHash("new".into()), p.messages[0].clone());
    admin.confirm_pushed(p.seqno, std::slice::from_ref(&new.0));

    let mut member = device(false);
    member.set_keys(&[new_key, KEY], false).unwrap();
    assert!(!member.needs_push());
    let r = member.merge(&[(old.0.clone(), &old.1), (new.0.clone(), &new.1)]);
    assert_eq!((r.accepted.len(), r.skipped.len()), (2, 0));
    assert_eq!(member.seqno(), 2);

    let mut stale = device(false);
    let r = stale.merge(&[(new.0.clone(), &new.1)]);
    assert_eq!(r.skipped, vec![(new.0, ConfigError::Decrypt)]);
    assert!(stale.set_keys(&[], false).is_err());
    // The same key again changes nothing.
    admin.set_keys(&[new_key], true).unwrap();
    assert!(!admin.needs_push());
}
