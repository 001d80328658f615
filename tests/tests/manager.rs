//! The manager's view against a real relay process: two reps' offline edits merged, the
//! figures on the relay (web API) and on the manager's own device equal to the ones computed
//! here straight from the reps' dossiers, a rep who never synced shown stale, the manager's
//! note reaching the rep's device, and another team seeing none of it.

use std::collections::BTreeMap;

use fieldbook_app::Engine;
use fieldbook_app::service::{AppService, Serve};
use fieldbook_shared::api::{self, DossierView};
use fieldbook_shared::board::Dashboard;
use fieldbook_shared::patch::set;
use fieldbook_shared::{Day, Dossier, FunnelBand};
use fieldbook_tests::relay::{RelayProcess, enrolled_device, enrolled_device_as, sync_once};
use fieldbook_tests::web::WebClient;
use serde_json::json;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");
/// The tests' devices all live on this day (see `fieldbook_tests::device`).
const TODAY: &str = "2026-11-23";

/// The figures a manager needs, computed from whole dossiers with the model's own rules:
/// nothing of the board's code is used.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    dossiers: u64,
    /// (count, value, weighted) of open deals, per rep and "" for the team.
    open: BTreeMap<String, (u64, i64, i64)>,
    /// Team open deals per band: (count, value).
    bands: BTreeMap<FunnelBand, (u64, i64)>,
    /// Overdue follow-ups per responsible person.
    overdue: BTreeMap<String, u64>,
    complaints: u64,
    escalated: u64,
    reviews: u64,
    quiet: u64,
}

fn expected(dossiers: &BTreeMap<String, Dossier>, today: Day) -> Figures {
    let mut f = Figures::default();
    for d in dossiers.values().filter(|d| d.deleted_at.is_none()) {
        f.dossiers += 1;
        for deal in d.deals.values().filter(|x| x.deleted_at.is_none()) {
            if !deal.stage_or_default().is_open() {
                continue;
            }
            let value = deal.value.unwrap_or(0);
            let weighted = value * i64::from(deal.probability()) / 100;
            for who in [String::new(), d.profile.owner.clone()] {
                let e = f.open.entry(who).or_default();
                *e = (e.0 + 1, e.1 + value, e.2 + weighted);
            }
            let b = f.bands.entry(deal.band()).or_default();
            *b = (b.0 + 1, b.1 + value);
        }
        for fu in d.follow_ups.values() {
            if fu.is_overdue(today) {
                let who = if fu.assignee_name.is_empty() {
                    d.profile.owner.clone()
                } else {
                    fu.assignee_name.clone()
                };
                *f.overdue.entry(who).or_default() += 1;
            }
        }
        for c in d.complaints.values().filter(|c| c.is_open()) {
            f.complaints += 1;
            f.escalated += u64::from(c.escalated_on.is_some());
        }
        f.reviews += d
            .contracts
            .values()
            .filter(|c| c.deleted_at.is_none() && c.review.reviewed_on.is_none())
            .filter(|c| c.signed_on.is_some_and(|s| s <= today))
            .count() as u64;
        let last = d
            .interactions
            .values()
            .filter(|i| i.deleted_at.is_none())
            .filter_map(|i| i.date)
            .max();
        f.quiet += u64::from(last.is_none_or(|l| l < today.plus_days(-30)));
    }
    f
}

/// The same figures as a dashboard shows them.
fn shown(d: &Dashboard) -> Figures {
    let mut f = Figures {
        dossiers: d.dossiers,
        complaints: d.complaints.total,
        escalated: d.complaints.rows.iter().filter(|c| c.escalated).count() as u64,
        reviews: d.reviews.total,
        quiet: d.quiet.total,
        ..Figures::default()
    };
    f.open.insert(
        String::new(),
        (d.team.open.count, d.team.open.value, d.team.open.weighted),
    );
    for p in &d.pipelines {
        if p.open.count > 0 {
            f.open
                .insert(p.rep.clone(), (p.open.count, p.open.value, p.open.weighted));
        }
    }
    for band in FunnelBand::ALL {
        let b = d.team.band(*band);
        if b.count > 0 {
            f.bands.insert(*band, (b.count, b.value));
        }
    }
    for r in &d.overdue {
        f.overdue.insert(r.rep.clone(), r.items.total);
    }
    f
}

