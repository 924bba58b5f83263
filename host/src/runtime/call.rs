//! One call: a fresh store with the call's limits, instantiation, the guest's work, and the
//! classification of whatever happened into an [`Outcome`].

use std::future::Future;
use std::pin::Pin;
use std::time::{Instant, SystemTime};

use tracing::Instrument;
use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use super::config::CallLimits;
use super::fair::{FairShare, TickYield};
use super::http::GuestHttp;
use super::invocation::Invocation;
use super::limiter::CallLimiter;
use super::outcome::{panic_message, parse_response, Failure, Outcome, RunReport, TrapReport};
use super::output::{Capture, Captured};
use super::redact::Redactor;
use super::reuse::count_instance;
use super::state::{command_sandbox, sandbox, CallState, ComponentState, CoreState, HasCallState};
use super::{LoadedModule, Prepared, Runtime};
use crate::metrics::{phase, stage, InstanceKind, Phase, Stage};
use crate::trace_context::TRACE;

/// A call's guest part, run on a guest thread (see `threads`): owns all it uses.
pub(super) type GuestJob<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A job that is done before it starts (its store could not be made).
pub(super) fn ready<T: Send + 'static>(value: T) -> GuestJob<T> {
    Box::pin(std::future::ready(value))
}

/// What the guest gave back when it did not fail at the wasmtime level.
pub(super) enum Returned {
    /// `handle` returned.
    Response(Result<String, String>),
    /// A command ran to its end (or called `exit`).
    Exit { code: i32, stdout: Captured },
}

/// Instantiation, in its span and timed for the run phase and call stage metrics.
pub(super) async fn instantiating<F: Future>(instantiation: F) -> F::Output {
    let _timed = Timed::since_now(Phase::instantiate, Stage::instantiate);
    instantiation
        .instrument(tracing::info_span!(target: TRACE, "instantiate"))
        .await
}

/// The guest's work, in its span and timed for the run phase and call stage metrics.
pub(super) async fn guest_call<F: Future>(call: F) -> F::Output {
    let _timed = Timed::since_now(Phase::guest, Stage::guest);
    call.instrument(tracing::info_span!(target: TRACE, "guest call"))
        .await
}

/// A run phase's wall time (a guest waiting for its CPU slot is waiting in its phase),
/// recorded when dropped: a call cut at its time limit (its future dropped) counts too.
struct Timed {
    phase: Phase,
    stage: Stage,
    since: Instant,
}

impl Timed {
    fn since_now(phase: Phase, stage: Stage) -> Self {
        Timed {
            phase,
            stage,
            since: Instant::now(),
        }
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        let took = self.since.elapsed();
        phase(self.phase, took);
        stage(self.stage, took);
    }
}

/// The raw end of a call, before classification.
pub(super) struct Execution {
    result: wasmtime::Result<Returned>,
    pub(super) memory_exceeded: bool,
}

impl Runtime {
    /// Calls a module once, in a fresh instance, within `limits`. Never fails: whatever the
    /// guest does becomes the report's [`Outcome`].
    pub async fn call(
        &self,
        module: &LoadedModule,
        invocation: &Invocation,
        limits: &CallLimits,
    ) -> RunReport {
        count_instance(InstanceKind::fresh);
        let started_at = SystemTime::now();
        let start = Instant::now();
        let deadline = start + limits.timeout;
        let output = Capture::new(limits.output_bytes);
        let redactor = invocation.redactor();

        let tick = TickYield::default();
        let job = self.execution(module, invocation, limits, deadline, &output, &tick);
        // Waiting for the group's turn counts against the call's time, as running does;
        // the guest runs on a guest thread (see `threads`).
        let execution = tokio::time::timeout(
            limits.timeout,
            self.guests.run(
                FairShare::new(&self.cpu, limits.fairness_group, tick.clone(), job),
                module.fresh_start(),
            ),
        )
        .await;
        let duration = start.elapsed();
        let captured = output.take();
        let outcome = match execution {
            Ok(Ok(execution)) => classify(execution, limits, &captured, &redactor),
            Ok(Err(lost)) => Outcome::Failed(Failure::Host(lost.to_string())),
            // The guest was blocked in a host call (a sleep, a poll) past its deadline: the
            // epoch could not interrupt it, this timer did.
            Err(_elapsed) => Outcome::Timeout {
                limit: limits.timeout,
            },
        };
        let (output, output_truncated) = finish_output(&captured, &redactor);
        RunReport {
            outcome,
            output,
            output_truncated,
            started_at,
            duration,
        }
    }

