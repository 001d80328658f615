//! The `fieldbook` binary as a script would drive it.

use std::path::Path;
use std::process::{Command, Output};

fn fieldbook(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fieldbook"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("FIELDBOOK_TODAY", "2026-11-23")
        .env(
            "FIELDBOOK_KEY_FILE",
            fieldbook_app::secrets::key_file_beside(dir),
        )
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = fieldbook(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut with = vec!["--json"];
    with.extend_from_slice(args);
    serde_json::from_str(&ok(dir, &with)).unwrap()
}

#[test]
fn a_script_records_and_reads_back_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let id = json(
        dir.path(),
        &["new", "--name", "Acme", "--set", "profile.region=杭州"],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let person = ok(
        dir.path(),
        &[
            "add",
            &id,
            "people",
            "name=Ann",
            "roles=decider,buyer",
            "coach=true",
        ],
    );
    ok(
        dir.path(),
        &[
            "meeting",
            &id,
            "--with",
            &person,
            "--notes",
            "培训需求",
            "--next-step",
            "call",
            "--due",
            "2026-11-20",
        ],
    );
    let rows = json(dir.path(), &["list", "--overdue"]);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["name"], "Acme");
    let todo = json(dir.path(), &["todo", "--overdue"]);
    assert_eq!(todo[0]["action"], "call");
    assert_eq!(todo[0]["dossier_name"], "Acme");
    let hits = json(dir.path(), &["search", "培训"]);
    assert_eq!(hits[0]["id"], id.as_str());
    let view = json(dir.path(), &["show", &id]);
    assert_eq!(
        view["dossier"]["people"][&person]["roles"],
        serde_json::json!(["buyer", "decider"])
    );
    let fields = json(dir.path(), &["fields", "deals.*.checklist"]);
    assert!(fields.get("question").is_some());
}

#[test]
fn bad_input_exits_non_zero_with_a_message_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let id = ok(dir.path(), &["new", "--name", "Acme"]);
    let before = ok(dir.path(), &["--json", "show", &id]);
    for args in [
        vec!["set", id.as_str(), "profile.headcount=lots"],
        vec!["add", id.as_str(), "follow_ups", "due=2026-02-30"],
        vec!["show", "no-such-dossier"],
        vec!["list", "--stage", "winning"],
        vec!["set", id.as_str(), "noequals"],
    ] {
        let out = fieldbook(dir.path(), &args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "{args:?}: {err}");
    }
    assert_eq!(ok(dir.path(), &["--json", "show", &id]), before);
}

#[test]
fn a_damaged_store_file_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fieldbook.sqlite");
    std::fs::write(&file, b"this is not a database, it is a shopping list").unwrap();
    let out = fieldbook(dir.path(), &["list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("damaged or not a Fieldbook store"), "{err}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"this is not a database, it is a shopping list"
    );
}

#[test]
fn a_reader_that_goes_away_early_loses_nothing_and_is_no_error() {
    // `fieldbook new … | head -1` style: the pipe's reading end is closed before anything is
    // written. The dossier must still be saved, and the command must not panic.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fieldbook"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--json", "new", "--name", "Closed Pipe Ltd"])
        .env(
            "FIELDBOOK_KEY_FILE",
            fieldbook_app::secrets::key_file_beside(dir.path()),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(ok(dir.path(), &["list"]).contains("Closed Pipe Ltd"));
}
