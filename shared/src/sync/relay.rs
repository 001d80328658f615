//! The relay's side of one device's connection.
//!
//! The relay holds no per-device sync state between connections: a device resumes each
//! exchange from the heads it saw last (see [`super::resume_state`]), and within a connection
//! the relay keeps the state of the exchanges in flight only, bounded by [`Limits`].

use std::collections::{HashMap, VecDeque};

use automerge::sync::{Message, State};

use super::wire::{
    Changes, DeviceStatus, MAX_FETCH_IDS, MAX_UPLOAD_DOCS, Pushed, SNAPSHOT_BATCH_BYTES, Snapshot,
    Stored, ToDevice, ToRelay, Upload,
};
use super::{Commit, Incoming, SessionError, batched, closes_exchange, closing_word};
use crate::document::valid_id;

/// The team's merged dossiers, as one connection's session needs them. An implementation is
/// bound to the connected device's team: ids outside it do not exist for it.
pub trait RelayReplica {
    type Error: std::error::Error + Send + Sync + 'static;
    /// The team's sequence now, the dossiers changed after `since` that the device may see,
    /// and those it may no longer hold.
    fn changed_since(&mut self, since: u64) -> Result<Catchup, Self::Error>;
    /// What the device may do with each of `docs` (in order), as the team's policy says.
    fn access(&mut self, docs: &[String]) -> Result<Vec<Access>, Self::Error>;
    /// Apply received messages and commit the result durably, all at once. Returns the
    /// team's sequence after the commit and the dossiers that changed, if any did.
    fn receive(&mut self, batch: &mut [Incoming]) -> Result<Option<Commit>, Self::Error>;
    fn generate(&mut self, doc: &str, state: &mut State) -> Result<Option<Message>, Self::Error>;
    /// Whole dossiers for a device that lacks them; ids the team does not hold come back in
    /// the second list.
    fn snapshots(&mut self, docs: &[String]) -> Result<(Vec<Snapshot>, Vec<String>), Self::Error>;
    /// Record what the device reports of itself, durably. `completed`: the report names a
    /// sync that has just completed (the device waits for this record before saying so);
    /// otherwise it is what the device holds as it connects.
    fn report(&mut self, status: DeviceStatus, completed: bool) -> Result<(), Self::Error>;
    /// Check and store whole dossiers a device created (merging any the team already
    /// holds), committing all at once. Returns the answer for each and, as
    /// [`RelayReplica::receive`], what was committed.
    fn store_uploads(
        &mut self,
        uploads: Vec<Upload>,
    ) -> Result<(Vec<Stored>, Option<Commit>), Self::Error>;
    /// Store pushed changes made on what the team holds of each dossier, as they are,
    /// committing all at once; the rest are not taken. Returns the answer for each, what was
    /// committed, and the changes taken (to pass on to the team's other devices).
    fn store_pushes(&mut self, pushes: Vec<Changes>) -> Result<PushesStored, Self::Error>;
}

/// What a device catching up is told (see [`RelayReplica::changed_since`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catchup {
    pub seq: u64,
    pub changed: Vec<String>,
    pub withdrawn: Vec<String>,
}

/// What a device may do with one dossier (decided by the relay's policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write it; or the team does not hold it, and the device may create it.
    Full,
    /// Not read it: the device held it once (it was reassigned or unshared, or the team's
    /// policy changed) and may send, whole, what it had not synced of it.
    SendOnly,
    /// Neither.
    None,
}

/// What storing pushed changes did (see [`RelayReplica::store_pushes`]).
#[derive(Debug, Default)]
pub struct PushesStored {
    pub answers: Vec<Pushed>,
    pub committed: Option<Commit>,
    pub taken: Vec<Changes>,
}

/// Bounds on what one connection may hold the relay to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Exchanges open at once.
    pub docs_in_flight: usize,
    /// Messages in one exchange before it must have converged (two honest peers need a
    /// handful).
    pub rounds_per_doc: u32,
    /// Dossiers asked for whole and not yet sent (a device's window asks for at most
    /// `4 × MAX_FETCH_IDS`).
    pub fetches_waiting: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            docs_in_flight: 1024,
            rounds_per_doc: 32,
            fetches_waiting: 8 * MAX_FETCH_IDS,
        }
    }
}

