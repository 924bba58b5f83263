//! The server's suites that touch the database, run again with the rows in PostgreSQL (a
//! schema of the machine's server per data directory), and the tests of several replicas
//! sharing one database. The suites are `tests/all`'s own files, included by path, so the
//! two backends are held to the very same assertions.

// Each suite uses part of the shared support; what only `tests/all` uses is unused here.
#![allow(dead_code)]

/// The database of this binary's servers.
const DATABASE: support::Database = support::Database::Postgres;

#[path = "../all/deliveries.rs"]
mod deliveries;
#[path = "../all/drf.rs"]
mod drf;
#[path = "../all/hooks.rs"]
mod hooks;
#[path = "../all/organizations.rs"]
mod organizations;
mod replicas;
#[path = "../all/rossum_hooks.rs"]
mod rossum_hooks;
#[path = "../all/rossum_shapes.rs"]
mod rossum_shapes;
#[path = "../all/schedules.rs"]
mod schedules;
#[path = "../all/support/mod.rs"]
mod support;
#[path = "../all/tokens.rs"]
mod tokens;
#[path = "../all/webhooks.rs"]
mod webhooks;
