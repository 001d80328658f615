//! The relay's side of one device's connection.
//!
//! The relay holds no per-device sync state between connections: a device resumes each
//! exchange from the heads it saw last (see [`super::resume_state`]), and within a connection
//! the relay keeps the state of the exchanges in flight only, bounded by [`Limits`].

use std::collections::HashMap;

use automerge::sync::{Message, State};

use super::wire::{
    DeviceStatus, MAX_FETCH_IDS, MAX_UPLOAD_DOCS, SNAPSHOT_BATCH_BYTES, Snapshot, Stored, ToDevice,
    ToRelay, Upload,
};
use super::{Commit, Incoming, SessionError, batched, closes_exchange};
use crate::document::valid_id;

/// The team's merged dossiers, as one connection's session needs them. An implementation is
/// bound to the connected device's team: ids outside it do not exist for it.
pub trait RelayReplica {
    type Error: std::error::Error + Send + Sync + 'static;
    /// The team's sequence now, and the dossiers changed after `since`.
    fn changed_since(&mut self, since: u64) -> Result<(u64, Vec<String>), Self::Error>;
    /// Apply received messages and commit the result durably, all at once. Returns the
    /// team's sequence after the commit and the dossiers that changed, if any did.
    fn receive(&mut self, batch: &mut [Incoming]) -> Result<Option<Commit>, Self::Error>;
    fn generate(&mut self, doc: &str, state: &mut State) -> Result<Option<Message>, Self::Error>;
    /// Whole dossiers for a device that lacks them; ids the team does not hold come back in
    /// the second list.
    fn snapshots(&mut self, docs: &[String]) -> Result<(Vec<Snapshot>, Vec<String>), Self::Error>;
    fn report(&mut self, status: DeviceStatus) -> Result<(), Self::Error>;
    /// Check and store whole dossiers a device created (merging any the team already
    /// holds), committing all at once. Returns the answer for each and, as
    /// [`RelayReplica::receive`], what was committed.
    fn store_uploads(
        &mut self,
        uploads: Vec<Upload>,
    ) -> Result<(Vec<Stored>, Option<Commit>), Self::Error>;
}

/// Bounds on what one connection may hold the relay to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Exchanges open at once.
    pub docs_in_flight: usize,
    /// Messages in one exchange before it must have converged (two honest peers need a
    /// handful).
    pub rounds_per_doc: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            docs_in_flight: 1024,
            rounds_per_doc: 32,
        }
    }
}

/// The result of handling some frames: what to send back, and what was committed (to
/// announce to the team's other connections).
#[derive(Debug, Default)]
pub struct Handled {
    pub replies: Vec<ToDevice>,
    pub committed: Option<Commit>,
}

#[derive(Default)]
pub struct RelaySession {
    limits: Limits,
    greeted: bool,
    /// The highest team sequence this device has been told about.
    told: u64,
    open: HashMap<String, (State, u32)>,
}

type SessionResult<T, E> = std::result::Result<T, SessionError<E>>;

fn violation<T, E>(why: impl Into<String>) -> SessionResult<T, E> {
    Err(SessionError::Protocol(why.into()))
}

impl RelaySession {
    pub fn new(limits: Limits) -> RelaySession {
        RelaySession {
            limits,
            ..Default::default()
        }
    }

    /// The highest team sequence this device has been told about.
    pub fn told(&self) -> u64 {
        self.told
    }

    /// Exchanges open on this connection (memory held for it).
    pub fn open_exchanges(&self) -> usize {
        self.open.len()
    }

