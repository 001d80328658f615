//! The behaviour every [`DossierStore`] backend must show. A backend runs the whole suite with
//! [`crate::store_conformance_suite!`]; each check panics with a message saying what broke.

use fieldbook_shared::summary::{DealSummary, DossierSummary, FollowUpSummary};
use fieldbook_shared::{Day, FunnelBand, Stage};

use fieldbook_shared::board::{BoardFacts, BoardRow, TeamBoard};

use super::{
    BoardEntry, Chunk, DossierStore, DossierWrite, FollowUpQuery, ListQuery, Origin, TextWrite,
};

fn day(s: &str) -> Day {
    s.parse().expect("test dates are valid")
}

/// The ids a search for `q` finds, sorted.
fn found(store: &dyn DossierStore, q: &str) -> Vec<String> {
    let mut ids: Vec<String> = store
        .search(q, 20)
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    ids.sort();
    ids
}

/// A write for a made-up dossier; the bytes are opaque to the store.
pub fn sample(id: &str, name: &str, text: &str) -> DossierWrite {
    DossierWrite {
        chunk: Chunk::Snapshot(format!("snapshot of {id}").into_bytes()),
        heads: vec![[id.len() as u8; 32]],
        summary: DossierSummary {
            id: id.into(),
            name: name.into(),
            industry: String::new(),
            region: String::new(),
            owner: "li".into(),
            shared_with: Vec::new(),
            target_type: None,
            lead_stage: None,
            lead_band: None,
            open_deals: 0,
            open_value: 0,
            weighted_value: 0,
            next_follow_up: None,
            open_follow_ups: 0,
            last_contact: None,
            people: 0,
            interactions: 0,
            open_complaints: 0,
            escalated_complaints: 0,
            conflicts: 0,
            archived: false,
            client_number: String::new(),
        },
        deals: Vec::new(),
        follow_ups: Vec::new(),
        search_text: text.into(),
        board: Some(BoardFacts::default()),
        origin: Origin::Local,
        text: TextWrite::Now,
    }
}

pub fn bytes_round_trip_in_order(store: &mut dyn DossierStore) {
    assert!(
        store.load("a").unwrap().is_none(),
        "unknown id loads as None"
    );
    store.write(&[sample("a", "Acme", "")]).unwrap();
    let mut append = sample("a", "Acme", "");
    append.chunk = Chunk::Append(b"+1".to_vec());
    store.write(&[append.clone()]).unwrap();
    append.chunk = Chunk::Append(b"+2".to_vec());
    store.write(&[append]).unwrap();
    let saved = store.load("a").unwrap().expect("written dossier loads");
    assert_eq!(
        saved.bytes, b"snapshot of a+1+2",
        "chunks concatenate in write order"
    );
    assert_eq!(saved.chunks, 3);
    store.write(&[sample("a", "Acme", "")]).unwrap();
    let saved = store.load("a").unwrap().unwrap();
    assert_eq!(
        saved.bytes, b"snapshot of a",
        "a snapshot replaces earlier chunks"
    );
    assert_eq!(saved.chunks, 1);
}

pub fn heads_follow_writes(store: &mut dyn DossierStore) {
    assert_eq!(store.heads("a").unwrap(), None, "unknown id has no heads");
    let mut w = sample("a", "Acme", "");
    w.heads = vec![[1; 32], [2; 32]];
    store.write(&[w.clone()]).unwrap();
    assert_eq!(store.heads("a").unwrap(), Some(vec![[1; 32], [2; 32]]));
    w.chunk = Chunk::Append(b"+1".to_vec());
    w.heads = vec![[3; 32]];
    store.write(&[w]).unwrap();
    assert_eq!(
        store.heads("a").unwrap(),
        Some(vec![[3; 32]]),
        "the heads of the latest write"
    );
}

pub fn summary_replaced_on_each_write(store: &mut dyn DossierStore) {
    store.write(&[sample("a", "Old name", "")]).unwrap();
    store.write(&[sample("a", "New name", "")]).unwrap();
    assert_eq!(store.summary("a").unwrap().unwrap().name, "New name");
    assert_eq!(store.ids().unwrap(), vec!["a".to_string()]);
    assert_eq!(store.count(&ListQuery::default()).unwrap(), 1);
}

