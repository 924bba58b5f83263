//! Why an outbound request was refused or failed: [`OutboundError`], its metric label, and
//! the classification of a client's error into it.
//!
//! The classification goes by types, never by reading messages: it walks the error's
//! chain of causes and looks for the checking resolver's [`ResolveRefusal`] and for a
//! [`rustls::Error`] while connecting (the handshake), then asks reqwest whether
//! connecting failed or time ran out (and looks for an `io::Error` of kind `TimedOut`).
//!
//! What the chain holds, with reqwest 0.13, hyper-util 0.1 and hyper-rustls 0.27:
//!
//! - a refused name: `reqwest::Error` → `hyper_util::client::legacy::Error` (kind
//!   `Connect`) → hyper-util's `ConnectError` ("dns error") → (reqwest's `DnsError`, in
//!   the versions that have it) → our [`ResolveRefusal`], boxed;
//! - a certificate that does not verify: `reqwest::Error` → hyper-util's `Error`
//!   (`Connect`) → `std::io::Error` (hyper-rustls's `io::Error::other`) → `std::io::Error`
//!   (tokio-rustls's, `InvalidData`) → `rustls::Error::InvalidCertificate`.
//!
//! A `std::io::Error`'s `source()` is the *source of* the error it wraps, not that error
//! itself, so a walk by `source()` alone would never see the `rustls::Error`; [`causes`]
//! steps into an `io::Error` through `get_ref()` instead.

use std::error::Error;
use std::io;
use std::time::Duration;

use super::resolver::ResolveRefusal;

/// Why a request was not sent, or got no answer. Never holds a header or a body.
///
/// Both callers turn it into what their side sees: a `wasi:http` error code and a line in
/// the run's output for a guest, a delivery outcome (retried or not) for a webhook.
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

    /// Adds one to `outbound_refusals_total` under its reason, for a request refused before
    /// it reached its host (by its route, or by the resolver).
    pub(super) fn count_refusal(&self) {
        if let Some(metrics) = crate::metrics::metrics() {
            metrics
                .outbound_refusals
                .get_or_create(&crate::metrics::ReasonLabels {
                    reason: self.reason(),
                })
                .inc();
        }
    }
}

/// The reason of a failed exchange with `host`, from reqwest's error and its causes (the
/// URL stays out: its query may hold what the caller did not mean to log).
pub(super) fn classify(error: &reqwest::Error, host: &str) -> OutboundError {
    match found_in(error) {
        Some(Found::Refusal(ResolveRefusal::PrivateOnly { .. })) => {
            OutboundError::PrivateAddress(host.to_owned())
        }
        Some(Found::Refusal(ResolveRefusal::Unresolved { .. })) => {
            OutboundError::Unresolved(host.to_owned())
        }
        // The handshake is part of connecting, so a TLS failure is a failed connection
        // too: it is looked for first. rustls failing after the handshake (a bad record
        // while the answer is read) is a failed exchange, as any broken stream.
        Some(Found::Tls) if error.is_connect() => OutboundError::Tls(describe(error)),
        _ if error.is_connect() => OutboundError::Connect(host.to_owned()),
        _ if timed_out(error) => OutboundError::Failed("timed out".into()),
        _ => OutboundError::Failed(describe(error)),
    }
}

/// What a failed exchange's chain of causes holds that decides its reason.
#[derive(Debug)]
enum Found<'a> {
    /// The checking resolver refused the name.
    Refusal(&'a ResolveRefusal),
    /// rustls failed: while connecting, the handshake (a certificate that does not verify,
    /// most often).
    Tls,
}

/// The resolver's refusal anywhere in the chain, else a TLS failure anywhere in it.
fn found_in<'a>(error: &'a (dyn Error + 'static)) -> Option<Found<'a>> {
    if let Some(refusal) = find::<ResolveRefusal>(error) {
        return Some(Found::Refusal(refusal));
    }
    find::<rustls::Error>(error).map(|_| Found::Tls)
}

/// Whether time ran out, as reqwest tells it or as an `io::Error` of kind `TimedOut`
/// inside another `io::Error` (where reqwest's own walk does not look) tells it.
fn timed_out(error: &reqwest::Error) -> bool {
    error.is_timeout()
        || causes(error).any(|cause| {
            cause
                .downcast_ref::<io::Error>()
                .is_some_and(|io_error| io_error.kind() == io::ErrorKind::TimedOut)
        })
}

/// The first error of type `T` in `error`'s chain of causes, `error` included.
fn find<'a, T: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a T> {
    causes(error).find_map(|cause| cause.downcast_ref::<T>())
}

