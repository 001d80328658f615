//! The default store: one SQLite file (WAL) per device.
//!
//! Per dossier: its Automerge bytes as chunks (a snapshot, then appended changes), a summary
//! row with the columns lists filter and sort on, one row per deal, and two full-text indexes
//! (trigram for any substring of three characters or more, CJK character pairs for the
//! two-character words Chinese is full of). All of it is written in one transaction.

use std::path::Path;

use fieldbook_shared::Day;
use fieldbook_shared::summary::{
    DealSummary, DossierSummary, FollowUpSummary, Projection, cjk_bigrams,
};
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use super::{
    BoardEntry, Chunk, DossierStore, DossierWrite, FollowUpQuery, ListQuery, Origin, SavedDossier,
    SearchHit, StoreError, TextWrite,
};

const SCHEMA: &str = r#"
CREATE TABLE setting (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

CREATE TABLE chunk (
    dossier_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (dossier_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE dossier (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    owner TEXT NOT NULL,
    archived INTEGER NOT NULL,
    -- next open follow-up, or '9999-12-31' so that "what needs doing first" sorts by one index
    sort_due TEXT NOT NULL,
    next_follow_up TEXT,
    last_contact TEXT,
    summary TEXT NOT NULL
) STRICT;
CREATE INDEX dossier_worklist ON dossier (archived, sort_due, name_key);
CREATE INDEX dossier_owner ON dossier (owner, archived, sort_due, name_key);
CREATE INDEX dossier_last_contact ON dossier (last_contact);

CREATE TABLE deal (
    dossier_id TEXT NOT NULL,
    deal_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    band TEXT NOT NULL,
    open INTEGER NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (dossier_id, deal_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX deal_stage ON deal (stage, dossier_id);
CREATE INDEX deal_band ON deal (band, open, dossier_id);

CREATE TABLE follow_up (
    dossier_id TEXT NOT NULL,
    follow_up_id TEXT NOT NULL,
    open INTEGER NOT NULL,
    -- due date, or '9999-12-31' when undated, so one index gives "earliest first"
    sort_due TEXT NOT NULL,
    assignee_name TEXT NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (dossier_id, follow_up_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX follow_up_due ON follow_up (open, sort_due);

CREATE VIRTUAL TABLE dossier_text USING fts5 (body, tokenize = 'trigram');
-- Only single-pair lookups are made here, so no positions are kept (detail = none).
CREATE VIRTUAL TABLE dossier_pairs USING fts5 (
    body, content = '', contentless_delete = 1, detail = none
);
"#;

/// What the device knows of its exchanges with the relay.
const SYNC_SCHEMA: &str = r#"
CREATE TABLE sync_doc (
    dossier_id TEXT PRIMARY KEY,
    -- encoded Automerge sync state: the heads both sides held after the last exchange
    state BLOB,
    -- local changes the relay has not acknowledged
    unsynced INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX sync_doc_unsynced ON sync_doc (unsynced) WHERE unsynced > 0;
-- Dossiers written before sync existed have changes the relay has never seen.
INSERT INTO sync_doc (dossier_id, unsynced) SELECT id, 1 FROM dossier;
"#;

/// Search text stored but not yet in the full-text indexes.
const PENDING_TEXT_SCHEMA: &str = r#"
CREATE TABLE text_pending (dossier_id TEXT PRIMARY KEY, body TEXT NOT NULL) STRICT, WITHOUT ROWID;
"#;

/// The manager's board: each dossier's board row, numbered by when it was written so that a
/// board in memory takes only what changed. Dossiers saved before it existed get a row to
/// recompute (NULL).
const BOARD_SCHEMA: &str = r#"
CREATE TABLE board (dossier_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, row TEXT) STRICT;
CREATE INDEX board_seq ON board (seq);
INSERT INTO board (dossier_id, seq, row) SELECT id, 1, NULL FROM dossier;
"#;

/// The heads each dossier's saved bytes reach, so a sync can tell whether changes apply on
/// top of them without opening the document (NULL: saved before heads were kept).
const HEADS_SCHEMA: &str = r#"
ALTER TABLE dossier ADD COLUMN heads BLOB;
"#;

/// Dossiers whose search text is to be worked out again from the document (changes arrived
/// with their projection but not its text).
const STALE_TEXT_SCHEMA: &str = r#"
CREATE TABLE text_stale (dossier_id TEXT PRIMARY KEY) STRICT, WITHOUT ROWID;
"#;

/// Dossiers removed from the device keep their board row, emptied and marked gone, under a
/// new sequence number so that a board in memory learns of the removal.
const BOARD_GONE_SCHEMA: &str = r#"
ALTER TABLE board ADD COLUMN gone INTEGER NOT NULL DEFAULT 0;
"#;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(SCHEMA),
        M::up(SYNC_SCHEMA),
        M::up(PENDING_TEXT_SCHEMA),
        M::up(BOARD_SCHEMA),
        M::up(HEADS_SCHEMA),
        M::up(STALE_TEXT_SCHEMA),
        M::up(BOARD_GONE_SCHEMA),
    ])
}

fn map_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::NotAStore(e.to_string())
        }
        _ => StoreError::Sqlite(e),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        map_err(e)
    }
}

pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Open (creating if needed) the store file at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// A store that lives in memory only (tests, scratch work).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    pub(super) fn init(mut conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // WAL: readers never wait for the writer. FULL: a commit is on disk before the call
        // returns, so "saved" means saved even if the power goes.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Bulk writes (a cold sync) touch many pages: a larger cache and fewer, larger
        // checkpoints keep each page from being written several times over.
        conn.pragma_update(None, "cache_size", -32_768)?;
        conn.pragma_update(None, "wal_autocheckpoint", 4_096)?;
        migrations().to_latest(&mut conn).map_err(|e| match e {
            rusqlite_migration::Error::RusqliteError { err, .. } => map_err(err),
            other => StoreError::Migration(other),
        })?;
        Ok(SqliteStore { conn })
    }

    /// Cap the file size (in pages); used to test the disk-full path.
    pub fn set_max_pages(&self, pages: u64) -> Result<(), StoreError> {
        self.conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        Ok(())
    }

    /// Rows this connection has changed since it was opened: moves on every write, local or
    /// synced, so a view can tell cheaply that something changed.
    pub fn changes_made(&self) -> u64 {
        self.conn.total_changes()
    }

    /// Bytes the store occupies (pages in use × page size), excluding the WAL.
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        // SQLCipher answers this pragma as text (its `cipher_page_size`).
        let size = match self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get::<_, Value>(0))?
        {
            Value::Integer(n) => n,
            Value::Text(t) => t.trim().parse().unwrap_or(0),
            _ => 0,
        };
        Ok(u64::try_from(pages * size).unwrap_or(0))
    }

    fn write_one(tx: &rusqlite::Transaction<'_>, w: &DossierWrite) -> Result<(), rusqlite::Error> {
        let id = &w.summary.id;
        match &w.chunk {
            Chunk::Snapshot(bytes) => {
                // Sequence numbers keep rising across compactions: the latest is the
                // dossier's version.
                let next: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM chunk WHERE dossier_id = ?1",
                    [id],
                    |r| r.get(0),
                )?;
                tx.prepare_cached("DELETE FROM chunk WHERE dossier_id = ?1")?
                    .execute([id])?;
                tx.prepare_cached(
                    "INSERT INTO chunk (dossier_id, seq, bytes) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![id, next, bytes])?;
            }
            Chunk::Append(bytes) => {
                tx.prepare_cached(
                    "INSERT INTO chunk (dossier_id, seq, bytes) VALUES (?1, \
                     (SELECT COALESCE(MAX(seq), -1) + 1 FROM chunk WHERE dossier_id = ?1), ?2)",
                )?
                .execute(params![id, bytes])?;
            }
        }
        match &w.origin {
            Origin::Local => {
                tx.prepare_cached(
                    "INSERT INTO sync_doc (dossier_id, unsynced) VALUES (?1, 1) \
                     ON CONFLICT (dossier_id) DO UPDATE SET unsynced = unsynced + 1",
                )?
                .execute([id])?;
            }
            Origin::Synced {
                sync_state: Some(state),
            } => {
                tx.prepare_cached(
                    "INSERT INTO sync_doc (dossier_id, state) VALUES (?1, ?2) \
                     ON CONFLICT (dossier_id) DO UPDATE SET state = excluded.state",
                )?
                .execute(params![id, state])?;
            }
            Origin::Synced { sync_state: None } => {}
        }
        let s = &w.summary;
        let summary = serde_json::to_string(s).expect("a summary always serialises");
        // The board's row is the projection without its search text (`Projection::board_row`).
        let board = w.board.as_ref().map(|facts| {
            let row = Projection {
                summary: s.clone(),
                deals: w.deals.clone(),
                follow_ups: w.follow_ups.clone(),
                search_text: String::new(),
                board: Some(facts.clone()),
            };
            serde_json::to_string(&row.board_row()).expect("a board row always serialises")
        });
        tx.prepare_cached(
            "INSERT INTO board (dossier_id, seq, row, gone) \
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM board), ?2, 0) \
             ON CONFLICT (dossier_id) DO UPDATE SET seq = excluded.seq, row = excluded.row, \
             gone = 0",
        )?
        .execute(params![id, board])?;
        let rowid: i64 = tx.prepare_cached(
            "INSERT INTO dossier (id, name, name_key, owner, archived, sort_due, next_follow_up, \
             last_contact, summary, heads) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key, \
             owner = excluded.owner, archived = excluded.archived, sort_due = excluded.sort_due, \
             next_follow_up = excluded.next_follow_up, last_contact = excluded.last_contact, \
             summary = excluded.summary, heads = excluded.heads RETURNING rowid",
        )?.query_row(
            params![
                id,
                s.name,
                s.name.to_lowercase(),
                s.owner,
                s.archived,
                sort_key(s.next_follow_up),
                s.next_follow_up.map(|d| d.to_string()),
                s.last_contact.map(|d| d.to_string()),
                summary,
                w.heads.concat(),
            ],
            |r| r.get(0),
        )?;
        tx.prepare_cached("DELETE FROM deal WHERE dossier_id = ?1")?
            .execute([id])?;
        for d in &w.deals {
            tx.prepare_cached(
                "INSERT INTO deal (dossier_id, deal_id, stage, band, open, row) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                id,
                d.deal_id,
                d.stage.as_str(),
                d.band.as_str(),
                d.stage.is_open(),
                serde_json::to_string(d).expect("a deal summary always serialises"),
            ])?;
        }
        tx.prepare_cached("DELETE FROM follow_up WHERE dossier_id = ?1")?
            .execute([id])?;
        for f in &w.follow_ups {
            tx.prepare_cached("INSERT INTO follow_up (dossier_id, follow_up_id, open, sort_due, assignee_name, row) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?.execute(
                params![
                    id,
                    f.follow_up_id,
                    f.done_on.is_none(),
                    sort_key(f.due),
                    f.assignee_name,
                    serde_json::to_string(f).expect("a follow-up summary always serialises"),
                ],
            )?;
        }
        if w.text == TextWrite::Unknown {
            // The text indexed before stays searchable until it is worked out again.
            tx.prepare_cached("INSERT OR IGNORE INTO text_stale (dossier_id) VALUES (?1)")?
                .execute([id])?;
            return Ok(());
        }
        tx.prepare_cached("DELETE FROM text_stale WHERE dossier_id = ?1")?
            .execute([id])?;
        Self::write_text(tx, id, rowid, &w.search_text, w.text)
    }

    /// Delete everything of dossier `id` (see [`DossierStore::remove`]).
    fn remove_one(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<(), rusqlite::Error> {
        // The full-text rows are keyed by the dossier row's rowid, which a later dossier may
        // be given again: they go first, while it is known.
        let rowid: Option<i64> = tx
            .prepare_cached("SELECT rowid FROM dossier WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        if let Some(rowid) = rowid {
            tx.prepare_cached("DELETE FROM dossier_text WHERE rowid = ?1")?
                .execute([rowid])?;
            tx.prepare_cached("DELETE FROM dossier_pairs WHERE rowid = ?1")?
                .execute([rowid])?;
        }
        for sql in [
            "DELETE FROM chunk WHERE dossier_id = ?1",
            "DELETE FROM deal WHERE dossier_id = ?1",
            "DELETE FROM follow_up WHERE dossier_id = ?1",
            "DELETE FROM sync_doc WHERE dossier_id = ?1",
            "DELETE FROM text_pending WHERE dossier_id = ?1",
            "DELETE FROM text_stale WHERE dossier_id = ?1",
            "DELETE FROM dossier WHERE id = ?1",
        ] {
            tx.prepare_cached(sql)?.execute([id])?;
        }
        // Every write leaves a board row: a dossier held has one not yet gone.
        tx.prepare_cached(
            "UPDATE board SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM board), row = NULL, \
             gone = 1 WHERE dossier_id = ?1 AND gone = 0",
        )?
        .execute([id])?;
        Ok(())
    }

    /// Replace `id`'s text: in the indexes now, or stored to index later.
    fn write_text(
        tx: &rusqlite::Transaction<'_>,
        id: &str,
        rowid: i64,
        text: &str,
        when: TextWrite,
    ) -> Result<(), rusqlite::Error> {
        if when == TextWrite::Now {
            // Most edits leave the text as it was (a stage, a date, a website): indexing it
            // again would cost more than the rest of the write.
            let indexed: Option<String> = tx
                .prepare_cached("SELECT body FROM dossier_text WHERE rowid = ?1")?
                .query_row([rowid], |r| r.get(0))
                .optional()?;
            if indexed.as_deref() == Some(text) {
                tx.prepare_cached("DELETE FROM text_pending WHERE dossier_id = ?1")?
                    .execute([id])?;
                return Ok(());
            }
        }
        // A first write finds nothing to delete; later writes replace the dossier's text.
        tx.prepare_cached("DELETE FROM dossier_text WHERE rowid = ?1")?
            .execute([rowid])?;
        tx.prepare_cached("DELETE FROM dossier_pairs WHERE rowid = ?1")?
            .execute([rowid])?;
        if when == TextWrite::Later {
            // Indexing costs more than everything else in a write: a cold sync stores the
            // text and indexes it afterwards (search scans these rows meanwhile).
            tx.prepare_cached(
                "INSERT INTO text_pending (dossier_id, body) VALUES (?1, ?2) \
                 ON CONFLICT (dossier_id) DO UPDATE SET body = excluded.body",
            )?
            .execute(params![id, text])?;
            return Ok(());
        }
        tx.prepare_cached("DELETE FROM text_pending WHERE dossier_id = ?1")?
            .execute([id])?;
        tx.prepare_cached("INSERT INTO dossier_text (rowid, body) VALUES (?1, ?2)")?
            .execute(params![rowid, text])?;
        tx.prepare_cached("INSERT INTO dossier_pairs (rowid, body) VALUES (?1, ?2)")?
            .execute(params![rowid, cjk_bigrams(text)])?;
        Ok(())
    }
}

