//! The module library: uploaded modules' bytes in the data directory (one file per sha256),
//! validated and compiled by the runtime at upload, never on a call's path.
//!
//! Every upload is first walked by the runtime's structural precheck (milliseconds), which
//! refuses what the host will not compile and weighs the rest by its code. A light module
//! is compiled while its upload waits, so a broken one is refused with 400. A heavy one (a
//! Python or JavaScript component takes seconds) is accepted as `pending` and compiled in
//! the background; it then becomes `ready` or `failed`, and hooks using it show the same
//! status. Every compile passes the [`gate`]: so many at once, and a budget of compile time
//! and refused uploads per organization. Compiled code lands in the runtime's artifact
//! cache, so a restart loads it without compiling.
//!
//! With tiered compilation (`[limits] tiered_compile`) every compile above is the quick
//! one (Winch, wasmtime's single-pass compiler), and a module that runs quick code gets its
//! optimized code compiled afterwards, once, by [`ModuleLibrary`]'s optimizer: behind the
//! gate's one background place, on a thread of low priority, charged to the installation
//! (the organization paid for its upload's compile). The runtime swaps it in when ready.

pub mod gate;
mod optimize;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::metrics::{metrics, CompileLabels, Held};
use crate::model::now_rfc3339;
use crate::runtime::precheck::{precheck, ModuleBounds};
use crate::runtime::{Digest, LoadError, LoadedModule, Runtime, Swept};
use crate::store::modules::{Inspected, Module, ModuleBytes, ModuleQuota, ModuleStatus, NewModule};
use crate::store::templates::TemplateModule;
use crate::store::{Store, StoreError};
use gate::{CompileGate, CompileRefused, Queued};

/// Modules whose compile weighs up to this (bytes of code plus a fixed cost per function,
/// see [`crate::runtime::precheck::ModuleShape::compile_weight`]) are compiled while their
/// upload waits. 1 MiB takes Rust, C, Zig and AssemblyScript extensions (0.03 to 0.2 MiB);
/// Go's runtime (3.6 MiB and more) and the interpreters compile in the background, where a
/// loaded machine taking tens of seconds over one holds no request open.
pub const DEFAULT_FOREGROUND_COMPILE_BYTES: usize = 1024 * 1024;

/// Background compiles started by the installation itself (after a restart, or when an
/// artifact went missing) are charged to this account, not to an organization.
const INSTALLATION: u64 = 0;

/// Whether a background compile records its outcome in the module's rows: yes for a
/// compile of bytes accepted here; no for one replica's own copy of code another replica
/// compiled and recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    Yes,
    No,
}

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
    /// The organization may not compile now.
    #[error(transparent)]
    Refused(#[from] CompileRefused),
}

/// The installation's uploaded modules: their files, their rows and their compiles (through
/// the gate). The one way to a module the dispatcher can call ([`ModuleLibrary::loaded`]).
#[derive(Debug)]
pub struct ModuleLibrary {
    dir: PathBuf,
    runtime: Arc<Runtime>,
    store: Store,
    foreground_bytes: usize,
    bounds: ModuleBounds,
    compiling: Mutex<HashSet<String>>,
    /// Modules whose optimized code is being compiled, or failed to compile (not tried
    /// again before a restart: they keep running their quick code).
    optimizing: Mutex<HashSet<String>>,
    /// A lock per bytes, striped by their sha256 ([`ModuleLibrary::hold_bytes`]).
    bytes_locks: Box<[tokio::sync::Mutex<()>]>,
    gate: Arc<CompileGate>,
}

/// Stripes of [`ModuleLibrary::hold_bytes`]'s lock: a fixed number, so that the locks never
/// grow with the bytes ever uploaded; two digests of one stripe only wait for each other.
const BYTES_LOCK_STRIPES: usize = 64;

/// How the library bounds what it compiles.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompilePolicy {
    /// Modules whose compile weighs more are compiled in the background.
    pub foreground_bytes: usize,
    /// Shapes refused before compiling.
    pub bounds: ModuleBounds,
    /// Compiles at once, and each organization's budget.
    pub budget: gate::CompileBudget,
}

