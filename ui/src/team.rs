//! The manager's team board: pipeline and work order, activity, what is overdue, complaints
//! and reviews, the classification matrices, and how fresh each rep's data is. Read from the
//! device's replica in the app, or from the relay in a browser; the same `dashboard` call.

use fieldbook_shared::api;
use fieldbook_shared::board::{Cell, ClientRef, Dashboard, Figure, WORK_ORDER};
use fieldbook_shared::sync::wire::Visibility;
use fieldbook_shared::{
    FiveATier, FunnelBand, InteractionKind, PriceValueClass, SalesProfitClass, Stage,
};
use leptos::prelude::*;

use crate::fields::vocab_label;
use crate::i18n::T;
use crate::shell::clock_time;
use crate::{Ctx, Route, charts, ctx};

/// `1234567` → `1,234,567`.
pub fn money(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0 { format!("-{out}") } else { out }
}

fn rep_name(c: Ctx, rep: &str) -> String {
    if rep.is_empty() {
        c.tr(T::Nobody).to_string()
    } else {
        rep.to_string()
    }
}

#[component]
pub fn TeamBoard() -> impl IntoView {
    let c = ctx();
    let board = RwSignal::new(None::<Dashboard>);
    let quiet_days = RwSignal::new(30u32);
    // What the manager is in the middle of lives outside the board's redraw: the board
    // reloads whenever a change arrives, and a half-confirmed revoke or the rep chosen for the
    // activity chart must survive that.
    let asking = RwSignal::new(None::<i64>);
    let who = RwSignal::new(String::new());
    let loaded_at = StoredValue::new(None::<u64>);
    let load = move || {
        loaded_at.set_value(c.status.with_untracked(|s| s.as_ref().map(|s| s.revision)));
        c.run(
            api::GetDashboard {
                quiet_days: Some(quiet_days.get_untracked()),
            },
            move |d| board.set(Some(d)),
        );
    };
    load();
    // Follow the team as changes arrive (a sync on the device, any device's change on the
    // relay): the status revision moves.
    Effect::new(move |_| {
        let rev = c.status.with(|s| s.as_ref().map(|s| s.revision));
        if rev != loaded_at.get_value() {
            load();
        }
    });
    view! {
        <main class="team">
            {move || {
                // Labels are drawn into the charts: redraw all of it in the other language.
                c.lang.track();
                board.get()
            }.map(|d| view! {
                <Summary d=d.clone() />
                <Freshness d=d.clone() asking=asking reload=load />
                <Pipeline d=d.clone() />
                <WorkOrder d=d.clone() />
                <Activity d=d.clone() who=who />
                <FollowUpsDue d=d.clone() />
                <Complaints d=d.clone() />
                <Reviews d=d.clone() />
                <Quiet d=d.clone() quiet_days=quiet_days reload=load />
                <Classification d=d />
            })}
        </main>
    }
}

/// A client's name that opens the dossier.
fn client_link(c: Ctx, client: &ClientRef) -> impl IntoView + use<> {
    let id = client.id.clone();
    view! {
        <a href="#" class="client" data-id=id.clone() on:click=move |ev| {
            ev.prevent_default();
            c.route.set(Route::Dossier(id.clone()));
        }>{client.name.clone()}</a>
    }
}

fn figure_cells(f: Figure) -> impl IntoView {
    view! {
        <td class="num">{f.count}</td>
        <td class="num">{money(f.value)}</td>
        <td class="num">{money(f.weighted)}</td>
    }
}

/// "20 shown of 134": said whenever a list is cut.
fn shown_of(c: Ctx, shown: usize, total: u64) -> impl IntoView {
    (total > shown as u64).then(|| {
        view! { <p class="more-note">{shown} " " {c.tr(T::ShownOf)} " " {total}</p> }
    })
}

