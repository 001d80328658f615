//! What one row of a client list says, read cell by cell with an error naming the row and
//! column of each cell that cannot be read, and how it is written into a dossier so that
//! writing the same row again changes nothing.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Field, Mapping, Table, fold};
use crate::vocab::{DecisionRole, PriceValueClass, SalesProfitClass, Stage, TargetType, Word};
use crate::{Day, Deal, Dossier, FollowUp, KeyPerson};

/// A cell that cannot be read, where the user finds it in the spreadsheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellError {
    /// The spreadsheet's row number (the header is row 1).
    pub row: usize,
    /// The column's header.
    pub column: String,
    pub value: String,
    pub message: String,
}

impl std::fmt::Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "row {}, column {:?}: {} (the cell holds {:?})",
            self.row, self.column, self.message, self.value
        )
    }
}

/// What one row says of one client; empty cells say nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientRow {
    /// The spreadsheet's row number.
    pub row: usize,
    pub key: String,
    pub company: String,
    pub owner: String,
    industry: String,
    region: String,
    website: String,
    business_scope: String,
    sales_scale: String,
    headcount: Option<u64>,
    target_type: Option<TargetType>,
    contact: Option<KeyPerson>,
    deal: Option<Deal>,
    follow_up: Option<FollowUp>,
    sales_profit: Option<SalesProfitClass>,
    price_value: Option<PriceValueClass>,
}

/// Read every row of `table` through `mapping`. Rows whose mapped cells are all empty are
/// left out; a row without a company name is an error, as is every cell that cannot be read.
pub fn read_rows(table: &Table, mapping: &Mapping) -> (Vec<ClientRow>, Vec<CellError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let columns: Vec<(usize, Field)> = table
        .headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| mapping.columns.get(h).map(|f| (i, *f)))
        .collect();
    if mapping.column(&table.headers, Field::Company).is_none() {
        errors.push(CellError {
            row: 1,
            column: String::new(),
            value: table.headers.join(", "),
            message: "no column is mapped to the company name (map one with company=HEADER)".into(),
        });
        return (rows, errors);
    }
    for (index, cells) in table.rows.iter().enumerate() {
        let number = Table::row_number(index);
        let cell = |i: usize| cells.get(i).map(|c| c.trim()).unwrap_or("");
        if columns.iter().all(|(i, _)| cell(*i).is_empty()) {
            continue;
        }
        let mut reader = RowReader {
            row: ClientRow {
                row: number,
                ..ClientRow::default()
            },
            errors: Vec::new(),
            values: &mapping.values,
        };
        for (i, field) in &columns {
            let text = cell(*i);
            if !text.is_empty() {
                reader.read(*field, text, &table.headers[*i]);
            }
        }
        let header = |field: Field| {
            mapping
                .column(&table.headers, field)
                .map(|i| table.headers[i].clone())
                .unwrap_or_else(|| field.label_zh().to_string())
        };
        let mut missing = |field: Field, message: &str| {
            reader.errors.push(CellError {
                row: number,
                column: header(field),
                value: String::new(),
                message: message.into(),
            })
        };
        if reader.row.company.is_empty() {
            missing(Field::Company, "a row needs the company's name");
        }
        if reader
            .row
            .contact
            .as_ref()
            .is_some_and(|c| c.name.is_empty())
        {
            missing(Field::ContactName, "a contact needs a name");
        }
        if reader
            .row
            .follow_up
            .as_ref()
            .is_some_and(|f| f.due.is_none())
        {
            missing(Field::NextDue, "a next step needs its date");
        }
        if reader.errors.is_empty() {
            rows.push(reader.row);
        } else {
            errors.extend(reader.errors);
        }
    }
    (rows, errors)
}

struct RowReader<'a> {
    row: ClientRow,
    errors: Vec<CellError>,
    values: &'a BTreeMap<Field, BTreeMap<String, String>>,
}

