//! The device's store as the sync session sees it ([`DeviceReplica`]).

use std::collections::HashMap;

use automerge::AutoCommit;
use automerge::sync::{Message, State, SyncDoc};
use fieldbook_shared::document::DossierDoc;
use fieldbook_shared::sync::device::DeviceReplica;
use fieldbook_shared::sync::wire::{DeviceStatus, Snapshot, Stored, Upload};
use fieldbook_shared::sync::{Incoming, generate, heads_from_bytes, resume_state};

use crate::engine::{Engine, EngineError, check_id};
use crate::store::{Chunk, DossierStore, DossierWrite, Origin};

pub(crate) const CURSOR: &str = "sync.cursor";
pub(crate) const LAST_SYNC: &str = "sync.last_ms";

/// Documents open for exchanges in flight, so that each round does not reload them. An entry
/// is used only while the store's version of the dossier is the one it was loaded at: an edit
/// made meanwhile (by this process or another) reloads it.
#[derive(Default)]
pub struct OpenDocs {
    docs: HashMap<String, Open>,
    /// Dossiers uploaded whole and not yet answered, with their store version when sent.
    uploaded: HashMap<String, i64>,
}

struct Open {
    doc: DossierDoc,
    chunks: usize,
    version: i64,
}

pub struct Replica<'a, S: DossierStore> {
    pub engine: &'a mut Engine<S>,
    pub open: &'a mut OpenDocs,
}

impl<S: DossierStore> Replica<'_, S> {
    fn open(&mut self, id: &str) -> Result<Option<&mut Open>, EngineError> {
        let Some(version) = self.engine.store().version(id)? else {
            self.open.docs.remove(id);
            return Ok(None);
        };
        let stale = self.open.docs.get(id).is_none_or(|o| o.version != version);
        if stale {
            let (doc, chunks) = self.engine.open_doc(id)?;
            self.open.docs.insert(
                id.to_string(),
                Open {
                    doc,
                    chunks,
                    version,
                },
            );
        }
        Ok(self.open.docs.get_mut(id))
    }
}

