//! One client's dossier: every part editable in place, the decision chain, the timeline,
//! conflicts to settle and any field's history.

use std::collections::BTreeMap;

use fieldbook_shared::api::{self, DossierView};
use fieldbook_shared::patch::Assignment;
use fieldbook_shared::{
    BrandProminence, DecisionRole, Dossier, FollowUpKind, KeyPerson, Mood, PaymentStatus,
    Personality, PriceValueClass, SalesProfitClass, Severity, Stage, TargetType,
};
use leptos::prelude::*;

use crate::fields::{Editing, Field, Kind, vocab_label};
use crate::i18n::T;
use crate::shell::clock_time;
use crate::{Route, SaveState, ctx, options};

fn focused_on_input() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.active_element())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

#[component]
pub fn DossierScreen(id: String) -> impl IntoView {
    let c = ctx();
    let view_ = RwSignal::new(None::<DossierView>);
    let loaded_at = StoredValue::new(None::<u64>);
    let history = RwSignal::new(None::<String>);
    let removed = RwSignal::new(None::<String>);
    let load = {
        let id = id.clone();
        move || {
            loaded_at.set_value(c.status.with_untracked(|s| s.as_ref().map(|s| s.revision)));
            c.run(api::OpenDossier { id: id.clone() }, move |v| {
                // A reload answered while the rep types would rebuild the form under the
                // cursor and drop what was typed (a deal's title right after adding a person):
                // keep the shown dossier; the next status tick loads again once focus leaves.
                if focused_on_input() && view_.with_untracked(Option::is_some) {
                    loaded_at.set_value(None);
                    return;
                }
                view_.set(Some(v))
            });
        }
    };
    load();
    // Reload when anything changed on this device (a sync, or our own save), but never under
    // the rep's cursor: while a field has focus the reload waits for the next status tick.
    Effect::new({
        let load = load.clone();
        move |_| {
            let rev = c.status.with(|s| s.as_ref().map(|s| s.revision));
            let saving = c.save_state.get_untracked() == SaveState::Saving;
            if rev != loaded_at.get_value() && !saving && !focused_on_input() {
                load();
            }
        }
    });
    let record = {
        let id = id.clone();
        move |_| c.route.set(Route::Meeting(Some(id.clone())))
    };
    view! {
        // The web view reads: no add forms, no remove, no picking a conflict's value.
        <main class="dossier" class:web=c.web>
            <div class="title-bar">
                <button id="back" on:click=move |_| c.route.set(Route::List)>"← " {c.t(T::Back)}</button>
                <h2 id="dossier-name">{move || view_.with(|v| v.as_ref().map(|v| v.dossier.profile.name.clone()))}</h2>
                {(!c.web).then(|| view! {
                    <button id="record-here" class="primary" on:click=record.clone()>{c.t(T::RecordMeeting)}</button>
                })}
            </div>
            <UndoRemove id=id.clone() removed=removed on_change=view_ />
            {move || view_.get().map(|v| {
                let editing = Editing {
                    id: v.id.clone(),
                    json: serde_json::to_value(&v.dossier).unwrap_or_default(),
                    conflicted: v.conflicts.iter().map(|x| x.path.clone()).collect(),
                    history,
                    removed,
                };
                view! {
                    <Conflicts view=v.clone() on_change=view_ />
                    <crate::notes::ManagerNotes id=v.id.clone() dossier=v.dossier.clone() on_change=view_ />
                    <People editing=editing.clone() dossier=v.dossier.clone() on_change=view_ />
                    <Timeline dossier=v.dossier.clone() />
                    <FollowUps editing=editing.clone() dossier=v.dossier.clone() on_change=view_ />
                    <Deals editing=editing.clone() dossier=v.dossier.clone() on_change=view_ />
                    <Profile editing=editing.clone() />
                    <Contracts editing=editing.clone() dossier=v.dossier.clone() on_change=view_ />
                    <Complaints editing=editing.clone() dossier=v.dossier.clone() on_change=view_ />
                    <ClassificationCard editing=editing.clone() dossier=v.dossier.clone() />
                    <Plan editing=editing />
                }
            })}
            <HistoryPanel id=id path=history />
        </main>
    }
}

fn add(
    c: crate::Ctx,
    id: &str,
    collection: &str,
    fields: Vec<(&str, String)>,
    into: RwSignal<Option<DossierView>>,
) {
    add_then(c, id, collection, fields, into, || {});
}

