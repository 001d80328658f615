//! A throwaway PostgreSQL server for tests: a new cluster in a temporary folder, serving on a
//! free loopback port, stopped and removed when the last holder drops it. Needs PostgreSQL's
//! server programs (Debian: `apt-get install postgresql`); their folder is found under
//! /usr/lib/postgresql, on PATH, or in `FIELDBOOK_PG_BIN`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use anyhow::{Context, bail};

pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Root may not run PostgreSQL: the server then runs as the `postgres` user.
    as_postgres_user: bool,
    databases: AtomicU32,
}

impl Postgres {
    /// Create a cluster and start it (about 2 s).
    pub fn start() -> anyhow::Result<Postgres> {
        let bin = server_programs()?;
        let dir = tempfile::Builder::new().prefix("fieldbook-pg").tempdir()?;
        let as_postgres_user = is_root()?;
        if as_postgres_user {
            run(Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path()))?;
        }
        let pg = Postgres {
            bin,
            dir,
            port: free_port()?,
            as_postgres_user,
            databases: AtomicU32::new(0),
        };
        run(pg.program("initdb").arg("-D").arg(pg.data()).args([
            "-A",
            "trust",
            "-U",
            "fb",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]))
        .context("initdb")?;
        pg.start_server()?;
        Ok(pg)
    }

    /// A new, empty database on this server: its URL.
    pub fn create_database(&self) -> anyhow::Result<String> {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("fieldbook_{n}");
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)?;
        admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://fb@127.0.0.1:{}/{database}", self.port)
    }

    /// Stop at once, as a crash would (open connections are cut, nothing is flushed more than
    /// a commit already did).
    pub fn stop(&self) -> anyhow::Result<()> {
        run(self.program("pg_ctl").arg("-D").arg(self.data()).args([
            "stop",
            "-m",
            "immediate",
            "-w",
        ]))
        .context("pg_ctl stop")?;
        Ok(())
    }

    /// Start again after [`Postgres::stop`], on the same port and data.
    pub fn start_server(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let started = run(self
            .program("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "start"]));
        if let Err(e) = started {
            let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
            bail!("PostgreSQL did not start: {e:#}\n{log}");
        }
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn program(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

static SHARED: Mutex<Weak<Postgres>> = Mutex::new(Weak::new());

/// One server for the tests of this process that run while any of them holds it (each takes
/// a database of its own with [`Postgres::create_database`]).
pub fn shared() -> anyhow::Result<Arc<Postgres>> {
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pg) = slot.upgrade() {
        return Ok(pg);
    }
    let pg = Arc::new(Postgres::start()?);
    *slot = Arc::downgrade(&pg);
    Ok(pg)
}

fn server_programs() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FIELDBOOK_PG_BIN") {
        return Ok(dir.into());
    }
    // Debian keeps each major version's server programs apart; the newest is taken.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Some(dir) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|p| Path::new(p).join("initdb").exists())
    }) {
        return Ok(dir);
    }
    bail!(
        "PostgreSQL's server programs (initdb, pg_ctl) are not installed: \
         `apt-get install postgresql`, or set FIELDBOOK_PG_BIN to their folder"
    )
}

fn is_root() -> anyhow::Result<bool> {
    let out = run(Command::new("id").arg("-u"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn run(command: &mut Command) -> anyhow::Result<Output> {
    let out = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}
