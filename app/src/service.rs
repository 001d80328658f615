//! The app's services: one [`Serve`] implementation per [`Call`] of the shared API, over the
//! engine and the background sync. Nothing here knows about Tauri, so tests drive exactly what
//! the window drives, without a webview; the Tauri commands are one-line wrappers.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use fieldbook_shared::api::{self, AppError, Call, ErrorKind, LinkState, Settings, Status};
use fieldbook_shared::board::{BoardInput, Dashboard, TeamBoard};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::engine::{Engine, EngineError};
use crate::store::DossierStore;
use crate::sync::{self, SyncError, TEAM_FRESHNESS, TeamFreshness};

const LANGUAGE: &str = "ui.language";
const ONBOARDED: &str = "ui.onboarded";
/// A list page holds at most this many rows: the UI asks for more as the rep scrolls.
const MAX_PAGE: u32 = 500;

/// Serve one kind of request.
pub trait Serve<C: Call> {
    fn serve(&self, call: C) -> Result<C::Reply, AppError>;
}

/// The device's services, shared by every window and the background sync.
#[derive(Clone)]
pub struct AppService {
    engine: Arc<Mutex<Engine>>,
    link: watch::Receiver<LinkState>,
    link_tx: Arc<Mutex<Option<watch::Sender<LinkState>>>>,
    stop: Arc<watch::Sender<bool>>,
    /// The team board, brought up to date from the store on each dashboard request.
    board: Arc<Mutex<TeamBoard>>,
}

impl From<EngineError> for AppError {
    fn from(e: EngineError) -> AppError {
        let kind = match &e {
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::Domain(_) | EngineError::BadId(_) => ErrorKind::Invalid,
            _ => ErrorKind::Storage,
        };
        AppError::new(kind, e.to_string())
    }
}

fn sync_error(e: SyncError) -> AppError {
    match e {
        SyncError::Engine(e) => e.into(),
        other => AppError::new(ErrorKind::Sync, other.to_string()),
    }
}

impl AppService {
    /// Open the device's store in `data_dir` (created on first use), its key kept by `secrets`.
    pub fn open(
        data_dir: &Path,
        secrets: &crate::secrets::Secrets,
        clock: Arc<dyn Clock>,
    ) -> Result<AppService, AppError> {
        Ok(AppService::new(Engine::open(data_dir, secrets, clock)?))
    }

    pub fn new(engine: Engine) -> AppService {
        let (link_tx, link) = watch::channel(LinkState::NotEnrolled);
        let (stop, _) = watch::channel(false);
        AppService {
            engine: Arc::new(Mutex::new(engine)),
            link,
            link_tx: Arc::new(Mutex::new(Some(link_tx))),
            stop: Arc::new(stop),
            board: Arc::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Engine) -> T) -> T {
        // A panic while holding the lock leaves the engine as SQLite left it (committed or
        // not), so carrying on is safe.
        let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut engine)
    }

    /// The sync that keeps this device up to date for as long as the app runs: connects when
    /// enrolled, sends each edit as it is saved, reconnects with backoff. Returns None if it
    /// was already started.
    pub fn background_sync(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let states = self.link_tx.lock().ok()?.take()?;
        Some(sync::run_background(
            self.engine.clone(),
            states,
            self.stop.subscribe(),
        ))
    }

    /// Ask the background sync to finish (closing the connection politely).
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    fn settings(&self) -> Result<Settings, AppError> {
        self.with(|e| {
            let store = e.store();
            let language = store
                .get_setting(LANGUAGE)?
                .and_then(|l| serde_json::from_value(serde_json::Value::String(l)).ok());
            let onboarded = store.get_setting(ONBOARDED)?.as_deref() == Some("true");
            Ok(Settings {
                language,
                onboarded,
            })
        })
        .map_err(|e: EngineError| e.into())
    }

    fn status(&self) -> Result<Status, AppError> {
        let link = self.link.borrow().clone();
        self.with(|e| {
            Ok(Status {
                user: e.identity().user.clone(),
                device: e.identity().device.clone(),
                today: e.today(),
                link,
                sync: e.sync_status()?,
                revision: e.store().changes_made(),
            })
        })
    }

    fn page(&self, query: &api::ListQuery) -> Result<api::DossierPage, AppError> {
        let mut query = query.clone();
        query.limit = Some(query.limit.unwrap_or(50).min(MAX_PAGE));
        if query.text.as_deref().is_some_and(|t| t.trim().is_empty()) {
            query.text = None;
        }
        self.with(|e| {
            Ok(api::DossierPage {
                rows: e.list(&query)?,
                total: e.count(&api::ListQuery {
                    limit: None,
                    offset: 0,
                    ..query.clone()
                })?,
            })
        })
    }

    fn view(&self, id: &str) -> Result<api::DossierView, AppError> {
        Ok(self.with(|e| e.dossier(id))?)
    }
}

