//! Log lines a peer can cause, kept to a few a minute per peer: a device reconnecting with
//! garbage, a token opening socket after socket, logins under made-up names or a device whose
//! uploads the check keeps refusing must not fill the relay's log (or its disk). The first
//! lines of each minute are written; the rest are counted, and the next line written says how
//! many were held back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines one peer may cause per [`WINDOW`].
pub const LINES_PER_WINDOW: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Peers remembered before the quiet ones are forgotten.
const PEERS: usize = 10_000;

/// The relay's quota: log lines are the process's, whichever part writes them.
pub static LOGS: std::sync::LazyLock<LogQuota> = std::sync::LazyLock::new(LogQuota::default);

#[derive(Default)]
pub struct LogQuota {
    peers: Mutex<HashMap<String, Window>>,
}

struct Window {
    started: Instant,
    lines: u32,
    held_back: u32,
}

/// Whether to write a line now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Write it; `held_back` lines of this peer's were not written before it.
    Write { held_back: u32 },
    /// Hold it back (counted).
    HoldBack,
}

impl LogQuota {
    /// Whether one more line caused by `peer` is written at `now`.
    pub fn admit(&self, peer: &str, now: Instant) -> Admit {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if peers.len() >= PEERS && !peers.contains_key(peer) {
            peers.retain(|_, w| now.saturating_duration_since(w.started) < WINDOW);
        }
        let window = peers.entry(peer.to_string()).or_insert(Window {
            started: now,
            lines: 0,
            held_back: 0,
        });
        if now.saturating_duration_since(window.started) >= WINDOW {
            window.started = now;
            window.lines = 0;
        }
        if window.lines < LINES_PER_WINDOW {
            window.lines += 1;
            let held_back = std::mem::take(&mut window.held_back);
            Admit::Write { held_back }
        } else {
            window.held_back += 1;
            Admit::HoldBack
        }
    }
}

/// Write a log line caused by `peer`, unless it has caused too many lately:
/// `quietly!(peer, warn, field = value, "message")`. A line written after some were held back
/// carries `held_back = N`.
#[macro_export]
macro_rules! quietly {
    ($peer:expr, $level:ident, $($rest:tt)+) => {
        match $crate::quiet::LOGS.admit(&$peer, std::time::Instant::now()) {
            $crate::quiet::Admit::Write { held_back: 0 } => tracing::$level!($($rest)+),
            $crate::quiet::Admit::Write { held_back } => tracing::$level!(held_back, $($rest)+),
            $crate::quiet::Admit::HoldBack => {}
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_a_few_lines_a_minute_and_then_hears_how_many_were_held_back() {
        let quota = LogQuota::default();
        let t0 = Instant::now();
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(quota.admit("device 7", t0), Admit::Write { held_back: 0 });
        }
        for _ in 0..500 {
            assert_eq!(quota.admit("device 7", t0), Admit::HoldBack);
        }
        // Another peer is not held back by this one.
        assert_eq!(quota.admit("device 8", t0), Admit::Write { held_back: 0 });
        // A minute later: written again, saying how many were not.
        let later = t0 + WINDOW;
        assert_eq!(
            quota.admit("device 7", later),
            Admit::Write { held_back: 500 }
        );
        assert_eq!(
            quota.admit("device 7", later),
            Admit::Write { held_back: 0 }
        );
    }

    #[test]
    fn many_peers_are_remembered_within_a_bound() {
        let quota = LogQuota::default();
        let t0 = Instant::now();
        for n in 0..PEERS {
            quota.admit(&format!("peer {n}"), t0);
        }
        // A minute on, a new peer makes room by forgetting the quiet ones.
        quota.admit("one more", t0 + WINDOW);
        assert_eq!(quota.peers.lock().unwrap().len(), 1);
    }
}
