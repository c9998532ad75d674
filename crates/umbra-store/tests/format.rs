//! The on-disk format: a store of the old SQLite format (or any other file) is refused with one
//! line, and never read, changed or overwritten. (Replaces the SQLite schema-migration tests:
//! the RocksDB layout's version check is tested in `src/engine.rs`.)

mod common;

use common::*;
use umbra_store::{Store, StoreConfig, StoreError};

#[test]
fn old_sqlite_store_is_refused_with_one_line_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.sqlite");
    // The first page of an SQLite database: its 16-byte magic, then anything.
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.resize(4096, 7);
    std::fs::write(&path, &bytes).unwrap();

    let e = Store::open(&path, StoreConfig::default()).unwrap_err();
    assert!(matches!(e, StoreError::OldSqliteFormat { .. }), "{e}");
    let line = e.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(line.contains("old SQLite format"), "{line}");
    assert!(line.contains("move the file"), "{line}");
    // Untouched.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    // The check alone says the same (the node runs it on its old file name).
    assert!(matches!(
        umbra_store::refuse_old_format(&path),
        Err(StoreError::OldSqliteFormat { .. })
    ));
}

#[test]
fn another_file_is_refused_and_a_missing_path_becomes_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"hello").unwrap();
    let e = Store::open(&path, StoreConfig::default()).unwrap_err();
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");

    let fresh = dir.path().join("store");
    assert!(umbra_store::refuse_old_format(&fresh).is_ok());
    let s = Store::open(&fresh, StoreConfig::default()).unwrap();
    s.store(msg(&owner(1), 0, b"hi", NOW, NOW + DAY), NOW)
        .wait()
        .unwrap();
    assert!(fresh.is_dir());
}
