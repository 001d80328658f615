//! What crosses the wire between a device and its relay: binary WebSocket frames, each one
//! versioned envelope holding one message, serde-encoded with postcard (compact, no schema
//! negotiation, and the same code in the browser).

use serde::{Deserialize, Serialize};

use crate::summary::Projection;

/// Bumped on any change a peer of the previous version could not read.
pub const PROTOCOL_VERSION: u16 = 5;

/// The largest frame either side accepts. A cold snapshot batch is cut to stay well under it.
pub const MAX_FRAME_BYTES: usize = 8 << 20;

/// Snapshot batches are cut at about this many bytes of documents.
pub const SNAPSHOT_BATCH_BYTES: usize = 1 << 20;

/// At most this many dossier ids in one `Fetch`.
pub const MAX_FETCH_IDS: usize = 1024;

/// Dossiers in one [`ToRelay::Upload`] at most.
pub const MAX_UPLOAD_DOCS: usize = 1024;

/// What a device tells the relay about itself, so a manager can tell "overdue" from
/// "not synced yet".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Local changes the relay has not acknowledged yet.
    pub unsynced: u64,
    /// When this device last completed a sync (ms since the Unix epoch).
    pub last_sync_ms: Option<i64>,
}

/// Device → relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToRelay {
    /// The first message on a connection: "I have seen your changes up to `since`".
    Hello { since: u64, status: DeviceStatus },
    /// An Automerge sync message for one dossier. `done`: the sender has closed its side of
    /// the exchange (both sides hold the same heads); apply it and do not answer, so that a
    /// late or duplicated last word can never start an endless echo.
    Sync {
        doc: String,
        data: Vec<u8>,
        done: bool,
    },
    /// Send me these dossiers whole: I hold none of them.
    Fetch { docs: Vec<String> },
    /// Freshness report, sent whenever a sync completes (`last_sync_ms` is the moment it
    /// completed). The relay answers [`ToDevice::Recorded`] once the report is durable; only
    /// then does the device call itself synced, so the manager's view never lags behind
    /// what the device claims.
    Status(DeviceStatus),
    /// Dossiers this device created and has never exchanged, whole, as saved (at most
    /// [`MAX_UPLOAD_DOCS`], about [`SNAPSHOT_BATCH_BYTES`] a frame). One message instead of
    /// an exchange each: the relay checks and stores them and answers [`ToDevice::Stored`].
    Upload(Vec<Upload>),
    /// Edits this device made to dossiers on top of what the relay holds (at most
    /// [`MAX_UPLOAD_DOCS`]): stored and passed on as they are if the relay still holds that,
    /// without a sync exchange. Answered by [`ToDevice::Pushed`].
    Push(Vec<Changes>),
}

/// Changes a device made to a dossier on top of heads it and the relay both held, with the
/// projection of the result as that device worked it out (without the search text, which
/// whoever stores it works out later): enough for the relay and the team's other devices to
/// store the edit without opening the document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    pub doc: String,
    /// The heads the changes were made on.
    pub base: Vec<[u8; 32]>,
    /// Each change as Automerge encodes one.
    pub changes: Vec<Vec<u8>>,
    pub projection: Projection,
}

/// The relay's answer to pushed changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pushed {
    pub doc: String,
    /// Stored (durably) and passed on; otherwise the relay no longer holds what they were made
    /// on, and the device exchanges the dossier instead.
    pub taken: bool,
    /// The relay's heads for it now.
    pub heads: Vec<[u8; 32]>,
}

/// A whole dossier sent by the device that created it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    pub doc: String,
    /// Automerge chunks (a saved document, maybe followed by incremental changes).
    pub bytes: Vec<u8>,
    /// What the device vouches the bytes hold, when its store knows it: with it the relay
    /// stores a new dossier without opening it and checks it afterwards, off the sync path;
    /// without it the relay opens the document before it answers.
    pub vouched: Option<Vouched>,
}

