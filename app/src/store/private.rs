//! The device's data folder is the user's alone: the folder 0700 and the store's files 0600,
//! whatever the umask, so another account on a shared laptop cannot read the dossiers (the
//! usual umask 022 would leave them 0644 in a 0755 folder).

use std::path::Path;

use super::StoreError;

/// Create `dir` if missing and make it accessible to its owner only.
pub fn private_dir(dir: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    restrict(dir, 0o700).map_err(io)
}

/// Make the SQLite file `db` and its companions (`-wal`, `-shm`, `-journal`) owner-only,
/// creating `db` empty (and owner-only from its first moment) when missing. SQLite gives the
/// companions it creates later the main file's mode.
pub fn private_store_files(db: &Path) -> Result<(), StoreError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| StoreError::Io { path, source }
    };
    if !db.exists() {
        create_owner_only(db).map_err(io(db))?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = crate::files::with_suffix(db, suffix);
        if path.exists() {
            restrict(&path, 0o600).map_err(io(&path))?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(unix)]
fn create_owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

// Elsewhere the folder's ACLs, inherited from the user's profile, already keep others out.
#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn create_owner_only(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_open_folder_and_files_are_closed_to_others() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = data.join("store.sqlite");
        std::fs::write(&db, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let wal = data.join("store.sqlite-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o664)).unwrap();

        private_dir(&data).unwrap();
        private_store_files(&db).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);

        let fresh = data.join("new.sqlite");
        private_store_files(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o600);
    }
}
