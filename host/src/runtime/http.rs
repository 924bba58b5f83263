//! A guest's outgoing `wasi:http` requests: denied unless the call carries a
//! [`NetworkGrant`], and then sent through [`crate::outbound`] under its rules. A refused or
//! failed request is a `wasi:http` error code the guest reads, and a line in the call's
//! output saying why (never the path, query or headers, which may carry what the guest
//! meant to keep).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use tracing::Instrument;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::output::Capture;
use crate::outbound::{AllowList, Outbound, OutboundError, OutboundRequest};

/// The largest request body a guest may send.
pub const MAX_REQUEST_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Permission for one call's guest to make outgoing HTTP requests.
#[derive(Debug, Clone)]
pub struct NetworkGrant {
    /// The installation's client (it knows the installation's own API).
    pub outbound: Arc<Outbound>,
    /// The hosts the hook allows, besides the installation's own API.
    pub allowed: AllowList,
    /// Whose turn requests wait for.
    pub organization: u64,
}

type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

/// The `wasi:http` hooks of one call.
pub(crate) struct GuestHttp {
    grant: Option<NetworkGrant>,
    output: Capture,
    /// Held (cloned) by each request of the call until it is answered and by each response
    /// body until the guest drops it: a warm instance whose call left one alive is not
    /// kept, so a request still running cannot write into the next call's output or hold
    /// the organization's turn while the instance idles.
    live: Arc<()>,
}

impl GuestHttp {
    pub(crate) fn new(grant: Option<NetworkGrant>, output: Capture) -> Self {
        GuestHttp {
            grant,
            output,
            live: Arc::new(()),
        }
    }

    /// Whether no request or response body of this call is still alive.
    pub(crate) fn quiet(&self) -> bool {
        Arc::strong_count(&self.live) == 1
    }
}

impl WasiHttpHooks for GuestHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Sent {
        let method = request.method().clone();
        // Scheme, host and port only: no user info, path or query in the log.
        let target = match (request.uri().scheme_str(), request.uri().authority()) {
            (Some(scheme), Some(authority)) => match authority.port_u16() {
                Some(port) => format!("{scheme}://{}:{port}", authority.host()),
                None => format!("{scheme}://{}", authority.host()),
            },
            _ => "(a URL without scheme or host)".to_owned(),
        };
        let output = self.output.clone();
        let refuse = move |error: &OutboundError| {
            output.append(format!("[network] {method} {target}: refused: {error}\n").as_bytes());
        };
        let Some(grant) = self.grant.clone() else {
            refuse(&OutboundError::NoNetwork);
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        };
        let url = reqwest::Url::parse(&request.uri().to_string())
            .map_err(|_| OutboundError::BadUrl(request.uri().to_string()));
        let route = match url
            .clone()
            .and_then(|url| grant.outbound.route(&url, &grant.allowed))
        {
            Ok(route) => route,
            Err(error) => {
                refuse(&error);
                return Box::new(async move { Err(wasi_error(&error)) });
            }
        };
        let Ok(url) = url else {
            return Box::new(async { Err(HttpError::HttpRequestUriInvalid) });
        };
        // The request runs as a task of its own: it stays in the guest call's span.
        let span = tracing::Span::current();
        let live = Arc::clone(&self.live);
        Box::new(
            async move {
                // The turn first: the organization's requests hold no more bodies in memory
                // at once than it has turns.
                let turn = match grant.outbound.turn(grant.organization).await {
                    Ok(turn) => turn,
                    Err(error) => {
                        refuse(&error);
                        return Err(wasi_error(&error));
                    }
                };
                let (parts, body) = request.into_parts();
                let body: Bytes = Limited::new(body, MAX_REQUEST_BODY_BYTES)
                    .collect()
                    .await
                    .map_err(|_| HttpError::HttpRequestBodySize(None))?
                    .to_bytes();
                let sent = grant
                    .outbound
                    .send_from_guest(
                        turn,
                        grant.organization,
                        route,
                        OutboundRequest {
                            method: parts.method,
                            url,
                            headers: parts.headers,
                            body,
                            first_byte_timeout: options
                                .and_then(|options| options.first_byte_timeout),
                            insecure_tls: false,
                        },
                    )
                    .await;
                let response = match sent {
                    Ok(response) => response,
                    Err(error) => {
                        refuse(&error);
                        return Err(wasi_error(&error));
                    }
                };
                let (response, cap, permit) = response.into_parts();
                let (parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
                let cap = usize::try_from(cap).unwrap_or(usize::MAX);
                let body = Limited::new(body, cap)
                    .map_err(move |error| {
                        if error.is::<http_body_util::LengthLimitError>() {
                            HttpError::HttpResponseBodySize(Some(cap as u64))
                        } else {
                            HttpError::HttpResponseIncomplete
                        }
                    })
                    // The organization's turn is held until the guest is done with the body.
                    .map_frame(move |frame| {
                        let _held = (&permit, &live);
                        frame
                    })
                    .boxed_unsync();
                let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                    Box::new(async { Ok(()) });
                Ok((http::Response::from_parts(parts, body), done))
            }
            .instrument(span),
        )
    }
}

/// The `wasi:http` error code a guest sees for a refusal or failure.
fn wasi_error(error: &OutboundError) -> HttpError {
    match error {
        OutboundError::BadUrl(_) => HttpError::HttpRequestUriInvalid,
        OutboundError::NoNetwork | OutboundError::NotAllowed(_) | OutboundError::PlainHttp(_) => {
            HttpError::HttpRequestDenied
        }
        OutboundError::PrivateAddress(_) => HttpError::DestinationIpProhibited,
        OutboundError::Unresolved(_) => HttpError::DestinationNotFound,
        OutboundError::Connect(_) => HttpError::ConnectionRefused,
        OutboundError::Tls(_) => HttpError::TlsCertificateError,
        OutboundError::Timeout(_) => HttpError::HttpResponseTimeout,
        OutboundError::TooLarge(limit) => HttpError::HttpResponseBodySize(Some(*limit)),
        OutboundError::Failed(reason) => HttpError::InternalError(Some(reason.clone())),
    }
}
