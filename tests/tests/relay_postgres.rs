//! The relay process on PostgreSQL (`--db postgres://…`), on a server the tests start
//! themselves: devices sync through it, the manager's board reads it, and neither a relay
//! killed with SIGKILL nor the database restarting under a live relay loses what was
//! acknowledged. `cargo test postgres` runs them.

use std::time::{Duration, Instant};

use fieldbook_app::Engine;
use fieldbook_shared::patch::set;
use fieldbook_tests::postgres::{Postgres, shared};
use fieldbook_tests::relay::{
    RelayProcess, enrolled_device, same_everywhere, sync_once, sync_within,
};
use fieldbook_tests::web::WebClient;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

fn company(engine: &Engine, id: &str) -> String {
    engine.dossier(id).unwrap().dossier.profile.name
}

#[test]
fn postgres_relay_carries_an_offline_edit_to_the_other_device_and_the_managers_board() {
    let pg = shared().unwrap();
    let url = pg.create_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start_on(RELAY.as_ref(), dir.path(), Some(&url), &[]).unwrap();
    let mut li = enrolled_device(&relay, &dir.path().join("li"), "north", "li", "laptop").unwrap();
    let mut wang =
        enrolled_device(&relay, &dir.path().join("wang"), "north", "wang", "desk").unwrap();

    // Offline on li's laptop, then synced.
    let id = li
        .create_dossier(&[set("profile.name", "华东精密机械有限公司")])
        .unwrap();
    sync_once(&mut li).unwrap();
    sync_once(&mut wang).unwrap();
    assert_eq!(company(&wang, &id), "华东精密机械有限公司");

    // The manager's board, read from PostgreSQL.
    relay.invite("north", "chen", "manager").unwrap();
    relay
        .set_password("north", "chen", "correct horse")
        .unwrap();
    let mut web = WebClient::of(&relay).unwrap();
    assert_eq!(web.login("north", "chen", "correct horse").unwrap().0, 200);
    let board = web.dashboard().unwrap();
    assert_eq!(board.dossiers, 1);
    assert!(board.reps.contains(&"li".to_string()), "{:?}", board.reps);

    // Killed outright and started again on the same database: nothing acknowledged is lost.
    relay.restart().unwrap();
    wang.add_item(
        &id,
        "interactions",
        &[
            set("date", "2026-11-20"),
            set("notes", "约了下周二去工厂看产线"),
        ],
    )
    .unwrap();
    sync_once(&mut wang).unwrap();
    sync_once(&mut li).unwrap();
    assert_eq!(li.dossier(&id).unwrap().dossier.interactions.len(), 1);
    relay.wait_checked(Duration::from_secs(30)).unwrap();
    assert_eq!(same_everywhere(&relay, "north", &[&li, &wang]).unwrap(), 1);
}

#[test]
fn postgres_restarting_under_a_live_relay_fails_syncs_clearly_then_loses_nothing() {
    // A server of its own, to stop.
    let pg = Postgres::start().unwrap();
    let url = pg.create_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_on(RELAY.as_ref(), dir.path(), Some(&url), &[]).unwrap();
    let mut li = enrolled_device(&relay, &dir.path().join("li"), "north", "li", "laptop").unwrap();
    let mut wang =
        enrolled_device(&relay, &dir.path().join("wang"), "north", "wang", "desk").unwrap();
    for n in 0..20 {
        li.create_dossier(&[set("profile.name", &format!("客户{n}"))])
            .unwrap();
    }
    sync_once(&mut li).unwrap();

    pg.stop().unwrap();
    let late = li
        .create_dossier(&[set("profile.name", "数据库停机时记下的客户")])
        .unwrap();
    let config = li.relay_config().unwrap().unwrap();
    let started = Instant::now();
    let failed = sync_within(&mut li, &config, Duration::from_secs(60));
    let Err(failed) = failed else {
        panic!("a sync with no database: {failed:?}")
    };
    eprintln!("with the database down, the device says: {failed}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the sync failed only after {:?}",
        started.elapsed()
    );
    // Still held on the device, waiting to be sent.
    assert_eq!(company(&li, &late), "数据库停机时记下的客户");

    pg.start_server().unwrap();
    // The relay picks the database up again on its own; the next sync sends what waited.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match sync_once(&mut li) {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("the relay did not recover: {e}"),
        }
    }
    sync_once(&mut wang).unwrap();
    assert_eq!(company(&wang, &late), "数据库停机时记下的客户");
    relay.wait_checked(Duration::from_secs(30)).unwrap();
    assert_eq!(same_everywhere(&relay, "north", &[&li, &wang]).unwrap(), 21);
}

/// One team's write held up in the database (here: its row locked by another session, as a
/// long commit or a second instance would) holds up that team alone: another team's device
/// syncs meanwhile, and the held-up sync completes once the lock goes, losing nothing.
#[test]
fn postgres_one_team_held_up_does_not_hold_up_another() {
    let pg = shared().unwrap();
    let url = pg.create_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_on(RELAY.as_ref(), dir.path(), Some(&url), &[]).unwrap();
    let mut li = enrolled_device(&relay, &dir.path().join("li"), "east", "li", "laptop").unwrap();
    let mut wang =
        enrolled_device(&relay, &dir.path().join("wang"), "north", "wang", "desk").unwrap();

    let mut blocker = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut held = blocker.transaction().unwrap();
    held.execute("SELECT 1 FROM team WHERE name = 'east' FOR UPDATE", &[])
        .unwrap();

    let east_id = li
        .create_dossier(&[set("profile.name", "东区的客户")])
        .unwrap();
    let east = std::thread::spawn(move || {
        let synced = sync_once(&mut li);
        (li, synced)
    });
    // Until the relay's write for east waits on the lock.
    let mut watch = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = watch
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "east's write never reached the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // North syncs while east waits.
    let north_id = wang
        .create_dossier(&[set("profile.name", "北区的客户")])
        .unwrap();
    let config = wang.relay_config().unwrap().unwrap();
    sync_within(&mut wang, &config, Duration::from_secs(20))
        .expect("north syncs while east is held up");
    assert!(!east.is_finished(), "east was not held up after all");

    held.rollback().unwrap();
    let (li, synced) = east.join().unwrap();
    synced.expect("east's sync completes once the lock is gone");
    relay.wait_checked(Duration::from_secs(30)).unwrap();
    let store = relay.store().unwrap();
    for (team, id) in [("east", &east_id), ("north", &north_id)] {
        let team = store.team_id(team).unwrap().unwrap();
        assert!(
            store.load_doc(team, id).unwrap().is_some(),
            "{id} not stored"
        );
    }
    assert_eq!(same_everywhere(&relay, "east", &[&li]).unwrap(), 1);
    assert_eq!(same_everywhere(&relay, "north", &[&wang]).unwrap(), 1);
}
