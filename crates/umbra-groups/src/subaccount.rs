//! Members authenticating to the group swarm with subaccount tokens
//! (`groups-config-attachments.md` §1.8, `storage-rpc.md` §3, §9).
//!
//! ```text
//! k     = reduce( BLAKE2b-64( 05 ‖ X ‖ 03 ‖ C , key = subaccount mask ) )   (admin side)
//! T     = X as an Edwards point with the sign bit cleared;   kT = k·T
//! token = 03 ‖ flags ‖ 00 00 ‖ kT                  (36 bytes; what the swarm revokes)
//! auth  = token[0..4] ‖ k ‖ Ed25519(group, token)  (100 bytes, sent to the member)
//! ```
//!
//! The member signs requests as `kT`: its secret scalar `a = k·(±s)` with `a·B = kT`.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use umbra_crypto::hash::{blake2b_32_keyed, blake2b_64_keyed};
use umbra_crypto::{Ed25519PublicKey, Identity, SessionId, Signature};
use zeroize::Zeroizing;

use crate::identity::GROUP_PREFIX;
use crate::{GroupAdmin, GroupError, GroupPublic};

/// Bytes of a token.
pub const TOKEN_LEN: usize = 36;
/// Bytes of the member authentication data.
pub const MEMBER_AUTH_LEN: usize = 100;

/// Permission bits of a token (byte 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flags(pub u8);

impl Flags {
    /// May retrieve (always set for members).
    pub const READ: u8 = 0x01;
    /// May store.
    pub const WRITE: u8 = 0x02;
    /// May delete (and shorten expiries).
    pub const DELETE: u8 = 0x04;
    /// Valid for any account prefix (never set by group admins).
    pub const ANY_PREFIX: u8 = 0x08;

    /// The flags of a member token: Read, plus Write and Delete as asked.
    pub fn member(write: bool, delete: bool) -> Flags {
        let mut f = Flags::READ;
        if write {
            f |= Flags::WRITE;
        }
        if delete {
            f |= Flags::DELETE;
        }
        Flags(f)
    }

    /// Whether every bit of `required` is set.
    pub fn allows(self, required: u8) -> bool {
        self.0 & required == required
    }
}

/// A 36-byte subaccount token: `03 ‖ flags ‖ 00 00 ‖ kT`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub [u8; TOKEN_LEN]);

impl Token {
    /// The token's flags.
    pub fn flags(&self) -> Flags {
        Flags(self.0[1])
    }

    /// The Ed25519 key the token lets sign requests (`kT`).
    pub fn signer(&self) -> Ed25519PublicKey {
        let mut k = [0u8; 32];
        k.copy_from_slice(&self.0[4..]);
        Ed25519PublicKey::from_bytes(k)
    }

    /// Base64, as the `subaccount` request parameter carries it.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A token links requests to one member: show the flags and a prefix of the key only.
        write!(
            f,
            "Token({:02x}, {}…)",
            self.0[1],
            hex::encode(&self.0[4..7])
        )
    }
}

/// The blinding factor `k` of a member (admin side, from the group seed).
fn blinding_factor(admin: &GroupAdmin, member: &SessionId) -> Zeroizing<Scalar> {
    let mask = admin.subaccount_mask();
    let h = Zeroizing::new(blake2b_64_keyed(
        &mask[..],
        &[
            &[0x05],
            member.x25519().as_bytes(),
            &[GROUP_PREFIX],
            admin.public().ed25519().as_bytes(),
        ],
    ));
    Zeroizing::new(Scalar::from_bytes_mod_order_wide(&h))
}

fn token_of(flags: Flags, k_t: &[u8; 32]) -> Token {
    let mut t = [0u8; TOKEN_LEN];
    t[0] = GROUP_PREFIX;
    t[1] = flags.0;
    t[4..].copy_from_slice(k_t);
    Token(t)
}

/// The 100-byte `memberAuthData` an admin gives a member (invite, user-groups `s`).
#[derive(Clone, PartialEq, Eq)]
pub struct MemberAuth(pub [u8; MEMBER_AUTH_LEN]);

impl fmt::Debug for MemberAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MemberAuth")
            .field(&self.token_head())
            .finish()
    }
}

impl MemberAuth {
    fn token_head(&self) -> [u8; 4] {
        let mut h = [0u8; 4];
        h.copy_from_slice(&self.0[..4]);
        h
    }

    /// Reads 100 bytes from an invite or config; only the length is checked here.
    pub fn from_slice(bytes: &[u8]) -> Result<MemberAuth, GroupError> {
        bytes
            .try_into()
            .map(MemberAuth)
            .map_err(|_| GroupError::MemberAuth("not 100 bytes"))
    }
}

