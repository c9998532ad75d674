//! The crate's one error type.

use umbra_config::ConfigError;
use umbra_crypto::CryptoError;

/// Why a group message, token or key could not be built, read or accepted.
///
/// Each variant says what was being done; the wrapped errors of the layers below print their
/// own cause, so a message shows it once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// A group ID that is not `03` followed by a valid Ed25519 public key.
    #[error("invalid group ID: {0}")]
    BadGroupId(&'static str),
    /// Input larger than anything a well-formed message of its kind can be.
    #[error("{what} is {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Bytes that are not canonical bencoding.
    #[error("keys message: {0}")]
    Bencode(ConfigError),
    /// Bencode that is not a keys message (`groups-config-attachments.md` §1.3–1.5).
    #[error("invalid keys message: {0}")]
    KeysMessage(&'static str),
    /// The signature `~` is not the group's.
    #[error("keys message signature does not verify against the group key")]
    Signature,
    /// An admin could not decrypt the admin copy `K`: not made with this group's seed.
    #[error("keys message admin copy does not decrypt with this group's admin key")]
    AdminCopy,
    /// A supplemental key list that decrypted but is not a list of `{g, k, t}` dicts.
    #[error("invalid supplemental key list: {0}")]
    Supplemental(&'static str),
    /// The 100-byte member authentication data is malformed or not signed by the group.
    #[error("invalid member auth data: {0}")]
    MemberAuth(&'static str),
    /// A subaccount request refused as the group swarm refuses it (`storage-rpc.md` §9).
    #[error("subaccount refused: {0}")]
    Subaccount(&'static str),
    /// A group message (namespace 11) that cannot be built or read.
    #[error("group message: {0}")]
    Message(&'static str),
    /// A kicked notice that is malformed.
    #[error("invalid kicked notice: {0}")]
    KickedNotice(&'static str),
    /// A key agreement, signature or cipher failed below us.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A group config (info or members) failed in umbra-config.
    #[error(transparent)]
    Config(#[from] ConfigError),
}
