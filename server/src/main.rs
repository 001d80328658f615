fn main() -> std::process::ExitCode {
    fieldbook_relay::cli::main()
}
