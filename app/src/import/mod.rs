//! Importing a team's client list (CSV or a workbook) into the device's dossiers: each row
//! read ([`fieldbook_shared::import`]), matched to the dossier it belongs to (by the client
//! number, else by the company's name; rows of one company add up), checked as any edit is,
//! and — only if every row can be — written as one batch of changes that syncs like any
//! other. A dry run is the same plan, not written.

mod file;

use std::collections::{BTreeMap, HashMap};

use fieldbook_shared::api::ListQuery;
use fieldbook_shared::import::{
    CellError, Mapping, RowAction, RowOutcome, Table, company_key, read_rows,
};
use fieldbook_shared::pipeline::OpenDoc;
use fieldbook_shared::{Dossier, validate};

pub use file::{FileError, ReadTable, read_table};

use crate::engine::{Engine, EngineError, new_id};
use crate::store::{DossierStore, DossierWrite, Origin, TextWrite};

/// What an import of a table will do, row by row, and what it will write.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    pub rows: Vec<RowOutcome>,
    /// Cells that cannot be read, and rows refused by the checks every edit passes.
    pub errors: Vec<CellError>,
    /// Dossier id → (as held before the import, None if new; as it will be).
    changes: BTreeMap<String, (Option<Dossier>, Dossier)>,
}

impl ImportPlan {
    pub fn count(&self, action: RowAction) -> usize {
        self.rows.iter().filter(|r| r.action == action).count()
    }

    /// Dossiers the import makes and changes.
    pub fn dossiers(&self) -> (usize, usize) {
        let new = self.changes.values().filter(|(b, _)| b.is_none()).count();
        let changed = self
            .changes
            .values()
            .filter(|(b, a)| b.as_ref().is_some_and(|b| b != a))
            .count();
        (new, changed)
    }
}

