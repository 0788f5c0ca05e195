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
use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` uses `EnvFilter` syntax.
pub fn init(
    filter: &str,
    format: LogFormat,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = EnvFilter::try_new(filter)?;
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        // Colour codes only help a person at a terminal; in files and collectors they are noise.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    }
}

/// Latency buckets, in seconds: a gateway's overhead is sub-millisecond, Coder's answer takes
/// milliseconds to seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide Prometheus recorder, installed on first use. Metrics are global by
/// nature (one `/metrics` per process), so every gateway in a process shares it.
pub fn metrics() -> PrometheusHandle {
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

/// `GET /metrics`.
pub fn router() -> Router {
    let handle = metrics();
    Router::new().route("/metrics", get(move || std::future::ready(handle.render())))
}
