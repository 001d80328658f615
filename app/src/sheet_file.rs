//! A [`Sheet`] written as a file a spreadsheet opens: CSV (UTF-8 with a BOM, which Excel needs
//! to read Chinese) or .xlsx (numbers as numbers).

use std::path::Path;

use fieldbook_shared::sheet::{Sheet, SheetCell};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SheetError {
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("{path}: write a .csv or .xlsx file")]
    Kind { path: String },
}

/// Write `sheet` to `path`, as its extension says.
pub fn write_sheet(sheet: &Sheet, path: &Path) -> Result<(), SheetError> {
    let shown = path.display().to_string();
    let fail = |reason: String| SheetError::Write {
        path: shown.clone(),
        reason,
    };
    let extension = crate::files::extension(path);
    match extension.as_str() {
        "csv" => {
            let mut bytes = b"\xEF\xBB\xBF".to_vec();
            {
                let mut writer = csv::Writer::from_writer(&mut bytes);
                let rows = std::iter::once(sheet.headers.clone()).chain(
                    sheet
                        .rows
                        .iter()
                        .map(|r| r.iter().map(SheetCell::text).collect()),
                );
                for row in rows {
                    writer.write_record(&row).map_err(|e| fail(e.to_string()))?;
                }
                writer.flush().map_err(|e| fail(e.to_string()))?;
            }
            std::fs::write(path, bytes).map_err(|e| fail(e.to_string()))
        }
        "xlsx" => {
            let mut book = rust_xlsxwriter::Workbook::new();
            let ws = book.add_worksheet();
            ws.set_name(&sheet.name).map_err(|e| fail(e.to_string()))?;
            let bold = rust_xlsxwriter::Format::new().set_bold();
            for (c, h) in sheet.headers.iter().enumerate() {
                ws.write_string_with_format(0, c as u16, h, &bold)
                    .map_err(|e| fail(e.to_string()))?;
            }
            for (r, row) in sheet.rows.iter().enumerate() {
                let r = r as u32 + 1;
                for (c, cell) in row.iter().enumerate() {
                    let c = c as u16;
                    let written = match cell {
                        SheetCell::Text(t) => ws.write_string(r, c, t).map(|_| ()),
                        SheetCell::Number(n) => ws.write_number(r, c, *n as f64).map(|_| ()),
                        SheetCell::Empty => Ok(()),
                    };
                    written.map_err(|e| fail(e.to_string()))?;
                }
            }
            book.save(path).map_err(|e| fail(e.to_string()))
        }
        _ => Err(SheetError::Kind { path: shown }),
    }
}
