//! wasmhook: a multi-tenant WebAssembly extension host, compatible with Rossum's hook API.
//!
//! Layout, bottom up:
//!
//! - [`runtime`]: runs guest modules in a fresh sandbox with limits; knows nothing of the
//!   server;
//! - [`model`]: events, payloads and run logs in Rossum's terms;
//! - [`dispatch`]: turns an event into runs and run logs;
//! - [`cli`]: the command line (`wasmhook run`, and later `serve`).

pub mod cli;
pub mod dispatch;
pub mod model;
pub mod runtime;
