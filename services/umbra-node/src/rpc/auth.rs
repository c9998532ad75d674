//! Request authentication (`storage-rpc.md` §3, §9): which key must have signed, subaccount
//! tokens, and the loading of the auth parameters with their exact parse errors.

use std::collections::HashSet;
use std::sync::Mutex;
use umbra_crypto::{Ed25519PublicKey, Signature};

use umbra_crypto::keys::ed25519_pk_to_x25519;
use umbra_crypto::sign::verify;
use umbra_store::{AccountId, Store, StoreError, SubaccountToken};

use super::RpcError;
use super::params::{PResult, load_pk, parse_sig_b64, parse_token, require};

/// Subaccount permission: read.
pub(crate) const PERM_READ: u8 = 0x01;
/// Subaccount permission: write.
pub(crate) const PERM_WRITE: u8 = 0x02;
/// Subaccount permission: delete.
pub(crate) const PERM_DELETE: u8 = 0x04;
/// Subaccount flag: valid for any account prefix.
pub(crate) const PERM_ANY_PREFIX: u8 = 0x08;

/// A subaccount token and the account's signature over it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subaccount {
    pub(crate) token: [u8; 36],
    pub(crate) sig: Signature,
}

impl Subaccount {
    pub(crate) fn flags(&self) -> u8 {
        self.token[1]
    }
}

/// The authentication parameters of a request.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub(crate) pubkey_ed25519: Option<Ed25519PublicKey>,
    pub(crate) signature: Signature,
    pub(crate) subaccount: Option<Subaccount>,
}

/// `load_pk_signature`: the account id, a required signature, and the optional
/// `pubkey_ed25519` (only for `05` accounts).
pub(crate) fn load_pk_signature(
    pk: Option<&str>,
    pk_ed: Option<&str>,
    sig: Option<&str>,
) -> PResult<(AccountId, Auth)> {
    let owner = load_pk(pk)?;
    let sig = require("signature", sig)?;
    let mut pubkey_ed25519 = None;
    if let Some(ed) = pk_ed {
        if owner.prefix() != 0x05 {
            return Err(RpcError::invalid(
                "pubkey_ed25519 is only permitted for 05[...] pubkeys".into(),
            ));
        }
        if ed.len() == 64 {
            let bytes = hex::decode(ed).map_err(|_| {
                RpcError::invalid("invalid pubkey_ed25519: value is not hex".into())
            })?;
            pubkey_ed25519 = Ed25519PublicKey::from_slice(&bytes).ok();
        } else if ed.len() == 32 {
            pubkey_ed25519 = Ed25519PublicKey::from_slice(ed.as_bytes()).ok();
        } else {
            return Err(RpcError::invalid(
                "Invalid pubkey_ed25519: expected 64 hex char or 32 byte pubkey".into(),
            ));
        }
    }
    let signature = parse_sig_b64(sig).ok_or_else(|| {
        RpcError::invalid("invalid signature: expected base64 encoded Ed25519 signature".into())
    })?;
    Ok((
        owner,
        Auth {
            pubkey_ed25519,
            signature,
            subaccount: None,
        },
    ))
}

/// `load_subaccount`: an optional token (empty = none) that then requires its signature.
pub(crate) fn load_subaccount(
    subacc: Option<&str>,
    subacc_sig: Option<&str>,
) -> PResult<Option<Subaccount>> {
    let Some(sa) = subacc.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let Some(sa_sig) = subacc_sig else {
        return Err(RpcError::invalid(
            "invalid subaccount: subaccount_sig is required when using subaccount".into(),
        ));
    };
    let token = parse_token(sa).ok_or_else(|| {
        RpcError::invalid(
            "invalid subaccount: expected base64 or hex-encoded subaccount token".into(),
        )
    })?;
    let sig = parse_sig_b64(sa_sig).ok_or_else(|| {
        RpcError::invalid(
            "invalid subaccount signature: expected base64 encoded Ed25519 signature".into(),
        )
    })?;
    Ok(Some(Subaccount { token, sig }))
}

