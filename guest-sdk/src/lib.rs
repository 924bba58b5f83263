//! Write wasmhook extensions in Rust.
//!
//! An extension is a type implementing [`Extension`]: it gets a [`Call`] (the payload,
//! settings, secrets and token of one hook call) and answers with a [`Response`] (Rossum's
//! messages, operations and automation blockers) or an [`Error`]. One macro exports it:
//!
//! ```
//! use wasmhook_sdk::{log, Call, Error, Extension, Response};
//!
//! struct Hello;
//!
//! impl Extension for Hello {
//!     fn handle(call: &Call) -> Result<Response, Error> {
//!         log::info("saying hello");
//!         Ok(Response::new().info(format!("Hello, {}.{}!", call.event(), call.action())))
//!     }
//! }
//!
//! wasmhook_sdk::export!(Hello);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` as a `cdylib`. The same
//! type can run as a WASI command (payload on stdin, response on stdout) through
//! [`command::run`], for hosts or tools that only speak the command form.
//!
//! Layout: [`call`] reads the request, [`response`] builds the answer, [`log`] writes to the
//! run log, [`command`] is the command form, `http` (feature `http`) makes outgoing
//! requests; the generated bindings are hidden.
#![deny(missing_docs)]

pub mod call;
pub mod command;
#[cfg(feature = "http")]
pub mod http;
pub mod log;
pub mod response;

mod error;

pub use call::Call;
pub use error::Error;
pub use response::{AutomationBlocker, Message, MessageType, Operation, Response};
pub use serde_json::{json, Map, Value};

/// One extension: what it does with one hook call.
pub trait Extension {
    /// Handles one call. `Err` is recorded as a failed run with the error's message.
    fn handle(call: &Call) -> Result<Response, Error>;
}

#[cfg(feature = "component")]
#[doc(hidden)]
pub mod bindings {
    //! Generated from `wit/extension.wit`; use the SDK's types instead.
    wit_bindgen::generate!({
        path: "../wit/extension.wit",
        world: "extension",
        pub_export_macro: true,
        export_macro_name: "__export_extension_world",
        default_bindings_module: "wasmhook_sdk::bindings",
    });
}

#[cfg(feature = "component")]
#[doc(hidden)]
pub mod __private {
    //! What [`export!`](crate::export) expands to; not part of the API.
    use crate::bindings::wasmhook::extension::types::Request;
    use crate::{Call, Extension};

    /// Runs one component call of `E`.
    pub fn handle<E: Extension>(request: Request) -> Result<String, String> {
        let call = Call::from_request(request).map_err(|error| error.to_string())?;
        E::handle(&call)
            .map(|response| response.to_json())
            .map_err(|error| error.to_string())
    }
}

/// Exports a type implementing [`Extension`] as the component's `handle`.
#[cfg(feature = "component")]
#[macro_export]
macro_rules! export {
    ($extension:ty) => {
        #[allow(unsafe_code)] // the generated export glue is unsafe by nature
        const _: () = {
            struct __WasmhookExport;
            impl $crate::bindings::Guest for __WasmhookExport {
                fn handle(
                    request: $crate::bindings::wasmhook::extension::types::Request,
                ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                    $crate::__private::handle::<$extension>(request)
                }
            }
            $crate::bindings::__export_extension_world!(__WasmhookExport);
        };
    };
}
