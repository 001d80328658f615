//! What every [`RelayStore`] backend must do. Run with [`crate::relay_store_conformance!`].

use fieldbook_shared::sync::wire::{DeviceStatus, Role, Visibility};

use super::{
    Chunk, DocReaders, DocVersion, DocWrite, RelayStore, Rewrite, StoreError, TeamVisibility,
    Unchecked,
};

fn write(doc: &str, chunk: Chunk, head: u8) -> DocWrite {
    DocWrite {
        doc: doc.into(),
        chunk,
        heads: vec![[head; 32]],
        projection: format!("{{\"doc\":\"{doc}\",\"head\":{head}}}"),
        board: format!("{{\"board\":\"{doc}\",\"head\":{head}}}"),
        checked: true,
        readers: Vec::new(),
    }
}

/// A write of `doc` that `readers` may read.
fn read_by(doc: &str, chunk: Chunk, head: u8, readers: &[&str]) -> DocWrite {
    DocWrite {
        readers: readers.iter().map(|r| r.to_string()).collect(),
        ..write(doc, chunk, head)
    }
}

fn sorted(mut readers: Vec<DocReaders>) -> Vec<DocReaders> {
    readers.sort_by(|a, b| a.doc.cmp(&b.doc));
    readers
}

fn doc_readers(doc: &str, readers: &[&str], created_seq: u64) -> DocReaders {
    DocReaders {
        doc: doc.into(),
        readers: readers.iter().map(|r| r.to_string()).collect(),
        created_seq,
    }
}

/// A team's policy starts as Team; a change takes one sequence number, the same policy again
/// none.
pub fn visibility_is_a_sequenced_team_policy(store: &mut dyn RelayStore) {
    let north = store.create_team("north", 1).unwrap();
    let south = store.create_team("south", 1).unwrap();
    let team_at_0 = TeamVisibility {
        policy: Visibility::Team,
        set_at: 0,
    };
    assert_eq!(store.visibility(north).unwrap(), team_at_0);
    assert!(matches!(
        store.visibility(north + south + 100),
        Err(StoreError::NoTeam(_))
    ));
    assert!(matches!(
        store.set_visibility(north + south + 100, Visibility::Own),
        Err(StoreError::NoTeam(_))
    ));
    assert_eq!(
        store.set_visibility(north, Visibility::Team).unwrap(),
        team_at_0,
        "unchanged: nothing written"
    );
    assert_eq!(store.changed_since(north, u64::MAX).unwrap().0, 0);
    store
        .write_docs(north, &[write("a", Chunk::Snapshot(vec![1]), 1)])
        .unwrap();
    let own_at_2 = TeamVisibility {
        policy: Visibility::Own,
        set_at: 2,
    };
    assert_eq!(
        store.set_visibility(north, Visibility::Own).unwrap(),
        own_at_2
    );
    assert_eq!(
        store.changed_since(north, 0).unwrap(),
        (2, vec!["a".to_string()]),
        "one sequence number, no dossier"
    );
    assert_eq!(store.visibility(north).unwrap(), own_at_2);
    assert_eq!(
        store.set_visibility(north, Visibility::Own).unwrap(),
        own_at_2
    );
    assert_eq!(store.changed_since(north, u64::MAX).unwrap().0, 2);
    assert_eq!(store.visibility(south).unwrap(), team_at_0, "per team");
    // The next dossier takes the next number.
    assert_eq!(
        store
            .write_docs(north, &[write("b", Chunk::Snapshot(vec![2]), 2)])
            .unwrap(),
        3
    );
    assert_eq!(
        store.set_visibility(north, Visibility::Team).unwrap(),
        TeamVisibility {
            policy: Visibility::Team,
            set_at: 4
        }
    );
    assert_eq!(store.changed_since(north, 3).unwrap(), (4, vec![]));
}