#[component]
fn Summary(d: Dashboard) -> impl IntoView {
    let c = ctx();
    let stale = d.freshness.iter().filter(|f| f.stale).count();
    let kpi_class = if stale > 0 { "kpi warn" } else { "kpi" };
    view! {
        <section class="card summary" id="board-summary">
            <div class="kpi"><span class="k">{c.t(T::ClientsTotal)}</span><b id="kpi-dossiers">{d.dossiers}</b></div>
            <div class="kpi"><span class="k">{c.t(T::OpenDeals)}</span><b id="kpi-open">{d.team.open.count}</b></div>
            <div class="kpi"><span class="k">{c.t(T::OpenValue)}</span><b id="kpi-value">{money(d.team.open.value)}</b></div>
            <div class="kpi"><span class="k">{c.t(T::Weighted)}</span><b id="kpi-weighted">{money(d.team.open.weighted)}</b></div>
            <div class="kpi"><span class="k">{c.t(T::Overdue)}</span>
                <b id="kpi-overdue">{d.overdue.iter().map(|r| r.items.total).sum::<u64>()}</b></div>
            <div class=kpi_class><span class="k">{c.t(T::StaleReps)}</span><b id="kpi-stale">{stale}</b></div>
        </section>
    }
}

/// In the web view, a manager revokes a lost or stolen device from its line: a first click
/// asks, a second one revokes (the relay closes its connection; on its next contact the device
/// wipes its replica when the team's policy says so).
fn revoke_cell(
    c: Ctx,
    id: i64,
    asking: RwSignal<Option<i64>>,
    reload: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    // A relay older than device ids (0) cannot be asked.
    (c.web && id > 0).then(|| {
        view! {
            <td class="revoke">
                {move || if asking.get() == Some(id) {
                    view! {
                        <span class="hint">{c.t(T::RevokeAsk)}</span> " "
                        <button class="danger confirm-revoke" on:click=move |_| {
                            c.run(api::RevokeDevice { device: id }, move |()| {
                                asking.set(None);
                                reload();
                            });
                        }>{c.t(T::RevokeYes)}</button> " "
                        <button class="cancel-revoke" on:click=move |_| asking.set(None)>{c.t(T::Cancel)}</button>
                    }.into_any()
                } else {
                    view! {
                        <button class="revoke-device" on:click=move |_| asking.set(Some(id))>{c.t(T::Revoke)}</button>
                    }.into_any()
                }}
            </td>
        }
    })
}

/// What the team's reps see, which the manager sets in the web view (the relay knows it; the
/// app's board does not show it).
fn visibility_choice(
    c: Ctx,
    now: Visibility,
    reload: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let option = |v: Visibility, label: T| {
        view! { <option value=v.as_str() selected=now == v>{c.t(label)}</option> }
    };
    view! {
        <p class="visibility">
            <label>{c.t(T::RepsSee)} " "
                <select id="visibility" on:change=move |ev| {
                    let chosen = event_target_value(&ev).parse::<Visibility>();
                    if let Ok(visibility) = chosen {
                        c.run(api::SetVisibility { visibility }, move |_| reload());
                    }
                }>
                    {option(Visibility::Team, T::SeeTeam)}
                    {option(Visibility::Own, T::SeeOwn)}
                </select>
            </label>
        </p>
    }
}

