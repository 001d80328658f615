//! Services over the local store: every edit a rep makes, each committed to disk before the
//! call returns, with the dossier's summary and search text updated in the same transaction.

use std::path::Path;
use std::sync::Arc;

use automerge::ActorId;
use fieldbook_shared::board::{BoardRow, ManagerNote, NoteIds, add_note};
use fieldbook_shared::conflict::{self, Conflict};
use fieldbook_shared::document::{DossierDoc, Writer, stamped};
use fieldbook_shared::history::{self, FieldChange};
use fieldbook_shared::patch::{self, Assignment};
use fieldbook_shared::summary::{self, DossierSummary, FollowUpSummary};
use fieldbook_shared::validate;
use fieldbook_shared::{Author, Day, DomainError, Dossier, FollowUpKind, InteractionKind};
use serde::{Deserialize, Serialize};

pub use fieldbook_shared::api::{DossierView, Meeting, MeetingRecorded};

use crate::clock::Clock;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    BoardEntry, Chunk, DossierStore, DossierWrite, FollowUpQuery, ListQuery, Origin, SearchHit,
    StoreError,
};

/// After this many appended chunks a dossier is rewritten as one snapshot.
const COMPACT_AFTER_CHUNKS: usize = 64;

pub const STORE_FILE: &str = "fieldbook.sqlite";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("no dossier `{0}`")]
    NotFound(String),
    #[error("dossier `{id}` cannot be read ({reason}); it was left as it is on disk")]
    Corrupt { id: String, reason: String },
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a dossier id must be 1–64 letters, digits, '-' or '_': `{0}`")]
    BadId(String),
}

impl From<validate::Invalid> for EngineError {
    fn from(e: validate::Invalid) -> Self {
        EngineError::Domain(e.into())
    }
}

/// Who this device writes as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The Automerge actor id of this device, in hex.
    pub device_id: String,
    pub user: String,
    pub device: String,
}

pub struct Engine<S: DossierStore = SqliteStore> {
    store: S,
    identity: Identity,
    actor: ActorId,
    clock: Arc<dyn Clock>,
    /// Where new dossier and item ids come from: random, or a seeded sequence so that a
    /// simulation replays exactly.
    ids: Option<rand::rngs::StdRng>,
    /// Woken after each local write, so a live sync sends it at once rather than at its next
    /// poll (which only exists for writes by other processes on this device).
    local_writes: Arc<tokio::sync::Notify>,
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn check_id(id: &str) -> Result<(), EngineError> {
    if fieldbook_shared::document::valid_id(id) {
        Ok(())
    } else {
        Err(EngineError::BadId(id.to_string()))
    }
}

impl Engine<SqliteStore> {
    /// Open the device's store in `data_dir`, creating the folder, the file and this device's
    /// identity on first use.
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self, EngineError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.display().to_string(),
            source,
        })?;
        let store = SqliteStore::open(&data_dir.join(STORE_FILE))?;
        Engine::with_store(store, clock)
    }

    pub fn store_size_bytes(&self) -> Result<u64, EngineError> {
        Ok(self.store.size_bytes()?)
    }
}

