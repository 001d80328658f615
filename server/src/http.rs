//! The relay's HTTP surface: health, enrolment, and the sync WebSocket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fieldbook_shared::sync::flow::RELAY_OUTBOX_BYTES;
use fieldbook_shared::sync::relay::Limits;
use fieldbook_shared::sync::wire::{EnrollRequest, MAX_FRAME_BYTES};
use tokio::sync::{broadcast, watch};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use fieldbook_shared::board::TeamBoard;
use tower_http::services::ServeDir;

use crate::accounts::{self, AccountError};
use crate::auth::Action;
use crate::replica::TeamDocs;
use crate::store::pool::StorePool;
use crate::store::{DeviceId, RelayStore, StoreError, TeamId};
use crate::web;

/// Changes committed for a team, announced to its live connections.
#[derive(Debug, Clone)]
pub struct TeamChange {
    pub seq: u64,
    pub docs: Arc<Vec<String>>,
    /// Changes pushed and taken in this commit, passed on as they are.
    pub forwards: Arc<Vec<fieldbook_shared::sync::wire::Changes>>,
    /// The connection that committed them.
    pub origin: u64,
    /// The team's sequence before this commit, as this relay told it (set by
    /// [`Hub::publish`]): a session told less than that missed commits in between (another
    /// instance's, made before this one heard of them) and catches up from the store.
    pub after: u64,
}

/// One broadcast channel per team with a live connection.
#[derive(Default)]
pub struct Hub {
    teams: Mutex<HashMap<TeamId, broadcast::Sender<TeamChange>>>,
    /// How far each team's announcements reach on this relay.
    told: Mutex<HashMap<TeamId, u64>>,
}

impl Hub {
    pub fn subscribe(&self, team: TeamId) -> broadcast::Receiver<TeamChange> {
        let mut teams = self.teams.lock().unwrap_or_else(|p| p.into_inner());
        // Drop channels nobody listens to any more.
        teams.retain(|_, tx| tx.receiver_count() > 0);
        teams
            .entry(team)
            .or_insert_with(|| broadcast::channel(256).0)
            .subscribe()
    }

    /// Tell the team's live connections of a commit. Call it in the team's turn
    /// ([`Relay::with_team`]), right after the commit: a session takes announcements in sequence order and drops any at or
    /// below one it has told (a commit told after a later one would never reach its devices).
    pub fn publish(&self, team: TeamId, mut change: TeamChange) {
        {
            let mut told = self.told.lock().unwrap_or_else(|p| p.into_inner());
            let before = told.insert(team, change.seq);
            change.after = before.unwrap_or(0);
        }
        let teams = self.teams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = teams.get(&team) {
            // No receivers is fine: nobody else is connected.
            let _ = tx.send(change);
        }
    }

    /// How far `team`'s announcements reach (None: none made or started yet).
    pub fn told(&self, team: TeamId) -> Option<u64> {
        let told = self.told.lock().unwrap_or_else(|p| p.into_inner());
        told.get(&team).copied()
    }

    /// Where `team`'s announcements start: what is committed when this relay first takes
    /// the team's turn, which nobody needs telling of.
    fn start_telling(&self, team: TeamId, seq: u64) {
        let mut told = self.told.lock().unwrap_or_else(|p| p.into_inner());
        told.entry(team).or_insert(seq);
    }

    /// Teams with a live connection here.
    pub fn live_teams(&self) -> Vec<TeamId> {
        let teams = self.teams.lock().unwrap_or_else(|p| p.into_inner());
        teams
            .iter()
            .filter(|(_, tx)| tx.receiver_count() > 0)
            .map(|(team, _)| *team)
            .collect()
    }
}

/// WebSocket sizes: small buffers keep an idle connection cheap (axum's defaults cost
/// ~134 KiB each); explicit caps bound what one peer can make the relay hold.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    pub read_buffer: usize,
    pub write_buffer: usize,
    pub max_message: usize,
    /// Bytes of replies held for one connection before the relay stops taking its input.
    pub outbox_bytes: usize,
    /// A device that reads nothing for this long while the relay has frames for it is let go.
    pub write_stall: Duration,
    /// Sync connections one team may hold open at once.
    pub per_team: usize,
}

