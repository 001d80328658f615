//! Devices syncing through a real relay process on 127.0.0.1, each on its own SQLite file: over
//! TLS with a test CA, as a team runs it, but for the test of half-sent requests, which writes
//! bytes on a bare socket.

use std::time::Duration;

use fieldbook_app::Engine;
use fieldbook_app::sync::SyncError;
use fieldbook_shared::document::DossierDoc;
use fieldbook_shared::patch::set;
use fieldbook_shared::summary::Projection;
use fieldbook_shared::sync::wire::{self, DeviceStatus, ToDevice, ToRelay, Upload, Vouched, close};
use fieldbook_tests::relay::{Background, RelayProcess, enrolled_device, raw_exchange, sync_once};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

/// Sync every device, in turn, until a whole pass changes nothing anywhere.
fn sync_all(devices: &mut [&mut Engine]) {
    for _ in 0..4 {
        for d in devices.iter_mut() {
            sync_once(d).expect("sync");
        }
    }
}

fn heads(engine: &Engine, id: &str) -> Vec<automerge::ChangeHash> {
    DossierDoc::load(&engine.export_document(id).unwrap())
        .unwrap()
        .heads()
}

fn relay_heads(relay: &RelayProcess, team: &str, id: &str) -> Option<Vec<automerge::ChangeHash>> {
    use fieldbook_relay::store::RelayStore;
    let store = fieldbook_relay::store::sqlite::SqliteRelayStore::open(&relay.db_path()).unwrap();
    let team = store.team_id(team).unwrap()?;
    let doc = store.load_doc(team, id).unwrap()?;
    Some(DossierDoc::load(&doc.bytes).unwrap().heads())
}

/// A relay with two devices of team north: li's laptop and wang's desk.
fn li_and_wang(dir: &std::path::Path) -> (RelayProcess, Engine, Engine) {
    let relay = RelayProcess::start_tls(RELAY.as_ref(), dir).unwrap();
    let li = enrolled_device(&relay, &dir.join("li"), "north", "li", "laptop").unwrap();
    let wang = enrolled_device(&relay, &dir.join("wang"), "north", "wang", "desk").unwrap();
    (relay, li, wang)
}

/// `upload` sent on a raw session of `device`'s: the relay's answer.
fn upload_as(relay: &RelayProcess, device: &Engine, upload: Upload) -> Vec<wire::Stored> {
    let token = device.relay_config().unwrap().unwrap().token;
    let replies = raw_session(relay, &token, |_| {
        vec![hello(), ToRelay::Upload(vec![upload.clone()])]
    });
    replies
        .iter()
        .find_map(|m| match m {
            ToDevice::Stored(s) => Some(s.clone()),
            _ => None,
        })
        .expect("an answer to the upload")
}

/// A session's first frames: hello, then one dossier uploaded whole.
fn upload(doc: &str, bytes: Vec<u8>, vouched: Option<Vouched>) -> Vec<Message> {
    vec![
        Message::binary(wire::encode(&hello())),
        Message::binary(wire::encode(&ToRelay::Upload(vec![Upload {
            doc: doc.into(),
            bytes,
            vouched,
        }]))),
    ]
}

/// A board row for dossier `id` (of an empty dossier).
fn row_of(id: &str) -> Projection {
    fieldbook_shared::summary::project(id, &fieldbook_shared::Dossier::default(), 0).board_row()
}