    /// The guest's part of a call, owning everything it needs so that a guest thread can
    /// run it: the store is made here, instantiation and the guest's work run in the job.
    fn execution(
        &self,
        module: &LoadedModule,
        invocation: &Invocation,
        limits: &CallLimits,
        deadline: Instant,
        output: &Capture,
        tick: &TickYield,
    ) -> GuestJob<Execution> {
        let call = CallState {
            limiter: CallLimiter::new(usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX)),
            deadline,
            output: output.clone(),
        };
        match &module.prepared {
            Prepared::Extension(pre) => {
                let http = GuestHttp::new(limits.network.clone(), output.clone());
                let state = ComponentState::new(sandbox(output).build(), call, http);
                let mut store = match self.store(module.engine(), state, limits, deadline, tick) {
                    Ok(store) => store,
                    Err(error) => return ready(Execution::failed(error)),
                };
                let (pre, request) = (pre.clone(), invocation.to_request());
                Box::pin(async move {
                    let result = async {
                        let extension = instantiating(pre.instantiate_async(&mut store)).await?;
                        guest_call(extension.call_handle(&mut store, &request)).await
                    }
                    .await;
                    Execution::of(&mut store, result.map(Returned::Response))
                })
            }
            Prepared::CommandComponent(pre) => {
                let stdout = Capture::new(limits.response_bytes.saturating_add(1));
                let wasi = command_sandbox(output, &stdout, &invocation.payload).build();
                let http = GuestHttp::new(limits.network.clone(), output.clone());
                let mut store = match self.store(
                    module.engine(),
                    ComponentState::new(wasi, call, http),
                    limits,
                    deadline,
                    tick,
                ) {
                    Ok(store) => store,
                    Err(error) => return ready(Execution::failed(error)),
                };
                let pre = pre.clone();
                Box::pin(async move {
                    let result = async {
                        let command = instantiating(pre.instantiate_async(&mut store)).await?;
                        guest_call(command.wasi_cli_run().call_run(&mut store)).await
                    }
                    .await;
                    let code = match result {
                        Ok(Ok(())) => Ok(0),
                        Ok(Err(())) => Ok(1),
                        Err(error) => exit_code(error),
                    };
                    let stdout = stdout.take();
                    Execution::of(&mut store, code.map(|code| Returned::Exit { code, stdout }))
                })
            }
            Prepared::CoreCommand(pre) => {
                let stdout = Capture::new(limits.response_bytes.saturating_add(1));
                let wasi = command_sandbox(output, &stdout, &invocation.payload).build_p1();
                let mut store = match self.store(
                    module.engine(),
                    CoreState { wasi, call },
                    limits,
                    deadline,
                    tick,
                ) {
                    Ok(store) => store,
                    Err(error) => return ready(Execution::failed(error)),
                };
                let pre = pre.clone();
                Box::pin(async move {
                    let result = async {
                        let instance = instantiating(pre.instantiate_async(&mut store)).await?;
                        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                        guest_call(start.call_async(&mut store, ())).await
                    }
                    .await;
                    let code = match result {
                        Ok(()) => Ok(0),
                        Err(error) => exit_code(error),
                    };
                    let stdout = stdout.take();
                    Execution::of(&mut store, code.map(|code| Returned::Exit { code, stdout }))
                })
            }
        }
    }

    /// A fresh store with the call's memory limit, deadline and instruction budget, made
    /// from the engine of the module it is for (`LoadedModule::engine`: with tiered
    /// compilation there are two).
    pub(super) fn store<T: HasCallState>(
        &self,
        engine: &wasmtime::Engine,
        state: T,
        limits: &CallLimits,
        deadline: Instant,
        tick: &TickYield,
    ) -> wasmtime::Result<Store<T>> {
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.call_state().limiter);
        self.arm(&mut store, limits, deadline, tick)?;
        Ok(store)
    }

    /// Gives a store one call's deadline and instruction budget: once for a fresh store,
    /// and again before each call on a warm one (see `reuse`).
    pub(super) fn arm<T: HasCallState>(
        &self,
        store: &mut Store<T>,
        limits: &CallLimits,
        deadline: Instant,
        tick: &TickYield,
    ) -> wasmtime::Result<()> {
        store.data_mut().call_state().deadline = deadline;
        // Check the deadline at every tick, yielding to the async runtime in between so
        // that a CPU-bound guest never holds a worker thread (or its CPU slot, see `fair`)
        // for more than one tick.
        store.set_epoch_deadline(1);
        let tick = tick.clone();
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                tick.mark();
                Ok(UpdateDeadline::Yield(1))
            }
        });
        match (self.config.fuel_metering, limits.fuel) {
            (true, budget) => store.set_fuel(budget.unwrap_or(u64::MAX))?,
            (false, Some(_)) => wasmtime::bail!(
                "an instruction budget was asked for, but this runtime was built without fuel metering"
            ),
            (false, None) => {}
        }
        Ok(())
    }
}

