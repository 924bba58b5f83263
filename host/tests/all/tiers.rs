//! Tiered compilation (`[limits] tiered_compile`): an upload is compiled unoptimized first,
//! its first calls run that quick code, and its optimized code is compiled in the
//! background and swapped in; the time limit holds on either tier.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use wasmhook::runtime::{Digest, OptLevel, Outcome, Runtime, RuntimeConfig};
use wasmhook_tests::guests::{HELLO, HOSTILE};

use super::support::{artifacts, hostile, temp, wait_until, Call, Server, Tenant, OPERATOR_TOKEN};

/// The series counting modules whose optimized code was swapped in.
const OPTIMIZED: &str = "wasmhook_modules_optimized_total";

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

#[test]
fn an_uploads_first_call_completes_and_so_do_calls_after_its_optimized_code_is_in() {
    let dir = temp();
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_TIERED_COMPILE", "true")],
        &[],
    );
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
    let names: Vec<String> = artifacts(dir.path())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(
        names.iter().any(|name| !name.ends_with("-none.cwasm")),
        "the optimized artifact is kept: {names:?}"
    );
    assert!(
        !names.iter().any(|name| name.ends_with("-none.cwasm")),
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
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
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
    assert_eq!(quick.opt_level(), OptLevel::None);
    assert!(runtime.needs_optimizing(&quick));
    let call = Call::with_settings(json!({}));
    let report = call.run_on(&runtime, &quick).await;
    assert!(report.outcome.is_completed(), "{:?}", report.outcome);

    assert!(runtime.optimize(&bytes).expect("hello compiles optimized"));
    let digest: Digest = quick.info().digest.parse().expect("a digest");
    let optimized = runtime.load_compiled(&digest).expect("in memory");
    assert_eq!(optimized.opt_level(), OptLevel::Speed);
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
    assert_eq!(again.opt_level(), OptLevel::Speed);
}

#[tokio::test]
async fn the_time_limit_holds_on_the_quick_tier() {
    let runtime = tiered_runtime();
    let spinning = runtime
        .load_quick(&bytes_of(HOSTILE))
        .expect("the hostile guest compiles quick");
    assert_eq!(spinning.opt_level(), OptLevel::None);
    let mut call = hostile("loop");
    call.limits.timeout = Duration::from_secs(1);
    let report = call.run_on(&runtime, &spinning).await;
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
fn a_runtime_without_tiers_loads_optimized_code() {
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .expect("the runtime starts");
    let module = runtime.load_quick(&bytes_of(HELLO)).expect("hello loads");
    assert_eq!(module.opt_level(), OptLevel::Speed);
    assert!(!runtime.tiered());
    assert!(!runtime.needs_optimizing(&module));
}
