//! "Record a meeting": client, who was there, notes, what was learned under the four kinds,
//! and the next step with a date, which becomes a follow-up. Works the same with no signal.

use fieldbook_shared::api::{self, DossierView, ListQuery, Meeting};
use fieldbook_shared::patch::Assignment;
use fieldbook_shared::summary::DossierSummary;
use fieldbook_shared::{Day, InteractionKind};
use leptos::prelude::*;

use crate::fields::vocab_label;
use crate::i18n::T;
use crate::{Route, ctx};

#[component]
pub fn MeetingForm(client: Option<String>) -> impl IntoView {
    let c = ctx();
    let chosen = RwSignal::new(client);
    let dossier = RwSignal::new(None::<DossierView>);
    Effect::new(move |_| {
        dossier.set(None);
        if let Some(id) = chosen.get() {
            c.run(api::OpenDossier { id }, move |v| dossier.set(Some(v)));
        }
    });
    view! {
        <main class="form meeting">
            <h2>{c.t(T::RecordMeeting)}</h2>
            {move || match chosen.get() {
                None => view! { <ClientPicker chosen=chosen /> }.into_any(),
                Some(_) => view! {
                    {move || dossier.get().map(|v| view! { <MeetingFields view=v /> })}
                }.into_any(),
            }}
        </main>
    }
}

#[component]
fn ClientPicker(chosen: RwSignal<Option<String>>) -> impl IntoView {
    let c = ctx();
    let text = RwSignal::new(String::new());
    let found = RwSignal::new(Vec::<DossierSummary>::new());
    Effect::new(move |_| {
        let t = text.get();
        let query = ListQuery {
            text: Some(t).filter(|t| !t.trim().is_empty()),
            limit: Some(8),
            ..ListQuery::default()
        };
        c.run(api::ListDossiers { query }, move |p| found.set(p.rows));
    });
    let create = move |_| {
        let name = text.get_untracked();
        c.run(
            api::CreateDossier {
                fields: vec![Assignment {
                    path: "profile.name".into(),
                    value: name,
                }],
            },
            move |id| chosen.set(Some(id)),
        );
    };
    view! {
        <label>{c.t(T::Client)}
            <input id="meeting-client-search" type="search" autofocus placeholder=c.t(T::PickClient)
                prop:value=text on:input=move |ev| text.set(event_target_value(&ev)) />
        </label>
        <ul class="picks">
            {move || found.get().into_iter().map(|row| {
                let id = row.id.clone();
                view! { <li><button class="client-pick" data-id=row.id.clone() on:click=move |_| chosen.set(Some(id.clone()))>{row.name.clone()}</button></li> }
            }).collect_view()}
        </ul>
        {move || (!text.get().trim().is_empty()).then(|| view! {
            <button id="meeting-new-client" on:click=create>"+ " {c.t(T::NewClient)} ": " {text.get()}</button>
        })}
    }
}

