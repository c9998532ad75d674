//! Reading keys messages (namespace 12) from the swarm: bounded, never panics, checks the
//! signature before anything is decrypted (`groups-config-attachments.md` §1.5).

use umbra_config::bt::Value;
use umbra_crypto::{Identity, Signature};
use zeroize::Zeroizing;

use crate::bt::{Fields, bytes_of, int_of, list_of};
use crate::multi::{self, DOMAIN_MEMBER_KEY};
use crate::rekey::{COPIES_BLOCK, COPY_LEN};
use crate::{GroupAdmin, GroupError, GroupKey, GroupPublic};

/// Largest keys message read: the storage server's limit on one message. A full rekey of
/// 1 000 members (1 050 entries) is 53 720 bytes.
pub const MAX_KEYS_MESSAGE: usize = 76_800;

/// Smallest supplemental copy: a one-key list (52 bytes) and its tag.
const MIN_SUPPLEMENTAL_COPY: usize = 52 + multi::TAG_LEN;

/// The length of the signature trailer `1:~64:<signature>e`.
const TRAILER: usize = 6 + 64 + 1;

/// A keys message whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysMessage {
    /// A full rekey: a new key for every member.
    Full(FullKeys),
    /// Existing keys for newly added members.
    Supplemental(SupplementalKeys),
}

/// A full keys message (§1.3).
#[derive(Clone, PartialEq, Eq)]
pub struct FullKeys {
    /// The shared nonce `#`.
    pub nonce: [u8; 24],
    /// The generation `G` of the key it carries.
    pub generation: u64,
    /// `K`, the copy for admins.
    pub admin_copy: [u8; COPY_LEN],
    /// `k`, the member copies and junk.
    pub copies: Vec<[u8; COPY_LEN]>,
}

impl std::fmt::Debug for FullKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FullKeys")
            .field("generation", &self.generation)
            .field("copies", &self.copies.len())
            .finish_non_exhaustive()
    }
}

/// A supplemental keys message (§1.4).
#[derive(Clone, PartialEq, Eq)]
pub struct SupplementalKeys {
    /// The shared nonce `#`.
    pub nonce: [u8; 24],
    /// The highest generation `G` among the keys it carries.
    pub generation: u64,
    /// `+`, one encrypted key list per recipient.
    pub copies: Vec<Vec<u8>>,
}

impl std::fmt::Debug for SupplementalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupplementalKeys")
            .field("generation", &self.generation)
            .field("copies", &self.copies.len())
            .finish_non_exhaustive()
    }
}

fn bad(why: &'static str) -> GroupError {
    GroupError::KeysMessage(why)
}

fn generation(fields: &Fields) -> Result<u64, GroupError> {
    let g = int_of(fields, b"G").ok_or(bad("generation `G` missing"))?;
    u64::try_from(g).map_err(|_| bad("generation `G` is negative"))
}

impl KeysMessage {
    /// Parses `bytes` and verifies its signature against `group`. Anything malformed, unsigned
    /// or signed by another key is refused before any decryption.
    pub fn parse(bytes: &[u8], group: &GroupPublic) -> Result<KeysMessage, GroupError> {
        if bytes.len() > MAX_KEYS_MESSAGE {
            return Err(GroupError::TooLarge {
                what: "keys message",
                len: bytes.len(),
                limit: MAX_KEYS_MESSAGE,
            });
        }
        let fields = crate::bt::dict(bytes).map_err(GroupError::Bencode)?;
        // Canonical bencode with `~` the greatest key ends in `1:~64:<sig>e`: everything before
        // that trailer is what was signed.
        match fields.last_key_value() {
            Some((k, Value::Bytes(sig))) if k.as_slice() == b"~" && sig.len() == 64 => {}
            Some((k, _)) if k.as_slice() == b"~" => {
                return Err(bad("signature `~` is not 64 bytes"));
            }
            _ => return Err(bad("signature `~` missing or not the last key")),
        }
        let signed = bytes
            .len()
            .checked_sub(TRAILER)
            .and_then(|n| bytes.get(..n))
            .ok_or(bad("too short"))?;
        let sig = bytes_of(&fields, b"~")
            .and_then(|s| Signature::from_slice(s).ok())
            .ok_or(bad("signature `~` is not 64 bytes"))?;
        if !group.verify(signed, &sig) {
            return Err(GroupError::Signature);
        }

        let nonce: [u8; 24] = bytes_of(&fields, b"#")
            .ok_or(bad("nonce `#` missing"))?
            .try_into()
            .map_err(|_| bad("nonce `#` is not 24 bytes"))?;
        if let Some(plus) = fields.get(b"+".as_slice()) {
            let Value::List(entries) = plus else {
                return Err(bad("supplemental `+` is not a list"));
            };
            let mut copies = Vec::with_capacity(entries.len());
            for e in entries {
                match e {
                    Value::Bytes(b) if b.len() >= MIN_SUPPLEMENTAL_COPY => copies.push(b.clone()),
                    Value::Bytes(_) => return Err(bad("supplemental copy too short")),
                    _ => return Err(bad("supplemental copy is not a byte string")),
                }
            }
            return Ok(KeysMessage::Supplemental(SupplementalKeys {
                nonce,
                generation: generation(&fields)?,
                copies,
            }));
        }

        let generation = generation(&fields)?;
        let admin_copy: [u8; COPY_LEN] = bytes_of(&fields, b"K")
            .ok_or(bad("admin copy `K` missing"))?
            .try_into()
            .map_err(|_| bad("admin copy `K` is not 48 bytes"))?;
        let entries = list_of(&fields, b"k").ok_or(bad("member copies `k` missing"))?;
        if entries.len() % COPIES_BLOCK != 0 {
            return Err(bad("member copies `k` not a multiple of 75"));
        }
        let mut copies = Vec::with_capacity(entries.len());
        for e in entries {
            let Value::Bytes(b) = e else {
                return Err(bad("member copy is not a byte string"));
            };
            copies.push(
                b.as_slice()
                    .try_into()
                    .map_err(|_| bad("member copy is not 48 bytes"))?,
            );
        }
        Ok(KeysMessage::Full(FullKeys {
            nonce,
            generation,
            admin_copy,
            copies,
        }))
    }

