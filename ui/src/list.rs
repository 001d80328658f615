//! The dossier list: search, filters, what needs doing first at the top; and "new client".

use std::time::Duration;

use fieldbook_shared::api::{self, ListQuery};
use fieldbook_shared::patch::Assignment;
use fieldbook_shared::summary::DossierSummary;
use fieldbook_shared::{FunnelBand, Stage};
use leptos::prelude::*;

use crate::fields::vocab_label;
use crate::i18n::T;
use crate::{Route, ctx};

const PAGE: u32 = 50;

#[component]
pub fn DossierList(first_page: RwSignal<Option<api::DossierPage>>) -> impl IntoView {
    let c = ctx();
    let text = RwSignal::new(String::new());
    let band = RwSignal::new(None::<FunnelBand>);
    let stage = RwSignal::new(None::<Stage>);
    let overdue = RwSignal::new(false);
    let quiet_days = RwSignal::new(String::new());
    let limit = RwSignal::new(PAGE);
    let page = RwSignal::new(first_page.get_untracked());
    // Typing in the search box waits for a pause before asking.
    let typed = RwSignal::new(String::new());
    let pending = StoredValue::new(None::<TimeoutHandle>);
    Effect::new(move |_| {
        let t = typed.get();
        if let Some(h) = pending.get_value() {
            h.clear();
        }
        pending.set_value(
            set_timeout_with_handle(move || text.set(t), Duration::from_millis(200)).ok(),
        );
    });
    let query = Memo::new(move |_| {
        let today = c.status.with(|s| s.as_ref().map(|s| s.today));
        ListQuery {
            text: Some(text.get()).filter(|t| !t.trim().is_empty()),
            band: band.get(),
            stage: stage.get(),
            overdue_on: if overdue.get() { today } else { None },
            not_contacted_since: quiet_days
                .get()
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|d| *d > 0)
                .and_then(|d| today.map(|t| t.plus_days(-d))),
            limit: Some(limit.get()),
            ..ListQuery::default()
        }
    });
    let revision = Memo::new(move |_| c.status.with(|s| s.as_ref().map(|s| s.revision)));
    Effect::new(move |prev: Option<(ListQuery, Option<u64>)>| {
        let q = query.get();
        let r = revision.get();
        let key = (q.clone(), r);
        // The first page came with the start-up reply: no second round trip for it.
        let first = prev.is_none() && page.get_untracked().is_some() && q == default_query(limit);
        if !first && prev.as_ref() != Some(&key) {
            c.run(api::ListDossiers { query: q }, move |p| page.set(Some(p)));
        }
        key
    });
    Effect::new(move |_| {
        if page.with(|p| p.is_some()) {
            crate::mark_first_page();
        }
    });
    let today = move || c.status.with(|s| s.as_ref().map(|s| s.today));
    view! {
        <main class="list">
            <div class="filters">
                <input id="search" type="search" placeholder=c.t(T::Search) autocomplete="off"
                    prop:value=typed on:input=move |ev| typed.set(event_target_value(&ev)) />
                <select id="filter-band" on:change=move |ev| band.set(event_target_value(&ev).parse().ok())>
                    <option value="">{c.t(T::AnyBand)}</option>
                    {FunnelBand::ALL.iter().map(|b| view! {
                        <option value=b.as_str()>{move || vocab_label(c, b.label_en(), b.label_zh())}</option>
                    }).collect_view()}
                </select>
                <select id="filter-stage" on:change=move |ev| stage.set(event_target_value(&ev).parse().ok())>
                    <option value="">{c.t(T::AnyStage)}</option>
                    {Stage::ALL.iter().map(|s| view! {
                        <option value=s.as_str()>{move || vocab_label(c, s.label_en(), s.label_zh())}</option>
                    }).collect_view()}
                </select>
                <label class="check"><input id="filter-overdue" type="checkbox" prop:checked=overdue
                    on:change=move |ev| overdue.set(event_target_checked(&ev)) />{c.t(T::Overdue)}</label>
                <label class="days">{c.t(T::QuietFor)}
                    <input id="filter-quiet" type="number" min="1" inputmode="numeric" prop:value=quiet_days
                        on:input=move |ev| quiet_days.set(event_target_value(&ev)) /></label>
            </div>
            <p class="count"><span id="list-total">{move || page.get().map(|p| p.total).unwrap_or(0)}</span>" "{c.t(T::Clients)}</p>
            <ul class="rows">
                {move || page.get().map(|p| {
                    if p.rows.is_empty() {
                        view! { <li class="empty">{c.t(T::NoClients)}</li> }.into_any()
                    } else {
                        p.rows.into_iter().map(|row| view! { <Row row=row today=today() /> }).collect_view().into_any()
                    }
                })}
            </ul>
            {move || page.get().filter(|p| (p.rows.len() as u64) < p.total).map(|_| view! {
                <button id="more" on:click=move |_| limit.update(|l| *l += PAGE)>{c.t(T::More)}</button>
            })}
        </main>
    }
}

