//! Visibility per rep: where the team's manager says so, a rep's device holds only the
//! dossiers the rep owns and those shared with them; a dossier reassigned or unshared leaves
//! the old rep's device on its next sync, after what that rep had not synced reached the
//! relay. Managers see everything. A real relay process over TLS, real device stores.

use std::time::Duration;

use fieldbook_app::Engine;
use fieldbook_shared::patch::set;
use fieldbook_tests::relay::{
    Background, RelayProcess, enrolled_device, enrolled_device_as, sync_once,
};

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

fn held(device: &Engine) -> Vec<String> {
    let mut ids = device.ids().unwrap();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn found(device: &Engine, text: &str) -> usize {
    device.search(text, 10).unwrap().len()
}

fn policy(relay: &RelayProcess, visibility: &str) {
    relay
        .admin(&["team", "policy", "east", "--visibility", visibility])
        .unwrap();
}

#[test]
fn reps_hold_only_their_own_and_shared_dossiers_and_lose_none_of_their_edits() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_tls(RELAY.as_ref(), &dir.path().join("relay")).unwrap();
    let mut li = enrolled_device(&relay, &dir.path().join("li"), "east", "li", "laptop").unwrap();
    let mut wang =
        enrolled_device(&relay, &dir.path().join("wang"), "east", "wang", "laptop").unwrap();
    let mut zhou = enrolled_device_as(
        &relay,
        &dir.path().join("zhou"),
        "east",
        "zhou",
        "desk",
        "manager",
    )
    .unwrap();

    // The team sees everything (the default): every device holds both dossiers.
    let ours = li
        .create_dossier(&[set("profile.name", "华东机械")])
        .unwrap();
    let theirs = wang
        .create_dossier(&[set("profile.name", "杭州东兴")])
        .unwrap();
    sync_once(&mut li).unwrap();
    sync_once(&mut wang).unwrap();
    sync_once(&mut zhou).unwrap();
    sync_once(&mut li).unwrap();
    let both = sorted(vec![ours.clone(), theirs.clone()]);
    assert_eq!(held(&li), both);
    assert_eq!(held(&zhou), both);

    // Reps see their own only: each rep's device lets the other's dossier go.
    policy(&relay, "own");
    sync_once(&mut li).unwrap();
    sync_once(&mut wang).unwrap();
    sync_once(&mut zhou).unwrap();
    assert_eq!(held(&li), vec![ours.clone()]);
    assert_eq!(held(&wang), vec![theirs.clone()]);
    assert_eq!(held(&zhou), both, "a manager sees everything");
    assert_eq!(found(&li, "杭州"), 0, "search covers what the device holds");
    assert_eq!(found(&li, "华东"), 1);
    assert_eq!(li.unsent().unwrap().changes, 0);

    // Shared with li: it reaches li's device.
    wang.set(&theirs, &[set("profile.shared_with", "li")])
        .unwrap();
    sync_once(&mut wang).unwrap();
    sync_once(&mut li).unwrap();
    assert_eq!(held(&li), both);
    assert_eq!(found(&li, "杭州"), 1);

    // li edits its own dossier without signal while the manager hands it to wang: li's edit
    // reaches the relay, then the dossier leaves li's device.
    li.set(&ours, &[set("profile.region", "上海")]).unwrap();
    sync_once(&mut zhou).unwrap();
    zhou.set(&ours, &[set("profile.owner", "wang")]).unwrap();
    sync_once(&mut zhou).unwrap();
    sync_once(&mut li).unwrap();
    assert_eq!(
        held(&li),
        vec![theirs.clone()],
        "handed to wang: gone from li"
    );
    assert_eq!(
        li.unsent().unwrap().changes,
        0,
        "nothing of li's left unsent"
    );
    sync_once(&mut wang).unwrap();
    sync_once(&mut zhou).unwrap();
    for device in [&wang, &zhou] {
        let handed = device.summary(&ours).unwrap();
        assert_eq!(handed.owner, "wang");
        assert_eq!(handed.region, "上海", "li's offline edit was kept");
    }

    // Unshared: gone from li again.
    wang.set(&theirs, &[set("profile.shared_with", "")])
        .unwrap();
    sync_once(&mut wang).unwrap();
    sync_once(&mut li).unwrap();
    assert!(held(&li).is_empty());

    // The whole team again: li's device fetches what it lacks.
    policy(&relay, "team");
    sync_once(&mut li).unwrap();
    assert_eq!(held(&li), both);
}

#[test]
fn a_dossier_handed_over_leaves_a_connected_device_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // (The relay process lives as long as its binding.)
    let Own {
        relay: _relay,
        li,
        mut zhou,
        id,
    } = own_dossier_synced(dir.path());
    assert_eq!(held(&zhou), vec![id.clone()]);

    let li = std::sync::Arc::new(std::sync::Mutex::new(li));
    let live = Background::start(li.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !live.is_connected() {
        assert!(std::time::Instant::now() < deadline, "li never connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    zhou.set(&id, &[set("profile.owner", "wang")]).unwrap();
    sync_once(&mut zhou).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if held(&li.lock().unwrap()).is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dossier handed over stayed on li's connected device"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    live.stop();
}

/// Team east, where reps see their own dossiers only: its relay, li (a rep) and zhou (the
/// manager) on their devices, and a dossier of li's that both hold.
struct Own {
    relay: RelayProcess,
    li: Engine,
    zhou: Engine,
    id: String,
}

fn own_dossier_synced(dir: &std::path::Path) -> Own {
    let relay = RelayProcess::start_tls(RELAY.as_ref(), &dir.join("relay")).unwrap();
    relay.admin(&["team", "create", "east"]).unwrap();
    policy(&relay, "own");
    let (mut li, mut zhou) = li_and_zhou(&relay, dir);
    let id = li
        .create_dossier(&[set("profile.name", "华东机械")])
        .unwrap();
    sync_once(&mut li).unwrap();
    sync_once(&mut zhou).unwrap();
    Own {
        relay,
        li,
        zhou,
        id,
    }
}

#[test]
fn a_rep_cannot_give_itself_back_a_dossier_handed_away() {
    let dir = tempfile::tempdir().unwrap();
    let Own {
        relay: _relay,
        mut li,
        mut zhou,
        id,
    } = own_dossier_synced(dir.path());
    // Handed to wang while li, offline, shares it with itself.
    zhou.set(&id, &[set("profile.owner", "wang")]).unwrap();
    sync_once(&mut zhou).unwrap();
    li.set(&id, &[set("profile.shared_with", "li")]).unwrap();
    let refused = sync_once(&mut li).expect_err("li may not make itself a reader again");
    assert!(refused.to_string().contains("ask a manager"), "{refused}");
    sync_once(&mut zhou).unwrap();
    let on_relay = zhou.summary(&id).unwrap();
    assert_eq!(on_relay.owner, "wang");
    assert!(
        on_relay.shared_with.is_empty(),
        "nothing of li's change was stored"
    );
}

/// li (a rep) and zhou (the manager) of team east, each on a device enrolled with `relay`.
fn li_and_zhou(relay: &RelayProcess, dir: &std::path::Path) -> (Engine, Engine) {
    let li = enrolled_device(relay, &dir.join("li"), "east", "li", "laptop").unwrap();
    let zhou =
        enrolled_device_as(relay, &dir.join("zhou"), "east", "zhou", "desk", "manager").unwrap();
    (li, zhou)
}
