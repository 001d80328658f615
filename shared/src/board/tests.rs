//! The board's rules on small hand-made dossiers, where each expected figure can be read off.

use super::*;
use crate::api::ListQuery;
use crate::summary::project;
use crate::{Complaint, Deal, FollowUp, FunnelBand, Interaction, Stage};

fn day(s: &str) -> Day {
    s.parse().expect("a test date")
}

fn dossier(name: &str, owner: &str) -> Dossier {
    let mut d = Dossier::default();
    d.profile.name = name.into();
    d.profile.owner = owner.into();
    d
}

fn deal(d: &mut Dossier, id: &str, stage: Stage, value: i64, probability: Option<u8>) {
    d.deals.insert(
        id.into(),
        Deal {
            stage: Some(stage),
            value: Some(value),
            win_probability: probability,
            ..Deal::default()
        },
    );
}

fn follow_up(d: &mut Dossier, id: &str, due: &str, assignee: &str) {
    d.follow_ups.insert(
        id.into(),
        FollowUp {
            due: Some(day(due)),
            action: format!("do {id}"),
            assignee_name: assignee.into(),
            ..FollowUp::default()
        },
    );
}

fn board(dossiers: &[(&str, Dossier)]) -> TeamBoard {
    let mut b = TeamBoard::default();
    b.apply(1, dossiers.iter().map(|(id, d)| project(id, d, 0)));
    b
}

fn input() -> BoardInput {
    BoardInput {
        today: day("2026-11-23"),
        now_ms: 1_000_000_000,
        list_limit: 2,
        ..BoardInput::default()
    }
}

#[test]
fn pipeline_and_work_order_follow_the_funnel() {
    let mut a = dossier("Acme", "li");
    deal(&mut a, "d1", Stage::Negotiation, 100_000, Some(90)); // bottom
    deal(&mut a, "d2", Stage::Awareness, 10_000, None); // top (10 %)
    deal(&mut a, "d3", Stage::Signed, 50_000, None); // not open
    let mut b = dossier("Beta", "wang");
    deal(&mut b, "d4", Stage::Evaluation, 40_000, Some(50)); // middle
    let d = board(&[("a", a), ("b", b)]).dashboard(&input(), Vec::new());
    assert_eq!(d.team.open.count, 3);
    assert_eq!(d.team.open.value, 150_000);
    assert_eq!(d.team.open.weighted, 90_000 + 1_000 + 20_000);
    assert_eq!(
        d.team.stage(Stage::Signed).count,
        1,
        "stages count every live deal"
    );
    let order: Vec<(FunnelBand, u64)> = d
        .work_order
        .iter()
        .map(|w| (w.band, w.deals.count))
        .collect();
    assert_eq!(
        order,
        [
            (FunnelBand::Bottom, 1),
            (FunnelBand::Top, 1),
            (FunnelBand::Middle, 1)
        ],
        "close the bottom, then new prospects, then the middle"
    );
    assert_eq!(d.close_first.rows[0].value, 100_000);
    let li = d.pipelines.iter().find(|p| p.rep == "li").unwrap();
    assert_eq!((li.open.count, li.band(FunnelBand::Bottom).count), (2, 1));
}

#[test]
fn overdue_goes_to_whoever_it_is_assigned_oldest_first_and_lists_are_cut_with_totals() {
    let mut a = dossier("Acme", "li");
    follow_up(&mut a, "f1", "2026-11-20", "");
    follow_up(&mut a, "f2", "2026-11-01", "");
    follow_up(&mut a, "f3", "2026-11-10", "");
    follow_up(&mut a, "f4", "2026-11-02", "wang");
    follow_up(&mut a, "f5", "2026-11-23", ""); // due today: not overdue yet
    let d = board(&[("a", a)]).dashboard(&input(), Vec::new());
    let li = d.overdue.iter().find(|r| r.rep == "li").unwrap();
    assert_eq!(li.items.total, 3);
    let dues: Vec<String> = li.items.rows.iter().map(|i| i.due.to_string()).collect();
    assert_eq!(
        dues,
        ["2026-11-01", "2026-11-10"],
        "oldest first, cut at the limit"
    );
    assert_eq!(li.items.rows[0].days_overdue, 22);
    let wang = d.overdue.iter().find(|r| r.rep == "wang").unwrap();
    assert_eq!(wang.items.total, 1, "assigned by name to wang");
}

#[test]
fn complaints_escalated_first_then_oldest_and_quiet_clients_and_prospects() {
    let mut a = dossier("Acme", "li");
    a.complaints.insert(
        "c1".into(),
        Complaint {
            opened_on: Some(day("2026-10-01")),
            ..Complaint::default()
        },
    );
    a.complaints.insert(
        "c2".into(),
        Complaint {
            opened_on: Some(day("2026-11-20")),
            escalated_on: Some(day("2026-11-20")),
            emotion_acknowledged_on: Some(day("2026-11-20")),
            ..Complaint::default()
        },
    );
    let mut b = dossier("Beta", "li");
    b.profile.target_type = Some(crate::TargetType::FirstTimeBuyer);
    for (id, on) in [("i1", "2026-11-02"), ("i2", "2026-11-15")] {
        b.interactions.insert(
            id.into(),
            Interaction {
                date: Some(day(on)),
                ..Interaction::default()
            },
        );
    }
    let d = board(&[("a", a), ("b", b)]).dashboard(&input(), Vec::new());
    let order: Vec<(&str, u8)> = d
        .complaints
        .rows
        .iter()
        .map(|c| (c.complaint_id.as_str(), c.steps_done))
        .collect();
    assert_eq!(order, [("c2", 1), ("c1", 0)]);
    assert_eq!(
        d.quiet.total, 1,
        "Acme was never contacted; Beta was this month"
    );
    assert_eq!(d.quiet.rows[0].client.name, "Acme");
    assert_eq!(
        d.frequent_prospects.total, 1,
        "a first-time prospect twice in 30 days"
    );
    let weeks_total: u32 = (0..d.weeks.len())
        .map(|w| d.team_activity.week_total(w))
        .sum();
    assert_eq!(weeks_total, 2);
}

