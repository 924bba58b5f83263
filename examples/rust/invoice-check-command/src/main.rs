//! invoice-check as a WASI command: payload on stdin, response on stdout.

fn main() -> std::process::ExitCode {
    wasmhook_sdk::command::run::<invoice_check::InvoiceCheck>()
}
