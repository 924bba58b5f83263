//! Calling a webhook hook once: the payload a function would get, POSTed as JSON and signed
//! as Rossum signs it (`X-Rossum-Signature-SHA256: sha256=<hex HMAC-SHA256 of the body>`),
//! its JSON answer taken as the hook's response, and Rossum's async protocol for
//! non-interactive calls (202 with `Location`, polled until 201). An interactive call that
//! is answered 202 fails: someone is waiting, and its hook cannot answer later.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::metrics::{metrics, StatusLabels};
use crate::model::hook::{Hook, WebhookConfig, DEFAULT_POLLING_TIME_S, DEFAULT_TIMEOUT_S};
use crate::model::EventAction;
use crate::outbound::{Outbound, OutboundError, OutboundRequest, Route};

/// The header a signed call carries.
pub const SIGNATURE_HEADER: &str = "X-Rossum-Signature-SHA256";
/// Seconds an interactive call waits, whatever `timeout_s` says (as Rossum does).
pub const INTERACTIVE_TIMEOUT_S: u64 = 30;

/// How a webhook call ended.
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    /// A 2xx answer whose body is a JSON object (or empty).
    Completed(Map<String, Value>),
    /// Anything else; the reason names the status or the failure, never the URL's query.
    Failed(String),
    /// No answer in time.
    Timeout(Duration),
}

/// One webhook call, done.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// How it ended.
    pub outcome: DeliveryOutcome,
    /// The HTTP status of the last answer, when there was one.
    pub status_code: Option<u16>,
    /// Whether another attempt may help (a retryable status, no answer, or failed polling
    /// with `retry_after_polling_failure`).
    pub retryable: bool,
    /// When the call started.
    pub started_at: SystemTime,
    /// How long it took, polling included.
    pub duration: Duration,
}

/// How the async protocol polls.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    /// Time between polls (Rossum: 30 s).
    pub interval: Duration,
}

/// The signature header's value for `body` signed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What the first request of a webhook call got: an answer that ends the call, or Rossum's
/// async protocol's 202, whose result is then polled ([`poll_once`]), in place by
/// [`deliver`] or as a delivery's turns by whichever replica claims it.
#[derive(Debug, Clone)]
pub enum Sent {
    /// The call ended.
    Answered(Delivery),
    /// 202 with a `Location`: poll `target` until `bound` has passed.
    Accepted(Accepted),
}

/// A webhook call accepted for later (202): where and how long its result is polled.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The URL polled.
    pub target: reqwest::Url,
    /// How long polling may go on.
    pub bound: Duration,
    /// When the call began.
    pub started_at: SystemTime,
}

/// What one poll found.
#[derive(Debug, Clone)]
pub enum PollAnswer {
    /// The call ended: how, its last status code, and whether another attempt may help.
    Done(DeliveryOutcome, Option<u16>, bool),
    /// No result yet: poll again.
    Pending,
}

/// Polls an accepted call in place every `polling.interval` until it ends or its bound
/// passes: for `/test`, where someone waits on this one call. An event's deliveries poll
/// as turns of their own instead (`dispatch::deliveries`), so that no request waits.
pub async fn poll_in_place(
    outbound: &Outbound,
    hook: &Hook,
    config: &WebhookConfig,
    event: &EventAction,
    accepted: Accepted,
    polling: Polling,
) -> Delivery {
    let deadline = Instant::now() + accepted.bound;
    loop {
        if Instant::now() + polling.interval > deadline {
            let (outcome, code, retryable) = polling_expired(config, accepted.bound);
            return delivered(outcome, code, retryable, accepted.started_at);
        }
        tokio::time::sleep(polling.interval).await;
        if let PollAnswer::Done(outcome, code, retryable) =
            poll_once(outbound, hook, config, event, &accepted.target).await
        {
            return delivered(outcome, code, retryable, accepted.started_at);
        }
    }
}

/// Sends the call: its answer, or its acceptance for polling.
pub async fn send(
    outbound: &Outbound,
    hook: &Hook,
    config: &WebhookConfig,
    secret: Option<&str>,
    event: &EventAction,
    payload: &str,
) -> Sent {
    call(
        outbound,
        hook,
        config,
        secret,
        event,
        payload,
        SystemTime::now(),
    )
    .await
}

/// A call that ended, counted; its duration runs from `started_at` to now.
pub fn delivered(
    outcome: DeliveryOutcome,
    status_code: Option<u16>,
    retryable: bool,
    started_at: SystemTime,
) -> Delivery {
    let status = match &outcome {
        DeliveryOutcome::Completed(_) => "completed",
        DeliveryOutcome::Failed(_) => "failed",
        DeliveryOutcome::Timeout(_) => "timeout",
    };
    if let Some(metrics) = metrics() {
        metrics
            .webhook_deliveries
            .get_or_create(&StatusLabels { status })
            .inc();
    }
    Delivery {
        outcome,
        status_code,
        retryable,
        started_at,
        duration: started_at.elapsed().unwrap_or_default(),
    }
}

