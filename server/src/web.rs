//! The manager's web view: login with the password an admin set, a session cookie, and the
//! app's calls over `POST /api/<call>` answered from the team's merged data. Read-only but for
//! the manager's note (comment + follow-up assigned to a rep).
//!
//! CSRF: the cookie is `SameSite=Strict` and `HttpOnly`; every call is a POST with a JSON body
//! (a cross-site form cannot send one without a CORS preflight the relay never grants); and a
//! request whose `Origin` or `Sec-Fetch-Site` says it comes from another site is refused.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldbook_shared::api::{self, AppError, Call, ErrorKind};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant};

use crate::accounts::{hash_secret, new_token};
use crate::auth::{self, Action, Principal};
use crate::http::{AppState, now_ms};
use crate::store::WebAuth;
use crate::team;

pub use crate::auth::COOKIE;
/// A web session lasts a working week.
const SESSION_MS: i64 = 5 * 86_400_000;

fn refuse(kind: ErrorKind, message: &str) -> AppError {
    AppError::new(kind, message)
}

fn busy() -> AppError {
    refuse(
        ErrorKind::Storage,
        "the relay's database is busy; try again",
    )
}

/// An error as the UI reads it: the `AppError` as JSON, with the HTTP status of its kind.
pub fn app_error(e: AppError) -> Response {
    (status_of(e.kind), axum::Json(e)).into_response()
}

fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Refuse what a browser says comes from another site.
fn same_site(headers: &HeaderMap) -> Result<(), AppError> {
    let cross = || {
        refuse(
            ErrorKind::Forbidden,
            "requests from other sites are refused",
        )
    };
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site")
    {
        return Err(cross());
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or("");
        if origin_host != host {
            return Err(cross());
        }
    }
    Ok(())
}

fn parse<C: DeserializeOwned>(body: &Bytes) -> Result<C, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| refuse(ErrorKind::Invalid, &format!("malformed request: {e}")))
}

fn json<T: Serialize>(value: &T) -> Response {
    axum::Json(value).into_response()
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
}

/// The answer while an account's login is closed after wrong passwords: 429, how long in
/// words and in `Retry-After`.
fn closed(wait: Duration) -> Response {
    let secs = wait.as_secs_f64().ceil() as u64;
    let mut response = app_error(refuse(
        ErrorKind::TooManyAttempts,
        &format!("too many wrong passwords for this account; try again in {secs} s"),
    ));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// How long a login waits for a password check to be free before it is told to come back.
const CHECK_WAIT: Duration = Duration::from_secs(10);

pub async fn login(State(relay): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // One login at a time per slot (see `accounts::PASSWORD_CHECKS_AT_ONCE`), whoever it is for.
    let Some(mut slot) = relay.password_checks.slot(CHECK_WAIT).await else {
        let mut response = app_error(refuse(
            ErrorKind::Transport,
            "the relay is checking many logins at once; try again in a few seconds",
        ));
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(5u64));
        return response;
    };
    log_in(&relay, &mut slot, &headers, &body).unwrap_or_else(app_error)
}

fn log_in(
    relay: &AppState,
    slot: &mut crate::accounts::CheckSlot<'_>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, AppError> {
    same_site(headers)?;
    let request: api::Login = parse(body)?;
    let (team, user) = (request.team.trim(), request.user.trim());
    if let Some(wait) = relay.logins.closed_for(team, user, Instant::now()) {
        // Checked before the password, so a closed login says nothing about it.
        return Ok(closed(wait));
    }
    let wrong = || {
        if let Some(wait) = relay.logins.failed(team, user, Instant::now()) {
            tracing::warn!(
                ?team,
                ?user,
                "web login closed for {} s after wrong passwords",
                wait.as_secs()
            );
        }
        refuse(ErrorKind::Unauthorized, "wrong team, user or password")
    };
    let found = relay.with_store(|s| -> Result<_, crate::store::StoreError> {
        let Some(team_id) = s.team_id(team)? else {
            return Ok(None);
        };
        Ok(s.password_of(team_id, user)?.map(|p| (team_id, p)))
    });
    let (team_id, (role, hash)) = match found {
        Ok(Some(f)) => f,
        Ok(None) => {
            // Spend the time a real check takes, so timing does not tell who exists.
            tokio::task::block_in_place(|| slot.verify_nobody(&request.password));
            return Err(wrong());
        }
        Err(e) => {
            tracing::error!("login lookup: {e}");
            return Err(busy());
        }
    };
    let ok = tokio::task::block_in_place(|| slot.verify(&request.password, &hash));
    if !ok {
        // Debug-quoted: a name with a newline in it cannot forge a line of the log.
        crate::quietly!(
            format!("login {team}"),
            info,
            ?team,
            ?user,
            "web login refused"
        );
        return Err(wrong());
    }
    relay.logins.succeeded(team, user);
    auth::may_log_in(role)?;
    let token = new_token();
    let user = user.to_string();
    relay
        .with_store(|s| {
            s.create_session(&hash_secret(&token), team_id, &user, now_ms() + SESSION_MS)
        })
        .map_err(|e| {
            tracing::error!("session: {e}");
            busy()
        })?;
    tracing::info!(?team, ?user, "manager logged in on the web");
    let auth = WebAuth {
        team_id,
        team: team.to_string(),
        user,
        role,
        language: None,
    };
    let mut response = json(&team::status(relay, &auth)?);
    let secure = if relay.web.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    set_cookie(
        &mut response,
        &format!(
            "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            SESSION_MS / 1000
        ),
    );
    Ok(response)
}

