//! A manager's device asks the relay how fresh each rep's data is (the relay hears every
//! device's report; devices do not hear each other's). The last answer is kept, so the
//! dashboard still says it offline, with the time it was true.

use std::time::Duration;

use fieldbook_shared::board::DeviceFreshness;
use serde::{Deserialize, Serialize};

use super::link::{self, RelayUrl};
use super::{RelayConfig, SyncError};

/// The relay's last answer about the team's devices, and when it was fetched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamFreshness {
    pub fetched_ms: Option<i64>,
    pub devices: Vec<DeviceFreshness>,
}

pub(crate) const TEAM_FRESHNESS: &str = "board.freshness";

/// Ask the relay (a manager's token only) for the team's device reports.
pub fn fetch_team_freshness(relay: &RelayConfig) -> Result<Vec<DeviceFreshness>, SyncError> {
    let url = RelayUrl::parse(&relay.url, &relay.trust)?;
    let agent = link::agent(&relay.trust, Duration::from_secs(3))?;
    let mut response = agent
        .get(format!("{}/v1/team/devices", url.base))
        .header("authorization", &format!("Bearer {}", relay.token))
        .call()
        .map_err(|e| {
            link::tls_failure(&url.host, &e).unwrap_or_else(|| SyncError::Unreachable {
                url: url.base.clone(),
                reason: e.to_string(),
            })
        })?;
    if !response.status().is_success() {
        return Err(super::enroll::refused(&mut response));
    }
    response
        .body_mut()
        .read_json()
        .map_err(|e| SyncError::Protocol(format!("team devices: {e}")))
}
