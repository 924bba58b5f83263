//! The module library: uploaded modules' bytes in the data directory (one file per sha256),
//! validated and compiled by the runtime at upload, never on a call's path.
//!
//! A small module is compiled while its upload waits, so a broken one is refused with 400.
//! A large one (a Python or JavaScript component takes seconds) is accepted as `pending`
//! and compiled in the background, one at a time; it then becomes `ready` or `failed`,
//! and hooks using it show the same status. Compiled code lands in the runtime's artifact
//! cache, so a restart loads it without compiling.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::model::now_rfc3339;
use crate::runtime::{Digest, LoadError, LoadedModule, Runtime};
use crate::store::modules::{self, Inspected, Module, ModuleStatus};
use crate::store::{Store, StoreError};

/// Modules up to this size are compiled while their upload waits.
pub const DEFAULT_FOREGROUND_COMPILE_BYTES: usize = 4 * 1024 * 1024;

/// Why a module could not be added or called.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The runtime refused it.
    #[error(transparent)]
    Invalid(#[from] LoadError),
    /// Not compiled yet.
    #[error("the module is still being compiled")]
    Pending,
    /// It failed to compile earlier.
    #[error("the module failed to load: {0}")]
    Failed(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file system failed.
    #[error("cannot store the module: {0}")]
    Io(String),
}

/// The module library.
#[derive(Debug)]
pub struct ModuleLibrary {
    dir: PathBuf,
    runtime: Arc<Runtime>,
    store: Store,
    foreground_bytes: usize,
    compiling: Mutex<HashSet<String>>,
    compile_slot: Arc<Semaphore>,
}

impl ModuleLibrary {
    /// The library keeping its files in `dir`.
    pub fn open(
        dir: PathBuf,
        runtime: Arc<Runtime>,
        store: Store,
        foreground_bytes: usize,
    ) -> Result<Arc<Self>, ModuleError> {
        std::fs::create_dir_all(&dir).map_err(|error| ModuleError::Io(error.to_string()))?;
        Ok(Arc::new(ModuleLibrary {
            dir,
            runtime,
            store,
            foreground_bytes,
            compiling: Mutex::new(HashSet::new()),
            compile_slot: Arc::new(Semaphore::new(1)),
        }))
    }

    /// The runtime the library compiles for.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.wasm"))
    }

    /// Adds an uploaded module of an organization.
    pub async fn add(
        self: &Arc<Self>,
        organization_id: u64,
        name: String,
        bytes: bytes::Bytes,
    ) -> Result<Module, ModuleError> {
        let limit = crate::runtime::DEFAULT_MAX_MODULE_BYTES;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit,
            }
            .into());
        }
        crate::runtime::module::encoding(&bytes)?;
        let sha256 = Digest::of(&bytes).to_string();
        let size = bytes.len() as u64;
        let inspected = if bytes.len() <= self.foreground_bytes {
            let runtime = Arc::clone(&self.runtime);
            let loading = bytes.clone();
            let loaded = tokio::task::spawn_blocking(move || runtime.load(&loading))
                .await
                .map_err(|error| ModuleError::Io(error.to_string()))??;
            Some(inspected(&loaded))
        } else {
            None
        };
        self.write_file(&sha256, &bytes).await?;
        let created_at = now_rfc3339();
        let row_sha = sha256.clone();
        let module = self
            .store
            .run(move |connection| {
                modules::create(
                    connection,
                    organization_id,
                    &name,
                    &row_sha,
                    size,
                    inspected.as_ref(),
                    &created_at,
                )
            })
            .await?;
        if module.status == ModuleStatus::Pending {
            self.compile_in_background(sha256);
        }
        Ok(module)
    }

    async fn write_file(&self, sha256: &str, bytes: &bytes::Bytes) -> Result<(), ModuleError> {
        let path = self.path(sha256);
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || write_whole(&path, &bytes))
            .await
            .map_err(|error| ModuleError::Io(error.to_string()))?
            .map_err(|error| ModuleError::Io(error.to_string()))
    }

    /// The callable form of a module: from memory or its compiled artifact. A ready module
    /// whose artifact went missing is sent back to the background compiler.
    pub fn loaded(self: &Arc<Self>, module: &Module) -> Result<Arc<LoadedModule>, ModuleError> {
        match module.status {
            ModuleStatus::Pending => return Err(ModuleError::Pending),
            ModuleStatus::Failed => {
                return Err(ModuleError::Failed(
                    module.error.clone().unwrap_or_default(),
                ))
            }
            ModuleStatus::Ready => {}
        }
        let digest: Digest = module
            .sha256
            .parse()
            .map_err(|_| ModuleError::Io(format!("bad digest {}", module.sha256)))?;
        if let Some(loaded) = self.runtime.load_compiled(&digest) {
            return Ok(loaded);
        }
        tracing::warn!(sha256 = %module.sha256, "compiled code missing; recompiling in the background");
        let store = self.store.clone();
        let sha256 = module.sha256.clone();
        let library = Arc::clone(self);
        tokio::spawn(async move {
            let marking = sha256.clone();
            if store
                .run(move |connection| modules::mark_pending(connection, &marking))
                .await
                .is_ok()
            {
                library.compile_in_background(sha256);
            }
        });
        Err(ModuleError::Pending)
    }

    /// Compiles every module left pending (e.g. by a restart during a compile).
    pub async fn resume(self: &Arc<Self>) -> Result<(), ModuleError> {
        let pending = self
            .store
            .run(|connection| modules::digests_with_status(connection, ModuleStatus::Pending))
            .await?;
        for sha256 in pending {
            self.compile_in_background(sha256);
        }
        Ok(())
    }

    /// Queues a compile of these bytes unless one is queued already.
    fn compile_in_background(self: &Arc<Self>, sha256: String) {
        {
            let mut compiling = self
                .compiling
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !compiling.insert(sha256.clone()) {
                return;
            }
        }
        let library = Arc::clone(self);
        tokio::spawn(async move {
            let result = library.compile(&sha256).await;
            library
                .compiling
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&sha256);
            if let Err(error) = result {
                tracing::error!(%sha256, "background compile could not record its result: {error}");
            }
        });
    }

    async fn compile(&self, sha256: &str) -> Result<(), ModuleError> {
        let _slot = Arc::clone(&self.compile_slot)
            .acquire_owned()
            .await
            .map_err(|error| ModuleError::Io(error.to_string()))?;
        let path = self.path(sha256);
        let runtime = Arc::clone(&self.runtime);
        let result = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path).map_err(|error| LoadError::Invalid {
                encoding: "module",
                reason: format!("its file is unreadable: {error}"),
            })?;
            runtime.load(&bytes).map(|loaded| inspected(&loaded))
        })
        .await
        .map_err(|error| ModuleError::Io(error.to_string()))?;
        let sha256 = sha256.to_owned();
        self.store
            .run(move |connection| match result {
                Ok(inspected) => modules::mark_ready(connection, &sha256, &inspected),
                Err(error) => modules::mark_failed(connection, &sha256, &error.to_string()),
            })
            .await?;
        Ok(())
    }

    /// Deletes the file of bytes no module uses any more, and drops its compiled form.
    pub fn forget(&self, sha256: &str) {
        if let Ok(digest) = sha256.parse::<Digest>() {
            self.runtime.evict(&digest);
        }
        if let Err(error) = std::fs::remove_file(self.path(sha256)) {
            tracing::warn!(%sha256, "could not delete a module file: {error}");
        }
    }
}

fn inspected(loaded: &LoadedModule) -> Inspected {
    let info = loaded.info();
    let name = |value: serde_json::Result<serde_json::Value>| {
        value
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    Inspected {
        kind: name(serde_json::to_value(info.kind)),
        encoding: name(serde_json::to_value(info.encoding)),
        imports: info.imports.clone(),
        exports: info.exports.clone(),
    }
}

/// Writes a file whole under a temporary name, then renames it into place.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    std::fs::write(&temporary, bytes)?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, path)
}
