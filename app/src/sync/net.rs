//! Running a sync session over a WebSocket.

use std::time::{Duration, Instant};

use fieldbook_shared::sync::SessionError;
use fieldbook_shared::sync::device::{DeviceSession, Window};
use fieldbook_shared::sync::flow::{Outbox, WriteDeadlines};
use fieldbook_shared::sync::wire::{self, MAX_FRAME_BYTES, ToDevice, ToRelay, close};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use super::link::{self, RelayUrl};
use super::replica::{Replica, Uploads};
use super::{EngineHandle, RelayConfig, SyncError};
use crate::engine::EngineError;
use crate::store::DossierStore;

/// Frames handled in one batch (one SQLite transaction) at most.
const BATCH_FRAMES: usize = 256;

/// Dossiers whose search text is indexed at once while the session is idle, and the pause
/// between such slices: a slice holds the engine (the window's commands and incoming changes
/// wait for it) for tens of milliseconds at most, not the quarter second of 200 at once.
const INDEX_SLICE: usize = 24;
const INDEX_PAUSE: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sync everything there is, then disconnect.
    Once,
    /// Stay connected: send local edits as they are made, receive others' as they arrive.
    Live,
}

/// What one connection did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncReport {
    pub frames_sent: u64,
    pub frames_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Round trips: times this side, having sent something, waited for the relay with
    /// nothing else to do.
    pub round_trips: u64,
    pub elapsed_ms: u64,
}

pub use fieldbook_shared::api::LinkState;

/// The relay said this device was revoked: count what never reached it, then wipe if the
/// team's policy asks.
fn revoked<H: EngineHandle>(handle: &mut H, wipe: bool) -> SyncError {
    handle.with(|engine| {
        let result = if wipe { engine.wipe() } else { engine.unsent() };
        match result {
            Ok(unsent) => SyncError::Revoked {
                wiped: wipe,
                unsent,
            },
            Err(e) => SyncError::Engine(e),
        }
    })
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

fn session_error(e: SessionError<EngineError>) -> SyncError {
    match e {
        SessionError::Protocol(p) => SyncError::Protocol(p),
        SessionError::Replica(e) => SyncError::Engine(e),
    }
}

/// Connect to the relay and sync. In [`Mode::Once`] returns when everything is exchanged;
/// in [`Mode::Live`] when `stop` turns true or the connection fails. `on_state` hears
/// progress.
pub async fn sync_with_relay<H: EngineHandle>(
    handle: &mut H,
    relay: &RelayConfig,
    mode: Mode,
    stop: &mut watch::Receiver<bool>,
    mut on_state: impl FnMut(LinkState),
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let url = RelayUrl::parse(&relay.url, &relay.trust)?;
    let connector = if url.tls {
        tokio_tungstenite::Connector::Rustls(link::client_config(&relay.trust)?)
    } else {
        tokio_tungstenite::Connector::Plain
    };
    let mut request = url
        .sync_url()
        .into_client_request()
        .map_err(|e| SyncError::Unreachable {
            url: relay.url.clone(),
            reason: e.to_string(),
        })?;
    let bearer = format!("Bearer {}", relay.token)
        .parse()
        .map_err(|_| SyncError::Refused("the stored device token is not valid text".into()))?;
    request.headers_mut().insert("authorization", bearer);
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(ws_config()),
        true,
        Some(connector),
    )
    .await
    .map_err(|e| match e {
        tungstenite::Error::Http(r) if r.status().as_u16() == 410 => {
            let wipe = r
                .headers()
                .get(wire::WIPE_HEADER)
                .and_then(|v| v.to_str().ok())
                != Some("false");
            revoked(handle, wipe)
        }
        tungstenite::Error::Http(r) if r.status().as_u16() == 401 => SyncError::Refused(
            "this device's token is not accepted (revoked, or enrolled elsewhere); enrol again"
                .into(),
        ),
        // Up, but not taking this sync now (its database down, too many sockets): the relay
        // says why in its body.
        tungstenite::Error::Http(r) if matches!(r.status().as_u16(), 429 | 503) => {
            let said = r
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<wire::ApiError>(b).ok())
                .map(|e| e.error);
            SyncError::Busy {
                url: url.base.clone(),
                reason: said.unwrap_or_else(|| r.status().to_string()),
            }
        }
        other => link::tls_failure(&url.host, &other).unwrap_or_else(|| SyncError::Unreachable {
            url: url.base.clone(),
            reason: other.to_string(),
        }),
    })?;
    let (sink, stream) = ws.split();
    let (to_writer, queued) = mpsc::channel(WRITER_QUEUE);
    let writer = write_frames(sink, queued);
    let session = drive(stream, to_writer, handle, mode, stop, &mut on_state);
    tokio::pin!(writer, session);
    let result = tokio::select! {
        result = &mut session => {
            // The session has queued its close frame, if any, and let go of the queue: the
            // writer ends once that is written (or the relay is taken for gone).
            let written = writer.await;
            match (result, written) {
                (Ok(report), Ok(())) => Ok(report),
                (Ok(_), Err(e)) => Err(e),
                (Err(e), _) => Err(e),
            }
        }
        failed = &mut writer => Err(failed.err().unwrap_or_else(|| SyncError::Closed {
            code: 1006,
            reason: "the connection dropped".into(),
        })),
    };
    result.map(|mut report| {
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        report
    })
}

