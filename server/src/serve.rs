//! Serving: the accept loop (with a header-read timeout that `axum::serve` lacks), one task
//! per device connection, the revocation watcher, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use fieldbook_shared::sync::SessionError;
use fieldbook_shared::sync::flow::{Outbox, WriteDeadlines};
use fieldbook_shared::sync::relay::RelaySession;
use fieldbook_shared::sync::wire::{self, ToRelay, close};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::auth::{self, ViewError, Viewer};
use crate::http::{AppState, TeamChange, now_ms, router};
use crate::replica::{ReplicaError, TeamReplica};
use crate::store::DeviceAuth;
use crate::tls::ServerTls;

/// Frames handled in one batch (one commit) at most.
const BATCH_FRAMES: usize = 256;

#[derive(Clone)]
pub struct ServeOptions {
    /// A client must finish its TLS handshake, then send its request headers, each within
    /// this time.
    pub header_timeout: Duration,
    /// How often the revocation list is checked (admin commands run in another process).
    pub revocation_poll: Duration,
    /// Serve HTTPS and WSS with this; None: plain HTTP (on loopback, or behind a TLS proxy).
    pub tls: Option<Arc<ServerTls>>,
    /// The PostgreSQL database other instances share with this one: their commits are heard
    /// on it (see [`crate::cluster`]). None: this relay is alone on its database.
    pub shared_database: Option<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_timeout: Duration::from_secs(10),
            revocation_poll: Duration::from_millis(500),
            tls: None,
            shared_database: None,
        }
    }
}

/// Serve until `shutdown` completes, then close every connection and return.
pub async fn serve(
    listener: TcpListener,
    relay: AppState,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = router(relay.clone());
    tokio::spawn(watch_revocations(relay.clone(), options.revocation_poll));
    tokio::spawn(crate::check::run(relay.clone()));
    let warm = relay.clone();
    tokio::task::spawn_blocking(move || crate::team::warm_boards(&warm));
    if let Some(url) = options.shared_database.clone() {
        let follow = relay.clone();
        tokio::task::spawn_blocking(move || crate::cluster::follow_commits(follow, url));
    }
    let mut stop = relay.shutdown.clone();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_buf_size(64 * 1024);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin or die.
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // The client's address, for what is counted per address (enrolments).
                let service = TowerToHyperService::new(
                    app.clone()
                        .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
                );
                let http = http.clone();
                let stop = stop.clone();
                let tls = options.tls.as_ref().map(|t| t.acceptor());
                let handshake = options.header_timeout;
                tokio::spawn(async move {
                    let Some(acceptor) = tls else {
                        return serve_connection(&http, TokioIo::new(stream), service, peer, stop).await;
                    };
                    // A failed handshake is the client's problem (a wrong CA, a port scan):
                    // logged quietly, so that nobody can flood the log with them.
                    match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve_connection(&http, TokioIo::new(tls), service, peer, stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
            _ = &mut shutdown => break,
            _ = stop.changed() => break,
        }
    }
    tracing::info!("shutting down");
    // Device connections watch the same signal and close with "going away".
    for _ in 0..100 {
        if relay.connections.load(Ordering::Relaxed) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// One client connection's HTTP, until it ends or the relay shuts down.
async fn serve_connection<I>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    service: TowerToHyperService<axum::Router>,
    peer: SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let conn = http.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => log_conn(peer, r),
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            log_conn(peer, conn.await);
        }
    }
}

fn log_conn(peer: SocketAddr, r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

async fn watch_revocations(relay: AppState, every: Duration) {
    // Revocations made before this start need no action: their tokens no longer authenticate.
    let mut last = match relay.with_store(|s| s.revocations_after(0)) {
        Ok(all) => all.last().map_or(0, |(n, _)| *n),
        Err(e) => {
            tracing::warn!("reading revocations: {e}");
            0
        }
    };
    let mut tick = tokio::time::interval(every);
    let mut stop = relay.shutdown.clone();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match relay.with_store(|s| s.revocations_after(last)) {
            Ok(revs) => {
                for (n, device) in revs {
                    last = n;
                    tracing::info!(device, "device revoked: closing its connections");
                    let _ = relay.revoked.send(device);
                }
            }
            Err(e) => tracing::warn!("checking revocations: {e}"),
        }
    }
}