#[test]
fn freshness_marks_never_synced_old_and_waiting_as_stale() {
    let a = dossier("Acme", "li");
    let b = dossier("Beta", "wang");
    let c = dossier("Gamma", "zhao");
    let now = input().now_ms;
    let device = |user: &str, last: Option<i64>, waiting: u64| DeviceFreshness {
        id: 0,
        user: user.into(),
        device: format!("{user}-laptop"),
        role: crate::sync::wire::Role::Rep,
        last_sync_ms: last,
        waiting,
        reported_ms: last,
    };
    let d = board(&[("a", a), ("b", b), ("c", c)]).dashboard(
        &input(),
        vec![
            device("li", Some(now - 60_000), 0),
            device("wang", Some(now - 60_000), 3),
            device("chen", Some(now), 0),
        ],
    );
    let stale: Vec<(&str, bool)> = d
        .freshness
        .iter()
        .map(|f| (f.rep.as_str(), f.stale))
        .collect();
    // chen is a "rep" here without dossiers: listed, fresh.
    assert_eq!(
        stale,
        [
            ("chen", false),
            ("li", false),
            ("wang", true),
            ("zhao", true)
        ]
    );
}

#[test]
fn the_board_keeps_the_latest_row_and_pages_like_a_device_list() {
    let mut a = dossier("Acme", "li");
    follow_up(&mut a, "f1", "2026-11-01", "");
    let b = dossier("Beta", "wang");
    let mut board = board(&[("a", a.clone()), ("b", b)]);
    let all = board.page(&ListQuery::default());
    assert_eq!(all.total, 2);
    assert_eq!(all.rows[0].name, "Acme", "what needs doing first on top");
    let overdue = board.page(&ListQuery {
        overdue_on: Some(day("2026-11-23")),
        ..ListQuery::default()
    });
    assert_eq!(overdue.total, 1);
    a.follow_ups.get_mut("f1").unwrap().done_on = Some(day("2026-11-22"));
    a.profile.name = "Acme Two".into();
    board.apply(2, [project("a", &a, 0)]);
    assert_eq!(board.seq, 2);
    assert_eq!(board.len(), 2);
    let overdue = board.page(&ListQuery {
        overdue_on: Some(day("2026-11-23")),
        ..ListQuery::default()
    });
    assert_eq!(overdue.total, 0, "done now");
    let found = board.page(&ListQuery {
        text: Some("acme two".into()),
        ..ListQuery::default()
    });
    assert_eq!(found.rows[0].name, "Acme Two");
}

#[test]
fn a_note_needs_words_or_a_follow_up_with_an_action() {
    let d = dossier("Acme", "li");
    let ids = NoteIds {
        comment: "c".into(),
        follow_up: "f".into(),
    };
    let today = day("2026-11-23");
    assert!(add_note(&d, &ManagerNote::default(), &ids, "chen", today).is_err());
    let only_rep = ManagerNote {
        rep: Some("li".into()),
        ..ManagerNote::default()
    };
    assert!(
        add_note(&d, &only_rep, &ids, "chen", today).is_err(),
        "no action"
    );
    let note = ManagerNote {
        text: "call them".into(),
        rep: Some("li".into()),
        action: "call".into(),
        due: Some(today),
        kind: None,
    };
    let after = add_note(&d, &note, &ids, "chen", today).unwrap();
    assert_eq!(after.comments["c"].follow_up.as_deref(), Some("f"));
    assert_eq!(after.follow_ups["f"].assignee_name, "li");
    assert_eq!(after.comments["c"].author, "chen");
}

#[test]
fn activity_counts_every_contact_in_the_weeks_even_past_the_inline_ones() {
    let mut a = dossier("Acme", "li");
    // Ten this week and last (more than a row keeps inline), two long ago.
    for n in 0..10 {
        a.interactions.insert(
            format!("i{n}"),
            Interaction {
                date: Some(day("2026-11-23").plus_days(-n)),
                kind: Some(crate::InteractionKind::Visit),
                ..Interaction::default()
            },
        );
    }
    for (id, on) in [("old1", "2025-01-01"), ("old2", "2025-02-01")] {
        a.interactions.insert(
            id.into(),
            Interaction {
                date: Some(day(on)),
                ..Interaction::default()
            },
        );
    }
    let d = board(&[("a", a)]).dashboard(&input(), Vec::new());
    assert_eq!(d.team_activity.total, 10);
    let weeks: Vec<u32> = (0..d.weeks.len())
        .map(|w| d.team_activity.week_total(w))
        .collect();
    assert_eq!(
        weeks[weeks.len() - 1],
        1,
        "Monday 2026-11-23 alone in this week"
    );
    assert_eq!(weeks[weeks.len() - 2], 7, "the whole week before");
    assert_eq!(weeks[weeks.len() - 3], 2);
}
