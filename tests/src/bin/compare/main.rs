//! `compare`: the same sync workload through our relay and device engines and through the
//! reference automerge-repo sync server with automerge-repo clients, on this machine in one
//! run, printed side by side with the ratio and the physical bounds measured beside them.
//!
//! Run it with `scripts/compare.sh` (installs the reference with npm, builds in release).

mod bounds;
mod ours;
mod proxy;
mod reference;

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;

use crate::proxy::Reading;
use crate::reference::Reference;

#[derive(Parser)]
#[command(about = "Sync benchmarks side by side with the reference automerge-repo sync server")]
struct Args {
    /// Dossier counts for B1–B3 and the server's memory.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sizes: Vec<usize>,
    /// Idle connections for B5 (0 skips it).
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    connections: Vec<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Longest one reference step may take (seconds) before it is reported as not finished.
    #[arg(long, default_value_t = 1800)]
    reference_timeout: u64,
    /// Measure our side only (development; the table then has no ratios).
    #[arg(long)]
    skip_reference: bool,
    /// Fail unless every step of both sides finished (the CI smoke: the harness must not rot).
    #[arg(long)]
    strict: bool,
    /// Our relay on PostgreSQL (a throwaway server this run starts, a new database for each
    /// measure) instead of its embedded SQLite.
    #[arg(long)]
    postgres: bool,
}

/// Edits in B2; the median and the 99th percentile of their latencies are reported.
pub const EDITS: usize = 41;

/// Which dossier the `round`th edit touches (both sides pick the same).
pub fn edited_index(round: usize, count: usize) -> usize {
    (round * 7919) % count
}

#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub seconds: f64,
    pub wire: Reading,
}

#[derive(Debug, Clone)]
pub struct Edits {
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Bytes per edit on the editing device's connection and on the receiving one's.
    pub up: u64,
    pub down: u64,
}

impl Edits {
    pub fn new(mut latencies_ms: Vec<f64>, up: u64, down: u64) -> Edits {
        latencies_ms.sort_by(f64::total_cmp);
        let at = |q: f64| latencies_ms[((latencies_ms.len() - 1) as f64 * q).round() as usize];
        Edits {
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            up,
            down,
        }
    }
}

/// One side's results at one size; None where a step did not finish.
#[derive(Debug, Default)]
pub struct Run {
    pub push: Option<Step>,
    pub pull: Option<Step>,
    pub edits: Option<Edits>,
    pub reconnect: Option<Step>,
    pub server_rss_kib: Option<u64>,
    /// Ours: how long after the push was acknowledged the relay had checked everything it
    /// stored as the device vouched (the pull starts after that).
    pub checked_after: Option<Duration>,
}

struct Bounds {
    loopback_bytes_per_s: f64,
    fsyncs_per_s: f64,
}

struct SizeBounds {
    apply: Duration,
    sqlite_rows_per_s: f64,
    doc_bytes: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = fieldbook_tests::relay::relay_beside_this_program()?;
    let reference = (!args.skip_reference).then(|| Reference {
        js: Path::new(env!("CARGO_MANIFEST_DIR")).join("compare"),
        timeout: Duration::from_secs(args.reference_timeout),
    });
    if let Some(r) = &reference {
        anyhow::ensure!(
            r.js.join("node_modules").exists(),
            "the reference is not installed: run `npm install` in {} (scripts/compare.sh does)",
            r.js.display()
        );
    }
    let scratch = tempfile::tempdir()?;
    let machine = Bounds {
        loopback_bytes_per_s: bounds::loopback_bytes_per_s()?,
        fsyncs_per_s: bounds::fsyncs_per_s(scratch.path())?,
    };
    println!(
        "bounds on this machine: loopback {:.0} MB/s, fsync {:.0}/s",
        machine.loopback_bytes_per_s / 1e6,
        machine.fsyncs_per_s
    );
    let timeout_s = reference.is_some().then_some(args.reference_timeout as f64);
    let postgres = args
        .postgres
        .then(fieldbook_tests::postgres::Postgres::start)
        .transpose()?;
    let database = || postgres.as_ref().map(|pg| pg.create_database()).transpose();
    if postgres.is_some() {
        println!("our relay stores in PostgreSQL (a server on loopback, fsync on)");
    }
    println!("{HEADER}");
    let mut incomplete = false;
    for &n in &args.sizes {
        let dir = tempfile::tempdir()?;
        eprintln!("{n} dossiers: ours");
        let (mine, docs) = ours::run(
            &bin,
            &dir.path().join("ours"),
            database()?.as_deref(),
            n,
            args.seed,
        )?;
        let size = SizeBounds {
            apply: bounds::apply_cpu_per_doc(&docs)?,
            sqlite_rows_per_s: bounds::sqlite_rows_per_s(dir.path(), &docs)?,
            doc_bytes: docs.iter().map(|d| d.len() as u64).sum(),
        };
        // A reference that failed (rather than ran out of time) says nothing of its speed:
        // its rows read "not run", the error is printed above them.
        let (theirs, timeout_s) = match &reference {
            Some(r) => {
                eprintln!("{n} dossiers: reference");
                let js = dir.path().join("reference");
                std::fs::create_dir_all(&js)?;
                match r.run(&js, &docs) {
                    Ok(run) => (run, timeout_s),
                    Err(e) => {
                        eprintln!("reference, {n} dossiers, failed: {e:#}");
                        (Run::default(), None)
                    }
                }
            }
            None => (Run::default(), None),
        };
        incomplete |= reference.is_some() && unfinished(&theirs);
        // Each size's rows as soon as they are measured: a long run keeps what it found.
        print!(
            "{}",
            size_rows(&machine, n, &size, &mine, &theirs, timeout_s)
        );
    }
    for &count in args.connections.iter().filter(|c| **c > 0) {
        let dir = tempfile::tempdir()?;
        eprintln!("{count} idle connections");
        let mine = ours::memory_per_connection(&bin, dir.path(), database()?.as_deref(), count)?;
        let theirs = match &reference {
            Some(r) => r
                .memory_per_connection(dir.path(), count)
                .unwrap_or_else(|e| {
                    eprintln!("reference, {count} connections: {e:#}");
                    None
                }),
            None => None,
        };
        incomplete |= theirs.is_none();
        print!("{}", memory_row(count, mine, theirs));
    }
    anyhow::ensure!(
        !(args.strict && reference.is_some() && incomplete),
        "--strict: some reference steps did not finish"
    );
    Ok(())
}

