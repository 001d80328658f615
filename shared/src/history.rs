//! A dossier's past, read from the document's own change history: who changed a field, on
//! which device and when, and the whole dossier as it stood on a given date.

use std::collections::{BTreeMap, HashSet};

use automerge::{Automerge, ChangeHash, ObjId, ObjType, ReadDoc, Value};
use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::conflict::{hydrated_to_json, scalar_to_json};
use crate::model::Author;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field's value right after this change (null when removed).
    pub value: serde_json::Value,
    pub device: String,
    pub author: Option<Author>,
    pub at_ms: i64,
    pub change: String,
    /// The field held conflicting values just before, and this change made it one: a
    /// conflict resolved rather than an ordinary write.
    #[serde(default)]
    pub resolved: bool,
}

fn one_value(
    doc: &Automerge,
    value: &Value<'_>,
    id: &ObjId,
    heads: &[ChangeHash],
) -> serde_json::Value {
    match value {
        Value::Scalar(s) => scalar_to_json(s),
        Value::Object(ObjType::Text) => doc
            .text_at(id, heads)
            .map(serde_json::Value::String)
            .unwrap_or(serde_json::Value::Null),
        Value::Object(_) => ReadDoc::hydrate(doc, id, Some(heads))
            .map(|v| hydrated_to_json(&v))
            .unwrap_or(serde_json::Value::Null),
    }
}

/// The field's values at `heads`: the one shown first, then any concurrent ones. Comparing
/// whole sets makes a resolution (two values become one) show up as a change too.
fn values_at(
    doc: &Automerge,
    obj: &ObjId,
    key: &str,
    heads: &[ChangeHash],
) -> Vec<serde_json::Value> {
    if heads.is_empty() {
        return Vec::new();
    }
    let shown = match doc.get_at(obj, key, heads) {
        Ok(Some((v, id))) => one_value(doc, &v, &id, heads),
        _ => return Vec::new(),
    };
    let mut others: Vec<serde_json::Value> = doc
        .get_all_at(obj, key, heads)
        .unwrap_or_default()
        .iter()
        .map(|(v, id)| one_value(doc, v, id, heads))
        .collect();
    others.sort_by_key(|v| v.to_string());
    if let Some(i) = others.iter().position(|v| *v == shown) {
        others.remove(i);
    }
    std::iter::once(shown).chain(others).collect()
}

/// Every change that altered the field at `path`, oldest first.
pub fn field_history(
    doc: &Automerge,
    path: &str,
    authors: &BTreeMap<String, Author>,
) -> Result<Vec<FieldChange>, DomainError> {
    let segs: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
    let (key, parents) = segs.split_last().ok_or_else(|| DomainError::NoSuchField {
        path: path.to_string(),
    })?;
    let mut obj = automerge::ROOT;
    for seg in parents {
        match doc.get(&obj, *seg)? {
            Some((Value::Object(ObjType::Map), id)) => obj = id,
            _ => {
                return Err(DomainError::NoSuchField {
                    path: path.to_string(),
                });
            }
        }
    }
    let mut out = Vec::new();
    // Compare the field just before and just after each change, in causal order. Looking at a
    // change's own causal past (not the document's whole state) credits each value to the
    // change that wrote it, also when two devices wrote concurrently.
    for meta in doc.get_changes_meta(&[]) {
        let before = values_at(doc, &obj, key, &meta.deps);
        let after = values_at(doc, &obj, key, &[meta.hash]);
        if before != after {
            let device = meta.actor.to_hex_string();
            out.push(FieldChange {
                value: after.first().cloned().unwrap_or(serde_json::Value::Null),
                author: authors.get(&device).cloned(),
                device,
                at_ms: meta.timestamp,
                change: meta.hash.to_string(),
                resolved: before.len() > 1 && after.len() == 1,
            });
        }
    }
    Ok(out)
}

/// The heads of the document as it stood at `at_ms`: every change stamped no later than that,
/// with whatever those changes depended on.
pub fn heads_as_of(doc: &Automerge, at_ms: i64) -> Vec<ChangeHash> {
    let metas = doc.get_changes_meta(&[]);
    let mut included: HashSet<ChangeHash> = metas
        .iter()
        .filter(|m| m.timestamp <= at_ms)
        .map(|m| m.hash)
        .collect();
    // Metas come in causal order, so walking backwards pulls in every dependency.
    for m in metas.iter().rev() {
        if included.contains(&m.hash) {
            included.extend(m.deps.iter().copied());
        }
    }
    let depended: HashSet<ChangeHash> = metas
        .iter()
        .filter(|m| included.contains(&m.hash))
        .flat_map(|m| m.deps.iter().copied())
        .collect();
    let mut heads: Vec<ChangeHash> = included.difference(&depended).copied().collect();
    heads.sort();
    heads
}
