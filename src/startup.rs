//! Wiring: the upstream, the core, both protocol surfaces on one router, one listener, and
//! graceful shutdown.

use std::{future::Future, io, net::SocketAddr, time::Duration};

use axum::{Router, http::header};
use tokio::{net::TcpListener, sync::watch};
use tower_http::{sensitive_headers::SetSensitiveRequestHeadersLayer, trace::TraceLayer};
use url::Url;

use crate::{
    audit::AuditLogs,
    auth::CODER_SESSION_TOKEN,
    config::Config,
    demo::{self, DemoConfig},
    graphql,
    grpc::AuditGrpc,
    upstream::{ClientBuildError, CoderClient},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("cannot start the demo upstream: {0}")]
    Demo(io::Error),
    #[error("invalid --coder-url: {0}")]
    Client(#[from] ClientBuildError),
}

/// GraphQL and gRPC on one router. `Routes::from(http)` keeps axum's 404 for unknown HTTP
/// paths and mounts gRPC at `/coder.audit.v1.AuditService/*`; the layers added last see
/// both protocols.
pub fn router(audit: AuditLogs, demo_token: Option<&str>) -> Router {
    let http = graphql::router(audit.clone(), demo_token);
    tonic::service::Routes::from(http)
        .add_service(AuditGrpc::new(audit).into_server())
        .prepare()
        .into_axum_router()
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::HeaderName::from_static(CODER_SESSION_TOKEN),
        ]))
}

/// A bound, ready-to-run gateway.
pub struct Application {
    listener: TcpListener,
    router: Router,
    shutdown_grace: Duration,
    upstream: Url,
    demo: bool,
}

impl Application {
    /// Binds the listener and connects the core to Coder, or to a demo upstream started on
    /// a loopback port when no Coder URL is configured.
    pub async fn build(config: &Config) -> Result<Self, StartupError> {
        let (upstream, demo) = if let Some(url) = &config.coder_url {
            (url.clone(), false)
        } else {
            let demo_config = DemoConfig {
                count_cap: (!config.demo_legacy_count).then_some(2000),
            };
            let addr = demo::spawn(demo_config).await.map_err(StartupError::Demo)?;
            let url = Url::parse(&format!("http://{addr}/"))
                .map_err(|e| StartupError::Client(e.into()))?;
            (url, true)
        };
        let client = CoderClient::new(&upstream, config.upstream_timeout)?;
        let audit = AuditLogs::new(client, config.max_limit);
        let router = router(audit, demo.then_some(demo::DEMO_TOKEN));
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Listen {
                    addr: config.listen,
                    source,
                })?;
        Ok(Self {
            listener,
            router,
            shutdown_grace: config.shutdown_grace,
            upstream,
            demo,
        })
    }

    /// The bound address (the real port when the configured one was 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether the gateway is serving the built-in demo upstream.
    #[must_use]
    pub fn is_demo(&self) -> bool {
        self.demo
    }

    /// The Coder base URL the gateway calls.
    #[must_use]
    pub fn upstream(&self) -> &Url {
        &self.upstream
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish for at most
    /// the grace period: a client holding a connection open cannot keep the process alive.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let mut graceful_rx = stop_rx.clone();
        let server = axum::serve(self.listener, self.router).with_graceful_shutdown(async move {
            let _ = graceful_rx.wait_for(|stop| *stop).await;
        });
        let mut deadline_rx = stop_rx;
        let grace = self.shutdown_grace;
        tokio::select! {
            result = server => result,
            () = async move {
                let _ = deadline_rx.wait_for(|stop| *stop).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace = %humantime::format_duration(grace), "shutdown grace period over; dropping open connections");
                Ok(())
            }
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