impl ModuleLibrary {
    /// The library keeping its files in `dir`.
    pub fn open(
        dir: PathBuf,
        runtime: Arc<Runtime>,
        store: Store,
        policy: CompilePolicy,
    ) -> Result<Arc<Self>, ModuleError> {
        std::fs::create_dir_all(&dir).map_err(|error| ModuleError::Io(error.to_string()))?;
        Ok(Arc::new(ModuleLibrary {
            dir,
            runtime,
            store,
            foreground_bytes: policy.foreground_bytes,
            bounds: policy.bounds,
            compiling: Mutex::new(HashSet::new()),
            optimizing: Mutex::new(HashSet::new()),
            bytes_locks: (0..BYTES_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            gate: CompileGate::new(policy.budget),
        }))
    }

    /// The runtime the library compiles for.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    fn path(&self, sha256: &str) -> PathBuf {
        module_file(&self.dir, sha256)
    }

    /// Adds an uploaded module of an organization: refused at once when the organization
    /// spent its compile budget, and counted against it when the module is refused.
    ///
    /// The work runs on a task of its own, so a client that hangs up mid-compile neither
    /// frees its compile place early nor escapes the charge for it.
    pub async fn add(
        self: &Arc<Self>,
        organization_id: u64,
        name: String,
        bytes: bytes::Bytes,
        quota: ModuleQuota,
    ) -> Result<Module, ModuleError> {
        self.gate.admit(organization_id)?;
        let library = Arc::clone(self);
        tokio::spawn(async move {
            let added = library
                .add_admitted(organization_id, name, bytes, quota)
                .await;
            if let Err(ModuleError::Invalid(_)) = &added {
                library.gate.refused(organization_id);
            }
            added
        })
        .await
        .map_err(|error| ModuleError::Io(error.to_string()))?
    }

