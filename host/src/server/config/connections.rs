//! The `[connections]` section: the timeouts and caps of accepted connections, which
//! `server/listener/` enforces, with the reasoning behind each default. A file of its own,
//! as every section, so that a section's settings, defaults and checks read together.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::environment::{with_environment, Section, Variables};
use super::error::{at_least, ConfigError};

/// How long a client may take to send a request's head (request line and headers). hyper
/// starts this clock whenever it waits for a head: when the connection opens, and when an
/// answer has gone out on a kept-alive connection, so it also bounds how long a silent
/// connection is kept between requests. A real client sends its head at once, in a packet or
/// two; 10 s leave room for a slow link and close a slowloris connection (a header byte now
/// and then) soon.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// How long a connection may stay silent, nothing read or written, while none of its
/// requests is being handled (a client that stopped reading its answer or its own body
/// after the handler gave up on it): longer than any pause of a live client, short enough
/// that a held connection soon gives its place back. A running handler is never cut.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;
/// How long a handler waits for the next part of a request body; the whole body must also
/// come at a minimum average rate (`listener::body_rate::MIN_BODY_BYTES_PER_SECOND`)
/// beyond this allowance. 30 s outlast a stalled but recovering link.
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 30_000;
/// Connections served at once, before the open-file limit lowers it (to that limit less a
/// reserve, see `listener::files::FILE_RESERVE`): far more than the clients of one
/// installation hold, and at hyper's 8 KiB read buffer each, about 128 MiB when all are
/// idle.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Connections from one address at once (IPv6: one /64): a browser opens 6 per host and a
/// busy integration a few dozen, so 128 leaves room for several behind one NAT, while one
/// address can hold at most 128 of the server's places.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 128;

/// Accepted connections: the timeouts and caps that keep idle, slow and too many
/// connections from holding the server; each has a default and an environment variable
/// (`WASMHOOK_<NAME>` in capitals).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Connections {
    /// Milliseconds to send a request's head, counted from when the server starts waiting
    /// for it: the connection's start, or the end of the previous answer.
    pub header_read_timeout_ms: u64,
    /// Milliseconds a connection may stay silent while none of its requests is being
    /// handled; then it is closed.
    pub idle_timeout_ms: u64,
    /// Milliseconds a handler waits for the next part of a request body (the whole body
    /// must also keep a minimum rate); then the request is answered 408.
    pub body_read_timeout_ms: u64,
    /// Connections served at once; lowered at start to the open-file limit less a reserve.
    /// Beyond it, new connections wait in the listen queue until one ends.
    pub max_connections: usize,
    /// Connections from one address (IPv6: one /64) at once; more are closed at once.
    pub max_connections_per_peer: usize,
    /// Milliseconds between SIGTERM and closing the listener, during which `/readyz`
    /// answers 503 while requests are still served, so a load balancer that polls it
    /// stops sending before connections are refused. 0 (the default) closes at once.
    pub drain_delay_ms: u64,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            header_read_timeout_ms: DEFAULT_HEADER_READ_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            body_read_timeout_ms: DEFAULT_BODY_READ_TIMEOUT_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
            drain_delay_ms: 0,
        }
    }
}

impl Connections {
    /// Overrides from `WASMHOOK_*` variables, then the checks.
    pub(super) fn with_environment(self, variables: Variables<'_>) -> Result<Self, ConfigError> {
        let connections: Self = with_environment(self, Section::Connections, variables)?;
        connections.checked()
    }

    fn checked(self) -> Result<Self, ConfigError> {
        at_least("header_read_timeout_ms", self.header_read_timeout_ms, 1, "")?;
        at_least("idle_timeout_ms", self.idle_timeout_ms, 1, "")?;
        at_least("body_read_timeout_ms", self.body_read_timeout_ms, 1, "")?;
        at_least("max_connections", self.max_connections, 1, "")?;
        at_least(
            "max_connections_per_peer",
            self.max_connections_per_peer,
            1,
            "",
        )?;
        Ok(self)
    }

    /// The time to send a request's head.
    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.header_read_timeout_ms)
    }

    /// The time a connection may stay silent while none of its requests is handled.
    pub fn idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.idle_timeout_ms)
    }

    /// The time a handler waits for the next part of a request body.
    pub fn body_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.body_read_timeout_ms)
    }
}