#[test]
fn concurrent_offline_edits_merge_through_the_relay_and_teams_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path()).unwrap();
    let mut laptop =
        enrolled_device(&relay, &dir.path().join("laptop"), "north", "li", "laptop").unwrap();
    let mut phone =
        enrolled_device(&relay, &dir.path().join("phone"), "north", "li", "phone").unwrap();
    let mut wang =
        enrolled_device(&relay, &dir.path().join("wang"), "north", "wang", "desk").unwrap();
    let mut zhao =
        enrolled_device(&relay, &dir.path().join("zhao"), "south", "zhao", "pad").unwrap();

    // Before the week: the laptop has two dossiers, and everyone in the team has them.
    let acme = laptop
        .create_dossier(&[set("profile.name", "华东机械")])
        .unwrap();
    let deal = laptop
        .add_item(
            &acme,
            "deals",
            &[set("title", "培训项目"), set("stage", "interest")],
        )
        .unwrap();
    let notes = laptop
        .add_item(
            &acme,
            "interactions",
            &[
                set("date", "2026-11-02"),
                set("notes", "first visit: HR wants a plan"),
            ],
        )
        .unwrap();
    let beta = laptop
        .create_dossier(&[set("profile.name", "Beta Foods")])
        .unwrap();
    sync_all(&mut [&mut laptop, &mut phone, &mut wang]);
    assert_eq!(phone.ids().unwrap().len(), 2);

    // A week without signal: everyone edits the same dossiers.
    let i_laptop = laptop
        .add_item(
            &acme,
            "interactions",
            &[
                set("date", "2026-11-16"),
                set("notes", "laptop: met the CFO"),
            ],
        )
        .unwrap();
    let i_phone = phone
        .add_item(
            &acme,
            "interactions",
            &[
                set("date", "2026-11-17"),
                set("notes", "phone: call with HR"),
            ],
        )
        .unwrap();
    laptop
        .set(&acme, &[set("profile.industry", "machinery")])
        .unwrap();
    phone.set(&acme, &[set("profile.region", "华东")]).unwrap();
    let mut text = laptop.dossier(&acme).unwrap().dossier.interactions[&notes]
        .notes
        .to_string();
    text.push_str(" [laptop]");
    laptop
        .set(&acme, &[set(&format!("interactions.{notes}.notes"), &text)])
        .unwrap();
    let text = format!(
        "[phone] {}",
        phone.dossier(&acme).unwrap().dossier.interactions[&notes].notes
    );
    phone
        .set(&acme, &[set(&format!("interactions.{notes}.notes"), &text)])
        .unwrap();
    laptop
        .set(&acme, &[set(&format!("deals.{deal}.stage"), "evaluation")])
        .unwrap();
    phone
        .set(&acme, &[set(&format!("deals.{deal}.stage"), "lost")])
        .unwrap();
    wang.set(&beta, &[set("profile.region", "华南")]).unwrap();
    // The other team's rep happens to use the same id for a dossier of his own.
    zhao.create_dossier_with_id(&acme, &[set("profile.name", "South Co")])
        .unwrap();

    assert!(laptop.sync_status().unwrap().unsynced_changes > 0);
    sync_all(&mut [&mut laptop, &mut phone, &mut wang, &mut zhao]);

    // Every replica of the team, and the relay, holds the same documents.
    for id in [&acme, &beta] {
        let h = heads(&laptop, id);
        assert_eq!(heads(&phone, id), h, "phone differs on {id}");
        assert_eq!(heads(&wang, id), h, "wang differs on {id}");
        assert_eq!(
            relay_heads(&relay, "north", id),
            Some(h),
            "relay differs on {id}"
        );
    }
    for d in [&laptop, &phone, &wang] {
        let status = d.sync_status().unwrap();
        assert_eq!(status.unsynced_changes, 0, "everything acknowledged");
        assert!(status.last_sync_ms.is_some());
    }
    // Every edit is present.
    let view = wang.dossier(&acme).unwrap();
    let d = &view.dossier;
    assert!(d.interactions.contains_key(&i_laptop) && d.interactions.contains_key(&i_phone));
    assert_eq!(d.profile.industry, "machinery");
    assert_eq!(d.profile.region, "华东");
    let merged = d.interactions[&notes].notes.to_string();
    assert!(
        merged.starts_with("[phone] first visit") && merged.ends_with("[laptop]"),
        "both text edits kept: {merged}"
    );
    assert_eq!(wang.dossier(&beta).unwrap().dossier.profile.region, "华南");
    // The stage clash is a conflict for the user, with both values.
    let clash: Vec<_> = view
        .conflicts
        .iter()
        .filter(|c| c.path == format!("deals.{deal}.stage"))
        .collect();
    assert_eq!(clash.len(), 1, "conflicts: {:?}", view.conflicts);
    let values: Vec<String> = clash[0]
        .values
        .iter()
        .map(|v| v.value.to_string())
        .collect();
    assert!(
        values.iter().any(|v| v.contains("evaluation"))
            && values.iter().any(|v| v.contains("lost"))
    );
    // Lists on other devices show the conflict without opening the document.
    assert_eq!(phone.summary(&acme).unwrap().conflicts, 1);

    // The other team: its own dossier only, untouched by the north team's, and vice versa.
    assert_eq!(zhao.ids().unwrap(), vec![acme.clone()]);
    assert_eq!(
        zhao.dossier(&acme).unwrap().dossier.profile.name,
        "South Co"
    );
    assert!(zhao.dossier(&acme).unwrap().dossier.interactions.is_empty());
    assert_eq!(
        laptop.dossier(&acme).unwrap().dossier.profile.name,
        "华东机械"
    );
    assert_eq!(relay_heads(&relay, "south", &beta), None);

    // Asked directly, the relay answers the same for another team's dossier and for one
    // that never existed.
    let token = zhao.relay_config().unwrap().unwrap().token;
    let answers = raw_session(&relay, &token, |_| {
        vec![
            hello(),
            ToRelay::Fetch {
                docs: vec![beta.clone()],
            },
            ToRelay::Fetch {
                docs: vec!["never-existed".into()],
            },
        ]
    });
    let unavailable: Vec<_> = answers
        .iter()
        .filter_map(|m| match m {
            ToDevice::Unavailable { docs } => Some(docs.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        unavailable.concat(),
        vec![beta.clone(), "never-existed".to_string()]
    );
    assert!(!answers.iter().any(|m| matches!(m, ToDevice::Snapshots(_))));
}

fn hello() -> ToRelay {
    ToRelay::Hello {
        since: 0,
        status: DeviceStatus::default(),
    }
}

/// Connect with `token`, send the frames `script` gives, and collect what comes back until
/// the relay has been quiet for a moment.
fn raw_session(
    relay: &RelayProcess,
    token: &str,
    script: impl FnOnce(()) -> Vec<ToRelay>,
) -> Vec<ToDevice> {
    let frames: Vec<Vec<u8>> = script(()).iter().map(wire::encode).collect();
    let (received, _) = raw_exchange(
        relay,
        token,
        frames.into_iter().map(Message::binary).collect(),
        Duration::from_millis(1500),
    );
    received
        .into_iter()
        .filter_map(|m| match m {
            Message::Binary(b) => wire::decode::<ToDevice>(&b).ok(),
            _ => None,
        })
        .collect()
}

#[test]
fn hostile_frames_close_one_connection_and_the_relay_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path()).unwrap();
    let mut good =
        enrolled_device(&relay, &dir.path().join("good"), "north", "li", "laptop").unwrap();
    let mut other =
        enrolled_device(&relay, &dir.path().join("other"), "north", "wang", "desk").unwrap();
    let token = other.relay_config().unwrap().unwrap().token;
    let id = good.create_dossier(&[set("profile.name", "Acme")]).unwrap();
    sync_once(&mut good).unwrap();

    let cases: Vec<(&str, Vec<Message>, u16)> = vec![
        (
            "garbage",
            vec![Message::binary(vec![0xde, 0xad, 0xbe, 0xef, 0x00])],
            close::PROTOCOL,
        ),
        (
            "empty",
            vec![Message::binary(Vec::<u8>::new())],
            close::PROTOCOL,
        ),
        (
            "truncated",
            vec![Message::binary(wire::encode(&hello())[..3].to_vec())],
            close::PROTOCOL,
        ),
        (
            "newer version",
            vec![Message::binary({
                let mut f = wire::encode(&hello());
                f[0] = 99;
                f
            })],
            close::PROTOCOL,
        ),
        ("text", vec![Message::text("hello")], close::PROTOCOL),
        (
            "sync before hello",
            vec![Message::binary(wire::encode(&ToRelay::Sync {
                doc: id.clone(),
                data: vec![],
                done: false,
            }))],
            close::PROTOCOL,
        ),
        (
            "second hello",
            vec![
                Message::binary(wire::encode(&hello())),
                Message::binary(wire::encode(&hello())),
            ],
            close::PROTOCOL,
        ),
        (
            "bad sync message",
            vec![
                Message::binary(wire::encode(&hello())),
                Message::binary(wire::encode(&ToRelay::Sync {
                    doc: id.clone(),
                    data: vec![0x42, 1, 2, 3],
                    done: false,
                })),
            ],
            close::PROTOCOL,
        ),
        (
            "bad dossier id",
            vec![
                Message::binary(wire::encode(&hello())),
                Message::binary(wire::encode(&ToRelay::Fetch {
                    docs: vec!["../../etc/passwd".into()],
                })),
            ],
            close::PROTOCOL,
        ),
        (
            "fetch flood",
            vec![
                Message::binary(wire::encode(&hello())),
                Message::binary(wire::encode(&ToRelay::Fetch {
                    docs: (0..5000).map(|i| format!("d{i}")).collect(),
                })),
            ],
            close::PROTOCOL,
        ),
        (
            "oversized",
            vec![Message::binary(vec![1u8; 9 << 20])],
            close::TOO_BIG,
        ),
        (
            "upload of bytes that are not a document",
            upload("d-garbage", vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3], None),
            close::PROTOCOL,
        ),
        (
            "upload vouched for, of damaged bytes",
            upload(
                "d-damaged",
                {
                    let mut saved = automerge::AutoCommit::new().save();
                    let last = saved.len() - 1;
                    saved[last] ^= 0x55;
                    saved
                },
                Some(Vouched {
                    heads: vec![[7; 32]],
                    row: row_of("d-damaged"),
                }),
            ),
            close::PROTOCOL,
        ),
        (
            "upload vouched for with another dossier's row",
            upload(
                "d-mine",
                automerge::AutoCommit::new().save(),
                Some(Vouched {
                    heads: vec![[7; 32]],
                    row: row_of("d-theirs"),
                }),
            ),
            close::PROTOCOL,
        ),
        (
            "upload of a document that is not a dossier",
            upload(
                "d-not-a-dossier",
                {
                    use automerge::transaction::Transactable;
                    let mut doc = automerge::AutoCommit::new();
                    doc.put(automerge::ROOT, "profile", 42).unwrap();
                    doc.save()
                },
                None,
            ),
            close::PROTOCOL,
        ),
        (
            "upload flood",
            vec![
                Message::binary(wire::encode(&hello())),
                Message::binary(wire::encode(&ToRelay::Upload(
                    (0..1100)
                        .map(|i| Upload {
                            doc: format!("d{i}"),
                            bytes: Vec::new(),
                            vouched: None,
                        })
                        .collect(),
                ))),
            ],
            close::PROTOCOL,
        ),
    ];
    for (name, frames, want) in cases {
        let (_, closed) = raw_exchange(&relay, &token, frames, Duration::from_millis(1500));
        let (code, reason) =
            closed.unwrap_or_else(|| panic!("{name}: the relay did not close with a reason"));
        assert_eq!(code, want, "{name}: closed with {code} {reason}");
        assert!(!reason.is_empty(), "{name}: a close reason in words");
        assert!(relay.healthy(), "{name}: the relay is still up");
    }

    // A flood of sync rounds on one dossier is cut off by the per-dossier round limit.
    let mut flood = vec![Message::binary(wire::encode(&hello()))];
    use automerge::sync::SyncDoc;
    let empty_sync = automerge::AutoCommit::new()
        .sync()
        .generate_sync_message(&mut automerge::sync::State::new())
        .unwrap();
    for _ in 0..200 {
        flood.push(Message::binary(wire::encode(&ToRelay::Sync {
            doc: "flooded".into(),
            data: empty_sync.clone().encode(),
            done: false,
        })));
    }
    let (_, closed) = raw_exchange(&relay, &token, flood, Duration::from_millis(1500));
    let (code, reason) = closed.expect("flood closed");
    assert_eq!(code, close::PROTOCOL, "{reason}");
    assert!(reason.contains("rounds"), "{reason}");

    // A wrong token never gets a socket.
    let err = sync_once_with_token(&mut other, &relay, "not-a-token");
    assert!(matches!(err, Err(SyncError::Refused(_))), "{err:?}");

    // Through all of it, the relay kept serving the well-behaved device, and kept nothing
    // of what it refused.
    sync_once(&mut other).unwrap();
    assert_eq!(other.ids().unwrap(), vec![id]);
    assert!(relay.healthy());
}

