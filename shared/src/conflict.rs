//! Concurrent values of a single field, which the user resolves.
//!
//! When two devices write different values to the same scalar field offline, Automerge keeps
//! one winner deterministically and the others as conflicting values. The product never hides
//! them: this module lists every such field, with who wrote each value, on which device and when.

use std::collections::BTreeMap;

use automerge::{Automerge, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use crate::model::Author;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// Dotted path of the field, e.g. `deals.<id>.stage`.
    pub path: String,
    /// The concurrent values; the first is the one currently shown (Automerge's winner).
    pub values: Vec<ConflictValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictValue {
    pub value: serde_json::Value,
    /// Actor id (device) in hex.
    pub device: String,
    pub author: Option<Author>,
    /// When the value was written (ms since the epoch), by the writing device's clock.
    pub at_ms: i64,
}

/// Scalar values as JSON, for showing and for writing back when a value is picked.
pub fn scalar_to_json(v: &ScalarValue) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        ScalarValue::Str(s) => J::String(s.to_string()),
        ScalarValue::Int(i) => J::from(*i),
        ScalarValue::Uint(u) => J::from(*u),
        ScalarValue::F64(f) => J::from(*f),
        ScalarValue::Boolean(b) => J::Bool(*b),
        ScalarValue::Null => J::Null,
        ScalarValue::Counter(c) => J::from(i64::from(c)),
        ScalarValue::Timestamp(t) => J::from(*t),
        ScalarValue::Bytes(_) | ScalarValue::Unknown { .. } => J::String(v.to_string()),
    }
}