/// What to check beyond the signature itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Requirement {
    /// Subaccount flags required (ignored without a subaccount).
    pub(crate) perms: u8,
    /// A revoked subaccount is still accepted (retrieve from an unrevocable namespace).
    pub(crate) allow_revoked: bool,
}

impl Requirement {
    pub(crate) const fn perms(perms: u8) -> Requirement {
        Requirement {
            perms,
            allow_revoked: false,
        }
    }
}

/// Default capacity of a [`KeyMatchCache`]: at most this many (account, Ed25519 key) pairs,
/// ≈ 8.3 MiB of table when full (131 072 buckets of 65 + 1 bytes).
pub(crate) const KEY_MATCH_CACHE_CAPACITY: usize = 65_536;

/// (05 account id, `pubkey_ed25519`) pairs already seen to match, i.e. the Ed25519 key converts
/// to the account's X25519 key. Saves the conversion (a point decompression and a field
/// inversion, ≈ 40 µs) on every later request of the same account.
///
/// Only successful matches are inserted and a lookup needs both values to be equal, so the
/// cache can never make a different key pass, and a failing request (which is recomputed every
/// time) cannot fill it. Bounded: when it holds `capacity` pairs it is emptied before the next
/// insert (its table keeps its size, so memory stays at the high-water mark).
#[derive(Debug)]
pub(crate) struct KeyMatchCache {
    pairs: Mutex<HashSet<(AccountId, Ed25519PublicKey)>>,
    capacity: usize,
}

impl Default for KeyMatchCache {
    fn default() -> KeyMatchCache {
        KeyMatchCache::with_capacity(KEY_MATCH_CACHE_CAPACITY)
    }
}

impl KeyMatchCache {
    /// An empty cache holding at most `capacity` pairs (at least 1).
    pub(crate) fn with_capacity(capacity: usize) -> KeyMatchCache {
        KeyMatchCache {
            pairs: Mutex::new(HashSet::new()),
            capacity: capacity.max(1),
        }
    }

    /// Whether this exact pair was seen to match. A poisoned lock counts as a miss.
    fn contains(&self, owner: &AccountId, ed: &Ed25519PublicKey) -> bool {
        self.pairs
            .lock()
            .map(|p| p.contains(&(*owner, *ed)))
            .unwrap_or(false)
    }

    /// Records a pair that was seen to match, emptying the cache first when it is full.
    fn insert(&self, owner: &AccountId, ed: &Ed25519PublicKey) {
        if let Ok(mut p) = self.pairs.lock() {
            if p.len() >= self.capacity {
                p.clear();
            }
            p.insert((*owner, *ed));
        }
    }

    /// Pairs held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.pairs.lock().map(|p| p.len()).unwrap_or(0)
    }
}

/// The key that must have signed for `owner` (before any subaccount): for a `05` account with
/// `pubkey_ed25519`, that key if it converts to the account's X25519 key (`None` otherwise);
/// for any other account (or a `05` without it) the account's own 32 bytes.
fn account_key(
    owner: &AccountId,
    pubkey_ed25519: Option<Ed25519PublicKey>,
    matches: &KeyMatchCache,
) -> Option<Ed25519PublicKey> {
    match (owner.prefix(), pubkey_ed25519) {
        (0x05, Some(ed)) => {
            if matches.contains(owner, &ed) {
                return Some(ed);
            }
            let x = ed25519_pk_to_x25519(&ed).ok()?;
            if *x.as_bytes() != owner.key_bytes() {
                return None;
            }
            matches.insert(owner, &ed);
            Some(ed)
        }
        _ => Some(Ed25519PublicKey::from_bytes(owner.key_bytes())),
    }
}