    async fn add_admitted(
        self: &Arc<Self>,
        organization_id: u64,
        name: String,
        bytes: bytes::Bytes,
        quota: ModuleQuota,
    ) -> Result<Module, ModuleError> {
        let limit = crate::runtime::DEFAULT_MAX_MODULE_BYTES;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit,
            }
            .into());
        }
        let walked = bytes.clone();
        let bounds = self.bounds;
        let shape = tokio::task::spawn_blocking(move || precheck(&walked, &bounds))
            .await
            .map_err(|error| ModuleError::Io(error.to_string()))??;
        let sha256 = Digest::of(&bytes).to_string();
        let size = bytes.len() as u64;
        let weight = usize::try_from(shape.compile_weight()).unwrap_or(usize::MAX);
        let (inspected, queued, quick) = if weight <= self.foreground_bytes {
            let permit = self.gate.foreground(organization_id).await?;
            let runtime = Arc::clone(&self.runtime);
            let loading = bytes.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                compile(&runtime, &loading)
            })
            .await
            .map_err(|error| ModuleError::Io(error.to_string()))??;
            let quick = self.runtime.needs_optimizing(&loaded);
            (Some(inspected(&loaded)), None, quick)
        } else {
            (None, Some(self.gate.queue(organization_id)?), false)
        };
        // Held from the file's write to the row's commit: a deletion of the same bytes
        // then either finds this row or comes before the file is written.
        let held = self.hold_bytes(&sha256).await;
        self.write_file(&sha256, &bytes).await?;
        if quick {
            self.optimize_in_background(sha256.clone());
        }
        let created_at = now_rfc3339();
        // Written with the row, in its transaction, so that no deletion elsewhere leaves
        // the row without them. A row the quota refuses there (uploads at once each passed
        // the API's early look) leaves its file and compiled code behind, for the sweep of
        // files no row holds (`forget_unheld_files`) to take.
        let shared = self.bytes_to_store(&bytes);
        let module = self
            .store
            .modules()
            .create(NewModule {
                organization_id,
                name: &name,
                sha256: &sha256,
                size,
                inspected: inspected.as_ref(),
                created_at: &created_at,
                bytes: match &shared {
                    Some(bytes) => ModuleBytes::Stored(bytes),
                    None => ModuleBytes::InFile,
                },
                quota,
            })
            .await?;
        drop(held);
        match queued {
            Some(queued) if module.status == ModuleStatus::Pending => {
                self.compile_in_background(sha256, queued, Record::Yes);
            }
            // The same bytes were uploaded before: their compile is done or under way.
            _ => {}
        }
        Ok(module)
    }

    /// Prechecks, compiles and stores the module of a hook template the operator registers.
    /// Its bytes are the installation's, not an organization's: the compile is charged to
    /// the installation's account and done while the registration waits, whatever its
    /// weight (a template is registered once, by the operator). No module row is made:
    /// an organization gets its own when it makes a hook of the template.
    pub async fn add_template_module(
        self: &Arc<Self>,
        bytes: bytes::Bytes,
    ) -> Result<TemplateModule, ModuleError> {
        let limit = crate::runtime::DEFAULT_MAX_MODULE_BYTES;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit,
            }
            .into());
        }
        let walked = bytes.clone();
        let bounds = self.bounds;
        tokio::task::spawn_blocking(move || precheck(&walked, &bounds))
            .await
            .map_err(|error| ModuleError::Io(error.to_string()))??;
        let permit = self.gate.foreground(INSTALLATION).await?;
        let runtime = Arc::clone(&self.runtime);
        let loading = bytes.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            compile(&runtime, &loading)
        })
        .await
        .map_err(|error| ModuleError::Io(error.to_string()))??;
        let sha256 = Digest::of(&bytes).to_string();
        self.write_file(&sha256, &bytes).await?;
        if self.runtime.needs_optimizing(&loaded) {
            self.optimize_in_background(sha256.clone());
        }
        Ok(TemplateModule {
            sha256,
            size: bytes.len() as u64,
            inspected: inspected(&loaded),
        })
    }

    /// The bytes a module's or template's row must be stored with, in its transaction, for
    /// the other replicas to load them from the database: none on SQLite, where the file is
    /// the only copy (one process uses the data directory, and blobs of tens of MiB, an
    /// interpreter's component, would only swell the write-ahead log that every run log's
    /// commit goes through).
    pub fn bytes_to_store(&self, bytes: &bytes::Bytes) -> Option<bytes::Bytes> {
        self.store.is_shared().then(|| bytes.clone())
    }

    /// Puts the bytes `sha256` in this data directory from the database, unless they are
    /// there: a module uploaded through another replica.
    async fn ensure_file(&self, sha256: &str) -> Result<(), ModuleError> {
        if tokio::fs::try_exists(self.path(sha256))
            .await
            .unwrap_or(false)
        {
            return Ok(());
        }
        match self.store.modules().bytes(sha256).await? {
            Some(bytes) => self.write_file(sha256, &bytes::Bytes::from(bytes)).await,
            // The compile reports the missing file.
            None => Ok(()),
        }
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
            // Quick code found after a restart, or before its optimizer was started.
            if self.runtime.needs_optimizing(&loaded) {
                self.optimize_in_background(module.sha256.clone());
            }
            return Ok(loaded);
        }
        if self.store.is_shared() {
            // Ready for the other replicas: this one compiles its own copy (it is usually
            // under way already, started when the module became ready), and the module's
            // row stays as it is.
            if let Ok(queued) = self.gate.queue(INSTALLATION) {
                self.compile_in_background(module.sha256.clone(), queued, Record::No);
            }
            return Err(ModuleError::Pending);
        }
        tracing::warn!(sha256 = %module.sha256, "compiled code missing; recompiling in the background");
        let store = self.store.clone();
        let sha256 = module.sha256.clone();
        let library = Arc::clone(self);
        tokio::spawn(async move {
            if store.modules().mark_pending(&sha256).await.is_ok() {
                if let Ok(queued) = library.gate.queue(INSTALLATION) {
                    library.compile_in_background(sha256, queued, Record::Yes);
                }
            }
        });
        Err(ModuleError::Pending)
    }

    /// Compiles every module left pending (e.g. by a restart during a compile).
    pub async fn resume(self: &Arc<Self>) -> Result<(), ModuleError> {
        let pending = self
            .store
            .modules()
            .digests_with_status(ModuleStatus::Pending)
            .await?;
        for sha256 in pending {
            let queued = self.gate.queue(INSTALLATION)?;
            self.compile_in_background(sha256, queued, Record::Yes);
        }
        if self.store.is_shared() {
            self.share_files().await?;
            self.follow_replicas();
        }
        self.sweep_in_background();
        Ok(())
    }

    /// Sweeps the module directory and the runtime's artifact directory now and every
    /// [`SWEEP_EVERY`]: files no row holds (a create that failed after its file was
    /// written, a client that hung up between a deletion's commit and its
    /// [`ModuleLibrary::forget`], a write a crash cut short) and compiled code no module
    /// needs (of deleted bytes, of an older version's engine) would otherwise hold disk for
    /// good. Module files first, so that their artifacts go in the same sweep.
    fn sweep_in_background(self: &Arc<Self>) {
        let library = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(error) = library.forget_unheld_files().await {
                    tracing::warn!("cannot sweep the module files: {error}");
                }
                if let Err(error) = library.sweep_artifacts().await {
                    tracing::warn!("cannot sweep the compiled artifacts: {error}");
                }
                tokio::time::sleep(SWEEP_EVERY).await;
            }
        });
    }

    /// Removes the compiled artifacts of bytes no module or template holds and that have
    /// no file here, and those no engine of this runtime would load. Deleting a module
    /// leaves its artifacts to this sweep rather than unlinking them at once: an upload of
    /// the same bytes compiles (and writes their artifact) before it takes the bytes'
    /// lock, so a deletion's [`ModuleLibrary::forget`] cannot tell it is coming, while the
    /// sweep asks the rows once it has committed. An artifact written in the last
    /// [`FRESH_FILE`] is a compile's under way, and kept.
    async fn sweep_artifacts(&self) -> Result<Swept, ModuleError> {
        let in_use = self.digests_in_use().await?;
        let runtime = Arc::clone(&self.runtime);
        let dir = self.dir.clone();
        let swept = tokio::task::spawn_blocking(move || {
            let keep = |digest: &Digest| {
                let sha256 = digest.to_string();
                in_use.contains(&sha256) || module_file(&dir, &sha256).exists()
            };
            runtime.sweep_artifacts(&keep, FRESH_FILE)
        })
        .await
        .map_err(|error| ModuleError::Io(error.to_string()))?;
        if swept.files > 0 {
            tracing::info!(
                files = swept.files,
                bytes = swept.bytes,
                "removed compiled artifacts no module needs"
            );
        }
        Ok(swept)
    }

    /// Puts in the database the bytes of modules it does not hold, from this data
    /// directory's files: modules uploaded before it held them (migration 9), or on SQLite
    /// before the rows moved to PostgreSQL.
    async fn share_files(&self) -> Result<(), ModuleError> {
        for sha256 in self.store.modules().digests_without_bytes().await? {
            let path = self.path(&sha256);
            match tokio::fs::read(&path).await {
                Ok(bytes) => {
                    self.store
                        .modules()
                        .put_bytes(&sha256, bytes::Bytes::from(bytes))
                        .await?;
                }
                Err(error) => {
                    tracing::warn!(%sha256, "a module's bytes are neither stored nor on disk: {error}");
                }
            }
        }
        Ok(())
    }

    /// On a database shared by replicas: compiles here, in the background, every module
    /// that is ready but that this replica has no compiled code of (accepted through
    /// another replica, or while this one was down), now and whenever a module changes,
    /// so that no call waits for a compile a module's upload already paid for elsewhere;
    /// and deletes the files of bytes deleted through another replica at once, rather
    /// than at the next sweep.
    fn follow_replicas(self: &Arc<Self>) {
        let library = Arc::clone(self);
        let mut changes = self.store.module_changes();
        tokio::spawn(async move {
            loop {
                if let Err(error) = library.compile_missing().await {
                    tracing::warn!("cannot look for modules to compile: {error}");
                }
                if let Err(error) = library.forget_unheld_files().await {
                    tracing::warn!("cannot look for deleted modules' files: {error}");
                }
                if changes.changed().await.is_err() {
                    break;
                }
            }
        });
    }

    /// Forgets (file and compiled code) the bytes no module or template holds any more,
    /// but for those being compiled or written in the last [`FRESH_FILE`], and removes
    /// unfinished writes older than that. Each file goes through
    /// [`ModuleLibrary::forget_here`], which asks the rows again under the bytes' lock: on
    /// SQLite, where the file is the bytes' only copy, no file a row holds is taken.
    async fn forget_unheld_files(&self) -> Result<(), ModuleError> {
        let in_use = self.digests_in_use().await?;
        let dir = self.dir.clone();
        let stale = tokio::task::spawn_blocking(move || stale_files(&dir))
            .await
            .map_err(|error| ModuleError::Io(error.to_string()))?;
        for sha256 in stale.modules {
            if !in_use.contains(&sha256) && !locked(&self.compiling).contains(&sha256) {
                tracing::info!(%sha256, "deleting the file of bytes no module holds");
                self.forget_here(&sha256).await;
            }
        }
        for (sha256, path) in stale.unfinished {
            // Under the bytes' lock, which a write holds until its rename: what is left is
            // a write a crash cut short, whose row never committed (`write_whole` syncs the
            // rename before any row holds the bytes).
            let _held = self.hold_bytes(&sha256).await;
            match tokio::fs::remove_file(&path).await {
                Ok(()) => tracing::info!(%sha256, "deleted an unfinished module file"),
                // Renamed into place while the lock was awaited.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(%sha256, "could not delete an unfinished module file: {error}");
                }
            }
        }
        Ok(())
    }

    /// The sha256 of every module's or template's bytes, as a set to look digests up in.
    async fn digests_in_use(&self) -> Result<HashSet<String>, ModuleError> {
        Ok(self
            .store
            .modules()
            .digests_in_use()
            .await?
            .into_iter()
            .collect())
    }

    /// Queues a local compile of each ready module this replica cannot call yet.
    async fn compile_missing(self: &Arc<Self>) -> Result<(), ModuleError> {
        let ready = self
            .store
            .modules()
            .digests_with_status(ModuleStatus::Ready)
            .await?;
        for sha256 in ready {
            let Ok(digest) = sha256.parse::<Digest>() else {
                continue;
            };
            if self.runtime.has_compiled(&digest) || locked(&self.compiling).contains(&sha256) {
                continue;
            }
            let queued = self.gate.queue(INSTALLATION)?;
            self.compile_in_background(sha256, queued, Record::No);
        }
        Ok(())
    }

    /// Queues a compile of these bytes, charged to the organization that queued it, unless
    /// one is queued already.
    fn compile_in_background(self: &Arc<Self>, sha256: String, queued: Queued, record: Record) {
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
            let result = library.compile_queued(&sha256, queued, record).await;
            library
                .compiling
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&sha256);
            if let Err(error) = result {
                tracing::error!(%sha256, "background compile could not record its result: {error}");
            }
            // A deletion heard while it compiled left its file: look again.
            if library.store.is_shared() {
                if let Err(error) = library.forget_unheld_files().await {
                    tracing::warn!("cannot look for deleted modules' files: {error}");
                }
            }
        });
    }

    async fn compile_queued(
        self: &Arc<Self>,
        sha256: &str,
        queued: Queued,
        record: Record,
    ) -> Result<(), ModuleError> {
        let organization = queued.organization();
        let _permit = self.gate.background(queued).await;
        let bounds = self.bounds;
        self.ensure_file(sha256).await?;
        let path = self.path(sha256);
        let runtime = Arc::clone(&self.runtime);
        let result = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path).map_err(|error| LoadError::Invalid {
                encoding: "module",
                reason: format!("its file is unreadable: {error}"),
            })?;
            // Modules stored before the precheck existed are held to it too.
            precheck(&bytes, &bounds)?;
            compile(&runtime, &bytes)
                .map(|loaded| (inspected(&loaded), runtime.needs_optimizing(&loaded)))
        })
        .await
        .map_err(|error| ModuleError::Io(error.to_string()))?;
        if result.is_err() {
            self.gate.refused(organization);
        }
        if record == Record::No {
            // Another replica compiled and recorded these bytes; this one only needed its
            // own copy of the code.
            if let Err(error) = &result {
                tracing::error!(%sha256, "a module ready elsewhere does not compile here: {error}");
            }
            return Ok(());
        }
        let modules = self.store.modules();
        match result {
            Ok((inspected, quick)) => {
                modules.mark_ready(sha256, &inspected).await?;
                if quick {
                    self.optimize_in_background(sha256.to_owned());
                }
            }
            Err(error) => modules.mark_failed(sha256, &error.to_string()).await?,
        }
        Ok(())
    }

    /// Deletes the file of bytes no module uses any more, and drops its compiled form from
    /// memory (its artifacts are left to the sweep, which asks the rows).
    ///
    /// The deletion that found the bytes unheld committed before this runs: an upload or a
    /// template of the same bytes may have committed its row since. So the rows are asked
    /// again under the bytes' lock, which every adder holds from its file's write to its
    /// row's commit ([`ModuleLibrary::hold_bytes`]): the file goes only while no row holds
    /// the bytes, and no adder is between the two. On SQLite the file is the bytes' only
    /// copy. Run on a task of its own, so that a caller that goes away (a client hanging
    /// up on a deletion) does not leave it half done.
    pub async fn forget(self: &Arc<Self>, sha256: &str) {
        let library = Arc::clone(self);
        let sha256 = sha256.to_owned();
        if let Err(error) = tokio::spawn(async move { library.forget_here(&sha256).await }).await {
            tracing::error!("forgetting a module's file ended abruptly: {error}");
        }
    }

    /// [`ModuleLibrary::forget`] on the caller's task: for a caller that is a background
    /// task already (`forget_unheld_files`). It takes the bytes' lock: never call it holding a
    /// stripe.
    async fn forget_here(&self, sha256: &str) {
        let _held = self.hold_bytes(sha256).await;
        match self.store.modules().held(sha256).await {
            Ok(false) => {}
            // Held again, by a row committed since the deletion.
            Ok(true) => return,
            Err(error) => {
                // Kept: a file kept for nothing costs disk, a lost one a module.
                tracing::warn!(%sha256, "cannot tell whether a deleted module's bytes are held again: {error}");
                return;
            }
        }
        if let Ok(digest) = sha256.parse::<Digest>() {
            self.runtime.evict(&digest);
        }
        match tokio::fs::remove_file(self.path(sha256)).await {
            // Gone already: another sweep (on a shared database two may run at once) or
            // deletion took it first.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(%sha256, "could not delete a module file: {error}"),
            Ok(()) => {}
        }
    }

    /// The lock of the bytes `sha256`, held by whoever writes their file and then commits a
    /// row holding them (an upload, a template's registration), and by a deletion's
    /// [`ModuleLibrary::forget`] while it asks the rows and unlinks the file: the two
    /// cannot interleave, so a committed row never finds its file gone.
    pub async fn hold_bytes(&self, sha256: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = sha256.bytes().fold(0_usize, |hash, byte| {
            hash.wrapping_mul(31).wrapping_add(usize::from(byte))
        }) % self.bytes_locks.len();
        self.bytes_locks[stripe].lock().await
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

/// Where the file of the bytes `sha256` is in a library's directory `dir`.
fn module_file(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(format!("{sha256}.wasm"))
}

/// How long a module file, or a compiled artifact, is kept whatever the database says: it
/// may be an upload's whose row is not committed yet.
const FRESH_FILE: std::time::Duration = std::time::Duration::from_secs(60);

/// How often the compiled artifacts no module needs are swept (and once at start): the
/// bound on how long a deleted module's code holds disk. A sweep is a directory listing
/// and one query.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// The files of a module directory older than [`FRESH_FILE`], by what they are.
#[derive(Debug, Default)]
struct StaleFiles {
    /// The sha256 of each module file.
    modules: Vec<String>,
    /// Temporary files of [`write_whole`]'s that a crash left, with their bytes' sha256.
    unfinished: Vec<(String, PathBuf)>,
}

/// The module directory's files older than [`FRESH_FILE`]; any other file is left alone.
fn stale_files(dir: &Path) -> StaleFiles {
    let mut stale = StaleFiles::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return stale;
    };
    for entry in entries.filter_map(Result::ok) {
        let old = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age >= FRESH_FILE));
        if !old {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some((sha256, extension)) = name.split_once('.') else {
            continue;
        };
        if sha256.parse::<Digest>().is_err() {
            continue;
        }
        if extension == "wasm" {
            stale.modules.push(sha256.to_owned());
        } else if extension.starts_with(UNFINISHED) {
            stale.unfinished.push((sha256.to_owned(), entry.path()));
        }
    }
    stale
}

