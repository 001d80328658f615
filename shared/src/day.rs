//! Calendar dates as the rep thinks of them: a day, no time zone.
//!
//! Stored in the document as an ISO `YYYY-MM-DD` string so that a dossier stays readable by any
//! Automerge tool and sorts lexically in the summary table.

use std::fmt;
use std::str::FromStr;

use automerge::ObjId;
use autosurgeon::{Hydrate, HydrateError, Prop, ReadDoc, Reconcile, Reconciler};
use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(NaiveDate);

#[derive(Debug, thiserror::Error)]
#[error("`{input}` is not a date: write it as YYYY-MM-DD, e.g. 2026-11-23")]
pub struct BadDay {
    pub input: String,
}

impl Day {
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Day> {
        NaiveDate::from_ymd_opt(y, m, d).map(Day)
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// `days` later (earlier when negative), saturating at the calendar's ends.
    pub fn plus_days(self, days: i64) -> Day {
        let shifted = chrono::Duration::try_days(days).and_then(|d| self.0.checked_add_signed(d));
        Day(shifted.unwrap_or(if days < 0 {
            NaiveDate::MIN
        } else {
            NaiveDate::MAX
        }))
    }
}

impl From<NaiveDate> for Day {
    fn from(d: NaiveDate) -> Self {
        Day(d)
    }
}

impl FromStr for Day {
    type Err = BadDay;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(Day)
            .map_err(|_| BadDay {
                input: s.to_string(),
            })
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Reconcile for Day {
    type Key<'a> = autosurgeon::reconcile::NoKey;
    fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.to_string())
    }
}

impl Hydrate for Day {
    fn hydrate_string(s: &'_ str) -> Result<Self, HydrateError> {
        s.parse()
            .map_err(|e: BadDay| HydrateError::unexpected("a YYYY-MM-DD date", e.input))
    }

    fn hydrate<D: ReadDoc>(doc: &D, obj: &ObjId, prop: Prop<'_>) -> Result<Self, HydrateError> {
        let s = String::hydrate(doc, obj, prop)?;
        Self::hydrate_string(&s)
    }
}
