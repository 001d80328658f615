//! The `fieldbook` binary as a script would drive it.

use std::path::Path;
use std::process::{Command, Output};

fn fieldbook(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fieldbook"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("FIELDBOOK_TODAY", "2026-11-23")
        .env(
            "FIELDBOOK_KEY_FILE",
            fieldbook_app::secrets::key_file_beside(dir),
        )
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = fieldbook(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut with = vec!["--json"];
    with.extend_from_slice(args);
    serde_json::from_str(&ok(dir, &with)).unwrap()
}

#[test]
fn a_script_records_and_reads_back_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let id = json(
        dir.path(),
        &["new", "--name", "Acme", "--set", "profile.region=杭州"],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let person = ok(
        dir.path(),
        &[
            "add",
            &id,
            "people",
            "name=Ann",
            "roles=decider,buyer",
            "coach=true",
        ],
    );
    ok(
        dir.path(),
        &[
            "meeting",
            &id,
            "--with",
            &person,
            "--notes",
            "培训需求",
            "--next-step",
            "call",
            "--due",
            "2026-11-20",
        ],
    );
    let rows = json(dir.path(), &["list", "--overdue"]);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["name"], "Acme");
    let todo = json(dir.path(), &["todo", "--overdue"]);
    assert_eq!(todo[0]["action"], "call");
    assert_eq!(todo[0]["dossier_name"], "Acme");
    let hits = json(dir.path(), &["search", "培训"]);
    assert_eq!(hits[0]["id"], id.as_str());
    let view = json(dir.path(), &["show", &id]);
    assert_eq!(
        view["dossier"]["people"][&person]["roles"],
        serde_json::json!(["buyer", "decider"])
    );
    let fields = json(dir.path(), &["fields", "deals.*.checklist"]);
    assert!(fields.get("question").is_some());
}

#[test]
fn bad_input_exits_non_zero_with_a_message_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let id = ok(dir.path(), &["new", "--name", "Acme"]);
    let before = ok(dir.path(), &["--json", "show", &id]);
    for args in [
        vec!["set", id.as_str(), "profile.headcount=lots"],
        vec!["add", id.as_str(), "follow_ups", "due=2026-02-30"],
        vec!["show", "no-such-dossier"],
        vec!["list", "--stage", "winning"],
        vec!["set", id.as_str(), "noequals"],
    ] {
        let out = fieldbook(dir.path(), &args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "{args:?}: {err}");
    }
    assert_eq!(ok(dir.path(), &["--json", "show", &id]), before);
}

#[test]
fn a_damaged_store_file_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fieldbook.sqlite");
    std::fs::write(&file, b"this is not a database, it is a shopping list").unwrap();
    let out = fieldbook(dir.path(), &["list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("damaged or not a Fieldbook store"), "{err}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"this is not a database, it is a shopping list"
    );
}

