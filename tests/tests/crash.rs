//! A device process killed with SIGKILL in the middle of a burst of writes leaves a store that
//! opens, with every edit it had acknowledged.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use fieldbook_tests::device;

#[test]
fn sigkill_mid_burst_keeps_every_acknowledged_edit() {
    let dir = tempfile::tempdir().unwrap();
    let mut next = 0u64;
    // Kill after a different number of acks each round, at an arbitrary point inside a write.
    for (round, stop_after) in [7u64, 31, 3, 58, 19].into_iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_burst_writer"))
            .arg(dir.path())
            .arg(next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut last_ack = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let n: u64 = line.strip_prefix("ack ").unwrap().parse().unwrap();
            last_ack = Some(n);
            if n >= next + stop_after {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the writer was killed, not finished"
        );
        let last = last_ack.expect("the writer acknowledged some edits");

        let engine = device(dir.path(), "check", "check").unwrap();
        let d = engine.dossier("burst").unwrap().dossier;
        let notes: Vec<&str> = d.interactions.values().map(|i| i.notes.as_str()).collect();
        for n in (0..=last).filter(|n| n % 2 == 0) {
            let tag = format!("edit-{n} ");
            assert!(
                notes.iter().any(|t| t.starts_with(&tag)),
                "round {round}: lost acked edit {n}"
            );
        }
        let scale: u64 = d
            .profile
            .sales_scale
            .trim_start_matches("edit-")
            .parse()
            .unwrap();
        let last_field_edit = if last % 2 == 1 { last } else { last - 1 };
        assert!(
            scale >= last_field_edit,
            "round {round}: lost acked field edit {last_field_edit}"
        );
        // The killed writer may have committed one more edit without acknowledging it; the next
        // writer may write that number again, which the checks above tolerate.
        next = last + 1;
    }
}
