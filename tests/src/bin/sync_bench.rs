//! `sync-bench`: sync through a real relay process at realistic sizes.
//!
//! For each size N: a device uploads N seeded synthetic dossiers; an empty device syncs them
//! cold (durable in its SQLite store); one edit travels from device A to a live device B
//! (latency and bytes); a device reconnects with nothing changed (bytes, round trips). Then
//! the relay's memory per idle authenticated connection.
//! Run it in release: `cargo run --release -p fieldbook-tests --bin sync-bench`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use fieldbook_app::sync::{Mode, SyncReport, sync_with_relay};
use fieldbook_app::synth;
use fieldbook_shared::Day;
use fieldbook_shared::patch::Assignment;
use fieldbook_shared::sync::wire::{self, DeviceStatus, ToRelay};
use fieldbook_tests::relay::{RelayProcess, enrolled_device, sync_once};
use futures_util::{SinkExt, StreamExt};

#[derive(Parser)]
#[command(about = "Benchmark sync through a real relay process")]
struct Args {
    #[arg(long, value_delimiter = ',', default_value = "10,1000,10000")]
    sizes: Vec<usize>,
    /// Idle connections to open for the memory measurement (0 skips it).
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    connections: Vec<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn relay_bin() -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("relay");
    anyhow::ensure!(
        bin.exists(),
        "build the relay first: {} is missing",
        bin.display()
    );
    Ok(bin)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = relay_bin()?;
    println!(
        "| dossiers | upload (dossiers/s) | cold sync to empty device (dossiers/s) | cold bytes | one edit A→B latency p50 | edit bytes A→relay | edit bytes relay→B | reconnect bytes | reconnect round trips | reconnect time |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &n in &args.sizes {
        size(&bin, n, args.seed)?;
    }
    for &c in args.connections.iter().filter(|c| **c > 0) {
        connections(&bin, c)?;
    }
    Ok(())
}

fn set(path: &str, value: &str) -> Assignment {
    Assignment {
        path: path.into(),
        value: value.into(),
    }
}

fn size(bin: &std::path::Path, n: usize, seed: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = RelayProcess::start(bin, dir.path())?;
    let today: Day = "2026-11-23".parse()?;
    let mut a = enrolled_device(&relay, &dir.path().join("a"), "north", "li", "laptop")?;
    for chunk in synth::dossiers(seed, n, &["li", "wang"], today).chunks(1000) {
        a.create_many(chunk)?;
    }
    let t = Instant::now();
    sync_once(&mut a)?;
    let upload = n as f64 / t.elapsed().as_secs_f64();

    let mut b = enrolled_device(&relay, &dir.path().join("b"), "north", "wang", "desk")?;
    let t = Instant::now();
    let cold: SyncReport = sync_once(&mut b)?;
    let cold_rate = n as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(
        b.ids()?.len() == n,
        "cold sync brought {} of {n}",
        b.ids()?.len()
    );

    // One edit: B stays connected live; A edits and syncs; time until B's store has it.
    let ids = a.ids()?;
    let relay_b = b.relay_config()?.context("b enrolled")?;
    let b = Arc::new(Mutex::new(b));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let live = {
        let mut handle = b.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut stop = stop_rx;
            rt.block_on(sync_with_relay(
                &mut handle,
                &relay_b,
                Mode::Live,
                &mut stop,
                |_| {},
            ))
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut latencies = Vec::new();
    let mut edit_up = 0;
    for round in 0..7 {
        let id = &ids[(round * 7919) % ids.len()];
        let value = format!("edited-{round}");
        a.set(id, &[set("profile.website", &value)])?;
        let t = Instant::now();
        let report = sync_once(&mut a)?;
        edit_up = report.bytes_sent + report.bytes_received;
        loop {
            let seen = b.lock().unwrap().dossier(id)?.dossier.profile.website == value;
            if seen {
                break;
            }
            anyhow::ensure!(t.elapsed() < Duration::from_secs(20), "edit never arrived");
            std::thread::sleep(Duration::from_micros(500));
        }
        latencies.push(t.elapsed());
    }
    let _ = stop_tx.send(true);
    let live_report = live.join().expect("live thread")?;
    latencies.sort();
    // Relay → B per edit: everything B's live connection received, over the 7 edits (its
    // welcome is a few bytes: B was up to date when it connected).
    let edit_down = live_report.bytes_received / 7;

    let mut b = Arc::try_unwrap(b)
        .ok()
        .context("b released")?
        .into_inner()
        .unwrap();
    let again = sync_once(&mut b)?;
    println!(
        "| {n} | {upload:.0} | {cold_rate:.0} | {:.1} MB | {:.1} ms | {edit_up} B | {edit_down} B | {} B | {} | ≤ {:.0} ms |",
        cold.bytes_received as f64 / 1e6,
        latencies[latencies.len() / 2].as_secs_f64() * 1e3,
        again.bytes_sent + again.bytes_received,
        again.round_trips,
        again.elapsed_ms.max(1) as f64,
    );
    Ok(())
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}

/// Open `count` authenticated connections that say hello and then idle; the relay's resident
/// memory before and after, per connection.
fn connections(bin: &std::path::Path, count: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = RelayProcess::start(bin, dir.path())?;
    let device = enrolled_device(&relay, &dir.path().join("d"), "north", "li", "phone")?;
    let token = device.relay_config()?.context("enrolled")?.token;
    let pid = relay.pid().context("relay pid")?;
    let url = format!("{}/v1/sync", relay.url.replace("http://", "ws://"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let before = rss_kib(pid)?;
    let sockets = rt.block_on(async {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut sockets = Vec::with_capacity(count);
        let hello = wire::encode(&ToRelay::Hello {
            since: 0,
            status: DeviceStatus::default(),
        });
        for _ in 0..count {
            let mut req = url.as_str().into_client_request()?;
            req.headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
            let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
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
    println!(
        "\nrelay memory, {count} idle authenticated connections: {} KiB → {} KiB, {:.1} KiB per connection",
        before,
        after,
        (after.saturating_sub(before)) as f64 / count as f64
    );
    drop(sockets);
    Ok(())
}
