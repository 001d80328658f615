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
//!   wait in TCP) and produces no more bulk output (see
//!   [`super::relay::RelaySession::produce`]). An honest device keeps reading, so the outbox
//!   drains and input resumes; a device that stops reading stalls the relay's writer, which
//!   gives up on it after a while.
//!
//! The deterministic simulation drives the same outbox over a transport with bounded
//! buffers, so a peer that wrote without reading would deadlock there too.

use std::collections::VecDeque;

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
}
