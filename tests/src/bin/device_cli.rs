//! The `fieldbook` CLI, built inside this package so that tests can run it as a real process
//! beside the relay (`CARGO_BIN_EXE_device_cli`).
fn main() -> std::process::ExitCode {
    fieldbook_app::cli::main()
}
