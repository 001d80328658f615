//! The dashboard a manager reads, computed in one pass over the board's rows.

use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

use super::{BoardFacts, BoardRow, Contact};
use crate::sync::wire::Role;
use crate::{
    BrandProminence, Day, FiveATier, FunnelBand, InteractionKind, PriceValueClass,
    SalesProfitClass, Severity, Stage, TargetType,
};

/// What the dashboard is computed for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoardInput {
    pub today: Day,
    /// "Not contacted for N days".
    pub quiet_days: u32,
    /// How many weeks of activity, ending with the current one.
    pub weeks: u32,
    /// Now, for freshness (milliseconds since the Unix epoch).
    pub now_ms: i64,
    /// A rep whose last sync is older than this is stale.
    pub stale_after_ms: i64,
    /// Longest list of clients, deals or items shown per list (counts are always whole).
    pub list_limit: usize,
}

impl BoardInput {
    /// What a dashboard request asks for: clients quiet for `quiet_days` (the default when
    /// None, otherwise kept between a day and ten years), everything else as by default.
    pub fn asked(today: Day, now_ms: i64, quiet_days: Option<u32>) -> BoardInput {
        let default = BoardInput::default();
        BoardInput {
            today,
            now_ms,
            quiet_days: quiet_days.map_or(default.quiet_days, |n| n.clamp(1, 3650)),
            ..default
        }
    }
}

impl Default for BoardInput {
    fn default() -> Self {
        BoardInput {
            today: Day::from_ymd(2026, 1, 1).expect("a valid date"),
            quiet_days: 30,
            weeks: 8,
            now_ms: 0,
            stale_after_ms: 24 * 3_600_000,
            list_limit: 20,
        }
    }
}

/// Count, value and weighted value (Σ value × probability) of some deals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figure {
    pub count: u64,
    pub value: i64,
    pub weighted: i64,
}

impl Figure {
    fn merge(&mut self, other: Figure) {
        self.count += other.count;
        self.value = self.value.saturating_add(other.value);
        self.weighted = self.weighted.saturating_add(other.weighted);
    }

    fn add(&mut self, value: i64, probability: u8) {
        self.count += 1;
        self.value = self.value.saturating_add(value);
        self.weighted = self
            .weighted
            .saturating_add(value.saturating_mul(i64::from(probability)) / 100);
    }
}

/// The pipeline of one rep, or of the team.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Empty for the team.
    pub rep: String,
    /// Every live deal by stage, in [`Stage::ALL`] order.
    pub by_stage: Vec<Figure>,
    /// Open deals by funnel band, in [`FunnelBand::ALL`] order.
    pub by_band: Vec<Figure>,
    pub open: Figure,
}

impl Pipeline {
    fn new(rep: &str) -> Pipeline {
        Pipeline {
            rep: rep.to_string(),
            by_stage: vec![Figure::default(); Stage::ALL.len()],
            by_band: vec![Figure::default(); FunnelBand::ALL.len()],
            open: Figure::default(),
        }
    }

    pub fn band(&self, band: FunnelBand) -> Figure {
        self.by_band[band_index(band)]
    }

    pub fn stage(&self, stage: Stage) -> Figure {
        self.by_stage[stage_index(stage)]
    }
}

fn band_index(band: FunnelBand) -> usize {
    FunnelBand::ALL.iter().position(|b| *b == band).unwrap_or(0)
}

fn stage_index(stage: Stage) -> usize {
    Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0)
}

/// One step of the work order the method recommends: close the bottom of the funnel first,
/// then keep time for new prospects (the top), then follow the middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkStep {
    pub band: FunnelBand,
    pub deals: Figure,
}

pub const WORK_ORDER: [FunnelBand; 3] = [FunnelBand::Bottom, FunnelBand::Top, FunnelBand::Middle];

/// A client, for lists and matrix cells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRef {
    pub id: String,
    pub name: String,
    pub rep: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealRef {
    pub client: ClientRef,
    pub deal_id: String,
    pub title: String,
    pub stage: Stage,
    pub value: i64,
    pub probability: u8,
    pub expected_close: Option<Day>,
}

