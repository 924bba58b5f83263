//! wasmhook: a multi-tenant WebAssembly extension host, compatible with Rossum's hook API.
//!
//! Layout, bottom up:
//!
//! - [`metrics`]: the process's Prometheus series, recorded from every layer above it;
//! - [`trace_context`]: W3C trace context taken from requests and sent on;
//! - [`keyed`]: a semaphore per key, the per-organization limits' one map (outbound
//!   requests in flight, runs and their memory share);
//! - [`runtime`]: runs guest modules in a fresh sandbox with limits; knows nothing of the
//!   server;
//! - [`model`]: events, payloads and run logs in Rossum's terms;
//! - [`dispatch`]: turns an event into runs and run logs;
//! - [`store`]: persistence (SQLite) behind a narrow interface;
//! - [`tokens`]: minting API tokens (logins, the demo, hooks' runs), on the store;
//! - [`modules`]: uploaded modules' files and their (background) compilation;
//! - [`outbound`]: every request to the network (guests' `wasi:http`, webhooks) and its
//!   rules;
//! - [`sealing`]: secrets encrypted at rest;
//! - [`accounts`]: password hashing and account rules;
//! - [`api`]: the HTTP API, Rossum-compatible;
//! - [`server`]: `wasmhook serve`, its configuration and lifecycle;
//! - [`cli`]: the command line (`wasmhook run`, `wasmhook serve`).

pub mod accounts;
pub mod api;
pub mod cli;
pub mod dispatch;
pub mod keyed;
pub mod metrics;
pub mod model;
pub mod modules;
pub mod outbound;
pub mod runtime;
pub mod sealing;
pub mod server;
pub mod store;
pub mod tokens;
pub mod trace_context;
