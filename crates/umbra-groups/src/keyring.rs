//! The keys one device holds for one group, fed by the keys messages of namespace 12
//! (`groups-config-attachments.md` §1.5): loading, ordering, expiry, the admin's pending
//! rekey, and which key encrypts.

use std::collections::{BTreeMap, BTreeSet};

use umbra_crypto::{Identity, SessionId};

use crate::parse::KeysMessage;
use crate::rekey::{Rekey, build_rekey, build_supplemental};
use crate::{GroupAdmin, GroupError, GroupKey, GroupPublic};

/// Keys older than this (relative to the newest key, swarm time) are dropped: 60 days.
pub const KEY_EXPIRY_MS: i64 = 60 * 24 * 60 * 60 * 1000;

/// Who is loading: an admin (opens `K`, holds the seed) or a member (opens its copy).
#[derive(Debug, Clone, Copy)]
pub enum Role<'a> {
    /// Holds the group seed.
    Admin(&'a GroupAdmin),
    /// Holds only its own account identity.
    Member(&'a Identity),
}

/// What loading one keys message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The message's generation.
    pub generation: u64,
    /// Keys it gave us that we did not have.
    pub new_keys: usize,
    /// Whether any copy in it was for us.
    pub for_us: bool,
}

/// The keys of one group on one device.
#[derive(Debug, Clone)]
pub struct GroupKeys {
    group: GroupPublic,
    /// Sorted by (generation, timestamp, key), no duplicates.
    keys: Vec<GroupKey>,
    /// Stored keys-message hashes per generation: the ones to keep alive with `expire`.
    active: BTreeMap<u64, BTreeSet<String>>,
    /// An admin's own rekey not yet seen back from the swarm.
    pending: Option<GroupKey>,
}

impl GroupKeys {
    /// No keys yet.
    pub fn new(group: GroupPublic) -> GroupKeys {
        GroupKeys {
            group,
            keys: Vec::new(),
            active: BTreeMap::new(),
            pending: None,
        }
    }

    /// The group.
    pub fn group(&self) -> &GroupPublic {
        &self.group
    }

    /// Every key held, oldest first.
    pub fn keys(&self) -> &[GroupKey] {
        &self.keys
    }

    /// The key that encrypts now: the pending rekey if any, else the newest key (§1.5 item 6).
    pub fn encryption_key(&self) -> Option<&GroupKey> {
        self.pending.as_ref().or_else(|| self.keys.last())
    }

    /// The keys to try when decrypting, in order: the pending key, then newest to oldest.
    pub fn decryption_keys(&self) -> impl Iterator<Item = &GroupKey> {
        self.pending.iter().chain(self.keys.iter().rev())
    }

    /// The highest generation known (pending included).
    pub fn current_generation(&self) -> Option<u64> {
        let held = self.keys.last().map(|k| k.generation);
        let pending = self.pending.as_ref().map(|k| k.generation);
        held.max(pending)
    }

    /// Whether two admins rekeyed concurrently (the two newest keys share a generation): an
    /// admin must rekey again (§1.5 item 7).
    pub fn needs_rekey(&self) -> bool {
        match self.keys.as_slice() {
            [.., a, b] => a.generation == b.generation,
            _ => false,
        }
    }

    /// The stored keys messages still needed, to extend with `expire` on each poll.
    pub fn active_hashes(&self) -> impl Iterator<Item = &str> {
        self.active.values().flatten().map(String::as_str)
    }

    /// Builds a full rekey for `members` (every Members entry, admins included) at the next
    /// generation and makes its key pending. Store the message in namespace 12 together with
    /// the re-encrypted configs; the key is confirmed when the message is loaded back.
    pub fn rekey(
        &mut self,
        admin: &GroupAdmin,
        members: &[SessionId],
        now_ms: i64,
    ) -> Result<Vec<u8>, GroupError> {
        if admin.public() != &self.group {
            return Err(GroupError::BadGroupId("admin key of another group"));
        }
        let generation = self.current_generation().map_or(0, |g| g + 1);
        let Rekey { message, key, .. } = build_rekey(admin, members, generation)?;
        self.pending = Some(GroupKey::new(key.generation, now_ms, *key.key()));
        Ok(message)
    }

    /// Builds a supplemental message giving every key held (pending included) to
    /// `recipients`, new members added "with history".
    pub fn supplemental(
        &self,
        admin: &GroupAdmin,
        recipients: &[SessionId],
    ) -> Result<Vec<u8>, GroupError> {
        let mut keys = self.keys.clone();
        keys.extend(self.pending.iter().cloned());
        build_supplemental(admin, recipients, &keys)
    }

    /// Loads one keys message retrieved from namespace 12 (`hash` is its swarm hash,
    /// `storage_ms` its swarm timestamp). A message that does not parse or verify is refused
    /// and changes nothing.
    pub fn load(
        &mut self,
        role: Role<'_>,
        hash: &str,
        bytes: &[u8],
        storage_ms: i64,
    ) -> Result<Loaded, GroupError> {
        let msg = KeysMessage::parse(bytes, &self.group)?;
        let generation = msg.generation();
        let found: Vec<GroupKey> = match (&msg, role) {
            (KeysMessage::Full(f), Role::Admin(admin)) => {
                vec![GroupKey::new(
                    generation,
                    storage_ms,
                    *f.decrypt_admin(admin)?,
                )]
            }
            (KeysMessage::Full(f), Role::Member(me)) => f
                .decrypt_member(me, &self.group)?
                .map(|k| vec![GroupKey::new(generation, storage_ms, *k)])
                .unwrap_or_default(),
            // Admins hold every key already.
            (KeysMessage::Supplemental(_), Role::Admin(_)) => Vec::new(),
            (KeysMessage::Supplemental(s), Role::Member(me)) => {
                s.decrypt_member(me, &self.group)?.unwrap_or_default()
            }
        };
        let for_us = !found.is_empty();
        let mut new_keys = 0;
        for k in found {
            if let Some(p) = &self.pending
                && (p.generation < k.generation || p.key() == k.key())
            {
                self.pending = None;
            }
            if !self
                .keys
                .iter()
                .any(|h| h.generation == k.generation && h.key() == k.key())
            {
                self.keys.push(k);
                new_keys += 1;
            }
        }
        if let Some(p) = &self.pending
            && p.generation < generation
        {
            self.pending = None;
        }
        self.keys.sort();
        self.active
            .entry(generation)
            .or_default()
            .insert(hash.to_owned());
        self.expire();
        Ok(Loaded {
            generation,
            new_keys,
            for_us,
        })
    }

    /// Drops generations superseded for longer than [`KEY_EXPIRY_MS`] (swarm time, §1.5
    /// item 5).
    fn expire(&mut self) {
        let Some(newest) = self.keys.last().map(|k| k.timestamp_ms) else {
            return;
        };
        // The earliest key of each generation.
        let mut first_of: BTreeMap<u64, i64> = BTreeMap::new();
        for k in &self.keys {
            first_of.entry(k.generation).or_insert(k.timestamp_ms);
        }
        let gens: Vec<(u64, i64)> = first_of.into_iter().collect();
        let mut drop_below = None;
        for pair in gens.windows(2) {
            if let [(_, _), (g_next, t_next)] = pair
                && t_next.saturating_add(KEY_EXPIRY_MS) < newest
            {
                drop_below = Some(*g_next);
            }
        }
        if let Some(g) = drop_below {
            self.keys.retain(|k| k.generation >= g);
            self.active.retain(|gen_, _| *gen_ >= g);
        }
    }
}
