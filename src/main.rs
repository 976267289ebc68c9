//! The `asof` binary; everything lives in the library so tests and the CLI share it.

fn main() -> std::process::ExitCode {
    asof::cli::main()
}
