//! Serving: the accept loop (with a header-read timeout that `axum::serve` lacks), one task
//! per device connection, the revocation watcher, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use fieldbook_shared::sync::SessionError;
use fieldbook_shared::sync::relay::RelaySession;
use fieldbook_shared::sync::wire::{self, ToDevice, ToRelay, close};
use futures_util::FutureExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;

use crate::http::{AppState, TeamChange, now_ms, router};
use crate::replica::{OpenDocs, ReplicaError, TeamReplica};
use crate::store::DeviceAuth;

/// Frames handled in one batch (one commit) at most.
const BATCH_FRAMES: usize = 256;

#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// A client must send its request headers within this time.
    pub header_timeout: Duration,
    /// How often the revocation list is checked (admin commands run in another process).
    pub revocation_poll: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_timeout: Duration::from_secs(10),
            revocation_poll: Duration::from_millis(500),
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
    let warm = relay.clone();
    tokio::task::spawn_blocking(move || crate::team::warm_boards(&warm));
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
                let service = TowerToHyperService::new(app.clone());
                let conn = http.serve_connection(TokioIo::new(stream), service).with_upgrades();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    tokio::pin!(conn);
                    tokio::select! {
                        r = conn.as_mut() => log_conn(peer, r),
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            log_conn(peer, conn.await);
                        }
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

/// One device's connection, from upgrade to close.
pub async fn connection(socket: WebSocket, relay: AppState, auth: DeviceAuth) {
    relay.connections.fetch_add(1, Ordering::Relaxed);
    let id = relay.connection_id();
    tracing::debug!(device = auth.device_id, team = %auth.team, "connected");
    let closing = run(socket, &relay, &auth, id).await;
    if let Err(Closing(code, reason)) = &closing {
        tracing::info!(device = auth.device_id, code, "closed: {reason}");
    }
    relay.connections.fetch_sub(1, Ordering::Relaxed);
}

async fn run(
    mut socket: WebSocket,
    relay: &AppState,
    auth: &DeviceAuth,
    id: u64,
) -> Result<(), Closing> {
    let mut changes = relay.hub.subscribe(auth.team_id);
    let mut revoked = relay.revoked.subscribe();
    let mut stop = relay.shutdown.clone();
    let mut session = RelaySession::new(relay.limits);
    let mut open = OpenDocs::default();
    let result = loop {
        tokio::select! {
            next = socket.recv() => {
                let mut frames = Vec::new();
                let mut next = next;
                let mut ended = false;
                loop {
                    match next {
                        None => { ended = true; break; }
                        Some(Err(e)) => {
                            if let Some(reason) = too_big(e) {
                                return close_with(socket, close::TOO_BIG, &reason).await;
                            }
                            ended = true;
                            break;
                        }
                        Some(Ok(Message::Binary(bytes))) => match wire::decode::<ToRelay>(&bytes) {
                            Ok(frame) => frames.push(frame),
                            Err(e) => {
                                // Nothing of this batch is applied; the device resends.
                                let code = match e {
                                    wire::WireError::TooLarge(_) => close::TOO_BIG,
                                    _ => close::PROTOCOL,
                                };
                                return close_with(socket, code, &e.to_string()).await;
                            }
                        },
                        Some(Ok(Message::Close(_))) => { ended = true; break; }
                        Some(Ok(Message::Text(_))) => {
                            return close_with(socket, close::PROTOCOL, "text frames are not part of the protocol").await;
                        }
                        Some(Ok(_)) => {}
                    }
                    if frames.len() >= BATCH_FRAMES {
                        break;
                    }
                    match socket.recv().now_or_never() {
                        Some(n) => next = n,
                        None => break,
                    }
                }
                if frames.is_empty() && ended {
                    break Ok(());
                }
                if frames.is_empty() {
                    continue;
                }
                let handled = relay.with_store(|store| {
                    session.receive(
                        &mut TeamReplica { store, auth, open: &mut open, now_ms: now_ms() },
                        frames,
                    )
                });
                match handled {
                    Ok(h) => {
                        if let Some((seq, docs)) = h.committed {
                            relay.hub.publish(auth.team_id, TeamChange { seq, docs: Arc::new(docs), origin: id });
                        }
                        if let Err(e) = send(&mut socket, &h.replies).await {
                            break Err(e);
                        }
                    }
                    Err(SessionError::Protocol(why)) => break Err(Closing(close::PROTOCOL, why)),
                    Err(SessionError::Replica(ReplicaError::Rejected { doc, reason })) => {
                        break Err(Closing(close::PROTOCOL, format!("{doc}: {reason}")));
                    }
                    Err(SessionError::Replica(e)) => {
                        tracing::error!(device = auth.device_id, "sync failed: {e}");
                        break Err(Closing(close::INTERNAL, "the relay could not store changes; try again later".into()));
                    }
                }
                if ended {
                    break Ok(());
                }
            }
            change = changes.recv() => {
                let announce = match change {
                    Ok(c) => session.announce(c.seq, &c.docs, c.origin == id),
                    Err(RecvError::Lagged(_)) => {
                        // Missed some announcements: ask the store what changed instead.
                        let since = session.told();
                        match relay.with_store(|s| s.changed_since(auth.team_id, since)) {
                            Ok((seq, docs)) => session.announce(seq, &docs, false),
                            Err(e) => break Err(Closing(close::INTERNAL, e.to_string())),
                        }
                    }
                    Err(RecvError::Closed) => None,
                };
                if let Some(msg) = announce
                    && let Err(e) = send(&mut socket, &[msg]).await
                {
                    break Err(e);
                }
            }
            device = revoked.recv() => {
                if matches!(device, Ok(d) if d == auth.device_id) {
                    break Err(Closing(close::REVOKED, "this device was revoked".into()));
                }
            }
            _ = stop.changed() => break Err(Closing(close::GOING_AWAY, "the relay is shutting down".into())),
        }
    };
    match result {
        Ok(()) => Ok(()),
        Err(Closing(code, reason)) => close_with(socket, code, &reason).await,
    }
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

async fn close_with(mut socket: WebSocket, code: u16, reason: &str) -> Result<(), Closing> {
    // A close reason is at most 123 bytes.
    let mut reason: String = reason.to_string();
    while reason.len() > 120 {
        reason.pop();
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.clone().into(),
        })))
        .await;
    Err(Closing(code, reason))
}

async fn send(socket: &mut WebSocket, replies: &[ToDevice]) -> Result<(), Closing> {
    use futures_util::SinkExt;
    for reply in replies {
        socket
            .feed(Message::Binary(wire::encode(reply).into()))
            .await
            .map_err(|e| Closing(1006, e.to_string()))?;
    }
    socket
        .flush()
        .await
        .map_err(|e| Closing(1006, e.to_string()))
}
