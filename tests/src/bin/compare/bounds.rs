//! Physical bounds, measured on this machine in the same run as the benchmarks: what no sync
//! of the same data could beat here, so each result reads as a ratio to its bound.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Bytes per second through one TCP connection on 127.0.0.1.
pub fn loopback_bytes_per_s() -> Result<f64> {
    const TOTAL: usize = 512 << 20;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<usize> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(got),
                n => got += n,
            }
        }
    });
    let chunk = vec![0x5au8; 64 * 1024];
    let started = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    for _ in 0..TOTAL / chunk.len() {
        s.write_all(&chunk)?;
    }
    drop(s);
    let got = reader.join().expect("reader thread")?;
    anyhow::ensure!(got == TOTAL, "loopback moved {got} of {TOTAL} bytes");
    Ok(TOTAL as f64 / started.elapsed().as_secs_f64())
}

/// CPU time to turn each saved dossier into a live Automerge document (what any peer that
/// holds the document must do at least once), on one core: the mean per dossier.
pub fn apply_cpu_per_doc(docs: &[Vec<u8>]) -> Result<Duration> {
    let started = Instant::now();
    for bytes in docs {
        let doc = automerge::Automerge::load(bytes).context("a dossier that does not load")?;
        std::hint::black_box(doc);
    }
    Ok(started.elapsed() / docs.len().max(1) as u32)
}

/// Rows per second written to a SQLite file as the stores use it (WAL, synchronous=FULL),
/// one row per dossier with its bytes, committed 1,000 rows to a transaction.
pub fn sqlite_rows_per_s(dir: &Path, docs: &[Vec<u8>]) -> Result<f64> {
    let mut db = rusqlite::Connection::open(dir.join("bound.sqlite"))?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.execute(
        "CREATE TABLE doc (id INTEGER PRIMARY KEY, bytes BLOB NOT NULL)",
        [],
    )?;
    let started = Instant::now();
    for (batch, rows) in docs.chunks(1000).enumerate() {
        let tx = db.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO doc (id, bytes) VALUES (?1, ?2)")?;
            for (i, bytes) in rows.iter().enumerate() {
                insert.execute(rusqlite::params![(batch * 1000 + i) as i64, bytes])?;
            }
        }
        tx.commit()?;
    }
    Ok(docs.len() as f64 / started.elapsed().as_secs_f64())
}

/// fdatasync calls per second on the disk the stores use (4 KiB rewritten each time).
pub fn fsyncs_per_s(dir: &Path) -> Result<f64> {
    let path = dir.join("fsync.bin");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let page = [0xa5u8; 4096];
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_secs(1) {
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(0))?;
        f.write_all(&page)?;
        f.sync_data()?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}