/// How an accepted call ends when `bound` passed without a result: a polling failure,
/// retried only with `retry_after_polling_failure`.
pub fn polling_expired(
    config: &WebhookConfig,
    bound: Duration,
) -> (DeliveryOutcome, Option<u16>, bool) {
    (
        DeliveryOutcome::Failed(format!(
            "polling failed: no result within max_polling_time_s ({} s)",
            bound.as_secs()
        )),
        Some(202),
        config.options().retry_after_polling_failure,
    )
}

async fn call(
    outbound: &Outbound,
    hook: &Hook,
    config: &WebhookConfig,
    secret: Option<&str>,
    event: &EventAction,
    payload: &str,
    started_at: SystemTime,
) -> Sent {
    let policy = hook.spec.kind.retry_policy();
    let options = config.options();
    let done =
        |outcome, code, retryable| Sent::Answered(delivered(outcome, code, retryable, started_at));
    let failed = |reason: String| done(DeliveryOutcome::Failed(reason), None, false);
    let Ok(url) = reqwest::Url::parse(&config.url) else {
        return failed("config.url is not a URL".into());
    };
    let route = match outbound.webhook_route(&url) {
        Ok(route) => route,
        Err(error) => return failed(format!("not called: {error}")),
    };
    let body = Bytes::copy_from_slice(payload.as_bytes());
    let mut headers = http::HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Some(secret) = secret {
        if let Ok(value) = http::HeaderValue::from_str(&signature(secret, &body)) {
            headers.insert(SIGNATURE_HEADER, value);
        }
    }
    let timeout = call_timeout(config, event);
    let request = OutboundRequest {
        method: http::Method::POST,
        url: url.clone(),
        headers,
        body,
        first_byte_timeout: Some(timeout),
        insecure_tls: options.insecure_ssl,
    };
    let (status, headers, body) = match exchange(outbound, hook, route, request, timeout).await {
        Err(OutboundError::Timeout(_)) => {
            return done(DeliveryOutcome::Timeout(timeout), None, true)
        }
        Err(error) => {
            // A refusal, a certificate that does not verify or an answer over the cap will
            // not change on its own.
            let retryable = !matches!(
                error,
                OutboundError::BadUrl(_)
                    | OutboundError::PrivateAddress(_)
                    | OutboundError::Tls(_)
                    | OutboundError::TooLarge(_)
            );
            return done(
                DeliveryOutcome::Failed(match error {
                    OutboundError::TooLarge(limit) => {
                        format!("the webhook's answer is larger than {limit} bytes")
                    }
                    other => format!("the webhook was not reached: {other}"),
                }),
                None,
                retryable,
            );
        }
        Ok(answer) => answer,
    };
    let code = status.as_u16();
    if code == 202 && event.is_interactive() {
        // Someone waits on an interactive call: Rossum's async protocol is for
        // non-interactive events only, so a 202 here is no answer.
        return done(
            DeliveryOutcome::Failed(interactive_accepted(event)),
            Some(code),
            false,
        );
    }
    if code == 202 {
        if let Some(location) = headers.get(LOCATION).and_then(|value| value.to_str().ok()) {
            let Ok(target) = url.join(location) else {
                return done(
                    DeliveryOutcome::Failed("the 202's Location is not a URL".into()),
                    Some(code),
                    false,
                );
            };
            return Sent::Accepted(Accepted {
                target,
                bound: polling_bound(config, event),
                started_at,
            });
        }
    }
    if status.is_success() {
        return match response_object(&body) {
            Ok(response) => done(DeliveryOutcome::Completed(response), Some(code), false),
            Err(reason) => done(DeliveryOutcome::Failed(reason), Some(code), false),
        };
    }
    done(
        DeliveryOutcome::Failed(format!("the webhook answered {status}")),
        Some(code),
        policy.retries_status(code),
    )
}

/// How long an accepted call for `event` may be polled: the hook's `max_polling_time_s`
/// for upload.created and invocation.scheduled (the only events that may set their own),
/// Rossum's default for the rest.
pub fn polling_bound(config: &WebhookConfig, event: &EventAction) -> Duration {
    Duration::from_secs(
        if matches!(
            (event.event(), event.action()),
            ("upload", "created") | ("invocation", "scheduled")
        ) {
            config.options().max_polling_time_s
        } else {
            DEFAULT_POLLING_TIME_S
        },
    )
}

