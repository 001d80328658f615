//! A revoked device learns it on its next contact, says how much had not reached the relay,
//! and (the team's policy, on by default) wipes its replica and its key.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fieldbook_app::Engine;
use fieldbook_app::engine::STORE_FILE;
use fieldbook_app::secrets::{RELAY_TOKEN, STORE_KEY, Secrets, key_file_beside};
use fieldbook_app::sync::LinkState;
use fieldbook_app::sync::SyncError;
use fieldbook_shared::patch::set;
use fieldbook_tests::relay::{Background, RelayProcess, enrolled_device, sync_once};
use fieldbook_tests::web::WebClient;
use serde_json::json;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");
const CLI: &str = env!("CARGO_BIN_EXE_device_cli");

/// The relay's id of the one device enrolled for `user` (from `devices`).
fn device_id(relay: &RelayProcess, user: &str) -> String {
    let listed = relay.admin(&["devices", "--team", "east"]).unwrap();
    listed
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(user))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no device of {user} in {listed}"))
        .to_string()
}

/// A relay over TLS, and li's laptop enrolled in team east with one dossier synced: the
/// relay, the laptop's data folder, the laptop, the dossier's id.
struct Synced {
    relay: RelayProcess,
    data: PathBuf,
    li: Engine,
    id: String,
}

fn li_synced(dir: &Path) -> Synced {
    let relay = RelayProcess::start_tls(RELAY.as_ref(), &dir.join("relay")).unwrap();
    let data = dir.join("li");
    let mut li = enrolled_device(&relay, &data, "east", "li", "laptop").unwrap();
    let id = li
        .create_dossier(&[set("profile.name", "华东机械")])
        .unwrap();
    sync_once(&mut li).unwrap();
    Synced {
        relay,
        data,
        li,
        id,
    }
}

#[test]
fn a_revoked_device_wipes_its_replica_and_key_and_says_what_was_lost() {
    let dir = tempfile::tempdir().unwrap();
    let Synced {
        relay,
        data,
        mut li,
        id: synced,
    } = li_synced(dir.path());
    // Recorded after the last sync: these never reach the relay.
    li.set(&synced, &[set("profile.region", "上海")]).unwrap();
    li.create_dossier(&[set("profile.name", "杭州东兴")])
        .unwrap();
    let unsent = li.unsent().unwrap();
    assert_eq!((unsent.changes, unsent.dossiers), (2, 2));

    relay.admin(&["revoke", &device_id(&relay, "li")]).unwrap();
    match sync_once(&mut li) {
        Err(e @ SyncError::Revoked { wiped: true, .. }) => {
            let SyncError::Revoked { unsent: lost, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*lost, unsent);
            let told = e.to_string();
            assert!(
                told.contains("revoked") && told.contains("2 changes in 2 dossiers"),
                "{told}"
            );
            assert!(told.contains("revoked"), "{told}");
        }
        other => panic!("expected a revocation, got {other:?}"),
    }
    // Nothing of the replica is left: no store file, no token, no key.
    assert!(!data.join(STORE_FILE).exists());
    let secrets = Secrets::key_file(&key_file_beside(&data));
    assert_eq!(secrets.get(RELAY_TOKEN).unwrap(), None);
    assert_eq!(secrets.get(STORE_KEY).unwrap(), None);
    assert_eq!(li.ids().unwrap(), Vec::<String>::new());
    drop(li);
    // Opened again, the device starts afresh: empty, not enrolled.
    let again = fieldbook_tests::device(&data, "li", "laptop").unwrap();
    assert_eq!(again.ids().unwrap(), Vec::<String>::new());
    assert_eq!(again.relay_config().unwrap(), None);
}

#[test]
fn a_team_can_keep_revoked_devices_data_and_the_cli_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let Synced {
        relay,
        data,
        li,
        id,
    } = li_synced(dir.path());
    drop(li);
    relay
        .admin(&["team", "policy", "east", "--wipe-on-revoke", "false"])
        .unwrap();
    relay.admin(&["revoke", &device_id(&relay, "li")]).unwrap();

    let out = Command::new(CLI)
        .arg("--data-dir")
        .arg(&data)
        .args(["--key-file"])
        .arg(key_file_beside(&data))
        .arg("sync")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("revoked") && err.contains("stay on it"),
        "{err}"
    );
    let li = fieldbook_tests::device(&data, "li", "laptop").unwrap();
    assert_eq!(li.summary(&id).unwrap().name, "华东机械");
}

#[test]
fn a_manager_revokes_a_live_device_from_the_web_view_and_it_wipes_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let Synced {
        relay, data, li, ..
    } = li_synced(dir.path());
    relay.invite("east", "chen", "manager").unwrap();
    relay
        .set_password("east", "chen", "manager-password-1")
        .unwrap();
    relay.invite("west", "sun", "manager").unwrap();
    relay
        .set_password("west", "sun", "west-password-12")
        .unwrap();
    let mut east = WebClient::of(&relay).unwrap();
    assert_eq!(
        east.login("east", "chen", "manager-password-1").unwrap().0,
        200
    );
    let mut west = WebClient::of(&relay).unwrap();
    assert_eq!(
        west.login("west", "sun", "west-password-12").unwrap().0,
        200
    );

    // The board lists the device with the id a revocation takes.
    let (status, board) = east.call("dashboard", &json!({})).unwrap();
    assert_eq!(status, 200, "{board}");
    let id = board["freshness"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rep| rep["devices"].as_array().unwrap())
        .find(|d| d["user"] == "li")
        .and_then(|d| d["id"].as_i64())
        .unwrap_or_else(|| panic!("no device of li on {board}"));
    assert_eq!(id.to_string(), device_id(&relay, "li"));

    let li = Arc::new(Mutex::new(li));
    let background = Background::start(li.clone());
    let connected = Instant::now();
    while !background.is_connected() {
        assert!(
            connected.elapsed() < Duration::from_secs(20),
            "never connected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Another team's manager, and a made-up id, get the same answer; neither revokes.
    let (status, theirs) = west
        .call("revoke_device", &json!({ "device": id }))
        .unwrap();
    let (made_up_status, made_up) = east
        .call("revoke_device", &json!({ "device": id + 1000 }))
        .unwrap();
    assert_eq!((status, made_up_status), (404, 404), "{theirs} {made_up}");
    assert_eq!(theirs["kind"], made_up["kind"]);
    assert!(background.is_connected());

    let (status, body) = east
        .call("revoke_device", &json!({ "device": id }))
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let revoked = Instant::now();
    // First the closed connection, then, on the next contact, the refusal that wipes.
    let told = loop {
        if let LinkState::Offline { error: Some(e), .. } = &*background.states.borrow()
            && e.contains("wiped")
        {
            break e.clone();
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(5),
            "not told within 5 s: {:?}",
            *background.states.borrow()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = revoked.elapsed();
    assert!(told.contains("revoked"), "{told}");
    assert!(!data.join(STORE_FILE).exists(), "the replica is gone");
    // The reason stays shown; it does not fall back to "not enrolled".
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        matches!(&*background.states.borrow(), LinkState::Offline { error: Some(e), .. } if e.contains("wiped")),
        "{:?}",
        *background.states.borrow()
    );
    background.stop();
    eprintln!("revoked on the web: the device was told and wiped in {took:?}");
    // The board no longer lists it.
    let (_, board) = east.call("dashboard", &json!({})).unwrap();
    assert!(
        !board["freshness"].to_string().contains("laptop"),
        "{board}"
    );
}
