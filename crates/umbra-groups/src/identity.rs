//! Who a group is: its Ed25519 key pair (held by admins), its `03…` ID, and the values
//! derived from its seed (`identity-and-crypto.md` §2, `groups-config-attachments.md` §1.2).

use std::fmt;

use umbra_crypto::hash::blake2b_32_keyed;
use umbra_crypto::keys::ed25519_pk_to_x25519;
use umbra_crypto::{AccountId, Ed25519PublicKey, Identity, Random, Signature, X25519PublicKey};
use zeroize::Zeroizing;

use crate::GroupError;

/// The network prefix of a group ID.
pub const GROUP_PREFIX: u8 = 0x03;

/// Label of `S`, the input of key generation and of the supplemental nonce.
pub(crate) const LABEL_KEY_SEED: &[u8] = b"SessionGroupKeySeed";
/// Label of the key that encrypts the admins' copy `K` of each group key.
pub(crate) const LABEL_ADMIN_KEY: &[u8] = b"SessionGroupKeyAdminKey";
/// Label of the BLAKE2b key of member blinding factors (subaccounts).
pub(crate) const LABEL_SUBACCOUNT_MASK: &[u8] = b"SessionGroupSubaccountMask";

/// What every member knows of a group: its ID and public keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupPublic {
    ed25519: Ed25519PublicKey,
    x25519: X25519PublicKey,
}

impl GroupPublic {
    /// The group of this Ed25519 public key; refuses a key that is not a usable curve point.
    pub fn from_ed25519(ed25519: Ed25519PublicKey) -> Result<GroupPublic, GroupError> {
        let x25519 = ed25519_pk_to_x25519(&ed25519)
            .map_err(|_| GroupError::BadGroupId("not a valid Ed25519 key"))?;
        Ok(GroupPublic { ed25519, x25519 })
    }

    /// The group of this `03…` ID.
    pub fn from_id(id: &AccountId) -> Result<GroupPublic, GroupError> {
        if id.prefix() != GROUP_PREFIX {
            return Err(GroupError::BadGroupId("prefix is not 03"));
        }
        GroupPublic::from_ed25519(Ed25519PublicKey::from_bytes(id.key_bytes()))
    }

    /// The group ID, `03 ‖ Ed25519 public key`.
    pub fn id(&self) -> AccountId {
        let mut id = [0u8; 33];
        id[0] = GROUP_PREFIX;
        id[1..].copy_from_slice(self.ed25519.as_bytes());
        AccountId::new(id)
    }

    /// The group's Ed25519 public key: it signs keys messages, configs and subaccount tokens.
    pub fn ed25519(&self) -> Ed25519PublicKey {
        self.ed25519
    }

    /// The X25519 form of the group key: the sender key of every per-member key copy.
    pub fn x25519(&self) -> X25519PublicKey {
        self.x25519
    }

    /// Whether `signature` is the group's signature of `msg`.
    pub fn verify(&self, msg: &[u8], signature: &Signature) -> bool {
        umbra_crypto::sign::verify(&self.ed25519, msg, signature).is_ok()
    }
}

impl fmt::Debug for GroupPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GroupPublic").field(&self.id()).finish()
    }
}

/// The group's key pair, as admins hold it. Secret material is zeroized on drop; `Debug` shows
/// the group ID only.
pub struct GroupAdmin {
    identity: Identity,
    public: GroupPublic,
}

impl GroupAdmin {
    /// A new group: a fresh random 32-byte seed.
    pub fn generate(rng: &mut dyn Random) -> GroupAdmin {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill(&mut seed[..]);
        GroupAdmin::from_seed(&seed)
    }

    /// The group of this 32-byte seed (what `GroupUpdatePromoteMessage.groupIdentitySeed` and
    /// the user-groups config `K` carry).
    pub fn from_seed(seed: &[u8; 32]) -> GroupAdmin {
        let identity = Identity::from_seed(seed);
        let public = GroupPublic {
            ed25519: identity.ed25519_public(),
            x25519: identity.x25519_public(),
        };
        GroupAdmin { identity, public }
    }

    /// The public side.
    pub fn public(&self) -> &GroupPublic {
        &self.public
    }

    /// The group ID, `03…`.
    pub fn id(&self) -> AccountId {
        self.public.id()
    }

    /// The 32-byte seed. Secret: it makes its holder an admin.
    pub fn seed(&self) -> &[u8; 32] {
        self.identity.seed()
    }

    /// The group's Ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        self.identity.sign(msg)
    }

    /// The key pair as an [`Identity`]: its X25519 half is the group's `(a', A')`.
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// `seedhash(label)` = BLAKE2b-32(seed, key = label) (§1.2).
    fn seed_hash(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake2b_32_keyed(label, &[self.seed()]))
    }

    /// `S`, the seed hash behind key generation and supplemental nonces.
    pub fn key_seed(&self) -> Zeroizing<[u8; 32]> {
        self.seed_hash(LABEL_KEY_SEED)
    }

    /// The key of the admins' copy `K` of each group key.
    pub fn admin_key(&self) -> Zeroizing<[u8; 32]> {
        self.seed_hash(LABEL_ADMIN_KEY)
    }

    /// The BLAKE2b key of member blinding factors (§1.8).
    pub fn subaccount_mask(&self) -> Zeroizing<[u8; 32]> {
        self.seed_hash(LABEL_SUBACCOUNT_MASK)
    }

    /// libsodium's 64-byte Ed25519 secret key, `seed ‖ public key` (an input of the junk seed).
    pub(crate) fn secret_key64(&self) -> Zeroizing<[u8; 64]> {
        let mut sk = Zeroizing::new([0u8; 64]);
        sk[..32].copy_from_slice(self.seed());
        sk[32..].copy_from_slice(self.public.ed25519.as_bytes());
        sk
    }
}

impl fmt::Debug for GroupAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupAdmin")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}
