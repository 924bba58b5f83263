//! Test fixtures shared by the host's tests and benchmarks.
//!
//! - [`guests`]: the path of every example and test guest, built from source by this
//!   crate's build script (no committed `.wasm`);
//! - [`conformance`]: the cases every example must pass, from `conformance/cases/`.

pub mod conformance;

/// Paths of the built guest modules.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));

    /// Every example, as (extension name, form, module path), for the conformance cases.
    pub const EXAMPLES: &[(&str, &str, &str)] = &[
        ("hello", "rust component", HELLO),
        ("hello", "rust command (wasip2 component)", HELLO_COMMAND),
        (
            "hello",
            "rust command (wasip1 core module)",
            HELLO_COMMAND_CORE,
        ),
        ("invoice-check", "rust component", INVOICE_CHECK),
        (
            "invoice-check",
            "rust command (wasip2 component)",
            INVOICE_CHECK_COMMAND,
        ),
    ];
}
