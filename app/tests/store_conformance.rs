//! The store conformance suite, run against every backend.

mod sqlite_file {
    use fieldbook_app::store::sqlite::SqliteStore;

    fn make() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("store.sqlite")).unwrap();
        (store, dir)
    }

    fieldbook_app::store_conformance_suite!(make);
}

mod sqlite_memory {
    use fieldbook_app::store::sqlite::SqliteStore;

    fieldbook_app::store_conformance_suite!(|| (SqliteStore::in_memory().unwrap(), ()));
}