fn default_query(limit: RwSignal<u32>) -> ListQuery {
    ListQuery {
        limit: Some(limit.get_untracked()),
        ..ListQuery::default()
    }
}

#[component]
fn Row(row: DossierSummary, today: Option<fieldbook_shared::Day>) -> impl IntoView {
    let c = ctx();
    let id = row.id.clone();
    let overdue = row.next_follow_up.zip(today).is_some_and(|(d, t)| d < t);
    let where_ = [row.industry.as_str(), row.region.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" · ");
    let stage = row.lead_stage;
    let band = row.lead_band;
    view! {
        <li>
            <button class="dossier-row" data-id=row.id.clone() on:click=move |_| c.route.set(Route::Dossier(id.clone()))>
                <span class="name">{row.name.clone()}</span>
                <span class="where">{where_}</span>
                <span class="stage">{move || stage.map(|s| vocab_label(c, s.label_en(), s.label_zh()))}</span>
                <span class=move || format!("band {}", band.map(|b| b.as_str()).unwrap_or(""))>
                    {move || band.map(|b| vocab_label(c, b.label_en(), b.label_zh()))}</span>
                <span class="next" class:overdue=overdue title=c.t(T::NextFollowUp)>
                    {row.next_follow_up.map(|d| format!("⚑ {d}"))}</span>
                <span class="last" title=c.t(T::LastContact)>{row.last_contact.map(|d| format!("✆ {d}"))}</span>
                {(row.conflicts > 0).then(|| view! { <span class="badge conflict">"⚠ " {row.conflicts}</span> })}
            </button>
        </li>
    }
}

#[component]
pub fn NewClient() -> impl IntoView {
    let c = ctx();
    let name = RwSignal::new(String::new());
    let industry = RwSignal::new(String::new());
    let region = RwSignal::new(String::new());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut fields = vec![Assignment {
            path: "profile.name".into(),
            value: name.get_untracked(),
        }];
        for (path, v) in [("profile.industry", industry), ("profile.region", region)] {
            let v = v.get_untracked();
            if !v.trim().is_empty() {
                fields.push(Assignment {
                    path: path.into(),
                    value: v,
                });
            }
        }
        c.run(api::CreateDossier { fields }, move |id| {
            c.route.set(Route::Dossier(id))
        });
    };
    view! {
        <main class="form">
            <h2>{c.t(T::NewClient)}</h2>
            <form on:submit=create>
                <label>{c.t(T::Name)}<input id="new-name" required prop:value=name
                    on:input=move |ev| name.set(event_target_value(&ev)) /></label>
                <label>{c.t(T::Industry)}<input id="new-industry" prop:value=industry
                    on:input=move |ev| industry.set(event_target_value(&ev)) /></label>
                <label>{c.t(T::Region)}<input id="new-region" prop:value=region
                    on:input=move |ev| region.set(event_target_value(&ev)) /></label>
                <div class="actions">
                    <button id="create" class="primary" type="submit">{c.t(T::Create)}</button>
                    <button type="button" on:click=move |_| c.route.set(Route::List)>{c.t(T::Cancel)}</button>
                </div>
            </form>
        </main>
    }
}
