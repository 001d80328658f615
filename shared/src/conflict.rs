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
    for key in doc.keys(obj).collect::<Vec<_>>() {
        let Ok(all) = doc.get_all(obj, key.as_str()) else {
            continue;
        };
        let shown = doc.get(obj, key.as_str());
        path.push(key);
        if all.len() > 1 {
            let values: Vec<ConflictValue> = all
                .iter()
                .map(|(v, id)| describe(doc, v, id, authors))
                .collect();
            let first = &values[0].value;
            let differ = values.iter().any(|v| &v.value != first);
            let plain: Vec<serde_json::Value> = values.iter().map(|v| v.value.clone()).collect();
            if differ && !is_bookkeeping(path, &plain) {
                out.push(Conflict {
                    path: path.join("."),
                    values,
                });
            }
        }
        // Descend into the value shown (the winner): that is the object users edit.
        if let Ok(Some((Value::Object(ObjType::Map), child))) = shown {
            walk(doc, &child, path, authors, out);
        }
        path.pop();
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
