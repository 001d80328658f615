//! A lost laptop gives nothing away: the device store is encrypted (SQLCipher) under a key
//! kept outside it, the device token is not in it, and a store an older version left plain is
//! encrypted in place without losing anything, even when killed midway.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use fieldbook_app::Engine;
use fieldbook_app::clock::FixedClock;
use fieldbook_app::engine::{EngineError, STORE_FILE};
use fieldbook_app::secrets::{RELAY_TOKEN, Secrets};
use fieldbook_app::store::sqlite::SqliteStore;
use fieldbook_app::store::{DossierStore, StoreError};
use fieldbook_shared::Day;
use fieldbook_shared::patch::set;
use fieldbook_tests::relay::RelayProcess;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");
const CLI: &str = env!("CARGO_BIN_EXE_device_cli");
const COMPANY: &str = "杭州东兴精密机械有限公司";

fn today() -> Day {
    "2026-11-23".parse().unwrap()
}

fn open(dir: &Path, secrets: &Secrets) -> Result<Engine, EngineError> {
    Engine::open(dir, secrets, Arc::new(FixedClock::at(today())))
}

/// Every file under `dir`, and whether any holds `needle` in its raw bytes.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(path);
        }
    }
    found
}

/// No file under `dir` holds any of `needles` in its raw bytes.
fn none_holds(dir: &Path, needles: &[&[u8]]) {
    for needle in needles {
        assert_eq!(
            files_holding(dir, needle),
            Vec::<PathBuf>::new(),
            "{}",
            String::from_utf8_lossy(needle)
        );
    }
}

#[test]
fn nothing_under_the_data_folder_reads_as_a_client_or_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_tls(RELAY.as_ref(), &dir.path().join("relay")).unwrap();
    let data = dir.path().join("device");
    let secrets = Secrets::key_file(&dir.path().join("elsewhere").join("device.key"));
    let mut device = open(&data, &secrets).unwrap();
    device.set_identity("li", "laptop").unwrap();
    let code = relay.invite("east", "li", "rep").unwrap();
    fieldbook_app::sync::enroll(&mut device, &relay.url, &code, &relay.trust()).unwrap();
    let id = device
        .create_dossier(&[set("profile.name", COMPANY), set("profile.region", "杭州")])
        .unwrap();
    fieldbook_tests::relay::sync_once(&mut device).unwrap();
    let token = secrets
        .get(RELAY_TOKEN)
        .unwrap()
        .expect("the token is kept");
    // While the store is open (the WAL holds the latest pages) and after it is closed.
    let nothing_readable = || {
        assert!(std::fs::read_dir(&data).unwrap().count() >= 1);
        none_holds(
            &data,
            &[
                COMPANY.as_bytes(),
                "杭州".as_bytes(),
                token.as_bytes(),
                b"SQLite format 3",
            ],
        );
    };
    nothing_readable();
    drop(device);
    nothing_readable();
    let device = open(&data, &secrets).unwrap();
    // And it all reads back with the key.
    assert_eq!(device.summary(&id).unwrap().name, COMPANY);
    assert_eq!(device.relay_config().unwrap().unwrap().token, token);
}