/// Each dossier's readers are stored with it, with the sequence of its first write; whoever
/// a write drops from them is recorded as withdrawn at that write.
pub fn readers_and_withdrawals_are_kept(store: &mut dyn RelayStore) {
    let north = store.create_team("north", 1).unwrap();
    let south = store.create_team("south", 1).unwrap();
    store
        .write_docs(
            north,
            &[
                read_by("a", Chunk::Snapshot(vec![1]), 1, &["li"]),
                read_by("b", Chunk::Snapshot(vec![2]), 2, &["chen", "li", "zhao"]),
                write("c", Chunk::Snapshot(vec![3]), 3),
            ],
        )
        .unwrap();
    store
        .write_docs(south, &[read_by("a", Chunk::Snapshot(vec![9]), 9, &["li"])])
        .unwrap();
    assert_eq!(
        sorted(
            store
                .readers(north, &["c".into(), "zz".into(), "a".into()])
                .unwrap()
        ),
        [doc_readers("a", &["li"], 1), doc_readers("c", &[], 3)],
        "unknown ids are left out"
    );
    assert_eq!(store.readers(north, &[]).unwrap(), []);
    assert_eq!(store.withdrawals_since(north, "li", 0).unwrap(), [""; 0]);

    // a is reassigned from li to wang: li is withdrawn at that write; a keeps its first seq.
    let seq = store
        .write_docs(north, &[read_by("a", Chunk::Append(vec![4]), 4, &["wang"])])
        .unwrap();
    assert_eq!(seq, 4);
    assert_eq!(
        store.readers(north, &["a".into()]).unwrap(),
        [doc_readers("a", &["wang"], 1)]
    );
    assert_eq!(store.withdrawals_since(north, "li", 0).unwrap(), ["a"]);
    assert_eq!(store.withdrawals_since(north, "li", 3).unwrap(), ["a"]);
    assert_eq!(store.withdrawals_since(north, "li", 4).unwrap(), [""; 0]);
    assert_eq!(store.withdrawals_since(north, "wang", 0).unwrap(), [""; 0]);
    assert!(store.was_reader(north, "li", "a").unwrap());
    assert!(!store.was_reader(north, "wang", "a").unwrap());
    assert!(!store.was_reader(north, "li", "b").unwrap());
    assert!(!store.was_reader(south, "li", "a").unwrap(), "per team");
    assert_eq!(store.withdrawals_since(south, "li", 0).unwrap(), [""; 0]);

    // b is unshared from zhao: only zhao is withdrawn.
    store
        .write_docs(
            north,
            &[read_by("b", Chunk::Append(vec![5]), 5, &["chen", "li"])],
        )
        .unwrap();
    assert_eq!(store.withdrawals_since(north, "zhao", 4).unwrap(), ["b"]);
    assert_eq!(store.withdrawals_since(north, "chen", 0).unwrap(), [""; 0]);
    assert_eq!(store.withdrawals_since(north, "li", 4).unwrap(), [""; 0]);
    assert!(store.was_reader(north, "zhao", "b").unwrap());
    assert!(!store.was_reader(north, "chen", "b").unwrap());

    // Given back to li and taken again: li's dossiers withdrawn since, each once.
    store
        .write_docs(north, &[read_by("a", Chunk::Append(vec![6]), 6, &["li"])])
        .unwrap();
    store
        .write_docs(
            north,
            &[
                read_by("a", Chunk::Append(vec![7]), 7, &[]),
                read_by("b", Chunk::Append(vec![8]), 8, &["chen"]),
            ],
        )
        .unwrap();
    assert_eq!(store.withdrawals_since(north, "li", 0).unwrap(), ["a", "b"]);
    assert_eq!(store.withdrawals_since(north, "li", 7).unwrap(), ["b"]);
    assert_eq!(store.withdrawals_since(north, "li", 8).unwrap(), [""; 0]);

    assert_eq!(
        sorted(store.all_readers(north).unwrap()),
        [
            doc_readers("a", &[], 1),
            doc_readers("b", &["chen"], 2),
            doc_readers("c", &[], 3),
        ]
    );
    assert_eq!(
        store.all_readers(south).unwrap(),
        [doc_readers("a", &["li"], 1)]
    );
}