/// How the extension of [`write_whole`]'s temporary file begins.
const UNFINISHED: &str = "tmp-";

/// Writes a file whole under a temporary name, then renames it into place and syncs the
/// directory: a row committed after this finds the file after a crash too, and a temporary
/// file a crash leaves belongs to no row (the sweep deletes it).
/// Present already, it is only touched: its age is what keeps a replica from forgetting it
/// as a deleted module's while an upload of the same bytes is under way ([`FRESH_FILE`]).
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        return std::fs::File::options()
            .write(true)
            .open(path)?
            .set_modified(std::time::SystemTime::now());
    }
    let temporary = path.with_extension(format!("{UNFINISHED}{}", uuid::Uuid::new_v4()));
    std::fs::write(&temporary, bytes)?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, path)?;
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Compiles an upload (on a blocking thread), counted in the compile metrics: with the
/// quick engine when tiered.
fn compile(runtime: &Runtime, bytes: &[u8]) -> Result<Arc<LoadedModule>, LoadError> {
    let _compiling = Held::on(|metrics| metrics.modules_compiling.clone());
    let started = std::time::Instant::now();
    let loaded = runtime.load_quick(bytes);
    if let Some(metrics) = metrics() {
        let result = if loaded.is_ok() { "ok" } else { "failed" };
        metrics
            .compile_seconds
            .get_or_create(&CompileLabels { result })
            .observe(started.elapsed().as_secs_f64());
    }
    loaded
}

