//! Tiered compilation (`[limits] tiered_compile`): an upload is compiled by Winch first,
//! its first calls run that quick code, and its optimized code is compiled in the
//! background and swapped in; the time limit and an instruction budget hold on either
//! tier, and a module Winch cannot compile is compiled by Cranelift.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use wasmhook::runtime::{
    CodeTier, Digest, Failure, OptLevel, Outcome, RunReport, Runtime, RuntimeConfig,
};
use wasmhook_tests::guests::{HELLO, HOSTILE};

use super::support::{
    artifact_names, hostile, temp, wait_until, Call, Server, Tenant, OPERATOR_TOKEN,
};

/// The series counting modules whose optimized code was swapped in.
const OPTIMIZED: &str = "wasmhook_modules_optimized_total";

/// The optimized tier's code.
const SPEED: CodeTier = CodeTier::Cranelift(OptLevel::Speed);

/// A small tiered runtime of the test's own, its artifacts in memory only.
fn tiered_runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        tiered: true,
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .expect("a tiered runtime starts")
}

fn bytes_of(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

/// A call given a 1 s limit ended as a timeout, near its deadline.
fn assert_cut_at_one_second(report: &RunReport) {
    assert!(
        matches!(report.outcome, Outcome::Timeout { limit } if limit == Duration::from_secs(1)),
        "{:?}",
        report.outcome
    );
    assert!(
        report.duration < Duration::from_secs(3),
        "interrupted near its deadline: {:?}",
        report.duration
    );
}

#[test]
fn an_uploads_first_call_completes_and_so_do_calls_after_its_optimized_code_is_in() {
    let dir = temp();
    // On by default.
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let module = acme.upload(HELLO);
    let hook = acme.hook(&module, json!({}));
    let (status, answer) = acme.invoke(&hook, json!({}));
    assert_eq!(status, StatusCode::OK, "the first call: {answer}");

    let optimized = wait_until(Instant::now() + Duration::from_secs(120), || {
        server.metrics().get(OPTIMIZED).copied() >= Some(1.0)
    });
    assert!(
        optimized,
        "the optimized code was never swapped in: {}",
        server.log()
    );
    for _ in 0..3 {
        let (status, answer) = acme.invoke(&hook, json!({}));
        assert_eq!(
            status,
            StatusCode::OK,
            "a call on the optimized code: {answer}"
        );
    }
    let names = artifact_names(dir.path());
    assert!(
        names.iter().any(|name| !name.ends_with("-winch.cwasm")),
        "the optimized artifact is kept: {names:?}"
    );
    assert!(
        !names.iter().any(|name| name.ends_with("-winch.cwasm")),
        "the quick artifact is deleted once the optimized one is in: {names:?}"
    );
    assert_eq!(
        server.metrics().get(OPTIMIZED).copied(),
        Some(1.0),
        "one module, optimized once"
    );
}

#[test]
fn without_tiers_nothing_is_optimized_later() {
    let dir = temp();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_TIERED_COMPILE", "false")],
        &[],
    );
    let acme = Tenant::new(&server, "acme");
    let hook = acme.hook(&acme.upload(HELLO), json!({}));
    let (status, answer) = acme.invoke(&hook, json!({}));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(server.metrics().get(OPTIMIZED).copied(), Some(0.0));
}

#[tokio::test]
async fn the_quick_tier_serves_calls_until_the_optimized_code_is_swapped_in() {
    let runtime = tiered_runtime();
    let bytes = bytes_of(HELLO);
    let quick = runtime.load_quick(&bytes).expect("hello compiles quick");
    assert_eq!(quick.code(), CodeTier::Baseline);
    assert!(runtime.needs_optimizing(&quick));
    let call = Call::with_settings(json!({}));
    let report = call.run_on(&runtime, &quick).await;
    assert!(report.outcome.is_completed(), "{:?}", report.outcome);

    assert!(runtime.optimize(&bytes).expect("hello compiles optimized"));
    let digest: Digest = quick.info().digest.parse().expect("a digest");
    let optimized = runtime.load_compiled(&digest).expect("in memory");
    assert_eq!(optimized.code(), SPEED);
    assert!(!runtime.needs_optimizing(&optimized));
    assert!(
        !runtime.optimize(&bytes).expect("nothing to do"),
        "optimized once"
    );
    let report = call.run_on(&runtime, &optimized).await;
    assert!(report.outcome.is_completed(), "{:?}", report.outcome);
    // A call that held the quick module when the swap came still runs on it.
    let report = call.run_on(&runtime, &quick).await;
    assert!(report.outcome.is_completed(), "{:?}", report.outcome);
    // Loading quick code again gives the optimized code: it is never replaced by quicker.
    let again = runtime.load_quick(&bytes).expect("loads");
    assert_eq!(again.code(), SPEED);
}

