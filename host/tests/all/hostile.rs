//! Guests that misbehave: each hostile behaviour gets its outcome, and the host stays fine.

use std::time::Duration;

use wasmhook::runtime::{CallLimits, Failure, Outcome, Runtime, RuntimeConfig, REDACTED};
use wasmhook_tests::guests::{HELLO, HOSTILE};

use super::support::{hostile, module, runtime, Call};

fn failure(outcome: &Outcome) -> &Failure {
    match outcome {
        Outcome::Failed(failure) => failure,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_its_deadline() {
    let mut call = hostile("loop");
    call.limits.timeout = Duration::from_secs(1);
    let report = call.run(&module(HOSTILE)).await;
    assert!(
        matches!(report.outcome, Outcome::Timeout { limit } if limit == Duration::from_secs(1)),
        "{:?}",
        report.outcome
    );
    assert!(
        report.duration >= Duration::from_secs(1),
        "stopped early: {:?}",
        report.duration
    );
    // How soon after its deadline it stops is a latency, measured in bench/, not a property
    // a loaded machine keeps.
    assert!(report.outcome.message().contains("time limit of 1 s"));
}

#[tokio::test]
async fn sleeping_past_the_deadline_is_a_timeout() {
    let mut call = hostile("sleep");
    call.settings.insert("ms".into(), 10_000.into());
    call.limits.timeout = Duration::from_secs(1);
    let report = call.run(&module(HOSTILE)).await;
    assert!(
        matches!(report.outcome, Outcome::Timeout { limit } if limit == Duration::from_secs(1)),
        "{:?}",
        report.outcome
    );
    // Stopped at its deadline, not at the end of the 10 s it asked to sleep (how soon after
    // the deadline is a latency, measured in bench/).
    assert!(
        report.duration < Duration::from_secs(10),
        "slept it out: {:?}",
        report.duration
    );
}

#[tokio::test]
async fn growing_memory_past_the_limit_is_reported_as_such() {
    let mut call = hostile("grow_memory");
    call.limits.memory_bytes = 32 << 20;
    let report = call.run(&module(HOSTILE)).await;
    match &report.outcome {
        Outcome::MemoryLimitExceeded { limit_bytes, .. } => assert_eq!(*limit_bytes, 32 << 20),
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert!(report.outcome.message().contains("memory limit of 32 MiB"));
}

#[tokio::test]
async fn unbounded_recursion_fails_and_says_so() {
    let report = hostile("recurse").run(&module(HOSTILE)).await;
    let message = failure(&report.outcome).to_string();
    assert!(message.contains("recursion"), "{message}");
    assert!(
        message.contains("hostile::recurse"),
        "no symbolized frame in: {message}"
    );
}

#[tokio::test]
async fn a_100_mb_stdout_flood_is_truncated_and_the_call_completes() {
    let report = hostile("flood_stdout").run(&module(HOSTILE)).await;
    assert!(report.outcome.is_completed(), "{:?}", report.outcome);
    assert!(report.output_truncated);
    let limit = CallLimits::default().output_bytes;
    assert!(
        report.output.len() < limit + 200,
        "output is {} bytes",
        report.output.len()
    );
    let dropped = 100 * 1024 * 1024 - limit;
    assert!(
        report.output.ends_with(&format!(
            "[output truncated: {dropped} more bytes were dropped]"
        )),
        "{}",
        &report.output[report.output.len().saturating_sub(120)..]
    );
}

#[tokio::test]
async fn a_panic_fails_with_its_text_and_a_symbolized_backtrace() {
    let report = hostile("panic").run(&module(HOSTILE)).await;
    let Failure::Trap(trap) = failure(&report.outcome) else {
        panic!("expected a trap, got {:?}", report.outcome);
    };
    let panic = trap.panic.as_deref().unwrap_or_default();
    assert!(
        panic.contains("the hostile guest panics on purpose"),
        "{panic}"
    );
    let backtrace = trap.backtrace.as_deref().unwrap_or_default();
    assert!(
        backtrace.contains("hostile.wasm!") && backtrace.contains("panic"),
        "{backtrace}"
    );
    assert!(report
        .outcome
        .message()
        .starts_with("the extension panicked: "));
}

#[tokio::test]
async fn an_error_from_handle_is_a_failure_with_its_message() {
    let report = hostile("guest_error").run(&module(HOSTILE)).await;
    assert!(
        matches!(failure(&report.outcome), Failure::Guest(m) if m == "the hostile guest refuses this call")
    );
}

#[tokio::test]
async fn invalid_json_is_refused_naming_the_problem() {
    let report = hostile("invalid_json").run(&module(HOSTILE)).await;
    assert!(
        matches!(failure(&report.outcome), Failure::ResponseNotJson(_)),
        "{:?}",
        report.outcome
    );
    assert!(report.outcome.message().contains("not valid JSON"));
}

#[tokio::test]
async fn a_response_that_is_not_an_object_is_refused() {
    let report = hostile("not_object").run(&module(HOSTILE)).await;
    assert!(matches!(
        failure(&report.outcome),
        Failure::ResponseNotObject("an array")
    ));
}

#[tokio::test]
async fn a_10_mb_response_is_refused_naming_its_size() {
    let report = hostile("huge_response").run(&module(HOSTILE)).await;
    match failure(&report.outcome) {
        Failure::ResponseTooLarge { size, limit } => {
            assert!(*size > 10 << 20);
            assert_eq!(*limit, 1 << 20);
        }
        other => panic!("expected a size failure, got {other:?}"),
    }
}

#[tokio::test]
async fn the_sandbox_has_no_files_environment_arguments_or_network() {
    let report = hostile("sandbox").run(&module(HOSTILE)).await;
    let Outcome::Completed { response } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    for file in response["files"].as_array().expect("files") {
        assert!(
            file["open"]
                .as_str()
                .is_some_and(|s| s.starts_with("denied")),
            "{file}"
        );
        assert!(
            file["read_dir"]
                .as_str()
                .is_some_and(|s| s.starts_with("denied")),
            "{file}"
        );
    }
    assert_eq!(response["wrote_file"], false);
    assert_eq!(response["env"], serde_json::json!([]));
    assert_eq!(response["args"], serde_json::json!([]));
    assert_eq!(response["tcp"], false);
}

#[tokio::test]
async fn secrets_printed_logged_or_returned_are_redacted() {
    let secret = "hunter2-but-longer";
    for behavior in ["print_secret", "error_with_secret", "panic_with_secret"] {
        let mut call = hostile(behavior);
        call.secrets.push(("api_key".into(), secret.into()));
        let report = call.run(&module(HOSTILE)).await;
        let message = report.outcome.message();
        assert!(
            !report.output.contains(secret),
            "{behavior}: output leaks: {}",
            report.output
        );
        assert!(
            !message.contains(secret),
            "{behavior}: message leaks: {message}"
        );
        let log = call.prepare().run_log(&report);
        let log_text = serde_json::to_string(&log).expect("a run log serializes");
        assert!(
            !log_text.contains(secret),
            "{behavior}: run log leaks: {log_text}"
        );
        assert!(
            log_text.contains(REDACTED),
            "{behavior}: nothing redacted in {log_text}"
        );
    }
}

#[tokio::test]
async fn remaining_time_counts_down_from_the_limit() {
    let mut call = hostile("remaining_time");
    call.limits.timeout = Duration::from_secs(5);
    let report = call.run(&module(HOSTILE)).await;
    let Outcome::Completed { response } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    let remaining = response["remaining_ms"].as_u64().expect("a number");
    assert!((4_000..=5_000).contains(&remaining), "{remaining}");
}

/// Hello is called again and again while two guests spin until their deadline: some call
/// of it runs from start to end while both spinners run. Told by the order of the calls'
/// own start and end times, not by how long anything took, so that it holds on a loaded
/// machine; no sleep stands in for "the spinners have started".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_spinning_guests_do_not_keep_hello_from_completing() {
    let spinning = module(HOSTILE);
    let hello = module(HELLO);
    let spin_for = Duration::from_secs(3);
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let spinning = spinning.clone();
            tokio::spawn(async move {
                let mut call = hostile("loop");
                call.limits.timeout = spin_for;
                call.run(&spinning).await
            })
        })
        .collect();
    // (start, end) of every hello call made until both spinners have ended.
    let mut hellos = Vec::new();
    while !spinners.iter().all(tokio::task::JoinHandle::is_finished) {
        let report = Call::with_settings(serde_json::json!({})).run(&hello).await;
        assert!(report.outcome.is_completed(), "{:?}", report.outcome);
        hellos.push((report.started_at, report.started_at + report.duration));
    }
    let mut spun = Vec::new();
    for spinner in spinners {
        let report = spinner.await.expect("the spinner task joins");
        assert!(
            matches!(report.outcome, Outcome::Timeout { .. }),
            "{:?}",
            report.outcome
        );
        spun.push((report.started_at, report.started_at + report.duration));
    }
    // When both spinners were running.
    let both_from = spun
        .iter()
        .map(|(from, _)| *from)
        .max()
        .expect("two spinners");
    let both_until = spun
        .iter()
        .map(|(_, until)| *until)
        .min()
        .expect("two spinners");
    let beside = hellos
        .iter()
        .filter(|(from, until)| *from >= both_from && *until <= both_until)
        .count();
    eprintln!(
        "hello beside two spinning guests: {beside} of {} calls ran wholly while both spun",
        hellos.len()
    );
    assert!(
        beside >= 1,
        "no hello call ran from start to end while both spinners ran: {hellos:?}, spinners {spun:?}"
    );
}

