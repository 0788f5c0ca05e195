//! What operators rely on: probes, health, reflection, gRPC-Web and CORS, metrics, request
//! ids, deadlines, retries, limits, load shedding, TLS, shutdown, and a token that never
//! leaks. Each through real clients against the demo or a scripted fake Coder.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::response::Response;
use coder_audit_gateway::{
    demo::{self, DEMO_TOKEN, DemoConfig},
    grpc::pb,
    internals::server,
};
use futures::StreamExt;
use prost::Message;
use serde_json::{Value, json};
use tonic::Code;
use tonic_reflection::pb::{v1, v1alpha};

use crate::helpers::{
    captured_logs, dead_upstream, demo_gateway, demo_upstream, fake_coder, gateway, graphql_code,
    grpc_web_frame, http, response, start_binary, terminate,
};

const EMPTY_PAGE: &str = r#"{"audit_logs":[],"count":0,"count_cap":2000}"#;

/// Polls `check` until it holds, for at most 20 s: for state that settles in the background.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Sets its flag when dropped: tells whether an upstream handler was cancelled.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A fake Coder whose audit endpoint never answers, and a flag set when the gateway gives
/// up on it.
async fn hanging_upstream() -> (crate::helpers::FakeCoder, Arc<AtomicBool>) {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let fake = fake_coder(move || {
        let guard = SetOnDrop(flag.clone());
        async move {
            let _guard = guard;
            std::future::pending::<Response>().await
        }
    })
    .await;
    (fake, dropped)
}

#[tokio::test]
async fn probes_say_alive_and_ready_without_touching_the_audit_endpoint() {
    let fake = fake_coder(|| async { response(500, "text/plain", "not for probes") }).await;
    let gateway = gateway(&fake.url, &[]).await;
    let alive = gateway.get("/healthz").await;
    assert_eq!(alive.status(), 200);
    let ready = gateway.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert!(
        fake.requests().is_empty(),
        "a probe called the audit endpoint"
    );

    let dead = dead_upstream().await;
    let down = crate::helpers::gateway(&dead, &[]).await;
    assert_eq!(down.get("/healthz").await.status(), 200);
    let ready = down.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body = ready.text().await.expect("body");
    assert!(body.contains("buildinfo failed"), "{body}");
    // The public port does not tell callers where Coder is.
    let port = dead.rsplit(':').next().expect("port");
    assert!(!body.contains(port), "{body}");
    let (_, page) = down
        .graphql_with(
            "{ auditLogs(limit: 1) { count } }",
            json!({}),
            &[("coder-session-token", DEMO_TOKEN)],
        )
        .await;
    assert_eq!(graphql_code(&page), "UPSTREAM_UNAVAILABLE", "{page}");
    assert!(!page.to_string().contains(port), "{page}");
}

#[tokio::test]
async fn grpc_health_follows_the_upstream() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let status = async |addr: std::net::SocketAddr| {
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connects");
        let mut client = HealthClient::new(channel);
        client
            .check(HealthCheckRequest {
                service: "coder.audit.v1.AuditService".into(),
            })
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or_default()
    };
    let (up, _) = demo_gateway().await;
    assert!(eventually(async || status(up.addr).await == ServingStatus::Serving as i32).await);
    let down = gateway(&dead_upstream().await, &["--health-interval", "100ms"]).await;
    assert!(eventually(async || status(down.addr).await == ServingStatus::NotServing as i32).await);
}

#[tokio::test]
async fn reflection_lists_the_services_in_v1_and_v1alpha() {
    let (gateway, _) = demo_gateway().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", gateway.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connects");

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("v1")
        .into_inner();
    let Some(Ok(v1::ServerReflectionResponse {
        message_response:
            Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)),
        ..
    })) = answers.next().await
    else {
        panic!("no v1 service list")
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"coder.audit.v1.AuditService") && names.contains(&"grpc.health.v1.Health"),
        "{names:?}"
    );

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "coder.audit.v1.AuditService".into(),
            ),
        ),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("v1alpha")
        .into_inner();
    let Some(Ok(v1alpha::ServerReflectionResponse {
        message_response:
            Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)),
        ..
    })) = answers.next().await
    else {
        panic!("no v1alpha file descriptor")
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[tokio::test]
async fn grpc_web_works_over_http1_on_the_same_port() {
    let (gateway, _) = demo_gateway().await;
    let request = pb::ListAuditLogsRequest {
        q: "action:login".into(),
        limit: 3,
        ..Default::default()
    };
    let response = gateway.grpc_web_list(DEMO_TOKEN, &request).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/grpc-web")
    );
    let body = response.bytes().await.expect("body");
    let length =
        usize::try_from(u32::from_be_bytes(body[1..5].try_into().expect("4 bytes"))).expect("fits");
    assert_eq!(body[0], 0, "the first frame carries the message");
    let page = pb::ListAuditLogsResponse::decode(&body[5..5 + length]).expect("a response message");
    assert_eq!(page.audit_logs.len(), 3);
    assert!(page.audit_logs.iter().all(|l| l.action == "login"));
    let trailers = String::from_utf8_lossy(&body[5 + length + 5..]).to_lowercase();
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
}

