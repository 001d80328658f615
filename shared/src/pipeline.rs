//! What every replica does with a dossier, without IO: keep the documents in use open, apply
//! changes to them, and say what to store — the bytes as a snapshot followed by appended
//! changes, compacted now and then, with the projection lists, search and the board read.
//! The device's engine, the relay and the browser engine all go through here; each adapter
//! only loads, stores and sends.

use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroUsize;

use automerge::sync::{Message, State};
use automerge::{Change, ChangeHash};
use lru::LruCache;

use crate::document::{DossierDoc, Writer, stamped};
use crate::summary::{Projection, project};
use crate::{DomainError, Dossier, conflict, validate};

/// After this many appended chunks a dossier's bytes are rewritten as one snapshot, so that
/// loading it stays one pass over compact bytes.
pub const COMPACT_AFTER_CHUNKS: usize = 64;

/// How a write changes a dossier's saved bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// The whole document: replaces everything saved before (creation and compaction).
    Snapshot(Vec<u8>),
    /// Changes since the saved state, appended.
    Append(Vec<u8>),
}

/// What to store for a dossier after a change: its bytes (see [`Chunk`]), the heads they
/// reach, and the projection of its state.
#[derive(Debug, Clone)]
pub struct Save {
    pub chunk: Chunk,
    pub heads: Vec<ChangeHash>,
    pub projection: Projection,
}

/// A number the store changes whenever a dossier's saved bytes change: an open copy is good
/// only while it matches (another writer — a process, a connection — may have been at it).
pub type Version = i64;

/// A dossier's document open in memory, as the store holds it.
pub struct OpenDoc {
    doc: DossierDoc,
    /// Chunks its saved bytes hold (0: nothing saved yet).
    chunks: usize,
    /// The store's version these bytes match; None until saved.
    version: Option<Version>,
    /// The dossier the document holds, once read or written: reading (hydrating) is the
    /// costliest step of a write, so it is done once at most, and after changes only what
    /// they touched is read again.
    dossier: Option<Dossier>,
    /// How many fields hold conflicting values, once counted. Counting walks the whole
    /// document; changes made after everything it held (a local edit, a colleague's edit
    /// of the latest state) cannot add a conflict, so a count of none stays none.
    conflicts: Option<u32>,
}

impl OpenDoc {
    /// Saved bytes (a snapshot and any appended chunks) at `version`.
    pub fn load(bytes: &[u8], chunks: usize, version: Version) -> Result<OpenDoc, DomainError> {
        Ok(OpenDoc {
            doc: DossierDoc::load(bytes)?,
            chunks,
            version: Some(version),
            dossier: None,
            conflicts: None,
        })
    }

    /// A dossier this replica does not hold yet (changes received will fill it).
    pub fn empty() -> OpenDoc {
        OpenDoc::unsaved(
            DossierDoc::from_automerge(automerge::AutoCommit::new()),
            None,
        )
    }

    /// A document made here and not saved yet; `dossier` when known to be what it holds.
    pub fn unsaved(doc: DossierDoc, dossier: Option<Dossier>) -> OpenDoc {
        OpenDoc {
            doc,
            chunks: 0,
            version: None,
            dossier,
            conflicts: None,
        }
    }

    /// A new dossier holding `dossier`, as `writer` creates it.
    pub fn create(writer: &Writer, dossier: &Dossier) -> Result<OpenDoc, DomainError> {
        let doc = DossierDoc::create(writer, dossier)?;
        Ok(OpenDoc::unsaved(doc, Some(stamped(writer, dossier))))
    }

    pub fn doc(&mut self) -> &mut DossierDoc {
        &mut self.doc
    }

    pub fn into_doc(self) -> DossierDoc {
        self.doc
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.heads()
    }

    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// The store now holds these bytes at `version`.
    pub fn saved_as(&mut self, version: Version) {
        self.version = Some(version);
    }

    /// The dossier the document holds (read once, then kept until the document changes).
    pub fn dossier(&mut self) -> Result<&Dossier, DomainError> {
        Ok(self.read_parts()?.0)
    }

    /// The dossier the document holds, and the document.
    fn read_parts(&mut self) -> Result<(&Dossier, &mut DossierDoc), DomainError> {
        let dossier = match &mut self.dossier {
            Some(d) => d,
            slot => slot.insert(self.doc.read()?),
        };
        Ok((dossier, &mut self.doc))
    }

