//! Removal guarantees under any history, checked against a model after every step.
//!
//! An admin runs the group as the messenger does (`umbra-messenger` `groups.rs`: configs
//! rebuilt from the swarm before each action, the Members config edited, a rekey for every
//! entry of it on removal and on an add without history, a supplemental message on an add
//! with history, tokens revoked on removal and lifted on re-add). Next to it, a model holds
//! who is a member, who is an admin, and which key generations each person is entitled to.
//! After every add, removal or promotion:
//!
//! - each person, reading every keys message of namespace 12 as soon as it is stored, holds
//!   exactly the generations the model entitles them to: current members hold the newest key,
//!   a removed member holds no key of the generation that removed them or later (until
//!   re-added), and a late reader catching up from the whole namespace gets the same;
//! - a group message encrypted under the newest key opens for exactly the current members;
//! - the Members config, as the admin holds it and as each current member reads it from the
//!   swarm, lists exactly the model's members with the model's admins; a removed member
//!   cannot open it;
//! - the group swarm's check (`RevocationList::check_request`, the crate-side copy of the
//!   node's `services/umbra-node/src/rpc/auth.rs`) refuses exactly the removed members'
//!   tokens, while they can still read the unrevocable kicked-notice namespace, where a
//!   notice tells them the generation they were removed at.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use umbra_config::SwarmHash;
use umbra_crypto::{Identity, SeededRandom, SessionId};
use umbra_groups::kicked::{kicked_notice, read_kicked_notice};
use umbra_groups::{
    Flags, GroupAdmin, GroupInfo, GroupKeys, GroupMembers, Member, Pending, RevocationList, Role,
    Subaccount, decrypt_message, encrypt_message,
};

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

/// What the group should be: the reference the real state is compared with.
#[derive(Debug, Default)]
struct Model {
    members: BTreeSet<usize>,
    admins: BTreeSet<usize>,
    /// Generations whose key each person must hold (and no other).
    entitled: Vec<BTreeSet<u64>>,
    /// For a person removed and not re-added: the generation of the rekey that removed them.
    removed_at: BTreeMap<usize, u64>,
    /// Everyone ever added (their tokens exist).
    ever: BTreeSet<usize>,
}

/// The group swarm, as far as these checks need it.
#[derive(Default)]
struct Swarm {
    /// Namespace 12: (hash, bytes, storage timestamp).
    keys: Vec<(String, Vec<u8>, i64)>,
    /// Namespaces 13 and 14: the current config messages (older ones are deleted on push).
    info: Vec<(SwarmHash, Vec<u8>)>,
    members: Vec<(SwarmHash, Vec<u8>)>,
    /// Namespace −11: kicked notices.
    kicked: Vec<Vec<u8>>,
    revoked: RevocationList,
    stores: usize,
}

struct Group {
    admin: GroupAdmin,
    people: Vec<Identity>,
    /// The admin's key ring (what the messenger keeps per group).
    admin_keys: GroupKeys,
    /// Each person's key ring, fed every keys message as it is stored.
    online: Vec<GroupKeys>,
    swarm: Swarm,
    model: Model,
    now: i64,
    rng: SeededRandom,
}

fn as_refs(v: &[(SwarmHash, Vec<u8>)]) -> Vec<(SwarmHash, &[u8])> {
    v.iter().map(|(h, b)| (h.clone(), b.as_slice())).collect()
}

