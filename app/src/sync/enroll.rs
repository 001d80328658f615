//! Joining a team: the invite code a manager was given becomes this device's token.

use std::time::Duration;

use fieldbook_shared::sync::wire::{ApiError, EnrollRequest, Enrolled};

use super::{RELAY_ROLE, RELAY_TEAM, RELAY_TOKEN, RELAY_URL, SyncError};
use crate::engine::Engine;
use crate::store::DossierStore;

/// The relay's reason for refusing, from its JSON error (or the HTTP status).
pub(super) fn refused(response: &mut ureq::http::Response<ureq::Body>) -> SyncError {
    let status = response.status();
    let reason = response
        .body_mut()
        .read_json::<ApiError>()
        .map(|e| e.error)
        .unwrap_or_else(|_| format!("HTTP {status}"));
    SyncError::Refused(reason)
}

/// Enrol this device with the relay at `relay_url` (`http://host:port`) using a one-time
/// invite code. On success the device writes as the invited user from now on.
pub fn enroll<S: DossierStore>(
    engine: &mut Engine<S>,
    relay_url: &str,
    invite: &str,
) -> Result<Enrolled, SyncError> {
    let base = relay_url.trim_end_matches('/').to_string();
    if !base.starts_with("http://") && !base.starts_with("https://") {
        return Err(SyncError::Unreachable {
            url: base,
            reason: "the relay URL must start with http:// or https://".into(),
        });
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let unreachable = |e: ureq::Error| SyncError::Unreachable {
        url: base.clone(),
        reason: e.to_string(),
    };
    let request = EnrollRequest {
        invite: invite.trim().to_string(),
        device_name: engine.identity().device.clone(),
    };
    let mut response = agent
        .post(format!("{base}/v1/enroll"))
        .send_json(&request)
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(refused(&mut response));
    }
    let enrolled: Enrolled = response
        .body_mut()
        .read_json()
        .map_err(|e| SyncError::Protocol(format!("enrolment answer: {e}")))?;
    let device = engine.identity().device.clone();
    engine.set_identity(&enrolled.user, &device)?;
    let store = engine.store_mut();
    store.set_setting(RELAY_URL, &base)?;
    store.set_setting(RELAY_TOKEN, &enrolled.token)?;
    store.set_setting(RELAY_TEAM, &enrolled.team)?;
    store.set_setting(RELAY_ROLE, enrolled.role.as_str())?;
    Ok(enrolled)
}
