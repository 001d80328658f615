//! The engine over a real SQLite file: every part of a dossier, the rep's filters, bad input.

use std::sync::Arc;

use fieldbook_app::clock::FixedClock;
use fieldbook_app::engine::{Engine, EngineError, Meeting};
use fieldbook_app::exchange;
use fieldbook_app::store::{DossierStore, ListQuery, StoreError};
use fieldbook_shared::board::TeamBoard;
use fieldbook_shared::patch::Assignment;
use fieldbook_shared::{Day, FiveATier, FunnelBand, Stage};

fn day(s: &str) -> Day {
    s.parse().unwrap()
}

fn set(s: &str) -> Assignment {
    s.parse().unwrap()
}

fn sets(list: &[&str]) -> Vec<Assignment> {
    list.iter().map(|s| set(s)).collect()
}

fn engine_at(dir: &std::path::Path, today: &str) -> Engine {
    let mut e = Engine::open(
        dir,
        &fieldbook_app::secrets::Secrets::key_file_beside(dir),
        Arc::new(FixedClock::at(day(today))),
    )
    .unwrap();
    e.set_identity("li", "laptop").unwrap();
    e
}

#[test]
fn every_part_of_a_dossier_is_recorded_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-23");
    let id = e
        .create_dossier(&sets(&[
            "profile.name=华东机械有限公司",
            "profile.industry=manufacturing",
            "profile.region=上海",
            "profile.website=https://hd.example",
            "profile.business_scope=机床与自动化设备",
            "profile.sales_scale=5亿",
            "profile.headcount=1200",
            "profile.org_structure=事业部制",
            "profile.brand=large",
            "profile.target_type=competitors_client",
            "profile.past_purchasing.suppliers=Acme Training,北大培训",
            "profile.past_purchasing.price_range=3-5万/天",
            "profile.past_purchasing.selection_criteria=讲师口碑",
        ]))
        .unwrap();
    let boss = e
        .add_item(
            &id,
            "people",
            &sets(&["name=王总", "title=总经理", "roles=decider"]),
        )
        .unwrap();
    let coach = e
        .add_item(
            &id,
            "people",
            &sets(&[
                "name=张伟",
                "title=HR总监",
                "department=人力资源部",
                "phone=138 0000 0000",
                "roles=initiator,influencer",
                "coach=true",
                "personality=analytical",
                "mood=rising",
                "relationship=4",
                &format!("reports_to={boss}"),
            ]),
        )
        .unwrap();
    let deal = e
        .add_item(
            &id,
            "deals",
            &sets(&[
                "title=中层领导力培训",
                "value=180000",
                "currency=CNY",
                "expected_close=2027-01-15",
                "competitors=Acme Training",
                "stage=evaluation",
                "proposal_outcome=resubmit",
                "win_probability=80",
                "awareness_play.first_call=2026-10-01",
            ]),
        )
        .unwrap();
    let item = e
        .add_item(
            &id,
            &format!("deals.{deal}.checklist"),
            &sets(&["question=预算多少？", "asked_on=2026-11-20"]),
        )
        .unwrap();
    e.set(
        &id,
        &sets(&[
            &format!("deals.{deal}.checklist.{item}.answer=20万以内"),
            &format!("deals.{deal}.checklist.{item}.answered_by={coach}"),
            &format!("deals.{deal}.checklist.{item}.answered_on=2026-11-22"),
        ]),
    )
    .unwrap();
    let recorded = e
        .record_meeting(
            &id,
            &Meeting {
                date: Some(day("2026-11-23")),
                client_participants: vec![coach.clone()],
                our_participants: vec!["li".into(), "培训顾问 陈老师".into()],
                notes: "谈了明年的培训计划".into(),
                demand: "40名中层的领导力课程".into(),
                problem: "新提拔的经理不会带团队".into(),
                benefit_points: "重视讲师质量，其次价格".into(),
                key_person_info: "王总拍板，HR主导评估".into(),
                next_step: "提交修改后的方案".into(),
                next_step_due: Some(day("2026-11-27")),
                deal: Some(deal.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    let contract = e
        .add_item(
            &id,
            "contracts",
            &sets(&[
                "title=2026年度培训合同",
                "signed_on=2026-03-01",
                "value=90000",
                "promised=4期课程",
                "payment_status=partly_paid",
                "review.delivered_as_promised=true",
                "review.satisfied=false",
                "review.problems=第三期讲师临时更换",
            ]),
        )
        .unwrap();
    e.add_item(
        &id,
        &format!("contracts.{contract}.milestones"),
        &sets(&[
            "description=第一期",
            "due=2026-04-01",
            "delivered_on=2026-04-02",
        ]),
    )
    .unwrap();
    let complaint = e
        .add_item(
            &id,
            "complaints",
            &sets(&[
                "opened_on=2026-11-10",
                "what_happened=讲师迟到",
                "severity=high",
                "escalated_on=2026-11-10",
                "emotion_acknowledged_on=2026-11-10",
            ]),
        )
        .unwrap();
    e.set(
        &id,
        &sets(&[
            "classification.sales_profit=star",
            "classification.price_value=value_buyer",
            "classification.a_revenue=true",
            "classification.a_profit=true",
            "classification.a_fulfilment_integrity=true",
            "account_plan.goals=成为首选供应商",
            "account_plan.executive_sponsor=销售副总 刘总",
            "loyalty_risks.strong_new_competitor=true",
        ]),
    )
    .unwrap();
    e.add_item(
        &id,
        "account_plan.actions",
        &sets(&[
            "action=安排领导拜访",
            "owner=manager",
            "resources=副总半天",
            "due=2026-12-10",
        ]),
    )
    .unwrap();

    let view = e.dossier(&id).unwrap();
    let d = &view.dossier;
    assert!(view.conflicts.is_empty());
    assert_eq!(d.profile.headcount, Some(1200));
    assert!(d.profile.past_purchasing.suppliers.contains("北大培训"));
    let z = &d.people[&coach];
    assert!(z.coach && z.has_role(fieldbook_shared::DecisionRole::Influencer));
    assert_eq!(z.reports_to.as_deref(), Some(boss.as_str()));
    assert_eq!(
        z.last_contact,
        Some(day("2026-11-23")),
        "a meeting updates last contact"
    );
    let dl = &d.deals[&deal];
    assert_eq!(dl.band(), FunnelBand::Bottom);
    assert_eq!(dl.open_checklist_items(), 0);
    let i = &d.interactions[&recorded.interaction];
    assert_eq!(i.learned.problem.as_str(), "新提拔的经理不会带团队");
    let f = &d.follow_ups[recorded.follow_up.as_ref().unwrap()];
    assert_eq!(f.due, Some(day("2026-11-27")));
    assert_eq!(d.complaints[&complaint].steps_done(), 1);
    assert_eq!(d.classification.five_a(), FiveATier::ThreeA);
    assert_eq!(d.contracts[&contract].milestones.len(), 1);
    assert_eq!(d.account_plan.actions.len(), 1);

    let s = e.summary(&id).unwrap();
    assert_eq!(s.lead_stage, Some(Stage::Evaluation));
    assert_eq!(s.weighted_value, 144_000);
    assert_eq!(s.open_complaints, 1);
    assert_eq!(s.escalated_complaints, 1);
    assert_eq!(s.people, 2);
    assert_eq!(e.search("领导力", 10).unwrap().len(), 1);
    assert_eq!(e.search("讲师", 10).unwrap().len(), 1);
}

#[test]
fn a_next_step_shows_as_overdue_the_day_after_it_was_due() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-23");
    let id = e.create_dossier(&sets(&["profile.name=Acme"])).unwrap();
    e.record_meeting(
        &id,
        &Meeting {
            next_step: "call back".into(),
            next_step_due: Some(day("2026-11-24")),
            ..Default::default()
        },
    )
    .unwrap();
    let overdue = |e: &Engine| {
        let today = e.today();
        e.list(&ListQuery {
            overdue_on: Some(today),
            ..Default::default()
        })
        .unwrap()
        .len()
    };
    assert_eq!(overdue(&e), 0);
    drop(e);
    let e = engine_at(dir.path(), "2026-11-25");
    assert_eq!(overdue(&e), 1);
    let stale = e
        .list(&ListQuery {
            not_contacted_since: Some(e.today().plus_days(-2)),
            ..Default::default()
        })
        .unwrap();
    assert!(stale.is_empty(), "contacted on the 23rd, within 2 days");
    let stale = e
        .list(&ListQuery {
            not_contacted_since: Some(e.today().plus_days(-1)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(stale.len(), 1, "not contacted for 1 day");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-23");
    let id = e.create_dossier(&sets(&["profile.name=Acme"])).unwrap();
    let deal = e
        .add_item(&id, "deals", &sets(&["title=T", "stage=awareness"]))
        .unwrap();
    let before = e.dossier(&id).unwrap().dossier;
    let refused = [
        sets(&["profile.headcount=many"]),
        sets(&["profile.name="]),
        sets(&[&format!("deals.{deal}.stage=negotiation")]),
        sets(&[&format!("deals.{deal}.win_probability=140")]),
        sets(&[&format!("deals.{deal}.expected_close=2027-02-30")]),
        sets(&["people.nobody.name=x"]),
        sets(&["profile.colour=red"]),
        sets(&["authors.x.user=mallory"]),
    ];
    for bad in refused {
        let err = e.set(&id, &bad).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    assert!(matches!(
        e.set("no-such-id", &sets(&["profile.name=x"])),
        Err(EngineError::NotFound(_))
    ));
    assert!(matches!(
        e.dossier("../../etc/passwd"),
        Err(EngineError::BadId(_))
    ));
    assert_eq!(e.dossier(&id).unwrap().dossier, before);
}

#[test]
fn a_corrupt_document_is_reported_and_the_rest_of_the_store_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-23");
    let good = e.create_dossier(&sets(&["profile.name=Good"])).unwrap();
    let bad = e.create_dossier(&sets(&["profile.name=Bad"])).unwrap();
    drop(e);
    let conn = rusqlite_conn(dir.path());
    conn.execute(
        "UPDATE chunk SET bytes = x'deadbeef' WHERE dossier_id = ?1",
        [&bad],
    )
    .unwrap();
    drop(conn);
    let mut e = engine_at(dir.path(), "2026-11-23");
    let err = e.dossier(&bad).unwrap_err();
    assert!(matches!(err, EngineError::Corrupt { .. }), "{err}");
    assert!(e.set(&bad, &sets(&["profile.region=x"])).is_err());
    assert_eq!(e.dossier(&good).unwrap().dossier.profile.name, "Good");
    assert_eq!(
        e.list(&ListQuery::default()).unwrap().len(),
        2,
        "the summary still lists it"
    );
    // Importing garbage as a document is refused before it reaches the store.
    assert!(
        e.merge_documents(&[(good.clone(), b"not automerge".to_vec())])
            .is_err()
    );
    assert_eq!(e.dossier(&good).unwrap().dossier.profile.name, "Good");
}

/// The store's file opened directly, with its key (what a tool that damages it needs).
fn rusqlite_conn(dir: &std::path::Path) -> rusqlite::Connection {
    let key = fieldbook_app::secrets::Secrets::key_file_beside(dir)
        .store_key()
        .unwrap()
        .unwrap();
    let conn = rusqlite::Connection::open(dir.join(fieldbook_app::engine::STORE_FILE)).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", key.hex()))
        .unwrap();
    conn
}

#[test]
fn a_full_disk_fails_the_edit_cleanly_and_keeps_what_was_saved() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-23");
    let id = e.create_dossier(&sets(&["profile.name=Acme"])).unwrap();
    e.set(&id, &sets(&["profile.industry=saved before"]))
        .unwrap();
    let pages = e.store().size_bytes().unwrap() / 4096;
    e.store().set_max_pages(pages + 2).unwrap();
    let big = "满".repeat(200_000);
    let err = e
        .set(
            &id,
            &[Assignment {
                path: "profile.business_scope".into(),
                value: big,
            }],
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::Store(StoreError::Full)), "{err}");
    assert!(err.to_string().contains("disk is full"));
    drop(e);
    let e = engine_at(dir.path(), "2026-11-23");
    let d = e.dossier(&id).unwrap().dossier;
    assert_eq!(d.profile.industry, "saved before");
    assert!(d.profile.business_scope.is_empty());
}

#[test]
fn delete_is_a_tombstone_and_restore_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-23");
    let id = e.create_dossier(&sets(&["profile.name=Acme"])).unwrap();
    let p = e.add_item(&id, "people", &sets(&["name=Ann"])).unwrap();
    e.delete(&id, &format!("people.{p}")).unwrap();
    assert_eq!(e.summary(&id).unwrap().people, 0);
    assert!(
        e.dossier(&id).unwrap().dossier.people[&p]
            .deleted_at
            .is_some()
    );
    e.restore(&id, &format!("people.{p}")).unwrap();
    assert_eq!(e.summary(&id).unwrap().people, 1);
    e.delete(&id, "").unwrap();
    assert!(
        e.list(&ListQuery::default()).unwrap().is_empty(),
        "archived dossiers leave the list"
    );
    assert!(
        e.delete(&id, "profile").is_err(),
        "only items and whole dossiers are deleted"
    );
}

#[test]
fn removed_dossiers_leave_lists_search_follow_ups_and_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-23");
    let mut board = TeamBoard::default();
    let mut ids = Vec::new();
    for name in ["Acme", "Beta"] {
        let id = e
            .create_dossier(&sets(&[
                &format!("profile.name={name}"),
                &format!("profile.business_scope={name} 机床设备"),
            ]))
            .unwrap();
        e.record_meeting(
            &id,
            &Meeting {
                notes: format!("{name} 领导力培训"),
                next_step: format!("call {name}"),
                next_step_due: Some(day("2026-11-30")),
                ..Default::default()
            },
        )
        .unwrap();
        ids.push(id);
    }
    let (acme, beta) = (ids[0].clone(), ids[1].clone());
    e.update_board(&mut board).unwrap();
    assert_eq!(board.len(), 2);
    assert_eq!(e.search("领导力", 10).unwrap().len(), 2);

    e.remove_dossiers(&[acme.clone(), "not-held".into()])
        .unwrap();

    let listed: Vec<String> = e
        .list(&ListQuery::default())
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [beta.as_str()]);
    let found: Vec<String> = e
        .search("领导力", 10)
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(found, [beta.as_str()]);
    assert!(e.search("Acme", 10).unwrap().is_empty());
    let follow_ups: Vec<String> = e
        .follow_ups(&Default::default())
        .unwrap()
        .into_iter()
        .map(|f| f.dossier_id)
        .collect();
    assert_eq!(follow_ups, [beta.as_str()]);
    assert!(matches!(e.summary(&acme), Err(EngineError::NotFound(_))));
    assert!(
        matches!(e.dossier(&acme), Err(EngineError::NotFound(_))),
        "not served from the documents kept open"
    );
    assert!(matches!(
        e.set(&acme, &sets(&["profile.region=x"])),
        Err(EngineError::NotFound(_))
    ));
    assert_eq!(
        e.unsent().unwrap().dossiers,
        1,
        "only Beta's changes remain"
    );
    e.update_board(&mut board).unwrap();
    let on_board: Vec<&str> = board.rows().map(|r| r.summary.id.as_str()).collect();
    assert_eq!(on_board, [beta.as_str()]);

    // Given back later, it is a dossier like any other.
    e.create_dossier_with_id(&acme, &sets(&["profile.name=Acme again"]))
        .unwrap();
    assert_eq!(e.dossier(&acme).unwrap().dossier.profile.name, "Acme again");
    assert_eq!(e.dossier(&acme).unwrap().dossier.interactions.len(), 0);
    e.update_board(&mut board).unwrap();
    assert_eq!(board.len(), 2);
}