/// Frames handed to the writer ahead of the one it is writing.
const WRITER_QUEUE: usize = 2;

/// A relay that takes nothing for this long while this device has frames for it is taken
/// for gone.
const WRITE_STALL: Duration = Duration::from_secs(60);

fn stalled() -> SyncError {
    SyncError::Closed {
        code: 1006,
        reason: format!(
            "the relay took nothing for {} s; will try again",
            WRITE_STALL.as_secs()
        ),
    }
}

type WsSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;
type WsStream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

/// Write what the session queues, in order, until it lets go of the queue. A relay that takes
/// nothing for [`WRITE_STALL`] (beyond the time the frames take on a slow link) is taken for
/// gone.
async fn write_frames(
    mut sink: WsSink,
    mut queued: mpsc::Receiver<Message>,
) -> Result<(), SyncError> {
    let broken = |e: tungstenite::Error| SyncError::Closed {
        code: 1006,
        reason: e.to_string(),
    };
    let mut deadlines = WriteDeadlines::new(WRITE_STALL);
    while let Some(message) = queued.recv().await {
        tokio::time::timeout(deadlines.feed(message.len()), sink.feed(message))
            .await
            .map_err(|_| stalled())?
            .map_err(broken)?;
        if queued.is_empty() {
            tokio::time::timeout(deadlines.flush(), sink.flush())
                .await
                .map_err(|_| stalled())?
                .map_err(broken)?;
        }
    }
    Ok(())
}