    /// Write `next` as the dossier's state, as one change by `writer`, after checking it as
    /// an edit of the current state. Returns the heads before the change, or None when
    /// nothing differed.
    pub fn write(
        &mut self,
        writer: &Writer,
        next: &Dossier,
        message: &str,
    ) -> Result<Option<Vec<ChangeHash>>, DomainError> {
        let (current, doc) = self.read_parts()?;
        validate::check_edit(Some(current), next)?;
        let before = doc.heads();
        let written = doc.write_over(writer, current, next, message);
        self.dossier = None;
        if !written? {
            return Ok(None);
        }
        let known = stamped(writer, next);
        // Every test run checks that what is kept is what a reader would see.
        debug_assert_eq!(
            Some(&known),
            self.doc.read().ok().as_ref(),
            "kept state diverged"
        );
        // A local edit comes after everything the document held: it may settle a conflict,
        // and add one only by editing something deleted.
        if known.has_tombstones() {
            self.conflicts = None;
        }
        self.keep_count_if_none();
        self.dossier = Some(known);
        Ok(Some(before))
    }

    /// Settle the conflicting field at `path` on the value `resolved` has there (see
    /// [`DossierDoc::resolve`]). Returns the heads before the change.
    pub fn resolve(
        &mut self,
        writer: &Writer,
        path: &str,
        resolved: &Dossier,
    ) -> Result<Vec<ChangeHash>, DomainError> {
        let before = self.doc.heads();
        let result = self.doc.resolve(writer, path, resolved);
        self.dossier = None;
        self.conflicts = None;
        result.map(|()| before)
    }

    /// Apply an Automerge sync message. Returns the heads before it when it changed the
    /// document.
    pub fn receive(
        &mut self,
        state: &mut State,
        message: Message,
    ) -> Result<Option<Vec<ChangeHash>>, DomainError> {
        let before = self.doc.heads();
        let touched = self.doc.receive_sync(state, message)?;
        if self.doc.heads() == before {
            return Ok(None);
        }
        if let Some(dossier) = &mut self.dossier
            && self.doc.reread(dossier, &touched).is_err()
        {
            self.dossier = None;
        }
        self.count_after_changes(&before);
        // Every test run checks that the part read back is what a whole read gives.
        debug_assert!(
            self.dossier.is_none() || self.dossier == self.doc.read().ok(),
            "read back only in part, the dossier diverged"
        );
        Ok(Some(before))
    }

    /// Merge another copy of the dossier in. Returns the heads before it when it changed the
    /// document.
    pub fn merge(
        &mut self,
        other: &mut DossierDoc,
    ) -> Result<Option<Vec<ChangeHash>>, DomainError> {
        let before = self.doc.heads();
        self.doc.merge(other)?;
        if self.doc.heads() == before {
            return Ok(None);
        }
        self.dossier = None;
        self.count_after_changes(&before);
        Ok(Some(before))
    }

    /// Keep a count of no conflicts only while it is sure to hold after changes received
    /// since `before`: they came one after another after everything held, and nothing in
    /// the dossier is deleted.
    fn count_after_changes(&mut self, before: &[ChangeHash]) {
        let tombstones = self.dossier.as_ref().is_none_or(Dossier::has_tombstones);
        if tombstones || !self.follows(before) {
            self.conflicts = None;
        }
        self.keep_count_if_none();
    }

    /// A count of conflicts kept only if it is none (one settled would make any other stale).
    fn keep_count_if_none(&mut self) {
        if self.conflicts != Some(0) {
            self.conflicts = None;
        }
    }

    /// The changes made since `base`, each as Automerge encodes one; None if the document
    /// does not hold all of `base`.
    pub fn changes_since(&mut self, base: &[ChangeHash]) -> Option<Vec<Vec<u8>>> {
        let doc = self.doc.automerge();
        if !base.iter().all(|h| doc.get_change_by_hash(h).is_some()) {
            return None;
        }
        Some(
            doc.get_changes(base)
                .iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect(),
        )
    }

