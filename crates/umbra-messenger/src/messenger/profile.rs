//! The profile directory: the account's identity and the encrypted local database.
//!
//! ```text
//!  <dir>/               0700
//!    profile.json       format version and how the database key is obtained (no secret)
//!    db.key             0600, 32 random bytes in hex — only when no passphrase is set
//!    umbra.db           SQLCipher database (the seed, contacts, messages, outbox, cursors)
//!    network/           0700, the onion transport's state (its guard file: the entry nodes
//!                       kept across runs, see `TransportConfig::state_dir`)
//! ```
//!
//! The database key is either the key file or Argon2id(passphrase, salt) with the parameters
//! recorded in `profile.json`. The identity's seed lives inside the encrypted database, so a
//! passphrase protects it too. `profile.json` is written last: a directory without it holds
//! no finished profile.
//!
//! Never: write a key, seed or passphrase anywhere but the files above; create the key file
//! readable by others; open a database from a newer schema.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rusqlite_cipher::Connection;
use serde::{Deserialize, Serialize};
use umbra_crypto::{Ed25519PublicKey, Identity, Random, mnemonic};
use zeroize::Zeroizing;

use super::MessengerError;
use super::db;

/// The newest `profile.json` format this build reads.
pub const PROFILE_FORMAT: i64 = 1;

const META_FILE: &str = "profile.json";
const KEY_FILE: &str = "db.key";
const DB_FILE: &str = "umbra.db";
const NETWORK_DIR: &str = "network";
/// The database's meta key of the registry key of the profile's network.
const NETWORK_KEY: &str = "network_registry_key";

/// Argon2id parameters for a passphrase-derived database key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 iterations, 1 lane (a second or less on a laptop).
    fn default() -> Self {
        Self {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "key", rename_all = "snake_case")]
