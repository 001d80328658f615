//! Three relay processes on one PostgreSQL database, a team's devices spread over them, as
//! behind a load balancer: an edit made through one instance reaches a device connected to
//! another live; a lost commit feed only delays; an instance killed mid-upload loses nothing
//! it acknowledged, its device carrying on through another; the manager's board on any
//! instance shows the whole team. `cargo test postgres` runs them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fieldbook_app::Engine;
use fieldbook_app::store::DossierStore;
use fieldbook_app::sync::RelayConfig;
use fieldbook_app::synth;
use fieldbook_shared::document::DossierDoc;
use fieldbook_shared::patch::set;
use fieldbook_tests::postgres::{Postgres, shared};
use fieldbook_tests::relay::{
    Background, RelayProcess, enrolled_device, same_everywhere, sync_once, sync_to,
};
use fieldbook_tests::web::WebClient;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

/// The server (to hold while the instances run: it stops when the last test lets go of it,
/// and is let go of after them) and three instances on one new database.
fn three_instances(dir: &std::path::Path) -> (Arc<Postgres>, Vec<RelayProcess>, String) {
    let pg = shared().unwrap();
    let url = pg.create_database().unwrap();
    let relays = (1..=3)
        .map(|n| {
            RelayProcess::start_on(
                RELAY.as_ref(),
                &dir.join(format!("relay{n}")),
                Some(&url),
                &[],
            )
            .unwrap()
        })
        .collect();
    (pg, relays, url)
}

/// Until `check` holds, or panic with `what` after `within`.
fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Li's laptop, enrolled through instance 1, and wang's desk, connected live to instance 3.
fn li_on_first_and_wang_live_on_third(
    relays: &[RelayProcess],
    dir: &std::path::Path,
) -> (Engine, Arc<Mutex<Engine>>, Background) {
    let li = enrolled_device(&relays[0], &dir.join("li"), "north", "li", "laptop").unwrap();
    let wang = enrolled_device(&relays[2], &dir.join("wang"), "north", "wang", "desk").unwrap();
    let wang = Arc::new(Mutex::new(wang));
    let background = Background::start(wang.clone());
    eventually(Duration::from_secs(20), "connected", || {
        background.is_connected()
    });
    (li, wang, background)
}

