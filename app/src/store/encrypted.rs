//! The device store encrypted at rest (SQLCipher: every page AES-256 with an HMAC, under the
//! device's 256-bit key), and the one-time encryption of a store an older version left plain.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode};

use super::StoreError;
use super::sqlite::SqliteStore;
use crate::files::{sync_parent_dir, with_suffix};
use crate::secrets::StoreKey;

/// What is on disk at a store's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFile {
    /// Nothing yet (missing or empty).
    New,
    /// A plain SQLite file (written before stores were encrypted).
    Plain,
    /// Anything else: an encrypted store (or not a store at all, which the key check tells).
    Encrypted,
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

pub fn store_file(path: &Path) -> Result<StoreFile, StoreError> {
    use std::io::Read;
    let io = |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StoreFile::New),
        Err(e) => return Err(io(e)),
    };
    let mut header = Vec::with_capacity(16);
    file.by_ref()
        .take(16)
        .read_to_end(&mut header)
        .map_err(io)?;
    Ok(match header.as_slice() {
        [] => StoreFile::New,
        h if h == SQLITE_HEADER => StoreFile::Plain,
        _ => StoreFile::Encrypted,
    })
}

impl SqliteStore {
    /// Open the encrypted store at `path` with `key`, creating it when missing and encrypting
    /// it first when it is a plain store. A wrong key is [`StoreError::WrongKey`], and the
    /// file is left as it is.
    pub fn open_encrypted(path: &Path, key: &StoreKey) -> Result<SqliteStore, StoreError> {
        if store_file(path)? == StoreFile::Plain {
            encrypt_in_place(path, key)?;
        }
        let conn = Connection::open(path)?;
        // The key's 64 hex digits as a raw key: no passphrase derivation.
        conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", key.hex()))?;
        // SQLCipher checks the key at the first read.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::WrongKey {
                path: path.display().to_string(),
            },
            _ => StoreError::from(e),
        })?;
        SqliteStore::init(conn)
    }
}

/// Replace the plain store at `path` with an encrypted copy. The copy is written beside it and
/// renamed over it only when complete and on disk, so a process killed at any moment leaves
/// either the whole plain store or the whole encrypted one (and a leftover copy, removed on
/// the next attempt). The key must already be kept: see [`crate::secrets::Secrets::new_store_key`].
fn encrypt_in_place(path: &Path, key: &StoreKey) -> Result<(), StoreError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| StoreError::Io { path: p, source }
    };
    let copy = with_suffix(path, ".encrypting");
    for leftover in [copy.clone(), with_suffix(&copy, "-journal")] {
        match std::fs::remove_file(&leftover) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&leftover)(e)),
            _ => {}
        }
    }
    {
        let conn = Connection::open(path)?;
        // Everything in the main file: the WAL is not carried over.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let quoted = copy.display().to_string().replace('\'', "''");
        conn.execute_batch(&format!(
            "ATTACH DATABASE '{quoted}' AS encrypted KEY \"x'{}'\";
             SELECT sqlcipher_export('encrypted');
             PRAGMA encrypted.user_version = {version};
             DETACH DATABASE encrypted;",
            key.hex()
        ))?;
        // Closing the last connection removes the (empty) WAL and its index.
    }
    super::private::private_store_files(&copy)?;
    std::fs::File::open(&copy)
        .and_then(|f| f.sync_all())
        .map_err(io(&copy))?;
    std::fs::rename(&copy, path).map_err(io(path))?;
    sync_parent_dir(path);
    tracing::info!(store = %path.display(), "the store is now encrypted");
    Ok(())
}

/// Empty the store on `conn` (see [`super::DossierStore::wipe`]): every table's rows, the
/// full-text indexes through their virtual tables (their shadow tables follow), then VACUUM so
/// no freed page keeps old content, then the files unlinked (Unix: the open connection keeps
/// working on the unlinked file, which disappears with it).
pub(super) fn wipe(conn: &mut Connection) -> Result<(), StoreError> {
    let tables: Vec<(String, bool)> = conn
        .prepare(
            "SELECT name, sql LIKE 'CREATE VIRTUAL TABLE%' FROM sqlite_master \
             WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let virtual_tables: Vec<&str> = tables
        .iter()
        .filter(|(_, v)| *v)
        .map(|(n, _)| n.as_str())
        .collect();
    let tx = conn.transaction()?;
    for (name, _) in &tables {
        let shadow = virtual_tables
            .iter()
            .any(|v| name != v && name.starts_with(&format!("{v}_")));
        if !shadow {
            tx.execute(
                &format!("DELETE FROM \"{}\"", name.replace('"', "\"\"")),
                [],
            )?;
        }
    }
    tx.commit()?;
    conn.execute_batch("VACUUM;")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    #[cfg(unix)]
    if let Some(path) = conn.path().filter(|p| !p.is_empty()).map(PathBuf::from) {
        for suffix in ["", "-wal", "-shm"] {
            let file = with_suffix(&path, suffix);
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StoreError::Io {
                        path: file.display().to_string(),
                        source: e,
                    });
                }
                _ => {}
            }
        }
    }
    Ok(())
}
