//! The relay's store on PostgreSQL (`postgres://…`), for a company that outgrows one machine.
//!
//! The same tables and the same promises as the SQLite store: a batch is acknowledged only
//! after its transaction commits (PostgreSQL's default `synchronous_commit = on`), and a team's
//! change sequence is taken under a lock on the team's row, held to the commit, so no reader
//! ever sees sequence N+1 before N. Reads that combine several rows are single statements, so
//! each sees one snapshot.
//!
//! The client is rust-postgres's blocking one: the store trait is synchronous and is called off
//! the async workers. A connection that drops (the database restarted, a network cut) fails the
//! call that met it, with an error naming the cause, and is opened again by the next call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use fieldbook_shared::sync::wire::{DeviceStatus, Role, Visibility};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, GenericClient, NoTls, Row, Statement};

use super::{
    Chunk, DeviceAuth, DeviceId, DeviceRow, DocReaders, DocVersion, DocWrite, RelayStore, Rewrite,
    StoreError, StoredDoc, StoredSnapshot, TeamId, TeamVisibility, Unchecked, WebAuth,
    readers_from_text, readers_text, visibility_word, withdrawn,
};

/// Each migration runs once, in order, in its own transaction. Append; never edit one that
/// has shipped.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE team (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- the team's change sequence: bumped once per dossier written, under this row's lock
    seq BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL,
    wipe_on_revoke BOOLEAN NOT NULL DEFAULT TRUE
);
-- `user` is a reserved word here: a team's people are its members.
CREATE TABLE member (
    id BIGSERIAL PRIMARY KEY,
    team_id BIGINT NOT NULL REFERENCES team (id),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT,
    UNIQUE (team_id, name)
);
CREATE TABLE invite (
    code_hash BYTEA PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES member (id),
    expires_ms BIGINT NOT NULL,
    used_ms BIGINT
);
CREATE TABLE device (
    id BIGSERIAL PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES member (id),
    name TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    enrolled_ms BIGINT NOT NULL,
    revoked_ms BIGINT,
    unsynced BIGINT,
    last_sync_ms BIGINT,
    reported_ms BIGINT,
    synced_ms BIGINT
);
CREATE TABLE revocation (
    id BIGSERIAL PRIMARY KEY,
    device_id BIGINT NOT NULL
);
-- Dossiers are scoped by team: another team's ids simply do not exist here.
CREATE TABLE doc (
    team_id BIGINT NOT NULL REFERENCES team (id),
    doc_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    heads BYTEA NOT NULL,
    projection TEXT NOT NULL,
    PRIMARY KEY (team_id, doc_id)
);
CREATE INDEX doc_by_seq ON doc (team_id, seq);
CREATE TABLE doc_chunk (
    team_id BIGINT NOT NULL,
    doc_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (team_id, doc_id, n)
);
-- The board's rows apart from the projections, whose search text a board load need not read.
CREATE TABLE board_row (
    team_id BIGINT NOT NULL,
    doc_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (team_id, doc_id)
);
CREATE INDEX board_row_by_seq ON board_row (team_id, seq);
CREATE TABLE unchecked (
    team_id BIGINT NOT NULL,
    doc_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (team_id, doc_id)
);
CREATE INDEX unchecked_by_seq ON unchecked (seq);
CREATE TABLE session (
    token_hash BYTEA PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES member (id),
    expires_ms BIGINT NOT NULL,
    language TEXT
);
"#,
    // Visibility per rep: each dossier's readers (its owner and those it is shared with,
    // joined by newlines) and the team sequence of its first write; the team's policy and
    // when it was last set; and who stopped being a reader of which dossier, at which write.
    // Dossiers stored before get their owner from their projection as their readers (sharing
    // came later) and their last write as their first.
    r#"
ALTER TABLE doc ADD COLUMN readers TEXT NOT NULL DEFAULT '';
ALTER TABLE doc ADD COLUMN created_seq BIGINT NOT NULL DEFAULT 0;
UPDATE doc SET created_seq = seq, readers = COALESCE((
    SELECT CASE WHEN strpos(o, E'\n') > 0 THEN '' ELSE o END FROM (
        SELECT btrim(summary ->> 'owner', E' \t\n\r') AS o
        FROM (SELECT projection::json -> 'summary' AS summary) AS p
        WHERE json_typeof(summary -> 'owner') = 'string'
    ) AS owner
), '');
ALTER TABLE team ADD COLUMN visibility TEXT NOT NULL DEFAULT 'team';
ALTER TABLE team ADD COLUMN visibility_set_at BIGINT NOT NULL DEFAULT 0;
CREATE TABLE withdrawal (
    team_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    doc_id TEXT NOT NULL
);
CREATE INDEX withdrawal_by_user ON withdrawal (team_id, user_name, seq);
"#,
];

