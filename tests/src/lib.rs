//! Test fixtures shared by the host's tests and benchmarks.
//!
//! - [`guests`]: the path of every example (in every language) and test guest, built from
//!   source by this crate's build script (no committed `.wasm`);
//! - [`conformance`]: the cases every example must pass, from `conformance/cases/`;
//! - [`postgres`]: a schema of its own on the machine's PostgreSQL for each test.

pub mod conformance;
pub mod postgres;

/// Paths of the built guest modules.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
