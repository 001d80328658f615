//! The UI's words in both languages. Keys are an enum, so a missing or misspelt text is a
//! compile error rather than an empty label. Vocabulary words (stages, roles…) carry their own
//! labels in `fieldbook_shared::vocab`.

use fieldbook_shared::api::Lang;

macro_rules! texts {
    ($($key:ident => $en:literal, $zh:literal;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum T { $($key,)+ }
        impl T {
            pub fn get(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((T::$key, Lang::En) => $en, (T::$key, Lang::Zh) => $zh,)+
                }
            }
        }
    };
}

texts! {
    AppName => "Fieldbook", "客户档案";
    ChooseLanguage => "Choose a language", "选择语言";
    Remove => "Remove", "删除";
    Removed => "Removed.", "已删除。";
    Undo => "Undo", "撤销";
    Welcome => "Your client dossiers, on this device, with or without signal.", "客户档案存在本机，有没有信号都能用。";
    JoinTeam => "Join your team", "加入团队";
    RelayUrl => "Relay address", "同步服务器地址";
    InviteCode => "Invite code", "邀请码";
    Join => "Join", "加入";
    WorkOffline => "Work offline for now", "先离线使用";
    Search => "Search clients, people, notes…", "搜索客户、联系人、记录…";
    AnyBand => "Any funnel band", "全部漏斗位置";
    AnyStage => "Any stage", "全部阶段";
    Overdue => "Overdue follow-ups", "跟进已逾期";
    QuietFor => "Not contacted for (days)", "未联系天数";
    Clients => "clients", "个客户";
    More => "Show more", "显示更多";
    NewClient => "New client", "新建客户";
    RecordMeeting => "Record a meeting", "记录会谈";
    Back => "Back", "返回";
    Create => "Create", "创建";
    Cancel => "Cancel", "取消";
    Name => "Name", "名称";
    Industry => "Industry", "行业";
    Region => "Region", "地区";
    Website => "Website", "网址";
    BusinessScope => "Business scope", "经营范围";
    SalesScale => "Sales scale", "销售规模";
    Headcount => "Headcount", "员工人数";
    OrgStructure => "Organisation", "组织结构";
    Brand => "Brand", "品牌知名度";
    TargetType => "Target type", "客户类型";
    Owner => "Owner", "负责人";
    SharedWith => "Shared with (user names, comma-separated)", "共享给（用户名，逗号分隔）";
    PriceRange => "Price range", "采购价格区间";
    ServiceExpectations => "Service expectations", "服务期望";
    SelectionCriteria => "Selection criteria", "选择标准";
    Profile => "Profile", "客户概况";
    People => "People and the decision chain", "关键人与决策链";
    Title => "Title", "职务";
    Department => "Department", "部门";
    Phone => "Phone", "电话";
    Email => "Email", "邮箱";
    Roles => "Decision roles", "决策角色";
    Coach => "Coach (inside contact)", "内线/教练";
    ReportsTo => "Reports to", "汇报给";
    Nobody => "—", "—";
    Personality => "Personality", "性格";
    Mood => "Mood", "心态";
    Relationship => "Relationship (1–5)", "关系（1–5）";
    LeftOn => "Left the company on", "离职日期";
    Notes => "Notes", "备注";
    AddPerson => "Add person", "添加关键人";
    Interactions => "Interactions", "接触记录";
    Learned => "What was learned", "了解到的信息";
    Demand => "Demand", "需求";
    Problem => "Problems", "相关问题";
    BenefitPoints => "Benefit points", "利益点";
    KeyPersonInfo => "Key-person info", "关键人信息";
    NextStep => "Next step", "下一步";
    Due => "Due", "截止";
    Date => "Date", "日期";
    OpenedOn => "Opened", "提出日期";
    Today => "Today", "今天";
    Tomorrow => "Tomorrow", "明天";
    InAWeek => "In a week", "一周后";
    Deals => "Deals", "商机";
    AddDeal => "Add deal", "添加商机";
    Stage => "Stage", "阶段";
    Probability => "Win probability %", "赢单概率 %";
    Value => "Value", "金额";
    ExpectedClose => "Expected close", "预计签约";
    Checklist => "Information checklist", "信息清单";
    Question => "Question", "问题";
    Answer => "Answer", "答案";
    AddQuestion => "Add question", "添加问题";
    FollowUps => "Follow-ups", "跟进事项";
    AddFollowUp => "Add follow-up", "添加跟进";
    Action => "Action", "事项";
    Kind => "Kind", "方式";
    Contracts => "Contracts", "合同";
    AddContract => "Add contract", "添加合同";
    SignedOn => "Signed on", "签约日期";
    Payment => "Payment", "回款";
    Collected => "Collected", "已回款金额";
    Promised => "What we promised", "承诺内容";
    Reviewed => "Fulfilment review on", "回访日期";
    Complaints => "Complaints", "客诉";
    AddComplaint => "Add complaint", "添加客诉";
    WhatHappened => "What happened", "问题描述";
    Severity => "Severity", "严重程度";
    Escalated => "Escalated on", "升级日期";
    StepEmotion => "1. Emotion acknowledged", "1. 情绪认同";
    StepFacts => "2. Facts clarified", "2. 事实澄清";
    StepSolution => "3. Solution agreed", "3. 方案讨论";
    StepExecution => "4. Execution tracked", "4. 执行跟踪";
    Solution => "Solution", "解决方案";
    Closed => "Closed on", "关闭日期";
    Classification => "Classification", "客户分类";
    SalesProfit => "Sales × profit", "销售额 × 利润";
    PriceValue => "Price × value", "价格 × 价值";
    FiveA => "5A criteria", "5A 标准";
    ARevenue => "Revenue", "销售额";
    AProfit => "Profit", "利润";
    AIntegrity => "Fulfilment integrity", "履约诚信";
    ARevenuePerHead => "Revenue per head", "人均销售额";
    ADifficulty => "Ease of doing business", "合作难度";
    Tier => "Tier", "等级";
    AccountPlan => "Account plan", "客户计划";
    Goals => "Goals", "目标";
    Strategy => "Strategy", "策略";
    Sponsor => "Executive sponsor", "高层支持者";
    Conflicts => "Edited on two devices at once — pick one", "两台设备同时修改了这些内容，请选择";
    Keep => "Keep this", "保留此项";
    History => "History", "修改历史";
    Close => "Close", "关闭";
    NoHistory => "No changes recorded.", "没有修改记录。";
    Client => "Client", "客户";
    PickClient => "Find the client…", "查找客户…";
    WhoWasThere => "Who was there", "参加人员";
    Save => "Save", "保存";
    Saving => "Saving…", "保存中…";
    Saved => "Saved", "已保存";
    Offline => "Offline", "离线";
    NotEnrolled => "Not syncing (offline only)", "未同步（仅离线）";
    Connecting => "Connecting…", "连接中…";
    Synced => "Synced", "已同步";
    Syncing => "Syncing", "同步中";
    Waiting => "changes waiting", "项修改待发送";
    LastSync => "last sync", "上次同步";
    Never => "never", "从未";
    RetryIn => "retry in", "重试于";
    NoClients => "No clients match.", "没有符合条件的客户。";
    NextFollowUp => "Next follow-up", "下次跟进";
    LastContact => "Last contact", "上次联系";
    Team => "Team", "团队";
    Pipeline => "Pipeline", "销售漏斗";
    Rep => "Rep", "客户代表";
    TeamTotal => "Team", "团队合计";
    OpenDeals => "Open deals", "进行中商机";
    OpenValue => "Open value", "商机金额";
    Weighted => "Weighted", "加权金额";
    ByStage => "Deals by stage (value)", "各阶段商机（金额）";
    Funnel => "Funnel (open deals)", "漏斗（进行中商机）";
    WorkOrder => "Work order", "工作顺序";
    WorkBottom => "Close the bottom of the funnel first", "先签下漏斗底部的单";
    WorkTop => "Then keep time for new prospects", "再留出时间开发新客户";
    WorkMiddle => "Then follow the middle", "然后跟进漏斗中部";
    CloseFirst => "To close first", "优先签约";
    Activity => "Interactions per week", "每周接触次数";
    WeekOf => "Week of", "周一";
    PerRep => "Each rep's interactions", "各代表的接触次数";
    ByKind => "By kind:", "按方式：";
    QuietClients => "Clients not contacted for", "未联系的客户：超过";
    Days => "days", "天";
    FrequentProspects => "Small first-time prospects contacted more than once a month", "一个月内联系超过一次的小型首次购买者";
    ContactsIn30 => "contacts in 30 days", "次（30天内）";
    OverdueByRep => "Overdue follow-ups by rep, oldest first", "各代表的逾期跟进（最早的在前）";
    DaysOverdue => "days overdue", "天逾期";
    DayOverdue => "day overdue", "天逾期";
    OpenComplaints => "Open complaints, escalated first", "未关闭的客诉（已升级的在前）";
    StepsDone => "Steps done", "已完成步骤";
    EscalatedTag => "escalated", "已升级";
    Age => "Age (days)", "天数";
    ReviewsDue => "Fulfilment reviews due", "待做的履约回访";
    DaysSinceSigned => "days since signed", "签约后天数";
    Freshness => "How fresh each rep's data is", "各代表数据的新鲜度";
    Stale => "stale", "数据可能不全";
    Fresh => "up to date", "已同步";
    StaleReps => "Reps with stale data", "数据不全的代表";
    Device => "Device", "设备";
    NotClassified => "Not classified", "未分类";
    ClientsTotal => "Clients", "客户数";
    AsOf => "as reported at", "报告时间";
    ShownOf => "shown of", "条，共";
    Notes2 => "Manager's notes", "经理批注";
    Comment => "Comment", "批注";
    AssignTo => "Assign a follow-up to", "指派跟进给";
    AddNote => "Add note", "添加批注";
    CommentOnly => "(nobody: a comment only)", "（不指派，只写批注）";
    LogIn => "Log in", "登录";
    LoginLead => "The team's merged dossiers, for managers.", "团队合并后的客户档案，供经理查看。";
    TeamName => "Team", "团队";
    UserName => "User", "用户名";
    Password => "Password", "密码";
    LogOut => "Log out", "退出";
    Revoke => "Revoke", "吊销";
    TeamCa => "The team's own certificate authority (optional)", "团队自建的证书颁发机构（可选）";
    TeamCaHint => "If your admin gave you a CA certificate (ca.pem), paste it here.",
        "如果管理员给了你 CA 证书（ca.pem），请粘贴在这里。";
    RevokeAsk => "Revoke this device? Its token stops working and, as the team's policy says, it wipes its copy.",
        "吊销此设备？其令牌立即失效，并按团队策略清除设备上的数据。";
    RevokeYes => "Yes, revoke", "确认吊销";
    RepsSee => "Reps see", "代表可见";
    SeeTeam => "every dossier of the team", "团队的全部客户档案";
    SeeOwn => "only their own and those shared with them", "仅自己的及共享给自己的档案";
    Language => "中文", "English";
}

/// The other language (the toggle's target).
pub fn other(lang: Lang) -> Lang {
    match lang {
        Lang::Zh => Lang::En,
        Lang::En => Lang::Zh,
    }
}