/// A whole object as JSON (used to show a set or a nested record in history and conflicts).
pub fn hydrated_to_json(v: &automerge::hydrate::Value) -> serde_json::Value {
    use automerge::hydrate::Value as H;
    match v {
        H::Scalar(s) => scalar_to_json(s),
        H::Text(t) => serde_json::Value::String(t.to_string()),
        H::List(l) => l.iter().map(|item| hydrated_to_json(&item.value)).collect(),
        H::Map(m) => {
            let mut entries: Vec<(&String, serde_json::Value)> = m
                .iter()
                .map(|(k, mv)| (k, hydrated_to_json(&mv.value)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            // A set (member -> true) reads best as its members.
            if !entries.is_empty()
                && entries
                    .iter()
                    .all(|(_, v)| *v == serde_json::Value::Bool(true))
            {
                return entries
                    .into_iter()
                    .map(|(k, _)| serde_json::Value::String(k.clone()))
                    .collect();
            }
            entries
                .into_iter()
                .map(|(k, v)| (k.clone(), v))
                .collect::<serde_json::Map<_, _>>()
                .into()
        }
    }
}

fn value_to_json(doc: &Automerge, v: &Value<'_>, id: &ObjId) -> serde_json::Value {
    match v {
        Value::Scalar(s) => scalar_to_json(s),
        Value::Object(ObjType::Text) => doc
            .text(id)
            .map(serde_json::Value::String)
            .unwrap_or(serde_json::Value::Null),
        Value::Object(t) => serde_json::Value::String(format!("<{t}>")),
    }
}

/// Fields whose concurrent values carry no disagreement worth a user's time.
fn is_bookkeeping(path: &[String], values: &[serde_json::Value]) -> bool {
    let last = path.last().map(String::as_str);
    path.first().map(String::as_str) == Some("authors")
        || last == Some("schema_version")
        // Deleted on two devices at once: both meant "deleted".
        || (last == Some("deleted_at") && values.iter().all(|v| !v.is_null()))
}

pub fn list(doc: &Automerge, authors: &BTreeMap<String, Author>) -> Vec<Conflict> {
    let mut out = Vec::new();
    walk(doc, &automerge::ROOT, &mut Vec::new(), authors, &mut out);
    out
}

pub fn count(doc: &Automerge) -> usize {
    list(doc, &BTreeMap::new()).len()
}

fn walk(
    doc: &Automerge,
    obj: &ObjId,
    path: &mut Vec<String>,
    authors: &BTreeMap<String, Author>,
    out: &mut Vec<Conflict>,
) {
    if let Some(c) = deleted_while_edited(doc, obj, path, authors) {
        out.push(c);
    }
    // `map_range` flags keys holding concurrent values, so the costly `get_all` runs only
    // where there is something to report: counting conflicts stays cheap on every write.
    let entries: Vec<(String, bool, Option<ObjId>)> = doc
        .map_range(obj, ..)
        .map(|item| {
            let child = match item.value {
                automerge::ValueRef::Object(ObjType::Map) => Some(item.id()),
                _ => None,
            };
            (item.key.into_owned(), item.conflict, child)
        })
        .collect();
    for (key, conflicted, child) in entries {
        path.push(key);
        if conflicted {
            report(doc, obj, path, authors, out);
        }
        // Descend into the value shown (the winner): that is the object users edit.
        if let Some(child) = child {
            walk(doc, &child, path, authors, out);
        }
        path.pop();
    }
}

fn report(
    doc: &Automerge,
    obj: &ObjId,
    path: &[String],
    authors: &BTreeMap<String, Author>,
    out: &mut Vec<Conflict>,
) {
    let Some(key) = path.last() else { return };
    let Ok(all) = doc.get_all(obj, key.as_str()) else {
        return;
    };
    let winner = doc.get(obj, key.as_str()).ok().flatten().map(|(_, id)| id);
    let mut all: Vec<_> = all.iter().collect();
    all.sort_by_key(|(_, id)| Some(id) != winner.as_ref());
    let values: Vec<ConflictValue> = all
        .into_iter()
        .map(|(v, id)| describe(doc, v, id, authors))
        .collect();
    let Some(first) = values.first().map(|v| v.value.clone()) else {
        return;
    };
    let plain: Vec<serde_json::Value> = values.iter().map(|v| v.value.clone()).collect();
    if plain.iter().any(|v| *v != first) && !is_bookkeeping(path, &plain) {
        out.push(Conflict {
            path: path.join("."),
            values,
        });
    }
}

/// An item deleted on one device and edited on another (or after the delete) is kept, with the
/// edit, under its tombstone; but a user looking at the list would not see the edit. Offer
/// it as a conflict on `deleted_at`: the deletion, or null (restore the item with the edit).
fn deleted_while_edited(
    doc: &Automerge,
    obj: &ObjId,
    path: &[String],
    authors: &BTreeMap<String, Author>,
) -> Option<Conflict> {
    let (deleted, op) = doc.get(obj, "deleted_at").ok()??;
    if matches!(&deleted, Value::Scalar(s) if s.is_null()) {
        return None;
    }
    let deletion = doc.hash_for_opid(&op)?;
    let now = ReadDoc::hydrate(doc, obj, None).ok()?;
    let then = ReadDoc::hydrate(doc, obj, Some(&[deletion][..])).ok()?;
    if same_except_deletion(&now, &then) {
        return None;
    }
    // Who edited it: the newest change the deleting device had not seen that altered the item.
    // Change order among concurrent changes differs between replicas: sort by time and hash so
    // every replica names the same editor.
    let mut candidates = doc.get_changes_meta(&[deletion]);
    candidates.sort_by_key(|m| std::cmp::Reverse((m.timestamp, m.hash)));
    let editor = candidates.into_iter().find(|m| {
        let before = ReadDoc::hydrate(doc, obj, Some(&m.deps)).ok();
        let after = ReadDoc::hydrate(doc, obj, Some(&[m.hash][..])).ok();
        match (before, after) {
            (Some(b), Some(a)) => !same_except_deletion(&b, &a),
            _ => false,
        }
    })?;
    let editor_device = editor.actor.to_hex_string();
    let mut field = path.to_vec();
    field.push("deleted_at".into());
    Some(Conflict {
        path: field.join("."),
        values: vec![
            describe(doc, &deleted, &op, authors),
            ConflictValue {
                value: serde_json::Value::Null,
                author: authors.get(&editor_device).cloned(),
                device: editor_device,
                at_ms: editor.timestamp,
            },
        ],
    })
}

fn same_except_deletion(a: &automerge::hydrate::Value, b: &automerge::hydrate::Value) -> bool {
    use automerge::hydrate::Value as H;
    match (a, b) {
        (H::Map(x), H::Map(y)) => {
            let keys: std::collections::BTreeSet<&String> =
                x.iter().chain(y.iter()).map(|(k, _)| k).collect();
            keys.into_iter()
                .filter(|k| k.as_str() != "deleted_at")
                .all(|k| x.get(k) == y.get(k))
        }
        _ => a == b,
    }
}

fn describe(
    doc: &Automerge,
    v: &Value<'_>,
    id: &ObjId,
    authors: &BTreeMap<String, Author>,
) -> ConflictValue {
    let meta = doc
        .hash_for_opid(id)
        .and_then(|h| doc.get_change_meta_by_hash(&h));
    let device = meta
        .as_ref()
        .map(|m| m.actor.to_hex_string())
        .unwrap_or_default();
    ConflictValue {
        value: value_to_json(doc, v, id),
        author: authors.get(&device).cloned(),
        at_ms: meta.as_ref().map_or(0, |m| m.timestamp),
        device,
    }
}
