//! What a manager reads of the team on the relay: the board of each team kept in memory and
//! caught up from the store's change sequence on each request (one pass over the projections
//! written since, never a document load), dossiers opened for a drill-down, and the manager's
//! note written into a dossier like any device's change.

use automerge::{ActorId, AutoCommit};
use fieldbook_shared::api::{self, AppError, DossierPage, DossierView, ErrorKind, ListQuery};
use fieldbook_shared::board::{
    BoardInput, BoardRow, Dashboard, DeviceFreshness, ManagerNote, NoteIds, TeamBoard,
};
use fieldbook_shared::document::{self, Writer};
use fieldbook_shared::history::FieldChange;
use fieldbook_shared::summary::{Projection, project};
use fieldbook_shared::sync::wire::Visibility;
use fieldbook_shared::{Author, Day, conflict, history};
use sha2::{Digest, Sha256};

use crate::http::{AppState, now_ms};
use crate::replica::{EditError, TeamReplica};
use crate::store::{StoreError, TeamId, WebAuth};

fn storage(e: StoreError) -> AppError {
    tracing::error!("store: {e}");
    AppError::new(ErrorKind::Storage, "the relay's database failed; try again")
}

fn corrupt(id: &str, e: impl std::fmt::Display) -> AppError {
    tracing::error!(doc = %id, "stored dossier unreadable: {e}");
    AppError::new(
        ErrorKind::Storage,
        format!("the dossier {id} cannot be read"),
    )
}

/// Today on the relay: UTC, unless set (tests pin it, like the app's `FIELDBOOK_TODAY`).
pub fn today(relay: &AppState) -> Day {
    relay.web.today.unwrap_or_else(|| {
        chrono::DateTime::from_timestamp_millis(now_ms())
            .map(|t| Day::from(t.date_naive()))
            .unwrap_or_else(|| Day::from_ymd(1970, 1, 1).expect("a valid date"))
    })
}

/// Run `f` on the team's board once it holds everything committed so far.
fn with_board<T>(
    relay: &AppState,
    team: TeamId,
    f: impl FnOnce(&TeamBoard) -> T,
) -> Result<T, AppError> {
    // One team's board at a time; other teams' boards are read meanwhile.
    let board = {
        let mut boards = relay.boards.lock().unwrap_or_else(|p| p.into_inner());
        boards.entry(team).or_default().clone()
    };
    let mut board = board.lock().unwrap_or_else(|p| p.into_inner());
    let (seq, rows) = relay
        .with_store(|s| s.board_rows_since(team, board.seq))
        .map_err(storage)?;
    if !rows.is_empty() || seq != board.seq {
        let rows = rows
            .into_iter()
            .filter_map(|(doc, json)| board_row(relay, team, &doc, &json))
            .collect::<Vec<_>>();
        board.apply(seq, rows);
    }
    Ok(f(&board))
}

/// A stored projection as a board row; one stored before the board existed is recomputed
/// from its document (once: the board keeps it).
fn board_row(relay: &AppState, team: TeamId, doc: &str, json: &str) -> Option<BoardRow> {
    match serde_json::from_str::<Projection>(json) {
        Ok(p) if p.board.is_some() => Some(p),
        Ok(_) => {
            let loaded = relay.with_store(|s| s.load_doc(team, doc)).ok().flatten()?;
            let mut am = AutoCommit::load(&loaded.bytes).ok()?;
            let dossier = document::read(&am).ok()?;
            Some(project(
                doc,
                &dossier,
                conflict::count(am.document()) as u32,
            ))
        }
        Err(e) => {
            tracing::error!(%doc, "stored projection unreadable: {e}");
            None
        }
    }
}

/// Load every team's board, so that the first manager to look after a restart does not wait
/// for it (at 100,000 dossiers that is seconds; every later view is one pass in memory).
pub fn warm_boards(relay: &AppState) {
    let teams = match relay.with_store(|s| s.teams()) {
        Ok(t) => t,
        Err(e) => return tracing::warn!("boards not warmed: {e}"),
    };
    let started = std::time::Instant::now();
    for team in teams {
        if let Err(e) = with_board(relay, team, |_| ()) {
            tracing::warn!(team, "board not warmed: {}", e.message);
        }
    }
    tracing::info!("team boards loaded in {} ms", started.elapsed().as_millis());
}

