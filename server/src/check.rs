//! Checking what devices vouched for.
//!
//! A device's live edits and new dossiers reach the relay with the projection the device
//! worked out for them (summary row, deal and follow-up rows, board facts), so that the relay
//! can store them, acknowledge them and pass them on without opening a document — loading a
//! dossier costs milliseconds, storing it microseconds. The relay checks each such write
//! afterwards, off the sync path: it opens the document, works the projection out itself
//! (with the search text, which devices do not send), and rewrites the dossier in place as one
//! compact snapshot with that projection. A dossier whose projection the device got wrong is
//! written again with the relay's, under a new sequence number, so boards and devices see it;
//! one that does not read as a dossier at all is logged and left as it is (its changes were
//! acknowledged; nothing can take them back).

use std::time::Duration;

use fieldbook_shared::pipeline::{Chunk, OpenDoc};
use fieldbook_shared::summary::Projection;
use fieldbook_shared::sync::{Commit, heads_to_bytes};

use crate::http::AppState;
use crate::replica::{doc_write, same_heads};
use crate::store::{RelayStore, Rewrite, StoreError, Unchecked};

/// Dossiers taken from the store per round.
const BATCH: usize = 64;

/// Check what is unchecked whenever woken (and now and then: a write made before a restart
/// is checked after it), until the relay shuts down.
pub async fn run(relay: AppState) {
    let mut stop = relay.shutdown.clone();
    loop {
        let relay2 = relay.clone();
        let done = tokio::task::spawn_blocking(move || check_pending(&relay2)).await;
        match done {
            Ok(Err(e)) => tracing::warn!("checking devices' projections: {e}"),
            Err(e) => tracing::error!("the checker stopped: {e}"),
            Ok(Ok(())) => {}
        }
        tokio::select! {
            _ = relay.check.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Check everything unchecked now, a batch at a time: the store is held only to read a
/// batch and to settle each dossier, never while documents are loaded and read (which runs
/// on every core).
pub fn check_pending(relay: &AppState) -> Result<(), StoreError> {
    loop {
        let batch = relay.with_store(|s| unchecked_bytes(s, BATCH))?;
        if batch.is_empty() {
            return Ok(());
        }
        let worked_out = crate::cores::on_every_core(
            &batch,
            |(u, bytes)| work_out(&u.doc, bytes, u.seq),
            |_| Err("reading it panicked".to_string()),
        );
        for ((unchecked, _), worked_out) in batch.iter().zip(worked_out) {
            if *relay.shutdown.borrow() {
                return Ok(());
            }
            relay.with_team(unchecked.team, |store, _| {
                if let Some(commit) = settle(store, unchecked, worked_out)? {
                    // Told in the team's turn, so in the order committed.
                    relay.announce(unchecked.team, commit);
                }
                Ok::<_, StoreError>(())
            })?;
        }
    }
}

/// Check up to `limit` unchecked dossiers holding the store throughout (the simulation's
/// way; the relay's checker lets go of the store while it reads a document). Returns the
/// commits made where a device's projection was wrong, to announce.
pub fn check_in(store: &mut dyn RelayStore, limit: usize) -> Result<Vec<Commit>, StoreError> {
    let mut commits = Vec::new();
    for (unchecked, bytes) in unchecked_bytes(store, limit)? {
        let worked_out = work_out(&unchecked.doc, &bytes, unchecked.seq);
        commits.extend(settle(store, &unchecked, worked_out)?);
    }
    Ok(commits)
}

/// Up to `limit` unchecked dossiers with their stored bytes, oldest first; one gone or
/// written since it was listed is left out (that write is checked in its turn).
fn unchecked_bytes(
    store: &dyn RelayStore,
    limit: usize,
) -> Result<Vec<(Unchecked, Vec<u8>)>, StoreError> {
    let unchecked = store.unchecked(limit)?;
    let mut read = Vec::with_capacity(unchecked.len());
    for u in unchecked {
        if let Some(stored) = store.load_doc(u.team, &u.doc)?
            && stored.seq == u.seq
        {
            read.push((u, stored.bytes));
        }
    }
    Ok(read)
}

/// What checking a stored dossier finds: its bytes as one snapshot and the projection the
/// relay works out, or why it does not read as a dossier.
pub struct WorkedOut {
    snapshot: Vec<u8>,
    heads: Vec<automerge::ChangeHash>,
    projection: Projection,
}

impl WorkedOut {
    /// The dossier whole, as a device lacking it receives it.
    pub fn snapshot(&self, doc: &str) -> fieldbook_shared::sync::wire::Snapshot {
        fieldbook_shared::sync::wire::Snapshot {
            doc: doc.to_string(),
            heads: fieldbook_shared::sync::heads_to_bytes(&self.heads),
            bytes: self.snapshot.clone(),
            projection: self.projection.clone(),
        }
    }
}

pub fn work_out(doc: &str, bytes: &[u8], seq: u64) -> Result<WorkedOut, String> {
    let mut open = OpenDoc::load(bytes, 1, seq as i64).map_err(|e| e.to_string())?;
    let projection = open.project(doc).map_err(|e| e.to_string())?;
    Ok(WorkedOut {
        snapshot: open.doc().save(),
        heads: open.heads(),
        projection,
    })
}

/// Record what was found for `unchecked`. When the device's projection was wrong, the
/// relay's is written under a new sequence number: returns that commit, to announce.
pub fn settle(
    store: &mut dyn RelayStore,
    unchecked: &Unchecked,
    worked_out: Result<WorkedOut, String>,
) -> Result<Option<Commit>, StoreError> {
    // Written since it was read (the store was let go meanwhile): the projection stored now is
    // that write's, checked in its turn; compared with this one it would differ for nothing.
    let Some(version) = store
        .doc_version(unchecked.team, &unchecked.doc)?
        .filter(|v| v.seq == unchecked.seq)
    else {
        return Ok(None);
    };
    let w = match worked_out {
        Ok(w) => w,
        Err(reason) => {
            crate::quietly!(
                format!("team {}", unchecked.team),
                error,
                team = unchecked.team,
                doc = %unchecked.doc,
                "a device sent changes that do not make a readable dossier: {reason}"
            );
            store.settle(unchecked, None)?;
            return Ok(None);
        }
    };
    let json = |p: &Projection| serde_json::to_string(p).expect("a projection always serialises");
    let vouched = store
        .board_row(unchecked.team, &unchecked.doc)?
        .and_then(|row| serde_json::from_str::<Projection>(&row).ok());
    // The heads too: a new dossier's were taken from the device that uploaded it.
    let heads_right = same_heads(&version.heads, &heads_to_bytes(&w.heads));
    if heads_right && vouched.as_ref() == Some(&w.projection.board_row()) {
        let rewrite = Rewrite {
            snapshot: w.snapshot,
            projection: json(&w.projection),
        };
        store.settle(unchecked, Some(&rewrite))?;
        return Ok(None);
    }
    let relays = w.projection.board_row();
    let differs = match &vouched {
        None => "missing or unreadable".to_string(),
        Some(v) => [
            ("heads", !heads_right),
            ("summary", v.summary != relays.summary),
            ("deals", v.deals != relays.deals),
            ("follow-ups", v.follow_ups != relays.follow_ups),
            ("board facts", v.board != relays.board),
        ]
        .iter()
        .filter(|(_, d)| *d)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", "),
    };
    crate::quietly!(
        format!("team {}", unchecked.team),
        warn,
        team = unchecked.team,
        doc = %unchecked.doc,
        %differs,
        "what a device vouched for a dossier differs from what the relay finds: the relay's is written"
    );
    let write = doc_write(
        &unchecked.doc,
        Chunk::Snapshot(w.snapshot),
        w.heads,
        &w.projection,
    );
    let seq = store.write_docs(unchecked.team, std::slice::from_ref(&write))?;
    Ok(Some((seq, vec![unchecked.doc.clone()])))
}
