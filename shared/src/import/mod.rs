//! Bringing a team's client list in from a spreadsheet: the table as read, which column fills
//! which dossier field ([`Mapping`], suggested from Chinese and English headers, saved and
//! used again), what each row says of one client ([`ClientRow`]), and where each row goes —
//! a new dossier, one the replica holds already (matched by the client number, else by the
//! company's name), or one an earlier row of the same file made. No IO: the device reads the
//! file and writes the dossiers, all in one batch.

mod fields;
mod row;

pub use fields::{Field, Mapping};
pub use row::{CellError, ClientRow, read_rows};

use serde::{Deserialize, Serialize};

/// A sheet as read from a file: its header row and the rows under it, every cell as text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The row number a user sees in the spreadsheet for `rows[index]` (the header is row 1).
    pub fn row_number(index: usize) -> usize {
        index + 2
    }
}

/// What an import does with one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowAction {
    /// Makes a new dossier.
    Create,
    /// Changes a dossier the replica holds, or one an earlier row made.
    Update,
    /// Says nothing its dossier does not say already (the file imported before, say).
    Unchanged,
    /// Cannot be imported as it is: nothing of the file is, until it is put right.
    Refused,
}

/// One row's place in an import: the dossier it goes to and what it does there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowOutcome {
    /// The spreadsheet's row number.
    pub row: usize,
    pub company: String,
    /// The dossier's id (empty when refused before it was matched).
    pub dossier: String,
    pub action: RowAction,
    /// Why, when refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// Text folded for matching what people type: full-width letters, digits and spaces as
/// half-width ones, lower case, and no spaces or punctuation.
pub fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// What a company's name is matched by: its folded form (so 华东重工 and 华东 重工, or ACME
/// and Acme, are one company). Finding companies that are probably the same under other
/// spellings is the duplicates' work, not the import's.
pub fn company_key(name: &str) -> String {
    fold(name)
}

#[cfg(test)]
mod tests;
