//! The device's side of a sync session.
//!
//! On connecting the device says how far it has seen the team's changes; the relay answers
//! with the dossiers changed since. Those, and every dossier with local changes not yet
//! acknowledged, are synced with Automerge's sync protocol, a window of them at a time;
//! dossiers the device has never held are fetched whole. When nothing is left in flight the
//! device records how far it has seen, so reconnecting with nothing changed costs one round
//! trip whatever the number of dossiers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use automerge::sync::{Message, State};

use super::wire::{
    Changes, DeviceStatus, MAX_FETCH_IDS, MAX_UPLOAD_DOCS, Pushed, SNAPSHOT_BATCH_BYTES, Snapshot,
    Stored, ToDevice, ToRelay, Upload,
};
use super::{Incoming, SessionError, batched, closes_exchange, closing_word};

/// The device's store, as the session needs it.
pub trait DeviceReplica {
    type Error: std::error::Error + Send + Sync + 'static;
    /// How far this device has seen the team's change sequence.
    fn cursor(&mut self) -> Result<u64, Self::Error>;
    fn save_cursor(&mut self, seq: u64) -> Result<(), Self::Error>;
    fn status(&mut self) -> Result<DeviceStatus, Self::Error>;
    /// Dossiers with local changes the relay has not acknowledged.
    fn unsynced_docs(&mut self) -> Result<Vec<String>, Self::Error>;
    /// Where the last completed exchange of `doc` left off; None if this device lacks `doc`.
    fn sync_state(&mut self, doc: &str) -> Result<Option<State>, Self::Error>;
    fn generate(&mut self, doc: &str, state: &mut State) -> Result<Option<Message>, Self::Error>;
    /// Apply received messages and make the result durable, all at once.
    fn receive(&mut self, batch: &mut [Incoming]) -> Result<(), Self::Error>;
    /// These exchanges are complete (both sides held the same heads): record them durably,
    /// all at once.
    fn finish(&mut self, done: &[(String, State)]) -> Result<(), Self::Error>;
    /// Store dossiers this device did not hold, as the relay sent them.
    fn store_snapshots(&mut self, snapshots: Vec<Snapshot>) -> Result<(), Self::Error>;
    /// `doc` whole, as saved, if the relay has never acknowledged any of it (this device
    /// created it and has not completed an exchange for it): sent so, it costs the relay one
    /// load instead of an exchange, and this device nothing.
    fn upload(&mut self, doc: &str) -> Result<Option<Upload>, Self::Error>;
    /// The relay holds these uploads: record them durably, all at once. Returns those that
    /// still need an exchange (edited here since they were sent, or merged by the relay with
    /// changes this device lacks).
    fn stored(&mut self, stored: &[Stored]) -> Result<Vec<String>, Self::Error>;
    /// `doc`'s changes since `base` (heads the relay is known to hold), with the projection
    /// of the result, if this device has made changes on top of `base` and can send them so
    /// (see [`ToRelay::Push`]); None: exchange it.
    fn push(
        &mut self,
        doc: &str,
        base: &[automerge::ChangeHash],
    ) -> Result<Option<Changes>, Self::Error>;
    /// The relay answered pushed changes, having stored those it took: record them durably,
    /// all at once. Returns the dossiers that still need an exchange (not taken, or edited
    /// here since they were sent).
    fn pushed(&mut self, answers: &[Pushed]) -> Result<Vec<String>, Self::Error>;
    /// Colleagues' changes passed on by the relay: store, all at once, those made on exactly
    /// what this device holds. Returns, for each, whether it was stored (otherwise the
    /// dossier needs an exchange).
    fn forwarded(&mut self, changes: &[Changes]) -> Result<Vec<bool>, Self::Error>;
    /// The relay says this device may no longer hold `docs`: remove, durably and at once,
    /// those whose every change the relay holds; return the others (sent whole first).
    fn withdraw(&mut self, docs: &[String]) -> Result<Vec<String>, Self::Error>;
    /// `doc` whole, as saved, whatever the relay holds of it: the last word of a dossier this
    /// device may no longer hold. None if this device no longer holds it either.
    fn last_upload(&mut self, doc: &str) -> Result<Option<Upload>, Self::Error>;
    /// The relay stored the last uploads of these withdrawn dossiers: remove, durably and at
    /// once, those not edited here since they were sent; return the others (send again).
    fn remove_sent(&mut self, docs: &[String]) -> Result<Vec<String>, Self::Error>;
    /// The time on this device's clock (ms since the Unix epoch).
    fn now_ms(&mut self) -> i64;
    /// The relay has durably recorded that everything announced was synced at `at_ms`:
    /// record it as this device's last sync.
    fn completed(&mut self, at_ms: i64) -> Result<(), Self::Error>;
}