impl Serve<api::Start> for AppService {
    fn serve(&self, call: api::Start) -> Result<api::Started, AppError> {
        Ok(api::Started {
            settings: self.settings()?,
            status: self.status()?,
            page: self.page(&call.query)?,
        })
    }
}

impl Serve<api::GetStatus> for AppService {
    fn serve(&self, _: api::GetStatus) -> Result<Status, AppError> {
        self.status()
    }
}

impl Serve<api::SaveSettings> for AppService {
    fn serve(&self, call: api::SaveSettings) -> Result<Settings, AppError> {
        self.with(|e| -> Result<(), EngineError> {
            let store = e.store_mut();
            if let Some(lang) = call.settings.language {
                let word = serde_json::to_value(lang)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                store.set_setting(LANGUAGE, &word)?;
            }
            store.set_setting(ONBOARDED, &call.settings.onboarded.to_string())?;
            Ok(())
        })?;
        self.settings()
    }
}

impl Serve<api::Enroll> for AppService {
    fn serve(&self, call: api::Enroll) -> Result<Status, AppError> {
        if call.relay_url.trim().is_empty() || call.invite.trim().is_empty() {
            return Err(AppError::new(
                ErrorKind::Invalid,
                "give the relay's address and the invite code",
            ));
        }
        // A team with a private CA gives its certificate in the join form, or points the app at
        // its file as it does the CLI.
        let mut trust = sync::Trust::default();
        let pasted = call
            .ca_pem
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        if let Some(pem) = pasted {
            trust = trust
                .with_ca_pem(pem, "given in the join form")
                .map_err(sync_error)?;
        } else if let Some(path) = std::env::var_os("FIELDBOOK_CA_FILE") {
            trust = trust.with_ca_file(Path::new(&path)).map_err(sync_error)?;
        }
        self.with(|e| sync::enroll(e, call.relay_url.trim(), &call.invite, &trust))
            .map_err(sync_error)?;
        self.with(|e| e.store_mut().set_setting(ONBOARDED, "true"))
            .map_err(EngineError::from)?;
        self.status()
    }
}

impl Serve<api::ListDossiers> for AppService {
    fn serve(&self, call: api::ListDossiers) -> Result<api::DossierPage, AppError> {
        self.page(&call.query)
    }
}

impl Serve<api::OpenDossier> for AppService {
    fn serve(&self, call: api::OpenDossier) -> Result<api::DossierView, AppError> {
        self.view(&call.id)
    }
}

impl Serve<api::CreateDossier> for AppService {
    fn serve(&self, call: api::CreateDossier) -> Result<String, AppError> {
        let named = call
            .fields
            .iter()
            .any(|a| a.path == "profile.name" && !a.value.trim().is_empty());
        if !named {
            return Err(AppError::new(
                ErrorKind::Invalid,
                "a new client needs a name",
            ));
        }
        Ok(self.with(|e| e.create_dossier(&call.fields))?)
    }
}

impl Serve<api::SetFields> for AppService {
    fn serve(&self, call: api::SetFields) -> Result<api::DossierView, AppError> {
        self.with(|e| e.set(&call.id, &call.fields))?;
        self.view(&call.id)
    }
}

