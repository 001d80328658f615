//! The device's secrets in a real OS keystore: gnome-keyring's Secret Service on a private
//! D-Bus session (`dbus-run-session`), with its own home folder, so that nothing touches the
//! keystore of whoever runs the tests. Ignored by default: it needs `dbus-run-session` and
//! `gnome-keyring-daemon` (scripts/setup-app.sh installs them; scripts/test.sh runs it).

use std::path::Path;
use std::process::{Command, Output};

const CLI: &str = env!("CARGO_BIN_EXE_device_cli");
const COMPANY: &str = "杭州东兴精密机械有限公司";

/// Run `commands` (sh) in a fresh D-Bus session whose login keyring, kept under `home`, is
/// unlocked with a password first, as a desktop login does.
fn in_session(home: &Path, data: &Path, commands: &str) -> Output {
    let script = format!(
        "echo -n 'login password' | gnome-keyring-daemon --unlock --components=secrets \
         --daemonize >/dev/null || exit 90\n{commands}"
    );
    // The session's output goes to files, not pipes: a keyring daemon that outlives the
    // session (D-Bus activates one, which may linger) would hold a pipe open, and reading it
    // to its end would wait for that daemon forever.
    let out = tempfile::NamedTempFile::new().expect("a file for stdout");
    let err = tempfile::NamedTempFile::new().expect("a file for stderr");
    let status = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &script])
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("FIELDBOOK_KEY_FILE")
        .env("CLI", CLI)
        .env("DATA", data)
        .env("FIELDBOOK_TODAY", "2026-11-23")
        .stdin(std::process::Stdio::null())
        .stdout(out.reopen().expect("stdout"))
        .stderr(err.reopen().expect("stderr"))
        .status()
        .expect("dbus-run-session (apt-get install dbus gnome-keyring)");
    Output {
        status,
        stdout: std::fs::read(out.path()).expect("the session's stdout"),
        stderr: std::fs::read(err.path()).expect("the session's stderr"),
    }
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn any_file_holds(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

#[test]
#[ignore = "needs dbus-run-session and gnome-keyring (scripts/test.sh runs it)"]
fn the_store_key_lives_in_the_secret_service_and_nowhere_on_disk_beside_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&home).unwrap();

    // First start: a key is made and kept in the keystore; the status says where.
    let first = stdout(&in_session(
        &home,
        &data,
        &format!(
            "\"$CLI\" --data-dir \"$DATA\" new --name '{COMPANY}' >/dev/null && \
             \"$CLI\" --data-dir \"$DATA\" status && \
             secret-tool lookup service fieldbook username \"store-key@$DATA\""
        ),
    ));
    assert!(first.contains("kept in the OS keystore"), "{first}");
    let key = first.lines().last().unwrap().trim().to_string();
    assert_eq!(key.len(), 64, "the key as the keystore holds it: {first}");
    assert!(!any_file_holds(&data, COMPANY.as_bytes()));
    assert!(!any_file_holds(&data, key.as_bytes()));
    assert!(!any_file_holds(&data, b"SQLite format 3"));

    // The next login: the same keyring, the same key, the dossier reads back.
    let listed = stdout(&in_session(
        &home,
        &data,
        "\"$CLI\" --data-dir \"$DATA\" list",
    ));
    assert!(listed.contains(COMPANY), "{listed}");

    // Another account's keyring has no key for this store: a clear error, the file intact.
    let store = data.join("fieldbook.sqlite");
    let before = std::fs::read(&store).unwrap();
    let stranger = dir.path().join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    let refused = in_session(&stranger, &data, "\"$CLI\" --data-dir \"$DATA\" list");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("holds no key for it"), "{err}");
    assert_eq!(std::fs::read(&store).unwrap(), before);

    // No keystore reachable at all (no session bus): told to use a key file, never a plain
    // store.
    let headless = Command::new(CLI)
        .arg("--data-dir")
        .arg(dir.path().join("headless"))
        .arg("list")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env_remove("FIELDBOOK_KEY_FILE")
        .output()
        .unwrap();
    assert!(!headless.status.success());
    let err = String::from_utf8_lossy(&headless.stderr);
    assert!(
        err.contains("no OS keystore is reachable") && err.contains("--key-file"),
        "{err}"
    );
    assert!(
        !dir.path()
            .join("headless")
            .join("fieldbook.sqlite")
            .exists()
    );
}