/// A large request for readers is answered whole.
pub fn readers_of_many_dossiers(store: &mut dyn RelayStore) {
    let north = store.create_team("north", 1).unwrap();
    let writes: Vec<DocWrite> = (0..1_200)
        .map(|n| read_by(&format!("d{n:05}"), Chunk::Snapshot(vec![1]), 1, &["li"]))
        .collect();
    store.write_docs(north, &writes).unwrap();
    let ids: Vec<String> = (0..12_000).map(|n| format!("d{n:05}")).collect();
    let readers = store.readers(north, &ids).unwrap();
    assert_eq!(readers.len(), 1_200);
    assert!(readers.iter().all(|r| r.readers == ["li"]));
    assert_eq!(store.all_readers(north).unwrap().len(), 1_200);
}

pub fn unchecked_projections_are_settled_in_place(store: &mut dyn RelayStore) {
    let north = store.create_team("north", 1).unwrap();
    let mut pushed = write("a", Chunk::Snapshot(b"A0".to_vec()), 1);
    pushed.checked = false;
    store
        .write_docs(
            north,
            &[
                pushed.clone(),
                write("b", Chunk::Snapshot(b"B0".to_vec()), 2),
            ],
        )
        .unwrap();
    let a = Unchecked {
        team: north,
        doc: "a".into(),
        seq: 1,
    };
    assert_eq!(store.unchecked(10).unwrap(), std::slice::from_ref(&a));
    assert_eq!(
        store.board_row(north, "a").unwrap().as_deref(),
        Some("{\"board\":\"a\",\"head\":1}")
    );
    assert_eq!(store.board_row(north, "zz").unwrap(), None);
    let snapshots = store.snapshots(north, &["a".into(), "b".into()]).unwrap();
    assert_eq!(
        snapshots.iter().map(|s| s.checked).collect::<Vec<_>>(),
        [false, true]
    );
    // Written again before the check finished: the check of the older write changes nothing.
    pushed.chunk = Chunk::Append(b"+1".to_vec());
    store.write_docs(north, &[pushed]).unwrap();
    let rewrite = Rewrite {
        snapshot: b"A-compacted".to_vec(),
        projection: "{\"checked\":true}".into(),
    };
    assert!(!store.settle(&a, Some(&rewrite)).unwrap());
    assert_eq!(store.load_doc(north, "a").unwrap().unwrap().bytes, b"A0+1");
    let a3 = Unchecked { seq: 3, ..a };
    assert_eq!(store.unchecked(10).unwrap(), std::slice::from_ref(&a3));
    // Settled: rewritten in place, with no new sequence number.
    assert!(store.settle(&a3, Some(&rewrite)).unwrap());
    let stored = store.load_doc(north, "a").unwrap().unwrap();
    assert_eq!(
        (stored.bytes.as_slice(), stored.chunks, stored.seq),
        (&b"A-compacted"[..], 1, 3)
    );
    assert_eq!(store.changed_since(north, 3).unwrap(), (3, vec![]));
    assert_eq!(
        store.snapshots(north, &["a".into()]).unwrap()[0].projection,
        "{\"checked\":true}"
    );
    assert_eq!(store.unchecked(10).unwrap(), []);
}

