//! A client list read from a file as a [`Table`]: CSV in whatever encoding Excel or an old
//! CRM wrote it (UTF-8, UTF-8 with a BOM, GBK/GB18030, UTF-16), or a workbook (`.xlsx`,
//! `.xlsm`, `.xls`, `.xlsb`, `.ods`).

use std::path::Path;

use calamine::{Data, Reader};
use fieldbook_shared::import::Table;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is neither UTF-8 nor GBK/GB18030 text (byte {at} does not read in either); \
         save it from Excel as \"CSV UTF-8\" and try again"
    )]
    Encoding { path: String, at: usize },
    #[error("{path}, line {line}: {reason}")]
    Csv {
        path: String,
        line: u64,
        reason: String,
    },
    #[error("cannot read the workbook {path}: {reason}")]
    Workbook { path: String, reason: String },
    #[error("{path} has no sheet called {sheet:?}; its sheets are {sheets}")]
    NoSuchSheet {
        path: String,
        sheet: String,
        sheets: String,
    },
    #[error("{path} holds no rows")]
    Empty { path: String },
    #[error(
        "{path}: a .{extension} file is not a client list this import reads; give a .csv, \
         .xlsx, .xls, .xlsb or .ods file"
    )]
    Kind { path: String, extension: String },
}

/// A table read from a file, and how its bytes were read.
#[derive(Debug, Clone)]
pub struct ReadTable {
    pub table: Table,
    /// "UTF-8", "UTF-8 with BOM", "GBK/GB18030", "UTF-16LE"…; or "workbook, sheet NAME".
    pub source: String,
}

/// Read `path` (the sheet named `sheet`, or the first, of a workbook).
pub fn read_table(path: &Path, sheet: Option<&str>) -> Result<ReadTable, FileError> {
    let shown = path.display().to_string();
    let extension = crate::files::extension(path);
    match extension.as_str() {
        "csv" | "txt" | "tsv" => {
            let bytes = std::fs::read(path).map_err(|source| FileError::Io {
                path: shown.clone(),
                source,
            })?;
            read_csv(&shown, &bytes, extension == "tsv")
        }
        "xlsx" | "xlsm" | "xls" | "xlsb" | "ods" => read_workbook(path, &shown, sheet),
        _ => Err(FileError::Kind {
            path: shown,
            extension,
        }),
    }
}

/// Text of a CSV file's bytes, and the encoding it was read in: a BOM says so; else UTF-8 if
/// the bytes are valid UTF-8; else GB18030 (a superset of GBK, what Chinese Excel writes) if
/// they read in it without a single replacement.
fn decode(path: &str, bytes: &[u8]) -> Result<(String, String), FileError> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
        if !had_errors {
            let name = if encoding == encoding_rs::UTF_8 {
                "UTF-8 with BOM".to_string()
            } else {
                encoding.name().to_string()
            };
            return Ok((text.into_owned(), name));
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok((text.to_string(), "UTF-8".into())),
        Err(utf8) => {
            let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
            if had_errors {
                return Err(FileError::Encoding {
                    path: path.to_string(),
                    at: utf8.valid_up_to(),
                });
            }
            Ok((text.into_owned(), "GBK/GB18030".into()))
        }
    }
}

fn read_csv(path: &str, bytes: &[u8], tabs: bool) -> Result<ReadTable, FileError> {
    let (text, encoding) = decode(path, bytes)?;
    // Excel's "Unicode text" is tab-separated; so is a CSV whose first line has tabs only.
    let first = text.lines().next().unwrap_or("");
    let delimiter = if tabs || (first.contains('\t') && !first.contains(',')) {
        b'\t'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| FileError::Csv {
            path: path.to_string(),
            line: e.position().map_or(0, |p| p.line()),
            reason: e.to_string(),
        })?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    table(path, rows, encoding)
}

fn read_workbook(path: &Path, shown: &str, sheet: Option<&str>) -> Result<ReadTable, FileError> {
    // calamine panics on some damaged workbooks (found by fuzzing: an arithmetic overflow on a
    // cell reference of too many letters): a damaged file is an error to report, not a crash.
    std::panic::catch_unwind(|| read_workbook_unguarded(path, shown, sheet)).unwrap_or_else(|_| {
        Err(FileError::Workbook {
            path: shown.to_string(),
            reason: "the file is damaged (its reader failed on it)".into(),
        })
    })
}

