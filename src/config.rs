//! Command-line and environment configuration. Every option has an environment variable, so
//! the same binary runs from a shell, a systemd unit or a Kubernetes manifest.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use url::Url;

/// GraphQL and gRPC gateway over Coder's audit log API.
///
/// Serves GraphQL (`POST /graphql`; `GraphiQL` at `GET /graphql`) and gRPC
/// (`coder.audit.v1.AuditService`) on one port. Each call is made to Coder with the caller's
/// own session token. Without --coder-url it serves a built-in demo audit log.
#[derive(Debug, Clone, Parser)]
#[command(name = "coder-audit-gateway", version)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "each bool is one command-line switch"
)]
pub struct Config {
    /// Run as a client instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to serve GraphQL, gRPC and gRPC-Web on (HTTP/1.1 and HTTP/2, clear text unless --tls-cert is given); port 0 picks a free port.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Base URL of the Coder deployment, e.g. `https://coder.example.com`. Omit it to serve the built-in demo audit log.
    #[arg(long, env = "CODER_URL")]
    pub coder_url: Option<Url>,

    /// Time limit for each call to Coder, response body included (e.g. 30s, 1m).
    #[arg(long, env = "GATEWAY_UPSTREAM_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub upstream_timeout: Duration,

    /// Time a connection gets for its TLS handshake and each request head (HTTP/2: its
    /// preface, SETTINGS and first request); idle HTTP/1.1 keep-alive connections are closed
    /// after it too.
    #[arg(long, env = "GATEWAY_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub header_read_timeout: Duration,

    /// Open connections at most on the public listener; more are closed as they are
    /// accepted. Probes and metrics on --metrics-listen are not counted.
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Serve /metrics, /healthz and /readyz on this address instead of the public one
    /// (which then has no /metrics), e.g. 0.0.0.0:9090 for a cluster-internal scrape.
    #[arg(long, env = "GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Largest page size a caller may ask for.
    #[arg(long, env = "GATEWAY_MAX_LIMIT", default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..))]
    pub max_limit: i32,

    /// Longest `q`, and longest filter string, in bytes; longer ones are refused before Coder
    /// is called (`INVALID_ARGUMENT` / `BAD_USER_INPUT` naming the field). No real search
    /// comes near the default.
    #[arg(long, env = "GATEWAY_MAX_QUERY_LENGTH", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub max_query_length: u32,

    /// After SIGINT or SIGTERM, how long in-flight requests may run before the gateway exits anyway.
    #[arg(long, env = "GATEWAY_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Retries of a failed call to Coder (connection errors, 502, 503, 504 only), with exponential backoff and jitter, never past the caller's deadline.
    #[arg(long, env = "GATEWAY_UPSTREAM_RETRIES", default_value_t = 2)]
    pub upstream_retries: u32,

    /// Largest response body accepted from Coder, in bytes; a larger one is refused without reading the rest.
    #[arg(long, env = "GATEWAY_MAX_UPSTREAM_BODY", default_value_t = 64 * 1024 * 1024)]
    pub max_upstream_body: usize,

    /// Extra CA certificate (PEM) to trust for the Coder URL, e.g. a self-signed deployment's CA.
    #[arg(long, env = "GATEWAY_CODER_CA_CERT")]
    pub coder_ca_cert: Option<PathBuf>,

    /// TLS certificate chain (PEM) to serve with; with --tls-key, the gateway serves HTTPS and gRPC over TLS.
    #[arg(long, env = "GATEWAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, env = "GATEWAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Requests served at once; more are refused at once (UNAVAILABLE / `SERVICE_OVERLOADED`) instead of queueing.
    #[arg(long, env = "GATEWAY_MAX_CONCURRENT_REQUESTS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_requests: u32,

    /// Largest HTTP request body (a GraphQL request), in bytes.
    #[arg(long, env = "GATEWAY_MAX_REQUEST_BODY", default_value_t = 64 * 1024)]
    pub max_request_body: usize,

    /// Largest gRPC message received or sent, in bytes.
    #[arg(long, env = "GATEWAY_GRPC_MAX_MESSAGE", default_value_t = 16 * 1024 * 1024)]
    pub grpc_max_message: usize,