impl Default for SocketLimits {
    fn default() -> Self {
        SocketLimits {
            read_buffer: 4 * 1024,
            write_buffer: 0,
            max_message: MAX_FRAME_BYTES,
            outbox_bytes: RELAY_OUTBOX_BYTES,
            write_stall: Duration::from_secs(60),
            per_team: 1000,
        }
    }
}

pub struct Relay {
    /// Connections to the database, lent one call at a time.
    pub stores: StorePool,
    /// Each team's turn at writing, with the dossiers it keeps open (see [`Relay::with_team`]).
    teams: crate::turns::TeamTurns,
    /// Other relay instances may write to the same database (PostgreSQL): each team's turn
    /// then starts by announcing their commits. A relay alone on its database (SQLite) skips
    /// that query: everything committed, it committed and announced itself.
    pub shared: bool,
    pub hub: Hub,
    pub revoked: broadcast::Sender<DeviceId>,
    pub shutdown: watch::Receiver<bool>,
    pub limits: Limits,
    pub socket: SocketLimits,
    pub connections: AtomicUsize,
    next_connection: std::sync::atomic::AtomicU64,
    /// Each team's board, caught up on demand (see [`crate::team`]).
    pub boards: Mutex<HashMap<TeamId, Arc<Mutex<TeamBoard>>>>,
    pub web: WebOptions,
    /// Failed web logins per account (see [`crate::throttle`]).
    pub logins: crate::throttle::LoginThrottle,
    /// Failed enrolments per client address (the same counting as logins).
    pub enrolments: crate::throttle::LoginThrottle,
    /// Open sync connections per device (see [`SOCKETS_PER_DEVICE`]) and per team.
    sockets: Mutex<OpenSockets>,
    /// Password checks running at once (see [`crate::web::login`]).
    pub password_checks: crate::accounts::PasswordChecks,
    /// Woken when dossiers were written with a device's projection (see [`crate::check`]).
    pub check: tokio::sync::Notify,
}

/// The manager's web view.
#[derive(Debug, Clone, Default)]
pub struct WebOptions {
    /// The built UI (`ui/dist`) to serve at `/`; None: no web view, the API only.
    pub ui_dir: Option<std::path::PathBuf>,
    /// Mark the session cookie `Secure` (behind HTTPS).
    pub secure_cookie: bool,
    /// Pin "today" (tests); None: the date in UTC.
    pub today: Option<fieldbook_shared::Day>,
}

pub type AppState = Arc<Relay>;

impl Relay {
    pub fn new(stores: StorePool, shutdown: watch::Receiver<bool>) -> Relay {
        Relay {
            stores,
            teams: Default::default(),
            shared: false,
            hub: Hub::default(),
            revoked: broadcast::channel(64).0,
            shutdown,
            limits: Limits::default(),
            socket: SocketLimits::default(),
            connections: AtomicUsize::new(0),
            next_connection: Default::default(),
            boards: Mutex::default(),
            web: WebOptions::default(),
            logins: Default::default(),
            enrolments: Default::default(),
            sockets: Default::default(),
            password_checks: Default::default(),
            check: tokio::sync::Notify::new(),
        }
    }

    pub fn with_web(mut self, web: WebOptions) -> Relay {
        self.web = web;
        self
    }