impl Execution {
    pub(super) fn of<T: HasCallState>(
        store: &mut Store<T>,
        result: wasmtime::Result<Returned>,
    ) -> Self {
        Execution {
            result,
            memory_exceeded: store.data_mut().call_state().limiter.memory_exceeded(),
        }
    }

    pub(super) fn failed(error: wasmtime::Error) -> Self {
        Execution {
            result: Err(error),
            memory_exceeded: false,
        }
    }
}

/// A command's exit arrives as an `I32Exit` error; anything else is a real failure.
fn exit_code(error: wasmtime::Error) -> wasmtime::Result<i32> {
    match error.downcast_ref::<I32Exit>() {
        Some(exit) => Ok(exit.0),
        None => Err(error),
    }
}

pub(super) fn classify(
    execution: Execution,
    limits: &CallLimits,
    captured: &Captured,
    redactor: &Redactor,
) -> Outcome {
    let stderr_tail = redactor.redact(&String::from_utf8_lossy(&captured.stderr_tail));
    let memory_limit = |detail: String| Outcome::MemoryLimitExceeded {
        limit_bytes: limits.memory_bytes,
        detail,
    };
    match execution.result {
        Err(error) => {
            let trap = error.downcast_ref::<Trap>().copied();
            match trap {
                Some(Trap::Interrupt) => {
                    return Outcome::Timeout {
                        limit: limits.timeout,
                    }
                }
                Some(Trap::OutOfFuel) => {
                    return Outcome::Failed(Failure::FuelExhausted {
                        budget: limits.fuel.unwrap_or(u64::MAX),
                    })
                }
                _ => {}
            }
            let failure = match trap {
                Some(trap) => {
                    let backtrace = error.downcast_ref::<WasmBacktrace>();
                    let recursion = backtrace.map_or(0, innermost_run);
                    let mut description = describe_trap(trap);
                    if recursion >= RECURSION_HINT_FRAMES && trap != Trap::StackOverflow {
                        description.push_str(&format!(
                            " after the same function called itself at least {recursion} times in a row \
                             (unbounded recursion exhausts the guest's stack)"
                        ));
                    }
                    Failure::Trap(TrapReport {
                        description,
                        panic: panic_message(&stderr_tail),
                        backtrace: backtrace.map(format_backtrace),
                    })
                }
                None => Failure::Host(redactor.redact(&format!("{error:#}"))),
            };
            if execution.memory_exceeded {
                memory_limit(failure.to_string())
            } else {
                Outcome::Failed(failure)
            }
        }
        Ok(Returned::Response(Ok(text))) => match parse_response(&text, limits.response_bytes) {
            Ok(response) => Outcome::Completed { response },
            Err(failure) => Outcome::Failed(failure),
        },
        Ok(Returned::Response(Err(message))) => {
            let message = redactor.redact(&message);
            if execution.memory_exceeded {
                memory_limit(message)
            } else {
                Outcome::Failed(Failure::Guest(message))
            }
        }
        Ok(Returned::Exit { code: 0, stdout }) => {
            if stdout.dropped > 0 || stdout.bytes.len() > limits.response_bytes {
                return Outcome::Failed(Failure::ResponseTooLarge {
                    size: stdout.bytes.len() as u64 + stdout.dropped,
                    limit: limits.response_bytes,
                });
            }
            let text = String::from_utf8_lossy(&stdout.bytes);
            // Events such as annotation_status.changed expect no answer: a command that
            // prints nothing answered with an empty object.
            let text = if text.trim().is_empty() {
                "{}"
            } else {
                text.as_ref()
            };
            match parse_response(text, limits.response_bytes) {
                Ok(response) => Outcome::Completed { response },
                Err(failure) => Outcome::Failed(failure),
            }
        }
        Ok(Returned::Exit { code, .. }) => {
            let failure = Failure::Exit {
                code,
                stderr_tail: last_lines(&stderr_tail, 20),
            };
            if execution.memory_exceeded {
                memory_limit(failure.to_string())
            } else {
                Outcome::Failed(failure)
            }
        }
    }
}

