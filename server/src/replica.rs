//! A team's merged dossiers as one connection's sync session reaches them
//! ([`RelayReplica`]): bound to the device's team, so another team's dossiers do not exist.

use std::collections::HashMap;

use automerge::sync::{Message, State, SyncDoc};
use automerge::{AutoCommit, ChangeHash};
use fieldbook_shared::conflict;
use fieldbook_shared::document::{DossierDoc, Writer};
use fieldbook_shared::summary::{Projection, project};
use fieldbook_shared::sync::relay::RelayReplica;
use fieldbook_shared::sync::wire::{DeviceStatus, Snapshot, Stored, Upload};
use fieldbook_shared::sync::{Commit, Incoming, generate, heads_to_bytes};
use fieldbook_shared::{DomainError, Dossier, validate};

use crate::store::{Chunk, DeviceAuth, DocWrite, RelayStore, StoreError};

/// After this many appended chunks a dossier is rewritten as one snapshot.
const COMPACT_AFTER_CHUNKS: usize = 64;
/// Documents kept open per connection at most: those of its exchanges in flight (each is
/// released when its exchange ends; see [`RelayReplica::release`]).
const MAX_OPEN_DOCS: usize = 64;

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

/// Documents open for one connection's exchanges, each valid while the store's sequence for
/// it is the one it was loaded at (another connection's write reloads it).
#[derive(Default)]
pub struct OpenDocs {
    docs: HashMap<String, Open>,
}

struct Open {
    doc: AutoCommit,
    chunks: usize,
    seq: u64,
}

impl Open {
    /// What to store after merging into this document since `before`: the chunk (the
    /// changes, or a fresh snapshot when new or after many appends) and the projection.
    fn write_since(&mut self, id: &str, before: &[ChangeHash]) -> Result<DocWrite, ReplicaError> {
        let Projected { projection, board } = projection_of(id, &mut self.doc)?;
        let chunk = if self.chunks == 0 || self.chunks >= COMPACT_AFTER_CHUNKS {
            self.chunks = 1;
            Chunk::Snapshot(self.doc.save())
        } else {
            self.chunks += 1;
            Chunk::Append(self.doc.save_after(before))
        };
        Ok(DocWrite {
            doc: id.to_string(),
            chunk,
            heads: heads_to_bytes(&self.doc.get_heads()),
            projection,
            board,
        })
    }
}

pub struct TeamReplica<'a> {
    pub store: &'a mut dyn RelayStore,
    pub auth: &'a DeviceAuth,
    pub open: &'a mut OpenDocs,
    pub now_ms: i64,
}

impl TeamReplica<'_> {
    fn open(&mut self, doc: &str) -> Result<Option<&mut Open>, ReplicaError> {
        let team = self.auth.team_id;
        let Some(seq) = self.store.doc_seq(team, doc)? else {
            self.open.docs.remove(doc);
            return Ok(None);
        };
        if self.open.docs.get(doc).is_none_or(|o| o.seq != seq) {
            let Some(stored) = self.store.load_doc(team, doc)? else {
                return Ok(None);
            };
            let loaded = AutoCommit::load(&stored.bytes).map_err(|e| ReplicaError::Corrupt {
                doc: doc.to_string(),
                reason: e.to_string(),
            })?;
            if self.open.docs.len() >= MAX_OPEN_DOCS {
                self.open.docs.clear();
            }
            self.open.docs.insert(
                doc.to_string(),
                Open {
                    doc: loaded,
                    chunks: stored.chunks,
                    seq: stored.seq,
                },
            );
        }
        Ok(self.open.docs.get_mut(doc))
    }
}

