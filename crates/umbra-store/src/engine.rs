//! Opening the RocksDB engine: the bounded resources of [`crate::Resources`], the column
//! families of [`crate::keys`], the layout version, and the refusal of a store of the old
//! SQLite format.

use std::io::Read as _;
use std::path::Path;

use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor,
    DBCompressionType, Options,
};

use crate::config::StoreConfig;
use crate::error::{Result, StoreError};
use crate::keys::{self, ALL_CFS, CF_META, FORMAT_VERSION, META_FORMAT, META_SEQ};

/// The engine: one optimistic-transaction database (the writer thread is its only writer, so a
/// transaction never conflicts; it gives a batch read-your-writes and per-command savepoints).
pub(crate) type Db = rocksdb::OptimisticTransactionDB;

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Refuses `path` when it is a database file of the old SQLite store (or any other file): a
/// node's data must never be silently ignored or overwritten.
pub fn refuse_old_format(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        return Ok(());
    }
    let mut head = [0u8; 16];
    let is_sqlite = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == SQLITE_MAGIC;
    if is_sqlite {
        return Err(StoreError::OldSqliteFormat {
            path: path.to_path_buf(),
        });
    }
    Err(StoreError::NotAStore {
        path: path.to_path_buf(),
    })
}

/// The options every column family shares: no compression (the payloads are ciphertext), the
/// shared block cache with bloom filters, bounded memtables.
fn cf_options(config: &StoreConfig, cache: &Cache) -> Options {
    let r = &config.resources;
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    table.set_cache_index_and_filter_blocks(true);
    // Partitioned index and filters. A table's index and filter are otherwise one block each,
    // about 1 MiB apiece for a 64 MiB file of messages: from about a million messages they no
    // longer stayed in the block cache, and every point lookup of the writer re-read and
    // re-checksummed them from the file (store_scale: the load fell from 35 000 to 3 000
    // stores/s, and sweep calls of 5 000 messages took up to 4 s). Partitioned, a lookup reads
    // one 4 KiB index partition and one filter partition; only each table's small top level
    // stays pinned (about 10 KiB per 64 MiB file), so memory stays bounded by the cache.
    table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(true);
    table.set_metadata_block_size(4096);
    table.set_pin_top_level_index_and_filter(true);
    let mut o = Options::default();
    o.set_block_based_table_factory(&table);
    o.set_compression_type(DBCompressionType::None);
    o.set_write_buffer_size((r.write_buffer_bytes / 4).max(64 * 1024));
    o.set_max_write_buffer_number(2);
    o
}

fn db_options(config: &StoreConfig, cache: &Cache) -> Options {
    let r = &config.resources;
    let mut o = cf_options(config, cache);
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_db_write_buffer_size(r.write_buffer_bytes.max(256 * 1024));
    o.set_max_open_files(r.max_open_files.max(16));
    o.set_max_background_jobs(r.background_jobs.max(1));
    // The WAL is what makes a write durable; bound it so that memtables get flushed.
    o.set_max_total_wal_size(
        u64::try_from(r.write_buffer_bytes.saturating_mul(4)).unwrap_or(u64::MAX),
    );
    // RocksDB's own info log: small and few.
    o.set_keep_log_file_num(2);
    o.set_max_log_file_size(1024 * 1024);
    o
}

/// Opens (creating if needed) the store's directory at `path` and checks its layout version.
/// Returns the database and the next insertion seq.
pub(crate) fn open(path: &Path, config: &StoreConfig) -> Result<(Db, u64)> {
    refuse_old_format(path)?;
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let cache = Cache::new_lru_cache(config.resources.block_cache_bytes.max(1024 * 1024));
    let cfs = ALL_CFS
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(config, &cache)));
    let db = Db::open_cf_descriptors(&db_options(config, &cache), path, cfs).map_err(|e| {
        // RocksDB reports a held lock as an IO error on the directory's `LOCK` file (from
        // another process: "Resource temporarily unavailable"; from this one: "lock hold by
        // current process"); its error kind alone does not tell it from a real IO failure.
        if e.as_ref().contains("/LOCK") {
            StoreError::InUse {
                path: path.to_path_buf(),
            }
        } else {
            open_err(e)
        }
    })?;
    let meta = cf(&db, CF_META)?;
    let read = StoreError::db("open");
    match db.get_cf(meta, META_FORMAT).map_err(&read)? {
        None => {
            db.put_cf(meta, META_FORMAT, FORMAT_VERSION.to_be_bytes())
                .map_err(&read)?;
        }
        Some(v) => {
            let found = keys::parse_u64(&v)?.cast_signed();
            if found > FORMAT_VERSION {
                return Err(StoreError::SchemaTooNew {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
        }
    }
    let seq = match db.get_cf(meta, META_SEQ).map_err(&read)? {
        Some(v) => keys::parse_u64(&v)?,
        None => 1,
    };
    Ok((db, seq.max(1)))
}

/// The handle of a column family opened by [`open`].
pub(crate) fn cf<'a>(db: &'a Db, name: &'static str) -> Result<&'a ColumnFamily> {
    db.cf_handle(name).ok_or(StoreError::Corrupt {
        what: "a column family is missing",
    })
}

/// Bytes of the store's files: SST files and memtables of every column family.
pub(crate) fn disk_bytes(db: &Db) -> u64 {
    let mut total = 0u64;
    for name in ALL_CFS {
        let Some(h) = db.cf_handle(name) else {
            continue;
        };
        for prop in [
            "rocksdb.total-sst-files-size",
            "rocksdb.cur-size-all-mem-tables",
        ] {
            if let Ok(Some(v)) = db.property_int_value_cf(h, prop) {
                total = total.saturating_add(v);
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_store_gets_the_format_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let (db, seq) = open(&path, &StoreConfig::default()).unwrap();
        assert_eq!(seq, 1);
        drop(db);
        let (db, _) = open(&path, &StoreConfig::default()).unwrap();
        let v = db.get_cf(cf(&db, CF_META).unwrap(), META_FORMAT).unwrap();
        assert_eq!(v.unwrap(), FORMAT_VERSION.to_be_bytes());
    }

    /// The table options that keep point lookups cheap at millions of messages (see
    /// `cf_options`), as RocksDB itself recorded them in the store's OPTIONS file.
    #[test]
    fn every_column_family_has_partitioned_index_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let (db, _) = open(&path, &StoreConfig::default()).unwrap();
        drop(db);
        let options = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("OPTIONS-"))
            })
            .max()
            .unwrap();
        let text = std::fs::read_to_string(options).unwrap();
        for name in ALL_CFS {
            let header = format!("[TableOptions/BlockBasedTable \"{name}\"]");
            let t = text.split(&header).nth(1).unwrap();
            let t = t.split("\n[").next().unwrap();
            assert!(t.contains("index_type=kTwoLevelIndexSearch"), "{name}: {t}");
            assert!(t.contains("partition_filters=true"), "{name}: {t}");
            assert!(
                t.contains("pin_top_level_index_and_filter=true"),
                "{name}: {t}"
            );
        }
    }

    #[test]
    fn newer_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let (db, _) = open(&path, &StoreConfig::default()).unwrap();
            db.put_cf(cf(&db, CF_META).unwrap(), META_FORMAT, 99i64.to_be_bytes())
                .unwrap();
        }
        match open(&path, &StoreConfig::default()) {
            Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
            other => panic!("unexpected {:?}", other.map(|_| ())),
        }
    }
}
