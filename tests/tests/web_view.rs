//! The manager's web view end to end in headless Chromium: the relay process serves the built
//! UI and its API; a manager logs in, reads the team board, opens a dossier, assigns a
//! follow-up that reaches the rep's device, revokes the rep's lost laptop (which wipes itself);
//! a manager of another team sees none of it.
//!
//! Needs Debian's chromium + chromium-driver and the UI built (`scripts/setup-app.sh`), so a
//! plain `cargo test` leaves it out (ignored); `scripts/test.sh` runs it:
//!     cargo test --workspace --test web_view -- --ignored
//! With `FIELDBOOK_SCREENSHOTS=<dir>` it also saves the board as the README shows it.

use std::path::{Path, PathBuf};

use fieldbook_shared::Day;
use fieldbook_tests::relay::{RelayProcess, enrolled_device, sync_once};
use fieldbook_tests::window::AppWindow;
use serde_json::json;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");
const TODAY: &str = "2026-11-23";

fn ui_dist() -> anyhow::Result<PathBuf> {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/dist");
    anyhow::ensure!(
        dist.join("index.html").is_file(),
        "{} has no built UI: run scripts/build-ui.sh (or scripts/setup-app.sh)",
        dist.display()
    );
    Ok(dist)
}

/// A device's sync runs its own runtime: on a plain thread, not this test's.
fn sync_off_runtime(engine: &mut fieldbook_app::Engine) -> anyhow::Result<()> {
    let synced = std::thread::scope(|s| s.spawn(|| sync_once(engine).map(|_| ())).join());
    synced.map_err(|_| anyhow::anyhow!("the sync thread panicked"))??;
    Ok(())
}

async fn log_in(page: &AppWindow, team: &str, user: &str, password: &str) -> anyhow::Result<()> {
    page.type_into("#login-team", team).await?;
    page.type_into("#login-user", user).await?;
    page.type_into("#login-password", password).await?;
    page.click("#login").await?;
    page.wait_for("#board-summary").await
}

