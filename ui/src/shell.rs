//! The frame around every screen: first run, the header with the sync status, the language
//! switch and the "record a meeting" button, and which screen shows below.

use std::time::Duration;

use fieldbook_shared::api::{self, Lang, LinkState, Settings, Status};
use fieldbook_shared::sync::wire::Role;
use leptos::prelude::*;

use crate::i18n::{T, other};
use crate::{Ctx, Route, SaveState, backend, ctx};

#[component]
pub fn App() -> impl IntoView {
    let c = Ctx {
        backend: StoredValue::new(backend::detect()),
        lang: RwSignal::new(Lang::Zh),
        status: RwSignal::new(None),
        route: RwSignal::new(Route::List),
        error: RwSignal::new(None),
        save_state: RwSignal::new(SaveState::Idle),
        web: !backend::in_app(),
        login: RwSignal::new(false),
    };
    provide_context(c);
    let settings = RwSignal::new(None::<Settings>);
    let first_page = RwSignal::new(None::<api::DossierPage>);
    let start = move || {
        c.run(
            api::Start {
                query: api::ListQuery::default(),
            },
            move |started| {
                if let Some(lang) = started.settings.language {
                    c.lang.set(lang);
                }
                // A manager in the browser comes for the team board.
                if c.web && started.status.sync.role == Some(Role::Manager) {
                    c.route.set(Route::Team);
                }
                c.status.set(Some(started.status));
                first_page.set(Some(started.page));
                settings.set(Some(started.settings));
            },
        )
    };
    start();
    // The status bar follows the background sync; the list reloads when the revision moves.
    let _ = set_interval_with_handle(
        move || {
            if !c.login.get_untracked() {
                c.run(api::GetStatus {}, move |s| c.status.set(Some(s)));
            }
        },
        Duration::from_millis(1500),
    );
    Effect::new(move |_| {
        if let Some(doc) = web_sys::window().and_then(|w| w.document())
            && let Some(root) = doc.document_element()
        {
            let tag = match c.lang.get() {
                Lang::Zh => "zh-CN",
                Lang::En => "en",
            };
            let _ = root.set_attribute("lang", tag);
        }
    });
    view! {
        {move || match settings.get() {
            _ if c.login.get() => view! { <Login on_login=start /> }.into_any(),
            None => view! { <div class="loading">"…"</div><ErrorLine /> }.into_any(),
            Some(s) if !s.onboarded => view! { <FirstRun settings=settings /> }.into_any(),
            Some(_) => view! { <Main first_page=first_page /> }.into_any(),
        }}
    }
}

fn save_language(c: Ctx, lang: Lang, onboarded: bool) {
    c.lang.set(lang);
    c.run(
        api::SaveSettings {
            settings: Settings {
                language: Some(lang),
                onboarded,
            },
        },
        |_| {},
    );
}

/// First run: the language, then join a team or work offline.
#[component]
fn FirstRun(settings: RwSignal<Option<Settings>>) -> impl IntoView {
    let c = ctx();
    let relay = RwSignal::new(String::new());
    let invite = RwSignal::new(String::new());
    let ca_pem = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let finish = move || {
        settings.update(|s| {
            if let Some(s) = s {
                s.onboarded = true;
            }
        })
    };
    let join = move |_| {
        busy.set(true);
        c.run_or(
            api::Enroll {
                relay_url: relay.get_untracked(),
                invite: invite.get_untracked(),
                ca_pem: Some(ca_pem.get_untracked()).filter(|p| !p.trim().is_empty()),
            },
            move |status| {
                busy.set(false);
                c.status.set(Some(status));
                save_language(c, c.lang.get_untracked(), true);
                finish();
            },
            move |_| busy.set(false),
        );
    };
    let skip = move |_| {
        save_language(c, c.lang.get_untracked(), true);
        finish();
    };
    view! {
        <main class="first-run">
            <h1>{c.t(T::AppName)}</h1>
            <p class="lead">{c.t(T::Welcome)}</p>
            <section>
                <h2>{c.t(T::ChooseLanguage)}</h2>
                <div class="choice">
                    <button id="lang-zh" class:chosen=move || c.lang.get() == Lang::Zh
                        on:click=move |_| save_language(c, Lang::Zh, false)>"中文"</button>
                    <button id="lang-en" class:chosen=move || c.lang.get() == Lang::En
                        on:click=move |_| save_language(c, Lang::En, false)>"English"</button>
                </div>
            </section>
            <section>
                <h2>{c.t(T::JoinTeam)}</h2>
                <label>{c.t(T::RelayUrl)}
                    <input id="relay-url" type="url" placeholder="https://relay.example.com"
                        prop:value=relay on:input=move |ev| relay.set(event_target_value(&ev)) />
                </label>
                <label>{c.t(T::InviteCode)}
                    <input id="invite" type="text" autocomplete="off"
                        prop:value=invite on:input=move |ev| invite.set(event_target_value(&ev)) />
                </label>
                <details id="team-ca">
                    <summary>{c.t(T::TeamCa)}</summary>
                    <label>{c.t(T::TeamCaHint)}
                        <textarea id="ca-pem" rows="4" spellcheck="false"
                            placeholder="-----BEGIN CERTIFICATE-----"
                            prop:value=ca_pem on:input=move |ev| ca_pem.set(event_target_value(&ev))></textarea>
                    </label>
                </details>
                <div class="actions">
                    <button id="enroll" class="primary" disabled=busy on:click=join>{c.t(T::Join)}</button>
                    <button id="skip" on:click=skip>{c.t(T::WorkOffline)}</button>
                </div>
                <ErrorLine />
            </section>
        </main>
    }
}

