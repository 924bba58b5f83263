//! Tiered compilation: a module's first calls need not wait for the optimizing compiler.
//!
//! A [`Tier`] is an engine with its compiler ([`CodeTier`]), its linkers and its
//! artifacts. Every runtime has its main tier (Cranelift at [`RuntimeConfig::opt_level`]);
//! with [`RuntimeConfig::tiered`] it also has a quick one: Winch, wasmtime's single-pass
//! compiler. An upload is then compiled by the quick engine ([`Runtime::load_quick`]), and
//! its optimized code is compiled later, off the upload's path ([`Runtime::optimize`]), and
//! swapped into the in-memory cache: the calls that start afterwards run it, the calls in
//! flight keep the quick module they hold. A loaded module carries its engine, since a
//! store must be made from the engine that compiled the module it instantiates.
//!
//! Winch checks epochs as Cranelift does, so the time limit and the fair scheduler's ticks
//! hold on either tier (`engine::build_quick`). Cranelift at `none` was the quick tier
//! before and saved almost no compile time (BENCHMARKS.md, Tiers).
//!
//! [`RuntimeConfig::opt_level`]: super::RuntimeConfig::opt_level
//! [`RuntimeConfig::tiered`]: super::RuntimeConfig::tiered

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::HasSelf;
use wasmtime::Engine;

use super::bindings::Extension;
use super::cache::ArtifactDir;
use super::config::CodeTier;
use super::module::{self, Digest, LoadError};
use super::state::{ComponentState, CoreState};
use super::{engine, LoadedModule, Runtime, RuntimeError};

/// An engine with its compiler, its linkers, and where its artifacts are kept.
pub(super) struct Tier {
    pub(super) code: CodeTier,
    pub(super) engine: Engine,
    pub(super) component_linker: wasmtime::component::Linker<ComponentState>,
    pub(super) core_linker: wasmtime::Linker<CoreState>,
    pub(super) artifacts: Option<ArtifactDir>,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tier")
            .field("code", &self.code)
            .field("artifacts", &self.artifacts)
            .finish_non_exhaustive()
    }
}

impl Tier {
    /// Links the host's interfaces for `engine`, and opens its artifacts in `cache_dir`.
    pub(super) fn new(
        engine: Engine,
        code: CodeTier,
        cache_dir: Option<&Path>,
    ) -> Result<Self, RuntimeError> {
        let engine_error = |error: wasmtime::Error| RuntimeError::Engine(format!("{error:#}"));
        let mut component_linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut component_linker)
            .and_then(|()| {
                wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut component_linker)
            })
            .and_then(|()| {
                Extension::add_to_linker::<_, HasSelf<ComponentState>>(
                    &mut component_linker,
                    |state| state,
                )
            })
            .map_err(engine_error)?;
        let mut core_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut core_linker, |state: &mut CoreState| {
            &mut state.wasi
        })
        .map_err(engine_error)?;
        let artifacts = match cache_dir {
            Some(dir) => Some(
                ArtifactDir::open(dir, engine::fingerprint(&engine), code).map_err(|source| {
                    RuntimeError::CacheDir {
                        path: dir.display().to_string(),
                        source,
                    }
                })?,
            ),
            None => None,
        };
        Ok(Tier {
            code,
            engine,
            component_linker,
            core_linker,
            artifacts,
        })
    }
}

impl Runtime {
    /// Whether uploads are compiled quick first and optimized later.
    pub fn tiered(&self) -> bool {
        self.quick.is_some()
    }

    /// Whether this module runs code of the quick tier, and its optimized code is still to
    /// be compiled ([`Runtime::optimize`]).
    pub fn needs_optimizing(&self, module: &LoadedModule) -> bool {
        self.quick.is_some() && module.code < self.main.code
    }

    /// [`Runtime::load`], but compiling with the quick engine when tiered (the module's
    /// first calls then run Winch's code until [`Runtime::optimize`] has swapped in the
    /// optimized one). Memory and the optimized artifact come first, as always.
    ///
    /// Winch refuses a module that uses a feature it lacks (tail calls, GC, exceptions) as
    /// it refuses an invalid one. The module is then validated against the optimizing
    /// engine's features: valid, it is compiled by that engine (on one thread, the engine's
    /// setting for its background work, so such an upload waits longer than it would
    /// without tiers); invalid, it is refused with the validator's reason, without a second
    /// compile.
    pub fn load_quick(&self, bytes: &[u8]) -> Result<Arc<LoadedModule>, LoadError> {
        match &self.quick {
            Some(quick) => match self.load_with(quick, bytes) {
                Err(LoadError::Invalid { encoding, .. }) => {
                    wasmparser::Validator::new_with_features(self.main.engine.get_wasm_features())
                        .validate_all(bytes)
                        .map_err(|error| LoadError::Invalid {
                            encoding,
                            reason: error.message().to_owned(),
                        })?;
                    self.load(bytes)
                }
                loaded => loaded,
            },
            None => self.load(bytes),
        }
    }

    /// Compiles a module's optimized code (seconds for a large guest: call it on a thread
    /// of low priority), writes its artifact, and swaps it into the in-memory cache in
    /// place of the quick module; the quick artifact is then deleted. Whether it compiled
    /// anything: not when the runtime is not tiered, nor when the optimized code was in
    /// memory already.
    pub fn optimize(&self, bytes: &[u8]) -> Result<bool, LoadError> {
        if self.quick.is_none() {
            return Ok(false);
        }
        let digest = Digest::of(bytes);
        let optimized = |kept: &Arc<LoadedModule>| kept.code >= self.main.code;
        if self.modules().peek(&digest).is_some_and(optimized) {
            return Ok(false);
        }
        let encoding = module::encoding(bytes)?;
        let module = match self.load_artifact(&self.main, &digest) {
            Some(module) => module,
            None => self.compile(&self.main, bytes, digest, encoding)?,
        };
        self.keep(module);
        if let Some(artifacts) = self
            .quick
            .as_ref()
            .and_then(|quick| quick.artifacts.as_ref())
        {
            // Unlinked, never truncated: a quick module still mapped keeps its code.
            artifacts.discard(&digest);
        }
        Ok(true)
    }
}
