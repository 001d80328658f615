//! The device's store as the sync session sees it ([`DeviceReplica`]).

use std::collections::HashMap;

use automerge::AutoCommit;
use automerge::ChangeHash;
use automerge::sync::{Message, State};
use fieldbook_shared::pipeline::check_changes;
use fieldbook_shared::sync::device::DeviceReplica;
use fieldbook_shared::sync::wire::{
    Changes, DeviceStatus, Pushed, Snapshot, Stored, Upload, Vouched,
};
use fieldbook_shared::sync::{Incoming, generate, heads_from_bytes, heads_to_bytes, resume_state};

use crate::engine::{Engine, EngineError, check_id};
use crate::store::{Chunk, DossierStore, DossierWrite, Origin, TextWrite};

pub(crate) const CURSOR: &str = "sync.cursor";
pub(crate) const LAST_SYNC: &str = "sync.last_ms";

/// What one connection's session has sent whole and awaits an answer for: the dossiers
/// uploaded, with their store version when sent (an edit made meanwhile needs an exchange).
#[derive(Default)]
pub struct Uploads {
    sent: HashMap<String, i64>,
}

pub struct Replica<'a, S: DossierStore> {
    pub engine: &'a mut Engine<S>,
    pub uploads: &'a mut Uploads,
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
        Ok(match self.engine.open_if_held(doc)? {
            Some(mut open) => generate(open.doc().automerge().document(), state),
            // Not held here: an empty document asks for everything.
            None => generate(AutoCommit::new().document(), state),
        })
    }

    fn receive(&mut self, batch: &mut [Incoming]) -> Result<(), EngineError> {
        let mut ids = Vec::new();
        let mut writes = Vec::new();
        let applied = self.apply(batch, &mut ids, &mut writes);
        if let Err(e) = applied {
            // What was applied in memory is not stored: those copies go.
            let mut docs = self.engine.docs();
            for i in batch.iter() {
                docs.remove(&i.doc);
            }
            return Err(e);
        }
        if writes.is_empty() {
            return Ok(());
        }
        self.engine.store_writes(&ids, &writes, false)
    }

    fn finish(&mut self, done: &[(String, State)]) -> Result<(), EngineError> {
        let mut records = Vec::with_capacity(done.len());
        for (doc, state) in done {
            // Acknowledged: the relay's heads are ours, and nothing was written here since.
            let acked = match self.engine.open_if_held(doc)? {
                Some(mut open) => state.their_heads.as_ref() == Some(&open.heads()),
                None => continue,
            };
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
        self.uploads.sent.insert(doc.to_string(), version);
        // What the store wrote with the bytes, so the relay need not open them to store them.
        let vouched = match (store.heads(doc)?, store.board_row(doc)?) {
            (Some(heads), Some(row)) if !heads.is_empty() => Some(Vouched { heads, row }),
            _ => None,
        };
        // The stored chunks as they are: Automerge loads them concatenated.
        Ok(Some(Upload {
            doc: doc.to_string(),
            bytes: saved.bytes,
            vouched,
        }))
    }

    fn stored(&mut self, stored: &[Stored]) -> Result<Vec<String>, EngineError> {
        let mut records = Vec::with_capacity(stored.len());
        let mut unfinished = Vec::new();
        for s in stored {
            check_id(&s.doc)?;
            let unchanged = self.unchanged_since_sent(&s.doc)?;
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
                s.heads,
                s.projection,
                Origin::Synced {
                    sync_state: Some(state.encode()),
                },
            );
            write.text = TextWrite::Later;
            writes.push(write);
        }
        self.engine.store_mut().write(&writes)?;
        if !merges.is_empty() {
            self.engine.merge_documents(&merges)?;
        }
        Ok(())
    }

    fn push(&mut self, doc: &str, base: &[ChangeHash]) -> Result<Option<Changes>, EngineError> {
        check_id(doc)?;
        let version = self.engine.store().version(doc)?;
        let Some(mut open) = self.engine.open_if_held(doc)? else {
            return Ok(None);
        };
        let Some(changes) = open.changes_since(base) else {
            return Ok(None);
        };
        let size: usize = changes.iter().map(Vec::len).sum();
        // Only changes made on `base` alone go as they are (the relay checks the same).
        if size > MAX_PUSH_BYTES || check_changes(base, &changes).is_err() {
            return Ok(None);
        }
        let mut projection = open.project(doc).map_err(|e| EngineError::Corrupt {
            id: doc.to_string(),
            reason: e.to_string(),
        })?;
        // Whoever stores it works the text out again: it is most of a projection's size.
        projection.search_text = String::new();
        drop(open);
        if let Some(version) = version {
            self.uploads.sent.insert(doc.to_string(), version);
        }
        Ok(Some(Changes {
            doc: doc.to_string(),
            base: heads_to_bytes(base),
            changes,
            projection,
        }))
    }

    fn pushed(&mut self, answers: &[Pushed]) -> Result<Vec<String>, EngineError> {
        let mut records = Vec::with_capacity(answers.len());
        let mut unfinished = Vec::new();
        for a in answers {
            check_id(&a.doc)?;
            let unchanged = self.unchanged_since_sent(&a.doc)?;
            if !(a.taken && unchanged) {
                unfinished.push(a.doc.clone());
            }
            if a.taken {
                // The relay holds what was pushed: those heads are shared.
                let mut state = State::new();
                state.shared_heads = heads_from_bytes(&a.heads);
                records.push((a.doc.clone(), state.encode(), unchanged));
            }
        }
        self.engine.store_mut().finish_sync(&records)?;
        Ok(unfinished)
    }

    fn forwarded(&mut self, changes: &[Changes]) -> Result<Vec<bool>, EngineError> {
        let mut done = Vec::with_capacity(changes.len());
        let mut ids = Vec::new();
        let mut writes = Vec::new();
        for c in changes {
            check_id(&c.doc)?;
            let write = self.forwarded_one(c)?;
            done.push(write.is_some());
            if let Some(w) = write {
                ids.push(c.doc.clone());
                writes.push(w);
            }
        }
        if !writes.is_empty() {
            self.engine.store_writes(&ids, &writes, false)?;
        }
        Ok(done)
    }

    fn withdraw(&mut self, docs: &[String]) -> Result<Vec<String>, EngineError> {
        let unsynced = self.engine.store().unsynced()?;
        let (keep, clean): (Vec<String>, Vec<String>) =
            docs.iter().cloned().partition(|d| unsynced.contains(d));
        self.remove(&clean)?;
        Ok(keep)
    }

    fn last_upload(&mut self, doc: &str) -> Result<Option<Upload>, EngineError> {
        check_id(doc)?;
        let store = self.engine.store();
        let (Some(version), Some(saved)) = (store.version(doc)?, store.load(doc)?) else {
            return Ok(None);
        };
        self.uploads.sent.insert(doc.to_string(), version);
        // Not vouched for: the relay holds the dossier and merges what it lacks.
        Ok(Some(Upload {
            doc: doc.to_string(),
            bytes: saved.bytes,
            vouched: None,
        }))
    }

    fn remove_sent(&mut self, docs: &[String]) -> Result<Vec<String>, EngineError> {
        let mut again = Vec::new();
        let mut gone = Vec::new();
        for doc in docs {
            check_id(doc)?;
            if self.unchanged_since_sent(doc)? {
                gone.push(doc.clone());
            } else {
                again.push(doc.clone());
            }
        }
        self.remove(&gone)?;
        Ok(again)
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

impl<S: DossierStore> Replica<'_, S> {
    /// Remove dossiers this device may no longer hold (their every change is on the relay).
    fn remove(&mut self, docs: &[String]) -> Result<(), EngineError> {
        if docs.is_empty() {
            return Ok(());
        }
        for doc in docs {
            check_id(doc)?;
        }
        tracing::info!(dossiers = docs.len(), "no longer ours to hold: removed");
        self.engine.remove_dossiers(docs)
    }

    /// Whether `doc` is as it was when this session sent it whole or pushed it (an edit made
    /// since needs another exchange); it is no longer awaited either way.
    fn unchanged_since_sent(&mut self, doc: &str) -> Result<bool, EngineError> {
        let sent_at = self.uploads.sent.remove(doc);
        Ok(sent_at.is_some() && self.engine.store().version(doc)? == sent_at)
    }

    /// Apply received messages to the open documents; the ids that changed and what to
    /// store for each.
    fn apply(
        &mut self,
        batch: &mut [Incoming],
        ids: &mut Vec<String>,
        writes: &mut Vec<DossierWrite>,
    ) -> Result<(), EngineError> {
        for incoming in batch.iter_mut() {
            check_id(&incoming.doc)?;
            let id = incoming.doc.clone();
            let mut open = self.engine.open_or_empty(&id)?;
            let corrupt = |reason: String| EngineError::Corrupt {
                id: id.clone(),
                reason,
            };
            let Some(before) = open
                .receive(&mut incoming.state, incoming.message.clone())
                .map_err(|e| corrupt(format!("the relay sent changes that do not apply: {e}")))?
            else {
                continue;
            };
            let save = open
                .to_store(&id, &before)
                .map_err(|e| corrupt(e.to_string()))?;
            writes.push(DossierWrite::from_save(
                save,
                Origin::Synced { sync_state: None },
            ));
            ids.push(id);
        }
        Ok(())
    }
}

