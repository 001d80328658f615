//! The manager's team board: a few facts per dossier, kept beside its summary wherever the
//! dossier is written ([`BoardFacts`]), gathered into a [`TeamBoard`] that follows changes
//! as they arrive, and a [`Dashboard`] computed from it without opening any document.

mod comment;
mod dashboard;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::api::{DossierPage, ListQuery};
use crate::summary::Projection;
use crate::{
    BrandProminence, Day, Dossier, FiveATier, InteractionKind, PriceValueClass, SalesProfitClass,
    Severity,
};

pub use comment::{ManagerNote, NoteIds, add_note};
pub use dashboard::*;

/// What the board needs of a dossier beyond its summary, deals and follow-ups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoardFacts {
    /// Every live interaction that has a date, oldest first.
    pub contacts: Vec<Contact>,
    /// Open complaints.
    pub complaints: Vec<ComplaintFact>,
    /// Signed contracts whose fulfilment has not been reviewed yet.
    pub reviews_due: Vec<ReviewFact>,
    pub brand: Option<BrandProminence>,
    pub sales_profit: Option<SalesProfitClass>,
    pub price_value: Option<PriceValueClass>,
    pub five_a: Option<FiveATier>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub on: Day,
    pub kind: Option<InteractionKind>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintFact {
    pub id: String,
    pub opened_on: Option<Day>,
    pub severity: Option<Severity>,
    pub escalated_on: Option<Day>,
    /// How many of the four handling steps are done (0–4).
    pub steps_done: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewFact {
    pub contract_id: String,
    pub title: String,
    pub signed_on: Day,
}

pub fn facts(d: &Dossier) -> BoardFacts {
    let mut contacts: Vec<Contact> = d
        .interactions
        .values()
        .filter(|i| i.deleted_at.is_none())
        .filter_map(|i| i.date.map(|on| Contact { on, kind: i.kind }))
        .collect();
    contacts.sort_by_key(|c| c.on);
    let c = &d.classification;
    let classified = c.a_revenue
        || c.a_profit
        || c.a_fulfilment_integrity
        || c.a_revenue_per_head
        || c.a_difficulty;
    BoardFacts {
        contacts,
        complaints: d
            .complaints
            .iter()
            .filter(|(_, x)| x.is_open())
            .map(|(id, x)| ComplaintFact {
                id: id.clone(),
                opened_on: x.opened_on,
                severity: x.severity,
                escalated_on: x.escalated_on,
                steps_done: x.steps_done() as u8,
            })
            .collect(),
        reviews_due: d
            .contracts
            .iter()
            .filter(|(_, x)| x.deleted_at.is_none() && x.review.reviewed_on.is_none())
            .filter_map(|(id, x)| {
                x.signed_on.map(|signed_on| ReviewFact {
                    contract_id: id.clone(),
                    title: x.title.clone(),
                    signed_on,
                })
            })
            .collect(),
        brand: d.profile.brand,
        sales_profit: c.sales_profit,
        price_value: c.price_value,
        // A dossier nobody has rated on any A is unclassified, not "Other".
        five_a: classified.then(|| c.five_a()),
    }
}

/// A dossier as the board keeps it: its projection without the search text.
pub type BoardRow = Projection;

/// The board of one team (or one device's replica of it): a row per dossier, brought up to
/// date by applying the rows written since `seq`, so a dashboard costs one pass over compact
/// rows in memory and never a document load.
#[derive(Debug, Default)]
pub struct TeamBoard {
    /// The store's change sequence the rows are current to.
    pub seq: u64,
    rows: HashMap<String, Kept>,
}

/// A row and its name as lists sort it (lower-cased once, not on every page).
#[derive(Debug)]
struct Kept {
    row: BoardRow,
    name_key: String,
    hot: dashboard::Hot,
}

impl TeamBoard {
    /// Take the rows written after `self.seq`, up to `seq`.
    pub fn apply(&mut self, seq: u64, rows: impl IntoIterator<Item = BoardRow>) {
        for mut row in rows {
            row.search_text = String::new();
            // Done follow-ups never count again: keep the open ones only.
            row.follow_ups.retain(|f| f.done_on.is_none());
            let name_key = row.summary.name.to_lowercase();
            let hot = dashboard::Hot::of(&row);
            self.rows
                .insert(row.summary.id.clone(), Kept { row, name_key, hot });
        }
        self.seq = self.seq.max(seq);
    }

    /// Drop dossier `id`'s row (the dossier is no longer held); nothing if it has none.
    pub fn remove(&mut self, id: &str) {
        self.rows.remove(id);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rows(&self) -> impl Iterator<Item = &BoardRow> {
        self.rows.values().map(|k| &k.row)
    }

    /// One page of dossiers as a device's list shows them (what needs doing first on top),
    /// from the board alone. Text matches name, industry, region and owner: the full text of
    /// a dossier is searched on devices, which index it.
    pub fn page(&self, q: &ListQuery) -> DossierPage {
        let text = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let text = text.map(str::to_lowercase);
        let mut hits: Vec<&Kept> = self
            .rows
            .values()
            .filter(|k| matches(&k.row, q, text.as_deref()))
            .collect();
        let total = hits.len() as u64;
        fn key(k: &Kept) -> (bool, bool, Option<Day>, &str, &str) {
            let s = &k.row.summary;
            (
                s.archived,
                s.next_follow_up.is_none(),
                s.next_follow_up,
                k.name_key.as_str(),
                s.id.as_str(),
            )
        }
        let order = |a: &&Kept, b: &&Kept| key(a).cmp(&key(b));
        // Only the page's rows need their order: select them, then sort just those.
        let end = (q.offset as usize).saturating_add(q.limit.unwrap_or(50) as usize);
        if end < hits.len() {
            hits.select_nth_unstable_by(end, order);
            hits.truncate(end);
        }
        hits.sort_unstable_by(order);
        DossierPage {
            rows: hits
                .into_iter()
                .skip(q.offset as usize)
                .map(|k| k.row.summary.clone())
                .collect(),
            total,
        }
    }

    pub fn dashboard(&self, input: &BoardInput, freshness: Vec<DeviceFreshness>) -> Dashboard {
        dashboard::compute(
            self.rows.values().map(|k| (&k.row, &k.hot)),
            input,
            freshness,
        )
    }
}

fn matches(r: &BoardRow, q: &ListQuery, text: Option<&str>) -> bool {
    let s = &r.summary;
    (q.include_archived || !s.archived)
        && q.owner.as_ref().is_none_or(|o| *o == s.owner)
        && q.stage
            .is_none_or(|st| r.deals.iter().any(|d| d.stage == st))
        && q.band
            .is_none_or(|b| r.deals.iter().any(|d| d.stage.is_open() && d.band == b))
        && q.overdue_on.is_none_or(|day| {
            r.follow_ups
                .iter()
                .any(|f| f.done_on.is_none() && f.due.is_some_and(|d| d < day))
        })
        && q.not_contacted_since
            .is_none_or(|day| s.last_contact.is_none_or(|c| c < day))
        && text.is_none_or(|t| {
            [&s.name, &s.industry, &s.region, &s.owner]
                .iter()
                .any(|f| f.to_lowercase().contains(t))
        })
}

#[cfg(test)]
mod tests;
