//! The `fieldbook` command line: every engine operation, human output by default and `--json`
//! for scripts.

mod import;
mod render;

use std::path::PathBuf;

use crate::secrets::Secrets;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use fieldbook_shared::patch::{Assignment, COLLECTIONS};
use fieldbook_shared::{Day, FollowUpKind, FunnelBand, InteractionKind, Stage};
use serde::Serialize;

use crate::clock::{Clock, FixedClock, SystemClock};
use crate::engine::{Engine, Meeting};
use crate::exchange;
use crate::store::{FollowUpQuery, ListQuery};

#[derive(Parser)]
#[command(
    name = "fieldbook",
    version,
    about = "Client dossiers for account reps, kept on this device and usable offline.",
    long_about = "Client dossiers for account reps, kept on this device and usable offline.\n\n\
        Every change is saved to the local store before the command returns. Fields are \
        addressed by path: `profile.industry`, `people.<id>.title`, `deals.<id>.stage`. \
        Run `fieldbook fields` to see every field of a dossier.",
    after_help = "Examples:\n  \
        fieldbook new --name 华东机械 --set profile.industry=manufacturing\n  \
        fieldbook add <dossier> people name=张伟 title=HR总监 roles=decider,influencer coach=true\n  \
        fieldbook meeting <dossier> --with <person> --notes '谈了培训需求' --next-step 'send proposal' --due 2026-12-01\n  \
        fieldbook list --overdue\n  \
        fieldbook search 培训"
)]
struct Cli {
    /// Folder holding this device's store [default: $XDG_DATA_HOME/fieldbook or
    /// ~/.local/share/fieldbook].
    #[arg(long, global = true, env = "FIELDBOOK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep the store's key (and the device token) in this file, created owner-only when
    /// missing, instead of the OS keystore: for machines without one (a server, a headless box).
    #[arg(long, global = true, env = "FIELDBOOK_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Pretend today is this date (YYYY-MM-DD): what is overdue, and the date of new records.
    #[arg(long, global = true, env = "FIELDBOOK_TODAY")]
    today: Option<Day>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show or set who this device writes as.
    Whoami {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        device: Option<String>,
    },
    /// Create a dossier for a client company.
    New {
        /// The company's name.
        #[arg(long)]
        name: String,
        /// More fields, as path=value (e.g. profile.target_type=competitors_client).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<Assignment>,
    },
    /// Show a dossier (as it is now, or as it was on a date).
    Show {
        /// The dossier: its id, or its company's name (or a part of it no other name holds).
        id: String,
        /// Show the dossier as it stood at the end of this day.
        #[arg(long)]
        as_of: Option<Day>,
    },
    /// Change fields of a dossier: path=value ...
    Set {
        /// The dossier: its id, or its company's name (or a part of it no other name holds).
        id: String,
        #[arg(required = true, value_name = "PATH=VALUE")]
        sets: Vec<Assignment>,
    },
    /// Add an item (a person, interaction, deal, follow-up...) and print its id.
    Add {
        /// The dossier: its id, or its company's name (or a part of it no other name holds).
        id: String,
        /// One of: people, interactions, deals, deals.<deal>.checklist, follow_ups, contracts,
        /// contracts.<contract>.milestones, complaints, account_plan.actions
        collection: String,
        /// The item's fields, relative to it: name=… title=…
        #[arg(value_name = "FIELD=VALUE")]
        sets: Vec<Assignment>,
    },
    /// Delete an item (kept as a tombstone; `restore` brings it back). Without a path,
    /// archive the whole dossier.
    Delete {
        /// The dossier: its id, or its company's name (or a part of it no other name holds).
        id: String,
        /// The item, e.g. people.<person id>; none archives the dossier.
        path: Option<String>,
    },
    /// Undo a delete.
    Restore {
        /// The dossier: its id, or its company's name (or a part of it no other name holds).
        id: String,
        /// The item, e.g. people.<person id>; none restores an archived dossier.
        path: Option<String>,
    },
    /// Record a meeting, call or visit in one go; a next step becomes a follow-up.
    Meeting(MeetingArgs),
    /// List dossiers, what needs doing first first.
    List(ListArgs),
    /// Open follow-ups across every dossier, earliest due first: what to do next.
    Todo {
        /// Only those past their due date.
        #[arg(long)]
        overdue: bool,
        /// Only those assigned to this person.
        #[arg(long)]
        assignee: Option<String>,
        /// Only those in dossiers owned by this rep.
        #[arg(long)]
        owner: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// The manager's team board: pipeline, work order, activity, overdue, complaints, reviews,
    /// classification and each rep's freshness (from this device's replica of the team).
    Board {
        /// "Not contacted for N days".
        #[arg(long, default_value_t = 30)]
        quiet_days: u32,
    },
    /// A manager's note on a dossier, optionally assigning a follow-up to a rep.
    Note {
        /// The dossier: its id, or its company's name (or a part of it no other name holds).
        id: String,
        /// The comment.
        #[arg(long, default_value = "")]
        text: String,
        /// Assign a follow-up to this rep (with --action).
        #[arg(long)]
        rep: Option<String>,
        #[arg(long, default_value = "")]
        action: String,
        #[arg(long)]
        due: Option<Day>,
    },
    /// Full-text search across every dossier (Chinese and English).
    Search {
        text: Vec<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Fields holding different values written concurrently on two devices.
    Conflicts {
        /// The dossier: its id, or its company's name (or a part of it no other name holds).
        id: String,
    },
    /// Settle a conflicting field: pick one of the values shown, or give a new one.
    Resolve {
        /// The dossier: its id, or its company's name (or a part of it no other name holds).
        id: String,
        /// The conflicting field, as listed by `fieldbook conflicts`.
        path: String,
        /// The value to keep.
        value: Option<String>,
        /// Keep the value numbered N in `fieldbook conflicts`.
        #[arg(long, conflicts_with = "value")]
        pick: Option<usize>,
    },
    /// Every change to one field: who, on which device, when.
    History {
        /// The dossier: its id, or its company's name (or a part of it no other name holds).
        id: String,
        /// The field, e.g. deals.<deal id>.stage.
        path: String,
    },
    /// Export dossiers: JSON (content, for people) or Automerge files (with full history).
    Export {
        /// Dossier ids; none with --all.
        ids: Vec<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// File (json) or folder (automerge) to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Import a client list (.csv in UTF-8 or GBK, .xlsx, .xls, .xlsb, .ods): columns mapped
    /// to fields as suggested by their headers (--map, --value, --mapping to change that),
    /// rows matched to dossiers by client number or company, all in one batch or, if any row
    /// cannot be imported, nothing. Or a Fieldbook JSON export, an .automerge file, or a
    /// folder of them: merged with what is here; nothing here is lost.
    Import {
        path: PathBuf,
        #[command(flatten)]
        table: import::TableOptions,
    },
    /// Join a team: enrol this device with its relay using a one-time invite code.
    Enroll {
        /// The relay's address, e.g. https://relay.example.com (http:// only to this machine,
        /// or with --insecure)
        relay: String,
        /// The invite code from the team's admin (XXXXX-XXXXX-XXXXX-XXXXX).
        invite: String,
        /// Trust this private CA's certificate (PEM) at the relay, besides the platform's.
        #[arg(long, env = "FIELDBOOK_CA_FILE")]
        ca_file: Option<PathBuf>,
        /// Allow plain http:// to another machine: the token and dossiers cross the network
        /// unencrypted.
        #[arg(long)]
        insecure: bool,
    },
    /// Sync with the relay: send this device's changes, receive the team's.
    Sync {
        /// Stay connected and keep syncing (reconnecting with backoff) until interrupted.
        #[arg(long)]
        watch: bool,
        /// Give up a one-shot sync after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Sync status: the relay, changes waiting to be sent, the last completed sync.
    Status,
    /// The fields of a dossier or of one kind of item, with their empty values.
    Fields {
        /// A collection: people, interactions, deals, deals.*.checklist, follow_ups, contracts,
        /// contracts.*.milestones, complaints, account_plan.actions.
        collection: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Automerge,
}

#[derive(Args)]
struct MeetingArgs {
    /// The dossier: its id, or its company's name (or a part of it no other name holds).
    id: String,
    /// phone, visit, email, im, trade_show, trial, proposal_presentation, client_visit_us,
    /// reference_site_visit, leader_visit, other (default: visit)
    #[arg(long)]
    kind: Option<InteractionKind>,
    /// Defaults to today.
    #[arg(long)]
    date: Option<Day>,
    /// HH:MM
    #[arg(long, default_value = "")]
    time: String,
    /// Person id of a client person present (repeat).
    #[arg(long = "with")]
    with: Vec<String>,
    /// Name of one of our people present (repeat).
    #[arg(long = "ours")]
    ours: Vec<String>,
    #[arg(long, default_value = "")]
    notes: String,
    /// What they intend to buy.
    #[arg(long, default_value = "")]
    demand: String,
    /// What problem the purchase must solve.
    #[arg(long, default_value = "")]
    problem: String,
    /// How they weigh quality, price and service.
    #[arg(long = "benefit", default_value = "")]
    benefit_points: String,
    /// Who takes part in the decision, what line departments think.
    #[arg(long = "key-person", default_value = "")]
    key_person_info: String,
    #[arg(long = "next-step", default_value = "")]
    next_step: String,
    /// When the next step is due.
    #[arg(long)]
    due: Option<Day>,
    /// trial, trade_show, submit_proposal, reference_site_visit, company_visit, leader_visit,
    /// phone_call, coach_consultation, third_party, other (default: phone_call)
    #[arg(long = "next-kind")]
    next_kind: Option<FollowUpKind>,
    /// The deal this meeting was about.
    #[arg(long)]
    deal: Option<String>,
}

#[derive(Args)]
struct ListArgs {
    #[arg(long)]
    owner: Option<String>,
    /// Only dossiers with a deal at this stage: awareness, interest, evaluation, negotiation,
    /// signed, lost.
    #[arg(long)]
    stage: Option<Stage>,
    /// Only dossiers with an open deal in this funnel band: top (<25%), middle, bottom (>75%).
    #[arg(long)]
    band: Option<FunnelBand>,
    /// Only dossiers with a follow-up past its due date.
    #[arg(long)]
    overdue: bool,
    /// Only dossiers not contacted for this many days.
    #[arg(long, value_name = "DAYS")]
    not_contacted: Option<i64>,
    /// Include archived dossiers.
    #[arg(long)]
    archived: bool,
    /// Only dossiers whose text matches.
    #[arg(long)]
    search: Option<String>,
    /// Rows at most (default: 50 on screen, all with --out).
    #[arg(long)]
    limit: Option<u32>,
    #[arg(long, default_value_t = 0)]
    offset: u32,
    /// Write the list to this file instead, as a spreadsheet opens it: .csv or .xlsx.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The language of the file's headers and words: zh or en.
    #[arg(long, value_enum, default_value_t = SheetLang::Zh)]
    lang: SheetLang,
}

#[derive(Clone, Copy, ValueEnum)]
enum SheetLang {
    Zh,
    En,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Print the chain of causes, skipping any a message above already quotes.
            let mut shown: Vec<String> = Vec::new();
            for cause in e.chain() {
                let text = cause.to_string();
                if !shown.iter().any(|s| s.contains(&text)) {
                    shown.push(text);
                }
            }
            eprintln!("error: {}", shown.join(": "));
            ExitCode::FAILURE
        }
    }
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("fieldbook")
}

struct Out {
    json: bool,
}

impl Out {
    fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            print_line(&serde_json::to_string_pretty(value)?)?;
        } else {
            let text = human();
            if !text.is_empty() {
                print_line(text.trim_end())?;
            }
        }
        Ok(())
    }
}

/// Writes one line to stdout. A reader that has gone away (`fieldbook sync | head -1`) is not
/// an error: the work is done and saved, only the rest of its description has no one to read
/// it. `println!` would panic there instead. Returns whether the line was read.
fn print_line(text: &str) -> std::io::Result<bool> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}

