//! Seeded synthetic dossiers shaped like real ones, for benchmarks and demos: 3–8 people,
//! 5–30 interactions with a few hundred characters of notes, Chinese and English text, deals,
//! follow-ups, the odd complaint. The same seed always gives the same dossiers.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use fieldbook_shared::*;

const COMPANY_HEADS: &[&str] = &[
    "华东",
    "北方",
    "金桥",
    "长江",
    "新世纪",
    "宏远",
    "Acme",
    "Northwind",
    "Blue Harbor",
    "天成",
    "Summit",
    "中科",
    "Golden Gate",
    "瑞丰",
    "Pioneer",
];
const COMPANY_TAILS: &[&str] = &[
    "机械有限公司",
    "科技集团",
    "制药",
    "物流",
    "Industries",
    "Holdings",
    "电子",
    "银行",
    "Logistics",
    "零售连锁",
];
const INDUSTRIES: &[&str] = &[
    "manufacturing",
    "pharma",
    "logistics",
    "banking",
    "retail",
    "制造业",
    "金融",
    "医药",
];
const REGIONS: &[&str] = &[
    "上海",
    "北京",
    "深圳",
    "杭州",
    "成都",
    "Singapore",
    "Hong Kong",
];
const SURNAMES: &[&str] = &[
    "张", "王", "李", "刘", "陈", "杨", "赵", "Smith", "Chen", "Lee",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "强", "磊", "Anna", "David", "Grace",
];
const TITLES: &[&str] = &[
    "HR总监",
    "培训经理",
    "总经理",
    "采购经理",
    "财务总监",
    "Head of L&D",
    "COO",
    "部门经理",
];
const DEPTS: &[&str] = &[
    "人力资源部",
    "采购部",
    "总经办",
    "销售部",
    "Finance",
    "Operations",
];
const NOTE_ZH: &[&str] = &[
    "客户对明年的中层管理培训很感兴趣，希望我们先提供课程大纲和讲师介绍。",
    "采购流程需要三家比价，预算在下个季度确认，决策人是总经理。",
    "HR总监提到去年的供应商讲师质量一般，学员反馈不好，这是我们的机会。",
    "内线透露竞争对手报价更低，但客户更看重讲师的实战经验和课后辅导。",
    "约好下周二带培训顾问上门，演示领导力课程方案并回答技术问题。",
    "客户新提拔了二十多名经理，不会带团队，希望三个月内看到效果。",
    "对方希望先安排一次免费试听，再决定是否签年度框架协议。",
];
const NOTE_EN: &[&str] = &[
    "They want a leadership programme for 40 new managers before the spring reorganisation.",
    "Procurement needs three quotes; the budget is confirmed next quarter by the COO.",
    "Our coach says the competitor's trainer was weak and participants complained.",
    "Asked for a free trial session first, then a framework agreement for the year.",
    "Price matters, but they weigh trainer quality and after-course coaching more.",
    "Sent the brochure and a personal letter; will call back in three days as agreed.",
];
const DEALS: &[&str] = &[
    "中层领导力培训",
    "销售技巧训练营",
    "Leadership programme",
    "新员工入职培训",
    "Negotiation workshop",
    "年度培训框架协议",
    "TTT讲师培训",
];
const COMPETITORS: &[&str] = &["Acme Training", "时代光华", "Global Learning", "智联培训"];

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from.choose(rng).copied().unwrap_or_default()
}