pub fn invites_enrol_once(store: &mut dyn RelayStore) {
    let team = store.create_team("north", 1).unwrap();
    assert!(matches!(
        store.create_team("north", 2),
        Err(StoreError::TeamExists(_))
    ));
    assert_eq!(store.team_id("north").unwrap(), Some(team));
    assert_eq!(store.team_id("south").unwrap(), None);
    store
        .create_invite(team, "li", Role::Rep, &[1; 32], 1_000)
        .unwrap();
    assert_eq!(
        store
            .redeem_invite(&[1; 32], "laptop", &[9; 32], 1_000)
            .unwrap(),
        None,
        "expired at its expiry time"
    );
    store
        .create_invite(team, "li", Role::Rep, &[2; 32], 10_000)
        .unwrap();
    assert_eq!(
        store
            .redeem_invite(&[3; 32], "laptop", &[9; 32], 5)
            .unwrap(),
        None,
        "unknown code"
    );
    let auth = store
        .redeem_invite(&[2; 32], "laptop", &[9; 32], 5)
        .unwrap()
        .expect("a fresh invite enrols");
    assert_eq!((auth.team.as_str(), auth.user.as_str()), ("north", "li"));
    assert_eq!(auth.role, Role::Rep);
    assert_eq!(
        store.redeem_invite(&[2; 32], "phone", &[8; 32], 6).unwrap(),
        None,
        "an invite is used once"
    );
    assert_eq!(store.device_by_token(&[9; 32]).unwrap(), Some(auth.clone()));
    assert_eq!(store.device_by_token(&[8; 32]).unwrap(), None);
}

pub fn revoked_devices_lose_access(store: &mut dyn RelayStore) {
    let team = store.create_team("north", 1).unwrap();
    store
        .create_invite(team, "wang", Role::Manager, &[1; 32], 100)
        .unwrap();
    let auth = store
        .redeem_invite(&[1; 32], "desk", &[7; 32], 2)
        .unwrap()
        .unwrap();
    assert_eq!(auth.role, Role::Manager);
    assert_eq!(store.revocations_after(0).unwrap(), vec![]);
    assert!(store.revoke_device(auth.device_id, 3).unwrap());
    assert!(
        !store.revoke_device(auth.device_id, 4).unwrap(),
        "only once"
    );
    assert!(!store.revoke_device(999, 4).unwrap());
    assert_eq!(store.device_by_token(&[7; 32]).unwrap(), None);
    // The revoked token is told apart from one never issued, with the team's policy.
    assert_eq!(store.revoked_token(&[7; 32]).unwrap(), Some(true));
    assert_eq!(store.revoked_token(&[6; 32]).unwrap(), None);
    store.set_wipe_on_revoke(team, false).unwrap();
    assert_eq!(store.revoked_token(&[7; 32]).unwrap(), Some(false));
    let revs = store.revocations_after(0).unwrap();
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[0].1, auth.device_id);
    assert_eq!(store.revocations_after(revs[0].0).unwrap(), vec![]);
    let devices = store.devices(Some(team)).unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].revoked_ms, Some(3));
}

pub fn status_reports_are_kept(store: &mut dyn RelayStore) {
    let team = store.create_team("north", 1).unwrap();
    store
        .create_invite(team, "li", Role::Rep, &[1; 32], 100)
        .unwrap();
    let auth = store
        .redeem_invite(&[1; 32], "phone", &[5; 32], 2)
        .unwrap()
        .unwrap();
    assert_eq!(store.devices(None).unwrap()[0].status, None);
    let status = DeviceStatus {
        unsynced: 4,
        last_sync_ms: Some(77),
    };
    // Connecting: what it holds, but no completed sync yet.
    store
        .report_status(auth.device_id, &status, false, 90)
        .unwrap();
    let row = &store.devices(None).unwrap()[0];
    assert_eq!(row.status, Some(status));
    assert_eq!((row.reported_ms, row.synced_ms), (Some(90), None));
    // A completed sync is recorded at the relay's time; a later connection keeps it.
    let done = DeviceStatus {
        unsynced: 0,
        last_sync_ms: Some(95),
    };
    store
        .report_status(auth.device_id, &done, true, 100)
        .unwrap();
    store
        .report_status(auth.device_id, &done, false, 120)
        .unwrap();
    let row = &store.devices(None).unwrap()[0];
    assert_eq!(row.status, Some(done));
    assert_eq!((row.reported_ms, row.synced_ms), (Some(120), Some(100)));
}

