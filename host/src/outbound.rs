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

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::trace_context::TRACE;

/// How long a connection may take unless the operator says.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the first byte of an answer may take unless the operator says.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body read unless the operator says.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
/// Requests one organization may have in flight at once unless the operator says.
pub const DEFAULT_REQUESTS_PER_ORGANIZATION: usize = 16;

/// How outbound requests are bounded; resolved once by the server.
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

/// Why a request was not sent, or got no answer. Never holds a header or a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The URL is not an absolute http(s) URL.
    #[error("`{0}` is not an http or https URL")]
    BadUrl(String),
    /// The call was given no network at all (`wasmhook run`, or a caller that grants none).
    #[error("this call has no network access")]
    NoNetwork,
    /// A webhook URL is plain HTTP and the operator has not allowed that.
    #[error("{0} is plain http; webhooks are called over https only, unless the operator allows plain HTTP (WASMHOOK_ALLOW_HTTP_WEBHOOKS)")]
    PlainHttp(String),
    /// The host is not on the hook's allow-list.
    #[error("{0} is not in this hook's config.allowed_hosts")]
    NotAllowed(String),
    /// The host is, or resolves to, an address that is not public.
    #[error("{0} is a loopback, private or otherwise non-public address; the operator has not allowed those")]
    PrivateAddress(String),
    /// The name does not resolve.
    #[error("{0} does not resolve")]
    Unresolved(String),
    /// The TLS handshake failed: most often a certificate that does not verify.
    #[error("TLS failed: {0}")]
    Tls(String),
    /// Connecting failed or took too long.
    #[error("cannot connect to {0}")]
    Connect(String),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer's body is larger than the cap.
    #[error("the response body is larger than {0} bytes")]
    TooLarge(u64),
    /// The exchange failed otherwise.
    #[error("the request failed: {0}")]
    Failed(String),
}

impl OutboundError {
    /// A fixed word for the kind of error: a metric's label.
    pub fn reason(&self) -> &'static str {
        match self {
            OutboundError::BadUrl(_) => "bad_url",
            OutboundError::NoNetwork => "no_network",
            OutboundError::PlainHttp(_) => "plain_http",
            OutboundError::NotAllowed(_) => "not_allowed",
            OutboundError::PrivateAddress(_) => "private_address",
            OutboundError::Unresolved(_) => "unresolved",
            OutboundError::Tls(_) => "tls",
            OutboundError::Connect(_) => "connect",
            OutboundError::Timeout(_) => "timeout",
            OutboundError::TooLarge(_) => "too_large",
            OutboundError::Failed(_) => "failed",
        }
    }
}

/// Counts a route's refusal, by reason.
fn refusal_counted(route: Result<Route, OutboundError>) -> Result<Route, OutboundError> {
    if let Err(error) = &route {
        count_refusal(error);
    }
    route
}

/// Counts a refusal, by reason.
fn count_refusal(error: &OutboundError) {
    if let Some(metrics) = crate::metrics::metrics() {
        metrics
            .outbound_refusals
            .get_or_create(&crate::metrics::ReasonLabels {
                reason: error.reason(),
            })
            .inc();
    }
}

/// One `host` or `host:port` pattern of `config.allowed_hosts`; `*.example.com` matches any
/// subdomain of example.com (not example.com itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses a pattern, saying what is wrong with a bad one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        if text.contains("://") || text.contains('/') {
            return Err(format!(
                "`{text}`: a host or host:port, without scheme or path"
            ));
        }
        let (host, port) = split_host_port(&text)
            .ok_or_else(|| format!("`{text}`: a host or host:port, with a port from 1 to 65535"))?;
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (host, false),
        };
        let valid_name = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        let literal = host.parse::<IpAddr>().is_ok();
        if !(valid_name || literal) || (wildcard && literal) {
            return Err(format!("`{text}` is not a host name or an IP address"));
        }
        Ok(HostPattern {
            host: host.to_owned(),
            wildcard,
            port,
        })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host_matches = if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            host == self.host || same_address(host, &self.host)
        };
        host_matches && self.port.is_none_or(|wanted| wanted == port)
    }
}