/// How many dossiers are exchanged at once, how many whole ones requested at once, and how
/// much is uploaded before the relay has answered. The window is what bounds the device's
/// unsent frames (see [`super::flow`]).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub syncing: usize,
    pub fetching: usize,
    pub uploading: usize,
    /// Bytes of uploads unanswered at most (one upload larger than this still goes, alone).
    pub upload_bytes: usize,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            syncing: 128,
            fetching: 4 * MAX_FETCH_IDS,
            uploading: 2 * MAX_UPLOAD_DOCS,
            upload_bytes: 4 * SNAPSHOT_BATCH_BYTES,
        }
    }
}

#[derive(Default)]
pub struct DeviceSession {
    window: Window,
    welcomed: bool,
    /// The highest team sequence announced to us.
    seen: u64,
    /// The sequence saved as our cursor.
    saved: u64,
    queue: VecDeque<String>,
    queued: BTreeSet<String>,
    in_flight: BTreeMap<String, State>,
    /// In-flight dossiers the relay announced another change for: go again after.
    again: BTreeSet<String>,
    fetching: BTreeSet<String>,
    /// Uploads and pushes unanswered, with their size.
    uploading: BTreeMap<String, usize>,
    upload_bytes: usize,
    /// Dossiers whose push the relay did not take: exchanged instead, for this session.
    exchange_only: BTreeSet<String>,
    /// Dossiers this device may no longer hold, with changes the relay lacks: sent whole,
    /// then removed.
    withdrawing: BTreeSet<String>,
    /// Dossiers whose upload or push the relay refused (this device may not send to them):
    /// kept here as they are, and not sent again in this session.
    refused: BTreeSet<String>,
    /// Withdrawn while an upload or push of them was unanswered: let go once it is answered.
    withdraw_after: BTreeSet<String>,
    /// Completed exchanges not yet recorded.
    finished: Vec<(String, State)>,
    idle_reported: bool,
    /// Completion reports sent and not yet recorded by the relay: the times they name.
    reports: BTreeSet<i64>,
    last_report: Option<i64>,
}

type SessionResult<T, E> = std::result::Result<T, SessionError<E>>;

impl DeviceSession {
    pub fn new(window: Window) -> DeviceSession {
        DeviceSession {
            window,
            ..Default::default()
        }
    }

    /// The frames to send once connected.
    pub fn start<R: DeviceReplica>(&mut self, r: &mut R) -> SessionResult<Vec<ToRelay>, R::Error> {
        let since = r.cursor().map_err(SessionError::Replica)?;
        self.saved = since;
        self.seen = since;
        let status = r.status().map_err(SessionError::Replica)?;
        Ok(vec![ToRelay::Hello { since, status }])
    }

    /// Connected, welcomed, and nothing left to exchange.
    pub fn is_idle(&self) -> bool {
        self.welcomed
            && self.queue.is_empty()
            && self.in_flight.is_empty()
            && self.fetching.is_empty()
            && self.uploading.is_empty()
    }

    /// Idle, and the relay has durably recorded this sync's completion: only now may the
    /// device say "synced" (and a one-off sync end).
    pub fn is_complete(&self) -> bool {
        self.is_idle() && self.idle_reported && self.reports.is_empty()
    }

    /// How many dossiers are still to be exchanged in this session (for progress display).
    pub fn remaining(&self) -> usize {
        self.queue.len() + self.in_flight.len() + self.fetching.len() + self.uploading.len()
    }

