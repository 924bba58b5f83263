//! End-to-end tests of wasmhook: real modules built from `examples/` and `tests/guests/`
//! by the `wasmhook-tests` crate, run through the real runtime and the real binary, on
//! the embedded database (SQLite). `tests/postgres` runs the suites that touch the
//! database again on PostgreSQL, and the replicas' own tests.

/// The database of this binary's servers.
const DATABASE: support::Database = support::Database::Sqlite;

mod attacks;
mod cli;
mod compile_bombs;
mod conformance;
mod connections;
mod contract;
mod deliveries;
mod drf;
mod hooks;
mod hostile;
mod languages;
mod loading;
mod memory;
mod observability;
mod openapi;
mod operations;
mod organizations;
mod outbound;
mod reliability;
mod rossum_client;
mod rossum_hooks;
mod rossum_shapes;
mod scaffold;
mod schedules;
mod server;
mod support;
mod tiers;
mod tokens;
mod warm;
mod webhooks;
