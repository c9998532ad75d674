//! Account keys: seed → Ed25519 → X25519 → Session ID.
//!
//! A new account draws 16 random bytes and zero-pads them to the 32-byte Ed25519 seed, as
//! Session does; the recovery phrase encodes those 16 bytes. The X25519 key is always derived
//! from the Ed25519 key (`SHA-512(seed)[..32]` clamped, and the birational map of the public
//! point), and the Session ID is `05 ‖ X25519 public key`.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::{CryptoError, Ed25519PublicKey, Random, Signature, X25519PublicKey};

/// The network prefix byte of an account Session ID.
pub const SESSION_ID_PREFIX: u8 = 0x05;

/// An account identity: the Ed25519 key pair and the X25519 key pair derived from it.
///
/// Secret material is zeroized when the identity is dropped. `Debug` shows only the Session ID
/// in redacted form.
pub struct Identity {
    seed: Zeroizing<[u8; 32]>,
    signing: SigningKey,
    x_secret: StaticSecret,
    x_public: X25519PublicKey,
}

impl Identity {
    /// A new identity from 16 random bytes, zero-padded to the seed (Session's rule).
    pub fn generate(rng: &mut dyn Random) -> Self {
        let mut entropy = Zeroizing::new([0u8; 16]);
        rng.fill(&mut entropy[..]);
        Self::from_entropy16(&entropy)
    }

    /// Restores from the 16 bytes a recovery phrase carries (right-padded with 16 zero bytes).
    pub fn from_entropy16(entropy: &[u8; 16]) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        seed[..16].copy_from_slice(entropy);
        Self::from_seed(&seed)
    }

    /// Restores from a full 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        // SHA-512(seed)[..32]; x25519-dalek clamps on use, and we clamp the stored copy too so
        // that `x25519_secret()` equals libsodium's crypto_sign_ed25519_sk_to_curve25519.
        let mut scalar = Zeroizing::new(signing.to_scalar_bytes());
        scalar[0] &= 248;
        scalar[31] &= 127;
        scalar[31] |= 64;
        let x_secret = StaticSecret::from(*scalar);
        let x_public =
            X25519PublicKey::from_bytes(signing.verifying_key().to_montgomery().to_bytes());
        Self {
            seed: Zeroizing::new(*seed),
            signing,
            x_secret,
            x_public,
        }
    }

    /// Restores from a seed given as a byte slice of 16 or 32 bytes.
    pub fn from_seed_slice(seed: &[u8]) -> Result<Self, CryptoError> {
        match seed.len() {
            16 => {
                let mut e = Zeroizing::new([0u8; 16]);
                e.copy_from_slice(seed);
                Ok(Self::from_entropy16(&e))
            }
            32 => {
                let mut s = Zeroizing::new([0u8; 32]);
                s.copy_from_slice(seed);
                Ok(Self::from_seed(&s))
            }
            got => Err(CryptoError::BadLength {
                what: "seed",
                expected: 32,
                got,
            }),
        }
    }

    /// The 32-byte Ed25519 seed. Secret: handle with care.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The 16 bytes a recovery phrase encodes, when the seed has Session's zero padding.
    pub fn entropy16(&self) -> Option<[u8; 16]> {
        let (head, tail) = self.seed.split_at(16);
        if tail.iter().all(|b| *b == 0) {
            let mut out = [0u8; 16];
            out.copy_from_slice(head);
            Some(out)
        } else {
            None
        }
    }

    /// The Ed25519 public key.
    pub fn ed25519_public(&self) -> Ed25519PublicKey {
        Ed25519PublicKey::from_bytes(self.signing.verifying_key().to_bytes())
    }

    /// The X25519 public key (the Session ID without its prefix).
    pub fn x25519_public(&self) -> X25519PublicKey {
        self.x_public
    }

    /// The X25519 secret scalar (clamped). Secret: handle with care.
    pub fn x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.x_secret.to_bytes())
    }

    /// The X25519 key pair as a standalone value (e.g. a node's onion-layer key).
    pub fn x25519_keypair(&self) -> X25519KeyPair {
        X25519KeyPair::from_secret(*self.x25519_secret())
    }

    /// This account's Session ID.
    pub fn session_id(&self) -> SessionId {
        SessionId::from_x25519(self.x_public)
    }

    /// An Ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature::from_bytes(self.signing.sign(msg).to_bytes())
    }

    /// X25519 Diffie-Hellman with `their_public`; refuses low-order points (all-zero secret).
    pub fn x25519_dh(
        &self,
        their_public: &X25519PublicKey,
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let shared = self
            .x_secret
            .diffie_hellman(&XPublic::from(their_public.to_bytes()));
        if !shared.was_contributory() {
            return Err(CryptoError::WeakKeyExchange);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }
}