fn note(rng: &mut StdRng) -> String {
    let sentences = rng.random_range(2..=5);
    (0..sentences)
        .map(|_| {
            if rng.random_bool(0.6) {
                pick(rng, NOTE_ZH)
            } else {
                pick(rng, NOTE_EN)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn id(rng: &mut StdRng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn day_near(rng: &mut StdRng, today: Day, back: i64, ahead: i64) -> Day {
    today.plus_days(rng.random_range(-back..=ahead))
}

/// `count` dossiers from `seed`, as (id, dossier), owned by `owners` in turn.
pub fn dossiers(seed: u64, count: usize, owners: &[&str], today: Day) -> Vec<(String, Dossier)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|n| {
            let owner = owners
                .get(n % owners.len().max(1))
                .copied()
                .unwrap_or("rep");
            (id(&mut rng), dossier(&mut rng, owner, today))
        })
        .collect()
}

pub fn dossier(rng: &mut StdRng, owner: &str, today: Day) -> Dossier {
    let mut d = Dossier::default();
    let p = &mut d.profile;
    let (head, tail) = (pick(rng, COMPANY_HEADS), pick(rng, COMPANY_TAILS));
    // "Blue Harbor Logistics", but "华东机械有限公司" and "Acme物流".
    let gap = if tail.starts_with(|c: char| c.is_ascii_alphabetic()) {
        " "
    } else {
        ""
    };
    p.name = format!("{head}{gap}{tail}");
    p.industry = pick(rng, INDUSTRIES).into();
    p.region = pick(rng, REGIONS).into();
    p.headcount = Some(rng.random_range(50..20_000));
    p.business_scope = Note::from(note(rng));
    p.owner = owner.into();
    p.target_type = Some(
        *TargetType::ALL
            .choose(rng)
            .unwrap_or(&TargetType::FirstTimeBuyer),
    );
    p.brand = Some(if rng.random_bool(0.3) {
        BrandProminence::Large
    } else {
        BrandProminence::Small
    });
    p.past_purchasing.suppliers = Tags::from_iter([pick(rng, COMPETITORS)]);

    let people: Vec<String> = (0..rng.random_range(3..=8)).map(|_| id(rng)).collect();
    for (i, pid) in people.iter().enumerate() {
        let mut roles = Tags::default();
        for _ in 0..rng.random_range(1..=2) {
            roles.insert(
                DecisionRole::ALL
                    .choose(rng)
                    .unwrap_or(&DecisionRole::User)
                    .as_str(),
            );
        }
        d.people.insert(
            pid.clone(),
            KeyPerson {
                name: format!("{}{}", pick(rng, SURNAMES), pick(rng, GIVEN)),
                title: pick(rng, TITLES).into(),
                department: pick(rng, DEPTS).into(),
                phone: format!("138{:08}", rng.random_range(0..100_000_000u32)),
                roles,
                coach: i == 1,
                personality: Personality::ALL.choose(rng).copied(),
                mood: Mood::ALL.choose(rng).copied(),
                relationship: Some(rng.random_range(1..=5)),
                reports_to: (i > 0).then(|| people[0].clone()),
                ..Default::default()
            },
        );
    }
    for _ in 0..rng.random_range(5..=30) {
        let date = day_near(rng, today, 365, 0);
        let mut i = Interaction {
            date: Some(date),
            kind: InteractionKind::ALL.choose(rng).copied(),
            client_participants: Tags::from_iter([people.choose(rng).cloned().unwrap_or_default()]),
            our_participants: Tags::from_iter([owner]),
            notes: note(rng).into(),
            ..Default::default()
        };
        if rng.random_bool(0.5) {
            i.learned.demand = pick(rng, NOTE_ZH).into();
        }
        if rng.random_bool(0.3) {
            i.learned.problem = pick(rng, NOTE_EN).into();
        }
        d.interactions.insert(id(rng), i);
    }
    for _ in 0..rng.random_range(1..=3) {
        let stage = *Stage::ALL.choose(rng).unwrap_or(&Stage::Awareness);
        d.deals.insert(
            id(rng),
            Deal {
                title: pick(rng, DEALS).into(),
                value: Some(rng.random_range(1..=50) * 10_000),
                currency: "CNY".into(),
                expected_close: Some(day_near(rng, today, 0, 180)),
                competitors: Tags::from_iter([pick(rng, COMPETITORS)]),
                stage: Some(stage),
                // Reps raise a negotiation they expect to win above the stage's default.
                win_probability: (stage == Stage::Negotiation && rng.random_bool(0.5))
                    .then(|| rng.random_range(80..=95)),
                ..Default::default()
            },
        );
    }
    for _ in 0..rng.random_range(0..=3) {
        d.follow_ups.insert(
            id(rng),
            FollowUp {
                due: Some(day_near(rng, today, 30, 30)),
                kind: FollowUpKind::ALL.choose(rng).copied(),
                assignee: Some(Assignee::Rep),
                assignee_name: owner.into(),
                action: "回访客户，确认方案反馈 / call back about the proposal".into(),
                done_on: rng.random_bool(0.3).then_some(today),
                ..Default::default()
            },
        );
    }
    if rng.random_bool(0.1) {
        let opened = day_near(rng, today, 60, 0);
        let steps = rng.random_range(0..=4);
        let step = |n: usize| (steps > n).then_some(opened);
        d.complaints.insert(
            id(rng),
            Complaint {
                opened_on: Some(opened),
                what_happened: "讲师临时更换，学员不满意".into(),
                severity: Severity::ALL.choose(rng).copied(),
                escalated_on: rng.random_bool(0.4).then_some(opened),
                emotion_acknowledged_on: step(0),
                facts_clarified_on: step(1),
                solution_agreed_on: step(2),
                execution_tracked_on: step(3),
                ..Default::default()
            },
        );
    }
    // A signed deal has its contract; some have had the fulfilment review.
    let signed: Vec<(String, String, Option<i64>)> = d
        .deals
        .iter()
        .filter(|(_, x)| x.stage == Some(Stage::Signed))
        .map(|(k, x)| (k.clone(), x.title.clone(), x.value))
        .collect();
    for (deal, title, value) in signed {
        let signed_on = day_near(rng, today, 180, 0);
        let mut contract = Contract {
            title,
            deal: Some(deal),
            signed_on: Some(signed_on),
            value,
            currency: "CNY".into(),
            ..Default::default()
        };
        if rng.random_bool(0.5) {
            contract.review.reviewed_on = Some(today.min(signed_on.plus_days(30)));
            contract.review.satisfied = Some(rng.random_bool(0.8));
        }
        d.contracts.insert(id(rng), contract);
    }
    if rng.random_bool(0.7) {
        let c = &mut d.classification;
        c.sales_profit = SalesProfitClass::ALL.choose(rng).copied();
        c.price_value = PriceValueClass::ALL.choose(rng).copied();
        c.a_revenue = rng.random_bool(0.6);
        c.a_profit = rng.random_bool(0.6);
        c.a_fulfilment_integrity = rng.random_bool(0.7);
        c.a_revenue_per_head = rng.random_bool(0.5);
        c.a_difficulty = rng.random_bool(0.6);
    }
    d
}
