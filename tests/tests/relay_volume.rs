//! Volume in both directions at once, through a real relay process: a sync never hangs
//! whatever each side has to send, a device that stops reading is let go, and the relay's
//! record of a device's last sync is never behind what the device claims.
//!
//! Over TLS, as a team runs the relay, but for the device that stops reading: it speaks
//! WebSocket by hand on a bare socket with a small receive buffer, which TLS would only hide.

use std::io::Read;
use std::time::{Duration, Instant};

use fieldbook_app::Engine;
use fieldbook_app::sync::{LinkState, Mode, RelayConfig, SyncError, sync_with_relay};
use fieldbook_shared::sync::wire::{self, DeviceStatus, ToRelay};
use fieldbook_tests::link::NarrowLink;
use fieldbook_tests::long_dossiers;
use fieldbook_tests::relay::{RelayProcess, enrolled_device, same_everywhere, sync_within};

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

/// Long enough for megabytes on a busy 2-core machine; short enough that a hang fails fast.
const DEADLINE: Duration = Duration::from_secs(240);

fn sync(engine: &mut Engine) -> Result<(), SyncError> {
    let relay = engine.relay_config()?.ok_or(SyncError::NotEnrolled)?;
    sync_within(engine, &relay, DEADLINE).map(|_| ())
}

/// Sync through `link` rather than straight to the relay.
fn sync_through(engine: &mut Engine, link: &NarrowLink) -> Result<(), SyncError> {
    let relay = engine.relay_config()?.ok_or(SyncError::NotEnrolled)?;
    // The link passes bytes on as they are: TLS goes through it to the relay.
    let url = match relay.url.starts_with("https://") {
        true => link.url().replacen("http://", "https://", 1),
        false => link.url(),
    };
    let relay = RelayConfig { url, ..relay };
    sync_within(engine, &relay, DEADLINE).map(|_| ())
}

fn unsynced_bytes(engine: &Engine) -> u64 {
    use fieldbook_app::store::DossierStore;
    engine
        .store()
        .unsynced()
        .unwrap()
        .iter()
        .map(|id| engine.export_document(id).unwrap().len() as u64)
        .sum()
}

/// Two reps back from the road at once, each with megabytes the other and the relay lack,
/// while the relay holds megabytes of a third colleague's that neither has: each connection
/// carries megabytes both ways at the same time, and both finish. Each syncs over a narrow
/// link (sockets of a few KiB, not loopback's tens of megabytes), so a side that wrote
/// without reading would stop the connection here as it did in the field.
#[test]
fn megabytes_both_ways_on_two_devices_at_once_both_finish_identical() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path()).unwrap();
    let mut li = enrolled_device(&relay, &dir.path().join("li"), "north", "li", "laptop").unwrap();
    let mut wang =
        enrolled_device(&relay, &dir.path().join("wang"), "north", "wang", "laptop").unwrap();
    let mut zhao =
        enrolled_device(&relay, &dir.path().join("zhao"), "north", "zhao", "laptop").unwrap();

    zhao.create_many(&long_dossiers(3, 100, "zhao", 30))
        .unwrap();
    sync(&mut zhao).unwrap();
    li.create_many(&long_dossiers(1, 150, "li", 30)).unwrap();
    wang.create_many(&long_dossiers(2, 150, "wang", 30))
        .unwrap();
    let (li_up, wang_up) = (unsynced_bytes(&li), unsynced_bytes(&wang));
    assert!(
        li_up > 3 << 20 && wang_up > 3 << 20,
        "{li_up} and {wang_up} bytes"
    );

    let relay_addr = relay.url.trim_start_matches("https://").parse().unwrap();
    let (link_li, link_wang) = (
        NarrowLink::start(relay_addr, 8 * 1024).unwrap(),
        NarrowLink::start(relay_addr, 8 * 1024).unwrap(),
    );
    let started = Instant::now();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| sync_through(&mut li, &link_li));
        let b = s.spawn(|| sync_through(&mut wang, &link_wang));
        (a.join().unwrap(), b.join().unwrap())
    });
    a.expect("li's sync finishes");
    b.expect("wang's sync finishes");
    eprintln!(
        "two devices, {:.1} + {:.1} MiB up and more down each, synced in {:.1} s",
        li_up as f64 / 1048576.0,
        wang_up as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    for device in [&li, &wang] {
        assert_eq!(device.sync_status().unwrap().unsynced_changes, 0);
    }
    // Each now lacks only what the other uploaded meanwhile.
    for device in [&mut li, &mut wang, &mut zhao] {
        sync(device).unwrap();
    }
    let n = same_everywhere(&relay, "north", &[&li, &wang, &zhao]).unwrap();
    assert_eq!(n, 400);
}