    /// Whether `doc` is queued or being exchanged in this session.
    pub fn knows(&self, doc: &str) -> bool {
        self.queued.contains(doc)
            || self.in_flight.contains_key(doc)
            || self.fetching.contains(doc)
            || self.uploading.contains_key(doc)
    }

    /// A local edit was committed to `doc`.
    pub fn local_change<R: DeviceReplica>(
        &mut self,
        r: &mut R,
        doc: &str,
    ) -> SessionResult<Vec<ToRelay>, R::Error> {
        self.enqueue(doc);
        self.pump(r)
    }

    /// Handle frames received, in order; the replica commits what they change at once.
    pub fn receive<R: DeviceReplica>(
        &mut self,
        r: &mut R,
        frames: Vec<ToDevice>,
    ) -> SessionResult<Vec<ToRelay>, R::Error> {
        let mut incoming: Vec<Incoming> = Vec::new();
        // Dossiers with messages in this batch → whether the last one closed the exchange.
        let mut touched: BTreeMap<String, bool> = BTreeMap::new();
        let mut snapshots = Vec::new();
        let mut stored = Vec::new();
        let mut pushed = Vec::new();
        let mut forwards = Vec::new();
        let mut fetched = Vec::new();
        let mut withdrawn: Vec<String> = Vec::new();
        let mut refusals: Vec<String> = Vec::new();
        for frame in frames {
            match frame {
                ToDevice::Welcome {
                    seq,
                    changed,
                    withdrawn: gone,
                    recorded,
                } => {
                    withdrawn.extend(gone);
                    if self.welcomed {
                        return Err(SessionError::Protocol("a second welcome".into()));
                    }
                    self.welcomed = true;
                    self.seen = self.seen.max(seq);
                    let local = r.unsynced_docs().map_err(SessionError::Replica)?;
                    if recorded && changed.is_empty() && local.is_empty() && seq <= self.saved {
                        // Nothing to exchange, and the relay has recorded it already.
                        let at = self.report_time(r);
                        r.completed(at).map_err(SessionError::Replica)?;
                        self.idle_reported = true;
                    }
                    for doc in changed.iter().chain(&local) {
                        self.enqueue(doc);
                    }
                }
                ToDevice::Changed { seq, docs } => {
                    self.seen = self.seen.max(seq);
                    // Announced again after it was withdrawn (handed away and back): kept.
                    withdrawn.retain(|w| !docs.contains(w));
                    for doc in &docs {
                        self.enqueue(doc);
                    }
                }
                ToDevice::Sync { doc, data, done } => {
                    let message = Message::decode(&data).map_err(|e| {
                        SessionError::Protocol(format!("bad sync message for {doc}: {e}"))
                    })?;
                    if incoming.iter().any(|i| i.doc == doc) {
                        // A second message for one dossier in one batch: apply what came
                        // before it first, so each is applied on the state the previous left.
                        self.apply(r, &mut incoming)?;
                    }
                    let state = match self.in_flight.remove(&doc) {
                        Some(state) => state,
                        // An answer to an exchange this session did not start (or gave up
                        // on) is still worth applying.
                        None => r
                            .sync_state(&doc)
                            .map_err(SessionError::Replica)?
                            .unwrap_or_default(),
                    };
                    touched.insert(doc.clone(), done);
                    incoming.push(Incoming {
                        doc,
                        state,
                        message,
                    });
                }
                ToDevice::Snapshots(list) => {
                    withdrawn.retain(|w| !list.iter().any(|s| s.doc == *w));
                    for s in &list {
                        self.fetching.remove(&s.doc);
                        fetched.push(s.doc.clone());
                    }
                    snapshots.extend(list);
                }
                ToDevice::Unavailable { docs } => {
                    for d in &docs {
                        self.fetching.remove(d);
                        fetched.push(d.clone());
                    }
                }
                ToDevice::Stored(list) => stored.extend(list),
                ToDevice::Withdrawn { docs, refused } => {
                    withdrawn.extend(docs);
                    refusals.extend(refused);
                }
                ToDevice::Pushed(list) => pushed.extend(list),
                // Not seen yet: the `Changed` that ends the relay's announcement carries its
                // `seq`; a drop before it must leave the commit to be offered again.
                ToDevice::Forward { changes, .. } => {
                    withdrawn.retain(|w| *w != changes.doc);
                    forwards.push(*changes);
                }
                ToDevice::Recorded { last_sync_ms } => {
                    // Reports are answered in order: this one and any before it are durable.
                    if let Some(at) = last_sync_ms
                        && self.reports.contains(&at)
                    {
                        self.reports.retain(|t| *t > at);
                        r.completed(at).map_err(SessionError::Replica)?;
                    }
                }
            }
        }
        // The last uploads of withdrawn dossiers: removed once stored.
        let (last, stored): (Vec<Stored>, Vec<Stored>) = stored
            .into_iter()
            .partition(|s| self.withdrawing.contains(&s.doc));
        if !last.is_empty() {
            let docs: Vec<String> = last.iter().map(|s| s.doc.clone()).collect();
            let again = r.remove_sent(&docs).map_err(SessionError::Replica)?;
            for doc in &docs {
                if let Some(size) = self.uploading.remove(doc) {
                    self.upload_bytes -= size;
                }
                self.again.remove(doc);
                if !again.contains(doc) {
                    self.withdrawing.remove(doc);
                }
            }
            for doc in &again {
                self.enqueue(doc);
            }
        }
        if !stored.is_empty() {
            let unfinished = r.stored(&stored).map_err(SessionError::Replica)?;
            for s in &stored {
                if let Some(size) = self.uploading.remove(&s.doc) {
                    self.upload_bytes -= size;
                }
                self.arrived(&s.doc);
            }
            for doc in &unfinished {
                self.enqueue(doc);
            }
        }
        if !pushed.is_empty() {
            let unfinished = r.pushed(&pushed).map_err(SessionError::Replica)?;
            for p in &pushed {
                if let Some(size) = self.uploading.remove(&p.doc) {
                    self.upload_bytes -= size;
                }
                if !p.taken {
                    self.exchange_only.insert(p.doc.clone());
                }
                self.arrived(&p.doc);
            }
            for doc in &unfinished {
                self.enqueue(doc);
            }
        }
        if !forwards.is_empty() {
            // A dossier this session is already at is exchanged: that brings the edit too.
            let (busy, free): (Vec<Changes>, Vec<Changes>) =
                forwards.into_iter().partition(|c| self.knows(&c.doc));
            let stored = r.forwarded(&free).map_err(SessionError::Replica)?;
            for (c, stored) in free.iter().zip(stored) {
                if !stored {
                    self.enqueue(&c.doc);
                }
            }
            for c in &busy {
                self.enqueue(&c.doc);
            }
        }
        if !snapshots.is_empty() {
            r.store_snapshots(snapshots)
                .map_err(SessionError::Replica)?;
        }
        for doc in &fetched {
            self.arrived(doc);
        }
        self.apply(r, &mut incoming)?;
        let mut out = Vec::new();
        for (doc, done) in touched {
            let Some(mut state) = self.in_flight.remove(&doc) else {
                continue;
            };
            if done {
                self.finish(doc, state);
                continue;
            }
            match r
                .generate(&doc, &mut state)
                .map_err(SessionError::Replica)?
            {
                Some(m) => {
                    let last_word = closes_exchange(&m, &state);
                    out.push(ToRelay::Sync {
                        doc: doc.clone(),
                        data: m.encode(),
                        done: last_word,
                    });
                    if last_word {
                        self.finish(doc, state);
                    } else {
                        self.in_flight.insert(doc, state);
                    }
                }
                None => {
                    // Nothing more to say, but the relay waits for an answer: the last word,
                    // so that it closes the exchange too (an exchange left open there would be
                    // taken up by this dossier's next exchange, which would then wait for ever).
                    out.push(ToRelay::Sync {
                        doc: doc.clone(),
                        data: closing_word(&state).encode(),
                        done: true,
                    });
                    self.finish(doc, state);
                }
            }
        }
        for doc in refusals {
            // Not stored: kept here as it is (see `refused`).
            if let Some(size) = self.uploading.remove(&doc) {
                self.upload_bytes -= size;
            }
            self.withdrawing.remove(&doc);
            self.withdraw_after.remove(&doc);
            self.again.remove(&doc);
            self.queued.remove(&doc);
            self.refused.insert(doc);
        }
        if !withdrawn.is_empty() || !self.withdraw_after.is_empty() {
            self.withdraw(r, withdrawn)?;
        }
        self.flush(r)?;
        out.extend(self.pump(r)?);
        Ok(out)
    }

