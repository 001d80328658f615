//! A counting TCP proxy on 127.0.0.1, put in front of either server so that both are measured
//! the same way: every byte on the wire (HTTP upgrade and WebSocket framing included), and the
//! round trips — how many times the server answered after the client had spoken, counting
//! WebSocket data frames only (the upgrade and the closing handshake are left out, since both
//! sides pay them alike). `COMPARE_TRACE=1` prints every chunk forwarded, with the time.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Default)]
pub struct Counters {
    pub up: AtomicU64,
    pub down: AtomicU64,
    pub round_trips: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    pub up: u64,
    pub down: u64,
    pub round_trips: u64,
}

impl Reading {
    pub fn bytes(&self) -> u64 {
        self.up + self.down
    }

    pub fn since(&self, earlier: Reading) -> Reading {
        Reading {
            up: self.up - earlier.up,
            down: self.down - earlier.down,
            round_trips: self.round_trips - earlier.round_trips,
        }
    }
}

pub struct Proxy {
    pub addr: SocketAddr,
    counters: Arc<Counters>,
}

impl Proxy {
    /// Listen on a free loopback port and forward each connection to `target`.
    pub fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let shared = counters.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                relay_connection(client, server, shared.clone());
            }
        });
        Ok(Proxy { addr, counters })
    }

    pub fn read(&self) -> Reading {
        Reading {
            up: self.counters.up.load(Ordering::SeqCst),
            down: self.counters.down.load(Ordering::SeqCst),
            round_trips: self.counters.round_trips.load(Ordering::SeqCst),
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn relay_connection(client: TcpStream, server: TcpStream, counters: Arc<Counters>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Whether the client sent a data frame since the server's last one.
    let client_spoke = Arc::new(AtomicBool::new(false));
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    {
        let counters = counters.clone();
        let spoke = client_spoke.clone();
        std::thread::spawn(move || {
            pump(client, server, |n, frames| {
                counters.up.fetch_add(n, Ordering::SeqCst);
                if frames > 0 {
                    spoke.store(true, Ordering::SeqCst);
                }
            })
        });
    }
    std::thread::spawn(move || {
        pump(s2, c2, |n, frames| {
            counters.down.fetch_add(n, Ordering::SeqCst);
            if frames > 0 && client_spoke.swap(false, Ordering::SeqCst) {
                counters.round_trips.fetch_add(1, Ordering::SeqCst);
            }
        })
    });
}

/// Copy `from` → `to`, telling `seen` each chunk's size and how many data frames start in it
/// (before forwarding it, so an answer is never counted ahead of its question).
fn pump(mut from: TcpStream, mut to: TcpStream, mut seen: impl FnMut(u64, u32)) {
    let mut frames = FrameScanner::default();
    let trace = std::env::var_os("COMPARE_TRACE").is_some();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let data_frames = frames.feed(&buf[..n]);
        if trace {
            eprintln!(
                "{:?} {:?}→{:?} {n} B",
                std::time::SystemTime::now(),
                from.peer_addr().ok(),
                to.peer_addr().ok()
            );
        }
        seen(n as u64, data_frames);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Finds WebSocket frame headers in one direction of a connection, after its HTTP upgrade.
#[derive(Default)]
struct FrameScanner {
    upgraded: bool,
    /// The last bytes of the HTTP head seen so far (to find its end across reads).
    http_tail: Vec<u8>,
    header: Vec<u8>,
    payload_left: u64,
}

impl FrameScanner {
    /// Data frames (text, binary, continuation) that start in `data`.
    fn feed(&mut self, mut data: &[u8]) -> u32 {
        if !self.upgraded {
            let mut seen = std::mem::take(&mut self.http_tail);
            let before = seen.len();
            seen.extend_from_slice(data);
            match seen.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(end) => {
                    self.upgraded = true;
                    data = &data[end + 4 - before..];
                }
                None => {
                    let keep = seen.len().saturating_sub(3);
                    self.http_tail = seen[keep..].to_vec();
                    return 0;
                }
            }
        }
        let mut count = 0;
        while !data.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(data.len() as u64) as usize;
                self.payload_left -= skip as u64;
                data = &data[skip..];
                continue;
            }
            self.header.push(data[0]);
            data = &data[1..];
            if let Some((opcode, payload)) = parse_header(&self.header) {
                if matches!(opcode, 0x0..=0x2) {
                    count += 1;
                }
                self.payload_left = payload;
                self.header.clear();
            }
        }
        count
    }
}

/// A complete frame header's opcode and payload length, or None if more bytes are needed.
fn parse_header(h: &[u8]) -> Option<(u8, u64)> {
    if h.len() < 2 {
        return None;
    }
    let masked = h[1] & 0x80 != 0;
    let (len_bytes, short) = match h[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(n as u64)),
    };
    let need = 2 + len_bytes + if masked { 4 } else { 0 };
    if h.len() < need {
        return None;
    }
    let payload = short.unwrap_or_else(|| {
        h[2..2 + len_bytes]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | *b as u64)
    });
    Some((h[0] & 0x0f, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_across_reads() {
        let mut s = FrameScanner::default();
        assert_eq!(s.feed(b"HTTP/1.1 101 Switching\r\n\r"), 0);
        // "\n" ends the head; then a binary frame of 3 bytes and half a close frame header.
        assert_eq!(s.feed(b"\n\x82\x03abc\x88"), 1);
        assert_eq!(s.feed(b"\x00"), 0);
        // A masked binary frame with a 16-bit length (200 bytes), split across reads.
        let mut frame = vec![0x82, 0xfe, 0x00, 200, 1, 2, 3, 4];
        frame.extend(std::iter::repeat_n(7u8, 200));
        assert_eq!(s.feed(&frame[..5]), 0);
        assert_eq!(s.feed(&frame[5..]), 1);
        assert_eq!(s.feed(b"\x82\x01x\x02\x00"), 2);
    }
}