/// Advisory lock keys (any constant the relay alone uses): one migrates, one orders
/// revocations; a team's turn is its id in a range of its own.
const MIGRATION_LOCK: i64 = 0x6669_656c_6462_6f01;
const REVOCATION_LOCK: i64 = 0x6669_656c_6462_6f02;
const TEAM_TURNS: i64 = 0x6662_0000_0000_0000;

/// The channel instances tell each other of commits on: `TEAM:SEQ`, nothing more (the
/// durable sequence is the truth; a notification only wakes).
pub const COMMITS_CHANNEL: &str = "fieldbook_commits";

fn db_err(e: postgres::Error) -> StoreError {
    match e.code() {
        Some(c) if *c == SqlState::DISK_FULL => StoreError::Full,
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::LOCK_NOT_AVAILABLE =>
        {
            StoreError::Busy
        }
        Some(c) => match e.as_db_error() {
            // (The error's own Display is only "db error".)
            Some(db) => StoreError::Database(format!(
                "PostgreSQL: {} (SQLSTATE {})",
                db.message(),
                c.code()
            )),
            None => StoreError::Database(format!("PostgreSQL: {e}")),
        },
        // No SQLSTATE: the connection itself failed (refused, reset, timed out).
        None if e.is_closed() => {
            StoreError::Database(format!("the connection to PostgreSQL closed: {e}"))
        }
        None => StoreError::Database(format!("PostgreSQL cannot be reached: {e}")),
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        db_err(e)
    }
}

/// One open connection and the statements prepared on it (they die with it).
struct Connection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Connection {
    /// `sql` prepared once per connection, usable in its transactions too.
    fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        prepared(&mut self.statements, &mut self.client, sql)
    }
}

fn prepared(
    cache: &mut HashMap<&'static str, Statement>,
    client: &mut impl GenericClient,
    sql: &'static str,
) -> Result<Statement, postgres::Error> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let s = client.prepare(sql)?;
    cache.insert(sql, s.clone());
    Ok(s)
}

pub struct PostgresRelayStore {
    config: Config,
    /// The trait reads through `&self`; the relay calls a store from one thread at a time.
    connection: RefCell<Option<Connection>>,
}

impl PostgresRelayStore {
    /// Connect to `url` (`postgres://user@host:port/db?…`, as libpq takes it) and bring its
    /// schema up to date.
    pub fn open(url: &str) -> Result<PostgresRelayStore, StoreError> {
        let config = config(url, "fieldbook-relay")?;
        let store = PostgresRelayStore {
            config,
            connection: RefCell::new(None),
        };
        store.with(migrate)?;
        Ok(store)
    }

    /// Run `f` on the connection, opening it first if there is none or it has closed. A
    /// connection that closes during `f` is dropped, so the next call opens a new one.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.connection.borrow_mut();
        if slot.as_ref().is_none_or(|c| c.client.is_closed()) {
            *slot = None;
            *slot = Some(Connection {
                client: self.config.connect(NoTls)?,
                statements: HashMap::new(),
            });
        }
        let Some(connection) = slot.as_mut() else {
            return Err(StoreError::Database("no connection to PostgreSQL".into()));
        };
        let out = f(connection);
        if connection.client.is_closed() {
            *slot = None;
        }
        out
    }
}

/// How to connect to `url`, named `application` in PostgreSQL's activity view (unless the URL
/// names it).
fn config(url: &str, application: &str) -> Result<Config, StoreError> {
    let mut config: Config = url
        .parse()
        .map_err(|e| StoreError::BadUrl(format!("{url}: {e}")))?;
    if config.get_connect_timeout().is_none() {
        // Never a hang: a database that does not answer is an error in seconds.
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name(application);
    }
    Ok(config)
}

impl Drop for PostgresRelayStore {
    fn drop(&mut self) {
        // Closing a connection blocks on the client's own runtime, which cannot start inside
        // another (the relay's): there it is closed on a thread of its own.
        if let Some(connection) = self.connection.get_mut().take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            std::thread::spawn(move || drop(connection));
        }
    }
}