/// What a device vouches an uploaded dossier's bytes hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vouched {
    /// The heads the bytes reach.
    pub heads: Vec<[u8; 32]>,
    /// The dossier's board row (its projection without search text and done follow-ups).
    pub row: Projection,
}

/// The relay's answer to one uploaded dossier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub doc: String,
    /// The relay's heads for it now.
    pub heads: Vec<[u8; 32]>,
    /// The relay already held some of this dossier and merged the upload into it: its heads
    /// may include changes the device lacks.
    pub merged: bool,
}

/// A whole dossier as the relay holds it, with its projection, for a device that has none of
/// it: the device stores both without opening the document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub doc: String,
    /// The document's heads (Automerge change hashes) in these bytes.
    pub heads: Vec<[u8; 32]>,
    pub bytes: Vec<u8>,
    pub projection: Projection,
}

/// Relay → device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToDevice {
    /// Answer to `Hello`: the team's change sequence now, the dossiers changed after the
    /// device's `since` that it may see, and those it may no longer hold (see
    /// [`ToDevice::Withdrawn`]). `recorded`: neither side had anything to exchange (nothing changed
    /// here, and the device reported nothing unsent), so the relay has already recorded this
    /// as a completed sync and the device need not report it: a reconnect with nothing
    /// changed stays one round trip.
    Welcome {
        seq: u64,
        changed: Vec<String>,
        withdrawn: Vec<String>,
        recorded: bool,
    },
    /// As [`ToRelay::Sync`].
    Sync {
        doc: String,
        data: Vec<u8>,
        done: bool,
    },
    Snapshots(Vec<Snapshot>),
    /// Dossiers changed while connected (by any device of the team, this one included), up
    /// to team sequence `seq`.
    Changed {
        seq: u64,
        docs: Vec<String>,
    },
    /// Fetched ids this device cannot have (never existed, or not its team's: the same answer).
    Unavailable {
        docs: Vec<String>,
    },
    /// Answer to [`ToRelay::Upload`]: every dossier of it is durable on the relay.
    Stored(Vec<Stored>),
    /// Answer to [`ToRelay::Status`]: the report naming this completed sync is durable on
    /// the relay.
    Recorded {
        last_sync_ms: Option<i64>,
    },
    /// Answer to [`ToRelay::Push`], one per dossier.
    Pushed(Vec<Pushed>),
    /// A colleague's edit, as pushed, now durable on the relay, which stands at team sequence
    /// `seq`: a device holding what it was made on stores it as it is; any other exchanges
    /// the dossier as for [`ToDevice::Changed`]. The relay's announcement of a commit always
    /// ends with a [`ToDevice::Changed`] of the same `seq`, which is when the device takes the
    /// commit as seen.
    Forward {
        seq: u64,
        changes: Box<Changes>,
    },
    /// Dossiers this device may no longer hold: reassigned or unshared where the team lets
    /// reps see only their own, or the team's policy changed. The device sends whatever of
    /// them it has not synced, whole ([`ToRelay::Upload`]), and removes them once stored.
    /// Also the answer to an exchange of a dossier the device may not hold. `refused`: items
    /// of an upload or push that were not stored, as the device may not send to them at all
    /// (it keeps them as they are).
    Withdrawn {
        docs: Vec<String>,
        refused: Vec<String>,
    },
}

/// A user's role in their team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Rep,
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Rep => "rep",
            Role::Manager => "manager",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "rep" => Ok(Role::Rep),
            "manager" => Ok(Role::Manager),
            other => Err(format!("unknown role `{other}`; expected rep or manager")),
        }
    }
}

/// What a team's reps see of its dossiers (managers see all of them either way), set by a
/// manager.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Every rep sees every dossier of the team.
    #[default]
    Team,
    /// A rep sees the dossiers they own and those shared with them.
    Own,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Team => "team",
            Visibility::Own => "own",
        }
    }
}

