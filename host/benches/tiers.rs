//! Cranelift's two tiers, `none` against `speed`, for the hello example in every language
//! and form: the compile at upload, a call on a fresh instance, and the two together (what
//! an upload's first call waits for), each as a ratio of `none` to `speed`; and the
//! background compile of the optimized code that tiered compilation adds. Prints the
//! Markdown table that BENCHMARKS.md (Tiers) quotes, which decides whether tiered
//! compilation (`[limits] tiered_compile`) pays.
//!
//! `speed` is measured as an upload compiles today (a runtime without tiers); `none` as the
//! server's quick tier runs (a tiered runtime's quick engine, `Runtime::load_quick`:
//! instances allocated on demand), and the background compile on that runtime's optimizing
//! engine (`Runtime::optimize`: one thread; the server also lowers its priority).
//!
//! `cargo bench -p wasmhook --bench tiers` (a few minutes here: Python and JavaScript take
//! seconds per compile at `speed`). A plain harness, as `languages`: a compile of an 18 MB
//! module takes about ten seconds, so three samples, not a hundred, are affordable.

#![allow(clippy::print_stdout)] // The table on stdout is what this benchmark is for.

mod common;

use std::time::{Duration, Instant};

use common::{invocation, measuring, median, time, tokio};

use wasmhook::runtime::{
    CallLimits, Digest, Invocation, LoadedModule, OptLevel, Runtime, RuntimeConfig,
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
    /// The background compile of the optimized code, once (quick tier only).
    optimize: Option<Duration>,
}

struct Row {
    form: &'static str,
    none: Measured,
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
    let opt_level = match tier {
        Tier::Quick => OptLevel::None,
        Tier::Optimized => OptLevel::Speed,
    };
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
            "{form} at {opt_level}: {:?}",
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
        assert_eq!(module.opt_level(), opt_level);
        first_calls.push(call(&module));
    }
    let module = load(bytes).expect("the example loads");
    let samples: Vec<Duration> = (0..WARM_UP + CALLS)
        .map(|_| call(&module))
        .skip(WARM_UP)
        .collect();
    let optimize = matches!(tier, Tier::Quick).then(|| {
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
                none: measure(&tokio, form, &bytes, Tier::Quick, &invocation),
                speed: measure(&tokio, form, &bytes, Tier::Optimized, &invocation),
            }
        })
        .collect();

    println!(
        "| hello | compile: speed / none (median of {COMPILES}) | fresh call: speed / none \
         (p50 of {CALLS}) | upload to first call: speed / none | background optimize, 1 thread |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for row in &rows {
        let upload = |tier: &Measured| tier.compile + tier.first_call;
        println!(
            "| {} | {} / {} ({}) | {} / {} ({}) | {} / {} ({}) | {} |",
            row.form,
            time(row.speed.compile),
            time(row.none.compile),
            ratio(row.none.compile, row.speed.compile),
            time(row.speed.call_p50),
            time(row.none.call_p50),
            ratio(row.none.call_p50, row.speed.call_p50),
            time(upload(&row.speed)),
            time(upload(&row.none)),
            ratio(upload(&row.none), upload(&row.speed)),
            row.none.optimize.map_or_else(|| "-".to_owned(), time),
        );
    }
    println!();
    println!(
        "Ratios are none / speed: below 1x, `none` is quicker. Tiered compilation pays when \
         the compile ratio is well below 1x and the call ratio stays small."
    );
}

/// `none` as a multiple of `speed`.
fn ratio(none: Duration, speed: Duration) -> String {
    format!("{:.2}x", none.as_secs_f64() / speed.as_secs_f64())
}
