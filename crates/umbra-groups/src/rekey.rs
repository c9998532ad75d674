//! Building keys messages, as an admin (`groups-config-attachments.md` §1.2–1.4).
//!
//! ```text
//! h1    = BLAKE2b-56( m_0 ‖ … ‖ m_n ‖ dec(G) ‖ S , key = "SessionGroupKeyGen" )
//! key   = h1[0..32]        nonce '#' = h1[32..56]
//! K     = XChaCha20-Poly1305(key, nonce, admin key)
//! k     = one copy per member (ascending Session ID), then junk to a multiple of 75
//! ~     = Ed25519(group) over everything before "1:~"
//! ```
//!
//! Everything is deterministic: two admins doing the same rekey store identical bytes, which
//! the swarm stores once.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use umbra_crypto::SessionId;
use umbra_crypto::hash::{blake2b_24_keyed, blake2b_32_keyed, blake2b_56_keyed};
use zeroize::Zeroizing;

use crate::bt::{put_bytes, put_int};
use crate::multi::{self, DOMAIN_MEMBER_KEY};
use crate::{GroupAdmin, GroupError, GroupKey};

/// BLAKE2b key of the new group key, the keys-message nonce and the supplemental nonce.
const KEY_GEN: &[u8] = b"SessionGroupKeyGen";
/// BLAKE2b key of the junk seed.
const JUNK_MEMBERS: &[u8] = b"SessionGroupJunkMembers";
/// libsodium's fixed nonce of `randombytes_buf_deterministic`.
const SODIUM_DRG_NONCE: &[u8; 12] = b"LibsodiumDRG";

/// The `k` list is padded with junk to a multiple of this many entries, so its length shows
/// the group size only to within 75.
pub const COPIES_BLOCK: usize = 75;
/// Bytes of one member copy (or junk entry) of a group key.
pub const COPY_LEN: usize = 32 + multi::TAG_LEN;

/// Values of one rekey before encryption (public for the derivation vectors).
pub struct RekeyValues {
    /// `h1`, the 56-byte hash both values come from.
    pub h1: Zeroizing<[u8; 56]>,
}

impl RekeyValues {
    /// `h1` for a rekey to `generation` with these members (every Members entry, admins
    /// included).
    pub fn derive(admin: &GroupAdmin, members: &[SessionId], generation: u64) -> RekeyValues {
        let mut ids: Vec<String> = members.iter().map(SessionId::to_hex).collect();
        ids.sort();
        ids.dedup();
        let gen_dec = generation.to_string();
        let s = admin.key_seed();
        let mut parts: Vec<&[u8]> = ids.iter().map(String::as_bytes).collect();
        parts.push(gen_dec.as_bytes());
        parts.push(&s[..]);
        RekeyValues {
            h1: Zeroizing::new(blake2b_56_keyed(KEY_GEN, &parts)),
        }
    }

    /// The new group key, `h1[0..32]`.
    pub fn key(&self) -> [u8; 32] {
        let mut k = [0u8; 32];
        k.copy_from_slice(&self.h1[..32]);
        k
    }

    /// The keys-message nonce, `h1[32..56]`.
    pub fn nonce(&self) -> [u8; 24] {
        let mut n = [0u8; 24];
        n.copy_from_slice(&self.h1[32..]);
        n
    }

    /// The seed of the junk entries.
    pub fn junk_seed(&self, admin: &GroupAdmin) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake2b_32_keyed(
            JUNK_MEMBERS,
            &[&self.h1[..], &admin.secret_key64()[..]],
        ))
    }
}

/// libsodium's `randombytes_buf_deterministic(len, seed)`: the ChaCha20 (IETF) keystream of
/// `seed` under the nonce `"LibsodiumDRG"`, from block 0.
pub fn deterministic_bytes(seed: &[u8; 32], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut c = ChaCha20::new(seed.into(), SODIUM_DRG_NONCE.into());
    c.apply_keystream(&mut out);
    out
}

/// A full keys message just built, with the key it carries.
#[derive(Debug)]
pub struct Rekey {
    /// The message to store in namespace 12.
    pub message: Vec<u8>,
    /// The new key (timestamp 0 until the swarm stores the message).
    pub key: GroupKey,
    /// How many entries of `k` are real member copies (the rest is junk).
    pub copies: usize,
}