/// Whether two texts are the same IP address however each is written: a pattern keeps
/// `::127.0.0.1` as written, while a URL's host is normalized to `::7f00:1`.
fn same_address(one: &str, other: &str) -> bool {
    matches!(
        (one.parse::<IpAddr>(), other.parse::<IpAddr>()),
        (Ok(one), Ok(other)) if one == other
    )
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(port)) => write!(f, "[{}]:{port}", self.host),
            (false, Some(port)) => write!(f, "{}:{port}", self.host),
            (_, None) => f.write_str(&self.host),
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, or a bare IPv6 address.
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(parse_port(port)?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Some((text, None));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(parse_port(port)?))),
        None => Some((text, None)),
    }
}

fn parse_port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|port| *port != 0)
}

/// The hosts one hook's guest may call (besides the installation's own API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<HostPattern>);

impl AllowList {
    /// The list from its patterns.
    pub fn new(patterns: Vec<HostPattern>) -> Self {
        AllowList(patterns)
    }

    /// Parses `config.allowed_hosts`-style strings.
    pub fn parse<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        patterns
            .into_iter()
            .map(HostPattern::parse)
            .collect::<Result<_, _>>()
            .map(AllowList)
    }

    /// Whether a pattern allows `host` (lowercase, an IPv6 address without brackets, as a
    /// URL gives it) on `port`.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.0.iter().any(|pattern| pattern.matches(host, port))
    }
}

/// An absolute URL's parts that the rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

impl Origin {
    fn of(url: &reqwest::Url) -> Result<Self, OutboundError> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(OutboundError::BadUrl(url.to_string())),
        };
        let host = url
            .host_str()
            .ok_or_else(|| OutboundError::BadUrl(url.to_string()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| OutboundError::BadUrl(url.to_string()))?;
        Ok(Origin { https, host, port })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Whose rules a request is sent under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The installation's own API: its base URL, whatever its address.
    OwnApi,
    /// Anywhere else: public addresses only, unless the operator allows the others.
    Public,
}

/// What one request asks for.
#[derive(Debug)]
pub struct OutboundRequest {
    /// The method.
    pub method: http::Method,
    /// The absolute URL.
    pub url: reqwest::Url,
    /// Headers to send.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
    /// How long the first byte of the answer may take; the configured default if none.
    pub first_byte_timeout: Option<Duration>,
    /// Skip the TLS certificate checks (a webhook's `insecure_ssl`).
    pub insecure_tls: bool,
}