pub fn list_puts_what_needs_doing_first(store: &mut dyn DossierStore) {
    let mut later = sample("later", "Beta", "");
    later.summary.next_follow_up = Some(day("2026-12-01"));
    let mut soon = sample("soon", "Gamma", "");
    soon.summary.next_follow_up = Some(day("2026-11-01"));
    let none = sample("none", "Alpha", "");
    store.write(&[later, soon, none]).unwrap();
    let order: Vec<String> = store
        .list(&ListQuery::default())
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(order, ["soon", "later", "none"]);
    let page = store
        .list(&ListQuery {
            limit: Some(1),
            offset: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        page[0].id, "later",
        "limit/offset page through the same order"
    );
}

pub fn filters(store: &mut dyn DossierStore) {
    let mut overdue = sample("overdue", "A", "");
    overdue.summary.next_follow_up = Some(day("2026-11-20"));
    overdue.summary.last_contact = Some(day("2026-11-19"));
    overdue.summary.owner = "wang".into();
    overdue.deals = vec![DealSummary {
        dossier_id: "overdue".into(),
        deal_id: "d1".into(),
        title: "t".into(),
        stage: Stage::Negotiation,
        probability: 80,
        band: FunnelBand::Bottom,
        value: 10,
        expected_close: None,
    }];
    let mut stale = sample("stale", "B", "");
    stale.summary.last_contact = Some(day("2026-01-01"));
    let mut archived = sample("archived", "C", "");
    archived.summary.archived = true;
    store.write(&[overdue, stale, archived]).unwrap();
    let ids = |q: ListQuery| -> Vec<String> {
        store.list(&q).unwrap().into_iter().map(|s| s.id).collect()
    };
    let today = day("2026-11-23");
    assert_eq!(
        ids(ListQuery {
            overdue_on: Some(today),
            ..Default::default()
        }),
        ["overdue"]
    );
    assert_eq!(
        ids(ListQuery {
            not_contacted_since: Some(today.plus_days(-30)),
            ..Default::default()
        }),
        ["stale"]
    );
    assert_eq!(
        ids(ListQuery {
            owner: Some("wang".into()),
            ..Default::default()
        }),
        ["overdue"]
    );
    assert_eq!(
        ids(ListQuery {
            stage: Some(Stage::Negotiation),
            ..Default::default()
        }),
        ["overdue"]
    );
    assert_eq!(
        ids(ListQuery {
            band: Some(FunnelBand::Bottom),
            ..Default::default()
        }),
        ["overdue"]
    );
    assert!(
        ids(ListQuery {
            band: Some(FunnelBand::Top),
            ..Default::default()
        })
        .is_empty()
    );
    assert_eq!(
        ids(ListQuery::default()).len(),
        2,
        "archived dossiers are hidden by default"
    );
    assert_eq!(
        ids(ListQuery {
            include_archived: true,
            ..Default::default()
        })
        .len(),
        3
    );
    assert_eq!(store.deals("overdue").unwrap()[0].stage, Stage::Negotiation);
}

pub fn search_finds_chinese_and_english(store: &mut dyn DossierStore) {
    store
        .write(&[
            sample("zh", "华东机械", "客户希望下个季度安排销售培训课程"),
            sample(
                "en",
                "Acme",
                "They need leadership training for 40 managers; HR总监 agrees",
            ),
            sample("other", "Other", "nothing relevant here"),
        ])
        .unwrap();
    let hits = |q: &str| found(store, q);
    assert_eq!(hits("培训"), ["zh"], "two-character Chinese word");
    assert_eq!(hits("培训课程"), ["zh"], "longer Chinese phrase");
    assert_eq!(hits("季"), ["zh"], "single character");
    assert_eq!(hits("TRAINING"), ["en"], "case-insensitive English");
    assert_eq!(
        hits("hr"),
        ["en"],
        "two letters: a word that starts with them"
    );
    assert_eq!(
        hits("总监"),
        ["en"],
        "a Chinese pair right after Latin letters"
    );
    assert_eq!(hits("leader manag"), ["en"], "every term must match");
    assert!(hits("leader 培训").is_empty());
    assert!(
        hits("\"; DROP TABLE dossier; --").is_empty(),
        "query syntax is quoted"
    );
    let hit = &store.search("培训", 20).unwrap()[0];
    assert!(
        hit.snippet.contains("[培训]"),
        "snippet marks the match: {}",
        hit.snippet
    );
    // Rewriting a dossier replaces its text in the index.
    store
        .write(&[sample("zh", "华东机械", "只谈价格")])
        .unwrap();
    assert!(found(store, "培训").is_empty());
    assert_eq!(found(store, "价格"), ["zh"]);
    let listed = store
        .list(&ListQuery {
            text: Some("leadership".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(listed.len(), 1);
}

pub fn batch_is_atomic(store: &mut dyn DossierStore) {
    store.write(&[sample("a", "A", "")]).unwrap();
    let mut bad = sample("b", "B", "");
    // A deal row that collides with another in the same batch breaks the primary key.
    let deal = DealSummary {
        dossier_id: "b".into(),
        deal_id: "same".into(),
        title: String::new(),
        stage: Stage::Awareness,
        probability: 10,
        band: FunnelBand::Top,
        value: 0,
        expected_close: None,
    };
    bad.deals = vec![deal.clone(), deal];
    let c = sample("c", "C", "");
    assert!(store.write(&[c, bad]).is_err());
    assert_eq!(
        store.ids().unwrap(),
        vec!["a".to_string()],
        "a failed batch writes nothing"
    );
}

pub fn follow_ups_across_dossiers(store: &mut dyn DossierStore) {
    let follow_up =
        |dossier: &str, id: &str, due: Option<&str>, who: &str, done: bool| FollowUpSummary {
            dossier_id: dossier.into(),
            dossier_name: dossier.to_uppercase(),
            follow_up_id: id.into(),
            due: due.map(day),
            kind: None,
            action: format!("do {id}"),
            assignee: None,
            assignee_name: who.into(),
            done_on: done.then(|| day("2026-11-01")),
        };
    let mut a = sample("a", "A", "");
    a.follow_ups = vec![
        follow_up("a", "late", Some("2026-11-10"), "li", false),
        follow_up("a", "done", Some("2026-11-01"), "li", true),
        follow_up("a", "undated", None, "li", false),
    ];
    let mut b = sample("b", "B", "");
    b.summary.owner = "wang".into();
    b.follow_ups = vec![follow_up("b", "soon", Some("2026-11-30"), "wang", false)];
    let mut gone = sample("gone", "Gone", "");
    gone.summary.archived = true;
    gone.follow_ups = vec![follow_up("gone", "x", Some("2026-11-01"), "li", false)];
    store.write(&[a, b, gone]).unwrap();
    fn listed(store: &dyn DossierStore, q: FollowUpQuery) -> Vec<String> {
        store
            .follow_ups(&q)
            .unwrap()
            .into_iter()
            .map(|f| f.follow_up_id)
            .collect()
    }
    let ids = |q: FollowUpQuery| listed(store, q);
    assert_eq!(
        ids(FollowUpQuery::default()),
        ["late", "soon", "undated"],
        "open, earliest first"
    );
    assert_eq!(
        ids(FollowUpQuery {
            due_before: Some(day("2026-11-23")),
            ..Default::default()
        }),
        ["late"]
    );
    assert_eq!(
        ids(FollowUpQuery {
            assignee_name: Some("wang".into()),
            ..Default::default()
        }),
        ["soon"]
    );
    assert_eq!(
        ids(FollowUpQuery {
            owner: Some("li".into()),
            ..Default::default()
        }),
        ["late", "undated"]
    );
    // Rewriting a dossier replaces its follow-ups.
    store.write(&[sample("a", "A", "")]).unwrap();
    assert_eq!(listed(store, FollowUpQuery::default()), ["soon"]);
}

pub fn settings(store: &mut dyn DossierStore) {
    assert_eq!(store.get_setting("actor").unwrap(), None);
    store.set_setting("actor", "one").unwrap();
    store.set_setting("actor", "two").unwrap();
    assert_eq!(store.get_setting("actor").unwrap().as_deref(), Some("two"));
}

pub fn wipe_leaves_nothing(store: &mut dyn DossierStore) {
    store.write(&[sample("a", "Acme", "secret plans")]).unwrap();
    store.set_setting("relay.url", "https://relay").unwrap();
    store.wipe().unwrap();
    assert_eq!(store.ids().unwrap(), Vec::<String>::new());
    assert!(
        store.load("a").unwrap().is_none(),
        "no document after a wipe"
    );
    assert_eq!(store.get_setting("relay.url").unwrap(), None);
    assert_eq!(store.unsynced_changes().unwrap(), 0);
    // Still usable, empty.
    store.write(&[sample("b", "Beta", "")]).unwrap();
    assert_eq!(store.ids().unwrap(), ["b"]);
}

pub fn sync_bookkeeping(store: &mut dyn DossierStore) {
    assert_eq!(store.unsynced().unwrap(), Vec::<String>::new());
    store.write(&[sample("a", "Acme", "")]).unwrap();
    let mut edit = sample("a", "Acme", "");
    edit.chunk = Chunk::Append(b"+1".to_vec());
    store
        .write(&[edit.clone(), sample("b", "Beta", "")])
        .unwrap();
    let mut unsynced = store.unsynced().unwrap();
    unsynced.sort();
    assert_eq!(unsynced, ["a", "b"], "local writes wait for the relay");
    assert_eq!(
        store.unsynced_changes().unwrap(),
        3,
        "each local write counts"
    );
    assert_eq!(store.sync_state("a").unwrap(), None);

    let v1 = store.version("a").unwrap().expect("a has a version");
    store
        .finish_sync(&[("a".into(), b"state-1".to_vec(), false)])
        .unwrap();
    assert_eq!(
        store.sync_state("a").unwrap().as_deref(),
        Some(&b"state-1"[..])
    );
    assert_eq!(
        store.unsynced_changes().unwrap(),
        3,
        "not acked: still counted"
    );
    store
        .finish_sync(&[("a".into(), b"state-2".to_vec(), true)])
        .unwrap();
    assert_eq!(store.unsynced().unwrap(), ["b"]);
    assert_eq!(store.unsynced_changes().unwrap(), 1);

    edit.chunk = Chunk::Append(b"+2".to_vec());
    edit.origin = Origin::Synced {
        sync_state: Some(b"state-3".to_vec()),
    };
    store.write(&[edit]).unwrap();
    assert_eq!(
        store.unsynced().unwrap(),
        ["b"],
        "received changes are not ours to send"
    );
    assert_eq!(
        store.sync_state("a").unwrap().as_deref(),
        Some(&b"state-3"[..])
    );
    let v2 = store.version("a").unwrap().unwrap();
    assert_ne!(v1, v2, "a write changes the version");
    store.write(&[sample("a", "Acme", "")]).unwrap();
    let v3 = store.version("a").unwrap().unwrap();
    assert!(
        v3 != v1 && v3 != v2,
        "a compacting snapshot changes the version too"
    );
    assert_eq!(store.version("nope").unwrap(), None);
    assert_eq!(store.sync_state("nope").unwrap(), None);
}

pub fn text_indexed_later_is_searchable_meanwhile(store: &mut dyn DossierStore) {
    let mut later = sample("a", "Acme", "培训需求 for the HR team");
    later.text = TextWrite::Later;
    store
        .write(&[later, sample("b", "Beta", "培训 budget")])
        .unwrap();
    assert_eq!(store.unindexed().unwrap(), 1);
    assert_eq!(found(store, "培训"), ["a", "b"], "pending text is scanned");
    assert_eq!(found(store, "hr team"), ["a"]);
    assert_eq!(store.index_pending(10).unwrap(), 0);
    assert_eq!(store.unindexed().unwrap(), 0);
    assert_eq!(found(store, "培训"), ["a", "b"], "and indexed afterwards");
    assert_eq!(found(store, "HR team"), ["a"]);
    // A later write of the same dossier indexes at once and drops the pending text.
    let mut again = sample("a", "Acme", "old text");
    again.text = TextWrite::Later;
    store.write(&[again]).unwrap();
    store.write(&[sample("a", "Acme", "new text")]).unwrap();
    assert_eq!(store.unindexed().unwrap(), 0);
    assert_eq!(found(store, "old text"), Vec::<String>::new());
    assert_eq!(found(store, "new text"), ["a"]);
}

pub fn unknown_text_keeps_the_old_until_worked_out_again(store: &mut dyn DossierStore) {
    store.write(&[sample("a", "Acme", "培训需求 old")]).unwrap();
    let mut pushed = sample("a", "Acme Ltd", "");
    pushed.chunk = Chunk::Append(b"+1".to_vec());
    pushed.text = TextWrite::Unknown;
    store.write(&[pushed]).unwrap();
    assert_eq!(store.summary("a").unwrap().unwrap().name, "Acme Ltd");
    assert_eq!(
        found(store, "培训需求"),
        ["a"],
        "the old text is still found"
    );
    assert_eq!(store.unindexed().unwrap(), 1);
    assert_eq!(store.stale_text(10).unwrap(), ["a"]);
    let version = store.version("a").unwrap().unwrap();
    // Worked out for an older version: a newer write's text stands.
    store.set_text("a", version - 1, "stale result").unwrap();
    assert_eq!(found(store, "stale result"), Vec::<String>::new());
    store.set_text("a", version, "培训需求 new").unwrap();
    assert_eq!(found(store, "new"), ["a"]);
    assert_eq!(found(store, "old"), Vec::<String>::new());
    assert_eq!(store.stale_text(10).unwrap(), Vec::<String>::new());
    assert_eq!(store.unindexed().unwrap(), 0);
}

/// Instantiate the whole suite for a backend. The factory returns the store and a guard kept
/// alive for the test (a temp dir, a server handle, or `()`):
/// `store_conformance_suite!(|| (make_store(), guard));`
/// The board takes only what was written since it last looked, newest state of each dossier,
/// without the search text and without done follow-ups.
pub fn board_rows_follow_writes(store: &mut dyn DossierStore) {
    let (start, rows) = store.board_since(0).unwrap();
    assert!(rows.is_empty(), "an empty store has no board rows");
    let mut a = sample("a", "Acme", "secret words");
    a.follow_ups = vec![
        follow_up("a", "f1", None),
        follow_up("a", "f2", Some(day("2026-03-01"))),
    ];
    store.write(&[a, sample("b", "Beta", "")]).unwrap();
    let (seq, rows) = store.board_since(start).unwrap();
    assert_eq!(rows.len(), 2, "both new dossiers are on the board");
    let row = rows
        .iter()
        .find_map(|e| match e {
            BoardEntry::Row(r) if r.summary.id == "a" => Some(r),
            _ => None,
        })
        .expect("a's row");
    assert!(row.search_text.is_empty(), "the board keeps no search text");
    assert_eq!(row.follow_ups.len(), 1, "done follow-ups are left out");
    assert_eq!(row.board, Some(BoardFacts::default()));
    assert_eq!(
        store.board_row("a").unwrap().as_ref(),
        Some(&**row),
        "one dossier's row"
    );
    assert_eq!(store.board_row("zz").unwrap(), None, "no such dossier");

    let mut renamed = sample("b", "Beta Two", "");
    renamed.chunk = Chunk::Append(b"+1".to_vec());
    store.write(&[renamed]).unwrap();
    let (later, rows) = store.board_since(seq).unwrap();
    assert!(later > seq, "the board sequence rises with each write");
    match rows.as_slice() {
        [BoardEntry::Row(r)] => assert_eq!(r.summary.name, "Beta Two"),
        other => panic!("only b changed since the last look: {other:?}"),
    }
    let b = store.board_row("b").unwrap().expect("b's row");
    assert_eq!(b.summary.name, "Beta Two", "the latest write's row");
    let (same, none) = store.board_since(later).unwrap();
    assert_eq!(
        (same, none.len()),
        (later, 0),
        "nothing new, nothing returned"
    );
}

/// Removing dossiers leaves nothing of them anywhere a read looks, the board learns they are
/// gone, the rest is untouched, and an id removed can be written again.
pub fn remove_deletes_everything_of_a_dossier(store: &mut dyn DossierStore) {
    let mut a = sample("a", "Acme", "培训需求 acme secret");
    a.follow_ups = vec![follow_up("a", "fa", None)];
    a.deals = vec![DealSummary {
        dossier_id: "a".into(),
        deal_id: "da".into(),
        title: String::new(),
        stage: Stage::Negotiation,
        probability: 60,
        band: FunnelBand::Bottom,
        value: 100,
        expected_close: None,
    }];
    let mut b = sample("b", "Beta", "beta pending words");
    b.text = TextWrite::Later;
    let mut c = sample("c", "Cora", "cora kept words");
    c.follow_ups = vec![follow_up("c", "fc", None)];
    store.write(&[a, b, c]).unwrap();
    // a: two unsynced local changes, then changes received with unknown text (stale).
    let mut edit = sample("a", "Acme", "");
    edit.chunk = Chunk::Append(b"+1".to_vec());
    store.write(&[edit.clone()]).unwrap();
    edit.chunk = Chunk::Append(b"+2".to_vec());
    edit.origin = Origin::Synced {
        sync_state: Some(b"state-a".to_vec()),
    };
    edit.text = TextWrite::Unknown;
    store.write(&[edit]).unwrap();
    assert_eq!(store.stale_text(10).unwrap(), ["a"]);
    assert_eq!(store.unindexed().unwrap(), 2, "a stale, b pending");
    let mut board = TeamBoard::default();
    let (seq, entries) = store.board_since(0).unwrap();
    board.apply(seq, board_rows(entries));
    assert_eq!(board.len(), 3);

    store
        .remove(&["a".into(), "b".into(), "unknown".into()])
        .unwrap();

    assert_eq!(store.ids().unwrap(), ["c"]);
    let all = ListQuery {
        include_archived: true,
        ..Default::default()
    };
    let listed: Vec<String> = store
        .list(&all)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, ["c"]);
    assert_eq!(store.count(&all).unwrap(), 1);
    for id in ["a", "b"] {
        assert!(store.load(id).unwrap().is_none(), "{id}: no bytes");
        assert_eq!(store.version(id).unwrap(), None, "{id}: no version");
        assert!(store.summary(id).unwrap().is_none(), "{id}: no summary");
        assert_eq!(store.heads(id).unwrap(), None, "{id}: no heads");
        assert_eq!(store.sync_state(id).unwrap(), None, "{id}: no sync state");
        assert!(store.deals(id).unwrap().is_empty(), "{id}: no deals");
        assert_eq!(store.board_row(id).unwrap(), None, "{id}: no board row");
    }
    let unsynced = store.unsynced().unwrap();
    assert_eq!(unsynced, ["c"], "only c still waits for the relay");
    assert_eq!(store.unsynced_changes().unwrap(), 1);
    assert_eq!(store.unindexed().unwrap(), 0, "no text left to index");
    assert_eq!(store.stale_text(10).unwrap(), Vec::<String>::new());
    assert_eq!(store.index_pending(10).unwrap(), 0);
    for q in ["培训", "acme secret", "pending", "words"] {
        let expected: &[&str] = if q == "words" { &["c"] } else { &[] };
        assert_eq!(found(store, q), expected, "search for {q:?}");
    }
    let by_text = ListQuery {
        text: Some("secret".into()),
        ..all.clone()
    };
    assert!(store.list(&by_text).unwrap().is_empty(), "list by text");
    let follow_ups: Vec<String> = store
        .follow_ups(&FollowUpQuery::default())
        .unwrap()
        .into_iter()
        .map(|f| f.follow_up_id)
        .collect();
    assert_eq!(follow_ups, ["fc"]);

    // The board learns of the removal, and only of it.
    let (later, entries) = store.board_since(seq).unwrap();
    assert!(later > seq, "a removal moves the board sequence");
    let mut gone: Vec<&str> = entries
        .iter()
        .map(|e| match e {
            BoardEntry::Gone(id) => id.as_str(),
            other => panic!("only removals since the last look: {other:?}"),
        })
        .collect();
    gone.sort();
    assert_eq!(gone, ["a", "b"], "unknown ids are ignored");
    for e in &entries {
        if let BoardEntry::Gone(id) = e {
            board.remove(id);
        }
    }
    board.apply(later, Vec::new());
    let left: Vec<&str> = board.rows().map(|r| r.summary.id.as_str()).collect();
    assert_eq!(left, ["c"]);
    // Removing again, or removing nothing, changes nothing.
    store.remove(&["a".into()]).unwrap();
    store.remove(&[]).unwrap();
    assert_eq!(store.board_since(later).unwrap(), (later, Vec::new()));

    // Written again (reassigned back), a removed id comes back whole, on the board too.
    store
        .write(&[sample("a", "Acme again", "acme returns")])
        .unwrap();
    assert_eq!(store.ids().unwrap(), ["a", "c"]);
    assert_eq!(store.summary("a").unwrap().unwrap().name, "Acme again");
    assert_eq!(
        store.load("a").unwrap().unwrap().bytes,
        b"snapshot of a",
        "only the new bytes"
    );
    assert_eq!(found(store, "acme returns"), ["a"]);
    assert!(found(store, "acme secret").is_empty(), "not the old text");
    assert!(store.deals("a").unwrap().is_empty(), "not the old deals");
    assert_eq!(store.sync_state("a").unwrap(), None);
    let mut unsynced = store.unsynced().unwrap();
    unsynced.sort();
    assert_eq!(unsynced, ["a", "c"]);
    assert_eq!(store.unsynced_changes().unwrap(), 2);
    let (_, entries) = store.board_since(later).unwrap();
    match entries.as_slice() {
        [BoardEntry::Row(r)] => assert_eq!(r.summary.name, "Acme again"),
        other => panic!("a is back on the board: {other:?}"),
    }
    assert!(store.board_row("a").unwrap().is_some());
    // A dossier written after the last one was removed (SQLite may give it the same rowid)
    // inherits none of its text.
    store.remove(&["a".into()]).unwrap();
    store.write(&[sample("d", "Delta", "delta words")]).unwrap();
    assert!(found(store, "acme returns").is_empty());
    let mut hits = found(store, "words");
    hits.sort();
    assert_eq!(hits, ["c", "d"]);
}

fn board_rows(entries: Vec<BoardEntry>) -> Vec<BoardRow> {
    entries
        .into_iter()
        .map(|e| match e {
            BoardEntry::Row(r) => *r,
            other => panic!("a row: {other:?}"),
        })
        .collect()
}

fn follow_up(dossier: &str, id: &str, done_on: Option<Day>) -> FollowUpSummary {
    FollowUpSummary {
        dossier_id: dossier.into(),
        dossier_name: String::new(),
        follow_up_id: id.into(),
        due: Some(day("2026-02-01")),
        kind: None,
        action: "call".into(),
        assignee: None,
        assignee_name: String::new(),
        done_on,
    }
}

#[macro_export]
macro_rules! store_conformance_suite {
    ($make:expr) => {
        $crate::store_conformance_suite!(@tests $make;
            bytes_round_trip_in_order,
            heads_follow_writes,
            summary_replaced_on_each_write,
            list_puts_what_needs_doing_first,
            filters,
            search_finds_chinese_and_english,
            batch_is_atomic,
            follow_ups_across_dossiers,
            settings,
            sync_bookkeeping,
            wipe_leaves_nothing,
            text_indexed_later_is_searchable_meanwhile,
            unknown_text_keeps_the_old_until_worked_out_again,
            board_rows_follow_writes,
            remove_deletes_everything_of_a_dossier
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
