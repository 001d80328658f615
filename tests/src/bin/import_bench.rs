//! How long a team's client list takes to import (issue: bring a team's clients in; target:
//! 10,000 rows in ≤ 10 s). A synthetic list of N rows (company, client number, a contact
//! with phone, email and decision roles, a deal with stage and amount, the next step, the
//! rep), written as UTF-8 CSV, GBK CSV and .xlsx; each imported into a fresh encrypted
//! device store (read, plan, one batch), then imported again (every row matched, nothing
//! written). Beside it, as the reference for what writing costs, the same dossiers created
//! through the engine's bulk load (`create_many`, which also indexes their text at once).
//!
//!   cargo run --release -p fieldbook-tests --bin import-bench -- --rows 1000,10000 --runs 3

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use fieldbook_app::Engine;
use fieldbook_app::clock::FixedClock;
use fieldbook_app::import::read_table;
use fieldbook_app::secrets::Secrets;
use fieldbook_shared::Dossier;
use fieldbook_shared::import::{Mapping, read_rows};

#[derive(Parser)]
struct Args {
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    rows: Vec<usize>,
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

const HEADERS: &[&str] = &[
    "客户编号",
    "公司名称",
    "行业",
    "地区",
    "联系人",
    "职务",
    "手机",
    "邮箱",
    "决策角色",
    "商机",
    "阶段",
    "金额",
    "下一步",
    "下次跟进日期",
    "负责人",
];
const STAGES: &[&str] = &["知晓", "兴趣", "评价", "谈判", "签约", "丢单"];

fn row(i: usize) -> Vec<String> {
    vec![
        format!("C{i:06}"),
        format!("华东第{i}机械有限公司"),
        "制造".into(),
        ["杭州", "上海", "南京"][i % 3].into(),
        format!("联系人{i}"),
        "采购经理".into(),
        format!("138{i:08}"),
        format!("c{i}@example.cn"),
        "决策者、使用者".into(),
        format!("培训项目{}", i % 7),
        STAGES[i % STAGES.len()].into(),
        format!("{}万", 1 + i % 500),
        "拜访".into(),
        format!("2026-12-{:02}", 1 + i % 28),
        format!("rep{}", i % 20),
    ]
}

fn write_files(dir: &Path, n: usize) -> Result<Vec<(&'static str, std::path::PathBuf)>> {
    let mut text = HEADERS.join(",") + "\n";
    for i in 0..n {
        text.push_str(&row(i).join(","));
        text.push('\n');
    }
    let utf8 = dir.join(format!("list-{n}.csv"));
    std::fs::write(&utf8, &text)?;
    let gbk = dir.join(format!("list-{n}-gbk.csv"));
    std::fs::write(&gbk, encoding_rs::GBK.encode(&text).0)?;
    let xlsx = dir.join(format!("list-{n}.xlsx"));
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h)?;
    }
    for i in 0..n {
        for (c, cell) in row(i).iter().enumerate() {
            sheet.write_string(i as u32 + 1, c as u16, cell)?;
        }
    }
    book.save(&xlsx)?;
    Ok(vec![("CSV UTF-8", utf8), ("CSV GBK", gbk), ("xlsx", xlsx)])
}

fn engine(dir: &Path) -> Result<Engine> {
    let clock = Arc::new(FixedClock::at("2026-11-23".parse()?));
    Ok(Engine::open(dir, &Secrets::key_file_beside(dir), clock)?)
}

/// Read, plan and write `file` into `engine`; the time and the dossiers made and changed.
fn import(engine: &mut Engine, file: &Path) -> Result<(Duration, (usize, usize))> {
    let started = Instant::now();
    let read = read_table(file, None)?;
    let mapping = Mapping::suggest(&read.table.headers);
    let plan = engine.plan_import(&read.table, &mapping, None)?;
    let counts = engine.import(plan)?;
    Ok((started.elapsed(), counts))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;
    println!(
        "| rows | file | import p50 | import again (all matched) p50 | reference: same dossiers via create_many p50 | import ÷ reference | ≤ 10 s at 10,000 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &n in &args.rows {
        let files = write_files(scratch.path(), n)?;
        // The reference's dossiers: the rows applied as the import does, untimed.
        let table = read_table(&files[0].1, None)?.table;
        let (rows, errors) = read_rows(&table, &Mapping::suggest(&table.headers));
        anyhow::ensure!(errors.is_empty(), "the synthetic list reads: {errors:?}");
        let dossiers: Vec<(String, Dossier)> = rows
            .iter()
            .map(|r| {
                let mut d = Dossier::default();
                r.apply(&mut d, &mut fieldbook_app::engine::new_id);
                (fieldbook_app::engine::new_id(), d)
            })
            .collect();
        let mut reference = Vec::new();
        for run in 0..args.runs {
            let dir = scratch.path().join(format!("ref-{n}-{run}"));
            let mut e = engine(&dir)?;
            let started = Instant::now();
            e.create_many(&dossiers)?;
            reference.push(started.elapsed());
        }
        let reference = median(reference);
        for (label, file) in &files {
            let (mut first, mut again) = (Vec::new(), Vec::new());
            for run in 0..args.runs {
                let dir = scratch.path().join(format!("{n}-{label}-{run}"));
                let mut e = engine(&dir)?;
                let (t, counts) = import(&mut e, file)?;
                anyhow::ensure!(counts == (n, 0), "{label}: made {counts:?}");
                first.push(t);
                let (t, counts) = import(&mut e, file)?;
                anyhow::ensure!(counts == (0, 0), "{label} again: made {counts:?}");
                again.push(t);
            }
            let (first, again) = (median(first), median(again));
            println!(
                "| {n} | {label} | {} | {} | {} | {:.2}× | {} |",
                ms(first),
                ms(again),
                ms(reference),
                first.as_secs_f64() / reference.as_secs_f64(),
                if n < 10_000 {
                    "—".to_string()
                } else if first.max(again) <= Duration::from_secs(10) {
                    "met".into()
                } else {
                    "**no**".into()
                }
            );
        }
    }
    Ok(())
}