/// [`add`], then `then` once the item is saved (a form clears itself only then, so a failed
/// save leaves what was typed in place).
fn add_then(
    c: crate::Ctx,
    id: &str,
    collection: &str,
    fields: Vec<(&str, String)>,
    into: RwSignal<Option<DossierView>>,
    then: impl FnOnce() + 'static,
) {
    c.run(
        api::AddItem {
            id: id.to_string(),
            collection: collection.to_string(),
            fields: fields
                .into_iter()
                .map(|(path, value)| Assignment {
                    path: path.to_string(),
                    value,
                })
                .collect(),
        },
        move |added| {
            into.set(Some(added.view));
            then();
        },
    );
}

/// Marks an item deleted (or restores it), shows the dossier as it now is, then `then`.
fn set_deleted(
    c: crate::Ctx,
    id: String,
    path: String,
    restore: bool,
    into: RwSignal<Option<DossierView>>,
    then: impl FnOnce() + 'static,
) {
    c.run(api::DeleteItem { id, path, restore }, move |v| {
        into.set(Some(v));
        then();
    });
}

/// Removes an item (a person, a deal…). Nothing is erased: the item is marked deleted, stays in
/// the document's history and can be put back with "Undo".
#[component]
fn Remove(
    editing: Editing,
    #[prop(into)] path: String,
    on_change: RwSignal<Option<DossierView>>,
) -> impl IntoView {
    let c = ctx();
    let Editing { id, removed, .. } = editing;
    let remove = move |_| {
        let path = path.clone();
        set_deleted(c, id.clone(), path.clone(), false, on_change, move || {
            removed.set(Some(path))
        });
    };
    view! { <button type="button" class="remove" on:click=remove>{c.t(T::Remove)}</button> }
}

/// "Removed. Undo" after a removal, until the rep leaves the dossier or removes something else.
#[component]
fn UndoRemove(
    id: String,
    removed: RwSignal<Option<String>>,
    on_change: RwSignal<Option<DossierView>>,
) -> impl IntoView {
    let c = ctx();
    let undo = move |_| {
        if let Some(path) = removed.get_untracked() {
            set_deleted(c, id.clone(), path, true, on_change, move || {
                removed.set(None)
            });
        }
    };
    view! {
        {move || removed.get().is_some().then(|| view! {
            <p class="undo" role="status">{c.t(T::Removed)}" "
                <button id="undo" on:click=undo.clone()>{c.t(T::Undo)}</button></p>
        })}
    }
}

/// Items of a collection that are not deleted, in the given order.
fn live<T>(items: &BTreeMap<String, T>, deleted: impl Fn(&T) -> bool) -> Vec<(&String, &T)> {
    items.iter().filter(|(_, x)| !deleted(x)).collect()
}

#[component]
fn Conflicts(view: DossierView, on_change: RwSignal<Option<DossierView>>) -> impl IntoView {
    let c = ctx();
    if view.conflicts.is_empty() {
        return ().into_any();
    }
    let id = view.id.clone();
    view! {
        <section class="conflicts" id="conflicts">
            <h3>"⚠ " {c.t(T::Conflicts)}</h3>
            {view.conflicts.into_iter().map(|conflict| {
                let path = conflict.path.clone();
                view! {
                    <div class="conflict" data-path=path.clone()>
                        <code>{path.clone()}</code>
                        <div class="side-by-side">
                            {conflict.values.into_iter().map(|v| {
                                let (id, path, value) = (id.clone(), path.clone(), v.value.clone());
                                let who = v.author.map(|a| format!("{} · {}", a.user, a.device)).unwrap_or_else(|| v.device[..8.min(v.device.len())].to_string());
                                view! {
                                    <div class="value">
                                        <strong>{match &v.value { serde_json::Value::String(s) => s.clone(), other => other.to_string() }}</strong>
                                        <small>{who} " · " {clock_time(v.at_ms)}</small>
                                        <button class="pick" on:click=move |_| c.run(api::Resolve { id: id.clone(), path: path.clone(), value: value.clone() }, move |v| on_change.set(Some(v)))>{c.t(T::Keep)}</button>
                                    </div>
                                }
                            }).collect_view()}
                        </div>
                    </div>
                }
            }).collect_view()}
        </section>
    }
    .into_any()
}

