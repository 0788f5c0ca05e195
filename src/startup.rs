//! Wiring: the upstream, the core, both protocol surfaces and the operational endpoints on
//! one router, one listener (optionally TLS), and graceful shutdown.

use std::{future::Future, io, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    http::{HeaderName, HeaderValue, Method, header},
    middleware::{from_fn, from_fn_with_state},
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;
use tower::Layer as _;
use tower_http::cors::{AllowOrigin, CorsLayer};
use url::Url;

use crate::{
    audit::{AuditLogs, Limits, StreamOptions},
    auth::CODER_SESSION_TOKEN,
    call::{CODER_REQUEST_ID, REQUEST_ID, TRACEPARENT},
    config::Config,
    cursor::ExportCursorVersion,
    demo::{self, DemoConfig},
    graphql::{self, GraphqlOptions},
    grpc::{self, AuditGrpc},
    health, index, middleware, ndjson,
    server::{self, ServeOptions, TlsError},
    telemetry,
    upstream::{ClientBuildError, ClientConfig, CoderClient},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("cannot start the demo upstream: {0}")]
    Demo(io::Error),
    #[error(
        "no --coder-url given, so this would serve the built-in demo audit log (with its published token) on {0}, which is not a loopback address; pass --demo (GATEWAY_DEMO=true) to serve the demo there, or --coder-url to serve a real Coder"
    )]
    DemoNotLoopback(SocketAddr),
    #[error("invalid --coder-url: {0}")]
    Client(#[from] ClientBuildError),
    #[error("cannot read --coder-ca-cert {path}: {source}")]
    CaCertificate { path: String, source: io::Error },
    #[error("invalid TLS configuration: {0}")]
    Tls(#[from] TlsError),
    #[error("invalid --cors-origin {0:?}: not a header value")]
    CorsOrigin(String),
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// How the router is put together, from configuration.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    pub graphql: GraphqlOptions,
    /// Whether `/metrics` is on the public router (no `--metrics-listen`).
    pub public_metrics: bool,
    pub grpc_max_message: usize,
    pub max_concurrent_requests: usize,
    pub cors_origins: Vec<String>,
}

impl RouterOptions {
    /// The options `config` asks for; `demo` pre-fills `GraphiQL` with the demo token.
    #[must_use]
    pub fn from_config(config: &Config, demo: bool) -> Self {
        Self {
            graphql: GraphqlOptions {
                demo_token: demo.then(|| demo::DEMO_TOKEN.to_owned()),
                graphiql: !config.disable_graphiql,
                introspection: !config.disable_introspection,
                max_depth: config.graphql_max_depth,
                max_complexity: config.graphql_max_complexity,
                max_body: config.max_request_body,
                cors_origins: config.cors_origin.clone(),
                connection_init_timeout: config.connection_init_timeout,
                max_subscriptions_per_connection: usize::try_from(
                    config.max_subscriptions_per_connection,
                )
                .unwrap_or(usize::MAX),
                operation_cache_size: usize::try_from(config.operation_cache_size)
                    .unwrap_or(usize::MAX),
                apq: !config.disable_apq,
            },
            public_metrics: config.metrics_listen.is_none(),
            grpc_max_message: config.grpc_max_message,
            max_concurrent_requests: usize::try_from(config.max_concurrent_requests)
                .unwrap_or(usize::MAX),
            cors_origins: config.cors_origin.clone(),
        }
    }
}

/// Every surface on one router, and the reporter that keeps gRPC health current.
///
/// `Routes::from(http)` keeps axum's 404 for unknown HTTP paths and mounts each gRPC
/// service at `/<package.Service>/*`. Layers added last see every request, both protocols:
/// the request context outermost, then CORS, then load shedding.
pub fn router(
    client: &CoderClient,
    audit: AuditLogs,
    options: &RouterOptions,
) -> Result<(Router, HealthReporter), StartupError> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(grpc::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let http = graphql::router(&audit, &options.graphql)
        .merge(ndjson::router(audit.clone()))
        .merge(health::router(client.clone()))
        .merge(index::router(options.graphql.graphiql));
    let http = if options.public_metrics {
        http.merge(telemetry::router())
    } else {
        http
    };
    let audit_service = grpc::AuditServer::new(AuditGrpc::new(audit), options.grpc_max_message);
    let mut router = tonic::service::Routes::from(http)
        // gRPC-Web (HTTP/1.1 or 2, for browsers) is translated to gRPC; plain gRPC passes.
        .add_service(tonic_web::GrpcWebLayer::new().layer(audit_service))
        .add_service(health_service)
        // v1 for grpcurl and current tools, v1alpha for older ones (grpcio's Python).
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .prepare()
        .into_axum_router()
        .layer(from_fn_with_state(
            Arc::new(Semaphore::new(options.max_concurrent_requests)),
            middleware::shed_load,
        ));
    if !options.cors_origins.is_empty() {
        router = router.layer(cors(&options.cors_origins)?);
    }
    Ok((router.layer(from_fn(middleware::establish)), reporter))
}

/// What `--metrics-listen` serves: metrics and the probes, so an orchestrator can probe the
/// gateway while `--max-connections` refuses public connections.
pub fn operations_router(client: &CoderClient) -> Router {
    health::router(client.clone())
        .merge(telemetry::router())
        .layer(from_fn(middleware::establish))
}

/// Browsers at the configured origins may call GraphQL and gRPC-Web and read the gRPC
/// status, which gRPC-Web carries in headers.
fn cors(origins: &[String]) -> Result<CorsLayer, StartupError> {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .map(|o| HeaderValue::from_str(o).map_err(|_| StartupError::CorsOrigin(o.clone())))
                .collect::<Result<Vec<_>, _>>()?,
        )
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static(CODER_SESSION_TOKEN),
            HeaderName::from_static(REQUEST_ID),
            HeaderName::from_static(TRACEPARENT),
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
        ])
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
            HeaderName::from_static(REQUEST_ID),
            HeaderName::from_static(CODER_REQUEST_ID),
        ]))
}