    /// The generation `G`.
    pub fn generation(&self) -> u64 {
        match self {
            KeysMessage::Full(f) => f.generation,
            KeysMessage::Supplemental(s) => s.generation,
        }
    }
}

impl FullKeys {
    /// A member looks for its copy: `None` when there is none for it (it is not a member of
    /// this generation). One key agreement, then one AEAD attempt per entry.
    pub fn decrypt_member(
        &self,
        member: &Identity,
        group: &GroupPublic,
    ) -> Result<Option<Zeroizing<[u8; 32]>>, GroupError> {
        let ck = multi::recipient_key(DOMAIN_MEMBER_KEY, member, &group.x25519())?;
        for c in &self.copies {
            if let Ok(k) = multi::open(&ck, &self.nonce, c)
                && let Ok(k) = <[u8; 32]>::try_from(k.as_slice())
            {
                return Ok(Some(Zeroizing::new(k)));
            }
        }
        Ok(None)
    }

    /// An admin opens `K`. Failure means the message was not made with this group's seed,
    /// and the admin rejects the whole message (§1.5).
    pub fn decrypt_admin(&self, admin: &GroupAdmin) -> Result<Zeroizing<[u8; 32]>, GroupError> {
        let k = multi::open(&admin.admin_key(), &self.nonce, &self.admin_copy)
            .map_err(|_| GroupError::AdminCopy)?;
        <[u8; 32]>::try_from(k.as_slice())
            .map(Zeroizing::new)
            .map_err(|_| GroupError::AdminCopy)
    }
}

impl SupplementalKeys {
    /// A member looks for its copy and reads the keys in it: `Ok(None)` when none is for it.
    /// The keys keep the timestamps the admin gave them.
    pub fn decrypt_member(
        &self,
        member: &Identity,
        group: &GroupPublic,
    ) -> Result<Option<Vec<GroupKey>>, GroupError> {
        let ck = multi::recipient_key(DOMAIN_MEMBER_KEY, member, &group.x25519())?;
        for c in &self.copies {
            if let Ok(list) = multi::open(&ck, &self.nonce, c) {
                return read_key_list(&list).map(Some);
            }
        }
        Ok(None)
    }
}

/// Reads the plaintext `L` of a supplemental message.
fn read_key_list(list: &[u8]) -> Result<Vec<GroupKey>, GroupError> {
    let bad = GroupError::Supplemental;
    let Value::List(entries) = umbra_config::bt::decode(list).map_err(|_| bad("not bencode"))?
    else {
        return Err(bad("not a list"));
    };
    let mut keys = Vec::with_capacity(entries.len());
    for e in &entries {
        let Value::Dict(d) = e else {
            return Err(bad("an entry is not a dict"));
        };
        let g = int_of(d, b"g").ok_or(bad("entry without generation `g`"))?;
        let g = u64::try_from(g).map_err(|_| bad("negative generation"))?;
        let k: [u8; 32] = bytes_of(d, b"k")
            .ok_or(bad("entry without key `k`"))?
            .try_into()
            .map_err(|_| bad("key `k` is not 32 bytes"))?;
        let t = int_of(d, b"t").ok_or(bad("entry without timestamp `t`"))?;
        keys.push(GroupKey::new(g, t, k));
    }
    Ok(keys)
}
