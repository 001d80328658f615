//! The dossier fields a spreadsheet column can fill, and which column fills which: suggested
//! from the headers (Chinese and English, as exported from Excel or an old CRM), changed by
//! the user, and saved to be used again for the next file of the same shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fold;

/// What one column of a client list says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The client's number in the old system: matches a row to the dossier it made before.
    Key,
    Company,
    Industry,
    Region,
    Website,
    BusinessScope,
    SalesScale,
    Headcount,
    /// The rep who owns the client (their user name).
    Owner,
    TargetType,
    ContactName,
    ContactTitle,
    ContactDepartment,
    ContactPhone,
    ContactEmail,
    /// Decision roles of the contact, several separated by commas or 、.
    ContactRole,
    DealTitle,
    Stage,
    DealValue,
    ExpectedClose,
    NextAction,
    NextDue,
    SalesProfit,
    PriceValue,
}

impl Field {
    pub const ALL: &'static [Field] = &[
        Field::Key,
        Field::Company,
        Field::Industry,
        Field::Region,
        Field::Website,
        Field::BusinessScope,
        Field::SalesScale,
        Field::Headcount,
        Field::Owner,
        Field::TargetType,
        Field::ContactName,
        Field::ContactTitle,
        Field::ContactDepartment,
        Field::ContactPhone,
        Field::ContactEmail,
        Field::ContactRole,
        Field::DealTitle,
        Field::Stage,
        Field::DealValue,
        Field::ExpectedClose,
        Field::NextAction,
        Field::NextDue,
        Field::SalesProfit,
        Field::PriceValue,
    ];

    /// The word used in saved mappings and on the command line.
    pub fn word(self) -> &'static str {
        self.names().0
    }

    pub fn label_en(self) -> &'static str {
        self.names().1
    }

    pub fn label_zh(self) -> &'static str {
        self.names().2
    }

    /// Word, English label, Chinese label.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Field::Key => ("key", "Client number", "客户编号"),
            Field::Company => ("company", "Company name", "公司名称"),
            Field::Industry => ("industry", "Industry", "行业"),
            Field::Region => ("region", "Region", "地区"),
            Field::Website => ("website", "Website", "网站"),
            Field::BusinessScope => ("business_scope", "Business scope", "经营范围"),
            Field::SalesScale => ("sales_scale", "Sales scale", "销售规模"),
            Field::Headcount => ("headcount", "Headcount", "员工人数"),
            Field::Owner => ("owner", "Rep (owner)", "负责人"),
            Field::TargetType => ("target_type", "Client type", "客户类型"),
            Field::ContactName => ("contact_name", "Contact", "联系人"),
            Field::ContactTitle => ("contact_title", "Contact's title", "职务"),
            Field::ContactDepartment => ("contact_department", "Department", "部门"),
            Field::ContactPhone => ("contact_phone", "Phone", "电话"),
            Field::ContactEmail => ("contact_email", "Email", "邮箱"),
            Field::ContactRole => ("contact_role", "Decision role", "决策角色"),
            Field::DealTitle => ("deal_title", "Deal", "商机"),
            Field::Stage => ("stage", "Stage", "阶段"),
            Field::DealValue => ("deal_value", "Deal value", "金额"),
            Field::ExpectedClose => ("expected_close", "Expected close", "预计成交日期"),
            Field::NextAction => ("next_action", "Next step", "下一步"),
            Field::NextDue => ("next_due", "Next follow-up", "下次跟进日期"),
            Field::SalesProfit => ("sales_profit", "Sales × profit class", "销售利润分类"),
            Field::PriceValue => ("price_value", "Price × value class", "价格价值分类"),
        }
    }

    /// Headers this field goes by, folded (see [`fold`]); its labels count too.
    fn synonyms(self) -> &'static [&'static str] {
        match self {
            Field::Key => &[
                "客户编号",
                "客户代码",
                "客户编码",
                "编号",
                "客户id",
                "id",
                "key",
                "customerid",
                "customerno",
                "customernumber",
                "accountid",
                "accountnumber",
                "clientnumber",
            ],
            Field::Company => &[
                "公司名称",
                "公司",
                "客户名称",
                "客户",
                "企业名称",
                "企业",
                "单位名称",
                "单位",
                "company",
                "companyname",
                "customer",
                "customername",
                "account",
                "accountname",
                "client",
                "clientname",
                "organization",
                "organisation",
            ],
            Field::Industry => &["行业", "所属行业", "industry", "sector"],
            Field::Region => &[
                "地区",
                "区域",
                "城市",
                "省份",
                "所在地",
                "所在地区",
                "region",
                "city",
                "area",
                "location",
                "province",
            ],
            Field::Website => &["网站", "网址", "官网", "website", "url", "web", "homepage"],
            Field::BusinessScope => &[
                "经营范围",
                "主营业务",
                "业务范围",
                "主营",
                "businessscope",
                "scope",
                "mainbusiness",
            ],
            Field::SalesScale => &[
                "销售规模",
                "营业额",
                "年销售额",
                "年营业额",
                "规模",
                "salesscale",
                "revenue",
                "annualrevenue",
                "turnover",
            ],
            Field::Headcount => &[
                "员工人数",
                "人数",
                "员工数",
                "人员规模",
                "headcount",
                "employees",
                "staff",
                "numberofemployees",
            ],
            Field::Owner => &[
                "负责人",
                "销售",
                "销售代表",
                "客户代表",
                "业务员",
                "所属销售",
                "客户经理",
                "owner",
                "rep",
                "salesrep",
                "accountowner",
                "assignedto",
                "salesperson",
            ],
            Field::TargetType => &[
                "客户类型",
                "客户类别",
                "targettype",
                "customertype",
                "clienttype",
            ],
            Field::ContactName => &[
                "联系人",
                "联系人姓名",
                "姓名",
                "contact",
                "contactname",
                "contactperson",
            ],
            Field::ContactTitle => &["职务", "职位", "头衔", "title", "jobtitle", "position"],
            Field::ContactDepartment => &["部门", "所属部门", "department", "dept"],
            Field::ContactPhone => &[
                "电话",
                "手机",
                "联系电话",
                "手机号",
                "手机号码",
                "电话号码",
                "联系方式",
                "phone",
                "mobile",
                "tel",
                "telephone",
                "phonenumber",
                "mobilephone",
            ],
            Field::ContactEmail => &["邮箱", "电子邮件", "电子邮箱", "邮件", "email", "mail"],
            Field::ContactRole => &["决策角色", "角色", "role", "decisionrole", "buyingrole"],
            Field::DealTitle => &[
                "项目",
                "项目名称",
                "商机",
                "商机名称",
                "销售机会",
                "deal",
                "dealname",
                "opportunity",
                "opportunityname",
                "project",
            ],
            Field::Stage => &[
                "阶段",
                "销售阶段",
                "商机阶段",
                "项目阶段",
                "stage",
                "salesstage",
                "dealstage",
            ],
            Field::DealValue => &[
                "金额",
                "预计金额",
                "合同金额",
                "商机金额",
                "项目金额",
                "amount",
                "value",
                "dealvalue",
                "dealamount",
            ],
            Field::ExpectedClose => &[
                "预计成交日期",
                "预计签约日期",
                "预计成交",
                "预计签约",
                "成交日期",
                "expectedclose",
                "closedate",
                "expectedclosedate",
            ],
            Field::NextAction => &[
                "下一步",
                "下一步行动",
                "跟进事项",
                "下次跟进内容",
                "跟进内容",
                "nextstep",
                "nextaction",
                "followup",
            ],
            Field::NextDue => &[
                "下次跟进",
                "跟进日期",
                "下次跟进日期",
                "下次联系",
                "下次联系日期",
                "nextdue",
                "followupdate",
                "nextfollowup",
                "duedate",
                "nextcontact",
            ],
            Field::SalesProfit => &[
                "销售利润分类",
                "利润分类",
                "salesprofit",
                "salesprofitclass",
            ],
            Field::PriceValue => &["价格价值分类", "客户性质", "pricevalue", "pricevalueclass"],
        }
    }

    fn goes_by(self, folded: &str) -> bool {
        self.synonyms().contains(&folded)
            || fold(self.label_en()) == folded
            || fold(self.label_zh()) == folded
            || self.word().replace('_', "") == folded
    }
}

