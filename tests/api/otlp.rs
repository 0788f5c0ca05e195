//! With the `otel` feature, request spans reach an OTLP/gRPC collector: a fake one here,
//! receiving what the real binary exports while it serves a request and shuts down.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tokio::sync::mpsc;

use crate::helpers::{http, start_binary, terminate};

struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test]
async fn request_spans_are_exported_over_otlp() {
    let (spans, mut received) = mpsc::unbounded_channel();
    let collector = tonic::service::Routes::new(TraceServiceServer::new(Collector(spans)))
        .prepare()
        .into_axum_router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let (mut child, _, addr) = tokio::task::spawn_blocking(move || {
        start_binary(&["--listen", "127.0.0.1:0", "--otlp-endpoint", &endpoint])
    })
    .await
    .expect("starter");

    let response = http()
        .post(format!("http://{addr}/graphql"))
        .header("content-type", "application/json")
        .header("x-request-id", "otlp-test-request")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    // SIGTERM: the gateway drains, then flushes the spans it has not exported yet.
    let exited = tokio::task::spawn_blocking(move || terminate(&mut child))
        .await
        .expect("waiter");
    assert!(exited.success(), "{exited:?}");

    let mut names = Vec::new();
    while let Ok(Some(export)) =
        tokio::time::timeout(Duration::from_secs(10), received.recv()).await
    {
        for span in export
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            names.push(span.name.clone());
        }
        if names.iter().any(|n| n == "request") {
            break;
        }
    }
    assert!(
        names.iter().any(|n| n == "request"),
        "no request span exported: {names:?}"
    );
}