impl GroupAdmin {
    /// The token of `member` with `flags`: what `revoke_subaccount` and
    /// `unrevoke_subaccount` take. Every admin computes the same one.
    pub fn member_token(&self, member: &SessionId, flags: Flags) -> Token {
        let k = blinding_factor(self, member);
        let t = MontgomeryPoint(member.x25519().to_bytes()).to_edwards(0);
        // A Session ID whose key is not on the curve yields no point: use the identity, whose
        // token no member can sign for.
        let k_t = t
            .map(|t| (*k * t).compress().to_bytes())
            .unwrap_or_default();
        token_of(flags, &k_t)
    }

    /// The authentication data for `member`: token head, `k`, and the group's signature of
    /// the token (§1.8).
    pub fn member_auth(&self, member: &SessionId, flags: Flags) -> MemberAuth {
        let token = self.member_token(member, flags);
        let sig = self.sign(&token.0);
        let k = blinding_factor(self, member);
        let mut out = [0u8; MEMBER_AUTH_LEN];
        out[..4].copy_from_slice(&token.0[..4]);
        out[4..36].copy_from_slice(k.as_bytes());
        out[36..].copy_from_slice(sig.as_bytes());
        MemberAuth(out)
    }
}

/// The member's own Ed25519 secret scalar, sign-adjusted so that `t·B` has its sign bit
/// cleared (the point `T` admins derive from the Session ID).
fn member_scalar(member: &Identity) -> Zeroizing<Scalar> {
    let mut h = Zeroizing::new([0u8; 64]);
    h.copy_from_slice(&Sha512::digest(member.seed()));
    let mut s = Zeroizing::new([0u8; 32]);
    s.copy_from_slice(&h[..32]);
    s[0] &= 248;
    s[31] &= 127;
    s[31] |= 64;
    let scalar = Scalar::from_bytes_mod_order(*s);
    if member.ed25519_public().as_bytes()[31] & 0x80 != 0 {
        Zeroizing::new(-scalar)
    } else {
        Zeroizing::new(scalar)
    }
}

/// A member's verified subaccount: what it needs to sign requests to the group swarm.
pub struct Subaccount {
    token: Token,
    token_sig: Signature,
    /// `a = k·t`, the secret scalar of `kT`.
    a: Zeroizing<Scalar>,
    /// BLAKE2b-32(seed, key = "SubaccountSeed"), the nonce seed of request signatures.
    nonce_seed: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Subaccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subaccount")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// The subaccount fields of a storage request (`storage-rpc.md` §2, §9), base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubaccountAuth {
    /// `subaccount`: the token.
    pub subaccount: String,
    /// `subaccount_sig`: the group's signature of the token.
    pub subaccount_sig: String,
    /// `signature`: the request signature by `kT`.
    pub signature: String,
}

impl Subaccount {
    /// Checks the authentication data a member received for `group` (§1.8, member side):
    /// prefix, Read (and Write/Delete when `required` asks), `kT` from its own key, and the
    /// group's signature. `required` is a mask of [`Flags`] bits.
    pub fn verify(
        auth: &MemberAuth,
        member: &Identity,
        group: &GroupPublic,
        required: u8,
    ) -> Result<Subaccount, GroupError> {
        let bad = GroupError::MemberAuth;
        let flags = Flags(auth.0[1]);
        if auth.0[0] != GROUP_PREFIX && !flags.allows(Flags::ANY_PREFIX) {
            return Err(bad("not for a 03 group"));
        }
        if !flags.allows(Flags::READ | required) {
            return Err(bad("missing a required permission"));
        }
        let mut k_bytes = Zeroizing::new([0u8; 32]);
        k_bytes.copy_from_slice(&auth.0[4..36]);
        let k = Option::<Scalar>::from(Scalar::from_canonical_bytes(*k_bytes))
            .map(Zeroizing::new)
            .ok_or(bad("blinding factor is not a canonical scalar"))?;
        let mut positive = member.ed25519_public().to_bytes();
        positive[31] &= 0x7f;
        let t = CompressedEdwardsY(positive)
            .decompress()
            .ok_or(bad("own key is not a curve point"))?;
        let k_t = (*k * t).compress().to_bytes();
        let mut token = token_of(flags, &k_t);
        token.0[..4].copy_from_slice(&auth.0[..4]);
        let token_sig = Signature::from_slice(&auth.0[36..]).map_err(|_| bad("signature"))?;
        if !group.verify(&token.0, &token_sig) {
            return Err(bad("not signed by the group"));
        }
        let a = Zeroizing::new(*k * *member_scalar(member));
        let nonce_seed = Zeroizing::new(blake2b_32_keyed(b"SubaccountSeed", &[member.seed()]));
        Ok(Subaccount {
            token,
            token_sig,
            a,
            nonce_seed,
        })
    }

