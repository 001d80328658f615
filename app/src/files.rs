//! Small file-system steps the store and the key file share.

use std::path::{Path, PathBuf};

/// `path` with `suffix` appended to its last component: `store.sqlite` → `store.sqlite-wal`.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Make a rename or creation in `path`'s folder durable (best effort: not every platform can
/// open a folder to sync it).
pub(crate) fn sync_parent_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A file's extension in lower case ("" without one): what kind of file the user gave.
pub(crate) fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}
