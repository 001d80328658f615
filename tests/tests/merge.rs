//! Merge semantics as properties: random concurrent edit sequences on two or three devices that
//! exchange documents at random moments. Whatever the schedule, once everyone has exchanged,
//! every replica is identical and no edit is lost: added interactions are all there, text
//! insertions all survive, and each single-value field holds exactly the values no device had
//! seen overwritten — one shown, the rest listed as a conflict.

use std::collections::{BTreeMap, BTreeSet};

use fieldbook_app::Engine;
use fieldbook_shared::patch::Assignment;
use fieldbook_tests::{device, exchange};
use proptest::prelude::*;

const FIELDS: [&str; 4] = [
    "profile.industry",
    "profile.region",
    "profile.website",
    "profile.sales_scale",
];

#[derive(Debug, Clone)]
enum Step {
    /// Device records a new interaction.
    AddInteraction(usize),
    /// Device writes a single-value field.
    SetField(usize, usize),
    /// Device inserts a word at a position (0..=100 % of the text) of the shared notes.
    InsertNote(usize, u8),
    /// Device deletes the interaction holding the shared notes (its text must survive).
    DeleteNotes(usize),
    /// Two devices exchange everything.
    Sync(usize, usize),
}

fn step(devices: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..devices).prop_map(Step::AddInteraction),
        (0..devices, 0..FIELDS.len()).prop_map(|(d, f)| Step::SetField(d, f)),
        (0..devices, 0..=100u8).prop_map(|(d, p)| Step::InsertNote(d, p)),
        (0..devices, 0..devices).prop_map(|(a, b)| Step::Sync(a, b)),
        (0..devices).prop_map(Step::DeleteNotes),
    ]
}

fn schedule() -> impl Strategy<Value = (usize, Vec<Step>)> {
    (2usize..=3).prop_flat_map(|n| (Just(n), prop::collection::vec(step(n), 1..24)))
}

/// What each device has seen of the writes to single-value fields: the model of Automerge's
/// map semantics that the product promises to users.
#[derive(Default, Clone)]
struct Seen {
    writes: BTreeSet<usize>,
}

fn pair(devs: &mut [Engine], a: usize, b: usize) -> (&mut Engine, &mut Engine) {
    let (lo, hi) = (a.min(b), a.max(b));
    let (left, right) = devs.split_at_mut(hi);
    (&mut left[lo], &mut right[0])
}