/// Changes larger than this are exchanged rather than pushed (the exchange sends only what
/// the relay lacks, and a push this large means a long time offline).
const MAX_PUSH_BYTES: usize = 256 * 1024;

impl<S: DossierStore> Replica<'_, S> {
    /// What to write for a colleague's changes passed on by the relay, if this device holds
    /// exactly what they were made on; the open copy, if any, takes them too.
    fn forwarded_one(&mut self, c: &Changes) -> Result<Option<DossierWrite>, EngineError> {
        let store = self.engine.store();
        let (Some(version), Some(mut heads)) = (store.version(&c.doc)?, store.heads(&c.doc)?)
        else {
            return Ok(None);
        };
        let mut base = c.base.clone();
        heads.sort();
        base.sort();
        if heads != base || c.projection.summary.id != c.doc {
            return Ok(None);
        }
        let Ok((decoded, after)) = check_changes(&heads_from_bytes(&c.base), &c.changes) else {
            return Ok(None);
        };
        {
            let mut docs = self.engine.docs();
            if let Some(open) = docs.get(c.doc.as_str(), version)
                && open.apply(decoded).is_err()
            {
                docs.remove(c.doc.as_str());
            }
        }
        let mut state = State::new();
        state.shared_heads = after.clone();
        let mut write = DossierWrite::new(
            Chunk::Append(c.changes.concat()),
            heads_to_bytes(&after),
            c.projection.clone(),
            Origin::Synced {
                sync_state: Some(state.encode()),
            },
        );
        write.text = TextWrite::Unknown;
        Ok(Some(write))
    }
}