    pub fn receive<R: RelayReplica>(
        &mut self,
        r: &mut R,
        frames: Vec<ToRelay>,
    ) -> SessionResult<Handled, R::Error> {
        let mut out = Handled::default();
        let mut incoming: Vec<Incoming> = Vec::new();
        // Dossiers in this batch, in order, and whether the device closed the exchange.
        let mut order: Vec<(String, bool)> = Vec::new();
        for frame in frames {
            if !self.greeted && !matches!(frame, ToRelay::Hello { .. }) {
                return violation("the first message must be hello");
            }
            match frame {
                ToRelay::Hello { since, status } => {
                    if self.greeted {
                        return violation("a second hello");
                    }
                    self.greeted = true;
                    r.report(status).map_err(SessionError::Replica)?;
                    let (seq, changed) = r.changed_since(since).map_err(SessionError::Replica)?;
                    self.told = seq;
                    out.replies.push(ToDevice::Welcome { seq, changed });
                }
                ToRelay::Status(status) => r.report(status).map_err(SessionError::Replica)?,
                ToRelay::Fetch { docs } => {
                    if docs.len() > MAX_FETCH_IDS {
                        return violation(format!(
                            "fetch of {} dossiers (at most {MAX_FETCH_IDS})",
                            docs.len()
                        ));
                    }
                    if let Some(bad) = docs.iter().find(|d| !valid_id(d)) {
                        return violation(format!("`{}` is not a dossier id", clip(bad)));
                    }
                    let (found, missing) = r.snapshots(&docs).map_err(SessionError::Replica)?;
                    let frames = batched(found, SNAPSHOT_BATCH_BYTES, usize::MAX, |s| {
                        s.bytes.len() + s.projection.search_text.len() + 512
                    });
                    out.replies
                        .extend(frames.into_iter().map(ToDevice::Snapshots));
                    if !missing.is_empty() {
                        out.replies.push(ToDevice::Unavailable { docs: missing });
                    }
                }
                ToRelay::Upload(uploads) => {
                    if uploads.len() > MAX_UPLOAD_DOCS {
                        return violation(format!(
                            "upload of {} dossiers (at most {MAX_UPLOAD_DOCS})",
                            uploads.len()
                        ));
                    }
                    if let Some(bad) = uploads.iter().find(|u| !valid_id(&u.doc)) {
                        return violation(format!("`{}` is not a dossier id", clip(&bad.doc)));
                    }
                    // Keep the order of what the device sent: exchanges gathered so far first.
                    self.apply(r, &mut incoming, &mut out)?;
                    let (stored, committed) =
                        r.store_uploads(uploads).map_err(SessionError::Replica)?;
                    merge_committed(&mut out, committed);
                    out.replies.push(ToDevice::Stored(stored));
                }
                ToRelay::Sync { doc, data, done } => {
                    if !valid_id(&doc) {
                        return violation(format!("`{}` is not a dossier id", clip(&doc)));
                    }
                    let message = match Message::decode(&data) {
                        Ok(m) => m,
                        Err(e) => return violation(format!("bad sync message for {doc}: {e}")),
                    };
                    if incoming.iter().any(|i| i.doc == doc) {
                        self.apply(r, &mut incoming, &mut out)?;
                    }
                    let (state, rounds) = match self.open.remove(&doc) {
                        Some(open) => open,
                        None => {
                            if self.open.len() >= self.limits.docs_in_flight {
                                return violation(format!(
                                    "more than {} dossiers in flight",
                                    self.limits.docs_in_flight
                                ));
                            }
                            (State::new(), 0)
                        }
                    };
                    if rounds >= self.limits.rounds_per_doc {
                        return violation(format!(
                            "{doc} did not converge in {} rounds",
                            self.limits.rounds_per_doc
                        ));
                    }
                    self.open.insert(doc.clone(), (State::new(), rounds + 1));
                    match order.iter_mut().find(|(d, _)| *d == doc) {
                        Some(entry) => entry.1 = done,
                        None => order.push((doc.clone(), done)),
                    }
                    incoming.push(Incoming {
                        doc,
                        state,
                        message,
                    });
                }
            }
        }
        self.apply(r, &mut incoming, &mut out)?;
        for (doc, done) in order {
            let Some((mut state, rounds)) = self.open.remove(&doc) else {
                continue;
            };
            if done {
                continue;
            }
            if let Some(m) = r
                .generate(&doc, &mut state)
                .map_err(SessionError::Replica)?
            {
                let last_word = closes_exchange(&m, &state);
                out.replies.push(ToDevice::Sync {
                    doc: doc.clone(),
                    data: m.encode(),
                    done: last_word,
                });
                if !last_word {
                    self.open.insert(doc, (state, rounds));
                }
            }
        }
        if let Some((seq, docs)) = &out.committed
            && self.told + docs.len() as u64 == *seq
        {
            // Every sequence number since the device was last told is its own write (one per
            // dossier written): it may move its cursor past them, or its next connection
            // would be welcomed with its own writes to exchange again. Otherwise another
            // connection committed in between, and the team's announcements, which come in
            // order, tell it (its own as an empty list).
            self.told = *seq;
            out.replies.push(ToDevice::Changed {
                seq: *seq,
                docs: Vec::new(),
            });
        }
        Ok(out)
    }

    fn apply<R: RelayReplica>(
        &mut self,
        r: &mut R,
        incoming: &mut Vec<Incoming>,
        out: &mut Handled,
    ) -> SessionResult<(), R::Error> {
        if incoming.is_empty() {
            return Ok(());
        }
        let committed = r.receive(incoming).map_err(SessionError::Replica)?;
        merge_committed(out, committed);
        for i in incoming.drain(..) {
            let rounds = self.open.get(&i.doc).map_or(1, |(_, n)| *n);
            self.open.insert(i.doc, (i.state, rounds));
        }
        Ok(())
    }

    /// Another connection committed changes to `docs`, bringing the team to `seq`: tell this
    /// device, unless it has already been told (or wrote them itself, through this session).
    pub fn announce(&mut self, seq: u64, docs: &[String], from_here: bool) -> Option<ToDevice> {
        if !self.greeted || seq <= self.told {
            return None;
        }
        self.told = seq;
        Some(ToDevice::Changed {
            seq,
            docs: if from_here { Vec::new() } else { docs.to_vec() },
        })
    }
}

fn merge_committed(out: &mut Handled, committed: Option<Commit>) {
    if let Some((seq, docs)) = committed {
        match &mut out.committed {
            Some((s, all)) => {
                *s = seq;
                all.extend(docs);
            }
            None => out.committed = Some((seq, docs)),
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}