    /// Deepest GraphQL selection allowed. Fields inside `__schema` and `__type` do not
    /// count: introspection queries nest deeply by design (`GraphiQL`'s is 15 deep).
    #[arg(long, env = "GATEWAY_GRAPHQL_MAX_DEPTH", default_value_t = 12)]
    pub graphql_max_depth: usize,

    /// Highest GraphQL query complexity allowed (one point per selected field).
    #[arg(long, env = "GATEWAY_GRAPHQL_MAX_COMPLEXITY", default_value_t = 500)]
    pub graphql_max_complexity: usize,

    /// Turn off GraphQL introspection: `__schema` and `__type` get an
    /// `INTROSPECTION_DISABLED` error (`__typename` still works); `GraphiQL` then has no
    /// schema for completion and docs.
    #[arg(long, env = "GATEWAY_DISABLE_INTROSPECTION")]
    pub disable_introspection: bool,

    /// GraphQL operations kept compiled, least recently used first out. An operation's first
    /// request runs through async-graphql; later ones are written straight from Coder's
    /// answer. 0 runs every request through async-graphql and turns persisted queries off.
    #[arg(long, env = "GATEWAY_OPERATION_CACHE_SIZE", default_value_t = 1024, value_parser = clap::value_parser!(u32))]
    pub operation_cache_size: u32,

    /// Turn off automatic persisted queries (clients sending `extensions.persistedQuery`
    /// get `PERSISTED_QUERY_NOT_SUPPORTED` and fall back to sending documents).
    #[arg(long, env = "GATEWAY_DISABLE_APQ")]
    pub disable_apq: bool,

    /// Do not serve the `GraphiQL` page at `GET /graphql`.
    #[arg(long, env = "GATEWAY_DISABLE_GRAPHIQL")]
    pub disable_graphiql: bool,

    /// Browser origins allowed to call the gateway (GraphQL and gRPC-Web), comma-separated; none by default.
    #[arg(long, env = "GATEWAY_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,

    /// How often a watch (`WatchAuditLogs`, the `auditLogAdded` subscription) asks Coder for new rows; callers may ask for slower, never faster. Identical watches of one caller share one poller.
    #[arg(long, env = "GATEWAY_WATCH_INTERVAL", default_value = "2s", value_parser = parse_interval)]
    pub watch_interval: Duration,

    /// Open watches and subscriptions at most, across callers; more get `RESOURCE_EXHAUSTED` / `SERVICE_OVERLOADED`.
    #[arg(long, env = "GATEWAY_MAX_WATCHES", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_watches: u32,

    /// GraphQL subscriptions one WebSocket connection may hold at once.
    #[arg(long, env = "GATEWAY_MAX_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_subscriptions_per_connection: u32,

    /// How long a GraphQL WebSocket may take to send `connection_init` before it is closed (4408).
    #[arg(long, env = "GATEWAY_CONNECTION_INIT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub connection_init_timeout: Duration,

    /// How often the gRPC health status re-checks that Coder answers.
    #[arg(long, env = "GATEWAY_HEALTH_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub health_interval: Duration,

