//! Who may do what, tried against the real relay process: every kind of credential × every
//! route of the relay (each call of the web API, the device routes, the sync socket and the
//! operations on it), each answered as the policy says. Written apart from the relay's policy
//! code (`server/src/auth.rs`): the expectations here are the table a reviewer would write.
//!
//! Also checked on every answer: a refusal is a typed body with a sentence (`{"kind",
//! "message"}` on the web API, `{"error"}` on the device routes), and another team's dossier or
//! device gets exactly the answer a made-up one gets (no existence oracle).

use std::collections::BTreeMap;
use std::time::Duration;

use fieldbook_relay::accounts::hash_secret;
use fieldbook_shared::api::{self, ListQuery, Settings};
use fieldbook_shared::board::ManagerNote;
use fieldbook_shared::patch::set;
use fieldbook_shared::sync::wire::{self, DeviceStatus, ToDevice, ToRelay, close};
use fieldbook_tests::relay::{RelayProcess, enrolled_device_as, raw_exchange, sync_once};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Team {
    North,
    East,
}

/// A kind of credential, and what it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Nothing,
    GarbageToken,
    GarbageCookie,
    RevokedDevice,
    RepDevice(Team),
    ManagerDevice(Team),
    RepSession,
    ManagerSession(Team),
    LoggedOutSession,
    ExpiredSession,
}

struct Credential {
    kind: Kind,
    token: Option<String>,
    cookie: Option<String>,
}

/// What a request reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    None,
    Ours(Team),
    MadeUp,
}

/// The answer the policy gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Status(u16),
    /// The sync socket opens.
    Upgrade,
}

/// The web API's calls: reads, the manager's writes, and the app's edits (never on the web).
const READS: &[&str] = &["start", "status", "list_dossiers", "dashboard"];
const EDITS: &[&str] = &[
    "enroll",
    "create_dossier",
    "set_fields",
    "add_item",
    "delete_item",
    "record_meeting",
    "resolve",
];
const ON_A_DOSSIER: &[&str] = &["open_dossier", "history", "add_note"];

fn team_of(kind: Kind) -> Option<Team> {
    match kind {
        Kind::RepDevice(t) | Kind::ManagerDevice(t) | Kind::ManagerSession(t) => Some(t),
        Kind::RepSession => Some(Team::North),
        _ => None,
    }
}

/// The table: what each credential gets on each web API call.
fn expect_call(kind: Kind, call: &str, target: Target) -> Expect {
    use Expect::Status;
    let manager_of = match kind {
        // No session at all, or one that ended: log in.
        Kind::Nothing
        | Kind::GarbageToken
        | Kind::GarbageCookie
        | Kind::RevokedDevice
        | Kind::RepDevice(_)
        | Kind::ManagerDevice(_)
        | Kind::LoggedOutSession
        | Kind::ExpiredSession => return Status(401),
        Kind::RepSession if call == "no_such_call" => return Status(404),
        Kind::RepSession if call == "logout" => return Status(200),
        Kind::RepSession => return Status(403),
        Kind::ManagerSession(team) => team,
    };
    match call {
        "no_such_call" => Status(404),
        c if EDITS.contains(&c) => Status(403),
        c if READS.contains(&c)
            || c == "save_settings"
            || c == "logout"
            || c == "set_visibility" =>
        {
            Status(200)
        }
        c if ON_A_DOSSIER.contains(&c) || c == "revoke_device" => match target {
            Target::Ours(team) if team == manager_of => Status(200),
            _ => Status(404),
        },
        other => panic!("no expectation for {other}"),
    }
}

/// The table for the device routes.
fn expect_route(kind: Kind, route: &str) -> Expect {
    use Expect::{Status, Upgrade};
    match route {
        "health" => Status(200),
        // A malformed enrolment is refused as such, whoever sends it.
        "enroll" => Status(422),
        // A wrong password for a user nobody has: the same answer for everyone.
        "login" => Status(401),
        "team_devices" | "sync" => match kind {
            Kind::RevokedDevice => Status(410),
            Kind::RepDevice(_) if route == "team_devices" => Status(403),
            Kind::RepDevice(_) | Kind::ManagerDevice(_) if route == "sync" => Upgrade,
            Kind::ManagerDevice(_) => Status(200),
            _ => Status(401),
        },
        other => panic!("no expectation for {other}"),
    }
}

