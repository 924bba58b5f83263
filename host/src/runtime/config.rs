//! How the runtime is sized: one struct, resolved once at start-up and passed in.

use std::path::PathBuf;
use std::time::Duration;

/// Guest memory a call gets when its hook does not say (`config.memory_size_mb`).
pub const DEFAULT_MEMORY_BYTES: u64 = 256 * MIB;
/// The least memory a hook may ask for.
pub const MIN_MEMORY_BYTES: u64 = 16 * MIB;
/// The most memory a hook may ask for unless the operator raises it. Every pooled memory
/// slot is reserved at this size, so it is also the engine's hard ceiling.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 512 * MIB;
/// Wall time a call gets when its hook does not say (`config.timeout_s`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The bounds of `config.timeout_s` unless the operator raises the upper one.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// See [`MIN_TIMEOUT`].
pub const DEFAULT_MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Output (stdout, stderr, log lines) kept per call before it is truncated.
pub const DEFAULT_OUTPUT_BYTES: usize = MIB as usize;
/// The largest response a guest may return.
pub const DEFAULT_RESPONSE_BYTES: usize = MIB as usize;
/// Pre-instantiated modules kept in memory; the rest are reloaded from their artifact.
///
/// A loaded Rust module holds about 1 MB resident (its mapped code and wasmtime's metadata):
/// 1,000 loaded modules made an idle server 837 MB, 128 made it 222 MB and 64 made it 191 MB,
/// while reloading one from its artifact costs about 0.3 ms (BENCHMARKS.md, cold paths).
pub const DEFAULT_MODULE_CACHE_CAPACITY: usize = 64;
/// Instances that may be alive at once (the pool's size). Callers bound their concurrency
/// below this so that the pool never runs dry.
pub const DEFAULT_MAX_INSTANCES: u32 = 256;
/// How often the epoch advances. A guest yields to the async runtime at every tick, so
/// this bounds how long one CPU-bound guest can hold a worker thread or a CPU slot (its
/// slice), and how late a deadline can be noticed.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(1);

const MIB: u64 = 1024 * 1024;

/// How hard Cranelift optimizes the code it compiles: `none` compiles a little faster (at
/// most a quarter) and runs up to 6x slower, `speed` the reverse (BENCHMARKS.md, Tiers).
/// Parsed once from its name.
/// Ordered: `None` is below `Speed`, so that optimized code is never replaced by quicker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptLevel {
    /// No optimization: the quickest compile.
    None,
    /// Optimized for speed: wasmtime's default.
    #[default]
    Speed,
}

impl OptLevel {
    /// Its name: `none` or `speed`.
    pub fn name(self) -> &'static str {
        match self {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
        }
    }

    /// wasmtime's form of it.
    pub(crate) fn cranelift(self) -> wasmtime::OptLevel {
        match self {
            OptLevel::None => wasmtime::OptLevel::None,
            OptLevel::Speed => wasmtime::OptLevel::Speed,
        }
    }
}

impl std::fmt::Display for OptLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an [`OptLevel`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown optimization level {0:?}: expected none or speed")]
pub struct UnknownOptLevel(pub String);

impl std::str::FromStr for OptLevel {
    type Err = UnknownOptLevel;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "none" => Ok(OptLevel::None),
            "speed" => Ok(OptLevel::Speed),
            other => Err(UnknownOptLevel(other.to_owned())),
        }
    }
}

/// Which compiler made a module's code, and how hard it optimized: ordered from the
/// quickest compile to the fastest code, so that a module's code is only ever replaced by
/// faster code (tiered compilation swaps the optimized code in; a late quick load never
/// swaps it out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CodeTier {
    /// Winch, wasmtime's single-pass compiler: the quick tier of tiered compilation. It
    /// compiles several times faster than Cranelift at either level, and its code runs
    /// slower (BENCHMARKS.md, Tiers); its guests are interrupted by epochs as Cranelift's
    /// are (`engine::build_quick`).
    Baseline,
    /// Cranelift, at this level.
    Cranelift(OptLevel),
}

impl CodeTier {
    /// Its name: `winch`, or the Cranelift level's (`none`, `speed`).
    pub fn name(self) -> &'static str {
        match self {
            CodeTier::Baseline => "winch",
            CodeTier::Cranelift(level) => level.name(),
        }
    }
}