/// The session over a connection: it always keeps reading (see
/// [`fieldbook_shared::sync::flow`]); what it sends waits in an outbox, bounded by the
/// session's window, that feeds the writer whenever it can take a frame.
async fn drive<H: EngineHandle>(
    mut stream: WsStream,
    to_writer: mpsc::Sender<Message>,
    handle: &mut H,
    mode: Mode,
    stop: &mut watch::Receiver<bool>,
    on_state: &mut impl FnMut(LinkState),
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let mut uploads = Uploads::default();
    let mut session = DeviceSession::new(Window::default());
    let mut outbox = Outbox::unbounded();

    let hello = handle
        .with(|engine| {
            session.start(&mut Replica {
                engine,
                uploads: &mut uploads,
            })
        })
        .map_err(session_error)?;
    queue(&mut outbox, &hello, &mut report);
    on_state(LinkState::Connected { remaining: 0 });
    let local_writes = handle.with(|engine| engine.local_writes());
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let mut sent_since_read = false;
    // Text that a sync stored for later, or left to be worked out again, may wait.
    let mut unindexed = mode == Mode::Live;
    let mut last_left: Option<u64> = None;
    let result = loop {
        if mode == Mode::Once && session.is_complete() && outbox.is_empty() {
            break Ok(());
        }
        tokio::select! {
            permit = to_writer.reserve(), if !outbox.is_empty() => {
                let Ok(permit) = permit else {
                    break Err(SyncError::Closed { code: 1006, reason: "the connection dropped".into() });
                };
                if let Some(frame) = outbox.pop() {
                    permit.send(Message::Binary(frame.into()));
                    sent_since_read = true;
                }
            }
            next = stream.next() => {
                if outbox.is_empty() && sent_since_read {
                    // Waited for an answer with nothing else to do. (Frames the relay sent
                    // in one go may arrive in several reads: those are one round trip.)
                    report.round_trips += 1;
                }
                sent_since_read = false;
                let mut frames = Vec::new();
                let mut next = next;
                // The connection's end (or a frame that ends it), after the frames before it.
                let mut ended = None;
                loop {
                    match next {
                        None => {
                            ended = Some(SyncError::Closed { code: 1006, reason: "the connection dropped".into() });
                            break;
                        }
                        Some(msg) => match read(msg, &mut report) {
                            Ok(Some(frame)) => frames.push(frame),
                            Ok(None) => {}
                            Err(e) => {
                                ended = Some(e);
                                break;
                            }
                        },
                    }
                    if frames.len() >= BATCH_FRAMES {
                        break;
                    }
                    match stream.next().now_or_never() {
                        Some(n) => next = n,
                        None => break,
                    }
                }
                if !frames.is_empty() {
                    unindexed = mode == Mode::Live;
                    last_left = None;
                    let out = handle
                        .with(|engine| session.receive(&mut Replica { engine, uploads: &mut uploads }, frames))
                        .map_err(session_error);
                    match out {
                        Ok(out) => queue(&mut outbox, &out, &mut report),
                        Err(e) => break Err(e),
                    }
                    on_state(LinkState::Connected { remaining: session.remaining() });
                }
                if let Some(e) = ended {
                    break Err(e);
                }
            }
            _ = local_change(&mut poll, &local_writes), if mode == Mode::Live => {
                // Edits made by this app or another process on this device.
                let out = handle.with(|engine| -> Result<Vec<ToRelay>, SyncError> {
                    let unsynced = engine.store().unsynced()?;
                    let mut out = Vec::new();
                    let mut replica = Replica { engine, uploads: &mut uploads };
                    for doc in &unsynced {
                        if !session.knows(doc) {
                            out.extend(
                                session.local_change(&mut replica, doc).map_err(session_error)?,
                            );
                        }
                    }
                    Ok(out)
                });
                match out {
                    Ok(out) => queue(&mut outbox, &out, &mut report),
                    Err(e) => break Err(e),
                }
            }
            _ = tokio::time::sleep(INDEX_PAUSE), if unindexed && session.is_idle() => {
                // Received text waiting for the search index, a slice at a time.
                match handle.with(|engine| engine.index_pending(INDEX_SLICE)) {
                    // Stop when a slice made no headway too (text that cannot be worked out
                    // now is tried again after the next frames).
                    Ok(left) => {
                        unindexed = left > 0 && last_left.is_none_or(|before| left < before);
                        last_left = Some(left);
                    }
                    Err(e) => break Err(e.into()),
                }
            }
            _ = stop.changed() => break Ok(()),
        }
    };
    let (code, reason) = match &result {
        Ok(()) => (CloseCode::Normal, "done".to_string()),
        Err(SyncError::Protocol(p)) => (CloseCode::Protocol, p.clone()),
        // The relay closed, or the connection is gone: nothing to say.
        Err(SyncError::Closed { .. }) => return result.map(|()| report),
        Err(e) => (CloseCode::Error, e.to_string()),
    };
    let frame = CloseFrame {
        code,
        reason: reason.chars().take(120).collect::<String>().into(),
    };
    // Best effort: the relay may already be gone. What was not written yet is dropped; it
    // is sent again next time (nothing is marked synced before the relay acknowledged it).
    let _ = to_writer.send(Message::Close(Some(frame))).await;
    result.map(|()| report)
}

fn queue(outbox: &mut Outbox, frames: &[ToRelay], report: &mut SyncReport) {
    for frame in frames {
        let bytes = wire::encode(frame);
        report.frames_sent += 1;
        report.bytes_sent += bytes.len() as u64;
        outbox.push(bytes);
    }
}

/// A local write by this process (at once), or the poll for writes by other processes.
async fn local_change(poll: &mut tokio::time::Interval, local_writes: &tokio::sync::Notify) {
    tokio::select! {
        _ = poll.tick() => {}
        _ = local_writes.notified() => {}
    }
}

