//! `soak`: a team's devices editing and syncing live for a long time through a real relay
//! process that is restarted now and then (SIGKILL and SIGTERM in turn).
//!
//! Each device runs the background sync loop the app and `fieldbook sync --watch` run, over
//! its own SQLite store, while an editor renames one of its own dossiers (a counter in the
//! name) every few hundred milliseconds and now and then records a meeting with long notes.
//! An observer polls every device's list rows; since Automerge delivers a dossier's changes
//! in order, a device showing counter n holds every edit up to n. Reports: edits made and
//! delivered to every device, delivery latency p50/p99/max (± the poll interval), relay
//! restarts, and the relay's resident memory over the run. Ends by checking that every device
//! and the relay hold the same documents.
//!
//! `cargo build --release -p fieldbook-tests --bins && target/release/soak --minutes 30`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use fieldbook_app::Engine;
use fieldbook_app::clock::SystemClock;
use fieldbook_app::sync::{LinkState, run_background};
use fieldbook_shared::patch::set;
use fieldbook_tests::relay::{RelayProcess, same_everywhere};
use fieldbook_tests::{long_dossiers, rss_kib};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Parser)]
#[command(about = "Devices editing and syncing live through a relay that restarts")]
struct Args {
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    #[arg(long, default_value_t = 5)]
    devices: usize,
    /// Seconds between relay restarts.
    #[arg(long, default_value_t = 300)]
    restart_every: u64,
    /// Dossiers each device starts with.
    #[arg(long, default_value_t = 40)]
    dossiers: usize,
    /// Mean milliseconds between one device's edits.
    #[arg(long, default_value_t = 500)]
    edit_ms: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// One rename: dossier, counter, when it was made.
struct Edit {
    doc: String,
    n: u64,
    at: Instant,
    /// Devices that have not shown it yet.
    waiting: Vec<usize>,
}

const POLL: Duration = Duration::from_millis(10);
const SLOW: Duration = Duration::from_secs(10);

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = fieldbook_tests::relay::relay_beside_this_program()?;
    let dir = tempfile::tempdir()?;
    let mut relay = RelayProcess::start(&bin, dir.path())?;
    let mut engines = Vec::new();
    let mut own: Vec<Vec<String>> = Vec::new();
    for d in 0..args.devices {
        let user = format!("rep{d}");
        let path = dir.path().join(&user);
        let mut engine = Engine::open(
            &path,
            &fieldbook_app::secrets::Secrets::key_file_beside(&path),
            Arc::new(SystemClock),
        )?;
        engine.set_identity(&user, "laptop")?;
        let code = relay.invite("north", &user, "rep")?;
        fieldbook_app::sync::enroll(&mut engine, &relay.url, &code, &Default::default())?;
        let dossiers = long_dossiers(args.seed * 100 + d as u64, args.dossiers, &user, 4);
        engine.create_many(&dossiers)?;
        own.push(dossiers.into_iter().map(|(id, _)| id).collect());
        engines.push(Arc::new(Mutex::new(engine)));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut loops = Vec::new();
    let mut links = Vec::new();
    for engine in &engines {
        let (states, link) = tokio::sync::watch::channel(LinkState::Connecting);
        links.push(link);
        loops.push(runtime.spawn(run_background(engine.clone(), states, stop_rx.clone())));
    }
    let relay_db = relay.db_path();

    let started = Instant::now();
    let run_for = Duration::from_secs_f64(args.minutes * 60.0);
    let editing = Arc::new(AtomicBool::new(true));
    // Set once every editor has stopped: from then on, nothing new is pending.
    let edited = Arc::new(AtomicBool::new(false));
    let pending: Arc<Mutex<Vec<Edit>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    // Deliveries slower than SLOW: when the edit was made, to which device, how long it took.
    let slow: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut made = 0u64;
    let delivered = Arc::new(std::sync::atomic::AtomicU64::new(0));

    std::thread::scope(|s| -> Result<()> {
        let editors: Vec<_> = (0..args.devices)
            .map(|d| {
                let engine = engines[d].clone();
                let own = own[d].clone();
                let pending = pending.clone();
                let editing = editing.clone();
                let devices = args.devices;
                let mean = args.edit_ms;
                let seed = args.seed;
                s.spawn(move || -> Result<u64> {
                    let mut rng = StdRng::seed_from_u64(seed * 1000 + d as u64);
                    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
                    let mut made = 0;
                    while editing.load(Ordering::Relaxed) {
                        let wait = rng.random_range(mean / 2..=mean * 3 / 2);
                        std::thread::sleep(Duration::from_millis(wait));
                        let doc = own[rng.random_range(0..own.len())].clone();
                        let n = counters.entry(doc.clone()).or_default();
                        *n += 1;
                        let name = format!("rep{d} {} #{n}", &doc[..8]);
                        let long = rng.random_range(0..4) == 0;
                        let mut e = engine.lock().unwrap_or_else(|p| p.into_inner());
                        if long {
                            let notes = "会议纪要 meeting notes ".repeat(rng.random_range(20..200));
                            e.add_item(
                                &doc,
                                "interactions",
                                &[set("date", "2026-12-04"), set("notes", &notes)],
                            )?;
                        }
                        e.set(&doc, &[set("profile.name", &name)])?;
                        drop(e);
                        made += 1;
                        pending.lock().unwrap().push(Edit {
                            doc,
                            n: *n,
                            at: Instant::now(),
                            waiting: (0..devices).filter(|j| *j != d).collect(),
                        });
                    }
                    Ok(made)
                })
            })
            .collect();

        let observer = {
            let engines = engines.clone();
            let links = &links;
            let relay_db = &relay_db;
            let pending = pending.clone();
            let latencies = latencies.clone();
            let slow = slow.clone();
            let delivered = delivered.clone();
            let edited = edited.clone();
            s.spawn(move || -> Result<()> {
                let mut quiet_since: Option<Instant> = None;
                loop {
                    std::thread::sleep(POLL);
                    let mut pending = pending.lock().unwrap();
                    // The highest counter each device shows for each dossier with edits on
                    // their way.
                    let mut shown: BTreeMap<(usize, String), u64> = BTreeMap::new();
                    for edit in pending.iter() {
                        for &j in &edit.waiting {
                            let key = (j, edit.doc.clone());
                            if shown.contains_key(&key) {
                                continue;
                            }
                            let e = engines[j].lock().unwrap_or_else(|p| p.into_inner());
                            let n = e
                                .summary(&edit.doc)
                                .ok()
                                .and_then(|s| s.name.rsplit('#').next()?.parse().ok())
                                .unwrap_or(0);
                            shown.insert(key, n);
                        }
                    }
                    let now = Instant::now();
                    let mut lat = latencies.lock().unwrap();
                    pending.retain_mut(|edit| {
                        edit.waiting.retain(|&j| {
                            let seen = shown.get(&(j, edit.doc.clone())).copied().unwrap_or(0);
                            if seen >= edit.n {
                                lat.push(now - edit.at);
                                if now - edit.at > SLOW {
                                    slow.lock().unwrap().push(format!(
                                        "{} #{} made at {:.1} s reached device {j} after {:.1} s",
                                        &edit.doc[..8],
                                        edit.n,
                                        (edit.at - started).as_secs_f64(),
                                        (now - edit.at).as_secs_f64()
                                    ));
                                }
                                false
                            } else {
                                true
                            }
                        });
                        if edit.waiting.is_empty() {
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        !edit.waiting.is_empty()
                    });
                    if edited.load(Ordering::Relaxed) {
                        if pending.is_empty() {
                            return Ok(());
                        }
                        let since = *quiet_since.get_or_insert(now);
                        if now - since > Duration::from_secs(120) {
                            let stuck: Vec<String> = pending
                                .iter()
                                .take(10)
                                .map(|e| {
                                    let shown: Vec<String> = e
                                        .waiting
                                        .iter()
                                        .map(|&j| {
                                            let n = shown.get(&(j, e.doc.clone())).copied();
                                            format!("device {j} shows #{n:?}")
                                        })
                                        .collect();
                                    format!("{} #{}: {}", &e.doc[..8], e.n, shown.join(", "))
                                })
                                .collect();
                            let first = &pending[0].doc;
                            anyhow::bail!(
                                "{} edits never reached every device: {}\n{}",
                                pending.len(),
                                stuck.join("; "),
                                where_it_stands(first, &engines, links, relay_db)
                            );
                        }
                    }
                }
            })
        };

        // The relay: restarted every so often; its memory sampled every 30 s.
        let mut rss: Vec<(f64, u64)> = Vec::new();
        let mut restarts = 0;
        let mut restarted_at: Vec<f64> = Vec::new();
        let mut lifetimes: Vec<(u64, u64)> = Vec::new();
        let mut life_start_rss = None;
        let mut last_restart = Instant::now();
        let mut last_sample = Instant::now() - Duration::from_secs(60);
        while started.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(200));
            if last_sample.elapsed() >= Duration::from_secs(30) {
                if let Some(pid) = relay.pid() {
                    let kib = rss_kib(pid)?;
                    rss.push((started.elapsed().as_secs_f64() / 60.0, kib));
                    life_start_rss.get_or_insert(kib);
                }
                last_sample = Instant::now();
            }
            if last_restart.elapsed() >= Duration::from_secs(args.restart_every)
                && started.elapsed() + Duration::from_secs(30) < run_for
            {
                if let Some(pid) = relay.pid() {
                    lifetimes.push((life_start_rss.take().unwrap_or(0), rss_kib(pid)?));
                }
                if restarts % 2 == 0 {
                    relay.kill();
                } else {
                    relay.terminate()?;
                }
                relay.restart().context("restarting the relay")?;
                restarts += 1;
                restarted_at.push(started.elapsed().as_secs_f64());
                last_restart = Instant::now();
                last_sample = Instant::now() - Duration::from_secs(25);
            }
        }
        let end_rss = relay.pid().map(rss_kib).transpose()?.unwrap_or(0);
        if let Some(start) = life_start_rss {
            lifetimes.push((start, end_rss));
        }
        editing.store(false, Ordering::Relaxed);
        for e in editors {
            made += e
                .join()
                .map_err(|_| anyhow::anyhow!("an editor panicked"))??;
        }
        edited.store(true, Ordering::Relaxed);
        observer
            .join()
            .map_err(|_| anyhow::anyhow!("the observer panicked"))??;

        let mut lat = latencies.lock().unwrap().clone();
        lat.sort();
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                return f64::NAN;
            }
            let i = ((lat.len() - 1) as f64 * p).round() as usize;
            lat[i].as_secs_f64() * 1000.0
        };
        let mid = rss.get(rss.len() / 2).copied().unwrap_or_default();
        println!(
            "soak: {} devices for {:.1} min, relay restarted {restarts} times (SIGKILL and SIGTERM in turn)",
            args.devices,
            started.elapsed().as_secs_f64() / 60.0
        );
        println!(
            "edits made {made}, delivered to every device {}",
            delivered.load(Ordering::Relaxed)
        );
        println!(
            "delivery latency per device: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} deliveries (poll ±{} ms)",
            pct(0.5),
            pct(0.99),
            pct(1.0),
            lat.len(),
            POLL.as_millis()
        );
        println!(
            "relay RSS: start {} MiB (t={:.1} min), middle {} MiB (t={:.1} min), end {} MiB",
            rss.first().map_or(0, |r| r.1 / 1024),
            rss.first().map_or(0.0, |r| r.0),
            mid.1 / 1024,
            mid.0,
            end_rss / 1024
        );
        // What the relay's memory follows: its open dossiers (up to a fixed count) grow with
        // their history, and so does SQLite's page cache with the file.
        let on_disk: u64 = ["", "-wal"]
            .iter()
            .filter_map(|ext| {
                let mut p = relay_db.clone().into_os_string();
                p.push(ext);
                std::fs::metadata(p).ok().map(|m| m.len())
            })
            .sum();
        println!(
            "relay store on disk at the end: {:.0} MiB",
            on_disk as f64 / 1048576.0
        );
        let lives: Vec<String> = lifetimes
            .iter()
            .map(|(a, b)| format!("{}→{}", a / 1024, b / 1024))
            .collect();
        println!(
            "relay RSS per process (MiB, first sample → last): {}",
            lives.join(", ")
        );
        let slow = slow.lock().unwrap();
        let at: Vec<String> = restarted_at.iter().map(|t| format!("{t:.0}")).collect();
        println!(
            "deliveries slower than {} s: {} (relay restarted at {} s)",
            SLOW.as_secs(),
            slow.len(),
            at.join(", ")
        );
        for line in slow.iter().take(20) {
            println!("  {line}");
        }
        Ok(())
    })?;

    let _ = stop_tx.send(true);
    for l in loops {
        runtime.block_on(l)?;
    }
    let guards: Vec<_> = engines
        .iter()
        .map(|e| e.lock().unwrap_or_else(|p| p.into_inner()))
        .collect();
    let refs: Vec<&Engine> = guards.iter().map(|g| &**g).collect();
    let n = same_everywhere(&relay, "north", &refs)?;
    println!("every device and the relay hold the same {n} dossiers");
    relay.terminate()?;
    Ok(())
}

