//! Blobs on disk, metadata in SQLite.
//!
//! ```text
//! <data_dir>/attachments.sqlite   files(id, size, uploaded_ms, expires_ms), uploads(...)
//! <data_dir>/tmp/<n>.part         bodies being received (wiped at every start)
//! <data_dir>/blobs/<file id>      finished files, content-addressed by their id
//! <data_dir>/uploads/<upload id>/<chunk index>   verified chunks of a chunked upload
//! ```
//!
//! Why SQLite rather than a file per blob's metadata: the expiry sweep needs the files by
//! expiry (an index), the quota needs a sum, a re-upload must update `uploaded` and `expires`
//! together, and completing a chunked upload must register the file and close the upload in one
//! step; SQLite gives all of it atomically, and the node and registry already use it.
//!
//! Crash safety (kill -9 at any point): a body goes to `tmp/`, is checked (size, hash),
//! `fsync`ed, renamed into `blobs/` (the directory `fsync`ed), and only then gets its row. A
//! file is served only through its row, so a half-written or unregistered blob is never
//! visible, and a client hears "stored" only after the row committed. At start
//! [`Store::open`] wipes `tmp/`, deletes blobs without a row and rows without a blob. Chunks
//! follow the same rule: a chunk file exists under `uploads/` only once its hash matched.
//!
//! The connection's mutex also serialises each rename-and-insert against the sweep's
//! delete-and-unlink, so a sweep never unlinks a blob that a concurrent upload just
//! registered.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::AttachmentError;
use crate::id::{FileId, FileIdHasher};
use crate::parse::Manifest;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files (
    id          TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    uploaded_ms INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_expiry ON files(expires_ms);
CREATE TABLE IF NOT EXISTS uploads (
    id         TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    chunk_size INTEGER NOT NULL,
    hashes     BLOB NOT NULL,
    touched_ms INTEGER NOT NULL,
    file_id    TEXT
);
";

/// What the server knows of one stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The id.
    pub id: FileId,
    /// Bytes.
    pub size: u64,
    /// Last upload of these bytes, Unix ms.
    pub uploaded_ms: u64,
    /// Expiry, Unix ms.
    pub expires_ms: u64,
}

/// A chunked upload's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadState {
    /// The upload id.
    pub id: FileId,
    /// Its manifest.
    pub manifest: Manifest,
    /// Chunks the server holds (ascending).
    pub have: Vec<u64>,
    /// The finished file, once completed.
    pub file: Option<FileId>,
}

/// What [`Store::open`] cleaned up after a crash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Partial bodies removed from `tmp/`.
    pub temp_files: u64,
    /// Blobs without a row (a crash between rename and insert) removed.
    pub orphan_blobs: u64,
    /// Rows whose blob was missing removed.
    pub missing_blobs: u64,
    /// Upload directories without a row removed.
    pub orphan_uploads: u64,
}

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired files.
    pub files: u64,
    /// Abandoned or finished uploads.
    pub uploads: u64,
}

/// The store: the data directory and its database.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    dir: PathBuf,
    next_temp: AtomicU64,
    quota: u64,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// `fsync`s a directory so a rename into it survives a power loss.
fn sync_dir(dir: &Path) -> Result<(), AttachmentError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(AttachmentError::io("syncing a data directory"))
}