fn notes(engine: &Mutex<Engine>, id: &str) -> Vec<String> {
    let engine = engine.lock().unwrap();
    match engine.dossier(id) {
        Ok(view) => view
            .dossier
            .interactions
            .values()
            .map(|i| i.notes.as_str().to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn postgres_cluster_an_edit_through_one_instance_reaches_a_device_on_another_live() {
    let dir = tempfile::tempdir().unwrap();
    let (_pg, relays, _url) = three_instances(dir.path());
    let (mut li, wang, background) = li_on_first_and_wang_live_on_third(&relays, dir.path());

    // Made through instance 1; wang's device, connected to instance 3, is told at once.
    let id = li
        .create_dossier(&[set("profile.name", "华东精密机械有限公司")])
        .unwrap();
    sync_once(&mut li).unwrap();
    eventually(
        Duration::from_secs(10),
        "the new dossier reached wang live",
        || wang.lock().unwrap().dossier(&id).is_ok(),
    );
    li.add_item(
        &id,
        "interactions",
        &[
            set("date", "2026-11-20"),
            set("notes", "约了下周二去工厂看产线"),
        ],
    )
    .unwrap();
    sync_once(&mut li).unwrap();
    eventually(
        Duration::from_secs(10),
        "the edit reached wang live",
        || notes(&wang, &id) == ["约了下周二去工厂看产线"],
    );

    // The manager, on instance 2, sees the whole team and both devices' freshness.
    relays[1].invite("north", "chen", "manager").unwrap();
    relays[1]
        .set_password("north", "chen", "correct horse")
        .unwrap();
    let mut web = WebClient::of(&relays[1]).unwrap();
    assert_eq!(web.login("north", "chen", "correct horse").unwrap().0, 200);
    let board = web.dashboard().unwrap();
    assert_eq!(board.dossiers, 1);
    // Both reps' devices synced, each through its own instance.
    for rep in ["li", "wang"] {
        let fresh = board
            .freshness
            .iter()
            .find(|f| f.rep == rep)
            .unwrap_or_else(|| panic!("no freshness for {rep}: {:?}", board.freshness));
        assert!(fresh.last_sync_ms.is_some(), "{fresh:?}");
    }

    background.stop();
    let wang = Arc::try_unwrap(wang).ok().unwrap().into_inner().unwrap();
    relays[0].wait_checked(Duration::from_secs(30)).unwrap();
    assert_eq!(
        same_everywhere(&relays[0], "north", &[&li, &wang]).unwrap(),
        1
    );
}

#[test]
fn postgres_cluster_a_lost_commit_feed_only_delays() {
    let dir = tempfile::tempdir().unwrap();
    let (_pg, relays, url) = three_instances(dir.path());
    let (mut li, wang, background) = li_on_first_and_wang_live_on_third(&relays, dir.path());
    let id = li.create_dossier(&[set("profile.name", "客户")]).unwrap();
    sync_once(&mut li).unwrap();
    eventually(Duration::from_secs(10), "the dossier reached wang", || {
        wang.lock().unwrap().dossier(&id).is_ok()
    });

    // Every instance's feed cut, over and over, while edits are made: notifications sent
    // meanwhile go nowhere, and each reconnection catches up from the team's sequence.
    let cutting = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let cutter = {
        let cutting = cutting.clone();
        let url = url.clone();
        std::thread::spawn(move || {
            let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut cuts = 0;
            while cutting.load(std::sync::atomic::Ordering::Relaxed) {
                cuts += admin
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = 'fieldbook-relay commit feed'",
                        &[],
                    )
                    .unwrap()
                    .len();
                std::thread::sleep(Duration::from_millis(5));
            }
            cuts
        })
    };
    for n in 0..5 {
        li.add_item(
            &id,
            "interactions",
            &[set("date", "2026-11-20"), set("notes", &format!("第{n}次"))],
        )
        .unwrap();
        sync_once(&mut li).unwrap();
    }
    cutting.store(false, std::sync::atomic::Ordering::Relaxed);
    let cuts = cutter.join().unwrap();
    assert!(cuts >= 3, "the feeds were cut ({cuts} times)");
    eventually(Duration::from_secs(20), "every edit reached wang", || {
        notes(&wang, &id).len() == 5
    });
    background.stop();
}

#[test]
fn postgres_cluster_an_instance_killed_mid_upload_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (_pg, mut relays, _url) = three_instances(dir.path());
    let mut laptop = enrolled_device(
        &relays[1],
        &dir.path().join("laptop"),
        "north",
        "li",
        "laptop",
    )
    .unwrap();
    let today = "2026-11-23".parse().unwrap();
    laptop
        .create_many(&synth::dossiers(11, 800, &["li"], today))
        .unwrap();
    let ids = laptop.ids().unwrap();

    // Instance 2 killed as soon as the database holds some of the upload.
    let store = relays[0].store().unwrap();
    let team = store.team_id("north").unwrap().unwrap();
    let cut = std::thread::scope(|s| {
        let sync = s.spawn(|| sync_once(&mut laptop));
        let started = Instant::now();
        while !sync.is_finished()
            && store.doc_count(team).unwrap() == 0
            && started.elapsed() < Duration::from_secs(120)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        relays[1].kill();
        sync.join().unwrap()
    });
    eprintln!(
        "cut: {:?}; {} of {} stored",
        cut.as_ref().err(),
        store.doc_count(team).unwrap(),
        ids.len()
    );

    // Everything the device holds as acknowledged is in the database.
    let pending: std::collections::BTreeSet<String> =
        laptop.store().unsynced().unwrap().into_iter().collect();
    for id in ids.iter().filter(|id| !pending.contains(*id)) {
        let stored = store
            .load_doc(team, id)
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {id} is not in the database"));
        assert_eq!(
            DossierDoc::load(&stored.bytes).unwrap().heads(),
            DossierDoc::load(&laptop.export_document(id).unwrap())
                .unwrap()
                .heads(),
            "{id}"
        );
    }

    // The device carries on through instance 1, as a load balancer would send it.
    let config = laptop.relay_config().unwrap().unwrap();
    let through_first = RelayConfig {
        url: relays[0].url.clone(),
        ..config
    };
    sync_to(&mut laptop, &through_first).unwrap();
    assert_eq!(laptop.sync_status().unwrap().unsynced_changes, 0);
    let mut phone = enrolled_device(
        &relays[2],
        &dir.path().join("phone"),
        "north",
        "li",
        "phone",
    )
    .unwrap();
    sync_once(&mut phone).unwrap();
    relays[0].wait_checked(Duration::from_secs(60)).unwrap();
    assert_eq!(
        same_everywhere(&relays[0], "north", &[&laptop, &phone]).unwrap(),
        ids.len()
    );
}
