//! Every relay store backend passes the same suite.

mod sqlite_file {
    use fieldbook_relay::store::sqlite::SqliteRelayStore;

    fieldbook_relay::relay_store_conformance!(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteRelayStore::open(&dir.path().join("relay.sqlite")).unwrap();
        (store, dir)
    });
}

mod sqlite_memory {
    use fieldbook_relay::store::sqlite::SqliteRelayStore;

    fieldbook_relay::relay_store_conformance!(|| (SqliteRelayStore::in_memory().unwrap(), ()));
}
