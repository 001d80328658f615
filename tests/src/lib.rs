//! Helpers shared by the cross-crate tests: several device engines on temp SQLite files that
//! exchange dossier documents directly, as two devices would through a USB stick or a relay.

pub mod link;
pub mod postgres;
pub mod relay;
pub mod tls;
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
    let mut e = Engine::open(
        dir,
        &fieldbook_app::secrets::Secrets::key_file_beside(dir),
        Arc::new(FixedClock::at(today)),
    )?;
    e.set_identity(user, device)?;
    Ok(e)
}

/// `count` seeded synthetic dossiers of `owner`, each with a meeting record of about `kib`
/// KiB of notes (a rep who writes everything down).
pub fn long_dossiers(
    seed: u64,
    count: usize,
    owner: &str,
    kib: usize,
) -> Vec<(String, fieldbook_shared::Dossier)> {
    use rand::{Rng, SeedableRng};
    let today: Day = "2026-11-23".parse().expect("a date");
    let mut dossiers = fieldbook_app::synth::dossiers(seed, count, &[owner], today);
    // Text that does not compress away (Automerge deflates repeated text to nothing): random
    // CJK characters in words, about 3 bytes each.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    for (_, d) in &mut dossiers {
        if let Some(i) = d.interactions.values_mut().next() {
            let mut notes = String::with_capacity(kib * 1024 + 16);
            while notes.len() < kib * 1024 {
                let c = rng.random_range(0x4e00u32..0x9fa5);
                notes.push(char::from_u32(c).unwrap_or('。'));
                if rng.random_range(0..6) == 0 {
                    notes.push(' ');
                }
            }
            i.notes = notes.into();
        }
    }
    dossiers
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