/// A manager revokes one of the team's devices. Another team's device and a made-up id get the
/// same answer (no existence oracle); the relay's revocation watch closes its open socket.
pub fn revoke(relay: &AppState, auth: &WebAuth, device: i64) -> Result<(), AppError> {
    let revoked = relay
        .with_store(|s| {
            let ours = s
                .devices(Some(auth.team_id))?
                .iter()
                .any(|d| d.device_id == device && d.revoked_ms.is_none());
            if ours {
                s.revoke_device(device, now_ms())
            } else {
                Ok(false)
            }
        })
        .map_err(storage)?;
    if !revoked {
        return Err(AppError::new(
            ErrorKind::NotFound,
            format!("no active device {device} in this team"),
        ));
    }
    tracing::info!(team = auth.team_id, device, "device revoked on the web");
    Ok(())
}

/// A manager sets what the team's reps see. Told to the team's live connections as a commit
/// of nothing: each rep's device reconnects and catches up under the new policy.
pub fn set_visibility(
    relay: &AppState,
    auth: &WebAuth,
    policy: Visibility,
) -> Result<Visibility, AppError> {
    let sight = relay
        .with_team(auth.team_id, |store, _| {
            let before = store.visibility(auth.team_id)?;
            let sight = store.set_visibility(auth.team_id, policy)?;
            if sight.set_at != before.set_at {
                relay.announce(auth.team_id, (sight.set_at, Vec::new()));
            }
            Ok::<_, StoreError>(sight)
        })
        .map_err(storage)?;
    tracing::info!(
        team = auth.team_id,
        visibility = policy.as_str(),
        "visibility set on the web"
    );
    Ok(sight.policy)
}

pub fn freshness(relay: &AppState, team: TeamId) -> Result<Vec<DeviceFreshness>, AppError> {
    let devices = relay
        .with_store(|s| s.devices(Some(team)))
        .map_err(storage)?;
    Ok(devices
        .into_iter()
        .filter(|d| d.revoked_ms.is_none())
        .map(|d| DeviceFreshness {
            id: d.device_id,
            user: d.user,
            device: d.name,
            role: d.role,
            // The relay's own clock (a device's clock may be wrong): when it recorded the
            // device's last completed sync. A device reports on connecting too, with what it
            // still holds unsent, but only a completed sync counts as one.
            last_sync_ms: d.synced_ms,
            waiting: d.status.map_or(0, |s| s.unsynced),
            reported_ms: d.reported_ms,
        })
        .collect())
}

pub fn dashboard(
    relay: &AppState,
    auth: &WebAuth,
    quiet_days: Option<u32>,
) -> Result<Dashboard, AppError> {
    let input = BoardInput::asked(today(relay), now_ms(), quiet_days);
    let devices = freshness(relay, auth.team_id)?;
    let sight = relay
        .with_store(|s| s.visibility(auth.team_id))
        .map_err(storage)?;
    let mut dashboard = with_board(relay, auth.team_id, |b| b.dashboard(&input, devices))?;
    dashboard.visibility = Some(sight.policy);
    Ok(dashboard)
}

pub fn page(relay: &AppState, auth: &WebAuth, query: &ListQuery) -> Result<DossierPage, AppError> {
    let mut query = query.clone();
    query.limit = Some(query.limit.unwrap_or(50).min(500));
    with_board(relay, auth.team_id, |b| b.page(&query))
}

/// The team's sequence: changes whenever any of its dossiers does, so an open view reloads.
fn revision(relay: &AppState, team: TeamId) -> Result<u64, AppError> {
    Ok(relay
        .with_store(|s| s.changed_since(team, u64::MAX))
        .map_err(storage)?
        .0)
}

pub fn status(relay: &AppState, auth: &WebAuth) -> Result<api::Status, AppError> {
    Ok(api::Status {
        user: auth.user.clone(),
        device: "web".into(),
        today: today(relay),
        link: api::LinkState::Connected { remaining: 0 },
        sync: api::SyncStatus {
            relay: None,
            team: Some(auth.team.clone()),
            role: Some(auth.role),
            unsynced_changes: 0,
            unsynced_dossiers: 0,
            last_sync_ms: None,
            unindexed: 0,
        },
        revision: revision(relay, auth.team_id)?,
    })
}

fn settings(auth: &WebAuth) -> api::Settings {
    api::Settings {
        language: auth
            .language
            .as_deref()
            .and_then(|l| serde_json::from_value(serde_json::Value::String(l.into())).ok()),
        onboarded: true,
    }
}

pub fn start(
    relay: &AppState,
    auth: &WebAuth,
    query: &ListQuery,
) -> Result<api::Started, AppError> {
    Ok(api::Started {
        settings: settings(auth),
        status: status(relay, auth)?,
        page: page(relay, auth, query)?,
    })
}

pub fn save_settings(
    relay: &AppState,
    auth: &WebAuth,
    session: &[u8; 32],
    wanted: api::Settings,
) -> Result<api::Settings, AppError> {
    let mut auth = auth.clone();
    if let Some(lang) = wanted.language {
        let word = match lang {
            api::Lang::Zh => "zh",
            api::Lang::En => "en",
        };
        relay
            .with_store(|s| s.set_session_language(session, word))
            .map_err(storage)?;
        auth.language = Some(word.into());
    }
    Ok(settings(&auth))
}