/// Builds the full keys message of a rekey to `generation` for `members` (every entry of the
/// Members config, admins included, whatever their status; §1.2).
pub fn build_rekey(
    admin: &GroupAdmin,
    members: &[SessionId],
    generation: u64,
) -> Result<Rekey, GroupError> {
    let values = RekeyValues::derive(admin, members, generation);
    let key = values.key();
    let nonce = values.nonce();

    let mut sorted: Vec<&SessionId> = members.iter().collect();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    sorted.dedup_by(|a, b| a.as_bytes() == b.as_bytes());
    let mut copies: Vec<Vec<u8>> = Vec::with_capacity(sorted.len() + COPIES_BLOCK);
    for m in sorted {
        if let Some(ck) = multi::sender_key(DOMAIN_MEMBER_KEY, admin.identity(), &m.x25519()) {
            copies.push(multi::seal(&ck, &nonce, &key)?);
        }
    }
    let real = copies.len();
    let junk = (COPIES_BLOCK - real % COPIES_BLOCK) % COPIES_BLOCK;
    if junk > 0 {
        let bytes = deterministic_bytes(&values.junk_seed(admin), junk * COPY_LEN);
        copies.extend(bytes.chunks_exact(COPY_LEN).map(<[u8]>::to_vec));
    }
    let admin_copy = multi::seal(&admin.admin_key(), &nonce, &key)?;

    let gen_i64 = i64::try_from(generation)
        .map_err(|_| GroupError::KeysMessage("generation out of range"))?;
    let mut out = Vec::with_capacity(170 + 20 + copies.len() * (COPY_LEN + 3));
    out.push(b'd');
    put_bytes(&mut out, b"#");
    put_bytes(&mut out, &nonce);
    put_bytes(&mut out, b"G");
    put_int(&mut out, gen_i64);
    put_bytes(&mut out, b"K");
    put_bytes(&mut out, &admin_copy);
    put_bytes(&mut out, b"k");
    out.push(b'l');
    for c in &copies {
        put_bytes(&mut out, c);
    }
    out.push(b'e');
    sign_and_close(admin, &mut out);
    Ok(Rekey {
        message: out,
        key: GroupKey::new(generation, 0, key),
        copies: real,
    })
}

/// Appends `1:~64:<signature of everything so far>e`.
fn sign_and_close(admin: &GroupAdmin, out: &mut Vec<u8>) {
    let sig = admin.sign(out);
    put_bytes(out, b"~");
    put_bytes(out, sig.as_bytes());
    out.push(b'e');
}

/// The plaintext `L` of a supplemental message: `[{g, k, t}…]` in ascending
/// (generation, timestamp) order.
pub(crate) fn key_list(keys: &[GroupKey]) -> Result<Zeroizing<Vec<u8>>, GroupError> {
    let mut sorted: Vec<&GroupKey> = keys.iter().collect();
    sorted.sort();
    let mut out = Zeroizing::new(Vec::with_capacity(keys.len() * 64 + 2));
    out.push(b'l');
    for k in sorted {
        let g = i64::try_from(k.generation)
            .map_err(|_| GroupError::KeysMessage("generation out of range"))?;
        out.push(b'd');
        put_bytes(&mut out, b"g");
        put_int(&mut out, g);
        put_bytes(&mut out, b"k");
        put_bytes(&mut out, k.key());
        put_bytes(&mut out, b"t");
        put_int(&mut out, k.timestamp_ms);
        out.push(b'e');
    }
    out.push(b'e');
    Ok(out)
}

/// Builds a supplemental keys message giving `keys` (the keys the admin holds) to
/// `recipients` (newly added members "with history", §1.4). The nonce hashes the recipients
/// in the order given, as libsession does.
pub fn build_supplemental(
    admin: &GroupAdmin,
    recipients: &[SessionId],
    keys: &[GroupKey],
) -> Result<Vec<u8>, GroupError> {
    let generation = keys
        .iter()
        .map(|k| k.generation)
        .max()
        .ok_or(GroupError::KeysMessage("a supplemental message needs keys"))?;
    let gen_i64 = i64::try_from(generation)
        .map_err(|_| GroupError::KeysMessage("generation out of range"))?;
    let list = key_list(keys)?;
    let ids: Vec<String> = recipients.iter().map(SessionId::to_hex).collect();
    let s = admin.key_seed();
    let mut parts: Vec<&[u8]> = ids.iter().map(String::as_bytes).collect();
    parts.push(&list);
    parts.push(&s[..]);
    let nonce = blake2b_24_keyed(KEY_GEN, &parts);

    let mut out = Vec::new();
    out.push(b'd');
    put_bytes(&mut out, b"#");
    put_bytes(&mut out, &nonce);
    put_bytes(&mut out, b"+");
    out.push(b'l');
    for r in recipients {
        if let Some(ck) = multi::sender_key(DOMAIN_MEMBER_KEY, admin.identity(), &r.x25519()) {
            put_bytes(&mut out, &multi::seal(&ck, &nonce, &list)?);
        }
    }
    out.push(b'e');
    put_bytes(&mut out, b"G");
    put_int(&mut out, gen_i64);
    sign_and_close(admin, &mut out);
    Ok(out)
}
