//! hello: answers every event with a greeting (see shared/conformance/README.md).

use serde::Deserialize;
use wasmhook_sdk::{log, Call, Error, Extension, Response};

/// The hook's settings.
#[derive(Deserialize)]
struct Settings {
    #[serde(default = "default_greeting")]
    greeting: String,
}

fn default_greeting() -> String {
    "Hello".into()
}

/// The hello extension.
#[derive(Debug)]
pub struct Hello;

impl Extension for Hello {
    fn handle(call: &Call) -> Result<Response, Error> {
        let Settings { greeting } = call.settings_as()?;
        log::info(&greeting);
        Ok(Response::new().info(format!("{greeting}, {}.{}!", call.event(), call.action())))
    }
}

#[cfg(feature = "component")]
wasmhook_sdk::export!(Hello);