fn run(n: usize, steps: &[Step]) -> Result<(), TestCaseError> {
    let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut devs: Vec<Engine> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| device(d.path(), &format!("rep{i}"), &format!("dev{i}")).unwrap())
        .collect();
    let id = "shared-dossier";
    devs[0]
        .create_dossier_with_id(
            id,
            &[Assignment {
                path: "profile.name".into(),
                value: "Acme".into(),
            }],
        )
        .unwrap();
    let notes_id = devs[0]
        .add_item(id, "interactions", &["date=2026-11-20".parse().unwrap()])
        .unwrap();
    for i in 1..n {
        let (a, b) = pair(&mut devs, 0, i);
        exchange(a, b).unwrap();
    }

    // writes[w] = (field, value); seen[d] = writes device d knows; superseded = writes some
    // device overwrote knowingly.
    let mut writes: Vec<(usize, String)> = Vec::new();
    let mut superseded: BTreeSet<usize> = BTreeSet::new();
    let mut seen: Vec<Seen> = vec![Seen::default(); n];
    let mut interactions: Vec<String> = Vec::new();
    let mut words: Vec<String> = Vec::new();

    for (k, s) in steps.iter().enumerate() {
        match *s {
            Step::AddInteraction(d) => {
                let note = format!("meeting-{k}");
                let iid = devs[d]
                    .add_item(
                        id,
                        "interactions",
                        &[
                            "date=2026-11-21".parse().unwrap(),
                            format!("notes={note}").parse().unwrap(),
                        ],
                    )
                    .unwrap();
                interactions.push(iid);
            }
            Step::SetField(d, f) => {
                let value = format!("w{k}-by-dev{d}");
                let w = writes.len();
                for &old in &seen[d].writes {
                    if writes[old].0 == f {
                        superseded.insert(old);
                    }
                }
                writes.push((f, value.clone()));
                seen[d].writes.insert(w);
                devs[d]
                    .set(
                        id,
                        &[Assignment {
                            path: FIELDS[f].into(),
                            value,
                        }],
                    )
                    .unwrap();
            }
            Step::InsertNote(d, pct) => {
                let word = format!("<{k}>");
                let current = devs[d].dossier(id).unwrap().dossier.interactions[&notes_id]
                    .notes
                    .as_str()
                    .to_string();
                let chars: Vec<char> = current.chars().collect();
                let at = chars.len() * pct as usize / 100;
                // Insert only between words, so every word stays whole.
                let at = (0..=at)
                    .rev()
                    .find(|&i| i == 0 || chars[i - 1] == '>')
                    .unwrap_or(0);
                let mut next: String = chars[..at].iter().collect();
                next.push_str(&word);
                next.extend(&chars[at..]);
                devs[d]
                    .set(
                        id,
                        &[Assignment {
                            path: format!("interactions.{notes_id}.notes"),
                            value: next,
                        }],
                    )
                    .unwrap();
                words.push(word);
            }
            Step::DeleteNotes(d) => {
                devs[d]
                    .delete(id, &format!("interactions.{notes_id}"))
                    .unwrap();
            }
            Step::Sync(a, b) if a != b => {
                let (x, y) = pair(&mut devs, a, b);
                exchange(x, y).unwrap();
                let union: BTreeSet<usize> =
                    seen[a].writes.union(&seen[b].writes).copied().collect();
                seen[a].writes = union.clone();
                seen[b].writes = union;
            }
            Step::Sync(..) => {}
        }
    }
    // Everyone exchanges with everyone, twice, so that every change reaches every replica.
    for _ in 0..2 {
        for a in 0..n {
            for b in (a + 1)..n {
                let (x, y) = pair(&mut devs, a, b);
                exchange(x, y).unwrap();
            }
        }
    }

    let views: Vec<_> = devs.iter().map(|d| d.dossier(id).unwrap()).collect();
    for v in &views[1..] {
        prop_assert_eq!(&v.dossier, &views[0].dossier, "replicas differ");
        prop_assert_eq!(
            &v.conflicts,
            &views[0].conflicts,
            "replicas list different conflicts"
        );
    }
    let d = &views[0].dossier;
    for iid in &interactions {
        prop_assert!(d.interactions.contains_key(iid), "interaction {} lost", iid);
    }
    let notes = d.interactions[&notes_id].notes.as_str();
    for w in &words {
        prop_assert_eq!(
            notes.matches(w.as_str()).count(),
            1,
            "note word {} in {:?}",
            w,
            notes
        );
    }
    let conflicts: BTreeMap<&str, BTreeSet<String>> = views[0]
        .conflicts
        .iter()
        .map(|c| {
            let values = c
                .values
                .iter()
                .map(|v| v.value.as_str().unwrap_or("").to_string());
            (c.path.as_str(), values.collect())
        })
        .collect();
    let json = serde_json::to_value(d).unwrap();
    for (f, path) in FIELDS.iter().enumerate() {
        let alive: BTreeSet<String> = writes
            .iter()
            .enumerate()
            .filter(|(w, (field, _))| *field == f && !superseded.contains(w))
            .map(|(_, (_, v))| v.clone())
            .collect();
        let (section, key) = path.split_once('.').unwrap();
        let shown = json[section][key].as_str().unwrap().to_string();
        match alive.len() {
            0 => prop_assert_eq!(shown, ""),
            1 => {
                prop_assert_eq!(&shown, alive.iter().next().unwrap());
                prop_assert!(
                    !conflicts.contains_key(path),
                    "spurious conflict on {}",
                    path
                );
            }
            _ => {
                prop_assert!(alive.contains(&shown));
                prop_assert_eq!(conflicts.get(path), Some(&alive), "conflict on {}", path);
            }
        }
    }
    Ok(())
}

proptest! {
    // Each case writes real SQLite files, so CI runs 24; PROPTEST_CASES=1000 searches longer.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]

    #[test]
    fn concurrent_edits_converge_and_nothing_is_lost((n, steps) in schedule()) {
        run(n, &steps)?;
    }
}

