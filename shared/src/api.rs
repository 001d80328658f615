//! The app's API: every request the UI makes, with its reply type, shared by the UI (wasm) and
//! whoever serves it — the Tauri commands on a device, the relay's HTTP API in a browser. Each
//! request names itself ([`Call::NAME`]), so the two ends cannot disagree on a string.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::board::{Dashboard, ManagerNote};
use crate::conflict::Conflict;
use crate::history::FieldChange;
use crate::patch::Assignment;
use crate::summary::DossierSummary;
use crate::sync::wire::Role;
use crate::{Day, Dossier, FollowUpKind, FunnelBand, InteractionKind, Stage};

/// A request the UI can make. `NAME` is the Tauri command (and HTTP route) that serves it.
pub trait Call: Serialize + DeserializeOwned {
    const NAME: &'static str;
    type Reply: Serialize + DeserializeOwned;
}

/// What went wrong, in words a rep understands, with a kind the UI can act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// What was typed does not fit the field (fix the input, nothing was saved).
    Invalid,
    NotFound,
    /// The device's storage failed (disk full, damaged file): nothing was saved.
    Storage,
    /// The relay could not be reached or refused.
    Sync,
    /// The backend could not be reached at all (the UI's own transport).
    Transport,
    /// Not logged in, or the session ended (the relay's web view): log in again.
    Unauthorized,
    /// Logged in, but this is not for this user (a rep in the manager's web view, an edit
    /// the web view does not offer).
    Forbidden,
    /// Too many wrong passwords for this account: its login is closed for a while.
    TooManyAttempts,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> AppError {
        AppError {
            kind,
            message: message.into(),
        }
    }
}

/// The interface language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    Zh,
    En,
}

/// Per-device preferences kept in the local store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// None until the user chose on first run.
    pub language: Option<Lang>,
    /// The user finished first run (enrolled, or chose to work offline).
    pub onboarded: bool,
}

/// Which dossiers to list, and which page; what needs doing first comes first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    pub owner: Option<String>,
    /// Dossiers with a live deal at this stage.
    pub stage: Option<Stage>,
    /// Dossiers with an open deal in this funnel band.
    pub band: Option<FunnelBand>,
    /// Dossiers with a follow-up due before this day and not done.
    pub overdue_on: Option<Day>,
    /// Dossiers with no interaction on or after this day.
    pub not_contacted_since: Option<Day>,
    pub include_archived: bool,
    /// Restrict to dossiers matching this full-text query.
    pub text: Option<String>,
    pub limit: Option<u32>,
    pub offset: u32,
}

/// A dossier as a user sees it: the content and what still needs resolving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DossierView {
    pub id: String,
    pub dossier: Dossier,
    pub conflicts: Vec<Conflict>,
}

/// The quick "record a meeting" capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Meeting {
    pub date: Option<Day>,
    pub time: String,
    pub kind: Option<InteractionKind>,
    /// Person ids of the client people present.
    pub client_participants: Vec<String>,
    pub our_participants: Vec<String>,
    pub notes: String,
    pub demand: String,
    pub problem: String,
    pub benefit_points: String,
    pub key_person_info: String,
    pub next_step: String,
    pub next_step_due: Option<Day>,
    pub next_step_kind: Option<FollowUpKind>,
    pub deal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeetingRecorded {
    pub interaction: String,
    pub follow_up: Option<String>,
}

/// The link to the relay as the UI shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LinkState {
    NotEnrolled,
    Connecting,
    /// Connected; `remaining` dossiers still to exchange (0: up to date).
    Connected {
        remaining: usize,
    },
    /// Not connected; the last error in words, and when the next attempt is.
    Offline {
        error: Option<String>,
        retry_in_ms: u64,
    },
}

/// What a rep sees of sync: enrolled or not, what waits to be sent, when it last completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    pub relay: Option<String>,
    pub team: Option<String>,
    pub role: Option<Role>,
    /// Local changes the relay has not acknowledged.
    pub unsynced_changes: u64,
    /// Dossiers holding them.
    pub unsynced_dossiers: u64,
    pub last_sync_ms: Option<i64>,
    /// Dossiers received whose text is not in the search index yet.
    pub unindexed: u64,
}

/// Everything the status bar shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub user: String,
    pub device: String,
    pub today: Day,
    pub link: LinkState,
    pub sync: SyncStatus,
    /// Changes whenever any dossier on this device changes (local edit or sync), so a view
    /// knows to reload.
    pub revision: u64,
}

