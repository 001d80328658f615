//! `fieldbook`: the device's dossiers from the command line.

fn main() -> std::process::ExitCode {
    fieldbook_app::cli::main()
}
