//! The `[limits]` section: per-installation and per-organization limits (runs, modules,
//! memory, compiles), and their translation into the memory budget and the compile policy.
//! A file of its own, as every section, so that a section's settings, defaults and checks
//! read together.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::environment::{with_environment, Section, Variables};
use super::error::{at_least, at_most, ConfigError};
use crate::store::usage::Stored;

/// Bytes in a MiB, for the settings given in MiB.
const MIB: u64 = 1024 * 1024;
/// The shortest guest slice: a tick every 100 µs already wakes the epoch thread 10,000
/// times a second.
const MIN_GUEST_SLICE_US: u64 = 100;
/// The longest guest slice: a tenth of a second, past which a quiet organization's call
/// would wait too long for a slot and a deadline be noticed too late.
const MAX_GUEST_SLICE_US: u64 = 100_000;
/// The longest a run-log read may take: a minute of a read connection (of two) is already
/// more than any person waits for a list.
const MAX_LOG_QUERY_MS: u64 = 60_000;
/// The largest quota of run logs or events an organization may have: a PiB, well within
/// the 64-bit integers the database counts bytes in.
const MAX_STORED_MB_PER_ORGANIZATION: u64 = 1 << 30;
/// The largest per-function compile cache: 4 GiB holds the functions of hundreds of
/// interpreters' worth of modules; a larger number would be no bound at all.
const MAX_COMPILE_CACHE_MB: u64 = 4096;