struct World {
    relay: RelayProcess,
    creds: Vec<Credential>,
    dossiers: BTreeMap<Team, String>,
    /// A north dossier of its manager's, which north's rep may not see (north's reps see their
    /// own dossiers only).
    hidden: String,
    /// Devices a manager may revoke, one per team.
    spares: BTreeMap<Team, i64>,
    /// The devices' folders, kept while the test runs.
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path()).unwrap();
    let device = |team: &str, user: &str, name: &str, role: &str| {
        enrolled_device_as(&relay, &dir.path().join(name), team, user, name, role).unwrap()
    };
    let mut li = device("north", "li", "li-laptop", "rep");
    let mut chen = device("north", "chen", "chen-laptop", "manager");
    let mut wu = device("east", "wu", "wu-laptop", "rep");
    let zhao = device("east", "zhao", "zhao-laptop", "manager");
    let old = device("north", "li", "li-old-phone", "rep");
    let _spare_north = device("north", "li", "li-spare", "rep");
    let _spare_east = device("east", "wu", "wu-spare", "rep");

    let mut dossiers = BTreeMap::new();
    dossiers.insert(
        Team::North,
        li.create_dossier(&[set("profile.name", "北方客户")])
            .unwrap(),
    );
    dossiers.insert(
        Team::East,
        wu.create_dossier(&[set("profile.name", "东方客户")])
            .unwrap(),
    );
    let hidden = chen
        .create_dossier(&[set("profile.name", "经理的客户")])
        .unwrap();
    sync_once(&mut li).unwrap();
    sync_once(&mut wu).unwrap();
    sync_once(&mut chen).unwrap();
    relay
        .admin(&["team", "policy", "north", "--visibility", "own"])
        .unwrap();

    let mut store = relay.store().unwrap();
    let north = store.team_id("north").unwrap().unwrap();
    let east = store.team_id("east").unwrap().unwrap();
    let id_of = |store: &dyn fieldbook_relay::store::RelayStore, name: &str| {
        store
            .devices(None)
            .unwrap()
            .into_iter()
            .find(|d| d.name == name)
            .unwrap()
            .device_id
    };
    let mut spares = BTreeMap::new();
    spares.insert(Team::North, id_of(store.as_ref(), "li-spare"));
    spares.insert(Team::East, id_of(store.as_ref(), "wu-spare"));
    let revoked = id_of(store.as_ref(), "li-old-phone");
    relay.admin(&["revoke", &revoked.to_string()]).unwrap();

    let now = fieldbook_relay::http::now_ms();
    let mut session = |team: i64, user: &str, expires: i64| {
        let token = format!("session-{user}-{expires}-{}", rand::random::<u64>());
        store
            .create_session(&hash_secret(&token), team, user, expires)
            .unwrap();
        token
    };
    let week = now + 7 * 86_400_000;
    let chen_session = session(north, "chen", week);
    let zhao_session = session(east, "zhao", week);
    let li_session = session(north, "li", week);
    let expired = session(north, "chen", now - 1_000);
    let ended = session(north, "chen", week);
    store.end_session(&hash_secret(&ended)).unwrap();

    let token = |e: &fieldbook_app::Engine| e.relay_config().unwrap().unwrap().token;
    let cred = |kind, token: Option<String>, cookie: Option<String>| Credential {
        kind,
        token,
        cookie,
    };
    let creds = vec![
        cred(Kind::Nothing, None, None),
        cred(Kind::GarbageToken, Some("not-a-token".into()), None),
        cred(Kind::GarbageCookie, None, Some("not-a-session".into())),
        cred(Kind::RevokedDevice, Some(token(&old)), None),
        cred(Kind::RepDevice(Team::North), Some(token(&li)), None),
        cred(Kind::ManagerDevice(Team::North), Some(token(&chen)), None),
        cred(Kind::RepDevice(Team::East), Some(token(&wu)), None),
        cred(Kind::ManagerDevice(Team::East), Some(token(&zhao)), None),
        cred(Kind::RepSession, None, Some(li_session)),
        cred(Kind::ManagerSession(Team::North), None, Some(chen_session)),
        cred(Kind::ManagerSession(Team::East), None, Some(zhao_session)),
        cred(Kind::LoggedOutSession, None, Some(ended)),
        cred(Kind::ExpiredSession, None, Some(expired)),
    ];
    World {
        relay,
        creds,
        dossiers,
        hidden,
        spares,
        _dir: dir,
    }
}

/// One request: its status and body.
fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    cred: &Credential,
    body: Option<&Value>,
) -> (u16, String) {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = &cred.token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(c) = &cred.cookie {
        req = req.header("cookie", format!("{}={c}", api_cookie()));
    }
    req = req.header("content-type", "application/json");
    let req = req
        .body(body.map(|b| b.to_string()).unwrap_or_default())
        .unwrap();
    let mut response = agent.run(req).unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn api_cookie() -> &'static str {
    fieldbook_relay::auth::COOKIE
}

