//! Screenshots of the real app window's main screens, at desktop and phone width, in both
//! languages, over a store of seeded synthetic dossiers: the list, a dossier (its decision
//! chain and timeline) and the "record a meeting" form.
//!
//!     scripts/setup-app.sh --debug
//!     xvfb-run -a -s "-screen 0 1400x1000x24" cargo run -p fieldbook-tests --bin app-screenshots -- --out docs/screenshots

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fieldbook_app::clock::FixedClock;
use fieldbook_app::service::{AppService, Serve};
use fieldbook_app::{Engine, synth};
use fieldbook_shared::Day;
use fieldbook_shared::api::{Lang, SaveSettings, Settings};
use fieldbook_tests::window::AppWindow;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "docs/screenshots")]
    out: PathBuf,
}

const TODAY: &str = "2026-11-23";

async fn shoot(app: &AppWindow, out: &std::path::Path, name: &str) -> anyhow::Result<()> {
    // Let fonts and layout settle after the last change.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let png = app.client.screenshot().await?;
    let path = out.join(format!("{name}.png"));
    std::fs::write(&path, png)?;
    println!("{}", path.display());
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let today: Day = TODAY.parse()?;
    let store = tempfile::tempdir()?;
    let clock = Arc::new(FixedClock::at(today));
    {
        let mut engine = Engine::open(
            store.path(),
            &fieldbook_app::secrets::Secrets::key_file_beside(store.path()),
            clock.clone(),
        )?;
        engine.create_many(&synth::dossiers(11, 60, &["li"], today))?;
        while engine.index_pending(1000)? > 0 {}
    }
    let service = AppService::open(
        store.path(),
        &fieldbook_app::secrets::Secrets::key_file_beside(store.path()),
        clock,
    )?;
    for (lang, tag) in [(Lang::Zh, "zh"), (Lang::En, "en")] {
        service.serve(SaveSettings {
            settings: Settings {
                language: Some(lang),
                onboarded: true,
            },
        })?;
        for (width, height, size) in [(1200, 800, "desktop"), (390, 844, "phone")] {
            let app = AppWindow::launch(store.path(), TODAY).await?;
            app.client.set_window_size(width, height).await?;
            app.wait_for(".dossier-row").await?;
            shoot(&app, &args.out, &format!("list-{size}-{tag}")).await?;
            app.click(".dossier-row").await?;
            app.wait_for("#decision-chain .node").await?;
            shoot(&app, &args.out, &format!("dossier-{size}-{tag}")).await?;
            app.click("#record-here").await?;
            app.wait_for("#meeting-notes").await?;
            shoot(&app, &args.out, &format!("meeting-{size}-{tag}")).await?;
            app.close().await?;
        }
    }
    Ok(())
}