impl<S: DossierStore> Engine<S> {
    pub fn with_store(mut store: S, clock: Arc<dyn Clock>) -> Result<Self, EngineError> {
        let device_id = match store.get_setting("device.actor")? {
            Some(id) => id,
            None => {
                let id = ActorId::from(uuid::Uuid::new_v4().as_bytes().as_slice()).to_hex_string();
                store.set_setting("device.actor", &id)?;
                id
            }
        };
        let actor = ActorId::try_from(device_id.as_str()).map_err(|_| {
            StoreError::NotAStore(format!("the device id `{device_id}` is not an actor id"))
        })?;
        let user = store
            .get_setting("device.user")?
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "me".into());
        let device = store
            .get_setting("device.name")?
            .unwrap_or_else(|| format!("device-{}", &device_id[..8]));
        Ok(Engine {
            ids: None,
            local_writes: Arc::default(),
            store,
            actor,
            identity: Identity {
                device_id,
                user,
                device,
            },
            clock,
        })
    }

    /// Notified after every local write (see [`Engine::write_local`]).
    pub fn local_writes(&self) -> Arc<tokio::sync::Notify> {
        self.local_writes.clone()
    }

    fn write_local(&mut self, writes: &[DossierWrite]) -> Result<(), EngineError> {
        self.store.write(writes)?;
        self.local_writes.notify_one();
        Ok(())
    }

    /// Draw new ids from a sequence seeded with `seed` instead of at random (simulations).
    pub fn use_seeded_ids(&mut self, seed: u64) {
        self.ids = Some(rand::SeedableRng::seed_from_u64(seed));
    }

    fn next_id(&mut self) -> String {
        match &mut self.ids {
            None => new_id(),
            Some(rng) => {
                let bytes: [u8; 16] = rand::Rng::random(rng);
                uuid::Builder::from_random_bytes(bytes)
                    .into_uuid()
                    .to_string()
            }
        }
    }

    /// The underlying store (diagnostics, tests).
    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn today(&self) -> Day {
        self.clock.today()
    }

    /// Name the user and device this device writes as (recorded in every dossier it edits).
    pub fn set_identity(&mut self, user: &str, device: &str) -> Result<(), EngineError> {
        self.store.set_setting("device.user", user)?;
        self.store.set_setting("device.name", device)?;
        self.identity.user = user.to_string();
        self.identity.device = device.to_string();
        Ok(())
    }

    fn writer(&self) -> Writer {
        Writer {
            actor: self.actor.clone(),
            author: Author {
                user: self.identity.user.clone(),
                device: self.identity.device.clone(),
            },
            now_ms: self.clock.now_ms(),
        }
    }

    pub(crate) fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(crate) fn open_doc(&self, id: &str) -> Result<(DossierDoc, usize), EngineError> {
        check_id(id)?;
        let saved = self
            .store
            .load(id)?
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        let doc = DossierDoc::load(&saved.bytes).map_err(|e| EngineError::Corrupt {
            id: id.to_string(),
            reason: e.to_string(),
        })?;
        Ok((doc, saved.chunks))
    }

    fn read(id: &str, doc: &DossierDoc) -> Result<Dossier, EngineError> {
        doc.read().map_err(|e| EngineError::Corrupt {
            id: id.to_string(),
            reason: e.to_string(),
        })
    }

    /// Everything to write for `doc`'s current state. `since` is the heads the store already
    /// holds (None: write a full snapshot). `known` is the document's state when the caller
    /// has just written it, which saves reading it back (the costliest step of a write).
    pub(crate) fn prepare(
        id: &str,
        doc: &mut DossierDoc,
        since: Option<(&[automerge::ChangeHash], usize)>,
        known: Option<Dossier>,
    ) -> Result<DossierWrite, EngineError> {
        let chunk = match since {
            Some((heads, chunks)) if chunks < COMPACT_AFTER_CHUNKS => {
                Chunk::Append(doc.save_after(heads))
            }
            _ => Chunk::Snapshot(doc.save()),
        };
        let dossier = match known {
            Some(d) => {
                // Every test run checks that what we know is what a reader would see.
                debug_assert_eq!(Some(&d), doc.read().ok().as_ref(), "known state diverged");
                d
            }
            None => Self::read(id, doc)?,
        };
        let conflicts = conflict::count(doc.automerge().document()) as u32;
        Ok(DossierWrite::new(
            chunk,
            summary::project(id, &dossier, conflicts),
            Origin::Local,
        ))
    }

    /// Create a dossier from field assignments (`profile.name=…`); returns its id.
    pub fn create_dossier(&mut self, assignments: &[Assignment]) -> Result<String, EngineError> {
        let id = self.next_id();
        self.create_dossier_with_id(&id, assignments)?;
        Ok(id)
    }

    pub fn create_dossier_with_id(
        &mut self,
        id: &str,
        assignments: &[Assignment],
    ) -> Result<(), EngineError> {
        check_id(id)?;
        let mut start = Dossier::default();
        start.profile.owner = self.identity.user.clone();
        let dossier = patch::apply(&start, assignments)?;
        self.insert(id, &dossier)
    }

    fn insert(&mut self, id: &str, dossier: &Dossier) -> Result<(), EngineError> {
        if self.store.load(id)?.is_some() {
            return Err(DomainError::BadValue {
                path: id.to_string(),
                reason: "a dossier with this id already exists".into(),
            }
            .into());
        }
        validate::check_edit(None, dossier)?;
        let writer = self.writer();
        let mut doc = DossierDoc::create(&writer, dossier)?;
        let write = Self::prepare(id, &mut doc, None, Some(stamped(&writer, dossier)))?;
        self.write_local(&[write])?;
        Ok(())
    }

    /// Apply `edit` to the dossier and commit the result. Returns false if nothing changed.
    pub fn update(
        &mut self,
        id: &str,
        message: &str,
        edit: impl FnOnce(&Dossier) -> Result<Dossier, DomainError>,
    ) -> Result<bool, EngineError> {
        let (mut doc, chunks) = self.open_doc(id)?;
        let heads = doc.heads();
        let before = Self::read(id, &doc)?;
        let after = edit(&before)?;
        validate::check_edit(Some(&before), &after)?;
        let writer = self.writer();
        if !doc.write(&writer, &after, message)? {
            return Ok(false);
        }
        let written = stamped(&writer, &after);
        let write = Self::prepare(id, &mut doc, Some((&heads, chunks)), Some(written))?;
        self.write_local(&[write])?;
        Ok(true)
    }

    /// Set fields by path, e.g. `deals.<id>.stage=evaluation`.
    pub fn set(&mut self, id: &str, assignments: &[Assignment]) -> Result<bool, EngineError> {
        self.update(id, "edit", |d| patch::apply(d, assignments))
    }

    /// Add an item to a collection (`people`, `deals.<id>.checklist`…); returns the item id.
    pub fn add_item(
        &mut self,
        id: &str,
        collection: &str,
        assignments: &[Assignment],
    ) -> Result<String, EngineError> {
        let item = self.next_id();
        self.update(id, &format!("add to {collection}"), |d| {
            patch::add_item(d, collection, &item, assignments)
        })?;
        Ok(item)
    }

    /// Delete (tombstone) the item at `path`, or the whole dossier when `path` is empty.
    pub fn delete(&mut self, id: &str, path: &str) -> Result<bool, EngineError> {
        let today = self.today();
        self.update(id, &format!("delete {path}"), |d| {
            patch::set_deleted(d, path, Some(today))
        })
    }

    pub fn restore(&mut self, id: &str, path: &str) -> Result<bool, EngineError> {
        self.update(id, &format!("restore {path}"), |d| {
            patch::set_deleted(d, path, None)
        })
    }

    /// Record a meeting: the interaction, its next step as a follow-up, and the last-contact
    /// date of everyone who was there, in one change.
    pub fn record_meeting(
        &mut self,
        id: &str,
        meeting: &Meeting,
    ) -> Result<MeetingRecorded, EngineError> {
        let interaction_id = self.next_id();
        let follow_up_id = if meeting.next_step.trim().is_empty() {
            None
        } else {
            Some(self.next_id())
        };
        let today = self.today();
        self.update(id, "record meeting", |d| {
            let mut d = d.clone();
            let date = meeting.date.unwrap_or(today);
            let mut i = fieldbook_shared::Interaction {
                date: Some(date),
                time: meeting.time.clone(),
                kind: meeting.kind.or(Some(InteractionKind::Visit)),
                client_participants: meeting.client_participants.iter().collect(),
                our_participants: meeting.our_participants.iter().collect(),
                notes: meeting.notes.as_str().into(),
                next_step: meeting.next_step.clone(),
                next_step_due: meeting.next_step_due,
                follow_up: follow_up_id.clone(),
                deal: meeting.deal.clone(),
                ..Default::default()
            };
            i.learned.demand = meeting.demand.as_str().into();
            i.learned.problem = meeting.problem.as_str().into();
            i.learned.benefit_points = meeting.benefit_points.as_str().into();
            i.learned.key_person_info = meeting.key_person_info.as_str().into();
            if let Some(fid) = &follow_up_id {
                d.follow_ups.insert(
                    fid.clone(),
                    fieldbook_shared::FollowUp {
                        due: meeting.next_step_due,
                        kind: meeting.next_step_kind.or(Some(FollowUpKind::PhoneCall)),
                        assignee: Some(fieldbook_shared::Assignee::Rep),
                        assignee_name: d.profile.owner.clone(),
                        action: meeting.next_step.clone(),
                        deal: meeting.deal.clone(),
                        ..Default::default()
                    },
                );
            }
            for pid in &meeting.client_participants {
                if let Some(p) = d.people.get_mut(pid)
                    && p.last_contact.is_none_or(|c| c < date)
                {
                    p.last_contact = Some(date);
                }
            }
            d.interactions.insert(interaction_id.clone(), i);
            Ok(d)
        })?;
        Ok(MeetingRecorded {
            interaction: interaction_id,
            follow_up: follow_up_id,
        })
    }

    /// A manager's comment, with the follow-up it assigns, as one edit.
    pub fn add_note(&mut self, id: &str, note: &ManagerNote) -> Result<(), EngineError> {
        let ids = NoteIds {
            comment: self.next_id(),
            follow_up: self.next_id(),
        };
        let author = self.identity.user.clone();
        let today = self.today();
        self.update(id, "comment", |d| add_note(d, note, &ids, &author, today))?;
        Ok(())
    }

    /// The board rows written since board sequence `since`. A dossier saved before the board
    /// existed is read once to make its row.
    pub fn board_since(&self, since: u64) -> Result<(u64, Vec<BoardRow>), EngineError> {
        let (seq, entries) = self.store.board_since(since)?;
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            rows.push(match entry {
                BoardEntry::Row(row) => *row,
                BoardEntry::Unknown(id) => {
                    let (mut doc, _) = self.open_doc(&id)?;
                    let dossier = Self::read(&id, &doc)?;
                    let conflicts = conflict::count(doc.automerge().document()) as u32;
                    summary::project(&id, &dossier, conflicts)
                }
            });
        }
        Ok((seq, rows))
    }

    pub fn dossier(&self, id: &str) -> Result<DossierView, EngineError> {
        let (mut doc, _) = self.open_doc(id)?;
        let dossier = Self::read(id, &doc)?;
        let conflicts = conflict::list(doc.automerge().document(), &dossier.authors);
        Ok(DossierView {
            id: id.to_string(),
            dossier,
            conflicts,
        })
    }

    pub fn summary(&self, id: &str) -> Result<DossierSummary, EngineError> {
        self.store
            .summary(id)?
            .ok_or_else(|| EngineError::NotFound(id.to_string()))
    }

    pub fn list(&self, query: &ListQuery) -> Result<Vec<DossierSummary>, EngineError> {
        Ok(self.store.list(query)?)
    }

    pub fn count(&self, query: &ListQuery) -> Result<u64, EngineError> {
        Ok(self.store.count(query)?)
    }

    pub fn search(&self, text: &str, limit: u32) -> Result<Vec<SearchHit>, EngineError> {
        Ok(self.store.search(text, limit)?)
    }

    /// Open follow-ups across every dossier, earliest due first.
    pub fn follow_ups(&self, query: &FollowUpQuery) -> Result<Vec<FollowUpSummary>, EngineError> {
        Ok(self.store.follow_ups(query)?)
    }

    pub fn ids(&self) -> Result<Vec<String>, EngineError> {
        Ok(self.store.ids()?)
    }

    pub fn conflicts(&self, id: &str) -> Result<Vec<Conflict>, EngineError> {
        Ok(self.dossier(id)?.conflicts)
    }

    /// Settle a conflicting field on `value` (one of the values offered, or a new one).
    pub fn resolve(
        &mut self,
        id: &str,
        path: &str,
        value: &serde_json::Value,
    ) -> Result<(), EngineError> {
        let (mut doc, chunks) = self.open_doc(id)?;
        let heads = doc.heads();
        let before = Self::read(id, &doc)?;
        // Check the value against the field's type through the same path as any edit.
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let after = patch::apply(
            &before,
            &[Assignment {
                path: path.into(),
                value: text,
            }],
        )?;
        validate::check_edit(Some(&before), &after)?;
        doc.resolve(&self.writer(), path, &after)?;
        let write = Self::prepare(id, &mut doc, Some((&heads, chunks)), None)?;
        self.write_local(&[write])?;
        Ok(())
    }

    pub fn history(&self, id: &str, path: &str) -> Result<Vec<FieldChange>, EngineError> {
        let (mut doc, _) = self.open_doc(id)?;
        let authors = Self::read(id, &doc)?.authors;
        Ok(history::field_history(
            doc.automerge().document(),
            path,
            &authors,
        )?)
    }

    /// The dossier as it stood at the end of `day` (by the writing devices' clocks, UTC).
    pub fn as_of(&self, id: &str, day: Day) -> Result<Option<Dossier>, EngineError> {
        let (mut doc, _) = self.open_doc(id)?;
        let end_of_day = day
            .plus_days(1)
            .date()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis()
            - 1;
        let heads = history::heads_as_of(doc.automerge().document(), end_of_day);
        if heads.is_empty() {
            return Ok(None);
        }
        let past = doc
            .automerge()
            .fork_at(&heads)
            .map_err(|e| EngineError::Corrupt {
                id: id.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Some(Self::read(id, &DossierDoc::from_automerge(past))?))
    }

    /// The dossier's Automerge bytes with its full history.
    pub fn export_document(&self, id: &str) -> Result<Vec<u8>, EngineError> {
        let (mut doc, _) = self.open_doc(id)?;
        Ok(doc.save())
    }

    /// Merge documents received from elsewhere (another device, an export file) into the
    /// store, all in one transaction. Unknown ids become new dossiers. Returns how many
    /// dossiers changed.
    pub fn merge_documents(&mut self, docs: &[(String, Vec<u8>)]) -> Result<usize, EngineError> {
        let mut writes = Vec::with_capacity(docs.len());
        for (id, bytes) in docs {
            check_id(id)?;
            let mut incoming = DossierDoc::load(bytes).map_err(|e| EngineError::Corrupt {
                id: id.clone(),
                reason: e.to_string(),
            })?;
            // Refuse bytes that are not a dossier before they touch the store.
            let state = Self::read(id, &incoming)?;
            match self.store.load(id)? {
                None => writes.push(Self::prepare(id, &mut incoming, None, Some(state))?),
                Some(saved) => {
                    let mut doc =
                        DossierDoc::load(&saved.bytes).map_err(|e| EngineError::Corrupt {
                            id: id.clone(),
                            reason: e.to_string(),
                        })?;
                    let heads = doc.heads();
                    doc.merge(&mut incoming)?;
                    if doc.heads() != heads {
                        let since = Some((heads.as_slice(), saved.chunks));
                        writes.push(Self::prepare(id, &mut doc, since, None)?);
                    }
                }
            }
        }
        self.write_local(&writes)?;
        Ok(writes.len())
    }

    /// Write dossiers given as plain content (a JSON export), creating or updating each.
    pub fn import_dossiers(&mut self, items: &[(String, Dossier)]) -> Result<usize, EngineError> {
        let mut changed = 0;
        for (id, dossier) in items {
            check_id(id)?;
            if self.store.load(id)?.is_some() {
                if self.update(id, "import", |_| Ok(dossier.clone()))? {
                    changed += 1;
                }
            } else {
                self.insert(id, dossier)?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Create many dossiers in one transaction (bulk load, benchmarks).
    pub fn create_many(&mut self, items: &[(String, Dossier)]) -> Result<(), EngineError> {
        let writer = self.writer();
        let mut writes = Vec::with_capacity(items.len());
        for (id, dossier) in items {
            check_id(id)?;
            validate::check_edit(None, dossier)?;
            let mut doc = DossierDoc::create(&writer, dossier)?;
            writes.push(Self::prepare(
                id,
                &mut doc,
                None,
                Some(stamped(&writer, dossier)),
            )?);
        }
        self.write_local(&writes)?;
        Ok(())
    }
}
