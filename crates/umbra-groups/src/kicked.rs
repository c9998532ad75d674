//! The kicked notice of namespace −11 (`groups-config-attachments.md` §1.9, "Remove"): one
//! copy per removed member, readable even with a revoked token, telling the member it was
//! removed at a generation.
//!
//! Per-recipient plaintext: the member's X25519 key (32) ‖ current generation in decimal ASCII,
//! encrypted from the group's X25519 key with domain `SessionGroupKickedMessage`.

use umbra_crypto::{Identity, Random, SessionId, X25519PublicKey};

use crate::multi::{self, DOMAIN_KICKED};
use crate::{GroupAdmin, GroupError, GroupPublic};

/// Builds the notice for `removed` at `generation` (the generation current when they were
/// removed), with a random nonce.
pub fn kicked_notice(
    admin: &GroupAdmin,
    removed: &[SessionId],
    generation: u64,
    rng: &mut dyn Random,
) -> Result<Vec<u8>, GroupError> {
    let mut nonce = [0u8; 24];
    rng.fill(&mut nonce);
    let gen_dec = generation.to_string();
    let plaintexts: Vec<(X25519PublicKey, Vec<u8>)> = removed
        .iter()
        .map(|m| {
            let x = m.x25519();
            (x, [x.as_bytes().as_slice(), gen_dec.as_bytes()].concat())
        })
        .collect();
    let to: Vec<(X25519PublicKey, &[u8])> =
        plaintexts.iter().map(|(x, p)| (*x, p.as_slice())).collect();
    multi::encrypt_simple(DOMAIN_KICKED, admin.identity(), &to, &nonce)
}

/// Reads a notice as `member`: the generation it was removed at, `None` when no copy is for
/// it. A copy whose first 32 bytes are not the member's own key is refused.
pub fn read_kicked_notice(
    member: &Identity,
    group: &GroupPublic,
    notice: &[u8],
) -> Result<Option<u64>, GroupError> {
    let bad = GroupError::KickedNotice;
    let Some(plain) = multi::decrypt_simple(DOMAIN_KICKED, member, &group.x25519(), notice)? else {
        return Ok(None);
    };
    let (key, generation) = plain
        .split_at_checked(32)
        .ok_or(bad("copy shorter than a key"))?;
    if key != member.x25519_public().as_bytes() {
        return Err(bad("copy names another member"));
    }
    let generation = std::str::from_utf8(generation)
        .ok()
        .filter(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|g| g.parse::<u64>().ok())
        .ok_or(bad("generation is not a decimal number"))?;
    Ok(Some(generation))
}
