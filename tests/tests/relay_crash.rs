//! The relay killed with SIGKILL at arbitrary moments of a large sync: nothing it had
//! acknowledged is missing after a restart, devices reconnect and converge.

use std::time::Duration;

use fieldbook_app::synth;
use fieldbook_relay::store::RelayStore;
use fieldbook_relay::store::sqlite::SqliteRelayStore;
use fieldbook_shared::Day;
use fieldbook_shared::document::DossierDoc;
use fieldbook_tests::relay::{RelayProcess, enrolled_device, sync_once};

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

#[test]
fn sigkill_during_a_large_sync_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path()).unwrap();
    let mut laptop =
        enrolled_device(&relay, &dir.path().join("laptop"), "north", "li", "laptop").unwrap();
    let today: Day = "2026-11-23".parse().unwrap();
    // More than the device keeps in flight (4 MB of uploads): it records the relay's answers
    // to the first frames before it sends the last, so a kill can fall between them.
    let dossiers = synth::dossiers(7, 1500, &["li"], today);
    laptop.create_many(&dossiers).unwrap();
    let mut ids = laptop.ids().unwrap();

    let mut kills = 0;
    let mut partial = 0;
    // Each kill lands as soon as the device has recorded a new acknowledgement (read from
    // its store beside the sync), whatever the machine's speed: with ~220 dossiers a commit,
    // the first attempts are cut midway.
    let device_db = dir
        .path()
        .join("laptop")
        .join(fieldbook_app::engine::STORE_FILE);
    // Until the sync has been cut twice, once midway through the acknowledgements (whether a
    // cut lands there depends on how the relay's answers reach the device: in one read, all
    // are recorded at once).
    for attempt in 0..10 {
        if kills >= 2 && partial >= 1 {
            break;
        }
        let acked_before = device_acked(&device_db);
        let killer = {
            let pid_relay = &mut relay;
            // Kill from this thread while the sync runs on another.
            std::thread::scope(|s| {
                let handle = s.spawn(|| sync_once(&mut laptop));
                let started = std::time::Instant::now();
                while !handle.is_finished()
                    && device_acked(&device_db) == acked_before
                    && started.elapsed() < Duration::from_secs(120)
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                pid_relay.kill();
                handle.join().unwrap()
            })
        };
        if killer.is_ok() {
            // Finished before the kill (the rest went in one commit): more to sync, and again.
            relay.restart().unwrap();
            let more = synth::dossiers(100 + attempt, 300, &["li"], today);
            laptop.create_many(&more).unwrap();
            ids = laptop.ids().unwrap();
            continue;
        }
        kills += 1;
        // With the relay dead, everything the device holds as acknowledged must be on disk.
        let store = SqliteRelayStore::open(&relay.db_path()).unwrap();
        let team = store.team_id("north").unwrap().unwrap();
        let pending: std::collections::BTreeSet<String> =
            laptop.store().unsynced().unwrap().into_iter().collect();
        use fieldbook_app::store::DossierStore;
        let mut acked = 0;
        for id in ids.iter().filter(|id| !pending.contains(*id)) {
            let stored = store
                .load_doc(team, id)
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged {id} is not on the relay"));
            let mine = DossierDoc::load(&laptop.export_document(id).unwrap())
                .unwrap()
                .heads();
            assert_eq!(
                DossierDoc::load(&stored.bytes).unwrap().heads(),
                mine,
                "{id}"
            );
            acked += 1;
        }
        eprintln!("kill {kills}: {acked} of {} acknowledged", ids.len());
        let whole = acked == ids.len();
        if acked > 0 && !whole {
            partial += 1;
        }
        drop(store);
        relay.restart().unwrap();
        if whole && partial == 0 {
            // Every acknowledgement reached the device in its first commit (the relay was
            // done before the device recorded any): more to sync, so the next cut can land
            // between the relay's commits.
            let more = synth::dossiers(200 + attempt, 600, &["li"], today);
            laptop.create_many(&more).unwrap();
            ids = laptop.ids().unwrap();
        }
    }
    assert!(
        kills >= 2,
        "the sync was interrupted at least twice ({kills})"
    );
    assert!(
        partial >= 1,
        "at least one kill landed midway through the acknowledgements"
    );

    // Reconnect until done; then a new device gets everything from the relay.
    let mut tries = 0;
    while let Err(e) = sync_once(&mut laptop) {
        tries += 1;
        assert!(tries < 5, "sync keeps failing: {e}");
    }
    assert_eq!(laptop.sync_status().unwrap().unsynced_changes, 0);
    let mut phone =
        enrolled_device(&relay, &dir.path().join("phone"), "north", "li", "phone").unwrap();
    sync_once(&mut phone).unwrap();
    let mut got = phone.ids().unwrap();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);
    for id in ids.iter().step_by(37) {
        assert_eq!(
            phone.dossier(id).unwrap().dossier,
            laptop.dossier(id).unwrap().dossier
        );
        assert_eq!(phone.summary(id).unwrap(), laptop.summary(id).unwrap());
    }
}

/// Dossiers the device has recorded as acknowledged (read beside the running sync, as
/// SQLite allows, with the store's key).
fn device_acked(db: &std::path::Path) -> i64 {
    let Some(key) = db
        .parent()
        .and_then(|dir| {
            fieldbook_app::secrets::Secrets::key_file_beside(dir)
                .store_key()
                .ok()
        })
        .flatten()
    else {
        return 0;
    };
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return 0;
    };
    if conn
        .execute_batch(&format!("PRAGMA key = \"x'{}'\";", key.hex()))
        .is_err()
    {
        return 0;
    }
    conn.query_row(
        "SELECT COUNT(*) FROM sync_doc WHERE unsynced = 0",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}