#[test]
fn many_edits_compact_into_a_snapshot_without_losing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-23");
    let id = e.create_dossier(&sets(&["profile.name=Acme"])).unwrap();
    for n in 0..150 {
        e.set(
            &id,
            &[Assignment {
                path: "profile.sales_scale".into(),
                value: format!("v{n}"),
            }],
        )
        .unwrap();
    }
    assert_eq!(e.dossier(&id).unwrap().dossier.profile.sales_scale, "v149");
    assert!(e.store().load(&id).unwrap().unwrap().chunks < 64);
    let history = e.history(&id, "profile.sales_scale").unwrap();
    assert_eq!(history.len(), 151, "created empty, then 150 edits");
    assert_eq!(history[150].value, "v149");
}

#[test]
fn export_and_import_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-23");
    let id = e
        .create_dossier(&sets(&["profile.name=Acme", "profile.region=杭州"]))
        .unwrap();
    e.add_item(&id, "people", &sets(&["name=Ann", "roles=buyer"]))
        .unwrap();
    e.set(&id, &sets(&["profile.region=苏州"])).unwrap();
    let ids = e.ids().unwrap();
    let out = tempfile::tempdir().unwrap();
    exchange::write_documents(&e, &ids, out.path()).unwrap();
    let json = exchange::to_json(&e, &ids).unwrap();
    let json_path = out.path().join("all.json");
    std::fs::write(&json_path, serde_json::to_string(&json).unwrap()).unwrap();
    let original = e.dossier(&id).unwrap().dossier;

    // Automerge files: content and full history.
    let other = tempfile::tempdir().unwrap();
    let mut f = engine_at(other.path(), "2026-11-24");
    let docs = exchange::read_documents(out.path()).unwrap();
    assert_eq!(f.merge_documents(&docs).unwrap(), 1);
    assert_eq!(f.dossier(&id).unwrap().dossier, original);
    let h = f.history(&id, "profile.region").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].author.as_ref().unwrap().user, "li");
    assert_eq!(
        f.merge_documents(&docs).unwrap(),
        0,
        "importing again changes nothing"
    );

    // JSON: content.
    let third = tempfile::tempdir().unwrap();
    let mut g = engine_at(third.path(), "2026-11-24");
    let back = exchange::read_json(&json_path).unwrap();
    let items: Vec<_> = back
        .dossiers
        .into_iter()
        .map(|d| (d.id, d.dossier))
        .collect();
    g.import_dossiers(&items).unwrap();
    let mut imported = g.dossier(&id).unwrap().dossier;
    let mut expected = original.clone();
    // JSON carries content, not history: the import is a new write by this device.
    imported.authors.clear();
    expected.authors.clear();
    assert_eq!(imported, expected);
    assert!(exchange::read_json(&out.path().join(format!("{id}.automerge"))).is_err());
}

