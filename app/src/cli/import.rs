//! `fieldbook import FILE.csv|FILE.xlsx`: a client list brought in, with its column mapping
//! suggested, adjusted and saved, a dry run row by row, and the import as one batch.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use fieldbook_shared::import::{Field, Mapping, RowAction, Table};

use super::Out;
use crate::engine::Engine;
use crate::import::{ImportPlan, read_table};
use crate::store::DossierStore;

/// How a table file is read and imported.
#[derive(Debug, Clone, Default, Args)]
pub struct TableOptions {
    /// Say what the import would do, row by row, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A column mapping saved before (--save-mapping), to read the file with.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Read a column as a field, e.g. --map company=客户名称 (repeatable).
    #[arg(long = "map", value_name = "FIELD=HEADER")]
    pub maps: Vec<String>,
    /// What a word in a column means, e.g. --value stage:意向=interest (repeatable).
    #[arg(long = "value", value_name = "FIELD:WORD=WORD")]
    pub values: Vec<String>,
    /// Save the mapping used, to import the next file of this shape with --mapping.
    #[arg(long, value_name = "FILE")]
    pub save_mapping: Option<PathBuf>,
    /// Who owns new dossiers whose row names no owner (default: you).
    #[arg(long)]
    pub owner: Option<String>,
    /// The sheet of a workbook to read (default: the first).
    #[arg(long)]
    pub sheet: Option<String>,
}

impl TableOptions {
    pub fn given(&self) -> bool {
        self.dry_run
            || self.mapping.is_some()
            || !self.maps.is_empty()
            || !self.values.is_empty()
            || self.save_mapping.is_some()
            || self.owner.is_some()
            || self.sheet.is_some()
    }
}

/// Whether `path` is a table this command reads (rather than a Fieldbook export).
pub fn is_table(path: &Path) -> bool {
    matches!(
        crate::files::extension(path).as_str(),
        "csv" | "tsv" | "txt" | "xlsx" | "xlsm" | "xls" | "xlsb" | "ods"
    )
}

pub fn import_table<S: DossierStore>(
    engine: &mut Engine<S>,
    path: &Path,
    options: &TableOptions,
    out: &Out,
) -> Result<()> {
    let read = read_table(path, options.sheet.as_deref())?;
    let mapping = mapping_for(&read.table, options)?;
    if let Some(save) = &options.save_mapping {
        std::fs::write(save, serde_json::to_string_pretty(&mapping)?)
            .with_context(|| format!("saving the mapping to {}", save.display()))?;
    }
    if !out.json {
        eprintln!(
            "read {} ({}): {} rows, {} columns",
            path.display(),
            read.source,
            read.table.rows.len(),
            read.table.headers.len()
        );
        eprintln!("{}", describe_mapping(&read.table, &mapping));
    }
    let plan = engine.plan_import(&read.table, &mapping, options.owner.as_deref())?;
    let (new, changed) = plan.dossiers();
    let summary = serde_json::json!({
        "file": path.display().to_string(),
        "read_as": read.source,
        "mapping": mapping,
        "rows": plan.rows,
        "dry_run": options.dry_run,
        "new_dossiers": new,
        "changed_dossiers": changed,
    });
    if options.dry_run || !plan.errors.is_empty() {
        let refused = plan.errors.len();
        out.emit(&summary, || describe_plan(&plan, true))?;
        if refused > 0 {
            bail!(
                "{refused} cells or rows cannot be imported as they are (listed above); \
                 nothing was imported"
            );
        }
        return Ok(());
    }
    if !out.json && new + changed > 0 {
        eprintln!("writing {new} new and {changed} changed dossiers as one batch…");
    }
    let text = describe_plan(&plan, false);
    engine.import(plan)?;
    out.emit(&summary, || text)
}

/// The mapping to read `table` with: saved, else suggested from its headers; then each
/// --map and --value given.
fn mapping_for(table: &Table, options: &TableOptions) -> Result<Mapping> {
    let mut mapping = match &options.mapping {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the mapping {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a saved mapping", path.display()))?
        }
        None => Mapping::suggest(&table.headers),
    };
    for m in &options.maps {
        let Some((field, header)) = m.split_once('=') else {
            bail!("--map {m:?}: write it FIELD=HEADER, e.g. company=客户名称");
        };
        let field: Field = field.trim().parse().map_err(anyhow::Error::msg)?;
        let header = header.trim();
        if !table.headers.iter().any(|h| h == header) {
            bail!(
                "--map {m:?}: the file has no column {header:?}; its columns are {}",
                table.headers.join(", ")
            );
        }
        mapping.columns.retain(|_, f| *f != field);
        mapping.columns.insert(header.to_string(), field);
    }
    for v in &options.values {
        let parsed = v
            .split_once(':')
            .and_then(|(f, rest)| rest.split_once('=').map(|(w, t)| (f, w, t)));
        let Some((field, word, to)) = parsed else {
            bail!("--value {v:?}: write it FIELD:WORD=WORD, e.g. stage:意向=interest");
        };
        let field: Field = field.trim().parse().map_err(anyhow::Error::msg)?;
        mapping
            .values
            .entry(field)
            .or_default()
            .insert(word.trim().to_string(), to.trim().to_string());
    }
    Ok(mapping)
}

fn describe_mapping(table: &Table, mapping: &Mapping) -> String {
    let columns: Vec<String> = table
        .headers
        .iter()
        .map(|h| match mapping.columns.get(h) {
            Some(f) => format!("{h} → {} ({})", f.word(), f.label_zh()),
            None => format!("{h} → (left out)"),
        })
        .collect();
    format!("columns: {}", columns.join("; "))
}

fn describe_plan(plan: &ImportPlan, every_row: bool) -> String {
    let mut lines = Vec::new();
    for r in &plan.rows {
        if !every_row && r.action != RowAction::Refused {
            continue;
        }
        let what = match r.action {
            RowAction::Create => "create".to_string(),
            RowAction::Update => "update".to_string(),
            RowAction::Unchanged => "unchanged (nothing new)".to_string(),
            RowAction::Refused => format!("refused: {}", r.reasons.join("; ")),
        };
        lines.push(format!("row {:>5}  {}  {what}", r.row, r.company));
    }
    let (new, changed) = plan.dossiers();
    lines.push(format!(
        "{} rows: {} create, {} update, {} unchanged, {} refused → {new} new dossiers, {changed} changed{}",
        plan.rows.len(),
        plan.count(RowAction::Create),
        plan.count(RowAction::Update),
        plan.count(RowAction::Unchanged),
        plan.count(RowAction::Refused),
        if every_row { " (dry run: nothing written)" } else { "" }
    ));
    lines.join("\n")
}
