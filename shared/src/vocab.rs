//! The closed vocabularies of the method (stages, roles, kinds...), each with its English and
//! Chinese label. Stored in the document as the same snake_case word used on the wire, so the
//! raw document reads the same as the JSON export.

use autosurgeon::{Hydrate, HydrateError, Reconcile, Reconciler};

/// A word of one of the method's closed vocabularies, with its labels: what reading a word
/// from outside (an imported spreadsheet's "阶段" column, say) matches against.
pub trait Word: Sized + Copy + 'static {
    fn all() -> &'static [Self];
    /// The snake_case word stored and sent.
    fn word(self) -> &'static str;
    fn label_en(self) -> &'static str;
    fn label_zh(self) -> &'static str;
}

/// Declares a vocabulary enum: serde and Automerge as snake_case strings, plus labels.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $word:literal, $en:literal, $zh:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
                 serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word,)+ }
            }
            pub fn label_en(self) -> &'static str {
                match self { $($name::$variant => $en,)+ }
            }
            pub fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh,)+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    other => Err(crate::DomainError::UnknownWord {
                        vocabulary: stringify!($name),
                        word: other.to_string(),
                        expected: vec![$($word,)+].join(", "),
                    }),
                }
            }
        }

        impl Word for $name {
            fn all() -> &'static [Self] {
                Self::ALL
            }
            fn word(self) -> &'static str {
                self.as_str()
            }
            fn label_en(self) -> &'static str {
                self.label_en()
            }
            fn label_zh(self) -> &'static str {
                self.label_zh()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: Reconciler>(&self, mut r: R) -> Result<(), R::Error> {
                r.str(self.as_str())
            }
        }

        impl Hydrate for $name {
            fn hydrate_string(s: &'_ str) -> Result<Self, HydrateError> {
                s.parse().map_err(|_| HydrateError::unexpected(stringify!($name), s.to_string()))
            }
        }
    };
}

vocabulary!(
    /// Who the client is to us; decides how much effort a prospect deserves.
    TargetType {
        FirstTimeBuyer = "first_time_buyer", "First-time buyer", "首次购买者";
        CompetitorsClient = "competitors_client", "Competitor's client", "竞争对手的客户";
        OurClient = "our_client", "Our client", "我们的客户";
    }
);

vocabulary!(
    BrandProminence {
        Large = "large", "Large / well-known", "大型知名";
        Small = "small", "Small / little-known", "小型不知名";
    }
);

vocabulary!(
    /// A role a person plays in the buying decision; a person can hold several.
    DecisionRole {
        Initiator = "initiator", "Initiator", "发起者";
        User = "user", "User", "使用者";
        Influencer = "influencer", "Influencer", "影响者";
        Decider = "decider", "Decider", "决策者";
        Buyer = "buyer", "Buyer", "购买者";
        Gatekeeper = "gatekeeper", "Gatekeeper", "控制者";
    }
);

vocabulary!(
    Personality {
        Driver = "driver", "Driver", "驾驭型";
        Analytical = "analytical", "Analytical", "分析型";
        Expressive = "expressive", "Expressive", "表现型";
        Amiable = "amiable", "Amiable", "平易型";
    }
);

vocabulary!(
    Mood {
        Rising = "rising", "Rising", "上升";
        Falling = "falling", "Falling", "下降";
        Calm = "calm", "Calm", "平静";
        Complacent = "complacent", "Complacent", "自满";
    }
);

vocabulary!(
    InteractionKind {
        Phone = "phone", "Phone call", "电话";
        Visit = "visit", "Visit", "拜访";
        Email = "email", "Email", "邮件";
        Im = "im", "Instant message", "即时消息";
        TradeShow = "trade_show", "Trade show", "展会";
        Trial = "trial", "Trial / free sample", "试听/样品";
        ProposalPresentation = "proposal_presentation", "Proposal presentation", "方案演示";
        ClientVisitUs = "client_visit_us", "Client visits our company", "客户来访";
        ReferenceSiteVisit = "reference_site_visit", "Reference-site visit", "参观样板客户";
        LeaderVisit = "leader_visit", "Leader visit", "领导拜访";
        Other = "other", "Other", "其他";
    }
);

vocabulary!(
    /// The five sequential stages of a deal, plus lost.
    Stage {
        Awareness = "awareness", "Awareness", "知晓";
        Interest = "interest", "Interest", "兴趣";
        Evaluation = "evaluation", "Evaluation", "评价";
        Negotiation = "negotiation", "Negotiation", "谈判";
        Signed = "signed", "Signed", "签约";
        Lost = "lost", "Lost", "丢单";
    }
);

