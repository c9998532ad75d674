//! The registry's SQLite state: known nodes and the latest signed list.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use umbra_crypto::{Ed25519PublicKey, X25519PublicKey};
use umbra_nodelist::api::Announcement;
use umbra_nodelist::list::SignedNodeList;

use crate::RegistryError;

/// Schema version written in `meta`.
const SCHEMA_VERSION: i64 = 1;

/// What the registry knows about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Ed25519 key (identity).
    pub pubkey_ed25519: Ed25519PublicKey,
    /// X25519 key.
    pub pubkey_x25519: X25519PublicKey,
    /// Address, ports, version.
    pub announcement: Announcement,
    /// First registration, unix ms.
    pub registered_at_ms: u64,
    /// Last registration or heartbeat, by the registry's clock, unix ms.
    pub last_seen_ms: u64,
    /// Timestamp of the last accepted signed request (replay protection).
    pub last_timestamp_ms: u64,
    /// Whether the node counts as active.
    pub active: bool,
    /// Current swarm ([`umbra_swarm::UNASSIGNED_SWARM_ID`] when none).
    pub swarm_id: u64,
}

fn db(what: &'static str) -> impl FnOnce(rusqlite::Error) -> RegistryError {
    move |source| RegistryError::Storage { what, source }
}

fn to_i64(v: u64) -> i64 {
    // Bit-preserving: SQLite integers are signed 64-bit.
    i64::from_ne_bytes(v.to_ne_bytes())
}

fn to_u64(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes())
}