    /// Apply changes received whole (checked by [`check_changes`]). Returns the heads before
    /// them when they changed the document.
    pub fn apply(&mut self, changes: Vec<Change>) -> Result<Option<Vec<ChangeHash>>, DomainError> {
        let before = self.doc.heads();
        let touched = self.doc.apply_changes(changes)?;
        if self.doc.heads() == before {
            return Ok(None);
        }
        if let Some(dossier) = &mut self.dossier
            && self.doc.reread(dossier, &touched).is_err()
        {
            self.dossier = None;
        }
        debug_assert!(
            self.dossier.is_none() || self.dossier == self.doc.read().ok(),
            "read back only in part, the dossier diverged"
        );
        self.count_after_changes(&before);
        Ok(Some(before))
    }

    /// Another writer stored changes to this dossier that this copy now holds too (see
    /// [`OpenDoc::apply`]): the store is at `version`, with one chunk more.
    pub fn stored_elsewhere(&mut self, version: Version) {
        self.chunks += 1;
        self.version = Some(version);
    }

    /// Whether every change made since `before` comes after everything the document held
    /// then, one after another: then none of them ran concurrently with anything, and none
    /// can have made a conflict.
    fn follows(&mut self, before: &[ChangeHash]) -> bool {
        let changes = self.doc.automerge().get_changes(before);
        let mut previous: Vec<ChangeHash> = before.to_vec();
        previous.sort();
        for change in &changes {
            let mut deps = change.deps().to_vec();
            deps.sort();
            if deps != previous {
                return false;
            }
            previous = vec![change.hash()];
        }
        true
    }

    /// What to store now that the document has changed since `before` (the heads its saved
    /// bytes hold): the chunk — the changes, or a fresh snapshot when nothing is saved yet or
    /// after many appends — its heads, and the projection of the new state. Fails, storing
    /// nothing, if the document does not read as a dossier.
    pub fn to_store(&mut self, id: &str, before: &[ChangeHash]) -> Result<Save, DomainError> {
        let projection = self.project(id)?;
        let chunk = if self.chunks == 0 || self.chunks >= COMPACT_AFTER_CHUNKS {
            self.chunks = 1;
            Chunk::Snapshot(self.doc.save())
        } else {
            self.chunks += 1;
            Chunk::Append(self.doc.save_after(before))
        };
        Ok(Save {
            chunk,
            heads: self.doc.heads(),
            projection,
        })
    }

    /// The projection of the document's state: summary row, deal and follow-up rows, search
    /// text and board facts.
    pub fn project(&mut self, id: &str) -> Result<Projection, DomainError> {
        let conflicts = match self.conflicts {
            Some(n) => n,
            None => *self
                .conflicts
                .insert(conflict::count(self.doc.automerge().document()) as u32),
        };
        debug_assert_eq!(
            conflicts as usize,
            conflict::count(self.doc.automerge().document()),
            "the conflict count kept diverged"
        );
        Ok(project(id, self.dossier()?, conflicts))
    }
}

/// Why changes received whole cannot be stored as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangesError {
    /// Not Automerge changes at all (or their hashes do not match): refuse them.
    #[error("not a change: {0}")]
    Malformed(String),
    /// Well-formed, but not made on `base` and on each other alone (one depends on a change
    /// behind `base`, made concurrently with it): they need a sync exchange.
    #[error("changes not made on the heads given")]
    NotOnBase,
    #[error("no changes")]
    Empty,
}

/// Changes received whole, checked without a document: each is a well-formed Automerge
/// change (its hash verified), and together they build on `base` and on each other alone.
/// Returns them decoded, with the heads they reach.
pub fn check_changes(
    base: &[ChangeHash],
    changes: &[Vec<u8>],
) -> Result<(Vec<Change>, Vec<ChangeHash>), ChangesError> {
    let mut known: std::collections::BTreeSet<ChangeHash> = base.iter().copied().collect();
    let mut heads = known.clone();
    let mut decoded = Vec::with_capacity(changes.len());
    for bytes in changes {
        let change = Change::from_bytes(bytes.clone())
            .map_err(|e| ChangesError::Malformed(e.to_string()))?;
        // Automerge's decoder leaves the chunk's checksum to loading a document: a change
        // damaged on the way would be stored, and the dossier would no longer load.
        if bytes.get(4..8) != Some(&change.hash().0[..4]) {
            return Err(ChangesError::Malformed(
                "a change damaged on the way (its checksum does not match)".into(),
            ));
        }
        for dep in change.deps() {
            if !known.contains(dep) {
                return Err(ChangesError::NotOnBase);
            }
            heads.remove(dep);
        }
        known.insert(change.hash());
        heads.insert(change.hash());
        decoded.push(change);
    }
    if decoded.is_empty() {
        return Err(ChangesError::Empty);
    }
    Ok((decoded, heads.into_iter().collect()))
}