pub fn documents_are_scoped_and_sequenced(store: &mut dyn RelayStore) {
    let north = store.create_team("north", 1).unwrap();
    let south = store.create_team("south", 1).unwrap();
    assert_eq!(store.changed_since(north, 0).unwrap(), (0, vec![]));
    let seq = store
        .write_docs(
            north,
            &[
                write("a", Chunk::Snapshot(b"A0".to_vec()), 1),
                write("b", Chunk::Snapshot(b"B0".to_vec()), 2),
            ],
        )
        .unwrap();
    assert_eq!(seq, 2, "one sequence number per dossier written");
    let seq = store
        .write_docs(north, &[write("a", Chunk::Append(b"+1".to_vec()), 3)])
        .unwrap();
    assert_eq!(seq, 3);
    assert_eq!(
        store.changed_since(north, 0).unwrap(),
        (3, vec!["b".to_string(), "a".to_string()]),
        "each dossier once, by its latest write"
    );
    assert_eq!(
        store.changed_since(north, 2).unwrap(),
        (3, vec!["a".to_string()])
    );
    assert_eq!(store.changed_since(north, 3).unwrap(), (3, vec![]));

    let a = store.load_doc(north, "a").unwrap().unwrap();
    assert_eq!(a.bytes, b"A0+1");
    assert_eq!((a.chunks, a.seq), (2, 3));
    assert_eq!(
        store.doc_version(north, "a").unwrap(),
        Some(DocVersion {
            seq: 3,
            heads: vec![[3; 32]]
        })
    );
    assert_eq!(store.doc_version(north, "zz").unwrap(), None);

    // Another team sees none of it, and may use the same id for its own dossier.
    assert_eq!(store.load_doc(south, "a").unwrap(), None);
    assert_eq!(store.changed_since(south, 0).unwrap(), (0, vec![]));
    assert_eq!(store.snapshots(south, &["a".into()]).unwrap(), vec![]);
    store
        .write_docs(south, &[write("a", Chunk::Snapshot(b"S".to_vec()), 9)])
        .unwrap();
    assert_eq!(store.load_doc(north, "a").unwrap().unwrap().bytes, b"A0+1");
    assert_eq!(store.doc_count(north).unwrap(), 2);
    assert_eq!(store.doc_count(south).unwrap(), 1);

    let snaps = store
        .snapshots(north, &["a".into(), "nope".into(), "b".into()])
        .unwrap();
    assert_eq!(snaps.len(), 2, "unknown ids are left out");
    assert_eq!(snaps[0].doc, "a");
    assert_eq!(snaps[0].bytes, b"A0+1");
    assert_eq!(snaps[0].heads, vec![[3; 32]]);
    assert!(snaps[0].projection.contains("\"head\":3"));

    // A snapshot replaces the chunks.
    store
        .write_docs(north, &[write("a", Chunk::Snapshot(b"A1".to_vec()), 4)])
        .unwrap();
    let a = store.load_doc(north, "a").unwrap().unwrap();
    assert_eq!((a.bytes.as_slice(), a.chunks), (&b"A1"[..], 1));
}