    /// Let go of dossiers the relay says this device may no longer hold: those whose every
    /// change the relay holds now, the others once sent whole. One with an upload or push
    /// unanswered waits for the answer (the relay answers what it was sent).
    fn withdraw<R: DeviceReplica>(
        &mut self,
        r: &mut R,
        mut docs: Vec<String>,
    ) -> SessionResult<(), R::Error> {
        let answered: Vec<String> = self
            .withdraw_after
            .iter()
            .filter(|d| !self.uploading.contains_key(*d))
            .cloned()
            .collect();
        for doc in &answered {
            self.withdraw_after.remove(doc);
        }
        docs.extend(answered);
        docs.sort();
        docs.dedup();
        let mut now = Vec::with_capacity(docs.len());
        for doc in docs {
            if self.uploading.contains_key(&doc) {
                self.withdraw_after.insert(doc);
                continue;
            }
            // Nothing more of it is exchanged or fetched in this session.
            self.in_flight.remove(&doc);
            self.fetching.remove(&doc);
            self.again.remove(&doc);
            self.queued.remove(&doc);
            now.push(doc);
        }
        if now.is_empty() {
            return Ok(());
        }
        let keep = r.withdraw(&now).map_err(SessionError::Replica)?;
        for doc in &now {
            if !keep.contains(doc) {
                self.withdrawing.remove(doc);
            }
        }
        for doc in keep {
            if !self.refused.contains(&doc) {
                self.withdrawing.insert(doc.clone());
                self.enqueue(&doc);
            }
        }
        Ok(())
    }

