//! Flow control for one connection, without IO.
//!
//! Both peers of a sync connection produce frames in bulk (a device back from a long trip
//! uploads megabytes while the relay sends it megabytes of its colleagues' work). If either
//! side stopped reading while it wrote, both TCP send queues would fill and the connection
//! would hang with both peers idle. So every connection keeps reading while it writes:
//! frames to send wait in an [`Outbox`], which a writer drains on its own.
//!
//! What bounds memory differs by side:
//! - the **device** always reads. Its outbox is bounded by the session's windows
//!   ([`super::device::Window`]): it never has more than a window's worth of work in flight.
//! - the **relay** must not trust the device to respect a window, so its outbox has a byte
//!   limit: while the outbox is over it, the relay stops taking input (the device's sends then
//!   wait in TCP). Bulk output (dossiers asked for whole, see
//!   [`super::relay::RelaySession::produce`]) may fill only half of it, so that producing never
//!   stops the relay from reading: the other half is for the answers to what it reads. An
//!   honest device keeps reading, so the outbox drains; a device that stops reading stalls the
//!   relay's writer, which gives up on it after a while ([`write_deadline`]).
//!
//! The deterministic simulation drives the same outbox over a transport with bounded
//! buffers, so a peer that wrote without reading would deadlock there too.

use std::collections::VecDeque;
use std::time::Duration;

/// Bytes of frames the relay holds for one connection before it stops taking input.
pub const RELAY_OUTBOX_BYTES: usize = 4 << 20;

/// Encoded frames waiting to be written, in order, with their size in bytes.
#[derive(Debug, Clone)]
pub struct Outbox {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    limit: usize,
}

impl Outbox {
    /// An outbox that asks its owner to stop taking input once it holds `limit` bytes.
    pub fn with_limit(limit: usize) -> Outbox {
        Outbox {
            frames: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// An outbox bounded by the protocol rather than by a byte count (the device's).
    pub fn unbounded() -> Outbox {
        Outbox::with_limit(usize::MAX)
    }

    pub fn push(&mut self, frame: Vec<u8>) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    pub fn extend(&mut self, frames: impl IntoIterator<Item = Vec<u8>>) {
        for frame in frames {
            self.push(frame);
        }
    }

    /// The next frame to write.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        let frame = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some(frame)
    }

    /// The next frame to write, left in place.
    pub fn peek(&self) -> Option<&[u8]> {
        self.frames.front().map(Vec::as_slice)
    }

    /// Forget everything not yet written (the connection is closing).
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the owner may take more input or produce more bulk output now.
    pub fn has_room(&self) -> bool {
        self.bytes < self.limit
    }

    /// Bytes that may still be added before the outbox is full.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.bytes)
    }

    /// Bytes of bulk output that may still be added: bulk fills half the outbox at most, so
    /// that the owner keeps taking input while it produces.
    pub fn bulk_room(&self) -> usize {
        (self.limit / 2).saturating_sub(self.bytes)
    }
}

/// The slowest link a peer is still taken to be reading on (bytes per second): a rep on a
/// poor mobile connection.
pub const SLOWEST_READER_BYTES_PER_S: u64 = 4 * 1024;

/// The deadlines of one connection's writer, which hands frames to its socket one at a time:
/// handing over a frame first finishes writing the one before it.
#[derive(Debug, Clone, Copy)]
pub struct WriteDeadlines {
    stall: Duration,
    /// Bytes handed to the socket and maybe not written yet.
    unwritten: usize,
}

impl WriteDeadlines {
    pub fn new(stall: Duration) -> WriteDeadlines {
        WriteDeadlines {
            stall,
            unwritten: 0,
        }
    }

    /// How long handing over a frame of `len` bytes may take; counts it as handed over.
    pub fn feed(&mut self, len: usize) -> Duration {
        let deadline = write_deadline(self.stall, self.unwritten + len);
        self.unwritten = len;
        deadline
    }

    /// How long flushing what was handed over may take; counts it as written.
    pub fn flush(&mut self) -> Duration {
        let deadline = write_deadline(self.stall, self.unwritten);
        self.unwritten = 0;
        deadline
    }
}

/// How long writing `bytes` may take before the peer is taken to have stopped reading: the
/// stall allowed for any write, plus the time the bytes take at the slowest link. A fixed
/// limit per frame would drop an honest peer on a slow link as soon as one frame (up to
/// megabytes) took longer than the stall, and again on every retry.
pub fn write_deadline(stall: Duration, bytes: usize) -> Duration {
    stall + Duration::from_secs(bytes as u64 / SLOWEST_READER_BYTES_PER_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_reports_room() {
        let mut out = Outbox::with_limit(10);
        assert!(out.has_room());
        out.push(vec![0; 6]);
        assert_eq!((out.bytes(), out.room()), (6, 4));
        out.push(vec![1; 6]);
        assert!(!out.has_room(), "over the limit: stop taking input");
        assert_eq!(out.pop(), Some(vec![0; 6]));
        assert!(out.has_room());
        assert_eq!(out.peek(), Some(&[1u8; 6][..]));
        out.clear();
        assert!(out.is_empty());
        assert_eq!(out.bytes(), 0);
        assert!(Outbox::unbounded().has_room());
    }

    #[test]
    fn bulk_output_leaves_half_the_outbox_to_answers() {
        let mut out = Outbox::with_limit(100);
        assert_eq!(out.bulk_room(), 50);
        out.push(vec![0; 60]);
        assert_eq!(out.bulk_room(), 0, "no more bulk");
        assert!(out.has_room(), "but input is still taken");
    }

    #[test]
    fn a_large_frame_may_take_longer_to_write() {
        let stall = Duration::from_secs(60);
        assert_eq!(write_deadline(stall, 0), stall);
        // A 1 MiB frame at 4 KiB/s: 256 s more.
        assert_eq!(write_deadline(stall, 1 << 20), Duration::from_secs(316));
        let mut writer = WriteDeadlines::new(stall);
        assert_eq!(writer.feed(4096), stall + Duration::from_secs(1));
        // The frame before is still being written as the next is handed over.
        assert_eq!(writer.feed(8192), stall + Duration::from_secs(3));
        assert_eq!(writer.flush(), stall + Duration::from_secs(2));
        assert_eq!(writer.flush(), stall);
    }
}
