//! Sync between devices and their relay, without IO: the wire messages and the two session
//! state machines. Each session is driven by events (frames received, changes announced) and
//! answers with frames to send; the documents themselves are reached through a replica trait
//! that each side implements over its own store. The same code therefore runs over a real
//! WebSocket and inside a deterministic simulation.

pub mod device;
pub mod flow;
pub mod relay;
pub mod wire;

use automerge::sync::{
    BloomFilter, Capability, ChunkList, Have, Message, MessageVersion, State, SyncDoc,
};
use automerge::{Automerge, ChangeHash};

/// A commit on the relay: the team's sequence after it, and the dossiers it wrote (one
/// sequence number each).
pub type Commit = (u64, Vec<String>);

/// One received Automerge sync message, with the state of that dossier's exchange.
pub struct Incoming {
    pub doc: String,
    pub state: State,
    pub message: Message,
}

/// What went wrong in a session: the peer broke the protocol (close the connection with this
/// reason), or the replica failed (the host's own error).
#[derive(Debug, thiserror::Error)]
pub enum SessionError<E> {
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error(transparent)]
    Replica(E),
}

/// A sync state that resumes from the heads both sides had at the end of the last completed
/// exchange, assuming the peer still has them. Automerge's own persisted state forgets what
/// the peer has, so its first message carries only heads and a filter; this one carries the
/// changes made since straight away, saving a round trip on every edit. If the peer no longer
/// has those heads, Automerge's reset path recovers.
pub fn resume_state(shared_heads: Vec<ChangeHash>) -> State {
    let mut state = State::new();
    state.shared_heads = shared_heads.clone();
    state.their_heads = Some(shared_heads.clone());
    state.their_need = Some(Vec::new());
    state.their_have = Some(vec![Have {
        last_sync: shared_heads,
        bloom: BloomFilter::default(),
    }]);
    state
}

/// Whether `message`, about to be sent, closes its exchange: it carries no changes and tells
/// a peer already known to hold the same heads. Such a message is sent with `done` and needs
/// no answer; waiting for one would hang, answering one could echo for ever.
pub fn closes_exchange(message: &Message, state: &State) -> bool {
    message.changes.is_empty() && state.their_heads.as_ref() == Some(&message.heads)
}

/// The last word of an exchange in which this side has nothing more to say (Automerge's
/// generate gave nothing) while the peer, which sent without `done`, waits for an answer: our
/// heads alone. Nothing to say means we already sent the heads we hold, so they are the
/// state's last sent heads. A few dozen bytes, where a message from a fresh state would carry
/// a filter over the whole history.
pub fn closing_word(state: &State) -> Message {
    Message {
        heads: state.last_sent_heads.clone(),
        need: Vec::new(),
        have: Vec::new(),
        changes: ChunkList::empty(),
        flags: None,
        version: MessageVersion::V1,
    }
}

/// `items` cut into batches of about `max_bytes` by `size`, `max_items` at most each: the
/// whole-dossier frames (snapshots down, uploads up) stay well under the frame limit.
pub(crate) fn batched<T>(
    items: Vec<T>,
    max_bytes: usize,
    max_items: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0;
    for item in items {
        bytes += size(&item);
        batch.push(item);
        if bytes >= max_bytes || batch.len() == max_items {
            batches.push(std::mem::take(&mut batch));
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

pub fn heads_to_bytes(heads: &[ChangeHash]) -> Vec<[u8; 32]> {
    heads.iter().map(|h| h.0).collect()
}

pub fn heads_from_bytes(heads: &[[u8; 32]]) -> Vec<ChangeHash> {
    heads.iter().map(|h| ChangeHash(*h)).collect()
}

/// Automerge's next sync message for `state`, except that a peer which already holds some of
/// the document is sent the changes it lacks, never the whole document: Automerge switches to
/// the whole document once a third of the changes are missing, which for a dossier created in
/// one change and edited once means 4–5 KB for a 200-byte edit. A peer holding nothing still
/// gets the whole document, the cheapest form then.
pub fn generate(doc: &Automerge, state: &mut State) -> Option<Message> {
    let holds_some = state.their_heads.as_ref().is_some_and(|h| !h.is_empty());
    let caps = state.their_capabilities.clone();
    if holds_some && let Some(c) = &mut state.their_capabilities {
        c.retain(|c| *c != Capability::MessageV2);
    }
    let message = doc.generate_sync_message(state);
    state.their_capabilities = caps;
    message
}