/// The body a call takes, aimed at `target`.
fn body_of(call: &str, world: &World, target: Target) -> Value {
    let dossier = match target {
        Target::Ours(team) => world.dossiers[&team].clone(),
        _ => "4f1c2b7e-0000-4000-8000-00000000beef".to_string(),
    };
    let device = match target {
        Target::Ours(team) => world.spares[&team],
        _ => 987_654,
    };
    match call {
        "start" => serde_json::to_value(api::Start {
            query: ListQuery::default(),
        })
        .unwrap(),
        "list_dossiers" => serde_json::to_value(api::ListDossiers {
            query: ListQuery::default(),
        })
        .unwrap(),
        "save_settings" => serde_json::to_value(api::SaveSettings {
            settings: Settings::default(),
        })
        .unwrap(),
        "dashboard" => json!({ "quiet_days": null }),
        "open_dossier" => json!({ "id": dossier }),
        "history" => json!({ "id": dossier, "path": "profile.name" }),
        "add_note" => serde_json::to_value(api::AddNote {
            id: dossier,
            note: ManagerNote {
                text: "先约总经理".into(),
                ..Default::default()
            },
        })
        .unwrap(),
        "revoke_device" => json!({ "device": device }),
        // The policy north already has (east's devices are done by the time its manager's
        // session sets it): the other cases stand as they are.
        "set_visibility" => json!({ "visibility": "own" }),
        _ => json!({}),
    }
}

/// A refusal is typed and says something.
fn check_typed(case: &str, status: u16, body: &str, web_api: bool) {
    if status < 400 {
        return;
    }
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|_| panic!("{case}: {status} with an untyped body {body:?}"));
    let sentence = if web_api {
        assert!(v["kind"].is_string(), "{case}: no kind in {body}");
        v["message"].as_str()
    } else {
        v["error"].as_str()
    };
    assert!(
        sentence.is_some_and(|s| s.split_whitespace().count() >= 2),
        "{case}: {status} without a sentence: {body}"
    );
}

/// An answer with the ids it names replaced, to compare two answers about different ids.
fn without_ids(body: &str, ids: &[String]) -> String {
    ids.iter()
        .fold(body.to_string(), |b, id| b.replace(id.as_str(), "<id>"))
}