fn load(relay: &AppState, team: TeamId, id: &str) -> Result<AutoCommit, AppError> {
    if !document::valid_id(id) {
        return Err(AppError::new(ErrorKind::Invalid, "not a dossier id"));
    }
    let stored = relay
        .with_store(|s| s.load_doc(team, id))
        .map_err(storage)?
        // Another team's dossier does not exist for this one: the same answer as a wrong id.
        .ok_or_else(|| AppError::new(ErrorKind::NotFound, "no such dossier"))?;
    AutoCommit::load(&stored.bytes).map_err(|e| corrupt(id, e))
}

pub fn view(relay: &AppState, auth: &WebAuth, id: &str) -> Result<DossierView, AppError> {
    let mut doc = load(relay, auth.team_id, id)?;
    let dossier = document::read(&doc).map_err(|e| corrupt(id, e))?;
    Ok(DossierView {
        id: id.to_string(),
        conflicts: conflict::list(doc.document(), &dossier.authors),
        dossier,
    })
}

pub fn history(
    relay: &AppState,
    auth: &WebAuth,
    id: &str,
    path: &str,
) -> Result<Vec<FieldChange>, AppError> {
    let mut doc = load(relay, auth.team_id, id)?;
    let dossier = document::read(&doc).map_err(|e| corrupt(id, e))?;
    history::field_history(doc.document(), path, &dossier.authors)
        .map_err(|e| AppError::new(ErrorKind::Invalid, e.to_string()))
}

/// The Automerge actor of a user writing on the web: one per (team, user), stable, so the
/// document's authors name them like any device.
fn web_actor(auth: &WebAuth) -> ActorId {
    let digest = Sha256::digest(format!("fieldbook-web\0{}\0{}", auth.team, auth.user));
    ActorId::from(&digest[..16])
}

pub fn add_note(
    relay: &AppState,
    auth: &WebAuth,
    id: &str,
    note: &ManagerNote,
) -> Result<DossierView, AppError> {
    if !document::valid_id(id) {
        return Err(AppError::new(ErrorKind::Invalid, "not a dossier id"));
    }
    if let Some(rep) = note.rep.as_deref().filter(|r| !r.trim().is_empty()) {
        // The dossier first: another team's dossier gets the answer a made-up id gets.
        let (held, known) = relay
            .with_store(|s| {
                Ok::<_, StoreError>((
                    s.doc_version(auth.team_id, id)?.is_some(),
                    s.role_of(auth.team_id, rep.trim())?,
                ))
            })
            .map_err(storage)?;
        if !held {
            return Err(AppError::new(ErrorKind::NotFound, "no such dossier"));
        }
        if known.is_none() {
            return Err(AppError::new(
                ErrorKind::Invalid,
                format!(
                    "no one called {rep:?} is in team {}: the follow-up was not assigned",
                    auth.team
                ),
            ));
        }
    }
    let writer = Writer {
        actor: web_actor(auth),
        author: Author {
            user: auth.user.clone(),
            device: "web".into(),
        },
        now_ms: now_ms(),
    };
    let ids = NoteIds {
        comment: uuid::Uuid::new_v4().to_string(),
        follow_up: uuid::Uuid::new_v4().to_string(),
    };
    let day = today(relay);
    let committed = relay.with_team(auth.team_id, |store, docs| {
        let mut replica = TeamReplica::for_relay(store, auth.team_id, docs, writer.now_ms);
        let committed = replica.edit(id, &writer, "comment", |d| {
            fieldbook_shared::board::add_note(d, note, &ids, &auth.user, day)
        })?;
        if let Some(commit) = &committed {
            // Live devices of the team pull it now; the others on their next sync. Told in
            // the team's turn, so in the order committed.
            relay.announce(auth.team_id, commit.clone());
        }
        Ok(committed)
    });
    match committed {
        Ok(Some(_)) => {
            tracing::info!(team = %auth.team, user = %auth.user, doc = %id, "manager's note");
        }
        Ok(None) => {}
        Err(EditError::NotFound) => {
            return Err(AppError::new(ErrorKind::NotFound, "no such dossier"));
        }
        Err(EditError::Domain(e)) => return Err(AppError::new(ErrorKind::Invalid, e.to_string())),
        Err(EditError::Replica(e)) => {
            tracing::error!("note: {e}");
            return Err(AppError::new(
                ErrorKind::Storage,
                "the relay could not store the note; nothing was saved",
            ));
        }
    }
    view(relay, auth, id)
}