fn all_dossiers(engine: &Engine) -> BTreeMap<String, Dossier> {
    engine
        .ids()
        .unwrap()
        .into_iter()
        .map(|id| {
            let d = engine.dossier(&id).unwrap().dossier;
            (id, d)
        })
        .collect()
}

fn seed(engine: &mut Engine, seed: u64, count: usize, owner: &str) -> Vec<String> {
    let today: Day = TODAY.parse().unwrap();
    let items = fieldbook_app::synth::dossiers(seed, count, &[owner], today);
    let ids = items.iter().map(|(id, _)| id.clone()).collect();
    engine.create_many(&items).unwrap();
    ids
}

/// The manager chen's device in team north, enrolled and synced once.
fn synced_manager(relay: &RelayProcess, dir: &std::path::Path) -> Engine {
    let mut chen = enrolled_device_as(
        relay,
        &dir.join("chen"),
        "north",
        "chen",
        "chen-laptop",
        "manager",
    )
    .unwrap();
    sync_once(&mut chen).unwrap();
    chen
}

fn dashboard_of(web: &WebClient) -> Dashboard {
    let (status, body) = web
        .call("dashboard", &json!({ "quiet_days": null }))
        .unwrap();
    assert_eq!(status, 200, "dashboard: {body}");
    serde_json::from_value(body).expect("a dashboard")
}

