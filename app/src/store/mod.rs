//! The device's local store, behind a small trait so that every backend runs one conformance
//! suite ([`conformance`]). SQLite ([`sqlite::SqliteStore`]) is the default.

pub mod conformance;
pub mod encrypted;
pub mod private;
pub mod sqlite;

use fieldbook_shared::Day;
use fieldbook_shared::board::{BoardFacts, BoardRow};
pub use fieldbook_shared::pipeline::Chunk;
use fieldbook_shared::pipeline::Save;
use fieldbook_shared::summary::{DealSummary, DossierSummary, FollowUpSummary, Projection};
use fieldbook_shared::sync::heads_to_bytes;
use serde::{Deserialize, Serialize};

pub use fieldbook_shared::api::ListQuery;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the disk is full: nothing was written, and what was saved before is intact")]
    Full,
    #[error("the store is being used by another process; try again")]
    Busy,
    #[error(
        "the store {path} cannot be opened with the key kept for it: it was encrypted under \
         another key, or it is damaged; the file was left as it is"
    )]
    WrongKey { path: String },
    #[error(
        "the store {path} cannot be read: {keeper} holds no key for it, so it was encrypted \
         under another keystore or key file, or it is damaged or not a Fieldbook store; the \
         file was left as it is"
    )]
    KeyMissing { path: String, keeper: String },
    #[error("the store file is damaged or not a Fieldbook store: {0}")]
    NotAStore(String),
    #[error("a stored row cannot be read ({0}); the store was written by another version?")]
    BadRow(String),
    #[error("could not upgrade the store's tables: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("could not create the data folder {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Where a write comes from, which decides what the relay still has to be sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// An edit made on this device: one more change the relay has not acknowledged.
    Local,
    /// Changes received from the relay. `sync_state` (an encoded Automerge sync state), when
    /// given, records what both sides now hold.
    Synced { sync_state: Option<Vec<u8>> },
}

/// Everything written for one dossier in one atomic step: its bytes and its projections, so
/// that lists and search never disagree with the document.
#[derive(Debug, Clone)]
pub struct DossierWrite {
    pub chunk: Chunk,
    /// The document's heads after this write (what the saved bytes reach).
    pub heads: Vec<[u8; 32]>,
    pub summary: DossierSummary,
    pub deals: Vec<DealSummary>,
    pub follow_ups: Vec<FollowUpSummary>,
    pub search_text: String,
    /// What the manager's board needs besides (None: not known, recomputed when read).
    pub board: Option<BoardFacts>,
    pub origin: Origin,
    /// When the search text goes into the full-text indexes.
    pub text: TextWrite,
}

/// How a write treats the dossier's search text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextWrite {
    /// Index it now, in the write's transaction.
    Now,
    /// Store it and index it later ([`DossierStore::index_pending`]); search scans it
    /// meanwhile. Indexing costs more than the rest of a write: a cold sync does this.
    Later,
    /// Not known (changes arrived with the projection of their result, not its text): the
    /// text indexed before stays searchable until it is worked out again from the document
    /// ([`DossierStore::stale_text`]).
    Unknown,
}

impl DossierWrite {
    /// What to write for `save`, from `origin`.
    pub fn from_save(save: Save, origin: Origin) -> DossierWrite {
        DossierWrite::new(
            save.chunk,
            heads_to_bytes(&save.heads),
            save.projection,
            origin,
        )
    }

    pub fn new(
        chunk: Chunk,
        heads: Vec<[u8; 32]>,
        projection: Projection,
        origin: Origin,
    ) -> DossierWrite {
        let Projection {
            summary,
            deals,
            follow_ups,
            search_text,
            board,
        } = projection;
        DossierWrite {
            chunk,
            heads,
            summary,
            deals,
            follow_ups,
            search_text,
            board,
            origin,
            text: TextWrite::Now,
        }
    }
}

/// A dossier's row on the manager's board, as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum BoardEntry {
    Row(Box<BoardRow>),
    /// Saved before the board existed: recompute it from the document.
    Unknown(String),
    /// Removed from this device ([`DossierStore::remove`]): the board drops it.
    Gone(String),
}

/// A dossier's saved bytes: loadable as one Automerge document.
#[derive(Debug, Clone)]
pub struct SavedDossier {
    pub bytes: Vec<u8>,
    /// How many chunks make it up (a snapshot plus appended changes): when this grows, the
    /// engine writes a fresh snapshot.
    pub chunks: usize,
}

