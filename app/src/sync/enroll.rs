//! Joining a team: the invite code a manager was given becomes this device's token.

use std::time::Duration;

use fieldbook_shared::sync::wire::{ApiError, EnrollRequest, Enrolled};

use super::link::{self, RelayUrl, Trust};
use super::{RELAY_CA, RELAY_INSECURE, RELAY_ROLE, RELAY_TEAM, RELAY_URL, SyncError};
use crate::engine::{Engine, EngineError};
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

/// Enrol this device with the relay at `relay_url` (`https://host:port`, or `http://` to this
/// machine or with `trust.insecure`) using a one-time invite code. On success the device
/// writes as the invited user from now on, and keeps what it trusts there for every sync.
pub fn enroll<S: DossierStore>(
    engine: &mut Engine<S>,
    relay_url: &str,
    invite: &str,
    trust: &Trust,
) -> Result<Enrolled, SyncError> {
    let url = RelayUrl::parse(relay_url, trust)?;
    if !url.tls && trust.insecure {
        tracing::warn!(
            "enrolling over plain http:// with {}: the token and dossiers cross the network unencrypted",
            url.base
        );
    }
    let agent = link::agent(trust, Duration::from_secs(30))?;
    let failed = |e: ureq::Error| {
        link::tls_failure(&url.host, &e).unwrap_or_else(|| SyncError::Unreachable {
            url: url.base.clone(),
            reason: e.to_string(),
        })
    };
    let request = EnrollRequest {
        invite: invite.trim().to_string(),
        device_name: engine.identity().device.clone(),
    };
    let mut response = agent
        .post(format!("{}/v1/enroll", url.base))
        .send_json(&request)
        .map_err(failed)?;
    if !response.status().is_success() {
        return Err(refused(&mut response));
    }
    let enrolled: Enrolled = response
        .body_mut()
        .read_json()
        .map_err(|e| SyncError::Protocol(format!("enrolment answer: {e}")))?;
    let device = engine.identity().device.clone();
    engine.set_identity(&enrolled.user, &device)?;
    engine
        .secrets()
        .set(crate::secrets::RELAY_TOKEN, &enrolled.token)
        .map_err(EngineError::from)?;
    let store = engine.store_mut();
    store.set_setting(RELAY_URL, &url.base)?;
    store.set_setting(RELAY_TEAM, &enrolled.team)?;
    store.set_setting(RELAY_ROLE, enrolled.role.as_str())?;
    // Empty: none (a new enrolment replaces the CA of an old one).
    store.set_setting(RELAY_CA, trust.ca_pem.as_deref().unwrap_or(""))?;
    store.set_setting(RELAY_INSECURE, if trust.insecure { "1" } else { "0" })?;
    Ok(enrolled)
}
