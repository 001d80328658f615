//! Notes on a dossier: what the manager said, and the follow-ups they assigned. Everyone sees
//! them; a manager can add one (in the app or the web view), which reaches the rep's device on
//! its next sync.

use fieldbook_shared::api::{self, DossierView};
use fieldbook_shared::board::ManagerNote;
use fieldbook_shared::{Day, Dossier};
use leptos::prelude::*;

use crate::ctx;
use crate::i18n::T;

#[component]
pub fn ManagerNotes(
    id: String,
    dossier: Dossier,
    on_change: RwSignal<Option<DossierView>>,
) -> impl IntoView {
    let c = ctx();
    let mut notes: Vec<_> = dossier
        .comments
        .values()
        .filter(|n| n.deleted_at.is_none())
        .cloned()
        .collect();
    notes.sort_by_key(|n| std::cmp::Reverse(n.on));
    let follow_up_of = |fid: &Option<String>| {
        fid.as_ref()
            .and_then(|f| dossier.follow_ups.get(f))
            .map(|f| {
                let due = f.due.map(|d| format!(" · {d}")).unwrap_or_default();
                format!("→ {}: {}{due}", f.assignee_name, f.action)
            })
    };
    let list = notes
        .iter()
        .map(|n| {
            let assigned = follow_up_of(&n.follow_up);
            view! {
                <li class="note">
                    <span class="meta">{n.on.map(|d| d.to_string())} " · " {n.author.clone()}</span>
                    <p>{n.text.clone()}</p>
                    {assigned.map(|a| view! { <p class="assigned">{a}</p> })}
                </li>
            }
        })
        .collect_view();
    let empty = notes.is_empty();
    let owner = dossier.profile.owner.clone();
    (!empty || c.is_manager()).then(move || view! {
        <section class="card" id="notes">
            <h3>{c.t(T::Notes2)}</h3>
            <ul class="notes">{list}</ul>
            {c.is_manager().then(|| view! { <NoteForm id=id owner=owner on_change=on_change /> })}
        </section>
    })
}

#[component]
fn NoteForm(id: String, owner: String, on_change: RwSignal<Option<DossierView>>) -> impl IntoView {
    let c = ctx();
    let text = RwSignal::new(String::new());
    let rep = RwSignal::new(owner.clone());
    let action = RwSignal::new(String::new());
    let due = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let due_day = due.get_untracked().parse::<Day>().ok();
        let rep_name = rep.get_untracked().trim().to_string();
        let note = ManagerNote {
            text: text.get_untracked(),
            rep: (!rep_name.is_empty() && !action.get_untracked().trim().is_empty())
                .then_some(rep_name),
            action: action.get_untracked(),
            due: due_day,
            kind: None,
        };
        busy.set(true);
        c.run_or(
            api::AddNote {
                id: id.clone(),
                note,
            },
            move |view| {
                // Cleared only once saved: a failed save keeps what was typed.
                text.set(String::new());
                action.set(String::new());
                due.set(String::new());
                busy.set(false);
                on_change.set(Some(view));
            },
            move |_| busy.set(false),
        );
    };
    view! {
        <form class="note-form" on:submit=submit>
            <label>{c.t(T::Comment)}
                <textarea id="note-text" prop:value=text on:input=move |ev| text.set(event_target_value(&ev))></textarea></label>
            <div class="row">
                <label>{c.t(T::AssignTo)}
                    <input id="note-rep" type="text" prop:value=rep on:input=move |ev| rep.set(event_target_value(&ev)) /></label>
                <label>{c.t(T::Action)}
                    <input id="note-action" type="text" prop:value=action on:input=move |ev| action.set(event_target_value(&ev)) /></label>
                <label>{c.t(T::Due)}
                    <input id="note-due" type="date" prop:value=due on:input=move |ev| due.set(event_target_value(&ev)) /></label>
            </div>
            <button id="note-add" type="submit" class="primary" disabled=busy>{c.t(T::AddNote)}</button>
        </form>
    }
}