impl RowReader<'_> {
    fn read(&mut self, field: Field, text: &str, header: &str) {
        let read = self.value(field, text);
        if let Err(message) = read {
            self.errors.push(CellError {
                row: self.row.row,
                column: header.to_string(),
                value: text.to_string(),
                message,
            });
        }
    }

    fn value(&mut self, field: Field, text: &str) -> Result<(), String> {
        let r = &mut self.row;
        let own = |s: &str| s.to_string();
        match field {
            Field::Key => r.key = own(text),
            Field::Company => r.company = own(text),
            Field::Owner => r.owner = own(text),
            Field::Industry => r.industry = own(text),
            Field::Region => r.region = own(text),
            Field::Website => r.website = own(text),
            Field::BusinessScope => r.business_scope = own(text),
            Field::SalesScale => r.sales_scale = own(text),
            Field::Headcount => r.headcount = Some(headcount(text)?),
            Field::TargetType => r.target_type = Some(word(text, self.values.get(&field))?),
            Field::SalesProfit => r.sales_profit = Some(word(text, self.values.get(&field))?),
            Field::PriceValue => r.price_value = Some(word(text, self.values.get(&field))?),
            Field::ContactName => contact(r).name = own(text),
            Field::ContactTitle => contact(r).title = own(text),
            Field::ContactDepartment => contact(r).department = own(text),
            Field::ContactPhone => contact(r).phone = own(text),
            Field::ContactEmail => {
                if !text.contains('@') {
                    return Err("not an email address".into());
                }
                contact(r).email = own(text)
            }
            Field::ContactRole => {
                let overrides = self.values.get(&field);
                for part in text.split(['、', ',', '，', '/', ';', '；']) {
                    let part = part.trim();
                    if !part.is_empty() {
                        let role: DecisionRole = word(part, overrides)?;
                        contact(r).roles.insert(role.word());
                    }
                }
            }
            Field::DealTitle => deal(r).title = own(text),
            Field::Stage => deal(r).stage = Some(word::<Stage>(text, self.values.get(&field))?),
            Field::DealValue => deal(r).value = Some(amount(text)?),
            Field::ExpectedClose => deal(r).expected_close = Some(day(text)?),
            Field::NextAction => follow_up(r).action = own(text),
            Field::NextDue => follow_up(r).due = Some(day(text)?),
        }
        Ok(())
    }
}

fn contact(r: &mut ClientRow) -> &mut KeyPerson {
    r.contact.get_or_insert_with(KeyPerson::default)
}

fn deal(r: &mut ClientRow) -> &mut Deal {
    r.deal.get_or_insert_with(Deal::default)
}

fn follow_up(r: &mut ClientRow) -> &mut FollowUp {
    r.follow_up.get_or_insert_with(FollowUp::default)
}

/// A word of a vocabulary: as the mapping says it means, else the method's word or either of
/// its labels, folded.
fn word<W: Word>(text: &str, overrides: Option<&BTreeMap<String, String>>) -> Result<W, String> {
    let text = overrides
        .and_then(|o| o.get(text).or_else(|| o.get(text.trim())))
        .map_or(text, String::as_str);
    let folded = fold(text);
    W::all()
        .iter()
        .copied()
        .find(|w| {
            fold(w.word()) == folded || fold(w.label_en()) == folded || fold(w.label_zh()) == folded
        })
        .ok_or_else(|| {
            let known: Vec<String> = W::all()
                .iter()
                .map(|w| format!("{} / {}", w.label_zh(), w.word()))
                .collect();
            format!(
                "not a word this column knows; it takes {} (or map the word to one)",
                known.join(", ")
            )
        })
}

/// A number of people: 1200, 1,200, 1200人.
fn headcount(text: &str) -> Result<u64, String> {
    let digits: String = text
        .trim_end_matches(['人', '名'])
        .chars()
        .filter(|c| !matches!(c, ',' | '，' | ' '))
        .collect();
    digits
        .parse()
        .map_err(|_| "not a number of people".to_string())
}