#[component]
fn Profile(editing: Editing) -> impl IntoView {
    let c = ctx();
    let f = |path: &str, label: T, kind: Kind| view! { <Field editing=editing.clone() path=path.to_string() label=label kind=kind /> };
    view! {
        <section class="card profile">
            <h3>{c.t(T::Profile)}</h3>
            <div class="grid">
                {f("profile.name", T::Name, Kind::Text)}
                {f("profile.industry", T::Industry, Kind::Text)}
                {f("profile.region", T::Region, Kind::Text)}
                {f("profile.website", T::Website, Kind::Text)}
                {f("profile.target_type", T::TargetType, Kind::Select(options!(TargetType)))}
                {f("profile.brand", T::Brand, Kind::Select(options!(BrandProminence)))}
                {f("profile.sales_scale", T::SalesScale, Kind::Text)}
                {f("profile.headcount", T::Headcount, Kind::Int)}
                {f("profile.owner", T::Owner, Kind::Text)}
                {f("profile.shared_with", T::SharedWith, Kind::Text)}
                {f("profile.past_purchasing.price_range", T::PriceRange, Kind::Text)}
            </div>
            {f("profile.business_scope", T::BusinessScope, Kind::Note)}
            {f("profile.org_structure", T::OrgStructure, Kind::Note)}
            {f("profile.past_purchasing.service_expectations", T::ServiceExpectations, Kind::Note)}
            {f("profile.past_purchasing.selection_criteria", T::SelectionCriteria, Kind::Note)}
        </section>
    }
}

fn role_label(c: crate::Ctx, word: &str) -> String {
    word.parse::<DecisionRole>()
        .map(|r| vocab_label(c, r.label_en(), r.label_zh()).to_string())
        .unwrap_or_else(|_| word.to_string())
}

/// The decision chain: everyone under whom they report, drawn as a tree.
fn chain(
    c: crate::Ctx,
    people: &[(&String, &KeyPerson)],
    under: Option<&str>,
    depth: usize,
) -> AnyView {
    let known = |id: &Option<String>| {
        id.as_ref()
            .is_some_and(|b| people.iter().any(|(p, _)| *p == b))
    };
    let here: Vec<_> = people
        .iter()
        .filter(|(_, p)| match under {
            None => !known(&p.reports_to),
            Some(boss) => p.reports_to.as_deref() == Some(boss),
        })
        .collect();
    if here.is_empty() || depth > 8 {
        return ().into_any();
    }
    view! {
        <ul class="chain">
            {here.into_iter().map(|(id, p)| {
                let roles: Vec<String> = p.roles.0.iter().map(|r| role_label(c, r)).collect();
                view! {
                    <li>
                        <span class="node" class:coach=p.coach class:left=p.left_on.is_some()>
                            <strong>{p.name.clone()}</strong>
                            {(!p.title.is_empty()).then(|| format!(" · {}", p.title))}
                            {p.coach.then(|| view! { <span class="badge coach" title=c.t(T::Coach)>"★ " {c.t(T::Coach)}</span> })}
                            {roles.into_iter().map(|r| view! { <span class="badge role">{r}</span> }).collect_view()}
                        </span>
                        {chain(c, people, Some(id.as_str()), depth + 1)}
                    </li>
                }
            }).collect_view()}
        </ul>
    }
    .into_any()
}

#[component]
fn RoleChecks(editing: Editing, person: String, roles: Vec<String>) -> impl IntoView {
    let c = ctx();
    let chosen = RwSignal::new(roles);
    let id = editing.id.clone();
    view! {
        <fieldset class="roles"><legend>{c.t(T::Roles)}</legend>
            {DecisionRole::ALL.iter().map(|r| {
                let (id, person) = (id.clone(), person.clone());
                let word = r.as_str();
                view! {
                    <label class="check role-option"><input type="checkbox" value=word
                        prop:checked=move || chosen.with(|c| c.iter().any(|x| x == word))
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            chosen.update(|list| { list.retain(|x| x != word); if on { list.push(word.to_string()); } });
                            let value = serde_json::to_string(&chosen.get_untracked()).unwrap_or_default();
                            c.save(id.clone(), vec![Assignment { path: format!("people.{person}.roles"), value }]);
                        } />{move || vocab_label(c, r.label_en(), r.label_zh())}</label>
                }
            }).collect_view()}
        </fieldset>
    }
}