fn sync_once_with_token(
    engine: &mut Engine,
    relay: &RelayProcess,
    token: &str,
) -> Result<(), SyncError> {
    let relay = fieldbook_app::sync::RelayConfig {
        url: relay.url.clone(),
        token: token.into(),
        trust: relay.trust(),
    };
    fieldbook_tests::relay::sync_to(engine, &relay).map(|_| ())
}

#[test]
fn a_revoked_device_is_disconnected_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path()).unwrap();
    let mut phone =
        enrolled_device(&relay, &dir.path().join("phone"), "north", "li", "phone").unwrap();
    let relay_cfg = phone.relay_config().unwrap().unwrap();
    sync_once(&mut phone).unwrap();
    let listing = relay.admin(&["devices", "--team", "north"]).unwrap();
    let device_id = listing
        .lines()
        .find(|l| l.contains("phone"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();

    // Connected live; the admin revokes it from another process.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        let (_stop_tx, mut stop) = tokio::sync::watch::channel(false);
        let mut handle = &mut phone;
        let live = fieldbook_app::sync::sync_with_relay(
            &mut handle,
            &relay_cfg,
            fieldbook_app::sync::Mode::Live,
            &mut stop,
            |_| {},
        );
        let revoke = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            relay.admin(&["revoke", &device_id]).unwrap();
            std::future::pending::<()>().await
        };
        let started = std::time::Instant::now();
        tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(10), live) => (r, started.elapsed()),
            _ = revoke => unreachable!(),
        }
    });
    let (outcome, elapsed) = result;
    let err = outcome.expect("closed within 10 s").unwrap_err();
    assert!(
        matches!(&err, SyncError::Closed { code, .. } if *code == close::REVOKED),
        "{err:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "closed promptly: {elapsed:?}"
    );
    let again = sync_once(&mut phone);
    assert!(
        matches!(again, Err(SyncError::Revoked { wiped: true, .. })),
        "{again:?}"
    );
}