impl Group {
    /// The creator makes the group alone: first key, then both configs (as `create_group`).
    fn new() -> Group {
        let admin = GroupAdmin::from_seed(&[0x47; 32]);
        let people: Vec<Identity> = (0..PEOPLE)
            .map(|i| Identity::from_seed(&[i as u8 + 1; 32]))
            .collect();
        let public = *admin.public();
        let mut g = Group {
            admin_keys: GroupKeys::new(public),
            online: vec![GroupKeys::new(public); PEOPLE],
            admin,
            people,
            swarm: Swarm::default(),
            model: Model {
                members: BTreeSet::from([0]),
                admins: BTreeSet::from([0]),
                entitled: vec![BTreeSet::new(); PEOPLE],
                ever: BTreeSet::from([0]),
                ..Model::default()
            },
            now: 1_700_000_000_000,
            rng: SeededRandom::new(15),
        };
        let generation = g.rekey(&[g.people[0].session_id()]);
        g.model.entitled[0].insert(generation);
        let mut info = GroupInfo::new(&public, Some(&g.admin), &g.admin_keys).unwrap();
        info.set_name("proptest").unwrap();
        let mut list = GroupMembers::new(&public, Some(&g.admin), &g.admin_keys).unwrap();
        let mut me = Member::new(g.people[0].session_id());
        me.admin = true;
        me.invite = None;
        list.set(&me).unwrap();
        g.push_configs(&mut info, &mut list);
        g
    }

    fn next_hash(&mut self, ns: i16) -> String {
        self.swarm.stores += 1;
        self.now += 1000;
        format!("ns{ns}-{}", self.swarm.stores)
    }

    /// Stores a keys message; the admin and every person (online) load it.
    fn store_keys(&mut self, bytes: Vec<u8>) {
        let hash = self.next_hash(12);
        self.admin_keys
            .load(Role::Admin(&self.admin), &hash, &bytes, self.now)
            .unwrap();
        for (who, keys) in self.online.iter_mut().enumerate() {
            keys.load(Role::Member(&self.people[who]), &hash, &bytes, self.now)
                .unwrap();
        }
        self.swarm.keys.push((hash, bytes, self.now));
    }

    /// A full rekey for `ids`; returns its generation.
    fn rekey(&mut self, ids: &[SessionId]) -> u64 {
        let msg = self.admin_keys.rekey(&self.admin, ids, self.now).unwrap();
        let generation = self.admin_keys.current_generation().unwrap();
        self.store_keys(msg);
        generation
    }

    /// Pushes whichever config changed, replacing the stored one.
    fn push_configs(&mut self, info: &mut GroupInfo, list: &mut GroupMembers) {
        for (ns, state) in [(13, info.state_mut()), (14, list.state_mut())] {
            let Some(push) = state.push().unwrap() else {
                continue;
            };
            let stored: Vec<(SwarmHash, Vec<u8>)> = push
                .messages
                .into_iter()
                .map(|m| (SwarmHash(self.next_hash(ns)), m))
                .collect();
            let hashes: Vec<SwarmHash> = stored.iter().map(|(h, _)| h.clone()).collect();
            state.confirm_pushed(push.seqno, &hashes);
            if ns == 13 {
                self.swarm.info = stored;
            } else {
                self.swarm.members = stored;
            }
        }
    }

    /// The admin's configs, rebuilt from the swarm as the messenger does before each action.
    fn configs(&self) -> (GroupInfo, GroupMembers) {
        let public = *self.admin.public();
        let mut info = GroupInfo::new(&public, Some(&self.admin), &self.admin_keys).unwrap();
        let r = info.state_mut().merge(&as_refs(&self.swarm.info));
        assert!(r.skipped.is_empty(), "admin could not read Info: {r:?}");
        let mut list = GroupMembers::new(&public, Some(&self.admin), &self.admin_keys).unwrap();
        let r = list.state_mut().merge(&as_refs(&self.swarm.members));
        assert!(r.skipped.is_empty(), "admin could not read Members: {r:?}");
        (info, list)
    }

    fn token(&self, who: usize) -> umbra_groups::Token {
        self.admin
            .member_token(&self.people[who].session_id(), Flags::member(true, false))
    }

