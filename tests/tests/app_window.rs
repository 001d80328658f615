//! End to end through the real app window: tauri-driver → WebKitWebDriver → `fieldbook-desktop`
//! (WebKitGTK, the same webview a rep's Linux desktop uses), each instance on its own SQLite
//! store, syncing through a real relay process on 127.0.0.1.
//!
//! These need a display and the app built, so plain `cargo test` leaves them out (ignored);
//! `scripts/test.sh` (what CI runs) builds the window and runs them under Xvfb:
//!     scripts/setup-app.sh --debug
//!     xvfb-run -a cargo test --workspace --test app_window -- --ignored --test-threads=1

use fieldbook_tests::relay::RelayProcess;
use fieldbook_tests::window::AppWindow;

const RELAY: &str = env!("CARGO_BIN_EXE_relay");

/// First run in English, working offline.
async fn first_run_offline(app: &AppWindow) -> anyhow::Result<()> {
    app.click("#lang-en").await?;
    app.click("#skip").await?;
    app.wait_for("#new-client").await
}

/// First run in English, joining the team with an invite code, trusting the relay's CA.
async fn first_run_enrolled(
    app: &AppWindow,
    relay: &RelayProcess,
    invite: &str,
) -> anyhow::Result<()> {
    app.click("#lang-en").await?;
    app.type_into("#relay-url", &relay.url).await?;
    app.type_into("#invite", invite).await?;
    if let Some(pem) = &relay.ca_pem {
        // The team's own CA, pasted into the form's optional part.
        app.click("#team-ca summary").await?;
        // Something that is not a certificate first: one sentence, and nothing joined.
        app.type_into("#ca-pem", "ca.pem").await?;
        app.click("#enroll").await?;
        app.wait_text(".error", "the CA refused", |t| {
            t.contains("CA certificate given in the join form")
        })
        .await?;
        app.click(".error .dismiss").await?;
        app.client
            .find(fantoccini::Locator::Css("#ca-pem"))
            .await?
            .clear()
            .await?;
        app.type_into("#ca-pem", pem).await?;
    }
    app.click("#enroll").await?;
    app.wait_for("#new-client").await?;
    app.wait_text("#sync-status", "synced", |t| t.contains("Synced"))
        .await?;
    Ok(())
}