/// Per-installation and per-organization limits; each has a default and an environment
/// variable (`WASMHOOK_<NAME>` in capitals).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Concurrent runs per organization; more get 429.
    pub runs_per_organization: usize,
    /// Deliveries of non-interactive events (retries, polling, later hooks) one
    /// organization may have not yet finished; a new event beyond it gets 429, so that one
    /// organization cannot fill the queue every replica's worker reads.
    pub unfinished_deliveries_per_organization: u64,
    /// Hooks per organization; a new one beyond gets 409. It also bounds how many hooks
    /// one event of an organization runs, and the run_after chains a save checks.
    pub hooks_per_organization: u64,
    /// Queues per organization; a new one beyond gets 409. Each costs a row, and a hook
    /// that sideloads its queues reads each of them on every run.
    pub queues_per_organization: u64,
    /// Modules per organization.
    pub modules_per_organization: u64,
    /// Module bytes per organization.
    pub module_bytes_per_organization: u64,
    /// Modules up to this size compile while their upload waits; larger ones in the
    /// background.
    pub foreground_compile_bytes: usize,
    /// Days run logs are kept.
    pub log_retention_days: u64,
    /// Milliseconds a run-log read (`GET /hooks/logs`) may take; one that scans longer, a
    /// `search` over a busy organization's week of logs say, is stopped and answered 400,
    /// asking for a narrower filter. Such reads never hold the connection run logs are
    /// written on, and an organization's run one at a time in each replica (one that waits
    /// longer than this for its turn gets 429).
    pub log_query_ms: u64,
    /// MiB of run logs one organization may keep (a log counts its stored record and 256
    /// bytes for its row). Past it, its oldest logs are deleted, within a second, until it
    /// keeps 90% of this: so that one organization's logs, written as fast as its calls
    /// end, cannot fill the disk every organization's are on before the retention deletes
    /// them. 0: no quota (the retention alone).
    pub log_mb_per_organization: u64,
    /// MiB of finished non-interactive events one organization may keep (an event counts
    /// its body, each of its deliveries' response and message, and 256 bytes for itself
    /// and each delivery). Past it, its oldest finished events are deleted, within a second,
    /// until it keeps 90% of this: `POST /events` can store up to a MiB a hook an event,
    /// kept as long as run logs are. 0: no quota (the retention alone).
    pub event_mb_per_organization: u64,
    /// The most seconds a hook's `config.timeout_s` may ask.
    pub max_timeout_s: u64,
    /// The most MiB a hook's `config.memory_size_mb` may ask.
    pub max_memory_mb: u64,
    /// Compiled modules kept loaded in memory, the most recently called first; the others
    /// are mapped again from their artifact on their next call (about 0.3 ms for a Rust
    /// module). A loaded Rust module holds about 1 MB resident.
    pub loaded_modules: usize,
    /// MiB of guest memory that running hooks may reserve in all (each run reserves its
    /// `config.memory_size_mb` before it starts; beyond this, runs wait). 0: three quarters
    /// of the machine's (or the container's) memory.
    pub memory_budget_mb: u64,
    /// MiB of that one organization may reserve (beyond it, its calls get 429). 0: half
    /// the budget. Never below `max_memory_mb`.
    pub memory_per_organization_mb: u64,
    /// Modules compiled at once in the whole installation.
    pub concurrent_compiles: usize,
    /// Seconds of compiling one organization may spend per 10 minutes; then uploads get 429.
    pub compile_seconds_per_organization: u64,
    /// Uploads of one organization that may be refused per 10 minutes; then uploads get 429.
    pub refused_uploads_per_organization: u64,
    /// Compile uploads with Winch first (wasmtime's single-pass compiler: about a fifth of
    /// Cranelift's compile time, calls 1.4-5x slower), so that their first calls need not
    /// wait for the optimizing compiler, and compile their optimized code (Cranelift) in the
    /// background, one at a time and at low priority, swapped in when ready
    /// (`wasmhook_modules_optimized_total`; BENCHMARKS.md, Tiers). The time limit and the
    /// instruction budget hold on both. A module Winch cannot compile is compiled by
    /// Cranelift at once. Off: every upload waits for Cranelift.
    pub tiered_compile: bool,
    /// MiB of compiled functions kept in memory, shared by every organization's uploads, so
    /// that a function compiled before (the same code in any module: the parts of `std`
    /// and of the bindings every module of a toolchain carries) is not compiled again
    /// (BENCHMARKS.md, the compile cache); at most 4096. Cranelift's: with `tiered_compile`
    /// it serves the background compiles and what Winch refuses, not the upload's Winch
    /// compile. Off (0) by default: how quickly an upload compiles tells its organization
    /// whether another compiled the same function, so turn it on only where organizations
    /// trust each other.
    pub compile_cache_mb: u64,
    /// The most seconds a hook's `config.reuse_instances.idle_s` may ask: how long an idle
    /// warm instance may keep its memory waiting for its hook's next call.
    pub max_reuse_idle_s: u64,
    /// Idle warm instances kept in all, for hooks with `config.reuse_instances`; the oldest
    /// is discarded to make room. Each holds its guest memory and a place in the instance
    /// pool, which running calls then have less of (at most half the pool's 256 are kept).
    /// 0 turns reuse off.
    pub warm_instances: usize,
    /// Idle warm instances one organization may keep (its oldest is discarded to make
    /// room), so that one cannot take every place.
    pub warm_instances_per_organization: usize,
    /// The most guest memory (MiB) idle warm instances keep in all, counted by their hooks'
    /// `memory_size_mb`; the oldest are discarded to make room. It comes on top of
    /// `memory_budget_mb`, which reserves memory for running calls only (the budget worked
    /// out from the machine leaves it out). 0 keeps no warm instance.
    pub warm_memory_mb: u64,
    /// How much lower than the server's own the priority of the threads guests move to
    /// after their first millisecond is: the nice value added to the server's (0 to 19; the
    /// result is capped at 19; calls past 10 ms move 9 lower still, at most to 19, and to
    /// `SCHED_IDLE`, which yields the core to any other thread that wants it). The threads that
    /// accept requests, answer them and commit run logs then run first, so one
    /// organization's CPU-bound guests do not slow another's calls; a short call ends on
    /// the server's thread, with no hand-off.
    pub guest_nice: u64,
    /// Microseconds a guest runs before it yields its CPU slot to a waiting call of
    /// another organization (the epoch tick, which also bounds how late a deadline is
    /// noticed); 100 to 100000. Shorter slices cost more switches between guests, longer
    /// ones make a quiet organization wait longer and deadlines coarser.
    pub guest_slice_us: u64,
}

