//! One config of one account on one device: local edits, pushes, and merges of what the swarm
//! holds (`groups-config-attachments.md` §2.6, §2.7, §2.10).
//!
//! ```text
//!            edit                push()               confirm_pushed(seqno, hashes)
//!   Clean ─────────▶ Dirty ───────────────▶ Waiting ─────────────────────────────▶ Clean
//!     ▲               ▲  edit: seqno + 1 from the pushed message   │
//!     └── merge adopts one message ── merge of several: Dirty ◀────┘
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use zeroize::Zeroizing;

use crate::ConfigError;
use crate::crypt::{self, Opened, Part};
use crate::data::{Dict, prune};
use crate::diff::diff;
use crate::message::{ConfigHash, ConfigMessage, MergeOutcome, MessageId, Parsed, merge_as};

/// The storage server's hash of a stored message (what `retrieve` returns and `delete` and
/// `expire` take), opaque here. Not [`ConfigHash`], the hash of the plaintext.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwarmHash(pub String);

impl fmt::Debug for SwarmHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Message hashes are metadata (they link a device to its stored messages): show a
        // prefix only.
        let head: String = self.0.chars().take(6).collect();
        write!(f, "SwarmHash({head}…)")
    }
}

/// What to store: the message (or its parts, §2.9) and the obsolete messages to delete in the
/// same request (§2.7 step 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The seqno to give back to [`ConfigState::confirm_pushed`].
    pub seqno: u64,
    /// The encrypted message: one entry, or each part of a multi-part message.
    pub messages: Vec<Vec<u8>>,
    /// Stored messages this one makes obsolete.
    pub obsolete: Vec<SwarmHash>,
}

/// What [`ConfigState::merge`] did with the retrieved messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Messages that decrypted and parsed (whether they changed anything or not).
    pub accepted: Vec<SwarmHash>,
    /// Messages skipped because they did not decrypt or parse; never applied, never deleted.
    pub skipped: Vec<(SwarmHash, ConfigError)>,
    /// Whether the data changed.
    pub changed: bool,
}

/// The Ed25519 signatures of group configs (§2.8), supplied by the caller (this crate holds
/// no signing keys). User configs have none.
pub trait ConfigSigning {
    /// Whether `signature` is the group's signature of `signed`.
    fn verify(&self, signed: &[u8], signature: &[u8; 64]) -> bool;
    /// Whether this device can sign (an admin). One that cannot (a member) never merges: it
    /// adopts the highest message (§2.7 step 6), and it cannot push.
    fn can_sign(&self) -> bool;
    /// The group's signature of `signed`; `None` when this device cannot sign.
    fn sign(&self, signed: &[u8]) -> Option<[u8; 64]>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The current message is stored (or is the empty seqno 0) and nothing changed since.
    Clean,
    /// Local changes (or a merge result) not yet serialised for a push.
    Dirty,
    /// Serialised by `push`, not yet confirmed stored.
    Waiting,
}

/// Keys a config holds at once ([`ConfigState::set_keys`]).
pub const MAX_KEYS: usize = 64;
/// Incomplete multi-part sets kept at once; more evicts the oldest-hashed.
const MAX_PARTIAL_SETS: usize = 4;
/// Completed multi-part hashes remembered, to ignore repeats of their parts.
const MAX_DONE_SETS: usize = 16;

/// The state of one config (one namespace) on this device.
pub struct ConfigState {
    key_base: Zeroizing<[u8; 32]>,
    /// Older keys, newest first, tried when `key_base` does not open a message (group configs
    /// after a rekey, §1.6). Never used to encrypt.
    older_keys: Vec<Zeroizing<[u8; 32]>>,
    domain: &'static str,
    msg: ConfigMessage,
    /// Hash of `msg` when it is final (Clean, Waiting).
    hash: ConfigHash,
    /// The data before local edits; `Some` exactly when Dirty.
    orig: Option<Dict>,
    phase: Phase,
    /// Where `msg` is stored, when Clean.
    current: Vec<SwarmHash>,
    obsolete: BTreeSet<SwarmHash>,
    /// The obsolete hashes sent with the push of this seqno.
    pushed_obsolete: Option<(u64, Vec<SwarmHash>)>,
    partial: BTreeMap<[u8; 32], BTreeMap<u8, (Part, SwarmHash)>>,
    done: Vec<[u8; 32]>,
    signing: Option<Box<dyn ConfigSigning + Send + Sync>>,
}