#[test]
fn the_dossier_as_it_was_on_a_date() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-01");
    let id = e
        .create_dossier(&sets(&["profile.name=Acme", "profile.region=杭州"]))
        .unwrap();
    drop(e);
    let mut e = engine_at(dir.path(), "2026-11-20");
    e.set(&id, &sets(&["profile.region=苏州"])).unwrap();
    assert_eq!(
        e.as_of(&id, day("2026-11-10"))
            .unwrap()
            .unwrap()
            .profile
            .region,
        "杭州"
    );
    assert_eq!(
        e.as_of(&id, day("2026-11-20"))
            .unwrap()
            .unwrap()
            .profile
            .region,
        "苏州"
    );
    assert!(e.as_of(&id, day("2026-10-01")).unwrap().is_none());
}

#[test]
fn absurd_amounts_do_not_break_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-23");
    let id = e.create_dossier(&sets(&["profile.name=Acme"])).unwrap();
    for _ in 0..2 {
        e.add_item(
            &id,
            "deals",
            &sets(&[
                "title=Huge",
                "stage=negotiation",
                "value=9223372036854775807",
            ]),
        )
        .unwrap();
    }
    let s = e.summary(&id).unwrap();
    assert_eq!(s.open_value, i64::MAX);
    // Each deal's value × 75 % saturates at i64::MAX before the division by 100.
    assert_eq!(s.weighted_value, 2 * (i64::MAX / 100));
}