/// Where dossier `doc` stands on every device and on the relay (for a soak that failed).
fn where_it_stands(
    doc: &str,
    engines: &[Arc<Mutex<Engine>>],
    links: &[tokio::sync::watch::Receiver<LinkState>],
    relay_db: &std::path::Path,
) -> String {
    use fieldbook_app::store::DossierStore;
    use fieldbook_relay::store::RelayStore;
    let short = |heads: &[[u8; 32]]| -> String {
        heads
            .iter()
            .map(|h| format!("{:02x}{:02x}", h[0], h[1]))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut lines = Vec::new();
    for (d, engine) in engines.iter().enumerate() {
        let e = engine.lock().unwrap_or_else(|p| p.into_inner());
        let store = e.store();
        lines.push(format!(
            "device {d}: link {:?}; {:?}; heads {:?}; unsynced here {}, in all {:?}",
            *links[d].borrow(),
            e.summary(doc).map(|s| s.name),
            store.heads(doc).ok().flatten().map(|h| short(&h)),
            store
                .unsynced()
                .map(|u| u.iter().any(|x| x == doc))
                .unwrap_or(false),
            store.unsynced_changes().ok(),
        ));
    }
    match fieldbook_relay::store::sqlite::SqliteRelayStore::open(relay_db) {
        Ok(store) => {
            let team = store.team_id("north").ok().flatten().unwrap_or(0);
            let version = store.doc_version(team, doc).ok().flatten();
            lines.push(format!(
                "relay: seq {:?}, heads {:?}, unchecked {:?}",
                version.as_ref().map(|v| v.seq),
                version.as_ref().map(|v| short(&v.heads)),
                store.unchecked(1000).map(|u| u.len()).ok()
            ));
        }
        Err(e) => lines.push(format!("relay store: {e}")),
    }
    lines.join("\n")
}
