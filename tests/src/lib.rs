//! Helpers shared by the cross-crate tests: several device engines on temp SQLite files that
//! exchange dossier documents directly, as two devices would through a USB stick or a relay.

pub mod relay;
pub mod web;
pub mod window;

use std::path::Path;
use std::sync::Arc;

use fieldbook_app::Engine;
use fieldbook_app::clock::FixedClock;
use fieldbook_shared::Day;

/// A device: an engine on its own SQLite file, writing as `user` on `device`.
pub fn device(dir: &Path, user: &str, device: &str) -> anyhow::Result<Engine> {
    let today: Day = "2026-11-23".parse()?;
    let mut e = Engine::open(dir, Arc::new(FixedClock::at(today)))?;
    e.set_identity(user, device)?;
    Ok(e)
}

/// Send every dossier `from` has to `to` (one direction of a sync).
pub fn send(from: &Engine, to: &mut Engine) -> anyhow::Result<()> {
    let docs = from
        .ids()?
        .into_iter()
        .map(|id| {
            let bytes = from.export_document(&id)?;
            Ok((id, bytes))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    to.merge_documents(&docs)?;
    Ok(())
}

/// Both directions.
pub fn exchange(a: &mut Engine, b: &mut Engine) -> anyhow::Result<()> {
    send(a, b)?;
    send(b, a)?;
    Ok(())
}

/// Resident memory of process `pid`, in KiB (Linux).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for process {pid}"))?;
    Ok(value.parse()?)
}
