//! The per-call memory and table limits, and the record of whether a guest hit them.
//!
//! A memory-limit hit shows up as an ordinary trap (the guest's allocator fails and it
//! aborts) or as a guest-reported error, never as a distinct `Trap` variant, so the
//! limiter keeps a flag that the outcome classifier reads.

use wasmtime::ResourceLimiter;

/// Table elements a guest may grow its tables to; generous for interpreters (Python and
/// JavaScript guests carry tens of thousands of functions) while bounding host memory.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Enforces one call's memory bound across all of the instance's linear memories.
#[derive(Debug)]
pub(crate) struct CallLimiter {
    memory_limit: usize,
    memory_in_use: usize,
    memory_exceeded: bool,
}

impl CallLimiter {
    /// A limiter allowing `memory_limit` bytes of linear memory in total.
    pub(crate) fn new(memory_limit: usize) -> Self {
        CallLimiter {
            memory_limit,
            memory_in_use: 0,
            memory_exceeded: false,
        }
    }

    /// Whether the guest asked for more memory than it may have.
    pub(crate) fn memory_exceeded(&self) -> bool {
        self.memory_exceeded
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.memory_in_use - current.min(self.memory_in_use) + desired;
        if after > self.memory_limit {
            self.memory_exceeded = true;
            return Ok(false);
        }
        self.memory_in_use = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    // The pooling allocator enforces these per component; an engine that allocates on
    // demand (tiered compilation's quick one) does not, so the limiter holds every store
    // to the same counts: without them a small component of a thousand memories would
    // reserve terabytes of address space per call.
    fn instances(&self) -> usize {
        super::engine::MAX_CORE_INSTANCES_PER_COMPONENT as usize
    }

    fn memories(&self) -> usize {
        super::engine::MAX_MEMORIES_PER_COMPONENT as usize
    }

    fn tables(&self) -> usize {
        super::engine::MAX_TABLES_PER_COMPONENT as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_memory_across_growths_and_flags_the_excess() -> wasmtime::Result<()> {
        let mut limiter = CallLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None)?);
        assert!(limiter.memory_growing(60, 90, None)?);
        assert!(!limiter.memory_exceeded());
        assert!(!limiter.memory_growing(90, 120, None)?);
        assert!(limiter.memory_exceeded());
        Ok(())
    }
}
