//! A team's merged dossiers as one connection's sync session reaches them
//! ([`RelayReplica`]): bound to the device's team, so another team's dossiers do not exist.

use automerge::AutoCommit;
use automerge::sync::{Message, State};
use fieldbook_shared::document::{DossierDoc, Writer};
use fieldbook_shared::pipeline::{
    ChangesError, Chunk, DocCache, OpenDoc, check_changes, check_saved,
};
use fieldbook_shared::summary::Projection;
use fieldbook_shared::sync::relay::{Access, Catchup, PushesStored, RelayReplica};
use fieldbook_shared::sync::wire::{
    Changes, DeviceStatus, Pushed, Snapshot, Stored, Upload, Vouched,
};
use fieldbook_shared::sync::{Commit, Incoming, generate, heads_from_bytes, heads_to_bytes};
use fieldbook_shared::{DomainError, Dossier};

use crate::auth::{self, Viewer};
use crate::check;
use crate::store::{
    DeviceAuth, DeviceId, DocVersion, DocWrite, RelayStore, StoreError, TeamId, TeamVisibility,
};
use fieldbook_shared::sync::wire::Role;

/// Dossiers the relay keeps open across connections, per team: those its devices are working
/// on. A live edit is merged into the copy already open, and the devices it goes to are
/// answered from it, instead of each connection loading the dossier again.
pub const OPEN_DOSSIERS: usize = 256;

/// A team's documents open on the relay (keyed by team and dossier: the simulation's one
/// cache serves its one team the same way).
pub type TeamDocs = DocCache<(TeamId, String)>;

pub fn team_docs() -> TeamDocs {
    DocCache::new(OPEN_DOSSIERS)
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What the device sent cannot be stored: its connection is closed with this reason,
    /// and nothing of it is kept.
    #[error("{doc}: {reason}")]
    Rejected { doc: String, reason: String },
    #[error("the stored dossier {doc} cannot be read: {reason}")]
    Corrupt { doc: String, reason: String },
}

pub struct TeamReplica<'a> {
    pub store: &'a mut dyn RelayStore,
    /// The team whose dossiers these are: no other team's exist here.
    pub team: TeamId,
    /// The device whose session this serves (None: the relay's own edit, a manager's note).
    pub device: Option<DeviceId>,
    /// Who uses that device, for what the team's policy lets them see (None: the relay).
    pub viewer: Option<Viewer>,
    /// The team's visibility policy, read once per replica (one batch of a session).
    sight: Option<TeamVisibility>,
    /// Dossiers the device may send its last changes to but not see ([`Access::SendOnly`]).
    send_only: std::collections::HashSet<String>,
    pub docs: &'a mut TeamDocs,
    pub now_ms: i64,
    /// Commits made while checking a dossier on its way out whole, where what its device
    /// vouched for was wrong: for the caller to announce to the team.
    pub corrected: Vec<Commit>,
}

impl<'a> TeamReplica<'a> {
    /// The replica a device's sync session reaches: its team's dossiers.
    pub fn for_device(
        store: &'a mut dyn RelayStore,
        auth: &DeviceAuth,
        docs: &'a mut TeamDocs,
        now_ms: i64,
    ) -> TeamReplica<'a> {
        TeamReplica {
            store,
            team: auth.team_id,
            device: Some(auth.device_id),
            viewer: Some(Viewer::of(auth)),
            sight: None,
            send_only: Default::default(),
            docs,
            now_ms,
            corrected: Vec::new(),
        }
    }

    /// The team's dossiers as the relay edits them itself.
    pub fn for_relay(
        store: &'a mut dyn RelayStore,
        team: TeamId,
        docs: &'a mut TeamDocs,
        now_ms: i64,
    ) -> TeamReplica<'a> {
        TeamReplica {
            store,
            team,
            device: None,
            viewer: None,
            sight: None,
            send_only: Default::default(),
            docs,
            now_ms,
            corrected: Vec::new(),
        }
    }
}