    fn finish(&mut self, doc: String, state: State) {
        self.arrived(&doc);
        self.finished.push((doc, state));
    }

    /// What was on its way for `doc` (an exchange, an upload or push, a fetch) has ended: if
    /// the relay announced another change meanwhile, exchange it again.
    fn arrived(&mut self, doc: &str) {
        if self.again.remove(doc) {
            self.enqueue(doc);
        }
    }

    fn flush<R: DeviceReplica>(&mut self, r: &mut R) -> SessionResult<(), R::Error> {
        if !self.finished.is_empty() {
            r.finish(&self.finished).map_err(SessionError::Replica)?;
            self.finished.clear();
        }
        Ok(())
    }

    /// Apply (durably) the messages gathered so far; their exchanges stay in flight.
    fn apply<R: DeviceReplica>(
        &mut self,
        r: &mut R,
        incoming: &mut Vec<Incoming>,
    ) -> SessionResult<(), R::Error> {
        if incoming.is_empty() {
            return Ok(());
        }
        r.receive(incoming).map_err(SessionError::Replica)?;
        for i in incoming.drain(..) {
            self.in_flight.insert(i.doc, i.state);
        }
        Ok(())
    }

    fn enqueue(&mut self, doc: &str) {
        // A dossier being fetched goes again too: the snapshot on its way may have been taken
        // before the change announced.
        if self.in_flight.contains_key(doc)
            || self.uploading.contains_key(doc)
            || self.fetching.contains(doc)
        {
            self.again.insert(doc.to_string());
        } else if self.queued.insert(doc.to_string()) {
            self.queue.push_back(doc.to_string());
        }
    }

