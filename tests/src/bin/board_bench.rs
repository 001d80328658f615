//! `board-bench`: the manager's dashboard over a big team, on the relay and on a manager's
//! device, each on its real SQLite store.
//!
//! Both stores are filled with the projections of seeded synthetic dossiers (`synth`), written
//! the way a sync writes them; the documents themselves are placeholders, since the board never
//! opens one (that is the point). Then: the first dashboard after start (the board is read
//! from the store once), the dashboard again (p50/p95; what every later view costs), the
//! dashboard right after one dossier changed (the board takes only that row), and on the relay
//! a list page over the whole team.
//!
//! `cargo run --release -p fieldbook-tests --bin board-bench -- --reps 50 --per-rep 2000`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use fieldbook_app::clock::FixedClock;
use fieldbook_app::engine::Engine;
use fieldbook_app::service::{AppService, Serve};
use fieldbook_app::store::sqlite::SqliteStore;
use fieldbook_app::store::{Chunk as DeviceChunk, DossierStore, DossierWrite, Origin, TextWrite};
use fieldbook_app::synth;
use fieldbook_relay::http::Relay;
use fieldbook_relay::store::sqlite::SqliteRelayStore;
use fieldbook_relay::store::{Chunk, DocWrite, RelayStore, WebAuth};
use fieldbook_relay::team;
use fieldbook_shared::api::{self, ListQuery};
use fieldbook_shared::summary::{Projection, project};
use fieldbook_shared::sync::wire::Role;
use fieldbook_shared::{Day, Dossier};
use rand::SeedableRng;
use rand::rngs::StdRng;

#[derive(Parser)]
#[command(about = "Benchmark the manager's dashboard on the relay and on a device")]
struct Args {
    #[arg(long, default_value_t = 50)]
    reps: usize,
    #[arg(long, default_value_t = 2000)]
    per_rep: usize,
    /// Dashboards timed after the first.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

const TODAY: &str = "2026-11-23";

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i.min(samples.len() - 1)]
}

/// Time `f` `runs` times: (p50, p95).
fn timed<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<(Duration, Duration)> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
    }
    Ok((
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.95),
    ))
}

/// The team's dossiers and their projections, `per_rep` for each of `reps` reps.
fn team(args: &Args, today: Day) -> Vec<(String, Projection)> {
    let reps: Vec<String> = (1..=args.reps).map(|r| format!("rep{r:02}")).collect();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut out = Vec::with_capacity(args.reps * args.per_rep);
    for n in 0..args.reps * args.per_rep {
        let d: Dossier = synth::dossier(&mut rng, &reps[n % reps.len()], today);
        let id = format!("d{n:06}");
        let p = project(&id, &d, 0);
        out.push((id, p));
    }
    out
}

fn main() -> Result<()> {
    let args = Args::parse();
    let today: Day = TODAY.parse()?;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let dossiers = team(&args, today);
    eprintln!(
        "{} dossiers of {} reps made in {:.1} s",
        dossiers.len(),
        args.reps,
        started.elapsed().as_secs_f64()
    );
    relay(&args, &dir.path().join("relay.sqlite"), &dossiers)?;
    device(&args, &dir.path().join("device"), &dossiers, today)?;
    Ok(())
}