fn run(cli: Cli) -> Result<()> {
    let clock: Arc<dyn Clock> = match cli.today {
        Some(day) => Arc::new(FixedClock::at(day)),
        None => Arc::new(SystemClock),
    };
    let data_dir = cli.data_dir.unwrap_or_else(default_data_dir);
    let out = Out { json: cli.json };
    if let Command::Fields { collection } = &cli.command {
        return fields(&out, collection.as_deref());
    }
    let secrets = Secrets::for_device(&data_dir, cli.key_file.as_deref())?;
    let mut engine = Engine::open(&data_dir, &secrets, clock)
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let today = engine.today();
    match with_ids(&engine, cli.command)? {
        Command::Whoami { user, device } => {
            if user.is_some() || device.is_some() {
                let id = engine.identity().clone();
                engine.set_identity(
                    user.as_deref().unwrap_or(&id.user),
                    device.as_deref().unwrap_or(&id.device),
                )?;
            }
            let id = engine.identity();
            out.emit(id, || {
                format!("{} on {} (device id {})", id.user, id.device, id.device_id)
            })
        }
        Command::New { name, mut sets } => {
            sets.insert(
                0,
                Assignment {
                    path: "profile.name".into(),
                    value: name,
                },
            );
            let id = engine.create_dossier(&sets)?;
            out.emit(&serde_json::json!({ "id": id }), || id.clone())
        }
        Command::Show { id, as_of } => match as_of {
            Some(day) => {
                let Some(d) = engine.as_of(&id, day)? else {
                    bail!("dossier {id} did not exist yet on {day}");
                };
                out.emit(&d, || render::dossier(&id, &d, &[], today))
            }
            None => {
                let view = engine.dossier(&id)?;
                out.emit(&view, || {
                    render::dossier(&id, &view.dossier, &view.conflicts, today)
                })
            }
        },
        Command::Set { id, sets } => {
            let changed = engine.set(&id, &sets)?;
            out.emit(&serde_json::json!({ "changed": changed }), || {
                if changed { "saved" } else { "no change" }.into()
            })
        }
        Command::Add {
            id,
            collection,
            sets,
        } => {
            let item = engine.add_item(&id, &collection, &sets)?;
            out.emit(&serde_json::json!({ "id": item }), || item.clone())
        }
        Command::Delete { id, path } => {
            engine.delete(&id, path.as_deref().unwrap_or(""))?;
            out.emit(&serde_json::json!({ "deleted": true }), || {
                "deleted (restore brings it back)".into()
            })
        }
        Command::Restore { id, path } => {
            engine.restore(&id, path.as_deref().unwrap_or(""))?;
            out.emit(&serde_json::json!({ "restored": true }), || {
                "restored".into()
            })
        }
        Command::Meeting(m) => {
            let meeting = Meeting {
                date: m.date,
                time: m.time,
                kind: m.kind,
                client_participants: m.with,
                our_participants: m.ours,
                notes: m.notes,
                demand: m.demand,
                problem: m.problem,
                benefit_points: m.benefit_points,
                key_person_info: m.key_person_info,
                next_step: m.next_step,
                next_step_due: m.due,
                next_step_kind: m.next_kind,
                deal: m.deal,
            };
            let recorded = engine.record_meeting(&m.id, &meeting)?;
            out.emit(&recorded, || match &recorded.follow_up {
                Some(f) => format!(
                    "interaction {}\nfollow-up {} due {}",
                    recorded.interaction,
                    f,
                    meeting
                        .next_step_due
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                ),
                None => format!("interaction {}", recorded.interaction),
            })
        }
        Command::List(a) => {
            let query = ListQuery {
                owner: a.owner,
                stage: a.stage,
                band: a.band,
                overdue_on: a.overdue.then_some(today),
                not_contacted_since: a.not_contacted.map(|n| today.plus_days(-n)),
                include_archived: a.archived,
                text: a.search,
                limit: a.limit.or(if a.out.is_some() { None } else { Some(50) }),
                offset: a.offset,
            };
            let rows = engine.list(&query)?;
            if let Some(path) = &a.out {
                let lang = match a.lang {
                    SheetLang::Zh => fieldbook_shared::api::Lang::Zh,
                    SheetLang::En => fieldbook_shared::api::Lang::En,
                };
                let sheet = fieldbook_shared::sheet::dossier_list(&rows, lang);
                crate::sheet_file::write_sheet(&sheet, path)?;
                return out.emit(
                    &serde_json::json!({ "written": rows.len(), "file": path.display().to_string() }),
                    || format!("{} written to {}", render::count(rows.len(), "dossier"), path.display()),
                );
            }
            out.emit(&rows, || render::list(&rows, today))
        }
        Command::Todo {
            overdue,
            assignee,
            owner,
            limit,
        } => {
            let rows = engine.follow_ups(&FollowUpQuery {
                assignee_name: assignee,
                due_before: overdue.then_some(today),
                owner,
                limit: Some(limit),
            })?;
            out.emit(&rows, || render::todo(&rows, today))
        }
        Command::Board { quiet_days } => {
            use crate::service::{AppService, Serve};
            let board = AppService::new(engine)
                .serve(fieldbook_shared::api::GetDashboard {
                    quiet_days: Some(quiet_days),
                })
                .map_err(|e| anyhow::anyhow!(e.message))?;
            out.emit(&board, || render::board(&board))
        }
        Command::Note {
            id,
            text,
            rep,
            action,
            due,
        } => {
            let note = fieldbook_shared::board::ManagerNote {
                text,
                rep,
                action,
                due,
                kind: None,
            };
            engine.add_note(&id, &note)?;
            out.emit(&id, || format!("note added to {id}"))
        }
        Command::Search { text, limit } => {
            let hits = engine.search(&text.join(" "), limit)?;
            out.emit(&hits, || {
                hits.iter()
                    .map(|h| format!("{}  {}\n    {}", h.id, h.name, h.snippet))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Conflicts { id } => {
            let conflicts = engine.conflicts(&id)?;
            out.emit(&conflicts, || render::conflicts(&conflicts))
        }
        Command::Resolve {
            id,
            path,
            value,
            pick,
        } => {
            let chosen = match (value, pick) {
                (Some(v), _) => serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v)),
                (None, Some(n)) => {
                    let conflicts = engine.conflicts(&id)?;
                    let Some(c) = conflicts.iter().find(|c| c.path == path) else {
                        bail!("{path} holds no conflicting values");
                    };
                    let Some(v) = n.checked_sub(1).and_then(|i| c.values.get(i)) else {
                        bail!("pick a number from 1 to {}", c.values.len());
                    };
                    v.value.clone()
                }
                (None, None) => bail!("give the value to keep, or --pick N"),
            };
            engine.resolve(&id, &path, &chosen)?;
            out.emit(&serde_json::json!({ "resolved": path }), || {
                "resolved".into()
            })
        }
        Command::History { id, path } => {
            let changes = engine.history(&id, &path)?;
            out.emit(&changes, || render::history(&changes))
        }
        Command::Export {
            ids,
            all,
            format,
            out: target,
        } => {
            let ids = match (all, ids.is_empty()) {
                (true, true) => engine.ids()?,
                (false, false) => ids,
                (true, false) => bail!("give dossier ids or --all, not both"),
                (false, true) => bail!("give dossier ids, or --all"),
            };
            match format {
                Format::Json => {
                    let export = exchange::to_json(&engine, &ids)?;
                    let text = serde_json::to_string_pretty(&export)?;
                    std::fs::write(&target, text)
                        .with_context(|| format!("writing {}", target.display()))?;
                }
                Format::Automerge => {
                    exchange::write_documents(&engine, &ids, &target)?;
                }
            }
            out.emit(&serde_json::json!({ "exported": ids.len() }), || {
                format!(
                    "exported {} to {}",
                    render::count(ids.len(), "dossier"),
                    target.display()
                )
            })
        }
        Command::Import { path, table } => {
            if import::is_table(&path) {
                return import::import_table(&mut engine, &path, &table, &out);
            }
            if table.given() {
                bail!("--dry-run, --map, --mapping and the like are for .csv and workbook files");
            }
            let is_json = path.extension().is_some_and(|x| x == "json");
            let changed = if is_json {
                let export = exchange::read_json(&path)?;
                let items: Vec<_> = export
                    .dossiers
                    .into_iter()
                    .map(|d| (d.id, d.dossier))
                    .collect();
                engine.import_dossiers(&items)?
            } else {
                let docs = exchange::read_documents(&path)?;
                engine.merge_documents(&docs)?
            };
            out.emit(&serde_json::json!({ "changed": changed }), || {
                format!("{} created or changed", render::count(changed, "dossier"))
            })
        }
        Command::Enroll {
            relay,
            invite,
            ca_file,
            insecure,
        } => {
            let mut trust = crate::sync::Trust {
                ca_pem: None,
                insecure,
            };
            if let Some(path) = &ca_file {
                trust = trust.with_ca_file(path)?;
            }
            if insecure && !relay.trim().starts_with("https://") {
                eprintln!(
                    "warning: syncing over plain http://: the device token and dossiers cross the network unencrypted"
                );
            }
            let enrolled = crate::sync::enroll(&mut engine, &relay, &invite, &trust)?;
            out.emit(&enrolled_view(&enrolled), || {
                format!(
                    "enrolled as {} ({}) in team {}; run `fieldbook sync` to sync",
                    enrolled.user,
                    enrolled.role.as_str(),
                    enrolled.team
                )
            })
        }
        Command::Sync { watch, timeout } => sync_command(&mut engine, &out, watch, timeout),
        Command::Status => {
            let status = engine.sync_status()?;
            let kept = engine.secrets().describe();
            let view = serde_json::json!({
                "sync": status,
                "store": { "encrypted": true, "secrets_kept_in": kept },
            });
            out.emit(&view, || {
                format!(
                    "{}\nstore encrypted (SQLCipher); its key and the device token are kept in {kept}",
                    render::sync_status(&status)
                )
            })
        }
        Command::Fields { .. } => unreachable!("handled before the store is opened"),
    }
}

/// The enrolment as shown: everything but the token.
fn enrolled_view(e: &fieldbook_shared::sync::wire::Enrolled) -> serde_json::Value {
    serde_json::json!({
        "team": e.team, "user": e.user, "role": e.role, "device_id": e.device_id,
    })
}

fn sync_command(engine: &mut Engine, out: &Out, watch: bool, timeout: u64) -> Result<()> {
    use crate::sync::{LinkState, Mode, SyncError, run_background, sync_with_relay};
    let relay = engine.relay_config()?.ok_or(SyncError::NotEnrolled)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    if watch {
        let (state_tx, mut states) = tokio::sync::watch::channel(LinkState::Connecting);
        let json = out.json;
        runtime.block_on(async move {
            let printer = async {
                while states.changed().await.is_ok() {
                    let s = states.borrow_and_update().clone();
                    let line = if json {
                        serde_json::to_string(&s).unwrap_or_default()
                    } else {
                        render::link_state(&s)
                    };
                    // Nobody reads the states any more: stop watching.
                    if !matches!(print_line(&line), Ok(true)) {
                        break;
                    }
                }
            };
            tokio::select! {
                _ = run_background(&mut *engine, state_tx, stop) => {}
                _ = printer => {}
                _ = tokio::signal::ctrl_c() => { let _ = stop_tx.send(true); }
            }
        });
        return Ok(());
    }
    // What the sync moved, in dossiers: those whose changes it delivered, and those whose
    // saved bytes it changed here.
    let unsent_before = engine.unsent()?.dossiers;
    let versions_before = versions(engine)?;
    let report = runtime.block_on(async {
        let mut handle = &mut *engine;
        let sync = sync_with_relay(&mut handle, &relay, Mode::Once, &mut stop, |_| {});
        match tokio::time::timeout(std::time::Duration::from_secs(timeout), sync).await {
            Ok(r) => r,
            Err(_) => Err(SyncError::TimedOut(timeout)),
        }
    })?;
    drop(stop_tx);
    while engine.index_pending(500)? > 0 {}
    let status = engine.sync_status()?;
    let sent = unsent_before.saturating_sub(engine.unsent()?.dossiers);
    let received = versions(engine)?
        .iter()
        .filter(|(id, v)| versions_before.get(*id) != Some(*v))
        .count();
    out.emit(
        &serde_json::json!({
            "report": report,
            "status": status,
            "dossiers_sent": sent,
            "dossiers_received": received,
        }),
        || {
            format!(
                "synced: {} sent, {} received ({} up, {} down, {} ms)\n{}",
                render::count(sent as usize, "dossier"),
                received,
                render::count(report.bytes_sent as usize, "byte"),
                render::count(report.bytes_received as usize, "byte"),
                report.elapsed_ms,
                render::sync_status(&status)
            )
        },
    )
}

/// `command` with each dossier it names by its company's name named by id.
fn with_ids(engine: &Engine, mut command: Command) -> Result<Command> {
    let named = match &mut command {
        Command::Show { id, .. }
        | Command::Set { id, .. }
        | Command::Add { id, .. }
        | Command::Delete { id, .. }
        | Command::Restore { id, .. }
        | Command::Note { id, .. }
        | Command::Conflicts { id }
        | Command::Resolve { id, .. }
        | Command::History { id, .. } => vec![id],
        Command::Meeting(m) => vec![&mut m.id],
        Command::Export { ids, .. } => ids.iter_mut().collect(),
        _ => Vec::new(),
    };
    for id in named {
        *id = dossier_named(engine, id)?;
    }
    Ok(command)
}

/// The dossier `arg` names: its id, else the one company whose name is `arg` (spacing,
/// width and case aside), else the one whose name contains it.
fn dossier_named(engine: &Engine, arg: &str) -> Result<String> {
    use crate::store::DossierStore;
    if fieldbook_shared::document::valid_id(arg) && engine.store().version(arg)?.is_some() {
        return Ok(arg.to_string());
    }
    let key = fieldbook_shared::import::company_key(arg);
    if key.is_empty() {
        bail!("no dossier has the id or name {arg:?}");
    }
    let all = engine.list(&ListQuery {
        include_archived: true,
        ..ListQuery::default()
    })?;
    let names: Vec<(String, &fieldbook_shared::summary::DossierSummary)> = all
        .iter()
        .map(|s| (fieldbook_shared::import::company_key(&s.name), s))
        .collect();
    let exact: Vec<_> = names.iter().filter(|(k, _)| *k == key).collect();
    let found = if exact.is_empty() {
        names.iter().filter(|(k, _)| k.contains(&key)).collect()
    } else {
        exact
    };
    match found.as_slice() {
        [(_, one)] => Ok(one.id.clone()),
        [] => bail!("no dossier has the id or name {arg:?} (`fieldbook search` looks inside them)"),
        many => {
            let shown: Vec<String> = many
                .iter()
                .take(5)
                .map(|(_, s)| format!("{} ({})", s.name, s.id))
                .collect();
            bail!(
                "{arg:?} names {} dossiers: {}{} — give more of the name, or the id",
                many.len(),
                shown.join(", "),
                if many.len() > 5 { ", …" } else { "" }
            )
        }
    }
}

/// Each dossier's store version: what tells which ones a sync wrote.
fn versions<S: crate::store::DossierStore>(
    engine: &Engine<S>,
) -> Result<std::collections::HashMap<String, i64>> {
    let mut out = std::collections::HashMap::new();
    for id in engine.ids()? {
        if let Some(v) = engine.store().version(&id)? {
            out.insert(id, v);
        }
    }
    Ok(out)
}

/// The fields of a dossier, or of an item of `collection`, as JSON with empty values.
fn fields(out: &Out, collection: Option<&str>) -> Result<()> {
    let dossier = fieldbook_shared::Dossier::default();
    let json = match collection {
        None => serde_json::to_value(&dossier)?,
        Some(c) => {
            let probe = "item";
            let with = fieldbook_shared::patch::add_item(&dossier, c, probe, &[])
                .or_else(|_| {
                    // Nested collections need a parent item to exist first.
                    let parent = c.split('.').next().unwrap_or_default();
                    let d = fieldbook_shared::patch::add_item(&dossier, parent, probe, &[])?;
                    let nested = c.replace("<id>", probe).replace('*', probe);
                    fieldbook_shared::patch::add_item(&d, &nested, probe, &[])
                })
                .map_err(|_| {
                    anyhow::anyhow!(
                        "`{c}` is not a collection; one of: {}",
                        COLLECTIONS.join(", ")
                    )
                })?;
            let all = serde_json::to_value(&with)?;
            let path: Vec<&str> = c.split('.').collect();
            let mut v = &all;
            for seg in path {
                let seg = if seg == "*" || seg == "<id>" {
                    probe
                } else {
                    seg
                };
                v = &v[seg];
            }
            v[probe].clone()
        }
    };
    out.emit(&json, || {
        serde_json::to_string_pretty(&json).unwrap_or_default()
    })
}