impl std::str::FromStr for Field {
    type Err = String;
    fn from_str(s: &str) -> Result<Field, String> {
        let folded = fold(s);
        Field::ALL
            .iter()
            .copied()
            .find(|f| f.word() == s || f.goes_by(&folded))
            .ok_or_else(|| {
                let words: Vec<&str> = Field::ALL.iter().map(|f| f.word()).collect();
                format!(
                    "no field is called {s:?}; the fields are {}",
                    words.join(", ")
                )
            })
    }
}

/// How a file's columns are read: which field each header fills, and what the words in its
/// vocabulary columns (stage, decision role, classifications) mean where they are not the
/// method's own. Saved as JSON and used again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mapping {
    /// Header as written in the file → field. Columns not named are left out.
    pub columns: BTreeMap<String, Field>,
    /// Field → (a cell's text → the method's word), e.g. stage: 意向客户 → interest.
    pub values: BTreeMap<Field, BTreeMap<String, String>>,
}

impl Mapping {
    /// The mapping these headers suggest: each header that goes by a field's name fills it
    /// (the first such column, when several do); otherwise one whose header contains a
    /// field's name, the longest name first; the rest are left out.
    pub fn suggest(headers: &[String]) -> Mapping {
        let mut taken = Vec::new();
        let mut columns = BTreeMap::new();
        let folded: Vec<String> = headers.iter().map(|h| fold(h)).collect();
        for (header, f) in headers.iter().zip(&folded) {
            if let Some(field) = Field::ALL
                .iter()
                .copied()
                .find(|field| !taken.contains(field) && field.goes_by(f))
            {
                taken.push(field);
                columns.insert(header.clone(), field);
            }
        }
        for (header, f) in headers.iter().zip(&folded) {
            if columns.contains_key(header) || f.is_empty() {
                continue;
            }
            let best = Field::ALL
                .iter()
                .copied()
                .filter(|field| !taken.contains(field))
                .flat_map(|field| {
                    field
                        .synonyms()
                        .iter()
                        .filter(|s| s.chars().count() >= 2 && f.contains(*s))
                        .map(move |s| (s.chars().count(), field))
                })
                .max_by_key(|(len, _)| *len);
            if let Some((_, field)) = best {
                taken.push(field);
                columns.insert(header.clone(), field);
            }
        }
        Mapping {
            columns,
            values: BTreeMap::new(),
        }
    }

    /// The index of the column that fills `field`, among `headers`.
    pub fn column(&self, headers: &[String], field: Field) -> Option<usize> {
        headers
            .iter()
            .position(|h| self.columns.get(h) == Some(&field))
    }
}
