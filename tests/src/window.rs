//! The real app window under WebDriver, for end-to-end tests: `tauri-driver` starts
//! WebKitWebDriver, which starts the `fieldbook-desktop` binary in a WebKitGTK window; the test
//! drives that window with the `fantoccini` client. Needs a display (Xvfb in CI) and the app
//! built with `scripts/setup-app.sh --debug`. The same helpers drive the UI in headless
//! Chromium, as the relay serves it to a manager's browser ([`AppWindow::chromium`]).

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long any one thing may take to appear. Generous: a cold WebKit on a busy 2-core CI
/// machine takes seconds to show its first page.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The app binary the tests drive: `FIELDBOOK_DESKTOP_BIN`, else the debug build in the
/// workspace's target directory.
pub fn app_binary() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("FIELDBOOK_DESKTOP_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("debug/fieldbook-desktop")
        }
    };
    if !path.is_file() {
        bail!(
            "{} is missing: build the app window with `scripts/setup-app.sh --debug` \
             (or set FIELDBOOK_DESKTOP_BIN)",
            path.display()
        );
    }
    Ok(path)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One running app instance with its own store, and the WebDriver session on its window.
pub struct AppWindow {
    driver: Option<Child>,
    pub client: Client,
}

impl AppWindow {
    /// Start the app on the store in `data_dir`, its clock set to `today` (YYYY-MM-DD).
    pub async fn launch(data_dir: &Path, today: &str) -> anyhow::Result<AppWindow> {
        let app = app_binary()?;
        let (port, native_port) = (free_port()?, free_port()?);
        // The app inherits this environment through WebKitWebDriver.
        let mut driver = Command::new("tauri-driver")
            .args(["--port", &port.to_string()])
            .args(["--native-port", &native_port.to_string()])
            .env("FIELDBOOK_DATA_DIR", data_dir)
            // No keystore under Xvfb: the store's key in a file (as the benches and tests).
            .env(
                "FIELDBOOK_KEY_FILE",
                fieldbook_app::secrets::key_file_beside(data_dir),
            )
            .env("FIELDBOOK_TODAY", today)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting tauri-driver (installed by scripts/setup-app.sh)")?;
        // tauri-driver forwards to WebKitWebDriver, which it starts itself: a session asked
        // for before *both* listen fails at once (seen on a cold CI machine).
        let started = Instant::now();
        for p in [port, native_port] {
            while TcpStream::connect(("127.0.0.1", p)).is_err() {
                if started.elapsed() > Duration::from_secs(30) {
                    terminate(&mut driver);
                    bail!("tauri-driver / WebKitWebDriver did not listen on port {p}");
                }
                if let Some(status) = driver.try_wait()? {
                    bail!("tauri-driver exited at start: {status}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("wry"));
        caps.insert(
            "tauri:options".into(),
            json!({ "application": app.to_string_lossy() }),
        );
        session(driver, port, caps, "the app window").await
    }

    /// Headless Chromium (Debian's `chromium` and `chromedriver`) showing `url`: the UI as a
    /// manager's browser shows it, served by the relay. `profile` holds the browser's profile
    /// (cookies), so two instances are two people.
    pub async fn chromium(url: &str, profile: &Path) -> anyhow::Result<AppWindow> {
        Self::chromium_trusting(url, profile, None).await
    }

    /// [`AppWindow::chromium`], accepting the relay's certificate by its public key's pin (see
    /// `RelayProcess::spki_pin`) when it serves TLS from a test CA.
    pub async fn chromium_trusting(
        url: &str,
        profile: &Path,
        spki_pin: Option<&str>,
    ) -> anyhow::Result<AppWindow> {
        let port = free_port()?;
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "starting chromedriver (Debian's chromium-driver, see scripts/setup-app.sh)",
            )?;
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                terminate(&mut driver);
                bail!("chromedriver did not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut caps = serde_json::Map::new();
        // The flags the machine's notes give for a closed network: no background fetches.
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if let Some(pin) = spki_pin {
            args.push(format!("--ignore-certificate-errors-spki-list={pin}"));
        }
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        let page = session(driver, port, caps, "Chromium").await?;
        page.client
            .goto(url)
            .await
            .context("opening the web view")?;
        Ok(page)
    }

    /// Close the window (the app exits with it) and stop the driver.
    pub async fn close(mut self) -> anyhow::Result<()> {
        let closed = self.client.clone().close().await;
        if let Some(mut d) = self.driver.take() {
            terminate(&mut d);
        }
        closed.context("closing the app window")?;
        Ok(())
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.try_click(css).await {
                Ok(()) => return Ok(()),
                // Rendered again between finding it and clicking it (a view that reloads as
                // the team's data moves): a user's click lands on what is there now, so find
                // it again.
                Err(e)
                    if attempts < 5
                        && e.downcast_ref::<fantoccini::error::CmdError>()
                            .is_some_and(replaced) =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => {
                    let shot = self.save_screenshot(css).await;
                    bail!("clicking {css}: {e:?} (the window then: {shot})")
                }
            }
        }
    }

    async fn try_click(&self, css: &str) -> anyhow::Result<()> {
        self.wait_for(css).await?;
        // To the middle of the viewport, as a user would scroll to it: WebDriver's own
        // scrolling puts it at the top edge, under the app's sticky header.
        self.client
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})",
                vec![serde_json::Value::String(css.into())],
            )
            .await?;
        self.client.find(Locator::Css(css)).await?.click().await?;
        Ok(())
    }

