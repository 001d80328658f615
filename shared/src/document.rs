//! A dossier's Automerge document: create, read, write a new state, resolve a conflict.

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ReadDoc, Value};

use crate::DomainError;
use crate::keep_conflicts::KeepConflicts;
use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Author, Dossier, SCHEMA_VERSION};

/// Whether `id` may name a dossier: 1–64 ASCII letters, digits, '-' or '_' (UUIDs by default).
/// Checked wherever an id arrives from outside: typed by a user, read from a file, received
/// over the wire.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// The dossier a document holds (for code holding a bare Automerge document, like the relay).
pub fn read(doc: &AutoCommit) -> Result<Dossier, DomainError> {
    Ok(autosurgeon::hydrate(doc)?)
}

/// Who is writing, and when (milliseconds since the Unix epoch; injectable for tests).
#[derive(Debug, Clone)]
pub struct Writer {
    pub actor: ActorId,
    pub author: Author,
    pub now_ms: i64,
}

/// `dossier` as `writer` writes it: at this build's schema version, with the writer listed
/// among the document's authors. This is exactly the state the document holds after
/// [`DossierDoc::create`] or [`DossierDoc::write`], so callers need not read it back.
pub fn stamped(writer: &Writer, dossier: &Dossier) -> Dossier {
    let mut next = dossier.clone();
    next.schema_version = SCHEMA_VERSION;
    let actor = writer.actor.to_hex_string();
    if next.authors.get(&actor) != Some(&writer.author) {
        next.authors.insert(actor, writer.author.clone());
    }
    next
}

/// A dossier document open for reading and writing.
pub struct DossierDoc {
    doc: AutoCommit,
}

impl DossierDoc {
    /// A new document holding `dossier`, written by `writer`.
    pub fn create(writer: &Writer, dossier: &Dossier) -> Result<DossierDoc, DomainError> {
        let mut doc = AutoCommit::new().with_actor(writer.actor.clone());
        autosurgeon::reconcile(&mut doc, stamped(writer, dossier))?;
        doc.commit_with(
            CommitOptions::default()
                .with_time(writer.now_ms)
                .with_message("create dossier".to_string()),
        );
        Ok(DossierDoc { doc })
    }

    /// Open saved bytes (a snapshot followed by any incremental chunks).
    pub fn load(bytes: &[u8]) -> Result<DossierDoc, automerge::AutomergeError> {
        Ok(DossierDoc {
            doc: AutoCommit::load(bytes)?,
        })
    }

    pub fn from_automerge(doc: AutoCommit) -> DossierDoc {
        DossierDoc { doc }
    }

    pub fn into_automerge(self) -> AutoCommit {
        self.doc
    }