    /// Start exchanges up to the window; when all is done, save the cursor and report.
    fn pump<R: DeviceReplica>(&mut self, r: &mut R) -> SessionResult<Vec<ToRelay>, R::Error> {
        let mut out = Vec::new();
        if !self.welcomed {
            return Ok(out);
        }
        let mut fetch = Vec::new();
        let mut uploads: Vec<Upload> = Vec::new();
        let mut pushes: Vec<Changes> = Vec::new();
        let mut upload_bytes = self.upload_bytes;
        while self.in_flight.len() < self.window.syncing
            && self.fetching.len() + fetch.len() < self.window.fetching
            && self.uploading.len() + uploads.len() + pushes.len() < self.window.uploading
            && upload_bytes < self.window.upload_bytes
        {
            let Some(doc) = self.queue.pop_front() else {
                break;
            };
            if !self.queued.remove(&doc) || self.refused.contains(&doc) {
                // Withdrawn since it was queued, or not to be sent again.
                continue;
            }
            if self.withdrawing.contains(&doc) {
                if let Some(up) = r.last_upload(&doc).map_err(SessionError::Replica)? {
                    upload_bytes += upload_size(&up);
                    uploads.push(up);
                } else {
                    self.withdrawing.remove(&doc);
                }
                continue;
            }
            let Some(mut state) = r.sync_state(&doc).map_err(SessionError::Replica)? else {
                fetch.push(doc);
                continue;
            };
            if let Some(up) = r.upload(&doc).map_err(SessionError::Replica)? {
                upload_bytes += upload_size(&up);
                uploads.push(up);
                continue;
            }
            if !state.shared_heads.is_empty()
                && !self.exchange_only.contains(&doc)
                && let Some(p) = r
                    .push(&doc, &state.shared_heads)
                    .map_err(SessionError::Replica)?
            {
                upload_bytes += push_size(&p);
                pushes.push(p);
                continue;
            }
            match r
                .generate(&doc, &mut state)
                .map_err(SessionError::Replica)?
            {
                Some(m) => {
                    out.push(ToRelay::Sync {
                        doc: doc.clone(),
                        data: m.encode(),
                        done: false,
                    });
                    self.in_flight.insert(doc, state);
                }
                None => self.finish(doc, state),
            }
        }
        self.flush(r)?;
        for ids in fetch.chunks(MAX_FETCH_IDS) {
            self.fetching.extend(ids.iter().cloned());
            out.push(ToRelay::Fetch { docs: ids.to_vec() });
        }
        for u in &uploads {
            self.uploading.insert(u.doc.clone(), upload_size(u));
        }
        self.upload_bytes = upload_bytes;
        for p in &pushes {
            self.uploading.insert(p.doc.clone(), push_size(p));
        }
        let frames = batched(uploads, SNAPSHOT_BATCH_BYTES, MAX_UPLOAD_DOCS, upload_size);
        out.extend(frames.into_iter().map(ToRelay::Upload));
        let frames = batched(pushes, SNAPSHOT_BATCH_BYTES, MAX_UPLOAD_DOCS, push_size);
        out.extend(frames.into_iter().map(ToRelay::Push));
        if !out.is_empty() {
            self.idle_reported = false;
        }
        if self.is_idle() && (!self.idle_reported || self.seen > self.saved) {
            if self.seen > self.saved {
                r.save_cursor(self.seen).map_err(SessionError::Replica)?;
                self.saved = self.seen;
            }
            // The device calls this sync complete only when the relay has recorded it.
            let at = self.report_time(r);
            let mut status = r.status().map_err(SessionError::Replica)?;
            status.last_sync_ms = Some(at);
            out.push(ToRelay::Status(status));
            self.reports.insert(at);
            self.idle_reported = true;
        }
        Ok(out)
    }
}

impl DeviceSession {
    /// The time a completion report names: distinct for each, so that its answer names it
    /// alone.
    fn report_time<R: DeviceReplica>(&mut self, r: &mut R) -> i64 {
        let at = match self.last_report {
            Some(last) => r.now_ms().max(last + 1),
            None => r.now_ms(),
        };
        self.last_report = Some(at);
        at
    }
}

fn upload_size(u: &Upload) -> usize {
    // The board row, roughly, when it goes with the bytes.
    u.bytes.len() + u.doc.len() + u.vouched.as_ref().map_or(0, |_| 512)
}

fn push_size(p: &Changes) -> usize {
    // The projection's rows, roughly, beside the changes.
    p.changes.iter().map(Vec::len).sum::<usize>() + p.doc.len() + 512
}