/// How long one request of a call to `config`'s URL for `event` may take: 30 s for an
/// interactive event, else the hook's `timeout_s`.
fn call_timeout(config: &WebhookConfig, event: &EventAction) -> Duration {
    let timeout_s = config.options().timeout_s;
    Duration::from_secs(if event.is_interactive() {
        INTERACTIVE_TIMEOUT_S
    } else if timeout_s == 0 {
        DEFAULT_TIMEOUT_S
    } else {
        timeout_s
    })
}

/// Why a webhook's 202 to an interactive event fails its call.
fn interactive_accepted(event: &EventAction) -> String {
    format!(
        "the webhook answered 202 Accepted to {event}, an interactive event: interactive hooks \
         cannot answer asynchronously; answer it with its result (200)"
    )
}

/// Polls an accepted call's `target` once: 201 ends it (its body is the result), a
/// retryable answer or none leaves it pending, anything else fails it as a polling failure
/// (retried only with `retry_after_polling_failure`).
pub async fn poll_once(
    outbound: &Outbound,
    hook: &Hook,
    config: &WebhookConfig,
    event: &EventAction,
    target: &reqwest::Url,
) -> PollAnswer {
    let options = config.options();
    let failure = |reason: String, code: Option<u16>| {
        PollAnswer::Done(
            DeliveryOutcome::Failed(format!("polling failed: {reason}")),
            code,
            options.retry_after_polling_failure,
        )
    };
    let route = match outbound.webhook_route(target) {
        Ok(route) => route,
        Err(error) => return failure(format!("not polled: {error}"), None),
    };
    if let Some(metrics) = metrics() {
        metrics.webhook_polls.inc();
    }
    let timeout = call_timeout(config, event);
    let request = OutboundRequest {
        method: http::Method::GET,
        url: target.clone(),
        headers: http::HeaderMap::new(),
        body: Bytes::new(),
        first_byte_timeout: Some(timeout),
        insecure_tls: options.insecure_ssl,
    };
    let (status, _, body) = match exchange(outbound, hook, route, request, timeout).await {
        // No answer to a poll is retried, as a 5xx is.
        Err(OutboundError::Timeout(_) | OutboundError::Connect(_)) => return PollAnswer::Pending,
        Err(error) => return failure(error.to_string(), None),
        Ok(answer) => answer,
    };
    let code = status.as_u16();
    match code {
        201 => match response_object(&body) {
            Ok(response) => {
                PollAnswer::Done(DeliveryOutcome::Completed(response), Some(code), false)
            }
            Err(reason) => failure(reason, Some(code)),
        },
        200 | 202 | 408 | 429 | 500 | 502 | 503 | 504 => PollAnswer::Pending,
        _ => failure(format!("the poll answered {status}"), Some(code)),
    }
}

/// Sends `request` and reads the whole answer, all within `timeout`.
async fn exchange(
    outbound: &Outbound,
    hook: &Hook,
    route: Route,
    request: OutboundRequest,
    timeout: Duration,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes), OutboundError> {
    let answer = async {
        let mut answer = outbound.send(hook.organization_id, route, request).await?;
        // A webhook's answer is a hook's response, as a module's is: held to the same
        // bytes, not to the 8 MiB a module may fetch, since it is parsed, kept in the run
        // log and the delivery's row, and handed to the hooks after it.
        answer.max_body_bytes = answer
            .max_body_bytes
            .min(crate::runtime::DEFAULT_RESPONSE_BYTES as u64);
        answer.bytes().await
    };
    tokio::time::timeout(timeout, answer)
        .await
        .unwrap_or(Err(OutboundError::Timeout(timeout)))
}

/// A 2xx body as the hook's response: a JSON object, or nothing.
fn response_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(response)) => Ok(response),
        Ok(_) => Err("the webhook answered with JSON that is not an object".into()),
        Err(_) => Err("the webhook's answer is not JSON".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rossums() {
        // Python: hmac.new(b"secret", b'{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature("secret", br#"{"a":1}"#),
            "sha256=aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494"
        );
    }

    #[test]
    fn an_interactive_202_says_why_it_fails() -> Result<(), crate::model::EventError> {
        let message = interactive_accepted(&EventAction::new("annotation_content", "updated")?);
        assert!(
            message.contains("interactive hooks cannot answer asynchronously"),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn answers_are_objects_or_nothing() {
        assert_eq!(response_object(b""), Ok(Map::new()));
        assert!(response_object(b"{\"messages\": []}").is_ok());
        assert!(response_object(b"[1]").is_err());
        assert!(response_object(b"<html>").is_err());
    }
}
