//! Every request wasmhook makes to the network: a guest's `wasi:http` request and a
//! webhook delivery go through the one [`Outbound`] here, so that the rules are in one
//! place.
//!
//! - A guest may reach only the hosts its hook's `config.allowed_hosts` names, plus the
//!   installation's own API (its base URL), where the token minted for it works.
//! - Loopback, private, link-local and other non-public addresses are refused, whether a
//!   URL names them or a name resolves to them (the resolver checks every address it
//!   returns, so a name cannot be pointed at the inside after it was allowed), unless the
//!   operator allows them. The installation's own base URL is exempt: it is ours.
//! - Redirects are not followed: a guest sees the 3xx and may follow it itself, through
//!   the same checks.
//! - Connecting and waiting for the first byte have their own timeouts; the response body is
//!   capped; each organization has a cap on requests in flight at once, so one cannot
//!   hold every connection.
//!
//! The parts:
//!
//! - the grammar of `config.allowed_hosts` ([`HostPattern`], [`AllowList`],
//!   [`PatternError`]) is the model's (`model/allow_list.rs`: pure, and the hook's config is
//!   checked with it when saved); re-exported here for the callers that route requests;
//! - `address.rs`: which addresses are public ([`is_public`]);
//! - `route.rs`: which rules a URL falls under before anything is sent ([`Route`]);
//! - `resolver.rs`: the DNS resolver that refuses names resolving only to non-public
//!   addresses;
//! - `client.rs`: the HTTP clients, each organization's turns, and one exchange;
//! - `error.rs`: [`OutboundError`], and the classification of a client's error by the
//!   types in its chain of causes.

mod address;
mod client;
mod error;
mod resolver;
mod route;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::trace_context::TRACE;

pub use crate::model::allow_list::{AllowList, HostPattern, PatternError};
pub use address::is_public;
pub use client::Turn;
pub use error::OutboundError;
pub use route::Route;

/// How long a connection may take unless the operator says.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the first byte of an answer may take unless the operator says.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body read unless the operator says.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
/// Requests one organization may have in flight at once unless the operator says.
pub const DEFAULT_REQUESTS_PER_ORGANIZATION: usize = 16;

/// How outbound requests are bounded; resolved once by the server (`[network]` and its
/// environment variables) and fixed for the process's life.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Allow loopback, private and other non-public addresses (for installations whose
    /// hooks call services on the same network, and for tests).
    pub allow_private_addresses: bool,
    /// Allow webhooks (and their polling `Location`s) over plain `http://`. Off by default:
    /// a webhook's payload carries the hook's secrets and a minted token.
    pub allow_http_webhooks: bool,
    /// Connecting may take this long.
    pub connect_timeout: Duration,
    /// The answer's first byte may take this long (webhooks have their own `timeout_s`).
    pub first_byte_timeout: Duration,
    /// Response bodies larger than this are cut off with an error.
    pub max_response_bytes: u64,
    /// Requests one organization may have in flight at once; more wait for a turn.
    pub requests_per_organization: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            allow_private_addresses: false,
            allow_http_webhooks: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            requests_per_organization: DEFAULT_REQUESTS_PER_ORGANIZATION,
        }
    }
}

/// What one request asks for: the callers' (guests', webhooks') common shape, so that both
/// are sent the same way.
#[derive(Debug)]
pub struct OutboundRequest {
    /// Sent as is (no redirect is followed).
    pub method: http::Method,
    /// Absolute, http or https: the rules it is sent under (its [`Route`]) are decided from
    /// it before anything is sent.
    pub url: reqwest::Url,
    /// Sent as given, beside those the client adds (a `traceparent` among them).
    pub headers: http::HeaderMap,
    /// Sent whole (a webhook's signed payload, a guest's body).
    pub body: Bytes,
    /// How long the first byte of the answer may take; the configured default if none.
    pub first_byte_timeout: Option<Duration>,
    /// Skip the TLS certificate checks (a webhook's `insecure_ssl`).
    pub insecure_tls: bool,
}