/// Which follow-ups to list; open ones, earliest due first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FollowUpQuery {
    /// Only those assigned to this person (by name).
    pub assignee_name: Option<String>,
    /// Only those due before this day (overdue on it).
    pub due_before: Option<Day>,
    /// Only those of dossiers owned by this rep.
    pub owner: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub id: String,
    pub name: String,
    /// The matching text with the match marked by `[` and `]`.
    pub snippet: String,
}

pub trait DossierStore {
    /// Write several dossiers at once, atomically: all or nothing.
    fn write(&mut self, batch: &[DossierWrite]) -> Result<(), StoreError>;
    fn load(&self, id: &str) -> Result<Option<SavedDossier>, StoreError>;
    fn summary(&self, id: &str) -> Result<Option<DossierSummary>, StoreError>;
    /// Summaries, what needs doing first first: earliest open follow-up, then by name.
    fn list(&self, query: &ListQuery) -> Result<Vec<DossierSummary>, StoreError>;
    fn count(&self, query: &ListQuery) -> Result<u64, StoreError>;
    fn search(&self, text: &str, limit: u32) -> Result<Vec<SearchHit>, StoreError>;
    fn ids(&self) -> Result<Vec<String>, StoreError>;
    fn deals(&self, dossier_id: &str) -> Result<Vec<DealSummary>, StoreError>;
    /// Open follow-ups across every live dossier, earliest due first (undated last).
    fn follow_ups(&self, query: &FollowUpQuery) -> Result<Vec<FollowUpSummary>, StoreError>;
    fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// The saved sync state of `id` with the relay (None: never completed an exchange).
    fn sync_state(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Record completed exchanges `(id, sync state, acked)` in one transaction; `acked`
    /// clears the dossier's count of unacknowledged changes.
    fn finish_sync(&mut self, done: &[(String, Vec<u8>, bool)]) -> Result<(), StoreError>;
    /// Dossiers with local changes the relay has not acknowledged.
    fn unsynced(&self) -> Result<Vec<String>, StoreError>;
    /// How many local changes, over all dossiers, the relay has not acknowledged.
    fn unsynced_changes(&self) -> Result<u64, StoreError>;
    /// Index up to `max` dossiers whose text was stored for later; returns how many remain.
    fn index_pending(&mut self, max: usize) -> Result<u64, StoreError>;
    /// Dossiers whose text is not indexed as it stands: stored but not indexed yet (search
    /// scans them meanwhile), or to be worked out again ([`TextWrite::Unknown`]).
    fn unindexed(&self) -> Result<u64, StoreError>;
    /// Up to `max` dossiers whose text is to be worked out again from their document.
    fn stale_text(&self, max: usize) -> Result<Vec<String>, StoreError>;
    /// `id`'s search text, worked out again: indexed now, unless the dossier was written
    /// since `version` (then that write's text stands, or is worked out in its turn). For a
    /// dossier the store does not hold, nothing is left to work out.
    fn set_text(&mut self, id: &str, version: i64, text: &str) -> Result<(), StoreError>;
    /// A number that changes whenever `id`'s saved bytes change (None: no such dossier).
    fn version(&self, id: &str) -> Result<Option<i64>, StoreError>;
    /// The heads `id`'s saved bytes reach, as written with them (None: no such dossier, or
    /// saved before heads were kept).
    fn heads(&self, id: &str) -> Result<Option<Vec<[u8; 32]>>, StoreError>;
    fn set_setting(&mut self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Delete the dossiers `ids` completely, in one transaction: their bytes, summaries,
    /// deals, follow-ups, search text and sync records, as if never written (a later write of
    /// the same id starts afresh). The board keeps a newer entry for each saying it is gone
    /// ([`BoardEntry::Gone`]). Ids the store does not hold are ignored.
    fn remove(&mut self, ids: &[String]) -> Result<(), StoreError>;
    /// Remove every dossier, setting and sync record, leaving nothing of them readable in the
    /// store's files (and the files themselves removed where the platform allows it while
    /// open). The store stays usable, empty.
    fn wipe(&mut self) -> Result<(), StoreError>;
    /// The board rows written after board sequence `since`, and the sequence now.
    fn board_since(&self, since: u64) -> Result<(u64, Vec<BoardEntry>), StoreError>;
    /// `id`'s board row as last written (None: no such dossier, removed, or its row is to be
    /// recomputed from the document).
    fn board_row(&self, id: &str) -> Result<Option<BoardRow>, StoreError>;
}