#[test]
fn a_reader_that_goes_away_early_loses_nothing_and_is_no_error() {
    // `fieldbook new … | head -1` style: the pipe's reading end is closed before anything is
    // written. The dossier must still be saved, and the command must not panic.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fieldbook"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--json", "new", "--name", "Closed Pipe Ltd"])
        .env(
            "FIELDBOOK_KEY_FILE",
            fieldbook_app::secrets::key_file_beside(dir.path()),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(ok(dir.path(), &["list"]).contains("Closed Pipe Ltd"));
}

/// A client list exported from an old system, as Chinese Excel saves CSV: GBK.
fn gbk_csv(path: &Path, text: &str) {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_client_list_in_gbk_is_imported_once_whatever_how_often() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let list = dir.path().join("客户.csv");
    gbk_csv(
        &list,
        "客户编号,公司名称,联系人,手机,阶段,下一步,下次跟进日期,备注\n\
         C001,华东重工,王总,13800000001,意向,送方案,2026/12/01,老客户\n\
         C002,Acme Co.,Ann,13900000002,评价,,,\n\
         C002,Acme Co.,Bob,13900000003,,,,\n",
    );
    let list = list.to_str().unwrap();

    // A word of the old system the method does not know: the whole file is refused, with the
    // row and column, and nothing is written.
    let out = fieldbook(&data, &["import", list]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(errors.contains("GBK/GB18030"), "{errors}");
    assert!(said.contains("row 2, column \"阶段\""), "{said}");
    assert!(errors.contains("nothing was imported"), "{errors}");
    assert_eq!(json(&data, &["list"]).as_array().unwrap().len(), 0);

    // Told what 意向 means, a dry run says what each row would do and writes nothing.
    let mapping = dir.path().join("mapping.json");
    let plan = json(
        &data,
        &[
            "import",
            list,
            "--dry-run",
            "--value",
            "stage:意向=interest",
            "--save-mapping",
            mapping.to_str().unwrap(),
        ],
    );
    let actions: Vec<&str> = plan["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "create", "update"], "{plan}");
    assert_eq!(plan["new_dossiers"], 2);
    assert_eq!(
        json(&data, &["list"]).as_array().unwrap().len(),
        0,
        "dry run"
    );

    // Imported with the saved mapping: two dossiers, Acme with both its contacts.
    let done = json(
        &data,
        &["import", list, "--mapping", mapping.to_str().unwrap()],
    );
    assert_eq!(done["new_dossiers"], 2, "{done}");
    let listed = json(&data, &["list"]);
    let acme = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "Acme Co.")
        .unwrap();
    assert_eq!(acme["people"], 2);
    assert_eq!(acme["client_number"], "C002");
    let shown = json(&data, &["show", acme["id"].as_str().unwrap()]);
    let me = std::env::var("USER").unwrap_or_else(|_| "me".into());
    assert_eq!(
        shown["dossier"]["profile"]["owner"],
        me.as_str(),
        "new dossiers are mine"
    );

    // The same file again: nothing new, nothing changed.
    let again = json(
        &data,
        &["import", list, "--mapping", mapping.to_str().unwrap()],
    );
    assert_eq!(
        (
            again["new_dossiers"].as_u64(),
            again["changed_dossiers"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert!(
        again["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "unchanged"),
        "{again}"
    );
    assert_eq!(json(&data, &["list"]).as_array().unwrap().len(), 2);
}

#[test]
fn a_workbook_is_imported_with_its_dates_and_numbers_as_people_see_them() {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("clients.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet().set_name("客户").unwrap();
    for (col, header) in [
        "Company",
        "Contact",
        "Stage",
        "Amount",
        "Next step",
        "Follow-up date",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(0, col as u16, *header).unwrap();
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    sheet.write_string(1, 0, "华东重工").unwrap();
    sheet.write_string(1, 1, "王总").unwrap();
    sheet.write_string(1, 2, "Negotiation").unwrap();
    sheet.write_number(1, 3, 120000.0).unwrap();
    sheet.write_string(1, 4, "签合同").unwrap();
    sheet
        .write_datetime_with_format(1, 5, ExcelDateTime::from_ymd(2026, 12, 3).unwrap(), &date)
        .unwrap();
    book.save(&path).unwrap();

    let done = json(
        &data,
        &[
            "import",
            path.to_str().unwrap(),
            "--sheet",
            "客户",
            "--owner",
            "wang",
        ],
    );
    assert_eq!(done["read_as"], "workbook, sheet \"客户\"");
    assert_eq!(done["new_dossiers"], 1, "{done}");
    let listed = json(&data, &["list"]);
    let row = &listed[0];
    assert_eq!(row["owner"], "wang");
    assert_eq!(row["open_value"], 120000);
    assert_eq!(row["next_follow_up"], "2026-12-03");
    assert_eq!(row["lead_stage"], "negotiation");

    let out = fieldbook(
        &data,
        &["import", path.to_str().unwrap(), "--sheet", "Sheet9"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("its sheets are 客户"));
}

#[test]
fn a_dossier_is_named_by_its_company_and_shown_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let heavy = ok(
        d,
        &[
            "new",
            "--name",
            "华东重工",
            "--set",
            "profile.business_scope=铸造、机加工",
        ],
    );
    let electric = ok(d, &["new", "--name", "华东电气"]);
    // By its name, spacing aside.
    ok(
        d,
        &[
            "add",
            "华东 重工",
            "people",
            "name=王总",
            "phone=13800000001",
        ],
    );
    let shown = ok(d, &["show", "华东重工"]);
    assert!(shown.contains(&heavy), "{shown}");
    assert!(shown.contains("business scope: 铸造、机加工"), "{shown}");
    assert!(
        shown.contains("王总") && shown.contains("13800000001"),
        "{shown}"
    );
    // By a part only one name holds.
    assert!(ok(d, &["show", "电气"]).contains(&electric));
    // A part two names hold: both named, nothing guessed.
    let out = fieldbook(d, &["show", "华东"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("names 2 dossiers"), "{err}");
    let out = fieldbook(d, &["show", "不存在"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no dossier has the id or name"));
}

#[test]
fn the_list_as_filtered_goes_to_a_spreadsheet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let late = ok(&d, &["new", "--name", "华东重工"]);
    ok(
        &d,
        &[
            "add",
            &late,
            "deals",
            "title=培训",
            "stage=evaluation",
            "value=120000",
        ],
    );
    ok(
        &d,
        &["add", &late, "follow_ups", "due=2026-11-01", "action=回访"],
    );
    ok(&d, &["new", "--name", "Acme"]);

    // Only what the filter shows, in Chinese, as Excel opens CSV.
    let csv = dir.path().join("overdue.csv");
    ok(&d, &["list", "--overdue", "--out", csv.to_str().unwrap()]);
    let bytes = std::fs::read(&csv).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "a BOM for Excel");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("公司名称,客户编号,负责人"), "{text}");
    assert!(
        lines[1].starts_with("华东重工,") && lines[1].contains(",评价,"),
        "{text}"
    );

    // Everything, in English, as a workbook with numbers as numbers; read back as an import
    // reads it.
    let xlsx = dir.path().join("all.xlsx");
    ok(
        &d,
        &["list", "--out", xlsx.to_str().unwrap(), "--lang", "en"],
    );
    let read = fieldbook_app::import::read_table(&xlsx, Some("Clients")).unwrap();
    assert_eq!(read.table.headers[0], "Company");
    assert_eq!(read.table.rows.len(), 2);
    let heavy = read.table.rows.iter().find(|r| r[0] == "华东重工").unwrap();
    assert_eq!(heavy[5], "Evaluation");
    assert_eq!(heavy[8], "120000");
    assert!(fieldbook(&d, &["list", "--out", "x.pdf"]).status.code() != Some(0));
}
