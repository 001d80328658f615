//! The window's commands are named in four places that the compiler cannot tie together: the
//! shared API (`CALL_NAMES`), the Tauri command list (`src/desktop.rs`), the permissions the
//! build generates (`build.rs`) and the capability that grants them to the window. A call
//! missing from any of them fails at run time in the window only; this catches it here.

use fieldbook_shared::api::CALL_NAMES;

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The quoted words in `text` between `start` and the next `end`.
fn quoted_between(text: &str, start: &str, end: &str) -> Vec<String> {
    let from = text.find(start).expect(start) + start.len();
    let block = &text[from..from + text[from..].find(end).expect(end)];
    block
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn every_call_is_a_command_with_a_permission_granted_to_the_window() {
    let mut calls: Vec<String> = CALL_NAMES.iter().map(|s| s.to_string()).collect();
    calls.sort();

    let mut built = quoted_between(&read("build.rs"), ".commands(&[", "]");
    built.sort();
    assert_eq!(built, calls, "build.rs AppManifest commands");

    let capability: serde_json::Value =
        serde_json::from_str(&read("capabilities/default.json")).unwrap();
    let mut granted: Vec<String> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    granted.sort();
    let mut wanted: Vec<String> = calls
        .iter()
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .collect();
    wanted.sort();
    assert_eq!(
        granted, wanted,
        "capabilities/default.json grants exactly the app's own commands"
    );

    let desktop = read("src/desktop.rs");
    let from = desktop.find("commands! {").unwrap();
    let block = &desktop[from..from + desktop[from..].find('}').unwrap()];
    let mut registered: Vec<String> = block
        .lines()
        .filter_map(|l| l.trim().split_once(": api::").map(|(n, _)| n.to_string()))
        .collect();
    registered.sort();
    assert_eq!(registered, calls, "src/desktop.rs commands!");
    let from = desktop.find("generate_handler![").unwrap() + "generate_handler![".len();
    let mut handled: Vec<String> = desktop[from..from + desktop[from..].find(']').unwrap()]
        .split(',')
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty())
        .collect();
    handled.sort();
    assert_eq!(handled, calls, "src/desktop.rs invoke handler");
}
