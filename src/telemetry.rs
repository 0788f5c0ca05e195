//! Logs and metrics.
//!
//! Logs go to stderr through tracing, as text or one JSON object per line, each event inside
//! its request's span (request id, transport, method, path). No log line carries a token:
//! tokens are held as sensitive header values, headers are never logged, and texts that come
//! from elsewhere are redacted before they are shown (see [`crate::auth`]).
//!
//! Metrics are Prometheus text at `GET /metrics`. Labels are bounded: protocol, operation,
//! outcome code, HTTP status, transport; never a token, a `q` or another caller-chosen value.

use std::{io::IsTerminal, sync::OnceLock};

use axum::{Router, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{
    EnvFilter, Layer, Registry, fmt, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::config::{Config, LogFormat};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Keeps telemetry running; dropping it flushes spans not yet exported.
#[must_use = "dropping the guard stops span export"]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("error: flushing spans: {error}");
        }
    }
}

/// Installs the global subscriber: the `--log` filter, `--log-format` lines on stderr, and
/// with the `otel` feature an OTLP span exporter when `--otlp-endpoint` is set.
pub fn init(config: &Config) -> Result<Telemetry, BoxError> {
    let filter = EnvFilter::try_new(&config.log)?;
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match config.log_format {
        // Colour codes only help a person at a terminal; in files and collectors they are noise.
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    #[cfg(feature = "otel")]
    {
        let (spans, tracer_provider) = match &config.otlp_endpoint {
            Some(endpoint) => {
                let (layer, provider) = otlp(endpoint)?;
                (Some(layer), Some(provider))
            }
            None => (None, None),
        };
        tracing_subscriber::registry()
            .with(lines.and_then(spans).with_filter(filter))
            .try_init()?;
        Ok(Telemetry { tracer_provider })
    }
    #[cfg(not(feature = "otel"))]
    {
        tracing_subscriber::registry()
            .with(lines.with_filter(filter))
            .try_init()?;
        Ok(Telemetry {})
    }
}

/// A tracing layer exporting spans to an OTLP/gRPC collector in batches.
#[cfg(feature = "otel")]
fn otlp(
    endpoint: &str,
) -> Result<
    (
        Box<dyn Layer<Registry> + Send + Sync>,
        opentelemetry_sdk::trace::SdkTracerProvider,
    ),
    BoxError,
> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(env!("CARGO_PKG_NAME"))
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
        .boxed();
    Ok((layer, provider))
}

/// Latency buckets, in seconds: a gateway's overhead is sub-millisecond, Coder's answer takes
/// milliseconds to seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide Prometheus recorder, installed on first use. Metrics are global by
/// nature (one `/metrics` per process), so every gateway in a process shares it.
pub(crate) fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// `GET /metrics`. The runtime's live task count is read at each scrape: a count that
/// grows under steady load is a leak (of streams, pollers or connections).
pub(crate) fn router() -> Router {
    let handle = metrics();
    Router::new().route(
        "/metrics",
        get(move || {
            let tasks = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            metrics::gauge!("gateway_runtime_tasks_alive")
                .set(f64::from(u32::try_from(tasks).unwrap_or(u32::MAX)));
            std::future::ready(handle.render())
        }),
    )
}
