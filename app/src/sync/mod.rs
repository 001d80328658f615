//! The device's side of sync: enrolment with a relay, and the driver that runs the shared
//! sans-IO session ([`fieldbook_shared::sync::device`]) over a WebSocket, once or for as long
//! as the app runs, reconnecting with backoff.

mod enroll;
mod link;
mod net;
mod replica;
mod team;

use std::sync::{Arc, Mutex};

pub use enroll::enroll;
pub use link::{RelayUrl, Trust, agent, client_config};
pub use net::{LinkState, Mode, SyncReport, run_background, sync_with_relay};
pub use replica::{Replica, Uploads};
use serde::{Deserialize, Serialize};
pub(crate) use team::TEAM_FRESHNESS;
pub use team::{TeamFreshness, fetch_team_freshness};

use crate::engine::{Engine, EngineError};
use crate::secrets;
use crate::store::DossierStore;

pub(crate) const RELAY_URL: &str = "relay.url";
/// Where older versions kept the device token (now with the secrets: see
/// [`Engine::keep_token_with_secrets`]).
const OLD_RELAY_TOKEN: &str = "relay.token";
pub(crate) const RELAY_TEAM: &str = "relay.team";
pub(crate) const RELAY_ROLE: &str = "relay.role";
/// A private CA's certificate (PEM) the device trusts at its relay.
pub(crate) const RELAY_CA: &str = "relay.ca_pem";
/// "1": plain http:// to another host was allowed at enrolment (`--insecure`).
pub(crate) const RELAY_INSECURE: &str = "relay.insecure";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    #[error(
        "this device is not enrolled with a relay yet (`fieldbook enroll <relay-url> <invite>`)"
    )]
    NotEnrolled,
    #[error("cannot reach the relay at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("cannot use the CA certificate {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("the relay at {host} cannot be trusted: {reason}")]
    Certificate { host: String, reason: String },
    #[error(
        "{url} is plain http:// to another machine: the device token and every dossier would \
         cross the network unencrypted; use https://, or enrol with --insecure on a network you \
         trust"
    )]
    Insecure { url: String },
    #[error("{}", revoked_message(*.wiped, .unsent))]
    Revoked {
        /// The replica and key were wiped (the team's policy).
        wiped: bool,
        /// What had not reached the relay (lost when wiped).
        unsent: crate::engine::Unsent,
    },
    #[error("the relay refused: {0}")]
    Refused(String),
    #[error(
        "the relay at {url} cannot take this sync now: {reason}. What this device holds is \
         kept and goes at the next sync"
    )]
    Busy { url: String, reason: String },
    #[error("the relay closed the connection ({code}): {reason}")]
    Closed { code: u16, reason: String },
    #[error("the relay sent something this device cannot read: {0}")]
    Protocol(String),
    #[error("the sync did not finish within {0} s")]
    TimedOut(u64),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<crate::store::StoreError> for SyncError {
    fn from(e: crate::store::StoreError) -> Self {
        SyncError::Engine(e.into())
    }
}

fn revoked_message(wiped: bool, unsent: &crate::engine::Unsent) -> String {
    let lost = match unsent.changes {
        0 => "every change made here had reached the relay".to_string(),
        n => format!(
            "{} in {} made here had not reached the relay",
            crate::words::count(n as usize, "change"),
            crate::words::count(unsent.dossiers as usize, "dossier")
        ),
    };
    if wiped {
        format!(
            "this device was revoked by the team's admin: {lost}; as the team's policy asks, \
             its copy of the team's dossiers and its key were wiped"
        )
    } else {
        format!(
            "this device was revoked by the team's admin ({lost}); its dossiers stay on it, \
             but it can no longer sync: enrol again with a new invite"
        )
    }
}

/// Where this device syncs, once enrolled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayConfig {
    pub url: String,
    pub token: String,
    #[serde(default)]
    pub trust: Trust,
}

impl SyncError {
    /// Trying again will not help until someone changes something (the relay's certificate,
    /// this device's enrolment): retry rarely, and say so.
    pub fn needs_a_fix(&self) -> bool {
        matches!(
            self,
            SyncError::Certificate { .. }
                | SyncError::CaFile { .. }
                | SyncError::Insecure { .. }
                | SyncError::Revoked { .. }
                | SyncError::Refused(_)
        )
    }
}