#[test]
fn a_stage_clash_is_a_conflict_the_user_resolves_and_a_delete_keeps_a_concurrent_edit() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut a = device(dirs[0].path(), "li", "laptop").unwrap();
    let mut b = device(dirs[1].path(), "li", "phone").unwrap();
    let id = a
        .create_dossier(&[Assignment {
            path: "profile.name".into(),
            value: "Acme".into(),
        }])
        .unwrap();
    let deal = a
        .add_item(
            &id,
            "deals",
            &[
                "title=Training".parse().unwrap(),
                "stage=interest".parse().unwrap(),
            ],
        )
        .unwrap();
    let person = a
        .add_item(&id, "people", &["name=Ann".parse().unwrap()])
        .unwrap();
    exchange(&mut a, &mut b).unwrap();

    a.set(
        &id,
        &[format!("deals.{deal}.stage=evaluation").parse().unwrap()],
    )
    .unwrap();
    b.set(&id, &[format!("deals.{deal}.stage=lost").parse().unwrap()])
        .unwrap();
    a.delete(&id, &format!("people.{person}")).unwrap();
    b.set(
        &id,
        &[format!("people.{person}.phone=555-0101").parse().unwrap()],
    )
    .unwrap();
    exchange(&mut a, &mut b).unwrap();

    let conflicts = a.conflicts(&id).unwrap();
    assert_eq!(conflicts.len(), 2, "{conflicts:#?}");
    // The person deleted on the laptop while the phone edited them is offered back.
    let deleted = conflicts
        .iter()
        .find(|c| c.path == format!("people.{person}.deleted_at"))
        .expect("delete-vs-edit is listed");
    assert!(
        deleted.values[0].value.is_string(),
        "first: keep the deletion"
    );
    assert!(
        deleted.values[1].value.is_null(),
        "second: restore with the edit"
    );
    assert_eq!(deleted.values[1].author.as_ref().unwrap().device, "phone");
    let conflicts: Vec<_> = conflicts
        .into_iter()
        .filter(|c| c.path.ends_with("stage"))
        .collect();
    assert_eq!(conflicts[0].path, format!("deals.{deal}.stage"));
    let devices: BTreeSet<String> = conflicts[0]
        .values
        .iter()
        .map(|v| v.author.as_ref().unwrap().device.clone())
        .collect();
    assert_eq!(devices, ["laptop".to_string(), "phone".to_string()].into());
    assert_eq!(
        a.summary(&id).unwrap().conflicts,
        2,
        "the list shows the dossier has conflicts"
    );

    // The phone's edit to the person deleted on the laptop is kept, under the tombstone.
    let p = &a.dossier(&id).unwrap().dossier.people[&person];
    assert!(p.deleted_at.is_some());
    assert_eq!(p.phone, "555-0101");

    b.resolve(
        &id,
        &format!("deals.{deal}.stage"),
        &serde_json::json!("evaluation"),
    )
    .unwrap();
    // Restore the person, edit included.
    b.resolve(
        &id,
        &format!("people.{person}.deleted_at"),
        &serde_json::Value::Null,
    )
    .unwrap();
    exchange(&mut a, &mut b).unwrap();
    let left = a.conflicts(&id).unwrap();
    assert!(left.is_empty(), "{left:#?}");
    let p = &a.dossier(&id).unwrap().dossier.people[&person];
    assert!(p.deleted_at.is_none() && p.phone == "555-0101");
    let history = a.history(&id, &format!("deals.{deal}.stage")).unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        last.value, "evaluation",
        "the resolution is part of the field's history"
    );
    assert_eq!(last.author.as_ref().unwrap().device, "phone");
    assert!(last.resolved, "said to be a resolution, not one more write");
    assert!(
        history[..history.len() - 1].iter().all(|c| !c.resolved),
        "{history:#?}"
    );
    assert_eq!(
        history.len(),
        4,
        "created, laptop's move, phone's move, the resolution"
    );
    assert_eq!(a.summary(&id).unwrap().conflicts, 0);
    assert_eq!(
        a.dossier(&id).unwrap().dossier.deals[&deal].stage,
        Some(fieldbook_shared::Stage::Evaluation)
    );
}
