//! The relay's PostgreSQL store on a real PostgreSQL server that the tests start themselves:
//! the conformance suite every store passes, and what only a database across a network asks
//! for (a restart under the relay, two writers on one team). `cargo test postgres` runs them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fieldbook_relay::store::postgres::PostgresRelayStore;
use fieldbook_relay::store::{Chunk, DocWrite, RelayStore, StoreError, TeamVisibility};
use fieldbook_shared::sync::wire::Visibility;
use fieldbook_tests::postgres::{Postgres, shared};

fn fresh_store() -> (PostgresRelayStore, Arc<Postgres>) {
    let server = shared().expect("a throwaway PostgreSQL");
    let url = server.create_database().expect("a database");
    (PostgresRelayStore::open(&url).expect("the store"), server)
}

mod postgres {
    fieldbook_relay::relay_store_conformance!(super::fresh_store);
}

fn new_dossier(doc: &str) -> DocWrite {
    DocWrite {
        doc: doc.into(),
        chunk: Chunk::Snapshot(doc.as_bytes().to_vec()),
        heads: vec![[7; 32]],
        projection: "{}".into(),
        board: "{}".into(),
        checked: true,
        readers: Vec::new(),
    }
}

/// Dossiers stored before readers were kept get their projection's owner as their readers
/// (trimmed; none when it has none, or it is no name) and their last write as their first.
#[test]
fn postgres_stored_dossiers_get_their_owner_as_readers() {
    let server = shared().unwrap();
    let url = server.create_database().unwrap();
    drop(PostgresRelayStore::open(&url).unwrap());
    // Back to the schema before: the visibility migration undone, and dossiers stored.
    let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    admin
        .batch_execute(
            r#"
            DELETE FROM fieldbook_migration WHERE version = 1;
            ALTER TABLE doc DROP COLUMN readers, DROP COLUMN created_seq;
            ALTER TABLE team DROP COLUMN visibility, DROP COLUMN visibility_set_at;
            DROP TABLE withdrawal;
            INSERT INTO team (name, created_ms, seq) VALUES ('north', 1, 9);
            INSERT INTO doc (team_id, doc_id, seq, heads, projection)
                SELECT id, v.doc, v.seq, '', v.projection FROM team, (VALUES
                    ('a', 3, '{"summary":{"owner":" li "}}'),
                    ('b', 5, '{"summary":{"owner":""}}'),
                    ('c', 6, '{"summary":{}}'),
                    ('e', 8, '{"summary":{"owner":"li\nwang"}}'),
                    ('f', 9, '{"summary":{"owner":7}}')
                ) AS v (doc, seq, projection);
            "#,
        )
        .unwrap();
    drop(admin);
    let mut store = PostgresRelayStore::open(&url).unwrap();
    let team = store.team_id("north").unwrap().unwrap();
    let mut readers = store.all_readers(team).unwrap();
    readers.sort_by(|a, b| a.doc.cmp(&b.doc));
    let got: Vec<(&str, Vec<String>, u64)> = readers
        .iter()
        .map(|r| (r.doc.as_str(), r.readers.clone(), r.created_seq))
        .collect();
    assert_eq!(
        got,
        [
            ("a", vec!["li".to_string()], 3),
            ("b", vec![], 5),
            ("c", vec![], 6),
            ("e", vec![], 8),
            ("f", vec![], 9),
        ]
    );
    assert_eq!(
        store.visibility(team).unwrap(),
        TeamVisibility {
            policy: Visibility::Team,
            set_at: 0
        }
    );
    let reassigned = DocWrite {
        readers: vec!["wang".into()],
        ..new_dossier("a")
    };
    assert_eq!(store.write_docs(team, &[reassigned]).unwrap(), 10);
    assert_eq!(store.withdrawals_since(team, "li", 9).unwrap(), ["a"]);
}

#[test]
fn postgres_schema_is_migrated_once_by_instances_starting_together() {
    let server = shared().unwrap();
    let url = server.create_database().unwrap();
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PostgresRelayStore::open(&url).map(|_| ()))
        })
        .collect();
    for o in opened {
        o.join().unwrap().expect("every instance opens the store");
    }
    let mut store = PostgresRelayStore::open(&url).unwrap();
    store.create_team("north", 1).unwrap();
    assert!(matches!(
        store.create_team("north", 2),
        Err(StoreError::TeamExists(_))
    ));
}

#[test]
fn postgres_restarted_under_the_store_is_a_clear_error_then_picked_up_again() {
    // A server of its own: stopping the shared one would fail the other tests.
    let server = Postgres::start().unwrap();
    let url = server.create_database().unwrap();
    let mut store = PostgresRelayStore::open(&url).unwrap();
    let north = store.create_team("north", 1).unwrap();
    store.write_docs(north, &[new_dossier("a")]).unwrap();

    server.stop().unwrap();
    let started = Instant::now();
    let err = store
        .write_docs(north, &[new_dossier("b")])
        .expect_err("nothing to write to");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "an error, not a hang"
    );
    let message = err.to_string();
    assert!(message.contains("PostgreSQL"), "{message}");
    // Still down: every call says so, quickly.
    assert!(store.team_id("north").is_err());

    server.start_server().unwrap();
    // The next call opens a new connection: what was committed is there, what failed is not.
    let (seq, ids) = store.changed_since(north, 0).unwrap();
    assert_eq!((seq, ids), (1, vec!["a".to_string()]));
    assert_eq!(store.write_docs(north, &[new_dossier("b")]).unwrap(), 2);
}

#[test]
fn postgres_unreachable_is_refused_in_seconds() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let err = match PostgresRelayStore::open(&format!("postgres://fb@127.0.0.1:{port}/none")) {
        Ok(_) => panic!("nothing listens there"),
        Err(e) => e.to_string(),
    };
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.contains("PostgreSQL cannot be reached"), "{err}");
    let bad = match PostgresRelayStore::open("postgres://fb@127.0.0.1:notaport/x") {
        Ok(_) => panic!("not a URL"),
        Err(e) => e,
    };
    assert!(matches!(bad, StoreError::BadUrl(_)), "{bad}");
}

/// Two writers on one team, as two relay instances on one database would be, and a reader
/// following the team's sequence as a device catching up does: it never sees a sequence
/// number before every lower one is visible, so it misses nothing.
#[test]
fn postgres_team_sequence_is_never_seen_out_of_order() {
    let server = shared().unwrap();
    let url = server.create_database().unwrap();
    let mut setup = PostgresRelayStore::open(&url).unwrap();
    let team = setup.create_team("north", 1).unwrap();
    const BATCHES: usize = 40;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut store = PostgresRelayStore::open(&url).unwrap();
                for b in 0..BATCHES {
                    let batch: Vec<_> = (0..3)
                        .map(|i| new_dossier(&format!("w{w}-{b}-{i}")))
                        .collect();
                    store.write_docs(team, &batch).unwrap();
                }
            })
        })
        .collect();
    let reader = PostgresRelayStore::open(&url).unwrap();
    let mut seen = BTreeSet::new();
    let mut since = 0;
    let total = 2 * BATCHES * 3;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < total && Instant::now() < deadline {
        let (seq, ids) = reader.changed_since(team, since).unwrap();
        assert!(seq >= since, "the sequence went back from {since} to {seq}");
        seen.extend(ids);
        since = seq;
    }
    for w in writers {
        w.join().unwrap();
    }
    // Anything the reader skipped past would be missing now.
    let (seq, _) = reader.changed_since(team, since).unwrap();
    assert_eq!(seq, total as u64);
    assert_eq!(seen.len(), total, "the reader missed dossiers");
}
