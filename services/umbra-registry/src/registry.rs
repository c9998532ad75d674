//! The registry's state machine: synchronous, clock passed in, persisted in SQLite.
//!
//! Every call takes `now_ms` from the caller (the HTTP shell reads an [`umbra_clock::Clock`]),
//! so tests drive time by hand. Every change of the published data bumps the epoch, re-runs
//! the swarm formation rules when the set of active nodes changed (seeded with
//! `mix_seed(config.seed, new_epoch)`, so a given sequence of events and seed always gives
//! the same swarms), signs the new list and saves nodes and list in one transaction.

use std::collections::BTreeMap;

use umbra_crypto::{Ed25519PublicKey, Identity, Redacted};
use umbra_nodelist::api::{
    DEFAULT_MAX_CLOCK_SKEW_MS, HeartbeatRequest, LeaveRequest, NodeStatus, RegisterRequest,
    RegistryInfo,
};
use umbra_nodelist::list::{LIST_FORMAT_VERSION, NodeEntry, NodeList, SignedNodeList, TrustPolicy};
use umbra_swarm::{UNASSIGNED_SWARM_ID, assign_swarms, mix_seed};

use crate::RegistryError;
use crate::store::{NodeRecord, Store};

/// Tunables of a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// A node without heartbeat for longer than this is marked inactive and leaves its swarm.
    pub inactive_after_ms: u64,
    /// How often nodes are told to send heartbeats.
    pub heartbeat_interval_ms: u64,
    /// Largest accepted skew of signed request timestamps.
    pub max_clock_skew_ms: u64,
    /// Seed of the swarm formation randomness.
    pub seed: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            inactive_after_ms: 15_000,
            heartbeat_interval_ms: 3_000,
            max_clock_skew_ms: DEFAULT_MAX_CLOCK_SKEW_MS,
            seed: 0,
        }
    }
}

/// The registry.
#[derive(Debug)]
pub struct Registry {
    identity: Identity,
    config: RegistryConfig,
    store: Store,
    nodes: BTreeMap<Ed25519PublicKey, NodeRecord>,
    current: SignedNodeList,
}

fn short_key(k: &Ed25519PublicKey) -> Redacted<String> {
    Redacted::new(hex::encode(k))
}

impl Registry {
    /// Opens a registry on `store`, signing with `identity`.
    ///
    /// Active nodes get a fresh grace period (`last_seen = now`): they could not send
    /// heartbeats while the registry was down. If no list was saved, or it was signed by a
    /// different key, a new list is published (with an epoch above the saved one).
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(
        store: Store,
        identity: Identity,
        config: RegistryConfig,
        now_ms: u64,
    ) -> Result<Self, RegistryError> {
        let mut nodes = store.load_nodes()?;
        for rec in nodes.values_mut() {
            if rec.active {
                rec.last_seen_ms = rec.last_seen_ms.max(now_ms);
            }
        }
        let saved = store.load_list()?;
        let ours = saved.as_ref().is_some_and(|l| {
            TrustPolicy::single(identity.ed25519_public())
                .verify(l)
                .is_ok()
        });
        let saved_epoch = saved.as_ref().map_or(0, |l| l.list.epoch);
        let current = match saved {
            Some(l) if ours => l,
            _ => SignedNodeList::sign(NodeList::new(saved_epoch, now_ms, Vec::new()), &identity),
        };
        let mut reg = Self {
            identity,
            config,
            store,
            nodes,
            current,
        };
        if !ours {
            reg.publish(now_ms, false)?;
        }
        Ok(reg)
    }

    /// The registry's Ed25519 public key.
    #[must_use]
    pub fn public_key(&self) -> Ed25519PublicKey {
        self.identity.ed25519_public()
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The current signed list.
    #[must_use]
    pub fn current(&self) -> &SignedNodeList {
        &self.current
    }

    /// The current epoch.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.current.list.epoch
    }

    /// What `GET /v1/info` answers.
    #[must_use]
    pub fn info(&self) -> RegistryInfo {
        RegistryInfo {
            registry_pubkey: self.identity.ed25519_public(),
            registry_pubkey_x25519: self.identity.x25519_public(),
            epoch: self.epoch(),
            list_format_version: LIST_FORMAT_VERSION,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
            inactive_after_ms: self.config.inactive_after_ms,
            max_clock_skew_ms: self.config.max_clock_skew_ms,
        }
    }

