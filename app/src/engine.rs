//! Services over the local store: every edit a rep makes, each committed to disk before the
//! call returns, with the dossier's summary and search text updated in the same transaction.

use std::cell::{RefCell, RefMut};
use std::path::Path;
use std::sync::Arc;

use automerge::ActorId;
use fieldbook_shared::board::{ManagerNote, NoteIds, TeamBoard, add_note};
use fieldbook_shared::conflict::{self, Conflict};
use fieldbook_shared::document::{DossierDoc, Writer};
use fieldbook_shared::history::{self, FieldChange};
use fieldbook_shared::patch::{self, Assignment};
use fieldbook_shared::pipeline::{DocCache, OpenDoc};
use fieldbook_shared::summary::{DossierSummary, FollowUpSummary};
use fieldbook_shared::validate;
use fieldbook_shared::{Author, Day, DomainError, Dossier, FollowUpKind, InteractionKind};
use serde::{Deserialize, Serialize};

pub use fieldbook_shared::api::{DossierView, Meeting, MeetingRecorded};

use crate::clock::Clock;
use crate::secrets::{Secrets, SecretsError};
use crate::store::encrypted::{StoreFile, store_file};
use crate::store::sqlite::SqliteStore;
use crate::store::{
    BoardEntry, DossierStore, DossierWrite, FollowUpQuery, ListQuery, Origin, SearchHit, StoreError,
};

/// Dossiers kept open in memory: the ones being worked on and synced (a dossier with a year
/// of meetings takes a few hundred KiB open).
const OPEN_DOSSIERS: usize = 128;

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
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("a dossier id must be 1–64 letters, digits, '-' or '_': `{0}`")]
    BadId(String),
}

impl From<validate::Invalid> for EngineError {
    fn from(e: validate::Invalid) -> Self {
        EngineError::Domain(e.into())
    }
}