fn relay(args: &Args, path: &std::path::Path, dossiers: &[(String, Projection)]) -> Result<()> {
    let mut store = SqliteRelayStore::open(path)?;
    let team_id = store.create_team("north", 0)?;
    let t = Instant::now();
    for batch in dossiers.chunks(1000) {
        let writes: Vec<DocWrite> = batch
            .iter()
            .map(|(id, p)| DocWrite {
                doc: id.clone(),
                chunk: Chunk::Snapshot(vec![0; 16]),
                heads: vec![[1; 32]],
                projection: serde_json::to_string(p).expect("a projection serialises"),
                board: serde_json::to_string(&p.board_row()).expect("a board row serialises"),
                checked: true,
                readers: p.summary.readers(),
            })
            .collect();
        store.write_docs(team_id, &writes)?;
    }
    eprintln!("relay store filled in {:.1} s", t.elapsed().as_secs_f64());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let stores = fieldbook_relay::store::pool::StorePool::new(vec![Box::new(store)]);
    let relay = Arc::new(
        Relay::new(stores, stop_rx).with_web(fieldbook_relay::http::WebOptions {
            today: Some(TODAY.parse()?),
            ..Default::default()
        }),
    );
    let auth = WebAuth {
        team_id,
        team: "north".into(),
        user: "chen".into(),
        role: Role::Manager,
        language: None,
    };
    let runs = args.runs;
    let (first, warm, changed, page) = runtime.block_on(async move {
        tokio::spawn(async move {
            let err = |e: api::AppError| anyhow::anyhow!(e.message);
            let t = Instant::now();
            let board = team::dashboard(&relay, &auth, None).map_err(err)?;
            let first = t.elapsed();
            anyhow::ensure!(board.dossiers as usize == dossiers_len(&relay, team_id)?);
            let warm = timed(runs, || team::dashboard(&relay, &auth, None).map_err(err))?;
            // One dossier changes (a device's sync, committed untimed): the next dashboard
            // takes that row only.
            let projection = sample_projection(&relay, team_id)?;
            let readers = serde_json::from_str::<Projection>(&projection)
                .map(|p| p.summary.readers())
                .unwrap_or_default();
            let mut samples = Vec::with_capacity(runs);
            for n in 0..runs.max(1) {
                relay.with_store(|s| {
                    s.write_docs(
                        team_id,
                        &[DocWrite {
                            doc: format!("d{:06}", n),
                            chunk: Chunk::Append(vec![0; 8]),
                            heads: vec![[2; 32]],
                            projection: projection.clone(),
                            board: projection.clone(),
                            checked: true,
                            readers: readers.clone(),
                        }],
                    )
                })?;
                let t = Instant::now();
                team::dashboard(&relay, &auth, None).map_err(err)?;
                samples.push(t.elapsed());
            }
            let changed = (
                percentile(&mut samples, 0.5),
                percentile(&mut samples, 0.95),
            );
            let page = timed(runs, || {
                team::page(&relay, &auth, &ListQuery::default()).map_err(err)
            })?;
            anyhow::Ok((first, warm, changed, page))
        })
        .await?
    })?;
    println!(
        "relay  ({} dossiers): first dashboard {} · dashboard p50 {} p95 {} · after one change p50 {} p95 {} · list page p50 {} p95 {}",
        dossiers.len(),
        ms(first),
        ms(warm.0),
        ms(warm.1),
        ms(changed.0),
        ms(changed.1),
        ms(page.0),
        ms(page.1)
    );
    Ok(())
}

fn dossiers_len(relay: &Relay, team: i64) -> Result<usize> {
    Ok(relay.with_store(|s| s.doc_count(team))? as usize)
}

/// A stored projection to write back (any will do: the board only has to take it).
fn sample_projection(relay: &Relay, team: i64) -> Result<String> {
    let (seq, _) = relay.with_store(|s| s.changed_since(team, u64::MAX))?;
    let (_, rows) = relay.with_store(|s| s.board_rows_since(team, seq.saturating_sub(1)))?;
    Ok(rows.into_iter().next().map(|(_, p)| p).unwrap_or_default())
}

fn device(
    args: &Args,
    dir: &std::path::Path,
    dossiers: &[(String, Projection)],
    today: Day,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut store = SqliteStore::open(&dir.join("fieldbook.sqlite"))?;
    let t = Instant::now();
    for batch in dossiers.chunks(1000) {
        let writes: Vec<DossierWrite> = batch
            .iter()
            .map(|(_, p)| {
                let mut w = DossierWrite::new(
                    DeviceChunk::Snapshot(vec![0; 16]),
                    Vec::new(),
                    p.clone(),
                    Origin::Synced { sync_state: None },
                );
                // As a sync writes what it receives: the text indexed later.
                w.text = TextWrite::Later;
                w
            })
            .collect();
        store.write(&writes)?;
    }
    eprintln!("device store filled in {:.1} s", t.elapsed().as_secs_f64());
    let engine = Engine::with_store(store, Arc::new(FixedClock::at(today)))?;
    let service = AppService::new(engine);
    let board = || {
        service
            .serve(api::GetDashboard { quiet_days: None })
            .map_err(|e| anyhow::anyhow!(e.message))
    };
    let t = Instant::now();
    let first = board()?;
    let first_time = t.elapsed();
    anyhow::ensure!(
        first.dossiers as usize == dossiers.len(),
        "every dossier on the board"
    );
    let warm = timed(args.runs, board)?;
    println!(
        "device ({} dossiers): first dashboard {} · dashboard p50 {} p95 {}",
        dossiers.len(),
        ms(first_time),
        ms(warm.0),
        ms(warm.1)
    );
    Ok(())
}
