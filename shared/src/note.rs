//! Long free text that two people may edit at once (meeting notes, problem descriptions).
//!
//! In memory it is a plain `String`, so it serialises, compares and patches like any other
//! field. In the document it is an Automerge Text object: on reconcile the new value is diffed
//! against the document's current text and only the changed characters are spliced, so
//! concurrent edits on two devices merge character-wise instead of one overwriting the other.

use std::fmt;

use automerge::ObjId;
use autosurgeon::reconcile::TextReconciler;
use autosurgeon::{Hydrate, HydrateError, ReadDoc, Reconcile, Reconciler};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Note(pub String);

impl Note {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Note {
    fn from(s: &str) -> Self {
        Note(s.to_string())
    }
}

impl From<String> for Note {
    fn from(s: String) -> Self {
        Note(s)
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Reconcile for Note {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        let mut text = reconciler.text()?;
        text.update(&self.0)
    }
}

impl Hydrate for Note {
    fn hydrate_text<D: ReadDoc>(doc: &D, obj: &ObjId) -> Result<Self, HydrateError> {
        Ok(Note(doc.text(obj)?))
    }
    // Tolerate a plain string written by another tool: it still reads as the note.
    fn hydrate_string(s: &'_ str) -> Result<Self, HydrateError> {
        Ok(Note(s.to_string()))
    }
}
