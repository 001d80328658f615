//! `fieldbook-bench`: the local store's speed at realistic sizes.
//!
//! For each size: create N seeded synthetic dossiers (batched transactions), reopen the store
//! cold and time the first list page, search (Chinese and English, p50/p95), opening one
//! dossier, recording a meeting (one committed edit), and the store's size on disk.
//! Run it in release: `cargo run --release -p fieldbook-app --bin fieldbook-bench`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use fieldbook_app::clock::FixedClock;
use fieldbook_app::engine::{Engine, Meeting, STORE_FILE};
use fieldbook_app::secrets::Secrets;
use fieldbook_app::store::ListQuery;
use fieldbook_app::store::sqlite::SqliteStore;
use fieldbook_app::synth;
use fieldbook_shared::Day;

#[derive(Parser)]
#[command(about = "Benchmark the device store at realistic sizes")]
struct Args {
    /// Numbers of dossiers to measure at.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sizes: Vec<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to put the stores (a temp folder by default).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// The stores to measure, side by side: the app's (SQLCipher, encrypted at rest) and a
    /// plain SQLite one as the reference for what the encryption costs.
    #[arg(long, value_delimiter = ',', default_value = "encrypted,plain")]
    stores: Vec<StoreKind>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StoreKind {
    Encrypted,
    Plain,
}

impl StoreKind {
    fn label(self) -> &'static str {
        match self {
            StoreKind::Encrypted => "SQLCipher",
            StoreKind::Plain => "plain",
        }
    }

    /// The device engine over this kind of store in `dir` (the key beside it when encrypted).
    fn open(self, dir: &Path, clock: Arc<FixedClock>) -> Result<Engine> {
        Ok(match self {
            StoreKind::Encrypted => Engine::open(dir, &Secrets::key_file_beside(dir), clock)?,
            StoreKind::Plain => {
                std::fs::create_dir_all(dir)?;
                Engine::with_store(SqliteStore::open(&dir.join(STORE_FILE))?, clock)?
            }
        })
    }
}

const QUERIES: &[&str] = &[
    "培训",
    "领导力",
    "讲师质量",
    "leadership",
    "procurement budget",
    "免费试听 framework",
    "Acme",
    "不存在的词",
];

/// An empty store of `kind` in `tmp/name` (anything left there from an earlier run removed).
fn fresh(
    kind: StoreKind,
    tmp: &Path,
    name: &str,
    clock: &Arc<FixedClock>,
) -> Result<(std::path::PathBuf, Engine)> {
    let dir = tmp.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let engine = kind.open(&dir, clock.clone())?;
    Ok((dir, engine))
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i.min(samples.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let today: Day = "2026-11-23".parse()?;
    let clock = Arc::new(FixedClock::at(today));
    let tmp = tempfile_dir(args.dir.as_deref())?;
    println!(
        "| dossiers | store | create | per dossier | cold open + first page (50) | list page p50 | search p50 | search p95 | open dossier p50 | open p95 | record meeting p50 | store size | import into empty device |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in &args.sizes {
        let data = synth::dossiers(args.seed, n, &["li", "wang", "zhao"], today);
        for &kind in &args.stores {
            println!("{}", measure(kind, &data, &tmp, &clock, today)?);
        }
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

/// One row of the table: `data` created in a new store of `kind` under `tmp`, then read,
/// searched, edited and imported into another.
fn measure(
    kind: StoreKind,
    data: &[(String, fieldbook_shared::Dossier)],
    tmp: &Path,
    clock: &Arc<FixedClock>,
    today: Day,
) -> Result<String> {
    let n = data.len();
    let (dir, mut engine) = fresh(kind, tmp, &format!("n{n}-{}", kind.label()), clock)?;
    let started = Instant::now();
    for batch in data.chunks(500) {
        engine.create_many(batch)?;
    }
    let create = started.elapsed();
    drop(engine);

    // Cold: a fresh process would open the file and show the first page.
    let started = Instant::now();
    let engine = kind.open(&dir, clock.clone())?;
    let page = engine.list(&ListQuery {
        limit: Some(50),
        ..Default::default()
    })?;
    let cold_first_page = started.elapsed();
    assert_eq!(page.len(), 50.min(n));

    let mut list_samples = Vec::new();
    for i in 0..50 {
        let q = ListQuery {
            limit: Some(50),
            overdue_on: (i % 2 == 0).then_some(today),
            ..Default::default()
        };
        let t = Instant::now();
        engine.list(&q)?;
        list_samples.push(t.elapsed());
    }

    let mut search_samples = Vec::new();
    let mut hits = 0;
    for _ in 0..10 {
        for q in QUERIES {
            let t = Instant::now();
            hits += engine.search(q, 20)?.len();
            search_samples.push(t.elapsed());
        }
    }
    assert!(hits > 0, "the synthetic text must be findable");

    let ids: Vec<&String> = data
        .iter()
        .map(|(id, _)| id)
        .step_by((n / 100).max(1))
        .collect();
    let mut open_samples = Vec::new();
    for id in &ids {
        let t = Instant::now();
        engine.dossier(id)?;
        open_samples.push(t.elapsed());
    }

    let mut engine = engine;
    let mut edit_samples = Vec::new();
    for id in ids.iter().take(30) {
        let t = Instant::now();
        engine.record_meeting(
            id,
            &Meeting {
                notes: "再次拜访，客户确认了预算 / budget confirmed".into(),
                next_step: "send the revised proposal".into(),
                next_step_due: Some(today.plus_days(3)),
                ..Default::default()
            },
        )?;
        edit_samples.push(t.elapsed());
    }
    // Another device receiving every document with its history (what a first sync carries),
    // merged in batches of 500 per transaction.
    let docs: Vec<(String, Vec<u8>)> = data
        .iter()
        .map(|(id, _)| Ok((id.clone(), engine.export_document(id)?)))
        .collect::<Result<_>>()?;
    drop(engine);
    let (other, mut receiver) = fresh(kind, tmp, &format!("n{n}-{}-import", kind.label()), clock)?;
    let started = Instant::now();
    for batch in docs.chunks(500) {
        receiver.merge_documents(batch)?;
    }
    let import = started.elapsed();
    drop(receiver);
    let _ = std::fs::remove_dir_all(&other);

    Ok(format!(
        "| {n} | {} | {:.2} s | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} MB | {:.0} dossiers/s |",
        kind.label(),
        create.as_secs_f64(),
        ms(create / n as u32),
        ms(cold_first_page),
        ms(percentile(&mut list_samples, 0.5)),
        ms(percentile(&mut search_samples, 0.5)),
        ms(percentile(&mut search_samples, 0.95)),
        ms(percentile(&mut open_samples, 0.5)),
        ms(percentile(&mut open_samples, 0.95)),
        ms(percentile(&mut edit_samples, 0.5)),
        dir_size(&dir) as f64 / 1e6,
        n as f64 / import.as_secs_f64(),
    ))
}

fn tempfile_dir(given: Option<&Path>) -> Result<std::path::PathBuf> {
    let dir = match given {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!("fieldbook-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
