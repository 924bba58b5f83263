//! What a Store holds during one call, and the `host` interface the guest imports.

use std::time::Instant;

use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::{wasmhook::extension, Level};
use super::http::GuestHttp;
use super::limiter::CallLimiter;
use super::output::Capture;

/// What every call's store carries, whatever the module's form.
#[derive(Debug)]
pub(crate) struct CallState {
    pub(crate) limiter: CallLimiter,
    pub(crate) deadline: Instant,
    pub(crate) output: Capture,
}

/// Gives generic store set-up access to the [`CallState`] inside either store type.
pub(crate) trait HasCallState: Send + 'static {
    fn call_state(&mut self) -> &mut CallState;
}

/// Store data for components (extensions and command components).
pub(crate) struct ComponentState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_hooks: GuestHttp,
    table: ResourceTable,
    pub(crate) call: CallState,
}

/// Resources a guest may hold at once (streams, pollables, `wasi:http` fields, requests
/// and responses): their memory is the host's, outside the guest's memory limit and the
/// budget, so the table is bounded far below wasmtime's million. The interpreters hold a
/// few dozen; past this, the call that creates one more traps.
const MAX_RESOURCES: usize = 1024;

/// Bytes of names and values one `wasi:http` fields resource may hold (wasmtime's default
/// is 128 KiB): with [`MAX_RESOURCES`], a call holds at most 32 MiB of them.
const MAX_FIELDS_BYTES: usize = 32 * 1024;

impl ComponentState {
    pub(crate) fn new(wasi: WasiCtx, call: CallState, http_hooks: GuestHttp) -> Self {
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELDS_BYTES);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        ComponentState {
            wasi,
            http,
            http_hooks,
            table,
            call,
        }
    }
}

impl ComponentState {
    /// Whether the call's outgoing requests are all answered and their bodies dropped.
    pub(crate) fn http_quiet(&self) -> bool {
        self.http_hooks.quiet()
    }

    /// Gives a warm instance's state the next call's `wasi:http` grant (its deadline is set
    /// with its epoch callback, see `Runtime::arm`).
    pub(crate) fn renew(&mut self, http_hooks: GuestHttp) {
        self.http_hooks = http_hooks;
    }
}

impl HasCallState for ComponentState {
    fn call_state(&mut self) -> &mut CallState {
        &mut self.call
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

/// Store data for core modules speaking WASI preview 1.
pub(crate) struct CoreState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) call: CallState,
}

impl HasCallState for CoreState {
    fn call_state(&mut self) -> &mut CallState {
        &mut self.call
    }
}

/// The sandbox every guest gets: no preopened directories, no sockets, no name lookups,
/// no environment and no arguments; stdout and stderr go to the call's capture.
pub(crate) fn sandbox(output: &Capture) -> WasiCtxBuilder {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(output.stream(false))
        .stderr(output.stream(true))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    builder
}

/// The sandbox of a command: the payload on stdin, stdout into its own capture (it is the
/// response), stderr into the output.
pub(crate) fn command_sandbox(output: &Capture, stdout: &Capture, payload: &str) -> WasiCtxBuilder {
    let mut builder = sandbox(output);
    builder
        .stdin(MemoryInputPipe::new(payload.as_bytes().to_vec()))
        .stdout(stdout.stream(false));
    builder
}

impl extension::types::Host for ComponentState {}

impl extension::host::Host for ComponentState {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        };
        let mut line = format!("[{level}] {message}");
        if !line.ends_with('\n') {
            line.push('\n');
        }
        self.call.output.append(line.as_bytes());
    }

    fn remaining_time_ms(&mut self) -> u64 {
        let left = self.call.deadline.saturating_duration_since(Instant::now());
        u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
    }
}