async fn new_client(app: &AppWindow, name: &str) -> anyhow::Result<()> {
    app.click("#new-client").await?;
    app.type_into("#new-name", name).await?;
    app.type_into("#new-industry", "Logistics").await?;
    app.click("#create").await?;
    app.wait_text("#dossier-name", "the new dossier", |t| t == name)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a display and the app window: scripts/test.sh runs it"]
async fn a_rep_records_a_meeting_and_finds_the_follow_up_overdue_two_days_later()
-> anyhow::Result<()> {
    let store = tempfile::tempdir()?;
    let app = AppWindow::launch(store.path(), "2026-11-23").await?;
    first_run_offline(&app).await?;
    app.wait_text("#sync-status", "offline only", |t| {
        t.contains("offline only")
    })
    .await?;

    new_client(&app, "Harbour Logistics").await?;

    // A person with two decision roles, marked as the coach.
    app.type_into("#person-name", "Wang Fang").await?;
    app.type_into("#person-title", "HR Director").await?;
    app.click("#person-roles input[value=decider]").await?;
    app.click("#person-roles input[value=influencer]").await?;
    app.click("#person-coach").await?;
    app.click("#add-person").await?;
    app.wait_text("#decision-chain .node", "Wang Fang in the chain", |t| {
        t.contains("Wang Fang")
    })
    .await?;
    assert_eq!(app.count("#decision-chain .node .badge.coach").await?, 1);
    let roles = app.texts("#decision-chain .node .badge.role").await?;
    assert_eq!(roles, ["Decider", "Influencer"], "roles shown: {roles:?}");

    // A deal removed by mistake comes back with "Undo".
    app.type_into("#deal-title", "Leadership course").await?;
    app.click("#add-deal").await?;
    app.wait_text(".deal h4", "the deal", |t| t.contains("Leadership course"))
        .await?;
    app.click(".deal button.remove").await?;
    app.wait_for("#undo").await?;
    assert_eq!(app.count(".deal").await?, 0);
    app.click("#undo").await?;
    app.wait_text(".deal h4", "the deal back", |t| {
        t.contains("Leadership course")
    })
    .await?;

    // Record a meeting with her, with a next step due tomorrow.
    app.click("#record-here").await?;
    app.click("fieldset.present input").await?;
    app.type_into("#meeting-notes", "Budget for next year's training is open")
        .await?;
    app.type_into("#learned-demand", "Leadership course for 40 managers")
        .await?;
    app.type_into("#next-step", "Send the proposal").await?;
    app.click("#due-tomorrow").await?;
    app.click("#save-meeting").await?;
    app.wait_text(".interaction .notes", "the meeting in the timeline", |t| {
        t.contains("Budget for next year")
    })
    .await?;
    let who = app.text(".interaction .who").await?.unwrap_or_default();
    assert!(who.contains("Wang Fang"), "present: {who}");
    app.wait_text(".follow-up .action", "the follow-up", |t| {
        t == "Send the proposal"
    })
    .await?;
    assert_eq!(
        app.text(".follow-up .due").await?.as_deref(),
        Some("2026-11-24")
    );

    // Today it is not overdue.
    app.click("#back").await?;
    app.click("#filter-overdue").await?;
    app.wait_text("#list-total", "no overdue client today", |t| t == "0")
        .await?;
    app.close().await?;

    // Two days later, the same store: English is remembered, and the client is overdue.
    let app = AppWindow::launch(store.path(), "2026-11-26").await?;
    app.wait_for("#new-client").await?;
    assert_eq!(
        app.text("#record-meeting").await?.as_deref(),
        Some("Record a meeting")
    );
    app.click("#filter-overdue").await?;
    app.wait_text("#list-total", "one overdue client", |t| t == "1")
        .await?;
    assert_eq!(
        app.text(".dossier-row .name").await?.as_deref(),
        Some("Harbour Logistics")
    );
    assert_eq!(app.count(".dossier-row .next.overdue").await?, 1);

    // Switch to Chinese and back.
    app.click("#lang-toggle").await?;
    app.wait_text("#record-meeting", "the Chinese label", |t| t == "记录会谈")
        .await?;
    let lang = app
        .js(
            "return document.documentElement.lang",
            serde_json::json!([]),
        )
        .await?;
    assert_eq!(lang, "zh-CN");
    app.click("#lang-toggle").await?;
    app.wait_text("#record-meeting", "the English label", |t| {
        t == "Record a meeting"
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a display and the app window: scripts/test.sh runs it"]
async fn an_edit_made_with_no_signal_reaches_the_other_device_through_the_relay()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Over TLS, with a certificate from the team's own CA, as a team would run it.
    let mut relay = RelayProcess::start_tls(RELAY.as_ref(), dir.path())?;
    let laptop_invite = relay.invite("east", "li", "rep")?;
    let phone_invite = relay.invite("east", "li", "rep")?;
    let (laptop_store, phone_store) = (tempfile::tempdir()?, tempfile::tempdir()?);

    let laptop = AppWindow::launch(laptop_store.path(), "2026-11-23").await?;
    first_run_enrolled(&laptop, &relay, &laptop_invite).await?;
    let phone = AppWindow::launch(phone_store.path(), "2026-11-23").await?;
    first_run_enrolled(&phone, &relay, &phone_invite).await?;

    // No signal: the relay is gone. The laptop says so, and keeps working.
    relay.kill();
    laptop
        .wait_text("#sync-status", "offline", |t| t.contains("Offline"))
        .await?;
    new_client(&laptop, "Offline Client Co").await?;
    laptop
        .wait_text("#sync-status", "a change waiting", |t| {
            t.contains("changes waiting")
        })
        .await?;
    assert_eq!(phone.count(".dossier-row").await?, 0);

    // Signal again: the laptop reconnects by itself, and the phone's list shows the client.
    relay.restart()?;
    laptop
        .wait_text("#sync-status", "synced", |t| {
            t.contains("Synced") && !t.contains("waiting")
        })
        .await?;
    phone
        .wait_text(".dossier-row .name", "the laptop's client", |t| {
            t == "Offline Client Co"
        })
        .await?;
    phone.close().await?;
    assert_eq!(
        laptop.count("#team-view").await?,
        0,
        "a rep has no team board"
    );

    // The manager's window: the team board from its own replica, li's freshness from the relay.
    let manager_invite = relay.invite("east", "chen", "manager")?;
    let manager_store = tempfile::tempdir()?;
    let manager = AppWindow::launch(manager_store.path(), "2026-11-23").await?;
    first_run_enrolled(&manager, &relay, &manager_invite).await?;
    manager.wait_for(".dossier-row").await?;
    manager.click("#team-view").await?;
    manager
        .wait_text("#kpi-dossiers", "the team's one client", |t| t == "1")
        .await?;
    manager.wait_for("#freshness tr[data-rep='li']").await?;
    assert!(
        manager.count("#pipeline .chart svg").await? >= 2,
        "charts drawn"
    );
    manager.close().await?;

    // The laptop is lost: the relay's admin revokes it (the first of li's devices enrolled).
    // The window, still open, is told on its next contact: it says so, with what had not
    // reached the relay, and shows nothing of the team any more.
    let listed = relay.admin(&["devices", "--team", "east"])?;
    let laptop_id = listed
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("li"))
        .and_then(|l| l.split_whitespace().next())
        .ok_or_else(|| anyhow::anyhow!("no device of li in {listed}"))?
        .to_string();
    relay.admin(&["revoke", &laptop_id])?;
    laptop
        .wait_text("#sync-status", "revoked and wiped", |t| {
            t.contains("revoked") && t.contains("wiped")
        })
        .await?;
    laptop
        .eventually("the wiped laptop's list empty", || async {
            Ok((laptop.count(".dossier-row").await? == 0).then_some(()))
        })
        .await?;
    laptop.close().await
}
