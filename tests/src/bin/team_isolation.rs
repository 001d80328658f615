//! `team-isolation`: how long one team's sync takes while another team uploads in bulk,
//! through a relay with one database connection (as the relay was before its pool: one lock
//! for every team) and with its pool of connections; on SQLite, or on PostgreSQL (a
//! throwaway server this run starts). Each timed sync is a device's whole sync of one edit:
//! connect, hello, push, acknowledgement.
//!
//! `cargo build --release -p fieldbook-tests --bins && target/release/team-isolation --bulk 3000`

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use fieldbook_app::Engine;
use fieldbook_app::synth;
use fieldbook_shared::Day;
use fieldbook_shared::patch::set;
use fieldbook_tests::postgres::Postgres;
use fieldbook_tests::relay::{RelayProcess, enrolled_device, relay_beside_this_program, sync_once};

#[derive(Parser)]
#[command(about = "One team's sync while another team uploads in bulk")]
struct Args {
    /// Dossiers the other team uploads (its upload must outlast many syncs).
    #[arg(long, default_value_t = 3000)]
    bulk: usize,
    /// Syncs timed with no load (and at most this many under it).
    #[arg(long, default_value_t = 41)]
    edits: usize,
    /// Database connections of the relay, one measure each.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    connections: Vec<usize>,
    /// On PostgreSQL instead of SQLite.
    #[arg(long)]
    postgres: bool,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = relay_beside_this_program()?;
    let postgres = args.postgres.then(Postgres::start).transpose()?;
    let database = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "\n| database | relay's connections | one team's sync, alone: p50 / p99 | while another uploads {} dossiers: p50 / p99 (syncs) | slowed by (p50) |",
        args.bulk
    );
    println!("|---|---|---|---|---|");
    for &connections in &args.connections {
        let dir = tempfile::tempdir()?;
        let url = postgres
            .as_ref()
            .map(|pg| pg.create_database())
            .transpose()?;
        let relay = RelayProcess::start_on(
            &bin,
            dir.path(),
            url.as_deref(),
            &["--db-connections", &connections.to_string()],
        )?;
        let today: Day = "2026-11-23".parse()?;
        let mut east = enrolled_device(&relay, &dir.path().join("east"), "east", "li", "laptop")?;
        for chunk in synth::dossiers(args.seed, args.bulk, &["li"], today).chunks(1000) {
            east.create_many(chunk)?;
        }
        let mut north =
            enrolled_device(&relay, &dir.path().join("north"), "north", "wang", "desk")?;
        let id = north.create_dossier(&[set("profile.name", "北区的客户")])?;
        sync_once(&mut north)?;

        let alone = (0..args.edits)
            .map(|n| edit(&mut north, &id, n))
            .collect::<Result<Vec<_>>>()?;
        let uploading = AtomicBool::new(true);
        let (loaded, upload) = std::thread::scope(|s| {
            let upload = s.spawn(|| {
                let started = Instant::now();
                let done = sync_once(&mut east);
                uploading.store(false, Ordering::Relaxed);
                done.map(|_| started.elapsed())
            });
            let mut loaded = Vec::new();
            while uploading.load(Ordering::Relaxed) && loaded.len() < 10 * args.edits {
                loaded.push(edit(&mut north, &id, loaded.len())?);
            }
            let upload = upload.join().expect("the upload thread");
            Ok::<_, anyhow::Error>((loaded, upload))
        })?;
        let upload = upload.context("the bulk upload")?;
        eprintln!(
            "{connections} connection(s): the upload took {:.1} s",
            upload.as_secs_f64()
        );
        let (a50, a99) = (percentile(&alone, 0.5), percentile(&alone, 0.99));
        let (l50, l99) = (percentile(&loaded, 0.5), percentile(&loaded, 0.99));
        println!(
            "| {database} | {connections} | {} / {} | {} / {} ({}) | ×{:.1} |",
            ms(a50),
            ms(a99),
            ms(l50),
            ms(l99),
            loaded.len(),
            l50.as_secs_f64() / a50.as_secs_f64()
        );
    }
    Ok(())
}

/// One edit to `id`, synced: how long the sync took.
fn edit(device: &mut Engine, id: &str, n: usize) -> Result<Duration> {
    device.add_item(
        id,
        "interactions",
        &[
            set("date", "2026-11-20"),
            set("notes", &format!("第{n}次拜访")),
        ],
    )?;
    let started = Instant::now();
    sync_once(device)?;
    Ok(started.elapsed())
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
