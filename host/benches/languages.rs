//! The hello example in every language and form: module size, compile-at-upload time, the
//! warm call time (a fresh instance per call) and the call time on a reused instance (a hook
//! with `config.reuse_instances`), with each figure also as a ratio to the Rust component
//! measured in the same run. Prints the Markdown table that docs/languages.md and
//! BENCHMARKS.md quote.
//!
//! `cargo bench -p wasmhook --bench languages` (about two minutes here: Python and
//! JavaScript take seconds per compile). A plain harness rather than criterion: a compile of
//! an 18 MB module takes about ten seconds, so three samples, not a hundred, are affordable.

#![allow(clippy::print_stdout)] // The table on stdout is what this benchmark is for.

mod common;

use std::time::{Duration, Instant};

use common::{invocation, measuring, median, time, tokio};

use wasmhook::runtime::{
    CallLimits, Digest, Invocation, Reuse, ReusePolicy, Runtime, RuntimeConfig, WarmHook,
};
use wasmhook_tests::guests::EXAMPLES;

/// Compiles measured per module; the median is reported.
const COMPILES: usize = 3;
/// Warm calls measured per module after [`WARM_UP`] unmeasured ones; p50 is reported.
const CALLS: usize = 300;
const WARM_UP: usize = 30;

struct Row {
    form: &'static str,
    bytes: usize,
    compile: Duration,
    call_p50: Duration,
    reused_p50: Duration,
}

/// What a hook with `config.reuse_instances` asks: one hook, enough calls per instance that
/// every measured call after the first finds the instance the one before left.
fn reuse() -> Reuse {
    Reuse {
        hook: WarmHook {
            organization: 1,
            hook: 1,
            version: Digest::of(b"the bench's hook"),
        },
        policy: ReusePolicy {
            max_calls: 10_000,
            idle: Duration::from_secs(600),
        },
    }
}

fn measure(
    tokio: &tokio::runtime::Runtime,
    form: &'static str,
    path: &str,
    invocation: &Invocation,
) -> Row {
    let bytes = std::fs::read(path).expect("the example was built");
    // No disk cache: every load compiles, as an upload does.
    let runtime = Runtime::new(RuntimeConfig::default()).expect("the runtime starts");
    let digest = Digest::of(&bytes);
    let compile = median(
        (0..COMPILES)
            .map(|_| {
                runtime.evict(&digest);
                let start = Instant::now();
                runtime.load(&bytes).expect("the example loads");
                start.elapsed()
            })
            .collect(),
    );
    let module = runtime.load(&bytes).expect("the example loads");
    let limits = CallLimits::default();
    let reuse = reuse();
    let mut fresh = Vec::with_capacity(CALLS);
    let mut reused = Vec::with_capacity(CALLS);
    for index in 0..WARM_UP + CALLS {
        let start = Instant::now();
        let report = tokio.block_on(runtime.call(&module, invocation, &limits));
        let elapsed = start.elapsed();
        assert!(
            report.outcome.is_completed(),
            "{form}: {:?}",
            report.outcome
        );
        let start = Instant::now();
        let report = tokio.block_on(runtime.call_reusing(&module, invocation, &limits, &reuse));
        let reused_elapsed = start.elapsed();
        assert!(
            report.outcome.is_completed(),
            "{form}: {:?}",
            report.outcome
        );
        if index >= WARM_UP {
            fresh.push(elapsed);
            reused.push(reused_elapsed);
        }
    }
    Row {
        form,
        bytes: bytes.len(),
        compile,
        call_p50: median(fresh),
        reused_p50: median(reused),
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
            eprintln!("measuring {form}");
            measure(&tokio, form, path, &invocation)
        })
        .collect();
    let baseline = rows
        .iter()
        .find(|row| row.form == "rust component")
        .expect("the Rust component is measured");

    println!(
        "| hello | module size | compile at upload (median of {COMPILES}) \
         | warm call, fresh instance (p50 of {CALLS}) | call on a reused instance (p50 of {CALLS}) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for row in &rows {
        println!(
            "| {} | {} | {} ({:.1}x) | {} ({:.1}x) | {} ({:.1}x) |",
            row.form,
            size(row.bytes),
            time(row.compile),
            row.compile.as_secs_f64() / baseline.compile.as_secs_f64(),
            time(row.call_p50),
            row.call_p50.as_secs_f64() / baseline.call_p50.as_secs_f64(),
            time(row.reused_p50),
            row.reused_p50.as_secs_f64() / baseline.reused_p50.as_secs_f64(),
        );
    }
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{} KB", bytes.div_ceil(1 << 10))
    }
}