/// A set of digests; it holds no invariant a panic could break halfway.
fn locked(set: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    set.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RuntimeConfig;
    use crate::store::modules::DeleteOutcome;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A library on a SQLite store of its own, where the file is the bytes' only copy.
    fn library(dir: &Path) -> Result<Arc<ModuleLibrary>, Box<dyn std::error::Error>> {
        let store = Store::open(&dir.join("wasmhook.db"))?;
        let runtime = Runtime::new(RuntimeConfig {
            max_instances: 2,
            ..RuntimeConfig::default()
        })?;
        let policy = CompilePolicy {
            foreground_bytes: DEFAULT_FOREGROUND_COMPILE_BYTES,
            bounds: ModuleBounds::default(),
            budget: gate::CompileBudget::default(),
        };
        Ok(ModuleLibrary::open(
            dir.join("modules"),
            Arc::new(runtime),
            store,
            policy,
        )?)
    }

    #[tokio::test]
    async fn a_deletion_never_takes_the_file_of_bytes_a_row_holds_again() -> TestResult {
        let dir = tempfile::tempdir()?;
        let library = library(dir.path())?;
        let organization = library
            .store
            .organizations()
            .create("acme", &now_rfc3339())
            .await?;
        let bytes = bytes::Bytes::from(wat::parse_str(
            r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
        )?);
        let module = library
            .add(organization.id, "command".into(), bytes, ModuleQuota::NONE)
            .await?;
        let file = library.path(&module.sha256);
        assert!(file.exists());

        // A deletion that decided the bytes were unheld before this module's row committed
        // (another organization's copy deleted as this upload ran): the row holds them now.
        library.forget(&module.sha256).await;
        assert!(file.exists(), "the file of held bytes was lost");

        // Deleted, while an upload of the same bytes has written its file and not yet
        // committed its row: the deletion's forget waits for the upload's commit, then finds
        // the bytes held again.
        let outcome = library.store.modules().delete(&module).await?;
        assert!(matches!(
            outcome,
            DeleteOutcome::Deleted { last_copy: true }
        ));
        let uploading = library.hold_bytes(&module.sha256).await;
        let forgetting = tokio::spawn({
            let (library, sha256) = (Arc::clone(&library), module.sha256.clone());
            async move { library.forget(&sha256).await }
        });
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!forgetting.is_finished(), "forget waits for the upload");
        let again = library
            .store
            .modules()
            .create(NewModule {
                organization_id: organization.id,
                name: "again",
                sha256: &module.sha256,
                size: module.size,
                inspected: None,
                created_at: &now_rfc3339(),
                bytes: ModuleBytes::InFile,
                quota: ModuleQuota::NONE,
            })
            .await?;
        drop(uploading);
        forgetting.await?;
        assert!(file.exists(), "the file of the upload's bytes was lost");

        // Deleted for good, the file goes.
        let outcome = library.store.modules().delete(&again).await?;
        assert!(matches!(
            outcome,
            DeleteOutcome::Deleted { last_copy: true }
        ));
        library.forget(&module.sha256).await;
        assert!(!file.exists(), "the file of unheld bytes is left");
        Ok(())
    }
}