#[component]
fn MeetingFields(view: DossierView) -> impl IntoView {
    let c = ctx();
    let today = c.status.with_untracked(|s| s.as_ref().map(|s| s.today));
    let date = RwSignal::new(today.map(|d| d.to_string()).unwrap_or_default());
    let kind = RwSignal::new(InteractionKind::Visit.as_str().to_string());
    let present = RwSignal::new(Vec::<String>::new());
    let notes = RwSignal::new(String::new());
    let demand = RwSignal::new(String::new());
    let problem = RwSignal::new(String::new());
    let benefit = RwSignal::new(String::new());
    let key_person = RwSignal::new(String::new());
    let next = RwSignal::new(String::new());
    let due = RwSignal::new(String::new());
    let saving = RwSignal::new(false);
    let id = view.id.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let meeting = Meeting {
            date: date.get_untracked().parse().ok(),
            kind: kind.get_untracked().parse().ok(),
            client_participants: present.get_untracked(),
            notes: notes.get_untracked(),
            demand: demand.get_untracked(),
            problem: problem.get_untracked(),
            benefit_points: benefit.get_untracked(),
            key_person_info: key_person.get_untracked(),
            next_step: next.get_untracked(),
            next_step_due: due.get_untracked().parse().ok(),
            ..Meeting::default()
        };
        saving.set(true);
        let id = id.clone();
        c.run_or(
            api::RecordMeeting {
                id: id.clone(),
                meeting,
            },
            move |_| c.route.set(Route::Dossier(id)),
            move |_| saving.set(false),
        );
    };
    let set_due = move |d: Option<Day>| due.set(d.map(|d| d.to_string()).unwrap_or_default());
    let mut people: Vec<_> = view
        .dossier
        .people
        .iter()
        .filter(|(_, p)| p.deleted_at.is_none() && p.left_on.is_none())
        .map(|(id, p)| (id.clone(), p.name.clone(), p.title.clone()))
        .collect();
    people.sort_by(|a, b| a.1.cmp(&b.1));
    let text = |id: &'static str, label: T, sig: RwSignal<String>| {
        view! {
            <label>{c.t(label)}<textarea id=id rows="2" prop:value=sig on:input=move |ev| sig.set(event_target_value(&ev))></textarea></label>
        }
    };
    view! {
        <form on:submit=save>
            <p class="client"><strong id="meeting-client">{view.dossier.profile.name.clone()}</strong></p>
            <div class="grid">
                <label>{c.t(T::Date)}<input id="meeting-date" type="date" prop:value=date on:input=move |ev| date.set(event_target_value(&ev)) /></label>
                <label>{c.t(T::Kind)}
                    <select id="meeting-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                        {InteractionKind::ALL.iter().map(|k| view! {
                            <option value=k.as_str() selected=*k == InteractionKind::Visit>{move || vocab_label(c, k.label_en(), k.label_zh())}</option>
                        }).collect_view()}
                    </select>
                </label>
            </div>
            {(!people.is_empty()).then(|| view! {
                <fieldset class="present"><legend>{c.t(T::WhoWasThere)}</legend>
                    {people.into_iter().map(|(pid, name, title)| {
                        let p2 = pid.clone();
                        view! { <label class="check"><input type="checkbox" value=pid on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            present.update(|l| { l.retain(|x| *x != p2); if on { l.push(p2.clone()); } });
                        } />{name}" "<small>{title}</small></label> }
                    }).collect_view()}
                </fieldset>
            })}
            {text("meeting-notes", T::Notes, notes)}
            <fieldset class="learned"><legend>{c.t(T::Learned)}</legend>
                {text("learned-demand", T::Demand, demand)}
                {text("learned-problem", T::Problem, problem)}
                {text("learned-benefit", T::BenefitPoints, benefit)}
                {text("learned-key-person", T::KeyPersonInfo, key_person)}
            </fieldset>
            <fieldset class="next"><legend>{c.t(T::NextStep)}</legend>
                <input id="next-step" type="text" prop:value=next on:input=move |ev| next.set(event_target_value(&ev)) />
                <div class="due-row">
                    <input id="next-due" type="date" prop:value=due on:input=move |ev| due.set(event_target_value(&ev)) />
                    <button type="button" id="due-today" on:click=move |_| set_due(today)>{c.t(T::Today)}</button>
                    <button type="button" id="due-tomorrow" on:click=move |_| set_due(today.map(|t| t.plus_days(1)))>{c.t(T::Tomorrow)}</button>
                    <button type="button" id="due-week" on:click=move |_| set_due(today.map(|t| t.plus_days(7)))>{c.t(T::InAWeek)}</button>
                </div>
            </fieldset>
            <div class="actions">
                <button id="save-meeting" class="primary" type="submit" disabled=saving>{c.t(T::Save)}</button>
                <button type="button" on:click=move |_| c.route.set(Route::List)>{c.t(T::Cancel)}</button>
            </div>
        </form>
    }
}
