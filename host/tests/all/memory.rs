//! The installation's guest memory budget: one organization's burst of memory-hungry runs
//! reserves at most its share (the rest get 429 with `Retry-After`), the process stays
//! under the budget, another organization's calls go on, and memory comes back after.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use wasmhook_tests::guests::HOSTILE;

use super::support::{rss_kib_of, wait_until, Server, Tenant, OPERATOR_TOKEN};

const MIB_IN_KIB: u64 = 1024;

/// The largest resident set size of process `pid` while `during` runs, sampled every
/// 10 ms, and no lower than `floor`; what `during` returned, and that peak in KiB.
fn peak_rss_during<T>(pid: u32, floor: u64, during: impl FnOnce() -> T) -> (T, u64) {
    let peak = Arc::new(AtomicU64::new(floor));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Some(rss) = rss_kib_of(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let result = during();
    sampling.store(false, Ordering::Relaxed);
    sampler.join().expect("the sampler thread");
    (result, peak.load(Ordering::Relaxed))
}

/// Twelve invocations of `hungry` by `greedy` at once; meanwhile, once a run of the burst is
/// under way, `modest` invokes `small` five times, each answered 200 as usual. The status
/// and `Retry-After` of each call of the burst.
fn burst(
    server: &Server,
    (greedy, hungry): (&Tenant, &Value),
    (modest, small): (&Tenant, &Value),
) -> Vec<(StatusCode, Option<String>)> {
    let greedy_id = greedy.organization_id();
    std::thread::scope(|scope| {
        let burst: Vec<_> = (0..12)
            .map(|_| {
                scope.spawn(|| {
                    let response = server
                        .client
                        .post(server.url(&format!("/hooks/{}/invoke", hungry["id"])))
                        .bearer_auth(&greedy.token)
                        .json(&json!({}))
                        .send()
                        .expect("the server answers");
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned);
                    (response.status(), retry_after)
                })
            })
            .collect();
        assert!(
            wait_until(Instant::now() + Duration::from_secs(30), || {
                server.runs_in_flight(greedy_id) >= 1.0
            }),
            "no run of the burst started"
        );
        for _ in 0..5 {
            let (status, answer) = modest.invoke(small, json!({}));
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
        burst
            .into_iter()
            .map(|call| call.join().expect("the caller thread"))
            .collect()
    })
}

/// Checks the burst's answers: some completed, every other one was refused (429) with a
/// `Retry-After`, and at least six were refused, for two runs of 256 MiB fill a 512 MiB
/// share. How many completed, and how many were refused.
fn check_burst(statuses: &[(StatusCode, Option<String>)]) -> (usize, usize) {
    let completed = statuses
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    let refused: Vec<_> = statuses
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!((1..=12).contains(&completed), "{statuses:?}");
    assert_eq!(completed + refused.len(), 12, "{statuses:?}");
    assert!(
        refused.len() >= 6,
        "two runs of 256 MiB fill a 512 MiB share: {statuses:?}"
    );
    assert!(
        refused.iter().all(|(_, retry_after)| retry_after.is_some()),
        "{statuses:?}"
    );
    (completed, refused.len())
}

/// One scenario, for its burst is costly (twelve runs of 200 MiB) and measured by the
/// process's memory, which a second burst beside it would blur.
#[test]
fn a_burst_of_memory_hungry_runs_stays_in_the_budget_and_leaves_others_alone() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[
            ("WASMHOOK_MEMORY_BUDGET_MB", "1024"),
            ("WASMHOOK_MEMORY_PER_ORGANIZATION_MB", "512"),
        ],
        &[],
    );
    let greedy = Tenant::new(&server, "greedy");
    let modest = Tenant::new(&server, "modest");
    let module = greedy.upload(HOSTILE);
    let hungry = greedy.hook(
        &module,
        json!({
            "settings": {"behavior": "hold_memory", "mb": 200, "ms": 1500},
            "config": {"runtime": "wasm", "module": module, "memory_size_mb": 256, "timeout_s": 20},
        }),
    );
    let module = modest.upload(HOSTILE);
    let small = modest.hook(
        &module,
        json!({
            "settings": {"behavior": "hold_memory", "mb": 8, "ms": 10},
            "config": {"runtime": "wasm", "module": module, "memory_size_mb": 64},
        }),
    );
    // Warm both up (compiled, pooled slots touched once), then measure from there.
    assert_eq!(greedy.invoke(&hungry, json!({})).0, StatusCode::OK);
    assert_eq!(modest.invoke(&small, json!({})).0, StatusCode::OK);
    std::thread::sleep(Duration::from_millis(500));
    let baseline = server.rss_kib();

    let (statuses, peak) = peak_rss_during(server.pid(), baseline, || {
        burst(&server, (&greedy, &hungry), (&modest, &small))
    });
    let (completed, refused) = check_burst(&statuses);

    // Two 200 MiB runs at a time, never twelve: the process stays well under the budget.
    let grew_mib = peak.saturating_sub(baseline) / MIB_IN_KIB;
    eprintln!(
        "burst of 12: {completed} completed, {refused} refused (429); RSS {} MiB before, peak +{grew_mib} MiB",
        baseline / MIB_IN_KIB
    );
    assert!(
        grew_mib < 700,
        "RSS grew by {grew_mib} MiB during the burst"
    );

    // And gives the memory back once the burst is over.
    let ended = Instant::now();
    let above_mib = || server.rss_kib().saturating_sub(baseline) / MIB_IN_KIB;
    let given_back = wait_until(ended + Duration::from_secs(10), || above_mib() < 128);
    let after_mib = above_mib();
    eprintln!("{:?} after the burst: +{after_mib} MiB", ended.elapsed());
    assert!(
        given_back,
        "RSS stayed {after_mib} MiB above where it started"
    );
}