#[test]
fn truncated_or_mangled_documents_are_refused_without_touching_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = engine_at(dir.path(), "2026-11-23");
    let id = e
        .create_dossier(&sets(&["profile.name=Acme", "profile.region=杭州"]))
        .unwrap();
    e.add_item(&id, "people", &sets(&["name=Ann", "notes=likes detail"]))
        .unwrap();
    let good = e.export_document(&id).unwrap();
    let before = e.dossier(&id).unwrap().dossier;

    // Every prefix, and the document with each byte in turn flipped: each must either be
    // refused with an error or merge into a readable dossier — never panic, never lose data.
    let mut refused = 0;
    let mut variants: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
    for i in (0..good.len()).step_by(7) {
        let mut v = good.clone();
        v[i] ^= 0x5a;
        variants.push(v);
    }
    for bytes in variants {
        match e.merge_documents(&[(id.clone(), bytes)]) {
            Err(_) => refused += 1,
            Ok(_) => {
                let now = e.dossier(&id).unwrap().dossier;
                assert_eq!(now.profile.region, before.profile.region);
                assert_eq!(now.people.len(), before.people.len());
            }
        }
    }
    assert!(
        refused > good.len() / 2,
        "most damaged documents are refused ({refused})"
    );
    assert_eq!(e.dossier(&id).unwrap().dossier, before);
}

/// Another account on the laptop cannot read the store: the folder is 0700 and every file in
/// it 0600 whatever the umask (the test process runs with the usual 022).
#[cfg(unix)]
#[test]
fn the_data_folder_and_its_files_are_the_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fieldbook");
    {
        let mut e = engine_at(&data, "2026-11-23");
        e.create_dossier(&sets(&["profile.name=杭州东兴精密机械"]))
            .unwrap();
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    assert!(files >= 1);
    // A folder left open by an older version is closed on the next start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = data.join(fieldbook_app::engine::STORE_FILE);
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(engine_at(&data, "2026-11-23"));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&store), 0o600);
}
