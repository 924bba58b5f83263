//! End-to-end tests of wasmhook: real modules built from `examples/` and `tests/guests/`
//! by the `wasmhook-tests` crate, run through the real runtime and the real binary.

mod cli;
mod conformance;
mod hooks;
mod hostile;
mod languages;
mod loading;
mod outbound;
mod reliability;
mod scaffold;
mod schedules;
mod server;
mod support;
mod upstream;
mod webhooks;
