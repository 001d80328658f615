use super::*;
use crate::{Dossier, Stage};

fn table(headers: &[&str], rows: &[&[&str]]) -> Table {
    Table {
        headers: headers.iter().map(|h| h.to_string()).collect(),
        rows: rows
            .iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect(),
    }
}

fn headers(hs: &[&str]) -> Vec<String> {
    hs.iter().map(|h| h.to_string()).collect()
}

#[test]
fn columns_are_suggested_from_chinese_and_english_headers() {
    let m = Mapping::suggest(&headers(&[
        "客户编号",
        "公司名称",
        "联系人",
        "手机号码",
        "阶段",
        "负责人",
        "备注",
    ]));
    let field = |h: &str| m.columns.get(h).copied();
    assert_eq!(field("客户编号"), Some(Field::Key));
    assert_eq!(field("公司名称"), Some(Field::Company));
    assert_eq!(field("联系人"), Some(Field::ContactName));
    assert_eq!(field("手机号码"), Some(Field::ContactPhone));
    assert_eq!(field("阶段"), Some(Field::Stage));
    assert_eq!(field("负责人"), Some(Field::Owner));
    assert_eq!(field("备注"), None, "a column nothing fits is left out");

    let m = Mapping::suggest(&headers(&[
        "Account Name",
        "Contact Person",
        "E-mail",
        "Sales Stage",
        "Close Date",
        "Owner",
    ]));
    let field = |h: &str| m.columns.get(h).copied();
    assert_eq!(field("Account Name"), Some(Field::Company));
    assert_eq!(field("Contact Person"), Some(Field::ContactName));
    assert_eq!(field("E-mail"), Some(Field::ContactEmail));
    assert_eq!(field("Sales Stage"), Some(Field::Stage));
    assert_eq!(field("Close Date"), Some(Field::ExpectedClose));
    assert_eq!(field("Owner"), Some(Field::Owner));

    // Full-width letters and a header that only contains a field's name.
    let m = Mapping::suggest(&headers(&["ＣＯＭＰＡＮＹ", "客户联系电话（手机）"]));
    assert_eq!(m.columns.get("ＣＯＭＰＡＮＹ"), Some(&Field::Company));
    assert_eq!(
        m.columns.get("客户联系电话（手机）"),
        Some(&Field::ContactPhone)
    );
}

#[test]
fn a_mapping_is_saved_and_read_back() {
    let mut m = Mapping::suggest(&headers(&["公司名称", "阶段"]));
    m.values
        .entry(Field::Stage)
        .or_default()
        .insert("意向客户".into(), "interest".into());
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.contains("\"stage\""), "{json}");
    assert_eq!(serde_json::from_str::<Mapping>(&json).unwrap(), m);
    assert_eq!("阶段".parse::<Field>(), Ok(Field::Stage));
    assert_eq!("contact_phone".parse::<Field>(), Ok(Field::ContactPhone));
    assert!("shoe size".parse::<Field>().is_err());
}

#[test]
fn rows_are_read_with_the_methods_words_in_either_language() {
    let t = table(
        &[
            "公司名称",
            "联系人",
            "决策角色",
            "阶段",
            "金额",
            "下一步",
            "下次跟进日期",
            "员工人数",
        ],
        &[
            &[
                "华东重工",
                "王总",
                "决策者、使用者",
                "评价",
                "12.5万",
                "送方案",
                "2026/12/1",
                "1,200人",
            ],
            &[
                "Acme",
                "Ann",
                "Decider",
                "negotiation",
                "¥80,000",
                "",
                "",
                "",
            ],
            &["", "", "", "", "", "", "", ""],
        ],
    );
    let (rows, errors) = read_rows(&t, &Mapping::suggest(&t.headers));
    assert_eq!(errors, vec![]);
    assert_eq!(rows.len(), 2, "the empty row is left out");
    let mut d = Dossier::default();
    let mut n = 0;
    let mut ids = || {
        n += 1;
        format!("i{n}")
    };
    rows[0].apply(&mut d, &mut ids);
    assert_eq!(d.profile.name, "华东重工");
    assert_eq!(d.profile.headcount, Some(1200));
    let person = d.people.values().next().unwrap();
    assert!(person.roles.contains("decider") && person.roles.contains("user"));
    let deal = d.deals.values().next().unwrap();
    assert_eq!(
        (deal.stage, deal.value),
        (Some(Stage::Evaluation), Some(125_000))
    );
    assert_eq!(deal.title, "华东重工", "a deal named after the company");
    let f = d.follow_ups.values().next().unwrap();
    assert_eq!(
        (f.action.as_str(), f.due),
        ("送方案", "2026-12-01".parse().ok())
    );
    assert!(crate::validate::check_edit(None, &d).is_ok());
}