/// Markdown table rows, in the columns of [`HEADER`].
#[derive(Default)]
struct Rows(String);

impl Rows {
    fn row(&mut self, cells: [String; 7]) {
        self.0.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
}

const HEADER: &str = "\n| measure | Fieldbook relay | automerge-repo sync server | ratio (> 1: ours better) | physical bound (same run) | target | met |\n|---|---|---|---|---|---|---|";

fn unfinished(r: &Run) -> bool {
    r.push.is_none()
        || r.pull.is_none()
        || r.edits.is_none()
        || r.reconnect.is_none()
        || r.server_rss_kib.is_none()
}

/// The rows of one size: B1–B3 and the server's memory, both sides.
fn size_rows(
    machine: &Bounds,
    n: usize,
    size: &SizeBounds,
    mine: &Run,
    theirs: &Run,
    // None: the reference was not run, or failed.
    timeout_s: Option<f64>,
) -> String {
    let mut t = Rows::default();
    let apply_rate = 1.0 / size.apply.as_secs_f64();
    // The reference pulls what it pushed: without a push there was nothing to time.
    let pulled = timeout_s.filter(|_| theirs.push.is_some());
    for (name, ours, refs, timeout_s) in [
        (
            "B1 push (device → server)",
            mine.push,
            theirs.push,
            timeout_s,
        ),
        (
            "B1 pull (server → empty device)",
            mine.pull,
            theirs.pull,
            pulled,
        ),
    ] {
        let rate = |s: Option<Step>| s.map(|s| n as f64 / s.seconds);
        let (r_ours, r_ref) = (rate(ours), rate(refs));
        let met = r_ours.map(|r| {
            // A reference that did not finish was slower than n / timeout.
            let reference = r_ref.or(timeout_s.map(|t| n as f64 / t));
            r >= 2000.0 && r >= apply_rate / 2.0 && reference.is_none_or(|x| r >= 60.0 * x)
        });
        t.row([
            format!("{name}, {n}"),
            opt(r_ours, |r| format!("{} dossiers/s", thousands(r))),
            match (r_ref, timeout_s) {
                (Some(r), _) => format!("{} dossiers/s", thousands(r)),
                (None, Some(t)) => format!(
                    "not finished in {t:.0} s (< {:.1} dossiers/s)",
                    n as f64 / t
                ),
                (None, None) => "not run".into(),
            },
            match (r_ours, r_ref, timeout_s) {
                (Some(o), None, Some(t)) => format!("> {:.0}×", o / (n as f64 / t)),
                _ => ratio(r_ours, r_ref),
            },
            format!(
                "apply {}/s{}; SQLite {}/s",
                thousands(apply_rate),
                opt(r_ours, |r| format!(
                    " (ours ×{:.1} its time)",
                    apply_rate / r
                )),
                thousands(size.sqlite_rows_per_s)
            ),
            "≥ 2,000/s, ≤ 2× apply time, ≥ 60× reference".into(),
            verdict(met),
        ]);
        let bytes = |s: Option<Step>| s.map(|s| s.wire.bytes() as f64);
        t.row([
            format!("{name}, {n}: bytes on the wire"),
            opt(bytes(ours), mb),
            opt(bytes(refs), mb),
            ratio(bytes(refs), bytes(ours)),
            format!(
                "dossiers {} ({:.0} ms at loopback speed)",
                mb(size.doc_bytes as f64),
                size.doc_bytes as f64 / machine.loopback_bytes_per_s * 1e3
            ),
            String::new(),
            String::new(),
        ]);
    }
    t.row([
        format!("B1 push, {n}: the server's check of what it stored, done"),
        opt(mine.checked_after, |d| {
            format!(
                "{:.1} s after the push ({} dossiers/s)",
                d.as_secs_f64(),
                thousands(n as f64 / d.as_secs_f64().max(1e-3))
            )
        }),
        "none (stores what it receives unread)".into(),
        String::new(),
        format!("apply {}/s", thousands(apply_rate)),
        String::new(),
        String::new(),
    ]);
    let (e_ours, e_ref) = (mine.edits.as_ref(), theirs.edits.as_ref());
    t.row([
        format!("B2 one edit A → server → B, {n}: latency p50"),
        opt(e_ours.map(|e| e.p50_ms), |v| format!("{v:.1} ms")),
        opt(e_ref.map(|e| e.p50_ms), |v| format!("{v:.1} ms")),
        ratio(e_ref.map(|e| e.p50_ms), e_ours.map(|e| e.p50_ms)),
        String::new(),
        "≤ 5 ms, ≤ ½ reference".into(),
        verdict(
            e_ours.map(|e| e.p50_ms <= 5.0 && e_ref.is_none_or(|r| e.p50_ms <= r.p50_ms / 2.0)),
        ),
    ]);
    t.row([
        format!("B2 one edit A → server → B, {n}: latency p99"),
        opt(e_ours.map(|e| e.p99_ms), |v| format!("{v:.1} ms")),
        opt(e_ref.map(|e| e.p99_ms), |v| format!("{v:.1} ms")),
        ratio(e_ref.map(|e| e.p99_ms), e_ours.map(|e| e.p99_ms)),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let wire = |e: Option<&Edits>| e.map(|e| (e.up + e.down) as f64);
    t.row([
        format!("B2 one edit, {n}: bytes (A's link + B's link)"),
        opt(e_ours, |e| format!("{} + {} B", e.up, e.down)),
        opt(e_ref, |e| format!("{} + {} B", e.up, e.down)),
        ratio(wire(e_ref), wire(e_ours)),
        String::new(),
        "≤ 1 KB".into(),
        verdict(wire(e_ours).map(|b| b <= 1024.0)),
    ]);
    let (c_ours, c_ref) = (mine.reconnect, theirs.reconnect);
    t.row([
        format!("B3 reconnect, nothing changed, {n}"),
        opt(c_ours, reconnect),
        opt(c_ref, reconnect),
        ratio(
            c_ref.map(|c| c.wire.bytes() as f64),
            c_ours.map(|c| c.wire.bytes() as f64),
        ),
        String::new(),
        "≤ 10 KB, ≤ 2 round trips".into(),
        verdict(c_ours.map(|c| c.wire.bytes() <= 10 * 1024 && c.wire.round_trips <= 2)),
    ]);
    let mib = |k: u64| k as f64 / 1024.0;
    t.row([
        format!("server resident memory after serving {n}"),
        opt(mine.server_rss_kib.map(mib), |m| format!("{m:.0} MiB")),
        opt(theirs.server_rss_kib.map(mib), |m| format!("{m:.0} MiB")),
        ratio(
            theirs.server_rss_kib.map(|k| k as f64),
            mine.server_rss_kib.map(|k| k as f64),
        ),
        String::new(),
        String::new(),
        String::new(),
    ]);
    t.0
}

/// The B5 row for `count` idle connections.
fn memory_row(count: usize, mine: f64, theirs: Option<f64>) -> String {
    let mut t = Rows::default();
    t.row([
        format!("B5 server memory per idle device, {count} connected"),
        format!("{mine:.1} KiB"),
        opt(theirs, |k| format!("{k:.1} KiB")),
        ratio(theirs, Some(mine)),
        String::new(),
        "≤ 16 KiB".into(),
        verdict(Some(mine <= 16.0)),
    ]);
    t.0
}

fn reconnect(s: Step) -> String {
    format!(
        "{} B, {} round trips, {:.0} ms",
        thousands(s.wire.bytes() as f64),
        s.wire.round_trips,
        s.seconds * 1e3
    )
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "—".into())
}

/// How many times better ours is: `theirs / ours` for costs, `ours / theirs` for rates (the
/// caller orders them).
fn ratio(better: Option<f64>, worse: Option<f64>) -> String {
    match (better, worse) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}×", a / b),
        _ => "—".into(),
    }
}

fn verdict(met: Option<bool>) -> String {
    match met {
        Some(true) => "yes".into(),
        Some(false) => "**no**".into(),
        None => "—".into(),
    }
}

fn mb(bytes: f64) -> String {
    format!("{:.2} MB", bytes / 1e6)
}

fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::thousands(1234567.4), "1,234,567");
        assert_eq!(super::thousands(999.0), "999");
    }
}