    /// A picture of the window for a failure message: where it was saved, or why not.
    async fn save_screenshot(&self, label: &str) -> String {
        let name: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = std::env::temp_dir().join(format!("fieldbook-e2e-{name}.png"));
        match self.client.screenshot().await {
            Ok(png) => match std::fs::write(&path, png) {
                Ok(()) => path.display().to_string(),
                Err(e) => format!("not saved: {e}"),
            },
            Err(e) => format!("no screenshot: {e}"),
        }
    }

    /// Types into an input as a user would (key events, so the UI's input handlers run).
    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.wait_for(css).await?;
        self.client
            .find(Locator::Css(css))
            .await?
            .send_keys(text)
            .await
            .map_err(|e| anyhow::anyhow!("typing into {css}: {e:?}"))?;
        Ok(())
    }

    /// Waits until an element matching `css` is in the page.
    pub async fn wait_for(&self, css: &str) -> anyhow::Result<()> {
        self.eventually(&format!("{css} to appear"), || async {
            Ok(self.count(css).await? > 0).map(|found| found.then_some(()))
        })
        .await
    }

    pub async fn count(&self, css: &str) -> anyhow::Result<u64> {
        let v = self
            .on(css, "return document.querySelectorAll(arguments[0]).length")
            .await?;
        Ok(v.as_u64().unwrap_or(0))
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> anyhow::Result<Option<String>> {
        let v = self
            .on(
                css,
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null",
            )
            .await?;
        Ok(v.as_str().map(str::to_string))
    }

    /// The texts of every element matching `css`.
    pub async fn texts(&self, css: &str) -> anyhow::Result<Vec<String>> {
        let v = self
            .on(
                css,
                "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)",
            )
            .await?;
        Ok(serde_json::from_value(v)?)
    }

    /// Waits until the first element matching `css` has text for which `ok` holds; returns it.
    pub async fn wait_text(
        &self,
        css: &str,
        what: &str,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        self.eventually(&format!("{css}: {what}"), || async {
            Ok(self.text(css).await?.filter(|t| ok(t)))
        })
        .await
    }

    /// Runs `script` in the page with `css` as `arguments[0]`.
    async fn on(&self, css: &str, script: &str) -> anyhow::Result<Value> {
        self.js(script, json!([css])).await
    }

    pub async fn js(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        let args = match args {
            Value::Array(a) => a,
            other => vec![other],
        };
        Ok(self.client.execute(script, args).await?)
    }

    /// Polls `probe` until it gives a value, for at most [`PATIENCE`].
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut probe: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<T>>>,
    {
        let started = Instant::now();
        loop {
            if let Some(v) = probe().await? {
                return Ok(v);
            }
            if started.elapsed() > PATIENCE {
                let shot = self.save_screenshot(what).await;
                bail!(
                    "waited {} s for {what} (the window then: {shot})",
                    PATIENCE.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

/// A WebDriver session through the driver listening on `port` (stopped if none is had).
async fn session(
    mut driver: Child,
    port: u16,
    caps: serde_json::Map<String, Value>,
    what: &str,
) -> anyhow::Result<AppWindow> {
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    match ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
    {
        Ok(client) => Ok(AppWindow {
            driver: Some(driver),
            client,
        }),
        Err(e) => {
            terminate(&mut driver);
            bail!("no WebDriver session with {what}: {e}");
        }
    }
}

impl Drop for AppWindow {
    fn drop(&mut self) {
        if let Some(mut d) = self.driver.take() {
            terminate(&mut d);
        }
    }
}

/// SIGTERM, so tauri-driver stops its WebKitWebDriver child too (on SIGKILL the child would
/// keep running and hold its port).
fn terminate(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether a WebDriver command failed because the element it was given went away: stale, or
/// gone when a script looked for it.
fn replaced(e: &fantoccini::error::CmdError) -> bool {
    use fantoccini::error::{CmdError, ErrorStatus};
    match e {
        CmdError::Standard(w) => {
            w.error == ErrorStatus::StaleElementReference
                || (w.error == ErrorStatus::JavascriptError && w.message.contains("of null"))
        }
        _ => false,
    }
}
