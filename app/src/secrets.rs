//! The device's secrets: the key its store is encrypted with, and the token it syncs with.
//!
//! They are kept in the OS keystore (Secret Service on Linux, Keychain, Windows Credential
//! Manager). Where none is reachable (a headless box, CI without a desktop session) they are
//! kept in a key file the user names, created owner-only. Never in the store itself, and never
//! silently nowhere: without either, opening the store is an error that says what to do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::RngCore;

/// The secret that encrypts the store (64 hex digits: 256 bits).
pub const STORE_KEY: &str = "store-key";
/// The token the relay gave this device at enrolment.
pub const RELAY_TOKEN: &str = "relay-token";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    #[error(
        "no OS keystore is reachable here ({reason}); keep the store's key in a file instead: \
         --key-file PATH or FIELDBOOK_KEY_FILE (created, owner-only, when missing)"
    )]
    NoKeystore { reason: String },
    #[error("the OS keystore failed: {0}")]
    Keystore(String),
    #[error("the key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("the store key kept in {keeper} is damaged (not 64 hex digits)")]
    BadKey { keeper: String },
}

/// Where secrets are kept.
pub trait SecretKeeper: Send + Sync {
    fn get(&self, name: &str) -> Result<Option<String>, SecretsError>;
    fn set(&self, name: &str, value: &str) -> Result<(), SecretsError>;
    fn delete(&self, name: &str) -> Result<(), SecretsError>;
    /// In words, for `fieldbook status`: "the OS keystore", "the key file /…".
    fn describe(&self) -> String;
}

/// The device's secret keeper, shared by the engine and the sync driver.
#[derive(Clone)]
pub struct Secrets(Arc<dyn SecretKeeper>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({})", self.0.describe())
    }
}

impl Secrets {
    /// The key file at `path` if given, else the OS keystore (an error when unreachable).
    pub fn for_device(data_dir: &Path, key_file: Option<&Path>) -> Result<Secrets, SecretsError> {
        match key_file {
            Some(path) => Ok(Secrets::key_file(path)),
            None => Ok(Secrets(Arc::new(Keystore::reachable(data_dir)?))),
        }
    }

    /// As [`Secrets::for_device`], with the key file from `FIELDBOOK_KEY_FILE` (the app).
    pub fn from_env(data_dir: &Path) -> Result<Secrets, SecretsError> {
        let key_file = std::env::var_os("FIELDBOOK_KEY_FILE").map(PathBuf::from);
        Secrets::for_device(data_dir, key_file.as_deref())
    }

    pub fn key_file(path: &Path) -> Secrets {
        Secrets(Arc::new(KeyFile {
            path: path.to_path_buf(),
            lock: Mutex::new(()),
        }))
    }

    /// A key file beside the data folder (`<folder>.key`): for benches, tests and demos,
    /// which run where no keystore is.
    pub fn key_file_beside(data_dir: &Path) -> Secrets {
        Secrets::key_file(&key_file_beside(data_dir))
    }

    /// Secrets that live as long as this value (an in-memory store, tests).
    pub fn in_memory() -> Secrets {
        Secrets(Arc::new(InMemory::default()))
    }

    pub fn get(&self, name: &str) -> Result<Option<String>, SecretsError> {
        self.0.get(name)
    }

    pub fn set(&self, name: &str, value: &str) -> Result<(), SecretsError> {
        self.0.set(name, value)
    }

    pub fn delete(&self, name: &str) -> Result<(), SecretsError> {
        self.0.delete(name)
    }

    pub fn describe(&self) -> String {
        self.0.describe()
    }

    /// The store's key, if one is kept.
    pub fn store_key(&self) -> Result<Option<StoreKey>, SecretsError> {
        let Some(hex) = self.get(STORE_KEY)? else {
            return Ok(None);
        };
        StoreKey::from_hex(hex.trim())
            .map(Some)
            .ok_or_else(|| SecretsError::BadKey {
                keeper: self.describe(),
            })
    }

    /// A new random key, kept before it is returned (so nothing is ever encrypted under a key
    /// that was not kept).
    pub fn new_store_key(&self) -> Result<StoreKey, SecretsError> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let key = StoreKey(bytes);
        self.set(STORE_KEY, &key.hex())?;
        Ok(key)
    }
}

/// `<folder>.key` beside the data folder `data_dir`.
pub fn key_file_beside(data_dir: &Path) -> PathBuf {
    crate::files::with_suffix(data_dir, ".key")
}

/// The 256-bit key of an encrypted store.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreKey([u8; 32]);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(…)")
    }
}