impl TeamReplica<'_> {
    fn key(&self, doc: &str) -> (TeamId, String) {
        (self.team, doc.to_string())
    }

    /// The team's dossier `doc`, open: the copy kept open while it matches the store, else
    /// loaded; an empty one, that received changes fill, if the team does not hold it.
    fn open(&mut self, doc: &str) -> Result<&mut OpenDoc, ReplicaError> {
        let team = self.team;
        let version = self.store.doc_version(team, doc)?.map(|v| v.seq as i64);
        let store = &*self.store;
        self.docs
            .get_or_load((team, doc.to_string()), version, || match version {
                None => Ok(OpenDoc::empty()),
                Some(_) => {
                    let stored =
                        store
                            .load_doc(team, doc)?
                            .ok_or_else(|| ReplicaError::Corrupt {
                                doc: doc.to_string(),
                                reason: "listed but not stored".into(),
                            })?;
                    OpenDoc::load(&stored.bytes, stored.chunks, stored.seq as i64).map_err(|e| {
                        ReplicaError::Corrupt {
                            doc: doc.to_string(),
                            reason: e.to_string(),
                        }
                    })
                }
            })
    }

    /// The team's visibility policy, read once for this replica.
    fn sight(&mut self) -> Result<TeamVisibility, StoreError> {
        if let Some(sight) = self.sight {
            return Ok(sight);
        }
        let sight = self.store.visibility(self.team)?;
        self.sight = Some(sight);
        Ok(sight)
    }

    /// Whether the team holds `doc`.
    fn holds(&self, doc: &str) -> Result<bool, ReplicaError> {
        Ok(self.store.doc_version(self.team, doc)?.is_some())
    }
}

/// What to write for a dossier whose open copy changed since `before`, or why the device's
/// changes cannot be kept (they do not make a readable dossier).
fn write_of(
    id: &str,
    open: &mut OpenDoc,
    before: &[automerge::ChangeHash],
) -> Result<DocWrite, ReplicaError> {
    let save = open.to_store(id, before).map_err(|e| rejected(id, e))?;
    Ok(doc_write(id, save.chunk, save.heads, &save.projection))
}

pub fn doc_write(
    id: &str,
    chunk: Chunk,
    heads: Vec<automerge::ChangeHash>,
    projection: &Projection,
) -> DocWrite {
    let json = |p: &Projection| serde_json::to_string(p).expect("a projection always serialises");
    DocWrite {
        doc: id.to_string(),
        chunk,
        heads: heads_to_bytes(&heads),
        projection: json(projection),
        board: json(&projection.board_row()),
        checked: true,
        readers: projection.summary.readers(),
    }
}

fn rejected(id: &str, e: DomainError) -> ReplicaError {
    ReplicaError::Rejected {
        doc: id.to_string(),
        reason: format!("the changes do not make a readable dossier: {e}"),
    }
}