/// Why bytes said to be a saved dossier are not even well-formed Automerge chunks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavedError {
    #[error("no bytes")]
    Empty,
    #[error("not an Automerge chunk at byte {0}")]
    NotAChunk(usize),
    #[error("a chunk at byte {at} is cut short")]
    Truncated { at: usize },
    #[error("the chunk at byte {0} is damaged (its checksum does not match)")]
    Damaged(usize),
    #[error("the chunk at byte {at} is of a kind not saved by dossiers ({kind})")]
    Kind { at: usize, kind: u8 },
}

/// Automerge's chunk header: magic bytes, then a checksum, a kind and a length.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT_CHUNK: u8 = 0;
const CHANGE_CHUNK: u8 = 1;
const COMPRESSED_CHANGE_CHUNK: u8 = 2;

/// Check that `bytes` are saved Automerge chunks (a document, maybe followed by changes), as
/// a replica stores a dossier, without loading them: every chunk framed whole and matching
/// its checksum (a compressed change inflated for it). Loading costs milliseconds a dossier;
/// this costs a hash of the bytes, so a store can take a whole document as given and load it later, and
/// bytes damaged on the way are still refused at once. Returns the number of chunks.
pub fn check_saved(bytes: &[u8]) -> Result<usize, SavedError> {
    use sha2::{Digest, Sha256};
    let spans = chunk_spans(bytes)?;
    for span in &spans {
        match span.kind {
            DOCUMENT_CHUNK | CHANGE_CHUNK => {
                // Automerge's checksum: the first bytes of SHA-256 over the kind, the length
                // (LEB128) and the data.
                let data = &bytes[span.data.clone()];
                let mut header = vec![span.kind];
                leb128::write::unsigned(&mut header, data.len() as u64)
                    .map_err(|_| SavedError::Truncated { at: span.at })?;
                let hash = Sha256::new()
                    .chain_update(&header)
                    .chain_update(data)
                    .finalize();
                if hash[..4] != bytes[span.at + 4..span.at + 8] {
                    return Err(SavedError::Damaged(span.at));
                }
            }
            // Its checksum is the uncompressed change's: inflated to check it (only large
            // changes are saved compressed). Without this, any chunk whose kind byte was
            // damaged into this one would pass unchecked.
            COMPRESSED_CHANGE_CHUNK => {
                let chunk = bytes[span.at..span.data.end].to_vec();
                let sealed = Change::from_bytes(chunk)
                    .is_ok_and(|c| c.hash().0[..4] == bytes[span.at + 4..span.at + 8]);
                if !sealed {
                    return Err(SavedError::Damaged(span.at));
                }
            }
            kind => return Err(SavedError::Kind { at: span.at, kind }),
        }
    }
    Ok(spans.len())
}

/// Where one chunk lies in saved bytes.
#[derive(Debug, Clone)]
struct ChunkSpan {
    /// Its first byte.
    at: usize,
    kind: u8,
    data: std::ops::Range<usize>,
}

/// The chunks of saved bytes, framed (magic bytes, checksum, kind, LEB128 length, data).
fn chunk_spans(bytes: &[u8]) -> Result<Vec<ChunkSpan>, SavedError> {
    let mut spans = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < 9 || rest[..4] != CHUNK_MAGIC {
            return Err(SavedError::NotAChunk(at));
        }
        let mut after_len = &rest[9..];
        let len = leb128::read::unsigned(&mut after_len)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n <= after_len.len())
            .ok_or(SavedError::Truncated { at })?;
        let start = bytes.len() - after_len.len();
        spans.push(ChunkSpan {
            at,
            kind: rest[8],
            data: start..start + len,
        });
        at = start + len;
    }
    if spans.is_empty() {
        return Err(SavedError::Empty);
    }
    Ok(spans)
}

