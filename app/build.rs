// The Tauri window is an optional feature: only then does the build read tauri.conf.json and
// generate the app's command permissions.
fn main() {
    #[cfg(feature = "desktop")]
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "start",
            "status",
            "save_settings",
            "enroll",
            "list_dossiers",
            "open_dossier",
            "create_dossier",
            "set_fields",
            "add_item",
            "delete_item",
            "record_meeting",
            "resolve",
            "history",
            "dashboard",
            "add_note",
        ]),
    ))
    .expect("tauri build step");
}
