//! The relay's durable state behind one small trait: accounts (teams, users, invites,
//! devices) and each team's merged dossiers with their projections and change sequence.
//! Every backend runs the one suite in [`conformance`]; SQLite is the embedded default.

pub mod conformance;
pub mod pool;
pub mod postgres;
pub mod sqlite;

pub use fieldbook_shared::pipeline::Chunk;
use fieldbook_shared::sync::wire::{DeviceStatus, Role, Visibility};
use serde::{Deserialize, Serialize};

pub type TeamId = i64;
pub type DeviceId = i64;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the disk is full: the change was not stored")]
    Full,
    #[error("the database is busy; try again")]
    Busy,
    #[error("no team `{0}`")]
    NoTeam(String),
    #[error("a team `{0}` already exists")]
    TeamExists(String),
    #[error("a stored row cannot be read: {0}")]
    BadRow(String),
    #[error(
        "unsupported database URL `{0}` (expected sqlite://PATH, sqlite::memory: or postgres://…)"
    )]
    BadUrl(String),
    #[error("could not upgrade the database schema: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Database(String),
}

/// Who is on the other end of an authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuth {
    pub device_id: DeviceId,
    pub team_id: TeamId,
    pub team: String,
    pub user: String,
    pub role: Role,
}

/// Who is behind a browser session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAuth {
    pub team_id: TeamId,
    pub team: String,
    pub user: String,
    pub role: Role,
    /// The interface language chosen in this session (a word of `fieldbook_shared::api::Lang`).
    pub language: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    pub device_id: DeviceId,
    pub team: String,
    pub user: String,
    pub role: Role,
    pub name: String,
    pub enrolled_ms: i64,
    pub revoked_ms: Option<i64>,
    /// The device's last report: changes it still held unsent, and its last completed sync.
    pub status: Option<DeviceStatus>,
    /// When the relay last heard from it (its own clock).
    pub reported_ms: Option<i64>,
    /// When the relay recorded its last completed sync (its own clock).
    pub synced_ms: Option<i64>,
}

/// One dossier's new state, written with the others of its batch in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct DocWrite {
    pub doc: String,
    pub chunk: Chunk,
    pub heads: Vec<[u8; 32]>,
    /// The dossier's projection (JSON of `fieldbook_shared::summary::Projection`).
    pub projection: String,
    /// Its row on the manager's board: the projection without its search text (JSON of
    /// the same type), so that a board loads without reading every dossier's text.
    pub board: String,
    /// The relay worked the projection out from the document itself; otherwise it came with
    /// the changes, worked out by the device that made them, and the relay checks it later
    /// ([`RelayStore::unchecked`]).
    pub checked: bool,
    /// Who besides managers may read it (`DossierSummary::readers`): user names, sorted and
    /// deduplicated. A user dropped from them since its last write is recorded as withdrawn
    /// ([`RelayStore::withdrawals_since`]).
    pub readers: Vec<String>,
}

/// A team's visibility policy and the team sequence at which it was last changed (0: never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeamVisibility {
    pub policy: Visibility,
    pub set_at: u64,
}

/// Who besides managers may read a dossier (see DossierSummary::readers), and the team sequence of its first write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocReaders {
    pub doc: String,
    pub readers: Vec<String>,
    pub created_seq: u64,
}

/// A dossier's readers as stored: one text, the names joined by newlines ('' for none). A
/// name holding a newline is left out: it can be no user's (user names have no control
/// characters, see `accounts`), and kept it would read back as other names.
pub(crate) fn readers_text(readers: &[String]) -> String {
    let kept: Vec<&str> = readers
        .iter()
        .map(String::as_str)
        .filter(|r| !r.is_empty() && !r.contains('\n'))
        .collect();
    kept.join("\n")
}

/// The names [`readers_text`] stored.
pub(crate) fn readers_from_text(text: &str) -> Vec<String> {
    text.split('\n')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

/// The users in `old` (stored readers) who are not in `new` (stored readers): withdrawn.
pub(crate) fn withdrawn(old: &str, new: &str) -> Vec<String> {
    let new: Vec<&str> = new.split('\n').collect();
    readers_from_text(old)
        .into_iter()
        .filter(|u| !new.contains(&u.as_str()))
        .collect()
}

/// A stored visibility word.
pub(crate) fn visibility_word(word: &str) -> Result<Visibility, StoreError> {
    word.parse()
        .map_err(|e: String| StoreError::BadRow(format!("visibility: {e}")))
}

/// A dossier written with a projection the relay has not checked: as of its write `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked {
    pub team: TeamId,
    pub doc: String,
    pub seq: u64,
}