/// The documents a replica keeps open, least recently used evicted first. An entry is handed
/// out only while it matches the store's version of its dossier.
pub struct DocCache<K: Hash + Eq> {
    docs: LruCache<K, OpenDoc>,
}

impl<K: Hash + Eq> DocCache<K> {
    pub fn new(capacity: usize) -> DocCache<K> {
        DocCache {
            docs: LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// The open copy of `key` if it matches the store's `version`; a stale copy is dropped.
    pub fn get<Q>(&mut self, key: &Q, version: Version) -> Option<&mut OpenDoc>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.docs.peek(key)?.version != Some(version) {
            self.docs.pop(key);
            return None;
        }
        self.docs.get_mut(key)
    }

    /// The open copy of `key`, whatever it matches (one this replica is filling).
    pub fn get_any<Q>(&mut self, key: &Q) -> Option<&mut OpenDoc>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.docs.get_mut(key)
    }

    /// Keep `doc` open as `key`, in place of any copy kept before.
    pub fn insert(&mut self, key: K, doc: OpenDoc) -> &mut OpenDoc {
        self.docs.pop(&key);
        self.docs.get_or_insert_mut(key, || doc)
    }

    /// The open copy of `key` if it matches the store's `version` (None: the store does not
    /// hold it, and only a copy being filled, never saved, will do); else `load()`, kept.
    pub fn get_or_load<E>(
        &mut self,
        key: K,
        version: Option<Version>,
        load: impl FnOnce() -> Result<OpenDoc, E>,
    ) -> Result<&mut OpenDoc, E> {
        if self
            .docs
            .peek(&key)
            .is_some_and(|open| open.version != version)
        {
            self.docs.pop(&key);
        }
        self.docs.try_get_or_insert_mut(key, load)
    }

    /// Forget `key` (what is open no longer matches anything stored: a write failed).
    pub fn remove<Q>(&mut self, key: &Q) -> Option<OpenDoc>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.docs.pop(key)
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Author;
    use automerge::ActorId;

    fn writer(n: u8) -> Writer {
        Writer {
            actor: ActorId::from(vec![n; 16]),
            author: Author {
                user: format!("rep{n}"),
                device: "laptop".into(),
            },
            now_ms: 1_700_000_000_000,
        }
    }

    fn named(name: &str) -> Dossier {
        let mut d = Dossier::default();
        d.profile.name = name.into();
        d
    }

    #[test]
    fn saves_a_snapshot_first_then_changes_until_compaction() {
        let w = writer(1);
        let mut open = OpenDoc::create(&w, &named("华东机械")).unwrap();
        let save = open.to_store("d1", &[]).unwrap();
        assert!(matches!(save.chunk, Chunk::Snapshot(_)));
        assert_eq!(save.projection.summary.name, "华东机械");
        assert_eq!(save.heads, open.heads());
        for i in 1..COMPACT_AFTER_CHUNKS {
            let before = open
                .write(&w, &named(&format!("n{i}")), "edit")
                .unwrap()
                .unwrap();
            let save = open.to_store("d1", &before).unwrap();
            assert!(matches!(save.chunk, Chunk::Append(_)), "append {i}");
        }
        let before = open.write(&w, &named("last"), "edit").unwrap().unwrap();
        let save = open.to_store("d1", &before).unwrap();
        assert!(matches!(save.chunk, Chunk::Snapshot(_)), "compacted");
        assert_eq!(save.projection.summary.name, "last");
        assert_eq!(open.write(&w, &named("last"), "same").unwrap(), None);
    }

    #[test]
    fn received_changes_are_read_afresh() {
        let mut a = OpenDoc::create(&writer(1), &named("a")).unwrap();
        let mut b = OpenDoc::unsaved(DossierDoc::load(&a.doc().save()).unwrap(), None);
        assert_eq!(b.dossier().unwrap().profile.name, "a");
        a.write(&writer(1), &named("renamed"), "edit").unwrap();
        let mut other = DossierDoc::load(&a.doc().save()).unwrap();
        assert!(b.merge(&mut other).unwrap().is_some());
        assert_eq!(b.dossier().unwrap().profile.name, "renamed");
        assert!(b.merge(&mut other).unwrap().is_none(), "nothing new");
    }