impl TeamReplica<'_> {
    /// Write `writes` in one transaction; the team's sequence after it and what changed.
    fn commit(&mut self, writes: Vec<DocWrite>) -> Result<Option<Commit>, ReplicaError> {
        if writes.is_empty() {
            return Ok(None);
        }
        let seq = match self.store.write_docs(self.auth.team_id, &writes) {
            Ok(seq) => seq,
            Err(e) => {
                self.forget("", &writes);
                return Err(e.into());
            }
        };
        let n = writes.len() as u64;
        for (i, w) in writes.iter().enumerate() {
            if let Some(open) = self.open.docs.get_mut(&w.doc) {
                open.seq = seq + 1 + i as u64 - n;
            }
        }
        Ok(Some((seq, writes.into_iter().map(|w| w.doc).collect())))
    }

    /// Nothing of this batch was stored: drop the in-memory merges too.
    fn forget(&mut self, doc: &str, writes: &[DocWrite]) {
        self.open.docs.remove(doc);
        for w in writes {
            self.open.docs.remove(&w.doc);
        }
    }
}

impl TeamReplica<'_> {
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
        let Some(open) = self.open(doc)? else {
            return Err(EditError::NotFound);
        };
        let before = open.doc.get_heads();
        let mut dossier_doc = DossierDoc::from_automerge(std::mem::take(&mut open.doc));
        let result = dossier_doc.read().and_then(|current| {
            let next = edit(&current)?;
            validate::check_edit(Some(&current), &next)?;
            dossier_doc.write(writer, &next, message)
        });
        open.doc = dossier_doc.into_automerge();
        match result {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                // Whatever the failed edit left in memory is not stored: reload next time.
                self.open.docs.remove(doc);
                return Err(EditError::Domain(e));
            }
        }
        let write = match open.write_since(doc, &before) {
            Ok(w) => w,
            Err(e) => {
                self.open.docs.remove(doc);
                return Err(e.into());
            }
        };
        Ok(self.commit(vec![write])?)
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

impl RelayReplica for TeamReplica<'_> {
    type Error = ReplicaError;

    fn changed_since(&mut self, since: u64) -> Result<(u64, Vec<String>), ReplicaError> {
        Ok(self.store.changed_since(self.auth.team_id, since)?)
    }

    fn receive(&mut self, batch: &mut [Incoming]) -> Result<Option<Commit>, ReplicaError> {
        let mut writes = Vec::new();
        for incoming in batch.iter_mut() {
            let id = incoming.doc.clone();
            if self.open(&id)?.is_none() {
                self.open.docs.insert(
                    id.clone(),
                    Open {
                        doc: AutoCommit::new(),
                        chunks: 0,
                        seq: 0,
                    },
                );
            }
            let open = self.open.docs.get_mut(&id).expect("just opened");
            let before = open.doc.get_heads();
            let applied = open
                .doc
                .sync()
                .receive_sync_message(&mut incoming.state, incoming.message.clone());
            if let Err(e) = applied {
                self.forget(&id, &writes);
                return Err(ReplicaError::Rejected {
                    doc: id,
                    reason: format!("changes that do not apply: {e}"),
                });
            }
            let heads = open.doc.get_heads();
            if heads == before {
                continue;
            }
            match open.write_since(&id, &before) {
                Ok(w) => writes.push(w),
                Err(e) => {
                    self.forget(&id, &writes);
                    return Err(e);
                }
            }
        }
        self.commit(writes)
    }

    fn generate(&mut self, doc: &str, state: &mut State) -> Result<Option<Message>, ReplicaError> {
        let message = match self.open(doc)? {
            Some(open) => generate(open.doc.document(), state),
            None => generate(AutoCommit::new().document(), state),
        };
        if message.is_none() {
            self.open.docs.remove(doc);
        }
        Ok(message)
    }

    fn snapshots(&mut self, docs: &[String]) -> Result<(Vec<Snapshot>, Vec<String>), ReplicaError> {
        let stored = self.store.snapshots(self.auth.team_id, docs)?;
        let mut found = Vec::with_capacity(stored.len());
        for s in stored {
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
        Ok(self
            .store
            .report_status(self.auth.device_id, &status, completed, self.now_ms)?)
    }

    fn release(&mut self, doc: &str) {
        self.open.docs.remove(doc);
    }

    fn store_uploads(
        &mut self,
        uploads: Vec<Upload>,
    ) -> Result<(Vec<Stored>, Option<Commit>), ReplicaError> {
        let mut writes = Vec::new();
        let mut stored = Vec::new();
        let checked = check_all(&uploads);
        for (Upload { doc: id, bytes }, checked) in uploads.into_iter().zip(checked) {
            let Checked {
                mut loaded,
                projected: Projected { projection, board },
            } = match checked {
                Ok(c) => c,
                Err(e) => {
                    self.forget("", &writes);
                    return Err(e);
                }
            };
            let Some(open) = self.open(&id)? else {
                // New to the team: kept exactly as the device saved it.
                let heads = heads_to_bytes(&loaded.get_heads());
                stored.push(Stored {
                    doc: id.clone(),
                    heads: heads.clone(),
                    merged: false,
                });
                writes.push(DocWrite {
                    doc: id,
                    chunk: Chunk::Snapshot(bytes),
                    heads,
                    projection,
                    board,
                });
                continue;
            };
            // Held already (an earlier upload whose answer was lost, say): merge.
            let before = open.doc.get_heads();
            if let Err(e) = open.doc.merge(&mut loaded) {
                self.forget(&id, &writes);
                return Err(ReplicaError::Rejected {
                    doc: id,
                    reason: format!("does not merge: {e}"),
                });
            }
            let heads = open.doc.get_heads();
            if heads != before {
                match open.write_since(&id, &before) {
                    Ok(w) => writes.push(w),
                    Err(e) => {
                        self.forget(&id, &writes);
                        return Err(e);
                    }
                }
            }
            stored.push(Stored {
                doc: id,
                heads: heads_to_bytes(&heads),
                merged: true,
            });
        }
        let committed = self.commit(writes)?;
        // An upload is its own exchange: nothing more is asked of these documents.
        for s in &stored {
            self.open.docs.remove(&s.doc);
        }
        Ok((stored, committed))
    }
}