    fn status(&self, ed: &Ed25519PublicKey) -> NodeStatus {
        let (active, swarm_id) = self
            .nodes
            .get(ed)
            .map_or((false, UNASSIGNED_SWARM_ID), |r| (r.active, r.swarm_id));
        NodeStatus {
            epoch: self.epoch(),
            swarm_id,
            swarm: format!("{swarm_id:x}"),
            active,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
        }
    }

    /// The status of one node, if known.
    #[must_use]
    pub fn node_status(&self, ed: &Ed25519PublicKey) -> Option<NodeStatus> {
        self.nodes.contains_key(ed).then(|| self.status(ed))
    }

    /// Makes the next epoch from `nodes`: re-forms swarms if `reform`, signs, saves, and only
    /// then replaces the in-memory state.
    fn publish_with(
        &mut self,
        mut nodes: BTreeMap<Ed25519PublicKey, NodeRecord>,
        now_ms: u64,
        reform: bool,
    ) -> Result<(), RegistryError> {
        let epoch = self.epoch().saturating_add(1);
        if reform {
            let active: BTreeMap<Ed25519PublicKey, u64> = nodes
                .values()
                .filter(|r| r.active)
                .map(|r| (r.pubkey_ed25519, r.swarm_id))
                .collect();
            let assigned = assign_swarms(&active, mix_seed(self.config.seed, epoch));
            for rec in nodes.values_mut() {
                rec.swarm_id = assigned
                    .get(&rec.pubkey_ed25519)
                    .copied()
                    .unwrap_or(UNASSIGNED_SWARM_ID);
            }
        }
        let entries = nodes
            .values()
            .map(|r| NodeEntry {
                pubkey_ed25519: r.pubkey_ed25519,
                pubkey_x25519: r.pubkey_x25519,
                public_ip: r.announcement.public_ip,
                storage_port: r.announcement.storage_port,
                storage_lmq_port: r.announcement.storage_lmq_port,
                swarm_id: if r.active {
                    r.swarm_id
                } else {
                    UNASSIGNED_SWARM_ID
                },
                active: r.active,
                version: r.announcement.version,
            })
            .collect();
        let signed = SignedNodeList::sign(NodeList::new(epoch, now_ms, entries), &self.identity);
        let all: Vec<&NodeRecord> = nodes.values().collect();
        self.store.save(&all, Some(&signed))?;
        self.nodes = nodes;
        self.current = signed;
        tracing::info!(
            epoch,
            nodes = self.nodes.len(),
            swarms = self.current.list.swarm_ring().len(),
            "published node list"
        );
        Ok(())
    }

    fn publish(&mut self, now_ms: u64, reform: bool) -> Result<(), RegistryError> {
        self.publish_with(self.nodes.clone(), now_ms, reform)
    }

    fn check_replay(
        &self,
        what: &'static str,
        ed: &Ed25519PublicKey,
        timestamp_ms: u64,
    ) -> Result<(), RegistryError> {
        match self.nodes.get(ed) {
            Some(r) if timestamp_ms <= r.last_timestamp_ms => {
                Err(RegistryError::ReplayedTimestamp { what })
            }
            _ => Ok(()),
        }
    }

    /// Handles a registration (new node, changed announcement, or a returning node).
    ///
    /// # Errors
    /// Everything [`RegisterRequest::verify`] refuses, [`RegistryError::ReplayedTimestamp`],
    /// storage errors.
    pub fn register(
        &mut self,
        req: &RegisterRequest,
        now_ms: u64,
    ) -> Result<NodeStatus, RegistryError> {
        req.verify(&self.identity, now_ms, self.config.max_clock_skew_ms)?;
        let ed = req.pubkey_ed25519;
        self.check_replay("register", &ed, req.timestamp_ms)?;
        let mut nodes = self.nodes.clone();
        let prev = nodes.get(&ed).cloned();
        let rec = nodes.entry(ed).or_insert_with(|| NodeRecord {
            pubkey_ed25519: ed,
            pubkey_x25519: req.pubkey_x25519,
            announcement: req.announcement.clone(),
            registered_at_ms: now_ms,
            last_seen_ms: now_ms,
            last_timestamp_ms: req.timestamp_ms,
            active: false,
            swarm_id: UNASSIGNED_SWARM_ID,
        });
        rec.pubkey_x25519 = req.pubkey_x25519;
        rec.announcement = req.announcement.clone();
        rec.last_seen_ms = now_ms;
        rec.last_timestamp_ms = req.timestamp_ms;
        let joins = !rec.active;
        if joins {
            rec.active = true;
            rec.swarm_id = UNASSIGNED_SWARM_ID;
        }
        let changed = prev.as_ref().is_none_or(|p| {
            p.pubkey_x25519 != req.pubkey_x25519 || p.announcement != req.announcement
        });
        if joins || changed {
            tracing::info!(node = %short_key(&ed), rejoin = prev.is_some(), "node registered");
            self.publish_with(nodes, now_ms, joins)?;
        } else {
            let touched = nodes.get(&ed).cloned();
            if let Some(rec) = &touched {
                self.store.save(&[rec], None)?;
            }
            self.nodes = nodes;
        }
        Ok(self.status(&ed))
    }

