//! Running guest modules: loading and validating them, caching their compiled code, and
//! calling them in a fresh, limited sandbox.
//!
//! This part knows nothing of the server: the CLI's `run` and the benchmarks use it
//! directly. Layout:
//!
//! - [`config`]: sizes and limits, resolved once by the caller;
//! - `engine`: the `Engine`, the pooling allocator and the epoch ticker;
//! - `tiers`: an engine with its linkers and artifacts; with tiered compilation a quick
//!   one serves a module's first calls until its optimized code is swapped in;
//! - `bindings`: the host side of `wit/extension.wit`;
//! - [`module`]: a module's digest and kind, and the checks that refuse what cannot run;
//! - `cache`: compiled artifacts on disk;
//! - `state`, `limiter`, `output`: what a store holds during a call;
//! - `fair`: the CPU shared between fairness groups, turn by turn;
//! - `threads`: the guest threads, below the server's priority, that guests move to after
//!   their first slice;
//! - [`http`]: a guest's outgoing `wasi:http` requests, denied unless granted;
//! - `call`: one call, from a fresh store to its [`RunReport`];
//! - `warm`, `reuse`: idle instances kept for the next call of the hooks that ask
//!   (`config.reuse_instances`), and a call on one of them;
//! - [`outcome`], [`redact`]: what a call's result is, and how secrets leave it.

mod bindings;
mod cache;
mod call;
pub mod config;
mod engine;
mod fair;
mod function_cache;
pub mod http;
mod invocation;
mod limiter;
pub mod module;
pub mod outcome;
mod output;
pub mod precheck;
pub mod redact;
mod reuse;
mod state;
mod threads;
mod tiers;
mod warm;

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lru::LruCache;
use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};
use wasmtime_wasi::p2::bindings::CommandPre;

pub use cache::Swept;
pub use config::{
    CallLimits, CodeTier, OptLevel, RuntimeConfig, UnknownOptLevel, DEFAULT_MODULE_CACHE_CAPACITY,
    DEFAULT_RESPONSE_BYTES,
};
pub use engine::Allocation;
pub use function_cache::{FunctionCacheStats, DEFAULT_FUNCTION_CACHE_BYTES};
pub use http::NetworkGrant;
pub use invocation::Invocation;
pub use module::{Digest, Encoding, LoadError, ModuleInfo, ModuleKind};
pub use outcome::{Failure, Outcome, RunReport, TrapReport};
pub use redact::{Redactor, REDACTED};
pub use threads::{DEFAULT_GUEST_NICE, MAX_NICE};
pub use warm::{Reuse, ReusePolicy, WarmBounds, WarmHook, DEFAULT_WARM_BOUNDS};

use bindings::ExtensionPre;
use state::{ComponentState, CoreState};
use tiers::Tier;
use warm::WarmPool;

/// The largest module accepted, unless configured otherwise.
pub const DEFAULT_MAX_MODULE_BYTES: usize = 64 * 1024 * 1024;

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration.
    #[error("could not create the WebAssembly engine: {0}")]
    Engine(String),
    /// The artifact directory could not be created.
    #[error("could not open the compiled-code cache at {path}: {source}")]
    CacheDir {
        /// [`RuntimeConfig::cache_dir`], as displayed.
        path: String,
        /// The I/O error that stopped it.
        source: std::io::Error,
    },
    /// The guest threads could not be started.
    #[error("could not start the guest threads: {0}")]
    GuestThreads(std::io::Error),
}