/// A due date as a sort key: undated sorts last, so "earliest first" is one index scan.
fn sort_key(due: Option<Day>) -> String {
    due.map_or_else(|| "9999-12-31".to_string(), |d| d.to_string())
}

fn quote(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

fn all_cjk(term: &str) -> bool {
    cjk_bigrams(term).trim() == term && term.chars().count() == 2
}

/// A text query split by the index that can answer each term.
#[derive(Default)]
struct TextQuery {
    /// FTS5 expression over the trigram index (terms of three characters or more).
    long: Option<String>,
    /// FTS5 expression over the pair index (two-character CJK terms; two-letter word prefixes).
    pairs: Option<String>,
    /// LIKE patterns for what no index answers (one character, two symbols): a scan, correct
    /// but slower.
    short: Vec<String>,
}

impl TextQuery {
    fn parse(text: &str) -> Option<TextQuery> {
        let (mut long, mut pairs, mut short) = (Vec::new(), Vec::new(), Vec::new());
        for t in text.split_whitespace() {
            match t.chars().count() {
                3.. => long.push(quote(t)),
                2 if all_cjk(t) => pairs.push(quote(t)),
                // Two letters or digits (HR, IT, 5A): words starting with them, from the pair
                // index's word tokens, instead of scanning every dossier for a substring.
                2 if t.chars().all(char::is_alphanumeric) => pairs.push(format!("{}*", quote(t))),
                _ => short.push(like_containing(t)),
            }
        }
        let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join(" AND "));
        let q = TextQuery {
            long: join(long),
            pairs: join(pairs),
            short,
        };
        (q.long.is_some() || q.pairs.is_some() || !q.short.is_empty()).then_some(q)
    }

    /// SQL selecting the rowids of every dossier matching, for use inside `IN (...)`.
    fn rowids(&self) -> (String, Vec<Value>) {
        let mut parts = Vec::new();
        let mut args = Vec::new();
        if let Some(long) = &self.long {
            parts.push("SELECT rowid FROM dossier_text WHERE dossier_text MATCH ?");
            args.push(Value::Text(long.clone()));
        }
        if let Some(pairs) = &self.pairs {
            parts.push("SELECT rowid FROM dossier_pairs WHERE dossier_pairs MATCH ?");
            args.push(Value::Text(pairs.clone()));
        }
        for pattern in &self.short {
            parts.push("SELECT rowid FROM dossier_text WHERE body LIKE ? ESCAPE '\\'");
            args.push(Value::Text(pattern.clone()));
        }
        (parts.join(" INTERSECT "), args)
    }

    /// SQL for the first `limit` matches (id, name, text), driven by the most selective index
    /// so that a term found in every dossier still stops after `limit` rows. CROSS JOIN fixes
    /// the join order: left to itself the planner scans every dossier and probes the index.
    fn first_matches(&self) -> (String, Vec<Value>) {
        let mut args = Vec::new();
        let mut conds = Vec::new();
        let from = if let Some(long) = &self.long {
            conds.push("dossier_text MATCH ?".to_string());
            args.push(Value::Text(long.clone()));
            if let Some(pairs) = &self.pairs {
                conds.push(
                    "t.rowid IN (SELECT rowid FROM dossier_pairs WHERE dossier_pairs MATCH ?)"
                        .into(),
                );
                args.push(Value::Text(pairs.clone()));
            }
            "dossier_text t CROSS JOIN dossier d ON d.rowid = t.rowid"
        } else if let Some(pairs) = &self.pairs {
            conds.push("dossier_pairs MATCH ?".to_string());
            args.push(Value::Text(pairs.clone()));
            "dossier_pairs p CROSS JOIN dossier_text t ON t.rowid = p.rowid \
             CROSS JOIN dossier d ON d.rowid = p.rowid"
        } else {
            "dossier_text t CROSS JOIN dossier d ON d.rowid = t.rowid"
        };
        for pattern in &self.short {
            conds.push("t.body LIKE ? ESCAPE '\\'".into());
            args.push(Value::Text(pattern.clone()));
        }
        conds.push("d.archived = 0".into());
        let sql = format!(
            "SELECT d.id, d.name, t.body FROM {from} WHERE {} LIMIT ?",
            conds.join(" AND ")
        );
        (sql, args)
    }
}

