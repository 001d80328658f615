//! The workload through our relay process and our device engines.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fieldbook_app::Engine;
use fieldbook_app::store::DossierStore;
use fieldbook_app::sync::{Mode, RelayConfig, SyncReport, sync_with_relay};
use fieldbook_app::synth;
use fieldbook_shared::Day;
use fieldbook_shared::patch::Assignment;
use fieldbook_shared::sync::wire::{self, DeviceStatus, ToRelay};
use fieldbook_tests::relay::{RelayProcess, enrolled_device, sync_to};
use fieldbook_tests::rss_kib;
use futures_util::{SinkExt, StreamExt};

use crate::proxy::{Proxy, Reading};
use crate::{EDITS, Edits, Run, Step, edited_index};

/// Our side at `n` dossiers, the relay on `database` (None: SQLite in `dir`); also returns the
/// seeded synthetic dossiers' Automerge files (the reference side is given exactly these).
pub fn run(
    bin: &Path,
    dir: &Path,
    database: Option<&str>,
    n: usize,
    seed: u64,
) -> Result<(Run, Vec<Vec<u8>>)> {
    let relay = RelayProcess::start_on(bin, dir, database, &[])?;
    let relay_addr: SocketAddr = relay
        .url
        .trim_start_matches("http://")
        .parse()
        .context("relay address")?;
    let through = |proxy: &Proxy, engine: &Engine| -> Result<RelayConfig> {
        let config = engine.relay_config()?.context("enrolled")?;
        Ok(RelayConfig {
            url: proxy.http_url(),
            ..config
        })
    };

    let today: Day = "2026-11-23".parse()?;
    let mut a = enrolled_device(&relay, &dir.join("a"), "north", "li", "laptop")?;
    for chunk in synth::dossiers(seed, n, &["li", "wang"], today).chunks(1000) {
        a.create_many(chunk)?;
    }
    let ids = a.ids()?;
    let docs = ids
        .iter()
        .map(|id| a.export_document(id))
        .collect::<Result<Vec<_>, _>>()?;

    let proxy = Proxy::start(relay_addr)?;
    let push = {
        let config = through(&proxy, &a)?;
        timed(&proxy, || sync_to(&mut a, &config).map_err(Into::into))?
    };
    // New dossiers are stored as the device vouched and checked off the sync path: timed
    // apart, and done before the pull (a pull meanwhile would check what it sends first).
    let checked_after = relay.wait_checked(Duration::from_secs(3600))?;

    let mut b = enrolled_device(&relay, &dir.join("b"), "north", "wang", "desk")?;
    let proxy = Proxy::start(relay_addr)?;
    let pull = {
        let config = through(&proxy, &b)?;
        timed(&proxy, || sync_to(&mut b, &config).map_err(Into::into))?
    };
    anyhow::ensure!(
        b.ids()?.len() == n,
        "pull brought {} of {n}",
        b.ids()?.len()
    );

    // One edit at a time: both devices stay connected; A edits, B's store shows it.
    let (proxy_a, proxy_b) = (Proxy::start(relay_addr)?, Proxy::start(relay_addr)?);
    let (config_a, config_b) = (through(&proxy_a, &a)?, through(&proxy_b, &b)?);
    let a = Arc::new(Mutex::new(a));
    let b = Arc::new(Mutex::new(b));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let live_a = live(a.clone(), config_a, stopped.clone());
    let live_b = live(b.clone(), config_b, stopped);
    std::thread::sleep(Duration::from_millis(1000));
    let (before_a, before_b) = (proxy_a.read(), proxy_b.read());
    let mut latencies = Vec::new();
    for round in 0..EDITS {
        let id = &ids[edited_index(round, ids.len())];
        let value = format!("edited-{round}");
        // The rep has the dossier in front of them, as the app's dossier screen does (the
        // reference's devices hold every document open).
        a.lock().expect("device a").dossier(id)?;
        let started = Instant::now();
        let edit = Assignment {
            path: "profile.website".into(),
            value: value.clone(),
        };
        a.lock().expect("device a").set(id, &[edit])?;
        let heads = a.lock().expect("device a").store().heads(id)?;
        // B has it when its store holds exactly A's state (read from the store, not the
        // document: opening the document would hold B's engine away from its sync).
        while b.lock().expect("device b").store().heads(id)? != heads {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "edit never arrived"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(
            b.lock()
                .expect("device b")
                .dossier(id)?
                .dossier
                .profile
                .website
                == value,
            "B holds A's heads but not the edit"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (up, down) = (
        proxy_a.read().since(before_a),
        proxy_b.read().since(before_b),
    );
    let _ = stop.send(true);
    live_a.join().expect("live a")?;
    live_b.join().expect("live b")?;
    let edits = Edits::new(
        latencies,
        up.bytes() / EDITS as u64,
        down.bytes() / EDITS as u64,
    );

    let mut b = Arc::try_unwrap(b)
        .ok()
        .context("device b released")?
        .into_inner()
        .expect("device b");
    let proxy = Proxy::start(relay_addr)?;
    let reconnect = {
        let config = through(&proxy, &b)?;
        timed(&proxy, || sync_to(&mut b, &config).map_err(Into::into))?
    };
    let server_rss_kib = rss_kib(relay.pid().context("relay pid")?)?;
    Ok((
        Run {
            push: Some(push),
            pull: Some(pull),
            edits: Some(edits),
            reconnect: Some(reconnect),
            server_rss_kib: Some(server_rss_kib),
            checked_after: Some(checked_after),
        },
        docs,
    ))
}

fn timed(proxy: &Proxy, sync: impl FnOnce() -> Result<SyncReport>) -> Result<Step> {
    let before: Reading = proxy.read();
    let started = Instant::now();
    sync()?;
    let seconds = started.elapsed().as_secs_f64();
    // The proxy forwards the last bytes an instant after the device has read them.
    std::thread::sleep(Duration::from_millis(50));
    Ok(Step {
        seconds,
        wire: proxy.read().since(before),
    })
}

fn live(
    engine: Arc<Mutex<Engine>>,
    config: RelayConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::thread::JoinHandle<Result<SyncReport>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut handle = engine;
        Ok(runtime.block_on(sync_with_relay(
            &mut handle,
            &config,
            Mode::Live,
            &mut stop,
            |_| {},
        ))?)
    })
}

/// The relay's resident memory per idle device: `count` authenticated connections that said
/// hello and then wait.
pub fn memory_per_connection(
    bin: &Path,
    dir: &Path,
    database: Option<&str>,
    count: usize,
) -> Result<f64> {
    let relay = RelayProcess::start_on(bin, dir, database, &[])?;
    // A device each: the relay lets one device hold only a few connections.
    relay.invite("north", "d0", "rep")?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(true)
        .build()
        .into();
    let mut tokens = Vec::with_capacity(count);
    for i in 0..count {
        let out = relay.admin(&["invite", "--team", "north", "--user", &format!("d{i}")])?;
        let code = out.split_whitespace().last().context("an invite code")?;
        let body = serde_json::json!({ "invite": code, "device_name": "phone" });
        let enrolled: serde_json::Value = agent
            .post(format!("{}/v1/enroll", relay.url))
            .header("content-type", "application/json")
            .send(body.to_string())?
            .body_mut()
            .read_json()?;
        tokens.push(enrolled["token"].as_str().context("a token")?.to_string());
    }
    let pid = relay.pid().context("relay pid")?;
    let url = format!("{}/v1/sync", relay.url.replace("http://", "ws://"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(pid)?;
    let sockets = runtime.block_on(async {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let hello = wire::encode(&ToRelay::Hello {
            since: 0,
            status: DeviceStatus::default(),
        });
        let mut sockets = Vec::with_capacity(count);
        for token in &tokens {
            let mut request = url.as_str().into_client_request()?;
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
            let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
            ws.send(tokio_tungstenite::tungstenite::Message::binary(
                hello.clone(),
            ))
            .await?;
            let _welcome = ws.next().await.context("welcome")??;
            sockets.push(ws);
        }
        anyhow::Ok(sockets)
    })?;
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(pid)?;
    drop(sockets);
    Ok(after.saturating_sub(before) as f64 / count as f64)
}