/// The relay killed the moment a device has everything of a large download, before the device
/// has told it so: the device holds every dossier but does not call itself synced, and the
/// relay's record says "never"; after a restart both agree that it synced.
#[test]
fn a_relay_killed_at_the_end_of_a_download_never_leaves_a_false_last_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path()).unwrap();
    let mut laptop =
        enrolled_device(&relay, &dir.path().join("laptop"), "north", "li", "laptop").unwrap();
    laptop
        .create_many(&long_dossiers(5, 120, "li", 20))
        .unwrap();
    sync(&mut laptop).unwrap();
    let mut phone =
        enrolled_device(&relay, &dir.path().join("phone"), "north", "li", "phone").unwrap();

    let config = phone.relay_config().unwrap().unwrap();
    let pid = relay.pid().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let mut downloading = false;
    let mut killed = false;
    let result = runtime.block_on(async {
        let mut handle = &mut phone;
        let sync = sync_with_relay(&mut handle, &config, Mode::Once, &mut stop, |state| {
            if let LinkState::Connected { remaining } = state {
                downloading |= remaining > 0;
                if downloading && remaining == 0 && !killed {
                    // Everything is in: the completion report is queued, not yet sent.
                    let status = std::process::Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .status()
                        .unwrap();
                    assert!(status.success());
                    killed = true;
                }
            }
        });
        tokio::time::timeout(DEADLINE, sync).await
    });
    assert!(killed, "the download was seen to end");
    let result = result.expect("no hang");
    assert!(
        result.is_err(),
        "a sync the relay never recorded is not reported as done"
    );
    assert_eq!(
        phone.ids().unwrap().len(),
        120,
        "the phone holds everything"
    );
    assert_eq!(
        phone.sync_status().unwrap().last_sync_ms,
        None,
        "and does not claim a sync"
    );
    relay.kill();
    let devices = relay.admin(&["devices", "--team", "north"]).unwrap();
    let phone_line = devices.lines().find(|l| l.contains("phone")).unwrap();
    assert!(phone_line.ends_with("never"), "{devices}");

    relay.restart().unwrap();
    sync(&mut phone).unwrap();
    assert!(phone.sync_status().unwrap().last_sync_ms.is_some());
    let devices = relay.admin(&["devices", "--team", "north"]).unwrap();
    let phone_line = devices.lines().find(|l| l.contains("phone")).unwrap();
    assert!(!phone_line.ends_with("never"), "{devices}");
    same_everywhere(&relay, "north", &[&laptop, &phone]).unwrap();
}

/// A device that asks for megabytes and then reads nothing: the relay stops taking its input
/// once its outbox is full, holds no more than that for it (64 KiB here, against 12 MB asked
/// for), and lets it go after the write stall (2 s here, plus the time its last frame would
/// take on the slowest link), while serving everyone else.
#[test]
fn a_device_that_stops_reading_is_let_go_and_costs_the_relay_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start_with(
        RELAY.as_ref(),
        dir.path(),
        &["--write-stall", "2", "--outbox-kib", "64"],
    )
    .unwrap();
    let mut laptop =
        enrolled_device(&relay, &dir.path().join("laptop"), "north", "li", "laptop").unwrap();
    laptop
        .create_many(&long_dossiers(9, 400, "li", 30))
        .unwrap();
    sync(&mut laptop).unwrap();
    // The relay's check of the new dossiers, which costs memory of its own, is done.
    relay.wait_checked(Duration::from_secs(60)).unwrap();
    let ids = laptop.ids().unwrap();
    let rss_before = fieldbook_tests::rss_kib(relay.pid().unwrap()).unwrap();

    // A raw WebSocket client over a socket with a small receive buffer that it never reads.
    let phone = enrolled_device(&relay, &dir.path().join("phone"), "north", "li", "phone").unwrap();
    let token = phone.relay_config().unwrap().unwrap().token;
    let addr = relay.url.trim_start_matches("http://").to_string();
    let mut socket = small_buffer_socket(&addr);
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let request = format!(
        "GET /v1/sync HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    std::io::Write::write_all(&mut socket, request.as_bytes()).unwrap();
    let mut frames = vec![ToRelay::Hello {
        since: 0,
        status: DeviceStatus::default(),
    }];
    frames.extend(
        ids.chunks(wire::MAX_FETCH_IDS)
            .map(|c| ToRelay::Fetch { docs: c.to_vec() }),
    );
    for frame in &frames {
        std::io::Write::write_all(&mut socket, &masked_binary(&wire::encode(frame))).unwrap();
    }

    // Twelve megabytes asked for; wait past the stall without reading a byte. The relay's
    // frames are a dossier or two each here (32 KiB of bulk room): writing the one in hand
    // and the one before it may take 2 s plus about 16 s at the slowest link's pace.
    std::thread::sleep(Duration::from_secs(24));
    let rss_stalled = fieldbook_tests::rss_kib(relay.pid().unwrap()).unwrap();
    // Everyone else is served meanwhile.
    laptop
        .set(
            &ids[0],
            &[fieldbook_shared::patch::Assignment {
                path: "profile.industry".into(),
                value: "still served".into(),
            }],
        )
        .unwrap();
    sync(&mut laptop).unwrap();
    // The relay has let the reader go: reading now drains what was buffered, then the end.
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let ended = loop {
        match socket.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(e) => panic!("the connection was not closed: {e} after {received} bytes"),
        }
    };
    assert!(ended);
    let asked: usize = ids
        .iter()
        .map(|id| laptop.export_document(id).unwrap().len())
        .sum();
    eprintln!(
        "asked for {} KiB, received {} KiB before the relay let go; relay RSS {rss_before} → {rss_stalled} KiB",
        asked / 1024,
        received / 1024
    );
    assert!(
        received < asked / 2,
        "the relay stopped producing for a reader that did not read"
    );
    // Held in the relay for it, at most: the outbox, frames being written, the socket's
    // buffers. Had the relay buffered what was asked for, it would hold most of 12 MB.
    assert!(
        rss_stalled < rss_before + (asked / 1024 / 4) as u64,
        "relay RSS {rss_before} → {rss_stalled} KiB for {} KiB asked",
        asked / 1024
    );
}

/// A TCP connection whose receive buffer holds a few KiB: what it does not read stays with
/// the sender.
fn small_buffer_socket(addr: &str) -> std::net::TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(addr.parse().unwrap()).await.unwrap()
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// A client's WebSocket binary frame (masked, as a client must).
fn masked_binary(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x82u8];
    let len = payload.len();
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        frame.push(0x80 | 126);
        frame.extend((len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend((len as u64).to_be_bytes());
    }
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}