/// Local changes the relay had not acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsent {
    pub changes: u64,
    pub dossiers: u64,
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
    /// Where the relay token is kept (the store key too, for a store on disk).
    secrets: Secrets,
    /// Where new dossier and item ids come from: random, or a seeded sequence so that a
    /// simulation replays exactly.
    ids: Option<rand::rngs::StdRng>,
    /// Woken after each local write, so a live sync sends it at once rather than at its next
    /// poll (which only exists for writes by other processes on this device).
    local_writes: Arc<tokio::sync::Notify>,
    /// Documents open, each good while the store's version of its dossier is unchanged: an
    /// edit, a sync and a read in a row load and read the document once.
    docs: RefCell<DocCache<String>>,
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
    /// identity on first use. The store is encrypted under a key kept by `secrets` (created
    /// and kept on first use; a plain store from an older version is encrypted in place).
    pub fn open(
        data_dir: &Path,
        secrets: &Secrets,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, EngineError> {
        let path = data_dir.join(STORE_FILE);
        crate::store::private::private_dir(data_dir)?;
        let key = match secrets.store_key()? {
            Some(key) => key,
            None => match store_file(&path)? {
                StoreFile::Encrypted => {
                    return Err(StoreError::KeyMissing {
                        path: path.display().to_string(),
                        keeper: secrets.describe(),
                    }
                    .into());
                }
                StoreFile::New | StoreFile::Plain => secrets.new_store_key()?,
            },
        };
        crate::store::private::private_store_files(&path)?;
        let store = SqliteStore::open_encrypted(&path, &key)?;
        let mut engine = Engine::with_store(store, clock)?;
        engine.secrets = secrets.clone();
        engine.keep_token_with_secrets()?;
        Ok(engine)
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
            secrets: Secrets::in_memory(),
            local_writes: Arc::default(),
            docs: RefCell::new(DocCache::new(OPEN_DOSSIERS)),
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

    /// Local changes the relay has not acknowledged.
    pub fn unsent(&self) -> Result<Unsent, EngineError> {
        Ok(Unsent {
            changes: self.store.unsynced_changes()?,
            dossiers: self.store.unsynced()?.len() as u64,
        })
    }

    /// Wipe this device's replica and its key after the relay said it was revoked: every
    /// dossier and setting gone from the store (its files removed), the token and the store
    /// key gone from the secrets. Returns what had not reached the relay, counted first.
    pub fn wipe(&mut self) -> Result<Unsent, EngineError> {
        let unsent = self.unsent()?;
        tracing::warn!(
            unsent_changes = unsent.changes,
            unsent_dossiers = unsent.dossiers,
            "this device was revoked: wiping its replica and its key"
        );
        self.store.wipe()?;
        *self.docs.borrow_mut() = DocCache::new(OPEN_DOSSIERS);
        self.secrets.delete(crate::secrets::RELAY_TOKEN)?;
        // Where the file is gone (Unix), so is its key; elsewhere the emptied file stays and
        // needs its key to open.
        if cfg!(unix) {
            self.secrets.delete(crate::secrets::STORE_KEY)?;
        }
        Ok(unsent)
    }

    /// Where this device's secrets are kept.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Notified after every local write (see [`Engine::store_writes`]).
    pub fn local_writes(&self) -> Arc<tokio::sync::Notify> {
        self.local_writes.clone()
    }

    /// Draw new ids from a sequence seeded with `seed` instead of at random (simulations).
    pub fn use_seeded_ids(&mut self, seed: u64) {
        self.ids = Some(rand::SeedableRng::seed_from_u64(seed));
    }

    pub(crate) fn next_id(&mut self) -> String {
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

    pub(crate) fn writer(&self) -> Writer {
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

    /// The dossier's document, open: kept from before while the store's version of it is
    /// unchanged, else loaded.
    pub(crate) fn open_dossier(&self, id: &str) -> Result<RefMut<'_, OpenDoc>, EngineError> {
        self.open_if_held(id)?
            .ok_or_else(|| EngineError::NotFound(id.to_string()))
    }

    /// As [`Engine::open_dossier`]; None when this device does not hold the dossier.
    pub(crate) fn open_if_held(
        &self,
        id: &str,
    ) -> Result<Option<RefMut<'_, OpenDoc>>, EngineError> {
        check_id(id)?;
        if self.store.version(id)?.is_none() {
            return Ok(None);
        }
        self.open_or_empty(id).map(Some)
    }

    /// The dossier's document open: as [`Engine::open_dossier`] if this device holds it, else an empty
    /// one that received changes fill (kept open until stored).
    pub(crate) fn open_or_empty(&self, id: &str) -> Result<RefMut<'_, OpenDoc>, EngineError> {
        check_id(id)?;
        let version = self.store.version(id)?;
        let mut docs = self.docs.borrow_mut();
        docs.get_or_load(id.to_string(), version, || match version {
            None => Ok(OpenDoc::empty()),
            Some(version) => {
                let saved = self
                    .store
                    .load(id)?
                    .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
                OpenDoc::load(&saved.bytes, saved.chunks, version).map_err(|e| corrupt(id, e))
            }
        })?;
        Ok(RefMut::map(docs, |d| {
            d.get_any(id).expect("kept open just above")
        }))
    }

    /// The open documents, for the sync session's replica.
    pub(crate) fn docs(&self) -> RefMut<'_, DocCache<String>> {
        self.docs.borrow_mut()
    }

    /// Write `writes` (of the dossiers `ids`, in order) to the store in one transaction and
    /// mark their open documents saved; if the write fails, forget them, since they are
    /// ahead of the store.
    /// Drop the open copies of `ids` (changed in memory by a write that was not stored).
    pub(crate) fn forget_open(&mut self, ids: &[String]) {
        let docs = self.docs.get_mut();
        for id in ids {
            docs.remove(id);
        }
    }

    pub(crate) fn store_writes(
        &mut self,
        ids: &[String],
        writes: &[DossierWrite],
        local: bool,
    ) -> Result<(), EngineError> {
        let written = self.store.write(writes);
        let docs = self.docs.get_mut();
        if let Err(e) = written {
            for id in ids {
                docs.remove(id);
            }
            return Err(e.into());
        }
        for id in ids {
            match (self.store.version(id)?, docs.get_any(id)) {
                (Some(version), Some(open)) => open.saved_as(version),
                _ => {
                    docs.remove(id);
                }
            }
        }
        if local {
            self.local_writes.notify_one();
        }
        Ok(())
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
        if self.store.version(id)?.is_some() {
            return Err(DomainError::BadValue {
                path: id.to_string(),
                reason: "a dossier with this id already exists".into(),
            }
            .into());
        }
        self.create_many(&[(id.to_string(), dossier.clone())])
    }

    /// Apply `edit` to the dossier and commit the result. Returns false if nothing changed.
    pub fn update(
        &mut self,
        id: &str,
        message: &str,
        edit: impl FnOnce(&Dossier) -> Result<Dossier, DomainError>,
    ) -> Result<bool, EngineError> {
        let writer = self.writer();
        let write = {
            let mut open = self.open_dossier(id)?;
            let after = edit(open.dossier().map_err(|e| corrupt(id, e))?)?;
            let result = open
                .write(&writer, &after, message)
                .and_then(|before| before.map(|before| open.to_store(id, &before)).transpose());
            match result {
                Ok(Some(save)) => DossierWrite::from_save(save, Origin::Local),
                Ok(None) => return Ok(false),
                Err(e) => {
                    // Whatever the failed edit left in memory is not stored: reload next time.
                    drop(open);
                    self.docs.get_mut().remove(id);
                    return Err(e.into());
                }
            }
        };
        self.store_writes(&[id.to_string()], &[write], true)?;
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

    /// Bring `board` up to date with the store: the rows written since `board.seq` taken,
    /// the dossiers removed since dropped. A dossier saved before the board existed is read
    /// once to make its row. Nothing is applied if any row cannot be made.
    pub fn update_board(&self, board: &mut TeamBoard) -> Result<(), EngineError> {
        let (seq, entries) = self.store.board_since(board.seq)?;
        let mut rows = Vec::with_capacity(entries.len());
        let mut gone = Vec::new();
        for entry in entries {
            match entry {
                BoardEntry::Row(row) => rows.push(*row),
                BoardEntry::Unknown(id) => {
                    let mut open = self.open_dossier(&id)?;
                    rows.push(open.project(&id).map_err(|e| corrupt(&id, e))?);
                }
                BoardEntry::Gone(id) => gone.push(id),
            }
        }
        // One entry per dossier: what is gone has no row among `rows`.
        for id in &gone {
            board.remove(id);
        }
        board.apply(seq, rows);
        Ok(())
    }

    /// Delete the dossiers `ids` from this device (it may no longer hold them): from the
    /// store, with everything lists, search, follow-ups and the board show of them, and from
    /// the documents kept open. Ids this device does not hold are ignored. Changes not yet
    /// sent to the relay are lost with them: send them first.
    pub fn remove_dossiers(&mut self, ids: &[String]) -> Result<(), EngineError> {
        self.store.remove(ids)?;
        self.forget_open(ids);
        Ok(())
    }

    pub fn dossier(&self, id: &str) -> Result<DossierView, EngineError> {
        let mut open = self.open_dossier(id)?;
        let dossier = open.dossier().map_err(|e| corrupt(id, e))?.clone();
        let conflicts = conflict::list(open.doc().automerge().document(), &dossier.authors);
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
        let writer = self.writer();
        let write = {
            let mut open = self.open_dossier(id)?;
            let before = open.dossier().map_err(|e| corrupt(id, e))?.clone();
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
            let result = open
                .resolve(&writer, path, &after)
                .and_then(|before| open.to_store(id, &before));
            match result {
                Ok(save) => DossierWrite::from_save(save, Origin::Local),
                Err(e) => {
                    drop(open);
                    self.docs.get_mut().remove(id);
                    return Err(e.into());
                }
            }
        };
        self.store_writes(&[id.to_string()], &[write], true)
    }

    pub fn history(&self, id: &str, path: &str) -> Result<Vec<FieldChange>, EngineError> {
        let mut open = self.open_dossier(id)?;
        let authors = open.dossier().map_err(|e| corrupt(id, e))?.authors.clone();
        Ok(history::field_history(
            open.doc().automerge().document(),
            path,
            &authors,
        )?)
    }

    /// The dossier as it stood at the end of `day` (by the writing devices' clocks, UTC).
    pub fn as_of(&self, id: &str, day: Day) -> Result<Option<Dossier>, EngineError> {
        let mut open = self.open_dossier(id)?;
        let doc = open.doc();
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
        Ok(Some(
            DossierDoc::from_automerge(past)
                .read()
                .map_err(|e| corrupt(id, e))?,
        ))
    }

    /// The dossier's Automerge bytes with its full history.
    pub fn export_document(&self, id: &str) -> Result<Vec<u8>, EngineError> {
        Ok(self.open_dossier(id)?.doc().save())
    }

    /// Merge documents received from elsewhere (another device, an export file) into the
    /// store, all in one transaction. Unknown ids become new dossiers. Returns how many
    /// dossiers changed.
    pub fn merge_documents(&mut self, docs: &[(String, Vec<u8>)]) -> Result<usize, EngineError> {
        let mut ids = Vec::with_capacity(docs.len());
        let mut writes = Vec::with_capacity(docs.len());
        let prepared = self.merged(docs, &mut ids, &mut writes);
        if let Err(e) = prepared {
            let open = self.docs.get_mut();
            for id in &ids {
                open.remove(id);
            }
            return Err(e);
        }
        self.store_writes(&ids, &writes, true)?;
        Ok(writes.len())
    }

    /// What merging `docs` writes: the ids changed (in `ids`) and their writes.
    fn merged(
        &self,
        docs: &[(String, Vec<u8>)],
        ids: &mut Vec<String>,
        writes: &mut Vec<DossierWrite>,
    ) -> Result<(), EngineError> {
        for (id, bytes) in docs {
            check_id(id)?;
            let mut incoming = DossierDoc::load(bytes).map_err(|e| corrupt(id, e.into()))?;
            // Refuse bytes that are not a dossier before they touch the store.
            let state = incoming.read().map_err(|e| corrupt(id, e))?;
            let written = match self.open_if_held(id)? {
                None => {
                    let mut open = OpenDoc::unsaved(incoming, Some(state));
                    let written = open.to_store(id, &[]);
                    self.docs().insert(id.clone(), open);
                    written
                }
                Some(mut open) => match open.merge(&mut incoming) {
                    Ok(Some(before)) => open.to_store(id, &before),
                    Ok(None) => continue,
                    Err(e) => Err(e),
                },
            };
            ids.push(id.clone());
            let save = written.map_err(|e| corrupt(id, e))?;
            writes.push(DossierWrite::from_save(save, Origin::Local));
        }
        Ok(())
    }

    /// Write dossiers given as plain content (a JSON export), creating or updating each.
    pub fn import_dossiers(&mut self, items: &[(String, Dossier)]) -> Result<usize, EngineError> {
        let mut changed = 0;
        for (id, dossier) in items {
            check_id(id)?;
            if self.store.version(id)?.is_some() {
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

    /// Create dossiers in one transaction (one, or a bulk load).
    pub fn create_many(&mut self, items: &[(String, Dossier)]) -> Result<(), EngineError> {
        let writer = self.writer();
        let mut ids = Vec::with_capacity(items.len());
        let mut writes = Vec::with_capacity(items.len());
        for (id, dossier) in items {
            check_id(id)?;
            validate::check_edit(None, dossier)?;
            let mut open = OpenDoc::create(&writer, dossier)?;
            let save = open.to_store(id, &[])?;
            writes.push(DossierWrite::from_save(save, Origin::Local));
            ids.push(id.clone());
            // Bulk loads do not keep what they create open.
            if items.len() == 1 {
                self.docs.get_mut().insert(id.clone(), open);
            }
        }
        self.store_writes(&ids, &writes, true)
    }
}

fn corrupt(id: &str, e: DomainError) -> EngineError {
    EngineError::Corrupt {
        id: id.to_string(),
        reason: e.to_string(),
    }
}