/// An amount in yuan: 120000, 120,000.00, ¥120000, 12万, 12.5万元.
fn amount(text: &str) -> Result<i64, String> {
    let t = text
        .trim()
        .trim_start_matches(['¥', '￥'])
        .trim_end_matches('元')
        .replace([',', '，', ' '], "");
    let (number, scale) = match t.strip_suffix('万') {
        Some(n) => (n, 10_000.0),
        None => (t.as_str(), 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| "not an amount (e.g. 120000, 12万)".to_string())?;
    let yuan = (value * scale).round();
    if !yuan.is_finite() || !(0.0..=1e15).contains(&yuan) {
        return Err("not an amount this field can hold".into());
    }
    Ok(yuan as i64)
}

/// A day: 2026-12-01, 2026/12/1, 2026.12.1, 2026年12月1日, or 2026-12-01 09:00 (the time is
/// dropped).
fn day(text: &str) -> Result<Day, String> {
    let date = text.split([' ', 'T']).next().unwrap_or("");
    let parts: Vec<&str> = date
        .split(['-', '/', '.', '年', '月', '日'])
        .filter(|p| !p.is_empty())
        .collect();
    let bad = || "not a date (e.g. 2026-12-01)".to_string();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    Day::from_ymd(y, m, d).ok_or_else(bad)
}

impl ClientRow {
    /// Write what this row says into `d` (a new dossier is `Dossier::default()`): each cell
    /// sets its field; the contact is added unless a person of that name (or phone, or email)
    /// is there already, whose fields the row's cells set; the deal likewise by its title (a
    /// row naming no deal title fills the dossier's one live deal, else adds one named after
    /// the company); the next step is added unless an open follow-up with that action and
    /// day is there. So writing the same row twice changes nothing. `new_id` names new items.
    pub fn apply(&self, d: &mut Dossier, new_id: &mut dyn FnMut() -> String) {
        let p = &mut d.profile;
        set(&mut p.name, &self.company);
        set(&mut p.client_number, &self.key);
        set(&mut p.owner, &self.owner);
        set(&mut p.industry, &self.industry);
        set(&mut p.region, &self.region);
        set(&mut p.website, &self.website);
        set(&mut p.sales_scale, &self.sales_scale);
        if !self.business_scope.is_empty() {
            p.business_scope = self.business_scope.as_str().into();
        }
        p.headcount = self.headcount.or(p.headcount);
        p.target_type = self.target_type.or(p.target_type);
        let c = &mut d.classification;
        c.sales_profit = self.sales_profit.or(c.sales_profit);
        c.price_value = self.price_value.or(c.price_value);
        if let Some(row) = &self.contact {
            self.apply_contact(d, row, new_id);
        }
        if let Some(row) = &self.deal {
            self.apply_deal(d, row, new_id);
        }
        if let Some(row) = &self.follow_up {
            let same = |f: &FollowUp| {
                f.is_open() && fold(&f.action) == fold(&row.action) && f.due == row.due
            };
            if !d.follow_ups.values().any(same) {
                let mut f = row.clone();
                if f.action.is_empty() {
                    f.action = "跟进".into();
                }
                d.follow_ups.insert(new_id(), f);
            }
        }
    }

    fn apply_contact(&self, d: &mut Dossier, row: &KeyPerson, new_id: &mut dyn FnMut() -> String) {
        let same = |p: &KeyPerson| {
            p.deleted_at.is_none()
                && ((!row.name.is_empty() && fold(&p.name) == fold(&row.name))
                    || (!row.phone.is_empty() && fold(&p.phone) == fold(&row.phone))
                    || (!row.email.is_empty() && fold(&p.email) == fold(&row.email)))
        };
        let person = match d.people.iter_mut().find(|(_, p)| same(p)) {
            Some((_, p)) => p,
            None => d.people.entry(new_id()).or_default(),
        };
        set(&mut person.name, &row.name);
        set(&mut person.title, &row.title);
        set(&mut person.department, &row.department);
        set(&mut person.phone, &row.phone);
        set(&mut person.email, &row.email);
        for role in row.roles.iter() {
            person.roles.insert(role.clone());
        }
    }

    fn apply_deal(&self, d: &mut Dossier, row: &Deal, new_id: &mut dyn FnMut() -> String) {
        let live: Vec<String> = d
            .deals
            .iter()
            .filter(|(_, deal)| deal.deleted_at.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        let found = if row.title.is_empty() {
            match live.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            }
        } else {
            live.iter()
                .find(|id| fold(&d.deals[*id].title) == fold(&row.title))
                .cloned()
        };
        let deal = match found {
            Some(id) => d.deals.entry(id).or_default(),
            None => {
                let deal = d.deals.entry(new_id()).or_default();
                deal.title = if row.title.is_empty() {
                    self.company.clone()
                } else {
                    row.title.clone()
                };
                deal
            }
        };
        set(&mut deal.title, &row.title);
        deal.stage = row.stage.or(deal.stage);
        deal.value = row.value.or(deal.value);
        deal.expected_close = row.expected_close.or(deal.expected_close);
    }
}

fn set(field: &mut String, cell: &str) {
    if !cell.is_empty() && field != cell {
        *field = cell.to_string();
    }
}