    pub fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    pub fn read(&self) -> Result<Dossier, DomainError> {
        read(&self.doc)
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Write `new` as the dossier's state, as one change. Only what differs from the current
    /// state becomes operations. Returns false when nothing differed (no change is made).
    pub fn write(
        &mut self,
        writer: &Writer,
        new: &Dossier,
        message: &str,
    ) -> Result<bool, DomainError> {
        self.doc.set_actor(writer.actor.clone());
        autosurgeon::reconcile(&mut KeepConflicts(&mut self.doc), stamped(writer, new))?;
        Ok(self.commit(writer, message))
    }

    /// As [`DossierDoc::write`], for a document known to hold `current`: only what differs
    /// from it is written — the top-level fields that changed, and of the collections only the
    /// items that changed. Reconciling the whole dossier reads every field back from the
    /// document and diffs every note's text, ~10 ms for a dossier with a year of meetings;
    /// an edit touches one item.
    pub fn write_over(
        &mut self,
        writer: &Writer,
        current: &Dossier,
        new: &Dossier,
        message: &str,
    ) -> Result<bool, DomainError> {
        self.doc.set_actor(writer.actor.clone());
        let new = stamped(writer, new);
        let mut doc = KeepConflicts(&mut self.doc);
        // Every field named: a field added to the dossier without being written here does
        // not compile.
        let Dossier {
            schema_version,
            profile,
            people,
            interactions,
            deals,
            follow_ups,
            contracts,
            complaints,
            classification,
            account_plan,
            loyalty_risks,
            comments,
            authors,
            deleted_at,
        } = &new;
        macro_rules! field {
            ($name:ident) => {
                if *$name != current.$name {
                    autosurgeon::reconcile_prop(
                        &mut doc,
                        automerge::ROOT,
                        stringify!($name),
                        $name,
                    )?;
                }
            };
        }
        macro_rules! items {
            ($name:ident) => {
                if *$name != current.$name {
                    write_items(&mut doc, stringify!($name), &current.$name, $name)?;
                }
            };
        }
        field!(schema_version);
        field!(profile);
        items!(people);
        items!(interactions);
        items!(deals);
        items!(follow_ups);
        items!(contracts);
        items!(complaints);
        field!(classification);
        field!(account_plan);
        field!(loyalty_risks);
        items!(comments);
        field!(authors);
        field!(deleted_at);
        Ok(self.commit(writer, message))
    }

    fn commit(&mut self, writer: &Writer, message: &str) -> bool {
        self.doc
            .commit_with(
                CommitOptions::default()
                    .with_time(writer.now_ms)
                    .with_message(message.to_string()),
            )
            .is_some()
    }

    /// Settle the field at `path`, superseding every concurrent value it holds, on the value
    /// `resolved` has there. Deleting the field first removes all the concurrent values at
    /// once; writing `resolved` then puts the chosen one back with its proper type.
    pub fn resolve(
        &mut self,
        writer: &Writer,
        path: &str,
        resolved: &Dossier,
    ) -> Result<(), DomainError> {
        let (obj, key) = self.locate(path)?;
        self.doc.set_actor(writer.actor.clone());
        automerge::transaction::Transactable::delete(&mut self.doc, &obj, key.as_str())?;
        autosurgeon::reconcile(&mut self.doc, resolved)?;
        self.commit(writer, &format!("resolve {path}"));
        Ok(())
    }

    /// The object holding the last segment of `path`, and that segment.
    fn locate(&self, path: &str) -> Result<(ObjId, String), DomainError> {
        let segs: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
        let (last, parents) = segs.split_last().ok_or_else(|| DomainError::NoSuchField {
            path: path.to_string(),
        })?;
        let mut obj = automerge::ROOT;
        for seg in parents {
            match self.doc.get(&obj, *seg)? {
                Some((Value::Object(ObjType::Map), id)) => obj = id,
                _ => {
                    return Err(DomainError::NoSuchField {
                        path: path.to_string(),
                    });
                }
            }
        }
        Ok((obj, last.to_string()))
    }

    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The changes made since `heads`, as an incremental chunk to append to saved bytes.
    pub fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    pub fn merge(&mut self, other: &mut DossierDoc) -> Result<(), DomainError> {
        self.doc.merge(&mut other.doc)?;
        Ok(())
    }
}

/// What some changes touched in a dossier, worked out from the patches applying them made:
/// the top-level fields, and in the collections the items. Reading only those back brings a
/// known dossier up to date for a fraction of a whole read.
#[derive(Debug, Default)]
pub struct Touched {
    fields: BTreeSet<String>,
    items: BTreeSet<(String, String)>,
    /// A patch this reading does not place: read the whole dossier.
    unplaced: bool,
}

/// The dossier's collections of items by id (see [`write_items`]).
const ITEM_FIELDS: [&str; 7] = [
    "people",
    "interactions",
    "deals",
    "follow_ups",
    "contracts",
    "complaints",
    "comments",
];

impl Touched {
    pub fn from_patches(patches: &[automerge::Patch]) -> Touched {
        let mut touched = Touched::default();
        for patch in patches {
            use automerge::PatchAction as A;
            let own = match &patch.action {
                A::PutMap { key, .. } | A::DeleteMap { key } => {
                    Some(automerge::Prop::Map(key.clone()))
                }
                A::Conflict { prop } | A::Increment { prop, .. } => Some(prop.clone()),
                _ => None,
            };
            let mut props = patch.path.iter().map(|(_, p)| p.clone()).chain(own);
            match (props.next(), props.next()) {
                (Some(automerge::Prop::Map(field)), item)
                    if ITEM_FIELDS.contains(&field.as_str()) =>
                {
                    match item {
                        Some(automerge::Prop::Map(id)) => {
                            touched.items.insert((field, id));
                        }
                        None => {
                            touched.fields.insert(field);
                        }
                        Some(_) => touched.unplaced = true,
                    }
                }
                (Some(automerge::Prop::Map(field)), _) => {
                    touched.fields.insert(field);
                }
                _ => touched.unplaced = true,
            }
        }
        touched
    }
}

impl DossierDoc {
    /// Bring `dossier`, what the document held before some changes, up to what it holds now,
    /// reading back only what the changes `touched`.
    pub fn reread(&self, dossier: &mut Dossier, touched: &Touched) -> Result<(), DomainError> {
        if touched.unplaced {
            *dossier = self.read()?;
            return Ok(());
        }
        // Every field named, as in `write_over`.
        let Dossier {
            schema_version,
            profile,
            people,
            interactions,
            deals,
            follow_ups,
            contracts,
            complaints,
            classification,
            account_plan,
            loyalty_risks,
            comments,
            authors,
            deleted_at,
        } = dossier;
        let doc = &self.doc;
        macro_rules! field {
            ($name:ident) => {
                if touched.fields.contains(stringify!($name)) {
                    *$name = autosurgeon::hydrate_prop(doc, automerge::ROOT, stringify!($name))?;
                }
            };
        }
        macro_rules! items {
            ($name:ident) => {
                if touched.fields.contains(stringify!($name)) {
                    *$name = autosurgeon::hydrate_prop(doc, automerge::ROOT, stringify!($name))?;
                } else {
                    let mut map = None;
                    for (_, id) in touched
                        .items
                        .range((stringify!($name).to_string(), String::new())..)
                        .take_while(|(field, _)| field == stringify!($name))
                    {
                        let map = match &map {
                            Some(m) => m,
                            None => match autosurgeon::ReadDoc::get(
                                doc,
                                &automerge::ROOT,
                                stringify!($name),
                            )? {
                                Some((Value::Object(ObjType::Map), obj)) => map.insert(obj),
                                _ => {
                                    return Err(DomainError::NoSuchField {
                                        path: stringify!($name).into(),
                                    });
                                }
                            },
                        };
                        $name.insert(
                            id.clone(),
                            autosurgeon::hydrate_prop(doc, map, id.as_str())?,
                        );
                    }
                }
            };
        }
        field!(schema_version);
        field!(profile);
        items!(people);
        items!(interactions);
        items!(deals);
        items!(follow_ups);
        items!(contracts);
        items!(complaints);
        field!(classification);
        field!(account_plan);
        field!(loyalty_risks);
        items!(comments);
        field!(authors);
        field!(deleted_at);
        Ok(())
    }

