//! Request authentication (`storage-rpc.md` §3, §9): which key must have signed, subaccount
//! tokens, and the loading of the auth parameters with their exact parse errors.

use umbra_crypto::keys::ed25519_pk_to_x25519;
use umbra_crypto::sign::verify;
use umbra_store::{Owner, Store, StoreError, SubaccountToken};

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
    pub(crate) sig: [u8; 64],
}

impl Subaccount {
    pub(crate) fn flags(&self) -> u8 {
        self.token[1]
    }
}

/// The authentication parameters of a request.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub(crate) pubkey_ed25519: Option<[u8; 32]>,
    pub(crate) signature: [u8; 64],
    pub(crate) subaccount: Option<Subaccount>,
}

/// `load_pk_signature`: the account id, a required signature, and the optional
/// `pubkey_ed25519` (only for `05` accounts).
pub(crate) fn load_pk_signature(
    pk: Option<&str>,
    pk_ed: Option<&str>,
    sig: Option<&str>,
) -> PResult<([u8; 33], Auth)> {
    let owner = load_pk(pk)?;
    let sig = require("signature", sig)?;
    let mut pubkey_ed25519 = None;
    if let Some(ed) = pk_ed {
        if owner[0] != 0x05 {
            return Err(RpcError::invalid(
                "pubkey_ed25519 is only permitted for 05[...] pubkeys".into(),
            ));
        }
        if ed.len() == 64 {
            let bytes = hex::decode(ed).map_err(|_| {
                RpcError::invalid("invalid pubkey_ed25519: value is not hex".into())
            })?;
            pubkey_ed25519 = bytes.try_into().ok();
        } else if ed.len() == 32 {
            pubkey_ed25519 = ed.as_bytes().try_into().ok();
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

/// Verifies `auth` over `msg` for `owner` (`storage-rpc.md` §3.1). `Ok(false)` means the
/// request is not authentic; `Err` only for a database failure while checking revocations.
pub(crate) async fn verify_request(
    store: &Store,
    owner: &[u8; 33],
    auth: &Auth,
    req: Requirement,
    msg: &[u8],
) -> Result<bool, StoreError> {
    let mut key: [u8; 32] = match (owner[0], auth.pubkey_ed25519) {
        (0x05, Some(ed)) => {
            let Ok(x) = ed25519_pk_to_x25519(&ed) else {
                return Ok(false);
            };
            if x[..] != owner[1..] {
                return Ok(false);
            }
            ed
        }
        _ => {
            let mut k = [0u8; 32];
            k.copy_from_slice(&owner[1..]);
            k
        }
    };
    if let Some(sub) = &auth.subaccount {
        let prefix_ok = sub.token[0] == owner[0] || sub.flags() & PERM_ANY_PREFIX != 0;
        if !prefix_ok || sub.flags() & req.perms != req.perms {
            return Ok(false);
        }
        if verify(&key, &sub.token, &sub.sig).is_err() {
            return Ok(false);
        }
        if !req.allow_revoked {
            let store = store.clone();
            let o = Owner::new(*owner);
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
        key.copy_from_slice(&sub.token[4..36]);
    }
    Ok(verify(&key, msg, &auth.signature).is_ok())
}