impl StoreKey {
    pub fn from_hex(hex: &str) -> Option<StoreKey> {
        let bytes = hex::decode(hex).ok()?;
        Some(StoreKey(bytes.try_into().ok()?))
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// The OS keystore, one entry per secret and data folder (two stores on one machine, say a
/// test's and the user's, keep apart).
struct Keystore {
    scope: String,
}

impl Keystore {
    fn reachable(data_dir: &Path) -> Result<Keystore, SecretsError> {
        if let Err(e) = keyring::Entry::store_status() {
            return Err(SecretsError::NoKeystore {
                reason: e.to_string(),
            });
        }
        // The folder as an absolute path: the same store, however it is named.
        let scope = std::path::absolute(data_dir)
            .unwrap_or_else(|_| data_dir.to_path_buf())
            .display()
            .to_string();
        Ok(Keystore { scope })
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, SecretsError> {
        keyring::Entry::new("fieldbook", &format!("{name}@{}", self.scope))
            .map_err(|e| SecretsError::Keystore(e.to_string()))
    }
}

impl SecretKeeper for Keystore {
    fn get(&self, name: &str) -> Result<Option<String>, SecretsError> {
        match self.entry(name)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(SecretsError::Keystore(e.to_string())),
        }
    }

    fn set(&self, name: &str, value: &str) -> Result<(), SecretsError> {
        self.entry(name)?
            .set_password(value)
            .map_err(|e| SecretsError::Keystore(e.to_string()))
    }

    fn delete(&self, name: &str) -> Result<(), SecretsError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(SecretsError::Keystore(e.to_string())),
        }
    }

    fn describe(&self) -> String {
        "the OS keystore".into()
    }
}

/// A JSON object of secrets in a file only its owner may read, rewritten whole (a temporary
/// file renamed over it) so that a crash leaves the old file or the new, never half of one.
struct KeyFile {
    path: PathBuf,
    lock: Mutex<()>,
}

impl KeyFile {
    fn error(&self, reason: impl std::fmt::Display) -> SecretsError {
        SecretsError::KeyFile {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    fn read(&self) -> Result<BTreeMap<String, String>, SecretsError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| self.error(format!("not a Fieldbook key file ({e})"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn write(&self, secrets: &BTreeMap<String, String>) -> Result<(), SecretsError> {
        use std::io::Write;
        let json = serde_json::to_vec_pretty(secrets).map_err(|e| self.error(e))?;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| self.error(e))?;
        let tmp = crate::files::with_suffix(&self.path, ".new");
        let mut file = owner_only_file(&tmp).map_err(|e| self.error(e))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(|e| self.error(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.error(e))?;
        // The rename itself on disk before a store is encrypted under the key in it.
        crate::files::sync_parent_dir(&self.path);
        Ok(())
    }
}

impl SecretKeeper for KeyFile {
    fn get(&self, name: &str) -> Result<Option<String>, SecretsError> {
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self.read()?.get(name).cloned())
    }

    fn set(&self, name: &str, value: &str) -> Result<(), SecretsError> {
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.read()?;
        all.insert(name.to_string(), value.to_string());
        self.write(&all)
    }

    fn delete(&self, name: &str) -> Result<(), SecretsError> {
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.read()?;
        if all.remove(name).is_some() {
            self.write(&all)?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("the key file {}", self.path.display())
    }
}

#[cfg(unix)]
fn owner_only_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // A leftover from an earlier attempt keeps its mode: set it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn owner_only_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[derive(Default)]
struct InMemory(Mutex<BTreeMap<String, String>>);

impl SecretKeeper for InMemory {
    fn get(&self, name: &str) -> Result<Option<String>, SecretsError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned())
    }

    fn set(&self, name: &str, value: &str) -> Result<(), SecretsError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.into(), value.into());
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), SecretsError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        Ok(())
    }

    fn describe(&self) -> String {
        "memory only".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_owner_only_and_keeps_every_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("device.key");
        let secrets = Secrets::key_file(&path);
        assert_eq!(secrets.store_key().unwrap(), None);
        let key = secrets.new_store_key().unwrap();
        secrets.set(RELAY_TOKEN, "t0ken").unwrap();
        let again = Secrets::key_file(&path);
        assert_eq!(again.store_key().unwrap(), Some(key));
        assert_eq!(again.get(RELAY_TOKEN).unwrap().as_deref(), Some("t0ken"));
        again.delete(RELAY_TOKEN).unwrap();
        assert_eq!(secrets.get(RELAY_TOKEN).unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        std::fs::write(&path, "garbage").unwrap();
        let e = Secrets::key_file(&path).store_key().unwrap_err();
        assert!(e.to_string().contains("not a Fieldbook key file"), "{e}");
        std::fs::write(&path, r#"{"store-key": "abc"}"#).unwrap();
        let e = Secrets::key_file(&path).store_key().unwrap_err();
        assert!(matches!(e, SecretsError::BadKey { .. }), "{e}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"store-key": "abc"}"#
        );
    }
}