impl fmt::Debug for ConfigState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigState")
            .field("domain", &self.domain)
            .field("signed", &self.signing.is_some())
            .field("seqno", &self.msg.seqno)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl ConfigState {
    /// An empty config (seqno 0) of `domain` (`UserProfile`, `Contacts`, …), encrypted under
    /// `key_base` (for user configs the account's 32-byte Ed25519 seed).
    pub fn new(key_base: &[u8; 32], domain: &'static str) -> Result<ConfigState, ConfigError> {
        if !(1..=24).contains(&domain.len()) {
            return Err(ConfigError::BadDomain(domain.len()));
        }
        let msg = ConfigMessage::empty();
        Ok(ConfigState {
            key_base: Zeroizing::new(*key_base),
            older_keys: Vec::new(),
            domain,
            hash: msg.hash(),
            msg,
            orig: None,
            phase: Phase::Clean,
            current: Vec::new(),
            obsolete: BTreeSet::new(),
            pushed_obsolete: None,
            partial: BTreeMap::new(),
            done: Vec::new(),
            signing: None,
        })
    }

    /// This config is signed (a group config, §2.8): retrieved messages without a valid
    /// signature are skipped, and pushes are signed.
    pub fn with_signing(mut self, signing: Box<dyn ConfigSigning + Send + Sync>) -> ConfigState {
        self.signing = Some(signing);
        self
    }

    /// Whether this device can produce messages: unsigned configs always, signed ones when
    /// it can sign.
    fn can_sign(&self) -> bool {
        self.signing.as_ref().is_none_or(|s| s.can_sign())
    }

    /// Checks the signature of a received message's bytes, when this config is signed.
    fn check_signature(&self, raw: &[u8]) -> Result<(), ConfigError> {
        let Some(signing) = &self.signing else {
            return Ok(());
        };
        match ConfigMessage::signed_part(raw) {
            Some((signed, sig)) if signing.verify(signed, &sig) => Ok(()),
            _ => Err(ConfigError::Signature),
        }
    }

    /// The config's domain.
    pub fn domain(&self) -> &'static str {
        self.domain
    }

    /// The current data, local edits included.
    pub fn data(&self) -> &Dict {
        &self.msg.data
    }

    /// The current seqno (local edits are one above the last stored or merged message).
    pub fn seqno(&self) -> u64 {
        self.msg.seqno
    }

    /// Whether there is something to push (local edits, a merge result, or an unconfirmed push).
    pub fn needs_push(&self) -> bool {
        self.phase != Phase::Clean
    }

    /// Whether there are local changes not yet serialised by [`push`](Self::push).
    pub fn is_dirty(&self) -> bool {
        self.phase == Phase::Dirty
    }

    /// Where the current message is stored: the hashes whose TTL each poll extends (§2.10).
    pub fn current_hashes(&self) -> &[SwarmHash] {
        &self.current
    }

    /// Stored messages known to be obsolete, deleted with the next push.
    pub fn obsolete_hashes(&self) -> impl Iterator<Item = &SwarmHash> {
        self.obsolete.iter()
    }

    /// The obsolete messages to delete on their own, when there is nothing to push: a merge
    /// that adopted a message can leave older ones behind (say, an identical message two
    /// devices both built). Empty while a push is due: then they go with the push, in the same
    /// request as the message that supersedes them (§2.7 step 8).
    pub fn deletable_hashes(&self) -> Vec<SwarmHash> {
        if self.phase == Phase::Clean {
            self.obsolete.iter().cloned().collect()
        } else {
            Vec::new()
        }
    }

    /// These stored messages were deleted: forget them.
    pub fn confirm_deleted(&mut self, hashes: &[SwarmHash]) {
        for h in hashes {
            self.obsolete.remove(h);
        }
    }

    /// Replaces the keys (group configs, §1.6): `newest_first[0]` encrypts from now on, and
    /// every key is tried when opening retrieved messages. With `reencrypt` (an admin after a
    /// rekey) a new encryption key makes the config dirty, so the next push stores it under
    /// that key with a new seqno (libsession's `add_key` with `dirty_config`); a member, who
    /// cannot push, passes `false`. At most [`MAX_KEYS`] keys are kept.
    pub fn set_keys(
        &mut self,
        newest_first: &[[u8; 32]],
        reencrypt: bool,
    ) -> Result<(), ConfigError> {
        let Some((first, rest)) = newest_first.split_first() else {
            return Err(ConfigError::Message("a config needs at least one key"));
        };
        let changed = *first != *self.key_base;
        self.key_base = Zeroizing::new(*first);
        self.older_keys = rest
            .iter()
            .take(MAX_KEYS - 1)
            .map(|k| Zeroizing::new(*k))
            .collect();
        if changed && reencrypt {
            self.make_dirty();
        }
        Ok(())
    }

    /// Starts a new seqno on top of the current message, unless local changes already did.
    fn make_dirty(&mut self) {
        if self.phase != Phase::Dirty {
            if self.phase == Phase::Clean {
                self.obsolete.extend(self.current.drain(..));
            }
            self.msg = self.msg.increment(self.hash);
            self.orig = Some(self.msg.data.clone());
            self.phase = Phase::Dirty;
        }
    }

    /// Changes the data with `f`. Empty sets and dicts are pruned afterwards. A change makes
    /// the config dirty (a new seqno on top of the current message); no change leaves it as is.
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut Dict) -> R) -> R {
        let mut data = self.msg.data.clone();
        let r = f(&mut data);
        prune(&mut data);
        if data == self.msg.data {
            return r;
        }
        self.make_dirty();
        self.msg.data = data;
        r
    }

    /// The current message as it would be pushed now, with its hash.
    fn finalised(&self) -> Parsed {
        match &self.orig {
            Some(orig) if self.phase == Phase::Dirty => {
                let mut m = self.msg.clone();
                m.diff = diff(orig, &m.data);
                if let Some(signing) = &self.signing {
                    m.signature = signing.sign(&m.signed_bytes());
                }
                m.into_parsed()
            }
            _ => Parsed {
                message: self.msg.clone(),
                hash: self.hash,
            },
        }
    }

    /// What to store now, or `None` when the config is clean. Serialises local changes (later
    /// edits get the next seqno); calling it again before the confirmation returns the same
    /// bytes, so a lost push is retried as is.
    pub fn push(&mut self) -> Result<Option<Push>, ConfigError> {
        if self.phase == Phase::Clean {
            return Ok(None);
        }
        if !self.can_sign() {
            return Err(ConfigError::Signature);
        }
        let p = self.finalised();
        let messages = crypt::seal(&self.key_base, self.domain, &p.message.serialise())?;
        if self.phase == Phase::Dirty {
            self.msg = p.message;
            self.hash = p.hash;
            self.orig = None;
            self.phase = Phase::Waiting;
        }
        let obsolete: Vec<SwarmHash> = self.obsolete.iter().cloned().collect();
        self.pushed_obsolete = Some((self.msg.seqno, obsolete.clone()));
        Ok(Some(Push {
            seqno: self.msg.seqno,
            messages,
            obsolete,
        }))
    }

    /// The push of `seqno` was stored under `hashes` (one per message of [`Push::messages`]),
    /// and its obsolete messages deleted. A confirmation of a push that later edits or merges
    /// superseded marks that stored message obsolete instead.
    pub fn confirm_pushed(&mut self, seqno: u64, hashes: &[SwarmHash]) {
        if let Some((s, deleted)) = self.pushed_obsolete.take() {
            if s == seqno {
                for h in &deleted {
                    self.obsolete.remove(h);
                }
            } else {
                self.pushed_obsolete = Some((s, deleted));
            }
        }
        if self.phase == Phase::Waiting && self.msg.seqno == seqno {
            self.phase = Phase::Clean;
            self.current = hashes.to_vec();
        } else if !hashes.iter().all(|h| self.current.contains(h)) {
            self.obsolete
                .extend(hashes.iter().filter(|h| !self.current.contains(h)).cloned());
        }
    }

    /// Decrypts with the current key, then the older ones.
    fn open_any_key(&self, bytes: &[u8]) -> Result<Opened, ConfigError> {
        let mut result = crypt::open(&self.key_base, self.domain, bytes);
        for k in &self.older_keys {
            if result != Err(ConfigError::Decrypt) {
                break;
            }
            result = crypt::open(k, self.domain, bytes);
        }
        result
    }

    /// Opens one retrieved message: a whole message, or the last missing part of a set.
    fn open(
        &mut self,
        hash: &SwarmHash,
        bytes: &[u8],
    ) -> Result<Option<(Parsed, Vec<SwarmHash>)>, ConfigError> {
        match self.open_any_key(bytes)? {
            Opened::Whole(b) => {
                self.check_signature(&b)?;
                Ok(Some((ConfigMessage::parse(&b)?, vec![hash.clone()])))
            }
            Opened::Part(part) => {
                if self.done.contains(&part.final_hash) {
                    return Ok(None);
                }
                let key = part.final_hash;
                let count = usize::from(part.count);
                let set = self.partial.entry(key).or_default();
                set.insert(part.index, (part, hash.clone()));
                let held: usize = set.values().map(|(p, _)| p.chunk.len()).sum();
                if held > crypt::MAX_TOTAL {
                    self.partial.remove(&key);
                    return Err(ConfigError::TooLarge {
                        what: "multi-part config",
                        len: held,
                        limit: crypt::MAX_TOTAL,
                    });
                }
                if set.len() < count {
                    while self.partial.len() > MAX_PARTIAL_SETS {
                        self.partial.pop_first();
                    }
                    return Ok(None);
                }
                let set = self.partial.remove(&key).unwrap_or_default();
                let (parts, hashes): (Vec<Part>, Vec<SwarmHash>) = set.into_values().unzip();
                self.done.push(key);
                if self.done.len() > MAX_DONE_SETS {
                    self.done.remove(0);
                }
                let whole = crypt::assemble(&parts)?;
                self.check_signature(&whole)?;
                Ok(Some((ConfigMessage::parse(&whole)?, hashes)))
            }
        }
    }

    /// Merges retrieved messages (`(swarm hash, stored bytes)`) into this config (§2.7). Bad
    /// messages are skipped and reported; the result is the same whatever the order and
    /// however often a message is given. After a merge of several messages the config needs a
    /// push, which also deletes every message the merge made obsolete.
    pub fn merge(&mut self, messages: &[(SwarmHash, &[u8])]) -> MergeReport {
        let mut report = MergeReport::default();
        let mut inputs: Vec<Parsed> = Vec::new();
        let mut sources: Vec<Vec<SwarmHash>> = Vec::new();
        let own = self.msg.seqno > 0 || self.phase == Phase::Dirty;
        if own {
            inputs.push(self.finalised());
            sources.push(match self.phase {
                Phase::Clean => self.current.clone(),
                _ => Vec::new(),
            });
        }
        for (hash, bytes) in messages {
            match self.open(hash, bytes) {
                Ok(Some((p, hashes))) => {
                    report.accepted.extend(hashes.iter().cloned());
                    inputs.push(p);
                    sources.push(hashes);
                }
                Ok(None) => {}
                Err(e) => report.skipped.push((hash.clone(), e)),
            }
        }
        if inputs.len() == usize::from(own) {
            return report;
        }
        let before = self.msg.data.clone();
        match merge_as(&inputs, self.can_sign()) {
            None => {}
            Some(MergeOutcome::Adopt(i)) => {
                let id: MessageId = inputs[i].id();
                let mut here: Vec<SwarmHash> = Vec::new();
                for (p, s) in inputs.iter().zip(&sources) {
                    if p.id() == id {
                        here.extend(s.iter().cloned());
                    } else {
                        self.obsolete.extend(s.iter().cloned());
                    }
                }
                let is_own = own && inputs[0].id() == id;
                if is_own && self.phase == Phase::Dirty {
                    // Our local edits win; nothing stored matches them yet.
                } else {
                    if !is_own && self.phase == Phase::Clean {
                        self.obsolete.extend(self.current.drain(..));
                    }
                    let adopted = inputs.swap_remove(i);
                    self.msg = adopted.message;
                    self.hash = adopted.hash;
                    self.orig = None;
                    here.sort();
                    here.dedup();
                    if !here.is_empty() || !is_own {
                        self.phase = Phase::Clean;
                        self.current = here;
                    }
                }
            }
            Some(MergeOutcome::Merged(m)) => {
                for s in &sources {
                    self.obsolete.extend(s.iter().cloned());
                }
                self.obsolete.extend(self.current.drain(..));
                self.hash = m.hash();
                self.orig = Some(m.data.clone());
                self.msg = m;
                self.phase = Phase::Dirty;
            }
        }
        for h in &self.current {
            self.obsolete.remove(h);
        }
        report.changed = self.msg.data != before;
        report
    }
}