#[test]
fn every_credential_on_every_route_is_answered_as_the_policy_says() {
    let world = world();
    let base = world.relay.url.clone();
    let agent = world.relay.http();
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut calls: Vec<&str> = api::CALL_NAMES.to_vec();
    calls.extend(["revoke_device", "set_visibility", "no_such_call"]);
    // Logout last: it ends the session the rest of a credential's cases use.
    calls.push("logout");

    for cred in &world.creds {
        // The device routes.
        for route in ["health", "enroll", "login", "team_devices", "sync"] {
            let case = format!("{:?} on {route}", cred.kind);
            let expected = expect_route(cred.kind, route);
            let got = match route {
                "health" => {
                    Expect::Status(request(&agent, "GET", &format!("{base}/health"), cred, None).0)
                }
                "enroll" => {
                    let (s, b) = request(
                        &agent,
                        "POST",
                        &format!("{base}/v1/enroll"),
                        cred,
                        Some(&json!({})),
                    );
                    check_typed(&case, s, &b, false);
                    Expect::Status(s)
                }
                "login" => {
                    let who = format!("nobody-{cases}");
                    let body = json!({ "team": "north", "user": who, "password": "guess" });
                    let (s, b) = request(
                        &agent,
                        "POST",
                        &format!("{base}/api/login"),
                        cred,
                        Some(&body),
                    );
                    check_typed(&case, s, &b, true);
                    Expect::Status(s)
                }
                "team_devices" => {
                    let (s, b) = request(
                        &agent,
                        "GET",
                        &format!("{base}/v1/team/devices"),
                        cred,
                        None,
                    );
                    check_typed(&case, s, &b, false);
                    if s == 200 {
                        // Its own team's devices only.
                        let other = match team_of(cred.kind) {
                            Some(Team::North) => "wu-laptop",
                            _ => "li-laptop",
                        };
                        assert!(
                            !b.contains(other),
                            "{case}: another team's device listed: {b}"
                        );
                    }
                    Expect::Status(s)
                }
                _ => sync_handshake(&world.relay, cred, &case),
            };
            cases += 1;
            if got != expected {
                failures.push(format!("{case}: expected {expected:?}, got {got:?}"));
            }
        }
        // The web API, each call; calls on a dossier or a device at each target.
        for call in &calls {
            let targets: &[Target] = if ON_A_DOSSIER.contains(call) || *call == "revoke_device" {
                &[
                    Target::Ours(Team::North),
                    Target::Ours(Team::East),
                    Target::MadeUp,
                ]
            } else {
                &[Target::None]
            };
            let mut refused_elsewhere = Vec::new();
            for &target in targets {
                let case = format!("{:?} calling {call} on {target:?}", cred.kind);
                let body = body_of(call, &world, target);
                let (status, answer) = request(
                    &agent,
                    "POST",
                    &format!("{base}/api/{call}"),
                    cred,
                    Some(&body),
                );
                check_typed(&case, status, &answer, true);
                let expected = expect_call(cred.kind, call, target);
                cases += 1;
                if Expect::Status(status) != expected {
                    failures.push(format!(
                        "{case}: expected {expected:?}, got {status} {answer}"
                    ));
                }
                // Another team's thing and a made-up one: one answer.
                let theirs = match (target, team_of(cred.kind)) {
                    (Target::Ours(t), Some(mine)) => t != mine,
                    (Target::MadeUp, _) => true,
                    _ => false,
                };
                if theirs && status != 200 {
                    // (The id the caller gave may be said back; nothing else may differ.)
                    let ids: Vec<String> = world
                        .dossiers
                        .values()
                        .cloned()
                        .chain(["4f1c2b7e-0000-4000-8000-00000000beef".to_string()])
                        .chain(
                            world
                                .spares
                                .values()
                                .chain([&987_654])
                                .map(|d| format!("device {d} ")),
                        )
                        .collect();
                    refused_elsewhere.push((status, without_ids(&answer, &ids)));
                }
            }
            if let [first, rest @ ..] = refused_elsewhere.as_slice() {
                for other in rest {
                    if other != first {
                        failures.push(format!(
                            "{:?} calling {call}: another team's and a made-up target answered differently: {first:?} vs {other:?}",
                            cred.kind
                        ));
                    }
                }
            }
        }
        // The sync socket's operations, for every credential that opens one.
        if matches!(cred.kind, Kind::RepDevice(_) | Kind::ManagerDevice(_)) {
            cases += socket_operations(&world, cred, &mut failures);
        }
    }
    eprintln!("{cases} cases");
    assert!(cases >= 400, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases answered against the policy:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The sync route, as a WebSocket client opens it.
fn sync_handshake(relay: &RelayProcess, cred: &Credential, case: &str) -> Expect {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut headers = Vec::new();
        if let Some(t) = &cred.token {
            headers.push(("authorization", format!("Bearer {t}")));
        }
        if let Some(c) = &cred.cookie {
            headers.push(("cookie", format!("{}={c}", api_cookie())));
        }
        match relay.open_socket_with(&headers).await {
            Ok(_) => Expect::Upgrade,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).to_string())
                    .unwrap_or_default();
                check_typed(case, response.status().as_u16(), &body, false);
                Expect::Status(response.status().as_u16())
            }
            Err(e) => panic!("{case}: {e}"),
        }
    })
}

fn hello() -> ToRelay {
    ToRelay::Hello {
        since: 0,
        status: DeviceStatus::default(),
    }
}