#[test]
fn a_wrong_or_missing_key_is_a_clear_error_and_the_file_is_left_intact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("device");
    let secrets = Secrets::key_file(&dir.path().join("device.key"));
    let id = open(&data, &secrets)
        .unwrap()
        .create_dossier(&[set("profile.name", COMPANY)])
        .unwrap();
    let store = data.join(STORE_FILE);
    let before = std::fs::read(&store).unwrap();

    // Another key (another key file): refused, nothing written.
    let other = Secrets::key_file(&dir.path().join("other.key"));
    other.new_store_key().unwrap();
    match open(&data, &other) {
        Err(EngineError::Store(StoreError::WrongKey { path })) => {
            assert!(path.ends_with(STORE_FILE), "{path}")
        }
        Err(e) => panic!("expected a wrong key, got {e}"),
        Ok(_) => panic!("opened with the wrong key"),
    }
    // No key at all: refused; no new key is made up for an encrypted store.
    let empty = Secrets::key_file(&dir.path().join("empty.key"));
    let e = open(&data, &empty).err().expect("no key");
    assert!(
        matches!(e, EngineError::Store(StoreError::KeyMissing { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("left as it is"), "{e}");
    assert_eq!(empty.store_key().unwrap(), None);
    assert_eq!(std::fs::read(&store).unwrap(), before);

    // The right key still opens it, with everything in it.
    assert_eq!(
        open(&data, &secrets).unwrap().summary(&id).unwrap().name,
        COMPANY
    );
}

/// A plain store as an older version wrote it: `count` dossiers, a device token in the
/// settings table.
fn plain_store(data: &Path, count: usize) -> Vec<String> {
    std::fs::create_dir_all(data).unwrap();
    let mut store = SqliteStore::open(&data.join(STORE_FILE)).unwrap();
    store
        .set_setting("relay.url", "http://127.0.0.1:9")
        .unwrap();
    store
        .set_setting("relay.token", "old-plain-token-0123456789")
        .unwrap();
    let mut engine = Engine::with_store(store, Arc::new(FixedClock::at(today()))).unwrap();
    engine.set_identity("li", "laptop").unwrap();
    let mut dossiers = fieldbook_app::synth::dossiers(11, count, &["li"], today());
    dossiers[0].1.profile.name = COMPANY.into();
    for batch in dossiers.chunks(500) {
        engine.create_many(batch).unwrap();
    }
    let mut ids = engine.ids().unwrap();
    ids.sort();
    ids
}

#[test]
fn a_plain_store_is_encrypted_in_place_and_its_token_moves_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("device");
    let ids = plain_store(&data, 50);
    assert_eq!(files_holding(&data, COMPANY.as_bytes()).len(), 1);

    let secrets = Secrets::key_file(&dir.path().join("device.key"));
    let engine = open(&data, &secrets).unwrap();
    let mut now = engine.ids().unwrap();
    now.sort();
    assert_eq!(now, ids);
    assert_eq!(engine.identity().user, "li");
    let relay = engine.relay_config().unwrap().expect("still enrolled");
    assert_eq!(relay.token, "old-plain-token-0123456789");
    drop(engine);
    none_holds(&data, &[COMPANY.as_bytes(), b"old-plain-token"]);
}

#[test]
fn encrypting_a_plain_store_killed_at_any_moment_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("fixture");
    let ids = plain_store(&fixture, 3_000);
    let copy_of_fixture = |to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(&fixture).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    };
    let cli = |data: &Path| {
        let mut c = Command::new(CLI);
        c.arg("--data-dir")
            .arg(data)
            .arg("--key-file")
            .arg(fieldbook_app::secrets::key_file_beside(data))
            .args(["--json", "list", "--limit", "1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    // How long the whole encryption takes here, uninterrupted.
    let whole = dir.path().join("whole");
    copy_of_fixture(&whole);
    let started = Instant::now();
    assert!(cli(&whole).status().unwrap().success());
    let took = started.elapsed();

    let mut interrupted = 0;
    for i in 0..8u32 {
        let data = dir.path().join(format!("kill-{i}"));
        copy_of_fixture(&data);
        let mut child = cli(&data).spawn().unwrap();
        // Spread over the whole run, from the start to past the end.
        std::thread::sleep(took.mul_f64(f64::from(i) / 7.0));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        let secrets = Secrets::key_file_beside(&data);
        let engine = open(&data, &secrets).unwrap_or_else(|e| panic!("after kill {i}: {e}"));
        let mut now = engine.ids().unwrap();
        now.sort();
        assert_eq!(now.len(), ids.len(), "after kill {i}");
        assert_eq!(now, ids, "after kill {i}");
        drop(engine);
        none_holds(&data, &[COMPANY.as_bytes()]);
    }
    assert!(
        interrupted >= 3,
        "only {interrupted} kills landed mid-run ({took:?})"
    );
}