/// Frames of a backtrace shown; the rest are counted.
const BACKTRACE_FRAMES: usize = 24;
/// The same function this many times in a row at the top of the stack means recursion ran
/// away, whatever the trap it ended in (a Rust guest's shadow stack in linear memory runs out
/// as an out-of-bounds access, not as a stack overflow).
const RECURSION_HINT_FRAMES: usize = 32;

/// How many frames in a row, from the innermost, run the same function.
fn innermost_run(backtrace: &WasmBacktrace) -> usize {
    let mut frames = backtrace.frames().iter();
    let Some(first) = frames.next() else {
        return 0;
    };
    1 + frames
        .take_while(|frame| frame.func_index() == first.func_index())
        .count()
}

/// A backtrace with function names, repeated frames folded, at most [`BACKTRACE_FRAMES`].
fn format_backtrace(backtrace: &WasmBacktrace) -> String {
    let mut text = String::from("wasm backtrace:");
    let frames = backtrace.frames();
    let mut index = 0;
    let mut shown = 0;
    while index < frames.len() && shown < BACKTRACE_FRAMES {
        let frame = &frames[index];
        let repeats = frames[index..]
            .iter()
            .take_while(|other| other.func_index() == frame.func_index())
            .count();
        let module = frame.module().name().unwrap_or("<module>");
        let name = frame.func_name().map_or_else(
            || format!("<function {}>", frame.func_index()),
            |name| rustc_demangle::demangle(name).to_string(),
        );
        text.push_str(&format!("\n  {index:>3}: {module}!{name}"));
        if repeats > 1 {
            text.push_str(&format!(" (and {} more times)", repeats - 1));
        }
        index += repeats;
        shown += 1;
    }
    if index < frames.len() {
        text.push_str(&format!("\n  ... {} more frames", frames.len() - index));
    }
    text
}

fn describe_trap(trap: Trap) -> String {
    match trap {
        Trap::StackOverflow => {
            "call stack exhausted: the extension recursed too deeply (unbounded recursion?)".into()
        }
        Trap::UnreachableCodeReached => {
            "wasm `unreachable` instruction executed (an abort or a panic)".into()
        }
        other => other.to_string(),
    }
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// The output as text: redacted, and marked where it was cut.
pub(super) fn finish_output(captured: &Captured, redactor: &Redactor) -> (String, bool) {
    let text = String::from_utf8_lossy(&captured.bytes);
    if captured.dropped == 0 {
        return (redactor.redact(&text), false);
    }
    let mut text = redactor.redact_truncated(&text);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "[output truncated: {} more bytes were dropped]",
        captured.dropped
    ));
    (text, true)
}
