//! Edits addressed by path, e.g. `people.<id>.title` or `deals.<id>.stage`.
//!
//! A patch goes through the dossier's JSON form and back through serde, so every field is
//! type-checked by the same code that defines it (an unknown stage word or a malformed date is
//! rejected with serde's message), and the caller needs no per-field code. Long text survives
//! the round trip because [`crate::Note`] is a plain string until it is reconciled.

use serde_json::{Map, Value};

use crate::{Day, DomainError, Dossier};

/// One assignment, `path = value`. The value is JSON when it parses as JSON (numbers, `true`,
/// `null`, lists), otherwise the raw text.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    pub path: String,
    pub value: String,
}

/// `path = value`, as code writes an edit.
pub fn set(path: &str, value: &str) -> Assignment {
    Assignment {
        path: path.into(),
        value: value.into(),
    }
}

impl std::str::FromStr for Assignment {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (path, value) = s.split_once('=').ok_or_else(|| DomainError::BadValue {
            path: s.to_string(),
            reason: "write assignments as field=value".into(),
        })?;
        Ok(Assignment {
            path: path.trim().to_string(),
            value: value.to_string(),
        })
    }
}

fn segments(path: &str) -> Vec<&str> {
    path.split('.').filter(|s| !s.is_empty()).collect()
}

/// The JSON value at `path` inside `root`, if any.
fn lookup<'a>(root: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(root, |v, seg| v.get(seg))
}

fn lookup_mut<'a>(root: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, |v, seg| v.get_mut(seg))
}

fn from_json(value: Value) -> Result<Dossier, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Apply assignments to a copy of `dossier`. Each path must name an existing field (new items
/// are made with [`add_item`]); values are checked by the field's own type.
pub fn apply(dossier: &Dossier, assignments: &[Assignment]) -> Result<Dossier, DomainError> {
    let mut json = serde_json::to_value(dossier).expect("a dossier always serialises");
    for a in assignments {
        let path = segments(&a.path);
        if path.is_empty() || path.contains(&"authors") || path[0] == "schema_version" {
            return Err(DomainError::NoSuchField {
                path: a.path.clone(),
            });
        }
        let slot = lookup_mut(&mut json, &path).ok_or_else(|| missing(dossier, &a.path))?;
        let parsed = serde_json::from_str::<Value>(&a.value).ok();
        let previous = slot.clone();
        // First try the value as JSON (so `5` is a number), then as plain text, so that a name
        // like `2026` or `true` can still be stored in a text field.
        let attempts: Vec<Value> = match parsed {
            None => vec![Value::String(a.value.clone())],
            Some(v) => vec![v, Value::String(a.value.clone())],
        };
        let mut last_err = String::new();
        let mut ok = false;
        for attempt in attempts {
            *lookup_mut(&mut json, &path).expect("checked above") = attempt;
            match from_json(json.clone()) {
                Ok(_) => {
                    ok = true;
                    break;
                }
                Err(e) => last_err = e,
            }
        }
        if !ok {
            *lookup_mut(&mut json, &path).expect("checked above") = previous;
            return Err(DomainError::BadValue {
                path: a.path.clone(),
                reason: last_err,
            });
        }
    }
    from_json(json).map_err(|reason| DomainError::BadValue {
        path: String::new(),
        reason,
    })
}

fn missing(dossier: &Dossier, path: &str) -> DomainError {
    let json = serde_json::to_value(dossier).expect("a dossier always serialises");
    let segs = segments(path);
    // Say whether the item id or the field name is wrong: the two need different fixes.
    for depth in (1..segs.len()).rev() {
        if let Some(Value::Object(parent)) = lookup(&json, &segs[..depth]) {
            if is_collection_path(&segs[..depth]) && !parent.contains_key(segs[depth]) {
                return DomainError::NoSuchItem {
                    path: segs[..=depth].join("."),
                };
            }
            break;
        }
    }
    DomainError::NoSuchField {
        path: path.to_string(),
    }
}

/// Collections of items keyed by id, by their path in the dossier. `*` stands for an item id.
pub const COLLECTIONS: &[&str] = &[
    "people",
    "interactions",
    "deals",
    "deals.*.checklist",
    "follow_ups",
    "contracts",
    "contracts.*.milestones",
    "complaints",
    "account_plan.actions",
    "comments",
];

pub fn is_collection_path(path: &[&str]) -> bool {
    COLLECTIONS.iter().any(|c| {
        let pattern = segments(c);
        pattern.len() == path.len() && pattern.iter().zip(path).all(|(p, s)| *p == "*" || p == s)
    })
}

/// Add a new item with id `id` to the collection at `collection` (e.g. `people` or
/// `deals.<deal id>.checklist`), with the given field assignments relative to the item.
pub fn add_item(
    dossier: &Dossier,
    collection: &str,
    id: &str,
    assignments: &[Assignment],
) -> Result<Dossier, DomainError> {
    let segs = segments(collection);
    if !is_collection_path(&segs) {
        return Err(DomainError::NotACollection {
            path: collection.to_string(),
        });
    }
    let mut json = serde_json::to_value(dossier).expect("a dossier always serialises");
    let Some(Value::Object(items)) = lookup_mut(&mut json, &segs) else {
        return Err(missing(dossier, collection));
    };
    if items.contains_key(id) {
        return Err(DomainError::BadValue {
            path: format!("{collection}.{id}"),
            reason: "an item with this id already exists".into(),
        });
    }
    items.insert(id.to_string(), Value::Object(Map::new()));
    // Serde fills every field of the new item with its default.
    let with_item = from_json(json).map_err(|reason| DomainError::BadValue {
        path: collection.to_string(),
        reason,
    })?;
    let relative: Vec<Assignment> = assignments
        .iter()
        .map(|a| Assignment {
            path: format!("{collection}.{id}.{}", a.path),
            value: a.value.clone(),
        })
        .collect();
    apply(&with_item, &relative)
}

/// Mark the item at `path` deleted (a tombstone), or restore it when `on` is `None`.
pub fn set_deleted(dossier: &Dossier, path: &str, on: Option<Day>) -> Result<Dossier, DomainError> {
    let segs = segments(path);
    let is_item = segs.is_empty() || is_collection_path(&segs[..segs.len() - 1]);
    if !is_item {
        return Err(DomainError::NotACollection {
            path: path.to_string(),
        });
    }
    let field = if segs.is_empty() {
        "deleted_at".to_string()
    } else {
        format!("{path}.deleted_at")
    };
    let value = on.map_or("null".to_string(), |d| d.to_string());
    apply(dossier, &[Assignment { path: field, value }])
}