/// A short piece of `body` around the first term found, the match marked with [ ].
fn snippet(body: &str, text: &str) -> String {
    let lower = body.to_lowercase();
    for term in text.split_whitespace() {
        if let Some(at) = lower.find(&term.to_lowercase()) {
            // Lowercasing can change byte lengths; fall back to the start if it moved.
            if !body.is_char_boundary(at) || !body.is_char_boundary(at + term.len()) {
                break;
            }
            let before: String = body[..at]
                .chars()
                .rev()
                .take(24)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let after: String = body[at + term.len()..].chars().take(40).collect();
            let matched = &body[at..at + term.len()];
            return format!("…{}[{}]{}…", before, matched, after).replace('\n', " ");
        }
    }
    body.chars().take(64).collect::<String>().replace('\n', " ")
}

/// A LIKE pattern (with `ESCAPE '\\'`) matching text that contains `term` literally.
fn like_containing(term: &str) -> String {
    let escaped = term
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

impl SqliteStore {
    /// Run a search query selecting (id, name, body) and make hits of its rows.
    fn hits(&self, sql: &str, args: Vec<Value>, text: &str) -> Result<Vec<SearchHit>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, body) = row?;
            out.push(SearchHit {
                id,
                name,
                snippet: snippet(&body, text),
            });
        }
        Ok(out)
    }

    /// Search the text not indexed yet, by scanning it: every term must occur.
    fn search_pending(
        &self,
        text: &str,
        limit: usize,
        out: &mut Vec<SearchHit>,
    ) -> Result<(), StoreError> {
        let terms: Vec<&str> = text.split_whitespace().collect();
        if terms.is_empty() {
            return Ok(());
        }
        let conds = vec!["p.body LIKE ? ESCAPE '\\'"; terms.len()].join(" AND ");
        let sql = format!(
            "SELECT p.dossier_id, d.name, p.body FROM text_pending p \
             JOIN dossier d ON d.id = p.dossier_id WHERE {conds} LIMIT ?"
        );
        let mut args: Vec<Value> = terms
            .iter()
            .map(|t| Value::Text(like_containing(t)))
            .collect();
        args.push(Value::Integer(limit as i64));
        let seen: Vec<String> = out.iter().map(|h| h.id.clone()).collect();
        let hits = self.hits(&sql, args, text)?;
        out.extend(hits.into_iter().filter(|h| !seen.contains(&h.id)));
        Ok(())
    }
}

