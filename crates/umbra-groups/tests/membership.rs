//! Removal guarantees under any history: after any sequence of adds (with or without
//! history), removals and promotions, exactly the current members can decrypt the newest
//! group key (however late they catch up), and exactly the removed members' tokens are
//! refused by the group swarm.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use umbra_crypto::{Identity, SessionId};
use umbra_groups::{Flags, GroupAdmin, GroupKeys, RevocationList, Role, Subaccount};

/// People who may be added: index 0 is the creator (always an admin and a member).
const PEOPLE: usize = 6;

#[derive(Debug, Clone)]
enum Op {
    Add { who: usize, history: bool },
    Remove(usize),
    Promote(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..PEOPLE, any::<bool>()).prop_map(|(who, history)| Op::Add { who, history }),
        3 => (1..PEOPLE).prop_map(Op::Remove),
        1 => (1..PEOPLE).prop_map(Op::Promote),
    ]
}

struct Group {
    admin: GroupAdmin,
    people: Vec<Identity>,
    members: BTreeSet<usize>,
    admins: BTreeSet<usize>,
    ever: BTreeSet<usize>,
    keys: GroupKeys,
    /// Namespace 12 as the swarm holds it: (hash, bytes, storage timestamp).
    stored: Vec<(String, Vec<u8>, i64)>,
    revoked: RevocationList,
    now: i64,
}

impl Group {
    fn new() -> Group {
        let admin = GroupAdmin::from_seed(&[0x47; 32]);
        let people = (0..PEOPLE)
            .map(|i| Identity::from_seed(&[i as u8 + 1; 32]))
            .collect();
        let mut g = Group {
            keys: GroupKeys::new(*admin.public()),
            admin,
            people,
            members: BTreeSet::from([0]),
            admins: BTreeSet::from([0]),
            ever: BTreeSet::from([0]),
            stored: Vec::new(),
            revoked: RevocationList::new(),
            now: 1_700_000_000_000,
        };
        g.rekey();
        g
    }

    fn ids(&self) -> Vec<SessionId> {
        self.members
            .iter()
            .map(|i| self.people[*i].session_id())
            .collect()
    }

    fn store(&mut self, bytes: Vec<u8>) {
        self.now += 1000;
        let hash = format!("h{}", self.stored.len());
        self.keys
            .load(Role::Admin(&self.admin), &hash, &bytes, self.now)
            .unwrap();
        self.stored.push((hash, bytes, self.now));
    }

    fn rekey(&mut self) {
        let ids = self.ids();
        let msg = self.keys.rekey(&self.admin, &ids, self.now).unwrap();
        self.store(msg);
    }

    fn token(&self, who: usize) -> umbra_groups::Token {
        self.admin
            .member_token(&self.people[who].session_id(), Flags::member(true, false))
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Add { who, history } => {
                if !self.members.insert(who) {
                    return;
                }
                self.ever.insert(who);
                let t = self.token(who);
                self.revoked.unrevoke(&[t]);
                if history {
                    let msg = self
                        .keys
                        .supplemental(&self.admin, &[self.people[who].session_id()])
                        .unwrap();
                    self.store(msg);
                } else {
                    self.rekey();
                }
            }
            // Admins hold the seed: Session removes members, not admins.
            Op::Remove(who) if self.members.contains(&who) && !self.admins.contains(&who) => {
                self.members.remove(&who);
                let t = self.token(who);
                self.revoked.revoke(&[t]);
                self.rekey();
            }
            Op::Remove(_) => {}
            Op::Promote(who) => {
                if self.members.contains(&who) {
                    self.admins.insert(who);
                }
            }
        }
    }

    /// The keys one person ends up with, loading everything stored from the start (a member
    /// offline during any number of rekeys catching up).
    fn keys_of(&self, who: usize) -> GroupKeys {
        let mut k = GroupKeys::new(*self.admin.public());
        for (hash, bytes, ts) in &self.stored {
            let role = if self.admins.contains(&who) {
                Role::Admin(&self.admin)
            } else {
                Role::Member(&self.people[who])
            };
            k.load(role, hash, bytes, *ts).unwrap();
        }
        k
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn exactly_current_members_hold_the_newest_key(ops in proptest::collection::vec(op(), 0..16)) {
        let mut g = Group::new();
        for op in &ops {
            g.apply(op);
        }
        let newest = g.keys.encryption_key().unwrap().clone();
        prop_assert!(!g.keys.needs_rekey());
        for who in 0..PEOPLE {
            let k = g.keys_of(who);
            let has = k.keys().iter().any(|x| x.key() == newest.key());
            prop_assert_eq!(has, g.members.contains(&who), "person {} after {:?}", who, ops);
            if has {
                prop_assert_eq!(k.encryption_key().unwrap().key(), newest.key());
            }
        }
    }

    #[test]
    fn removed_members_tokens_are_refused(ops in proptest::collection::vec(op(), 0..16)) {
        let mut g = Group::new();
        for op in &ops {
            g.apply(op);
        }
        let msg = b"store111700000000000";
        for who in 1..PEOPLE {
            let token = g.token(who);
            let removed = g.ever.contains(&who) && !g.members.contains(&who);
            prop_assert_eq!(g.revoked.contains(&token), removed);
            if !g.ever.contains(&who) {
                continue;
            }
            let auth = g.admin.member_auth(&g.people[who].session_id(), Flags::member(true, false));
            let sub = Subaccount::verify(&auth, &g.people[who], g.admin.public(), Flags::WRITE).unwrap();
            let r = g.revoked.check_request(g.admin.public(), &sub.request(msg), Flags::WRITE, false);
            prop_assert_eq!(r.is_ok(), !removed);
        }
    }
}