impl std::fmt::Display for CodeTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the runtime is sized and where it keeps compiled code.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Directory for compiled artifacts; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Pre-instantiated modules kept in memory.
    pub module_cache_capacity: usize,
    /// Instances alive at once, when the pooling allocator is used.
    pub max_instances: u32,
    /// The most linear memory any call may be given.
    pub max_memory_bytes: u64,
    /// Use the pooling allocator (falls back to on-demand when it cannot reserve memory).
    pub pooling: bool,
    /// Count instructions so that calls may carry an instruction budget (costs some speed).
    pub fuel_metering: bool,
    /// How often the epoch advances.
    pub epoch_tick: Duration,
    /// Guests running wasm at once, shared fairly between fairness groups; the cores. Also
    /// the number of guest threads.
    pub cpu_slots: usize,
    /// How much lower than the server's the guest threads' priority is: the nice value
    /// added to the process's own (capped at 19), so that the threads that accept
    /// requests, answer them and commit run logs run first.
    pub guest_nice: u8,
    /// Idle warm instances kept for hooks that reuse them (see `Runtime::call_reusing`).
    /// They hold places of the instance pool: keep `warm.total` well below
    /// `max_instances`, and run fewer calls at once by as much.
    pub warm: super::WarmBounds,
    /// How hard the engine optimizes what it compiles.
    pub opt_level: OptLevel,
    /// Bytes of compiled functions kept so that a module compiling a function compiled
    /// before (in any module, any organization's) reuses its code (see `function_cache`,
    /// which says why it is off unless asked for); 0 turns it off.
    pub function_cache_bytes: usize,
    /// Tiered compilation: also make a quick engine (Winch, [`CodeTier::Baseline`],
    /// instances allocated on demand) whose code serves a module's first calls while the
    /// code of `opt_level` is compiled in the background (`Runtime::load_quick`,
    /// `Runtime::optimize`).
    pub tiered: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            module_cache_capacity: DEFAULT_MODULE_CACHE_CAPACITY,
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            pooling: true,
            fuel_metering: false,
            epoch_tick: DEFAULT_EPOCH_TICK,
            cpu_slots: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            guest_nice: super::DEFAULT_GUEST_NICE,
            warm: super::DEFAULT_WARM_BOUNDS,
            opt_level: OptLevel::Speed,
            function_cache_bytes: 0,
            tiered: false,
        }
    }
}

/// The limits of one call, chosen per call by its caller (the dispatcher from the hook's
/// config, `wasmhook run` from its flags); the runtime only enforces them.
#[derive(Clone, Debug)]
pub struct CallLimits {
    /// Wall time from the start of instantiation to the response.
    pub timeout: Duration,
    /// Linear memory, all of the instance's memories together.
    pub memory_bytes: u64,
    /// Instruction budget; needs [`RuntimeConfig::fuel_metering`].
    pub fuel: Option<u64>,
    /// Output kept before truncation.
    pub output_bytes: usize,
    /// The largest response accepted.
    pub response_bytes: usize,
    /// Whose share of the CPU the call runs in (the server uses the organization): groups
    /// take turns, so one cannot slow another by running many calls.
    pub fairness_group: u64,
    /// Outgoing HTTP the guest may make (`wasi:http`); none denies every request.
    pub network: Option<super::http::NetworkGrant>,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            timeout: DEFAULT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            fuel: None,
            output_bytes: DEFAULT_OUTPUT_BYTES,
            response_bytes: DEFAULT_RESPONSE_BYTES,
            fairness_group: 0,
            network: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_levels_are_parsed_from_their_names_only() {
        for level in [OptLevel::None, OptLevel::Speed] {
            assert_eq!(level.name().parse::<OptLevel>(), Ok(level));
        }
        assert_eq!(
            "size".parse::<OptLevel>(),
            Err(UnknownOptLevel("size".into()))
        );
        assert!(
            OptLevel::None < OptLevel::Speed,
            "quick code is below optimized"
        );
        assert_eq!(OptLevel::default(), OptLevel::Speed);
    }
}
