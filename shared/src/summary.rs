//! Projections of a dossier that lists, filters, search and dashboards read, so that none of
//! them ever has to load a document.

use serde::{Deserialize, Serialize};

use crate::board::BoardFacts;
use crate::{Assignee, Day, Dossier, FollowUpKind, FunnelBand, Stage, TargetType};

/// One row per dossier: enough to list, sort and filter without opening the document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DossierSummary {
    pub id: String,
    pub name: String,
    pub industry: String,
    pub region: String,
    pub owner: String,
    /// Colleagues it is shared with (see [`crate::CompanyProfile::shared_with`]).
    #[serde(default)]
    pub shared_with: Vec<String>,
    pub target_type: Option<TargetType>,
    /// The most advanced open deal's stage (else the most advanced deal's).
    pub lead_stage: Option<Stage>,
    pub lead_band: Option<FunnelBand>,
    pub open_deals: u32,
    pub open_value: i64,
    /// Σ value × probability over open deals.
    pub weighted_value: i64,
    /// Earliest due date among open follow-ups.
    pub next_follow_up: Option<Day>,
    pub open_follow_ups: u32,
    /// Latest interaction date.
    pub last_contact: Option<Day>,
    pub people: u32,
    pub interactions: u32,
    pub open_complaints: u32,
    pub escalated_complaints: u32,
    /// Fields holding concurrent values the user has not resolved.
    pub conflicts: u32,
    pub archived: bool,
    /// The client's number in the team's previous system, if it came from an import.
    #[serde(default)]
    pub client_number: String,
}

/// One row per deal, for pipeline filters and figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealSummary {
    pub dossier_id: String,
    pub deal_id: String,
    pub title: String,
    pub stage: Stage,
    pub probability: u8,
    pub band: FunnelBand,
    pub value: i64,
    pub expected_close: Option<Day>,
}

/// One row per follow-up, for "what do I have to do" across every dossier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUpSummary {
    pub dossier_id: String,
    pub dossier_name: String,
    pub follow_up_id: String,
    pub due: Option<Day>,
    pub kind: Option<FollowUpKind>,
    pub action: String,
    pub assignee: Option<Assignee>,
    pub assignee_name: String,
    pub done_on: Option<Day>,
}

/// Everything a store keeps beside a dossier's document so that lists, search and dashboards
/// never open it. Computed wherever the document is written (device or relay) and shipped with
/// a cold snapshot, so that a device receiving a dossier for the first time need not read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub summary: DossierSummary,
    pub deals: Vec<DealSummary>,
    pub follow_ups: Vec<FollowUpSummary>,
    /// Empty in a board row (see [`Projection::board_row`]).
    #[serde(default)]
    pub search_text: String,
    /// What the manager's board needs besides. Projections stored before the board existed
    /// lack it; their holders recompute them from the document.
    #[serde(default)]
    pub board: Option<BoardFacts>,
}

impl Projection {
    /// What the manager's board keeps of it: everything but the search text (the bulk of it)
    /// and done follow-ups.
    pub fn board_row(&self) -> Projection {
        Projection {
            summary: self.summary.clone(),
            deals: self.deals.clone(),
            follow_ups: self
                .follow_ups
                .iter()
                .filter(|f| f.done_on.is_none())
                .cloned()
                .collect(),
            search_text: String::new(),
            board: self.board.clone(),
        }
    }
}

/// The projection of dossier `id` in state `d`; `conflicts` is its count of unresolved fields.
pub fn project(id: &str, d: &Dossier, conflicts: u32) -> Projection {
    Projection {
        summary: summarize(id, d, conflicts),
        deals: deals(id, d),
        follow_ups: follow_ups(id, d),
        search_text: search_text(d),
        board: Some(crate::board::facts(d)),
    }
}

pub fn follow_ups(id: &str, d: &Dossier) -> Vec<FollowUpSummary> {
    live(&d.follow_ups, |f| f.deleted_at.is_some())
        .map(|(fid, f)| FollowUpSummary {
            dossier_id: id.to_string(),
            dossier_name: d.profile.name.clone(),
            follow_up_id: fid.clone(),
            due: f.due,
            kind: f.kind,
            action: f.action.clone(),
            assignee: f.assignee,
            assignee_name: f.assignee_name.clone(),
            done_on: f.done_on,
        })
        .collect()
}

