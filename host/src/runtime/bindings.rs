//! The host side of `wit/extension.wit`: the one place bindings are generated.
//!
//! Imports (`host.log`, `host.remaining-time-ms`) are synchronous: they never block. The
//! `handle` export is called asynchronously, so that a running guest yields to the async
//! runtime at each epoch tick.

wasmtime::component::bindgen!({
    path: "../wit/extension.wit",
    world: "extension",
    exports: { default: async },
});

pub use self::wasmhook::extension::host::Level;
