//! Who is asking, and what they may do: every HTTP route and the sync socket turn their
//! credential into a [`Principal`] here (a device by its bearer token, a browser by its session
//! cookie; never one made up), and ask the one policy, [`allow`], whether it may take an
//! [`Action`]. What an action reaches is scoped by the principal's team in every store query,
//! so another team's dossier or device and one that does not exist get the same answer.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldbook_shared::api::{AppError, ErrorKind};
use fieldbook_shared::sync::relay::{Access, Catchup};
use fieldbook_shared::sync::wire::{ApiError, Role, Visibility, WIPE_HEADER};

use crate::accounts::hash_secret;
use crate::http::{AppState, now_ms};
use crate::store::{
    DeviceAuth, DocReaders, RelayStore, StoreError, TeamId, TeamVisibility, WebAuth,
};

/// The name of the web view's session cookie.
pub const COOKIE: &str = "fieldbook_session";

/// Who is behind a request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A device, by its bearer token (not revoked).
    Device(DeviceAuth),
    /// A browser, by its session (not ended, not expired).
    Web {
        auth: WebAuth,
        /// The session's token hash: what logging out ends.
        session: [u8; 32],
    },
}

impl Principal {
    pub fn team(&self) -> TeamId {
        match self {
            Principal::Device(d) => d.team_id,
            Principal::Web { auth, .. } => auth.team_id,
        }
    }

    pub fn role(&self) -> Role {
        match self {
            Principal::Device(d) => d.role,
            Principal::Web { auth, .. } => auth.role,
        }
    }
}

/// What a principal asks to do (to its own team's data: nothing reaches another team's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open the sync socket, and everything said on it.
    Sync,
    /// Read each device's last sync and changes waiting (`GET /v1/team/devices`).
    ReadFreshness,
    /// Read the team's dossiers, board and history on the web.
    ReadTeam,
    /// Change this session's settings (its language).
    ChangeSettings,
    /// Comment on a dossier, assigning a follow-up to a rep.
    AddNote,
    /// Revoke one of the team's devices.
    RevokeDevice,
    /// End this session.
    EndSession,
    /// Create or edit dossiers: the app's work, on a device.
    EditDossier,
    /// Choose what the team's reps see of its dossiers ([`Visibility`]).
    SetVisibility,
}

const FOR_MANAGERS: &str = "the web view is for managers; reps use the Fieldbook app";

/// The policy: whether `principal` may take `action`; if not, the refusal it is told.
pub fn allow(principal: &Principal, action: Action) -> Result<(), AppError> {
    use Action::*;
    let refuse = |message: &str| Err(AppError::new(ErrorKind::Forbidden, message));
    match principal {
        Principal::Device(device) => match action {
            Sync => Ok(()),
            ReadFreshness if device.role == Role::Manager => Ok(()),
            ReadFreshness => refuse("the team's devices are for managers only"),
            _ => refuse("a device works through its sync connection"),
        },
        Principal::Web { auth, .. } => match action {
            // Anyone may end their own session.
            EndSession => Ok(()),
            _ if auth.role != Role::Manager => refuse(FOR_MANAGERS),
            ReadTeam | ChangeSettings | AddNote | RevokeDevice | ReadFreshness | SetVisibility => {
                Ok(())
            }
            EditDossier => {
                refuse("the web view reads the team's dossiers; edit them in the Fieldbook app")
            }
            Sync => refuse("syncing takes a device's token; log in to the app"),
        },
    }
}

/// The user behind a device, as the team's visibility policy sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub user: String,
    pub role: Role,
}

impl Viewer {
    pub fn of(device: &DeviceAuth) -> Viewer {
        Viewer {
            user: device.user.clone(),
            role: device.role,
        }
    }
}

/// The visibility rule: a manager reads every dossier of the team; a rep every one where the
/// team sees everything, else those among whose readers (owner, shared with) they are.
pub fn may_read(policy: Visibility, viewer: &Viewer, readers: &[String]) -> bool {
    viewer.role == Role::Manager || policy == Visibility::Team || readers.contains(&viewer.user)
}

/// What a device may do with each of `docs` (see [`Access`]). A dossier the team does not hold
/// is the device's to create. One it may not read, it may still send its last changes to if
/// its user once held it: removed from its readers since, or held before the team turned to
/// [`Visibility::Own`].
pub fn access(
    store: &dyn RelayStore,
    team: TeamId,
    sight: TeamVisibility,
    viewer: &Viewer,
    docs: &[String],
) -> Result<Vec<Access>, StoreError> {
    if viewer.role == Role::Manager || sight.policy == Visibility::Team {
        return Ok(vec![Access::Full; docs.len()]);
    }
    let held = readers_by_doc(store.readers(team, docs)?);
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        out.push(match held.get(doc.as_str()) {
            None => Access::Full,
            Some(r) if may_read(sight.policy, viewer, &r.readers) => Access::Full,
            Some(r) if r.created_seq < sight.set_at => Access::SendOnly,
            Some(_) if store.was_reader(team, &viewer.user, doc)? => Access::SendOnly,
            Some(_) => Access::None,
        });
    }
    Ok(out)
}