    /// Run `f` on a connection to the store. The store is synchronous: the calling worker
    /// thread is handed over to blocking work meanwhile, so other connections keep being
    /// served.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut dyn RelayStore) -> T) -> T {
        tokio::task::block_in_place(|| self.stores.with(f))
    }

    /// Run `f` in `team`'s turn: on a connection to the store and the team's open dossiers,
    /// while no other connection of the team, on this relay or another instance on the same
    /// database, merges, commits or announces. What `f` commits, it announces before it
    /// returns, so a team's announcements go out in the order of its sequence. The turn
    /// starts by announcing what other instances committed since this one last did (when the
    /// database is [`Relay::shared`]). Other
    /// teams proceed meanwhile.
    pub fn with_team<T, E: From<StoreError>>(
        &self,
        team: TeamId,
        f: impl FnOnce(&mut dyn RelayStore, &mut TeamDocs) -> Result<T, E>,
    ) -> Result<T, E> {
        let turn = self.teams.turn(team);
        tokio::task::block_in_place(|| {
            // The team's turn here first, then a connection: a connection is never held
            // waiting for a turn here, only for one another instance holds.
            let mut docs = turn.lock().unwrap_or_else(|p| p.into_inner());
            self.stores.with(|store| {
                store.begin_team_turn(team)?;
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    if self.shared {
                        self.catch_up(store, team, &mut docs)?;
                    }
                    f(store, &mut docs)
                }));
                // Ended even after a failure or a panic: a turn left open would stop the
                // team on every instance (a connection that broke has ended it already).
                if let Err(e) = store.end_team_turn(team) {
                    tracing::error!(team, "ending the team's turn: {e}");
                }
                ran.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        })
    }

    /// Announce what was committed for `team` since this relay last did: by another
    /// instance on the same database (a relay alone on its database finds nothing).
    fn catch_up(
        &self,
        store: &mut dyn RelayStore,
        team: TeamId,
        docs: &mut TeamDocs,
    ) -> Result<(), StoreError> {
        let Some(told) = self.hub.told(team) else {
            let (seq, _) = store.changed_since(team, u64::MAX)?;
            self.hub.start_telling(team, seq);
            return Ok(());
        };
        let (seq, changed) = store.changed_since(team, told)?;
        if seq > told {
            for doc in &changed {
                // (A copy open here would be reloaded anyway: its version is behind.)
                docs.remove(&(team, doc.clone()));
            }
            self.hub.publish(
                team,
                TeamChange {
                    seq,
                    docs: Arc::new(changed),
                    forwards: Arc::default(),
                    origin: self.connection_id(),
                    after: told,
                },
            );
        }
        Ok(())
    }

    pub fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Tell `team`'s live connections of a commit the relay made itself (a manager's note, a
    /// check's correction): nothing to pass on as it is, and no connection made it. Call it
    /// in the team's turn ([`Relay::with_team`]), as [`Hub::publish`] says.
    pub fn announce(&self, team: TeamId, (seq, docs): fieldbook_shared::sync::Commit) {
        self.hub.publish(
            team,
            TeamChange {
                seq,
                docs: Arc::new(docs),
                forwards: Arc::default(),
                origin: self.connection_id(),
                after: 0,
            },
        );
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/v1/enroll", post(enroll))
        .route("/v1/sync", get(sync))
        .route("/v1/team/devices", get(web::team_devices))
        .route("/api/login", post(web::login))
        .route("/api/{name}", post(web::call));
    if let Some(dir) = &state.web.ui_dir {
        router = router.fallback_service(ServeDir::new(dir));
    }
    router
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(16 * 1024))
        // Plain requests get 10 s; an upgraded WebSocket is past this layer once answered.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .with_state(state)
}

/// Too many wrong invite codes from this address: when to try again, in words and in
/// `Retry-After`.
fn too_many(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many wrong invite codes from this address: try again in {secs} s"),
    );
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(secs),
    );
    response
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    crate::auth::refusal(status, message)
}

async fn health(State(relay): State<AppState>) -> Response {
    Json(serde_json::json!({
        "status": "ok",
        "connections": relay.connections.load(Ordering::Relaxed),
    }))
    .into_response()
}