#[component]
fn People(
    editing: Editing,
    dossier: Dossier,
    on_change: RwSignal<Option<DossierView>>,
) -> impl IntoView {
    let c = ctx();
    let mut people = live(&dossier.people, |p| p.deleted_at.is_some());
    people.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let tree = chain(c, &people, None, 0);
    let choices: Vec<(String, String)> = people
        .iter()
        .map(|(id, p)| (id.to_string(), p.name.clone()))
        .collect();
    let cards = people
        .iter()
        .map(|(pid, p)| {
            let base = format!("people.{pid}");
            let e = editing.clone();
            let f = move |field: &str, label: T, kind: Kind| view! { <Field editing=e.clone() path=format!("{base}.{field}") label=label kind=kind /> };
            let reports: Options2 = choices.iter().filter(|(id, _)| id != *pid).cloned().collect();
            view! {
                <details class="person" data-id=pid.to_string()>
                    <summary><strong>{p.name.clone()}</strong>" "{p.title.clone()}{p.coach.then_some(" ★")}</summary>
                    <div class="grid">
                        {f("name", T::Name, Kind::Text)}
                        {f("title", T::Title, Kind::Text)}
                        {f("department", T::Department, Kind::Text)}
                        {f("phone", T::Phone, Kind::Text)}
                        {f("email", T::Email, Kind::Text)}
                        {f("coach", T::Coach, Kind::Bool)}
                        {f("personality", T::Personality, Kind::Select(options!(Personality)))}
                        {f("mood", T::Mood, Kind::Select(options!(Mood)))}
                        {f("relationship", T::Relationship, Kind::Int)}
                        {f("left_on", T::LeftOn, Kind::Day)}
                    </div>
                    <ReportsTo editing=editing.clone() person=pid.to_string() current=p.reports_to.clone() choices=reports />
                    <RoleChecks editing=editing.clone() person=pid.to_string() roles=p.roles.0.iter().cloned().collect() />
                    {f("notes", T::Notes, Kind::Note)}
                    <Remove editing=editing.clone() path=format!("people.{pid}") on_change=on_change />
                </details>
            }
        })
        .collect_view();
    view! {
        <section class="card people">
            <h3>{c.t(T::People)}</h3>
            <div class="decision-chain" id="decision-chain">{tree}</div>
            {cards}
            <AddPerson id=editing.id.clone() choices=choices on_change=on_change />
        </section>
    }
}

type Options2 = Vec<(String, String)>;

#[component]
fn ReportsTo(
    editing: Editing,
    person: String,
    current: Option<String>,
    choices: Options2,
) -> impl IntoView {
    let c = ctx();
    let id = editing.id.clone();
    view! {
        <label class="field"><span class="label">{c.t(T::ReportsTo)}</span>
            <select data-path=format!("people.{person}.reports_to") on:change=move |ev| {
                let v = event_target_value(&ev);
                let value = if v.is_empty() { "null".to_string() } else { serde_json::to_string(&v).unwrap_or_default() };
                c.save(id.clone(), vec![Assignment { path: format!("people.{person}.reports_to"), value }]);
            }>
                <option value="">{c.t(T::Nobody)}</option>
                {choices.into_iter().map(|(pid, name)| {
                    let selected = current.as_deref() == Some(pid.as_str());
                    view! { <option value=pid selected=selected>{name}</option> }
                }).collect_view()}
            </select>
        </label>
    }
}

