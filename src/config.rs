//! Command-line and environment configuration. Every option has an environment variable, so
//! the same binary runs from a shell, a systemd unit or a Kubernetes manifest.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use url::Url;

/// GraphQL and gRPC gateway over Coder's audit log API.
///
/// Serves GraphQL (`POST /graphql`; `GraphiQL` at `GET /graphql`) and gRPC
/// (`coder.audit.v1.AuditService`) on one port. Each call is made to Coder with the caller's
/// own session token. Without --coder-url it serves a built-in demo audit log.
#[derive(Debug, Clone, Parser)]
#[command(name = "coder-audit-gateway", version)]
pub struct Config {
    /// Address to serve GraphQL (HTTP/1.1) and gRPC (HTTP/2 cleartext) on; port 0 picks a free port.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Base URL of the Coder deployment, e.g. `https://coder.example.com`. Omit it to serve the built-in demo audit log.
    #[arg(long, env = "CODER_URL")]
    pub coder_url: Option<Url>,

    /// Time limit for each call to Coder, response body included (e.g. 30s, 1m).
    #[arg(long, env = "GATEWAY_UPSTREAM_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub upstream_timeout: Duration,

    /// Largest page size a caller may ask for.
    #[arg(long, env = "GATEWAY_MAX_LIMIT", default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..))]
    pub max_limit: i32,

    /// After SIGINT or SIGTERM, how long in-flight requests may run before the gateway exits anyway.
    #[arg(long, env = "GATEWAY_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Log filter in tracing's `EnvFilter` syntax, e.g. `info` or `info,coder_audit_gateway=debug`.
    #[arg(long, env = "GATEWAY_LOG", default_value = "info")]
    pub log: String,

    /// Demo only: count exactly and send no `count_cap`, like Coder servers before the count cap.
    #[arg(long, env = "GATEWAY_DEMO_LEGACY_COUNT")]
    pub demo_legacy_count: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_option_has_an_env_var_and_help() {
        let command = Config::command();
        command.clone().debug_assert();
        for arg in command.get_arguments() {
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
