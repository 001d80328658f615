//! Export and import: JSON for people (the dossier's content), Automerge files for machines
//! (the document with its full history, one `<id>.automerge` file per dossier).

use std::path::{Path, PathBuf};

use fieldbook_shared::Dossier;
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineError};
use crate::store::DossierStore;

pub const JSON_FORMAT: &str = "fieldbook-dossiers";
pub const JSON_VERSION: u32 = 1;
pub const DOC_EXTENSION: &str = "automerge";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a Fieldbook JSON export: {reason}")]
    NotAnExport { path: PathBuf, reason: String },
    #[error("{path}: a dossier file is named <id>.{DOC_EXTENSION}")]
    BadFileName { path: PathBuf },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExchangeError + '_ {
    move |source| ExchangeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JsonExport {
    pub format: String,
    pub version: u32,
    pub dossiers: Vec<ExportedDossier>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportedDossier {
    pub id: String,
    pub dossier: Dossier,
}

pub fn to_json<S: DossierStore>(
    engine: &Engine<S>,
    ids: &[String],
) -> Result<JsonExport, EngineError> {
    let dossiers = ids
        .iter()
        .map(|id| {
            Ok(ExportedDossier {
                id: id.clone(),
                dossier: engine.dossier(id)?.dossier,
            })
        })
        .collect::<Result<_, EngineError>>()?;
    Ok(JsonExport {
        format: JSON_FORMAT.into(),
        version: JSON_VERSION,
        dossiers,
    })
}

pub fn read_json(path: &Path) -> Result<JsonExport, ExchangeError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let export: JsonExport =
        serde_json::from_str(&text).map_err(|e| ExchangeError::NotAnExport {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if export.format != JSON_FORMAT || export.version > JSON_VERSION {
        return Err(ExchangeError::NotAnExport {
            path: path.to_path_buf(),
            reason: format!(
                "format `{}` version {} (this build reads `{JSON_FORMAT}` up to version {JSON_VERSION})",
                export.format, export.version
            ),
        });
    }
    Ok(export)
}

/// Write each dossier's document to `dir/<id>.automerge`; returns the files written.
pub fn write_documents<S: DossierStore>(
    engine: &Engine<S>,
    ids: &[String],
    dir: &Path,
) -> Result<Vec<PathBuf>, ExchangeError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for id in ids {
        let bytes = engine.export_document(id)?;
        let path = dir.join(format!("{id}.{DOC_EXTENSION}"));
        std::fs::write(&path, bytes).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// Read documents from one `<id>.automerge` file or every such file in a folder.
pub fn read_documents(path: &Path) -> Result<Vec<(String, Vec<u8>)>, ExchangeError> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io(path))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == DOC_EXTENSION))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    files
        .into_iter()
        .map(|file| {
            let id = file
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|_| file.extension().is_some_and(|x| x == DOC_EXTENSION))
                .ok_or_else(|| ExchangeError::BadFileName { path: file.clone() })?
                .to_string();
            let bytes = std::fs::read(&file).map_err(io(&file))?;
            Ok((id, bytes))
        })
        .collect()
}