    /// A dossier's saved bytes as a device stores them: a snapshot, then appended changes.
    fn saved_with_changes() -> Vec<u8> {
        let w = writer(1);
        let mut open = OpenDoc::create(&w, &named("华东机械")).unwrap();
        let mut bytes = match open.to_store("d1", &[]).unwrap().chunk {
            Chunk::Snapshot(b) => b,
            Chunk::Append(_) => unreachable!("a new dossier saves a snapshot"),
        };
        for i in 0..3 {
            let mut d = named("华东机械");
            d.profile.business_scope = "铸造".repeat(200 * (i + 1)).into();
            let before = open.write(&w, &d, "edit").unwrap().unwrap();
            match open.to_store("d1", &before).unwrap().chunk {
                Chunk::Append(b) => bytes.extend(b),
                Chunk::Snapshot(_) => unreachable!("appended until compaction"),
            }
        }
        bytes
    }

    #[test]
    fn saved_bytes_are_checked_without_loading_them() {
        let bytes = saved_with_changes();
        assert_eq!(check_saved(&bytes), Ok(4));
        assert_eq!(check_saved(&[]), Err(SavedError::Empty));
        assert_eq!(check_saved(b"{\"not\": 1}"), Err(SavedError::NotAChunk(0)));
        let cut = &bytes[..bytes.len() - 1];
        assert!(matches!(
            check_saved(cut),
            Err(SavedError::Truncated { .. })
        ));
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert_eq!(check_saved(&flipped), Err(SavedError::Damaged(0)));
        let mut tail = bytes.clone();
        tail.push(0);
        assert!(check_saved(&tail).is_err(), "trailing garbage");
        // Found by the property below: the document chunk's kind byte damaged into "compressed
        // change" (0 → 2), which the check once left to loading.
        let mut relabelled = bytes.clone();
        relabelled[8] ^= 1 << 1;
        assert_eq!(check_saved(&relabelled), Err(SavedError::Damaged(0)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Whatever one damaged byte does, bytes that pass the check are bytes Automerge
        /// loads: the check lets nothing through that loading would refuse for its framing.
        #[test]
        fn what_the_check_passes_automerge_loads(at in 0usize..100_000, bit in 0u8..8) {
            let mut bytes = saved_with_changes();
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
            if check_saved(&bytes).is_ok() {
                proptest::prop_assert!(
                    automerge::Automerge::load(&bytes).is_ok(),
                    "byte {} bit {} passed the check but does not load", at, bit
                );
            }
        }
    }

    /// Found by the fuzz harness (tests/tests/hostile_input.rs): a pushed change with a byte
    /// damaged inside its ops decoded, was stored, and the dossier no longer loaded.
    #[test]
    fn a_damaged_change_is_refused_before_it_is_stored() {
        let w = writer(1);
        let mut open = OpenDoc::create(&w, &named("华东机械")).unwrap();
        let base = open.heads();
        open.write(&w, &named("华东重工"), "edit").unwrap();
        // One edit, one change.
        let changes = vec![open.doc().save_after(&base)];
        assert!(check_changes(&base, &changes).is_ok(), "as made");
        let mut refused = 0;
        for at in 8..changes[0].len() {
            let mut damaged = changes.clone();
            damaged[0][at] ^= 0x20;
            match check_changes(&base, &damaged) {
                Err(ChangesError::Malformed(_)) => refused += 1,
                other => panic!("byte {at} damaged: {other:?}"),
            }
        }
        assert!(refused > 20);
    }

    #[test]
    fn the_cache_hands_out_only_copies_that_match_the_store() {
        let mut cache = DocCache::new(2);
        let mut open = OpenDoc::empty();
        open.saved_as(3);
        cache.insert("a", open);
        assert!(cache.get(&"a", 3).is_some());
        assert!(cache.get(&"a", 4).is_none(), "another writer was at it");
        assert!(cache.get(&"a", 3).is_none(), "and the stale copy is gone");
        for (k, v) in [("x", 1), ("y", 1), ("z", 1)] {
            let mut open = OpenDoc::empty();
            open.saved_as(v);
            cache.insert(k, open);
        }
        assert_eq!(cache.len(), 2, "least recently used evicted");
        assert!(cache.get(&"x", 1).is_none());
    }
}