impl std::str::FromStr for Visibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Visibility, String> {
        match s {
            "team" => Ok(Visibility::Team),
            "own" => Ok(Visibility::Own),
            other => Err(format!(
                "unknown visibility `{other}`; expected team (reps see every dossier) or own \
                 (reps see their own and those shared with them)"
            )),
        }
    }
}

/// `POST /v1/enroll` (JSON): a device joins its user's team with a one-time invite code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub invite: String,
    /// What the user calls this device ("laptop", "phone").
    pub device_name: String,
}

/// The answer to an enrolment: the device's token (shown once; the relay keeps only a hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrolled {
    pub token: String,
    pub team: String,
    pub user: String,
    pub role: Role,
    pub device_id: i64,
}

/// An HTTP error body: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

/// A revoked device's token is answered `410 Gone` with this header: "true" when the team's
/// policy is that the device wipes its replica and key, "false" when it keeps them.
pub const WIPE_HEADER: &str = "fieldbook-wipe";

/// WebSocket close codes the relay uses, with a reason in words.
pub mod close {
    /// The frame could not be read or broke the protocol.
    pub const PROTOCOL: u16 = 1002;
    /// The frame was larger than allowed.
    pub const TOO_BIG: u16 = 1009;
    /// The device was revoked while connected.
    pub const REVOKED: u16 = 4001;
    /// The relay is shutting down; reconnect later.
    pub const GOING_AWAY: u16 = 1001;
    /// The relay failed to store something; reconnect later.
    pub const INTERNAL: u16 = 1011;
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope<T> {
    version: u16,
    body: T,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    #[error("frame of {0} bytes is larger than the {MAX_FRAME_BYTES} allowed")]
    TooLarge(usize),
    #[error("protocol version {0} is not supported (this side speaks {PROTOCOL_VERSION})")]
    Version(u16),
    #[error("malformed frame: {0}")]
    Malformed(String),
}

pub fn encode<T: Serialize>(body: &T) -> Vec<u8> {
    postcard::to_allocvec(&Envelope {
        version: PROTOCOL_VERSION,
        body,
    })
    .expect("our messages always serialize")
}

pub fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> Result<T, WireError> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(frame.len()));
    }
    // Read the version alone first, so a newer peer gets "version" rather than "malformed".
    let (version, _) =
        postcard::take_from_bytes::<u16>(frame).map_err(|e| WireError::Malformed(e.to_string()))?;
    if version != PROTOCOL_VERSION {
        return Err(WireError::Version(version));
    }
    let (env, rest) = postcard::take_from_bytes::<Envelope<T>>(frame)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Malformed(format!(
            "{} bytes after the message",
            rest.len()
        )));
    }
    Ok(env.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let msg = ToRelay::Hello {
            since: 42,
            status: DeviceStatus {
                unsynced: 3,
                last_sync_ms: Some(1),
            },
        };
        let bytes = encode(&msg);
        assert!(bytes.len() < 16, "hello is {} bytes", bytes.len());
        assert_eq!(decode::<ToRelay>(&bytes), Ok(msg));
        assert!(matches!(
            decode::<ToRelay>(&bytes[..bytes.len() - 1]),
            Err(WireError::Malformed(_))
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode::<ToRelay>(&longer),
            Err(WireError::Malformed(_))
        ));
        let mut newer = bytes;
        newer[0] = 9;
        assert_eq!(decode::<ToRelay>(&newer), Err(WireError::Version(9)));
        assert!(matches!(
            decode::<ToRelay>(&[PROTOCOL_VERSION as u8, 0xff, 0xff, 0xff]),
            Err(WireError::Malformed(_))
        ));
        assert_eq!(
            decode::<ToRelay>(&vec![0; MAX_FRAME_BYTES + 1]),
            Err(WireError::TooLarge(MAX_FRAME_BYTES + 1))
        );
    }
}