#[test]
fn a_half_sent_request_is_dropped_and_shutdown_is_graceful() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut relay =
        RelayProcess::start_tls_with(RELAY.as_ref(), dir.path(), &["--header-timeout", "1"])
            .unwrap();
    let addr = relay.url.trim_start_matches("https://").to_string();
    let dropped_after = |mut stream: Box<dyn Read>| {
        let started = std::time::Instant::now();
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        started.elapsed()
    };
    let connect = || {
        let s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    // A socket that never starts its TLS handshake.
    let took = dropped_after(Box::new(connect()));
    assert!(
        took < Duration::from_secs(5),
        "the relay dropped a silent socket after {took:?}"
    );
    // Slowloris inside TLS: handshake done, headers started, never finished.
    let tls = fieldbook_app::sync::client_config(&relay.trust()).unwrap();
    let host = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut slow =
        rustls::StreamOwned::new(rustls::ClientConnection::new(tls, host).unwrap(), connect());
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let took = dropped_after(Box::new(slow));
    assert!(
        took < Duration::from_secs(5),
        "the relay dropped the half-sent request after {took:?}"
    );
    assert!(relay.healthy());

    // A live device is told the relay is going away, and the process exits cleanly.
    let mut phone =
        enrolled_device(&relay, &dir.path().join("phone"), "north", "li", "phone").unwrap();
    let cfg = phone.relay_config().unwrap().unwrap();
    let outcome = std::thread::scope(|s| {
        let live = s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (_stop_tx, mut stop) = tokio::sync::watch::channel(false);
            let mut handle = &mut phone;
            rt.block_on(fieldbook_app::sync::sync_with_relay(
                &mut handle,
                &cfg,
                fieldbook_app::sync::Mode::Live,
                &mut stop,
                |_| {},
            ))
        });
        std::thread::sleep(Duration::from_millis(500));
        let clean = relay.terminate().unwrap();
        (clean, live.join().unwrap())
    });
    assert!(outcome.0, "the relay exits with success on SIGTERM");
    assert!(
        matches!(&outcome.1, Err(SyncError::Closed { code, .. }) if *code == close::GOING_AWAY),
        "{:?}",
        outcome.1
    );
}