fn readers_by_doc(rows: Vec<DocReaders>) -> std::collections::HashMap<String, DocReaders> {
    rows.into_iter().map(|r| (r.doc.clone(), r)).collect()
}

/// What a device that had seen the team's changes up to `since` is told as it connects, the
/// team standing at `seq` with `changed` written since: the changed dossiers it may see, and
/// those it may no longer hold.
pub fn catch_up(
    store: &dyn RelayStore,
    team: TeamId,
    sight: TeamVisibility,
    viewer: &Viewer,
    since: u64,
    seq: u64,
    changed: Vec<String>,
) -> Result<Catchup, StoreError> {
    let mut out = Catchup {
        seq,
        changed,
        withdrawn: Vec::new(),
    };
    if viewer.role == Role::Manager {
        return Ok(out);
    }
    // The policy changed since the device last synced (a device that never synced holds
    // nothing of the team's).
    let turned = since > 0 && since < sight.set_at;
    match sight.policy {
        Visibility::Team => {
            if turned {
                // It held only what it could see: it lacks the others, changed or not.
                let changed: std::collections::HashSet<String> =
                    out.changed.iter().cloned().collect();
                out.changed.extend(
                    store
                        .all_readers(team)?
                        .into_iter()
                        .filter(|r| !may_read(Visibility::Own, viewer, &r.readers))
                        .map(|r| r.doc)
                        .filter(|d| !changed.contains(d)),
                );
            }
        }
        Visibility::Own => {
            let held = readers_by_doc(store.readers(team, &out.changed)?);
            out.changed.retain(|d| {
                held.get(d)
                    .is_none_or(|r| may_read(sight.policy, viewer, &r.readers))
            });
            let mut gone = if turned {
                // Whatever it may have held that it may no longer hold (its cursor may lag
                // what it stored, so not only what was written by `since`); this covers
                // every withdrawal since, too.
                store
                    .all_readers(team)?
                    .into_iter()
                    .filter(|r| !may_read(sight.policy, viewer, &r.readers))
                    .map(|r| r.doc)
                    .collect()
            } else {
                let lost = store.withdrawals_since(team, &viewer.user, since)?;
                let now = readers_by_doc(store.readers(team, &lost)?);
                lost.into_iter()
                    .filter(|d| {
                        now.get(d)
                            .is_some_and(|r| !may_read(sight.policy, viewer, &r.readers))
                    })
                    .collect::<Vec<_>>()
            };
            gone.sort();
            gone.dedup();
            out.withdrawn = gone;
        }
    }
    Ok(out)
}

/// A commit as one device's live session tells it: the dossiers it may see, and those the
/// commit took out of its sight.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CommitView {
    pub visible: Vec<String>,
    pub withdrawn: Vec<String>,
}

/// Why a live session cannot go on: the team's policy changed under it (set at `set_at`
/// when the session began); the device reconnects and catches up under the new one.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("the team's visibility changed; reconnecting")]
    PolicyChanged,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `docs`, committed at team sequence `seq`, as `viewer`'s device is told of them, the
/// device having been told up to `told` and its session having begun under the policy set
/// at `began_at`.
pub fn commit_view(
    store: &dyn RelayStore,
    team: TeamId,
    viewer: &Viewer,
    began_at: u64,
    told: u64,
    docs: &[String],
) -> Result<CommitView, ViewError> {
    let all = || CommitView {
        visible: docs.to_vec(),
        withdrawn: Vec::new(),
    };
    if viewer.role == Role::Manager {
        return Ok(all());
    }
    let sight = store.visibility(team)?;
    if sight.set_at != began_at {
        return Err(ViewError::PolicyChanged);
    }
    if sight.policy == Visibility::Team || docs.is_empty() {
        return Ok(all());
    }
    let held = readers_by_doc(store.readers(team, docs)?);
    let (visible, hidden): (Vec<String>, Vec<String>) = docs.iter().cloned().partition(|d| {
        held.get(d)
            .is_none_or(|r| may_read(sight.policy, viewer, &r.readers))
    });
    let withdrawn = if hidden.is_empty() {
        Vec::new()
    } else {
        let lost = store.withdrawals_since(team, &viewer.user, told)?;
        hidden.into_iter().filter(|d| lost.contains(d)).collect()
    };
    Ok(CommitView { visible, withdrawn })
}

/// Whether a user of `role` may open a web session (checked after the password, so the
/// answer says nothing to someone who does not know it).
pub fn may_log_in(role: Role) -> Result<(), AppError> {
    match role {
        Role::Manager => Ok(()),
        Role::Rep => Err(AppError::new(ErrorKind::Forbidden, FOR_MANAGERS)),
    }
}