impl Store {
    /// Opens (creating if needed) the store in `dir` with a total quota of `quota` bytes, and
    /// cleans up what a crash left behind (see the module docs).
    ///
    /// # Errors
    /// I/O or database errors.
    pub fn open(dir: &Path, quota: u64) -> Result<(Self, Recovery), AttachmentError> {
        for sub in ["tmp", "blobs", "uploads"] {
            fs::create_dir_all(dir.join(sub))
                .map_err(AttachmentError::io("creating the data directories"))?;
        }
        let conn = Connection::open(dir.join("attachments.sqlite"))
            .map_err(AttachmentError::db("opening the database"))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .map_err(AttachmentError::db("setting the journal mode"))?;
        conn.execute_batch(SCHEMA)
            .map_err(AttachmentError::db("creating the schema"))?;
        let store = Self {
            conn: Mutex::new(conn),
            dir: dir.to_owned(),
            next_temp: AtomicU64::new(0),
            quota,
        };
        let recovery = store.recover()?;
        Ok((store, recovery))
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, AttachmentError> {
        self.conn
            .lock()
            .map_err(|_| AttachmentError::Corrupt("database lock poisoned".into()))
    }

    fn blob_path(&self, id: &FileId) -> PathBuf {
        self.dir.join("blobs").join(id.as_str())
    }

    fn upload_dir(&self, id: &FileId) -> PathBuf {
        self.dir.join("uploads").join(id.as_str())
    }

    /// A fresh path in `tmp/` for a body being received. Names need only be unique within this
    /// process: `tmp/` is wiped at every start.
    pub fn temp_path(&self) -> PathBuf {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        self.dir.join("tmp").join(format!("{n}.part"))
    }

    fn recover(&self) -> Result<Recovery, AttachmentError> {
        let mut r = Recovery::default();
        let list = |sub: &str| -> Result<Vec<(String, PathBuf)>, AttachmentError> {
            let mut out = Vec::new();
            for entry in fs::read_dir(self.dir.join(sub))
                .map_err(AttachmentError::io("listing a data directory"))?
            {
                let entry = entry.map_err(AttachmentError::io("listing a data directory"))?;
                out.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    entry.path(),
                ));
            }
            Ok(out)
        };
        for (_, path) in list("tmp")? {
            remove_any(&path)?;
            r.temp_files += 1;
        }
        let conn = self.lock()?;
        let known_files = ids(&conn, "SELECT id FROM files")?;
        for (name, path) in list("blobs")? {
            if !known_files.contains(&name) {
                remove_any(&path)?;
                r.orphan_blobs += 1;
            }
        }
        for id in &known_files {
            if !self.dir.join("blobs").join(id).is_file() {
                tracing::warn!(
                    "a registered blob is missing from the data directory; dropping its row"
                );
                conn.execute("DELETE FROM files WHERE id = ?1", params![id])
                    .map_err(AttachmentError::db("dropping a row without blob"))?;
                r.missing_blobs += 1;
            }
        }
        let known_uploads = ids(&conn, "SELECT id FROM uploads")?;
        for (name, path) in list("uploads")? {
            if !known_uploads.contains(&name) {
                remove_any(&path)?;
                r.orphan_uploads += 1;
            }
        }
        Ok(r)
    }

    /// Bytes stored or reserved by open chunked uploads (what the quota counts).
    ///
    /// # Errors
    /// Database errors.
    pub fn used_bytes(&self) -> Result<u64, AttachmentError> {
        used(&*self.lock()?)
    }

    /// Number of stored files (expired ones included until swept).
    ///
    /// # Errors
    /// Database errors.
    pub fn file_count(&self) -> Result<u64, AttachmentError> {
        let conn = self.lock()?;
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM files", [], |r| r.get(0))
            .map_err(AttachmentError::db("counting files"))?;
        Ok(to_u64(n))
    }

    /// Registers a received body: `temp` (already `fsync`ed, `size` bytes, id `id`) becomes the
    /// blob `id`, expiring `ttl_ms` after `now_ms`. Identical bytes uploaded again keep one blob
    /// and only reset `uploaded` and `expires` (`groups-config-attachments.md` §3.3).
    ///
    /// # Errors
    /// [`AttachmentError::QuotaFull`] when a new blob would pass the quota (the temp file is
    /// removed); I/O and database errors.
    pub fn commit_blob(
        &self,
        temp: &Path,
        id: &FileId,
        size: u64,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<FileInfo, AttachmentError> {
        let mut conn = self.lock()?;
        let info = self.commit_locked(&mut conn, temp, id, size, now_ms, ttl_ms, None)?;
        Ok(info)
    }

    #[allow(clippy::too_many_arguments)]
    fn commit_locked(
        &self,
        conn: &mut Connection,
        temp: &Path,
        id: &FileId,
        size: u64,
        now_ms: u64,
        ttl_ms: u64,
        upload: Option<&FileId>,
    ) -> Result<FileInfo, AttachmentError> {
        let expires_ms = now_ms.saturating_add(ttl_ms);
        let existing: Option<i64> = conn
            .query_row(
                "SELECT size FROM files WHERE id = ?1",
                params![id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(AttachmentError::db("looking up a file"))?;
        let blob = self.blob_path(id);
        if existing.is_some() && blob.is_file() {
            // Same id, same bytes: one blob, fresh times.
            let _ = fs::remove_file(temp);
        } else {
            // An open upload's reservation already counts its bytes.
            let reserved = match upload {
                Some(_) => size,
                None => 0,
            };
            let in_use = used(conn)?.saturating_sub(reserved);
            if in_use.saturating_add(size) > self.quota {
                let _ = fs::remove_file(temp);
                return Err(AttachmentError::QuotaFull {
                    size,
                    used: in_use,
                    quota: self.quota,
                });
            }
            fs::rename(temp, &blob).map_err(AttachmentError::io("moving a blob into place"))?;
            sync_dir(&self.dir.join("blobs"))?;
        }
        let tx = conn
            .transaction()
            .map_err(AttachmentError::db("starting a transaction"))?;
        tx.execute(
            "INSERT INTO files (id, size, uploaded_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET uploaded_ms = ?3, expires_ms = ?4",
            params![
                id.as_str(),
                to_i64(size),
                to_i64(now_ms),
                to_i64(expires_ms)
            ],
        )
        .map_err(AttachmentError::db("registering a file"))?;
        if let Some(upload) = upload {
            tx.execute(
                "UPDATE uploads SET file_id = ?2, touched_ms = ?3 WHERE id = ?1",
                params![upload.as_str(), id.as_str(), to_i64(now_ms)],
            )
            .map_err(AttachmentError::db("closing an upload"))?;
        }
        tx.commit()
            .map_err(AttachmentError::db("registering a file"))?;
        Ok(FileInfo {
            id: id.clone(),
            size,
            uploaded_ms: now_ms,
            expires_ms,
        })
    }

    /// The file `id` if it exists and has not expired at `now_ms`.
    ///
    /// # Errors
    /// Database errors.
    pub fn info(&self, id: &FileId, now_ms: u64) -> Result<Option<FileInfo>, AttachmentError> {
        info_locked(&*self.lock()?, id, now_ms)
    }

    /// Opens the blob of a live file (the open descriptor stays readable even if a sweep
    /// removes the file meanwhile).
    ///
    /// # Errors
    /// [`AttachmentError::NotFound`] if unknown or expired; I/O and database errors.
    pub fn open_blob(
        &self,
        id: &FileId,
        now_ms: u64,
    ) -> Result<(fs::File, FileInfo), AttachmentError> {
        let conn = self.lock()?;
        let info = info_locked(&conn, id, now_ms)?.ok_or(AttachmentError::NotFound)?;
        let file =
            fs::File::open(self.blob_path(id)).map_err(AttachmentError::io("opening a blob"))?;
        Ok((file, info))
    }

    /// Extends a live file to expire no earlier than `now_ms + ttl_ms` (never shortens:
    /// `messages.md` §7 "only extends").
    ///
    /// # Errors
    /// [`AttachmentError::NotFound`] if unknown or expired; database errors.
    pub fn extend(
        &self,
        id: &FileId,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<FileInfo, AttachmentError> {
        let conn = self.lock()?;
        let mut info = info_locked(&conn, id, now_ms)?.ok_or(AttachmentError::NotFound)?;
        info.expires_ms = info.expires_ms.max(now_ms.saturating_add(ttl_ms));
        conn.execute(
            "UPDATE files SET expires_ms = ?2 WHERE id = ?1",
            params![id.as_str(), to_i64(info.expires_ms)],
        )
        .map_err(AttachmentError::db("extending a file"))?;
        Ok(info)
    }

    /// Removes files expired at `now_ms`, and uploads untouched for `upload_idle_ms`.
    ///
    /// # Errors
    /// I/O and database errors.
    pub fn sweep(&self, now_ms: u64, upload_idle_ms: u64) -> Result<Swept, AttachmentError> {
        let conn = self.lock()?;
        let mut swept = Swept::default();
        let expired = {
            let mut stmt = conn
                .prepare("SELECT id FROM files WHERE expires_ms <= ?1")
                .map_err(AttachmentError::db("listing expired files"))?;
            let rows = stmt
                .query_map(params![to_i64(now_ms)], |r| r.get::<_, String>(0))
                .map_err(AttachmentError::db("listing expired files"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(AttachmentError::db("listing expired files"))?
        };
        for id in expired {
            // Row first: a crash after it leaves an orphan blob, removed at the next start.
            conn.execute("DELETE FROM files WHERE id = ?1", params![id])
                .map_err(AttachmentError::db("removing an expired file"))?;
            remove_any(&self.dir.join("blobs").join(&id))?;
            swept.files += 1;
        }
        let cutoff = to_i64(now_ms.saturating_sub(upload_idle_ms));
        let idle = ids_param(
            &conn,
            "SELECT id FROM uploads WHERE touched_ms <= ?1",
            cutoff,
        )?;
        for id in idle {
            conn.execute("DELETE FROM uploads WHERE id = ?1", params![id])
                .map_err(AttachmentError::db("removing an idle upload"))?;
            remove_any(&self.dir.join("uploads").join(&id))?;
            swept.uploads += 1;
        }
        Ok(swept)
    }

    /// Opens (or finds again) the chunked upload of `manifest`, reserving its size in the
    /// quota.
    ///
    /// # Errors
    /// [`AttachmentError::QuotaFull`]; I/O and database errors.
    pub fn open_upload(
        &self,
        manifest: &Manifest,
        now_ms: u64,
    ) -> Result<UploadState, AttachmentError> {
        let id = manifest.upload_id()?;
        let conn = self.lock()?;
        let known = conn
            .execute(
                "UPDATE uploads SET touched_ms = ?2 WHERE id = ?1",
                params![id.as_str(), to_i64(now_ms)],
            )
            .map_err(AttachmentError::db("touching an upload"))?;
        if known == 0 {
            let in_use = used(&conn)?;
            if in_use.saturating_add(manifest.size) > self.quota {
                return Err(AttachmentError::QuotaFull {
                    size: manifest.size,
                    used: in_use,
                    quota: self.quota,
                });
            }
            fs::create_dir_all(self.upload_dir(&id))
                .map_err(AttachmentError::io("creating an upload directory"))?;
            let hashes: Vec<u8> = manifest.chunks.concat();
            conn.execute(
                "INSERT INTO uploads (id, size, chunk_size, hashes, touched_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    id.as_str(),
                    to_i64(manifest.size),
                    to_i64(manifest.chunk_size),
                    hashes,
                    to_i64(now_ms)
                ],
            )
            .map_err(AttachmentError::db("opening an upload"))?;
        }
        self.upload_locked(&conn, &id)?
            .ok_or(AttachmentError::NotFound)
    }

    /// The state of upload `id`.
    ///
    /// # Errors
    /// [`AttachmentError::NotFound`] if unknown (never opened, or swept); database errors.
    pub fn upload(&self, id: &FileId) -> Result<UploadState, AttachmentError> {
        let conn = self.lock()?;
        self.upload_locked(&conn, id)?
            .ok_or(AttachmentError::NotFound)
    }

    fn upload_locked(
        &self,
        conn: &Connection,
        id: &FileId,
    ) -> Result<Option<UploadState>, AttachmentError> {
        let row = conn
            .query_row(
                "SELECT size, chunk_size, hashes, file_id FROM uploads WHERE id = ?1",
                params![id.as_str()],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(AttachmentError::db("reading an upload"))?;
        let Some((size, chunk_size, hashes, file)) = row else {
            return Ok(None);
        };
        if hashes.len() % 32 != 0 {
            return Err(AttachmentError::Corrupt("chunk hashes of an upload".into()));
        }
        let manifest = Manifest {
            size: to_u64(size),
            chunk_size: to_u64(chunk_size),
            chunks: hashes
                .chunks_exact(32)
                .map(|c| {
                    let mut h = [0u8; 32];
                    h.copy_from_slice(c);
                    h
                })
                .collect(),
        };
        let file = match file {
            Some(f) => Some(
                FileId::parse(&f)
                    .ok_or_else(|| AttachmentError::Corrupt("file id of an upload".into()))?,
            ),
            None => None,
        };
        let mut have = Vec::new();
        if file.is_none() {
            let count = manifest.count();
            if let Ok(entries) = fs::read_dir(self.upload_dir(id)) {
                for entry in entries.flatten() {
                    if let Some(i) = entry
                        .file_name()
                        .to_str()
                        .and_then(|n| n.parse::<u64>().ok())
                        && i < count
                    {
                        have.push(i);
                    }
                }
            }
            have.sort_unstable();
        }
        Ok(Some(UploadState {
            id: id.clone(),
            manifest,
            have,
            file,
        }))
    }

    /// Moves a verified chunk (`temp`, already `fsync`ed) into upload `id` as chunk `index`.
    ///
    /// # Errors
    /// [`AttachmentError::NotFound`] if the upload is unknown or already completed; I/O and
    /// database errors.
    pub fn commit_chunk(
        &self,
        id: &FileId,
        index: u64,
        temp: &Path,
        now_ms: u64,
    ) -> Result<(), AttachmentError> {
        let conn = self.lock()?;
        let open: Option<Option<String>> = conn
            .query_row(
                "SELECT file_id FROM uploads WHERE id = ?1",
                params![id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(AttachmentError::db("reading an upload"))?;
        if !matches!(open, Some(None)) {
            let _ = fs::remove_file(temp);
            return Err(AttachmentError::NotFound);
        }
        let dir = self.upload_dir(id);
        fs::rename(temp, dir.join(index.to_string()))
            .map_err(AttachmentError::io("moving a chunk into place"))?;
        sync_dir(&dir)?;
        conn.execute(
            "UPDATE uploads SET touched_ms = ?2 WHERE id = ?1",
            params![id.as_str(), to_i64(now_ms)],
        )
        .map_err(AttachmentError::db("touching an upload"))?;
        Ok(())
    }

    /// Completes upload `id`: concatenates its chunks into one blob (streamed, computing the
    /// file id on the way), registers it as a file expiring `ttl_ms` after `now_ms`, and
    /// removes the chunks. Completing a completed upload answers its file again.
    ///
    /// Blocking (reads and writes the whole blob): call it from a blocking task.
    ///
    /// # Errors
    /// [`AttachmentError::Incomplete`] while chunks are missing; [`AttachmentError::NotFound`]
    /// for an unknown upload; I/O and database errors.
    pub fn complete_upload(
        &self,
        id: &FileId,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<FileInfo, AttachmentError> {
        let state = self.upload(id)?;
        if let Some(file) = &state.file {
            return self.info(file, now_ms)?.ok_or(AttachmentError::NotFound);
        }
        let missing = state
            .manifest
            .count()
            .saturating_sub(u64::try_from(state.have.len()).unwrap_or(0));
        if missing > 0 {
            return Err(AttachmentError::Incomplete { missing });
        }
        // Assemble outside the lock: chunks of an open upload only ever get added.
        let temp = self.temp_path();
        let file_id = self.assemble(&state, &temp).inspect_err(|_| {
            let _ = fs::remove_file(&temp);
        })?;
        let mut conn = self.lock()?;
        let info = self.commit_locked(
            &mut conn,
            &temp,
            &file_id,
            state.manifest.size,
            now_ms,
            ttl_ms,
            Some(id),
        )?;
        drop(conn);
        remove_any(&self.upload_dir(id))?;
        Ok(info)
    }

    fn assemble(&self, state: &UploadState, temp: &Path) -> Result<FileId, AttachmentError> {
        let dir = self.upload_dir(&state.id);
        let mut out =
            fs::File::create(temp).map_err(AttachmentError::io("creating a temporary file"))?;
        let mut hasher = FileIdHasher::new()?;
        let mut buf = vec![0u8; 64 * 1024];
        for index in 0..state.manifest.count() {
            let mut chunk = fs::File::open(dir.join(index.to_string()))
                .map_err(AttachmentError::io("opening a chunk"))?;
            loop {
                let n = chunk
                    .read(&mut buf)
                    .map_err(AttachmentError::io("reading a chunk"))?;
                let Some(bytes) = buf.get(..n) else { break };
                if bytes.is_empty() {
                    break;
                }
                hasher.update(bytes);
                out.write_all(bytes)
                    .map_err(AttachmentError::io("writing a blob"))?;
            }
        }
        out.sync_all()
            .map_err(AttachmentError::io("syncing a blob"))?;
        Ok(hasher.finish())
    }
}

fn used(conn: &Connection) -> Result<u64, AttachmentError> {
    let files: i64 = conn
        .query_row("SELECT COALESCE(SUM(size), 0) FROM files", [], |r| r.get(0))
        .map_err(AttachmentError::db("summing file sizes"))?;
    let uploads: i64 = conn
        .query_row(
            "SELECT COALESCE(SUM(size), 0) FROM uploads WHERE file_id IS NULL",
            [],
            |r| r.get(0),
        )
        .map_err(AttachmentError::db("summing upload sizes"))?;
    Ok(to_u64(files).saturating_add(to_u64(uploads)))
}

fn info_locked(
    conn: &Connection,
    id: &FileId,
    now_ms: u64,
) -> Result<Option<FileInfo>, AttachmentError> {
    let row = conn
        .query_row(
            "SELECT size, uploaded_ms, expires_ms FROM files WHERE id = ?1",
            params![id.as_str()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()
        .map_err(AttachmentError::db("looking up a file"))?;
    Ok(row
        .map(|(size, uploaded, expires)| FileInfo {
            id: id.clone(),
            size: to_u64(size),
            uploaded_ms: to_u64(uploaded),
            expires_ms: to_u64(expires),
        })
        .filter(|i| i.expires_ms > now_ms))
}

fn ids(conn: &Connection, sql: &str) -> Result<std::collections::HashSet<String>, AttachmentError> {
    let mut stmt = conn
        .prepare(sql)
        .map_err(AttachmentError::db("listing ids"))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(AttachmentError::db("listing ids"))?;
    rows.collect::<Result<_, _>>()
        .map_err(AttachmentError::db("listing ids"))
}

fn ids_param(conn: &Connection, sql: &str, p: i64) -> Result<Vec<String>, AttachmentError> {
    let mut stmt = conn
        .prepare(sql)
        .map_err(AttachmentError::db("listing ids"))?;
    let rows = stmt
        .query_map(params![p], |r| r.get::<_, String>(0))
        .map_err(AttachmentError::db("listing ids"))?;
    rows.collect::<Result<_, _>>()
        .map_err(AttachmentError::db("listing ids"))
}

/// Removes a file or directory tree; already gone is fine.
fn remove_any(path: &Path) -> Result<(), AttachmentError> {
    let result = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AttachmentError::Io {
            what: "removing a data file",
            source: e,
        }),
    }
}