enum KeySource {
    /// The key is in `db.key`.
    File,
    /// The key is Argon2id(passphrase, salt).
    Passphrase {
        /// Hex salt (16 bytes).
        salt: String,
        /// Argon2id parameters.
        kdf: KdfParams,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    format: i64,
    #[serde(flatten)]
    key: KeySource,
}

/// An open profile: the identity and the unlocked database.
pub struct Profile {
    dir: PathBuf,
    identity: Identity,
    conn: Connection,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Profile {
    /// Creates a profile with a new identity in `dir` (created 0700 if missing; it must not
    /// hold a profile). Returns the profile and the 12-word recovery phrase.
    pub fn create(
        dir: &Path,
        passphrase: Option<&str>,
        kdf: KdfParams,
        rng: &mut dyn Random,
    ) -> Result<(Self, Zeroizing<String>), MessengerError> {
        let identity = Identity::generate(rng);
        let entropy = identity.entropy16().ok_or(MessengerError::ProfileCorrupt(
            "generated seed is not 16 bytes".into(),
        ))?;
        let phrase = mnemonic::to_phrase(&entropy).map_err(MessengerError::Identity)?;
        let profile = Self::init(dir, identity, passphrase, kdf, rng)?;
        Ok((profile, phrase))
    }

    /// Creates a profile in `dir` for the identity of a recovery `phrase` (a second device).
    pub fn restore(
        dir: &Path,
        phrase: &str,
        passphrase: Option<&str>,
        kdf: KdfParams,
        rng: &mut dyn Random,
    ) -> Result<Self, MessengerError> {
        let entropy = mnemonic::from_phrase(phrase).map_err(MessengerError::Identity)?;
        let identity = Identity::from_entropy16(&entropy);
        Self::init(dir, identity, passphrase, kdf, rng)
    }

    fn init(
        dir: &Path,
        identity: Identity,
        passphrase: Option<&str>,
        kdf: KdfParams,
        rng: &mut dyn Random,
    ) -> Result<Self, MessengerError> {
        if dir.join(META_FILE).exists() {
            return Err(MessengerError::ProfileExists(dir.to_path_buf()));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(MessengerError::io("creating the profile directory", dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(MessengerError::io("restricting the profile directory", dir))?;
        let network = dir.join(NETWORK_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&network)
            .map_err(MessengerError::io(
                "creating the network state directory",
                &network,
            ))?;
        // Leftovers of a creation that did not finish (no profile.json) are discarded.
        for leftover in [KEY_FILE, DB_FILE] {
            let p = dir.join(leftover);
            if p.exists() {
                fs::remove_file(&p).map_err(MessengerError::io("removing a leftover file", &p))?;
            }
        }
        let (key, source) = match passphrase {
            None => {
                let mut raw = Zeroizing::new([0u8; 32]);
                rng.fill(&mut raw[..]);
                let key = Zeroizing::new(hex::encode(&raw[..]));
                write_private(&dir.join(KEY_FILE), key.as_bytes())?;
                (key, KeySource::File)
            }
            Some(pass) => {
                let salt: [u8; 16] = {
                    let mut s = [0u8; 16];
                    rng.fill(&mut s);
                    s
                };
                let key = derive_key(pass, &salt, kdf)?;
                (
                    key,
                    KeySource::Passphrase {
                        salt: hex::encode(salt),
                        kdf,
                    },
                )
            }
        };
        let mut conn = open_db(&dir.join(DB_FILE), &key)?;
        db::migrate(&mut conn)?;
        db::meta_insert(&conn, "seed", &identity.seed()[..])
            .map_err(MessengerError::db("saving the identity"))?;
        let meta = Meta {
            format: PROFILE_FORMAT,
            key: source,
        };
        let tmp = stage_meta(dir, &meta)?;
        let meta_path = dir.join(META_FILE);
        fs::rename(&tmp, &meta_path).map_err(MessengerError::io("writing", &meta_path))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            identity,
            conn,
        })
    }

    /// Whether `dir` holds a finished profile.
    pub fn exists(dir: &Path) -> bool {
        dir.join(META_FILE).exists()
    }

    /// Whether the profile in `dir` needs a passphrase to open.
    pub fn needs_passphrase(dir: &Path) -> Result<bool, MessengerError> {
        Ok(matches!(read_meta(dir)?.key, KeySource::Passphrase { .. }))
    }

    /// Opens the profile in `dir`, with the passphrase if it has one. Errors:
    /// [`MessengerError::NoProfile`], [`MessengerError::ProfileLocked`] (wrong or missing
    /// passphrase), [`MessengerError::ProfileTooNew`].
    pub fn open(dir: &Path, passphrase: Option<&str>) -> Result<Self, MessengerError> {
        let meta = read_meta(dir)?;
        let key = match (&meta.key, passphrase) {
            (KeySource::File, _) => {
                let p = dir.join(KEY_FILE);
                let text = Zeroizing::new(
                    fs::read_to_string(&p)
                        .map_err(MessengerError::io("reading the key file", &p))?,
                );
                let key = Zeroizing::new(text.trim().to_string());
                if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(MessengerError::ProfileCorrupt(
                        "the key file does not hold a 32-byte hex key".into(),
                    ));
                }
                key
            }
            (KeySource::Passphrase { .. }, None) => {
                return Err(MessengerError::ProfileLocked("a passphrase is required"));
            }
            (KeySource::Passphrase { salt, kdf }, Some(pass)) => {
                let salt = hex::decode(salt)
                    .map_err(|_| MessengerError::ProfileCorrupt("the salt is not hex".into()))?;
                derive_key(pass, &salt, *kdf)?
            }
        };
        let mut conn = open_db(&dir.join(DB_FILE), &key)?;
        db::migrate(&mut conn)?;
        let seed =
            db::meta_get(&conn, "seed").map_err(MessengerError::db("reading the identity"))?;
        let seed = Zeroizing::new(seed.ok_or(MessengerError::ProfileCorrupt(
            "the database holds no identity".into(),
        ))?);
        let identity = Identity::from_seed_slice(&seed).map_err(MessengerError::Identity)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            identity,
            conn,
        })
    }

    /// Ties the profile to the network whose node lists `registry_key` signs, on its first
    /// use with a network; later uses must be on the same network. A profile's contacts,
    /// messages, swarm positions and entry nodes are of one network: on another, they would
    /// mix with that network's and its guards would be strangers there.
    ///
    /// # Errors
    /// [`MessengerError::OtherNetwork`] when the profile belongs to another network.
    pub fn bind_network(&self, registry_key: &Ed25519PublicKey) -> Result<(), MessengerError> {
        let what = "recording the profile's network";
        match db::meta_get(&self.conn, NETWORK_KEY).map_err(MessengerError::db(what))? {
            None => db::meta_insert(&self.conn, NETWORK_KEY, registry_key.as_bytes())
                .map_err(MessengerError::db(what)),
            Some(bound) if bound == registry_key.as_bytes() => Ok(()),
            Some(bound) => Err(MessengerError::OtherNetwork {
                bound: short_key(&hex::encode(bound)),
                given: short_key(&registry_key.to_hex()),
            }),
        }
    }

