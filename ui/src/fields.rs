//! A field of a dossier edited in place, saved as the rep types (after a short pause, and at
//! once when the field loses focus). Every field is addressed by its path in the dossier, the
//! same path the engine's edits and the history use.

use std::time::Duration;

use fieldbook_shared::api::Lang;
use fieldbook_shared::patch::Assignment;
use leptos::prelude::*;
use serde_json::Value;

use crate::i18n::T;
use crate::{Ctx, ctx};

/// A closed vocabulary's words with their two labels.
pub type Options = Vec<(&'static str, &'static str, &'static str)>;

#[macro_export]
macro_rules! options {
    ($vocab:ty) => {
        <$vocab>::ALL
            .iter()
            .map(|v| (v.as_str(), v.label_en(), v.label_zh()))
            .collect::<$crate::fields::Options>()
    };
}

#[derive(Clone)]
pub enum Kind {
    Text,
    /// Long text.
    Note,
    Day,
    Int,
    Bool,
    Select(Options),
}

pub fn vocab_label(c: Ctx, en: &'static str, zh: &'static str) -> &'static str {
    match c.lang.get() {
        Lang::En => en,
        Lang::Zh => zh,
    }
}

/// The JSON value at a dotted path.
pub fn at<'a>(json: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(json, |v, seg| v.get(seg))
        .unwrap_or(&Value::Null)
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        // A set of words (who a dossier is shared with): typed back as one comma-separated
        // line, which the field takes as such.
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// What an input's text means for the field: empty optional values become `null`.
fn to_assignment(kind: &Kind, path: &str, text: &str) -> Assignment {
    let value = match kind {
        Kind::Text | Kind::Note => text.to_string(),
        _ if text.trim().is_empty() => "null".to_string(),
        _ => text.trim().to_string(),
    };
    Assignment {
        path: path.to_string(),
        value,
    }
}

/// The dossier being shown: its id, its content as JSON, and what the field rows need.
#[derive(Clone)]
pub struct Editing {
    pub id: String,
    pub json: Value,
    pub conflicted: Vec<String>,
    pub history: RwSignal<Option<String>>,
    /// The item removed last, so it can be put back.
    pub removed: RwSignal<Option<String>>,
}

#[component]
pub fn Field(editing: Editing, #[prop(into)] path: String, label: T, kind: Kind) -> impl IntoView {
    let c = ctx();
    let initial = at(&editing.json, &path).clone();
    let conflicted = editing.conflicted.contains(&path);
    let text = RwSignal::new(shown(&initial));
    let checked = RwSignal::new(initial.as_bool().unwrap_or(false));
    let pending = StoredValue::new(None::<TimeoutHandle>);
    let id = editing.id.clone();
    let save_path = path.clone();
    let save_kind = kind.clone();
    let save = move |immediately: bool| {
        if let Some(h) = pending.get_value() {
            h.clear();
        }
        let (id, path, kind) = (id.clone(), save_path.clone(), save_kind.clone());
        let fire = move || {
            let a = match kind {
                Kind::Bool => Assignment {
                    path: path.clone(),
                    value: checked.get_untracked().to_string(),
                },
                _ => to_assignment(&kind, &path, &text.get_untracked()),
            };
            c.save(id.clone(), vec![a]);
        };
        if immediately {
            pending.set_value(None);
            fire();
        } else {
            pending.set_value(set_timeout_with_handle(fire, Duration::from_millis(400)).ok());
        }
    };
    let dirty = StoredValue::new(false);
    let on_input = {
        let save = save.clone();
        move |ev: leptos::ev::Event| {
            text.set(event_target_value(&ev));
            dirty.set_value(true);
            save(false);
        }
    };
    let on_blur = {
        let save = save.clone();
        move |_| {
            if dirty.get_value() && pending.get_value().is_some() {
                dirty.set_value(false);
                save(true);
            }
        }
    };
    let history = editing.history;
    let hist_path = path.clone();
    let input = match kind {
        Kind::Note => view! {
            <textarea data-path=path.clone() disabled=c.web rows="3" prop:value=text on:input=on_input on:blur=on_blur></textarea>
        }
        .into_any(),
        Kind::Text => view! {
            <input type="text" data-path=path.clone() disabled=c.web prop:value=text on:input=on_input on:blur=on_blur />
        }
        .into_any(),
        Kind::Day => view! {
            <input type="date" data-path=path.clone() disabled=c.web prop:value=text on:input=on_input on:blur=on_blur />
        }
        .into_any(),
        Kind::Int => view! {
            <input type="number" inputmode="numeric" data-path=path.clone() disabled=c.web prop:value=text on:input=on_input on:blur=on_blur />
        }
        .into_any(),
        Kind::Bool => {
            let save = save.clone();
            view! {
                <input type="checkbox" data-path=path.clone() disabled=c.web prop:checked=checked on:change=move |ev| {
                    checked.set(event_target_checked(&ev));
                    save(true);
                } />
            }
            .into_any()
        }
        Kind::Select(options) => {
            let save = save.clone();
            view! {
                <select data-path=path.clone() disabled=c.web prop:value=text on:change=move |ev| {
                    text.set(event_target_value(&ev));
                    save(true);
                }>
                    <option value="">"—"</option>
                    {options.into_iter().map(|(word, en, zh)| view! {
                        <option value=word selected=word == text.get_untracked()>{move || vocab_label(c, en, zh)}</option>
                    }).collect_view()}
                </select>
            }
            .into_any()
        }
    };
    view! {
        <label class="field" class:conflicted=conflicted>
            <span class="label">{c.t(label)}{conflicted.then_some(" ⚠")}</span>
            {input}
            <button type="button" class="hist" title=c.t(T::History) tabindex="-1"
                on:click=move |ev| { ev.prevent_default(); history.set(Some(hist_path.clone())); }>"↺"</button>
        </label>
    }
}
