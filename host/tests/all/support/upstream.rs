//! A small HTTP server on loopback that stands for the outside world: a webhook's
//! receiver, or a service a guest calls. It records every request and answers each path
//! from a script of replies (200 `{}` once the script is used up).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::wait_until;

/// What the upstream answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status and JSON body.
    Json(u16, serde_json::Value),
    /// 202 with this `Location` (the async protocol).
    Accepted(String),
    /// Waits this long, then answers 200 `{}`.
    Slow(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// When it arrived, on the test process's monotonic clock (the spacing of retries).
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    scripts: HashMap<String, VecDeque<Reply>>,
    in_flight: usize,
    most_in_flight: usize,
}

/// The running upstream; it stops when dropped.
pub struct Upstream {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `127.0.0.1:PORT`, as an allow-list names it.
    pub authority: String,
    shared: Arc<Mutex<Shared>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("non-blocking");
        let address = listener.local_addr().expect("an address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                let app = axum::Router::new().fallback(answer).with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Upstream {
            base: format!("http://{address}"),
            authority: address.to_string(),
            shared,
            stop: Some(stop),
        }
    }

    /// Queues replies for `path`, answered in order.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        let mut shared = self.shared.lock().expect("not poisoned");
        shared
            .scripts
            .entry(path.to_owned())
            .or_default()
            .extend(replies);
    }

    /// The requests received at `path`, in order.
    pub fn received(&self, path: &str) -> Vec<Received> {
        let shared = self.shared.lock().expect("not poisoned");
        shared
            .received
            .iter()
            .filter(|request| request.path == path)
            .cloned()
            .collect()
    }

    /// The most requests that were being answered at once.
    pub fn most_in_flight(&self) -> usize {
        self.shared.lock().expect("not poisoned").most_in_flight
    }

    /// Waits (at most `limit`) until `path` has received `count` requests; what it received.
    pub fn wait_for(&self, path: &str, count: usize, limit: Duration) -> Vec<Received> {
        wait_until(Instant::now() + limit, || {
            self.received(path).len() >= count
        });
        self.received(path)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let reply = {
        let mut shared = shared.lock().expect("not poisoned");
        shared.received.push(Received {
            method: method.to_string(),
            path: path.clone(),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        value.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            at: Instant::now(),
        });
        shared.scripts.get_mut(&path).and_then(VecDeque::pop_front)
    };
    match reply {
        None => (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response(),
        Some(Reply::Json(status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            axum::Json(body),
        )
            .into_response(),
        Some(Reply::Accepted(location)) => {
            (StatusCode::ACCEPTED, [("location", location)], "").into_response()
        }
        Some(Reply::Slow(wait)) => {
            {
                let mut shared = shared.lock().expect("not poisoned");
                shared.in_flight += 1;
                shared.most_in_flight = shared.most_in_flight.max(shared.in_flight);
            }
            tokio::time::sleep(wait).await;
            shared.lock().expect("not poisoned").in_flight -= 1;
            (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response()
        }
    }
}

/// An HTTPS receiver with a self-signed certificate for `localhost`: it answers every
/// request 200 `{}` and counts the requests it got through the TLS handshake.
pub struct TlsUpstream {
    /// `https://localhost:PORT`.
    pub base: String,
    answered: Arc<std::sync::atomic::AtomicUsize>,
}

impl TlsUpstream {
    pub fn start() -> TlsUpstream {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        wasmhook::outbound::install_crypto_provider();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("a TLS configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("an address").port();
        let answered = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&answered);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                while let Ok((stream, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    let counted = Arc::clone(&counted);
                    tokio::spawn(async move {
                        // A client that refuses the certificate ends the handshake here.
                        let Ok(mut stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let mut request = Vec::new();
                        let mut buffer = [0u8; 4096];
                        while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                            match stream.read(&mut buffer).await {
                                Ok(0) | Err(_) => return,
                                Ok(read) => request.extend_from_slice(&buffer[..read]),
                            }
                        }
                        counted.fetch_add(1, Ordering::SeqCst);
                        let _ = stream
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                  content-length: 2\r\nconnection: close\r\n\r\n{}",
                            )
                            .await;
                        let _ = stream.shutdown().await;
                    });
                }
            });
        });
        TlsUpstream {
            base: format!("https://localhost:{port}"),
            answered,
        }
    }

    /// Requests that got through the handshake.
    pub fn answered(&self) -> usize {
        self.answered.load(std::sync::atomic::Ordering::SeqCst)
    }
}
