//! Tables as a manager pastes them into the weekly report: the dossier list (with whatever
//! filters chose its rows), in Chinese or English, each cell typed so a spreadsheet can sum
//! the numbers. No IO: the device writes them as CSV or .xlsx.

use crate::api::Lang;
use crate::summary::DossierSummary;
use crate::vocab::Word;

/// One cell of a sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SheetCell {
    Text(String),
    Number(i64),
    Empty,
}

impl SheetCell {
    /// As text (CSV).
    pub fn text(&self) -> String {
        match self {
            SheetCell::Text(t) => t.clone(),
            SheetCell::Number(n) => n.to_string(),
            SheetCell::Empty => String::new(),
        }
    }
}

/// A table with a header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    /// What a workbook calls its sheet.
    pub name: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<SheetCell>>,
}

fn word<W: Word>(w: Option<W>, lang: Lang) -> SheetCell {
    match (w, lang) {
        (None, _) => SheetCell::Empty,
        (Some(w), Lang::Zh) => SheetCell::Text(w.label_zh().into()),
        (Some(w), Lang::En) => SheetCell::Text(w.label_en().into()),
    }
}

fn text(s: &str) -> SheetCell {
    if s.is_empty() {
        SheetCell::Empty
    } else {
        SheetCell::Text(s.to_string())
    }
}

fn day(d: Option<crate::Day>) -> SheetCell {
    d.map_or(SheetCell::Empty, |d| SheetCell::Text(d.to_string()))
}

/// The dossier list, a row per dossier. Its Chinese headers are ones an import reads back
/// (公司名称, 客户编号, 负责人, 行业, 地区, 阶段).
pub fn dossier_list(rows: &[DossierSummary], lang: Lang) -> Sheet {
    let columns: [(&str, &str); 14] = [
        ("公司名称", "Company"),
        ("客户编号", "Client number"),
        ("负责人", "Owner"),
        ("行业", "Industry"),
        ("地区", "Region"),
        ("阶段", "Stage"),
        ("漏斗位置", "Funnel band"),
        ("未结商机", "Open deals"),
        ("未结金额", "Open value"),
        ("加权金额", "Weighted value"),
        ("下次跟进日期", "Next follow-up"),
        ("最近联系", "Last contact"),
        ("联系人数", "People"),
        ("未解决冲突", "Unresolved conflicts"),
    ];
    let headers = columns
        .iter()
        .map(|(zh, en)| match lang {
            Lang::Zh => zh.to_string(),
            Lang::En => en.to_string(),
        })
        .collect();
    let rows = rows
        .iter()
        .map(|s| {
            vec![
                text(&s.name),
                text(&s.client_number),
                text(&s.owner),
                text(&s.industry),
                text(&s.region),
                word(s.lead_stage, lang),
                word(s.lead_band, lang),
                SheetCell::Number(i64::from(s.open_deals)),
                SheetCell::Number(s.open_value),
                SheetCell::Number(s.weighted_value),
                day(s.next_follow_up),
                day(s.last_contact),
                SheetCell::Number(i64::from(s.people)),
                SheetCell::Number(i64::from(s.conflicts)),
            ]
        })
        .collect();
    Sheet {
        name: match lang {
            Lang::Zh => "客户".into(),
            Lang::En => "Clients".into(),
        },
        headers,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{Field, Mapping};

    #[test]
    fn the_list_in_either_language_and_its_chinese_headers_read_back_by_an_import() {
        let mut d = crate::Dossier::default();
        d.profile.name = "华东重工".into();
        d.profile.client_number = "C001".into();
        d.deals.insert(
            "x".into(),
            crate::Deal {
                title: "培训".into(),
                value: Some(120_000),
                stage: Some(crate::Stage::Evaluation),
                ..Default::default()
            },
        );
        let summary = crate::summary::summarize("d1", &d, 0);
        let zh = dossier_list(std::slice::from_ref(&summary), Lang::Zh);
        assert_eq!(zh.rows[0][0], SheetCell::Text("华东重工".into()));
        assert_eq!(zh.rows[0][5], SheetCell::Text("评价".into()));
        assert_eq!(zh.rows[0][8], SheetCell::Number(120_000));
        let en = dossier_list(&[summary], Lang::En);
        assert_eq!(en.headers[0], "Company");
        assert_eq!(en.rows[0][5], SheetCell::Text("Evaluation".into()));
        let mapping = Mapping::suggest(&zh.headers);
        for (header, field) in [
            ("公司名称", Field::Company),
            ("客户编号", Field::Key),
            ("负责人", Field::Owner),
            ("阶段", Field::Stage),
        ] {
            assert_eq!(mapping.columns.get(header), Some(&field), "{header}");
        }
    }
}
