//! The config message (`groups-config-attachments.md` §2.2–2.8): its bencoded layout, hash,
//! normal update and the merge of several messages.

use std::collections::BTreeMap;
use std::fmt;

use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U32;

use crate::ConfigError;
use crate::bt;
use crate::data::{Dict, dict_from_bt, encode_dict, prune};
use crate::diff::{DiffDict, diff_from_bt, encode_diff, replay};

/// How many seqnos of diffs a message carries (`config_lags()`, §2.6): lagged entries have a
/// seqno in `(seqno − LAG, seqno)`, and a message `LAG` or more behind the newest is redundant.
pub const LAG: u64 = 5;

/// Largest seqno accepted, so that `max + 1` of a merge still fits bencode's signed integer.
const MAX_SEQNO: u64 = (i64::MAX - 1) as u64;

/// BLAKE2b-32 (unkeyed) of a serialised plaintext message (§2.5). Ordered as bytes, which is
/// the tie-break of messages with equal seqnos.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigHash(pub [u8; 32]);

impl ConfigHash {
    /// The hash of `serialised` message bytes.
    pub fn of(serialised: &[u8]) -> ConfigHash {
        ConfigHash(Blake2b::<U32>::digest(serialised).into())
    }
}

impl fmt::Debug for ConfigHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A content hash, not an identity: safe to print; 8 bytes are enough to tell apart.
        write!(f, "ConfigHash(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A lagged entry's identity: the `(seqno, hash)` of the message whose diff it is.
pub type MessageId = (u64, ConfigHash);

/// One config message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMessage {
    /// `#`: the sequence number.
    pub seqno: u64,
    /// `&`: the whole data.
    pub data: Dict,
    /// `<`: diffs of earlier messages, by `(seqno, hash)`. Only those with a seqno in
    /// `(seqno − LAG, seqno)` are serialised.
    pub lagged: BTreeMap<MessageId, DiffDict>,
    /// `=`: what this message changed from the one it was built on.
    pub diff: DiffDict,
    /// Unknown top-level keys, kept and re-emitted in their sorted place (§2.2).
    pub extra: BTreeMap<Vec<u8>, bt::Value>,
    /// `~`: the Ed25519 signature of group configs (§2.8).
    pub signature: Option<[u8; 64]>,
}

/// A message parsed from bytes, with the hash of exactly those bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The message.
    pub message: ConfigMessage,
    /// BLAKE2b-32 of the bytes it was parsed from.
    pub hash: ConfigHash,
}

impl Parsed {
    /// The `(seqno, hash)` that ranks this message.
    pub fn id(&self) -> MessageId {
        (self.message.seqno, self.hash)
    }
}

impl Default for ConfigMessage {
    fn default() -> Self {
        ConfigMessage::empty()
    }
}

