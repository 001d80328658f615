//! The app's service layer, driven exactly as the window drives it (the Tauri commands are
//! one-line wrappers over these calls), on a real SQLite file.

use std::sync::Arc;

use fieldbook_app::clock::FixedClock;
use fieldbook_app::service::{AppService, Serve};
use fieldbook_shared::api::{self, ErrorKind, Lang, ListQuery, Meeting, Settings};
use fieldbook_shared::patch::Assignment;
use fieldbook_shared::{Day, DecisionRole};

fn field(path: &str, value: &str) -> Assignment {
    Assignment {
        path: path.into(),
        value: value.into(),
    }
}

fn day(s: &str) -> Day {
    s.parse().unwrap()
}

fn open(dir: &std::path::Path, today: &str) -> AppService {
    AppService::open(
        dir,
        &fieldbook_app::secrets::Secrets::key_file_beside(dir),
        Arc::new(FixedClock::at(day(today))),
    )
    .unwrap()
}

#[test]
fn a_rep_records_a_meeting_and_sees_the_follow_up_overdue_the_next_day() {
    let dir = tempfile::tempdir().unwrap();
    let app = open(dir.path(), "2026-11-24");

    let started = app
        .serve(api::Start {
            query: ListQuery::default(),
        })
        .unwrap();
    assert_eq!(
        started.settings,
        Settings::default(),
        "first run: nothing chosen yet"
    );
    assert_eq!(started.page.total, 0);
    assert_eq!(started.status.link, api::LinkState::NotEnrolled);

    let settings = app
        .serve(api::SaveSettings {
            settings: Settings {
                language: Some(Lang::En),
                onboarded: true,
            },
        })
        .unwrap();
    assert_eq!(settings.language, Some(Lang::En));

    let err = app
        .serve(api::CreateDossier { fields: vec![] })
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    let id = app
        .serve(api::CreateDossier {
            fields: vec![
                field("profile.name", "星河培训"),
                field("profile.region", "杭州"),
            ],
        })
        .unwrap();

    let added = app
        .serve(api::AddItem {
            id: id.clone(),
            collection: "people".into(),
            fields: vec![
                field("name", "王芳"),
                field("roles", r#"["decider","user"]"#),
                field("coach", "true"),
            ],
        })
        .unwrap();
    let person = &added.view.dossier.people[&added.item];
    assert!(person.coach);
    assert!(person.has_role(DecisionRole::Decider) && person.has_role(DecisionRole::User));

    let recorded = app
        .serve(api::RecordMeeting {
            id: id.clone(),
            meeting: Meeting {
                client_participants: vec![added.item.clone()],
                notes: "谈了培训需求".into(),
                demand: "新员工培训".into(),
                next_step: "发送方案".into(),
                next_step_due: Some(day("2026-11-24")),
                ..Meeting::default()
            },
        })
        .unwrap();
    assert!(recorded.follow_up.is_some());

    let overdue = |app: &AppService, on: &str| {
        app.serve(api::ListDossiers {
            query: ListQuery {
                overdue_on: Some(day(on)),
                ..ListQuery::default()
            },
        })
        .unwrap()
    };
    assert_eq!(
        overdue(&app, "2026-11-24").total,
        0,
        "due today is not overdue yet"
    );
    drop(app);

    // The next day, on the same store: the app starts where it was left.
    let app = open(dir.path(), "2026-11-25");
    let started = app
        .serve(api::Start {
            query: ListQuery::default(),
        })
        .unwrap();
    assert_eq!(started.settings.language, Some(Lang::En));
    assert!(started.settings.onboarded);
    assert_eq!(started.status.today, day("2026-11-25"));
    let page = overdue(&app, "2026-11-25");
    assert_eq!(page.total, 1);
    assert_eq!(page.rows[0].id, id);
    assert_eq!(page.rows[0].next_follow_up, Some(day("2026-11-24")));

    let found = app
        .serve(api::ListDossiers {
            query: ListQuery {
                text: Some("培训".into()),
                ..ListQuery::default()
            },
        })
        .unwrap();
    assert_eq!(found.total, 1, "search finds the Chinese notes");
    assert!(
        started.status.sync.unsynced_changes > 0,
        "nothing was sent: not enrolled"
    );
}

#[test]
fn edits_in_place_are_saved_rejected_when_invalid_and_kept_in_history() {
    let dir = tempfile::tempdir().unwrap();
    let app = open(dir.path(), "2026-11-24");
    let id = app
        .serve(api::CreateDossier {
            fields: vec![field("profile.name", "Acme")],
        })
        .unwrap();
    let before = app.serve(api::GetStatus {}).unwrap().revision;
    let view = app
        .serve(api::SetFields {
            id: id.clone(),
            fields: vec![field("profile.headcount", "120")],
        })
        .unwrap();
    assert_eq!(view.dossier.profile.headcount, Some(120));
    assert!(
        app.serve(api::GetStatus {}).unwrap().revision > before,
        "a view can tell it changed"
    );

    let err = app
        .serve(api::SetFields {
            id: id.clone(),
            fields: vec![field("profile.headcount", "many")],
        })
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    let view = app.serve(api::OpenDossier { id: id.clone() }).unwrap();
    assert_eq!(
        view.dossier.profile.headcount,
        Some(120),
        "a bad value loses nothing"
    );

    app.serve(api::SetFields {
        id: id.clone(),
        fields: vec![field("profile.headcount", "130")],
    })
    .unwrap();
    let history = app
        .serve(api::History {
            id: id.clone(),
            path: "profile.headcount".into(),
        })
        .unwrap();
    let values: Vec<_> = history.iter().map(|c| c.value.clone()).collect();
    // Created empty, then the two saved values, oldest first.
    assert_eq!(
        values,
        [
            serde_json::Value::Null,
            serde_json::json!(120),
            serde_json::json!(130)
        ]
    );

    let missing = app
        .serve(api::OpenDossier {
            id: "no-such".into(),
        })
        .unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
    let enroll = app
        .serve(api::Enroll {
            relay_url: "http://127.0.0.1:9".into(),
            invite: "x".into(),
            ca_pem: None,
        })
        .unwrap_err();
    assert_eq!(enroll.kind, ErrorKind::Sync, "{enroll}");
    // A CA pasted in the join form that holds no certificate: said before any connection.
    let junk_ca = app
        .serve(api::Enroll {
            relay_url: "https://127.0.0.1:9".into(),
            invite: "x".into(),
            ca_pem: Some("not a certificate".into()),
        })
        .unwrap_err();
    assert!(
        junk_ca.message.contains("join form") && junk_ca.message.contains("no PEM certificate"),
        "{junk_ca}"
    );
}