/// An import not written because some rows cannot be imported as they are.
#[derive(Debug, thiserror::Error)]
#[error("{} cells or rows cannot be imported as they are, so nothing was imported; the first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
pub struct Refused(pub Vec<CellError>);

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl<S: DossierStore> Engine<S> {
    /// What importing `table` read through `mapping` would do. New dossiers belong to the
    /// row's owner, else to `owner`, else to this device's user.
    pub fn plan_import(
        &mut self,
        table: &Table,
        mapping: &Mapping,
        owner: Option<&str>,
    ) -> Result<ImportPlan, EngineError> {
        let (rows, mut errors) = read_rows(table, mapping);
        let owner = owner.map_or_else(|| self.identity().user.clone(), str::to_string);
        let held = self.store().list(&ListQuery {
            include_archived: true,
            ..ListQuery::default()
        })?;
        let mut by_number: HashMap<String, String> = HashMap::new();
        let mut by_company: HashMap<String, String> = HashMap::new();
        for s in held {
            if !s.client_number.is_empty() {
                by_number.insert(s.client_number.clone(), s.id.clone());
            }
            by_company.entry(company_key(&s.name)).or_insert(s.id);
        }
        let mut changes: BTreeMap<String, (Option<Dossier>, Dossier)> = BTreeMap::new();
        let mut outcomes = Vec::with_capacity(rows.len());
        let refused_rows: Vec<usize> = errors.iter().map(|e| e.row).collect();
        for row in rows {
            let matched = (!row.key.is_empty())
                .then(|| by_number.get(&row.key))
                .flatten()
                .or_else(|| by_company.get(&company_key(&row.company)))
                .cloned();
            let (id, made) = match matched {
                Some(id) => (id, false),
                None => (self.next_id(), true),
            };
            if !changes.contains_key(&id) {
                let before = if made {
                    None
                } else {
                    Some(self.dossier(&id)?.dossier)
                };
                let mut start = before.clone().unwrap_or_default();
                if made {
                    start.profile.owner = owner.clone();
                }
                changes.insert(id.clone(), (before, start));
            }
            let (before, after) = changes.get_mut(&id).expect("inserted above");
            let previous = after.clone();
            row.apply(after, &mut new_id);
            let checked = if made {
                validate::check_edit(None, after)
            } else {
                validate::check_edit(Some(&previous), after)
            };
            let action = match checked {
                Err(invalid) => {
                    *after = previous;
                    let message = format!("{} ({})", invalid.reason, invalid.path);
                    errors.push(CellError {
                        row: row.row,
                        column: String::new(),
                        value: String::new(),
                        message: message.clone(),
                    });
                    if made && before.is_none() {
                        // Made by this row alone: nothing of it stays.
                        changes.remove(&id);
                    }
                    outcomes.push(RowOutcome {
                        row: row.row,
                        company: row.company.clone(),
                        dossier: String::new(),
                        action: RowAction::Refused,
                        reasons: vec![message],
                    });
                    continue;
                }
                Ok(()) if made => RowAction::Create,
                Ok(()) if *after != previous => RowAction::Update,
                Ok(()) => RowAction::Unchanged,
            };
            if !row.key.is_empty() {
                by_number.insert(row.key.clone(), id.clone());
            }
            by_company.insert(company_key(&after.profile.name), id.clone());
            outcomes.push(RowOutcome {
                row: row.row,
                company: row.company.clone(),
                dossier: id,
                action,
                reasons: Vec::new(),
            });
        }
        // Rows refused while being read, in their place.
        for e in &errors {
            if refused_rows.contains(&e.row) {
                match outcomes.iter_mut().find(|o| o.row == e.row) {
                    Some(o) => o.reasons.push(e.to_string()),
                    None => outcomes.push(RowOutcome {
                        row: e.row,
                        company: String::new(),
                        dossier: String::new(),
                        action: RowAction::Refused,
                        reasons: vec![e.to_string()],
                    }),
                }
            }
        }
        outcomes.sort_by_key(|o| o.row);
        Ok(ImportPlan {
            rows: outcomes,
            errors,
            changes,
        })
    }

    /// Write `plan` as one batch (one transaction: all of it or, on any failure, none), unless
    /// some of its rows were refused. Returns the dossiers made and changed.
    pub fn import(&mut self, plan: ImportPlan) -> Result<(usize, usize), ImportError> {
        if !plan.errors.is_empty() {
            return Err(Refused(plan.errors).into());
        }
        let counts = plan.dossiers();
        let mut ids = Vec::new();
        let mut writes = Vec::new();
        let written = self.import_writes(plan.changes, &mut ids, &mut writes);
        let stored = written.and_then(|()| self.store_writes(&ids, &writes, true));
        if let Err(e) = stored {
            // What was written into open copies is not stored: they are read again.
            self.forget_open(&ids);
            return Err(e.into());
        }
        Ok(counts)
    }

    fn import_writes(
        &mut self,
        changes: BTreeMap<String, (Option<Dossier>, Dossier)>,
        ids: &mut Vec<String>,
        writes: &mut Vec<DossierWrite>,
    ) -> Result<(), EngineError> {
        let writer = self.writer();
        for (id, (before, after)) in changes {
            let save = match &before {
                None => OpenDoc::create(&writer, &after)
                    .and_then(|mut open| open.to_store(&id, &[]))
                    .map(Some),
                Some(b) if *b == after => continue,
                Some(_) => {
                    let mut open = self.open_dossier(&id)?;
                    open.write(&writer, &after, "import").and_then(|before| {
                        before.map(|before| open.to_store(&id, &before)).transpose()
                    })
                }
            };
            ids.push(id);
            let Some(save) = save? else {
                continue;
            };
            let mut write = DossierWrite::from_save(save, Origin::Local);
            // A big list is searchable at once by a scan, and indexed while the app idles.
            write.text = TextWrite::Later;
            writes.push(write);
        }
        Ok(())
    }
}