impl ConfigMessage {
    /// The empty seqno-0 message every config starts from (`d1:#i0e1:&de1:<le1:=dee`).
    pub fn empty() -> ConfigMessage {
        ConfigMessage {
            seqno: 0,
            data: Dict::new(),
            lagged: BTreeMap::new(),
            diff: DiffDict::new(),
            extra: BTreeMap::new(),
            signature: None,
        }
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut entries = Vec::with_capacity(5 + self.extra.len());
        let mut v = Vec::new();
        bt::put_int(&mut v, i64::try_from(self.seqno).unwrap_or(i64::MAX));
        entries.push((b"#".to_vec(), v));
        let mut v = Vec::new();
        encode_dict(&self.data, &mut v);
        entries.push((b"&".to_vec(), v));
        let mut v = vec![b'l'];
        for ((s, h), d) in &self.lagged {
            if *s >= self.seqno || s.saturating_add(LAG) <= self.seqno {
                continue;
            }
            v.push(b'l');
            bt::put_int(&mut v, i64::try_from(*s).unwrap_or(i64::MAX));
            bt::put_bytes(&mut v, &h.0);
            encode_diff(d, &mut v);
            v.push(b'e');
        }
        v.push(b'e');
        entries.push((b"<".to_vec(), v));
        let mut v = Vec::new();
        encode_diff(&self.diff, &mut v);
        entries.push((b"=".to_vec(), v));
        for (k, val) in &self.extra {
            entries.push((k.clone(), val.encode()));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    fn serialise_with(&self, signature: Option<&[u8; 64]>, close: bool) -> Vec<u8> {
        let mut out = vec![b'd'];
        for (k, v) in self.entries() {
            bt::put_bytes(&mut out, &k);
            out.extend_from_slice(&v);
        }
        if let Some(sig) = signature {
            bt::put_bytes(&mut out, b"~");
            bt::put_bytes(&mut out, sig);
        }
        if close {
            out.push(b'e');
        }
        out
    }

    /// The serialised plaintext message (§2.2), signature included if present.
    pub fn serialise(&self) -> Vec<u8> {
        self.serialise_with(self.signature.as_ref(), true)
    }

    /// The bytes a group config's signature covers (§2.8): the message without its `~` pair
    /// and without the final `e`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        self.serialise_with(None, false)
    }

    /// The signed part and the signature of a received group-config message (§2.8): the
    /// bytes from `d` through the end of the `=` value (or of the last key before `~`) and the
    /// 64-byte `~` value, taken from the bytes as received. `None` when the message does not
    /// end with a `~` signature.
    pub fn signed_part(raw: &[u8]) -> Option<(&[u8], [u8; 64])> {
        // `1:~64:` + 64 bytes + the dict's closing `e`: 71 bytes after the signed part.
        let cut = raw.len().checked_sub(71)?;
        let (signed, tail) = raw.split_at(cut);
        let sig = tail.strip_prefix(b"1:~64:")?.strip_suffix(b"e")?;
        Some((signed, sig.try_into().ok()?))
    }

    /// The hash of the serialised message (§2.5).
    pub fn hash(&self) -> ConfigHash {
        ConfigHash::of(&self.serialise())
    }

    /// This message and its hash, as if parsed from its own serialisation.
    pub fn into_parsed(self) -> Parsed {
        let hash = self.hash();
        Parsed {
            message: self,
            hash,
        }
    }

    /// The normal update (§2.6): seqno + 1, a copy of the data, the lagged diffs still in
    /// range plus this message's own diff under `hash` (this message's hash), an empty diff.
    pub fn increment(&self, hash: ConfigHash) -> ConfigMessage {
        let seqno = self.seqno.saturating_add(1).min(MAX_SEQNO);
        let mut lagged: BTreeMap<MessageId, DiffDict> = self
            .lagged
            .iter()
            .filter(|((s, _), _)| s.saturating_add(LAG) > seqno && *s < seqno)
            .map(|(k, d)| (*k, d.clone()))
            .collect();
        lagged.insert((self.seqno, hash), self.diff.clone());
        ConfigMessage {
            seqno,
            data: self.data.clone(),
            lagged,
            diff: DiffDict::new(),
            extra: self.extra.clone(),
            signature: None,
        }
    }

    /// Parses a plaintext message (after decryption, padding removal and decompression).
    pub fn parse(bytes: &[u8]) -> Result<Parsed, ConfigError> {
        let bt::Value::Dict(top) = bt::decode(bytes)? else {
            return Err(ConfigError::Message("not a dict"));
        };
        let mut keys = top.keys();
        match keys.next().map(Vec::as_slice) {
            Some(b"#") => {}
            Some(k) if k < b"#".as_slice() => {
                return Err(ConfigError::Message("key before `#`: a future format"));
            }
            _ => return Err(ConfigError::Message("no `#` seqno")),
        }
        let mut msg = ConfigMessage::empty();
        for (k, v) in &top {
            match (k.as_slice(), v) {
                (b"#", bt::Value::Int(n)) => {
                    msg.seqno = u64::try_from(*n)
                        .ok()
                        .filter(|&s| s <= MAX_SEQNO)
                        .ok_or(ConfigError::Message("seqno out of range"))?;
                }
                (b"&", bt::Value::Dict(d)) => msg.data = dict_from_bt(d)?,
                (b"<", bt::Value::List(l)) => msg.lagged = lagged_from_bt(l)?,
                (b"=", bt::Value::Dict(d)) => msg.diff = diff_from_bt(d)?,
                (b"~", bt::Value::Bytes(b)) => {
                    let sig: [u8; 64] = b
                        .as_slice()
                        .try_into()
                        .map_err(|_| ConfigError::Message("signature is not 64 bytes"))?;
                    msg.signature = Some(sig);
                }
                (b"#" | b"&" | b"<" | b"=" | b"~", _) => {
                    return Err(ConfigError::Message(
                        "known key with a value of the wrong type",
                    ));
                }
                (k, _) if k > b"~".as_slice() => {
                    return Err(ConfigError::Message("key after the `~` signature"));
                }
                (k, v) => {
                    msg.extra.insert(k.to_vec(), v.clone());
                }
            }
        }
        if !top.contains_key(b"&".as_slice()) {
            return Err(ConfigError::Message("no `&` data"));
        }
        // Entries the writer should never have serialised (at or after its own seqno) would let
        // a message declare itself redundant; drop them.
        let seqno = msg.seqno;
        msg.lagged.retain(|(s, _), _| *s < seqno);
        Ok(Parsed {
            message: msg,
            hash: ConfigHash::of(bytes),
        })
    }
}

fn lagged_from_bt(items: &[bt::Value]) -> Result<BTreeMap<MessageId, DiffDict>, ConfigError> {
    let mut out = BTreeMap::new();
    for item in items {
        let bt::Value::List(entry) = item else {
            return Err(ConfigError::Message("lagged entry is not a list"));
        };
        let [bt::Value::Int(s), bt::Value::Bytes(h), bt::Value::Dict(d)] = entry.as_slice() else {
            return Err(ConfigError::Message(
                "lagged entry is not [seqno, hash, diff]",
            ));
        };
        let s = u64::try_from(*s).map_err(|_| ConfigError::Message("negative lagged seqno"))?;
        let h: [u8; 32] = h
            .as_slice()
            .try_into()
            .map_err(|_| ConfigError::Message("lagged hash is not 32 bytes"))?;
        out.insert((s, ConfigHash(h)), diff_from_bt(d)?);
    }
    Ok(out)
}

/// What [`merge`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Exactly one input was not redundant: adopt it unchanged (its index in the inputs).
    Adopt(usize),
    /// Several were: this new message (seqno `max + 1`, empty `=`) must be pushed.
    Merged(ConfigMessage),
}

