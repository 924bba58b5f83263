//! The per-function compile cache (`[limits] compile_cache_mb`, off by default), at its
//! default size when on (64 MiB): what an upload's first
//! call waits for (its compile and the call) for the hello example of every language and
//! form, three ways:
//!
//! - **cold**: the cache off, or empty: the first module of its toolchain;
//! - **after invoice-check**: the invoice-check example of the same language and form
//!   compiled first: a new module of a toolchain the installation has seen;
//! - **again**: hello itself compiled before and its compiled module gone (an eviction, or
//!   the same code uploaded with a change elsewhere): all of its functions are found.
//!
//! with the share of hello's functions found in the cache. Prints the Markdown table that
//! BENCHMARKS.md quotes. `cargo bench -p wasmhook --bench compile_cache` (a few minutes
//! here: Python and JavaScript compile for seconds). A plain harness, as `tiers`.

#![allow(clippy::print_stdout)] // The table on stdout is what this benchmark is for.

mod common;

use std::time::{Duration, Instant};

use common::{invocation, measuring, median, time, tokio};

use wasmhook::runtime::{
    CallLimits, Digest, Invocation, Runtime, RuntimeConfig, DEFAULT_FUNCTION_CACHE_BYTES,
};
use wasmhook_tests::guests::EXAMPLES;

/// Uploads measured per way; the median is reported.
const SAMPLES: usize = 3;

/// A runtime of its own for one measurement: no disk cache, so every load compiles.
fn runtime(function_cache_bytes: usize) -> Runtime {
    Runtime::new(RuntimeConfig {
        function_cache_bytes,
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .expect("the runtime starts")
}

/// Compile and first call of `bytes` on `runtime`, and the share of function lookups that
/// hit during the compile.
fn upload(
    tokio: &tokio::runtime::Runtime,
    runtime: &Runtime,
    bytes: &[u8],
    invocation: &Invocation,
) -> (Duration, f64) {
    let before = runtime.function_cache_stats().unwrap_or_default();
    let start = Instant::now();
    let module = runtime.load(bytes).expect("the example loads");
    let report = tokio.block_on(runtime.call(&module, invocation, &CallLimits::default()));
    let elapsed = start.elapsed();
    assert!(report.outcome.is_completed(), "{:?}", report.outcome);
    let after = runtime.function_cache_stats().unwrap_or_default();
    let (hits, misses) = (after.hits - before.hits, after.misses - before.misses);
    let share = if hits + misses == 0 {
        0.0
    } else {
        hits as f64 / (hits + misses) as f64
    };
    (elapsed, share)
}

fn main() {
    if !measuring() {
        return;
    }
    let tokio = tokio();
    let invocation = invocation();
    let on = DEFAULT_FUNCTION_CACHE_BYTES;
    println!("| hello | cold (cache off) | after invoice-check | found | again | found |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (_, form, path) in EXAMPLES.iter().filter(|(name, _, _)| *name == "hello") {
        let Some((_, _, sibling)) = EXAMPLES
            .iter()
            .find(|(name, other, _)| *name == "invoice-check" && other == form)
        else {
            continue;
        };
        eprintln!("measuring {form}");
        let bytes = std::fs::read(path).expect("the example was built");
        let sibling = std::fs::read(sibling).expect("the example was built");
        let mut cold = Vec::new();
        let mut after = Vec::new();
        let mut again = Vec::new();
        let (mut after_share, mut again_share) = (0.0, 0.0);
        for _ in 0..SAMPLES {
            cold.push(upload(&tokio, &runtime(0), &bytes, &invocation).0);
            let warm = runtime(on);
            warm.load(&sibling).expect("invoice-check loads");
            let (time, share) = upload(&tokio, &warm, &bytes, &invocation);
            after.push(time);
            after_share = share;
            warm.evict(&Digest::of(&bytes));
            let (time, share) = upload(&tokio, &warm, &bytes, &invocation);
            again.push(time);
            again_share = share;
        }
        println!(
            "| {form} | {} | {} ({:.2}x) | {:.0}% | {} ({:.2}x) | {:.0}% |",
            time(median(cold.clone())),
            time(median(after.clone())),
            ratio(median(after), median(cold.clone())),
            after_share * 100.0,
            time(median(again.clone())),
            ratio(median(again), median(cold)),
            again_share * 100.0,
        );
    }
    println!();
    println!(
        "Each figure is an upload's compile and its first call (median of {SAMPLES}); ratios \
         are against cold; found: the share of hello's functions whose code the cache had."
    );
}

fn ratio(time: Duration, cold: Duration) -> f64 {
    time.as_secs_f64() / cold.as_secs_f64()
}
