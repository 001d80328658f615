//! Test helper: writes edits to a store as fast as it can, printing `ack N` after edit N has
//! returned (and so is committed). A test kills it with SIGKILL mid-burst and then checks that
//! every acknowledged edit is in the store.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use fieldbook_app::Engine;
use fieldbook_app::clock::SystemClock;
use fieldbook_shared::patch::Assignment;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: burst_writer DIR FIRST"))?,
    );
    let first: u64 = args.next().unwrap_or_else(|| "0".into()).parse()?;
    let mut engine = Engine::open(
        &dir,
        &fieldbook_app::secrets::Secrets::key_file_beside(&dir),
        Arc::new(SystemClock),
    )?;
    let id = "burst";
    if engine.ids()?.is_empty() {
        engine.create_dossier_with_id(id, &["profile.name=Burst Co".parse()?])?;
    }
    let out = std::io::stdout();
    for n in first.. {
        // Alternate between growing the document (a new interaction) and rewriting one field,
        // so both appended chunks and compaction snapshots are in flight when the kill lands.
        if n % 2 == 0 {
            engine.add_item(
                id,
                "interactions",
                &[
                    "date=2026-11-23".parse()?,
                    format!("notes=edit-{n} {}", "记录".repeat(40)).parse()?,
                ],
            )?;
        } else {
            engine.set(
                id,
                &[Assignment {
                    path: "profile.sales_scale".into(),
                    value: format!("edit-{n}"),
                }],
            )?;
        }
        let mut lock = out.lock();
        writeln!(lock, "ack {n}")?;
        lock.flush()?;
    }
    Ok(())
}
