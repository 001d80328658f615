//! Fieldbook's UI (Leptos, client-side rendered). The same build runs in the Tauri window and,
//! served by the relay, in a browser; [`backend`] hides which.

mod backend;
mod charts;
mod dossier;
mod fields;
mod i18n;
mod list;
mod meeting;
mod notes;
mod shell;
mod team;

use std::sync::Arc;

use fieldbook_shared::api::{self, AppError, Call, Lang, Status};
use fieldbook_shared::sync::wire::Role;
use leptos::prelude::*;

use crate::backend::Backend;
use crate::i18n::T;

/// Which screen is showing.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    List,
    Dossier(String),
    NewClient,
    /// Record a meeting, for this client if one is chosen already.
    Meeting(Option<String>),
    /// The manager's team board.
    Team,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SaveState {
    Idle,
    Saving,
    Saved,
}

/// What every component reaches through context.
#[derive(Clone, Copy)]
pub struct Ctx {
    backend: StoredValue<Arc<dyn Backend>>,
    pub lang: RwSignal<Lang>,
    pub status: RwSignal<Option<Status>>,
    pub route: RwSignal<Route>,
    pub error: RwSignal<Option<String>>,
    pub save_state: RwSignal<SaveState>,
    /// In a browser, served by the relay (not the app window): the manager's web view.
    pub web: bool,
    /// The relay asked for a login (web view only).
    pub login: RwSignal<bool>,
}

impl Ctx {
    /// A text in the current language, as a reactive closure for `view!`.
    pub fn t(self, key: T) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
        let lang = self.lang;
        move || key.get(lang.get())
    }

    pub fn tr(self, key: T) -> &'static str {
        key.get(self.lang.get_untracked())
    }

    /// Send `request`; on success hand the reply to `then`, on failure show the error.
    pub fn run<C: Call + 'static>(self, request: C, then: impl FnOnce(C::Reply) + 'static) {
        self.run_or(request, then, |_| {});
    }

    /// As [`Ctx::run`], and also tell `failed` when it fails.
    pub fn run_or<C: Call + 'static>(
        self,
        request: C,
        then: impl FnOnce(C::Reply) + 'static,
        failed: impl FnOnce(&AppError) + 'static,
    ) {
        let backend = self.backend.get_value();
        leptos::task::spawn_local(async move {
            match backend::call(backend.as_ref(), request).await {
                Ok(reply) => {
                    self.error.set(None);
                    then(reply);
                }
                Err(e) if e.kind == api::ErrorKind::Unauthorized => {
                    failed(&e);
                    self.login.set(true);
                }
                Err(e) => {
                    failed(&e);
                    self.error.set(Some(e.message));
                }
            }
        });
    }

    /// Save field edits of dossier `id`, showing "Saving…" then "Saved".
    pub fn save(self, id: String, fields: Vec<fieldbook_shared::patch::Assignment>) {
        self.save_state.set(SaveState::Saving);
        self.run_or(
            api::SetFields { id, fields },
            move |_| self.save_state.set(SaveState::Saved),
            move |_| self.save_state.set(SaveState::Idle),
        );
    }
}

impl Ctx {
    /// The signed-in user is a manager (their device, or the web view).
    pub fn is_manager(self) -> bool {
        self.status.with(|s| s.as_ref().and_then(|s| s.sync.role)) == Some(Role::Manager)
    }
}

pub fn ctx() -> Ctx {
    expect_context::<Ctx>()
}

/// Record when the first page of the list was on screen, for the start-up benchmark.
pub fn mark_first_page() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let key = wasm_bindgen::JsValue::from_str("__fieldbookFirstPageMs");
    let already = js_sys::Reflect::get(&window, &key).is_ok_and(|v| !v.is_undefined());
    if !already && let Some(perf) = window.performance() {
        let _ = js_sys::Reflect::set(&window, &key, &perf.now().into());
    }
}

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(shell::App);
}
