//! The client dossier (客户档案): one Automerge document per client company.
//!
//! Every collection is a map keyed by a stable id, so concurrent additions on two devices never
//! collide; order comes from a date field. Deletion is a tombstone (`deleted_at`) so a delete
//! on one device and an edit on another never lose the edit. Long free text is [`Note`]
//! (Automerge Text, merged character-wise); everything else is a scalar whose concurrent values
//! surface as conflicts (see [`crate::conflict`]).

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::vocab::*;
use crate::{Day, Note, Tags};

/// Version of the document layout written by this build.
pub const SCHEMA_VERSION: u64 = 1;

/// Map of stable id (UUID) to item.
pub type Items<T> = BTreeMap<String, T>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct Dossier {
    pub schema_version: u64,
    pub profile: CompanyProfile,
    pub people: Items<KeyPerson>,
    pub interactions: Items<Interaction>,
    pub deals: Items<Deal>,
    pub follow_ups: Items<FollowUp>,
    pub contracts: Items<Contract>,
    pub complaints: Items<Complaint>,
    pub classification: Classification,
    pub account_plan: AccountPlan,
    pub loyalty_risks: LoyaltyRisks,
    /// Notes left on the dossier, by its owner's manager above all. Documents written before
    /// comments existed have no such map: it reads as empty.
    #[autosurgeon(missing = "Default::default")]
    pub comments: Items<Comment>,
    /// Who wrote this document: Automerge actor (device) id in hex → author. Kept inside the
    /// document so any replica can say who changed what, even offline.
    pub authors: BTreeMap<String, Author>,
    /// The whole dossier is archived (a tombstone: the history stays).
    pub deleted_at: Option<Day>,
}

impl Dossier {
    /// Whether anything in it is deleted (a tombstone), the dossier itself included: an edit
    /// of a deleted item is offered as a conflict (see [`crate::conflict`]), so only a dossier
    /// without tombstones is sure to gain no conflict from an edit made after all it held.
    /// (Every item type with a `deleted_at` is named here.)
    pub fn has_tombstones(&self) -> bool {
        fn any<T>(items: &Items<T>, deleted: impl Fn(&T) -> bool) -> bool {
            items.values().any(deleted)
        }
        self.deleted_at.is_some()
            || any(&self.people, |p| p.deleted_at.is_some())
            || any(&self.interactions, |i| i.deleted_at.is_some())
            || any(&self.deals, |d| {
                d.deleted_at.is_some() || any(&d.checklist, |c| c.deleted_at.is_some())
            })
            || any(&self.follow_ups, |f| f.deleted_at.is_some())
            || any(&self.contracts, |c| {
                c.deleted_at.is_some() || any(&c.milestones, |m| m.deleted_at.is_some())
            })
            || any(&self.complaints, |c| c.deleted_at.is_some())
            || any(&self.account_plan.actions, |a| a.deleted_at.is_some())
            || any(&self.comments, |c| c.deleted_at.is_some())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct Author {
    pub user: String,
    pub device: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct CompanyProfile {
    pub name: String,
    pub industry: String,
    pub region: String,
    pub website: String,
    pub business_scope: Note,
    pub sales_scale: String,
    pub headcount: Option<u64>,
    pub org_structure: Note,
    pub brand: Option<BrandProminence>,
    pub target_type: Option<TargetType>,
    pub past_purchasing: PastPurchasing,
    /// The owning rep (user name).
    pub owner: String,
    /// Colleagues (user names) the dossier is shared with besides its owner: where the team
    /// lets reps see only their own dossiers, these see it too.
    #[autosurgeon(missing = "Default::default")]
    pub shared_with: Tags,
    pub team: String,
    /// The client's number in the system the team kept its clients in before (an imported
    /// list's key column): what a later import of the same list matches it by.
    #[autosurgeon(missing = "Default::default")]
    pub client_number: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct PastPurchasing {
    pub suppliers: Tags,
    pub price_range: String,
    pub product_kind: String,
    pub service_expectations: Note,
    pub selection_criteria: Note,
}

/// A person at the client (关键人) and their place in the decision chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct KeyPerson {
    pub name: String,
    pub title: String,
    pub department: String,
    pub phone: String,
    pub email: String,
    pub im: String,
    pub notes: Note,
    /// Decision roles (words of [`DecisionRole`]); a person can hold several.
    pub roles: Tags,
    /// The inside contact / coach (内线 / 教练).
    pub coach: bool,
    pub personality: Option<Personality>,
    pub mood: Option<Mood>,
    /// 1 (weak) to 5 (strong).
    pub relationship: Option<u8>,
    pub last_contact: Option<Day>,
    /// Person id of their manager, for the decision chart.
    pub reports_to: Option<String>,
    /// Personnel change at the client is a loyalty risk.
    pub left_on: Option<Day>,
    pub deleted_at: Option<Day>,
}

impl KeyPerson {
    pub fn has_role(&self, role: DecisionRole) -> bool {
        self.roles.contains(role.as_str())
    }
}

/// Every call, visit, email or meeting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct Interaction {
    pub date: Option<Day>,
    /// Local time of day, `HH:MM`, if the rep gave one.
    pub time: String,
    pub kind: Option<InteractionKind>,
    /// Person ids of the client people who took part.
    pub client_participants: Tags,
    /// Names of our people who took part.
    pub our_participants: Tags,
    pub notes: Note,
    pub learned: Learned,
    pub next_step: String,
    pub next_step_due: Option<Day>,
    /// The follow-up created from the next step, if any.
    pub follow_up: Option<String>,
    pub deal: Option<String>,
    pub deleted_at: Option<Day>,
}

/// What was learned, by the four kinds of key information.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct Learned {
    pub demand: Note,
    pub problem: Note,
    pub benefit_points: Note,
    pub key_person_info: Note,
    /// How much the client weighs quality, price and service (0–10 each), when known.
    pub weight_quality: Option<u8>,
    pub weight_price: Option<u8>,
    pub weight_service: Option<u8>,
}

/// An opportunity: one dossier can hold several.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct Deal {
    pub title: String,
    pub value: Option<i64>,
    pub currency: String,
    pub expected_close: Option<Day>,
    pub competitors: Tags,
    pub stage: Option<Stage>,
    /// Explicit win probability in percent; when absent the stage's default applies.
    pub win_probability: Option<u8>,
    pub proposal_outcome: Option<ProposalOutcome>,
    pub awareness_play: AwarenessPlay,
    pub checklist: Items<ChecklistItem>,
    /// Consultants and executive sponsors attached to the deal.
    pub our_people: Tags,
    pub notes: Note,
    pub lost_reason: String,
    pub deleted_at: Option<Day>,
}