struct Closing(u16, String);

/// Frames handed to the writer ahead of the one it is writing: the outbox holds the rest,
/// where the session can see how much waits.
const WRITER_QUEUE: usize = 2;

/// One device's connection, from upgrade to close.
pub async fn connection(socket: WebSocket, relay: AppState, auth: DeviceAuth) {
    relay.connections.fetch_add(1, Ordering::Relaxed);
    let id = relay.connection_id();
    tracing::debug!(device = auth.device_id, team = %auth.team, "connected");
    let closing = run(socket, &relay, &auth, id).await;
    if let Err(Closing(code, reason)) = &closing {
        // Quoted: a close reason may carry a dossier id or text a device sent.
        crate::quietly!(format!("device {}", auth.device_id), info, device = auth.device_id, code, reason = ?reason, "closed");
    }
    relay.connections.fetch_sub(1, Ordering::Relaxed);
}

/// Full duplex: the session reads, handles and queues replies while a writer sends them, so
/// neither peer can block the other by writing (see [`fieldbook_shared::sync::flow`]).
async fn run(
    socket: WebSocket,
    relay: &AppState,
    auth: &DeviceAuth,
    id: u64,
) -> Result<(), Closing> {
    let (sink, stream) = socket.split();
    let (to_writer, queued) = mpsc::channel(WRITER_QUEUE);
    let writer = write_frames(sink, queued, relay.socket.write_stall);
    let session = session(stream, to_writer, relay, auth, id);
    tokio::pin!(writer, session);
    tokio::select! {
        result = &mut session => {
            // The session has queued its close frame, if any, and let go of the queue: the
            // writer ends once everything queued is written.
            let _ = writer.await;
            result
        }
        failed = &mut writer => Err(failed.err().unwrap_or_else(|| {
            Closing(close::INTERNAL, "the writer stopped".into())
        })),
    }
}

