//! Liveness, readiness and the gRPC health service.
//!
//! `GET /healthz` says the process is serving; `GET /readyz` says Coder answers (its
//! unauthenticated `GET /api/v2/buildinfo`), so a load balancer stops sending traffic to a
//! gateway that could only return `UPSTREAM_UNAVAILABLE`. Neither touches the audit endpoint
//! or needs a token. The gRPC health status of `coder.audit.v1.AuditService` (and of the
//! server as a whole) follows the same check, repeated in the background.

use std::time::Duration;

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{grpc::AuditServiceServer, upstream::CoderClient};

/// Routes for `/healthz` and `/readyz`.
pub(crate) fn router(client: CoderClient) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(client)
}

async fn ready(State(client): State<CoderClient>) -> Response {
    match client.check_reachable().await {
        Ok(()) => "ok\n".into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

/// Keeps the gRPC health status in step with whether Coder answers, checking every
/// `interval` for the life of the process.
pub(crate) async fn watch(client: CoderClient, reporter: HealthReporter, interval: Duration) {
    let service = <AuditServiceServer<crate::grpc::AuditGrpc> as tonic::server::NamedService>::NAME;
    let mut last = None;
    loop {
        let status = match client.check_reachable().await {
            Ok(()) => ServingStatus::Serving,
            Err(reason) => {
                if last != Some(ServingStatus::NotServing) {
                    let coder = client.audit_url().origin().ascii_serialization();
                    tracing::warn!(%coder, %reason, "Coder is not answering; gRPC health is NOT_SERVING");
                }
                ServingStatus::NotServing
            }
        };
        if last != Some(status) {
            reporter.set_service_status("", status).await;
            reporter.set_service_status(service, status).await;
            last = Some(status);
        }
        tokio::time::sleep(interval).await;
    }
}