/// Operations on an open socket: before hello (refused alike), and on each target after it
/// (its own team's dossier served, another team's answered as a made-up one). Returns the
/// number of cases.
fn socket_operations(world: &World, cred: &Credential, failures: &mut Vec<String>) -> usize {
    let token = cred.token.as_deref().unwrap_or_default();
    let mine = team_of(cred.kind).unwrap_or(Team::North);
    let exchange = |frames: Vec<ToRelay>| {
        raw_exchange(
            &world.relay,
            token,
            frames
                .iter()
                .map(|f| Message::binary(wire::encode(f)))
                .collect(),
            Duration::from_millis(400),
        )
    };
    let decoded = |messages: Vec<Message>| -> Vec<ToDevice> {
        messages
            .into_iter()
            .filter_map(|m| match m {
                Message::Binary(b) => wire::decode::<ToDevice>(&b).ok(),
                _ => None,
            })
            .collect()
    };
    let mut cases = 0;
    // Before hello: a protocol violation, whatever is asked.
    for frame in [
        ToRelay::Status(DeviceStatus::default()),
        ToRelay::Fetch {
            docs: vec![world.dossiers[&mine].clone()],
        },
    ] {
        cases += 1;
        let (_, closed) = exchange(vec![frame.clone()]);
        if closed.as_ref().map(|(code, _)| *code) != Some(close::PROTOCOL) {
            failures.push(format!(
                "{:?}: {frame:?} before hello: closed {closed:?}",
                cred.kind
            ));
        }
    }
    let made_up = "4f1c2b7e-0000-4000-8000-00000000beef".to_string();
    let ids: Vec<String> = world
        .dossiers
        .values()
        .cloned()
        .chain([made_up.clone()])
        .collect();
    for op in ["fetch", "sync"] {
        let mut elsewhere = Vec::new();
        for target in [Some(Team::North), Some(Team::East), None] {
            cases += 1;
            let doc = target.map_or(made_up.clone(), |t| world.dossiers[&t].clone());
            let frame = match op {
                "fetch" => ToRelay::Fetch {
                    docs: vec![doc.clone()],
                },
                _ => ToRelay::Sync {
                    doc: doc.clone(),
                    data: empty_sync_message(),
                    done: false,
                },
            };
            let (got, closed) = exchange(vec![hello(), frame]);
            let got = decoded(got);
            let case = format!("{:?}: {op} {target:?}", cred.kind);
            if target == Some(mine) {
                // Its own team's dossier: served.
                let served = got.iter().any(|m| match m {
                    ToDevice::Snapshots(s) => s.iter().any(|s| s.doc == doc),
                    ToDevice::Sync { doc: d, .. } => *d == doc,
                    _ => false,
                });
                if !served {
                    failures.push(format!(
                        "{case}: its own dossier was not served: {got:?} {closed:?}"
                    ));
                }
            } else {
                // Never another team's content.
                let leaked = got.iter().any(|m| matches!(m, ToDevice::Snapshots(s) if s.iter().any(|s| !s.bytes.is_empty() && s.doc == doc)));
                if leaked {
                    failures.push(format!("{case}: another team's dossier was sent"));
                }
                let shape: Vec<String> = got
                    .iter()
                    .filter(|m| !matches!(m, ToDevice::Welcome { .. }))
                    .map(|m| without_ids(&format!("{m:?}"), &ids))
                    .collect();
                elsewhere.push((shape, closed.map(|(c, r)| (c, without_ids(&r, &ids)))));
            }
        }
        if let [a, b] = elsewhere.as_slice()
            && a != b
        {
            failures.push(format!(
                "{:?}: {op} of another team's dossier and of a made-up one answered differently: {a:?} vs {b:?}",
                cred.kind
            ));
        }
    }
    // A dossier of its own team outside its sight (north's reps see their own only): asked
    // for whole, answered as a made-up one; a manager gets it.
    let ids: Vec<String> = [world.hidden.clone(), made_up.clone()].into();
    let mut answers = Vec::new();
    for doc in [world.hidden.clone(), made_up.clone()] {
        cases += 1;
        let hidden = doc == world.hidden;
        let (got, closed) = exchange(vec![hello(), ToRelay::Fetch { docs: vec![doc] }]);
        let got = decoded(got);
        let served = got.iter().any(
            |m| matches!(m, ToDevice::Snapshots(s) if s.iter().any(|s| s.doc == world.hidden)),
        );
        let sees = hidden && matches!(cred.kind, Kind::ManagerDevice(Team::North));
        if served != sees {
            failures.push(format!(
                "{:?}: fetch of {} (served: {served}): {got:?} {closed:?}",
                cred.kind,
                if hidden {
                    "north's hidden dossier"
                } else {
                    "a made-up dossier"
                }
            ));
        }
        let shape: Vec<String> = got
            .iter()
            .filter(|m| !matches!(m, ToDevice::Welcome { .. }))
            .map(|m| without_ids(&format!("{m:?}"), &ids))
            .collect();
        answers.push(shape);
    }
    if !matches!(cred.kind, Kind::ManagerDevice(Team::North))
        && let [hidden, made_up] = answers.as_slice()
        && hidden != made_up
    {
        failures.push(format!(
            "{:?}: a dossier outside its sight and a made-up one answered differently: {hidden:?} vs {made_up:?}",
            cred.kind
        ));
    }
    cases
}

/// What a device holding nothing of a dossier says first about it.
fn empty_sync_message() -> Vec<u8> {
    use automerge::sync::SyncDoc;
    let mut state = automerge::sync::State::new();
    automerge::AutoCommit::new()
        .sync()
        .generate_sync_message(&mut state)
        .map(|m| m.encode())
        .unwrap_or_default()
}
