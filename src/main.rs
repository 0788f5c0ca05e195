//! The `coder-audit-gateway` binary: parse configuration, start logging, serve until a signal.

use std::process::ExitCode;

use clap::Parser;
use coder_audit_gateway::{
    config::Config,
    demo,
    startup::{Application, shutdown_signal},
    telemetry,
};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(error) = telemetry::init(&config.log, config.log_format) {
        eprintln!("error: invalid --log filter: {error}");
        return ExitCode::FAILURE;
    }
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
    if app.is_demo() {
        tracing::info!(
            "demo mode: no --coder-url given, serving a built-in demo audit log. GraphiQL: {scheme}://{addr}/graphql (token pre-filled). Demo token: {}",
            demo::DEMO_TOKEN
        );
    }
    match app.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
