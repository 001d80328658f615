//! The relay's embedded default store: one SQLite file, WAL, every commit synced to disk
//! before the relay acknowledges it.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use fieldbook_shared::sync::wire::{DeviceStatus, Role, Visibility};
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};

use super::{
    Chunk, DeviceAuth, DeviceId, DeviceRow, DocReaders, DocVersion, DocWrite, RelayStore, Rewrite,
    StoreError, StoredDoc, StoredSnapshot, TeamId, TeamVisibility, Unchecked, WebAuth,
    readers_from_text, readers_text, visibility_word, withdrawn,
};

const SCHEMA: &str = r#"
CREATE TABLE team (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- the team's change sequence: bumped once per dossier written
    seq INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE user (
    id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL REFERENCES team (id),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    UNIQUE (team_id, name)
) STRICT;
CREATE TABLE invite (
    code_hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES user (id),
    expires_ms INTEGER NOT NULL,
    used_ms INTEGER
) STRICT;
CREATE TABLE device (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES user (id),
    name TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    enrolled_ms INTEGER NOT NULL,
    revoked_ms INTEGER,
    unsynced INTEGER,
    last_sync_ms INTEGER,
    reported_ms INTEGER
) STRICT;
CREATE TABLE revocation (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL
) STRICT;
-- Dossiers are scoped by team: another team's ids simply do not exist here.
CREATE TABLE doc (
    team_id INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    heads BLOB NOT NULL,
    projection TEXT NOT NULL,
    PRIMARY KEY (team_id, doc_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX doc_by_seq ON doc (team_id, seq);
CREATE TABLE doc_chunk (
    team_id INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (team_id, doc_id, n)
) STRICT, WITHOUT ROWID;
"#;

/// Web logins for managers: a password (argon2 PHC string) per user, sessions by token hash.
const WEB_SCHEMA: &str = r#"
ALTER TABLE user ADD COLUMN password_hash TEXT;
CREATE TABLE session (
    token_hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES user (id),
    expires_ms INTEGER NOT NULL,
    language TEXT
) STRICT;
"#;

/// Each dossier's board row in a table of its own: in `doc` it would sit behind the projection,
/// whose search text spills into overflow pages that a board load would then read too.
/// Dossiers stored before get their projection (which holds the same and more) as their row.
const BOARD_SCHEMA: &str = r#"
CREATE TABLE board_row (
    team_id INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (team_id, doc_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX board_row_by_seq ON board_row (team_id, seq);
INSERT INTO board_row (team_id, doc_id, seq, row) SELECT team_id, doc_id, seq, projection FROM doc;
"#;

/// When the relay recorded a device's last completed sync, on the relay's clock (a device's
/// clock may be wrong). Devices that reported a completed sync before get their last report's
/// time, as the freshness shown until then did.
const SYNCED_SCHEMA: &str = r#"
ALTER TABLE device ADD COLUMN synced_ms INTEGER;
UPDATE device SET synced_ms = reported_ms WHERE last_sync_ms IS NOT NULL;
"#;

/// Dossiers written with a projection a device worked out, not yet checked against their
/// document by the relay (see [`RelayStore::unchecked`]), oldest first.
const UNCHECKED_SCHEMA: &str = r#"
CREATE TABLE unchecked (
    team_id INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (team_id, doc_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX unchecked_by_seq ON unchecked (seq);
"#;

/// Visibility per rep: each dossier's readers (its owner and those it is shared with, joined
/// by newlines) and the team sequence of its first write; the team's policy and when it was
/// last set; and who stopped being a reader of which dossier, at which write. Dossiers stored
/// before get their owner from their projection as their readers (sharing came later) and
/// their last write as their first.
const VISIBILITY_SCHEMA: &str = r#"
ALTER TABLE doc ADD COLUMN readers TEXT NOT NULL DEFAULT '';
ALTER TABLE doc ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 0;
UPDATE doc SET created_seq = seq, readers = COALESCE((
    SELECT CASE WHEN instr(o, char(10)) > 0 THEN '' ELSE o END FROM (
        SELECT trim(json_extract(projection, '$.summary.owner'), char(32, 9, 10, 13)) AS o
        WHERE CASE WHEN json_valid(projection)
                   THEN json_type(projection, '$.summary.owner') = 'text' END
    )
), '');
ALTER TABLE team ADD COLUMN visibility TEXT NOT NULL DEFAULT 'team';
ALTER TABLE team ADD COLUMN visibility_set_at INTEGER NOT NULL DEFAULT 0;
CREATE TABLE withdrawal (
    team_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    user_name TEXT NOT NULL,
    doc_id TEXT NOT NULL
) STRICT;
CREATE INDEX withdrawal_by_user ON withdrawal (team_id, user_name, seq);
"#;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(SCHEMA),
        M::up(WEB_SCHEMA),
        M::up(BOARD_SCHEMA),
        M::up(SYNCED_SCHEMA),
        M::up(UNCHECKED_SCHEMA),
        // Whether a revoked device wipes its replica and key (team policy, on by default).
        M::up("ALTER TABLE team ADD COLUMN wipe_on_revoke INTEGER NOT NULL DEFAULT 1;"),
        M::up(VISIBILITY_SCHEMA),
    ])
}

fn db_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
        _ => StoreError::Database(e.to_string()),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        db_err(e)
    }
}

/// Turns at writing, shared by the connections of one process to one file.
///
/// Another process may write the same file too (an admin command beside a running relay), so
/// every writing transaction also begins IMMEDIATE: it waits (up to the busy timeout) for the
/// file's write lock up front, where a deferred one that read first would fail at once with
/// "busy" when the other process had written since.
#[derive(Clone, Default)]
pub struct WriteTurn(Arc<Mutex<()>>);

impl WriteTurn {
    fn take(&self) -> MutexGuard<'_, ()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct SqliteRelayStore {
    conn: Connection,
    writes: WriteTurn,
}

impl SqliteRelayStore {
    pub fn open(path: &Path) -> Result<SqliteRelayStore, StoreError> {
        Self::open_with(path, WriteTurn::default())
    }

    /// A connection that writes in turn with the others given the same `writes`.
    pub fn open_with(path: &Path, writes: WriteTurn) -> Result<SqliteRelayStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Database(format!("{}: {e}", dir.display())))?;
        }
        Self::init(Connection::open(path)?, writes)
    }

    pub fn in_memory() -> Result<SqliteRelayStore, StoreError> {
        Self::init(Connection::open_in_memory()?, WriteTurn::default())
    }

    fn init(mut conn: Connection, writes: WriteTurn) -> Result<SqliteRelayStore, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        // FULL: a commit is on disk before the relay acknowledges what it holds.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        {
            let _turn = writes.take();
            migrations()
                .to_latest(&mut conn)
                .map_err(|e| StoreError::Migration(e.to_string()))?;
        }
        Ok(SqliteRelayStore { conn, writes })
    }

    /// Cap the file size in pages (to test the disk-full path).
    pub fn set_max_pages(&self, pages: u64) -> Result<(), StoreError> {
        self.conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        Ok(())
    }
}