/// The web view's login: team, user and the password the relay's admin set.
#[component]
fn Login(on_login: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let c = ctx();
    let team = RwSignal::new(String::new());
    let user = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        c.error.set(None);
        let request = api::Login {
            team: team.get_untracked(),
            user: user.get_untracked(),
            password: password.get_untracked(),
        };
        let backend = c.backend.get_value();
        leptos::task::spawn_local(async move {
            match backend::call(backend.as_ref(), request).await {
                Ok(status) => {
                    password.set(String::new());
                    c.status.set(Some(status));
                    c.login.set(false);
                    on_login();
                }
                Err(e) => c.error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    view! {
        <main class="first-run login">
            <h1>{c.t(T::AppName)}</h1>
            <p class="lead">{c.t(T::LoginLead)}</p>
            <form on:submit=submit>
                <label>{c.t(T::TeamName)}
                    <input id="login-team" type="text" autocomplete="organization"
                        prop:value=team on:input=move |ev| team.set(event_target_value(&ev)) /></label>
                <label>{c.t(T::UserName)}
                    <input id="login-user" type="text" autocomplete="username"
                        prop:value=user on:input=move |ev| user.set(event_target_value(&ev)) /></label>
                <label>{c.t(T::Password)}
                    <input id="login-password" type="password" autocomplete="current-password"
                        prop:value=password on:input=move |ev| password.set(event_target_value(&ev)) /></label>
                <div class="actions">
                    <button id="login" type="submit" class="primary" disabled=busy>{c.t(T::LogIn)}</button>
                    <button type="button" on:click=move |_| c.lang.set(other(c.lang.get_untracked()))>{c.t(T::Language)}</button>
                </div>
            </form>
            <ErrorLine />
        </main>
    }
}

#[component]
pub fn ErrorLine() -> impl IntoView {
    let c = ctx();
    view! {
        {move || c.error.get().map(|e| view! {
            <p class="error" role="alert">{e}
                <button class="dismiss" on:click=move |_| c.error.set(None)>"×"</button>
            </p>
        })}
    }
}

#[component]
fn Main(first_page: RwSignal<Option<api::DossierPage>>) -> impl IntoView {
    let c = ctx();
    let open_meeting = move || {
        let current = match c.route.get_untracked() {
            Route::Dossier(id) => Some(id),
            _ => None,
        };
        c.route.set(Route::Meeting(current));
    };
    // Keyboard: "m" records a meeting, "/" searches, Escape goes back to the list.
    let _ = window_event_listener(leptos::ev::keydown, move |ev| {
        let typing = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        match ev.key().as_str() {
            "Escape" => c.route.set(Route::List),
            "m" if !typing && !c.web => open_meeting(),
            "/" if !typing => {
                c.route.set(Route::List);
                if let Some(input) = web_sys::window()
                    .and_then(|w| w.document())
                    .and_then(|d| d.get_element_by_id("search"))
                    .and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok())
                {
                    ev.prevent_default();
                    let _ = input.focus();
                }
            }
            _ => {}
        }
    });
    // A new screen starts at its top, not where the last one was scrolled to (the title bar
    // with "back" would otherwise sit under the sticky header).
    Effect::new(move |_| {
        c.route.track();
        if let Some(w) = web_sys::window() {
            w.scroll_to_with_x_and_y(0.0, 0.0);
        }
    });
    view! {
        <header class="top">
            <button class="brand" on:click=move |_| c.route.set(Route::List)>{c.t(T::AppName)}</button>
            <SyncBadge />
            <span class="spacer"></span>
            <SaveBadge />
            <button id="lang-toggle" title="Language / 语言" on:click=move |_| {
                let next = other(c.lang.get_untracked());
                save_language(c, next, true);
            }>{c.t(T::Language)}</button>
            {move || c.is_manager().then(|| view! {
                <button id="team-view" class:current=move || c.route.get() == Route::Team
                    on:click=move |_| c.route.set(Route::Team)>{c.t(T::Team)}</button>
            })}
            {(!c.web).then(|| view! {
                <button id="new-client" on:click=move |_| c.route.set(Route::NewClient)>"+ " {c.t(T::NewClient)}</button>
                <button id="record-meeting" class="primary" on:click=move |_| open_meeting()>{c.t(T::RecordMeeting)}</button>
            })}
            {c.web.then(|| view! {
                <button id="logout" on:click=move |_| c.run(api::Logout {}, move |_| c.login.set(true))>{c.t(T::LogOut)}</button>
            })}
        </header>
        <ErrorLine />
        {move || match c.route.get() {
            Route::List => view! { <crate::list::DossierList first_page=first_page /> }.into_any(),
            Route::Dossier(id) => view! { <crate::dossier::DossierScreen id=id /> }.into_any(),
            Route::NewClient => view! { <crate::list::NewClient /> }.into_any(),
            Route::Meeting(id) => view! { <crate::meeting::MeetingForm client=id /> }.into_any(),
            Route::Team => view! { <crate::team::TeamBoard /> }.into_any(),
        }}
    }
}

/// "Saving…" / "Saved" after an edit typed in place.
#[component]
fn SaveBadge() -> impl IntoView {
    let c = ctx();
    view! {
        <span id="save-state" class="save-state">{move || match c.save_state.get() {
            SaveState::Idle => "",
            SaveState::Saving => c.tr(T::Saving),
            SaveState::Saved => c.tr(T::Saved),
        }}</span>
    }
}

/// Local clock time of a timestamp, `HH:MM` (with the date when it is not today).
pub fn clock_time(ms: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let now = js_sys::Date::new_0();
    let time = format!("{:02}:{:02}", d.get_hours(), d.get_minutes());
    if d.to_date_string() == now.to_date_string() {
        time
    } else {
        format!(
            "{}-{:02}-{:02} {time}",
            d.get_full_year(),
            d.get_month() + 1,
            d.get_date()
        )
    }
}

/// Online or not, what waits to be sent, when the last sync finished.
#[component]
fn SyncBadge() -> impl IntoView {
    let c = ctx();
    let text = move || {
        let Some(Status { link, sync, .. }) = c.status.get() else {
            return (String::new(), "unknown");
        };
        let (state, class) = match &link {
            LinkState::NotEnrolled => (c.tr(T::NotEnrolled).to_string(), "off"),
            LinkState::Connecting => (c.tr(T::Connecting).to_string(), "wait"),
            LinkState::Connected { remaining: 0 } => (c.tr(T::Synced).to_string(), "on"),
            LinkState::Connected { remaining } => {
                (format!("{} · {remaining}", c.tr(T::Syncing)), "busy")
            }
            LinkState::Offline { error, retry_in_ms } => {
                let mut s = c.tr(T::Offline).to_string();
                if let Some(e) = error {
                    s.push_str(&format!(" — {e}"));
                }
                s.push_str(&format!(
                    " ({} {} s)",
                    c.tr(T::RetryIn),
                    retry_in_ms.div_ceil(1000)
                ));
                (s, "off")
            }
        };
        let mut parts = vec![state];
        // Not enrolled, nothing is waiting to go anywhere: the count would only alarm.
        if sync.unsynced_changes > 0 && sync.relay.is_some() {
            parts.push(format!("{} {}", sync.unsynced_changes, c.tr(T::Waiting)));
        }
        if sync.relay.is_some() {
            let last = sync
                .last_sync_ms
                .map(clock_time)
                .unwrap_or_else(|| c.tr(T::Never).to_string());
            parts.push(format!("{} {last}", c.tr(T::LastSync)));
        }
        (parts.join(" · "), class)
    };
    view! {
        <span id="sync-status" class=move || format!("sync {}", text().1) role="status">
            <span class="dot"></span>{move || text().0}
            {move || matches!(c.status.get().map(|s| s.link), Some(LinkState::Connected { remaining }) if remaining > 0)
                .then(|| view! { <progress class="sync-progress"></progress> })}
        </span>
    }
}