#[test]
fn the_background_loop_reconnects_and_sends_offline_edits() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path()).unwrap();
    let laptop =
        enrolled_device(&relay, &dir.path().join("laptop"), "north", "li", "laptop").unwrap();
    let mut phone =
        enrolled_device(&relay, &dir.path().join("phone"), "north", "li", "phone").unwrap();
    let laptop = Arc::new(Mutex::new(laptop));
    let background = Background::start(laptop.clone());
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let started = std::time::Instant::now();
        while !f() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "waited too long for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let online = || background.is_connected();
    wait_for("the first connection", &online);

    // Online: an edit goes out by itself.
    let id = laptop
        .lock()
        .unwrap()
        .create_dossier(&[set("profile.name", "Acme")])
        .unwrap();
    wait_for("the edit to be acknowledged", &|| {
        laptop
            .lock()
            .unwrap()
            .sync_status()
            .unwrap()
            .unsynced_changes
            == 0
    });

    // The relay goes away; the laptop keeps working and counts what waits.
    relay.kill();
    wait_for("the loop to notice", &|| !online());
    laptop
        .lock()
        .unwrap()
        .set(&id, &[set("profile.industry", "offline edit")])
        .unwrap();
    assert_eq!(
        laptop
            .lock()
            .unwrap()
            .sync_status()
            .unwrap()
            .unsynced_changes,
        1
    );

    // Back: the loop reconnects by itself and sends it.
    relay.restart().unwrap();
    wait_for("the offline edit to be acknowledged", &|| {
        laptop
            .lock()
            .unwrap()
            .sync_status()
            .unwrap()
            .unsynced_changes
            == 0
    });
    sync_once(&mut phone).unwrap();
    assert_eq!(
        phone.dossier(&id).unwrap().dossier.profile.industry,
        "offline edit"
    );
    background.stop();
}

