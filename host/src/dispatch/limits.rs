//! Concurrency limits: each organization may have so many runs at once (then 429), and
//! the whole installation no more than the runtime's instance pool holds (then runs wait).
//! One organization saturating its share cannot take another's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Concurrent runs per organization unless configured.
pub const DEFAULT_RUNS_PER_ORGANIZATION: usize = 64;

/// An organization is at its limit.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the organization has {limit} runs in progress, its limit; retry shortly")]
pub struct Busy {
    /// The limit.
    pub limit: usize,
}

/// Per-organization and installation-wide run slots.
#[derive(Debug)]
pub struct RunLimits {
    per_organization: usize,
    organizations: Mutex<HashMap<u64, Arc<Semaphore>>>,
    installation: Arc<Semaphore>,
}

/// Slots held by a request for its runs; released when dropped.
#[derive(Debug)]
pub struct RunSlots {
    _organization: OwnedSemaphorePermit,
}

impl RunLimits {
    /// Limits with `per_organization` runs each and `installation` in all.
    pub fn new(per_organization: usize, installation: usize) -> Self {
        RunLimits {
            per_organization: per_organization.max(1),
            organizations: Mutex::new(HashMap::new()),
            installation: Arc::new(Semaphore::new(installation.max(1))),
        }
    }

    /// The per-organization limit.
    pub fn per_organization(&self) -> usize {
        self.per_organization
    }

    /// Takes `runs` of the organization's slots now, or says it is busy.
    pub fn try_acquire(&self, organization_id: u64, runs: usize) -> Result<RunSlots, Busy> {
        let semaphore = {
            let mut organizations = self
                .organizations
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(
                organizations
                    .entry(organization_id)
                    .or_insert_with(|| Arc::new(Semaphore::new(self.per_organization))),
            )
        };
        let wanted = u32::try_from(runs.clamp(1, self.per_organization)).unwrap_or(1);
        semaphore
            .try_acquire_many_owned(wanted)
            .map(|permit| RunSlots {
                _organization: permit,
            })
            .map_err(|_| Busy {
                limit: self.per_organization,
            })
    }

    /// Waits for one instance slot of the installation.
    pub async fn instance(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.installation).acquire_owned().await.ok()
    }
}
