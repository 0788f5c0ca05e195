//! The `coder-audit-gateway` binary: parse configuration, start logging, serve until a signal;
//! or, as `coder-audit-gateway export`, write the audit trail to a file as a client.

use std::process::ExitCode;

use clap::Parser;
use coder_audit_gateway::{
    config::{Command, Config},
    demo,
    internals::cli,
    internals::telemetry,
    startup::{Application, shutdown_signal},
};

/// mimalloc: the gateway allocates many small, short-lived strings and JSON values per row,
/// which glibc's allocator serves markedly slower (see the hot-path benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Some(Command::Export(args)) = &config.command {
        return match cli::export(args).await {
            Ok(summary) => {
                eprintln!(
                    "exported {}; watch from where it began with after={}",
                    cli::status(summary.rows, summary.elapsed),
                    summary.watch_cursor
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let _telemetry = match telemetry::init(&config) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: cannot start logging (check --log): {error}");
            return ExitCode::FAILURE;
        }
    };
    // Listen for signals before anything else, so an early SIGTERM still drains cleanly.
    let shutdown = shutdown_signal();
    let app = match Application::build(&config).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let addr = match app.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            tracing::error!(%error, "cannot read the bound address");
            return ExitCode::FAILURE;
        }
    };
    let scheme = app.scheme();
    tracing::info!(%addr, upstream = %app.upstream(), "serving GraphQL on {scheme}://{addr}/graphql and gRPC (coder.audit.v1.AuditService) on {addr}");
    if let Some(Ok(operations)) = app.operations_addr() {
        tracing::info!(%operations, "serving /metrics, /healthz and /readyz on http://{operations} (--metrics-listen)");
    }
    if app.is_demo() {
        tracing::info!(
            "demo mode: no --coder-url given, serving a built-in demo audit log. GraphiQL: {scheme}://{addr}/graphql (token pre-filled). Demo token: {}",
            demo::DEMO_TOKEN
        );
    }
    match app.run_until(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