#[component]
fn AddPerson(
    id: String,
    choices: Options2,
    on_change: RwSignal<Option<DossierView>>,
) -> impl IntoView {
    let c = ctx();
    let name = RwSignal::new(String::new());
    let title = RwSignal::new(String::new());
    let roles = RwSignal::new(Vec::<String>::new());
    let coach = RwSignal::new(false);
    let boss = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if name.get_untracked().trim().is_empty() {
            return;
        }
        let mut fields = vec![
            ("name", name.get_untracked()),
            ("title", title.get_untracked()),
            (
                "roles",
                serde_json::to_string(&roles.get_untracked()).unwrap_or_default(),
            ),
            ("coach", coach.get_untracked().to_string()),
        ];
        if !boss.get_untracked().is_empty() {
            fields.push((
                "reports_to",
                serde_json::to_string(&boss.get_untracked()).unwrap_or_default(),
            ));
        }
        add_then(c, &id, "people", fields, on_change, move || {
            // Ready for the next person.
            name.set(String::new());
            title.set(String::new());
            roles.set(Vec::new());
            coach.set(false);
        });
    };
    view! {
        <form class="add add-person" on:submit=submit>
            <h4>{c.t(T::AddPerson)}</h4>
            <div class="grid">
                <label>{c.t(T::Name)}<input id="person-name" required prop:value=name on:input=move |ev| name.set(event_target_value(&ev)) /></label>
                <label>{c.t(T::Title)}<input id="person-title" prop:value=title on:input=move |ev| title.set(event_target_value(&ev)) /></label>
                <label>{c.t(T::ReportsTo)}
                    <select id="person-reports-to" on:change=move |ev| boss.set(event_target_value(&ev))>
                        <option value="">{c.t(T::Nobody)}</option>
                        {choices.into_iter().map(|(pid, n)| view! { <option value=pid>{n}</option> }).collect_view()}
                    </select>
                </label>
                <label class="check"><input id="person-coach" type="checkbox" prop:checked=coach on:change=move |ev| coach.set(event_target_checked(&ev)) />{c.t(T::Coach)}</label>
            </div>
            <fieldset class="roles" id="person-roles"><legend>{c.t(T::Roles)}</legend>
                {DecisionRole::ALL.iter().map(|r| {
                    let word = r.as_str();
                    view! {
                        <label class="check role-option"><input type="checkbox" value=word
                            prop:checked=move || roles.with(|l| l.iter().any(|x| x == word))
                            on:change=move |ev| { let on = event_target_checked(&ev); roles.update(|l| { l.retain(|x| x != word); if on { l.push(word.to_string()); } }); } />
                            {move || vocab_label(c, r.label_en(), r.label_zh())}</label>
                    }
                }).collect_view()}
            </fieldset>
            <button id="add-person" type="submit">"+ " {c.t(T::AddPerson)}</button>
        </form>
    }
}