#[tokio::test]
async fn the_time_limit_holds_on_the_quick_tier() {
    let runtime = tiered_runtime();
    let spinning = runtime
        .load_quick(&bytes_of(HOSTILE))
        .expect("the hostile guest compiles quick");
    assert_eq!(spinning.code(), CodeTier::Baseline);
    let mut call = hostile("loop");
    call.limits.timeout = Duration::from_secs(1);
    let report = call.run_on(&runtime, &spinning).await;
    assert_cut_at_one_second(&report);
}

#[test]
fn a_runtime_without_tiers_loads_optimized_code() {
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .expect("the runtime starts");
    let module = runtime.load_quick(&bytes_of(HELLO)).expect("hello loads");
    assert_eq!(module.code(), SPEED);
    assert!(!runtime.tiered());
    assert!(!runtime.needs_optimizing(&module));
}

#[tokio::test]
async fn a_loop_of_bulk_memory_fills_is_cut_at_its_time_limit_on_the_quick_tier() {
    let runtime = tiered_runtime();
    // Each round is one instruction of fuel but milliseconds of work: an interruption that
    // counted instructions would let it run far past its limit; the epoch check at the
    // loop's header does not.
    let bytes = wat::parse_str(
        r#"(module
            (memory (export "memory") 256)
            (func (export "_start")
              (loop
                (memory.fill (i32.const 0) (i32.const 0) (i32.const 16777216))
                (br 0))))"#,
    )
    .expect("valid text");
    let filling = runtime.load_quick(&bytes).expect("compiles quick");
    assert_eq!(filling.code(), CodeTier::Baseline);
    let mut call = Call::with_settings(json!({}));
    call.limits.timeout = Duration::from_secs(1);
    let report = call.run_on(&runtime, &filling).await;
    assert_cut_at_one_second(&report);
}

#[tokio::test]
async fn an_instruction_budget_holds_on_the_quick_tier() {
    let runtime = Runtime::new(RuntimeConfig {
        tiered: true,
        fuel_metering: true,
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .expect("a tiered runtime with fuel starts");
    let spinning = runtime
        .load_quick(&bytes_of(HOSTILE))
        .expect("the hostile guest compiles quick");
    assert_eq!(spinning.code(), CodeTier::Baseline);
    let mut call = hostile("loop");
    call.limits.fuel = Some(5_000_000);
    call.limits.timeout = Duration::from_secs(20);
    let report = call.run_on(&runtime, &spinning).await;
    assert!(
        matches!(
            report.outcome,
            Outcome::Failed(Failure::FuelExhausted { budget: 5_000_000 })
        ),
        "{:?}",
        report.outcome
    );
}

#[test]
fn a_module_winch_cannot_compile_is_compiled_by_the_optimizing_engine() {
    let runtime = tiered_runtime();
    // A tail call: a proposal Cranelift supports and Winch does not.
    let bytes = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (func $again (param i32))
            (func (export "_start") i32.const 0 return_call $again))"#,
    )
    .expect("valid text");
    let module = runtime
        .load_quick(&bytes)
        .expect("the optimizing engine compiles what Winch refuses");
    assert_eq!(module.code(), SPEED);
    assert!(!runtime.needs_optimizing(&module));
    let broken = runtime.load_quick(b"\0asm\x01\0\0\0\x01");
    assert!(
        matches!(broken, Err(wasmhook::runtime::LoadError::Invalid { .. })),
        "an invalid module is refused by both: {broken:?}"
    );
}
