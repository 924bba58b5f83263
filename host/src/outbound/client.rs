//! The HTTP clients behind [`Outbound`], each organization's turns, and the exchange of
//! one request through them: the part of outbound that touches the network.

use std::sync::Arc;
use std::time::Duration;

use super::error::{classify, describe};
use super::resolver::CheckingResolver;
use super::{Outbound, OutboundConfig, OutboundError, OutboundRequest, OutboundResponse, Route};
use crate::keyed::KeyedSemaphores;

/// One reqwest client per set of rules a request is sent under; all of them follow no
/// redirect and share the configured connect timeout.
#[derive(Debug)]
pub(super) struct Clients {
    /// Public hosts: names go through the checking resolver, certificates are checked.
    public: reqwest::Client,
    /// Public hosts without certificate checks: a webhook's `insecure_ssl`.
    public_insecure: reqwest::Client,
    /// The installation's own API, wherever it is: the system's resolver, no address rule.
    own: reqwest::Client,
}

impl Clients {
    /// The clients under `config`.
    pub(super) fn new(config: &OutboundConfig) -> Result<Self, OutboundError> {
        let resolver = Arc::new(CheckingResolver::new(config.allow_private_addresses));
        let build = |insecure: bool, checked: bool| {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(config.connect_timeout)
                .pool_idle_timeout(Duration::from_secs(30))
                .user_agent(concat!("wasmhook/", env!("CARGO_PKG_VERSION")))
                .tls_danger_accept_invalid_certs(insecure);
            if checked {
                builder = builder.dns_resolver(Arc::clone(&resolver));
            }
            builder
                .build()
                .map_err(|error| OutboundError::Failed(describe(&error)))
        };
        Ok(Clients {
            public: build(false, true)?,
            public_insecure: build(true, true)?,
            own: build(false, false)?,
        })
    }

    /// The client that applies `route`'s rules.
    fn of(&self, route: Route, insecure_tls: bool) -> &reqwest::Client {
        match (route, insecure_tls) {
            (Route::OwnApi, _) => &self.own,
            (Route::Public, false) => &self.public,
            (Route::Public, true) => &self.public_insecure,
        }
    }
}

/// Each organization's turns: a semaphore of `requests_per_organization` permits, made at
/// the organization's first request, so that one organization cannot hold every
/// connection.
pub(super) type Turns = KeyedSemaphores<u64>;

/// One of an organization's turns ([`Outbound::turn`]), held until the answer's body is
/// read or dropped.
pub type Turn = tokio::sync::OwnedSemaphorePermit;

impl Outbound {
    /// Waits for one of `organization`'s turns. A guest's request takes it before its body
    /// is read into memory, so that the bodies an organization's requests hold at once are
    /// as few as its turns.
    pub async fn turn(&self, organization: u64) -> Result<Turn, OutboundError> {
        self.turns
            .acquire(organization)
            .await
            .map_err(|_| OutboundError::Failed("the client is shutting down".into()))
    }

    /// Sends the request in `permit` (the organization's turn) with the client of `route`,
    /// and returns the answer once its headers are in (or why there is none).
    pub(super) async fn exchange(
        &self,
        permit: Turn,
        route: Route,
        request: OutboundRequest,
    ) -> Result<OutboundResponse, OutboundError> {
        let client = self.clients.of(route, request.insecure_tls);
        let host = request.url.host_str().unwrap_or_default().to_owned();
        let wait = request
            .first_byte_timeout
            .unwrap_or(self.config.first_byte_timeout);
        let sent = client
            .request(request.method, request.url)
            .headers(request.headers)
            .body(request.body)
            .send();
        let response = match tokio::time::timeout(wait, sent).await {
            Err(_) => return Err(OutboundError::Timeout(wait)),
            Ok(Err(error)) => return Err(classify(&error, &host)),
            Ok(Ok(response)) => response,
        };
        if let Some(length) = response.content_length() {
            if length > self.config.max_response_bytes {
                return Err(OutboundError::TooLarge(self.config.max_response_bytes));
            }
        }
        Ok(OutboundResponse {
            response,
            max_body_bytes: self.config.max_response_bytes,
            permit,
        })
    }
}