#[component]
fn Freshness(
    d: Dashboard,
    asking: RwSignal<Option<i64>>,
    reload: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let c = ctx();
    let as_of = d.freshness_as_of_ms.map(clock_time);
    view! {
        <section class="card" id="freshness">
            <h3>{c.t(T::Freshness)}</h3>
            {as_of.map(|t| view! { <p class="hint">{c.t(T::AsOf)} " " {t}</p> })}
            {d.visibility.map(|v| visibility_choice(c, v, reload))}
            <table>
                <thead><tr><th>{c.t(T::Rep)}</th><th>{c.t(T::LastSync)}</th><th>{c.t(T::Waiting)}</th><th></th><th>{c.t(T::Device)}</th></tr></thead>
                <tbody>
                {d.freshness.into_iter().map(|f| {
                    let never = || c.tr(T::Never).to_string();
                    let last = f.last_sync_ms.map(clock_time).unwrap_or_else(never);
                    // Each device on a line of its own: one rep's laptop may be current while
                    // the phone still holds the week's edits.
                    let devices = f.devices.iter().map(|d| view! {
                        <tr class="device" data-device=d.device.clone() data-device-id=d.id>
                            <td></td>
                            <td>{d.last_sync_ms.map(clock_time).unwrap_or_else(never)}</td>
                            <td class="num">{d.waiting}</td>
                            <td></td>
                            <td>{d.device.clone()}</td>
                            {revoke_cell(c, d.id, asking, reload)}
                        </tr>
                    }).collect_view();
                    view! {
                        <tr class:stale=f.stale class="rep" data-rep=f.rep.clone()>
                            <td>{rep_name(c, &f.rep)}</td>
                            <td>{last}</td>
                            <td class="num">{f.waiting}</td>
                            <td class="state">{if f.stale { c.tr(T::Stale) } else { c.tr(T::Fresh) }}</td>
                            <td></td>
                        </tr>
                        {devices}
                    }
                }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn Pipeline(d: Dashboard) -> impl IntoView {
    let c = ctx();
    let bands: Vec<FunnelBand> = vec![FunnelBand::Top, FunnelBand::Middle, FunnelBand::Bottom];
    let funnel = charts::funnel(
        &bands
            .iter()
            .map(|b| vocab_label(c, b.label_en(), b.label_zh()).to_string())
            .collect::<Vec<_>>(),
        &bands
            .iter()
            .map(|b| d.team.band(*b).count)
            .collect::<Vec<_>>(),
        &bands
            .iter()
            .map(|b| {
                let f = d.team.band(*b);
                format!("{} · {}", f.count, money(f.value))
            })
            .collect::<Vec<_>>(),
    );
    let stages = charts::bars(
        &Stage::ALL
            .iter()
            .map(|s| vocab_label(c, s.label_en(), s.label_zh()).to_string())
            .collect::<Vec<_>>(),
        &Stage::ALL
            .iter()
            .map(|s| d.team.stage(*s).value as f64)
            .collect::<Vec<_>>(),
        &Stage::ALL
            .iter()
            .map(|s| d.team.stage(*s).count.to_string())
            .collect::<Vec<_>>(),
    );
    let band_heads = bands
        .iter()
        .map(|b| view! { <th colspan="3">{vocab_label(c, b.label_en(), b.label_zh())}</th> })
        .collect_view();
    let row = move |p: &fieldbook_shared::board::Pipeline, total: bool| {
        let name = if total {
            c.tr(T::TeamTotal).to_string()
        } else {
            rep_name(c, &p.rep)
        };
        let cells = [FunnelBand::Top, FunnelBand::Middle, FunnelBand::Bottom]
            .iter()
            .map(|b| figure_cells(p.band(*b)))
            .collect_view();
        view! {
            <tr class:total=total data-rep=p.rep.clone()>
                <td>{name}</td>
                {figure_cells(p.open)}
                {cells}
            </tr>
        }
    };
    view! {
        <section class="card" id="pipeline">
            <h3>{c.t(T::Pipeline)}</h3>
            <div class="charts">
                <figure><figcaption>{c.t(T::Funnel)}</figcaption><div class="chart" inner_html=funnel></div></figure>
                <figure><figcaption>{c.t(T::ByStage)}</figcaption><div class="chart" inner_html=stages></div></figure>
            </div>
            <div class="scroll">
            <table class="pipeline">
                <thead>
                    <tr><th></th><th colspan="3">{c.t(T::OpenDeals)}</th>{band_heads}</tr>
                </thead>
                <tbody>
                    {d.pipelines.iter().map(|p| row(p, false)).collect_view()}
                    {row(&d.team, true)}
                </tbody>
            </table>
            </div>
        </section>
    }
}

#[component]
fn WorkOrder(d: Dashboard) -> impl IntoView {
    let c = ctx();
    let shown = d.close_first.rows.len();
    view! {
        <section class="card" id="work-order">
            <h3>{c.t(T::WorkOrder)}</h3>
            <ol class="work-order">
                {WORK_ORDER.iter().zip(&d.work_order).map(|(band, step)| {
                    let advice = match band {
                        FunnelBand::Bottom => T::WorkBottom,
                        FunnelBand::Top => T::WorkTop,
                        FunnelBand::Middle => T::WorkMiddle,
                    };
                    view! {
                        <li>{c.t(advice)} " — " {vocab_label(c, band.label_en(), band.label_zh())}
                            ": " <b>{step.deals.count}</b> " · " {money(step.deals.value)}</li>
                    }
                }).collect_view()}
            </ol>
            <h4>{c.t(T::CloseFirst)}</h4>
            <div class="scroll">
            <table id="close-first">
                <tbody>
                {d.close_first.rows.iter().map(|deal| view! {
                    <tr>
                        <td>{client_link(c, &deal.client)}</td>
                        <td>{deal.title.clone()}</td>
                        <td>{vocab_label(c, deal.stage.label_en(), deal.stage.label_zh())}</td>
                        <td class="num">{money(deal.value)}</td>
                        <td class="num">{deal.probability} "%"</td>
                        <td>{rep_name(c, &deal.client.rep)}</td>
                    </tr>
                }).collect_view()}
                </tbody>
            </table>
            </div>
            {shown_of(c, shown, d.close_first.total)}
        </section>
    }
}

#[component]
fn Activity(d: Dashboard, who: RwSignal<String>) -> impl IntoView {
    let c = ctx();
    let weeks: Vec<String> = d
        .weeks
        .iter()
        .map(|w| w.to_string()[5..].to_string())
        .collect();
    let series: Vec<(String, Vec<u32>)> = d
        .activity
        .iter()
        .map(|a| {
            (
                rep_name(c, &a.rep),
                (0..d.weeks.len()).map(|w| a.week_total(w)).collect(),
            )
        })
        .collect();
    let chart = charts::lines(&weeks, &series);
    // By kind, for the team or one rep (chosen on the page).
    let by_kind = {
        let (d, weeks) = (d.clone(), weeks.clone());
        move || {
            let chosen = who.get();
            let a = d
                .activity
                .iter()
                .find(|a| a.rep == chosen)
                .unwrap_or(&d.team_activity);
            let kinds: Vec<(String, Vec<u32>)> = (0..=InteractionKind::ALL.len())
                .map(|k| {
                    let name = InteractionKind::ALL.get(k).map_or(c.tr(T::Nobody), |x| {
                        vocab_label(c, x.label_en(), x.label_zh())
                    });
                    let counts = a
                        .counts
                        .iter()
                        .map(|week| week.get(k).copied().unwrap_or(0));
                    (name.to_string(), counts.collect::<Vec<u32>>())
                })
                .filter(|(_, v)| v.iter().any(|n| *n > 0))
                .collect();
            charts::stacked(&weeks, &kinds)
        }
    };
    let reps: Vec<String> = d.activity.iter().map(|a| a.rep.clone()).collect();
    view! {
        <section class="card" id="activity">
            <h3>{c.t(T::Activity)}</h3>
            <div class="charts">
                <figure><figcaption>{c.t(T::PerRep)}</figcaption><div class="chart" inner_html=chart></div></figure>
                <figure>
                    <figcaption>{c.t(T::ByKind)} " "
                        <select id="activity-who" prop:value=move || who.get() on:change=move |ev| who.set(event_target_value(&ev))>
                            <option value="">{c.t(T::TeamTotal)}</option>
                            {reps.into_iter().map(|r| {
                                // Drawn anew on each reload: keep the rep chosen before it.
                                let chosen = who.get_untracked() == r;
                                view! { <option value=r.clone() selected=chosen>{rep_name(c, &r)}</option> }
                            }).collect_view()}
                        </select>
                    </figcaption>
                    <div class="chart" id="activity-by-kind" inner_html=by_kind></div>
                </figure>
            </div>
            <div class="scroll">
            <table>
                <thead><tr><th>{c.t(T::Rep)}</th>
                    {weeks.iter().map(|w| view! { <th>{w.clone()}</th> }).collect_view()}
                </tr></thead>
                <tbody>
                {series.iter().map(|(rep, counts)| view! {
                    <tr data-rep=rep.clone()><td>{rep.clone()}</td>
                        {counts.iter().map(|n| view! { <td class="num">{*n}</td> }).collect_view()}
                    </tr>
                }).collect_view()}
                </tbody>
            </table>
            </div>
            <h4>{c.t(T::FrequentProspects)}</h4>
            <ul id="frequent-prospects">
                {d.frequent_prospects.rows.iter().map(|f| view! {
                    <li>{client_link(c, &f.client)} " — " {f.contacts_last_30_days} " " {c.t(T::ContactsIn30)}
                        " (" {rep_name(c, &f.client.rep)} ")"</li>
                }).collect_view()}
            </ul>
        </section>
    }
}

#[component]
fn FollowUpsDue(d: Dashboard) -> impl IntoView {
    let c = ctx();
    view! {
        <section class="card" id="overdue">
            <h3>{c.t(T::OverdueByRep)}</h3>
            {d.overdue.into_iter().map(|rep| {
                let shown = rep.items.rows.len();
                view! {
                    <div class="rep-overdue" data-rep=rep.rep.clone()>
                        <h4>{rep_name(c, &rep.rep)} " · " <span class="count">{rep.items.total}</span></h4>
                        <ul>
                        {rep.items.rows.iter().map(|i| view! {
                            <li>{client_link(c, &i.client)} " — " {i.action.clone()} " · "
                                {i.due.to_string()} " · " <b>{i.days_overdue}</b> " "
                                {c.t(if i.days_overdue == 1 { T::DayOverdue } else { T::DaysOverdue })}</li>
                        }).collect_view()}
                        </ul>
                        {shown_of(c, shown, rep.items.total)}
                    </div>
                }
            }).collect_view()}
        </section>
    }
}

#[component]
fn Complaints(d: Dashboard) -> impl IntoView {
    let c = ctx();
    let shown = d.complaints.rows.len();
    view! {
        <section class="card" id="complaints">
            <h3>{c.t(T::OpenComplaints)} " · " {d.complaints.total}</h3>
            <table>
                <thead><tr><th></th><th>{c.t(T::Severity)}</th><th>{c.t(T::OpenedOn)}</th><th>{c.t(T::Age)}</th><th>{c.t(T::StepsDone)}</th><th>{c.t(T::Rep)}</th></tr></thead>
                <tbody>
                {d.complaints.rows.iter().map(|x| view! {
                    <tr class:escalated=x.escalated>
                        <td>{client_link(c, &x.client)}
                            {x.escalated.then(|| view! { " " <span class="tag">{c.t(T::EscalatedTag)}</span> })}</td>
                        <td>{x.severity.map(|s| vocab_label(c, s.label_en(), s.label_zh()))}</td>
                        <td>{x.opened_on.map(|d| d.to_string())}</td>
                        <td class="num">{x.age_days}</td>
                        <td class="num">{x.steps_done} "/4"</td>
                        <td>{rep_name(c, &x.client.rep)}</td>
                    </tr>
                }).collect_view()}
                </tbody>
            </table>
            {shown_of(c, shown, d.complaints.total)}
        </section>
    }
}

#[component]
fn Reviews(d: Dashboard) -> impl IntoView {
    let c = ctx();
    let shown = d.reviews.rows.len();
    view! {
        <section class="card" id="reviews">
            <h3>{c.t(T::ReviewsDue)} " · " {d.reviews.total}</h3>
            <ul>
            {d.reviews.rows.iter().map(|r| view! {
                <li>{client_link(c, &r.client)} " — " {r.title.clone()} " · " {c.t(T::SignedOn)} " "
                    {r.signed_on.to_string()} " (" {r.days_since} " " {c.t(T::DaysSinceSigned)} ")"</li>
            }).collect_view()}
            </ul>
            {shown_of(c, shown, d.reviews.total)}
        </section>
    }
}

#[component]
fn Quiet(
    d: Dashboard,
    quiet_days: RwSignal<u32>,
    reload: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let c = ctx();
    let shown = d.quiet.rows.len();
    view! {
        <section class="card" id="quiet">
            <h3>{c.t(T::QuietClients)} " "
                <input id="quiet-days" type="number" min="1" class="days" prop:value=move || quiet_days.get().to_string()
                    on:change=move |ev| {
                        if let Ok(n) = event_target_value(&ev).parse::<u32>() {
                            quiet_days.set(n.max(1));
                            reload();
                        }
                    } />
                " " {c.t(T::Days)} " · " <span id="quiet-total">{d.quiet.total}</span></h3>
            <p class="by-rep">
                {d.quiet_by_rep.iter().map(|(rep, n)| view! { <span class="pill">{rep_name(c, rep)} ": " {*n}</span> " " }).collect_view()}
            </p>
            <ul>
            {d.quiet.rows.iter().map(|q| view! {
                <li>{client_link(c, &q.client)} " — " {c.t(T::LastContact)} ": "
                    {q.last_contact.map(|d| d.to_string()).unwrap_or_else(|| c.tr(T::Never).to_string())}
                    " (" {rep_name(c, &q.client.rep)} ")"</li>
            }).collect_view()}
            </ul>
            {shown_of(c, shown, d.quiet.total)}
        </section>
    }
}

fn cell_count<K: PartialEq>(cells: &[Cell<K>], k: K) -> u64 {
    cells
        .iter()
        .find(|x| x.class.as_ref() == Some(&k))
        .map_or(0, |x| x.clients.total)
}

/// A 2 × 2 matrix of a classification's four classes, in `order` (row by row).
fn matrix_of<K: Copy + PartialEq>(
    cells: &[Cell<K>],
    order: [K; 4],
    label: impl Fn(K) -> &'static str,
) -> String {
    let counts: Vec<(String, u64)> = order
        .iter()
        .map(|k| (label(*k).to_string(), cell_count(cells, *k)))
        .collect();
    charts::matrix(&counts)
}

fn cell_lists<K: Copy, F: Fn(K) -> &'static str>(
    c: Ctx,
    cells: &[Cell<K>],
    label: F,
) -> impl IntoView + use<K, F> {
    cells
        .iter()
        .filter(|cell| cell.clients.total > 0)
        .map(|cell| {
            let name = cell.class.map_or(c.tr(T::NotClassified), &label);
            view! {
                <details>
                    <summary>{name} " · " {cell.clients.total}</summary>
                    <ul>{cell.clients.rows.iter().map(|x| view! { <li>{client_link(c, x)}</li> }).collect_view()}</ul>
                    {shown_of(c, cell.clients.rows.len(), cell.clients.total)}
                </details>
            }
        })
        .collect_view()
}

#[component]
fn Classification(d: Dashboard) -> impl IntoView {
    let c = ctx();
    let sp = move |k: SalesProfitClass| vocab_label(c, k.label_en(), k.label_zh());
    let pv = move |k: PriceValueClass| vocab_label(c, k.label_en(), k.label_zh());
    let fa = move |k: FiveATier| vocab_label(c, k.label_en(), k.label_zh());
    // The method names the four cells but not where they sit on the axes: the matrix shows
    // the cells, not a claim about axes.
    let sales_profit = matrix_of(
        &d.sales_profit,
        [
            SalesProfitClass::Question,
            SalesProfitClass::Star,
            SalesProfitClass::Dog,
            SalesProfitClass::CashCow,
        ],
        sp,
    );
    let price_value = matrix_of(
        &d.price_value,
        [
            PriceValueClass::ValueBuyer,
            PriceValueClass::Calculating,
            PriceValueClass::Relationship,
            PriceValueClass::PriceBuyer,
        ],
        pv,
    );
    let tiers = charts::bars(
        &FiveATier::ALL
            .iter()
            .map(|k| fa(*k).to_string())
            .collect::<Vec<_>>(),
        &FiveATier::ALL
            .iter()
            .map(|k| cell_count(&d.five_a, *k) as f64)
            .collect::<Vec<_>>(),
        &FiveATier::ALL
            .iter()
            .map(|k| cell_count(&d.five_a, *k).to_string())
            .collect::<Vec<_>>(),
    );
    view! {
        <section class="card" id="classification">
            <h3>{c.t(T::Classification)}</h3>
            <div class="charts">
                <figure><figcaption>{c.t(T::SalesProfit)}</figcaption><div class="chart" inner_html=sales_profit></div>
                    {cell_lists(c, &d.sales_profit, sp)}</figure>
                <figure><figcaption>{c.t(T::PriceValue)}</figcaption><div class="chart" inner_html=price_value></div>
                    {cell_lists(c, &d.price_value, pv)}</figure>
                <figure><figcaption>{c.t(T::FiveA)}</figcaption><div class="chart" inner_html=tiers></div>
                    {cell_lists(c, &d.five_a, fa)}</figure>
            </div>
        </section>
    }
}