/// Version of [`ConfigState::dump`]'s format.
const DUMP_VERSION: i64 = 1;

impl ConfigState {
    /// The state to keep on disk between runs (a bencoded dict with a version), secrets
    /// excluded: the key is given again to [`load`](Self::load). Incomplete multi-part sets
    /// are not kept.
    pub fn dump(&self) -> Vec<u8> {
        use std::collections::BTreeMap;

        use crate::bt::Value as B;
        let hashes = |hs: &mut dyn Iterator<Item = &SwarmHash>| {
            B::List(hs.map(|h| B::Bytes(h.0.as_bytes().to_vec())).collect())
        };
        let mut d = BTreeMap::new();
        d.insert(b"$".to_vec(), B::Bytes(self.msg.serialise()));
        d.insert(b"c".to_vec(), hashes(&mut self.current.iter()));
        d.insert(b"h".to_vec(), B::Bytes(self.hash.0.to_vec()));
        if let Some(orig) = &self.orig {
            let mut o = Vec::new();
            crate::data::encode_dict(orig, &mut o);
            d.insert(b"o".to_vec(), B::Bytes(o));
        }
        let phase = match self.phase {
            Phase::Clean => 0,
            Phase::Dirty => 1,
            Phase::Waiting => 2,
        };
        d.insert(b"p".to_vec(), B::Int(phase));
        d.insert(b"v".to_vec(), B::Int(DUMP_VERSION));
        if let Some((s, hs)) = &self.pushed_obsolete {
            let s = i64::try_from(*s).unwrap_or(i64::MAX);
            d.insert(
                b"w".to_vec(),
                B::List(vec![B::Int(s), hashes(&mut hs.iter())]),
            );
        }
        d.insert(b"x".to_vec(), hashes(&mut self.obsolete.iter()));
        B::Dict(d).encode()
    }

