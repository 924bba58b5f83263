//! The `wasmhook` binary.

fn main() -> std::process::ExitCode {
    wasmhook::cli::main()
}