#[tokio::test]
async fn cors_is_closed_by_default_and_open_to_configured_origins() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let preflight = async |gateway: &crate::helpers::Gateway, origin: &str| {
        http()
            .request(
                reqwest::Method::OPTIONS,
                format!(
                    "http://{}/coder.audit.v1.AuditService/ListAuditLogs",
                    gateway.addr
                ),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-grpc-web,coder-session-token",
            )
            .send()
            .await
            .expect("answers")
    };
    let closed = gateway(&upstream, &[]).await;
    let response = preflight(&closed, "https://ui.example.com").await;
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let open = gateway(&upstream, &["--cors-origin", "https://ui.example.com"]).await;
    let response = preflight(&open, "https://ui.example.com").await;
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://ui.example.com"
    );
    let response = preflight(&open, "https://evil.example.com").await;
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let response = http()
        .post(format!("http://{}/graphql", open.addr))
        .header("origin", "https://ui.example.com")
        .header("content-type", "application/json")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .expect("answers");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(
        exposed.contains("grpc-status") && exposed.contains("grpc-message"),
        "{exposed}"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_protocol_and_outcome() {
    let (gateway, _) = demo_gateway().await;
    gateway.graphql_page(DEMO_TOKEN, "", 1, 0).await;
    gateway.graphql_page("nope", "", 1, 0).await;
    gateway.grpc_page(DEMO_TOKEN, "", 1, 0).await.expect("page");
    let text = gateway.get("/metrics").await.text().await.expect("text");
    let has = |name: &str, labels: &[&str]| {
        text.lines()
            .any(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
    };
    assert!(
        has(
            "gateway_requests_total{",
            &[
                "protocol=\"graphql\"",
                "operation=\"auditLogs\"",
                "outcome=\"OK\""
            ]
        ),
        "{text}"
    );
    assert!(
        has(
            "gateway_requests_total{",
            &["protocol=\"graphql\"", "outcome=\"UNAUTHENTICATED\""]
        ),
        "{text}"
    );
    assert!(
        has(
            "gateway_requests_total{",
            &[
                "protocol=\"grpc\"",
                "operation=\"ListAuditLogs\"",
                "outcome=\"OK\""
            ]
        ),
        "{text}"
    );
    assert!(
        has("gateway_upstream_responses_total{", &["status=\"200\""]),
        "{text}"
    );
    assert!(
        has("gateway_upstream_request_duration_seconds_bucket", &[]),
        "{text}"
    );
    assert!(
        has(
            "gateway_request_duration_seconds_bucket",
            &["transport=\"grpc\""]
        ),
        "{text}"
    );
    assert!(
        has("gateway_requests_in_flight", &["transport=\"http\""]),
        "{text}"
    );
}

/// Pins the error labels each protocol gives its metrics: gRPC outcomes and refused streams
/// carry gRPC's canonical names, GraphQL and plain HTTP carry GraphQL's codes.
#[tokio::test]
async fn metrics_label_errors_with_each_protocols_own_code() {
    let (gateway, _) = demo_gateway().await;
    let refused = gateway
        .grpc_page("nope", "", 1, 0)
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let refused = gateway
        .grpc_page(DEMO_TOKEN, "", -1, 0)
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    gateway.graphql_page(DEMO_TOKEN, "", -1, 0).await;
    let mut client = gateway.grpc().await;
    let mut export = tonic::Request::new(pb::ExportAuditLogsRequest {
        q: "foo:bar".into(),
        ..Default::default()
    });
    export
        .metadata_mut()
        .insert("coder-session-token", DEMO_TOKEN.parse().expect("ascii"));
    let refused = client.export_audit_logs(export).await.expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let mut watch = tonic::Request::new(pb::WatchAuditLogsRequest::default());
    watch.metadata_mut().insert(
        "coder-session-token",
        demo::DEMO_MEMBER_TOKEN.parse().expect("ascii"),
    );
    let refused = client.watch_audit_logs(watch).await.expect_err("refused");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let response = http()
        .get(format!(
            "http://{}/audit-logs/export?q=foo:bar",
            gateway.addr
        ))
        .header("coder-session-token", DEMO_TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 400);

    let text = gateway.get("/metrics").await.text().await.expect("text");
    let has = |name: &str, labels: &[&str]| {
        text.lines()
            .any(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
    };
    for (name, labels) in [
        (
            "gateway_requests_total{",
            [
                "protocol=\"grpc\"",
                "operation=\"ListAuditLogs\"",
                "outcome=\"UNAUTHENTICATED\"",
            ],
        ),
        (
            "gateway_requests_total{",
            [
                "protocol=\"grpc\"",
                "operation=\"ListAuditLogs\"",
                "outcome=\"INVALID_ARGUMENT\"",
            ],
        ),
        (
            "gateway_requests_total{",
            [
                "protocol=\"graphql\"",
                "operation=\"auditLogs\"",
                "outcome=\"BAD_USER_INPUT\"",
            ],
        ),
        (
            "gateway_streams_refused_total{",
            [
                "protocol=\"grpc\"",
                "operation=\"export\"",
                "code=\"INVALID_ARGUMENT\"",
            ],
        ),
        (
            "gateway_streams_refused_total{",
            [
                "protocol=\"grpc\"",
                "operation=\"watch\"",
                "code=\"PERMISSION_DENIED\"",
            ],
        ),
        (
            "gateway_streams_refused_total{",
            [
                "protocol=\"http\"",
                "operation=\"export\"",
                "code=\"BAD_USER_INPUT\"",
            ],
        ),
    ] {
        assert!(has(name, &labels), "{name} {labels:?} in {text}");
    }
}

#[tokio::test]
async fn request_ids_and_trace_context_travel_both_ways() {
    let fake = fake_coder(|| async {
        let mut r = response(200, "application/json", EMPTY_PAGE);
        r.headers_mut().insert(
            "x-coder-request-id",
            "coder-req-42".parse().expect("header"),
        );
        r
    })
    .await;
    let gateway = gateway(&fake.url, &[]).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = http()
        .post(format!("http://{}/graphql", gateway.addr))
        .header("content-type", "application/json")
        .header("coder-session-token", "tok-en")
        .header("x-request-id", "caller-req-7")
        .header("traceparent", traceparent)
        .body(r#"{"query":"{ auditLogs(limit: 1) { count } }"}"#)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.headers()["x-request-id"], "caller-req-7");
    let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    assert_eq!(
        body["extensions"]["coderRequestId"], "coder-req-42",
        "{body}"
    );
    let seen = &fake.requests()[0];
    assert_eq!(seen.headers["x-request-id"], "caller-req-7");
    assert_eq!(seen.headers["traceparent"], traceparent);

    let mut request = tonic::Request::new(pb::ListAuditLogsRequest {
        limit: 1,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("coder-session-token", "tok-en".parse().expect("ascii"));
    let response = gateway
        .grpc()
        .await
        .list_audit_logs(request)
        .await
        .expect("page");
    assert_eq!(
        response
            .metadata()
            .get("x-coder-request-id")
            .expect("metadata"),
        "coder-req-42"
    );
    let generated = fake.requests()[1].headers["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        generated.len(),
        36,
        "a fresh id when the caller sends none: {generated}"
    );
}

#[tokio::test]
async fn a_grpc_deadline_bounds_the_upstream_call_and_drops_it() {
    let (fake, dropped) = hanging_upstream().await;
    let gateway = gateway(&fake.url, &["--upstream-timeout", "5m"]).await;
    // Sent as gRPC-Web over plain HTTP so that no client-side timer races the server: the
    // answer proves the gateway itself enforced the caller's `grpc-timeout`.
    let request = pb::ListAuditLogsRequest {
        limit: 1,
        ..Default::default()
    };
    let response = tokio::time::timeout(
        Duration::from_secs(60),
        http()
            .post(format!(
                "http://{}/coder.audit.v1.AuditService/ListAuditLogs",
                gateway.addr
            ))
            .header("content-type", "application/grpc-web+proto")
            .header("coder-session-token", "tok-en")
            .header("grpc-timeout", "300m")
            .body(grpc_web_frame(0, &request.encode_to_vec()))
            .send(),
    )
    .await
    .expect("the deadline, not the 5 minute upstream timeout, ended the call")
    .expect("answers");
    let in_headers = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = response.bytes().await.expect("body");
    let status = in_headers.unwrap_or_else(|| String::from_utf8_lossy(&body).to_lowercase());
    assert!(
        status == "4" || status.contains("grpc-status:4"),
        "expected DEADLINE_EXCEEDED (4), got {status:?}"
    );
    assert!(
        eventually(async || dropped.load(Ordering::SeqCst)).await,
        "the upstream request was not dropped"
    );
}

#[tokio::test]
async fn a_caller_that_disconnects_cancels_its_upstream_request() {
    let (fake, dropped) = hanging_upstream().await;
    let gateway = gateway(&fake.url, &["--upstream-timeout", "5m"]).await;
    let mut client = gateway.grpc().await;
    let mut request = tonic::Request::new(pb::ListAuditLogsRequest {
        limit: 1,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("coder-session-token", "tok-en".parse().expect("ascii"));
    // No grpc-timeout is sent: the client simply gives up and resets the stream.
    let _ = tokio::time::timeout(Duration::from_millis(300), client.list_audit_logs(request)).await;
    assert!(
        eventually(async || dropped.load(Ordering::SeqCst)).await,
        "the upstream request outlived its gRPC caller"
    );

    let (fake, dropped) = hanging_upstream().await;
    let gateway = crate::helpers::gateway(&fake.url, &["--upstream-timeout", "5m"]).await;
    let call = http()
        .post(format!("http://{}/graphql", gateway.addr))
        .header("content-type", "application/json")
        .header("coder-session-token", "tok-en")
        .body(r#"{"query":"{ auditLogs(limit: 1) { count } }"}"#)
        .timeout(Duration::from_millis(300))
        .send();
    assert!(call.await.is_err());
    assert!(
        eventually(async || dropped.load(Ordering::SeqCst)).await,
        "the upstream request outlived its HTTP caller"
    );
}

#[tokio::test]
async fn retries_happen_only_where_safe() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let flaky = fake_coder(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < 2 {
                response(503, "text/plain", "restarting")
            } else {
                response(200, "application/json", EMPTY_PAGE)
            }
        }
    })
    .await;
    let gateway = gateway(&flaky.url, &[]).await;
    let body = gateway.graphql_page("tok-en", "", 1, 0).await;
    assert_eq!(body["data"]["auditLogs"]["count"], 0, "{body}");
    assert_eq!(flaky.requests().len(), 3, "two 503s retried, then success");

    let no_retries = crate::helpers::gateway(&flaky.url, &["--upstream-retries", "0"]).await;
    calls.store(0, Ordering::SeqCst);
    let body = no_retries.graphql_page("tok-en", "", 1, 0).await;
    assert_eq!(graphql_code(&body), "UPSTREAM_UNAVAILABLE");
    assert_eq!(flaky.requests().len(), 4);

    for status in [500, 400, 401, 429] {
        let fake = fake_coder(move || async move {
            response(status, "application/json", r#"{"message":"no"}"#)
        })
        .await;
        let gateway = crate::helpers::gateway(&fake.url, &["--upstream-retries", "5"]).await;
        gateway.graphql_page("tok-en", "", 1, 0).await;
        assert_eq!(fake.requests().len(), 1, "HTTP {status} was retried");
    }

    let down = crate::helpers::gateway(&dead_upstream().await, &["--upstream-retries", "3"]).await;
    let body = down.graphql_page("tok-en", "", 1, 0).await;
    assert_eq!(graphql_code(&body), "UPSTREAM_UNAVAILABLE");

    let always_down = fake_coder(|| async { response(503, "text/plain", "down") }).await;
    let gateway = crate::helpers::gateway(&always_down.url, &["--upstream-retries", "50"]).await;
    let mut request = tonic::Request::new(pb::ListAuditLogsRequest {
        limit: 1,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("coder-session-token", "tok-en".parse().expect("ascii"));
    request.set_timeout(Duration::from_millis(400));
    let status = gateway
        .grpc()
        .await
        .list_audit_logs(request)
        .await
        .expect_err("down");
    assert!(
        matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{status:?}"
    );
    assert!(
        always_down.requests().len() < 51,
        "retried past the caller's deadline"
    );
}

#[tokio::test]
async fn limits_have_named_errors() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(
        &upstream,
        &[
            "--graphql-max-depth",
            "3",
            "--graphql-max-complexity",
            "8",
            "--max-request-body",
            "300",
            "--grpc-max-message",
            "2000",
        ],
    )
    .await;
    let (status, body) = gateway
        .graphql_with(
            "{ auditLogs(limit: 1) { auditLogs { user { roles { name } } } } }",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(
        (status.as_u16(), graphql_code(&body)),
        (200, "GRAPHQL_DEPTH_LIMIT"),
        "{body}"
    );
    let (_, body) = gateway.graphql_with("{ auditLogs(limit: 1) { count countCap auditLogs { id time ip action description resourceType resourceId } } }", json!({}), &[]).await;
    assert_eq!(graphql_code(&body), "GRAPHQL_COMPLEXITY_LIMIT", "{body}");
    let (status, body) = gateway
        .graphql_with(
            &format!("{{ __typename }} # {}", "x".repeat(400)),
            json!({}),
            &[],
        )
        .await;
    assert_eq!(
        (status.as_u16(), graphql_code(&body)),
        (413, "REQUEST_TOO_LARGE"),
        "{body}"
    );

    let status = gateway
        .grpc_page(DEMO_TOKEN, "", 100, 0)
        .await
        .expect_err("too large");
    assert_ne!(status.code(), Code::Ok);
    let small = gateway
        .grpc_page(DEMO_TOKEN, "action:login", 1, 0)
        .await
        .expect("a small page fits");
    assert_eq!(small.audit_logs.len(), 1);

    let tight = crate::helpers::gateway(&upstream, &["--max-upstream-body", "1000"]).await;
    let body = tight.graphql_page(DEMO_TOKEN, "", 100, 0).await;
    assert_eq!(graphql_code(&body), "UPSTREAM_ERROR");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("--max-upstream-body"),
        "{body}"
    );
}

#[tokio::test]
async fn overload_is_shed_at_once_but_probes_still_answer() {
    let (fake, _) = hanging_upstream().await;
    let gateway = gateway(
        &fake.url,
        &["--max-concurrent-requests", "1", "--upstream-timeout", "5m"],
    )
    .await;
    let addr = gateway.addr;
    let busy = tokio::spawn(async move {
        http()
            .post(format!("http://{addr}/graphql"))
            .header("content-type", "application/json")
            .header("coder-session-token", "tok-en")
            .body(r#"{"query":"{ auditLogs(limit: 1) { count } }"}"#)
            .send()
            .await
    });
    assert!(
        eventually(async || !fake.requests().is_empty()).await,
        "the first request never reached Coder"
    );

    let (status, body) = gateway.graphql_with("{ __typename }", json!({}), &[]).await;
    assert_eq!(
        (status.as_u16(), graphql_code(&body)),
        (503, "SERVICE_OVERLOADED"),
        "{body}"
    );
    let shed = gateway
        .grpc_page("tok-en", "", 1, 0)
        .await
        .expect_err("shed");
    assert_eq!(shed.code(), Code::Unavailable, "{shed:?}");
    assert_eq!(gateway.get("/healthz").await.status(), 200);
    busy.abort();
}

#[tokio::test]
async fn introspection_and_graphiql_can_be_turned_off() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(
        &upstream,
        &["--disable-introspection", "--disable-graphiql"],
    )
    .await;
    assert_eq!(gateway.get("/graphql").await.status(), 404);
    let (_, body) = gateway
        .graphql_with("{ __schema { queryType { name } } }", json!({}), &[])
        .await;
    assert_eq!(
        graphql_code(&body),
        "INTROSPECTION_DISABLED",
        "introspection answered: {body}"
    );
    let page = gateway.graphql_page(DEMO_TOKEN, "", 1, 0).await;
    assert_eq!(
        page["data"]["auditLogs"]["count"], 320,
        "queries still work"
    );
}

/// A CA and a certificate for `localhost`/127.0.0.1 signed by it, written to a fresh folder.
fn certificates() -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("gateway-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
    std::fs::write(dir.join("cert.pem"), leaf.pem()).expect("write");
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).expect("write");
    (dir, ca.pem())
}

#[tokio::test]
async fn tls_serving_and_a_private_upstream_ca() {
    let (dir, ca_pem) = certificates();
    let path = |name: &str| dir.join(name).display().to_string();

    // Coder behind a private CA, as in many air-gapped networks.
    let acceptor =
        server::tls_acceptor(&dir.join("cert.pem"), &dir.join("key.pem")).expect("TLS config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let coder_port = listener.local_addr().expect("addr").port();
    tokio::spawn(server::serve(
        listener,
        demo::router(DemoConfig::default()).expect("demo"),
        std::future::pending(),
        server::ServeOptions {
            tls: Some(acceptor),
            ..server::ServeOptions::new(Duration::from_secs(1))
        },
    ));
    let coder = format!("https://localhost:{coder_port}");

    let untrusting = gateway(&coder, &[]).await;
    assert_eq!(
        graphql_code(&untrusting.graphql_page(DEMO_TOKEN, "", 1, 0).await),
        "UPSTREAM_UNAVAILABLE"
    );

    let gateway = gateway(
        &coder,
        &[
            "--coder-ca-cert",
            &path("ca.pem"),
            "--tls-cert",
            &path("cert.pem"),
            "--tls-key",
            &path("key.pem"),
        ],
    )
    .await;
    let port = gateway.addr.port();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA");
    let _ = http();
    let client = reqwest::Client::builder()
        .tls_certs_merge([ca])
        .resolve("localhost", gateway.addr)
        .build()
        .expect("client");
    for http2 in [false, true] {
        let request = client
            .post(format!("https://localhost:{port}/graphql"))
            .header("content-type", "application/json")
            .header("coder-session-token", DEMO_TOKEN)
            .body(r#"{"query":"{ auditLogs(limit: 2) { count } }"}"#);
        let request = if http2 {
            request.version(reqwest::Version::HTTP_2)
        } else {
            request
        };
        let response = request.send().await.expect("HTTPS answers");
        let body: Value =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
        assert_eq!(body["data"]["auditLogs"]["count"], 320, "{body}");
    }

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("gRPC over TLS connects");
    let mut request = tonic::Request::new(pb::ListAuditLogsRequest {
        limit: 2,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("coder-session-token", DEMO_TOKEN.parse().expect("ascii"));
    let page = pb::audit_service_client::AuditServiceClient::new(channel)
        .list_audit_logs(request)
        .await
        .expect("page")
        .into_inner();
    assert_eq!(page.audit_logs.len(), 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_token_appears_in_no_log_metric_or_error() {
    const TOKEN: &str = "leaktoken0-SuperSecretLeakCheck2024x";
    const SECRET: &str = "SuperSecretLeakCheck2024x";
    let logs = captured_logs();
    // An upstream that echoes the token back in its error, as a misbehaving proxy might.
    let echo = fake_coder(|| async {
        response(
            401,
            "application/json",
            format!(r#"{{"message":"bad token {TOKEN}","detail":"{TOKEN}"}}"#),
        )
    })
    .await;
    let (demo_gateway, _) = demo_gateway().await;
    let echo_gateway = gateway(&echo.url, &[]).await;
    let mut seen = String::new();
    for gateway in [&demo_gateway, &echo_gateway] {
        seen.push_str(&gateway.graphql_page(TOKEN, "", 1, 0).await.to_string());
        let status = gateway
            .grpc_page(TOKEN, "", 1, 0)
            .await
            .expect_err("refused");
        seen.push_str(status.message());
        seen.push_str(&String::from_utf8_lossy(status.details()));
        let (_, body) = gateway
            .graphql_with(
                "{ auditLogs(limit: 1) { count } }",
                json!({}),
                &[("authorization", &format!("Bearer {TOKEN}"))],
            )
            .await;
        seen.push_str(&body.to_string());
    }
    seen.push_str(
        &demo_gateway
            .get("/metrics")
            .await
            .text()
            .await
            .expect("metrics"),
    );
    let logged = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
    assert!(
        logged.contains("audit page refused"),
        "the requests were not logged: the check would prove nothing"
    );
    for (what, text) in [("errors and metrics", &seen), ("logs", &logged)] {
        assert!(!text.contains(SECRET), "the token leaked into {what}");
    }
}

#[test]
fn the_binary_logs_json_and_stops_on_sigterm() {
    let (mut child, serving, _) = start_binary(&[
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--shutdown-grace",
        "2s",
    ]);
    let event: Value = serde_json::from_str(&serving).expect("a JSON log line");
    assert!(
        event["fields"]["message"]
            .as_str()
            .expect("message")
            .contains("/graphql"),
        "{event}"
    );
    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");
}
