//! Tiered compilation's second step: a module's optimized code, compiled in the
//! background behind the compile gate on a thread of lower priority, then swapped in for
//! its quick code.

use std::sync::Arc;

use super::{locked, ModuleError, ModuleLibrary, INSTALLATION};
use crate::metrics::{metrics, Held};
use crate::runtime::LoadError;

/// The nice value of the thread compiling a module's optimized code: below every call and
/// every upload waiting for its compile.
const OPTIMIZER_NICE: i32 = 10;

impl ModuleLibrary {
    /// Starts the compile of a module's optimized code (tiered compilation), unless one
    /// was started already. Its end is logged and counted; a failure leaves the module on
    /// its quick code, which runs correctly, only slower.
    pub(super) fn optimize_in_background(self: &Arc<Self>, sha256: String) {
        if !locked(&self.optimizing).insert(sha256.clone()) {
            return;
        }
        let library = Arc::clone(self);
        tokio::spawn(async move {
            match library.optimize(&sha256).await {
                Ok(compiled) => {
                    locked(&library.optimizing).remove(&sha256);
                    if compiled {
                        tracing::info!(%sha256, "optimized code swapped in");
                        if let Some(metrics) = metrics() {
                            metrics.modules_optimized.inc();
                        }
                    }
                }
                Err(error) => {
                    // Bytes deleted meanwhile (their module forgotten) may be uploaded
                    // again, and then deserve their optimized code; any other failure is
                    // not tried again before a restart.
                    if !library.path(&sha256).exists() {
                        locked(&library.optimizing).remove(&sha256);
                    }
                    tracing::warn!(
                        %sha256,
                        "could not compile the optimized code; the module keeps its quick code: {error}"
                    );
                }
            }
        });
    }

    /// Compiles a module's optimized code: behind the gate's background place, charged to
    /// the installation (never refused, and taking turns with organizations' large
    /// uploads), on a thread of its own whose priority is lowered.
    async fn optimize(&self, sha256: &str) -> Result<bool, ModuleError> {
        let queued = self.gate.queue(INSTALLATION)?;
        let _permit = self.gate.background(queued).await;
        let path = self.path(sha256);
        let runtime = Arc::clone(&self.runtime);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("wasmhook-optimize".into())
            .spawn(move || {
                lower_priority();
                // No longer counted as compiling once the swap can be counted (the
                // receiver counts it): the gauge is down before the counter is up.
                let optimized = {
                    let _compiling = Held::on(|metrics| metrics.modules_compiling.clone());
                    std::fs::read(&path)
                        .map_err(|error| LoadError::Invalid {
                            encoding: "module",
                            reason: format!("its file is unreadable: {error}"),
                        })
                        .and_then(|bytes| runtime.optimize(&bytes))
                };
                // The receiver is gone only if the server is shutting down.
                let _ = sender.send(optimized);
            })
            .map_err(|error| ModuleError::Io(error.to_string()))?;
        let optimized = receiver
            .await
            .map_err(|_| ModuleError::Io("the optimizing thread ended without an answer".into()))?;
        Ok(optimized?)
    }
}

/// Lowers the calling thread's priority to [`OPTIMIZER_NICE`] (on Linux a nice value is
/// the thread's own), never raising it; where that is refused, the compile runs at the
/// thread's priority, still one at a time behind the gate.
fn lower_priority() {
    let current = rustix::process::getpriority_process(None).unwrap_or(0);
    if current < OPTIMIZER_NICE {
        if let Err(error) = rustix::process::setpriority_process(None, OPTIMIZER_NICE) {
            tracing::debug!("could not lower the optimizer's priority: {error}");
        }
    }
}