impl Deal {
    pub fn stage_or_default(&self) -> Stage {
        self.stage.unwrap_or(Stage::Awareness)
    }

    pub fn probability(&self) -> u8 {
        match self.stage_or_default() {
            Stage::Lost => 0,
            Stage::Signed => 100,
            s => self
                .win_probability
                .unwrap_or_else(|| s.default_probability()),
        }
    }

    pub fn band(&self) -> FunnelBand {
        FunnelBand::from_probability(self.probability())
    }

    pub fn open_checklist_items(&self) -> usize {
        self.checklist
            .values()
            .filter(|i| i.deleted_at.is_none() && !i.is_answered())
            .count()
    }
}

/// The standard three-step play of the awareness stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct AwarenessPlay {
    pub first_call: Option<Day>,
    pub materials_sent: Option<Day>,
    pub called_back: Option<Day>,
}

/// One piece of information still needed (信息清单).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct ChecklistItem {
    pub question: String,
    pub asked_on: Option<Day>,
    pub answer: Note,
    /// Person id (or name) of who gave the answer.
    pub answered_by: String,
    pub answered_on: Option<Day>,
    pub deleted_at: Option<Day>,
}

impl ChecklistItem {
    pub fn is_answered(&self) -> bool {
        self.answered_on.is_some() || !self.answer.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct FollowUp {
    pub due: Option<Day>,
    pub kind: Option<FollowUpKind>,
    pub assignee: Option<Assignee>,
    /// Name of the person assigned, when more specific than the role.
    pub assignee_name: String,
    pub action: String,
    pub deal: Option<String>,
    pub done_on: Option<Day>,
    pub deleted_at: Option<Day>,
}

impl FollowUp {
    pub fn is_open(&self) -> bool {
        self.done_on.is_none() && self.deleted_at.is_none()
    }

    pub fn is_overdue(&self, today: Day) -> bool {
        self.is_open() && self.due.is_some_and(|d| d < today)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct Contract {
    pub title: String,
    pub deal: Option<String>,
    pub signed_on: Option<Day>,
    pub value: Option<i64>,
    pub currency: String,
    pub promised: Note,
    pub milestones: Items<Milestone>,
    pub payment_status: Option<PaymentStatus>,
    pub amount_collected: Option<i64>,
    pub review: FulfilmentReview,
    pub deleted_at: Option<Day>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct Milestone {
    pub description: String,
    pub due: Option<Day>,
    pub delivered_on: Option<Day>,
    pub deleted_at: Option<Day>,
}

/// The first visit after a sale: delivered as promised? problems? satisfied? then the effect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct FulfilmentReview {
    pub reviewed_on: Option<Day>,
    pub delivered_as_promised: Option<bool>,
    pub problems: Note,
    pub satisfied: Option<bool>,
    pub effect_in_use: Note,
}

/// A complaint (客诉) and the four steps of handling it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct Complaint {
    pub opened_on: Option<Day>,
    pub what_happened: Note,
    pub severity: Option<Severity>,
    pub escalated_on: Option<Day>,
    /// 情绪认同
    pub emotion_acknowledged_on: Option<Day>,
    /// 事实澄清
    pub facts_clarified_on: Option<Day>,
    /// 方案讨论
    pub solution_agreed_on: Option<Day>,
    /// 执行跟踪
    pub execution_tracked_on: Option<Day>,
    pub solution: Note,
    pub closed_on: Option<Day>,
    pub deleted_at: Option<Day>,
}

impl Complaint {
    pub fn is_open(&self) -> bool {
        self.closed_on.is_none() && self.deleted_at.is_none()
    }

    /// How many of the four steps are done, in order.
    pub fn steps_done(&self) -> usize {
        [
            self.emotion_acknowledged_on,
            self.facts_clarified_on,
            self.solution_agreed_on,
            self.execution_tracked_on,
        ]
        .iter()
        .filter(|d| d.is_some())
        .count()
    }
}

/// The three classification schemes a manager uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct Classification {
    pub sales_profit: Option<SalesProfitClass>,
    pub price_value: Option<PriceValueClass>,
    /// The five A criteria: each true when the client rates "A" on it.
    pub a_revenue: bool,
    pub a_profit: bool,
    pub a_fulfilment_integrity: bool,
    pub a_revenue_per_head: bool,
    pub a_difficulty: bool,
}

impl Classification {
    /// The 5A tier follows from how many criteria rate A.
    pub fn five_a(&self) -> FiveATier {
        let count = [
            self.a_revenue,
            self.a_profit,
            self.a_fulfilment_integrity,
            self.a_revenue_per_head,
            self.a_difficulty,
        ]
        .iter()
        .filter(|a| **a)
        .count();
        match count {
            5 => FiveATier::FiveA,
            4 => FiveATier::FourA,
            3 => FiveATier::ThreeA,
            _ => FiveATier::Other,
        }
    }
}

/// The account plan (客户计划) for a key account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct AccountPlan {
    pub goals: Note,
    pub strategy: Note,
    pub executive_sponsor: String,
    pub actions: Items<PlanAction>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct PlanAction {
    pub action: String,
    pub owner: String,
    pub resources: String,
    pub due: Option<Day>,
    pub done_on: Option<Day>,
    pub deleted_at: Option<Day>,
}

/// A note on the dossier, e.g. a manager's word to the rep, optionally with the follow-up it
/// asks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct Comment {
    pub on: Option<Day>,
    /// The user who wrote it.
    pub author: String,
    pub text: String,
    /// The follow-up it assigned, if any.
    pub follow_up: Option<String>,
    pub deleted_at: Option<Day>,
}

/// Loyalty risks worth flagging, each with a note when set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(default)]
pub struct LoyaltyRisks {
    pub dissatisfied_with_last_delivery: bool,
    pub weak_relationship: bool,
    pub competitor_offers_more: bool,
    pub strong_new_competitor: bool,
    pub personnel_change: bool,
    pub notes: Note,
}