#[component]
fn Timeline(dossier: Dossier) -> impl IntoView {
    let c = ctx();
    let mut items = live(&dossier.interactions, |i| i.deleted_at.is_some());
    items.sort_by(|a, b| (b.1.date, &b.1.time).cmp(&(a.1.date, &a.1.time)));
    let name_of = |pid: &str| {
        dossier
            .people
            .get(pid)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    let rows = items
        .into_iter()
        .map(|(iid, i)| {
            let who: Vec<String> = i.client_participants.0.iter().map(|p| name_of(p)).filter(|n| !n.is_empty()).collect();
            let learned: Vec<(T, String)> = [
                (T::Demand, i.learned.demand.to_string()),
                (T::Problem, i.learned.problem.to_string()),
                (T::BenefitPoints, i.learned.benefit_points.to_string()),
                (T::KeyPersonInfo, i.learned.key_person_info.to_string()),
            ]
            .into_iter()
            .filter(|(_, s)| !s.trim().is_empty())
            .collect();
            let kind = i.kind;
            view! {
                <li class="interaction" data-id=iid.to_string()>
                    <div class="when">{i.date.map(|d| d.to_string())}" "{i.time.clone()}
                        " · "{move || kind.map(|k| vocab_label(c, k.label_en(), k.label_zh()))}</div>
                    {(!who.is_empty()).then(|| view! { <div class="who">{who.join("、")}</div> })}
                    <p class="notes">{i.notes.to_string()}</p>
                    {learned.into_iter().map(|(k, s)| view! { <p class="learned"><em>{c.t(k)}": "</em>{s}</p> }).collect_view()}
                    {(!i.next_step.is_empty()).then(|| view! {
                        <p class="next-step">"→ "{c.t(T::NextStep)}": "{i.next_step.clone()}{i.next_step_due.map(|d| format!(" ({d})"))}</p>
                    })}
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="card timeline">
            <h3>{c.t(T::Interactions)}</h3>
            <ol class="timeline">{rows}</ol>
        </section>
    }
}

#[component]
fn Deals(
    editing: Editing,
    dossier: Dossier,
    on_change: RwSignal<Option<DossierView>>,
) -> impl IntoView {
    let c = ctx();
    let deals = live(&dossier.deals, |d| d.deleted_at.is_some());
    let id = editing.id.clone();
    let cards = deals
        .into_iter()
        .map(|(did, d)| {
            let base = format!("deals.{did}");
            let e = editing.clone();
            let f = {
                let base = base.clone();
                move |field: &str, label: T, kind: Kind| view! { <Field editing=e.clone() path=format!("{base}.{field}") label=label kind=kind /> }
            };
            let band = d.band();
            let checklist: Vec<_> = live(&d.checklist, |x| x.deleted_at.is_some()).into_iter().map(|(qid, _)| qid.clone()).collect();
            let question = RwSignal::new(String::new());
            let (id, did2) = (id.clone(), did.clone());
            let e2 = editing.clone();
            view! {
                <div class="deal" data-id=did.to_string()>
                    <h4>{d.title.clone()} <span class=format!("badge band {}", band.as_str())>{move || vocab_label(c, band.label_en(), band.label_zh())}" · "{d.probability()}"%"</span></h4>
                    <div class="grid">
                        {f("title", T::Title, Kind::Text)}
                        {f("stage", T::Stage, Kind::Select(options!(Stage)))}
                        {f("win_probability", T::Probability, Kind::Int)}
                        {f("value", T::Value, Kind::Int)}
                        {f("expected_close", T::ExpectedClose, Kind::Day)}
                    </div>
                    <h5>{c.t(T::Checklist)}</h5>
                    <ul class="checklist">
                        {checklist.into_iter().map(|qid| {
                            let e = e2.clone();
                            let q = format!("{base}.checklist.{qid}");
                            view! { <li class="grid">
                                <Field editing=e.clone() path=format!("{q}.question") label=T::Question kind=Kind::Text />
                                <Field editing=e path=format!("{q}.answer") label=T::Answer kind=Kind::Note />
                            </li> }
                        }).collect_view()}
                    </ul>
                    <form class="add inline" on:submit=move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        add(c, &id, &format!("deals.{did2}.checklist"), vec![("question", question.get_untracked())], on_change);
                    }>
                        <input class="new-question" placeholder=c.t(T::Question) prop:value=question on:input=move |ev| question.set(event_target_value(&ev)) />
                        <button type="submit">"+ " {c.t(T::AddQuestion)}</button>
                    </form>
                    <Remove editing=e2.clone() path=format!("deals.{did}") on_change=on_change />
                </div>
            }
        })
        .collect_view();
    let title = RwSignal::new(String::new());
    let id = editing.id.clone();
    view! {
        <section class="card deals">
            <h3>{c.t(T::Deals)}</h3>
            {cards}
            <form class="add inline" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                if !title.get_untracked().trim().is_empty() {
                    add(c, &id, "deals", vec![("title", title.get_untracked()), ("stage", "awareness".into())], on_change);
                }
            }>
                <input id="deal-title" placeholder=c.t(T::Title) prop:value=title on:input=move |ev| title.set(event_target_value(&ev)) />
                <button id="add-deal" type="submit">"+ " {c.t(T::AddDeal)}</button>
            </form>
        </section>
    }
}

#[component]
fn FollowUps(
    editing: Editing,
    dossier: Dossier,
    on_change: RwSignal<Option<DossierView>>,
) -> impl IntoView {
    let c = ctx();
    let today = c.status.with_untracked(|s| s.as_ref().map(|s| s.today));
    let mut items = live(&dossier.follow_ups, |f| f.deleted_at.is_some());
    items.sort_by_key(|(_, f)| (f.done_on.is_some(), f.due.is_none(), f.due));
    let id = editing.id.clone();
    let rows = items
        .into_iter()
        .map(|(fid, f)| {
            let overdue = today.is_some_and(|t| f.is_overdue(t));
            let done = f.done_on.is_some();
            let (id, fid2) = (id.clone(), fid.clone());
            let kind = f.kind;
            view! {
                <li class="follow-up" class:overdue=overdue class:done=done data-id=fid.to_string()>
                    <label class="check"><input type="checkbox" class="done" prop:checked=done on:change=move |ev| {
                        let value = if event_target_checked(&ev) { today.map(|t| t.to_string()).unwrap_or_else(|| "null".into()) } else { "null".into() };
                        c.save(id.clone(), vec![Assignment { path: format!("follow_ups.{fid2}.done_on"), value }]);
                    } /></label>
                    <span class="due">{f.due.map(|d| d.to_string())}</span>
                    <span class="action">{f.action.clone()}</span>
                    <span class="kind">{move || kind.map(|k| vocab_label(c, k.label_en(), k.label_zh()))}</span>
                    <span class="assignee">{f.assignee_name.clone()}</span>
                    <Remove editing=editing.clone() path=format!("follow_ups.{fid}") on_change=on_change />
                </li>
            }
        })
        .collect_view();
    let action = RwSignal::new(String::new());
    let due = RwSignal::new(String::new());
    let id = editing.id.clone();
    view! {
        <section class="card follow-ups">
            <h3>{c.t(T::FollowUps)}</h3>
            <ul class="follow-ups">{rows}</ul>
            <form class="add inline" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                if action.get_untracked().trim().is_empty() { return; }
                let mut fields = vec![("action", action.get_untracked()), ("kind", FollowUpKind::PhoneCall.as_str().into())];
                if !due.get_untracked().is_empty() { fields.push(("due", due.get_untracked())); }
                add(c, &id, "follow_ups", fields, on_change);
            }>
                <input placeholder=c.t(T::Action) prop:value=action on:input=move |ev| action.set(event_target_value(&ev)) />
                <input type="date" prop:value=due on:input=move |ev| due.set(event_target_value(&ev)) />
                <button type="submit">"+ " {c.t(T::AddFollowUp)}</button>
            </form>
        </section>
    }
}