/// The registry database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    ///
    /// # Errors
    /// [`RegistryError::Storage`] if SQLite fails, [`RegistryError::Corrupt`] for an unknown
    /// schema version.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        let conn = Connection::open(path).map_err(db("opening the database"))?;
        Self::init(conn)
    }

    /// An in-memory database (tests).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_in_memory() -> Result<Self, RegistryError> {
        let conn = Connection::open_in_memory().map_err(db("opening the database"))?;
        Self::init(conn)
    }

    fn init(conn: Connection) -> Result<Self, RegistryError> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS meta (
                 key   TEXT PRIMARY KEY,
                 value BLOB NOT NULL
             );
             CREATE TABLE IF NOT EXISTS nodes (
                 pubkey_ed25519    BLOB PRIMARY KEY,
                 pubkey_x25519     BLOB NOT NULL,
                 public_ip         TEXT NOT NULL,
                 storage_port      INTEGER NOT NULL,
                 storage_lmq_port  INTEGER NOT NULL,
                 version           TEXT NOT NULL,
                 registered_at_ms  INTEGER NOT NULL,
                 last_seen_ms      INTEGER NOT NULL,
                 last_timestamp_ms INTEGER NOT NULL,
                 active            INTEGER NOT NULL,
                 swarm_id          INTEGER NOT NULL
             );",
        )
        .map_err(db("creating the schema"))?;
        let version: Option<i64> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db("reading the schema version"))?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION],
                )
                .map_err(db("writing the schema version"))?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(RegistryError::Corrupt(format!(
                    "unknown schema version {v} (this build reads {SCHEMA_VERSION})"
                )));
            }
        }
        Ok(Self { conn })
    }

    /// All known nodes.
    ///
    /// # Errors
    /// [`RegistryError::Storage`] or [`RegistryError::Corrupt`].
    pub fn load_nodes(&self) -> Result<BTreeMap<Ed25519PublicKey, NodeRecord>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT pubkey_ed25519, pubkey_x25519, public_ip, storage_port, storage_lmq_port,
                        version, registered_at_ms, last_seen_ms, last_timestamp_ms, active, swarm_id
                 FROM nodes",
            )
            .map_err(db("reading nodes"))?;
        type Row = (
            Vec<u8>,
            Vec<u8>,
            String,
            i64,
            i64,
            String,
            i64,
            i64,
            i64,
            bool,
            i64,
        );
        let rows = stmt
            .query_map([], |r| {
                Ok::<Row, rusqlite::Error>((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ))
            })
            .map_err(db("reading nodes"))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (ed, x, ip, sp, lp, ver, reg, seen, ts, active, swarm) =
                row.map_err(db("reading nodes"))?;
            let corrupt = |what: &str| RegistryError::Corrupt(format!("node row: bad {what}"));
            let ed = Ed25519PublicKey::from_slice(&ed).map_err(|_| corrupt("pubkey_ed25519"))?;
            let x = X25519PublicKey::from_slice(&x).map_err(|_| corrupt("pubkey_x25519"))?;
            let ip: Ipv4Addr = ip.parse().map_err(|_| corrupt("public_ip"))?;
            let version: [u16; 3] = serde_json::from_str(&ver).map_err(|_| corrupt("version"))?;
            let rec = NodeRecord {
                pubkey_ed25519: ed,
                pubkey_x25519: x,
                announcement: Announcement {
                    public_ip: ip,
                    storage_port: u16::try_from(sp).map_err(|_| corrupt("storage_port"))?,
                    storage_lmq_port: u16::try_from(lp).map_err(|_| corrupt("storage_lmq_port"))?,
                    version,
                },
                registered_at_ms: to_u64(reg),
                last_seen_ms: to_u64(seen),
                last_timestamp_ms: to_u64(ts),
                active,
                swarm_id: to_u64(swarm),
            };
            out.insert(ed, rec);
        }
        Ok(out)
    }

    /// The latest signed list, if any was saved.
    ///
    /// # Errors
    /// [`RegistryError::Storage`] or [`RegistryError::Corrupt`].
    pub fn load_list(&self) -> Result<Option<SignedNodeList>, RegistryError> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'list'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db("reading the node list"))?;
        json.map(|j| {
            serde_json::from_str(&j)
                .map_err(|e| RegistryError::Corrupt(format!("saved node list: {e}")))
        })
        .transpose()
    }

    /// Saves `nodes` (upsert) and the new signed list in one transaction.
    ///
    /// # Errors
    /// [`RegistryError::Storage`].
    pub fn save(
        &mut self,
        nodes: &[&NodeRecord],
        list: Option<&SignedNodeList>,
    ) -> Result<(), RegistryError> {
        let tx = self
            .conn
            .transaction()
            .map_err(db("starting a transaction"))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO nodes (pubkey_ed25519, pubkey_x25519, public_ip, storage_port,
                        storage_lmq_port, version, registered_at_ms, last_seen_ms,
                        last_timestamp_ms, active, swarm_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (pubkey_ed25519) DO UPDATE SET
                        pubkey_x25519 = excluded.pubkey_x25519,
                        public_ip = excluded.public_ip,
                        storage_port = excluded.storage_port,
                        storage_lmq_port = excluded.storage_lmq_port,
                        version = excluded.version,
                        registered_at_ms = excluded.registered_at_ms,
                        last_seen_ms = excluded.last_seen_ms,
                        last_timestamp_ms = excluded.last_timestamp_ms,
                        active = excluded.active,
                        swarm_id = excluded.swarm_id",
                )
                .map_err(db("saving nodes"))?;
            for n in nodes {
                let version = serde_json::to_string(&n.announcement.version)
                    .map_err(|e| RegistryError::Corrupt(e.to_string()))?;
                stmt.execute(params![
                    n.pubkey_ed25519.as_bytes().as_slice(),
                    n.pubkey_x25519.as_bytes().as_slice(),
                    n.announcement.public_ip.to_string(),
                    n.announcement.storage_port,
                    n.announcement.storage_lmq_port,
                    version,
                    to_i64(n.registered_at_ms),
                    to_i64(n.last_seen_ms),
                    to_i64(n.last_timestamp_ms),
                    n.active,
                    to_i64(n.swarm_id),
                ])
                .map_err(db("saving nodes"))?;
            }
            if let Some(list) = list {
                let json = serde_json::to_string(list)
                    .map_err(|e| RegistryError::Corrupt(e.to_string()))?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('list', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![json],
                )
                .map_err(db("saving the node list"))?;
            }
        }
        tx.commit().map_err(db("committing"))
    }
}