fn live<'a, T>(
    items: &'a crate::Items<T>,
    deleted: impl Fn(&T) -> bool + 'a,
) -> impl Iterator<Item = (&'a String, &'a T)> + 'a {
    items.iter().filter(move |(_, t)| !deleted(t))
}

pub fn deals(id: &str, d: &Dossier) -> Vec<DealSummary> {
    live(&d.deals, |x| x.deleted_at.is_some())
        .map(|(deal_id, deal)| DealSummary {
            dossier_id: id.to_string(),
            deal_id: deal_id.clone(),
            title: deal.title.clone(),
            stage: deal.stage_or_default(),
            probability: deal.probability(),
            band: deal.band(),
            value: deal.value.unwrap_or(0),
            expected_close: deal.expected_close,
        })
        .collect()
}

pub fn summarize(id: &str, d: &Dossier, conflicts: u32) -> DossierSummary {
    let deals = deals(id, d);
    let open: Vec<&DealSummary> = deals.iter().filter(|x| x.stage.is_open()).collect();
    let lead = open
        .iter()
        .copied()
        .max_by_key(|x| (x.stage.position(), x.probability))
        .or_else(|| deals.iter().max_by_key(|x| x.stage.position()));
    let open_follow_ups: Vec<Day> = d
        .follow_ups
        .values()
        .filter(|f| f.is_open())
        .filter_map(|f| f.due)
        .collect();
    let complaints = || live(&d.complaints, |c| !c.is_open());
    DossierSummary {
        id: id.to_string(),
        name: d.profile.name.clone(),
        industry: d.profile.industry.clone(),
        region: d.profile.region.clone(),
        owner: d.profile.owner.clone(),
        shared_with: d.profile.shared_with.0.iter().cloned().collect(),
        client_number: d.profile.client_number.clone(),
        target_type: d.profile.target_type,
        lead_stage: lead.map(|x| x.stage),
        lead_band: lead.map(|x| x.band),
        open_deals: open.len() as u32,
        // Values are whatever a user typed: saturate rather than overflow.
        open_value: open.iter().fold(0i64, |t, x| t.saturating_add(x.value)),
        weighted_value: open.iter().fold(0i64, |t, x| {
            t.saturating_add(x.value.saturating_mul(i64::from(x.probability)) / 100)
        }),
        next_follow_up: open_follow_ups.iter().min().copied(),
        open_follow_ups: open_follow_ups.len() as u32,
        last_contact: live(&d.interactions, |i| i.deleted_at.is_some())
            .filter_map(|(_, i)| i.date)
            .max(),
        people: live(&d.people, |p| p.deleted_at.is_some()).count() as u32,
        interactions: live(&d.interactions, |i| i.deleted_at.is_some()).count() as u32,
        open_complaints: complaints().count() as u32,
        escalated_complaints: complaints()
            .filter(|(_, c)| c.escalated_on.is_some())
            .count() as u32,
        conflicts,
        archived: d.deleted_at.is_some(),
    }
}