/// An organization's quota of bytes of a kind of row ([`Limits::log_mb_per_organization`],
/// [`Limits::event_mb_per_organization`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredQuota {
    /// Past this, an organization's oldest rows are deleted.
    pub bytes: u64,
    /// Until it keeps this much: a margin below the quota, so that an organization at its
    /// quota is not trimmed again after each call.
    pub trimmed_to: u64,
}

impl StoredQuota {
    /// A quota of `bytes`, trimmed to 90% of it; none for 0.
    fn of(bytes: u64) -> Option<Self> {
        (bytes > 0).then_some(StoredQuota {
            bytes,
            trimmed_to: bytes / 10 * 9,
        })
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            runs_per_organization: crate::dispatch::limits::DEFAULT_RUNS_PER_ORGANIZATION,
            unfinished_deliveries_per_organization: 1000,
            hooks_per_organization: 500,
            queues_per_organization: 1000,
            modules_per_organization: 100,
            module_bytes_per_organization: 2 * 1024 * 1024 * 1024,
            foreground_compile_bytes: crate::modules::DEFAULT_FOREGROUND_COMPILE_BYTES,
            log_retention_days: 7,
            log_query_ms: 2000,
            log_mb_per_organization: 1024,
            event_mb_per_organization: 1024,
            max_timeout_s: 60,
            max_memory_mb: 512,
            loaded_modules: crate::runtime::DEFAULT_MODULE_CACHE_CAPACITY,
            memory_budget_mb: 0,
            memory_per_organization_mb: 0,
            concurrent_compiles: crate::modules::gate::CompileBudget::default().concurrent,
            compile_seconds_per_organization: crate::modules::gate::CompileBudget::default()
                .seconds_per_window,
            refused_uploads_per_organization: crate::modules::gate::CompileBudget::default()
                .refusals_per_window,
            tiered_compile: true,
            compile_cache_mb: 0,
            max_reuse_idle_s: crate::runtime::DEFAULT_WARM_BOUNDS.max_idle.as_secs(),
            warm_instances: crate::runtime::DEFAULT_WARM_BOUNDS.total,
            warm_instances_per_organization: crate::runtime::DEFAULT_WARM_BOUNDS.per_organization,
            warm_memory_mb: crate::runtime::DEFAULT_WARM_BOUNDS.memory_bytes / MIB,
            guest_nice: u64::from(crate::runtime::DEFAULT_GUEST_NICE),
            guest_slice_us: u64::try_from(crate::runtime::config::DEFAULT_EPOCH_TICK.as_micros())
                .unwrap_or(u64::MAX),
        }
    }
}

impl Limits {
    /// Overrides from `WASMHOOK_*` variables, then the checks.
    pub(super) fn with_environment(self, variables: Variables<'_>) -> Result<Self, ConfigError> {
        let limits: Self = with_environment(self, Section::Limits, variables)?;
        limits.checked()
    }

    fn checked(self) -> Result<Self, ConfigError> {
        // What 0 would do to the compile limits.
        const EVERY_UPLOAD: &str = " (0 would refuse every upload)";
        at_least("max_timeout_s", self.max_timeout_s, 1, "")?;
        at_least("hooks_per_organization", self.hooks_per_organization, 1, "")?;
        at_least(
            "queues_per_organization",
            self.queues_per_organization,
            1,
            "",
        )?;
        at_least(
            "unfinished_deliveries_per_organization",
            self.unfinished_deliveries_per_organization,
            1,
            "",
        )?;
        at_least("max_memory_mb", self.max_memory_mb, 16, "")?;
        at_least("max_reuse_idle_s", self.max_reuse_idle_s, 1, "")?;
        at_least("log_query_ms", self.log_query_ms, 1, "")?;
        at_most("log_query_ms", self.log_query_ms, MAX_LOG_QUERY_MS)?;
        at_most(
            "log_mb_per_organization",
            self.log_mb_per_organization,
            MAX_STORED_MB_PER_ORGANIZATION,
        )?;
        at_most(
            "event_mb_per_organization",
            self.event_mb_per_organization,
            MAX_STORED_MB_PER_ORGANIZATION,
        )?;
        at_most(
            "guest_nice",
            self.guest_nice,
            u64::from(crate::runtime::MAX_NICE),
        )?;
        at_least(
            "guest_slice_us",
            self.guest_slice_us,
            MIN_GUEST_SLICE_US,
            "",
        )?;
        at_most("guest_slice_us", self.guest_slice_us, MAX_GUEST_SLICE_US)?;
        at_most(
            "compile_cache_mb",
            self.compile_cache_mb,
            MAX_COMPILE_CACHE_MB,
        )?;
        at_least(
            "concurrent_compiles",
            self.concurrent_compiles,
            1,
            EVERY_UPLOAD,
        )?;
        at_least(
            "compile_seconds_per_organization",
            self.compile_seconds_per_organization,
            1,
            EVERY_UPLOAD,
        )?;
        at_least(
            "refused_uploads_per_organization",
            self.refused_uploads_per_organization,
            1,
            EVERY_UPLOAD,
        )?;
        Ok(self)
    }