/// Verifies `auth` over `msg` for `owner` (`storage-rpc.md` §3.1). `Ok(false)` means the
/// request is not authentic; `Err` only for a database failure while checking revocations.
/// `matches` remembers which `pubkey_ed25519` keys were already seen to match their account.
pub(crate) async fn verify_request(
    store: &Store,
    matches: &KeyMatchCache,
    owner: &AccountId,
    auth: &Auth,
    req: Requirement,
    msg: &[u8],
) -> Result<bool, StoreError> {
    let Some(mut key) = account_key(owner, auth.pubkey_ed25519, matches) else {
        return Ok(false);
    };
    if let Some(sub) = &auth.subaccount {
        let prefix_ok = sub.token[0] == owner.prefix() || sub.flags() & PERM_ANY_PREFIX != 0;
        if !prefix_ok || sub.flags() & req.perms != req.perms {
            return Ok(false);
        }
        if verify(&key, &sub.token, &sub.sig).is_err() {
            return Ok(false);
        }
        if !req.allow_revoked {
            let store = store.clone();
            let o = *owner;
            let token = SubaccountToken(sub.token);
            let revoked =
                tokio::task::spawn_blocking(move || store.is_subaccount_revoked(&o, &token))
                    .await
                    .map_err(|_| StoreError::WriterGone {
                        op: "is_subaccount_revoked",
                    })??;
            if revoked {
                return Ok(false);
            }
        }
        let mut sub_key = [0u8; 32];
        sub_key.copy_from_slice(&sub.token[4..36]);
        key = Ed25519PublicKey::from_bytes(sub_key);
    }
    Ok(verify(&key, msg, &auth.signature).is_ok())
}

#[cfg(test)]
mod tests {
    use umbra_crypto::Identity;

    use super::*;

    fn account(n: u8) -> (AccountId, Ed25519PublicKey) {
        let id = Identity::from_seed(&[n; 32]);
        (AccountId::from(id.session_id()), id.ed25519_public())
    }

    #[test]
    fn a_cached_pair_never_lets_another_key_pass() {
        let cache = KeyMatchCache::default();
        let (owner, ed) = account(1);
        let (other_owner, other_ed) = account(2);
        assert_eq!(owner.prefix(), 0x05);

        assert_eq!(account_key(&owner, Some(ed), &cache), Some(ed));
        assert_eq!(cache.len(), 1);
        // From the cache now: same answer.
        assert_eq!(account_key(&owner, Some(ed), &cache), Some(ed));

        // A different (valid) Ed25519 key for the cached account is still refused ...
        assert_eq!(account_key(&owner, Some(other_ed), &cache), None);
        // ... and so is the cached key for another account.
        assert_eq!(account_key(&other_owner, Some(ed), &cache), None);
        // A key that is not a curve point at all (y = 2 is not on the curve).
        let mut bad = [0u8; 32];
        bad[0] = 2;
        let bad = Ed25519PublicKey::from_bytes(bad);
        assert!(ed25519_pk_to_x25519(&bad).is_err());
        assert_eq!(account_key(&owner, Some(bad), &cache), None);
        // Failures are not remembered.
        assert_eq!(cache.len(), 1);
        assert_eq!(account_key(&owner, Some(other_ed), &cache), None);

        // The other account still authenticates with its own key.
        assert_eq!(
            account_key(&other_owner, Some(other_ed), &cache),
            Some(other_ed)
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn an_account_without_pubkey_ed25519_uses_its_own_key() {
        let cache = KeyMatchCache::default();
        let (owner, _) = account(3);
        let own = Ed25519PublicKey::from_bytes(owner.key_bytes());
        assert_eq!(account_key(&owner, None, &cache), Some(own));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let cache = KeyMatchCache::with_capacity(4);
        for n in 0..20u8 {
            let (owner, ed) = account(n);
            assert_eq!(account_key(&owner, Some(ed), &cache), Some(ed));
            assert!(cache.len() <= 4, "{} pairs after {n}", cache.len());
            // Just inserted, so a repeat is a hit and changes nothing.
            assert!(cache.contains(&owner, &ed));
        }
        assert!(cache.len() >= 1);
        // A pair emptied out of the cache is recomputed and still matches.
        let (owner, ed) = account(0);
        assert!(!cache.contains(&owner, &ed));
        assert_eq!(account_key(&owner, Some(ed), &cache), Some(ed));
    }
}
