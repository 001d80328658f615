//! A deterministic simulation of many devices and a relay, in one process: the same session
//! state machines, device engines on real SQLite files, and the relay's replica on its real
//! SQLite store — only the network is simulated, so that each seeded schedule can reorder,
//! duplicate and drop messages, crash devices and restart the relay at will.
//!
//! Whatever the schedule, once every device reconnects and the messages flow, every replica
//! (the relay's included) holds the same documents and no edit is lost.
//!
//! CI runs a few schedules; `SIM_SCHEDULES=1000 cargo test --release -p fieldbook-tests
//! --test simulation` runs the full count (`SIM_SEED` starts elsewhere).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use fieldbook_app::Engine;
use fieldbook_app::store::DossierStore;
use fieldbook_app::sync::{Replica, Uploads};
use fieldbook_relay::replica::{TeamDocs, TeamReplica, team_docs};
use fieldbook_relay::store::sqlite::SqliteRelayStore;
use fieldbook_relay::store::{DeviceAuth, RelayStore};
use fieldbook_shared::document::DossierDoc;
use fieldbook_shared::patch::set;
use fieldbook_shared::sync::device::{DeviceSession, Window};
use fieldbook_shared::sync::flow::Outbox;
use fieldbook_shared::sync::relay::{Limits, RelaySession};
use fieldbook_shared::sync::wire::{self, Role, ToDevice, ToRelay};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One direction of a connection: a byte stream with buffers of `capacity` bytes in between
/// (the TCP send and receive buffers). A writer pushes a frame's bytes while there is room,
/// and has written the frame once its last byte is in; a reader that is reading takes every
/// byte in transit, and the frames complete among them. A peer that stopped reading while it
/// wrote would leave both directions full, and the simulation would find the connection
/// stuck.
struct Pipe {
    capacity: usize,
    /// Bytes written and not yet taken by the reader.
    in_transit: usize,
    /// The frame being written, and how many of its bytes are in.
    writing: Option<(Vec<u8>, usize)>,
    /// Frames written whole, not yet read.
    complete: VecDeque<Vec<u8>>,
}

impl Pipe {
    fn new(capacity: usize) -> Pipe {
        Pipe {
            capacity,
            in_transit: 0,
            writing: None,
            complete: VecDeque::new(),
        }
    }

    /// Write from `outbox` while there is room; whether any byte moved.
    fn fill_from(&mut self, outbox: &mut Outbox) -> bool {
        let mut moved = false;
        while self.in_transit < self.capacity {
            let (frame, written) = match self.writing.take() {
                Some(w) => w,
                None => match outbox.pop() {
                    Some(frame) => (frame, 0),
                    None => break,
                },
            };
            let n = (self.capacity - self.in_transit).min(frame.len() - written);
            self.in_transit += n;
            moved |= n > 0 || frame.is_empty();
            if written + n == frame.len() {
                self.complete.push_back(frame);
            } else {
                self.writing = Some((frame, written + n));
            }
        }
        moved
    }

    /// Read: everything in transit is taken, and up to `k` of the complete frames.
    fn take(&mut self, rng: &mut StdRng, k: usize) -> Vec<Vec<u8>> {
        self.in_transit = 0;
        take(rng, &mut self.complete, k)
    }

    /// Something to read: bytes in transit or frames complete.
    fn readable(&self) -> bool {
        self.in_transit > 0 || !self.complete.is_empty()
    }

    fn is_empty(&self) -> bool {
        self.in_transit == 0 && self.writing.is_none() && self.complete.is_empty()
    }

    /// The writer has nothing half-written.
    fn written(&self) -> bool {
        self.writing.is_none()
    }
}

/// When a peer takes input. The product's: the device always reads and the relay reads while
/// its outbox has room ([`fieldbook_shared::sync::flow`]). The other is how both used to
/// work: read only once everything to send is written, which deadlocks under volume.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reading {
    WhileWriting,
    OnlyAfterWriting,
}

/// Sizes of a simulated connection.
#[derive(Clone, Copy, Debug)]
struct Transport {
    /// Bytes each direction holds in transit.
    pipe: usize,
    /// The relay's outbox limit for one connection.
    relay_outbox: usize,
    reading: Reading,
    window: Window,
    limits: Limits,
}

struct Conn {
    device: DeviceSession,
    uploads: Uploads,
    relay: RelaySession,
    device_out: Outbox,
    up: Pipe,
    relay_out: Outbox,
    down: Pipe,
}

impl Conn {
    /// Whether anything is still on its way in either direction.
    fn busy(&self) -> bool {
        !(self.device_out.is_empty()
            && self.up.is_empty()
            && self.relay_out.is_empty()
            && self.down.is_empty())
    }