/// Write what the session queues, in order, until it lets go of the queue. A device that
/// reads nothing for `stall` (beyond the time the frames take on a slow link) is let go: the
/// relay holds nothing for it without limit.
async fn write_frames(
    mut sink: SplitSink<WebSocket, Message>,
    mut queued: mpsc::Receiver<Message>,
    stall: Duration,
) -> Result<(), Closing> {
    let stalled = || {
        Closing(
            close::GOING_AWAY,
            format!("the device read nothing for {} s", stall.as_secs()),
        )
    };
    let broken = |e: axum::Error| Closing(1006, e.to_string());
    let mut deadlines = WriteDeadlines::new(stall);
    while let Some(message) = queued.recv().await {
        let len = match &message {
            Message::Binary(b) => b.len(),
            _ => 0,
        };
        tokio::time::timeout(deadlines.feed(len), sink.feed(message))
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

/// What a batch of input was.
enum Input {
    Frames(Vec<ToRelay>),
    /// Frames, then the end of the connection.
    Last(Vec<ToRelay>),
    Refused(u16, String),
}

/// Up to [`BATCH_FRAMES`] frames: `first`, and those already received behind it.
fn batch(
    first: Option<Result<Message, axum::Error>>,
    stream: &mut SplitStream<WebSocket>,
) -> Input {
    let mut frames = Vec::new();
    let mut next = first;
    loop {
        match next {
            None | Some(Ok(Message::Close(_))) => return Input::Last(frames),
            Some(Err(e)) => {
                return match too_big(e) {
                    Some(reason) => Input::Refused(close::TOO_BIG, reason),
                    None => Input::Last(frames),
                };
            }
            Some(Ok(Message::Binary(bytes))) => match wire::decode::<ToRelay>(&bytes) {
                Ok(frame) => frames.push(frame),
                Err(e) => {
                    // Nothing of this batch is applied; the device resends.
                    let code = match e {
                        wire::WireError::TooLarge(_) => close::TOO_BIG,
                        _ => close::PROTOCOL,
                    };
                    return Input::Refused(code, e.to_string());
                }
            },
            Some(Ok(Message::Text(_))) => {
                return Input::Refused(
                    close::PROTOCOL,
                    "text frames are not part of the protocol".into(),
                );
            }
            Some(Ok(_)) => {}
        }
        if frames.len() >= BATCH_FRAMES {
            return Input::Frames(frames);
        }
        match stream.next().now_or_never() {
            Some(n) => next = n,
            None => return Input::Frames(frames),
        }
    }
}

/// The session: input is taken while the outbox has room, and bulk output produced into half
/// of it at most, so producing never stops the reading; the outbox feeds the writer whenever
/// it can take a frame.
async fn session(
    mut stream: SplitStream<WebSocket>,
    to_writer: mpsc::Sender<Message>,
    relay: &AppState,
    auth: &DeviceAuth,
    id: u64,
) -> Result<(), Closing> {
    let mut changes = relay.hub.subscribe(auth.team_id);
    let mut revoked = relay.revoked.subscribe();
    let mut stop = relay.shutdown.clone();
    let mut session = RelaySession::new(relay.limits);
    // The team's visibility policy as this session begins: should a manager change it, the
    // device reconnects and catches up under the new one.
    let viewer = Viewer::of(auth);
    let began_at = match relay.with_store(|s| s.visibility(auth.team_id)) {
        Ok(sight) => sight.set_at,
        Err(e) => return Err(Closing(close::INTERNAL, e.to_string())),
    };
    let mut outbox = Outbox::with_limit(relay.socket.outbox_bytes);
    let result = loop {
        if outbox.bulk_room() > 0 && session.has_pending() {
            let produced = relay.with_team(auth.team_id, |store, docs| {
                let mut replica = TeamReplica::for_device(store, auth, docs, now_ms());
                let frames = session.produce(&mut replica, outbox.bulk_room());
                for commit in replica.corrected {
                    // Told in the team's turn, so in the order committed.
                    relay.announce(auth.team_id, commit);
                }
                frames
            });
            match produced {
                Ok(frames) => outbox.extend(frames.into_iter().map(|f| wire::encode(&f))),
                Err(e) => break Err(session_closing(e, auth)),
            }
            continue;
        }
        let room = outbox.has_room();
        tokio::select! {
            permit = to_writer.reserve(), if !outbox.is_empty() => {
                let Ok(permit) = permit else { break Err(Closing(1006, "the writer stopped".into())) };
                if let Some(frame) = outbox.pop() {
                    permit.send(Message::Binary(frame.into()));
                }
            }
            next = stream.next(), if room => {
                let (frames, last) = match batch(next, &mut stream) {
                    Input::Frames(f) => (f, false),
                    Input::Last(f) => (f, true),
                    Input::Refused(code, reason) => break Err(Closing(code, reason)),
                };
                if !frames.is_empty() {
                    let handled = relay.with_team(auth.team_id, |store, docs| {
                        let h = session.receive(
                            &mut TeamReplica::for_device(store, auth, docs, now_ms()),
                            frames,
                        )?;
                        if let Some((seq, docs)) = &h.committed {
                            // Told in the team's turn, so in the order committed.
                            relay.hub.publish(auth.team_id, TeamChange {
                                seq: *seq,
                                docs: Arc::new(docs.clone()),
                                forwards: Arc::new(h.forwards.clone()),
                                origin: id,
                                after: 0,
                            });
                        }
                        Ok(h)
                    });
                    match handled {
                        Ok(h) => {
                            if h.committed.is_some() {
                                // Live edits and new dossiers are written with what their
                                // device vouched for: to be checked.
                                relay.check.notify_one();
                            }
                            outbox.extend(h.replies.iter().map(wire::encode));
                        }
                        Err(e) => break Err(session_closing(e, auth)),
                    }
                }
                if last {
                    break Ok(());
                }
            }
            // Announcements wait while the outbox is full: a lagging subscription catches up
            // from the store, so a device that reads slowly costs no memory for them.
            change = changes.recv(), if room => {
                let told = session.told();
                let (seq, docs, from_here, forwards) = match change {
                    Ok(c) if c.after <= told => {
                        (c.seq, c.docs, c.origin == id, c.forwards)
                    }
                    // Commits this relay learnt of late (another instance's), or missed
                    // announcements: ask the store what changed instead.
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        match relay.with_store(|s| s.changed_since(auth.team_id, told)) {
                            Ok((seq, docs)) => (seq, Arc::new(docs), false, Arc::default()),
                            Err(e) => break Err(Closing(close::INTERNAL, e.to_string())),
                        }
                    }
                    Err(RecvError::Closed) => continue,
                };
                // Only what the device may see, and what left its sight.
                let view = relay.with_store(|s| {
                    auth::commit_view(s, auth.team_id, &viewer, began_at, told, &docs)
                });
                let view = match view {
                    Ok(v) => v,
                    Err(ViewError::PolicyChanged) => {
                        break Err(Closing(close::GOING_AWAY, ViewError::PolicyChanged.to_string()))
                    }
                    Err(ViewError::Store(e)) => break Err(Closing(close::INTERNAL, e.to_string())),
                };
                let forwards: Vec<_> = forwards
                    .iter()
                    .filter(|c| view.visible.contains(&c.doc))
                    .cloned()
                    .collect();
                let announce =
                    session.announce(seq, &view.visible, from_here, &forwards, &view.withdrawn);
                outbox.extend(announce.iter().map(wire::encode));
            }
            device = revoked.recv() => {
                if matches!(device, Ok(d) if d == auth.device_id) {
                    break Err(Closing(close::REVOKED, "this device was revoked".into()));
                }
            }
            _ = stop.changed() => break Err(Closing(close::GOING_AWAY, "the relay is shutting down".into())),
        }
    };
    if let Err(Closing(code, reason)) = &result {
        // What was not written yet is dropped: the device resends what it needs.
        let frame = CloseFrame {
            code: *code,
            reason: clip_reason(reason).into(),
        };
        let _ = to_writer.send(Message::Close(Some(frame))).await;
    }
    result
}

/// Why a session's replica failed, as the device is told.
fn session_closing(e: SessionError<ReplicaError>, auth: &DeviceAuth) -> Closing {
    match e {
        SessionError::Protocol(why) => Closing(close::PROTOCOL, why),
        SessionError::Replica(ReplicaError::Rejected { doc, reason }) => {
            Closing(close::PROTOCOL, format!("{doc}: {reason}"))
        }
        SessionError::Replica(e) => {
            tracing::error!(device = auth.device_id, "sync failed: {e}");
            Closing(
                close::INTERNAL,
                "the relay could not store changes; try again later".into(),
            )
        }
    }
}

/// A close reason is at most 123 bytes.
fn clip_reason(reason: &str) -> String {
    let mut reason = reason.to_string();
    while reason.len() > 120 {
        reason.pop();
    }
    reason
}

/// Whether a read failed because the peer sent more than the socket allows.
fn too_big(e: axum::Error) -> Option<String> {
    use tokio_tungstenite::tungstenite::Error;
    let inner = e.into_inner();
    match inner.downcast_ref::<Error>() {
        Some(Error::Capacity(c)) => Some(format!("frame too large: {c}")),
        _ => None,
    }
}
