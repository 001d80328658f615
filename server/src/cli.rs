//! `fieldbook-relay`: serve, and the admin commands (run beside a serving relay on the same
//! database; a revocation reaches live connections within a second).

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use fieldbook_shared::sync::flow::RELAY_OUTBOX_BYTES;
use fieldbook_shared::sync::wire::{Role, Visibility};
use tokio::sync::watch;

use crate::accounts;
use crate::http::{Relay, WebOptions, now_ms};
use crate::serve::{ServeOptions, serve};
use crate::store;
use crate::tls::ServerTls;

#[derive(Parser)]
#[command(
    name = "fieldbook-relay",
    version,
    about = "The Fieldbook relay: a team's devices sync through it."
)]
#[command(after_help = "Examples:
  fieldbook-relay team create north
  fieldbook-relay invite --team north --user li --role rep
  echo 'a long password' | fieldbook-relay password --team north --user wang
  fieldbook-relay serve --listen 127.0.0.1:7878 --ui ui/dist
  fieldbook-relay devices --team north
  fieldbook-relay revoke 3")]
struct Cli {
    /// Where the relay keeps its data: sqlite://PATH (created if missing).
    #[arg(
        long,
        env = "FIELDBOOK_RELAY_DB",
        default_value = "sqlite://fieldbook-relay.sqlite",
        global = true
    )]
    db: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve devices until interrupted (Ctrl-C or SIGTERM).
    Serve {
        /// Address to listen on; port 0 picks a free port (printed on start).
        #[arg(long, env = "FIELDBOOK_RELAY_LISTEN", default_value = "127.0.0.1:7878")]
        listen: String,
        /// Seconds a client has to send its request headers.
        #[arg(long, default_value_t = 10)]
        header_timeout: u64,
        /// Seconds a device may read nothing while the relay has frames for it, before its
        /// connection is closed.
        #[arg(long, default_value_t = 60)]
        write_stall: u64,
        /// KiB of frames held for one device before the relay stops reading from it (half of
        /// it for dossiers the device asked for whole): bounds the memory a connection costs.
        #[arg(long, default_value_t = (RELAY_OUTBOX_BYTES / 1024) as u64)]
        outbox_kib: u64,
        /// Sync connections one team may hold open at once (each device holds at most a few).
        #[arg(long, default_value_t = 1000)]
        team_sockets: usize,
        /// Connections to the database: teams sync in parallel up to this many at once.
        #[arg(long, env = "FIELDBOOK_RELAY_DB_CONNECTIONS", default_value_t = store::pool::DEFAULT_CONNECTIONS)]
        db_connections: usize,
        /// Serve the manager's web view from this folder (the built UI, `ui/dist`).
        #[arg(long, env = "FIELDBOOK_RELAY_UI")]
        ui: Option<std::path::PathBuf>,
        /// Serve HTTPS and WSS with this certificate chain (PEM); with --tls-key. Read again
        /// on SIGHUP.
        #[arg(long, env = "FIELDBOOK_RELAY_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, env = "FIELDBOOK_RELAY_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
        /// Mark the web session cookie Secure (behind a TLS proxy; on with --tls-cert).
        #[arg(long)]
        secure_cookie: bool,
        /// Pin the date the web view counts from (YYYY-MM-DD; for tests and demos).
        #[arg(long, env = "FIELDBOOK_TODAY", hide = true)]
        today: Option<fieldbook_shared::Day>,
    },
    /// Set the password a manager logs in to the web view with (read from standard input).
    Password {
        #[arg(long)]
        team: String,
        #[arg(long)]
        user: String,
    },
    /// Teams.
    Team {
        #[command(subcommand)]
        command: TeamCommand,
    },
    /// Invite a user (created on first invite) and print a one-time invite code.
    Invite {
        #[arg(long)]
        team: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "rep")]
        role: Role,
        #[arg(long, default_value_t = 7)]
        valid_days: u32,
    },
    /// List enrolled devices, with their last sync and unsent changes.
    Devices {
        #[arg(long)]
        team: Option<String>,
    },
    /// Revoke a device: its token stops working and its live connection is closed.
    Revoke { device: i64 },
    /// Make the team's own certificate authority (once, in --out) and a certificate for the
    /// relay signed by it; run again to renew the relay's certificate under the same CA.
    /// Devices trust it with `fieldbook enroll … --ca-file OUT/ca.pem`.
    TlsCa {
        /// Folder for ca.pem (give to devices), ca-key.pem, relay.pem and relay-key.pem.
        #[arg(long, default_value = "relay-tls")]
        out: std::path::PathBuf,
        /// A host name or IP address devices reach the relay by (repeat for several).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Days the relay's certificate is valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

#[derive(Subcommand)]
enum TeamCommand {
    Create {
        name: String,
    },
    /// Set the team's policy.
    #[command(group(clap::ArgGroup::new("policy").required(true).multiple(true)))]
    Policy {
        name: String,
        /// A revoked device wipes its replica and its key on its next contact (default true).
        #[arg(long, action = clap::ArgAction::Set, group = "policy")]
        wipe_on_revoke: Option<bool>,
        /// What reps see: `team` (every dossier of the team, the default) or `own` (those
        /// they own and those shared with them). Managers see every dossier either way.
        #[arg(long, group = "policy")]
        visibility: Option<Visibility>,
    },
}

/// The team's visibility policy, as a sentence.
pub fn visibility_words(policy: Visibility) -> &'static str {
    match policy {
        Visibility::Team => "reps see every dossier of the team",
        Visibility::Own => "reps see the dossiers they own and those shared with them",
    }
}

pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // Automerge logs, at ERROR, every document it fails to load: bytes from a device,
            // which the relay refuses with its own line (a device sending garbage would
            // otherwise write two ERROR lines a frame).
            tracing_subscriber::EnvFilter::try_from_env("FIELDBOOK_RELAY_LOG")
                .unwrap_or_else(|_| "info,automerge=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // Nothing to do with the database.
    if let Command::TlsCa { out, hosts, days } = &cli.command {
        let issued = crate::private_ca::issue(out, hosts, *days)?;
        let made = if issued.new_ca {
            "made a new CA"
        } else {
            "renewed under the existing CA"
        };
        println!(
            "{made}\n  devices trust:   {}  (fieldbook enroll https://{}:PORT CODE --ca-file …)\n  relay serves:    --tls-cert {} --tls-key {}",
            issued.ca.display(),
            hosts[0],
            issued.cert.display(),
            issued.key.display()
        );
        return Ok(());
    }
    let mut db = store::open(&cli.db)?;
    match cli.command {
        Command::Serve {
            listen,
            header_timeout,
            write_stall,
            outbox_kib,
            team_sockets,
            db_connections,
            ui,
            tls_cert,
            tls_key,
            secure_cookie,
            today,
        } => {
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(Arc::new(ServerTls::load(cert, key)?)),
                _ => None,
            };
            if let Some(dir) = &ui {
                anyhow::ensure!(
                    dir.join("index.html").is_file(),
                    "no index.html in {} (build the UI: ./scripts/build-ui.sh)",
                    dir.display()
                );
            }
            let web = WebOptions {
                ui_dir: ui,
                secure_cookie: secure_cookie || tls.is_some(),
                today,
            };
            // The connection opened above brought the schema up to date; the relay works
            // through a pool of its own (opened before the runtime starts: a blocking client
            // cannot connect inside it).
            drop(db);
            let stores = store::pool::StorePool::open(&cli.db, db_connections)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&listen).await?;
                let addr = listener.local_addr()?;
                let (stop_tx, stop_rx) = watch::channel(false);
                let mut relay = Relay::new(stores, stop_rx).with_web(web);
                relay.socket.write_stall = std::time::Duration::from_secs(write_stall.max(1));
                relay.socket.outbox_bytes = (outbox_kib.max(16) * 1024) as usize;
                relay.socket.per_team = team_sockets.max(1);
                relay.shared = store::is_postgres(&cli.db);
                let relay = Arc::new(relay);
                // Tests and scripts read this line for the port.
                let scheme = if tls.is_some() { "https" } else { "http" };
                println!("listening on {scheme}://{addr}");
                if tls.is_none() && !addr.ip().is_loopback() {
                    tracing::warn!(
                        "serving plain http:// on {addr}: devices refuse it unless enrolled with --insecure; \
                         give --tls-cert/--tls-key or put a TLS proxy in front (docs/deploy.md)"
                    );
                }
                if let Some(tls) = &tls {
                    tokio::spawn(crate::tls::reload_on_hangup(tls.clone()));
                }
                let options = ServeOptions {
                    header_timeout: std::time::Duration::from_secs(header_timeout),
                    tls,
                    shared_database: store::is_postgres(&cli.db).then(|| cli.db.clone()),
                    ..Default::default()
                };
                serve(listener, relay, options, async move {
                    shutdown_signal().await;
                    let _ = stop_tx.send(true);
                })
                .await?;
                anyhow::Ok(())
            })?;
        }
        Command::Team {
            command: TeamCommand::Create { name },
        } => {
            let id = accounts::create_team(db.as_mut(), &name, now_ms())?;
            println!("team {name} created (id {id})");
        }
        Command::Team {
            command:
                TeamCommand::Policy {
                    name,
                    wipe_on_revoke,
                    visibility,
                },
        } => {
            let team = db
                .team_id(&name)?
                .ok_or_else(|| store::StoreError::NoTeam(name.clone()))?;
            if let Some(wipe) = wipe_on_revoke {
                db.set_wipe_on_revoke(team, wipe)?;
                let does = if wipe { "wipes" } else { "keeps" };
                println!("team {name}: a revoked device {does} its replica and key");
            }
            if let Some(policy) = visibility {
                db.set_visibility(team, policy)?;
                println!("team {name}: {}", visibility_words(policy));
            }
        }
        Command::Invite {
            team,
            user,
            role,
            valid_days,
        } => {
            let code = accounts::invite(db.as_mut(), &team, &user, role, valid_days, now_ms())?;
            println!("{code}");
            eprintln!(
                "invite for {user} ({}) in team {team}, valid {valid_days} days; on the device: fieldbook enroll <relay-url> {code}",
                role.as_str()
            );
        }
        Command::Devices { team } => {
            let team_id = match &team {
                Some(t) => Some(
                    db.team_id(t)?
                        .ok_or_else(|| store::StoreError::NoTeam(t.clone()))?,
                ),
                None => None,
            };
            println!(
                "{:>4}  {:<12} {:<12} {:<8} {:<14} {:>8}  last sync",
                "id", "team", "user", "role", "device", "unsent"
            );
            for d in db.devices(team_id)? {
                // Recorded on the relay's clock when the device completed a sync.
                let last = d.synced_ms.map(fmt_ms).unwrap_or_else(|| "never".into());
                let unsent = d.status.map_or("-".to_string(), |s| s.unsynced.to_string());
                let revoked = if d.revoked_ms.is_some() {
                    "  (revoked)"
                } else {
                    ""
                };
                println!(
                    "{:>4}  {:<12} {:<12} {:<8} {:<14} {:>8}  {last}{revoked}",
                    d.device_id,
                    d.team,
                    d.user,
                    d.role.as_str(),
                    d.name,
                    unsent
                );
            }
        }
        Command::Password { team, user } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            accounts::set_password(db.as_mut(), &team, &user, password)?;
            println!("password set for {user} in team {team}; log in at the relay's address");
        }
        Command::Revoke { device } => {
            if db.revoke_device(device, now_ms())? {
                println!("device {device} revoked");
            } else {
                anyhow::bail!("no active device {device}");
            }
        }
        // Handled before the database is opened.
        Command::TlsCa { .. } => {}
    }
    Ok(())
}

fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