    fn relay_reads(&self, reading: Reading) -> bool {
        match reading {
            Reading::WhileWriting => self.relay_out.has_room(),
            Reading::OnlyAfterWriting => self.relay_out.is_empty() && self.down.written(),
        }
    }

    fn device_reads(&self, reading: Reading) -> bool {
        match reading {
            Reading::WhileWriting => true,
            Reading::OnlyAfterWriting => self.device_out.is_empty() && self.up.written(),
        }
    }
}

struct Device {
    dir: PathBuf,
    engine: Engine,
    auth: DeviceAuth,
    conn: Option<Conn>,
}

/// What must survive: every interaction added, every word inserted, every dossier created.
#[derive(Default)]
struct Expected {
    interactions: BTreeMap<String, BTreeSet<String>>,
    words: BTreeMap<String, BTreeSet<String>>,
    dossiers: BTreeSet<String>,
}

struct Sim {
    rng: StdRng,
    transport: Transport,
    relay_path: PathBuf,
    relay: SqliteRelayStore,
    /// The dossiers the relay keeps open across connections.
    relay_docs: TeamDocs,
    team: i64,
    devices: Vec<Device>,
    expected: Expected,
    /// Dossier id → the id of its shared-notes interaction.
    notes: BTreeMap<String, String>,
    counter: u64,
    log: Vec<String>,
}