/// An answer whose body is being read, with its organization's turn held until it is
/// dropped.
#[derive(Debug)]
pub struct OutboundResponse {
    /// The answer.
    pub response: reqwest::Response,
    /// The cap on its body.
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
            .map_err(|error| OutboundError::Failed(describe(&error)))?
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

/// The outbound HTTP client of an installation.
#[derive(Debug)]
pub struct Outbound {
    config: OutboundConfig,
    own_api: Option<Origin>,
    public: reqwest::Client,
    public_insecure: reqwest::Client,
    own: reqwest::Client,
    turns: Mutex<HashMap<u64, Arc<Semaphore>>>,
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
                    .and_then(|url| Origin::of(&url))
            })
            .transpose()?;
        let resolver = Arc::new(CheckingResolver {
            allow_private: config.allow_private_addresses,
        });
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
        Ok(Outbound {
            public: build(false, true)?,
            public_insecure: build(true, true)?,
            own: build(false, false)?,
            config,
            own_api,
            turns: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &OutboundConfig {
        &self.config
    }

    /// Which rules `url` falls under for a guest with `allowed`, or why it may not be called.
    pub fn route(&self, url: &reqwest::Url, allowed: &AllowList) -> Result<Route, OutboundError> {
        refusal_counted(self.guest_route(url, allowed))
    }

    fn guest_route(&self, url: &reqwest::Url, allowed: &AllowList) -> Result<Route, OutboundError> {
        let origin = Origin::of(url)?;
        if self.own_api.as_ref() == Some(&origin) {
            return Ok(Route::OwnApi);
        }
        if !allowed.allows(&origin.host, origin.port) {
            return Err(OutboundError::NotAllowed(origin.authority()));
        }
        self.public_route(&origin)
    }

    /// The rules for a URL a hook names itself (a webhook's `url`, or the `Location` its
    /// asynchronous answer points to): https and public addresses only, unless the operator
    /// allows the others. Checked at every call, not only when the hook is saved, so a hook
    /// saved before the operator's setting changed follows the setting too.
    pub fn webhook_route(&self, url: &reqwest::Url) -> Result<Route, OutboundError> {
        refusal_counted(self.hook_named_route(url))
    }

    fn hook_named_route(&self, url: &reqwest::Url) -> Result<Route, OutboundError> {
        let origin = Origin::of(url)?;
        if !origin.https && !self.config.allow_http_webhooks {
            return Err(OutboundError::PlainHttp(origin.authority()));
        }
        self.public_route(&origin)
    }

    fn public_route(&self, origin: &Origin) -> Result<Route, OutboundError> {
        if let Ok(address) = origin.host.parse::<IpAddr>() {
            if !self.config.allow_private_addresses && !is_public(address) {
                return Err(OutboundError::PrivateAddress(origin.authority()));
            }
        }
        Ok(Route::Public)
    }

    /// Sends a request under `route` for `organization`, waiting for the organization's
    /// turn first, and returns the answer once its headers are in.
    pub async fn send(
        &self,
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
        let sent = self
            .exchange(organization, route, request)
            .instrument(span)
            .await;
        let result = match &sent {
            Ok(_) => "ok",
            // A name that resolved only to refused addresses is a refusal too, found late.
            Err(error @ OutboundError::PrivateAddress(_)) => {
                count_refusal(error);
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

    async fn exchange(
        &self,
        organization: u64,
        route: Route,
        request: OutboundRequest,
    ) -> Result<OutboundResponse, OutboundError> {
        let permit = self
            .turns_of(organization)
            .acquire_owned()
            .await
            .map_err(|_| OutboundError::Failed("the client is shutting down".into()))?;
        let client = match (route, request.insecure_tls) {
            (Route::OwnApi, _) => &self.own,
            (Route::Public, false) => &self.public,
            (Route::Public, true) => &self.public_insecure,
        };
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

    fn turns_of(&self, organization: u64) -> Arc<Semaphore> {
        let mut turns = self
            .turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(turns.entry(organization).or_insert_with(|| {
            Arc::new(Semaphore::new(self.config.requests_per_organization.max(1)))
        }))
    }
}

/// The reason of a failed exchange, from reqwest's error and its sources (without the URL,
/// which may hold a query the caller did not mean to log).
fn classify(error: &reqwest::Error, host: &str) -> OutboundError {
    let text = describe(error);
    if text.contains(PRIVATE_MARK) {
        return OutboundError::PrivateAddress(host.to_owned());
    }
    if text.contains(UNRESOLVED_MARK) {
        return OutboundError::Unresolved(host.to_owned());
    }
    if text.contains("certificate") || text.contains("TLS") || text.contains("tls") {
        return OutboundError::Tls(text);
    }
    if error.is_connect() {
        return OutboundError::Connect(host.to_owned());
    }
    if error.is_timeout() {
        return OutboundError::Failed("timed out".into());
    }
    OutboundError::Failed(text)
}

/// An error and its causes on one line, without the URL (its query may hold what the caller
/// did not mean to log).
fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = match error.url() {
        Some(url) => error.to_string().replace(url.as_str(), "the URL"),
        None => error.to_string(),
    };
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

const PRIVATE_MARK: &str = "resolves only to non-public addresses";
const UNRESOLVED_MARK: &str = "does not resolve";

/// Resolves names and keeps only the addresses the rules allow.
#[derive(Debug)]
struct CheckingResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| format!("{host} {UNRESOLVED_MARK}"))?
                .collect();
            if found.is_empty() {
                return Err(format!("{host} {UNRESOLVED_MARK}").into());
            }
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| allow_private || is_public(address.ip()))
                .collect();
            if kept.is_empty() {
                return Err(format!("{host} {PRIVATE_MARK}").into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local,
/// shared (CGNAT), documentation, benchmarking, multicast, broadcast, unspecified or
/// otherwise reserved; and, for an IPv6 address that carries an IPv4 one, the IPv4 address
/// is public too.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    !(address.is_unspecified()
        || address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_broadcast()
        || address.is_documentation()
        || address.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

/// An IPv6 address is public when it is global unicast (`2000::/3`) outside the blocks set
/// aside for special use, and every IPv4 address it carries is public: an address that
/// embeds a loopback or private IPv4 one can reach it (through a NAT64 gateway, a 6to4,
/// Teredo or ISATAP tunnel, or the kernel's own mapping), so it is refused as that address
/// would be.
///
/// Deny by default: everything outside `2000::/3` that does not stand for an IPv4 address
/// (see [`translated_v4`]) is reserved, unique-local (`fc00::/7`), link-local (`fe80::/10`),
/// site-local (`fec0::/10`), multicast (`ff00::/8`), the local-use NAT64 prefix
/// (`64:ff9b:1::/48`, RFC 8215), discard-only (`100::/64`) or SRv6 SIDs (`5f00::/16`): no
/// host on the internet has such an address. NAT64 and 6rd prefixes an operator chose for
/// its own network cannot be told from ordinary addresses; a name resolving to one is
/// judged as the IPv6 address it is.
fn is_public_v6(address: Ipv6Addr) -> bool {
    if let Some(v4) = translated_v4(address) {
        return is_public_v4(v4);
    }
    let segments = address.segments();
    let [first, second, ..] = segments;
    if first & 0xe000 != 0x2000 {
        return false;
    }
    // 2001::/23, IETF protocol assignments (benchmarking 2001:2::/48, ORCHID 2001:10::/28,
    // ...), except those IANA lists as globally reachable.
    let protocol_assignment =
        first == 0x2001 && second < 0x0200 && !reachable_protocol_assignment(segments);
    // Documentation: 2001:db8::/32, and 3fff::/20 (RFC 9637).
    let documentation =
        (first == 0x2001 && second == 0x0db8) || (first == 0x3fff && second < 0x1000);
    !protocol_assignment
        && !documentation
        && tunnelled_v4(address)
            .into_iter()
            .flatten()
            .all(is_public_v4)
}

/// The IPv4 address an IPv6 one stands for: IPv4-compatible `::a.b.c.d` (`::/96`,
/// deprecated; `::` and `::1` among them), IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated
/// `::ffff:0:a.b.c.d` (SIIT) and the NAT64 well-known prefix `64:ff9b::a.b.c.d` (RFC 6052).
fn translated_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    match address.segments() {
        [0, 0, 0, 0, 0, 0 | 0xffff, high, low]
        | [0, 0, 0, 0, 0xffff, 0, high, low]
        | [0x0064, 0xff9b, 0, 0, 0, 0, high, low] => Some(v4_of(high, low)),
        _ => None,
    }
}

/// The IPv4 addresses a tunnelled IPv6 address carries, where packets to it may leave as
/// IPv4: 6to4's gateway (`2002::/16`, bits 16 to 48), Teredo's server (`2001::/32`, bits 32
/// to 64) and client (the last 32 bits, inverted), and an ISATAP interface id's address
/// (`…:0:5efe:a.b.c.d` or `…:200:5efe:a.b.c.d`, in any prefix).
fn tunnelled_v4(address: Ipv6Addr) -> [Option<Ipv4Addr>; 3] {
    let segments = address.segments();
    let (gateway, client) = match segments {
        [0x2002, high, low, ..] => (Some(v4_of(high, low)), None),
        [0x2001, 0, server_high, server_low, _, _, client_high, client_low] => (
            Some(v4_of(server_high, server_low)),
            Some(v4_of(!client_high, !client_low)),
        ),
        _ => (None, None),
    };
    let isatap = match segments {
        [_, _, _, _, flags, 0x5efe, high, low] if flags & 0xfcff == 0 => Some(v4_of(high, low)),
        _ => None,
    };
    [gateway, client, isatap]
}

/// Within `2001::/23`, the blocks IANA lists as globally reachable: the PCP, TURN and
/// DNS-SD SRP anycast addresses (`2001:1::1` to `2001:1::3`), AMT (`2001:3::/32`), AS112-v6
/// (`2001:4:112::/48`), ORCHIDv2 and drone remote ID tags (`2001:20::/28`, `2001:30::/28`);
/// and Teredo (`2001::/32`), which is judged by the IPv4 addresses it carries.
fn reachable_protocol_assignment(segments: [u16; 8]) -> bool {
    matches!(
        segments,
        [0x2001, 0x0000, ..]
            | [0x2001, 0x0001, 0, 0, 0, 0, 0, 1..=3]
            | [0x2001, 0x0003, ..]
            | [0x2001, 0x0004, 0x0112, ..]
            | [0x2001, 0x0020..=0x003f, ..]
    )
}

/// The IPv4 address of two 16-bit groups.
fn v4_of(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_host_and_port() -> Result<(), String> {
        let list = AllowList::parse(["api.example.com", "*.partner.io:8443", "10.1.2.3:80"])?;
        assert!(list.allows("api.example.com", 443));
        assert!(list.allows("api.example.com", 8080));
        assert!(!list.allows("example.com", 443));
        assert!(!list.allows("evil-api.example.com", 443));
        assert!(list.allows("eu.partner.io", 8443));
        assert!(!list.allows("eu.partner.io", 443));
        assert!(!list.allows("partner.io", 8443));
        assert!(!list.allows("xpartner.io", 8443));
        assert!(list.allows("10.1.2.3", 80));
        Ok(())
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in [
            "https://a.com",
            "a.com/path",
            "a.com:0",
            "a.com:99999",
            "",
            "a..com",
            "*.1.2.3.4",
            "bad host",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad} was accepted");
        }
        assert!(HostPattern::parse("[::1]:8080").is_ok());
    }

    #[test]
    fn only_public_addresses_are_public() {
        for inside in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let address: IpAddr = inside.parse().expect("an address");
            assert!(!is_public(address), "{inside}");
        }
        for outside in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            let address: IpAddr = outside.parse().expect("an address");
            assert!(is_public(address), "{outside}");
        }
    }

    /// Every way an IPv6 address carries an IPv4 one, with a non-public and a public IPv4
    /// address in it; and the IPv6 blocks set aside for special use.
    #[test]
    fn ipv4_inside_ipv6_is_judged_by_the_ipv4_rules() {
        let cases = [
            // The two the adversarial test got through (issue 13).
            ("::127.0.0.1", false),
            ("2002:7f00:1::", false),
            // IPv4-compatible, ::/96 (deprecated).
            ("::", false),
            ("::10.0.0.1", false),
            ("::169.254.169.254", false),
            ("::0.2.0.1", false),
            ("::1.1.1.1", true),
            // IPv4-mapped, ::ffff:0:0/96.
            ("::ffff:127.0.0.1", false),
            ("::ffff:7f00:1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:100.64.0.1", false),
            ("::ffff:1.1.1.1", true),
            // IPv4-translated (SIIT), ::ffff:0:0:0/96.
            ("::ffff:0:127.0.0.1", false),
            ("::ffff:0:192.168.0.1", false),
            ("::ffff:0:1.1.1.1", true),
            // NAT64 well-known prefix, 64:ff9b::/96.
            ("64:ff9b::127.0.0.1", false),
            ("64:ff9b::10.1.2.3", false),
            ("64:ff9b::a9fe:a9fe", false),
            ("64:ff9b::1.1.1.1", true),
            // Local-use NAT64, 64:ff9b:1::/48 (RFC 8215): never public.
            ("64:ff9b:1::1.1.1.1", false),
            ("64:ff9b:1:ffff::1", false),
            // 6to4, 2002::/16: the gateway in bits 16 to 48.
            ("2002:a00:1::1", false),
            ("2002:a9fe:a9fe::", false),
            ("2002:c0a8:101::1", false),
            ("2002:101:101::1", true),
            // Teredo, 2001::/32: the server in bits 32 to 64, the client inverted at the end.
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false), // RFC 4380's: client 192.0.2.45
            ("2001:0:a00:1:8000:63bf:fefe:fefe", false),     // server 10.0.0.1
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", false), // client 127.0.0.1
            ("2001:0:4136:e378:8000:63bf:fefe:fefe", true),  // client 1.1.1.1
            // ISATAP interface ids, in any prefix.
            ("2606:4700::5efe:a00:1", false),
            ("2606:4700::200:5efe:7f00:1", false),
            ("2606:4700::5efe:101:101", true),
            // Special-use IPv6.
            ("100::1", false),
            ("2001:2::1", false),
            ("2001:10::1", false),
            ("2001:db8::1", false),
            ("3fff::1", false),
            ("5f00::1", false),
            ("fc00::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("::1:0:0:1", false),
            // Global unicast, and the globally reachable protocol assignments.
            ("2001:4860:4860::8888", true),
            ("2a00:1450:4001::1", true),
            ("2001:1::1", true),
            ("2001:3::1", true),
            ("2001:4:112::1", true),
            ("2001:20::1", true),
        ];
        for (text, public) in cases {
            let address: IpAddr = text.parse().expect("an address");
            assert_eq!(is_public(address), public, "{text}");
        }
    }

    #[test]
    fn an_ipv6_literal_carrying_a_private_ipv4_is_refused_before_connecting(
    ) -> Result<(), OutboundError> {
        // Plain HTTP allowed, so that the address rule is what refuses.
        let outbound = Outbound::new(
            OutboundConfig {
                allow_http_webhooks: true,
                ..OutboundConfig::default()
            },
            None,
        )?;
        let url =
            |text: &str| reqwest::Url::parse(text).map_err(|_| OutboundError::BadUrl(text.into()));
        assert!(matches!(
            Outbound::new(OutboundConfig::default(), None)?
                .webhook_route(&url("http://hooks.example.com/")?),
            Err(OutboundError::PlainHttp(_))
        ));
        // The URL parser normalizes the literal (`[::127.0.0.1]` becomes `[::7f00:1]`); the
        // rules see the address either way.
        for text in [
            "http://[::127.0.0.1]/",
            "https://[2002:7f00:1::]/",
            "http://[::ffff:127.0.0.1]:8080/",
            "http://[64:ff9b::169.254.169.254]/latest/meta-data/",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
        ] {
            assert!(
                matches!(
                    outbound.webhook_route(&url(text)?),
                    Err(OutboundError::PrivateAddress(_))
                ),
                "{text}"
            );
        }
        // Listing the literal in allowed_hosts matches it however it is written, and the
        // address rule still refuses it.
        let allowed =
            AllowList::parse(["[::127.0.0.1]", "[2002:7f00:1::]:80", "[64:ff9b::1.1.1.1]"])
                .map_err(OutboundError::BadUrl)?;
        assert!(matches!(
            outbound.route(&url("http://[::127.0.0.1]/")?, &allowed),
            Err(OutboundError::PrivateAddress(_))
        ));
        assert!(matches!(
            outbound.route(&url("http://[2002:7f00:1::]/x")?, &allowed),
            Err(OutboundError::PrivateAddress(_))
        ));
        assert_eq!(
            outbound.route(&url("http://[64:ff9b::101:101]/")?, &allowed)?,
            Route::Public
        );
        let allowing = Outbound::new(
            OutboundConfig {
                allow_private_addresses: true,
                allow_http_webhooks: true,
                ..OutboundConfig::default()
            },
            None,
        )?;
        assert_eq!(
            allowing.webhook_route(&url("http://[::127.0.0.1]/")?)?,
            Route::Public
        );
        Ok(())
    }

    #[test]
    fn guests_reach_their_hosts_and_the_own_api_only() -> Result<(), OutboundError> {
        let outbound = Outbound::new(OutboundConfig::default(), Some("http://127.0.0.1:8080"))?;
        let allowed = AllowList::parse(["api.example.com", "127.0.0.1:9000"])
            .map_err(OutboundError::BadUrl)?;
        let url =
            |text: &str| reqwest::Url::parse(text).map_err(|_| OutboundError::BadUrl(text.into()));
        assert_eq!(
            outbound.route(&url("http://127.0.0.1:8080/api/v1/hooks/1")?, &allowed)?,
            Route::OwnApi
        );
        assert_eq!(
            outbound.route(&url("https://api.example.com/x")?, &allowed)?,
            Route::Public
        );
        assert!(matches!(
            outbound.route(&url("https://other.example.com/")?, &allowed),
            Err(OutboundError::NotAllowed(_))
        ));
        assert!(matches!(
            outbound.route(&url("http://127.0.0.1:9000/")?, &allowed),
            Err(OutboundError::PrivateAddress(_))
        ));
        assert!(matches!(
            outbound.route(&url("ftp://api.example.com/")?, &allowed),
            Err(OutboundError::BadUrl(_))
        ));
        Ok(())
    }
}