/// `error` and its causes, outermost first. An `io::Error` is followed into the error it
/// wraps (`get_ref`), since its `source()` skips that error and gives that error's source.
fn causes<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&cause| {
        match cause.downcast_ref::<io::Error>() {
            Some(io_error) => io_error
                .get_ref()
                .map(|inner| inner as &(dyn Error + 'static)),
            None => cause.source(),
        }
    })
}

/// An error and its causes on one line, without the URL (its query may hold what the caller
/// did not mean to log). For people to read: nothing decides on this text.
pub(super) fn describe(error: &reqwest::Error) -> String {
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

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;
    use crate::outbound::{Outbound, OutboundConfig, OutboundRequest, Route};

    /// A link of a hand-built chain, as hyper-util's errors are: a message and a boxed
    /// source.
    #[derive(Debug)]
    struct Link(&'static str, Box<dyn Error + Send + Sync>);

    impl fmt::Display for Link {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Link {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            let source: &(dyn Error + 'static) = &*self.1;
            Some(source)
        }
    }

    /// The shape reqwest and hyper-util give a refused name, with the refusal also wrapped
    /// in an `io::Error` as a connector may do.
    fn refused(refusal: ResolveRefusal) -> Link {
        Link(
            "client error (Connect)",
            Box::new(Link("dns error", Box::new(io::Error::other(refusal)))),
        )
    }

    #[test]
    fn a_resolver_refusal_is_found_by_type() {
        let name = "inside.example".to_owned();
        let chain = refused(ResolveRefusal::PrivateOnly { name: name.clone() });
        assert!(matches!(
            found_in(&chain),
            Some(Found::Refusal(ResolveRefusal::PrivateOnly { name: found })) if *found == name
        ));
        let chain = refused(ResolveRefusal::Unresolved { name: name.clone() });
        assert!(matches!(
            found_in(&chain),
            Some(Found::Refusal(ResolveRefusal::Unresolved { .. }))
        ));
        // Directly boxed, as the resolver returns it.
        let chain = Link(
            "client error (Connect)",
            Box::new(Link(
                "dns error",
                Box::new(ResolveRefusal::PrivateOnly { name }),
            )),
        );
        assert!(matches!(found_in(&chain), Some(Found::Refusal(_))));
        // Walking by `source()` alone would miss the one inside the io::Error.
        let chain = refused(ResolveRefusal::Unresolved {
            name: "x.example".into(),
        });
        let mut by_source =
            std::iter::successors(Some(&chain as &(dyn Error + 'static)), |cause| {
                (*cause).source()
            });
        assert!(!by_source.any(|cause| cause.is::<ResolveRefusal>()));
    }

    /// The shape of a certificate that does not verify: rustls's error in tokio-rustls's
    /// `io::Error`, in hyper-rustls's `io::Error`.
    #[test]
    fn a_tls_failure_is_found_by_type() {
        let certificate =
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let chain = Link(
            "client error (Connect)",
            Box::new(io::Error::other(io::Error::new(
                io::ErrorKind::InvalidData,
                certificate,
            ))),
        );
        assert!(matches!(found_in(&chain), Some(Found::Tls)));
        // Neither a refusal nor TLS: a refused connection.
        let chain = Link(
            "tcp connect error",
            Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)),
        );
        assert!(found_in(&chain).is_none());
    }

    fn get(url: &str) -> Result<OutboundRequest, Box<dyn Error>> {
        Ok(OutboundRequest {
            method: http::Method::GET,
            url: reqwest::Url::parse(url)?,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
            first_byte_timeout: None,
            insecure_tls: false,
        })
    }

    /// Through reqwest itself: `localhost` passes routing (it is a name), and the checking
    /// resolver's refusal comes back as a refused address, not as a failed connection.
    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_a_private_address() -> Result<(), Box<dyn Error>> {
        let outbound = Outbound::new(
            OutboundConfig {
                allow_http_webhooks: true,
                ..OutboundConfig::default()
            },
            None,
        )?;
        let request = get("http://localhost:9/")?;
        assert_eq!(outbound.webhook_route(&request.url)?, Route::Public);
        let sent = outbound.send(1, Route::Public, request).await;
        assert!(
            matches!(&sent, Err(OutboundError::PrivateAddress(host)) if host == "localhost"),
            "{sent:?}"
        );
        Ok(())
    }

    /// Through reqwest itself: a port nobody listens on is a failed connection.
    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() -> Result<(), Box<dyn Error>> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let outbound = Outbound::new(OutboundConfig::default(), None)?;
        let request = get(&format!("http://127.0.0.1:{port}/"))?;
        let sent = outbound.send(1, Route::OwnApi, request).await;
        assert!(
            matches!(&sent, Err(OutboundError::Connect(host)) if host == "127.0.0.1"),
            "{sent:?}"
        );
        Ok(())
    }
}