#[test]
fn a_dossier_created_offline_is_uploaded_whole_and_a_repeated_upload_merges() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, mut li, mut wang) = li_and_wang(dir.path());
    let id = li.create_dossier(&[set("profile.name", "Acme")]).unwrap();
    let report = sync_once(&mut li).unwrap();
    assert_eq!(relay_heads(&relay, "north", &id), Some(heads(&li, &id)));
    assert_eq!(
        li.sync_status().unwrap().unsynced_changes,
        0,
        "acknowledged"
    );
    // One frame up with the dossier, one answer: hello, welcome, upload, stored, and the
    // completion report the relay records before the device calls itself synced; not an
    // exchange of sync messages.
    assert!(report.round_trips <= 3, "{report:?}");

    // The same dossier uploaded again with an edit the relay lacks (a device whose first
    // answer was lost would do this): merged, not replaced, and said so.
    li.set(&id, &[set("profile.website", "acme.example")])
        .unwrap();
    let bytes = li.export_document(&id).unwrap();
    let stored = upload_as(
        &relay,
        &wang,
        Upload {
            doc: id.clone(),
            bytes,
            vouched: None,
        },
    );
    assert_eq!(stored.len(), 1);
    assert!(stored[0].merged);
    assert_eq!(relay_heads(&relay, "north", &id), Some(heads(&li, &id)));

    // Both devices end with the same dossier.
    sync_once(&mut wang).unwrap();
    sync_once(&mut li).unwrap();
    assert_eq!(heads(&wang, &id), heads(&li, &id));
    assert_eq!(
        wang.dossier(&id).unwrap().dossier.profile.website,
        "acme.example"
    );
}