/// Every field holding secret material wipes itself when dropped: the seed is `Zeroizing`,
/// `SigningKey` and `StaticSecret` zeroize on drop (their crates' `zeroize` features are on).
/// The field types are checked at compile time below.
impl ZeroizeOnDrop for Identity {}

/// Compile-time proof that the secret-bearing field types of [`Identity`] and
/// [`X25519KeyPair`] zeroize on drop.
const _: () = {
    const fn wipes_on_drop<T: ZeroizeOnDrop>() {}
    wipes_on_drop::<Zeroizing<[u8; 32]>>();
    wipes_on_drop::<SigningKey>();
    wipes_on_drop::<StaticSecret>();
};

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("session_id", &crate::Redacted::new(self.session_id()))
            .finish_non_exhaustive()
    }
}

/// Converts an Ed25519 public key to its X25519 (Montgomery) form, as libsodium's
/// `crypto_sign_ed25519_pk_to_curve25519`: points not on the curve, small-order points and
/// points outside the prime-order subgroup (with a torsion component, which no honestly made
/// key has) are refused. Like libsodium, a non-canonical `y` encoding is reduced, not refused.
pub fn ed25519_pk_to_x25519(
    ed25519_public: &Ed25519PublicKey,
) -> Result<X25519PublicKey, CryptoError> {
    let vk = VerifyingKey::from_bytes(ed25519_public.as_bytes())
        .map_err(|_| CryptoError::BadEd25519Key)?;
    if vk.is_weak() || !vk.to_edwards().is_torsion_free() {
        return Err(CryptoError::BadEd25519Key);
    }
    Ok(X25519PublicKey::from_bytes(vk.to_montgomery().to_bytes()))
}

/// An X25519 key pair that is not an account key (onion-request ephemerals, node keys).
pub struct X25519KeyPair {
    secret: StaticSecret,
    public: X25519PublicKey,
}

impl X25519KeyPair {
    /// A fresh random key pair.
    pub fn generate(rng: &mut dyn Random) -> Self {
        let mut sk = Zeroizing::new([0u8; 32]);
        rng.fill(&mut sk[..]);
        Self::from_secret(*sk)
    }

    /// The key pair of a given secret scalar (clamped on use).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = X25519PublicKey::from_bytes(XPublic::from(&secret).to_bytes());
        Self { secret, public }
    }

    /// The public key.
    pub fn public(&self) -> X25519PublicKey {
        self.public
    }

    /// The secret scalar. Secret: handle with care.
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// X25519 Diffie-Hellman with `their_public`; refuses low-order points (all-zero secret).
    pub fn dh(&self, their_public: &X25519PublicKey) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let shared = self
            .secret
            .diffie_hellman(&XPublic::from(their_public.to_bytes()));
        if !shared.was_contributory() {
            return Err(CryptoError::WeakKeyExchange);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }
}

/// The secret is a `StaticSecret`, which zeroizes on drop.
impl ZeroizeOnDrop for X25519KeyPair {}

impl fmt::Debug for X25519KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X25519KeyPair").finish_non_exhaustive()
    }
}

/// A Session ID: `05` followed by the 32-byte X25519 public key, shown as 66 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 33]);

impl SessionId {
    /// The Session ID of an X25519 public key.
    pub fn from_x25519(x25519_public: X25519PublicKey) -> Self {
        let mut b = [0u8; 33];
        b[0] = SESSION_ID_PREFIX;
        b[1..].copy_from_slice(x25519_public.as_bytes());
        Self(b)
    }

    /// The Session ID from its 33 bytes; the first must be `05`.
    pub fn from_bytes(bytes: [u8; 33]) -> Result<Self, CryptoError> {
        if bytes[0] != SESSION_ID_PREFIX {
            return Err(CryptoError::BadSessionId("it must start with 05"));
        }
        Ok(Self(bytes))
    }

    /// All 33 bytes, prefix included.
    pub fn as_bytes(&self) -> &[u8; 33] {
        &self.0
    }

    /// The X25519 public key (the 32 bytes after the prefix).
    pub fn x25519(&self) -> X25519PublicKey {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0[1..]);
        X25519PublicKey::from_bytes(out)
    }

    /// The 66-character lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for SessionId {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 66 {
            return Err(CryptoError::BadSessionId(
                "it must be 66 hexadecimal characters starting with 05",
            ));
        }
        let mut b = [0u8; 33];
        hex::decode_to_slice(s, &mut b).map_err(|_| {
            CryptoError::BadSessionId("it contains characters that are not hexadecimal")
        })?;
        Self::from_bytes(b)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.to_hex())
    }
}