/// The runtime: its engine (two with tiered compilation), their linkers, and the caches of
/// compiled and prepared modules.
pub struct Runtime {
    /// The engine at [`RuntimeConfig::opt_level`].
    main: Tier,
    /// The quick engine of tiered compilation ([`RuntimeConfig::tiered`]).
    quick: Option<Tier>,
    allocation: Allocation,
    modules: Mutex<LruCache<Digest, Arc<LoadedModule>>>,
    cpu: Arc<fair::CpuScheduler>,
    guests: threads::GuestThreads,
    warm: WarmPool,
    /// The per-function code the main engine compiles through, when it is on (Cranelift's:
    /// the quick engine, Winch, has none).
    functions: Option<Arc<function_cache::FunctionCache>>,
    config: RuntimeConfig,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("allocation", &self.allocation)
            .field("main", &self.main)
            .field("quick", &self.quick)
            .field("warm", &self.warm)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A validated module, ready to be instantiated many times.
pub struct LoadedModule {
    info: ModuleInfo,
    /// The digest of its bytes, which a warm instance's key holds.
    digest: Digest,
    prepared: Prepared,
    /// The engine that compiled it: a store for it must be made from this one.
    engine: Engine,
    /// Which compiler made its code.
    code: CodeTier,
    /// Where its next call on a fresh instance, and on a warm one, starts (see `threads`).
    starts: [threads::StartHint; 2],
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("info", &self.info)
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl LoadedModule {
    /// Where its next call on a fresh instance starts.
    pub(crate) fn fresh_start(&self) -> &threads::StartHint {
        &self.starts[0]
    }

    /// Where its next call on a warm instance starts.
    pub(crate) fn warm_start(&self) -> &threads::StartHint {
        &self.starts[1]
    }

    /// What the host learned about the module.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// Which compiler made its code: [`CodeTier::Baseline`] while tiered compilation
    /// serves it from the quick engine.
    pub fn code(&self) -> CodeTier {
        self.code
    }

    /// The engine its stores must be made from.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A module linked and type-checked against the host, one variant per way of calling it.
enum Prepared {
    Extension(ExtensionPre<ComponentState>),
    CommandComponent(CommandPre<ComponentState>),
    CoreCommand(wasmtime::InstancePre<CoreState>),
}

/// What compiling produced, before it is linked.
enum Compiled {
    Component(Component),
    Core(wasmtime::Module),
}

impl Runtime {
    /// Creates the engine, its linkers and caches, and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine_error = |error: wasmtime::Error| RuntimeError::Engine(format!("{error:#}"));
        let functions = (config.function_cache_bytes > 0).then(|| {
            Arc::new(function_cache::FunctionCache::new(
                config.function_cache_bytes,
            ))
        });
        let (engine, allocation) =
            engine::build(&config, functions.as_ref()).map_err(engine_error)?;
        let main = Tier::new(
            engine,
            CodeTier::Cranelift(config.opt_level),
            config.cache_dir.as_deref(),
        )?;
        let quick = if config.tiered {
            let engine = engine::build_quick(&config).map_err(engine_error)?;
            Some(Tier::new(
                engine,
                CodeTier::Baseline,
                config.cache_dir.as_deref(),
            )?)
        } else {
            None
        };
        let engines: Vec<&Engine> = std::iter::once(&main)
            .chain(&quick)
            .map(|tier| &tier.engine)
            .collect();
        engine::spawn_epoch_ticker(&engines, config.epoch_tick);
        let capacity = NonZeroUsize::new(config.module_cache_capacity).unwrap_or(NonZeroUsize::MIN);
        // A quiet group's guest waiting for a slot makes the holders yield at once: an
        // extra epoch is an early tick (of both engines when tiered), and deadlines are
        // checked against the clock.
        let epochs: Vec<_> = engines.iter().map(|engine| engine.weak()).collect();
        let cpu =
            fair::CpuScheduler::with_preemption(config.cpu_slots, config.epoch_tick, move || {
                for engine in epochs.iter().filter_map(|weak| weak.upgrade()) {
                    engine.increment_epoch();
                }
            });
        // One thread more than slots: see `threads`.
        let guests = threads::GuestThreads::start(
            config.cpu_slots + 1,
            config.guest_nice,
            config.epoch_tick,
        )
        .map_err(RuntimeError::GuestThreads)?;
        Ok(Runtime {
            main,
            quick,
            allocation,
            modules: Mutex::new(LruCache::new(capacity)),
            cpu,
            guests,
            warm: WarmPool::new(config.warm),
            functions,
            config,
        })
    }

    /// What the per-function compile cache has done so far; none when it is off.
    pub fn function_cache_stats(&self) -> Option<FunctionCacheStats> {
        self.functions.as_ref().map(|cache| cache.stats())
    }

    /// The configuration the runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// How instances are allocated (pooling, or on demand after a fallback).
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// Validates a module and makes it callable: from memory if it was loaded before, from
    /// its compiled artifact if one is on disk, else by compiling it (seconds for a large
    /// guest: call this off the async threads). Nothing is cached for a refused module.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedModule>, LoadError> {
        self.load_with(&self.main, bytes)
    }