/// A list cut to the first `list_limit` rows, and how many there are in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listed<T> {
    pub total: u64,
    pub rows: Vec<T>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed {
            total: 0,
            rows: Vec::new(),
        }
    }
}

/// Interactions per week by kind: `counts[week][kind]`, kinds in [`InteractionKind::ALL`]
/// order and one more for interactions without a kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub rep: String,
    pub counts: Vec<Vec<u32>>,
    pub total: u32,
}

impl Activity {
    fn new(rep: &str, weeks: usize) -> Activity {
        Activity {
            rep: rep.to_string(),
            counts: vec![vec![0; InteractionKind::ALL.len() + 1]; weeks],
            total: 0,
        }
    }

    pub fn week_total(&self, week: usize) -> u32 {
        self.counts.get(week).map_or(0, |k| k.iter().sum())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuietClient {
    pub client: ClientRef,
    /// None: never contacted.
    pub last_contact: Option<Day>,
}

/// A small first-time prospect contacted more than once in the last 30 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrequentProspect {
    pub client: ClientRef,
    pub contacts_last_30_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverdueItem {
    pub client: ClientRef,
    pub follow_up_id: String,
    pub action: String,
    pub due: Day,
    pub days_overdue: i64,
}

/// One rep's overdue follow-ups, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepOverdue {
    pub rep: String,
    pub items: Listed<OverdueItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintRow {
    pub client: ClientRef,
    pub complaint_id: String,
    pub opened_on: Option<Day>,
    pub age_days: Option<i64>,
    pub severity: Option<Severity>,
    pub escalated: bool,
    pub steps_done: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewRow {
    pub client: ClientRef,
    pub contract_id: String,
    pub title: String,
    pub signed_on: Day,
    pub days_since: i64,
}

/// One cell of a classification: the clients in it (`None`: not classified yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell<K> {
    pub class: Option<K>,
    pub clients: Listed<ClientRef>,
}

/// A device's last report to the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceFreshness {
    /// The relay's id of the device: what a manager revokes (the web view, or
    /// `fieldbook-relay revoke ID`). Absent (0) from a relay older than this field.
    #[serde(default)]
    pub id: i64,
    pub user: String,
    pub device: String,
    pub role: Role,
    /// When the relay last heard from the device after it had completed a sync, by the
    /// relay's clock (a device's own clock may be off).
    pub last_sync_ms: Option<i64>,
    /// Changes still waiting on the device when it last reported.
    pub waiting: u64,
    pub reported_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepFreshness {
    pub rep: String,
    /// The latest sync of any of the rep's devices.
    pub last_sync_ms: Option<i64>,
    pub waiting: u64,
    /// Never synced, not for a while, or with changes still waiting: the figures of this rep
    /// may be behind what the rep knows.
    pub stale: bool,
    pub devices: Vec<DeviceFreshness>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub today: Day,
    pub dossiers: u64,
    /// Every rep with a dossier or a device, sorted.
    pub reps: Vec<String>,
    pub team: Pipeline,
    pub pipelines: Vec<Pipeline>,
    pub work_order: Vec<WorkStep>,
    /// Open bottom-band deals, largest first: what to close first.
    pub close_first: Listed<DealRef>,
    /// The Mondays of the weeks in `activity`, oldest first.
    pub weeks: Vec<Day>,
    pub team_activity: Activity,
    pub activity: Vec<Activity>,
    pub quiet_days: u32,
    /// Clients not contacted for `quiet_days` days, longest first.
    pub quiet: Listed<QuietClient>,
    pub quiet_by_rep: Vec<(String, u64)>,
    pub frequent_prospects: Listed<FrequentProspect>,
    pub overdue: Vec<RepOverdue>,
    /// Open complaints, escalated first, then oldest first.
    pub complaints: Listed<ComplaintRow>,
    /// Fulfilment reviews due (signed, not reviewed), oldest first.
    pub reviews: Listed<ReviewRow>,
    pub sales_profit: Vec<Cell<SalesProfitClass>>,
    pub price_value: Vec<Cell<PriceValueClass>>,
    pub five_a: Vec<Cell<FiveATier>>,
    pub freshness: Vec<RepFreshness>,
    /// When the device reports behind `freshness` were current (None: now, on the relay).
    pub freshness_as_of_ms: Option<i64>,
    /// What the team's reps see, where the board knows it (on the relay; a device does not).
    #[serde(default)]
    pub visibility: Option<crate::sync::wire::Visibility>,
}

static NO_FACTS: BoardFacts = BoardFacts {
    contacts: Vec::new(),
    complaints: Vec::new(),
    reviews_due: Vec::new(),
    brand: None,
    sales_profit: None,
    price_value: None,
    five_a: None,
};

fn monday_of(day: Day) -> Day {
    use chrono::Datelike;
    day.plus_days(-i64::from(day.date().weekday().num_days_from_monday()))
}

fn days_between(from: Day, to: Day) -> i64 {
    (to.date() - from.date()).num_days()
}

/// The `limit` rows with the smallest keys, and how many were offered. Keys borrow from the
/// board's rows, and a row is made only once it is kept, so offering costs no allocation: a
/// board of 100,000 dossiers offers most of them to several lists on every view.
struct TopK<K, T> {
    limit: usize,
    total: u64,
    heap: BinaryHeap<Keyed<K, T>>,
}

struct Keyed<K, T>(K, T);

impl<K: Ord, T> PartialEq for Keyed<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<K: Ord, T> Eq for Keyed<K, T> {}
impl<K: Ord, T> PartialOrd for Keyed<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord, T> Ord for Keyed<K, T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl<K: Ord, T> TopK<K, T> {
    fn new(limit: usize) -> Self {
        TopK {
            limit,
            total: 0,
            heap: BinaryHeap::with_capacity(limit + 1),
        }
    }

    fn offer(&mut self, key: K, make: impl FnOnce() -> T) {
        self.total += 1;
        if self.heap.len() < self.limit {
            self.heap.push(Keyed(key, make()));
        } else if self.heap.peek().is_some_and(|worst| key < worst.0) {
            self.heap.pop();
            self.heap.push(Keyed(key, make()));
        }
    }

    fn listed(self) -> Listed<T> {
        Listed {
            total: self.total,
            rows: self
                .heap
                .into_sorted_vec()
                .into_iter()
                .map(|k| k.1)
                .collect(),
        }
    }
}

/// A name's order, cheaply: its first eight bytes as a number decide nearly every comparison,
/// the whole name only a tie.
type NameKey<'a> = (u64, &'a str);

fn name_head(name: &str) -> u64 {
    let mut head = [0u8; 8];
    let n = name.len().min(8);
    head[..n].copy_from_slice(&name.as_bytes()[..n]);
    u64::from_be_bytes(head)
}

const STAGES: usize = Stage::ALL.len();
const BANDS: usize = FunnelBand::ALL.len();
/// Contacts kept inline per row: enough for the weeks a view counts, for nearly every client.
const RECENT: usize = 6;

/// What every view reads of a row, worked out once when the row arrives and kept inline. A
/// view over 100,000 rows costs memory latency, not arithmetic: following each row's lists
/// (deals, follow-ups, contacts, its name) is what it would spend its time on.
#[derive(Debug, Clone)]
pub(super) struct Hot {
    name_head: u64,
    by_stage: [Figure; STAGES],
    by_band: [Figure; BANDS],
    open: Figure,
    /// Has an open deal in the bottom band (a candidate to close first).
    has_bottom: bool,
    /// The earliest due date among open follow-ups.
    first_due: Option<Day>,
    /// The newest contacts, newest first.
    recent: [Option<Contact>; RECENT],
    contacts: usize,
}

impl Hot {
    pub(super) fn of(row: &BoardRow) -> Hot {
        let mut hot = Hot {
            name_head: name_head(&row.summary.name),
            by_stage: [Figure::default(); STAGES],
            by_band: [Figure::default(); BANDS],
            open: Figure::default(),
            has_bottom: false,
            first_due: row
                .follow_ups
                .iter()
                .filter(|f| f.done_on.is_none())
                .filter_map(|f| f.due)
                .min(),
            recent: [None; RECENT],
            contacts: 0,
        };
        for deal in &row.deals {
            hot.by_stage[stage_index(deal.stage)].add(deal.value, deal.probability);
            if deal.stage.is_open() {
                hot.by_band[band_index(deal.band)].add(deal.value, deal.probability);
                hot.open.add(deal.value, deal.probability);
                hot.has_bottom |= deal.band == FunnelBand::Bottom;
            }
        }
        if let Some(facts) = &row.board {
            hot.contacts = facts.contacts.len();
            for (slot, c) in hot.recent.iter_mut().zip(facts.contacts.iter().rev()) {
                *slot = Some(*c);
            }
        }
        hot
    }
}

/// One classification's cells, indexed by the class's place in `ALL` (the last: unclassified).
struct Cells<'a, K: 'static> {
    all: &'static [K],
    /// By name, then id: equal names must not order by chance (two replicas agree).
    cells: Vec<TopK<(NameKey<'a>, &'a str), ClientRef>>,
}

impl<'a, K: Copy + PartialEq + 'static> Cells<'a, K> {
    fn new(all: &'static [K], limit: usize) -> Self {
        Cells {
            all,
            cells: (0..=all.len()).map(|_| TopK::new(limit)).collect(),
        }
    }