#[test]
fn the_manager_sees_the_merged_team_with_its_freshness_and_nothing_of_other_teams() {
    let dir = tempfile::tempdir().unwrap();
    let relay =
        RelayProcess::start_tls_with(RELAY.as_ref(), dir.path(), &["--today", TODAY]).unwrap();
    let today: Day = TODAY.parse().unwrap();

    // Two reps fill their dossiers offline, then sync.
    let mut li =
        enrolled_device(&relay, &dir.path().join("li"), "north", "li", "li-laptop").unwrap();
    let mut wang = enrolled_device(
        &relay,
        &dir.path().join("wang"),
        "north",
        "wang",
        "wang-phone",
    )
    .unwrap();
    let li_ids = seed(&mut li, 1, 30, "li");
    let wang_ids = seed(&mut wang, 2, 20, "wang");
    sync_once(&mut li).unwrap();
    sync_once(&mut wang).unwrap();
    sync_once(&mut li).unwrap();

    // Different offline edits on both, one dossier edited on both sides.
    let shared = li_ids[0].clone();
    li.add_item(
        &shared,
        "deals",
        &[
            set("title", "年度框架协议"),
            set("stage", "negotiation"),
            set("value", "300000"),
        ],
    )
    .unwrap();
    wang.add_item(
        &shared,
        "follow_ups",
        &[
            set("action", "陪同拜访 / joint visit"),
            set("due", "2026-11-01"),
            set("assignee_name", "wang"),
        ],
    )
    .unwrap();
    wang.add_item(
        &wang_ids[0],
        "complaints",
        &[
            set("opened_on", "2026-11-20"),
            set("escalated_on", "2026-11-21"),
        ],
    )
    .unwrap();
    sync_once(&mut li).unwrap();
    sync_once(&mut wang).unwrap();
    sync_once(&mut li).unwrap();
    let team = all_dossiers(&li);
    assert_eq!(team, all_dossiers(&wang), "both reps converged");
    assert_eq!(team.len(), 50);
    let want = expected(&team, today);
    assert!(want.overdue.get("wang").copied().unwrap_or(0) >= 1);
    assert!(
        want.complaints >= 1 && want.reviews >= 1,
        "the data exercises every list"
    );

    // A third rep enrolled but never synced: the relay has nothing of theirs.
    let mut zhao = enrolled_device(
        &relay,
        &dir.path().join("zhao"),
        "north",
        "zhao",
        "zhao-tablet",
    )
    .unwrap();
    seed(&mut zhao, 3, 2, "zhao");

    // The manager in a browser.
    relay.invite("north", "chen", "manager").unwrap();
    relay
        .set_password("north", "chen", "manager-password-1")
        .unwrap();
    let mut web = WebClient::of(&relay).unwrap();
    let (status, _) = web.call("dashboard", &json!({})).unwrap();
    assert_eq!(status, 401, "no session, no data");
    let (status, body) = web.login("north", "chen", "wrong password!").unwrap();
    assert_eq!((status, body["kind"].as_str()), (401, Some("unauthorized")));
    let (status, body) = web.login("north", "chen", "manager-password-1").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sync"]["role"], "manager");
    let on_relay = dashboard_of(&web);
    assert_eq!(shown(&on_relay), want, "the relay's figures");
    assert_eq!(on_relay.today, today);
    let fresh: BTreeMap<&str, bool> = on_relay
        .freshness
        .iter()
        .map(|f| (f.rep.as_str(), f.stale))
        .collect();
    assert_eq!(
        fresh,
        BTreeMap::from([("li", false), ("wang", false), ("zhao", true)]),
        "the rep who never synced is stale: {:?}",
        on_relay.freshness
    );
    let zhao_row = on_relay.freshness.iter().find(|f| f.rep == "zhao").unwrap();
    assert_eq!(zhao_row.last_sync_ms, None);

    // The manager's own device: the same figures from its replica, freshness from the relay.
    let chen = synced_manager(&relay, dir.path());
    let service = AppService::new(chen);
    let on_device = service
        .serve(api::GetDashboard { quiet_days: None })
        .unwrap();
    assert_eq!(shown(&on_device), want, "the manager's device's figures");
    assert!(
        on_device.freshness_as_of_ms.is_some(),
        "fetched from the relay"
    );
    let device_fresh: Vec<(&str, bool)> = on_device
        .freshness
        .iter()
        .map(|f| (f.rep.as_str(), f.stale))
        .collect();
    assert_eq!(
        device_fresh,
        [("li", false), ("wang", false), ("zhao", true)]
    );
    let mut a = on_device.clone();
    let mut b = on_relay.clone();
    a.freshness_as_of_ms = None;
    a.freshness.clear();
    b.freshness.clear();
    // The team's visibility policy: known on the relay, not on a device.
    assert_eq!(
        b.visibility.take(),
        Some(fieldbook_shared::sync::wire::Visibility::Team)
    );
    assert_eq!(a.visibility, None);
    assert_eq!(a, b, "device and relay agree on everything else");

    // Drill down, then a note with a follow-up for li, written on the web.
    let (status, body) = web.call("open_dossier", &json!({ "id": shared })).unwrap();
    assert_eq!(status, 200);
    let view: DossierView = serde_json::from_value(body).unwrap();
    assert_eq!(view.dossier, team[&shared]);
    let note = json!({ "id": shared, "note": {
        "text": "先把框架协议签下来", "rep": "li", "action": "约总经理面谈", "due": "2026-11-25" } });
    let (status, body) = web.call("add_note", &note).unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = web
        .call("add_note", &json!({ "id": shared, "note": { "text": "" } }))
        .unwrap();
    assert_eq!(
        (status, body["kind"].as_str()),
        (422, Some("invalid")),
        "an empty note"
    );
    let (status, body) = web
        .call(
            "add_note",
            &json!({ "id": shared, "note": {
                "text": "跟进", "rep": "lii", "action": "打电话", "due": "2026-11-25" } }),
        )
        .unwrap();
    assert_eq!(
        (status, body["kind"].as_str()),
        (422, Some("invalid")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("no one called \"lii\""),
        "a follow-up for a rep who does not exist: {body}"
    );
    sync_once(&mut li).unwrap();
    let mine = li.dossier(&shared).unwrap().dossier;
    let comment = mine
        .comments
        .values()
        .next()
        .expect("the note reached li's device");
    assert_eq!(
        (comment.author.as_str(), comment.text.as_str()),
        ("chen", "先把框架协议签下来")
    );
    let assigned = &mine.follow_ups[comment.follow_up.as_ref().expect("with its follow-up")];
    assert_eq!(
        (
            assigned.assignee_name.as_str(),
            assigned.action.as_str(),
            assigned.due
        ),
        ("li", "约总经理面谈", Some("2026-11-25".parse().unwrap()))
    );
    let authors: Vec<_> = mine
        .authors
        .values()
        .map(|a| (a.user.as_str(), a.device.as_str()))
        .collect();
    assert!(
        authors.contains(&("chen", "web")),
        "the note names its author: {authors:?}"
    );
    // The board follows: the new follow-up is open, not overdue; nothing else moved.
    let after = dashboard_of(&web);
    assert_eq!(shown(&after), want);

    // The web view reads; edits are for the app.
    let (status, _) = web
        .call("set_fields", &json!({ "id": shared, "fields": [] }))
        .unwrap();
    assert_eq!(status, 403);
    // A request from another site is refused even with the session.
    let (status, _) = web
        .call_with(
            "dashboard",
            &json!({}),
            &[("origin", "http://evil.example")],
        )
        .unwrap();
    assert_eq!(status, 403);
    let (status, _) = web
        .call_with("dashboard", &json!({}), &[("sec-fetch-site", "cross-site")])
        .unwrap();
    assert_eq!(status, 403);

    // A rep is given no web password: the admin is told why, and how to make them a manager.
    let refused = relay
        .set_password("north", "li", "rep-password-12")
        .unwrap_err()
        .to_string();
    assert!(refused.contains("`li` is a rep"), "{refused}");
    assert!(refused.contains("--role manager"), "{refused}");
    // A manager made a rep again keeps the password, and the web view refuses them.
    relay.invite("north", "li", "manager").unwrap();
    relay
        .set_password("north", "li", "rep-password-12")
        .unwrap();
    relay.invite("north", "li", "rep").unwrap();
    let mut rep = WebClient::of(&relay).unwrap();
    let (status, body) = rep.login("north", "li", "rep-password-12").unwrap();
    assert_eq!((status, body["kind"].as_str()), (403, Some("forbidden")));

    // Another team's manager sees nothing of north.
    relay.invite("south", "sun", "manager").unwrap();
    relay
        .set_password("south", "sun", "south-password-1")
        .unwrap();
    let mut south = WebClient::of(&relay).unwrap();
    assert_eq!(
        south.login("south", "sun", "south-password-1").unwrap().0,
        200
    );
    let theirs = dashboard_of(&south);
    assert_eq!((theirs.dossiers, theirs.team.open.count), (0, 0));
    assert!(theirs.freshness.is_empty(), "{:?}", theirs.freshness);
    let (status, page) = south
        .call("list_dossiers", &json!({ "query": {} }))
        .unwrap();
    assert_eq!((status, page["total"].as_u64()), (200, Some(0)));
    for call in ["open_dossier", "history"] {
        let (status, _) = south
            .call(call, &json!({ "id": shared, "path": "profile.name" }))
            .unwrap();
        assert_eq!(
            status, 404,
            "{call}: north's dossier does not exist for south"
        );
    }
    let (status, _) = south.call("add_note", &note).unwrap();
    assert_eq!(status, 404);
    // Nor with north's session id guessed wrong.
    let mut forged = WebClient::of(&relay).unwrap();
    forged.cookie = Some("fieldbook_session=0000".into());
    assert_eq!(forged.call("dashboard", &json!({})).unwrap().0, 401);

    // Guessing a password closes that account's login for a while, even to the right
    // password; other accounts go on as before.
    relay.invite("north", "wu", "manager").unwrap();
    relay
        .set_password("north", "wu", "wu-password-123")
        .unwrap();
    let mut guesser = WebClient::of(&relay).unwrap();
    for guess in ["password1", "12345678", "wu", "north", "fieldbook"] {
        assert_eq!(guesser.login("north", "wu", guess).unwrap().0, 401);
    }
    let (status, body) = guesser.login("north", "wu", "wu-password-123").unwrap();
    assert_eq!(
        (status, body["kind"].as_str()),
        (429, Some("too_many_attempts")),
        "{body}"
    );
    let wait = guesser.retry_after.expect("Retry-After on a closed login");
    assert!((1..=5).contains(&wait), "{wait}");
    assert!(guesser.cookie.is_none());
    let mut chen_again = WebClient::of(&relay).unwrap();
    assert_eq!(
        chen_again
            .login("north", "chen", "manager-password-1")
            .unwrap()
            .0,
        200
    );
    std::thread::sleep(std::time::Duration::from_secs(wait));
    let (status, body) = guesser.login("north", "wu", "wu-password-123").unwrap();
    assert_eq!(status, 200, "open again after Retry-After: {body}");

    // Logging out ends the session.
    assert_eq!(web.call("logout", &json!({})).unwrap().0, 200);
    assert_eq!(web.call("dashboard", &json!({})).unwrap().0, 401);
    drop(zhao);
}

#[test]
fn a_managers_device_offline_still_shows_the_board_from_its_replica() {
    let dir = tempfile::tempdir().unwrap();
    let relay =
        RelayProcess::start_tls_with(RELAY.as_ref(), dir.path(), &["--today", TODAY]).unwrap();
    let mut li =
        enrolled_device(&relay, &dir.path().join("li"), "north", "li", "li-laptop").unwrap();
    seed(&mut li, 7, 12, "li");
    sync_once(&mut li).unwrap();
    let chen = synced_manager(&relay, dir.path());
    let want = expected(&all_dossiers(&li), TODAY.parse().unwrap());
    let service = AppService::new(chen);
    let online = service
        .serve(api::GetDashboard { quiet_days: None })
        .unwrap();
    assert_eq!(shown(&online), want);
    let fetched = online.freshness_as_of_ms;
    assert!(fetched.is_some());

    // The relay goes away: the board still shows, freshness as last fetched.
    drop(relay);
    let offline = service
        .serve(api::GetDashboard { quiet_days: None })
        .unwrap();
    assert_eq!(shown(&offline), want);
    assert_eq!(
        offline.freshness_as_of_ms, fetched,
        "the last known reports, with their time"
    );
    assert_eq!(offline.freshness, online.freshness);
}

/// The relay's peak resident memory (VmHWM), in MiB.
fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/PID/status")
        / 1024
}