#[component]
fn Contracts(
    editing: Editing,
    dossier: Dossier,
    on_change: RwSignal<Option<DossierView>>,
) -> impl IntoView {
    let c = ctx();
    let cards = live(&dossier.contracts, |x| x.deleted_at.is_some())
        .into_iter()
        .map(|(cid, _)| {
            let base = format!("contracts.{cid}");
            let e = editing.clone();
            let f = move |field: &str, label: T, kind: Kind| view! { <Field editing=e.clone() path=format!("{base}.{field}") label=label kind=kind /> };
            view! {
                <div class="contract grid">
                    {f("title", T::Title, Kind::Text)}
                    {f("signed_on", T::SignedOn, Kind::Day)}
                    {f("value", T::Value, Kind::Int)}
                    {f("payment_status", T::Payment, Kind::Select(options!(PaymentStatus)))}
                    {f("amount_collected", T::Collected, Kind::Int)}
                    {f("review.reviewed_on", T::Reviewed, Kind::Day)}
                    {f("promised", T::Promised, Kind::Note)}
                    <Remove editing=editing.clone() path=format!("contracts.{cid}") on_change=on_change />
                </div>
            }
        })
        .collect_view();
    let title = RwSignal::new(String::new());
    let id = editing.id.clone();
    view! {
        <section class="card contracts">
            <h3>{c.t(T::Contracts)}</h3>
            {cards}
            <form class="add inline" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                if !title.get_untracked().trim().is_empty() { add(c, &id, "contracts", vec![("title", title.get_untracked())], on_change); }
            }>
                <input placeholder=c.t(T::Title) prop:value=title on:input=move |ev| title.set(event_target_value(&ev)) />
                <button type="submit">"+ " {c.t(T::AddContract)}</button>
            </form>
        </section>
    }
}

#[component]
fn Complaints(
    editing: Editing,
    dossier: Dossier,
    on_change: RwSignal<Option<DossierView>>,
) -> impl IntoView {
    let c = ctx();
    let cards = live(&dossier.complaints, |x| x.deleted_at.is_some())
        .into_iter()
        .map(|(kid, k)| {
            let base = format!("complaints.{kid}");
            let e = editing.clone();
            let f = move |field: &str, label: T, kind: Kind| view! { <Field editing=e.clone() path=format!("{base}.{field}") label=label kind=kind /> };
            let steps = k.steps_done();
            view! {
                <div class="complaint" class:escalated=k.escalated_on.is_some() class:closed=!k.is_open()>
                    <div class="steps">{(0..4).map(|i| view! { <span class="step" class:done=i < steps></span> }).collect_view()}</div>
                    {f("what_happened", T::WhatHappened, Kind::Note)}
                    <div class="grid">
                        {f("opened_on", T::OpenedOn, Kind::Day)}
                        {f("severity", T::Severity, Kind::Select(options!(Severity)))}
                        {f("escalated_on", T::Escalated, Kind::Day)}
                        {f("emotion_acknowledged_on", T::StepEmotion, Kind::Day)}
                        {f("facts_clarified_on", T::StepFacts, Kind::Day)}
                        {f("solution_agreed_on", T::StepSolution, Kind::Day)}
                        {f("execution_tracked_on", T::StepExecution, Kind::Day)}
                        {f("closed_on", T::Closed, Kind::Day)}
                    </div>
                    {f("solution", T::Solution, Kind::Note)}
                    <Remove editing=editing.clone() path=format!("complaints.{kid}") on_change=on_change />
                </div>
            }
        })
        .collect_view();
    let what = RwSignal::new(String::new());
    let id = editing.id.clone();
    view! {
        <section class="card complaints">
            <h3>{c.t(T::Complaints)}</h3>
            {cards}
            <form class="add inline" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                if what.get_untracked().trim().is_empty() { return; }
                let today = c.status.with_untracked(|s| s.as_ref().map(|s| s.today.to_string())).unwrap_or_default();
                add(c, &id, "complaints", vec![("what_happened", what.get_untracked()), ("opened_on", today)], on_change);
            }>
                <input placeholder=c.t(T::WhatHappened) prop:value=what on:input=move |ev| what.set(event_target_value(&ev)) />
                <button type="submit">"+ " {c.t(T::AddComplaint)}</button>
            </form>
        </section>
    }
}