    /// Log filter in tracing's `EnvFilter` syntax, e.g. `info` or `info,coder_audit_gateway=debug`.
    #[arg(long, env = "GATEWAY_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// OTLP/gRPC collector to export request spans to, e.g. `http://otel-collector:4317`.
    #[cfg(feature = "otel")]
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Export cursor format to write: 2 (this version's), or 1 while upgrading a fleet whose
    /// older replicas read only version 1 (such cursors resume by re-reading from the top).
    /// Both are always read.
    #[arg(long, env = "GATEWAY_EXPORT_CURSOR_VERSION", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub export_cursor_version: u8,

    /// Serve the built-in demo audit log on a non-loopback --listen address. Without
    /// --coder-url the demo is served on loopback only, as its token is published.
    #[arg(long, env = "GATEWAY_DEMO", conflicts_with = "coder_url")]
    pub demo: bool,

    /// Demo only: serve these rows instead of generated ones, e.g. an export made with
    /// `coder-audit-gateway export` (NDJSON) or a JSON array of Coder's rows, to replay a
    /// real trail offline.
    #[arg(long, env = "GATEWAY_DEMO_ROWS_FILE", conflicts_with = "coder_url")]
    pub demo_rows_file: Option<PathBuf>,

    /// Demo only: about how many generated rows fall on one UTC day (up to about 200000);
    /// by default 70, or about 42 for the default 320-row trail.
    #[arg(long, env = "GATEWAY_DEMO_ROWS_PER_DAY", value_parser = clap::value_parser!(u32).range(1..))]
    pub demo_rows_per_day: Option<u32>,

    /// Demo only: count exactly and send no `count_cap`, like Coder servers before the count cap.
    #[arg(long, env = "GATEWAY_DEMO_LEGACY_COUNT")]
    pub demo_legacy_count: bool,

    /// Demo only: rows in the generated demo trail, up to millions (e.g. 1000000 for a
    /// real deployment's depth; about 110 bytes a row).
    #[arg(long, env = "GATEWAY_DEMO_ROWS", default_value_t = 320)]
    pub demo_rows: usize,

    /// Demo only: how often the demo records a new row, so watches and subscriptions show something; 0s for never.
    #[arg(long, env = "GATEWAY_DEMO_ROW_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub demo_row_interval: Duration,

    /// Demo only: time the demo takes to answer each audit request, like a real Coder querying its database (e.g. 5ms).
    #[arg(long, env = "GATEWAY_DEMO_SERVICE_TIME", default_value = "0s", value_parser = humantime::parse_duration)]
    pub demo_service_time: Duration,
}

/// What the binary does besides serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Write Coder's audit trail (or what matches --q) as NDJSON, straight from Coder,
    /// newest first: one line per row exactly as Coder sent it. The token comes from
    /// `CODER_SESSION_TOKEN`, as for Coder's own CLI.
    Export(ExportArgs),
}

/// The `export` subcommand.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Base URL of the Coder deployment, e.g. `https://coder.example.com`.
    #[arg(long, env = "CODER_URL")]
    pub coder_url: Url,

    /// Coder's search query, e.g. `action:login date_from:2026-01-01`; empty exports everything.
    #[arg(long, env = "GATEWAY_EXPORT_Q", default_value = "")]
    pub q: String,

    /// File to write; standard output when omitted.
    #[arg(long, short, env = "GATEWAY_EXPORT_OUTPUT")]
    pub output: Option<PathBuf>,

    /// Continue an interrupted export in --output (same --q) without gaps or duplicates.
    #[arg(long, requires = "output", env = "GATEWAY_EXPORT_RESUME")]
    pub resume: bool,

    /// Rows per call to Coder; calls ask for at most 100 rows, as Coder is about to require.
    #[arg(long, env = "GATEWAY_EXPORT_PAGE_SIZE", default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub page_size: i32,

    /// Extra CA certificate (PEM) to trust for the Coder URL.
    #[arg(long, env = "GATEWAY_CODER_CA_CERT")]
    pub coder_ca_cert: Option<PathBuf>,

    /// Time limit for each call to Coder.
    #[arg(long, env = "GATEWAY_UPSTREAM_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub upstream_timeout: Duration,
}

/// A watch interval: at least 100 ms, so no caller can make the gateway hammer Coder.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if interval < Duration::from_millis(100) {
        return Err("must be at least 100ms".to_owned());
    }
    Ok(interval)
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("must be more than zero".to_owned());
    }
    Ok(duration)
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_option_has_an_env_var_and_help() {
        let command = Config::command();
        command.clone().debug_assert();
        let export = command
            .find_subcommand("export")
            .expect("export subcommand")
            .clone();
        for arg in command.get_arguments().chain(export.get_arguments()) {
            if matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            assert!(arg.get_env().is_some(), "--{} has no env var", arg.get_id());
            assert!(arg.get_help().is_some(), "--{} has no help", arg.get_id());
        }
    }

    #[test]
    fn defaults_and_validation() {
        let config = Config::try_parse_from(["gw"]).expect("defaults parse");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.upstream_timeout, Duration::from_secs(30));
        assert_eq!(config.max_limit, 1000);
        assert!(config.coder_url.is_none());
        assert!(Config::try_parse_from(["gw", "--max-limit", "0"]).is_err());
        assert!(Config::try_parse_from(["gw", "--upstream-timeout", "soon"]).is_err());
        let config = Config::try_parse_from([
            "gw",
            "--coder-url",
            "https://coder.example.com",
            "--upstream-timeout",
            "1m",
        ])
        .expect("parses");
        assert_eq!(config.upstream_timeout, Duration::from_secs(60));
    }
}