/// An answer whose body is being read, with its organization's turn held until it is
/// dropped: the cap on requests in flight counts a request until its body is read.
#[derive(Debug)]
pub struct OutboundResponse {
    /// The answer, its status and headers in; its body is still to be read, through
    /// [`OutboundResponse::bytes`] so that the cap holds.
    pub response: reqwest::Response,
    /// The most bytes of body read before the answer is refused as too large.
    pub max_body_bytes: u64,
    permit: OwnedSemaphorePermit,
}

impl OutboundResponse {
    /// Reads the whole body, up to the cap.
    pub async fn bytes(
        mut self,
    ) -> Result<(http::StatusCode, http::HeaderMap, Bytes), OutboundError> {
        let status = self.response.status();
        let headers = self.response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = self
            .response
            .chunk()
            .await
            .map_err(|failure| OutboundError::Failed(error::describe(&failure)))?
        {
            if (body.len() + chunk.len()) as u64 > self.max_body_bytes {
                return Err(OutboundError::TooLarge(self.max_body_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        drop(self.permit);
        Ok((status, headers, Bytes::from(body)))
    }

    /// The parts, for streaming the body elsewhere; the permit must live as long as the body.
    pub fn into_parts(self) -> (reqwest::Response, u64, OwnedSemaphorePermit) {
        (self.response, self.max_body_bytes, self.permit)
    }
}

/// Makes ring the process's TLS crypto provider, unless one is installed already.
///
/// reqwest is built without a provider of its own (so that no second C crypto library is
/// built beside ring), so every process that builds a reqwest client, this crate's tests
/// among them, calls this first. Calling it again does nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The outbound HTTP client of an installation: one per server, shared by the guests'
/// `wasi:http` and the webhook deliveries, so that both follow the same rules and the same
/// per-organization cap.
#[derive(Debug)]
pub struct Outbound {
    config: OutboundConfig,
    own_api: Option<route::Origin>,
    clients: client::Clients,
    turns: client::Turns,
    /// The runtime the client was made on (the server's), where guests' requests run
    /// ([`Outbound::send_from_guest`]); none when it was made outside one.
    runtime: Option<tokio::runtime::Handle>,
}

impl Outbound {
    /// A client under `config`; `base_url` is the installation's own API, reachable from
    /// guests whatever its address.
    pub fn new(config: OutboundConfig, base_url: Option<&str>) -> Result<Self, OutboundError> {
        install_crypto_provider();
        // The series exist at 0 from the start, so that a rate over them is defined before
        // the first refusal.
        if let Some(metrics) = crate::metrics::metrics() {
            // The refusals before sending (`route`, `webhook_route`).
            let refusals = [
                OutboundError::BadUrl(String::new()),
                OutboundError::NotAllowed(String::new()),
                OutboundError::PlainHttp(String::new()),
                OutboundError::PrivateAddress(String::new()),
            ];
            for refusal in refusals {
                let _ = metrics
                    .outbound_refusals
                    .get_or_create(&crate::metrics::ReasonLabels {
                        reason: refusal.reason(),
                    });
            }
            let _ = metrics
                .outbound_requests
                .get_or_create(&crate::metrics::OutboundLabels { result: "ok" });
        }
        let own_api = base_url
            .map(|url| {
                reqwest::Url::parse(url)
                    .map_err(|_| OutboundError::BadUrl(url.to_owned()))
                    .and_then(|url| route::Origin::of(&url))
            })
            .transpose()?;
        Ok(Outbound {
            clients: client::Clients::new(&config)?,
            turns: client::Turns::new(config.requests_per_organization),
            config,
            own_api,
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &OutboundConfig {
        &self.config
    }

    /// Sends a guest's request as [`Outbound::send`] does, in `turn` (taken before its body
    /// was read), as a task of the runtime this client was made on (the server's). A guest
    /// may run on a thread of the lowest priority (a long call's, `SCHED_IDLE`), and a
    /// connection is driven by a task of the runtime that opened it: opened there, a
    /// connection the pool then hands to other organizations' requests and to webhooks
    /// would move only when the server leaves a core idle. Dropping the returned future
    /// (the call abandoned) aborts the request.
    pub async fn send_from_guest(
        self: Arc<Self>,
        turn: Turn,
        organization: u64,
        route: Route,
        request: OutboundRequest,
    ) -> Result<OutboundResponse, OutboundError> {
        let Some(runtime) = self.runtime.clone() else {
            return self.send_in_turn(turn, organization, route, request).await;
        };
        let span = tracing::Span::current();
        let task = AbortOnDropHandle::new(
            runtime.spawn(
                async move { self.send_in_turn(turn, organization, route, request).await }
                    .instrument(span),
            ),
        );
        task.await
            .map_err(|error| OutboundError::Failed(format!("the request's task ended: {error}")))?
    }

    /// Sends a request under `route` for `organization`, waiting for the organization's
    /// turn first, and returns the answer once its headers are in.
    pub async fn send(
        &self,
        organization: u64,
        route: Route,
        request: OutboundRequest,
    ) -> Result<OutboundResponse, OutboundError> {
        let turn = self.turn(organization).await?;
        self.send_in_turn(turn, organization, route, request).await
    }

    /// [`Outbound::send`] in a turn of `organization` already taken.
    async fn send_in_turn(
        &self,
        turn: Turn,
        organization: u64,
        route: Route,
        request: OutboundRequest,
    ) -> Result<OutboundResponse, OutboundError> {
        let mut request = request;
        let span = tracing::info_span!(
            target: TRACE,
            "outbound request",
            otel.kind = "client",
            http.request.method = %request.method,
            server.address = request.url.host_str().unwrap_or_default(),
            organization,
        );
        span.in_scope(|| crate::trace_context::inject(&mut request.headers));
        let sent = resolver::for_organization(
            organization,
            self.exchange(turn, route, request).instrument(span),
        )
        .await;
        let result = match &sent {
            Ok(_) => "ok",
            // A name that resolved only to refused addresses is a refusal too, found late.
            Err(error @ OutboundError::PrivateAddress(_)) => {
                error.count_refusal();
                error.reason()
            }
            Err(error) => error.reason(),
        };
        if let Some(metrics) = crate::metrics::metrics() {
            metrics
                .outbound_requests
                .get_or_create(&crate::metrics::OutboundLabels { result })
                .inc();
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;
    use std::io::{Read, Write};

    /// A guest's request runs on the runtime the client was made on: the connection it
    /// opens, which the pool keeps for any later request, is driven by a task there, and no
    /// task of the guest's runtime is left behind. Sent with `send`, the connection's task
    /// would be the guest runtime's.
    #[test]
    fn a_guests_request_and_its_connection_run_on_the_clients_runtime() -> Result<(), Box<dyn Error>>
    {
        // One keep-alive connection, one short answer to each request on it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buffer = [0u8; 4096];
                while let Ok(read) = stream.read(&mut buffer) {
                    if read == 0 {
                        break;
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).is_err() {
                        break;
                    }
                }
            }
        });
        let server = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let outbound =
            Arc::new(server.block_on(async { Outbound::new(OutboundConfig::default(), None) })?);
        let guest = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let request = OutboundRequest {
            method: http::Method::GET,
            url: reqwest::Url::parse(&format!("http://127.0.0.1:{port}/"))?,
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
            first_byte_timeout: None,
            insecure_tls: false,
        };
        let (status, _, body) = guest.block_on(async {
            let turn = outbound.turn(1).await?;
            Arc::clone(&outbound)
                .send_from_guest(turn, 1, Route::OwnApi, request)
                .await?
                .bytes()
                .await
        })?;
        assert_eq!((status, &body[..]), (http::StatusCode::OK, &b"ok"[..]));
        assert_eq!(
            guest.metrics().num_alive_tasks(),
            0,
            "no task of the guest's runtime drives the connection"
        );
        assert!(
            server.metrics().num_alive_tasks() >= 1,
            "the pooled connection's task is the client's runtime's"
        );
        Ok(())
    }
}
