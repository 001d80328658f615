//! The Tauri shell: opens the store, starts the background sync, and exposes each call of the
//! shared API as a command that hands it to the service layer ([`crate::service`]).

use std::path::PathBuf;

use fieldbook_shared::api::{self, AppError, Call, ErrorKind};
use tauri::Manager;

use crate::service::{AppService, Serve};

/// Run a call on the blocking pool: the store does disk IO (and fsyncs), which must not stall
/// the window's event loop.
async fn serve<C>(service: &AppService, call: C) -> Result<C::Reply, AppError>
where
    C: Call + Send + 'static,
    C::Reply: Send + 'static,
    AppService: Serve<C>,
{
    let service = service.clone();
    tauri::async_runtime::spawn_blocking(move || service.serve(call))
        .await
        .map_err(|e| AppError::new(ErrorKind::Storage, format!("the request failed: {e}")))?
}

macro_rules! commands {
    ($($name:ident: $call:ty;)+) => {$(
        #[tauri::command]
        async fn $name(
            service: tauri::State<'_, AppService>,
            req: $call,
        ) -> Result<<$call as Call>::Reply, AppError> {
            debug_assert_eq!(<$call as Call>::NAME, stringify!($name));
            serve(&service, req).await
        }
    )+};
}

commands! {
    start: api::Start;
    status: api::GetStatus;
    save_settings: api::SaveSettings;
    enroll: api::Enroll;
    list_dossiers: api::ListDossiers;
    open_dossier: api::OpenDossier;
    create_dossier: api::CreateDossier;
    set_fields: api::SetFields;
    add_item: api::AddItem;
    delete_item: api::DeleteItem;
    record_meeting: api::RecordMeeting;
    resolve: api::Resolve;
    history: api::History;
    dashboard: api::GetDashboard;
    add_note: api::AddNote;
}

/// Where the device keeps its store: `FIELDBOOK_DATA_DIR`, else the platform's app data folder.
fn data_dir(app: &tauri::App) -> Result<PathBuf, tauri::Error> {
    match std::env::var_os("FIELDBOOK_DATA_DIR") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => app.path().app_data_dir(),
    }
}

/// The app: desktop `main` and the mobile entry point.
#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let app = tauri::Builder::default()
        .setup(|app| {
            let clock = crate::clock::from_env()?;
            let dir = data_dir(app)?;
            // The OS keystore keeps the store's key, or the file FIELDBOOK_KEY_FILE names.
            let secrets = crate::secrets::Secrets::from_env(&dir)?;
            let service = AppService::open(&dir, &secrets, clock)?;
            if let Some(sync) = service.background_sync() {
                tauri::async_runtime::spawn(sync);
            }
            app.manage(service);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            start,
            status,
            save_settings,
            enroll,
            list_dossiers,
            open_dossier,
            create_dossier,
            set_fields,
            add_item,
            delete_item,
            record_meeting,
            resolve,
            history,
            dashboard,
            add_note,
        ])
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("Fieldbook could not start: {e}");
            std::process::exit(1);
        }
    };
    app.run(|app, event| {
        if let tauri::RunEvent::ExitRequested { .. } = event {
            app.state::<AppService>().shutdown();
        }
    });
}