/// The merge of several valid messages (§2.7 steps 3–7). `None` for no input. Every client
/// computes the same output from the same set of inputs, in any order.
pub fn merge(inputs: &[Parsed]) -> Option<MergeOutcome> {
    merge_as(inputs, true)
}

/// [`merge`] by a client that may not be able to produce a merge: one that must verify
/// signatures but cannot sign (`can_merge == false`, a non-admin group member) adopts the
/// highest non-redundant message instead (§2.7 step 6).
pub fn merge_as(inputs: &[Parsed], can_merge: bool) -> Option<MergeOutcome> {
    let max = inputs.iter().map(|p| p.message.seqno).max()?;
    let listed: std::collections::BTreeSet<MessageId> = inputs
        .iter()
        .flat_map(|p| p.message.lagged.keys().copied())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut live: Vec<usize> = Vec::new();
    for (i, p) in inputs.iter().enumerate() {
        let id = p.id();
        let fresh = seen.insert(id);
        if fresh && !listed.contains(&id) && p.message.seqno.saturating_add(LAG) > max {
            live.push(i);
        }
    }
    // Sort descending by (seqno, hash); the first is the base of a merge.
    live.sort_by_key(|&i| std::cmp::Reverse(inputs[i].id()));
    match live.as_slice() {
        [] => {
            // Only possible with malformed inputs listing each other: adopt the highest.
            let best = (0..inputs.len()).max_by_key(|&i| inputs[i].id())?;
            Some(MergeOutcome::Adopt(best))
        }
        [one] => Some(MergeOutcome::Adopt(*one)),
        [top, ..] if !can_merge => Some(MergeOutcome::Adopt(*top)),
        [top, ..] => {
            let seqno = max.saturating_add(1).min(MAX_SEQNO);
            let mut replays: BTreeMap<MessageId, (&DiffDict, &Dict)> = BTreeMap::new();
            for &i in &live {
                let m = &inputs[i].message;
                replays.entry(inputs[i].id()).or_insert((&m.diff, &m.data));
                for (id, d) in &m.lagged {
                    replays.entry(*id).or_insert((d, &m.data));
                }
            }
            let mut data = inputs[*top].message.data.clone();
            for (diff, source) in replays.values() {
                replay(&mut data, diff, source);
            }
            prune(&mut data);
            let lagged = replays
                .iter()
                .filter(|((s, _), _)| s.saturating_add(LAG) > seqno && *s < seqno)
                .map(|(id, (d, _))| (*id, (*d).clone()))
                .collect();
            Some(MergeOutcome::Merged(ConfigMessage {
                seqno,
                data,
                lagged,
                diff: DiffDict::new(),
                extra: inputs[*top].message.extra.clone(),
                signature: None,
            }))
        }
    }
}