/// A bound, ready-to-run gateway.
pub struct Application {
    listener: TcpListener,
    router: Router,
    serve: ServeOptions,
    /// `--metrics-listen`: its listener and router.
    operations: Option<(TcpListener, Router)>,
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
            if !config.demo && !config.listen.ip().is_loopback() {
                return Err(StartupError::DemoNotLoopback(config.listen));
            }
            let demo_config = DemoConfig {
                count_cap: (!config.demo_legacy_count).then_some(2000),
                service_time: config.demo_service_time,
                rows: config.demo_rows,
                rows_per_day: config.demo_rows_per_day,
                rows_file: config.demo_rows_file.clone(),
                new_row_every: Some(config.demo_row_interval).filter(|i| !i.is_zero()),
                shuffle_ties: true,
            };
            let addr = demo::spawn(demo_config).await.map_err(StartupError::Demo)?;
            let url = Url::parse(&format!("http://{addr}/"))
                .map_err(|e| StartupError::Client(e.into()))?;
            (url, true)
        };
        let ca_pem = match &config.coder_ca_cert {
            Some(path) => {
                Some(
                    std::fs::read(path).map_err(|source| StartupError::CaCertificate {
                        path: path.display().to_string(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let client = CoderClient::new(
            &upstream,
            ClientConfig {
                timeout: config.upstream_timeout,
                retries: config.upstream_retries,
                max_body: config.max_upstream_body,
                ca_pem,
            },
        )?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(server::tls_acceptor(cert, key)?),
            _ => None,
        };
        let closing = CancellationToken::new();
        let audit = AuditLogs::new(
            client.clone(),
            Limits {
                max_limit: config.max_limit,
                max_query_length: usize::try_from(config.max_query_length).unwrap_or(usize::MAX),
                export_cursor_version: if config.export_cursor_version == 1 {
                    ExportCursorVersion::V1
                } else {
                    ExportCursorVersion::V2
                },
                offset_walk: false,
            },
            StreamOptions {
                watch_interval: config.watch_interval,
                max_watches: usize::try_from(config.max_watches).unwrap_or(usize::MAX),
                closing: closing.clone(),
            },
        );
        let options = RouterOptions::from_config(config, demo);
        let (router, reporter) = router(&client, audit, &options)?;
        let operations = match config.metrics_listen {
            Some(addr) => Some((
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartupError::Listen { addr, source })?,
                operations_router(&client),
            )),
            None => None,
        };
        tokio::spawn(health::watch(client, reporter, config.health_interval));
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
            serve: ServeOptions {
                tls,
                grace: config.shutdown_grace,
                streams: closing,
                header_read_timeout: config.header_read_timeout,
                max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
            },
            operations,
            upstream,
            demo,
        })
    }

    /// The bound address (the real port when the configured one was 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound address of `--metrics-listen`, when configured.
    pub fn operations_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.operations
            .as_ref()
            .map(|(listener, _)| listener.local_addr())
    }

    /// `https` when serving TLS, else `http`.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        if self.serve.tls.is_some() {
            "https"
        } else {
            "http"
        }
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
    /// the grace period. Probes and metrics on `--metrics-listen` answer until the public
    /// listener has drained.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let operations = self.operations.map(|(listener, router)| {
            let options = ServeOptions {
                tls: None,
                ..self.serve.clone()
            };
            tokio::spawn(server::serve(
                listener,
                router,
                std::future::pending(),
                options,
            ))
        });
        let served = server::serve(self.listener, self.router, shutdown, self.serve).await;
        if let Some(operations) = operations {
            operations.abort();
        }
        served
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled, so a signal that arrives while the gateway is still
/// starting is not lost to the default action (which would kill it without a drain).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(interrupt), Ok(terminate)) => Some((interrupt, terminate)),
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "cannot listen for SIGINT/SIGTERM; stop the gateway with SIGKILL");
                None
            }
        }
    };
    async move {
        #[cfg(unix)]
        match signals {
            Some((mut interrupt, mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {},
                    _ = terminate.recv() => {},
                }
            }
            None => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down");
    }
}