/// A board catching up takes only what was written after it last looked, and only its team's.
pub fn board_rows_follow_the_sequence(store: &mut dyn RelayStore) {
    let north = store.create_team("north", 1).unwrap();
    let south = store.create_team("south", 1).unwrap();
    assert_eq!(store.teams().unwrap(), [north, south]);
    let (start, none) = store.board_rows_since(north, 0).unwrap();
    assert_eq!((start, none.len()), (0, 0));
    store
        .write_docs(
            north,
            &[
                write("a", Chunk::Snapshot(vec![1]), 1),
                write("b", Chunk::Snapshot(vec![2]), 2),
            ],
        )
        .unwrap();
    store
        .write_docs(south, &[write("s", Chunk::Snapshot(vec![3]), 3)])
        .unwrap();
    let (seq, rows) = store.board_rows_since(north, 0).unwrap();
    let ids: Vec<&str> = rows.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        ids,
        ["a", "b"],
        "only the team's own dossiers, in write order"
    );
    assert_eq!(
        rows[0].1,
        write("a", Chunk::Snapshot(vec![]), 1).board,
        "the board row"
    );
    store
        .write_docs(north, &[write("a", Chunk::Append(vec![4]), 4)])
        .unwrap();
    let (later, rows) = store.board_rows_since(north, seq).unwrap();
    assert!(later > seq);
    assert_eq!(rows.len(), 1, "only a changed");
    assert!(rows[0].1.contains("\"head\":4"), "its latest projection");
}

pub fn web_sessions_are_per_team_and_expire(store: &mut dyn RelayStore) {
    let north = store.create_team("north", 1).unwrap();
    let south = store.create_team("south", 1).unwrap();
    store
        .create_invite(north, "wang", Role::Manager, &[1; 32], 10)
        .unwrap();
    assert!(
        !store.set_password(south, "wang", "h").unwrap(),
        "no such user in south"
    );
    assert_eq!(store.role_of(north, "wang").unwrap(), Some(Role::Manager));
    assert_eq!(store.role_of(south, "wang").unwrap(), None);
    store
        .create_invite(north, "li", Role::Rep, &[2; 32], 10)
        .unwrap();
    assert_eq!(store.role_of(north, "li").unwrap(), Some(Role::Rep));
    assert_eq!(
        store.password_of(north, "wang").unwrap(),
        None,
        "no password yet"
    );
    assert!(store.set_password(north, "wang", "$argon2id$x").unwrap());
    assert_eq!(
        store.password_of(north, "wang").unwrap(),
        Some((Role::Manager, "$argon2id$x".to_string()))
    );
    store
        .create_session(&[7; 32], north, "wang", 1_000)
        .unwrap();
    let auth = store
        .session(&[7; 32], 999)
        .unwrap()
        .expect("a live session");
    assert_eq!(
        (auth.team_id, auth.user.as_str(), auth.role),
        (north, "wang", Role::Manager)
    );
    assert_eq!(
        store.session(&[7; 32], 1_000).unwrap(),
        None,
        "expired at its expiry"
    );
    assert_eq!(store.session(&[8; 32], 1).unwrap(), None, "unknown token");
    store.set_session_language(&[7; 32], "en").unwrap();
    assert_eq!(
        store
            .session(&[7; 32], 1)
            .unwrap()
            .unwrap()
            .language
            .as_deref(),
        Some("en")
    );
    store.end_session(&[7; 32]).unwrap();
    assert_eq!(store.session(&[7; 32], 1).unwrap(), None, "logged out");
    store
        .create_session(&[9; 32], north, "wang", 1_000)
        .unwrap();
    store.set_password(north, "wang", "$argon2id$y").unwrap();
    assert_eq!(
        store.session(&[9; 32], 1).unwrap(),
        None,
        "a new password ends sessions"
    );
}

#[macro_export]
macro_rules! relay_store_conformance {
    ($make:expr) => {
        $crate::relay_store_conformance!(@tests $make;
            invites_enrol_once,
            revoked_devices_lose_access,
            status_reports_are_kept,
            documents_are_scoped_and_sequenced,
            board_rows_follow_the_sequence,
            web_sessions_are_per_team_and_expire,
            unchecked_projections_are_settled_in_place,
            visibility_is_a_sequenced_team_policy,
            readers_and_withdrawals_are_kept,
            readers_of_many_dossiers
        );
    };
    (@tests $make:expr; $($name:ident),+) => {
        $(
            #[test]
            fn $name() {
                let (mut store, _guard) = ($make)();
                $crate::store::conformance::$name(&mut store);
            }
        )+
    };
}