pub use fieldbook_shared::api::SyncStatus;

impl<S: DossierStore> Engine<S> {
    pub fn relay_config(&self) -> Result<Option<RelayConfig>, EngineError> {
        let store = self.store();
        let (Some(url), Some(token)) = (
            store.get_setting(RELAY_URL)?,
            self.secrets().get(secrets::RELAY_TOKEN)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(RelayConfig {
            url,
            token,
            trust: Trust {
                ca_pem: store.get_setting(RELAY_CA)?.filter(|pem| !pem.is_empty()),
                insecure: store.get_setting(RELAY_INSECURE)?.as_deref() == Some("1"),
            },
        }))
    }

    /// Move a device token an older version kept in the store's settings to the secrets.
    pub(crate) fn keep_token_with_secrets(&mut self) -> Result<(), EngineError> {
        let Some(token) = self
            .store()
            .get_setting(OLD_RELAY_TOKEN)?
            .filter(|t| !t.is_empty())
        else {
            return Ok(());
        };
        self.secrets().set(secrets::RELAY_TOKEN, &token)?;
        self.store_mut().set_setting(OLD_RELAY_TOKEN, "")?;
        Ok(())
    }

    /// Index up to `max` dossiers whose search text a sync stored for later, or left to be
    /// worked out again; returns how many remain. Search scans the stored text meanwhile, and
    /// finds the text indexed before for the others.
    pub fn index_pending(&mut self, max: usize) -> Result<u64, EngineError> {
        // Working text out again opens the document (milliseconds each): fewer at a time.
        for id in self.store().stale_text(max.div_ceil(10))? {
            let (version, text) = {
                let Some(mut open) = self.open_if_held(&id)? else {
                    self.store_mut().set_text(&id, -1, "")?;
                    continue;
                };
                let version = open.version().unwrap_or(-1);
                let text = open
                    .project(&id)
                    .map_err(|e| EngineError::Corrupt {
                        id: id.clone(),
                        reason: e.to_string(),
                    })?
                    .search_text;
                (version, text)
            };
            self.store_mut().set_text(&id, version, &text)?;
        }
        Ok(self.store_mut().index_pending(max)?)
    }

    /// The role this device was enrolled with; None when not enrolled (or a role this
    /// version cannot read, which gives no manager's views).
    pub fn relay_role(&self) -> Result<Option<fieldbook_shared::sync::wire::Role>, EngineError> {
        Ok(self
            .store()
            .get_setting(RELAY_ROLE)?
            .and_then(|r| r.parse().ok()))
    }

    pub fn sync_status(&self) -> Result<SyncStatus, EngineError> {
        let store = self.store();
        Ok(SyncStatus {
            relay: store.get_setting(RELAY_URL)?,
            team: store.get_setting(RELAY_TEAM)?,
            role: self.relay_role()?,
            unsynced_changes: store.unsynced_changes()?,
            unsynced_dossiers: store.unsynced()?.len() as u64,
            last_sync_ms: store
                .get_setting(replica::LAST_SYNC)?
                .and_then(|s| s.parse().ok()),
            unindexed: store.unindexed()?,
        })
    }
}

/// Access to the engine for the sync driver: borrowed outright by the CLI, shared behind a
/// mutex with the UI in the app. The driver holds it only while handling a batch of frames.
pub trait EngineHandle {
    type Store: DossierStore;
    fn with<T>(&mut self, f: impl FnOnce(&mut Engine<Self::Store>) -> T) -> T;
}

impl<S: DossierStore> EngineHandle for &mut Engine<S> {
    type Store = S;
    fn with<T>(&mut self, f: impl FnOnce(&mut Engine<S>) -> T) -> T {
        f(self)
    }
}

impl<S: DossierStore> EngineHandle for Arc<Mutex<Engine<S>>> {
    type Store = S;
    fn with<T>(&mut self, f: impl FnOnce(&mut Engine<S>) -> T) -> T {
        // A panic elsewhere while holding the lock leaves the engine as SQLite left it:
        // committed or not, never half-written.
        let mut engine = self.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut engine)
    }
}