#[component]
fn ClassificationCard(editing: Editing, dossier: Dossier) -> impl IntoView {
    let c = ctx();
    let tier = dossier.classification.five_a();
    let f = |path: &str, label: T, kind: Kind| view! { <Field editing=editing.clone() path=path.to_string() label=label kind=kind /> };
    view! {
        <section class="card classification">
            <h3>{c.t(T::Classification)}" · "{c.t(T::Tier)}" "<span class="tier">{tier.label_en()}</span></h3>
            <div class="grid">
                {f("classification.sales_profit", T::SalesProfit, Kind::Select(options!(SalesProfitClass)))}
                {f("classification.price_value", T::PriceValue, Kind::Select(options!(PriceValueClass)))}
            </div>
            <fieldset class="grid"><legend>{c.t(T::FiveA)}</legend>
                {f("classification.a_revenue", T::ARevenue, Kind::Bool)}
                {f("classification.a_profit", T::AProfit, Kind::Bool)}
                {f("classification.a_fulfilment_integrity", T::AIntegrity, Kind::Bool)}
                {f("classification.a_revenue_per_head", T::ARevenuePerHead, Kind::Bool)}
                {f("classification.a_difficulty", T::ADifficulty, Kind::Bool)}
            </fieldset>
        </section>
    }
}

#[component]
fn Plan(editing: Editing) -> impl IntoView {
    let c = ctx();
    let f = |path: &str, label: T, kind: Kind| view! { <Field editing=editing.clone() path=path.to_string() label=label kind=kind /> };
    view! {
        <section class="card plan">
            <h3>{c.t(T::AccountPlan)}</h3>
            {f("account_plan.goals", T::Goals, Kind::Note)}
            {f("account_plan.strategy", T::Strategy, Kind::Note)}
            {f("account_plan.executive_sponsor", T::Sponsor, Kind::Text)}
        </section>
    }
}

/// Every change of one field: value, who, which device, when.
#[component]
fn HistoryPanel(id: String, path: RwSignal<Option<String>>) -> impl IntoView {
    let c = ctx();
    let changes = RwSignal::new(None::<Vec<fieldbook_shared::history::FieldChange>>);
    Effect::new(move |_| {
        changes.set(None);
        if let Some(p) = path.get() {
            c.run(
                api::History {
                    id: id.clone(),
                    path: p,
                },
                move |h| changes.set(Some(h)),
            );
        }
    });
    view! {
        {move || path.get().map(|p| view! {
            <aside class="history" id="history" role="dialog">
                <header><h3>{c.t(T::History)}</h3><code>{p}</code>
                    <button on:click=move |_| path.set(None)>{c.t(T::Close)}</button></header>
                <ol>
                    {move || changes.get().map(|list| if list.is_empty() {
                        view! { <li>{c.t(T::NoHistory)}</li> }.into_any()
                    } else {
                        list.into_iter().rev().map(|ch| view! {
                            <li><strong>{match ch.value { serde_json::Value::String(s) => s, serde_json::Value::Null => "—".into(), other => other.to_string() }}</strong>
                            <small>{ch.author.map(|a| format!("{} · {}", a.user, a.device)).unwrap_or_default()} " · " {clock_time(ch.at_ms)}</small></li>
                        }).collect_view().into_any()
                    })}
                </ol>
            </aside>
        })}
    }
}
