//! Human-readable output of the CLI.

use std::fmt::Write;

use fieldbook_shared::conflict::Conflict;
use fieldbook_shared::history::FieldChange;
use fieldbook_shared::summary::{DossierSummary, FollowUpSummary};
use fieldbook_shared::{Author, Day, Dossier, Items};

pub use crate::words::count;

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "?".into())
}

fn when_exact(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "?".into())
}

/// "li on laptop", or the device id when the document names no author for it.
fn who(author: Option<&Author>, device: &str) -> String {
    author
        .map(|a| format!("{} on {}", a.user, a.device))
        .unwrap_or_else(|| format!("device {device}"))
}

/// `text` padded to `width` terminal columns (a Chinese character takes two).
fn pad(text: &str, width: usize) -> String {
    let used = unicode_width::UnicodeWidthStr::width(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(used)))
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "—".into())
}

/// Live items sorted by a date key, oldest first.
fn sorted<T>(
    items: &Items<T>,
    deleted: impl Fn(&T) -> bool,
    key: impl Fn(&T) -> Option<Day>,
) -> Vec<(&String, &T)> {
    let mut v: Vec<_> = items.iter().filter(|(_, t)| !deleted(t)).collect();
    v.sort_by_key(|(id, t)| (key(t), (*id).clone()));
    v
}

pub fn dossier(id: &str, d: &Dossier, conflicts: &[Conflict], today: Day) -> String {
    let mut s = String::new();
    let p = &d.profile;
    let _ = writeln!(s, "{}  ({id})", p.name);
    if d.deleted_at.is_some() {
        let _ = writeln!(s, "ARCHIVED on {}", opt(&d.deleted_at));
    }
    let _ = writeln!(
        s,
        "industry: {}  region: {}  owner: {}  target: {}  brand: {}",
        p.industry,
        p.region,
        p.owner,
        opt(&p.target_type),
        opt(&p.brand)
    );
    let facts: Vec<String> = [
        ("client number", p.client_number.clone()),
        ("website", p.website.clone()),
        ("sales scale", p.sales_scale.clone()),
        (
            "headcount",
            p.headcount.map(|h| h.to_string()).unwrap_or_default(),
        ),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}: {v}"))
    .collect();
    if !facts.is_empty() {
        let _ = writeln!(s, "{}", facts.join("  "));
    }
    // The long shared notes, whole: a merge of two people's edits shows here.
    for (label, text) in [
        ("business scope", p.business_scope.as_str()),
        ("organisation", p.org_structure.as_str()),
    ] {
        if !text.is_empty() {
            let _ = writeln!(s, "{label}: {text}");
        }
    }
    if !conflicts.is_empty() {
        let _ = writeln!(
            s,
            "! {} field(s) hold conflicting values: run `fieldbook conflicts {id}`",
            conflicts.len()
        );
    }
    let people = sorted(&d.people, |x| x.deleted_at.is_some(), |x| x.last_contact);
    if !people.is_empty() {
        let _ = writeln!(s, "\nPeople");
        for (pid, x) in people {
            let roles: Vec<&str> = x.roles.iter().map(String::as_str).collect();
            let reach: Vec<&str> = [x.phone.as_str(), x.email.as_str(), x.im.as_str()]
                .into_iter()
                .filter(|v| !v.is_empty())
                .collect();
            let _ = writeln!(
                s,
                "  {}{} — {} {} [{}]{}{}{}  ({pid})",
                x.name,
                if x.coach { " ★coach" } else { "" },
                x.title,
                x.department,
                roles.join(", "),
                x.personality.map(|v| format!(" {v}")).unwrap_or_default(),
                if x.left_on.is_some() { " (left)" } else { "" },
                if reach.is_empty() {
                    String::new()
                } else {
                    format!("  {}", reach.join("  "))
                },
            );
        }
    }
    let interactions = sorted(&d.interactions, |x| x.deleted_at.is_some(), |x| x.date);
    if !interactions.is_empty() {
        let _ = writeln!(s, "\nInteractions");
        for (iid, x) in interactions {
            let _ = writeln!(s, "  {} {}  ({iid})", opt(&x.date), opt(&x.kind));
            for (label, text) in [
                ("notes", x.notes.as_str()),
                ("demand", x.learned.demand.as_str()),
                ("problem", x.learned.problem.as_str()),
                ("benefit points", x.learned.benefit_points.as_str()),
                ("key people", x.learned.key_person_info.as_str()),
            ] {
                if !text.is_empty() {
                    let _ = writeln!(s, "    {label}: {text}");
                }
            }
            if !x.next_step.is_empty() {
                let _ = writeln!(s, "    next: {} by {}", x.next_step, opt(&x.next_step_due));
            }
        }
    }
    let deals = sorted(&d.deals, |x| x.deleted_at.is_some(), |x| x.expected_close);
    if !deals.is_empty() {
        let _ = writeln!(s, "\nDeals");
        for (did, x) in deals {
            let _ = writeln!(
                s,
                "  {} — {} {}% ({} band) value {} {}  open checklist items: {}  ({did})",
                x.title,
                x.stage_or_default(),
                x.probability(),
                x.band(),
                opt(&x.value),
                x.currency,
                x.open_checklist_items()
            );
        }
    }
    let follow_ups = sorted(&d.follow_ups, |x| x.deleted_at.is_some(), |x| x.due);
    if !follow_ups.is_empty() {
        let _ = writeln!(s, "\nFollow-ups");
        for (fid, x) in follow_ups {
            let state = if x.done_on.is_some() {
                "done"
            } else if x.is_overdue(today) {
                "OVERDUE"
            } else {
                "open"
            };
            let _ = writeln!(
                s,
                "  {} {} {} — {} ({})  ({fid})",
                opt(&x.due),
                state,
                opt(&x.kind),
                x.action,
                opt(&x.assignee)
            );
        }
    }
    let complaints = sorted(&d.complaints, |x| x.deleted_at.is_some(), |x| x.opened_on);
    if !complaints.is_empty() {
        let _ = writeln!(s, "\nComplaints");
        for (cid, x) in complaints {
            let _ = writeln!(
                s,
                "  {} {} {}/4 steps{}{} — {}  ({cid})",
                opt(&x.opened_on),
                opt(&x.severity),
                x.steps_done(),
                if x.escalated_on.is_some() {
                    " escalated"
                } else {
                    ""
                },
                if x.is_open() { "" } else { " closed" },
                x.what_happened
            );
        }
    }
    let contracts = sorted(&d.contracts, |x| x.deleted_at.is_some(), |x| x.signed_on);
    if !contracts.is_empty() {
        let _ = writeln!(s, "\nContracts");
        for (cid, x) in contracts {
            let _ = writeln!(
                s,
                "  {} signed {} payment {}  ({cid})",
                x.title,
                opt(&x.signed_on),
                opt(&x.payment_status)
            );
        }
    }
    let c = &d.classification;
    let _ = writeln!(
        s,
        "\nClassification: {} · {} · {}",
        opt(&c.sales_profit),
        opt(&c.price_value),
        c.five_a()
    );
    s
}

