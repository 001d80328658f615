//! Teams, invites and device tokens. Secrets (invite codes, tokens) are shown once and
//! stored only as SHA-256 hashes.

use fieldbook_shared::sync::wire::{EnrollRequest, Enrolled, Role};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::store::{RelayStore, StoreError};

/// Unambiguous characters for codes people type (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 12;
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
    format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_codes_are_forgiving_to_type() {
        let code = new_invite_code();
        assert_eq!(code.len(), 14);
        assert_eq!(
            normalize_invite(&code.to_lowercase().replace('-', " ")),
            normalize_invite(&code)
        );
        assert_ne!(new_invite_code(), code);
        assert_eq!(new_token().len(), 64);
    }
}