/// A dossier's projection and its board row, as stored (JSON).
struct Projected {
    projection: String,
    board: String,
}

/// The projection the relay serves with a dossier, if it reads as one: the relay keeps only
/// what does, since it serves it to every device of the team.
fn projection_of(id: &str, doc: &mut AutoCommit) -> Result<Projected, ReplicaError> {
    let dossier: Dossier =
        fieldbook_shared::document::read(doc).map_err(|e| ReplicaError::Rejected {
            doc: id.to_string(),
            reason: format!("the changes do not make a readable dossier: {e}"),
        })?;
    let conflicts = conflict::count(doc.document()) as u32;
    let projection = project(id, &dossier, conflicts);
    let json = |p: &Projection| serde_json::to_string(p).expect("a projection always serialises");
    Ok(Projected {
        board: json(&projection.board_row()),
        projection: json(&projection),
    })
}

/// An uploaded dossier that loads and reads.
struct Checked {
    loaded: AutoCommit,
    projected: Projected,
}

fn check(upload: &Upload) -> Result<Checked, ReplicaError> {
    let mut loaded = AutoCommit::load(&upload.bytes).map_err(|e| ReplicaError::Rejected {
        doc: upload.doc.clone(),
        reason: format!("not an Automerge document: {e}"),
    })?;
    let projected = projection_of(&upload.doc, &mut loaded)?;
    Ok(Checked { loaded, projected })
}

/// Check uploads on every core (loading and reading a dossier is nearly all of an upload's
/// cost), in order: one result per upload, until the first part that could not be checked.
fn check_all(uploads: &[Upload]) -> Vec<Result<Checked, ReplicaError>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = uploads.len().div_ceil(workers).max(1);
    if per >= uploads.len() {
        return uploads.iter().map(check).collect();
    }
    std::thread::scope(|scope| {
        let parts: Vec<_> = uploads
            .chunks(per)
            .map(|part| scope.spawn(move || part.iter().map(check).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                part.join().unwrap_or_else(|_| {
                    vec![Err(ReplicaError::Rejected {
                        doc: "(upload)".into(),
                        reason: "a dossier that could not be checked".into(),
                    })]
                })
            })
            .collect()
    })
}
