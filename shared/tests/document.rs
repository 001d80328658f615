//! The document schema's merge behaviour, on two in-memory replicas.

use automerge::ActorId;
use fieldbook_shared::document::{DossierDoc, Writer};
use fieldbook_shared::patch::{add_item, apply, set};
use fieldbook_shared::{Author, Dossier, conflict, history};

fn writer(n: u8, user: &str, now_ms: i64) -> Writer {
    Writer {
        actor: ActorId::from(vec![n; 16]),
        author: Author {
            user: user.into(),
            device: format!("{user}-laptop"),
        },
        now_ms,
    }
}

fn fork(doc: &mut DossierDoc) -> DossierDoc {
    DossierDoc::load(&doc.save()).unwrap()
}

fn base() -> (DossierDoc, Writer, Writer) {
    let a = writer(1, "li", 1_000);
    let b = writer(2, "wang", 2_000);
    let mut d = Dossier::default();
    d.profile.name = "华东培训公司".into();
    let d = add_item(
        &d,
        "deals",
        "deal1",
        &[set("title", "Sales training"), set("stage", "awareness")],
    )
    .unwrap();
    let d = add_item(
        &d,
        "interactions",
        "i1",
        &[
            set("date", "2026-11-20"),
            set("notes", "met the HR director"),
        ],
    )
    .unwrap();
    (DossierDoc::create(&a, &d).unwrap(), a, b)
}

#[test]
fn concurrent_text_edits_merge_and_scalar_clash_is_a_conflict() {
    let (mut left, a, b) = base();
    let mut right = fork(&mut left);

    let l = left.read().unwrap();
    let l = apply(
        &l,
        &[
            set("interactions.i1.notes", "met the HR director and the CFO"),
            set("deals.deal1.stage", "interest"),
            set("profile.industry", "manufacturing"),
        ],
    )
    .unwrap();
    assert!(left.write(&a, &l, "edit").unwrap());

    let r = right.read().unwrap();
    let r = apply(
        &r,
        &[
            set("interactions.i1.notes", "Today: met the HR director"),
            set("deals.deal1.stage", "lost"),
            set("profile.region", "上海"),
        ],
    )
    .unwrap();
    let r = add_item(&r, "interactions", "i2", &[set("date", "2026-11-21")]).unwrap();
    assert!(right.write(&b, &r, "edit").unwrap());

    left.merge(&mut right).unwrap();
    let merged = left.read().unwrap();
    assert_eq!(
        merged.interactions["i1"].notes.as_str(),
        "Today: met the HR director and the CFO"
    );
    assert_eq!(merged.profile.industry, "manufacturing");
    assert_eq!(merged.profile.region, "上海");
    assert!(merged.interactions.contains_key("i2"));

    let authors = merged.authors.clone();
    let conflicts = conflict::list(left.automerge().document(), &authors);
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].path, "deals.deal1.stage");
    let mut values: Vec<_> = conflicts[0]
        .values
        .iter()
        .map(|v| {
            (
                v.value.as_str().unwrap().to_string(),
                v.author.clone().unwrap().user,
            )
        })
        .collect();
    values.sort();
    assert_eq!(
        values,
        vec![
            ("interest".into(), "li".into()),
            ("lost".into(), "wang".into())
        ]
    );

    let chosen = apply(
        &left.read().unwrap(),
        &[set("deals.deal1.stage", "interest")],
    )
    .unwrap();
    left.resolve(&a, "deals.deal1.stage", &chosen).unwrap();
    assert!(conflict::list(left.automerge().document(), &authors).is_empty());
    assert_eq!(
        left.read().unwrap().deals["deal1"].stage,
        Some(fieldbook_shared::Stage::Interest)
    );
}

#[test]
fn writing_an_unchanged_dossier_makes_no_change() {
    let (mut doc, a, _) = base();
    let d = doc.read().unwrap();
    assert!(!doc.write(&a, &d, "noop").unwrap());
}