impl Sim {
    fn new(seed: u64, dir: &Path) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        // Tight buffers, so that the bounded transport matters in every schedule.
        let transport = Transport {
            pipe: rng.random_range(512..8 * 1024),
            relay_outbox: rng.random_range(1024..16 * 1024),
            reading: Reading::WhileWriting,
            window: Window {
                syncing: 3,
                fetching: 4,
                uploading: 2,
                upload_bytes: rng.random_range(1024..16 * 1024),
            },
            limits: Limits::default(),
        };
        Sim::with(seed, dir, rng, transport)
    }

    fn with(seed: u64, dir: &Path, mut rng: StdRng, transport: Transport) -> Sim {
        let relay_path = dir.join("relay.sqlite");
        let mut relay = SqliteRelayStore::open(&relay_path).unwrap();
        let team = relay.create_team("north", 0).unwrap();
        let n = rng.random_range(3..=5);
        let devices = (0..n)
            .map(|i| {
                let dir = dir.join(format!("device{i}"));
                let engine =
                    seeded_device(&dir, seed, i, &format!("rep{}", i % 2), &format!("d{i}"));
                Device {
                    dir,
                    engine,
                    auth: DeviceAuth {
                        device_id: i as i64 + 1,
                        team_id: team,
                        team: "north".into(),
                        user: format!("rep{}", i % 2),
                        role: Role::Rep,
                    },
                    conn: None,
                }
            })
            .collect();
        Sim {
            rng,
            transport,
            relay_path,
            relay,
            relay_docs: team_docs(),
            team,
            devices,
            expected: Expected::default(),
            notes: BTreeMap::new(),
            counter: 0,
            log: Vec::new(),
        }
    }

    fn marker(&mut self) -> String {
        self.counter += 1;
        format!("w{}", self.counter)
    }

    fn connect(&mut self, d: usize) {
        let t = self.transport;
        let dev = &mut self.devices[d];
        let mut conn = Conn {
            device: DeviceSession::new(t.window),
            uploads: Uploads::default(),
            relay: RelaySession::new(t.limits),
            device_out: Outbox::unbounded(),
            up: Pipe::new(t.pipe),
            relay_out: Outbox::with_limit(t.relay_outbox),
            down: Pipe::new(t.pipe),
        };
        let hello = conn
            .device
            .start(&mut Replica {
                engine: &mut dev.engine,
                uploads: &mut conn.uploads,
            })
            .unwrap();
        conn.device_out.extend(hello.iter().map(wire::encode));
        dev.conn = Some(conn);
    }

    fn edit(&mut self, d: usize) {
        let ids: Vec<String> = self.devices[d].engine.ids().unwrap();
        let word = self.marker();
        let kind = if ids.is_empty() {
            0
        } else {
            self.rng.random_range(0..5)
        };
        let engine = &mut self.devices[d].engine;
        let doc = match kind {
            0 => {
                // A new dossier, with an interaction whose notes everyone will edit.
                let id = engine
                    .create_dossier(&[set("profile.name", &word)])
                    .unwrap();
                let notes = engine
                    .add_item(
                        &id,
                        "interactions",
                        &[set("date", "2026-11-01"), set("notes", "notes:")],
                    )
                    .unwrap();
                self.notes.insert(id.clone(), notes);
                self.expected.dossiers.insert(id.clone());
                id
            }
            1 => {
                let id = ids[self.rng.random_range(0..ids.len())].clone();
                let i = engine
                    .add_item(
                        &id,
                        "interactions",
                        &[set("date", "2026-11-20"), set("notes", &word)],
                    )
                    .unwrap();
                self.expected
                    .interactions
                    .entry(id.clone())
                    .or_default()
                    .insert(i);
                id
            }
            2 => {
                let id = ids[self.rng.random_range(0..ids.len())].clone();
                engine.set(&id, &[set("profile.industry", &word)]).unwrap();
                id
            }
            3 => {
                // A long meeting record: frames larger than the transport's buffers.
                let id = ids[self.rng.random_range(0..ids.len())].clone();
                let long = format!(
                    "{word} {}",
                    "纪要 minutes ".repeat(self.rng.random_range(50..400))
                );
                let i = engine
                    .add_item(
                        &id,
                        "interactions",
                        &[set("date", "2026-11-21"), set("notes", &long)],
                    )
                    .unwrap();
                self.expected
                    .interactions
                    .entry(id.clone())
                    .or_default()
                    .insert(i);
                id
            }
            _ => {
                let id = ids[self.rng.random_range(0..ids.len())].clone();
                let notes = self.notes[&id].clone();
                let text = engine.dossier(&id).unwrap().dossier.interactions[&notes]
                    .notes
                    .to_string();
                // Between words, so that every inserted word stays whole.
                let cut: Vec<usize> = text
                    .char_indices()
                    .filter(|(_, c)| *c == ' ')
                    .map(|(i, _)| i)
                    .chain([text.len()])
                    .collect();
                let at = cut[self.rng.random_range(0..cut.len())];
                let new = format!("{} {word} {}", &text[..at], &text[at..]);
                engine
                    .set(&id, &[set(&format!("interactions.{notes}.notes"), &new)])
                    .unwrap();
                self.expected
                    .words
                    .entry(id.clone())
                    .or_default()
                    .insert(word.clone());
                id
            }
        };
        self.log.push(format!("edit d{d} kind {kind} {doc}"));
        self.tell_local_change(d, &doc);
    }

    /// Device `d`'s session hears of a local edit to `doc`, if it is connected.
    fn tell_local_change(&mut self, d: usize, doc: &str) {
        let dev = &mut self.devices[d];
        if let Some(conn) = &mut dev.conn {
            let out = conn
                .device
                .local_change(
                    &mut Replica {
                        engine: &mut dev.engine,
                        uploads: &mut conn.uploads,
                    },
                    doc,
                )
                .unwrap();
            conn.device_out.extend(out.iter().map(wire::encode));
        }
    }

    /// The writers of device `d`'s connection move what they can into the transport.
    fn write(&mut self, d: usize) -> bool {
        let Some(conn) = &mut self.devices[d].conn else {
            return false;
        };
        let up = conn.up.fill_from(&mut conn.device_out);
        let down = conn.down.fill_from(&mut conn.relay_out);
        up || down
    }

    /// The relay reads up to `k` frames from device `d`, if it takes input now.
    fn deliver_up(&mut self, d: usize, k: usize) -> bool {
        let reading = self.transport.reading;
        let Some(conn) = &mut self.devices[d].conn else {
            return false;
        };
        if !conn.relay_reads(reading) || !conn.up.readable() {
            return false;
        }
        let frames = conn.up.take(&mut self.rng, k);
        if frames.is_empty() {
            return true;
        }
        let decoded: Vec<ToRelay> = frames.iter().map(|f| wire::decode(f).unwrap()).collect();
        if IN_ORDER.with(|f| f.get()) {
            for f in &decoded {
                self.log.push(format!("up d{d}: {}", describe_up(f)));
            }
        }
        let auth = self.devices[d].auth.clone();
        let conn = self.devices[d].conn.as_mut().unwrap();
        let handled = conn.relay.receive(
            &mut TeamReplica::for_device(&mut self.relay, &auth, &mut self.relay_docs, 0),
            decoded,
        );
        match handled {
            Ok(h) => {
                conn.relay_out.extend(h.replies.iter().map(wire::encode));
                if let Some((seq, docs)) = h.committed {
                    for (i, other) in self.devices.iter_mut().enumerate() {
                        if let Some(c) = &mut other.conn {
                            let told = c.relay.announce(seq, &docs, i == d, &h.forwards, &[]);
                            c.relay_out.extend(told.iter().map(wire::encode));
                        }
                    }
                }
                self.produce(d);
            }
            Err(e) => {
                self.log.push(format!("relay closed d{d}: {e}"));
                self.devices[d].conn = None;
            }
        }
        true
    }

    /// The relay produces the bulk output asked for on device `d`'s connection while its
    /// outbox has room (under the old way of reading, all of it at once).
    fn produce(&mut self, d: usize) -> bool {
        let reading = self.transport.reading;
        let auth = self.devices[d].auth.clone();
        let Some(conn) = &mut self.devices[d].conn else {
            return false;
        };
        let mut moved = false;
        let mut corrected = Vec::new();
        while conn.relay.has_pending()
            && (conn.relay_out.has_room() || reading == Reading::OnlyAfterWriting)
        {
            let budget = match reading {
                Reading::WhileWriting => conn.relay_out.room(),
                Reading::OnlyAfterWriting => usize::MAX,
            };
            let mut replica =
                TeamReplica::for_device(&mut self.relay, &auth, &mut self.relay_docs, 0);
            let frames = conn.relay.produce(&mut replica, budget).unwrap();
            corrected.extend(replica.corrected);
            conn.relay_out.extend(frames.iter().map(wire::encode));
            moved = true;
        }
        // What checking a dossier on its way out put right is told to every connection.
        for (seq, docs) in corrected {
            for other in &mut self.devices {
                if let Some(c) = &mut other.conn {
                    let told = c.relay.announce(seq, &docs, false, &[], &[]);
                    c.relay_out.extend(told.iter().map(wire::encode));
                }
            }
        }
        moved
    }

    /// Device `d` reads up to `k` frames from the relay, if it takes input now.
    fn deliver_down(&mut self, d: usize, k: usize) -> bool {
        let reading = self.transport.reading;
        let dev = &mut self.devices[d];
        let Some(conn) = &mut dev.conn else {
            return false;
        };
        if !conn.device_reads(reading) || !conn.down.readable() {
            return false;
        }
        let frames = conn.down.take(&mut self.rng, k);
        if frames.is_empty() {
            return true;
        }
        let decoded: Vec<ToDevice> = frames.iter().map(|f| wire::decode(f).unwrap()).collect();
        if IN_ORDER.with(|f| f.get()) {
            for f in &decoded {
                self.log.push(format!("down d{d}: {}", describe_down(f)));
            }
        }
        let out = conn.device.receive(
            &mut Replica {
                engine: &mut dev.engine,
                uploads: &mut conn.uploads,
            },
            decoded,
        );
        match out {
            Ok(out) => conn.device_out.extend(out.iter().map(wire::encode)),
            Err(e) => {
                self.log.push(format!("device d{d} closed: {e}"));
                dev.conn = None;
            }
        }
        true
    }

    fn crash_device(&mut self, d: usize) {
        self.log.push(format!("crash d{d}"));
        let dev = &mut self.devices[d];
        dev.conn = None;
        let user = dev.engine.identity().user.clone();
        let name = dev.engine.identity().device.clone();
        // Reopen from what SQLite committed; new ids continue from a sequence of their own.
        dev.engine = seeded_device(&dev.dir, self.counter, d + 100, &user, &name);
    }

    /// The relay checks the projections devices vouched for (what its checker does in the
    /// background).
    fn relay_checks(&mut self) {
        let committed = fieldbook_relay::check::check_in(&mut self.relay, 16).unwrap();
        self.log
            .push(format!("relay checked, rewrote {}", committed.len()));
        for (seq, docs) in committed {
            for c in self.devices.iter_mut().filter_map(|dev| dev.conn.as_mut()) {
                let told = c.relay.announce(seq, &docs, false, &[], &[]);
                c.relay_out.extend(told.iter().map(wire::encode));
            }
        }
    }

    fn restart_relay(&mut self) {
        self.log.push("restart relay".into());
        for dev in &mut self.devices {
            dev.conn = None;
        }
        self.relay = SqliteRelayStore::open(&self.relay_path).unwrap();
        self.relay_docs = team_docs();
    }

    fn step(&mut self) {
        let n = self.devices.len();
        // Writers write as soon as the transport has room (they are tasks of their own).
        for d in 0..n {
            self.write(d);
        }
        let d = self.rng.random_range(0..n);
        match self.rng.random_range(0..100) {
            0..=24 => self.edit(d),
            25..=34 => {
                if self.devices[d].conn.is_none() {
                    self.connect(d);
                }
            }
            35..=39 => {
                self.log.push(format!("disconnect d{d}"));
                self.devices[d].conn = None;
            }
            40..=41 => self.crash_device(d),
            42 => self.restart_relay(),
            43 => self.relay_checks(),
            44..=54 => {
                self.write(d);
            }
            55..=57 => {
                self.produce(d);
            }
            58..=76 => {
                let k = self.rng.random_range(1..=4);
                self.deliver_up(d, k);
            }
            _ => {
                let k = self.rng.random_range(1..=4);
                self.deliver_down(d, k);
            }
        }
    }

    /// Everyone online, messages delivered in order until nothing moves. Err when frames are
    /// still on their way but nobody can move them: the connection is stuck.
    fn heal(&mut self) -> Result<(), String> {
        for d in 0..self.devices.len() {
            if self.devices[d].conn.is_none() {
                self.connect(d);
            }
        }
        for _ in 0..20_000 {
            let mut moved = false;
            for d in 0..self.devices.len() {
                if self.devices[d].conn.is_none() {
                    self.connect(d);
                    moved = true;
                }
                moved |= self.write(d);
                moved |= self.deliver_up_in_order(d, usize::MAX);
                moved |= self.produce(d);
                moved |= self.deliver_down_in_order(d, usize::MAX);
            }
            if !moved {
                let stuck: Vec<String> = self
                    .devices
                    .iter()
                    .enumerate()
                    .filter_map(|(d, dev)| dev.conn.as_ref().filter(|c| c.busy()).map(|c| (d, c)))
                    .map(|(d, c)| {
                        format!(
                            "d{d}: device outbox {} B, up {} B, relay outbox {} B, down {} B",
                            c.device_out.bytes(),
                            c.up.in_transit,
                            c.relay_out.bytes(),
                            c.down.in_transit
                        )
                    })
                    .collect();
                if stuck.is_empty() {
                    return Ok(());
                }
                return Err(format!("deadlock: {}", stuck.join("; ")));
            }
        }
        let tail = &self.log[self.log.len().saturating_sub(60)..];
        Err(format!(
            "the network never went quiet:\n{}",
            tail.join("\n")
        ))
    }

    fn deliver_up_in_order(&mut self, d: usize, k: usize) -> bool {
        let saved = std::mem::replace(&mut self.rng, StdRng::seed_from_u64(0));
        self.rng = StdRng::seed_from_u64(u64::MAX);
        IN_ORDER.with(|f| f.set(true));
        let moved = self.deliver_up(d, k);
        IN_ORDER.with(|f| f.set(false));
        self.rng = saved;
        moved
    }

    fn deliver_down_in_order(&mut self, d: usize, k: usize) -> bool {
        IN_ORDER.with(|f| f.set(true));
        let moved = self.deliver_down(d, k);
        IN_ORDER.with(|f| f.set(false));
        moved
    }

    /// Every device is connected, done, and recorded as synced by the relay, which holds no
    /// exchange open for it.
    fn check_connections(&self) {
        let context = || self.log.join("\n");
        for (i, dev) in self.devices.iter().enumerate() {
            let conn = dev.conn.as_ref().unwrap();
            assert!(conn.device.is_idle(), "device {i} idle\n{}", context());
            assert!(
                conn.device.is_complete(),
                "device {i}'s completed sync is recorded by the relay\n{}",
                context()
            );
            assert_eq!(
                conn.relay.open_exchanges(),
                0,
                "the relay holds no exchange open for device {i}\n{}",
                context()
            );
        }
    }

    fn check(&mut self) {
        let north = self.team;
        let (_, relay_ids) = self.relay.changed_since(north, 0).unwrap();
        let relay_ids: BTreeSet<String> = relay_ids.into_iter().collect();
        let context = || self.log.join("\n");
        assert_eq!(
            relay_ids,
            self.expected.dossiers,
            "relay holds every dossier\n{}",
            context()
        );
        for (i, dev) in self.devices.iter().enumerate() {
            let ids: BTreeSet<String> = dev.engine.ids().unwrap().into_iter().collect();
            assert_eq!(
                ids,
                relay_ids,
                "device {i} holds every dossier\n{}",
                context()
            );
            assert_eq!(
                dev.engine.store().unsynced_changes().unwrap(),
                0,
                "device {i} has everything acknowledged\n{}",
                context()
            );
        }
        self.check_connections();
        for id in &relay_ids {
            let stored = self.relay.load_doc(north, id).unwrap().unwrap();
            let relay_heads = DossierDoc::load(&stored.bytes).unwrap().heads();
            for (i, dev) in self.devices.iter().enumerate() {
                let heads = DossierDoc::load(&dev.engine.export_document(id).unwrap())
                    .unwrap()
                    .heads();
                assert_eq!(
                    heads,
                    relay_heads,
                    "device {i} differs on {id}\n{}",
                    context()
                );
            }
            let dossier = self.devices[0].engine.dossier(id).unwrap().dossier;
            for i in self.expected.interactions.get(id).into_iter().flatten() {
                assert!(
                    dossier.interactions.contains_key(i),
                    "interaction {i} lost in {id}"
                );
            }
            let notes = dossier.interactions[&self.notes[id]].notes.to_string();
            for w in self.expected.words.get(id).into_iter().flatten() {
                assert!(
                    notes.split_whitespace().any(|x| x == w),
                    "word {w} lost in {id}: {notes}\n{}",
                    context()
                );
            }
            // The list row matches the document on every device.
            let summary = self.devices[0].engine.summary(id).unwrap();
            for dev in &self.devices[1..] {
                assert_eq!(dev.engine.summary(id).unwrap(), summary);
            }
        }
    }
}