pub fn list(rows: &[DossierSummary], today: Day) -> String {
    if rows.is_empty() {
        return "no dossiers".into();
    }
    let mut s = String::new();
    for r in rows {
        let due = match r.next_follow_up {
            Some(d) if d < today => format!("OVERDUE {d}"),
            Some(d) => format!("next {d}"),
            None => "no follow-up".into(),
        };
        let _ = writeln!(
            s,
            "{}  {} {:<12} {:<18} last contact {}{}  {}",
            r.id,
            pad(&r.name, 26),
            r.lead_stage.map(|x| x.as_str()).unwrap_or("—"),
            due,
            opt(&r.last_contact),
            if r.conflicts > 0 { "  !conflicts" } else { "" },
            r.owner
        );
    }
    s
}

pub fn todo(rows: &[FollowUpSummary], today: Day) -> String {
    if rows.is_empty() {
        return "nothing to follow up".into();
    }
    let mut s = String::new();
    for f in rows {
        let state = if f.due.is_some_and(|d| d < today) {
            "OVERDUE"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "{} {:<7} {} {} — {} ({})  [{} {}]",
            opt(&f.due),
            state,
            pad(&f.dossier_name, 20),
            opt(&f.kind),
            f.action,
            if f.assignee_name.is_empty() {
                opt(&f.assignee)
            } else {
                f.assignee_name.clone()
            },
            f.dossier_id,
            f.follow_up_id
        );
    }
    s
}

pub fn conflicts(conflicts: &[Conflict]) -> String {
    if conflicts.is_empty() {
        return "no conflicts".into();
    }
    let mut s = String::new();
    for c in conflicts {
        let _ = writeln!(s, "{}", c.path);
        for (n, v) in c.values.iter().enumerate() {
            let who = who(v.author.as_ref(), &v.device);
            let _ = writeln!(
                s,
                "  {}. {}  — {who}, {}{}",
                n + 1,
                v.value,
                when(v.at_ms),
                if n == 0 { " (shown now)" } else { "" }
            );
        }
    }
    s.push_str("settle one with: fieldbook resolve <dossier> <path> --pick N");
    s
}

