//! The two tiers of tiered compilation, Winch (the quick one) against Cranelift at `speed`,
//! for the hello example in every language and form: the compile at upload, a call on a
//! fresh instance, and the two together (what an upload's first call waits for), each as a
//! ratio of quick to `speed`; and the background compile of the optimized code that
//! tiered compilation adds. Prints the Markdown table that BENCHMARKS.md (Tiers) quotes,
//! which decides whether tiered compilation (`[limits] tiered_compile`) pays.
//!
//! `speed` is measured as an upload compiles without tiers (a runtime without them); the
//! quick tier as the server runs it (a tiered runtime's quick engine, `Runtime::load_quick`:
//! instances allocated on demand), and the background compile on
//! that runtime's optimizing engine (`Runtime::optimize`: one thread; the server also
//! lowers its priority). A module Winch cannot compile is compiled by Cranelift on the
//! quick path too: its row says so.
//!
//! `cargo bench -p wasmhook --bench tiers` (a few minutes here: Python and JavaScript take
//! seconds per compile at `speed`). A plain harness, as `languages`: a compile of an 18 MB
//! module takes about ten seconds, so three samples, not a hundred, are affordable.

#![allow(clippy::print_stdout)] // The table on stdout is what this benchmark is for.

mod common;

use std::time::{Duration, Instant};

use common::{invocation, measuring, median, time, tokio};

use wasmhook::runtime::{
    CallLimits, CodeTier, Digest, Invocation, LoadedModule, OptLevel, Runtime, RuntimeConfig,
};

/// Which tier is measured.
#[derive(Clone, Copy)]
enum Tier {
    /// The quick engine of a tiered runtime.
    Quick,
    /// A runtime without tiers, at `speed`.
    Optimized,
}
use wasmhook_tests::guests::EXAMPLES;

/// Compiles measured per module and tier; the median is reported.
const COMPILES: usize = 3;
/// Calls measured per module and tier after [`WARM_UP`] unmeasured ones; p50 is reported.
const CALLS: usize = 200;
const WARM_UP: usize = 20;

/// One module at one tier.
struct Measured {
    compile: Duration,
    /// The first call after the compile: what an upload's first call adds to it.
    first_call: Duration,
    call_p50: Duration,
    /// The background compile of the optimized code, once (quick tier only; none when the
    /// quick path compiled optimized code already).
    optimize: Option<Duration>,
    /// Which compiler the path used.
    code: CodeTier,
}

struct Row {
    form: &'static str,
    quick: Measured,
    speed: Measured,
}

fn measure(
    tokio: &tokio::runtime::Runtime,
    form: &str,
    bytes: &[u8],
    tier: Tier,
    invocation: &Invocation,
) -> Measured {
    // No disk cache and no per-function cache: every load compiles all of the module, as
    // the first upload of its toolchain does (the `compile_cache` bench measures the rest).
    // One runtime at a time, so that two pools never reserve their address space at once.
    let runtime = Runtime::new(RuntimeConfig {
        tiered: matches!(tier, Tier::Quick),
        function_cache_bytes: 0,
        ..RuntimeConfig::default()
    })
    .expect("the runtime starts");
    let load = |bytes: &[u8]| match tier {
        Tier::Quick => runtime.load_quick(bytes),
        Tier::Optimized => runtime.load(bytes),
    };
    let digest = Digest::of(bytes);
    let limits = CallLimits::default();
    let call = |module: &LoadedModule| {
        let start = Instant::now();
        let report = tokio.block_on(runtime.call(module, invocation, &limits));
        let elapsed = start.elapsed();
        assert!(
            report.outcome.is_completed(),
            "{form} on {}: {:?}",
            module.code(),
            report.outcome
        );
        elapsed
    };
    let mut compiles = Vec::with_capacity(COMPILES);
    let mut first_calls = Vec::with_capacity(COMPILES);
    for _ in 0..COMPILES {
        runtime.evict(&digest);
        let start = Instant::now();
        let module = load(bytes).expect("the example loads");
        compiles.push(start.elapsed());
        first_calls.push(call(&module));
    }
    let module = load(bytes).expect("the example loads");
    let code = module.code();
    if matches!(tier, Tier::Optimized) {
        assert_eq!(code, CodeTier::Cranelift(OptLevel::Speed));
    }
    let samples: Vec<Duration> = (0..WARM_UP + CALLS)
        .map(|_| call(&module))
        .skip(WARM_UP)
        .collect();
    let optimize = runtime.needs_optimizing(&module).then(|| {
        let start = Instant::now();
        let compiled = runtime
            .optimize(bytes)
            .expect("the example compiles optimized");
        assert!(compiled, "{form}: the quick module was in memory");
        start.elapsed()
    });
    Measured {
        compile: median(compiles),
        first_call: median(first_calls),
        call_p50: median(samples),
        optimize,
        code,
    }
}

fn main() {
    if !measuring() {
        return;
    }
    let tokio = tokio();
    let invocation = invocation();
    let rows: Vec<Row> = EXAMPLES
        .iter()
        .filter(|(extension, _, _)| *extension == "hello")
        .map(|(_, form, path)| {
            let bytes = std::fs::read(path).expect("the example was built");
            eprintln!("measuring {form}");
            Row {
                form,
                quick: measure(&tokio, form, &bytes, Tier::Quick, &invocation),
                speed: measure(&tokio, form, &bytes, Tier::Optimized, &invocation),
            }
        })
        .collect();

    println!(
        "| hello | quick tier | compile: speed / quick (median of {COMPILES}) | fresh call: \
         speed / quick (p50 of {CALLS}) | upload to first call: speed / quick | background \
         optimize, 1 thread |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for row in &rows {
        let upload = |tier: &Measured| tier.compile + tier.first_call;
        println!(
            "| {} | {} | {} / {} ({}) | {} / {} ({}) | {} / {} ({}) | {} |",
            row.form,
            row.quick.code,
            time(row.speed.compile),
            time(row.quick.compile),
            ratio(row.quick.compile, row.speed.compile),
            time(row.speed.call_p50),
            time(row.quick.call_p50),
            ratio(row.quick.call_p50, row.speed.call_p50),
            time(upload(&row.speed)),
            time(upload(&row.quick)),
            ratio(upload(&row.quick), upload(&row.speed)),
            row.quick.optimize.map_or_else(|| "-".to_owned(), time),
        );
    }
    println!();
    println!(
        "Ratios are quick / speed: below 1x, the quick tier is quicker. Tiered compilation \
         pays when the compile ratio is well below 1x and the call ratio stays small."
    );
}

/// The quick tier's time as a multiple of `speed`'s.
fn ratio(quick: Duration, speed: Duration) -> String {
    format!("{:.2}x", quick.as_secs_f64() / speed.as_secs_f64())
}