    fn apply(&mut self, op: &Op) {
        let (mut info, mut list) = self.configs();
        match *op {
            Op::Add { who, history } => {
                if self.model.members.contains(&who) {
                    return;
                }
                let id = self.people[who].session_id();
                let mut entry = Member::new(id);
                entry.invite = Some(Pending::Sent);
                entry.supplement = history;
                list.set(&entry).unwrap();
                let t = self.token(who);
                self.swarm.revoked.unrevoke(&[t]);
                if history {
                    // Every key held so far, and no rekey.
                    let msg = self.admin_keys.supplemental(&self.admin, &[id]).unwrap();
                    self.store_keys(msg);
                    let all: BTreeSet<u64> = self
                        .admin_keys
                        .keys()
                        .iter()
                        .map(|k| k.generation)
                        .collect();
                    self.model.entitled[who].extend(all);
                } else {
                    let generation = self.rekey(&list.session_ids());
                    self.model.members.insert(who);
                    let members = self.model.members.clone();
                    for m in members {
                        self.model.entitled[m].insert(generation);
                    }
                    info.set_keys(&self.admin_keys, true).unwrap();
                    list.set_keys(&self.admin_keys, true).unwrap();
                }
                self.model.members.insert(who);
                self.model.ever.insert(who);
                self.model.removed_at.remove(&who);
            }
            // Admins hold the seed: Session removes members, not admins.
            Op::Remove(who)
                if self.model.members.contains(&who) && !self.model.admins.contains(&who) =>
            {
                let id = self.people[who].session_id();
                assert!(list.erase(&id), "the admin's list lacks person {who}");
                let current = self.admin_keys.current_generation().unwrap();
                let notice = kicked_notice(&self.admin, &[id], current, &mut self.rng).unwrap();
                self.swarm.kicked.push(notice);
                let t = self.token(who);
                self.swarm.revoked.revoke(&[t]);
                let generation = self.rekey(&list.session_ids());
                info.set_keys(&self.admin_keys, true).unwrap();
                list.set_keys(&self.admin_keys, true).unwrap();
                self.model.members.remove(&who);
                for m in &self.model.members {
                    self.model.entitled[*m].insert(generation);
                }
                self.model.removed_at.insert(who, generation);
            }
            Op::Remove(_) => return,
            Op::Promote(who) => {
                let Some(mut entry) = list.get(&self.people[who].session_id()) else {
                    assert!(!self.model.members.contains(&who));
                    return;
                };
                entry.admin = true;
                entry.invite = None;
                entry.promotion = Some(Pending::Sent);
                list.set(&entry).unwrap();
                self.model.admins.insert(who);
            }
        }
        self.push_configs(&mut info, &mut list);
    }