/// One organization keeps twice as many endless loops running as there are CPU slots, so it
/// holds every slot long calls may hold (one per core) and always has a loop waiting for
/// one; another organization's hello
/// calls still complete while every loop runs. Told by the calls' own start and end times
/// (each hello call within the span when all loops ran), never by how long anything took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_organization_is_served_while_another_holds_every_slot() {
    const NOISY: u64 = 1;
    const QUIET: u64 = 2;
    let spinning = module(HOSTILE);
    let hello = module(HELLO);
    let loops = 2 * runtime().config().cpu_slots;
    let spinners: Vec<_> = (0..loops)
        .map(|_| {
            let spinning = spinning.clone();
            tokio::spawn(async move {
                let mut call = hostile("loop");
                call.limits.timeout = Duration::from_secs(4);
                call.limits.fairness_group = NOISY;
                call.run(&spinning).await
            })
        })
        .collect();
    let mut hellos = Vec::new();
    while !spinners.iter().all(tokio::task::JoinHandle::is_finished) {
        let mut call = Call::with_settings(serde_json::json!({}));
        call.limits.fairness_group = QUIET;
        let report = call.run(&hello).await;
        assert!(report.outcome.is_completed(), "{:?}", report.outcome);
        hellos.push((report.started_at, report.started_at + report.duration));
    }
    let mut spun = Vec::new();
    for spinner in spinners {
        let report = spinner.await.expect("the loop's task joins");
        assert!(
            matches!(report.outcome, Outcome::Timeout { .. }),
            "{:?}",
            report.outcome
        );
        spun.push((report.started_at, report.started_at + report.duration));
    }
    let all_from = spun.iter().map(|(from, _)| *from).max().expect("loops");
    let all_until = spun.iter().map(|(_, until)| *until).min().expect("loops");
    let beside = hellos
        .iter()
        .filter(|(from, until)| *from >= all_from && *until <= all_until)
        .count();
    eprintln!(
        "hello beside {loops} endless loops of another organization: {beside} of {} calls \
         ran wholly while all of them ran",
        hellos.len()
    );
    assert!(
        beside >= 2,
        "fewer than two hello calls ran from start to end while every loop ran: {hellos:?}, \
         loops {spun:?}"
    );
}