    /// A state saved by [`dump`](Self::dump), with its key and domain.
    pub fn load(
        key_base: &[u8; 32],
        domain: &'static str,
        dump: &[u8],
    ) -> Result<ConfigState, ConfigError> {
        use crate::bt::Value as B;
        let bad = ConfigError::Message;
        if dump.len() > 2 * crypt::MAX_TOTAL {
            return Err(ConfigError::TooLarge {
                what: "config dump",
                len: dump.len(),
                limit: 2 * crypt::MAX_TOTAL,
            });
        }
        let B::Dict(d) = crate::bt::decode(dump)? else {
            return Err(bad("dump is not a dict"));
        };
        let get = |k: &[u8]| d.get(k);
        if get(b"v") != Some(&B::Int(DUMP_VERSION)) {
            return Err(bad("unknown dump version"));
        }
        let hashes = |v: Option<&B>| -> Result<Vec<SwarmHash>, ConfigError> {
            let Some(B::List(l)) = v else {
                return Ok(Vec::new());
            };
            l.iter()
                .map(|h| match h {
                    B::Bytes(b) => String::from_utf8(b.clone())
                        .map(SwarmHash)
                        .map_err(|_| bad("dump hash is not text")),
                    _ => Err(bad("dump hash is not a string")),
                })
                .collect()
        };
        let mut state = ConfigState::new(key_base, domain)?;
        let Some(B::Bytes(msg)) = get(b"$") else {
            return Err(bad("dump has no message"));
        };
        state.msg = ConfigMessage::parse(msg)?.message;
        let Some(B::Bytes(h)) = get(b"h") else {
            return Err(bad("dump has no hash"));
        };
        state.hash = ConfigHash(
            h.as_slice()
                .try_into()
                .map_err(|_| bad("dump hash length"))?,
        );
        state.phase = match get(b"p") {
            Some(B::Int(0)) => Phase::Clean,
            Some(B::Int(1)) => Phase::Dirty,
            Some(B::Int(2)) => Phase::Waiting,
            _ => return Err(bad("dump phase")),
        };
        state.orig = match get(b"o") {
            Some(B::Bytes(o)) => match crate::bt::decode(o)? {
                B::Dict(o) => Some(crate::data::dict_from_bt(&o)?),
                _ => return Err(bad("dump original data is not a dict")),
            },
            _ => None,
        };
        if (state.phase == Phase::Dirty) != state.orig.is_some() {
            return Err(bad("dump phase and original data disagree"));
        }
        state.current = hashes(get(b"c"))?;
        state.obsolete = hashes(get(b"x"))?.into_iter().collect();
        state.pushed_obsolete = match get(b"w") {
            Some(B::List(w)) => match w.as_slice() {
                [B::Int(s), hs] => Some((
                    u64::try_from(*s).map_err(|_| bad("dump seqno"))?,
                    hashes(Some(hs))?,
                )),
                _ => return Err(bad("dump pushed entry")),
            },
            _ => None,
        };
        Ok(state)
    }
}