impl TeamReplica<'_> {
    /// Write `writes` in one transaction; the team's sequence after it and what changed.
    /// The open copies are marked saved; if the write fails they are forgotten, being ahead
    /// of the store.
    fn commit(&mut self, writes: Vec<DocWrite>) -> Result<Option<Commit>, ReplicaError> {
        if writes.is_empty() {
            return Ok(None);
        }
        // A device may send its last changes to a dossier it may no longer see, but not
        // changes that make it one of its readers again: that is a manager's to decide.
        if let Some(viewer) = &self.viewer
            && let Some(w) = writes
                .iter()
                .find(|w| self.send_only.contains(&w.doc) && w.readers.contains(&viewer.user))
        {
            let doc = w.doc.clone();
            self.forget(writes.iter().map(|w| w.doc.as_str()));
            return Err(ReplicaError::Rejected {
                doc,
                reason: "would make this device a reader again; ask a manager".into(),
            });
        }
        let seq = match self.store.write_docs(self.team, &writes) {
            Ok(seq) => seq,
            Err(e) => {
                self.forget(writes.iter().map(|w| w.doc.as_str()));
                return Err(e.into());
            }
        };
        let n = writes.len() as u64;
        for (i, w) in writes.iter().enumerate() {
            let key = self.key(&w.doc);
            if let Some(open) = self.docs.get_any(&key) {
                open.saved_as((seq + 1 + i as u64 - n) as i64);
            }
        }
        Ok(Some((seq, writes.into_iter().map(|w| w.doc).collect())))
    }

    /// Nothing of a batch was stored: drop the in-memory merges too.
    fn forget<'d>(&mut self, docs: impl IntoIterator<Item = &'d str>) {
        for doc in docs {
            let key = self.key(doc);
            self.docs.remove(&key);
        }
    }

    /// Write an edit made on the relay itself (a manager in a browser) into dossier `doc` as
    /// `writer`: merged like any device's change, so the team's devices receive it on sync.
    /// None if the edit changed nothing.
    pub fn edit(
        &mut self,
        doc: &str,
        writer: &Writer,
        message: &str,
        edit: impl FnOnce(&Dossier) -> Result<Dossier, DomainError>,
    ) -> Result<Option<Commit>, EditError> {
        if !self.holds(doc)? {
            return Err(EditError::NotFound);
        }
        let open = self.open(doc)?;
        let result = open
            .dossier()
            .and_then(edit)
            .and_then(|next| open.write(writer, &next, message));
        let write = match result {
            Ok(Some(before)) => write_of(doc, open, &before),
            Ok(None) => return Ok(None),
            Err(e) => {
                // Whatever the failed edit left in memory is not stored: reload next time.
                self.forget([doc]);
                return Err(EditError::Domain(e));
            }
        };
        match write {
            Ok(w) => Ok(self.commit(vec![w])?),
            Err(e) => {
                self.forget([doc]);
                Err(e.into())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("no such dossier in this team")]
    NotFound,
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

impl From<StoreError> for EditError {
    fn from(e: StoreError) -> Self {
        EditError::Replica(e.into())
    }
}

/// A store failing as a session's turn begins fails the session as a store failing within it.
impl From<StoreError> for fieldbook_shared::sync::SessionError<ReplicaError> {
    fn from(e: StoreError) -> Self {
        fieldbook_shared::sync::SessionError::Replica(e.into())
    }
}

impl RelayReplica for TeamReplica<'_> {
    type Error = ReplicaError;

    fn changed_since(&mut self, since: u64) -> Result<Catchup, ReplicaError> {
        let (seq, changed) = self.store.changed_since(self.team, since)?;
        let Some(viewer) = self.viewer.clone() else {
            return Ok(Catchup {
                seq,
                changed,
                withdrawn: Vec::new(),
            });
        };
        let sight = self.sight()?;
        Ok(auth::catch_up(
            &*self.store,
            self.team,
            sight,
            &viewer,
            since,
            seq,
            changed,
        )?)
    }

    fn access(&mut self, docs: &[String]) -> Result<Vec<Access>, ReplicaError> {
        match self.viewer.clone() {
            Some(viewer) if !docs.is_empty() && viewer.role != Role::Manager => {
                let sight = self.sight()?;
                let access = auth::access(&*self.store, self.team, sight, &viewer, docs)?;
                for (doc, a) in docs.iter().zip(&access) {
                    if *a == Access::SendOnly {
                        self.send_only.insert(doc.clone());
                    }
                }
                Ok(access)
            }
            _ => Ok(vec![Access::Full; docs.len()]),
        }
    }

    fn receive(&mut self, batch: &mut [Incoming]) -> Result<Option<Commit>, ReplicaError> {
        let mut writes = Vec::new();
        let mut result = Ok(());
        for incoming in batch.iter_mut() {
            let id = incoming.doc.clone();
            let merged = self.open(&id).and_then(|open| {
                match open.receive(&mut incoming.state, incoming.message.clone()) {
                    Ok(Some(before)) => write_of(&id, open, &before).map(Some),
                    Ok(None) => Ok(None),
                    Err(e) => Err(ReplicaError::Rejected {
                        doc: id.clone(),
                        reason: format!("changes that do not apply: {e}"),
                    }),
                }
            });
            match merged {
                Ok(Some(w)) => writes.push(w),
                Ok(None) => {}
                Err(e) => {
                    self.forget([id.as_str()]);
                    result = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = result {
            self.forget(writes.iter().map(|w| w.doc.as_str()));
            return Err(e);
        }
        self.commit(writes)
    }

    fn generate(&mut self, doc: &str, state: &mut State) -> Result<Option<Message>, ReplicaError> {
        Ok(if self.holds(doc)? {
            generate(self.open(doc)?.doc().automerge().document(), state)
        } else {
            generate(AutoCommit::new().document(), state)
        })
    }

    fn snapshots(&mut self, docs: &[String]) -> Result<(Vec<Snapshot>, Vec<String>), ReplicaError> {
        let team = self.team;
        // A dossier the device may not see is missing, as one that does not exist.
        let access = self.access(docs)?;
        let seen: Vec<String> = docs
            .iter()
            .zip(access)
            .filter(|(_, a)| *a == Access::Full)
            .map(|(d, _)| d.clone())
            .collect();
        let stored = self.store.snapshots(team, &seen)?;
        let mut found = Vec::with_capacity(stored.len());
        for s in stored {
            if !s.checked {
                // Written moments ago with a device's projection, which lacks the search text
                // a device receiving it whole needs: checked now rather than later.
                if let Some(snapshot) = self.checked_now(s.doc.clone())? {
                    found.push(snapshot);
                }
                continue;
            }
            match serde_json::from_str::<Projection>(&s.projection) {
                Ok(projection) => found.push(Snapshot {
                    doc: s.doc,
                    heads: s.heads,
                    bytes: s.bytes,
                    projection,
                }),
                Err(e) => tracing::error!(doc = %s.doc, "stored projection unreadable: {e}"),
            }
        }
        let held: std::collections::HashSet<&str> = found.iter().map(|s| s.doc.as_str()).collect();
        let missing = docs
            .iter()
            .filter(|d| !held.contains(d.as_str()))
            .cloned()
            .collect();
        Ok((found, missing))
    }

    fn report(&mut self, status: DeviceStatus, completed: bool) -> Result<(), ReplicaError> {
        let Some(device) = self.device else {
            // Only a device's session reports; the relay's own edits have nothing to report.
            return Ok(());
        };
        Ok(self
            .store
            .report_status(device, &status, completed, self.now_ms)?)
    }

    fn store_uploads(
        &mut self,
        uploads: Vec<Upload>,
    ) -> Result<(Vec<Stored>, Option<Commit>), ReplicaError> {
        let mut writes = Vec::new();
        let mut stored = Vec::new();
        // New dossiers whose device vouched for them are stored as given and checked later
        // (see crate::check); the others are opened now, on every core.
        let mut as_given = Vec::with_capacity(uploads.len());
        for u in &uploads {
            as_given.push(u.vouched.is_some() && !self.holds(&u.doc)?);
        }
        let to_open: Vec<&Upload> = uploads
            .iter()
            .zip(&as_given)
            .filter(|(_, given)| !**given)
            .map(|(u, _)| u)
            .collect();
        let mut opened = check_all(&to_open).into_iter();
        let mut result = Ok(());
        for (upload, given) in uploads.into_iter().zip(as_given) {
            let outcome = if let (true, Some(vouched)) = (given, upload.vouched) {
                store_as_given(upload.doc, upload.bytes, vouched).map(|(s, w)| (s, Some(w)))
            } else {
                let checked = opened.next().unwrap_or_else(|| {
                    Err(ReplicaError::Rejected {
                        doc: upload.doc.clone(),
                        reason: "a dossier that could not be checked".into(),
                    })
                });
                self.store_upload(upload.doc, upload.bytes, checked)
            };
            match outcome {
                Ok((s, w)) => {
                    stored.push(s);
                    writes.extend(w);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = result {
            self.forget(writes.iter().map(|w| w.doc.as_str()));
            return Err(e);
        }
        let committed = self.commit(writes)?;
        Ok((stored, committed))
    }

    fn store_pushes(&mut self, pushes: Vec<Changes>) -> Result<PushesStored, ReplicaError> {
        let team = self.team;
        let mut out = PushesStored::default();
        let mut writes = Vec::with_capacity(pushes.len());
        for p in pushes {
            let version = self.store.doc_version(team, &p.doc)?;
            let holds = |v: &DocVersion| same_heads(&v.heads, &p.base);
            let Some(version) = version.filter(holds) else {
                // Not made on what the team holds: the device exchanges it instead.
                let held = self.store.doc_version(team, &p.doc)?;
                out.answers.push(Pushed {
                    doc: p.doc.clone(),
                    taken: false,
                    heads: held.map(|v| v.heads).unwrap_or_default(),
                });
                continue;
            };
            let rejected = |reason: String| ReplicaError::Rejected {
                doc: p.doc.clone(),
                reason,
            };
            let (decoded, heads) = match check_changes(&heads_from_bytes(&p.base), &p.changes) {
                Ok(checked) => checked,
                Err(ChangesError::NotOnBase) => {
                    out.answers.push(Pushed {
                        doc: p.doc.clone(),
                        taken: false,
                        heads: version.heads,
                    });
                    continue;
                }
                Err(e) => {
                    self.forget(writes.iter().map(|w: &DocWrite| w.doc.as_str()));
                    return Err(rejected(e.to_string()));
                }
            };
            if p.projection.summary.id != p.doc {
                self.forget(writes.iter().map(|w| w.doc.as_str()));
                return Err(rejected("the projection of another dossier".into()));
            }
            // The copy open here, if any, takes the changes too and stays in use; changes it
            // cannot take would leave the dossier unloadable for everyone: refused.
            let key = (team, p.doc.clone());
            if let Some(open) = self.docs.get(&key, version.seq as i64)
                && let Err(e) = open.apply(decoded)
            {
                self.docs.remove(&key);
                self.forget(writes.iter().map(|w| w.doc.as_str()));
                return Err(rejected(format!("its changes do not apply: {e}")));
            }
            let mut write = doc_write(
                &p.doc,
                Chunk::Append(p.changes.concat()),
                heads.clone(),
                &p.projection,
            );
            // Checked later, off the sync path (see crate::check).
            write.checked = false;
            writes.push(write);
            out.answers.push(Pushed {
                doc: p.doc.clone(),
                taken: true,
                heads: heads_to_bytes(&heads),
            });
            out.taken.push(p);
        }
        out.committed = self.commit(writes)?;
        Ok(out)
    }
}

impl TeamReplica<'_> {
    /// Check the unchecked dossier `doc` now (see [`crate::check`]) and give it whole as
    /// checked; None if it does not read as a dossier.
    fn checked_now(&mut self, doc: String) -> Result<Option<Snapshot>, ReplicaError> {
        let team = self.team;
        let Some(stored) = self.store.load_doc(team, &doc)? else {
            return Ok(None);
        };
        let unchecked = crate::store::Unchecked {
            team,
            doc,
            seq: stored.seq,
        };
        let worked_out = check::work_out(&unchecked.doc, &stored.bytes, stored.seq);
        let snapshot = worked_out.as_ref().ok().map(|w| w.snapshot(&unchecked.doc));
        self.corrected
            .extend(check::settle(self.store, &unchecked, worked_out)?);
        Ok(snapshot)
    }

    /// One checked upload: the answer for it and what to write, if anything.
    fn store_upload(
        &mut self,
        id: String,
        bytes: Vec<u8>,
        checked: Result<Checked, ReplicaError>,
    ) -> Result<(Stored, Option<DocWrite>), ReplicaError> {
        let Checked {
            mut loaded,
            projection,
        } = checked?;
        if !self.holds(&id)? {
            // New to the team: kept exactly as the device saved it, and open as it is.
            let heads = loaded.heads();
            let write = doc_write(&id, Chunk::Snapshot(bytes), heads.clone(), &projection);
            return Ok((
                Stored {
                    doc: id,
                    heads: heads_to_bytes(&heads),
                    merged: false,
                },
                Some(write),
            ));
        }
        // Held already (an earlier upload whose answer was lost, say): merge.
        let open = self.open(&id)?;
        let write = match open.merge(&mut loaded) {
            Ok(Some(before)) => Some(write_of(&id, open, &before)),
            Ok(None) => None,
            Err(e) => Some(Err(ReplicaError::Rejected {
                doc: id.clone(),
                reason: format!("does not merge: {e}"),
            })),
        };
        let write = match write.transpose() {
            Ok(w) => w,
            Err(e) => {
                self.forget([id.as_str()]);
                return Err(e);
            }
        };
        let heads = self.open(&id)?.heads();
        Ok((
            Stored {
                doc: id,
                heads: heads_to_bytes(&heads),
                merged: true,
            },
            write,
        ))
    }
}

/// Whether two lists of heads name the same changes (in whatever order).
pub fn same_heads(a: &[[u8; 32]], b: &[[u8; 32]]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// A new dossier whose device vouched for what its bytes hold: stored as given, once its
/// bytes are framed as saved Automerge chunks and its row is its own, and checked later.
fn store_as_given(
    doc: String,
    bytes: Vec<u8>,
    Vouched { heads, row }: Vouched,
) -> Result<(Stored, DocWrite), ReplicaError> {
    let refuse = |reason: String| ReplicaError::Rejected {
        doc: doc.clone(),
        reason,
    };
    check_saved(&bytes).map_err(|e| refuse(format!("not a saved Automerge document: {e}")))?;
    if row.summary.id != doc {
        return Err(refuse("the board row of another dossier".into()));
    }
    if heads.is_empty() {
        return Err(refuse("a document without heads".into()));
    }
    let mut write = doc_write(
        &doc,
        Chunk::Snapshot(bytes),
        heads_from_bytes(&heads),
        &row.board_row(),
    );
    write.checked = false;
    Ok((
        Stored {
            doc,
            heads,
            merged: false,
        },
        write,
    ))
}

/// An uploaded dossier that loads and reads, with its projection.
struct Checked {
    loaded: DossierDoc,
    projection: Projection,
}

fn check(upload: &Upload) -> Result<Checked, ReplicaError> {
    let loaded = DossierDoc::load(&upload.bytes).map_err(|e| ReplicaError::Rejected {
        doc: upload.doc.clone(),
        reason: format!("not an Automerge document: {e}"),
    })?;
    let mut open = OpenDoc::unsaved(loaded, None);
    let projection = open
        .project(&upload.doc)
        .map_err(|e| rejected(&upload.doc, e))?;
    Ok(Checked {
        loaded: open.into_doc(),
        projection,
    })
}

/// Check uploads on every core (loading and reading a dossier is nearly all of an upload's
/// cost), in order: one result per upload.
fn check_all(uploads: &[&Upload]) -> Vec<Result<Checked, ReplicaError>> {
    crate::cores::on_every_core(
        uploads,
        |u| check(u),
        |u| {
            Err(ReplicaError::Rejected {
                doc: u.doc.clone(),
                reason: "a dossier that could not be checked".into(),
            })
        },
    )
}
