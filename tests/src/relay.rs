//! A real relay process on 127.0.0.1 for tests, and devices syncing with it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use fieldbook_app::Engine;
use fieldbook_app::sync::{Mode, RelayConfig, SyncError, SyncReport, Trust, sync_with_relay};

/// A relay process serving a SQLite file in `dir` (or the database of
/// [`RelayProcess::start_on`]). Killed (SIGKILL) when dropped.
pub struct RelayProcess {
    bin: PathBuf,
    dir: PathBuf,
    /// A database URL other than the SQLite file in `dir`.
    database: Option<String>,
    serve_args: Vec<String>,
    child: Option<Child>,
    pub url: String,
    /// The test CA the relay's certificate comes from, when it serves TLS.
    pub ca_pem: Option<String>,
}

impl RelayProcess {
    /// Start the relay binary `bin` on a free loopback port.
    pub fn start(bin: &Path, dir: &Path) -> anyhow::Result<RelayProcess> {
        Self::start_with(bin, dir, &[])
    }

    /// Start with extra `serve` options.
    pub fn start_with(bin: &Path, dir: &Path, serve_args: &[&str]) -> anyhow::Result<RelayProcess> {
        Self::start_on(bin, dir, None, serve_args)
    }

    /// Start on the database `url` names (None: a SQLite file in `dir`).
    pub fn start_on(
        bin: &Path,
        dir: &Path,
        url: Option<&str>,
        serve_args: &[&str],
    ) -> anyhow::Result<RelayProcess> {
        let mut relay = RelayProcess {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            database: url.map(str::to_string),
            serve_args: serve_args.iter().map(|s| s.to_string()).collect(),
            child: None,
            url: String::new(),
            ca_pem: None,
        };
        relay.spawn("127.0.0.1:0")?;
        Ok(relay)
    }

    /// Start serving HTTPS/WSS, as a team would run it, with a certificate for 127.0.0.1 from
    /// a test CA of its own (kept across restarts); devices enrolled with
    /// [`enrolled_device`] trust that CA.
    pub fn start_tls(bin: &Path, dir: &Path) -> anyhow::Result<RelayProcess> {
        Self::start_tls_with(bin, dir, &[])
    }

    /// [`RelayProcess::start_tls`] with extra `serve` options.
    pub fn start_tls_with(
        bin: &Path,
        dir: &Path,
        serve_args: &[&str],
    ) -> anyhow::Result<RelayProcess> {
        let ca = crate::tls::TestCa::new("Fieldbook test CA")?;
        let (cert, key) = ca.issue(
            &dir.join("pki"),
            &["127.0.0.1", "localhost"],
            crate::tls::Validity::Current,
        )?;
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        let mut args = vec!["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
        args.extend_from_slice(serve_args);
        let mut relay = Self::start_with(bin, dir, &args)?;
        relay.ca_pem = Some(ca.pem());
        Ok(relay)
    }

    /// What a device must trust to reach this relay.
    pub fn trust(&self) -> Trust {
        Trust {
            ca_pem: self.ca_pem.clone(),
            insecure: false,
        }
    }

    /// What a browser is told to trust of this relay, when it serves TLS: the SHA-256 of its
    /// certificate's public key, for Chromium's `--ignore-certificate-errors-spki-list` (which
    /// accepts exactly that key, as a browser that trusts the team's CA accepts its relay).
    pub fn spki_pin(&self) -> anyhow::Result<Option<String>> {
        use base64::Engine as _;
        use rcgen::PublicKeyData;
        use sha2::Digest;
        if self.ca_pem.is_none() {
            return Ok(None);
        }
        let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(
            self.dir.join("pki").join("key.pem"),
        )?)?;
        let digest = sha2::Sha256::digest(key.subject_public_key_info());
        Ok(Some(
            base64::engine::general_purpose::STANDARD.encode(digest),
        ))
    }