fn sync_summary(data: &[u8]) -> String {
    match automerge::sync::Message::decode(data) {
        Ok(m) => format!(
            "heads {:?} need {} have {} changes {}",
            m.heads
                .iter()
                .map(|h| h.to_string()[..6].to_string())
                .collect::<Vec<_>>(),
            m.need.len(),
            m.have.len(),
            m.changes.len()
        ),
        Err(e) => format!("undecodable {e}"),
    }
}

fn describe_up(f: &ToRelay) -> String {
    match f {
        ToRelay::Sync { doc, data, done } => {
            format!("sync {} {} done {done}", &doc[..6], sync_summary(data))
        }
        other => format!("{other:?}").chars().take(80).collect(),
    }
}

fn describe_down(f: &ToDevice) -> String {
    match f {
        ToDevice::Sync { doc, data, done } => {
            format!("sync {} {} done {done}", &doc[..6], sync_summary(data))
        }
        ToDevice::Snapshots(s) => format!("snapshots {}", s.len()),
        other => format!("{other:?}").chars().take(80).collect(),
    }
}

/// A device whose Automerge actor and new ids derive from the seed, so that a schedule
/// replays exactly.
fn seeded_device(dir: &Path, seed: u64, index: usize, user: &str, name: &str) -> Engine {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(fieldbook_app::engine::STORE_FILE);
    let mut store = fieldbook_app::store::sqlite::SqliteStore::open(&path).unwrap();
    if store.get_setting("device.actor").unwrap().is_none() {
        let actor = format!("{seed:016x}{index:016x}");
        store.set_setting("device.actor", &actor).unwrap();
    }
    let today = "2026-11-23".parse().unwrap();
    let clock = std::sync::Arc::new(fieldbook_app::clock::FixedClock::at(today));
    let mut engine = Engine::with_store(store, clock).unwrap();
    engine.set_identity(user, name).unwrap();
    engine.use_seeded_ids(seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
    engine
}

thread_local! {
    static IN_ORDER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static DISTURBED: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Take up to `k` frames from the front of a queue, sometimes disturbed: a frame duplicated
/// (delivered and left for delivery again), or two frames swapped.
fn take(rng: &mut StdRng, queue: &mut VecDeque<Vec<u8>>, k: usize) -> Vec<Vec<u8>> {
    if !IN_ORDER.with(|f| f.get()) && !queue.is_empty() {
        match rng.random_range(0..6) {
            0 if queue.len() >= 2 => {
                queue.swap(0, 1);
                DISTURBED.with(|d| d.set((d.get().0 + 1, d.get().1)));
            }
            1 => {
                let dup = queue[0].clone();
                queue.push_front(dup);
                DISTURBED.with(|d| d.set((d.get().0, d.get().1 + 1)));
            }
            _ => {}
        }
    }
    let k = k.min(queue.len());
    queue.drain(..k).collect()
}

fn run(seed: u64) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = Sim::new(seed, dir.path());
    let steps = sim.rng.random_range(30..90);
    for _ in 0..steps {
        sim.step();
    }
    if let Err(e) = sim.heal() {
        panic!("{e}\n{}", sim.log.join("\n"));
    }
    // Quiet: every exchange of the schedule's connections is closed on both sides.
    sim.check_connections();
    // A second pass from fresh connections: a reconnect must find nothing left to do.
    for d in 0..sim.devices.len() {
        sim.devices[d].conn = None;
    }
    if let Err(e) = sim.heal() {
        panic!("{e}\n{}", sim.log.join("\n"));
    }
    sim.check();
    // Every projection a device vouched for is the one the relay works out itself.
    let rewrote = fieldbook_relay::check::check_in(&mut sim.relay, usize::MAX).unwrap();
    assert!(rewrote.is_empty(), "{rewrote:?}\n{}", sim.log.join("\n"));
    sim.log
}

#[test]
fn a_seed_replays_the_same_schedule() {
    let first = run(7);
    let second = run(7);
    assert!(first.len() > 20);
    assert_eq!(first, second, "the same seed, the same events and messages");
}

#[test]
fn seeded_schedules_converge_with_nothing_lost() {
    let count: u64 = std::env::var("SIM_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let first: u64 = std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut events: BTreeMap<&str, u64> = BTreeMap::new();
    for seed in first..first + count {
        let result = std::panic::catch_unwind(|| run(seed));
        match result {
            Ok(log) => {
                for line in &log {
                    let kind = [
                        "edit",
                        "crash",
                        "restart relay",
                        "disconnect",
                        "relay closed",
                        "device d",
                    ]
                    .into_iter()
                    .find(|k| line.starts_with(k))
                    .unwrap_or("other");
                    *events.entry(kind).or_default() += 1;
                }
            }
            Err(e) => {
                eprintln!(
                    "schedule with seed {seed} failed (rerun: SIM_SEED={seed} SIM_SCHEDULES=1)"
                );
                std::panic::resume_unwind(e);
            }
        }
    }
    let (swapped, duplicated) = DISTURBED.with(|d| d.get());
    eprintln!(
        "{count} schedules converged; events: {events:?}; frames swapped {swapped}, duplicated {duplicated}"
    );
}

impl Sim {
    /// A dossier with a long meeting record on device `d` (about `kib` KiB of notes); its id.
    fn long_dossier(&mut self, d: usize, kib: usize) -> String {
        let word = self.marker();
        let engine = &mut self.devices[d].engine;
        let id = engine
            .create_dossier(&[set("profile.name", &word)])
            .unwrap();
        let text = format!("notes: {}", "客户需求 demand ".repeat(kib * 1024 / 20));
        let notes = engine
            .add_item(
                &id,
                "interactions",
                &[set("date", "2026-11-01"), set("notes", &text)],
            )
            .unwrap();
        self.notes.insert(id.clone(), notes);
        self.expected.dossiers.insert(id.clone());
        id
    }
}

impl Sim {
    /// The frames on their way down to device `d`, not yet read.
    fn waiting_down(&self, d: usize) -> Vec<ToDevice> {
        self.devices[d]
            .conn
            .as_ref()
            .map(|c| {
                c.down
                    .complete
                    .iter()
                    .map(|f| wire::decode(f).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Two devices on a transport with room to spare: the test makes the schedule.
fn two_devices(seed: u64, dir: &Path) -> Sim {
    let transport = Transport {
        pipe: 1 << 20,
        relay_outbox: 1 << 20,
        reading: Reading::WhileWriting,
        window: Window::default(),
        limits: Limits::default(),
    };
    let mut sim = Sim::with(seed, dir, StdRng::seed_from_u64(seed), transport);
    sim.devices.truncate(2);
    sim
}

/// Two devices back from the road, each with dozens of long dossiers the other lacks, on a
/// transport whose buffers hold a few KiB: with peers that read while they write the sync
/// finishes; with peers that read only once they have written everything (how the relay
/// and the device used to work) the same schedule is stuck with both directions full.
#[test]
fn reading_only_after_writing_deadlocks_on_the_bounded_transport() {
    let run = |reading: Reading| {
        let dir = tempfile::tempdir().unwrap();
        let transport = Transport {
            pipe: 4 * 1024,
            relay_outbox: 8 * 1024,
            reading,
            window: Window::default(),
            limits: Limits::default(),
        };
        let mut sim = Sim::with(99, dir.path(), StdRng::seed_from_u64(99), transport);
        sim.devices.truncate(2);
        // The colleague's device stays offline while the first syncs.
        let away = sim.devices.pop().unwrap();
        for _ in 0..12 {
            sim.long_dossier(0, 4);
        }
        sim.heal().expect("one device alone never deadlocks");
        sim.devices.push(away);
        for _ in 0..12 {
            sim.long_dossier(1, 4);
        }
        sim.connect(1);
        let healed = sim.heal();
        if healed.is_ok() {
            sim.check();
        }
        healed
    };
    run(Reading::WhileWriting).expect("reading while writing never deadlocks");
    let stuck = run(Reading::OnlyAfterWriting).expect_err("the old way deadlocks");
    assert!(stuck.starts_with("deadlock"), "{stuck}");
    eprintln!("old way: {stuck}");
}

/// Two live devices editing the same dossiers in turn, each edit crossing the other's
/// exchange: a device closes one exchange and starts the next in one breath, and the relay
/// must start that one afresh, so that however many edits a dossier takes on one connection,
/// no exchange runs out of rounds.
#[test]
fn a_dossier_edited_again_and_again_on_one_connection_never_runs_out_of_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let transport = Transport {
        pipe: 1 << 20,
        relay_outbox: 1 << 20,
        reading: Reading::WhileWriting,
        window: Window::default(),
        limits: Limits {
            rounds_per_doc: 4,
            ..Limits::default()
        },
    };
    let mut sim = Sim::with(5, dir.path(), StdRng::seed_from_u64(5), transport);
    sim.devices.truncate(2);
    sim.edit(0);
    sim.heal().expect("first dossier synced");
    for round in 0..60 {
        let (a, b) = (round % 2, 1 - round % 2);
        sim.edit(a);
        sim.edit(b);
        // Crossing: each device hears of the other's commit while its own exchange is in
        // flight, and the relay reads what a device wrote as one batch.
        for _ in 0..6 {
            sim.write(a);
            sim.write(b);
            sim.deliver_up_in_order(a, usize::MAX);
            sim.deliver_up_in_order(b, usize::MAX);
            sim.write(a);
            sim.write(b);
            sim.deliver_down_in_order(a, 1);
            sim.deliver_down_in_order(b, 1);
        }
        let closed: Vec<&String> = sim
            .log
            .iter()
            .filter(|l| l.starts_with("relay closed"))
            .collect();
        assert!(closed.is_empty(), "round {round}: {closed:?}");
    }
    sim.heal().expect("quiet at the end");
    sim.check();
}

/// A colleague changes a dossier while a device is fetching it whole, and the news of the
/// change overtakes the copy, taken before it: the device exchanges the dossier once the copy
/// is stored, and ends with the change.
#[test]
fn a_change_told_while_a_dossier_is_fetched_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = two_devices(7, dir.path());
    let away = sim.devices.pop().unwrap();
    sim.edit(0);
    sim.heal().expect("the first device syncs its new dossier");
    sim.devices.push(away);
    sim.connect(1);
    // Hello, welcome, fetch: the relay has produced the copy, not yet read.
    sim.write(1);
    sim.deliver_up_in_order(1, usize::MAX);
    sim.write(1);
    sim.deliver_down_in_order(1, usize::MAX);
    sim.write(1);
    sim.deliver_up_in_order(1, usize::MAX);
    sim.write(1);
    let copy_on_its_way = |sim: &Sim| {
        sim.waiting_down(1)
            .iter()
            .any(|f| matches!(f, ToDevice::Snapshots(_)))
    };
    assert!(copy_on_its_way(&sim), "{}", sim.log.join("\n"));
    // The colleague's edit reaches the relay, which tells the fetching device.
    let engine = &mut sim.devices[0].engine;
    let id = engine.ids().unwrap()[0].clone();
    engine
        .set(&id, &[set("profile.industry", "制造业")])
        .unwrap();
    sim.tell_local_change(0, &id);
    sim.write(0);
    sim.deliver_up_in_order(0, usize::MAX);
    sim.write(1);
    let down = &mut sim.devices[1].conn.as_mut().unwrap().down.complete;
    let told = down.pop_back().expect("the relay told of the change");
    assert!(
        !matches!(wire::decode::<ToDevice>(&told), Ok(ToDevice::Snapshots(_))),
        "the last frame is the news of the change"
    );
    down.push_front(told);
    // Read on its own, before the copy.
    sim.deliver_down_in_order(1, 1);
    sim.heal().expect("quiet at the end");
    sim.check();
    let industry = |d: usize| {
        sim.devices[d]
            .engine
            .dossier(&id)
            .unwrap()
            .dossier
            .profile
            .industry
    };
    assert_eq!(industry(1), industry(0), "{}", sim.log.join("\n"));
}

/// One commit of the relay holds a colleague's pushed edit and a new dossier: it reaches the
/// other devices as the edit forwarded, then the news of the new dossier. A device that has
/// read only the forwarded edit when the connection drops must not count the commit as
/// seen: on reconnecting it is offered the new dossier. (A relay killed at that moment left a
/// device short of whole dossiers, for good.)
#[test]
fn a_commit_read_only_in_part_before_a_drop_is_offered_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = two_devices(11, dir.path());
    sim.edit(0);
    sim.heal().expect("both devices hold the first dossier");
    let existing = sim.devices[0].engine.ids().unwrap()[0].clone();

    // Device 0 edits the dossier both hold and makes a new one; the relay reads both at once.
    sim.devices[0]
        .engine
        .set(&existing, &[set("profile.industry", "制造业")])
        .unwrap();
    let new = sim.long_dossier(0, 1);
    sim.tell_local_change(0, &existing);
    sim.tell_local_change(0, &new);
    for _ in 0..4 {
        sim.write(0);
        sim.deliver_up_in_order(0, usize::MAX);
        sim.write(0);
        sim.deliver_down_in_order(0, usize::MAX);
    }
    sim.write(1);
    let down = sim.waiting_down(1);
    assert!(
        matches!(down.first(), Some(ToDevice::Forward { .. })),
        "the edit is forwarded first: {:?}\n{}",
        down.iter().map(describe_down).collect::<Vec<_>>(),
        sim.log.join("\n")
    );
    // Device 1 reads the forwarded edit alone; then the connection drops.
    sim.deliver_down_in_order(1, 1);
    sim.devices[1].conn = None;
    sim.heal().expect("quiet at the end");
    sim.check();
    assert!(sim.devices[1].engine.ids().unwrap().contains(&new));
}