/// Save the page at `width` (if screenshots were asked for).
async fn screenshot(page: &AppWindow, name: &str, width: u32) -> anyhow::Result<()> {
    let Some(dir) = std::env::var_os("FIELDBOOK_SCREENSHOTS") else {
        return Ok(());
    };
    page.client.set_window_size(width, 2400).await?;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let png = page.client.screenshot().await?;
    std::fs::create_dir_all(&dir)?;
    std::fs::write(Path::new(&dir).join(format!("{name}.png")), png)?;
    page.client.set_window_size(1280, 900).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and the built UI; scripts/test.sh runs it"]
async fn a_manager_logs_in_reads_the_board_and_assigns_a_follow_up() -> anyhow::Result<()> {
    let dist = ui_dist()?;
    let dir = tempfile::tempdir()?;
    // Over TLS, as a team serves the web view: the browser accepts the relay's key, pinned.
    let relay = RelayProcess::start_tls_with(
        RELAY.as_ref(),
        dir.path(),
        &["--today", TODAY, "--ui", &dist.to_string_lossy()],
    )?;
    // A rep's dossiers reach the relay; the manager and another team's manager get passwords.
    let mut li = enrolled_device(&relay, &dir.path().join("li"), "north", "li", "li-laptop")?;
    let today: Day = TODAY.parse()?;
    let items = fieldbook_app::synth::dossiers(11, 24, &["li", "wang"], today);
    li.create_many(&items)?;
    sync_off_runtime(&mut li)?;
    relay.invite("north", "wang", "rep")?;
    relay.invite("north", "chen", "manager")?;
    relay.set_password("north", "chen", "manager-password-1")?;
    relay.invite("south", "sun", "manager")?;
    relay.set_password("south", "sun", "south-password-1")?;

    let pin = relay.spki_pin()?;
    let page =
        AppWindow::chromium_trusting(&relay.url, &dir.path().join("chen-browser"), pin.as_deref())
            .await?;
    page.wait_for("#login-team").await?;
    log_in(&page, "north", "chen", "manager-password-1").await?;
    page.wait_text("#kpi-dossiers", "every dossier on the board", |t| t == "24")
        .await?;
    for section in [
        "#pipeline",
        "#work-order",
        "#activity",
        "#overdue",
        "#complaints",
        "#reviews",
        "#quiet",
        "#classification",
        "#freshness",
    ] {
        page.wait_for(section).await?;
    }
    // Charts are SVG drawn in the page.
    assert!(
        page.count("#pipeline .chart svg").await? >= 2,
        "funnel and stage charts"
    );
    assert!(page.count("#classification .chart svg").await? >= 3);
    // Activity by kind, for the team or one rep.
    let team_kinds = page
        .js(
            "return document.querySelector('#activity-by-kind').innerHTML",
            json!([]),
        )
        .await?;
    assert!(team_kinds.as_str().is_some_and(|h| h.contains("<svg")));
    page.js(
        "const s = document.querySelector('#activity-who'); s.value = 'wang';\
         s.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([]),
    )
    .await?;
    page.eventually("wang's activity by kind", || async {
        let now = page
            .js(
                "return document.querySelector('#activity-by-kind').innerHTML",
                json!([]),
            )
            .await?;
        Ok((now != team_kinds).then_some(()))
    })
    .await?;
    // Each device on its own line.
    page.wait_for("#freshness tr.device[data-device='li-laptop']")
        .await?;
    // li synced, wang never did: stale.
    page.wait_for("#freshness tr.stale[data-rep='wang']")
        .await?;
    assert_eq!(page.count("#freshness tr.stale[data-rep='li']").await?, 0);
    // The web view starts in Chinese; the README's pictures are in both.
    screenshot(&page, "team-board-zh", 1280).await?;
    page.click("#lang-toggle").await?;
    page.wait_text("#lang-toggle", "English on", |t| t == "中文")
        .await?;
    screenshot(&page, "team-board-en", 1280).await?;
    screenshot(&page, "team-board-phone-en", 400).await?;

    // Drill down into a dossier from the board.
    let first = page
        .eventually("a client link", || async {
            Ok(page
                .js(
                    "const a = document.querySelector('#quiet a.client, #overdue a.client');\
                     return a ? [a.dataset.id, a.textContent] : null;",
                    json!([]),
                )
                .await?
                .as_array()
                .cloned())
        })
        .await?;
    let id = first[0].as_str().unwrap_or_default().to_string();
    let name = first[1].as_str().unwrap_or_default().to_string();
    page.click(&format!("a.client[data-id='{id}']")).await?;
    page.wait_text("#dossier-name", "the dossier", |t| t == name)
        .await?;
    assert_eq!(
        page.count("#record-here").await?,
        0,
        "the web view does not edit"
    );

    // A note assigning a follow-up to the dossier's rep.
    let owner = items
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, d)| d.profile.owner.clone())
        .unwrap_or_default();
    page.type_into("#note-text", "Please call the HR director this week")
        .await?;
    let rep = page
        .js(
            "return document.querySelector('#note-rep').value",
            json!([]),
        )
        .await?;
    assert_eq!(
        rep.as_str(),
        Some(owner.as_str()),
        "the rep field starts as the owner"
    );
    page.type_into("#note-action", "Call the HR director")
        .await?;
    page.js(
        "const d = document.querySelector('#note-due'); d.value = '2026-11-27';\
         d.dispatchEvent(new Event('input', {bubbles: true}));",
        json!([]),
    )
    .await?;
    page.click("#note-add").await?;
    page.wait_text("#notes li.note .assigned", "the assigned follow-up", |t| {
        t.contains(&owner) && t.contains("Call the HR director")
    })
    .await?;
    screenshot(&page, "web-dossier-note-en", 1280).await?;

    // It reaches the rep's device on the next sync.
    sync_off_runtime(&mut li)?;
    let d = li.dossier(&id)?.dossier;
    let f = d
        .follow_ups
        .values()
        .find(|f| f.action == "Call the HR director")
        .expect("the follow-up reached li's device");
    assert_eq!(
        (f.assignee_name.as_str(), f.due),
        (owner.as_str(), Some("2026-11-27".parse()?))
    );

    // The manager lets reps see only their own dossiers, from the board.
    page.click("#team-view").await?;
    page.wait_for("#freshness select#visibility").await?;
    page.js(
        "const s = document.querySelector('#visibility'); s.value = 'own';\
         s.dispatchEvent(new Event('change', {bubbles: true})); return true;",
        json!([]),
    )
    .await?;
    page.eventually("the team's visibility set to own", || async {
        let store = relay.store()?;
        let team = store
            .team_id("north")?
            .ok_or_else(|| anyhow::anyhow!("no team"))?;
        Ok(
            (store.visibility(team)?.policy == fieldbook_shared::sync::wire::Visibility::Own)
                .then_some(()),
        )
    })
    .await?;

    // li's laptop is lost: the manager revokes it from its line on the board (asked, then
    // done); on its next contact the laptop learns it and wipes its replica.
    let laptop = "#freshness tr.device[data-device='li-laptop']";
    page.wait_for(&format!("{laptop} button.revoke-device"))
        .await?;
    page.click(&format!("{laptop} button.revoke-device"))
        .await?;
    page.click(&format!("{laptop} button.confirm-revoke"))
        .await?;
    page.eventually("the laptop's line gone from the board", || async {
        Ok((page.count(laptop).await? == 0).then_some(()))
    })
    .await?;
    let told = sync_off_runtime(&mut li).expect_err("a revoked device cannot sync");
    assert!(
        told.to_string().contains("revoked") && told.to_string().contains("wiped"),
        "{told}"
    );
    assert!(li.ids()?.is_empty(), "the laptop's replica is wiped");

    page.close().await?;

    // Another team's manager: an empty board, and north's dossier does not exist.
    let other =
        AppWindow::chromium_trusting(&relay.url, &dir.path().join("sun-browser"), pin.as_deref())
            .await?;
    other.wait_for("#login-team").await?;
    log_in(&other, "south", "sun", "south-password-1").await?;
    other
        .wait_text("#kpi-dossiers", "south's empty board", |t| t == "0")
        .await?;
    assert_eq!(other.count("a.client").await?, 0);
    let status = other
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             fetch('/api/open_dossier', {method: 'POST', credentials: 'same-origin',\
               headers: {'content-type': 'application/json'}, body: JSON.stringify({id: arguments[0]})})\
             .then(r => done(r.status));",
            vec![json!(id)],
        )
        .await?;
    assert_eq!(
        status.as_u64(),
        Some(404),
        "north's dossier is not south's to open"
    );
    other.close().await?;
    Ok(())
}