fn migrate(c: &mut Connection) -> Result<(), StoreError> {
    let migration = |e: postgres::Error| StoreError::Migration(e.to_string());
    let mut tx = c.client.transaction().map_err(migration)?;
    // Instances starting together on one database migrate one at a time.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(migration)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS fieldbook_migration \
         (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .map_err(migration)?;
    let applied: i64 = tx
        .query_one("SELECT COUNT(*) FROM fieldbook_migration", &[])
        .map_err(migration)?
        .get(0);
    if usize::try_from(applied).is_ok_and(|n| n > MIGRATIONS.len()) {
        return Err(StoreError::Migration(format!(
            "the database is at schema version {applied}, newer than this relay's {}: \
             run the newer relay",
            MIGRATIONS.len()
        )));
    }
    for (version, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(applied).unwrap_or(0))
    {
        let version = i32::try_from(version).unwrap_or(i32::MAX);
        tx.batch_execute(sql).map_err(migration)?;
        tx.execute(
            "INSERT INTO fieldbook_migration (version) VALUES ($1)",
            &[&version],
        )
        .map_err(migration)?;
    }
    tx.commit().map_err(migration)
}

fn role(s: &str) -> Result<Role, StoreError> {
    s.parse()
        .map_err(|e: String| StoreError::BadRow(format!("role: {e}")))
}

fn heads_bytes(heads: &[[u8; 32]]) -> Vec<u8> {
    heads.concat()
}

fn heads_from_bytes(bytes: &[u8]) -> Result<Vec<[u8; 32]>, StoreError> {
    let (heads, rest) = bytes.as_chunks::<32>();
    if !rest.is_empty() {
        return Err(StoreError::BadRow(format!(
            "heads of {} bytes",
            bytes.len()
        )));
    }
    Ok(heads.to_vec())
}

fn seq_u64(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A team's visibility policy from its row: (visibility, visibility_set_at).
fn team_visibility(row: &Row) -> Result<TeamVisibility, StoreError> {
    Ok(TeamVisibility {
        policy: visibility_word(row.get(0))?,
        set_at: seq_u64(row.get(1)),
    })
}

/// A dossier's readers from its row: (doc_id, readers, created_seq).
fn doc_readers(row: &Row) -> DocReaders {
    DocReaders {
        doc: row.get(0),
        readers: readers_from_text(row.get(1)),
        created_seq: seq_u64(row.get(2)),
    }
}

const AUTH_SELECT: &str = "SELECT d.id, t.id, t.name, m.name, m.role FROM device d \
     JOIN member m ON m.id = d.member_id JOIN team t ON t.id = m.team_id";

fn auth_row(r: &Row) -> Result<DeviceAuth, StoreError> {
    Ok(DeviceAuth {
        device_id: r.get(0),
        team_id: r.get(1),
        team: r.get(2),
        user: r.get(3),
        role: role(r.get(4))?,
    })
}

/// Replace a dossier's chunks by one snapshot.
fn replace_chunks(
    tx: &mut postgres::Transaction<'_>,
    cache: &mut HashMap<&'static str, Statement>,
    team: TeamId,
    doc: &str,
    bytes: &[u8],
) -> Result<(), postgres::Error> {
    let delete = prepared(
        cache,
        tx,
        "DELETE FROM doc_chunk WHERE team_id = $1 AND doc_id = $2",
    )?;
    tx.execute(&delete, &[&team, &doc])?;
    let insert = prepared(
        cache,
        tx,
        "INSERT INTO doc_chunk (team_id, doc_id, n, bytes) VALUES ($1, $2, 0, $3)",
    )?;
    tx.execute(&insert, &[&team, &doc, &bytes])?;
    Ok(())
}

impl RelayStore for PostgresRelayStore {
    fn create_team(&mut self, name: &str, now_ms: i64) -> Result<TeamId, StoreError> {
        self.with(|c| {
            match c.client.query_one(
                "INSERT INTO team (name, created_ms) VALUES ($1, $2) RETURNING id",
                &[&name, &now_ms],
            ) {
                Ok(row) => Ok(row.get(0)),
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    Err(StoreError::TeamExists(name.to_string()))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn team_id(&self, name: &str) -> Result<Option<TeamId>, StoreError> {
        self.with(|c| {
            let s = c.prepared("SELECT id FROM team WHERE name = $1")?;
            Ok(c.client.query_opt(&s, &[&name])?.map(|r| r.get(0)))
        })
    }

    fn teams(&self) -> Result<Vec<TeamId>, StoreError> {
        self.with(|c| {
            let rows = c.client.query("SELECT id FROM team ORDER BY id", &[])?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn create_invite(
        &mut self,
        team: TeamId,
        user: &str,
        role: Role,
        code_hash: &[u8; 32],
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let mut tx = c.client.transaction()?;
            let member: i64 = tx
                .query_one(
                    "INSERT INTO member (team_id, name, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (team_id, name) DO UPDATE SET role = excluded.role \
                     RETURNING id",
                    &[&team, &user, &role.as_str()],
                )?
                .get(0);
            tx.execute(
                "INSERT INTO invite (code_hash, member_id, expires_ms) VALUES ($1, $2, $3)",
                &[&code_hash.as_slice(), &member, &expires_ms],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn redeem_invite(
        &mut self,
        code_hash: &[u8; 32],
        device_name: &str,
        token_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<Option<DeviceAuth>, StoreError> {
        self.with(|c| {
            let mut tx = c.client.transaction()?;
            // Marked used by the statement that checks it: of two devices racing with one
            // code, the second waits on the row's lock and then finds it used.
            let member = tx.query_opt(
                "UPDATE invite SET used_ms = $2 WHERE code_hash = $1 AND used_ms IS NULL \
                 AND expires_ms > $2 RETURNING member_id",
                &[&code_hash.as_slice(), &now_ms],
            )?;
            let Some(member) = member else {
                return Ok(None);
            };
            let member: i64 = member.get(0);
            let id: i64 = tx
                .query_one(
                    "INSERT INTO device (member_id, name, token_hash, enrolled_ms) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&member, &device_name, &token_hash.as_slice(), &now_ms],
                )?
                .get(0);
            let auth = auth_row(&tx.query_one(&format!("{AUTH_SELECT} WHERE d.id = $1"), &[&id])?)?;
            tx.commit()?;
            Ok(Some(auth))
        })
    }

    fn device_by_token(&self, token_hash: &[u8; 32]) -> Result<Option<DeviceAuth>, StoreError> {
        self.with(|c| {
            let s = c.prepared(
                "SELECT d.id, t.id, t.name, m.name, m.role FROM device d \
                 JOIN member m ON m.id = d.member_id JOIN team t ON t.id = m.team_id \
                 WHERE d.token_hash = $1 AND d.revoked_ms IS NULL",
            )?;
            c.client
                .query_opt(&s, &[&token_hash.as_slice()])?
                .map(|r| auth_row(&r))
                .transpose()
        })
    }

    fn devices(&self, team: Option<TeamId>) -> Result<Vec<DeviceRow>, StoreError> {
        self.with(|c| {
            let rows = c.client.query(
                "SELECT d.id, t.name, m.name, m.role, d.name, d.enrolled_ms, d.revoked_ms, \
                 d.unsynced, d.last_sync_ms, d.reported_ms, d.synced_ms FROM device d \
                 JOIN member m ON m.id = d.member_id JOIN team t ON t.id = m.team_id \
                 WHERE $1::BIGINT IS NULL OR t.id = $1 ORDER BY t.name, m.name, d.id",
                &[&team],
            )?;
            rows.iter()
                .map(|r| {
                    let unsynced: Option<i64> = r.get(7);
                    Ok(DeviceRow {
                        device_id: r.get(0),
                        team: r.get(1),
                        user: r.get(2),
                        role: role(r.get(3))?,
                        name: r.get(4),
                        enrolled_ms: r.get(5),
                        revoked_ms: r.get(6),
                        status: unsynced.map(|n| DeviceStatus {
                            unsynced: u64::try_from(n).unwrap_or(0),
                            last_sync_ms: r.get(8),
                        }),
                        reported_ms: r.get(9),
                        synced_ms: r.get(10),
                    })
                })
                .collect()
        })
    }

    fn revoked_token(&self, token_hash: &[u8; 32]) -> Result<Option<bool>, StoreError> {
        self.with(|c| {
            let s = c.prepared(
                "SELECT t.wipe_on_revoke FROM device d JOIN member m ON m.id = d.member_id \
                 JOIN team t ON t.id = m.team_id \
                 WHERE d.token_hash = $1 AND d.revoked_ms IS NOT NULL",
            )?;
            Ok(c.client
                .query_opt(&s, &[&token_hash.as_slice()])?
                .map(|r| r.get(0)))
        })
    }

    fn set_wipe_on_revoke(&mut self, team: TeamId, wipe: bool) -> Result<(), StoreError> {
        self.with(|c| {
            c.client.execute(
                "UPDATE team SET wipe_on_revoke = $2 WHERE id = $1",
                &[&team, &wipe],
            )?;
            Ok(())
        })
    }

    fn revoke_device(&mut self, device: DeviceId, now_ms: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let mut tx = c.client.transaction()?;
            let n = tx.execute(
                "UPDATE device SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL",
                &[&device, &now_ms],
            )?;
            if n > 0 {
                // Revocations are read by number ("after the last one seen"): taken one at a
                // time, their numbers become visible in order even with several writers.
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&REVOCATION_LOCK])?;
                tx.execute("INSERT INTO revocation (device_id) VALUES ($1)", &[&device])?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
    }

    fn revocations_after(&self, after: i64) -> Result<Vec<(i64, DeviceId)>, StoreError> {
        self.with(|c| {
            let s = c.prepared("SELECT id, device_id FROM revocation WHERE id > $1 ORDER BY id")?;
            let rows = c.client.query(&s, &[&after])?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn report_status(
        &mut self,
        device: DeviceId,
        status: &DeviceStatus,
        completed: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let s = c.prepared(
                "UPDATE device SET unsynced = $2, last_sync_ms = $3, reported_ms = $4, \
                 synced_ms = CASE WHEN $5 THEN $4 ELSE synced_ms END WHERE id = $1",
            )?;
            c.client.execute(
                &s,
                &[
                    &device,
                    &i64::try_from(status.unsynced).unwrap_or(i64::MAX),
                    &status.last_sync_ms,
                    &now_ms,
                    &completed,
                ],
            )?;
            Ok(())
        })
    }

    fn changed_since(&self, team: TeamId, since: u64) -> Result<(u64, Vec<String>), StoreError> {
        self.with(|c| {
            // One statement, one snapshot: the sequence and the dossiers it covers agree.
            let s = c.prepared(
                "SELECT t.seq, d.doc_id FROM team t \
                 LEFT JOIN doc d ON d.team_id = t.id AND d.seq > $2 \
                 WHERE t.id = $1 ORDER BY d.seq",
            )?;
            let rows = c.client.query(&s, &[&team, &seq_i64(since)])?;
            let Some(first) = rows.first() else {
                return Err(StoreError::NoTeam(team.to_string()));
            };
            let seq = seq_u64(first.get(0));
            let ids = rows
                .iter()
                .filter_map(|r| r.get::<_, Option<String>>(1))
                .collect();
            Ok((seq, ids))
        })
    }

    fn load_doc(&self, team: TeamId, doc: &str) -> Result<Option<StoredDoc>, StoreError> {
        self.with(|c| {
            let s = c.prepared(
                "SELECT d.seq, k.bytes FROM doc d \
                 LEFT JOIN doc_chunk k ON k.team_id = d.team_id AND k.doc_id = d.doc_id \
                 WHERE d.team_id = $1 AND d.doc_id = $2 ORDER BY k.n",
            )?;
            let rows = c.client.query(&s, &[&team, &doc])?;
            let Some(first) = rows.first() else {
                return Ok(None);
            };
            let seq = seq_u64(first.get(0));
            let mut bytes = Vec::new();
            let mut chunks = 0;
            for r in &rows {
                if let Some(chunk) = r.get::<_, Option<&[u8]>>(1) {
                    bytes.extend_from_slice(chunk);
                    chunks += 1;
                }
            }
            Ok(Some(StoredDoc { bytes, chunks, seq }))
        })
    }

    fn doc_version(&self, team: TeamId, doc: &str) -> Result<Option<DocVersion>, StoreError> {
        self.with(|c| {
            let s = c.prepared("SELECT seq, heads FROM doc WHERE team_id = $1 AND doc_id = $2")?;
            c.client
                .query_opt(&s, &[&team, &doc])?
                .map(|r| {
                    Ok(DocVersion {
                        seq: seq_u64(r.get(0)),
                        heads: heads_from_bytes(r.get(1))?,
                    })
                })
                .transpose()
        })
    }

    fn write_docs(&mut self, team: TeamId, batch: &[DocWrite]) -> Result<u64, StoreError> {
        self.with(|c| {
            let Connection { client, statements } = c;
            let mut tx = client.transaction()?;
            // The team's row stays locked to the commit: batches of one team take their
            // sequence numbers one after another and become visible in that order.
            let lock = prepared(
                statements,
                &mut tx,
                "SELECT seq FROM team WHERE id = $1 FOR UPDATE",
            )?;
            let mut seq: i64 = tx
                .query_opt(&lock, &[&team])?
                .ok_or_else(|| StoreError::NoTeam(team.to_string()))?
                .get(0);
            let append = prepared(
                statements,
                &mut tx,
                "INSERT INTO doc_chunk (team_id, doc_id, n, bytes) VALUES ($1, $2, \
                 (SELECT COALESCE(MAX(n), -1) + 1 FROM doc_chunk \
                  WHERE team_id = $1 AND doc_id = $2), $3)",
            )?;
            let old_readers = prepared(
                statements,
                &mut tx,
                "SELECT readers FROM doc WHERE team_id = $1 AND doc_id = $2",
            )?;
            let withdraw = prepared(
                statements,
                &mut tx,
                "INSERT INTO withdrawal (team_id, seq, user_name, doc_id) VALUES ($1, $2, $3, $4)",
            )?;
            let upsert_doc = prepared(
                statements,
                &mut tx,
                "INSERT INTO doc (team_id, doc_id, seq, heads, projection, readers, created_seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $3) ON CONFLICT (team_id, doc_id) DO UPDATE SET \
                 seq = excluded.seq, heads = excluded.heads, projection = excluded.projection, \
                 readers = excluded.readers",
            )?;
            let upsert_row = prepared(
                statements,
                &mut tx,
                "INSERT INTO board_row (team_id, doc_id, seq, row) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (team_id, doc_id) DO UPDATE SET seq = excluded.seq, row = excluded.row",
            )?;
            let checked = prepared(
                statements,
                &mut tx,
                "DELETE FROM unchecked WHERE team_id = $1 AND doc_id = $2",
            )?;
            let unchecked = prepared(
                statements,
                &mut tx,
                "INSERT INTO unchecked (team_id, doc_id, seq) VALUES ($1, $2, $3) \
                 ON CONFLICT (team_id, doc_id) DO UPDATE SET seq = excluded.seq",
            )?;
            for w in batch {
                seq += 1;
                let doc = w.doc.as_str();
                match &w.chunk {
                    Chunk::Snapshot(bytes) => replace_chunks(&mut tx, statements, team, doc, bytes)?,
                    Chunk::Append(bytes) => {
                        tx.execute(&append, &[&team, &doc, bytes])?;
                    }
                }
                let readers = readers_text(&w.readers);
                let old: Option<String> =
                    tx.query_opt(&old_readers, &[&team, &doc])?.map(|r| r.get(0));
                for user in withdrawn(old.as_deref().unwrap_or(""), &readers) {
                    tx.execute(&withdraw, &[&team, &seq, &user, &doc])?;
                }
                tx.execute(
                    &upsert_doc,
                    &[
                        &team,
                        &doc,
                        &seq,
                        &heads_bytes(&w.heads),
                        &w.projection,
                        &readers,
                    ],
                )?;
                tx.execute(&upsert_row, &[&team, &doc, &seq, &w.board])?;
                if w.checked {
                    tx.execute(&checked, &[&team, &doc])?;
                } else {
                    tx.execute(&unchecked, &[&team, &doc, &seq])?;
                }
            }
            tx.execute("UPDATE team SET seq = $2 WHERE id = $1", &[&team, &seq])?;
            // Delivered at the commit, to the other instances listening.
            let notify = prepared(statements, &mut tx, "SELECT pg_notify($1, $2)")?;
            tx.execute(&notify, &[&COMMITS_CHANNEL, &format!("{team}:{seq}")])?;
            tx.commit()?;
            Ok(seq_u64(seq))
        })
    }

    fn snapshots(&self, team: TeamId, docs: &[String]) -> Result<Vec<StoredSnapshot>, StoreError> {
        self.with(|c| {
            // Each dossier's row and chunks in one statement (one snapshot of it).
            let s = c.prepared(
                "SELECT d.heads, d.projection, u.seq IS NULL, k.bytes FROM doc d \
                 LEFT JOIN unchecked u ON u.team_id = d.team_id AND u.doc_id = d.doc_id \
                 LEFT JOIN doc_chunk k ON k.team_id = d.team_id AND k.doc_id = d.doc_id \
                 WHERE d.team_id = $1 AND d.doc_id = $2 ORDER BY k.n",
            )?;
            let mut out = Vec::with_capacity(docs.len());
            for doc in docs {
                let rows = c.client.query(&s, &[&team, doc])?;
                let Some(first) = rows.first() else {
                    continue;
                };
                let mut bytes = Vec::new();
                for r in &rows {
                    if let Some(chunk) = r.get::<_, Option<&[u8]>>(3) {
                        bytes.extend_from_slice(chunk);
                    }
                }
                out.push(StoredSnapshot {
                    doc: doc.clone(),
                    bytes,
                    heads: heads_from_bytes(first.get(0))?,
                    projection: first.get(1),
                    checked: first.get(2),
                });
            }
            Ok(out)
        })
    }

    fn board_row(&self, team: TeamId, doc: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            let s = c.prepared("SELECT row FROM board_row WHERE team_id = $1 AND doc_id = $2")?;
            Ok(c.client.query_opt(&s, &[&team, &doc])?.map(|r| r.get(0)))
        })
    }

    fn unchecked(&self, limit: usize) -> Result<Vec<Unchecked>, StoreError> {
        self.with(|c| {
            let s =
                c.prepared("SELECT team_id, doc_id, seq FROM unchecked ORDER BY seq LIMIT $1")?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = c.client.query(&s, &[&limit])?;
            Ok(rows
                .iter()
                .map(|r| Unchecked {
                    team: r.get(0),
                    doc: r.get(1),
                    seq: seq_u64(r.get(2)),
                })
                .collect())
        })
    }

    fn settle(
        &mut self,
        checked: &Unchecked,
        rewrite: Option<&Rewrite>,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            let Connection { client, statements } = c;
            let mut tx = client.transaction()?;
            let team = checked.team;
            let doc = checked.doc.as_str();
            // Locked, so that a write of the same dossier waits for this to commit or finds
            // it settled, never the other way round.
            let seq: Option<i64> = tx
                .query_opt(
                    "SELECT seq FROM doc WHERE team_id = $1 AND doc_id = $2 FOR UPDATE",
                    &[&team, &doc],
                )?
                .map(|r| r.get(0));
            if seq.and_then(|s| u64::try_from(s).ok()) != Some(checked.seq) {
                // Written again since: that write is what stands (and is checked in its turn).
                return Ok(false);
            }
            if let Some(rewrite) = rewrite {
                replace_chunks(&mut tx, statements, team, doc, &rewrite.snapshot)?;
                tx.execute(
                    "UPDATE doc SET projection = $3 WHERE team_id = $1 AND doc_id = $2",
                    &[&team, &doc, &rewrite.projection],
                )?;
            }
            tx.execute(
                "DELETE FROM unchecked WHERE team_id = $1 AND doc_id = $2",
                &[&team, &doc],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn doc_count(&self, team: TeamId) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c
                .client
                .query_one("SELECT COUNT(*) FROM doc WHERE team_id = $1", &[&team])?
                .get(0);
            Ok(seq_u64(n))
        })
    }

    fn board_rows_since(
        &self,
        team: TeamId,
        since: u64,
    ) -> Result<(u64, Vec<(String, String)>), StoreError> {
        self.with(|c| {
            let s = c.prepared(
                "SELECT t.seq, b.doc_id, b.row FROM team t \
                 LEFT JOIN board_row b ON b.team_id = t.id AND b.seq > $2 \
                 WHERE t.id = $1 ORDER BY b.seq",
            )?;
            let rows = c.client.query(&s, &[&team, &seq_i64(since)])?;
            let Some(first) = rows.first() else {
                return Err(StoreError::NoTeam(team.to_string()));
            };
            let seq = seq_u64(first.get(0));
            let board = rows
                .iter()
                .filter_map(|r| Some((r.get::<_, Option<String>>(1)?, r.get(2))))
                .collect();
            Ok((seq, board))
        })
    }

    fn visibility(&self, team: TeamId) -> Result<TeamVisibility, StoreError> {
        self.with(|c| {
            let s = c.prepared("SELECT visibility, visibility_set_at FROM team WHERE id = $1")?;
            let row = c
                .client
                .query_opt(&s, &[&team])?
                .ok_or_else(|| StoreError::NoTeam(team.to_string()))?;
            team_visibility(&row)
        })
    }

    fn set_visibility(
        &mut self,
        team: TeamId,
        policy: Visibility,
    ) -> Result<TeamVisibility, StoreError> {
        self.with(|c| {
            let Connection { client, statements } = c;
            let mut tx = client.transaction()?;
            // The team's row locked to the commit, as a batch of dossiers locks it: the
            // sequence number taken here is in order with theirs.
            let lock = prepared(
                statements,
                &mut tx,
                "SELECT visibility, visibility_set_at FROM team WHERE id = $1 FOR UPDATE",
            )?;
            let row = tx
                .query_opt(&lock, &[&team])?
                .ok_or_else(|| StoreError::NoTeam(team.to_string()))?;
            let now = team_visibility(&row)?;
            if now.policy == policy {
                return Ok(now);
            }
            let seq: i64 = tx
                .query_one(
                    "UPDATE team SET seq = seq + 1, visibility = $2, visibility_set_at = seq + 1 \
                     WHERE id = $1 RETURNING seq",
                    &[&team, &policy.as_str()],
                )?
                .get(0);
            // Delivered at the commit, to the other instances listening, as a batch's is.
            let notify = prepared(statements, &mut tx, "SELECT pg_notify($1, $2)")?;
            tx.execute(&notify, &[&COMMITS_CHANNEL, &format!("{team}:{seq}")])?;
            tx.commit()?;
            Ok(TeamVisibility {
                policy,
                set_at: seq_u64(seq),
            })
        })
    }

    fn readers(&self, team: TeamId, docs: &[String]) -> Result<Vec<DocReaders>, StoreError> {
        self.with(|c| {
            let s = c.prepared(
                "SELECT doc_id, readers, created_seq FROM doc \
                 WHERE team_id = $1 AND doc_id = ANY($2)",
            )?;
            let rows = c.client.query(&s, &[&team, &docs])?;
            Ok(rows.iter().map(doc_readers).collect())
        })
    }

    fn all_readers(&self, team: TeamId) -> Result<Vec<DocReaders>, StoreError> {
        self.with(|c| {
            let s =
                c.prepared("SELECT doc_id, readers, created_seq FROM doc WHERE team_id = $1")?;
            let rows = c.client.query(&s, &[&team])?;
            Ok(rows.iter().map(doc_readers).collect())
        })
    }

    fn withdrawals_since(
        &self,
        team: TeamId,
        user: &str,
        since: u64,
    ) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let s = c.prepared(
                "SELECT DISTINCT doc_id FROM withdrawal \
                 WHERE team_id = $1 AND user_name = $2 AND seq > $3 ORDER BY doc_id",
            )?;
            let rows = c.client.query(&s, &[&team, &user, &seq_i64(since)])?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn was_reader(&self, team: TeamId, user: &str, doc: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let s = c.prepared(
                "SELECT EXISTS (SELECT 1 FROM withdrawal \
                 WHERE team_id = $1 AND user_name = $2 AND doc_id = $3)",
            )?;
            Ok(c.client.query_one(&s, &[&team, &user, &doc])?.get(0))
        })
    }

    fn set_password(&mut self, team: TeamId, user: &str, hash: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let mut tx = c.client.transaction()?;
            let n = tx.execute(
                "UPDATE member SET password_hash = $3 WHERE team_id = $1 AND name = $2",
                &[&team, &user, &hash],
            )?;
            // A new password ends the user's open sessions.
            tx.execute(
                "DELETE FROM session WHERE member_id = \
                 (SELECT id FROM member WHERE team_id = $1 AND name = $2)",
                &[&team, &user],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    fn role_of(&self, team: TeamId, user: &str) -> Result<Option<Role>, StoreError> {
        self.with(|c| {
            c.client
                .query_opt(
                    "SELECT role FROM member WHERE team_id = $1 AND name = $2",
                    &[&team, &user],
                )?
                .map(|r| role(r.get(0)))
                .transpose()
        })
    }

    fn password_of(&self, team: TeamId, user: &str) -> Result<Option<(Role, String)>, StoreError> {
        self.with(|c| {
            let row = c.client.query_opt(
                "SELECT role, password_hash FROM member WHERE team_id = $1 AND name = $2",
                &[&team, &user],
            )?;
            match row {
                Some(r) => match r.get::<_, Option<String>>(1) {
                    Some(hash) => Ok(Some((role(r.get(0))?, hash))),
                    None => Ok(None),
                },
                None => Ok(None),
            }
        })
    }

    fn create_session(
        &mut self,
        token_hash: &[u8; 32],
        team: TeamId,
        user: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.client.execute(
                "INSERT INTO session (token_hash, member_id, expires_ms) \
                 SELECT $1, id, $4 FROM member WHERE team_id = $2 AND name = $3",
                &[&token_hash.as_slice(), &team, &user, &expires_ms],
            )?;
            Ok(())
        })
    }

    fn session(&self, token_hash: &[u8; 32], now_ms: i64) -> Result<Option<WebAuth>, StoreError> {
        self.with(|c| {
            let s = c.prepared(
                "SELECT t.id, t.name, m.name, m.role, s.language FROM session s \
                 JOIN member m ON m.id = s.member_id JOIN team t ON t.id = m.team_id \
                 WHERE s.token_hash = $1 AND s.expires_ms > $2",
            )?;
            c.client
                .query_opt(&s, &[&token_hash.as_slice(), &now_ms])?
                .map(|r| {
                    Ok(WebAuth {
                        team_id: r.get(0),
                        team: r.get(1),
                        user: r.get(2),
                        role: role(r.get(3))?,
                        language: r.get(4),
                    })
                })
                .transpose()
        })
    }

    fn set_session_language(
        &mut self,
        token_hash: &[u8; 32],
        lang: &str,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.client.execute(
                "UPDATE session SET language = $2 WHERE token_hash = $1",
                &[&token_hash.as_slice(), &lang],
            )?;
            Ok(())
        })
    }

    fn end_session(&mut self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        self.with(|c| {
            c.client.execute(
                "DELETE FROM session WHERE token_hash = $1",
                &[&token_hash.as_slice()],
            )?;
            Ok(())
        })
    }

    fn begin_team_turn(&mut self, team: TeamId) -> Result<(), StoreError> {
        // A session-level advisory lock: held by this connection until ended, or until the
        // connection closes (an instance killed mid-turn releases it with its connection).
        self.with(|c| {
            let s = c.prepared("SELECT pg_advisory_lock($1)")?;
            c.client.execute(&s, &[&(TEAM_TURNS | team)])?;
            Ok(())
        })
    }

    fn end_team_turn(&mut self, team: TeamId) -> Result<(), StoreError> {
        self.with(|c| {
            let s = c.prepared("SELECT pg_advisory_unlock($1)")?;
            c.client.execute(&s, &[&(TEAM_TURNS | team)])?;
            Ok(())
        })
    }
}

/// Commits other instances made, as PostgreSQL notifies them: a connection of its own that
/// listens on [`COMMITS_CHANNEL`].
pub struct CommitFeed {
    client: Client,
}

impl CommitFeed {
    pub fn open(url: &str) -> Result<CommitFeed, StoreError> {
        let mut client = config(url, "fieldbook-relay commit feed")?.connect(NoTls)?;
        client.batch_execute(&format!("LISTEN {COMMITS_CHANNEL}"))?;
        Ok(CommitFeed { client })
    }

    /// The commits notified within `wait` (team, sequence), those already arrived first; an
    /// error when the connection is lost (open a new feed, and catch up: notifications sent
    /// meanwhile are not kept for it).
    pub fn next(&mut self, wait: Duration) -> Result<Vec<(TeamId, u64)>, StoreError> {
        let mut arrived = Vec::new();
        {
            let mut notifications = self.client.notifications();
            arrived.extend(notifications.timeout_iter(wait).next()?);
            // Whatever else has arrived, without waiting again.
            let mut pending = notifications.iter();
            while let Some(n) = pending.next()? {
                arrived.push(n);
            }
        }
        let mut out = Vec::with_capacity(arrived.len());
        for n in arrived {
            let commit = n.payload().split_once(':').and_then(|(team, seq)| {
                Some((team.parse::<TeamId>().ok()?, seq.parse::<u64>().ok()?))
            });
            match commit {
                Some(c) => out.push(c),
                None => tracing::warn!(payload = ?n.payload(), "an unreadable commit notification"),
            }
        }
        if self.client.is_closed() {
            return Err(StoreError::Database(
                "the commit feed's connection to PostgreSQL closed".into(),
            ));
        }
        Ok(out)
    }
}