pub async fn call(
    State(relay): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&relay, &name, &headers, &body).unwrap_or_else(app_error)
}

fn answer(
    relay: &AppState,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, AppError> {
    same_site(headers)?;
    let principal = auth::web(relay, headers)?;
    let action = action_of(name).ok_or_else(|| refuse(ErrorKind::NotFound, "no such call"))?;
    auth::allow(&principal, action)?;
    let Principal::Web { auth, session } = principal else {
        return Err(refuse(ErrorKind::Unauthorized, "log in first"));
    };
    match name {
        api::Logout::NAME => {
            if let Err(e) = relay.with_store(|s| s.end_session(&session)) {
                tracing::error!("logout: {e}");
            }
            let mut response = json(&());
            set_cookie(
                &mut response,
                &format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
            );
            Ok(response)
        }
        api::Start::NAME => serve::<api::Start>(body, |c| team::start(relay, &auth, &c.query)),
        api::GetStatus::NAME => serve::<api::GetStatus>(body, |_| team::status(relay, &auth)),
        api::SaveSettings::NAME => serve::<api::SaveSettings>(body, |c| {
            team::save_settings(relay, &auth, &session, c.settings)
        }),
        api::ListDossiers::NAME => {
            serve::<api::ListDossiers>(body, |c| team::page(relay, &auth, &c.query))
        }
        api::OpenDossier::NAME => {
            serve::<api::OpenDossier>(body, |c| team::view(relay, &auth, &c.id))
        }
        api::History::NAME => {
            serve::<api::History>(body, |c| team::history(relay, &auth, &c.id, &c.path))
        }
        api::GetDashboard::NAME => {
            serve::<api::GetDashboard>(body, |c| team::dashboard(relay, &auth, c.quiet_days))
        }
        api::AddNote::NAME => {
            serve::<api::AddNote>(body, |c| team::add_note(relay, &auth, &c.id, &c.note))
        }
        api::RevokeDevice::NAME => {
            serve::<api::RevokeDevice>(body, |c| team::revoke(relay, &auth, c.device))
        }
        api::SetVisibility::NAME => {
            serve::<api::SetVisibility>(body, |c| team::set_visibility(relay, &auth, c.visibility))
        }
        // (Refused by the policy above: every other name is an edit or unknown.)
        _ => Err(refuse(ErrorKind::NotFound, "no such call")),
    }
}

/// What a call of the web API asks to do (None: no such call).
fn action_of(name: &str) -> Option<Action> {
    Some(match name {
        api::Logout::NAME => Action::EndSession,
        api::SaveSettings::NAME => Action::ChangeSettings,
        api::AddNote::NAME => Action::AddNote,
        api::RevokeDevice::NAME => Action::RevokeDevice,
        api::SetVisibility::NAME => Action::SetVisibility,
        api::Start::NAME
        | api::GetStatus::NAME
        | api::ListDossiers::NAME
        | api::OpenDossier::NAME
        | api::History::NAME
        | api::GetDashboard::NAME => Action::ReadTeam,
        other if api::CALL_NAMES.contains(&other) => Action::EditDossier,
        _ => return None,
    })
}

fn serve<C: Call>(
    body: &Bytes,
    f: impl FnOnce(C) -> Result<C::Reply, AppError>,
) -> Result<Response, AppError> {
    f(parse(body)?).map(|reply| json(&reply))
}

/// `GET /v1/team/devices` for a manager's device (bearer token): every device's last report.
pub async fn team_devices(State(relay): State<AppState>, headers: HeaderMap) -> Response {
    let device = match auth::device(&relay, &headers) {
        Ok(device) => device,
        Err(refused) => return refused.response(),
    };
    let answer = auth::allow(&Principal::Device(device.clone()), Action::ReadFreshness)
        .and_then(|()| team::freshness(&relay, device.team_id));
    match answer {
        Ok(devices) => json(&devices),
        // A device reads `{"error": sentence}` on its routes.
        Err(e) => auth::refusal(status_of(e.kind), e.message),
    }
}