    /// The registry key of the network the profile belongs to, once it was used on one.
    pub fn network_key(&self) -> Result<Option<Ed25519PublicKey>, MessengerError> {
        let bound = db::meta_get(&self.conn, NETWORK_KEY)
            .map_err(MessengerError::db("reading the profile's network"))?;
        Ok(bound.and_then(|b| {
            <[u8; 32]>::try_from(b.as_slice())
                .ok()
                .map(Ed25519PublicKey::from_bytes)
        }))
    }

    /// The profile's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the onion transport keeps its state (the guards): `<dir>/network`, made 0700
    /// with the profile (give it as `TransportConfig::state_dir`, which also creates it for
    /// a profile made before it existed).
    pub fn network_dir(&self) -> PathBuf {
        self.dir.join(NETWORK_DIR)
    }

    /// The account identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The recovery phrase of this identity (secret: show it only when the user asks).
    pub fn recovery_phrase(&self) -> Result<Zeroizing<String>, MessengerError> {
        let entropy = self
            .identity
            .entropy16()
            .ok_or(MessengerError::ProfileCorrupt(
                "this identity has a 32-byte seed and no 12-word phrase".into(),
            ))?;
        mnemonic::to_phrase(&entropy).map_err(MessengerError::Identity)
    }

    /// Sets, changes or (with `None`) removes the passphrase: re-encrypts the database under
    /// the new key and rewrites `profile.json` (and the key file).
    pub fn set_passphrase(
        &mut self,
        passphrase: Option<&str>,
        kdf: KdfParams,
        rng: &mut dyn Random,
    ) -> Result<(), MessengerError> {
        rekey(&self.dir, &self.conn, passphrase, kdf, rng)
    }

    pub(crate) fn into_parts(self) -> (PathBuf, Identity, Connection) {
        (self.dir, self.identity, self.conn)
    }
}

/// Re-encrypts the database open on `conn` in profile `dir` under the key of `passphrase`
/// (a new key file when `None`) and rewrites `profile.json` to match.
pub(super) fn rekey(
    dir: &Path,
    conn: &Connection,
    passphrase: Option<&str>,
    kdf: KdfParams,
    rng: &mut dyn Random,
) -> Result<(), MessengerError> {
    let (key, source) = match passphrase {
        None => {
            let mut raw = Zeroizing::new([0u8; 32]);
            rng.fill(&mut raw[..]);
            (Zeroizing::new(hex::encode(&raw[..])), KeySource::File)
        }
        Some(pass) => {
            let mut salt = [0u8; 16];
            rng.fill(&mut salt);
            let key = derive_key(pass, &salt, kdf)?;
            (
                key,
                KeySource::Passphrase {
                    salt: hex::encode(salt),
                    kdf,
                },
            )
        }
    };
    // The new key file (if any) goes beside the old one first, so that a crash anywhere
    // leaves one consistent (meta, key) pair on disk for the key the database has.
    let new_key_path = dir.join("db.key.new");
    if matches!(source, KeySource::File) {
        write_private(&new_key_path, key.as_bytes())?;
    }
    let pragma = Zeroizing::new(format!("x'{}'", key.as_str()));
    conn.pragma_update(None, "rekey", pragma.as_str())
        .map_err(MessengerError::db("re-encrypting the database"))?;
    let meta = Meta {
        format: PROFILE_FORMAT,
        key: source,
    };
    let tmp = stage_meta(dir, &meta)?;
    let key_path = dir.join(KEY_FILE);
    if matches!(meta.key, KeySource::File) {
        fs::rename(&new_key_path, &key_path)
            .map_err(MessengerError::io("replacing the key file", &key_path))?;
    } else if key_path.exists() {
        fs::remove_file(&key_path)
            .map_err(MessengerError::io("removing the key file", &key_path))?;
    }
    let meta_path = dir.join(META_FILE);
    fs::rename(&tmp, &meta_path).map_err(MessengerError::io("writing", &meta_path))?;
    Ok(())
}