#[tokio::test]
async fn an_instruction_budget_stops_a_loop_before_its_deadline() {
    let fueled = Runtime::new(RuntimeConfig {
        fuel_metering: true,
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .expect("a fuel-metering runtime starts");
    let load = |path: &str| {
        fueled
            .load(&std::fs::read(path).expect("readable"))
            .expect("loads")
    };
    let (spinning, hello) = (load(HOSTILE), load(HELLO));

    let mut call = hostile("loop");
    call.limits.fuel = Some(5_000_000);
    let report = call.run_on(&fueled, &spinning).await;
    assert!(
        matches!(
            failure(&report.outcome),
            Failure::FuelExhausted { budget: 5_000_000 }
        ),
        "{:?}",
        report.outcome
    );
    assert!(report.duration < Duration::from_secs(5));

    let mut call = Call::with_settings(serde_json::json!({}));
    call.limits.fuel = Some(50_000_000);
    let report = call.run_on(&fueled, &hello).await;
    assert!(report.outcome.is_completed(), "{:?}", report.outcome);
}

#[tokio::test]
async fn a_budget_without_fuel_metering_is_refused_clearly() {
    let mut call = Call::with_settings(serde_json::json!({}));
    call.limits.fuel = Some(1000);
    let report = call.run(&module(HELLO)).await;
    assert!(
        matches!(failure(&report.outcome), Failure::Host(m) if m.contains("fuel metering")),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn a_command_exiting_non_zero_fails_with_its_code_and_stderr() {
    use wasmhook_tests::guests::INVOICE_CHECK_COMMAND;
    // No annotation in the payload: the command prints the reason and exits 1.
    let report = Call::with_settings(serde_json::json!({}))
        .run(&module(INVOICE_CHECK_COMMAND))
        .await;
    match failure(&report.outcome) {
        Failure::Exit { code, stderr_tail } => {
            assert_eq!(*code, 1);
            assert!(stderr_tail.contains("annotation.content"), "{stderr_tail}");
        }
        other => panic!("expected an exit failure, got {other:?}"),
    }
    assert!(report
        .outcome
        .message()
        .starts_with("the command exited with code 1; stderr ends with:"));
}

#[tokio::test]
async fn without_room_for_the_pool_the_engine_allocates_on_demand() {
    use wasmhook::runtime::Allocation;
    // A million slots of several GiB each cannot be reserved in a 47-bit address space.
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 1_000_000,
        ..RuntimeConfig::default()
    })
    .expect("falls back rather than failing");
    assert_eq!(runtime.allocation(), Allocation::OnDemand);
    let hello = runtime
        .load(&std::fs::read(HELLO).expect("built"))
        .expect("loads");
    let report = Call::with_settings(serde_json::json!({}))
        .run_on(&runtime, &hello)
        .await;
    assert!(report.outcome.is_completed(), "{:?}", report.outcome);
}