/// One page of the dossier list and how many match in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DossierPage {
    pub rows: Vec<DossierSummary>,
    pub total: u64,
}

/// Everything the first screen needs, in one round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Started {
    pub settings: Settings,
    pub status: Status,
    pub page: DossierPage,
}

macro_rules! calls {
    ($($(#[$meta:meta])* $name:ident $body:tt => $reply:ty, $wire:literal;)+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name $body
        impl Call for $name {
            const NAME: &'static str = $wire;
            type Reply = $reply;
        }
    )+
        /// Every call's name, for registering handlers and checking that none is missing.
        pub const CALL_NAMES: &[&str] = &[$($wire,)+];
    };
}

calls! {
    /// Open the app: settings, status and the first page of dossiers.
    Start { pub query: ListQuery } => Started, "start";
    GetStatus {} => Status, "status";
    SaveSettings { pub settings: Settings } => Settings, "save_settings";
    /// Join a team with the relay's address and an invite code, trusting the team's own CA
    /// certificate (PEM) when its relay's certificate is not from a public one.
    Enroll {
        pub relay_url: String,
        pub invite: String,
        #[serde(default)]
        pub ca_pem: Option<String>,
    } => Status, "enroll";
    ListDossiers { pub query: ListQuery } => DossierPage, "list_dossiers";
    OpenDossier { pub id: String } => DossierView, "open_dossier";
    /// Create a dossier from field assignments (`profile.name` at least); replies its id.
    CreateDossier { pub fields: Vec<Assignment> } => String, "create_dossier";
    /// Set fields by path; replies the dossier as saved.
    SetFields { pub id: String, pub fields: Vec<Assignment> } => DossierView, "set_fields";
    /// Add an item to a collection (`people`, `deals.<id>.checklist`…).
    AddItem { pub id: String, pub collection: String, pub fields: Vec<Assignment> } => Added, "add_item";
    /// Delete (tombstone) an item, or restore it.
    DeleteItem { pub id: String, pub path: String, pub restore: bool } => DossierView, "delete_item";
    RecordMeeting { pub id: String, pub meeting: Meeting } => MeetingRecorded, "record_meeting";
    /// Settle a conflicting field on one value (offered or new).
    Resolve { pub id: String, pub path: String, pub value: serde_json::Value } => DossierView, "resolve";
    History { pub id: String, pub path: String } => Vec<FieldChange>, "history";
    /// The manager's team dashboard (clients quiet for `quiet_days`, 30 when None).
    GetDashboard { pub quiet_days: Option<u32> } => Dashboard, "dashboard";
    /// A comment on a dossier, optionally assigning a follow-up to a rep.
    AddNote { pub id: String, pub note: ManagerNote } => DossierView, "add_note";
}

/// Log in to the relay's web view (browser only: not a command of the app).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Login {
    pub team: String,
    pub user: String,
    pub password: String,
}

impl Call for Login {
    const NAME: &'static str = "login";
    type Reply = Status;
}

/// Revoke one of the team's devices (the manager's web view only): its token stops working,
/// its open connection closes, and on its next contact it learns so (and wipes its replica
/// when the team's policy says so).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokeDevice {
    /// [`crate::board::DeviceFreshness::id`].
    pub device: i64,
}

impl Call for RevokeDevice {
    const NAME: &'static str = "revoke_device";
    type Reply = ();
}

/// Choose what the team's reps see of its dossiers (the manager's web view only); replies the
/// policy now. Reps' devices catch up on their next sync: those of a rep who may no longer
/// see a dossier send what they had not synced of it and remove it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetVisibility {
    pub visibility: crate::sync::wire::Visibility,
}

impl Call for SetVisibility {
    const NAME: &'static str = "set_visibility";
    type Reply = crate::sync::wire::Visibility;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logout {}

impl Call for Logout {
    const NAME: &'static str = "logout";
    type Reply = ();
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Added {
    pub item: String,
    pub view: DossierView,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_names_are_unique_identifiers() {
        let mut seen = std::collections::HashSet::new();
        for name in CALL_NAMES {
            assert!(seen.insert(name), "{name} twice");
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        assert_eq!(ListDossiers::NAME, "list_dossiers");
    }

    #[test]
    fn errors_round_trip_as_json() {
        let e = AppError::new(ErrorKind::Invalid, "bad date");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"kind":"invalid","message":"bad date"}"#);
        assert_eq!(serde_json::from_str::<AppError>(&json).unwrap(), e);
    }
}