/// Why a device's token was not taken.
#[derive(Debug)]
pub enum DeviceRefusal {
    Missing,
    Unknown,
    /// Revoked by the team's admin; whether the team wants it to wipe what it holds.
    Revoked {
        wipe: bool,
    },
    Unavailable(StoreError),
}

impl DeviceRefusal {
    /// The answer on the device routes: a status and `{"error": sentence}` (a revoked
    /// device also learns whether to wipe, in [`WIPE_HEADER`]).
    pub fn response(self) -> Response {
        let (status, message) = match &self {
            DeviceRefusal::Missing => (StatusCode::UNAUTHORIZED, "a device token is required"),
            DeviceRefusal::Unknown => (StatusCode::UNAUTHORIZED, "unknown device token"),
            DeviceRefusal::Revoked { .. } => (
                StatusCode::GONE,
                "this device was revoked by the team's admin",
            ),
            DeviceRefusal::Unavailable(e) => {
                tracing::error!("token lookup failed: {e}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the relay cannot reach its database just now",
                )
            }
        };
        let mut response = refusal(status, message);
        if let DeviceRefusal::Revoked { wipe } = self {
            response.headers_mut().insert(
                WIPE_HEADER,
                HeaderValue::from_static(if wipe { "true" } else { "false" }),
            );
        }
        response
    }
}

/// A refusal on the device routes, as devices read it.
pub fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ApiError {
            error: message.into(),
        }),
    )
        .into_response()
}

/// The device whose bearer token this request carries.
pub fn device(relay: &AppState, headers: &HeaderMap) -> Result<DeviceAuth, DeviceRefusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(DeviceRefusal::Missing)?;
    let hash = hash_secret(token);
    let found = relay.with_store(|store| {
        Ok::<_, StoreError>(match store.device_by_token(&hash)? {
            Some(auth) => Ok(auth),
            None => Err(store.revoked_token(&hash)?),
        })
    });
    match found {
        Ok(Ok(auth)) => Ok(auth),
        Ok(Err(Some(wipe))) => Err(DeviceRefusal::Revoked { wipe }),
        Ok(Err(None)) => Err(DeviceRefusal::Unknown),
        Err(e) => Err(DeviceRefusal::Unavailable(e)),
    }
}

/// The browser session whose cookie this request carries.
pub fn web(relay: &AppState, headers: &HeaderMap) -> Result<Principal, AppError> {
    let token = session_token(headers)
        .ok_or_else(|| AppError::new(ErrorKind::Unauthorized, "log in first"))?;
    let session = hash_secret(token);
    match relay.with_store(|s| s.session(&session, now_ms())) {
        Ok(Some(auth)) => Ok(Principal::Web { auth, session }),
        Ok(None) => Err(AppError::new(
            ErrorKind::Unauthorized,
            "your session has ended; log in again",
        )),
        Err(e) => {
            tracing::error!("session lookup: {e}");
            Err(AppError::new(
                ErrorKind::Storage,
                "the relay's database is busy; try again",
            ))
        }
    }
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(role: Role) -> Principal {
        Principal::Device(DeviceAuth {
            device_id: 1,
            team_id: 1,
            team: "north".into(),
            user: "li".into(),
            role,
        })
    }

    fn web(role: Role) -> Principal {
        Principal::Web {
            auth: WebAuth {
                team_id: 1,
                team: "north".into(),
                user: "chen".into(),
                role,
                language: None,
            },
            session: [0; 32],
        }
    }

    const ALL: [Action; 9] = [
        Action::Sync,
        Action::ReadFreshness,
        Action::ReadTeam,
        Action::ChangeSettings,
        Action::AddNote,
        Action::RevokeDevice,
        Action::EndSession,
        Action::EditDossier,
        Action::SetVisibility,
    ];

    /// The policy as a table: who may do what, written out apart from the code that decides.
    #[test]
    fn the_policy_is_this_table() {
        use Action::*;
        let may = |p: &Principal| -> Vec<Action> {
            ALL.into_iter().filter(|a| allow(p, *a).is_ok()).collect()
        };
        assert_eq!(may(&device(Role::Rep)), [Sync]);
        assert_eq!(may(&device(Role::Manager)), [Sync, ReadFreshness]);
        assert_eq!(may(&web(Role::Rep)), [EndSession]);
        assert_eq!(
            may(&web(Role::Manager)),
            [
                ReadFreshness,
                ReadTeam,
                ChangeSettings,
                AddNote,
                RevokeDevice,
                EndSession,
                SetVisibility
            ]
        );
        for p in [device(Role::Rep), web(Role::Rep), web(Role::Manager)] {
            for a in ALL {
                if let Err(e) = allow(&p, a) {
                    assert_eq!(e.kind, ErrorKind::Forbidden);
                    assert!(e.message.len() > 20, "a sentence: {}", e.message);
                }
            }
        }
        assert!(may_log_in(Role::Manager).is_ok());
        assert_eq!(
            may_log_in(Role::Rep).unwrap_err().kind,
            ErrorKind::Forbidden
        );
    }
}