    pub fn db_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.db_path().display()),
        }
    }

    /// The relay's store, opened beside it (as a second instance would).
    pub fn store(&self) -> anyhow::Result<Box<dyn fieldbook_relay::store::RelayStore>> {
        Ok(fieldbook_relay::store::open(&self.db_url())?)
    }

    /// The SQLite file, when the relay serves one.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("relay.sqlite")
    }

    /// Wait until the relay has checked everything devices vouched for (their live edits and
    /// new dossiers are stored as given and checked off the sync path: see
    /// `fieldbook_relay::check`); returns how long that took.
    pub fn wait_checked(&self, within: Duration) -> anyhow::Result<Duration> {
        let store = self.store()?;
        let started = std::time::Instant::now();
        while !store.unchecked(1)?.is_empty() {
            if started.elapsed() > within {
                bail!("the relay left dossiers unchecked for {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(started.elapsed())
    }

    fn spawn(&mut self, listen: &str) -> anyhow::Result<()> {
        let mut child = Command::new(&self.bin)
            .args(["--db", &self.db_url(), "serve", "--listen", listen])
            .args(&self.serve_args)
            .env(
                "FIELDBOOK_RELAY_LOG",
                std::env::var("FIELDBOOK_TEST_RELAY_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the relay")?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!("the relay did not start: {line:?}");
        };
        self.url = url.to_string();
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGTERM, then wait for the process to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> anyhow::Result<bool> {
        let Some(mut c) = self.child.take() else {
            return Ok(false);
        };
        let status = Command::new("kill").arg(c.id().to_string()).status()?;
        anyhow::ensure!(status.success(), "kill failed");
        Ok(c.wait()?.success())
    }

    /// SIGKILL: no shutdown, no flush; only what SQLite committed survives.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port, on the same database.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let addr = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, a)| a)
            .to_string();
        // The port was just freed; retry briefly in case the OS holds it.
        for _ in 0..50 {
            if self.spawn(&addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the relay did not restart on {addr}")
    }

    /// Run an admin command on the relay's database; returns its stdout.
    pub fn admin(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.bin)
            .args(["--db", &self.db_url()])
            .args(args)
            .env("FIELDBOOK_RELAY_LOG", "warn")
            .output()?;
        if !out.status.success() {
            bail!(
                "relay {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Set `user`'s web password (the admin's `password` command, reading standard input).
    pub fn set_password(&self, team: &str, user: &str, password: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let mut child = Command::new(&self.bin)
            .args([
                "--db",
                &self.db_url(),
                "password",
                "--team",
                team,
                "--user",
                user,
            ])
            .env("FIELDBOOK_RELAY_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        writeln!(child.stdin.take().context("stdin")?, "{password}")?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("password: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// A one-time invite code for `user` in `team` (created if new).
    pub fn invite(&self, team: &str, user: &str, role: &str) -> anyhow::Result<String> {
        if self.admin(&["team", "create", team]).is_err() {
            // Already exists.
        }
        Ok(self
            .admin(&["invite", "--team", team, "--user", user, "--role", role])?
            .trim()
            .to_string())
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The relay binary built beside the running program (the benches' and soak's way to find
/// it: `cargo build -p fieldbook-tests --bins` builds both).
pub fn relay_beside_this_program() -> anyhow::Result<PathBuf> {
    let bin = std::env::current_exe()?.with_file_name("relay");
    anyhow::ensure!(
        bin.exists(),
        "build the relay first: {} is missing",
        bin.display()
    );
    Ok(bin)
}

/// Sync `engine` with its relay once (everything there is), on a fresh runtime.
pub fn sync_once(engine: &mut Engine) -> Result<SyncReport, SyncError> {
    let relay = engine.relay_config()?.ok_or(SyncError::NotEnrolled)?;
    sync_to(engine, &relay)
}

pub fn sync_to(engine: &mut Engine, relay: &RelayConfig) -> Result<SyncReport, SyncError> {
    sync_within(engine, relay, Duration::from_secs(900))
}

/// Sync once, failing with [`SyncError::TimedOut`] after `deadline`: a hang is an error.
pub fn sync_within(
    engine: &mut Engine,
    relay: &RelayConfig,
    deadline: Duration,
) -> Result<SyncReport, SyncError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SyncError::Unreachable {
            url: relay.url.clone(),
            reason: e.to_string(),
        })?;
    let (_stop_tx, mut stop) = tokio::sync::watch::channel(false);
    runtime.block_on(async {
        let mut handle = &mut *engine;
        let sync = sync_with_relay(&mut handle, relay, Mode::Once, &mut stop, |_| {});
        match tokio::time::timeout(deadline, sync).await {
            Ok(r) => r,
            Err(_) => Err(SyncError::TimedOut(deadline.as_secs())),
        }
    })
}

/// Enrol a fresh rep's device in `dir` with the relay.
pub fn enrolled_device(
    relay: &RelayProcess,
    dir: &Path,
    team: &str,
    user: &str,
    name: &str,
) -> anyhow::Result<Engine> {
    enrolled_device_as(relay, dir, team, user, name, "rep")
}

/// Enrol a fresh device in `dir` for `user` with `role` (rep or manager).
pub fn enrolled_device_as(
    relay: &RelayProcess,
    dir: &Path,
    team: &str,
    user: &str,
    name: &str,
    role: &str,
) -> anyhow::Result<Engine> {
    let mut engine = crate::device(dir, user, name)?;
    let code = relay.invite(team, user, role)?;
    fieldbook_app::sync::enroll(&mut engine, &relay.url, &code, &relay.trust())?;
    Ok(engine)
}

/// Every device and the relay hold the same dossiers, with the same heads; Err says where
/// they differ.
pub fn same_everywhere(
    relay: &RelayProcess,
    team: &str,
    devices: &[&Engine],
) -> anyhow::Result<usize> {
    use fieldbook_shared::document::DossierDoc;
    let store = relay.store()?;
    let team_id = store.team_id(team)?.context("no such team")?;
    let (_, mut ids) = store.changed_since(team_id, 0)?;
    ids.sort();
    for (i, device) in devices.iter().enumerate() {
        let mut held = device.ids()?;
        held.sort();
        if held != ids {
            bail!(
                "device {i} holds {} dossiers, the relay {}",
                held.len(),
                ids.len()
            );
        }
    }
    for id in &ids {
        let stored = store
            .load_doc(team_id, id)?
            .context("listed but not stored")?;
        let heads = DossierDoc::load(&stored.bytes)?.heads();
        for (i, device) in devices.iter().enumerate() {
            let mine = DossierDoc::load(&device.export_document(id)?)?.heads();
            if mine != heads {
                bail!("device {i} and the relay differ on {id}");
            }
        }
    }
    Ok(ids.len())
}

/// A device's background sync loop (the app's and `fieldbook sync --watch`'s), on a thread
/// of its own, with its link state to watch.
pub struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    pub states: tokio::sync::watch::Receiver<fieldbook_app::sync::LinkState>,
    thread: std::thread::JoinHandle<()>,
}

impl Background {
    pub fn start(engine: std::sync::Arc<std::sync::Mutex<Engine>>) -> Background {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (state_tx, states) =
            tokio::sync::watch::channel(fieldbook_app::sync::LinkState::Connecting);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the background loop");
            rt.block_on(fieldbook_app::sync::run_background(
                engine, state_tx, stopped,
            ));
        });
        Background {
            stop,
            states,
            thread,
        }
    }

    pub fn is_connected(&self) -> bool {
        matches!(
            *self.states.borrow(),
            fieldbook_app::sync::LinkState::Connected { .. }
        )
    }

    /// Stop the loop and wait for its thread.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        self.thread
            .join()
            .expect("the background loop ended cleanly");
    }
}

/// A raw WebSocket to the relay's sync route.
pub type RawSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl RelayProcess {
    /// Open the sync WebSocket as a device with `token` would (over TLS, trusting the test CA,
    /// when the relay serves TLS), with frames up to 64 MiB either way.
    pub async fn open_socket(
        &self,
        token: &str,
    ) -> Result<RawSocket, tokio_tungstenite::tungstenite::Error> {
        self.open_socket_with(&[("authorization", format!("Bearer {token}"))])
            .await
    }

    /// [`RelayProcess::open_socket`] with these request headers (a credential or none).
    pub async fn open_socket_with(
        &self,
        headers: &[(&'static str, String)],
    ) -> Result<RawSocket, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = self
            .url
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        let mut req = format!("{url}/v1/sync").into_client_request()?;
        for (name, value) in headers {
            req.headers_mut().insert(
                *name,
                value
                    .parse()
                    .map_err(tokio_tungstenite::tungstenite::http::Error::from)?,
            );
        }
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        let tls = fieldbook_app::sync::client_config(&self.trust())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
            req,
            Some(config),
            false,
            Some(tokio_tungstenite::Connector::Rustls(tls)),
        )
        .await?;
        Ok(ws)
    }

    /// An HTTP client trusting what devices of this relay trust, that answers every status
    /// rather than failing on 4xx/5xx.
    pub fn http(&self) -> ureq::Agent {
        fieldbook_app::sync::agent(&self.trust(), Duration::from_secs(30))
            .expect("the test CA reads as a certificate")
    }

    /// Whether the relay answers its health check.
    pub fn healthy(&self) -> bool {
        self.http()
            .get(format!("{}/health", self.url))
            .call()
            .is_ok_and(|r| r.status() == 200)
    }
}

/// Send raw WebSocket messages with a device's `token`; return what came back, until the relay
/// has been `quiet` that long, and the close frame, if any.
pub fn raw_exchange(
    relay: &RelayProcess,
    token: &str,
    send: Vec<tokio_tungstenite::tungstenite::Message>,
    quiet: Duration,
) -> (
    Vec<tokio_tungstenite::tungstenite::Message>,
    Option<(u16, String)>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use futures_util::{SinkExt, StreamExt};
        let mut ws = relay.open_socket(token).await.unwrap();
        for m in send {
            if ws.send(m).await.is_err() {
                break;
            }
        }
        let mut received = Vec::new();
        let mut closed = None;
        while let Ok(Some(m)) = tokio::time::timeout(quiet, ws.next()).await {
            match m {
                Ok(tokio_tungstenite::tungstenite::Message::Close(f)) => {
                    closed = f.map(|f| (u16::from(f.code), f.reason.to_string()));
                    break;
                }
                Ok(m) => received.push(m),
                Err(_) => break,
            }
        }
        (received, closed)
    })
}