fn read(
    msg: Result<Message, tungstenite::Error>,
    report: &mut SyncReport,
) -> Result<Option<ToDevice>, SyncError> {
    match msg {
        Ok(Message::Binary(bytes)) => {
            report.frames_received += 1;
            report.bytes_received += bytes.len() as u64;
            wire::decode::<ToDevice>(&bytes)
                .map(Some)
                .map_err(|e| SyncError::Protocol(e.to_string()))
        }
        Ok(Message::Close(frame)) => {
            let (code, reason) = frame
                .map(|f| (u16::from(f.code), f.reason.to_string()))
                .unwrap_or((1005, String::new()));
            Err(SyncError::Closed {
                code,
                reason: describe_close(code, reason),
            })
        }
        Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Ok(None),
        Ok(Message::Text(_)) => Err(SyncError::Protocol("a text frame".into())),
        Err(e) => Err(SyncError::Closed {
            code: 1006,
            reason: e.to_string(),
        }),
    }
}

fn describe_close(code: u16, reason: String) -> String {
    match code {
        close::REVOKED => format!("this device was revoked by the team's admin ({reason})"),
        close::GOING_AWAY if reason.is_empty() => "the relay is restarting".to_string(),
        // (The team's visibility changed, the relay is shutting down, or the device read
        // nothing for too long: the background sync reconnects.)
        close::GOING_AWAY => format!("the relay asked this device to reconnect: {reason}"),
        _ => reason,
    }
}

/// Keep the device synced for as long as `stop` stays false: connect, sync live, and after
/// a failure retry with exponential backoff (1 s doubling to 60 s, with jitter).
pub async fn run_background<H: EngineHandle>(
    mut handle: H,
    states: watch::Sender<LinkState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        if *stop.borrow() {
            return;
        }
        let relay = match handle.with(|e| e.relay_config()) {
            Ok(Some(r)) => r,
            Ok(None) => {
                publish(&states, LinkState::NotEnrolled);
                if wait(&mut stop, Duration::from_secs(5)).await {
                    return;
                }
                continue;
            }
            Err(e) => {
                tracing::error!("reading the relay settings: {e}");
                return;
            }
        };
        publish(&states, LinkState::Connecting);
        let connected_at = Instant::now();
        let result = sync_with_relay(&mut handle, &relay, Mode::Live, &mut stop, |s| {
            publish(&states, s);
        })
        .await;
        if *stop.borrow() {
            return;
        }
        if connected_at.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_secs(1);
        }
        let needs_a_fix = result.as_ref().is_err_and(SyncError::needs_a_fix);
        let error = result.err().map(|e| e.to_string());
        if let Some(e) = &error {
            tracing::warn!("sync: {e}");
        }
        let jitter = rand::random_range(0..=backoff.as_millis() as u64 / 4);
        let delay = if needs_a_fix {
            RETRY_AFTER_FIX
        } else {
            backoff + Duration::from_millis(jitter)
        };
        publish(
            &states,
            LinkState::Offline {
                error,
                retry_in_ms: delay.as_millis() as u64,
            },
        );
        let stopped = if needs_a_fix {
            wait_for_new_settings(&mut handle, &relay, &mut stop, delay).await
        } else {
            wait(&mut stop, delay).await
        };
        if stopped {
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

/// After a failure that retrying cannot mend (an untrusted certificate, a refused token), the
/// next attempt waits this long, or until the device is enrolled again.
const RETRY_AFTER_FIX: Duration = Duration::from_secs(15 * 60);

/// Sleep for up to `d`, ending early when the relay settings change; true if told to stop.
async fn wait_for_new_settings<H: EngineHandle>(
    handle: &mut H,
    relay: &RelayConfig,
    stop: &mut watch::Receiver<bool>,
    d: Duration,
) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if wait(stop, Duration::from_secs(2).min(until - Instant::now())).await {
            return true;
        }
        // A new enrolment ends the wait; none at all (a revoked device wiped its token) does
        // not: the reason stays shown instead of "not enrolled".
        if let Ok(Some(now)) = handle.with(|e| e.relay_config())
            && now != *relay
        {
            return false;
        }
    }
    false
}

/// Tell watchers of a new state, only when it differs from the last.
fn publish(states: &watch::Sender<LinkState>, state: LinkState) {
    states.send_if_modified(|current| {
        let changed = *current != state;
        *current = state;
        changed
    });
}

/// Sleep for `d`; true if told to stop meanwhile.
async fn wait(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