    /// [`Runtime::load`], compiling with `compiler` when neither memory nor an artifact of
    /// either tier has the module.
    fn load_with(&self, compiler: &Tier, bytes: &[u8]) -> Result<Arc<LoadedModule>, LoadError> {
        if bytes.len() > DEFAULT_MAX_MODULE_BYTES {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit: DEFAULT_MAX_MODULE_BYTES,
            });
        }
        let digest = Digest::of(bytes);
        if let Some(module) = self.modules().get(&digest) {
            return Ok(Arc::clone(module));
        }
        let encoding = module::encoding(bytes)?;
        let module = match self.load_artifacts(&digest) {
            Some(module) => module,
            None => self.compile(compiler, bytes, digest, encoding)?,
        };
        Ok(self.keep(module))
    }

    /// A module loaded before, from memory or from its artifact on disk, without its bytes;
    /// `None` when neither has it.
    pub fn load_compiled(&self, digest: &Digest) -> Option<Arc<LoadedModule>> {
        if let Some(module) = self.modules().get(digest) {
            return Some(Arc::clone(module));
        }
        Some(self.keep(self.load_artifacts(digest)?))
    }

    /// Whether this process can call the module without compiling it: it is in memory, or
    /// an artifact of either tier is on disk. Cheap (nothing is read): what a replica asks
    /// of each ready module to find the ones to compile before their first call.
    pub fn has_compiled(&self, digest: &Digest) -> bool {
        self.modules().contains(digest)
            || std::iter::once(&self.main)
                .chain(self.quick.as_ref())
                .any(|tier| {
                    tier.artifacts
                        .as_ref()
                        .is_some_and(|artifacts| artifacts.path(digest).exists())
                })
    }

    /// A module's artifact of the optimized tier, else of the quick one.
    fn load_artifacts(&self, digest: &Digest) -> Option<LoadedModule> {
        self.load_artifact(&self.main, digest).or_else(|| {
            let quick = self.quick.as_ref()?;
            self.load_artifact(quick, digest)
        })
    }

    /// Puts a module in the in-memory cache, unless a more optimized one of the same bytes
    /// is there already (swapped in while this one was loading): that one is kept and
    /// returned.
    fn keep(&self, module: LoadedModule) -> Arc<LoadedModule> {
        let mut modules = self.modules();
        if let Some(kept) = modules.get(&module.digest) {
            if kept.code > module.code {
                return Arc::clone(kept);
            }
        }
        let module = Arc::new(module);
        modules.put(module.digest, Arc::clone(&module));
        module
    }

    /// Drops a module from the in-memory cache (its artifact stays on disk), e.g. when it is
    /// deleted or to measure loading from the artifact.
    pub fn evict(&self, digest: &Digest) {
        self.modules().pop(digest);
    }

    /// Removes from the artifact directory what this runtime would never load (code of
    /// another engine fingerprint or of a retired tier, temporary files of writes that did
    /// not finish) and the artifacts of modules `keep` does not want (their bytes deleted):
    /// without it the directory only grows. Files younger than `fresh` are kept, as they
    /// may be a compile's under way. Reads the directory and unlinks: call it on a blocking
    /// thread.
    pub fn sweep_artifacts(&self, keep: &dyn Fn(&Digest) -> bool, fresh: Duration) -> Swept {
        cache::sweep(&self.artifact_dirs(), keep, fresh)
    }

    fn artifact_dirs(&self) -> Vec<&cache::ArtifactDir> {
        std::iter::once(&self.main)
            .chain(self.quick.as_ref())
            .filter_map(|tier| tier.artifacts.as_ref())
            .collect()
    }

    fn modules(&self) -> MutexGuard<'_, LruCache<Digest, Arc<LoadedModule>>> {
        // The cache holds no invariant a panic could break halfway.
        self.modules
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn compile(
        &self,
        tier: &Tier,
        bytes: &[u8],
        digest: Digest,
        encoding: Encoding,
    ) -> Result<LoadedModule, LoadError> {
        let compiled = match encoding {
            Encoding::Component => Component::new(&tier.engine, bytes)
                .map(Compiled::Component)
                .map_err(|error| LoadError::Invalid {
                    encoding: "component",
                    reason: format!("{error:#}"),
                })?,
            Encoding::Core => wasmtime::Module::new(&tier.engine, bytes)
                .map(Compiled::Core)
                .map_err(|error| LoadError::Invalid {
                    encoding: "module",
                    reason: format!("{error:#}"),
                })?,
        };
        let module = self.prepare(tier, &compiled, digest)?;
        if let Some(artifacts) = &tier.artifacts {
            let serialized = match &compiled {
                Compiled::Component(component) => component.serialize(),
                Compiled::Core(module) => module.serialize(),
            };
            // A cache that cannot be written costs a recompile after restart, nothing more.
            match serialized {
                Ok(serialized) => {
                    if let Err(error) = artifacts.write(&digest, &serialized) {
                        tracing::warn!(%digest, "could not write the compiled artifact: {error}");
                    }
                }
                Err(error) => tracing::warn!(%digest, "could not serialize the module: {error:#}"),
            }
        }
        Ok(module)
    }

    fn load_artifact(&self, tier: &Tier, digest: &Digest) -> Option<LoadedModule> {
        let artifacts = tier.artifacts.as_ref()?;
        let path = artifacts.path(digest);
        if !path.exists() {
            return None;
        }
        match self.deserialize(tier, &path).and_then(|compiled| {
            self.prepare(tier, &compiled, *digest)
                .map_err(|error| wasmtime::format_err!("{error}"))
        }) {
            Ok(module) => Some(module),
            Err(error) => {
                tracing::warn!(%digest, "discarding an unusable compiled artifact: {error:#}");
                artifacts.discard(digest);
                None
            }
        }
    }

    #[allow(unsafe_code)]
    fn deserialize(&self, tier: &Tier, path: &Path) -> wasmtime::Result<Compiled> {
        // SAFETY: `deserialize_file` trusts its input to be code this engine compiled. The
        // artifact directory is the runtime's own: files get their final name only after
        // being written whole by `ArtifactDir::write`, from `serialize` of a module this
        // engine compiled, and the name carries the engine's compatibility fingerprint and
        // its tier (`cache.rs`).
        match Engine::detect_precompiled_file(path)? {
            Some(Precompiled::Component) => Ok(Compiled::Component(unsafe {
                Component::deserialize_file(&tier.engine, path)?
            })),
            Some(Precompiled::Module) => Ok(Compiled::Core(unsafe {
                wasmtime::Module::deserialize_file(&tier.engine, path)?
            })),
            None => Err(wasmtime::format_err!("not a compiled artifact")),
        }
    }

    fn prepare(
        &self,
        tier: &Tier,
        compiled: &Compiled,
        digest: Digest,
    ) -> Result<LoadedModule, LoadError> {
        let mismatch = |error: wasmtime::Error| LoadError::Mismatch {
            reason: format!("{error:#}"),
        };
        match compiled {
            Compiled::Component(component) => {
                let (kind, imports, exports) = module::inspect_component(&tier.engine, component)?;
                let pre = tier
                    .component_linker
                    .instantiate_pre(component)
                    .map_err(mismatch)?;
                let prepared = match kind {
                    ModuleKind::Component => {
                        Prepared::Extension(ExtensionPre::new(pre).map_err(mismatch)?)
                    }
                    ModuleKind::Command => {
                        Prepared::CommandComponent(CommandPre::new(pre).map_err(mismatch)?)
                    }
                };
                Ok(LoadedModule {
                    info: ModuleInfo {
                        digest: digest.to_string(),
                        kind,
                        encoding: Encoding::Component,
                        imports,
                        exports,
                    },
                    digest,
                    prepared,
                    engine: tier.engine.clone(),
                    code: tier.code,
                    starts: [threads::StartHint::new(), threads::StartHint::new()],
                })
            }
            Compiled::Core(module) => {
                let (imports, exports) = module::inspect_core(module)?;
                let pre = tier.core_linker.instantiate_pre(module).map_err(mismatch)?;
                Ok(LoadedModule {
                    info: ModuleInfo {
                        digest: digest.to_string(),
                        kind: ModuleKind::Command,
                        encoding: Encoding::Core,
                        imports,
                        exports,
                    },
                    digest,
                    prepared: Prepared::CoreCommand(pre),
                    engine: tier.engine.clone(),
                    code: tier.code,
                    starts: [threads::StartHint::new(), threads::StartHint::new()],
                })
            }
        }
    }
}
