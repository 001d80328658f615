//! A full disk on the relay or on the device: the sync fails with a clear error, nothing is
//! lost or half-written, and it completes once there is room again.

use fieldbook_app::Engine;
use fieldbook_app::store::DossierStore;
use fieldbook_app::sync::{Replica, Uploads};
use fieldbook_relay::replica::{ReplicaError, TeamReplica, team_docs};
use fieldbook_relay::store::sqlite::SqliteRelayStore;
use fieldbook_relay::store::{DeviceAuth, RelayStore, StoreError as RelayStoreError};
use fieldbook_shared::patch::set;
use fieldbook_shared::sync::SessionError;
use fieldbook_shared::sync::device::{DeviceSession, Window};
use fieldbook_shared::sync::relay::{Limits, RelaySession};
use fieldbook_shared::sync::wire::{Role, ToDevice, ToRelay};

/// Run one connection between `engine` and the relay until it is idle or fails; returns the
/// relay's error, if any.
fn sync(
    engine: &mut Engine,
    relay: &mut SqliteRelayStore,
    auth: &DeviceAuth,
) -> Result<(), String> {
    let mut device = DeviceSession::new(Window::default());
    let mut relay_session = RelaySession::new(Limits::default());
    let mut uploads = Uploads::default();
    let mut relay_docs = team_docs();
    let mut up: Vec<ToRelay> = device
        .start(&mut Replica {
            engine,
            uploads: &mut uploads,
        })
        .map_err(|e| e.to_string())?;
    for _ in 0..1_000 {
        let handled = relay_session.receive(
            &mut TeamReplica::for_device(relay, auth, &mut relay_docs, 0),
            std::mem::take(&mut up),
        );
        let produced = handled.and_then(|mut h| {
            // Snapshots asked for: all of them (this driver holds everything in memory).
            while relay_session.has_pending() {
                h.replies.extend(relay_session.produce(
                    &mut TeamReplica::for_device(relay, auth, &mut relay_docs, 0),
                    usize::MAX,
                )?);
            }
            Ok(h)
        });
        let down: Vec<ToDevice> = match produced {
            Ok(h) => h.replies,
            Err(SessionError::Replica(ReplicaError::Store(RelayStoreError::Full))) => {
                return Err("relay disk full".into());
            }
            Err(e) => return Err(e.to_string()),
        };
        up = device
            .receive(
                &mut Replica {
                    engine,
                    uploads: &mut uploads,
                },
                down,
            )
            .map_err(|e| e.to_string())?;
        if device.is_complete() && up.is_empty() {
            return Ok(());
        }
    }
    Err("did not finish".into())
}

#[test]
fn a_full_disk_fails_the_sync_cleanly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = SqliteRelayStore::open(&dir.path().join("relay.sqlite")).unwrap();
    let team = relay.create_team("north", 0).unwrap();
    let auth = |id: i64| DeviceAuth {
        device_id: id,
        team_id: team,
        team: "north".into(),
        user: "li".into(),
        role: Role::Rep,
    };
    let mut laptop = fieldbook_tests::device(&dir.path().join("laptop"), "li", "laptop").unwrap();
    let today = "2026-11-23".parse().unwrap();
    laptop
        .create_many(&fieldbook_app::synth::dossiers(3, 40, &["li"], today))
        .unwrap();

    // The relay's disk fills up: the sync fails, the device keeps every change as unsent.
    let pages: i64 = rusqlite_pages(&dir.path().join("relay.sqlite"));
    relay.set_max_pages(pages as u64 + 8).unwrap();
    let err = sync(&mut laptop, &mut relay, &auth(1)).unwrap_err();
    assert_eq!(err, "relay disk full");
    assert_eq!(
        laptop.store().unsynced().unwrap().len(),
        40,
        "nothing marked sent"
    );
    let (_, held) = relay.changed_since(team, 0).unwrap();
    assert!(
        held.len() < 40,
        "the relay stored what fitted, in whole batches only"
    );
    for id in &held {
        assert!(relay.load_doc(team, id).unwrap().is_some());
    }

    // Room again: the same sync completes, and a second device gets all of it.
    relay.set_max_pages(1_000_000).unwrap();
    sync(&mut laptop, &mut relay, &auth(1)).unwrap();
    assert_eq!(laptop.sync_status().unwrap().unsynced_changes, 0);

    // The phone's disk is full during its cold sync: an error, and its store as before.
    let mut phone = fieldbook_tests::device(&dir.path().join("phone"), "li", "phone").unwrap();
    let own = phone
        .create_dossier(&[set("profile.name", "Mine")])
        .unwrap();
    let phone_pages = phone.store().size_bytes().unwrap() / 4096;
    phone.store().set_max_pages(phone_pages + 4).unwrap();
    let err = sync(&mut phone, &mut relay, &auth(2)).unwrap_err();
    assert!(err.contains("disk is full"), "{err}");
    assert_eq!(phone.dossier(&own).unwrap().dossier.profile.name, "Mine");
    phone.store().set_max_pages(1_000_000).unwrap();
    sync(&mut phone, &mut relay, &auth(2)).unwrap();
    assert_eq!(phone.ids().unwrap().len(), 41);
    assert_eq!(phone.sync_status().unwrap().unsynced_changes, 0);
}

/// Pages of the relay's (plain) SQLite file.
fn rusqlite_pages(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap()
}