#[test]
fn each_bad_cell_is_named_by_row_and_column() {
    let t = table(
        &["公司名称", "阶段", "金额", "下次跟进日期", "邮箱", "下一步"],
        &[
            &["A", "意向", "", "", "", ""],
            &["B", "", "lots", "2026-13-40", "", ""],
            &["", "", "", "", "x@y.cn", ""],
            &["D", "", "", "", "not-mail", "打电话"],
        ],
    );
    let (rows, errors) = read_rows(&t, &Mapping::suggest(&t.headers));
    assert!(rows.is_empty());
    let at: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.column.as_str())).collect();
    assert_eq!(
        at,
        vec![
            (2, "阶段"),
            (3, "金额"),
            (3, "下次跟进日期"),
            (4, "公司名称"),
            // No contact column: the field's own name.
            (4, "联系人"),
            (5, "邮箱"),
            (5, "下次跟进日期"),
        ]
    );
    assert!(
        errors[0].message.contains("兴趣 / interest"),
        "{}",
        errors[0]
    );
    assert!(errors[0].to_string().starts_with("row 2, column \"阶段\""));

    // The mapping says what a word of the old system means.
    let mut m = Mapping::suggest(&t.headers);
    m.values
        .entry(Field::Stage)
        .or_default()
        .insert("意向".into(), "interest".into());
    let (rows, _) = read_rows(&t, &m);
    assert_eq!(rows.len(), 1, "row 2 reads now");

    let no_company = table(&["联系人"], &[&["王总"]]);
    let (_, errors) = read_rows(&no_company, &Mapping::suggest(&no_company.headers));
    assert!(errors[0].message.contains("company"), "{}", errors[0]);
}

#[test]
fn a_row_written_twice_changes_nothing_and_rows_of_one_company_add_up() {
    let t = table(
        &[
            "公司名称",
            "联系人",
            "电话",
            "商机",
            "阶段",
            "下一步",
            "下次跟进日期",
        ],
        &[
            &[
                "华东重工",
                "王总",
                "138",
                "培训项目",
                "兴趣",
                "拜访",
                "2026-12-01",
            ],
            &["华东 重工", "李工", "139", "培训项目", "评价", "", ""],
        ],
    );
    let (rows, errors) = read_rows(&t, &Mapping::suggest(&t.headers));
    assert_eq!(errors, vec![]);
    assert_eq!(company_key(&rows[0].company), company_key(&rows[1].company));
    let mut d = Dossier::default();
    let mut n = 0;
    let mut ids = || {
        n += 1;
        format!("i{n}")
    };
    for r in &rows {
        r.apply(&mut d, &mut ids);
    }
    assert_eq!(d.people.len(), 2, "two contacts of one company");
    assert_eq!(d.deals.len(), 1, "one deal, moved on");
    assert_eq!(
        d.deals.values().next().unwrap().stage,
        Some(Stage::Evaluation)
    );
    let once = d.clone();
    for r in &rows {
        r.apply(&mut d, &mut ids);
    }
    assert_eq!(d, once, "applying the same rows again changes nothing");
}

#[test]
fn folding_makes_widths_case_and_spacing_one() {
    assert_eq!(fold("ＡＣＭＥ　Co., Ltd."), "acmecoltd");
    assert_eq!(company_key("华东 重工"), company_key("华东重工"));
    assert_ne!(company_key("华东重工"), company_key("华南重工"));
}
