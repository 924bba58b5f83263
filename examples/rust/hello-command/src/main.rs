//! hello as a WASI command, for hosts that run commands (`wasm32-wasip1` or `wasm32-wasip2`).

fn main() -> std::process::ExitCode {
    wasmhook_sdk::command::run::<hello::Hello>()
}