/// Writes `meta` beside `profile.json` (private) and returns that path; renaming it over
/// `profile.json` is the caller's last step, so a crash before it leaves the old one whole.
fn stage_meta(dir: &Path, meta: &Meta) -> Result<PathBuf, MessengerError> {
    let json = serde_json::to_vec_pretty(meta)
        .map_err(|e| MessengerError::ProfileCorrupt(e.to_string()))?;
    let tmp = dir.join("profile.json.tmp");
    write_private(&tmp, &json)?;
    Ok(tmp)
}

fn read_meta(dir: &Path) -> Result<Meta, MessengerError> {
    let p = dir.join(META_FILE);
    if !p.exists() {
        return Err(MessengerError::NoProfile(dir.to_path_buf()));
    }
    let bytes = fs::read(&p).map_err(MessengerError::io("reading", &p))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| MessengerError::ProfileCorrupt(format!("profile.json: {e}")))?;
    let format = v.get("format").and_then(serde_json::Value::as_i64).ok_or(
        MessengerError::ProfileCorrupt("profile.json has no format number".into()),
    )?;
    if format > PROFILE_FORMAT {
        return Err(MessengerError::ProfileTooNew {
            what: "profile format",
            found: format,
            known: PROFILE_FORMAT,
        });
    }
    serde_json::from_value(v)
        .map_err(|e| MessengerError::ProfileCorrupt(format!("profile.json: {e}")))
}

fn derive_key(
    passphrase: &str,
    salt: &[u8],
    kdf: KdfParams,
) -> Result<Zeroizing<String>, MessengerError> {
    let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
        .map_err(|e| MessengerError::Kdf(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut out[..])
        .map_err(|e| MessengerError::Kdf(e.to_string()))?;
    Ok(Zeroizing::new(hex::encode(&out[..])))
}

/// Opens the SQLCipher database with a raw 32-byte key (hex) and checks that the key fits.
fn open_db(path: &Path, key_hex: &Zeroizing<String>) -> Result<Connection, MessengerError> {
    let conn = Connection::open(path).map_err(MessengerError::db("opening the database"))?;
    // SQLCipher would print its own errors (e.g. a failed HMAC on a wrong key) to stderr; we
    // report them as errors instead.
    conn.pragma_update(None, "cipher_log_level", "NONE")
        .map_err(MessengerError::db("configuring the database"))?;
    let pragma = Zeroizing::new(format!("x'{}'", key_hex.as_str()));
    conn.pragma_update(None, "key", pragma.as_str())
        .map_err(MessengerError::db("keying the database"))?;
    // SQLCipher checks the key on first read: a wrong key reads as "not a database".
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(rusqlite_cipher::Error::SqliteFailure(e, _))
            if e.code == rusqlite_cipher::ErrorCode::NotADatabase =>
        {
            return Err(MessengerError::ProfileLocked(
                "wrong passphrase, or the key does not belong to this database",
            ));
        }
        Err(e) => return Err(MessengerError::db("unlocking the database")(e)),
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(MessengerError::db("setting the journal mode"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(MessengerError::db("setting the sync mode"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(MessengerError::db("enabling foreign keys"))?;
    Ok(conn)
}

/// Writes a new file readable and writable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), MessengerError> {
    if path.exists() {
        fs::remove_file(path).map_err(MessengerError::io("replacing", path))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(MessengerError::io("creating", path))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(MessengerError::io("writing", path))
}

impl super::Messenger {
    /// Changes the passphrase of the open profile (removes it with `new` = `None`), once
    /// `current` opens the profile (ignored when it has no passphrase): the app changes it
    /// while it runs, without closing the database its messenger holds.
    pub fn set_passphrase(
        &self,
        current: Option<&str>,
        new: Option<&str>,
        kdf: KdfParams,
    ) -> Result<(), MessengerError> {
        // Opening a second connection with `current` is the check: a wrong one is
        // `ProfileLocked`, as when opening.
        drop(Profile::open(&self.dir, current)?);
        let conn = self.db();
        let mut rng = super::lock(&self.rng);
        rekey(&self.dir, &conn, new, kdf, &mut **rng)
    }
}

/// `1a2b3c…7e8f`: enough of a key to tell two apart in a message.
fn short_key(hex: &str) -> String {
    match (hex.get(..6), hex.get(hex.len().saturating_sub(4)..)) {
        (Some(head), Some(tail)) if hex.len() > 10 => format!("{head}…{tail}"),
        _ => hex.to_owned(),
    }
}