impl DossierStore for SqliteStore {
    fn write(&mut self, batch: &[DossierWrite]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for w in batch {
            Self::write_one(&tx, w)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&self, id: &str) -> Result<Option<SavedDossier>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT bytes FROM chunk WHERE dossier_id = ?1 ORDER BY seq")?;
        let mut rows = stmt.query([id])?;
        let mut bytes = Vec::new();
        let mut chunks = 0;
        while let Some(row) = rows.next()? {
            bytes.extend_from_slice(row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?);
            chunks += 1;
        }
        Ok((chunks > 0).then_some(SavedDossier { bytes, chunks }))
    }

    fn summary(&self, id: &str) -> Result<Option<DossierSummary>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT summary FROM dossier WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        json.map(|j| parse_row(&j)).transpose()
    }

    fn list(&self, q: &ListQuery) -> Result<Vec<DossierSummary>, StoreError> {
        let (filter, mut args) = where_clause(q);
        args.push(Value::Integer(i64::from(q.limit.unwrap_or(u32::MAX))));
        args.push(Value::Integer(i64::from(q.offset)));
        let sql = format!(
            "SELECT summary FROM dossier d {filter} ORDER BY archived, sort_due, name_key, id \
             LIMIT ? OFFSET ?"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?;
        rows.map(|json| parse_row(&json?)).collect()
    }

    fn count(&self, q: &ListQuery) -> Result<u64, StoreError> {
        let (filter, args) = where_clause(q);
        let sql = format!("SELECT COUNT(*) FROM dossier d {filter}");
        let n: i64 = self
            .conn
            .query_row(&sql, rusqlite::params_from_iter(args), |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn search(&self, text: &str, limit: u32) -> Result<Vec<SearchHit>, StoreError> {
        let Some(query) = TextQuery::parse(text) else {
            return Ok(Vec::new());
        };
        let (sql, mut args) = query.first_matches();
        args.push(Value::Integer(i64::from(limit)));
        let mut out = self.hits(&sql, args, text)?;
        if out.len() < limit as usize {
            self.search_pending(text, limit as usize - out.len(), &mut out)?;
        }
        Ok(out)
    }

    fn ids(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM dossier ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn deals(&self, dossier_id: &str) -> Result<Vec<DealSummary>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT row FROM deal WHERE dossier_id = ?1 ORDER BY deal_id")?;
        let rows = stmt.query_map([dossier_id], |r| r.get::<_, String>(0))?;
        rows.map(|json| parse_row(&json?)).collect()
    }

    fn follow_ups(&self, q: &FollowUpQuery) -> Result<Vec<FollowUpSummary>, StoreError> {
        let mut conds = vec!["f.open = 1".to_string(), "d.archived = 0".to_string()];
        let mut args = Vec::new();
        if let Some(name) = &q.assignee_name {
            conds.push("f.assignee_name = ?".into());
            args.push(Value::Text(name.clone()));
        }
        if let Some(day) = q.due_before {
            conds.push("f.sort_due < ?".into());
            args.push(Value::Text(day.to_string()));
        }
        if let Some(owner) = &q.owner {
            conds.push("d.owner = ?".into());
            args.push(Value::Text(owner.clone()));
        }
        args.push(Value::Integer(i64::from(q.limit.unwrap_or(u32::MAX))));
        let sql = format!(
            "SELECT f.row FROM follow_up f JOIN dossier d ON d.id = f.dossier_id WHERE {} \
             ORDER BY f.open, f.sort_due, f.dossier_id, f.follow_up_id LIMIT ?",
            conds.join(" AND ")
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?;
        rows.map(|json| parse_row(&json?)).collect()
    }

    fn remove(&mut self, ids: &[String]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for id in ids {
            Self::remove_one(&tx, id)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn wipe(&mut self) -> Result<(), StoreError> {
        crate::store::encrypted::wipe(&mut self.conn)
    }

    fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM setting WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn board_since(&self, since: u64) -> Result<(u64, Vec<BoardEntry>), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT dossier_id, seq, row, gone FROM board WHERE seq > ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query([i64::try_from(since).unwrap_or(i64::MAX)])?;
        let mut seq = since;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            seq = seq.max(u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0));
            let gone: bool = r.get(3)?;
            out.push(match r.get::<_, Option<String>>(2)? {
                _ if gone => BoardEntry::Gone(id),
                Some(json) => BoardEntry::Row(Box::new(
                    serde_json::from_str(&json).map_err(|e| StoreError::BadRow(e.to_string()))?,
                )),
                None => BoardEntry::Unknown(id),
            });
        }
        Ok((seq, out))
    }

    fn board_row(&self, id: &str) -> Result<Option<Projection>, StoreError> {
        let json: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT row FROM board WHERE dossier_id = ?1 AND gone = 0")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        json.flatten()
            .map(|j| serde_json::from_str(&j).map_err(|e| StoreError::BadRow(e.to_string())))
            .transpose()
    }

    fn set_setting(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO setting (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    fn sync_state(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let state: Option<Option<Vec<u8>>> = self
            .conn
            .prepare_cached("SELECT state FROM sync_doc WHERE dossier_id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        Ok(state.flatten())
    }

    fn finish_sync(&mut self, done: &[(String, Vec<u8>, bool)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO sync_doc (dossier_id, state) VALUES (?1, ?2) \
                 ON CONFLICT (dossier_id) DO UPDATE SET state = excluded.state, \
                 unsynced = CASE WHEN ?3 THEN 0 ELSE unsynced END",
            )?;
            for (id, state, acked) in done {
                stmt.execute(params![id, state, acked])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn unsynced(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT dossier_id FROM sync_doc WHERE unsynced > 0")?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    fn unsynced_changes(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT COALESCE(SUM(unsynced), 0) FROM sync_doc WHERE unsynced > 0",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn index_pending(&mut self, max: usize) -> Result<u64, StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut pending = tx.prepare_cached(
                "SELECT p.dossier_id, d.rowid, p.body FROM text_pending p \
                 JOIN dossier d ON d.id = p.dossier_id LIMIT ?1",
            )?;
            let rows: Vec<(String, i64, String)> = pending
                .query_map([max as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            for (id, rowid, body) in rows {
                tx.prepare_cached("INSERT INTO dossier_text (rowid, body) VALUES (?1, ?2)")?
                    .execute(params![rowid, body])?;
                tx.prepare_cached("INSERT INTO dossier_pairs (rowid, body) VALUES (?1, ?2)")?
                    .execute(params![rowid, cjk_bigrams(&body)])?;
                tx.prepare_cached("DELETE FROM text_pending WHERE dossier_id = ?1")?
                    .execute([id])?;
            }
        }
        tx.commit()?;
        self.unindexed()
    }

    fn unindexed(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM text_pending) + (SELECT COUNT(*) FROM text_stale)",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn stale_text(&self, max: usize) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT dossier_id FROM text_stale LIMIT ?1")?;
        let ids = stmt
            .query_map([max as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    fn set_text(&mut self, id: &str, version: i64, text: &str) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let current: Option<i64> = tx
            .prepare_cached("SELECT MAX(seq) FROM chunk WHERE dossier_id = ?1")?
            .query_row([id], |r| r.get(0))?;
        let rowid: Option<i64> = tx
            .prepare_cached("SELECT rowid FROM dossier WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        match (rowid, current) {
            (Some(rowid), Some(current)) if current == version => {
                tx.prepare_cached("DELETE FROM text_stale WHERE dossier_id = ?1")?
                    .execute([id])?;
                Self::write_text(&tx, id, rowid, text, TextWrite::Now)?;
            }
            (None, _) | (_, None) => {
                // No such dossier (any more): nothing to work out.
                tx.prepare_cached("DELETE FROM text_stale WHERE dossier_id = ?1")?
                    .execute([id])?;
            }
            _ => {}
        }
        tx.commit()?;
        Ok(())
    }

    fn heads(&self, id: &str) -> Result<Option<Vec<[u8; 32]>>, StoreError> {
        let blob: Option<Option<Vec<u8>>> = self
            .conn
            .prepare_cached("SELECT heads FROM dossier WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let Some(Some(blob)) = blob else {
            return Ok(None);
        };
        if blob.len() % 32 != 0 {
            return Err(StoreError::BadRow(format!("heads of {} bytes", blob.len())));
        }
        Ok(Some(
            blob.chunks_exact(32)
                .map(|h| h.try_into().expect("32 bytes"))
                .collect(),
        ))
    }

    fn version(&self, id: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT MAX(seq) FROM chunk WHERE dossier_id = ?1")?
            .query_row([id], |r| r.get(0))?)
    }
}

fn parse_row<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::BadRow(e.to_string()))
}

fn day(d: Day) -> Value {
    Value::Text(d.to_string())
}

fn where_clause(q: &ListQuery) -> (String, Vec<Value>) {
    let mut conds = Vec::new();
    let mut args = Vec::new();
    if !q.include_archived {
        conds.push("archived = 0".to_string());
    }
    if let Some(owner) = &q.owner {
        conds.push("owner = ?".into());
        args.push(Value::Text(owner.clone()));
    }
    if let Some(stage) = q.stage {
        conds.push(
            "EXISTS (SELECT 1 FROM deal WHERE deal.dossier_id = d.id AND deal.stage = ?)".into(),
        );
        args.push(Value::Text(stage.as_str().into()));
    }
    if let Some(band) = q.band {
        conds.push(
            "EXISTS (SELECT 1 FROM deal WHERE deal.dossier_id = d.id AND deal.band = ? \
             AND deal.open = 1)"
                .into(),
        );
        args.push(Value::Text(band.as_str().into()));
    }
    if let Some(today) = q.overdue_on {
        conds.push("next_follow_up < ?".into());
        args.push(day(today));
    }
    if let Some(since) = q.not_contacted_since {
        conds.push("(last_contact IS NULL OR last_contact < ?)".into());
        args.push(day(since));
    }
    if let Some(query) = q.text.as_deref().and_then(TextQuery::parse) {
        let (rowids, text_args) = query.rowids();
        conds.push(format!("d.rowid IN ({rowids})"));
        args.extend(text_args);
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    (filter, args)
}