pub fn history(changes: &[FieldChange]) -> String {
    if changes.is_empty() {
        return "never changed".into();
    }
    changes
        .iter()
        .map(|c| {
            let who = who(c.author.as_ref(), &c.device);
            let what = if c.resolved {
                "resolved the conflict, keeping"
            } else {
                "set"
            };
            // To the second: edits made minutes apart on two devices read in their order.
            format!("{}  {who} {what} {}", when_exact(c.at_ms), c.value)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn sync_status(s: &crate::sync::SyncStatus) -> String {
    let relay = match (&s.relay, &s.team) {
        (Some(r), Some(t)) => format!("relay {r}, team {t}"),
        (Some(r), None) => format!("relay {r}"),
        _ => "not enrolled with a relay (working offline)".to_string(),
    };
    let last = s
        .last_sync_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".into());
    let waiting = if s.unsynced_changes == 0 {
        "nothing waiting to be sent".to_string()
    } else {
        format!(
            "{} in {} waiting to be sent",
            count(s.unsynced_changes as usize, "change"),
            count(s.unsynced_dossiers as usize, "dossier")
        )
    };
    format!("{relay}\n{waiting}\nlast sync: {last}")
}

pub fn link_state(s: &crate::sync::LinkState) -> String {
    use crate::sync::LinkState;
    match s {
        LinkState::NotEnrolled => {
            "not enrolled: run `fieldbook enroll <relay-url> <invite>`".into()
        }
        LinkState::Connecting => "connecting…".into(),
        LinkState::Connected { remaining: 0 } => "online, up to date".into(),
        LinkState::Connected { remaining } => {
            format!("online, syncing ({remaining} dossiers to go)")
        }
        LinkState::Offline { error, retry_in_ms } => format!(
            "offline{}; retrying in {} s",
            error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            retry_in_ms.div_ceil(1000)
        ),
    }
}

/// The team board as text: the figures first, then the lists.
pub fn board(d: &fieldbook_shared::board::Dashboard) -> String {
    use fieldbook_shared::FunnelBand;
    let mut s = String::new();
    let t = &d.team;
    let _ = writeln!(
        s,
        "{} clients · {} open deals · value {} · weighted {}",
        d.dossiers, t.open.count, t.open.value, t.open.weighted
    );
    let _ = writeln!(s, "\nPipeline (open deals: count / value / weighted)");
    let _ = writeln!(
        s,
        "  {:<12} {:>16} {:>16} {:>16} {:>16}",
        "rep", "all open", "top <25%", "middle", "bottom >75%"
    );
    let cell = |f: fieldbook_shared::board::Figure| format!("{} / {}", f.count, f.value);
    for p in d.pipelines.iter().chain([t]) {
        let name = if std::ptr::eq(p, t) {
            "TEAM"
        } else {
            p.rep.as_str()
        };
        let _ = writeln!(
            s,
            "  {} {:>16} {:>16} {:>16} {:>16}",
            pad(name, 12),
            cell(p.open),
            cell(p.band(FunnelBand::Top)),
            cell(p.band(FunnelBand::Middle)),
            cell(p.band(FunnelBand::Bottom)),
        );
    }
    let _ = writeln!(
        s,
        "\nWork order: close the bottom first, then new prospects, then the middle"
    );
    for w in &d.work_order {
        let _ = writeln!(
            s,
            "  {:<8} {} deals, {}",
            w.band.as_str(),
            w.deals.count,
            w.deals.value
        );
    }
    let _ = writeln!(s, "\nOverdue follow-ups by rep (oldest first)");
    for r in &d.overdue {
        let _ = writeln!(s, "  {} ({})", r.rep, r.items.total);
        for i in &r.items.rows {
            let _ = writeln!(
                s,
                "    {} {:>3} days  {} — {}",
                i.due, i.days_overdue, i.client.name, i.action
            );
        }
    }
    let _ = writeln!(
        s,
        "\nOpen complaints: {} (escalated first)",
        d.complaints.total
    );
    for c in &d.complaints.rows {
        let _ = writeln!(
            s,
            "  {}{} — {} steps of 4, {} days",
            c.client.name,
            if c.escalated { " [escalated]" } else { "" },
            c.steps_done,
            c.age_days.map_or("?".into(), |a| a.to_string())
        );
    }
    let _ = writeln!(s, "Fulfilment reviews due: {}", d.reviews.total);
    let _ = writeln!(
        s,
        "Not contacted for {} days: {}",
        d.quiet_days, d.quiet.total
    );
    let _ = writeln!(
        s,
        "\nFreshness (last sync as the relay saw it; changes waiting then)"
    );
    let synced = |ms: Option<i64>| ms.map_or_else(|| "never synced".to_string(), when);
    for f in &d.freshness {
        let _ = writeln!(
            s,
            "  {} {:<6} last sync {}, {} waiting",
            pad(&f.rep, 12),
            if f.stale { "STALE" } else { "fresh" },
            synced(f.last_sync_ms),
            count(f.waiting as usize, "change"),
        );
        // A line each: the laptop that syncs daily does not hide the phone that never does.
        for x in &f.devices {
            let _ = writeln!(
                s,
                "      {} (device {}): last sync {}, {} waiting",
                x.device,
                x.id,
                synced(x.last_sync_ms),
                count(x.waiting as usize, "change"),
            );
        }
    }
    s
}
