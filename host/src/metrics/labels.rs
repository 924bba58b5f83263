//! The label sets of the series in [`super::Metrics`]: typed, so that a label takes only
//! the values its type allows.

use prometheus_client::encoding::EncodeLabelSet;

/// The labels of `runs_total`: whose run it was, of which kind, and how it ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// The organization (empty when organization labels are off).
    pub organization: Option<u64>,
    /// `function` or `webhook`.
    pub kind: &'static str,
    /// The run log's status.
    pub status: &'static str,
}

/// A part of a run.
#[derive(
    Debug, Clone, Copy, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue,
)]
#[allow(non_camel_case_types)]
pub enum Phase {
    /// Getting the module ready for the run: about 0 when it is loaded, mapping its
    /// artifact when it is not (compiles happen at upload, and are counted in
    /// `module_compile_seconds`).
    load,
    /// Instantiating the guest.
    instantiate,
    /// The guest's own work, from instantiation to its answer.
    guest,
    /// A webhook's exchange, polling included.
    webhook,
    /// Handing the run log to the writer until it is committed.
    log_write,
}

/// The label of `run_phase_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// Which part of the run the time was spent in.
    pub phase: Phase,
}

/// A stage of one call of a module, from the dispatcher's wait for an instance to its run
/// log's commit, for `call_stage_duration_seconds`: where a call's time goes under load.
#[derive(
    Debug, Clone, Copy, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue,
)]
#[allow(non_camel_case_types)]
pub enum Stage {
    /// Waiting for an instance and guest memory from the installation's budget.
    queue,
    /// Handing the guest's part to a guest thread and its result back (see
    /// `runtime/threads.rs`): the time to the guest thread's first poll and back to the
    /// caller's.
    handoff,
    /// Waiting for CPU slots of the fair scheduler, summed over the call.
    cpu_slot,
    /// Instantiating the guest (a slot wait inside it included).
    instantiate,
    /// The guest's own work (slot waits inside it included).
    guest,
    /// Waiting for the run log's commit.
    log_commit,
    /// The whole call, from the wait for an instance to the run log's commit.
    total,
}

impl Stage {
    /// Every stage, in the order a call goes through them: for readers of the histogram
    /// that must name each one (the server's tests check that every call observed each).
    pub const ALL: [Stage; 7] = [
        Stage::queue,
        Stage::handoff,
        Stage::cpu_slot,
        Stage::instantiate,
        Stage::guest,
        Stage::log_commit,
        Stage::total,
    ];

    /// The label's value as `/metrics` writes it. A match, so that a new stage cannot be
    /// added without a name here (and a look at [`Stage::ALL`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::queue => "queue",
            Stage::handoff => "handoff",
            Stage::cpu_slot => "cpu_slot",
            Stage::instantiate => "instantiate",
            Stage::guest => "guest",
            Stage::log_commit => "log_commit",
            Stage::total => "total",
        }
    }
}

/// The label of `call_stage_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// Which stage of the call the time was spent in.
    pub stage: Stage,
}

/// The one label of the series counted per organization (`runs_in_flight`,
/// `throttled_requests_total`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrganizationLabels {
    /// The organization (empty when organization labels are off).
    pub organization: Option<u64>,
}

/// The label of `outbound_refusals_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why, as a fixed word of the code.
    pub reason: &'static str,
}

/// The label of `outbound_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutboundLabels {
    /// `ok`, or why it got no answer.
    pub result: &'static str,
}

/// The label of `webhook_deliveries_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// How the delivery ended: `completed`, `failed` or `timeout`.
    pub status: &'static str,
}

/// The label of `module_compile_seconds`, so that failed compiles are told from good ones.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CompileLabels {
    /// `ok` or `failed`.
    pub result: &'static str,
}

/// An HTTP request's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The method (`other` for an unusual one).
    pub method: &'static str,
    /// The route as the router declares it (`/api/v1/hooks/{id}`), or `unmatched`.
    pub route: String,
    /// The answer's status.
    pub status: u16,
}

/// An HTTP route's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route as the router declares it, or `unmatched`.
    pub route: String,
}

/// The version of the running build.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate's version.
    pub version: &'static str,
    /// The git commit it was built from.
    pub commit: &'static str,
    /// The version of the wasmtime crate it embeds, as `Cargo.lock` pins it.
    pub wasmtime: &'static str,
}

/// The label of `run_seconds`: a function's time and a webhook's are told apart, for they
/// are slow for different reasons.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunKindLabels {
    /// `function` or `webhook`.
    pub kind: &'static str,
}

/// What a call ran on: an instance made for it, or a warm one of its hook.
#[derive(
    Debug, Clone, Copy, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue,
)]
#[allow(non_camel_case_types)]
pub enum InstanceKind {
    /// Made for the call (every call of a hook without `config.reuse_instances`).
    fresh,
    /// Kept from an earlier call of the same hook.
    reused,
}

/// What a lookup of the per-function compile cache found (`[limits] compile_cache_mb`).
#[derive(
    Debug, Clone, Copy, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue,
)]
#[allow(non_camel_case_types)]
pub enum CacheLookup {
    /// The function's code was there: it was not compiled.
    hit,
    /// It was not: the function was compiled (and its code kept, when it fits).
    miss,
}

/// The label of `compile_cache_lookups_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLookupLabels {
    /// Hit or miss.
    pub result: CacheLookup,
}

/// The label of `instances_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    /// Fresh or reused.
    pub kind: InstanceKind,
}

/// Which checkpoint of SQLite's write-ahead log was timed (`store/checkpoint.rs`).
#[derive(
    Debug, Clone, Copy, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue,
)]
#[allow(non_camel_case_types)]
pub enum Checkpoint {
    /// Copies the log into the database beside the writer, never blocking it.
    passive,
    /// Copies the rest and starts the log over: the run log writer waits for it.
    restart,
}

/// The label of `sqlite_checkpoint_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckpointLabels {
    /// Passive or restarting.
    pub mode: Checkpoint,
}