/// All the text of a dossier a rep may search for, one piece per line. Deleted items are left
/// out: searching should find what the rep can see.
pub fn search_text(d: &Dossier) -> String {
    let mut out: Vec<&str> = Vec::new();
    let p = &d.profile;
    out.extend([
        p.name.as_str(),
        &p.industry,
        &p.region,
        &p.website,
        p.business_scope.as_str(),
        &p.sales_scale,
        p.org_structure.as_str(),
        &p.past_purchasing.price_range,
        &p.past_purchasing.product_kind,
        p.past_purchasing.service_expectations.as_str(),
        p.past_purchasing.selection_criteria.as_str(),
    ]);
    out.extend(p.past_purchasing.suppliers.iter().map(String::as_str));
    for (_, x) in live(&d.people, |x| x.deleted_at.is_some()) {
        out.extend([
            x.name.as_str(),
            &x.title,
            &x.department,
            &x.phone,
            &x.email,
            &x.im,
            x.notes.as_str(),
        ]);
    }
    for (_, x) in live(&d.interactions, |x| x.deleted_at.is_some()) {
        out.extend([
            x.notes.as_str(),
            x.learned.demand.as_str(),
            x.learned.problem.as_str(),
            x.learned.benefit_points.as_str(),
            x.learned.key_person_info.as_str(),
            &x.next_step,
        ]);
        out.extend(x.our_participants.iter().map(String::as_str));
    }
    for (_, x) in live(&d.deals, |x| x.deleted_at.is_some()) {
        out.extend([x.title.as_str(), x.notes.as_str(), &x.lost_reason]);
        out.extend(x.competitors.iter().map(String::as_str));
        for (_, c) in live(&x.checklist, |c| c.deleted_at.is_some()) {
            out.extend([c.question.as_str(), c.answer.as_str()]);
        }
    }
    for (_, x) in live(&d.follow_ups, |x| x.deleted_at.is_some()) {
        out.extend([x.action.as_str(), &x.assignee_name]);
    }
    for (_, x) in live(&d.contracts, |x| x.deleted_at.is_some()) {
        out.extend([
            x.title.as_str(),
            x.promised.as_str(),
            x.review.problems.as_str(),
            x.review.effect_in_use.as_str(),
        ]);
        for (_, m) in live(&x.milestones, |m| m.deleted_at.is_some()) {
            out.push(&m.description);
        }
    }
    for (_, x) in live(&d.complaints, |x| x.deleted_at.is_some()) {
        out.extend([x.what_happened.as_str(), x.solution.as_str()]);
    }
    let plan = &d.account_plan;
    out.extend([
        plan.goals.as_str(),
        plan.strategy.as_str(),
        &plan.executive_sponsor,
    ]);
    for (_, a) in live(&plan.actions, |a| a.deleted_at.is_some()) {
        out.extend([a.action.as_str(), &a.owner, &a.resources]);
    }
    out.push(d.loyalty_risks.notes.as_str());
    out.retain(|s| !s.trim().is_empty());
    out.join("\n")
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF     // kana
        | 0x3400..=0x4DBF   // CJK extension A
        | 0x4E00..=0x9FFF   // CJK unified ideographs
        | 0xAC00..=0xD7AF   // hangul
        | 0xF900..=0xFAFF) // compatibility ideographs
}

/// Text for the two-character index: each run of CJK characters becomes its overlapping
/// character pairs, other text is kept as is. The trigram index cannot match queries shorter
/// than three characters, and most Chinese words are two (培训, 需求), so those are looked up
/// here as whole tokens instead of scanning every dossier.
pub fn cjk_bigrams(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut prev: Option<char> = None;
    for c in text.chars() {
        if is_cjk(c) {
            if let Some(p) = prev {
                out.push(' ');
                out.push(p);
                out.push(c);
            }
            prev = Some(c);
        } else {
            if prev.take().is_some() {
                out.push(' ');
            }
            out.push(c);
        }
    }
    out
}

impl DossierSummary {
    /// Who may read the dossier where the team lets reps see only their own dossiers (managers
    /// aside): its owner and the colleagues it is shared with, by user name, sorted, each
    /// once. Empty: no rep (an unassigned dossier).
    pub fn readers(&self) -> Vec<String> {
        let mut readers: Vec<String> = std::iter::once(&self.owner)
            .chain(&self.shared_with)
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        readers.sort();
        readers.dedup();
        readers
    }
}

#[cfg(test)]
mod tests {
    use super::cjk_bigrams;

    #[test]
    fn bigrams_cover_every_adjacent_pair_of_cjk_characters() {
        let words = |s: &str| {
            cjk_bigrams(s)
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            words("培训课程 for HR"),
            ["培训", "训课", "课程", "for", "HR"]
        );
        assert_eq!(words("需求:培训"), ["需求", ":", "培训"]);
    }
}