fn role(s: &str) -> Result<Role, rusqlite::Error> {
    s.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

fn heads_blob(heads: &[[u8; 32]]) -> Vec<u8> {
    heads.concat()
}

fn heads_from_blob(blob: &[u8]) -> Result<Vec<[u8; 32]>, StoreError> {
    if !blob.len().is_multiple_of(32) {
        return Err(StoreError::BadRow(format!("heads of {} bytes", blob.len())));
    }
    Ok(blob
        .chunks_exact(32)
        .map(|c| c.try_into().expect("chunks of 32"))
        .collect())
}

/// A team's visibility policy as stored.
fn team_visibility(conn: &Connection, team: TeamId) -> Result<TeamVisibility, StoreError> {
    let row: Option<(String, i64)> = conn
        .prepare_cached("SELECT visibility, visibility_set_at FROM team WHERE id = ?1")?
        .query_row([team], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (word, set_at) = row.ok_or_else(|| StoreError::NoTeam(team.to_string()))?;
    Ok(TeamVisibility {
        policy: visibility_word(&word)?,
        set_at: u64::try_from(set_at).unwrap_or(0),
    })
}

const AUTH_SELECT: &str = "SELECT d.id, t.id, t.name, u.name, u.role FROM device d \
     JOIN user u ON u.id = d.user_id JOIN team t ON t.id = u.team_id";

fn auth_row(r: &rusqlite::Row<'_>) -> Result<DeviceAuth, rusqlite::Error> {
    Ok(DeviceAuth {
        device_id: r.get(0)?,
        team_id: r.get(1)?,
        team: r.get(2)?,
        user: r.get(3)?,
        role: role(&r.get::<_, String>(4)?)?,
    })
}

impl RelayStore for SqliteRelayStore {
    fn create_team(&mut self, name: &str, now_ms: i64) -> Result<TeamId, StoreError> {
        let _turn = self.writes.take();
        match self.conn.execute(
            "INSERT INTO team (name, created_ms) VALUES (?1, ?2)",
            params![name, now_ms],
        ) {
            Ok(_) => Ok(self.conn.last_insert_rowid()),
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                Err(StoreError::TeamExists(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn teams(&self) -> Result<Vec<TeamId>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id FROM team ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn team_id(&self, name: &str) -> Result<Option<TeamId>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT id FROM team WHERE name = ?1", [name], |r| r.get(0))
            .optional()?)
    }

    fn create_invite(
        &mut self,
        team: TeamId,
        user: &str,
        role: Role,
        code_hash: &[u8; 32],
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.writes.take();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO user (team_id, name, role) VALUES (?1, ?2, ?3) \
             ON CONFLICT (team_id, name) DO UPDATE SET role = excluded.role",
            params![team, user, role.as_str()],
        )?;
        let user_id: i64 = tx.query_row(
            "SELECT id FROM user WHERE team_id = ?1 AND name = ?2",
            params![team, user],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO invite (code_hash, user_id, expires_ms) VALUES (?1, ?2, ?3)",
            params![code_hash.as_slice(), user_id, expires_ms],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn redeem_invite(
        &mut self,
        code_hash: &[u8; 32],
        device_name: &str,
        token_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<Option<DeviceAuth>, StoreError> {
        let _turn = self.writes.take();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Marking it used in the same statement that checks it: two devices racing with one
        // code cannot both win.
        let user_id: Option<i64> = tx
            .query_row(
                "UPDATE invite SET used_ms = ?2 WHERE code_hash = ?1 AND used_ms IS NULL \
                 AND expires_ms > ?2 RETURNING user_id",
                params![code_hash.as_slice(), now_ms],
                |r| r.get(0),
            )
            .optional()?;
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        tx.execute(
            "INSERT INTO device (user_id, name, token_hash, enrolled_ms) VALUES (?1, ?2, ?3, ?4)",
            params![user_id, device_name, token_hash.as_slice(), now_ms],
        )?;
        let id = tx.last_insert_rowid();
        let auth = tx.query_row(&format!("{AUTH_SELECT} WHERE d.id = ?1"), [id], auth_row)?;
        tx.commit()?;
        Ok(Some(auth))
    }

    fn device_by_token(&self, token_hash: &[u8; 32]) -> Result<Option<DeviceAuth>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "{AUTH_SELECT} WHERE d.token_hash = ?1 AND d.revoked_ms IS NULL"
            ))?
            .query_row([token_hash.as_slice()], auth_row)
            .optional()?)
    }

    fn devices(&self, team: Option<TeamId>) -> Result<Vec<DeviceRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT d.id, t.name, u.name, u.role, d.name, d.enrolled_ms, d.revoked_ms, \
             d.unsynced, d.last_sync_ms, d.reported_ms, d.synced_ms FROM device d \
             JOIN user u ON u.id = d.user_id JOIN team t ON t.id = u.team_id \
             WHERE ?1 IS NULL OR t.id = ?1 ORDER BY t.name, u.name, d.id",
        )?;
        let rows = stmt.query_map([team], |r| {
            let unsynced: Option<i64> = r.get(7)?;
            Ok(DeviceRow {
                device_id: r.get(0)?,
                team: r.get(1)?,
                user: r.get(2)?,
                role: role(&r.get::<_, String>(3)?)?,
                name: r.get(4)?,
                enrolled_ms: r.get(5)?,
                revoked_ms: r.get(6)?,
                status: unsynced.map(|n| DeviceStatus {
                    unsynced: u64::try_from(n).unwrap_or(0),
                    last_sync_ms: r.get(8).ok().flatten(),
                }),
                reported_ms: r.get(9)?,
                synced_ms: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn revoked_token(&self, token_hash: &[u8; 32]) -> Result<Option<bool>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT t.wipe_on_revoke FROM device d JOIN user u ON u.id = d.user_id \
                 JOIN team t ON t.id = u.team_id \
                 WHERE d.token_hash = ?1 AND d.revoked_ms IS NOT NULL",
            )?
            .query_row([token_hash.as_slice()], |r| r.get::<_, bool>(0))
            .optional()?)
    }

    fn set_wipe_on_revoke(&mut self, team: TeamId, wipe: bool) -> Result<(), StoreError> {
        let _turn = self.writes.take();
        self.conn.execute(
            "UPDATE team SET wipe_on_revoke = ?2 WHERE id = ?1",
            params![team, wipe],
        )?;
        Ok(())
    }

    fn revoke_device(&mut self, device: DeviceId, now_ms: i64) -> Result<bool, StoreError> {
        let _turn = self.writes.take();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE device SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
            params![device, now_ms],
        )?;
        if n > 0 {
            tx.execute("INSERT INTO revocation (device_id) VALUES (?1)", [device])?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    fn revocations_after(&self, after: i64) -> Result<Vec<(i64, DeviceId)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, device_id FROM revocation WHERE id > ?1 ORDER BY id")?;
        let rows = stmt.query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn report_status(
        &mut self,
        device: DeviceId,
        status: &DeviceStatus,
        completed: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.writes.take();
        self.conn
            .prepare_cached(
                "UPDATE device SET unsynced = ?2, last_sync_ms = ?3, reported_ms = ?4, \
                 synced_ms = CASE WHEN ?5 THEN ?4 ELSE synced_ms END WHERE id = ?1",
            )?
            .execute(params![
                device,
                i64::try_from(status.unsynced).unwrap_or(i64::MAX),
                status.last_sync_ms,
                now_ms,
                completed,
            ])?;
        Ok(())
    }

    fn changed_since(&self, team: TeamId, since: u64) -> Result<(u64, Vec<String>), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let seq: i64 = tx.query_row("SELECT seq FROM team WHERE id = ?1", [team], |r| r.get(0))?;
        let since = i64::try_from(since).unwrap_or(i64::MAX);
        let ids = {
            let mut stmt = tx.prepare_cached(
                "SELECT doc_id FROM doc WHERE team_id = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![team, since], |r| r.get(0))?;
            rows.collect::<Result<Vec<String>, _>>()?
        };
        tx.finish()?;
        Ok((u64::try_from(seq).unwrap_or(0), ids))
    }

    fn load_doc(&self, team: TeamId, doc: &str) -> Result<Option<StoredDoc>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let seq: Option<i64> = tx
            .prepare_cached("SELECT seq FROM doc WHERE team_id = ?1 AND doc_id = ?2")?
            .query_row(params![team, doc], |r| r.get(0))
            .optional()?;
        let Some(seq) = seq else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        let mut chunks = 0;
        {
            let mut stmt = tx.prepare_cached(
                "SELECT bytes FROM doc_chunk WHERE team_id = ?1 AND doc_id = ?2 ORDER BY n",
            )?;
            let mut rows = stmt.query(params![team, doc])?;
            while let Some(row) = rows.next()? {
                bytes.extend_from_slice(row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?);
                chunks += 1;
            }
        }
        tx.finish()?;
        Ok(Some(StoredDoc {
            bytes,
            chunks,
            seq: u64::try_from(seq).unwrap_or(0),
        }))
    }

    fn doc_version(&self, team: TeamId, doc: &str) -> Result<Option<DocVersion>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT seq, heads FROM doc WHERE team_id = ?1 AND doc_id = ?2")?
            .query_row(params![team, doc], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(seq, heads)| {
            Ok(DocVersion {
                seq: u64::try_from(seq).unwrap_or(0),
                heads: heads_from_blob(&heads)?,
            })
        })
        .transpose()
    }

    fn write_docs(&mut self, team: TeamId, batch: &[DocWrite]) -> Result<u64, StoreError> {
        let _turn = self.writes.take();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut seq: i64 = tx
            .query_row("SELECT seq FROM team WHERE id = ?1", [team], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NoTeam(team.to_string()))?;
        for w in batch {
            seq += 1;
            match &w.chunk {
                Chunk::Snapshot(bytes) => {
                    tx.execute(
                        "DELETE FROM doc_chunk WHERE team_id = ?1 AND doc_id = ?2",
                        params![team, w.doc],
                    )?;
                    tx.execute(
                        "INSERT INTO doc_chunk (team_id, doc_id, n, bytes) VALUES (?1, ?2, 0, ?3)",
                        params![team, w.doc, bytes],
                    )?;
                }
                Chunk::Append(bytes) => {
                    tx.prepare_cached(
                        "INSERT INTO doc_chunk (team_id, doc_id, n, bytes) VALUES (?1, ?2, \
                         (SELECT COALESCE(MAX(n), -1) + 1 FROM doc_chunk \
                          WHERE team_id = ?1 AND doc_id = ?2), ?3)",
                    )?
                    .execute(params![team, w.doc, bytes])?;
                }
            }
            let readers = readers_text(&w.readers);
            let old: Option<String> = tx
                .prepare_cached("SELECT readers FROM doc WHERE team_id = ?1 AND doc_id = ?2")?
                .query_row(params![team, w.doc], |r| r.get(0))
                .optional()?;
            for user in withdrawn(old.as_deref().unwrap_or(""), &readers) {
                tx.prepare_cached(
                    "INSERT INTO withdrawal (team_id, seq, user_name, doc_id) \
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![team, seq, user, w.doc])?;
            }
            tx.prepare_cached(
                "INSERT INTO doc (team_id, doc_id, seq, heads, projection, readers, created_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?3) ON CONFLICT (team_id, doc_id) DO UPDATE SET \
                 seq = excluded.seq, heads = excluded.heads, projection = excluded.projection, \
                 readers = excluded.readers",
            )?
            .execute(params![
                team,
                w.doc,
                seq,
                heads_blob(&w.heads),
                w.projection,
                readers
            ])?;
            tx.prepare_cached(
                "INSERT INTO board_row (team_id, doc_id, seq, row) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (team_id, doc_id) DO UPDATE SET seq = excluded.seq, row = excluded.row",
            )?
            .execute(params![team, w.doc, seq, w.board])?;
            if w.checked {
                tx.prepare_cached("DELETE FROM unchecked WHERE team_id = ?1 AND doc_id = ?2")?
                    .execute(params![team, w.doc])?;
            } else {
                tx.prepare_cached(
                    "INSERT INTO unchecked (team_id, doc_id, seq) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (team_id, doc_id) DO UPDATE SET seq = excluded.seq",
                )?
                .execute(params![team, w.doc, seq])?;
            }
        }
        tx.execute("UPDATE team SET seq = ?2 WHERE id = ?1", params![team, seq])?;
        tx.commit()?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    fn snapshots(&self, team: TeamId, docs: &[String]) -> Result<Vec<StoredSnapshot>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let mut out = Vec::with_capacity(docs.len());
        {
            let mut head = tx.prepare_cached(
                "SELECT d.heads, d.projection, u.seq IS NULL FROM doc d \
                 LEFT JOIN unchecked u ON u.team_id = d.team_id AND u.doc_id = d.doc_id \
                 WHERE d.team_id = ?1 AND d.doc_id = ?2",
            )?;
            let mut chunks = tx.prepare_cached(
                "SELECT bytes FROM doc_chunk WHERE team_id = ?1 AND doc_id = ?2 ORDER BY n",
            )?;
            for doc in docs {
                let row: Option<(Vec<u8>, String, bool)> = head
                    .query_row(params![team, doc], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()?;
                let Some((heads, projection, checked)) = row else {
                    continue;
                };
                let mut bytes = Vec::new();
                let mut rows = chunks.query(params![team, doc])?;
                while let Some(row) = rows.next()? {
                    bytes.extend_from_slice(
                        row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?,
                    );
                }
                out.push(StoredSnapshot {
                    doc: doc.clone(),
                    bytes,
                    heads: heads_from_blob(&heads)?,
                    projection,
                    checked,
                });
            }
        }
        tx.finish()?;
        Ok(out)
    }

    fn board_row(&self, team: TeamId, doc: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT row FROM board_row WHERE team_id = ?1 AND doc_id = ?2")?
            .query_row(params![team, doc], |r| r.get(0))
            .optional()?)
    }

    fn unchecked(&self, limit: usize) -> Result<Vec<Unchecked>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT team_id, doc_id, seq FROM unchecked ORDER BY seq LIMIT ?1")?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(Unchecked {
                    team: r.get(0)?,
                    doc: r.get(1)?,
                    seq: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn settle(
        &mut self,
        checked: &Unchecked,
        rewrite: Option<&Rewrite>,
    ) -> Result<bool, StoreError> {
        let _turn = self.writes.take();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seq: Option<i64> = tx
            .prepare_cached("SELECT seq FROM doc WHERE team_id = ?1 AND doc_id = ?2")?
            .query_row(params![checked.team, checked.doc], |r| r.get(0))
            .optional()?;
        if seq.and_then(|s| u64::try_from(s).ok()) != Some(checked.seq) {
            // Written again since: that write is what stands (and is checked in its turn).
            return Ok(false);
        }
        if let Some(rewrite) = rewrite {
            tx.execute(
                "DELETE FROM doc_chunk WHERE team_id = ?1 AND doc_id = ?2",
                params![checked.team, checked.doc],
            )?;
            tx.execute(
                "INSERT INTO doc_chunk (team_id, doc_id, n, bytes) VALUES (?1, ?2, 0, ?3)",
                params![checked.team, checked.doc, rewrite.snapshot],
            )?;
            tx.execute(
                "UPDATE doc SET projection = ?3 WHERE team_id = ?1 AND doc_id = ?2",
                params![checked.team, checked.doc, rewrite.projection],
            )?;
        }
        tx.execute(
            "DELETE FROM unchecked WHERE team_id = ?1 AND doc_id = ?2",
            params![checked.team, checked.doc],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn doc_count(&self, team: TeamId) -> Result<u64, StoreError> {
        let n: i64 =
            self.conn
                .query_row("SELECT COUNT(*) FROM doc WHERE team_id = ?1", [team], |r| {
                    r.get(0)
                })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn board_rows_since(
        &self,
        team: TeamId,
        since: u64,
    ) -> Result<(u64, Vec<(String, String)>), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let seq: i64 = tx.query_row("SELECT seq FROM team WHERE id = ?1", [team], |r| r.get(0))?;
        let rows = {
            let mut stmt = tx.prepare_cached(
                "SELECT doc_id, row FROM board_row WHERE team_id = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            let rows = stmt.query_map(
                params![team, i64::try_from(since).unwrap_or(i64::MAX)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            rows.collect::<Result<Vec<(String, String)>, _>>()?
        };
        tx.finish()?;
        Ok((u64::try_from(seq).unwrap_or(0), rows))
    }

    fn visibility(&self, team: TeamId) -> Result<TeamVisibility, StoreError> {
        team_visibility(&self.conn, team)
    }

    fn set_visibility(
        &mut self,
        team: TeamId,
        policy: Visibility,
    ) -> Result<TeamVisibility, StoreError> {
        let _turn = self.writes.take();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = team_visibility(&tx, team)?;
        if now.policy == policy {
            return Ok(now);
        }
        let seq: i64 = tx.query_row(
            "UPDATE team SET seq = seq + 1, visibility = ?2, visibility_set_at = seq + 1 \
             WHERE id = ?1 RETURNING seq",
            params![team, policy.as_str()],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(TeamVisibility {
            policy,
            set_at: u64::try_from(seq).unwrap_or(0),
        })
    }

    fn readers(&self, team: TeamId, docs: &[String]) -> Result<Vec<DocReaders>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let mut out = Vec::with_capacity(docs.len());
        {
            let mut stmt = tx.prepare_cached(
                "SELECT readers, created_seq FROM doc WHERE team_id = ?1 AND doc_id = ?2",
            )?;
            for doc in docs {
                let row: Option<(String, i64)> = stmt
                    .query_row(params![team, doc], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((readers, created_seq)) = row {
                    out.push(DocReaders {
                        doc: doc.clone(),
                        readers: readers_from_text(&readers),
                        created_seq: u64::try_from(created_seq).unwrap_or(0),
                    });
                }
            }
        }
        tx.finish()?;
        Ok(out)
    }

    fn all_readers(&self, team: TeamId) -> Result<Vec<DocReaders>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id, readers, created_seq FROM doc WHERE team_id = ?1")?;
        let rows = stmt.query_map([team], |r| {
            Ok(DocReaders {
                doc: r.get(0)?,
                readers: readers_from_text(&r.get::<_, String>(1)?),
                created_seq: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn withdrawals_since(
        &self,
        team: TeamId,
        user: &str,
        since: u64,
    ) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT doc_id FROM withdrawal \
             WHERE team_id = ?1 AND user_name = ?2 AND seq > ?3 ORDER BY doc_id",
        )?;
        let rows = stmt.query_map(
            params![team, user, i64::try_from(since).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn was_reader(&self, team: TeamId, user: &str, doc: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM withdrawal \
                 WHERE team_id = ?1 AND user_name = ?2 AND doc_id = ?3)",
            )?
            .query_row(params![team, user, doc], |r| r.get(0))?)
    }

    fn set_password(&mut self, team: TeamId, user: &str, hash: &str) -> Result<bool, StoreError> {
        let _turn = self.writes.take();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE user SET password_hash = ?3 WHERE team_id = ?1 AND name = ?2",
            params![team, user, hash],
        )?;
        // A new password ends the user's open sessions.
        tx.execute(
            "DELETE FROM session WHERE user_id = \
             (SELECT id FROM user WHERE team_id = ?1 AND name = ?2)",
            params![team, user],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    fn role_of(&self, team: TeamId, user: &str) -> Result<Option<Role>, StoreError> {
        let name: Option<String> = self
            .conn
            .query_row(
                "SELECT role FROM user WHERE team_id = ?1 AND name = ?2",
                params![team, user],
                |r| r.get(0),
            )
            .optional()?;
        Ok(name.map(|r| role(&r)).transpose()?)
    }

    fn password_of(&self, team: TeamId, user: &str) -> Result<Option<(Role, String)>, StoreError> {
        let row: Option<(String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT role, password_hash FROM user WHERE team_id = ?1 AND name = ?2",
                params![team, user],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((r, Some(hash))) => Ok(Some((role(&r)?, hash))),
            _ => Ok(None),
        }
    }

    fn create_session(
        &mut self,
        token_hash: &[u8; 32],
        team: TeamId,
        user: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.writes.take();
        self.conn.execute(
            "INSERT INTO session (token_hash, user_id, expires_ms) \
             SELECT ?1, id, ?4 FROM user WHERE team_id = ?2 AND name = ?3",
            params![token_hash.as_slice(), team, user, expires_ms],
        )?;
        Ok(())
    }

    fn session(&self, token_hash: &[u8; 32], now_ms: i64) -> Result<Option<WebAuth>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT t.id, t.name, u.name, u.role, s.language FROM session s \
                 JOIN user u ON u.id = s.user_id JOIN team t ON t.id = u.team_id \
                 WHERE s.token_hash = ?1 AND s.expires_ms > ?2",
            )?
            .query_row(params![token_hash.as_slice(), now_ms], |r| {
                Ok(WebAuth {
                    team_id: r.get(0)?,
                    team: r.get(1)?,
                    user: r.get(2)?,
                    role: role(&r.get::<_, String>(3)?)?,
                    language: r.get(4)?,
                })
            })
            .optional()?)
    }

    fn set_session_language(
        &mut self,
        token_hash: &[u8; 32],
        lang: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.writes.take();
        self.conn.execute(
            "UPDATE session SET language = ?2 WHERE token_hash = ?1",
            params![token_hash.as_slice(), lang],
        )?;
        Ok(())
    }

    fn end_session(&mut self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        let _turn = self.writes.take();
        self.conn.execute(
            "DELETE FROM session WHERE token_hash = ?1",
            [token_hash.as_slice()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dossiers stored before readers were kept get their projection's owner as their
    /// readers (trimmed; none when it has none, or it is no name) and their last write as
    /// their first.
    #[test]
    fn stored_dossiers_get_their_owner_as_readers() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 6).unwrap();
        conn.execute_batch(
            r#"
            INSERT INTO team (name, created_ms) VALUES ('north', 1);
            INSERT INTO doc (team_id, doc_id, seq, heads, projection) VALUES
                (1, 'a', 3, x'', '{"summary":{"owner":" li "}}'),
                (1, 'b', 5, x'', '{"summary":{"owner":""}}'),
                (1, 'c', 6, x'', '{"summary":{}}'),
                (1, 'd', 7, x'', 'not json'),
                (1, 'e', 8, x'', '{"summary":{"owner":"li\nwang"}}'),
                (1, 'f', 9, x'', '{"summary":{"owner":7}}');
            UPDATE team SET seq = 9;
            "#,
        )
        .unwrap();
        let mut store = SqliteRelayStore::init(conn, WriteTurn::default()).unwrap();
        let mut readers = store.all_readers(1).unwrap();
        readers.sort_by(|a, b| a.doc.cmp(&b.doc));
        let got: Vec<(&str, Vec<String>, u64)> = readers
            .iter()
            .map(|r| (r.doc.as_str(), r.readers.clone(), r.created_seq))
            .collect();
        let li = vec!["li".to_string()];
        assert_eq!(
            got,
            [
                ("a", li.clone(), 3),
                ("b", vec![], 5),
                ("c", vec![], 6),
                ("d", vec![], 7),
                ("e", vec![], 8),
                ("f", vec![], 9),
            ]
        );
        assert_eq!(
            store.visibility(1).unwrap(),
            TeamVisibility {
                policy: Visibility::Team,
                set_at: 0
            }
        );
        // The first write after: li, its owner before, is withdrawn from a.
        let write = DocWrite {
            doc: "a".into(),
            chunk: Chunk::Snapshot(vec![1]),
            heads: vec![],
            projection: "{}".into(),
            board: "{}".into(),
            checked: true,
            readers: vec!["wang".into()],
        };
        assert_eq!(store.write_docs(1, &[write]).unwrap(), 10);
        assert_eq!(store.withdrawals_since(1, "li", 9).unwrap(), ["a"]);
        // A word no relay wrote is an unreadable row.
        store
            .conn
            .execute("UPDATE team SET visibility = 'nobody'", [])
            .unwrap();
        assert!(matches!(store.visibility(1), Err(StoreError::BadRow(_))));
    }
}