impl Serve<api::AddItem> for AppService {
    fn serve(&self, call: api::AddItem) -> Result<api::Added, AppError> {
        let item = self.with(|e| e.add_item(&call.id, &call.collection, &call.fields))?;
        Ok(api::Added {
            item,
            view: self.view(&call.id)?,
        })
    }
}

impl Serve<api::DeleteItem> for AppService {
    fn serve(&self, call: api::DeleteItem) -> Result<api::DossierView, AppError> {
        self.with(|e| {
            if call.restore {
                e.restore(&call.id, &call.path)
            } else {
                e.delete(&call.id, &call.path)
            }
        })?;
        self.view(&call.id)
    }
}

impl Serve<api::RecordMeeting> for AppService {
    fn serve(&self, call: api::RecordMeeting) -> Result<api::MeetingRecorded, AppError> {
        Ok(self.with(|e| e.record_meeting(&call.id, &call.meeting))?)
    }
}

impl Serve<api::Resolve> for AppService {
    fn serve(&self, call: api::Resolve) -> Result<api::DossierView, AppError> {
        self.with(|e| e.resolve(&call.id, &call.path, &call.value))?;
        self.view(&call.id)
    }
}

impl Serve<api::History> for AppService {
    fn serve(
        &self,
        call: api::History,
    ) -> Result<Vec<fieldbook_shared::history::FieldChange>, AppError> {
        Ok(self.with(|e| e.history(&call.id, &call.path))?)
    }
}

impl AppService {
    /// The team's device reports: fresh from the relay for a manager's device unless it is
    /// known to be offline (then without waiting for a timeout), else the last ones fetched.
    fn team_freshness(&self) -> TeamFreshness {
        let connected = !matches!(*self.link.borrow(), LinkState::Offline { .. });
        let known = self.with(|e| -> Result<_, EngineError> {
            let cached = e
                .store()
                .get_setting(TEAM_FRESHNESS)?
                .and_then(|j| serde_json::from_str::<TeamFreshness>(&j).ok())
                .unwrap_or_default();
            let manager = e.relay_role()? == Some(fieldbook_shared::sync::wire::Role::Manager);
            // The token is read (from the keystore) only when it is to be used.
            let relay = if manager && connected {
                e.relay_config()?
            } else {
                None
            };
            Ok((cached, relay, e.now_ms()))
        });
        let Ok((cached, Some(relay), now_ms)) = known else {
            return known.map(|k| k.0).unwrap_or_default();
        };
        match sync::fetch_team_freshness(&relay) {
            Ok(devices) => {
                let fresh = TeamFreshness {
                    fetched_ms: Some(now_ms),
                    devices,
                };
                let json = serde_json::to_string(&fresh).unwrap_or_default();
                if let Err(e) = self.with(|e| e.store_mut().set_setting(TEAM_FRESHNESS, &json)) {
                    tracing::warn!("could not keep the team's freshness: {e}");
                }
                fresh
            }
            Err(e) => {
                tracing::warn!("team freshness: {e}");
                cached
            }
        }
    }
}

impl Serve<api::GetDashboard> for AppService {
    fn serve(&self, call: api::GetDashboard) -> Result<Dashboard, AppError> {
        let freshness = self.team_freshness();
        let mut board = self.board.lock().unwrap_or_else(|p| p.into_inner());
        let input = self.with(|e| -> Result<_, EngineError> {
            e.update_board(&mut board)?;
            Ok(BoardInput::asked(e.today(), e.now_ms(), call.quiet_days))
        })?;
        let mut dashboard = board.dashboard(&input, freshness.devices);
        dashboard.freshness_as_of_ms = freshness.fetched_ms;
        Ok(dashboard)
    }
}

impl Serve<api::AddNote> for AppService {
    fn serve(&self, call: api::AddNote) -> Result<api::DossierView, AppError> {
        self.with(|e| e.add_note(&call.id, &call.note))?;
        self.view(&call.id)
    }
}
