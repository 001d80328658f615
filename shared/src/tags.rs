//! A set of short strings (competitors, participants, our people on a deal).
//!
//! Stored as a map `value -> true` rather than a list: two devices adding different members
//! offline both keep theirs, and adding the same member twice does not duplicate it.

use std::collections::BTreeSet;

use automerge::ObjId;
use autosurgeon::reconcile::MapReconciler;
use autosurgeon::{Hydrate, HydrateError, ReadDoc, Reconcile, Reconciler};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Tags(pub BTreeSet<String>);

/// Accepts a JSON list or, for people typing at a command line, one comma-separated string.
impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            Joined(String),
        }
        let members = match Form::deserialize(d)? {
            Form::List(v) => v,
            Form::Joined(s) => s.split([',', '，']).map(str::to_string).collect(),
        };
        Ok(members
            .into_iter()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect())
    }
}

impl Tags {
    pub fn contains(&self, v: &str) -> bool {
        self.0.contains(v)
    }
    pub fn insert(&mut self, v: impl Into<String>) -> bool {
        self.0.insert(v.into())
    }
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: Into<String>> FromIterator<S> for Tags {
    fn from_iter<T: IntoIterator<Item = S>>(iter: T) -> Self {
        Tags(iter.into_iter().map(Into::into).collect())
    }
}

impl Reconcile for Tags {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        let mut map = reconciler.map()?;
        let present: Vec<String> = map.entries().map(|(k, _)| k.into_owned()).collect();
        for stale in present.iter().filter(|k| !self.0.contains(k.as_str())) {
            map.delete(stale)?;
        }
        for member in self.0.iter().filter(|m| !present.contains(m)) {
            map.put(member, true)?;
        }
        Ok(())
    }
}

impl Hydrate for Tags {
    fn hydrate_map<D: ReadDoc>(doc: &D, obj: &ObjId) -> Result<Self, HydrateError> {
        Ok(Tags(
            doc.map_range(obj, ..)
                .map(|item| item.key.to_string())
                .collect(),
        ))
    }
}
