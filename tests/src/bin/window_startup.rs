//! Start-up of the real app window over a large store: how long after the window starts loading
//! its page the first page of the dossier list is on screen.
//!
//! The UI stamps `window.__fieldbookFirstPageMs` (`performance.now()`, whose origin is the start
//! of the page load in the new webview) when the first list page is rendered; this reads it
//! through WebDriver after each launch. It also reports the time from asking tauri-driver for a
//! session (process start, webview creation, WebDriver overhead included) to that moment.
//!
//! Needs a display and the debug app (scripts/setup-app.sh --debug):
//!     xvfb-run -a cargo run --release -p fieldbook-tests --bin window-startup -- --dossiers 10000

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use fieldbook_app::clock::FixedClock;
use fieldbook_app::service::{AppService, Serve};
use fieldbook_app::{Engine, synth};
use fieldbook_shared::Day;
use fieldbook_shared::api::{Lang, SaveSettings, Settings};
use fieldbook_tests::window::AppWindow;

#[derive(Parser)]
struct Args {
    /// Dossiers in the store.
    #[arg(long, default_value_t = 10_000)]
    dossiers: usize,
    /// Launches to measure (after one warm-up launch).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let today: Day = "2026-11-23".parse()?;
    let store = tempfile::tempdir()?;
    let clock = Arc::new(FixedClock::at(today));
    {
        let mut engine = Engine::open(
            store.path(),
            &fieldbook_app::secrets::Secrets::key_file_beside(store.path()),
            clock.clone(),
        )?;
        let data = synth::dossiers(7, args.dossiers, &["li", "wang", "zhao"], today);
        for batch in data.chunks(500) {
            engine.create_many(batch)?;
        }
        while engine.index_pending(1000)? > 0 {}
    }
    // Past the first-run screen, so the list is what opens.
    AppService::open(
        store.path(),
        &fieldbook_app::secrets::Secrets::key_file_beside(store.path()),
        clock,
    )?
    .serve(SaveSettings {
        settings: Settings {
            language: Some(Lang::Zh),
            onboarded: true,
        },
    })?;

    let mut in_page = Vec::new();
    let mut from_launch = Vec::new();
    for run in 0..=args.runs {
        let asked = Instant::now();
        let app = AppWindow::launch(store.path(), "2026-11-23").await?;
        let ms = app
            .eventually("the first list page", || async {
                let v = app
                    .js(
                        "return window.__fieldbookFirstPageMs ?? null",
                        serde_json::json!([]),
                    )
                    .await?;
                Ok(v.as_f64())
            })
            .await?;
        let total = asked.elapsed();
        let rows = app.count(".dossier-row").await?;
        let shown = app.text("#list-total").await?.unwrap_or_default();
        app.close().await?;
        anyhow::ensure!(rows == 50, "first page has {rows} rows");
        anyhow::ensure!(
            shown == args.dossiers.to_string(),
            "the list says {shown} clients"
        );
        if run > 0 {
            in_page.push(ms);
            from_launch.push(total.as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let size = std::fs::metadata(store.path().join("fieldbook.sqlite"))
        .context("store file")?
        .len();
    println!(
        "| dossiers | store | first page after page load: p50 | max | from launch request: p50 | max | runs |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {} | {:.1} MB | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {} |",
        args.dossiers,
        size as f64 / 1e6,
        percentile(&mut in_page, 0.5),
        percentile(&mut in_page, 1.0),
        percentile(&mut from_launch, 0.5),
        percentile(&mut from_launch, 1.0),
        args.runs
    );
    Ok(())
}