    /// The guest memory budget: as configured, else from the machine's memory.
    pub fn memory_budget(&self) -> crate::dispatch::limits::MemoryBudget {
        use crate::dispatch::limits::MemoryBudget;
        let machine = MemoryBudget::for_machine(self.max_memory_mb);
        let total_mb = match self.memory_budget_mb {
            // What idle warm instances may keep is theirs, not the running calls'.
            0 => machine.total_mb.saturating_sub(self.warm_memory_mb),
            configured => configured,
        };
        let per_organization_mb = match self.memory_per_organization_mb {
            0 => total_mb / 2,
            configured => configured,
        };
        MemoryBudget {
            total_mb,
            per_organization_mb,
        }
        .at_least(self.max_memory_mb)
    }

    /// What an organization may keep of each kind of row that grows with its calls (run
    /// logs, finished events), in bytes, and what trimming leaves; the kinds without a
    /// quota left out.
    pub fn stored_quotas(&self) -> Vec<(Stored, StoredQuota)> {
        [
            (Stored::RunLogs, self.log_mb_per_organization),
            (Stored::Events, self.event_mb_per_organization),
        ]
        .into_iter()
        .filter_map(|(kind, mb)| Some((kind, StoredQuota::of(mb.checked_mul(MIB)?)?)))
        .collect()
    }

    /// How many idle warm instances the runtime keeps (never more than `most`), and for
    /// how long at most.
    pub fn warm_bounds(&self, most: usize) -> crate::runtime::WarmBounds {
        crate::runtime::WarmBounds {
            total: self.warm_instances.min(most),
            per_organization: self.warm_instances_per_organization,
            max_idle: std::time::Duration::from_secs(self.max_reuse_idle_s),
            memory_bytes: self.warm_memory_mb.saturating_mul(MIB),
        }
    }

    /// The per-function compile cache's size in bytes, as the runtime takes it.
    pub fn compile_cache_bytes(&self) -> usize {
        usize::try_from(self.compile_cache_mb.saturating_mul(MIB)).unwrap_or(usize::MAX)
    }

    /// The guest threads' nice value, as the runtime takes it (checked at most 19).
    pub fn guest_nice(&self) -> u8 {
        u8::try_from(self.guest_nice)
            .unwrap_or(crate::runtime::MAX_NICE)
            .min(crate::runtime::MAX_NICE)
    }

    /// A guest's slice: the runtime's epoch tick.
    pub fn guest_slice(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.guest_slice_us)
    }

    /// How the module library bounds compiles.
    ///
    /// `concurrent_compiles` counts the installation's places; one of them at most is used
    /// by a background compile.
    pub fn compile_policy(&self) -> crate::modules::CompilePolicy {
        crate::modules::CompilePolicy {
            foreground_bytes: self.foreground_compile_bytes,
            bounds: crate::runtime::precheck::ModuleBounds::default(),
            budget: crate::modules::gate::CompileBudget {
                concurrent: self.concurrent_compiles.max(1),
                seconds_per_window: self.compile_seconds_per_organization,
                refusals_per_window: self.refused_uploads_per_organization,
                ..crate::modules::gate::CompileBudget::default()
            },
        }
    }
}