#[test]
fn history_names_each_writer_and_as_of_goes_back() {
    let (mut doc, a, b) = base();
    let d = apply(
        &doc.read().unwrap(),
        &[set("deals.deal1.stage", "interest")],
    )
    .unwrap();
    doc.write(&b, &d, "stage").unwrap();
    let authors = doc.read().unwrap().authors;
    let h =
        history::field_history(doc.automerge().document(), "deals.deal1.stage", &authors).unwrap();
    let seen: Vec<(String, String)> = h
        .iter()
        .map(|c| {
            (
                c.value.as_str().unwrap().to_string(),
                c.author.clone().unwrap().user,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("awareness".to_string(), "li".to_string()),
            ("interest".to_string(), "wang".to_string())
        ]
    );
    let heads = history::heads_as_of(doc.automerge().document(), a.now_ms);
    let mut old = DossierDoc::from_automerge(doc.automerge().fork_at(&heads).unwrap());
    assert_eq!(
        old.read().unwrap().deals["deal1"].stage,
        Some(fieldbook_shared::Stage::Awareness)
    );
    let _ = old.heads();
}

#[test]
fn an_unrelated_edit_does_not_settle_an_open_conflict() {
    let (mut left, a, b) = base();
    let mut right = fork(&mut left);
    let l = apply(
        &left.read().unwrap(),
        &[set("profile.website", "left.example")],
    )
    .unwrap();
    left.write(&a, &l, "edit").unwrap();
    let r = apply(
        &right.read().unwrap(),
        &[set("profile.website", "right.example")],
    )
    .unwrap();
    right.write(&b, &r, "edit").unwrap();
    left.merge(&mut right).unwrap();

    // A new meeting is recorded: the whole dossier is reconciled, website included.
    let more = add_item(
        &left.read().unwrap(),
        "interactions",
        "i9",
        &[set("date", "2026-11-22")],
    )
    .unwrap();
    assert!(left.write(&a, &more, "meeting").unwrap());
    let authors = left.read().unwrap().authors;
    let conflicts = conflict::list(left.automerge().document(), &authors);
    assert_eq!(
        conflicts.len(),
        1,
        "the website clash is still there to resolve"
    );
    assert_eq!(conflicts[0].values.len(), 2);
}

#[test]
fn history_of_a_set_shows_its_members() {
    let (mut doc, _, b) = base();
    let d = add_item(
        &doc.read().unwrap(),
        "people",
        "p1",
        &[set("name", "Ann"), set("roles", "decider")],
    )
    .unwrap();
    doc.write(&b, &d, "add").unwrap();
    let d = apply(
        &doc.read().unwrap(),
        &[set("people.p1.roles", "decider,buyer")],
    )
    .unwrap();
    doc.write(&b, &d, "roles").unwrap();
    let authors = doc.read().unwrap().authors;
    let h =
        history::field_history(doc.automerge().document(), "people.p1.roles", &authors).unwrap();
    let values: Vec<serde_json::Value> = h.into_iter().map(|c| c.value).collect();
    assert_eq!(
        values,
        vec![
            serde_json::json!(["decider"]),
            serde_json::json!(["buyer", "decider"])
        ]
    );
}

/// Writing over a known state touches only what changed, and ends in the same dossier as
/// writing it whole; an open conflict elsewhere stays open.
#[test]
fn writing_only_what_changed_is_writing_it_whole() {
    let (mut left, a, b) = base();
    let mut right = fork(&mut left);
    let mut l = left.read().unwrap();
    l.deals.get_mut("deal1").unwrap().stage = "interest".parse().ok();
    left.write(&a, &l, "stage").unwrap();
    let mut r = right.read().unwrap();
    r.deals.get_mut("deal1").unwrap().stage = "evaluation".parse().ok();
    right.write(&b, &r, "stage").unwrap();
    left.merge(&mut right).unwrap();
    assert_eq!(conflict::count(left.automerge().document()), 1);

    let current = left.read().unwrap();
    let mut new = apply(
        &current,
        &[
            set("profile.website", "example.com"),
            set("interactions.i1.notes", "met the HR director twice"),
        ],
    )
    .unwrap();
    new = add_item(&new, "people", "p1", &[set("name", "张伟")]).unwrap();
    let mut whole = fork(&mut left);
    assert!(left.write_over(&a, &current, &new, "edit").unwrap());
    assert!(whole.write(&a, &new, "edit").unwrap());
    assert_eq!(left.read().unwrap(), whole.read().unwrap());
    assert_eq!(
        conflict::count(left.automerge().document()),
        1,
        "the deal's stage is still in conflict"
    );
    assert!(
        !left.write_over(&a, &new, &new, "nothing").unwrap(),
        "no change"
    );
}