/// What checking a dossier rewrites in place: its bytes as one snapshot, and the projection
/// the relay worked out (with its search text).
#[derive(Debug, Clone, PartialEq)]
pub struct Rewrite {
    pub snapshot: Vec<u8>,
    pub projection: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredDoc {
    pub bytes: Vec<u8>,
    pub chunks: usize,
    /// The team sequence of its last write: changes whenever the dossier does.
    pub seq: u64,
}

/// Where a dossier stands in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct DocVersion {
    /// The team sequence of its last write: changes whenever the dossier does.
    pub seq: u64,
    pub heads: Vec<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredSnapshot {
    pub doc: String,
    pub bytes: Vec<u8>,
    pub heads: Vec<[u8; 32]>,
    pub projection: String,
    /// Whether the relay has checked the projection (see [`DocWrite::checked`]).
    pub checked: bool,
}

pub trait RelayStore: Send {
    fn create_team(&mut self, name: &str, now_ms: i64) -> Result<TeamId, StoreError>;
    fn team_id(&self, name: &str) -> Result<Option<TeamId>, StoreError>;
    fn teams(&self) -> Result<Vec<TeamId>, StoreError>;
    /// Record a one-time invite for `user` (created if new) in `team`.
    fn create_invite(
        &mut self,
        team: TeamId,
        user: &str,
        role: Role,
        code_hash: &[u8; 32],
        expires_ms: i64,
    ) -> Result<(), StoreError>;
    /// Use an invite: enrol a device under its user with `token_hash`. None when the code is
    /// unknown, used or expired (one answer for all three).
    fn redeem_invite(
        &mut self,
        code_hash: &[u8; 32],
        device_name: &str,
        token_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<Option<DeviceAuth>, StoreError>;
    /// The device holding this token, unless unknown or revoked.
    fn device_by_token(&self, token_hash: &[u8; 32]) -> Result<Option<DeviceAuth>, StoreError>;
    fn devices(&self, team: Option<TeamId>) -> Result<Vec<DeviceRow>, StoreError>;
    /// For a token of a revoked device: whether its team wants revoked devices to wipe what
    /// they hold (`Some(wipe)`); None for a token that is live or was never issued.
    fn revoked_token(&self, token_hash: &[u8; 32]) -> Result<Option<bool>, StoreError>;
    /// Set whether a team's revoked devices wipe their replica and key (on by default).
    fn set_wipe_on_revoke(&mut self, team: TeamId, wipe: bool) -> Result<(), StoreError>;
    /// Revoke a device; false if there is no such (unrevoked) device.
    fn revoke_device(&mut self, device: DeviceId, now_ms: i64) -> Result<bool, StoreError>;
    /// Revocations recorded after revocation number `after`: (number, device).
    fn revocations_after(&self, after: i64) -> Result<Vec<(i64, DeviceId)>, StoreError>;
    /// Record a device's report at `now_ms`, durably before returning. `completed`: it names
    /// a sync that has just completed, which becomes the device's last sync.
    fn report_status(
        &mut self,
        device: DeviceId,
        status: &DeviceStatus,
        completed: bool,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// The team's sequence now and the dossiers written after `since`, oldest first.
    fn changed_since(&self, team: TeamId, since: u64) -> Result<(u64, Vec<String>), StoreError>;
    fn load_doc(&self, team: TeamId, doc: &str) -> Result<Option<StoredDoc>, StoreError>;
    /// The team sequence of `doc`'s last write and the heads it reached (None: the team has
    /// no such dossier).
    fn doc_version(&self, team: TeamId, doc: &str) -> Result<Option<DocVersion>, StoreError>;
    /// Write a batch atomically; each dossier gets the next team sequence number. Returns
    /// the team's sequence after the batch.
    fn write_docs(&mut self, team: TeamId, batch: &[DocWrite]) -> Result<u64, StoreError>;
    /// Whole dossiers with projections, for the ids the team holds (others are left out).
    fn snapshots(&self, team: TeamId, docs: &[String]) -> Result<Vec<StoredSnapshot>, StoreError>;
    /// `doc`'s row on the board (JSON), if the team holds it.
    fn board_row(&self, team: TeamId, doc: &str) -> Result<Option<String>, StoreError>;
    /// Up to `limit` dossiers whose projection the relay has not checked, oldest first.
    fn unchecked(&self, limit: usize) -> Result<Vec<Unchecked>, StoreError>;
    /// `checked` is checked: if the dossier was not written since, mark it so and apply
    /// `rewrite` in place (no new sequence number: its document is unchanged, and so is what
    /// devices and boards were told). Returns false, changing nothing, if it was written since.
    fn settle(
        &mut self,
        checked: &Unchecked,
        rewrite: Option<&Rewrite>,
    ) -> Result<bool, StoreError>;
    fn doc_count(&self, team: TeamId) -> Result<u64, StoreError>;
    /// The board rows (JSON) of the team's dossiers written after `since`, with the team's
    /// sequence now: what a board in memory needs to catch up.
    fn board_rows_since(
        &self,
        team: TeamId,
        since: u64,
    ) -> Result<(u64, Vec<(String, String)>), StoreError>;

    /// The team's visibility policy (`NoTeam` for an unknown team).
    fn visibility(&self, team: TeamId) -> Result<TeamVisibility, StoreError>;
    /// Set the team's visibility policy. A change takes the team's next sequence number (as a
    /// dossier written does), which becomes its `set_at`; the same policy again changes
    /// nothing. Returns the policy now.
    fn set_visibility(
        &mut self,
        team: TeamId,
        policy: Visibility,
    ) -> Result<TeamVisibility, StoreError>;
    /// The readers of the ids the team holds (others are left out), in no particular order.
    fn readers(&self, team: TeamId, docs: &[String]) -> Result<Vec<DocReaders>, StoreError>;
    /// The readers of every dossier of the team, in no particular order.
    fn all_readers(&self, team: TeamId) -> Result<Vec<DocReaders>, StoreError>;
    /// The dossiers `user` stopped being a reader of at a write after `since` (each once,
    /// sorted by id).
    fn withdrawals_since(
        &self,
        team: TeamId,
        user: &str,
        since: u64,
    ) -> Result<Vec<String>, StoreError>;
    /// Whether `user` was ever withdrawn from `doc`'s readers.
    fn was_reader(&self, team: TeamId, user: &str, doc: &str) -> Result<bool, StoreError>;

    /// Set the password hash (PHC string) a user logs in to the web view with; false if the
    /// team has no such user.
    fn set_password(&mut self, team: TeamId, user: &str, hash: &str) -> Result<bool, StoreError>;
    /// A user's role (None: the team has no such user).
    fn role_of(&self, team: TeamId, user: &str) -> Result<Option<Role>, StoreError>;
    /// A user's role and password hash, if they have one.
    fn password_of(&self, team: TeamId, user: &str) -> Result<Option<(Role, String)>, StoreError>;
    fn create_session(
        &mut self,
        token_hash: &[u8; 32],
        team: TeamId,
        user: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError>;
    /// The session's user, unless unknown or expired at `now_ms`.
    fn session(&self, token_hash: &[u8; 32], now_ms: i64) -> Result<Option<WebAuth>, StoreError>;
    fn set_session_language(&mut self, token_hash: &[u8; 32], lang: &str)
    -> Result<(), StoreError>;
    fn end_session(&mut self, token_hash: &[u8; 32]) -> Result<(), StoreError>;

    /// Begin `team`'s turn across every relay instance on this database: until
    /// [`RelayStore::end_team_turn`] on this connection, no other instance merges into or
    /// writes the team's dossiers. A database only one process serves (SQLite) needs none:
    /// the relay's own turn per team suffices.
    fn begin_team_turn(&mut self, _team: TeamId) -> Result<(), StoreError> {
        Ok(())
    }
    fn end_team_turn(&mut self, _team: TeamId) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Whether `url` names a PostgreSQL database (which several relay instances may share).
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Open the store a database URL names: `sqlite://PATH`, `sqlite::memory:`, or
/// `postgres://…` (also `postgresql://…`, as libpq takes it).
pub fn open(url: &str) -> Result<Box<dyn RelayStore>, StoreError> {
    if is_postgres(url) {
        return Ok(Box::new(postgres::PostgresRelayStore::open(url)?));
    }
    if url == "sqlite::memory:" {
        return Ok(Box::new(sqlite::SqliteRelayStore::in_memory()?));
    }
    match url.strip_prefix("sqlite://") {
        Some(path) if !path.is_empty() => Ok(Box::new(sqlite::SqliteRelayStore::open(
            std::path::Path::new(path),
        )?)),
        _ => Err(StoreError::BadUrl(url.to_string())),
    }
}

/// `count` connections to the database `url` names, for a [`pool::StorePool`]: writes through
/// the SQLite ones take turns within this process (SQLite has one writer at a time; waiting
/// in the process is quicker than SQLite's busy retries); PostgreSQL's are independent.
pub fn open_many(url: &str, count: usize) -> Result<Vec<Box<dyn RelayStore>>, StoreError> {
    match url.strip_prefix("sqlite://") {
        Some(path) if !path.is_empty() => {
            let writes = sqlite::WriteTurn::default();
            (0..count)
                .map(|_| {
                    let store = sqlite::SqliteRelayStore::open_with(
                        std::path::Path::new(path),
                        writes.clone(),
                    )?;
                    Ok(Box::new(store) as Box<dyn RelayStore>)
                })
                .collect()
        }
        _ => (0..count).map(|_| open(url)).collect(),
    }
}
