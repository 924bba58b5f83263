//! The wasmtime `Engine` of a process (two with tiered compilation: the quick one beside
//! it), and the thread that advances their epochs.

use std::time::Duration;

use std::sync::Arc;

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy,
};

use super::config::RuntimeConfig;
use super::function_cache::FunctionCache;
use super::limiter::MAX_TABLE_ELEMENTS;

/// Core instances a component may hold; interpreters built with componentize-py or
/// componentize-js use a dozen or more.
pub(crate) const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;
/// Linear memories and tables one component may define.
pub(crate) const MAX_MEMORIES_PER_COMPONENT: u32 = 4;
pub(crate) const MAX_TABLES_PER_COMPONENT: u32 = 16;
/// Size of an instance's VM context; large guests have many functions and globals.
const MAX_INSTANCE_SIZE: usize = 4 << 20;
/// Pooled slots kept warm (already mapped) after a call, so the next call skips page faults.
const WARM_SLOTS: u32 = 100;
/// Regions decommitted together. 1: each instance's memory beyond what is kept resident
/// goes back to the system as the instance ends. A larger batch saves TLB shootdowns but
/// leaves the regions of up to batch-1 ended instances resident until more instances end,
/// and a burst of large guests then kept gigabytes resident after it was over. Small guests
/// are unaffected either way: what they touch is within `MEMORY_KEEP_RESIDENT` and is reset
/// with `memset`, never queued.
const DECOMMIT_BATCH: usize = 1;
/// Bytes of each linear memory reset with `memset` (only the pages a call touched, where
/// the kernel can say which: PAGEMAP_SCAN, Linux 6.7) rather than returned with `madvise`:
/// a small guest's next call then takes no page faults. The rest is decommitted.
const MEMORY_KEEP_RESIDENT: usize = 1 << 20;
/// The same for tables.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;
/// Native stack a guest may use; an unbounded recursion traps here, not in the host.
const MAX_WASM_STACK: usize = 1 << 20;
/// The fiber stack a call runs on must hold the guest's stack plus host frames.
const ASYNC_STACK: usize = 2 << 20;

/// How the engine allocates instances, as it turned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Pre-reserved slots: fast instantiation, bounded concurrency.
    Pooling,
    /// Memory mapped per instance; used when pooling could not reserve its address space.
    OnDemand,
}

/// Builds the engine: component model, async calls, epoch interruption, the pooling
/// allocator when the address space allows it, and `functions` behind its compiler.
pub(crate) fn build(
    config: &RuntimeConfig,
    functions: Option<&Arc<FunctionCache>>,
) -> wasmtime::Result<(Engine, Allocation)> {
    if config.pooling {
        let mut wasm = base_config(config, functions)?;
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(config)));
        match Engine::new(&wasm) {
            Ok(engine) => return Ok((engine, Allocation::Pooling)),
            Err(error) => tracing::warn!(
                "pooling allocator unavailable ({error:#}); allocating instances on demand"
            ),
        }
    }
    let wasm = base_config(config, functions)?;
    Ok((Engine::new(&wasm)?, Allocation::OnDemand))
}

/// The quick engine of tiered compilation: Winch, wasmtime's single-pass compiler, so a
/// module's first calls need not wait for Cranelift (Cranelift at `none` was measured and
/// saved almost nothing: its time is register allocation and emission, which `none` keeps;
/// BENCHMARKS.md, Tiers). Its instances are allocated on demand: it serves only the calls
/// made before a module's optimized code is ready, and a second pool would reserve the
/// address space of the first again.
///
/// Its limits are the optimized engine's, epoch interruption included: Winch checks the
/// epoch where Cranelift does, at every function's entry and loop's header (winch-codegen
/// 48's `maybe_emit_epoch_check`; the note on `Config::epoch_interruption` that calls it
/// incompatible with Winch is older than that code), so the time limit, the ticks of the
/// fair scheduler and its preemption hold on either tier; and fuel, when the runtime meters
/// it. Features Winch lacks (tail calls, GC, exceptions) fail its compile, and the upload
/// is then compiled by the optimizing engine (`Runtime::load_quick`).
pub(crate) fn build_quick(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let mut wasm = Config::new();
    // An upload waits for this compile: every core may help.
    wasm.strategy(Strategy::Winch).parallel_compilation(true);
    shared(&mut wasm, config);
    Engine::new(&wasm)
}

fn base_config(
    config: &RuntimeConfig,
    functions: Option<&Arc<FunctionCache>>,
) -> wasmtime::Result<Config> {
    let mut wasm = Config::new();
    wasm.cranelift_opt_level(config.opt_level.cranelift());
    if let Some(functions) = functions {
        // The compiler's settings are part of every key (only Cranelift uses it: the quick
        // engine, Winch, compiles without it).
        wasm.enable_incremental_compilation(Arc::clone(functions) as Arc<dyn wasmtime::CacheStore>)?;
    }
    if config.tiered {
        // The optimizing compiler then runs only in the background, behind the quick one:
        // one thread (lowered in priority by its caller) rather than every core, so that
        // it never takes the CPU from calls and from other uploads' quick compiles.
        wasm.parallel_compilation(false);
    }
    shared(&mut wasm, config);
    Ok(wasm)
}

/// What both engines share: the component model, epoch interruption (the time limit and
/// the fair scheduler's ticks), fuel when metered, a guest's stack and the frames kept of
/// a trap's backtrace.
fn shared(wasm: &mut Config, config: &RuntimeConfig) {
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(config.fuel_metering)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(64));
}

fn pooling(config: &RuntimeConfig) -> PoolingAllocationConfig {
    let instances = config.max_instances.max(1);
    let max_memory = usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .max_component_instance_size(MAX_INSTANCE_SIZE)
        .max_core_instance_size(MAX_INSTANCE_SIZE)
        .table_elements(MAX_TABLE_ELEMENTS)
        .max_memory_size(max_memory)
        .max_unused_warm_slots(WARM_SLOTS.min(instances))
        .decommit_batch_size(DECOMMIT_BATCH)
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);
    pool
}

/// Advances the engines' epochs at a fixed interval, on one thread, until every engine is
/// dropped. Each engine has its own epoch: a store's deadline counts its engine's ticks, so
/// the quick engine of tiered compilation must tick too, or its guests would never be
/// interrupted.
pub(crate) fn spawn_epoch_ticker(engines: &[&Engine], tick: Duration) {
    let weak: Vec<_> = engines.iter().map(|engine| engine.weak()).collect();
    let spawned = std::thread::Builder::new()
        .name("wasmhook-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(tick);
            let mut alive = false;
            for engine in weak.iter().filter_map(wasmtime::EngineWeak::upgrade) {
                engine.increment_epoch();
                alive = true;
            }
            if !alive {
                break;
            }
        });
    if let Err(error) = spawned {
        // Without a ticker no deadline fires through the epoch; the wall-clock timer
        // around every call still ends it, so the runtime degrades rather than fails.
        tracing::error!("could not start the epoch thread: {error}");
    }
}

/// A stable text for the engine's compatibility hash: artifacts compiled by an engine with
/// another hash cannot be loaded by this one.
pub(crate) fn fingerprint(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