    /// The token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Signs the storage message `msg` (`storage-rpc.md` §3.2, e.g. `retrieve11<timestamp>`)
    /// as `kT`: an ordinary Ed25519 signature by the blinded key, with a deterministic nonce.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        let k_t = &self.token.0[4..];
        let r_hash = Zeroizing::new(blake2b_64_keyed(
            b"SubaccountSig",
            &[&self.nonce_seed[..], k_t, msg],
        ));
        let r = Zeroizing::new(Scalar::from_bytes_mod_order_wide(&r_hash));
        let big_r = (&*r * ED25519_BASEPOINT_TABLE).compress();
        let mut h = Sha512::new();
        h.update(big_r.as_bytes());
        h.update(k_t);
        h.update(msg);
        let c = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let s = *r + c * *self.a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(big_r.as_bytes());
        sig[32..].copy_from_slice(s.as_bytes());
        Signature::from_bytes(sig)
    }

    /// The signed request for `msg`, as the swarm checks it.
    pub fn request<'a>(&self, msg: &'a [u8]) -> SignedRequest<'a> {
        SignedRequest {
            token: self.token,
            token_sig: self.token_sig,
            msg,
            signature: self.sign(msg),
        }
    }

    /// The three request fields for `msg`.
    pub fn authorize(&self, msg: &[u8]) -> SubaccountAuth {
        SubaccountAuth {
            subaccount: self.token.to_base64(),
            subaccount_sig: B64.encode(self.token_sig.as_bytes()),
            signature: B64.encode(self.sign(msg).as_bytes()),
        }
    }
}

/// A storage request made with a subaccount: the token, the group's signature of it, the
/// signed message (`storage-rpc.md` §3.2) and its signature by the token's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest<'a> {
    /// The token (`subaccount`).
    pub token: Token,
    /// The group's signature of the token (`subaccount_sig`).
    pub token_sig: Signature,
    /// The bytes the request signs.
    pub msg: &'a [u8],
    /// The signature by `kT` (`signature`).
    pub signature: Signature,
}

/// The tokens an admin has revoked for the group swarm (`revoke_subaccount`), as the swarm
/// holds them: a member removed is revoked, a member re-added is unrevoked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationList {
    revoked: BTreeSet<Token>,
}

/// `revoke_subaccount` / `unrevoke_subaccount` take at most this many tokens per request.
pub const MAX_REVOKE_PER_REQUEST: usize = 50;

impl RevocationList {
    /// An empty list.
    pub fn new() -> RevocationList {
        RevocationList::default()
    }

    /// Adds tokens; returns how many were not yet revoked.
    pub fn revoke(&mut self, tokens: &[Token]) -> usize {
        tokens.iter().filter(|t| self.revoked.insert(**t)).count()
    }

    /// Removes tokens; returns how many were revoked.
    pub fn unrevoke(&mut self, tokens: &[Token]) -> usize {
        tokens.iter().filter(|t| self.revoked.remove(*t)).count()
    }

    /// Whether `token` is revoked.
    pub fn contains(&self, token: &Token) -> bool {
        self.revoked.contains(token)
    }

    /// The revoked tokens in byte order.
    pub fn iter(&self) -> impl Iterator<Item = &Token> {
        self.revoked.iter()
    }

    /// Checks a subaccount request as the group swarm does (`storage-rpc.md` §3.1 step 2–3):
    /// prefix, flags, not revoked (unless `unrevocable`, the −11 kind of namespace), the
    /// group's signature of the token, then the request signature by `kT`.
    pub fn check_request(
        &self,
        group: &GroupPublic,
        req: &SignedRequest<'_>,
        required: u8,
        unrevocable: bool,
    ) -> Result<(), GroupError> {
        let refuse = GroupError::Subaccount;
        let token = &req.token;
        if token.0[0] != GROUP_PREFIX && !token.flags().allows(Flags::ANY_PREFIX) {
            return Err(refuse("token is for another kind of account"));
        }
        if !token.flags().allows(required) {
            return Err(refuse("token lacks a required permission"));
        }
        if !unrevocable && self.contains(token) {
            return Err(refuse("token is revoked"));
        }
        if !group.verify(&token.0, &req.token_sig) {
            return Err(refuse("token is not signed by the group"));
        }
        umbra_crypto::sign::verify(&token.signer(), req.msg, &req.signature)
            .map_err(|_| refuse("request signature does not verify"))
    }
}

impl GroupAdmin {
    /// The signature of a `revoke_subaccount` (or, with `revoke = false`,
    /// `unrevoke_subaccount`) request at `timestamp_ms` for `tokens` (≤ 50).
    pub fn revoke_signature(
        &self,
        revoke: bool,
        timestamp_ms: i64,
        tokens: &[Token],
    ) -> Result<Signature, GroupError> {
        if tokens.len() > MAX_REVOKE_PER_REQUEST {
            return Err(GroupError::TooLarge {
                what: "token list of a revoke request",
                len: tokens.len(),
                limit: MAX_REVOKE_PER_REQUEST,
            });
        }
        let mut msg = Vec::with_capacity(40 + tokens.len() * TOKEN_LEN);
        msg.extend_from_slice(if revoke {
            b"revoke_subaccount".as_slice()
        } else {
            b"unrevoke_subaccount".as_slice()
        });
        msg.extend_from_slice(timestamp_ms.to_string().as_bytes());
        for t in tokens {
            msg.extend_from_slice(&t.0);
        }
        Ok(self.sign(&msg))
    }
}