vocabulary!(
    ProposalOutcome {
        Pending = "pending", "Pending", "待定";
        Accepted = "accepted", "Accepted", "通过";
        Resubmit = "resubmit", "Asked to resubmit", "要求重新提交";
        Rejected = "rejected", "Rejected", "被拒绝";
    }
);

vocabulary!(
    /// Where a deal's win probability places it in the funnel.
    FunnelBand {
        Top = "top", "Top (<25%)", "漏斗上部（<25%）";
        Middle = "middle", "Middle (25–75%)", "漏斗中部（25–75%）";
        Bottom = "bottom", "Bottom (>75%)", "漏斗底部（>75%）";
    }
);

vocabulary!(
    FollowUpKind {
        Trial = "trial", "Free trial / sample", "免费试听/样品";
        TradeShow = "trade_show", "Trade show", "展会";
        SubmitProposal = "submit_proposal", "Submit proposal", "提交方案";
        ReferenceSiteVisit = "reference_site_visit", "Reference-site visit", "参观样板客户";
        CompanyVisit = "company_visit", "Company visit", "公司参观";
        LeaderVisit = "leader_visit", "Leader visit", "领导拜访";
        PhoneCall = "phone_call", "Phone call", "电话";
        CoachConsultation = "coach_consultation", "Consult the coach", "请教内线";
        ThirdParty = "third_party", "Via a third party", "借助第三方";
        Other = "other", "Other", "其他";
    }
);

vocabulary!(
    Assignee {
        Rep = "rep", "Rep", "客户代表";
        Manager = "manager", "Manager", "销售经理";
        Consultant = "consultant", "Consultant", "培训顾问";
    }
);

vocabulary!(
    PaymentStatus {
        NotDue = "not_due", "Not yet due", "未到期";
        Invoiced = "invoiced", "Invoiced", "已开票";
        PartlyPaid = "partly_paid", "Partly paid", "部分回款";
        Paid = "paid", "Paid", "已回款";
        Overdue = "overdue", "Overdue", "逾期";
    }
);

vocabulary!(
    Severity {
        Low = "low", "Low", "低";
        Medium = "medium", "Medium", "中";
        High = "high", "High", "高";
        Critical = "critical", "Critical", "严重";
    }
);

vocabulary!(
    /// Sales × profit matrix.
    SalesProfitClass {
        CashCow = "cash_cow", "Cash cow", "金牛";
        Star = "star", "Star", "明星";
        Question = "question", "Question mark", "问题";
        Dog = "dog", "Dog", "瘦狗";
    }
);

vocabulary!(
    /// Price × value matrix.
    PriceValueClass {
        PriceBuyer = "price_buyer", "Price buyer", "价格型";
        ValueBuyer = "value_buyer", "Value buyer", "价值型";
        Calculating = "calculating", "Calculating", "心机型";
        Relationship = "relationship", "Relationship", "关系型";
    }
);

vocabulary!(
    FiveATier {
        FiveA = "5a", "5A", "5A";
        FourA = "4a", "4A", "4A";
        ThreeA = "3a", "3A", "3A";
        Other = "other", "Other", "其他";
    }
);

vocabulary!(
    /// What the rep learned, by the four kinds of key information.
    LearnedKind {
        Demand = "demand", "Demand", "需求";
        Problem = "problem", "Problem", "相关问题";
        BenefitPoints = "benefit_points", "Benefit points", "利益点";
        KeyPersonInfo = "key_person_info", "Key-person info", "关键人信息";
    }
);

impl Stage {
    /// The five sequential stages in order; `Lost` is outside the sequence.
    pub const SEQUENCE: [Stage; 5] = [
        Stage::Awareness,
        Stage::Interest,
        Stage::Evaluation,
        Stage::Negotiation,
        Stage::Signed,
    ];

    pub fn position(self) -> Option<usize> {
        Stage::SEQUENCE.iter().position(|s| *s == self)
    }

    /// A deal is open while it is neither signed nor lost.
    pub fn is_open(self) -> bool {
        !matches!(self, Stage::Signed | Stage::Lost)
    }

    /// The win probability a stage implies when the rep has not set one.
    pub fn default_probability(self) -> u8 {
        match self {
            Stage::Awareness => 10,
            Stage::Interest => 25,
            Stage::Evaluation => 50,
            Stage::Negotiation => 75,
            Stage::Signed => 100,
            Stage::Lost => 0,
        }
    }
}

impl FunnelBand {
    /// top < 25 %, middle 25–75 %, bottom > 75 %.
    pub fn from_probability(p: u8) -> FunnelBand {
        match p {
            0..=24 => FunnelBand::Top,
            25..=75 => FunnelBand::Middle,
            _ => FunnelBand::Bottom,
        }
    }
}