/// Dossiers read from the store at a time while producing snapshots, at most. Fewer are read
/// when the dossiers sent so far were large (see [`RelaySession::produce`]).
const PRODUCE_STEP: usize = 64;

/// The result of handling some frames: what to send back, and what was committed (to
/// announce to the team's other connections).
#[derive(Debug, Default)]
pub struct Handled {
    pub replies: Vec<ToDevice>,
    pub committed: Option<Commit>,
    /// Changes pushed and taken, to pass on with the announcement of the commit.
    pub forwards: Vec<Changes>,
}

#[derive(Default)]
pub struct RelaySession {
    limits: Limits,
    greeted: bool,
    /// The highest team sequence this device has been told about.
    told: u64,
    open: HashMap<String, (State, u32)>,
    /// Dossiers asked for whole, sent as the connection's outbox makes room.
    fetches: VecDeque<String>,
    /// Dossiers sent whole so far, and their bytes: the size to expect of the next.
    produced: (usize, usize),
}

type SessionResult<T, E> = std::result::Result<T, SessionError<E>>;

fn violation<T, E>(why: impl Into<String>) -> SessionResult<T, E> {
    Err(SessionError::Protocol(why.into()))
}

/// An upload or push frame names at most [`MAX_UPLOAD_DOCS`] dossiers, each by a valid id.
fn check_batch<'a, E>(
    what: &str,
    docs: impl ExactSizeIterator<Item = &'a str>,
) -> SessionResult<(), E> {
    if docs.len() > MAX_UPLOAD_DOCS {
        return violation(format!(
            "{what} of {} dossiers (at most {MAX_UPLOAD_DOCS})",
            docs.len()
        ));
    }
    for doc in docs {
        if !valid_id(doc) {
            return violation(format!("`{}` is not a dossier id", clip(doc)));
        }
    }
    Ok(())
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
        // Dossiers the device sent whole or pushed, those it is to let go, and items of its
        // uploads and pushes not stored.
        let mut written: Vec<String> = Vec::new();
        let mut withdrawn: Vec<String> = Vec::new();
        let mut refused: Vec<String> = Vec::new();
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
                    let Catchup {
                        seq,
                        changed,
                        withdrawn,
                    } = r.changed_since(since).map_err(SessionError::Replica)?;
                    let recorded =
                        changed.is_empty() && withdrawn.is_empty() && status.unsynced == 0;
                    r.report(status, recorded).map_err(SessionError::Replica)?;
                    self.told = seq;
                    out.replies.push(ToDevice::Welcome {
                        seq,
                        changed,
                        withdrawn,
                        recorded,
                    });
                }
                ToRelay::Status(status) => {
                    r.report(status, true).map_err(SessionError::Replica)?;
                    out.replies.push(ToDevice::Recorded {
                        last_sync_ms: status.last_sync_ms,
                    });
                }
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
                    if self.fetches.len() + docs.len() > self.limits.fetches_waiting {
                        return violation(format!(
                            "more than {} dossiers asked for at once",
                            self.limits.fetches_waiting
                        ));
                    }
                    // Sent by `produce`, as the outbox makes room: a device that asks for
                    // the whole team never makes the relay hold it all in memory.
                    self.fetches.extend(docs);
                }
                ToRelay::Upload(uploads) => {
                    check_batch("upload", uploads.iter().map(|u| u.doc.as_str()))?;
                    // Keep the order of what the device sent: exchanges gathered so far first.
                    self.apply(r, &mut incoming, &mut out)?;
                    // Whole, a dossier the device may no longer see is merged too (its last
                    // changes), the relay working its readers out from the merged document.
                    let (mut uploads, send_only) = sendable(r, uploads, |u| &u.doc, &mut refused)?;
                    uploads.extend(send_only);
                    written.extend(uploads.iter().map(|u| u.doc.clone()));
                    if !uploads.is_empty() {
                        let (stored, committed) =
                            r.store_uploads(uploads).map_err(SessionError::Replica)?;
                        merge_committed(&mut out, committed);
                        out.replies.push(ToDevice::Stored(stored));
                    }
                }
                ToRelay::Push(pushes) => {
                    check_batch("push", pushes.iter().map(|p| p.doc.as_str()))?;
                    // Keep the order of what the device sent: exchanges gathered so far first.
                    self.apply(r, &mut incoming, &mut out)?;
                    let (pushes, send_only) = sendable(r, pushes, |p| &p.doc, &mut refused)?;
                    written.extend(pushes.iter().map(|p| p.doc.clone()));
                    // Changes to a dossier the device may no longer see come whole, where
                    // the relay works out its readers itself: not taken, so the device
                    // exchanges it, is told to let it go, and sends it whole.
                    let mut answers: Vec<Pushed> = send_only
                        .into_iter()
                        .map(|p| Pushed {
                            doc: p.doc,
                            taken: false,
                            heads: Vec::new(),
                        })
                        .collect();
                    if !pushes.is_empty() {
                        let stored = r.store_pushes(pushes).map_err(SessionError::Replica)?;
                        merge_committed(&mut out, stored.committed);
                        out.forwards.extend(stored.taken);
                        answers.extend(stored.answers);
                    }
                    if !answers.is_empty() {
                        out.replies.push(ToDevice::Pushed(answers));
                    }
                }
                ToRelay::Sync { doc, data, done } => {
                    if !valid_id(&doc) {
                        return violation(format!("`{}` is not a dossier id", clip(&doc)));
                    }
                    let message = match Message::decode(&data) {
                        Ok(m) => m,
                        Err(e) => return violation(format!("bad sync message for {doc}: {e}")),
                    };
                    let access = r
                        .access(std::slice::from_ref(&doc))
                        .map_err(SessionError::Replica)?;
                    if access.first() != Some(&Access::Full) {
                        // Not exchanged: the device is told to let it go (sending whole what
                        // it has not synced, if it may).
                        self.open.remove(&doc);
                        withdrawn.push(doc);
                        continue;
                    }
                    if incoming.iter().any(|i| i.doc == doc) {
                        self.apply(r, &mut incoming, &mut out)?;
                    }
                    if order.iter().any(|(d, done)| *d == doc && *done) {
                        // The device closed this dossier's exchange earlier in the batch and
                        // starts the next one here: it starts afresh, rounds included (a
                        // dossier a colleague keeps editing is exchanged again and again).
                        self.open.remove(&doc);
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
            match r
                .generate(&doc, &mut state)
                .map_err(SessionError::Replica)?
            {
                Some(m) => {
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
                None => {
                    // Nothing more to say, but the device waits for an answer.
                    out.replies.push(ToDevice::Sync {
                        doc: doc.clone(),
                        data: closing_word(&state).encode(),
                        done: true,
                    });
                }
            }
        }
        // What the device wrote (sent whole, pushed, or through an exchange) may have left its
        // sight (a rep who handed a dossier to a colleague, or created one for them): it lets
        // it go, now that the relay holds it.
        if let Some((_, docs)) = &out.committed {
            written.extend(docs.iter().cloned());
        }
        written.sort();
        written.dedup();
        let access = r.access(&written).map_err(SessionError::Replica)?;
        for (doc, access) in written.into_iter().zip(access) {
            if access != Access::Full {
                self.open.remove(&doc);
                withdrawn.push(doc);
            }
        }
        if !withdrawn.is_empty() || !refused.is_empty() {
            withdrawn.sort();
            withdrawn.dedup();
            withdrawn.retain(|d| !refused.contains(d));
            out.replies.push(ToDevice::Withdrawn {
                docs: withdrawn,
                refused,
            });
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
            // Ahead of the answers (after the welcome, if any), so that the device knows the
            // sequence before it finds itself idle and reports: one report, however the
            // frames are split across reads.
            let at = usize::from(matches!(
                out.replies.first(),
                Some(ToDevice::Welcome { .. })
            ));
            out.replies.insert(
                at,
                ToDevice::Changed {
                    seq: *seq,
                    docs: Vec::new(),
                },
            );
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

    /// Whether snapshots asked for are still to be produced.
    pub fn has_pending(&self) -> bool {
        !self.fetches.is_empty()
    }

    /// Snapshots asked for, about `budget` bytes of them: the bulk output, produced only while
    /// the connection's outbox has room for it. Dossiers are read a step at a time, the step
    /// sized by the dossiers sent so far, so a step overshoots the budget by about one
    /// dossier, whatever their size.
    pub fn produce<R: RelayReplica>(
        &mut self,
        r: &mut R,
        budget: usize,
    ) -> SessionResult<Vec<ToDevice>, R::Error> {
        let mut out = Vec::new();
        let mut bytes = 0;
        while bytes < budget && !self.fetches.is_empty() {
            let per_doc = self
                .produced
                .1
                .checked_div(self.produced.0)
                .unwrap_or(budget);
            let step = ((budget - bytes) / per_doc.max(1)).clamp(1, PRODUCE_STEP);
            let n = self.fetches.len().min(step);
            let ids: Vec<String> = self.fetches.drain(..n).collect();
            let (found, missing) = r.snapshots(&ids).map_err(SessionError::Replica)?;
            let size = |s: &Snapshot| s.bytes.len() + s.projection.search_text.len() + 512;
            let found_bytes = found.iter().map(size).sum::<usize>();
            bytes += found_bytes;
            self.produced.0 += found.len();
            self.produced.1 += found_bytes;
            let frames = batched(found, SNAPSHOT_BATCH_BYTES, usize::MAX, size);
            out.extend(frames.into_iter().map(ToDevice::Snapshots));
            if !missing.is_empty() {
                out.push(ToDevice::Unavailable { docs: missing });
            }
        }
        Ok(out)
    }

    /// Another connection committed changes to `docs`, bringing the team to `seq`: tell this
    /// device, unless it has already been told (or wrote them itself, through this session).
    /// Changes pushed and taken (`forwards`) are passed on as they are. The caller passes
    /// only what the device may see; `withdrawn`, what the commit took out of its sight.
    pub fn announce(
        &mut self,
        seq: u64,
        docs: &[String],
        from_here: bool,
        forwards: &[Changes],
        withdrawn: &[String],
    ) -> Vec<ToDevice> {
        if !self.greeted || seq <= self.told {
            return Vec::new();
        }
        self.told = seq;
        if from_here {
            return vec![ToDevice::Changed {
                seq,
                docs: Vec::new(),
            }];
        }
        let mut out: Vec<ToDevice> = Vec::new();
        if !withdrawn.is_empty() {
            for doc in withdrawn {
                // The device stops exchanging it; so does this side.
                self.open.remove(doc);
            }
            out.push(ToDevice::Withdrawn {
                docs: withdrawn.to_vec(),
                refused: Vec::new(),
            });
        }
        out.extend(forwards.iter().map(|c| ToDevice::Forward {
            seq,
            changes: Box::new(c.clone()),
        }));
        let rest: Vec<String> = docs
            .iter()
            .filter(|d| !forwards.iter().any(|c| &c.doc == *d))
            .cloned()
            .collect();
        // Always the last frame, even with no dossier left to name: the device takes `seq` as
        // seen only from it, once every forward before it has reached it (a connection cut
        // after some forwards must not skip the rest of the commit).
        out.push(ToDevice::Changed { seq, docs: rest });
        out
    }
}

/// The items of an upload or push the device may send (see [`Access`]), those of them to
/// dossiers it may no longer see, apart; the others are not stored, and the device is told
/// so (`refused`).
fn sendable<R: RelayReplica, T>(
    r: &mut R,
    items: Vec<T>,
    doc: impl Fn(&T) -> &String,
    refused: &mut Vec<String>,
) -> SessionResult<(Vec<T>, Vec<T>), R::Error> {
    let docs: Vec<String> = items.iter().map(|i| doc(i).clone()).collect();
    let access = r.access(&docs).map_err(SessionError::Replica)?;
    let mut kept = Vec::with_capacity(items.len());
    let mut send_only = Vec::new();
    for (item, access) in items.into_iter().zip(access) {
        match access {
            Access::Full => kept.push(item),
            Access::SendOnly => send_only.push(item),
            Access::None => refused.push(doc(&item).clone()),
        }
    }
    Ok((kept, send_only))
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
