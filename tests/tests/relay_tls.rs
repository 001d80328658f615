//! TLS end to end: a real relay process serving HTTPS/WSS with a certificate from a test CA,
//! and the real `fieldbook` CLI enrolling and syncing over it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fieldbook_app::sync::{LinkState, SyncError, Trust};
use fieldbook_tests::relay::RelayProcess;
use fieldbook_tests::tls::{TestCa, Validity};

const RELAY: &str = env!("CARGO_BIN_EXE_relay");
const CLI: &str = env!("CARGO_BIN_EXE_device_cli");

fn fieldbook(dir: &Path, args: &[&str]) -> Output {
    Command::new(CLI)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("FIELDBOOK_TODAY", "2026-11-23")
        .env_remove("FIELDBOOK_CA_FILE")
        .env(
            "FIELDBOOK_KEY_FILE",
            fieldbook_app::secrets::key_file_beside(dir),
        )
        .output()
        .expect("run fieldbook")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = fieldbook(dir, args);
    assert!(
        out.status.success(),
        "fieldbook {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The command fails, quickly, with one line on standard error; returns that line.
fn fails(dir: &Path, args: &[&str]) -> String {
    let started = Instant::now();
    let out = fieldbook(dir, args);
    let took = started.elapsed();
    assert!(!out.status.success(), "fieldbook {args:?} succeeded");
    assert!(took < Duration::from_secs(20), "{args:?} took {took:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

fn tls_relay(dir: &Path, ca: &TestCa, hosts: &[&str], validity: Validity) -> RelayProcess {
    let (cert, key) = ca.issue(&dir.join("pki"), hosts, validity).unwrap();
    RelayProcess::start_with(
        RELAY.as_ref(),
        dir,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .unwrap()
}

#[test]
fn reps_enrol_and_sync_over_tls_trusting_the_teams_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("East team CA").unwrap();
    let ca_file = ca.write(&dir.path().join("team-ca.pem")).unwrap();
    let relay = tls_relay(
        dir.path(),
        &ca,
        &["localhost", "127.0.0.1"],
        Validity::Current,
    );
    assert!(relay.url.starts_with("https://127.0.0.1:"), "{}", relay.url);
    let port = relay.url.rsplit(':').next().unwrap();

    // One rep by IP address, one by name: the certificate covers both.
    let (li, wang) = (dir.path().join("li"), dir.path().join("wang"));
    for (device, user, url) in [
        (&li, "li", relay.url.clone()),
        (&wang, "wang", format!("https://localhost:{port}/")),
    ] {
        let code = relay.invite("east", user, "rep").unwrap();
        let enrolled = ok(
            device,
            &[
                "enroll",
                &url,
                &code,
                "--ca-file",
                ca_file.to_str().unwrap(),
            ],
        );
        assert!(enrolled.contains("enrolled as"), "{enrolled}");
    }
    ok(&li, &["new", "--name", "杭州东兴精密机械有限公司"]);
    ok(&li, &["sync"]);
    ok(&wang, &["sync"]);
    let listed = ok(&wang, &["list"]);
    assert!(listed.contains("杭州东兴精密机械有限公司"), "{listed}");
    // The CA was kept with the enrolment: later syncs need no flag.
    let status = ok(&li, &["status"]);
    assert!(status.contains("nothing waiting to be sent"), "{status}");
}

#[test]
fn certificate_problems_are_one_line_errors_naming_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("East team CA").unwrap();
    let ca_file = ca.write(&dir.path().join("team-ca.pem")).unwrap();
    let ca_arg = ca_file.to_str().unwrap();
    let device = dir.path().join("device");

    // The platform does not know the team's CA: not trusted without --ca-file.
    let good = tls_relay(
        &dir.path().join("good"),
        &ca,
        &["localhost", "127.0.0.1"],
        Validity::Current,
    );
    let code = good.invite("east", "li", "rep").unwrap();
    let e = fails(&device, &["enroll", &good.url, &code]);
    assert!(
        e.contains("127.0.0.1") && e.contains("not signed by an authority"),
        "{e}"
    );
    // The invite was not used up by the refused attempt: with the CA it works.
    ok(&device, &["enroll", &good.url, &code, "--ca-file", ca_arg]);

    let expired = tls_relay(
        &dir.path().join("expired"),
        &ca,
        &["127.0.0.1"],
        Validity::Expired,
    );
    let e = fails(
        &dir.path().join("d2"),
        &["enroll", &expired.url, "X", "--ca-file", ca_arg],
    );
    assert!(e.contains("127.0.0.1") && e.contains("expired"), "{e}");

    let elsewhere = tls_relay(
        &dir.path().join("elsewhere"),
        &ca,
        &["relay.example.com"],
        Validity::Current,
    );
    let e = fails(
        &dir.path().join("d3"),
        &["enroll", &elsewhere.url, "X", "--ca-file", ca_arg],
    );
    assert!(e.contains("not issued for this host name"), "{e}");

    // https:// to a relay serving plain HTTP.
    let plain = RelayProcess::start(RELAY.as_ref(), &dir.path().join("plain")).unwrap();
    let as_https = plain.url.replace("http://", "https://");
    let e = fails(&dir.path().join("d4"), &["enroll", &as_https, "X"]);
    assert!(e.contains("did not answer in TLS"), "{e}");

    // Plain http:// to another machine: refused before anything is sent, unless --insecure.
    let e = fails(
        &dir.path().join("d5"),
        &["enroll", "http://192.0.2.7:7878", "X"],
    );
    assert!(e.contains("--insecure") && e.contains("unencrypted"), "{e}");

    // A CA file that is not one.
    std::fs::write(dir.path().join("junk.pem"), "hello").unwrap();
    let junk = dir.path().join("junk.pem");
    let e = fails(
        &dir.path().join("d6"),
        &[
            "enroll",
            &good.url,
            "X",
            "--ca-file",
            junk.to_str().unwrap(),
        ],
    );
    assert!(e.contains("no PEM certificate"), "{e}");
}

#[test]
fn a_renewed_certificate_is_taken_on_sighup_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (
        TestCa::new("old CA").unwrap(),
        TestCa::new("new CA").unwrap(),
    );
    let pki = dir.path().join("pki");
    let relay = tls_relay(dir.path(), &old_ca, &["127.0.0.1"], Validity::Current);
    let pid = relay.pid().unwrap().to_string();
    let hangup = || {
        let status = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        assert!(status.success());
        // The relay reads the files on its own task: give it a moment.
        std::thread::sleep(Duration::from_millis(500));
    };

    // A device enrolled while the old certificate was served.
    let mut device = fieldbook_tests::device(&dir.path().join("device"), "li", "laptop").unwrap();
    let code = relay.invite("east", "li", "rep").unwrap();
    let old_trust = Trust {
        ca_pem: Some(old_ca.pem()),
        insecure: false,
    };
    fieldbook_app::sync::enroll(&mut device, &relay.url, &code, &old_trust).unwrap();
    fieldbook_tests::relay::sync_once(&mut device).unwrap();

    // Garbage in the files, then SIGHUP: refused, the old certificate stays in force.
    std::fs::write(pki.join("cert.pem"), "not a certificate").unwrap();
    hangup();
    fieldbook_tests::relay::sync_once(&mut device).expect("the old certificate still served");

    // The renewed certificate (from another CA) is served after SIGHUP, without a restart.
    new_ca
        .issue(&pki, &["127.0.0.1"], Validity::Current)
        .unwrap();
    hangup();
    match fieldbook_tests::relay::sync_once(&mut device) {
        Err(SyncError::Certificate { host, reason }) => {
            assert_eq!(host, "127.0.0.1");
            assert!(reason.contains("not signed by an authority"), "{reason}");
        }
        other => panic!("expected an untrusted certificate, got {other:?}"),
    }
    let mut relay_config = device.relay_config().unwrap().unwrap();
    relay_config.trust.ca_pem = Some(new_ca.pem());
    fieldbook_tests::relay::sync_to(&mut device, &relay_config).expect("the new certificate");
    assert_eq!(relay.pid().unwrap().to_string(), pid, "same process");

    // The app's background sync, meeting a certificate it does not trust, says so and does
    // not hammer the relay: the next attempt is minutes away (or at the next enrolment).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (states_tx, mut states) = tokio::sync::watch::channel(LinkState::Connecting);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let offline = runtime.block_on(async {
        let background = fieldbook_app::sync::run_background(&mut device, states_tx, stop);
        let watch = async {
            loop {
                states.changed().await.unwrap();
                if let LinkState::Offline { error, retry_in_ms } = states.borrow().clone() {
                    return (error, retry_in_ms);
                }
            }
        };
        tokio::select! {
            _ = background => panic!("the background sync ended by itself"),
            got = tokio::time::timeout(Duration::from_secs(20), watch) => got.expect("offline within 20 s"),
        }
    });
    let _ = stop_tx.send(true);
    let (error, retry_in_ms) = offline;
    let error = error.unwrap_or_default();
    assert!(error.contains("cannot be trusted"), "{error}");
    assert!(retry_in_ms >= 10 * 60 * 1000, "retry in {retry_in_ms} ms");
}