impl<S: DossierStore> DeviceReplica for Replica<'_, S> {
    type Error = EngineError;

    fn cursor(&mut self) -> Result<u64, EngineError> {
        Ok(self
            .engine
            .store()
            .get_setting(CURSOR)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    fn save_cursor(&mut self, seq: u64) -> Result<(), EngineError> {
        Ok(self
            .engine
            .store_mut()
            .set_setting(CURSOR, &seq.to_string())?)
    }

    fn status(&mut self) -> Result<DeviceStatus, EngineError> {
        let store = self.engine.store();
        Ok(DeviceStatus {
            unsynced: store.unsynced_changes()?,
            last_sync_ms: store.get_setting(LAST_SYNC)?.and_then(|s| s.parse().ok()),
        })
    }

    fn unsynced_docs(&mut self) -> Result<Vec<String>, EngineError> {
        Ok(self.engine.store().unsynced()?)
    }

    fn sync_state(&mut self, doc: &str) -> Result<Option<State>, EngineError> {
        check_id(doc)?;
        if self.engine.store().version(doc)?.is_none() {
            return Ok(None);
        }
        let heads = match self.engine.store().sync_state(doc)? {
            // A state that does not decode only costs a longer exchange: start afresh.
            Some(bytes) => State::decode(&bytes)
                .map(|s| s.shared_heads)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(Some(resume_state(heads)))
    }

    fn generate(&mut self, doc: &str, state: &mut State) -> Result<Option<Message>, EngineError> {
        Ok(match self.open(doc)? {
            Some(open) => generate(open.doc.automerge().document(), state),
            // Not held here: an empty document asks for everything.
            None => generate(AutoCommit::new().document(), state),
        })
    }

    fn receive(&mut self, batch: &mut [Incoming]) -> Result<(), EngineError> {
        let mut writes = Vec::new();
        for incoming in batch.iter_mut() {
            check_id(&incoming.doc)?;
            let id = incoming.doc.clone();
            if self.open(&id)?.is_none() {
                self.open.docs.insert(
                    id.clone(),
                    Open {
                        doc: DossierDoc::from_automerge(AutoCommit::new()),
                        chunks: 0,
                        version: -1,
                    },
                );
            }
            let open = self.open.docs.get_mut(&id).expect("just opened");
            let before = open.doc.heads();
            open.doc
                .automerge()
                .sync()
                .receive_sync_message(&mut incoming.state, incoming.message.clone())
                .map_err(|e| EngineError::Corrupt {
                    id: id.clone(),
                    reason: format!("the relay sent changes that do not apply: {e}"),
                })?;
            if open.doc.heads() == before {
                continue;
            }
            let since = (open.chunks > 0).then_some((before.as_slice(), open.chunks));
            let mut write = Engine::<S>::prepare(&id, &mut open.doc, since, None)?;
            write.origin = Origin::Synced { sync_state: None };
            open.chunks = match write.chunk {
                Chunk::Snapshot(_) => 1,
                Chunk::Append(_) => open.chunks + 1,
            };
            writes.push(write);
        }
        if writes.is_empty() {
            return Ok(());
        }
        self.engine.store_mut().write(&writes)?;
        for w in &writes {
            let id = &w.summary.id;
            let version = self.engine.store().version(id)?.unwrap_or(-1);
            if let Some(open) = self.open.docs.get_mut(id) {
                open.version = version;
            }
        }
        Ok(())
    }

    fn finish(&mut self, done: &[(String, State)]) -> Result<(), EngineError> {
        let mut records = Vec::with_capacity(done.len());
        for (doc, state) in done {
            // Acknowledged: the relay's heads are ours, and nothing was written here since.
            let acked = match self.open(doc)? {
                Some(open) => state.their_heads.as_ref() == Some(&open.doc.heads()),
                None => continue,
            };
            self.open.docs.remove(doc);
            let mut kept = State::new();
            kept.shared_heads = state.shared_heads.clone();
            records.push((doc.clone(), kept.encode(), acked));
        }
        Ok(self.engine.store_mut().finish_sync(&records)?)
    }

    fn upload(&mut self, doc: &str) -> Result<Option<Upload>, EngineError> {
        check_id(doc)?;
        let store = self.engine.store();
        if store.sync_state(doc)?.is_some() {
            return Ok(None);
        }
        let (Some(version), Some(saved)) = (store.version(doc)?, store.load(doc)?) else {
            return Ok(None);
        };
        self.open.uploaded.insert(doc.to_string(), version);
        // The stored chunks as they are: Automerge loads them concatenated.
        Ok(Some(Upload {
            doc: doc.to_string(),
            bytes: saved.bytes,
        }))
    }

    fn stored(&mut self, stored: &[Stored]) -> Result<Vec<String>, EngineError> {
        let mut records = Vec::with_capacity(stored.len());
        let mut unfinished = Vec::new();
        for s in stored {
            check_id(&s.doc)?;
            let sent_at = self.open.uploaded.remove(&s.doc);
            let unchanged = sent_at.is_some() && self.engine.store().version(&s.doc)? == sent_at;
            let mut state = State::new();
            if !s.merged {
                // The relay holds exactly what was sent: those heads are shared.
                state.shared_heads = heads_from_bytes(&s.heads);
            }
            let acked = unchanged && !s.merged;
            if !acked {
                unfinished.push(s.doc.clone());
            }
            records.push((s.doc.clone(), state.encode(), acked));
        }
        self.engine.store_mut().finish_sync(&records)?;
        Ok(unfinished)
    }

    fn store_snapshots(&mut self, snapshots: Vec<Snapshot>) -> Result<(), EngineError> {
        let mut writes = Vec::with_capacity(snapshots.len());
        let mut merges = Vec::new();
        for s in snapshots {
            check_id(&s.doc)?;
            if s.projection.summary.id != s.doc {
                return Err(EngineError::Corrupt {
                    id: s.doc.clone(),
                    reason: "the relay sent another dossier's summary with it".into(),
                });
            }
            if self.engine.store().version(&s.doc)?.is_some() {
                // Written here since it was asked for: merge rather than replace.
                merges.push((s.doc, s.bytes));
                continue;
            }
            let mut state = State::new();
            state.shared_heads = heads_from_bytes(&s.heads);
            // Stored as sent: the relay computed the projection when it merged the document,
            // so a cold sync never opens a document here.
            let mut write = DossierWrite::new(
                Chunk::Snapshot(s.bytes),
                s.projection,
                Origin::Synced {
                    sync_state: Some(state.encode()),
                },
            );
            write.index_later = true;
            writes.push(write);
        }
        self.engine.store_mut().write(&writes)?;
        if !merges.is_empty() {
            self.engine.merge_documents(&merges)?;
        }
        Ok(())
    }

    fn now_ms(&mut self) -> i64 {
        self.engine.now_ms()
    }

    fn completed(&mut self, at_ms: i64) -> Result<(), EngineError> {
        Ok(self
            .engine
            .store_mut()
            .set_setting(LAST_SYNC, &at_ms.to_string())?)
    }
}