/// A flood of logins, each under a new name (which the per-account throttle does not see):
/// the password checks queue, so the relay's memory stays bounded (each argon2 check holds
/// about 19 MiB; 32 at once took it to gigabytes), and every login is answered.
#[test]
fn a_flood_of_logins_under_new_names_queues_instead_of_taking_the_relays_memory() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path()).unwrap();
    relay.invite("north", "chen", "manager").unwrap();
    let pid = relay.pid().unwrap();
    let before = peak_mib(pid);
    let answers: Vec<u16> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..32)
            .map(|w| {
                let relay = &relay;
                s.spawn(move || {
                    let mut web = WebClient::of(relay).unwrap();
                    (0..4)
                        .map(|i| {
                            web.login("north", &format!("guess-{w}-{i}"), "a wrong password")
                                .unwrap()
                                .0
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let peak = peak_mib(pid);
    eprintln!(
        "128 logins, 32 at a time: peak {peak} MiB (before {before} MiB); {} refused, {} told to come back",
        answers.iter().filter(|s| **s == 401).count(),
        answers.iter().filter(|s| **s == 503).count()
    );
    assert!(
        answers.iter().all(|s| *s == 401 || *s == 503),
        "{answers:?}"
    );
    assert!(
        peak < before + 200,
        "the relay grew from {before} to {peak} MiB"
    );
}