async fn enroll(
    State(relay): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    let request: EnrollRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("malformed enrolment: {e}"),
            );
        }
    };
    // Invite codes guessed from one address: a few misses are free, then the door closes for
    // longer each time (even to a right code meanwhile, so the answer teaches nothing).
    let client = peer.ip().to_string();
    let now = std::time::Instant::now();
    if let Some(wait) = relay.enrolments.closed_for_key(&client, now) {
        return too_many(wait);
    }
    let result = relay.with_store(|store| accounts::enroll(store, &request, now_ms()));
    if matches!(result, Err(AccountError::BadInvite)) {
        if let Some(wait) = relay.enrolments.failed_key(&client, now) {
            tracing::warn!(%client, "enrolment closed for {} s after wrong invite codes", wait.as_secs());
            return too_many(wait);
        }
    } else if result.is_ok() {
        relay.enrolments.succeeded_key(&client);
    }
    match result {
        Ok(enrolled) => {
            tracing::info!(team = %enrolled.team, user = %enrolled.user, device = enrolled.device_id, "device enrolled");
            Json(enrolled).into_response()
        }
        Err(
            e @ (AccountError::BadInvite | AccountError::BadDeviceName | AccountError::BadName(_)),
        ) => error(StatusCode::FORBIDDEN, e.to_string()),
        Err(e) => {
            tracing::error!("enrolment failed: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the relay could not store the enrolment; try again",
            )
        }
    }
}

async fn sync(
    State(relay): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // The credential first: whoever has none learns nothing more (not even that this is a
    // WebSocket route).
    let auth = match crate::auth::device(&relay, &headers) {
        Ok(auth) => auth,
        Err(refused) => return refused.response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(e) => return error(e.status(), format!("sync is a WebSocket: {e}")),
    };
    if let Err(e) = crate::auth::allow(&crate::auth::Principal::Device(auth.clone()), Action::Sync)
    {
        return error(StatusCode::FORBIDDEN, e.message);
    }
    // One device has a connection or two (a reconnect overlapping the old one); a token
    // opening many is a leak or an attack, and each socket holds buffers on the relay.
    let slot = match SocketSlot::take(&relay, auth.device_id, auth.team_id) {
        Ok(slot) => slot,
        Err(full) => {
            crate::quietly!(
                format!("device {}", auth.device_id),
                warn,
                device = auth.device_id,
                team = auth.team_id,
                "refused: {full}"
            );
            return error(StatusCode::TOO_MANY_REQUESTS, full);
        }
    };
    let s = relay.socket;
    upgrade
        .read_buffer_size(s.read_buffer)
        .write_buffer_size(s.write_buffer)
        .max_message_size(s.max_message)
        .max_frame_size(s.max_message)
        .on_upgrade(move |socket| async move {
            crate::serve::connection(socket, relay, auth).await;
            drop(slot);
        })
}

/// Connections one device may hold open at once.
pub const SOCKETS_PER_DEVICE: usize = 4;

/// Open sync connections, per device and per team.
#[derive(Debug, Default)]
struct OpenSockets {
    devices: HashMap<i64, usize>,
    teams: HashMap<TeamId, usize>,
}

/// One of a device's connections, counted while it is held.
struct SocketSlot {
    relay: AppState,
    device: i64,
    team: TeamId,
}

impl SocketSlot {
    /// A place for one more connection of `device` of `team`, or why there is none.
    fn take(relay: &AppState, device: i64, team: TeamId) -> Result<SocketSlot, String> {
        let mut open = relay.sockets.lock().unwrap_or_else(|p| p.into_inner());
        if open.devices.get(&device).copied().unwrap_or(0) >= SOCKETS_PER_DEVICE {
            return Err(format!(
                "this device has {SOCKETS_PER_DEVICE} connections open already"
            ));
        }
        if open.teams.get(&team).copied().unwrap_or(0) >= relay.socket.per_team {
            return Err(format!(
                "the team has {} connections open already",
                relay.socket.per_team
            ));
        }
        *open.devices.entry(device).or_default() += 1;
        *open.teams.entry(team).or_default() += 1;
        Ok(SocketSlot {
            relay: relay.clone(),
            device,
            team,
        })
    }
}

/// One fewer open under `key`.
fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = self.relay.sockets.lock().unwrap_or_else(|p| p.into_inner());
        release(&mut open.devices, self.device);
        release(&mut open.teams, self.team);
    }
}