/// A live edit goes up as it was made, with its projection, and is passed on as it is: the
/// relay stores it without opening the dossier and checks it afterwards; a colleague's
/// device stores it without an exchange and works its search text out later; a device that
/// arrives afterwards receives the relay's own projection, search text included.
#[test]
fn a_live_edit_is_passed_on_as_made_and_checked_afterwards() {
    use fieldbook_app::store::DossierStore;
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path()).unwrap();
    let mut li = enrolled_device(&relay, &dir.path().join("li"), "north", "li", "laptop").unwrap();
    let wang = enrolled_device(&relay, &dir.path().join("wang"), "north", "wang", "desk").unwrap();
    let observer =
        enrolled_device(&relay, &dir.path().join("obs"), "north", "zhou", "web").unwrap();
    let id = li.create_dossier(&[set("profile.name", "Acme")]).unwrap();
    sync_once(&mut li).unwrap();
    let wang = Arc::new(Mutex::new(wang));
    sync_once(&mut wang.lock().unwrap()).unwrap();

    // Wang's device stays connected; an observer's raw connection watches what is passed on.
    let background = Background::start(wang.clone());
    let started = std::time::Instant::now();
    while !background.is_connected() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "wang never connected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let token = observer.relay_config().unwrap().unwrap().token;
    let seen = std::thread::scope(|scope| {
        let watching = scope.spawn(|| raw_session(&relay, &token, |_| vec![hello()]));
        std::thread::sleep(Duration::from_millis(300));

        li.add_item(
            &id,
            "interactions",
            &[set("date", "2026-11-20"), set("notes", "谈了领导力课程")],
        )
        .unwrap();
        let report = sync_once(&mut li).unwrap();
        // Hello, push, completion report: no exchange of sync messages.
        assert!(report.round_trips <= 3, "{report:?}");
        watching.join().unwrap()
    });
    let forwarded = seen
        .iter()
        .find_map(|m| match m {
            ToDevice::Forward { changes, .. } if changes.doc == id => Some(*changes.clone()),
            _ => None,
        })
        .expect("the edit is passed on as it was made");
    assert_eq!(forwarded.projection.summary.interactions, 1);
    assert!(
        forwarded.projection.search_text.is_empty(),
        "devices do not send text"
    );

    let li_heads = li.store().heads(&id).unwrap();
    let started = std::time::Instant::now();
    while wang.lock().unwrap().store().heads(&id).unwrap() != li_heads {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never reached wang"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    background.stop();
    let mut wang = Arc::try_unwrap(wang).ok().unwrap().into_inner().unwrap();
    assert_eq!(wang.summary(&id).unwrap().interactions, 1);
    while wang.index_pending(100).unwrap() > 0 {}
    assert_eq!(
        wang.search("领导力", 10).unwrap().len(),
        1,
        "its text worked out"
    );

    // The relay checks what li vouched for, off the sync path.
    relay.wait_checked(Duration::from_secs(20)).unwrap();
    let mut late =
        enrolled_device(&relay, &dir.path().join("late"), "north", "zhao", "phone").unwrap();
    sync_once(&mut late).unwrap();
    assert_eq!(
        late.search("领导力", 10).unwrap().len(),
        1,
        "the relay's text"
    );
    assert_eq!(heads(&late, &id), heads(&li, &id));
}

/// A new dossier uploaded with what its device vouches it holds is stored as given (the relay
/// answers without opening it) and checked afterwards: where the device got its heads or its
/// row wrong, the relay's are written under a new sequence number.
#[test]
fn an_upload_vouched_for_is_stored_as_given_and_a_wrong_row_is_put_right() {
    use fieldbook_app::store::DossierStore;
    use fieldbook_relay::store::RelayStore;
    use fieldbook_relay::store::sqlite::SqliteRelayStore;
    let dir = tempfile::tempdir().unwrap();
    let (relay, mut li, mut wang) = li_and_wang(dir.path());

    // Li's own upload vouches for the dossier as li's store wrote it.
    let id = li
        .create_dossier(&[set("profile.name", "华东重工")])
        .unwrap();
    sync_once(&mut li).unwrap();
    let store = SqliteRelayStore::open(&relay.db_path()).unwrap();
    let team = store.team_id("north").unwrap().unwrap();
    assert_eq!(relay_heads(&relay, "north", &id), Some(heads(&li, &id)));
    relay.wait_checked(Duration::from_secs(20)).unwrap();
    let seq_after_li = store.doc_version(team, &id).unwrap().unwrap().seq;

    // A device that vouches for a wrong name and wrong heads is answered with what it said...
    let other = li.create_dossier(&[set("profile.name", "Acme")]).unwrap();
    let bytes = li.export_document(&other).unwrap();
    let mut row = li.store().board_row(&other).unwrap().unwrap();
    row.summary.name = "Not Acme".into();
    let stored = upload_as(
        &relay,
        &wang,
        Upload {
            doc: other.clone(),
            bytes,
            vouched: Some(Vouched {
                heads: vec![[9; 32]],
                row,
            }),
        },
    );
    assert_eq!(
        stored[0].heads,
        vec![[9; 32]],
        "answered without opening it"
    );

    // ...and the relay's check puts both right, under a sequence number devices are told of.
    relay.wait_checked(Duration::from_secs(20)).unwrap();
    let version = store.doc_version(team, &other).unwrap().unwrap();
    assert!(version.seq > seq_after_li + 1, "written again by the check");
    let true_heads = fieldbook_shared::sync::heads_to_bytes(&heads(&li, &other));
    assert_eq!(version.heads, true_heads);
    let board: Projection =
        serde_json::from_str(&store.board_row(team, &other).unwrap().unwrap()).unwrap();
    assert_eq!(board.summary.name, "Acme");
    sync_once(&mut wang).unwrap();
    assert_eq!(wang.summary(&other).unwrap().name, "Acme");
    assert_eq!(wang.summary(&id).unwrap().name, "华东重工");
}

