//! Teams, invites and device tokens. Secrets (invite codes, tokens) are shown once and
//! stored only as SHA-256 hashes.

use fieldbook_shared::sync::wire::{EnrollRequest, Enrolled, Role};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::store::{RelayStore, StoreError};

/// Unambiguous characters for codes people type (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// 20 characters of 31: 99 bits, typed as four groups of five.
const CODE_LEN: usize = 20;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    #[error("this invite code is unknown, already used or expired; ask for a new one")]
    BadInvite,
    #[error("a device name must be 1–64 characters")]
    BadDeviceName,
    #[error("a {0} name must be 1–64 characters, without control characters")]
    BadName(&'static str),
    #[error("a password must be at least 10 characters")]
    WeakPassword,
    #[error("no user `{0}` in this team (invite them first)")]
    NoUser(String),
    #[error(
        "`{0}` is a rep: only managers log in to the web view (reps use the app); invite them \
         again with --role manager to make them one"
    )]
    NotAManager(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

fn new_invite_code() -> String {
    let mut rng = rand::rng();
    let raw: String = (0..CODE_LEN)
        .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
        .collect();
    format!(
        "{}-{}-{}-{}",
        &raw[0..5],
        &raw[5..10],
        &raw[10..15],
        &raw[15..20]
    )
}

/// Codes are typed by people: case, dashes and spaces do not matter.
fn normalize_invite(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn check_name(kind: &'static str, name: &str) -> Result<(), AccountError> {
    let n = name.trim().chars().count();
    if n == 0 || n > 64 || name.chars().any(char::is_control) {
        return Err(AccountError::BadName(kind));
    }
    Ok(())
}

pub fn create_team(
    store: &mut dyn RelayStore,
    name: &str,
    now_ms: i64,
) -> Result<i64, AccountError> {
    check_name("team", name)?;
    Ok(store.create_team(name.trim(), now_ms)?)
}

/// Invite `user` (created on first invite) into `team`; returns the one-time code.
pub fn invite(
    store: &mut dyn RelayStore,
    team: &str,
    user: &str,
    role: Role,
    valid_days: u32,
    now_ms: i64,
) -> Result<String, AccountError> {
    check_name("user", user)?;
    let team_id = store
        .team_id(team)?
        .ok_or_else(|| StoreError::NoTeam(team.to_string()))?;
    let code = new_invite_code();
    let expires = now_ms.saturating_add(i64::from(valid_days.max(1)) * DAY_MS);
    store.create_invite(
        team_id,
        user.trim(),
        role,
        &hash_secret(&normalize_invite(&code)),
        expires,
    )?;
    Ok(code)
}

/// Enrol a device with an invite code: a new token, shown only in this answer.
pub fn enroll(
    store: &mut dyn RelayStore,
    request: &EnrollRequest,
    now_ms: i64,
) -> Result<Enrolled, AccountError> {
    let name = request.device_name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AccountError::BadDeviceName);
    }
    let token = new_token();
    let auth = store
        .redeem_invite(
            &hash_secret(&normalize_invite(&request.invite)),
            name,
            &hash_secret(&token),
            now_ms,
        )?
        .ok_or(AccountError::BadInvite)?;
    Ok(Enrolled {
        token,
        team: auth.team,
        user: auth.user,
        role: auth.role,
        device_id: auth.device_id,
    })
}

/// A manager's web password: at least 10 characters.
pub fn set_password(
    store: &mut dyn RelayStore,
    team: &str,
    user: &str,
    password: &str,
) -> Result<(), AccountError> {
    if password.chars().count() < 10 {
        return Err(AccountError::WeakPassword);
    }
    let team_id = store
        .team_id(team)?
        .ok_or_else(|| StoreError::NoTeam(team.to_string()))?;
    let user = user.trim();
    match store.role_of(team_id, user)? {
        None => return Err(AccountError::NoUser(user.to_string())),
        // Only managers log in to the web view: a rep's password would only be refused there.
        Some(Role::Rep) => return Err(AccountError::NotAManager(user.to_string())),
        Some(Role::Manager) => {}
    }
    if !store.set_password(team_id, user, &hash_password(password))? {
        return Err(AccountError::NoUser(user.to_string()));
    }
    Ok(())
}

fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .expect("argon2 with default parameters hashes any password")
}

/// argon2 checks that may run at once: each holds about 19 MiB and a core for tens of
/// milliseconds, so a flood of logins (each under a new name, which the per-account throttle
/// does not see) must queue rather than take the relay's memory and every core.
pub const PASSWORD_CHECKS_AT_ONCE: usize = 2;

/// The relay's password checks: a few slots, each with argon2's working memory allocated once
/// and reused. (Allocated and freed per login, the allocator kept dozens of those 19 MiB
/// buffers: 128 logins left the relay at 800 MiB even two at a time.)
pub struct PasswordChecks {
    slots: tokio::sync::Semaphore,
    memory: std::sync::Mutex<Vec<Vec<argon2::Block>>>,
}

impl Default for PasswordChecks {
    fn default() -> Self {
        PasswordChecks {
            slots: tokio::sync::Semaphore::new(PASSWORD_CHECKS_AT_ONCE),
            memory: std::sync::Mutex::new(Vec::new()),
        }
    }
}

/// A turn to check one password, with its working memory (given back when dropped).
pub struct CheckSlot<'a> {
    checks: &'a PasswordChecks,
    _turn: tokio::sync::SemaphorePermit<'a>,
    memory: Vec<argon2::Block>,
}

impl PasswordChecks {
    /// Wait up to `wait` for a free slot; None when none came free.
    pub async fn slot(&self, wait: std::time::Duration) -> Option<CheckSlot<'_>> {
        let turn = tokio::time::timeout(wait, self.slots.acquire())
            .await
            .ok()?
            .ok()?;
        let memory = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        Some(CheckSlot {
            checks: self,
            _turn: turn,
            memory,
        })
    }
}

impl Drop for CheckSlot<'_> {
    fn drop(&mut self) {
        let memory = std::mem::take(&mut self.memory);
        self.checks
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(memory);
    }
}

impl CheckSlot<'_> {
    /// Whether `password` matches the stored PHC hash (an unreadable hash matches nothing).
    pub fn verify(&mut self, password: &str, hash: &str) -> bool {
        verify_in(password, hash, &mut self.memory)
    }

    /// Spend the time (and memory) a real check takes, for a user who does not exist.
    pub fn verify_nobody(&mut self, password: &str) {
        let _ = self.verify(password, nobody());
    }
}

/// [`verify_password`] in `memory` (grown to what the hash's parameters ask, then kept).
fn verify_in(password: &str, hash: &str, memory: &mut Vec<argon2::Block>) -> bool {
    use argon2::password_hash::{Output, PasswordHash};
    use argon2::{Algorithm, Argon2, Params, Version};
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    // A stored hash asking for more than a default one is refused rather than allocated.
    let blocks = params.block_count();
    if blocks > Params::DEFAULT_M_COST as usize * 4 {
        return false;
    }
    memory.resize(blocks, argon2::Block::default());
    let argon2 = Argon2::new(algorithm, version, params);
    Output::init_with(expected.len(), |out| {
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..blocks])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    // Output's equality is constant-time.
    .is_ok_and(|computed| computed == expected)
}

fn nobody() -> &'static str {
    static NOBODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NOBODY.get_or_init(|| hash_password("nobody's password"))
}

/// Whether `password` matches the stored PHC hash (an unreadable hash matches nothing).
pub fn verify_password(password: &str, hash: &str) -> bool {
    verify_in(password, hash, &mut Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_codes_are_forgiving_to_type() {
        let code = new_invite_code();
        assert_eq!(code.len(), 23, "{code}");
        // At least 80 bits of chance: 20 characters of an alphabet of 31.
        assert!(CODE_LEN as f64 * (CODE_ALPHABET.len() as f64).log2() >= 80.0);
        assert_eq!(
            normalize_invite(&code.to_lowercase().replace('-', " ")),
            normalize_invite(&code)
        );
        assert_ne!(new_invite_code(), code);
        assert_eq!(new_token().len(), 64);
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"), "a PHC string: {hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert_ne!(hash_password("correct horse battery"), hash, "salted");
    }
}