fn read_workbook_unguarded(
    path: &Path,
    shown: &str,
    sheet: Option<&str>,
) -> Result<ReadTable, FileError> {
    let bad = |e: calamine::Error| FileError::Workbook {
        path: shown.to_string(),
        reason: e.to_string(),
    };
    let mut workbook = calamine::open_workbook_auto(path).map_err(bad)?;
    let names = workbook.sheet_names();
    let name = match sheet {
        Some(wanted) => names
            .iter()
            .find(|n| n.as_str() == wanted)
            .cloned()
            .ok_or_else(|| FileError::NoSuchSheet {
                path: shown.to_string(),
                sheet: wanted.to_string(),
                sheets: names.join(", "),
            })?,
        None => names.first().cloned().ok_or_else(|| FileError::Empty {
            path: shown.to_string(),
        })?,
    };
    let range = workbook.worksheet_range(&name).map_err(bad)?;
    let rows = range.rows().map(|r| r.iter().map(cell_text).collect());
    table(shown, rows.collect(), format!("workbook, sheet {name:?}"))
}

/// A workbook cell as the text a user sees: whole numbers without ".0", dates as days.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) if d.is_datetime() => {
            let (y, m, day, h, min, _, _) = d.to_ymd_hms_milli();
            if (h, min) == (0, 0) {
                format!("{y:04}-{m:02}-{day:02}")
            } else {
                format!("{y:04}-{m:02}-{day:02} {h:02}:{min:02}")
            }
        }
        Data::DateTime(d) => d.as_f64().to_string(),
    }
}

/// The first row with anything in it is the header; blank rows above it are dropped.
fn table(path: &str, rows: Vec<Vec<String>>, source: String) -> Result<ReadTable, FileError> {
    let mut rows = rows
        .into_iter()
        .skip_while(|r| r.iter().all(|c| c.trim().is_empty()));
    let headers: Vec<String> = rows
        .next()
        .ok_or_else(|| FileError::Empty {
            path: path.to_string(),
        })?
        .into_iter()
        .map(|h| h.trim().to_string())
        .collect();
    Ok(ReadTable {
        table: Table {
            headers,
            rows: rows.collect(),
        },
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_read_in_the_encoding_it_was_written_in() {
        let text = "公司名称,联系人\n华东重工,王总\n";
        let utf8 = read_csv("a.csv", text.as_bytes(), false).unwrap();
        assert_eq!(utf8.source, "UTF-8");
        assert_eq!(utf8.table.headers, ["公司名称", "联系人"]);
        assert_eq!(utf8.table.rows, [["华东重工", "王总"]]);

        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        let read = read_csv("a.csv", &bom, false).unwrap();
        assert_eq!(read.source, "UTF-8 with BOM");
        assert_eq!(
            read.table.headers[0], "公司名称",
            "the BOM is not part of the header"
        );

        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        let read = read_csv("a.csv", &gbk, false).unwrap();
        assert_eq!(read.source, "GBK/GB18030");
        assert_eq!(read.table.rows, utf8.table.rows);

        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "公司名称\t联系人\n华东重工\t王总\n"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        let read = read_csv("a.txt", &utf16, false).unwrap();
        assert_eq!(read.source, "UTF-16LE");
        assert_eq!(read.table.rows, utf8.table.rows, "tab-separated");

        let err = read_csv("bad.csv", &[0x81, 0x20, 0xFF, 0xFF], false).unwrap_err();
        assert!(err.to_string().contains("neither UTF-8 nor GBK"), "{err}");
    }

    #[test]
    fn quoted_cells_ragged_rows_and_blank_lines_above_the_header() {
        let text = "\n,,\n公司名称,地址\n\"Acme, Inc.\",\"line 1\nline 2\"\n短行\n";
        let read = read_csv("a.csv", text.as_bytes(), false).unwrap();
        assert_eq!(read.table.headers, ["公司名称", "地址"]);
        assert_eq!(read.table.rows[0], ["Acme, Inc.", "line 1\nline 2"]);
        assert_eq!(read.table.rows[1], ["短行"]);
        assert!(matches!(
            read_csv("e.csv", b"\n\n", false),
            Err(FileError::Empty { .. })
        ));
    }
}