/// Invite codes guessed from one address: four misses are free, the fifth closes enrolment
/// from that address for a while (429 with Retry-After), even to the right code; once open
/// again, the right code enrols. Codes carry 99 bits and are typed as four groups of five.
#[test]
fn guessing_invite_codes_closes_enrolment_from_that_address_for_a_while() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path()).unwrap();
    let code = relay.invite("north", "li", "rep").unwrap();
    assert_eq!(code.len(), 23, "{code}");
    let agent = relay.http();
    let enrol = |invite: &str| -> (u16, Option<u64>) {
        let body = serde_json::json!({ "invite": invite, "device_name": "laptop" });
        let response = agent
            .post(format!("{}/v1/enroll", relay.url))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
        let retry = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        (response.status().as_u16(), retry)
    };
    for guess in ["AAAAA-AAAAA-AAAAA-AAAAA", "BBBBB", "", "C"] {
        assert_eq!(enrol(guess), (403, None), "{guess:?}: refused, no wait yet");
    }
    let (status, retry) = enrol("DDDDD-DDDDD-DDDDD-DDDDD");
    assert_eq!(status, 429, "the fifth miss closes it");
    let wait = retry.expect("Retry-After");
    assert!((1..=5).contains(&wait), "{wait}");
    assert_eq!(enrol(&code).0, 429, "closed even to the right code");
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(
        enrol(&code.to_lowercase()).0,
        200,
        "open again: the code enrols"
    );
    assert_eq!(enrol(&code).0, 403, "and only once");
}

/// One device token opens a few sockets at most: a reconnect overlapping the old connection is
/// fine, a thousand are not (each holds buffers on the relay). A team's devices together open
/// at most what the relay allows a team (`--team-sockets`). A socket closed frees its place.
#[test]
fn one_device_opens_a_few_sockets_at_most_and_a_team_a_bounded_number() {
    let dir = tempfile::tempdir().unwrap();
    let relay =
        RelayProcess::start_tls_with(RELAY.as_ref(), dir.path(), &["--team-sockets", "6"]).unwrap();
    let li = enrolled_device(&relay, &dir.path().join("li"), "north", "li", "laptop").unwrap();
    let wang = enrolled_device(&relay, &dir.path().join("wang"), "north", "wang", "desk").unwrap();
    let zhou = enrolled_device(&relay, &dir.path().join("zhou"), "north", "zhou", "pad").unwrap();
    let zhao = enrolled_device(&relay, &dir.path().join("zhao"), "south", "zhao", "pad").unwrap();
    let token = |e: &fieldbook_app::Engine| e.relay_config().unwrap().unwrap().token;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let relay = &relay;
        let open =
            |token: String| async move { relay.open_socket(&token).await.map(|ws| (ws, ())) };
        let mut held = Vec::new();
        for i in 0..fieldbook_relay::http::SOCKETS_PER_DEVICE {
            let (ws, _) = open(token(&li))
                .await
                .unwrap_or_else(|e| panic!("socket {i}: {e}"));
            held.push(ws);
        }
        match open(token(&li)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status().as_u16(), 429)
            }
            other => panic!("one socket too many was not refused: {other:?}"),
        }
        // Another device of the team is not affected, until the team has its six.
        for _ in 0..2 {
            held.push(open(token(&wang)).await.unwrap().0);
        }
        match open(token(&zhou)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status().as_u16(), 429)
            }
            other => panic!("the team's seventh socket was not refused: {other:?}"),
        }
        // Another team is not affected at all.
        assert!(open(token(&zhao)).await.is_ok());
        // A socket closed frees its place.
        let mut first = held.remove(0);
        first.close(None).await.unwrap();
        while first.next().await.is_some() {}
        let mut reopened = None;
        for _ in 0..50 {
            if let Ok((ws, _)) = open(token(&li)).await {
                reopened = Some(ws);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(reopened.is_some(), "the place was never freed");
    });
}
