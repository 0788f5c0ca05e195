//! The accept loop: HTTP/1.1 and HTTP/2 (prior knowledge or ALPN) on one listener, in clear
//! text or behind rustls, with a bounded graceful shutdown.
//!
//! `axum::serve` cannot terminate TLS, so connections are served with hyper-util's
//! auto-detecting builder directly, as axum's own low-level TLS example does. On shutdown the
//! listener closes, every open connection is asked to finish (HTTP/2 GOAWAY, no more
//! keep-alive), and whatever is still open when the grace period ends is dropped, so a client
//! holding a connection open cannot keep the process alive.

use std::{future::Future, io, path::Path, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
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

/// Serves `router` on `listener` until `shutdown` resolves, then drains for at most `grace`.
/// Exports and watches (`streams`) run on through the grace period; when it ends they are
/// told to stop, so their callers get UNAVAILABLE with a cursor to resume from rather than a
/// cut connection.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
    streams: CancellationToken,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
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
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        connections.spawn(async move {
            let result = if let Some(acceptor) = tls {
                match acceptor.accept(stream).await {
                    Ok(stream) => {
                        let connection = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .into_owned();
                        watcher.watch(connection).await
                    }
                    Err(error) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                }
            } else {
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                watcher.watch(connection).await
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let drained = graceful.shutdown();
    tokio::pin!(drained);
    tokio::select! {
        () = &mut drained => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(
                grace = %humantime::format_duration(grace),
                "shutdown grace period over; ending open streams and dropping open connections"
            );
            streams.cancel();
            let _ = tokio::time::timeout(STREAM_CLOSE, &mut drained).await;
        }
    }
    streams.cancel();
    connections.abort_all();
    Ok(())
}
