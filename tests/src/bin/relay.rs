//! The relay binary, built inside this package so that tests can start it as a real process
//! (`CARGO_BIN_EXE_relay`).
fn main() -> std::process::ExitCode {
    fieldbook_relay::cli::main()
}