    fn offer(
        &mut self,
        class: Option<K>,
        key: (NameKey<'a>, &'a str),
        client: impl FnOnce() -> ClientRef,
    ) {
        let i = class
            .and_then(|k| self.all.iter().position(|x| *x == k))
            .unwrap_or(self.all.len());
        self.cells[i].offer(key, client);
    }

    fn listed(self) -> Vec<Cell<K>> {
        let classes = self.all.iter().map(|k| Some(*k)).chain([None]);
        classes
            .zip(self.cells)
            .map(|(class, top)| Cell {
                class,
                clients: top.listed(),
            })
            .collect()
    }
}

/// What the board gathers per rep (one lookup per dossier).
struct RepTotals {
    pipeline: Pipeline,
    activity: Activity,
    quiet: u64,
}

pub(super) fn compute<'a>(
    rows: impl Iterator<Item = (&'a BoardRow, &'a Hot)>,
    input: &BoardInput,
    devices: Vec<DeviceFreshness>,
) -> Dashboard {
    let today = input.today;
    let this_week = monday_of(today);
    let weeks_n = input.weeks.max(1) as usize;
    let weeks: Vec<Day> = (0..weeks_n)
        .rev()
        .map(|w| this_week.plus_days(-7 * w as i64))
        .collect();
    let first_week = weeks[0];
    let quiet_since = today.plus_days(-i64::from(input.quiet_days));
    let month_ago = today.plus_days(-30);
    let limit = input.list_limit;

    let mut team = Pipeline::new("");
    let mut reps: HashMap<&str, RepTotals> = HashMap::new();
    let mut team_activity = Activity::new("", weeks_n);
    let mut close_first = TopK::new(limit);
    let mut quiet = TopK::new(limit);
    let mut frequent = TopK::new(limit);
    let mut overdue: BTreeMap<&str, TopK<(Day, NameKey, &str), OverdueItem>> = BTreeMap::new();
    let mut complaints = TopK::new(limit);
    let mut reviews = TopK::new(limit);
    let mut sales_profit = Cells::new(SalesProfitClass::ALL, limit);
    let mut price_value = Cells::new(PriceValueClass::ALL, limit);
    let mut five_a = Cells::new(FiveATier::ALL, limit);
    let mut dossiers = 0u64;

    for (row, hot) in rows {
        let s = &row.summary;
        if s.archived {
            continue;
        }
        dossiers += 1;
        let rep = s.owner.as_str();
        let name: NameKey = (hot.name_head, s.name.as_str());
        let client = || ClientRef {
            id: s.id.clone(),
            name: s.name.clone(),
            rep: s.owner.clone(),
        };
        let totals = reps.entry(rep).or_insert_with(|| RepTotals {
            pipeline: Pipeline::new(rep),
            activity: Activity::new(rep, weeks_n),
            quiet: 0,
        });
        for p in [&mut team, &mut totals.pipeline] {
            for (sum, f) in p.by_stage.iter_mut().zip(&hot.by_stage) {
                sum.merge(*f);
            }
            for (sum, f) in p.by_band.iter_mut().zip(&hot.by_band) {
                sum.merge(*f);
            }
            p.open.merge(hot.open);
        }
        if hot.has_bottom {
            for deal in &row.deals {
                if deal.stage.is_open() && deal.band == FunnelBand::Bottom {
                    close_first.offer(
                        (std::cmp::Reverse(deal.value), name, deal.deal_id.as_str()),
                        || DealRef {
                            client: client(),
                            deal_id: deal.deal_id.clone(),
                            title: deal.title.clone(),
                            stage: deal.stage,
                            value: deal.value,
                            probability: deal.probability,
                            expected_close: deal.expected_close,
                        },
                    );
                }
            }
        }

        let facts = row.board.as_ref().unwrap_or(&NO_FACTS);
        let acts = &mut totals.activity;
        let mut last_month = 0u32;
        let oldest_counted = first_week.min(month_ago);
        // The inline contacts, unless the view reaches further back than they do.
        let inline_enough =
            hot.contacts <= RECENT || hot.recent[RECENT - 1].is_some_and(|c| c.on < oldest_counted);
        let recent = hot.recent.iter().flatten();
        let contacts: &mut dyn Iterator<Item = &Contact> = if inline_enough {
            &mut { recent }
        } else {
            &mut facts.contacts.iter().rev()
        };
        for c in contacts {
            if c.on > today {
                continue;
            }
            if c.on < first_week && c.on < month_ago {
                break;
            }
            if c.on >= month_ago {
                last_month += 1;
            }
            if c.on >= first_week {
                let week = (days_between(first_week, c.on) / 7) as usize;
                let kind = c
                    .kind
                    .and_then(|k| InteractionKind::ALL.iter().position(|x| *x == k))
                    .unwrap_or(InteractionKind::ALL.len());
                for a in [&mut team_activity, &mut *acts] {
                    a.counts[week][kind] += 1;
                    a.total += 1;
                }
            }
        }
        if s.last_contact.is_none_or(|d| d < quiet_since) {
            totals.quiet += 1;
            quiet.offer((s.last_contact, name, s.id.as_str()), || QuietClient {
                client: client(),
                last_contact: s.last_contact,
            });
        }
        // The method: small, little-known first-time prospects at most once a month.
        if s.target_type == Some(TargetType::FirstTimeBuyer)
            && facts.brand != Some(BrandProminence::Large)
            && last_month > 1
        {
            frequent.offer((std::cmp::Reverse(last_month), name, s.id.as_str()), || {
                FrequentProspect {
                    client: client(),
                    contacts_last_30_days: last_month,
                }
            });
        }

        let any_overdue = hot.first_due.is_some_and(|d| d < today);
        for f in row.follow_ups.iter().filter(|_| any_overdue) {
            let Some(due) = f.due.filter(|d| *d < today) else {
                continue;
            };
            if f.done_on.is_some() {
                continue;
            }
            // Whoever it is assigned to by name owns it; else the dossier's rep.
            let who = match f.assignee_name.trim() {
                "" => rep,
                named => named,
            };
            overdue
                .entry(who)
                .or_insert_with(|| TopK::new(limit))
                .offer((due, name, f.follow_up_id.as_str()), || OverdueItem {
                    client: client(),
                    follow_up_id: f.follow_up_id.clone(),
                    action: f.action.clone(),
                    due,
                    days_overdue: days_between(due, today),
                });
        }
        for c in &facts.complaints {
            let escalated = c.escalated_on.is_some();
            // Escalated first, then the oldest (undated last).
            complaints.offer(
                (
                    !escalated,
                    c.opened_on.is_none(),
                    c.opened_on,
                    c.id.as_str(),
                ),
                || ComplaintRow {
                    client: client(),
                    complaint_id: c.id.clone(),
                    opened_on: c.opened_on,
                    age_days: c.opened_on.map(|d| days_between(d, today)),
                    severity: c.severity,
                    escalated,
                    steps_done: c.steps_done,
                },
            );
        }
        for r in facts.reviews_due.iter().filter(|r| r.signed_on <= today) {
            reviews.offer((r.signed_on, name, r.contract_id.as_str()), || ReviewRow {
                client: client(),
                contract_id: r.contract_id.clone(),
                title: r.title.clone(),
                signed_on: r.signed_on,
                days_since: days_between(r.signed_on, today),
            });
        }
        let key = (name, s.id.as_str());
        sales_profit.offer(facts.sales_profit, key, client);
        price_value.offer(facts.price_value, key, client);
        five_a.offer(facts.five_a, key, client);
    }

    let mut pipelines: BTreeMap<String, Pipeline> = BTreeMap::new();
    let mut activity: BTreeMap<String, Activity> = BTreeMap::new();
    let mut quiet_by_rep: Vec<(String, u64)> = Vec::new();
    for (rep, totals) in reps {
        pipelines.insert(rep.to_string(), totals.pipeline);
        activity.insert(rep.to_string(), totals.activity);
        if totals.quiet > 0 {
            quiet_by_rep.push((rep.to_string(), totals.quiet));
        }
    }
    quiet_by_rep.sort();
    let freshness = freshness(&pipelines, devices, input);
    let mut reps: Vec<String> = pipelines.keys().cloned().collect();
    for f in &freshness {
        if !reps.contains(&f.rep) {
            reps.push(f.rep.clone());
        }
    }
    reps.sort();
    Dashboard {
        today,
        dossiers,
        reps,
        work_order: WORK_ORDER
            .iter()
            .map(|b| WorkStep {
                band: *b,
                deals: team.band(*b),
            })
            .collect(),
        team,
        pipelines: pipelines.into_values().collect(),
        close_first: close_first.listed(),
        weeks,
        team_activity,
        activity: activity.into_values().collect(),
        quiet_days: input.quiet_days,
        quiet: quiet.listed(),
        quiet_by_rep,
        frequent_prospects: frequent.listed(),
        overdue: overdue
            .into_iter()
            .map(|(rep, items)| RepOverdue {
                rep: rep.to_string(),
                items: items.listed(),
            })
            .collect(),
        complaints: complaints.listed(),
        reviews: reviews.listed(),
        sales_profit: sales_profit.listed(),
        price_value: price_value.listed(),
        five_a: five_a.listed(),
        freshness,
        freshness_as_of_ms: None,
        visibility: None,
    }
}

/// Each rep's freshness from their devices' reports; a rep with dossiers and no device has
/// never synced.
fn freshness(
    pipelines: &BTreeMap<String, Pipeline>,
    devices: Vec<DeviceFreshness>,
    input: &BoardInput,
) -> Vec<RepFreshness> {
    let mut by_rep: BTreeMap<String, Vec<DeviceFreshness>> = pipelines
        .keys()
        .filter(|r| !r.is_empty())
        .map(|r| (r.clone(), Vec::new()))
        .collect();
    for d in devices {
        // A manager's own devices say nothing about the team's figures.
        if d.role == Role::Manager && !by_rep.contains_key(&d.user) {
            continue;
        }
        by_rep.entry(d.user.clone()).or_default().push(d);
    }
    by_rep
        .into_iter()
        .map(|(rep, devices)| {
            let last_sync_ms = devices.iter().filter_map(|d| d.last_sync_ms).max();
            let waiting = devices.iter().map(|d| d.waiting).sum();
            let stale =
                waiting > 0 || last_sync_ms.is_none_or(|t| input.now_ms - t > input.stale_after_ms);
            RepFreshness {
                rep,
                last_sync_ms,
                waiting,
                stale,
                devices,
            }
        })
        .collect()
}