    /// Apply changes received whole, returning what they touched.
    pub fn apply_changes(
        &mut self,
        changes: Vec<automerge::Change>,
    ) -> Result<Touched, DomainError> {
        self.doc.update_diff_cursor();
        let applied = self.doc.apply_changes(changes);
        let patches = self.doc.diff_incremental();
        self.doc.reset_diff_cursor();
        applied?;
        Ok(Touched::from_patches(&patches))
    }

    /// Apply an Automerge sync message, returning what it touched.
    pub fn receive_sync(
        &mut self,
        state: &mut automerge::sync::State,
        message: automerge::sync::Message,
    ) -> Result<Touched, DomainError> {
        use automerge::sync::SyncDoc;
        let mut log = automerge::PatchLog::active();
        self.doc
            .sync()
            .receive_sync_message_log_patches(state, message, &mut log)?;
        Ok(Touched::from_patches(&self.doc.make_patches(&mut log)))
    }
}

/// Write the collection `name` (a map of items by id) as `new`, over a document holding
/// `current`: the items that differ, one by one. Items are never removed (deletion is a
/// tombstone); if one was, or the map is missing, the whole collection is written.
fn write_items<T: autosurgeon::Reconcile + PartialEq>(
    doc: &mut KeepConflicts<'_>,
    name: &str,
    current: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
) -> Result<(), DomainError> {
    let map = match autosurgeon::ReadDoc::get(doc, &automerge::ROOT, name)? {
        Some((Value::Object(ObjType::Map), id)) if current.keys().all(|k| new.contains_key(k)) => {
            id
        }
        _ => {
            autosurgeon::reconcile_prop(doc, automerge::ROOT, name, new)?;
            return Ok(());
        }
    };
    for (id, item) in new {
        if current.get(id) != Some(item) {
            autosurgeon::reconcile_prop(doc, &map, id.as_str(), item)?;
        }
    }
    Ok(())
}
