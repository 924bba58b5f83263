//! The command form: the payload on stdin, the response on stdout, logs on stderr.
//!
//! For hosts and tools that call WASI commands (`wasm32-wasip1` or `wasm32-wasip2` binaries).
//! A crate whose binary uses this must depend on the SDK with `default-features = false`.
//!
//! ```no_run
//! use wasmhook_sdk::{Call, Error, Extension, Response};
//! struct Hello;
//! impl Extension for Hello {
//!     fn handle(call: &Call) -> Result<Response, Error> {
//!         Ok(Response::new().info(format!("Hello, {}.{}!", call.event(), call.action())))
//!     }
//! }
//! fn main() -> std::process::ExitCode {
//!     wasmhook_sdk::command::run::<Hello>()
//! }
//! ```

use std::io::{Read, Write};
use std::process::ExitCode;

use crate::{Call, Error, Extension};

/// Reads the payload from stdin, handles it, writes the response to stdout. Exits 1 with
/// the error on stderr when the extension fails.
pub fn run<E: Extension>() -> ExitCode {
    crate::log::use_stderr();
    match handle::<E>() {
        Ok(response) => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(response.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: cannot write the response: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn handle<E: Extension>() -> Result<String, Error> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|error| Error::new(format!("cannot read the payload from stdin: {error}")))?;
    let payload = serde_json::from_str(&input)
        .map_err(|error| Error::new(format!("the payload on stdin is not JSON: {error}")))?;
    let call = Call::from_payload(payload)?;
    E::handle(&call).map(|response| response.to_json())
}
