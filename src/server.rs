//! The accept loop: HTTP/1.1 and HTTP/2 (prior knowledge or ALPN) on one listener, in clear
//! text or behind rustls, with a bounded graceful shutdown, and the limits that keep slow or
//! abusive clients from holding it.
//!
//! `axum::serve` cannot terminate TLS, so connections are served with hyper-util's
//! auto-detecting builder directly, as axum's own low-level TLS example does. On shutdown the
//! listener closes, every open connection is asked to finish (HTTP/2 GOAWAY, no more
//! keep-alive), and whatever is still open when the grace period ends is dropped, so a client
//! holding a connection open cannot keep the process alive.
//!
//! Limits, all deliberate rather than library defaults:
//! - a connection must complete its TLS handshake and its first request head (HTTP/1.1) or
//!   preface, SETTINGS and first HEADERS (HTTP/2) within `--header-read-timeout`, and every
//!   later HTTP/1.1 head too, which also closes idle keep-alive connections;
//! - request heads over 64 KiB get 431 (HTTP/1.1) or are refused by HTTP/2's header-list
//!   limit;
//! - `--max-connections` open connections at most: more are closed as soon as they are
//!   accepted (probes and metrics keep working on `--metrics-listen`);
//! - HTTP/2: 256 concurrent streams per connection, keep-alive pings every 20 s (a peer that
//!   does not answer within 20 s is dropped). Against rapid reset (CVE-2023-44487), work in
//!   flight stays bounded by the stream limit even for streams the client has already
//!   cancelled, and a connection is sent `GOAWAY` (`ENHANCE_YOUR_CALM`) once the server has had
//!   to refuse 1024 of its streams, or once 20 streams are reset before being accepted.

use std::{
    future::Future,
    io,
    path::Path,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, http::Request};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::sync::Semaphore;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_rustls::{TlsAcceptor, rustls};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {source}")]
    Certificate {
        path: String,
        source: rustls_pki_types::pem::Error,
    },
    #[error("cannot read the TLS key {path}: {source}")]
    Key {
        path: String,
        source: rustls_pki_types::pem::Error,
    },
    #[error("the TLS certificate and key do not fit together: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS acceptor for `cert` and `key` (PEM), offering HTTP/2 and HTTP/1.1 by ALPN.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|source| TlsError::Certificate {
            path: cert.display().to_string(),
            source,
        })?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        path: key.display().to_string(),
        source,
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How long streams ended at the end of the grace period get to send their final status.
const STREAM_CLOSE: Duration = Duration::from_secs(1);
/// The largest request head (request line and headers) accepted.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
const H2_MAX_CONCURRENT_STREAMS: u32 = 256;
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);
const H2_MAX_PENDING_ACCEPT_RESETS: usize = 20;
const H2_MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// How one listener serves.
#[derive(Clone)]
pub struct ServeOptions {
    pub tls: Option<TlsAcceptor>,
    /// How long in-flight requests get after `shutdown` resolves.
    pub grace: Duration,
    /// Cancelled when the grace period ends, so exports and watches end with a cursor.
    pub streams: CancellationToken,
    /// The time a connection gets for its TLS handshake and each request head.
    pub header_read_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

impl ServeOptions {
    /// Plain HTTP with the default limits, for servers started by tests and tools.
    #[must_use]
    pub fn new(grace: Duration) -> Self {
        Self {
            tls: None,
            grace,
            streams: CancellationToken::new(),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains for at most the
/// grace period. Exports and watches run on through it; when it ends they are told to stop,
/// so their callers get UNAVAILABLE with a cursor to resume from rather than a cut
/// connection.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
    options: ServeOptions,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = connection_builder(options.header_read_timeout);
    let slots = Arc::new(Semaphore::new(options.max_connections));
    // Connection tasks, so that the ones still open after the grace period can be ended.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Running out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("gateway_connections_refused_total").increment(1);
            tracing::debug!(%peer, "--max-connections reached: connection closed");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = options.tls.clone();
        let timeout = options.header_read_timeout;
        connections.spawn(async move {
            let _slot = slot;
            let open = metrics::gauge!("gateway_connections_open");
            open.increment(1.0);
            // Cancelled by the connection's first request: until then, the connection is on
            // the clock (HTTP/2's preface and SETTINGS included).
            let first_request = CancellationToken::new();
            let service = TowerToHyperService::new(FirstRequest {
                inner: router,
                seen: first_request.clone(),
            });
            let served = async {
                if let Some(acceptor) = tls {
                    let stream = match acceptor.accept(stream).await {
                        Ok(stream) => stream,
                        Err(error) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return Ok(());
                        }
                    };
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    watcher.watch(connection).await
                } else {
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    watcher.watch(connection).await
                }
            };
            let idle = async {
                tokio::time::sleep(timeout).await;
                if first_request.is_cancelled() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                result = served => if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                },
                () = idle => {
                    metrics::counter!("gateway_connections_timed_out_total").increment(1);
                    tracing::debug!(%peer, "no request within --header-read-timeout: connection closed");
                }
            }
            open.decrement(1.0);
        });
    }
    drop(listener);
    let drained = graceful.shutdown();
    tokio::pin!(drained);
    tokio::select! {
        () = &mut drained => tracing::info!("all connections closed"),
        () = tokio::time::sleep(options.grace) => {
            tracing::warn!(
                grace = %humantime::format_duration(options.grace),
                "shutdown grace period over; ending open streams and dropping open connections"
            );
            options.streams.cancel();
            let _ = tokio::time::timeout(STREAM_CLOSE, &mut drained).await;
        }
    }
    options.streams.cancel();
    connections.abort_all();
    Ok(())
}

/// HTTP/1.1 and HTTP/2 with the limits in the module's documentation.
fn connection_builder(header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        // hyper-util's builder has no head-only limit; a read buffer of 64 KiB refuses a
        // larger head with 431, and bodies stream through it whatever their size.
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEAD_BYTES).unwrap_or(u32::MAX))
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS);
    builder
}

/// The router, noting that a connection has sent a whole request.
#[derive(Clone)]
struct FirstRequest {
    inner: Router,
    seen: CancellationToken,
}

impl<B> tower::Service<Request<B>> for FirstRequest
where
    Router: tower::Service<Request<B>>,
{
    type Response = <Router as tower::Service<Request<B>>>::Response;
    type Error = <Router as tower::Service<Request<B>>>::Error;
    type Future = <Router as tower::Service<Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if !self.seen.is_cancelled() {
            self.seen.cancel();
        }
        self.inner.call(request)
    }
}
