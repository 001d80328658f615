//! The same workload through the reference: the stock automerge-repo sync server (through
//! `tests/compare/server.mjs`, which binds it to 127.0.0.1) and automerge-repo clients
//! (`tests/compare/client.mjs`), each step a Node process.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fieldbook_tests::rss_kib;
use serde_json::Value;

use crate::proxy::Proxy;
use crate::{EDITS, Edits, Run, Step};

pub struct Reference {
    /// tests/compare, with its node_modules installed.
    pub js: PathBuf,
    /// Longest a single step may take before it is reported as not finished.
    pub timeout: Duration,
}

/// A running Node process whose stdout lines arrive on a channel.
struct NodeProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl NodeProcess {
    fn spawn(mut command: Command) -> Result<NodeProcess> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting node (is Node.js installed?)")?;
        let stdout = child.stdout.take().context("node stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(NodeProcess {
            stdin: child.stdin.take(),
            child,
            lines,
        })
    }

    /// The next JSON line, within `timeout`; None if the process ended or time ran out.
    fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) => match serde_json::from_str(&line) {
                    Ok(v) => return Some(v),
                    Err(_) => eprintln!("node: {line}"),
                },
                Err(_) => return None,
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Close stdin (the clients' signal to end) and let it end, then kill.
    fn end(mut self) {
        drop(self.stdin.take());
        self.exited_within(ENDING);
    }

    /// Whether the process ended within `timeout` (killed otherwise). A client writes what
    /// its repo still holds before it ends: killed midway, it would leave a truncated file
    /// that the next step could never load.
    fn exited_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

/// How long a client may take to end once its work is done (it writes what it still holds).
const ENDING: Duration = Duration::from_secs(60);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Server {
    process: NodeProcess,
    addr: SocketAddr,
    control: String,
}

impl Reference {
    fn node(&self, script: &str) -> Command {
        let mut c = Command::new("node");
        c.arg(self.js.join(script));
        c
    }

    fn server(&self, data: &Path) -> Result<Server> {
        std::fs::create_dir_all(data)?;
        let (port, control) = (free_port()?, free_port()?);
        let mut command = self.node("server.mjs");
        command
            .current_dir(data)
            .env("PORT", port.to_string())
            .env("CONTROL_PORT", control.to_string())
            .env("DATA_DIR", data.join("amrg"));
        let process = NodeProcess::spawn(command)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match process.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.starts_with("Listening on port") => break,
                Ok(_) => {}
                Err(_) => bail!("the reference server did not start"),
            }
            if Instant::now() > deadline {
                bail!("the reference server did not start in 30 s");
            }
        }
        Ok(Server {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            control: format!("http://127.0.0.1:{control}"),
        })
    }

    fn client(&self, step: &str, args: &[(&str, String)]) -> Command {
        let mut c = self.node("client.mjs");
        c.arg(step);
        for (k, v) in args {
            c.arg(format!("--{k}")).arg(v);
        }
        c
    }

    /// Run one client step to its end; None if it did not finish within the timeout.
    fn step(&self, step: &str, args: &[(&str, String)]) -> Result<Option<Value>> {
        Ok(self.step_then(step, args, |_| ())?.map(|(v, ())| v))
    }

    /// Run one client step to its end, calling `at_result` as soon as it reports (before it
    /// has written out what it still holds and ended); None if it did not finish in time.
    fn step_then<T>(
        &self,
        step: &str,
        args: &[(&str, String)],
        at_result: impl FnOnce(&Value) -> T,
    ) -> Result<Option<(Value, T)>> {
        let mut p = NodeProcess::spawn(self.client(step, args))?;
        if let Some(v) = p.next(self.timeout) {
            let t = at_result(&v);
            if !p.exited_within(ENDING) {
                bail!("client {step} did not end within {} s", ENDING.as_secs());
            }
            return Ok(Some((v, t)));
        }
        // Ended without a result, or out of time: give an ending process a moment to say so.
        let deadline = Instant::now() + Duration::from_secs(2);
        while p.child.try_wait()?.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        match p.child.try_wait()? {
            Some(status) if !status.success() => bail!("client {step} failed: {status}"),
            Some(_) => bail!("client {step} ended without a result"),
            None => Ok(None),
        }
    }

    fn timed(&self, proxy: &Proxy, step: &str, args: &[(&str, String)]) -> Result<Option<Step>> {
        let before = proxy.read();
        let result = self.step_then(step, args, |_| {
            // The last frames of the step through the proxy, not what follows the result.
            std::thread::sleep(Duration::from_millis(50));
            proxy.read().since(before)
        })?;
        let Some((v, wire)) = result else {
            eprintln!(
                "reference {step}: not finished in {} s",
                self.timeout.as_secs()
            );
            return Ok(None);
        };
        Ok(Some(Step {
            seconds: v["seconds"].as_f64().context("seconds")?,
            wire,
        }))
    }

    pub fn run(&self, dir: &Path, docs: &[Vec<u8>]) -> Result<Run> {
        let mut run = Run::default();
        let input = dir.join("docs.bin");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input)?);
        for d in docs {
            file.write_all(&(d.len() as u32).to_le_bytes())?;
            file.write_all(d)?;
        }
        file.flush()?;
        drop(file);
        let server = self.server(&dir.join("server"))?;
        let (device_a, device_b) = (dir.join("js-a"), dir.join("js-b"));
        std::fs::create_dir_all(&device_a)?;
        std::fs::create_dir_all(&device_b)?;
        let ids = device_a.join("ids.json");
        let prepared = self.step(
            "prepare",
            &[("dir", path(&device_a)), ("input", path(&input))],
        )?;
        anyhow::ensure!(
            prepared.and_then(|v| v["docs"].as_u64()) == Some(docs.len() as u64),
            "the reference device did not import every dossier"
        );

        let proxy = Proxy::start(server.addr)?;
        run.push = self.timed(
            &proxy,
            "push",
            &[
                ("dir", path(&device_a)),
                ("url", proxy.ws_url("")),
                ("control", server.control.clone()),
            ],
        )?;
        if run.push.is_none() {
            return Ok(run);
        }
        let proxy = Proxy::start(server.addr)?;
        run.pull = self.timed(&proxy, "pull", &device(&device_b, &proxy, &ids))?;
        if run.pull.is_none() {
            return Ok(run);
        }
        run.edits = self.edits(&server, &device_a, &device_b, &ids)?;
        let proxy = Proxy::start(server.addr)?;
        run.reconnect = self.timed(&proxy, "reconnect", &device(&device_b, &proxy, &ids))?;
        run.server_rss_kib = Some(rss_kib(server.process.pid())?);
        Ok(run)
    }

    fn edits(
        &self,
        server: &Server,
        device_a: &Path,
        device_b: &Path,
        ids: &Path,
    ) -> Result<Option<Edits>> {
        let (proxy_a, proxy_b) = (Proxy::start(server.addr)?, Proxy::start(server.addr)?);
        let mut b = NodeProcess::spawn(self.client("live", &device(device_b, &proxy_b, ids)))?;
        if b.next(self.timeout).is_none_or(|v| v["ready"] != true) {
            eprintln!("reference live device: not ready");
            return Ok(None);
        }
        let mut a = NodeProcess::spawn(
            self.client(
                "edit",
                &[
                    device(device_a, &proxy_a, ids),
                    vec![("edits", EDITS.to_string())],
                ]
                .concat(),
            ),
        )?;
        if a.next(self.timeout).is_none_or(|v| v["ready"] != true) {
            eprintln!("reference editing device: not ready");
            return Ok(None);
        }
        let (before_a, before_b) = (proxy_a.read(), proxy_b.read());
        let mut made = std::collections::HashMap::new();
        while let Some(v) = a.next(Duration::from_secs(60)) {
            if v["done"] == true {
                break;
            }
            if let (Some(value), Some(at)) = (v["edit"].as_str(), v["at"].as_f64()) {
                made.insert(value.to_string(), at);
            }
        }
        let mut latencies = Vec::new();
        while latencies.len() < made.len() {
            let Some(v) = b.next(Duration::from_secs(30)) else {
                break;
            };
            if let (Some(value), Some(at)) = (v["seen"].as_str(), v["at"].as_f64())
                && let Some(made_at) = made.get(value)
            {
                latencies.push(at - made_at);
            }
        }
        let (up, down) = (
            proxy_a.read().since(before_a),
            proxy_b.read().since(before_b),
        );
        a.end();
        b.end();
        if latencies.len() < EDITS {
            eprintln!("reference: {} of {EDITS} edits arrived", latencies.len());
            return Ok(None);
        }
        Ok(Some(Edits::new(
            latencies,
            up.bytes() / EDITS as u64,
            down.bytes() / EDITS as u64,
        )))
    }

    /// The server's resident memory per idle device: `count` connections that made the
    /// join handshake and then wait.
    pub fn memory_per_connection(&self, dir: &Path, count: usize) -> Result<Option<f64>> {
        let server = self.server(&dir.join("server"))?;
        std::thread::sleep(Duration::from_millis(500));
        let before = rss_kib(server.process.pid())?;
        let mut clients = NodeProcess::spawn(self.client(
            "connections",
            &[
                ("url", format!("ws://{}", server.addr)),
                ("count", count.to_string()),
            ],
        ))?;
        if clients
            .next(self.timeout)
            .is_none_or(|v| v["ready"].as_u64() != Some(count as u64))
        {
            eprintln!("reference: {count} connections did not open");
            return Ok(None);
        }
        std::thread::sleep(Duration::from_secs(2));
        let after = rss_kib(server.process.pid())?;
        clients.end();
        Ok(Some(after.saturating_sub(before) as f64 / count as f64))
    }
}

/// The options of a client step for the device stored in `dir`, reaching the server through
/// `proxy`, holding the dossiers listed in `ids`.
fn device(dir: &Path, proxy: &Proxy, ids: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("dir", path(dir)),
        ("url", proxy.ws_url("")),
        ("ids", path(ids)),
    ]
}

fn path(p: &Path) -> String {
    p.display().to_string()
}