    /// Compares everything observable with the model.
    fn check(&mut self, step: &str) -> Result<(), TestCaseError> {
        let m = &self.model;
        let public = *self.admin.public();
        let newest = self.admin_keys.encryption_key().unwrap().clone();
        prop_assert!(!self.admin_keys.needs_rekey());
        prop_assert_eq!(
            Some(newest.generation),
            m.entitled[0].last().copied(),
            "the creator lacks the newest generation {}",
            step
        );

        // The admin's Members config is the model.
        let (_, list) = self.configs();
        let listed: BTreeMap<usize, bool> = list
            .all()
            .iter()
            .map(|e| (self.index_of(&e.session_id), e.admin))
            .collect();
        let expected: BTreeMap<usize, bool> = m
            .members
            .iter()
            .map(|p| (*p, m.admins.contains(p)))
            .collect();
        prop_assert_eq!(&listed, &expected, "admin's Members config {}", step);

        // One message under the newest key, from the creator.
        let sent = encrypt_message(
            &self.people[0],
            &self.admin_keys,
            b"hi",
            false,
            &mut self.rng,
        )
        .unwrap();

        let msg = b"store111700000000000";
        for who in 0..PEOPLE {
            let held: BTreeSet<u64> = self.online[who]
                .keys()
                .iter()
                .map(|k| k.generation)
                .collect();
            prop_assert_eq!(&held, &m.entitled[who], "person {} holds {}", who, step);
            let member = m.members.contains(&who);
            let has_newest = self.online[who]
                .keys()
                .iter()
                .any(|k| k.key() == newest.key());
            prop_assert_eq!(has_newest, member, "person {} newest key {}", who, step);
            if let Some(g) = m.removed_at.get(&who) {
                prop_assert!(!member);
                prop_assert!(
                    held.iter().all(|h| h < g),
                    "removed person {} holds a key from generation {} on {}",
                    who,
                    g,
                    step
                );
            }
            prop_assert_eq!(
                decrypt_message(&self.online[who], &sent).is_ok(),
                member,
                "person {} opening a message {}",
                who,
                step
            );

            // The Members config as this person reads it from the swarm.
            let mut seen = GroupMembers::new(&public, None, &self.online[who]);
            if let Ok(seen) = seen.as_mut() {
                let r = seen.state_mut().merge(&as_refs(&self.swarm.members));
                if member {
                    prop_assert!(r.skipped.is_empty(), "person {} {:?} {}", who, r, step);
                    let ids: BTreeMap<usize, bool> = seen
                        .all()
                        .iter()
                        .map(|e| (self.index_of(&e.session_id), e.admin))
                        .collect();
                    prop_assert_eq!(&ids, &expected, "person {}'s Members {}", who, step);
                } else {
                    prop_assert!(r.accepted.is_empty(), "person {} read Members", who);
                }
            } else {
                prop_assert!(!member && held.is_empty(), "person {} has no config", who);
            }

            // The swarm's verdict on this person's token.
            if !m.ever.contains(&who) {
                continue;
            }
            let removed = !member;
            prop_assert_eq!(self.swarm.revoked.contains(&self.token(who)), removed);
            let auth = self
                .admin
                .member_auth(&self.people[who].session_id(), Flags::member(true, false));
            let sub = Subaccount::verify(&auth, &self.people[who], &public, Flags::WRITE).unwrap();
            let req = sub.request(msg);
            for required in [Flags::READ, Flags::WRITE] {
                let r = self
                    .swarm
                    .revoked
                    .check_request(&public, &req, required, false);
                prop_assert_eq!(r.is_ok(), member, "person {} token {}", who, step);
            }
            // The kicked namespace stays readable, and tells a removed member when.
            let r = self
                .swarm
                .revoked
                .check_request(&public, &req, Flags::READ, true);
            prop_assert!(r.is_ok());
            if let Some(g) = m.removed_at.get(&who) {
                let told: Vec<u64> = self
                    .swarm
                    .kicked
                    .iter()
                    .filter_map(|n| read_kicked_notice(&self.people[who], &public, n).unwrap())
                    .collect();
                prop_assert_eq!(told.last().copied(), Some(g - 1), "person {} notice", who);
            }
        }
        Ok(())
    }

    fn index_of(&self, id: &SessionId) -> usize {
        self.people
            .iter()
            .position(|p| p.session_id() == *id)
            .expect("a listed member is one of the people")
    }

    /// Someone reading namespace 12 from the start only now gets the same keys as when
    /// following along (a member offline during any number of rekeys catching up).
    fn check_late_readers(&self) -> Result<(), TestCaseError> {
        for who in 0..PEOPLE {
            let mut k = GroupKeys::new(*self.admin.public());
            for (hash, bytes, ts) in &self.swarm.keys {
                k.load(Role::Member(&self.people[who]), hash, bytes, *ts)
                    .unwrap();
            }
            let late: Vec<_> = k.keys().iter().map(|k| (k.generation, *k.key())).collect();
            let online: Vec<_> = self.online[who]
                .keys()
                .iter()
                .map(|k| (k.generation, *k.key()))
                .collect();
            prop_assert_eq!(late, online, "late reader {}", who);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn real_group_matches_the_model(ops in proptest::collection::vec(op(), 0..16)) {
        let mut g = Group::new();
        g.check("after creation")?;
        for (i, op) in ops.iter().enumerate() {
            g.apply(op);
            g.check(&format!("after step {i} ({op:?}) of {ops:?}"))?;
        }
        g.check_late_readers()?;
    }
}
