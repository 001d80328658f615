//! Rules a local edit must satisfy before it is written.
//!
//! Only what the edit changed is checked: a merged document may hold a state no single edit
//! would be allowed to make (two devices each moving a deal on by one stage), and that must
//! never stop the rep from editing anything else.

use std::collections::BTreeMap;

use crate::{DecisionRole, Dossier, Stage};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct Invalid {
    pub path: String,
    pub reason: String,
}

fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Items of `new` that are new or differ from `old`.
fn changed<'a, T: PartialEq>(
    old: Option<&'a BTreeMap<String, T>>,
    new: &'a BTreeMap<String, T>,
) -> impl Iterator<Item = (&'a String, &'a T, Option<&'a T>)> {
    new.iter().filter_map(move |(id, item)| {
        let before = old.and_then(|o| o.get(id));
        (before != Some(item)).then_some((id, item, before))
    })
}

fn check_percent(path: String, v: Option<u8>, max: u8) -> Result<(), Invalid> {
    match v {
        Some(x) if x > max => Err(invalid(path, format!("must be between 0 and {max}"))),
        _ => Ok(()),
    }
}

fn check_time(path: String, t: &str) -> Result<(), Invalid> {
    if t.is_empty() || chrono::NaiveTime::parse_from_str(t, "%H:%M").is_ok() {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("`{t}` is not a time of day; write HH:MM"),
        ))
    }
}

/// Check an edit that turns `old` (None for a new dossier) into `new`.
pub fn check_edit(old: Option<&Dossier>, new: &Dossier) -> Result<(), Invalid> {
    if new.profile.name.trim().is_empty() {
        return Err(invalid("profile.name", "a client needs a name"));
    }
    for (id, p, _) in changed(old.map(|o| &o.people), &new.people) {
        let at = |f: &str| format!("people.{id}.{f}");
        if p.name.trim().is_empty() {
            return Err(invalid(at("name"), "a person needs a name"));
        }
        for role in p.roles.iter() {
            role.parse::<DecisionRole>()
                .map_err(|e| invalid(at("roles"), e.to_string()))?;
        }
        if let Some(r) = p.relationship
            && !(1..=5).contains(&r)
        {
            return Err(invalid(at("relationship"), "rate 1 (weak) to 5 (strong)"));
        }
        if let Some(boss) = &p.reports_to {
            if boss == id {
                return Err(invalid(
                    at("reports_to"),
                    "a person cannot report to themself",
                ));
            }
            if !new.people.contains_key(boss) {
                return Err(invalid(at("reports_to"), format!("no person `{boss}`")));
            }
        }
    }
    for (id, i, _) in changed(old.map(|o| &o.interactions), &new.interactions) {
        let at = |f: &str| format!("interactions.{id}.{f}");
        if i.date.is_none() {
            return Err(invalid(at("date"), "when did it happen?"));
        }
        check_time(at("time"), &i.time)?;
        for p in i.client_participants.iter() {
            if !new.people.contains_key(p) {
                return Err(invalid(
                    at("client_participants"),
                    format!("no person `{p}`"),
                ));
            }
        }
        for (f, w) in [
            ("learned.weight_quality", i.learned.weight_quality),
            ("learned.weight_price", i.learned.weight_price),
            ("learned.weight_service", i.learned.weight_service),
        ] {
            check_percent(at(f), w, 10)?;
        }
        if !i.next_step.trim().is_empty() && i.next_step_due.is_none() {
            return Err(invalid(at("next_step_due"), "a next step needs a date"));
        }
    }
    for (id, d, before) in changed(old.map(|o| &o.deals), &new.deals) {
        let at = |f: &str| format!("deals.{id}.{f}");
        if d.title.trim().is_empty() {
            return Err(invalid(at("title"), "a deal needs a title"));
        }
        check_percent(at("win_probability"), d.win_probability, 100)?;
        check_stage_step(before.map(|b| b.stage_or_default()), d.stage_or_default())
            .map_err(|r| invalid(at("stage"), r))?;
        for (cid, c, _) in changed(before.map(|b| &b.checklist), &d.checklist) {
            if c.question.trim().is_empty() {
                return Err(invalid(
                    format!("deals.{id}.checklist.{cid}.question"),
                    "what information is needed?",
                ));
            }
        }
    }
    for (id, f, _) in changed(old.map(|o| &o.follow_ups), &new.follow_ups) {
        if f.due.is_none() {
            return Err(invalid(
                format!("follow_ups.{id}.due"),
                "a follow-up needs a due date",
            ));
        }
    }
    for (id, c, _) in changed(old.map(|o| &o.complaints), &new.complaints) {
        let at = |f: &str| format!("complaints.{id}.{f}");
        if c.opened_on.is_none() {
            return Err(invalid(at("opened_on"), "when was it opened?"));
        }
        // The four steps happen in order: a step cannot be done before the one it follows.
        let steps = [
            ("emotion_acknowledged_on", c.emotion_acknowledged_on),
            ("facts_clarified_on", c.facts_clarified_on),
            ("solution_agreed_on", c.solution_agreed_on),
            ("execution_tracked_on", c.execution_tracked_on),
        ];
        for pair in steps.windows(2) {
            if pair[1].1.is_some() && pair[0].1.is_none() {
                return Err(invalid(at(pair[1].0), format!("do `{}` first", pair[0].0)));
            }
        }
    }
    Ok(())
}

/// The five stages are sequential and none can be skipped; a deal may go back, or be lost from
/// any stage, and a lost deal may be reopened at any stage.
pub fn check_stage_step(before: Option<Stage>, after: Stage) -> Result<(), String> {
    let Some(before) = before else {
        return Ok(());
    };
    match (before.position(), after.position()) {
        (Some(b), Some(a)) if a > b + 1 => Err(format!(
            "stages cannot be skipped: from {} the next stage is {}",
            before.as_str(),
            Stage::SEQUENCE[b + 1].as_str()
        )),
        _ => Ok(()),
    }
}