    /// Handles a heartbeat; a node marked inactive comes back and rejoins a swarm.
    ///
    /// # Errors
    /// [`RegistryError::NotRegistered`], everything [`HeartbeatRequest::verify`] refuses,
    /// [`RegistryError::ReplayedTimestamp`], storage errors.
    pub fn heartbeat(
        &mut self,
        req: &HeartbeatRequest,
        now_ms: u64,
    ) -> Result<NodeStatus, RegistryError> {
        if !self.nodes.contains_key(&req.pubkey_ed25519) {
            return Err(RegistryError::NotRegistered);
        }
        req.verify(
            &self.identity.ed25519_public(),
            now_ms,
            self.config.max_clock_skew_ms,
        )?;
        let ed = req.pubkey_ed25519;
        self.check_replay("heartbeat", &ed, req.timestamp_ms)?;
        let mut nodes = self.nodes.clone();
        let Some(rec) = nodes.get_mut(&ed) else {
            return Err(RegistryError::NotRegistered);
        };
        rec.last_seen_ms = now_ms;
        rec.last_timestamp_ms = req.timestamp_ms;
        if rec.active {
            let rec = rec.clone();
            self.store.save(&[&rec], None)?;
            self.nodes = nodes;
        } else {
            rec.active = true;
            rec.swarm_id = UNASSIGNED_SWARM_ID;
            tracing::info!(node = %short_key(&ed), "node is back");
            self.publish_with(nodes, now_ms, true)?;
        }
        Ok(self.status(&ed))
    }

    /// Handles a clean departure: the node leaves its swarm now.
    ///
    /// # Errors
    /// As [`Registry::heartbeat`].
    pub fn leave(&mut self, req: &LeaveRequest, now_ms: u64) -> Result<NodeStatus, RegistryError> {
        if !self.nodes.contains_key(&req.pubkey_ed25519) {
            return Err(RegistryError::NotRegistered);
        }
        req.verify(
            &self.identity.ed25519_public(),
            now_ms,
            self.config.max_clock_skew_ms,
        )?;
        let ed = req.pubkey_ed25519;
        self.check_replay("leave", &ed, req.timestamp_ms)?;
        let mut nodes = self.nodes.clone();
        let Some(rec) = nodes.get_mut(&ed) else {
            return Err(RegistryError::NotRegistered);
        };
        rec.last_timestamp_ms = req.timestamp_ms;
        if rec.active {
            rec.active = false;
            rec.swarm_id = UNASSIGNED_SWARM_ID;
            tracing::info!(node = %short_key(&ed), "node left");
            self.publish_with(nodes, now_ms, true)?;
        } else {
            let rec = rec.clone();
            self.store.save(&[&rec], None)?;
            self.nodes = nodes;
        }
        Ok(self.status(&ed))
    }

    /// Marks nodes without heartbeat for longer than `inactive_after_ms` inactive; returns
    /// whether a new list was published.
    ///
    /// # Errors
    /// Storage errors.
    pub fn expire(&mut self, now_ms: u64) -> Result<bool, RegistryError> {
        let limit = self.config.inactive_after_ms;
        let stale: Vec<Ed25519PublicKey> = self
            .nodes
            .values()
            .filter(|r| r.active && now_ms.saturating_sub(r.last_seen_ms) > limit)
            .map(|r| r.pubkey_ed25519)
            .collect();
        if stale.is_empty() {
            return Ok(false);
        }
        let mut nodes = self.nodes.clone();
        for ed in &stale {
            if let Some(rec) = nodes.get_mut(ed) {
                rec.active = false;
                rec.swarm_id = UNASSIGNED_SWARM_ID;
                tracing::info!(node = %short_key(ed), "node inactive (missed heartbeats)");
            }
        }
        self.publish_with(nodes, now_ms, true)?;
        Ok(true)
    }
}
