//! Hostile input and abusive clients, as an attacker or a careless script would send them:
//! oversized queries (refused before Coder, with bounded messages, logs and gRPC metadata),
//! requests the gateway cannot build (internal, not retried), slow and oversized request
//! heads, too many connections, HTTP/2 rapid reset, and metrics off the public port.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use clap::Parser;
use coder_audit_gateway::{
    config::Config,
    demo::{DEMO_TOKEN, DemoConfig},
    grpc::pb::{ListAuditLogsRequest, WatchAuditLogsRequest},
    startup::Application,
};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tonic::Code;

use crate::helpers::{
    Gateway, captured_logs, demo_upstream, fake_coder, gateway, graphql_code, http, response,
};

/// The most of a caller's input any message or log line may echo, with room for the words
/// around it.
const ECHO_BOUND: usize = 4096;

fn authorized<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("coder-session-token", DEMO_TOKEN.parse().expect("ascii"));
    request
}

/// `ListAuditLogs` with `q`, which the gateway must refuse.
async fn list_refused(gateway: &Gateway, q: &str) -> tonic::Status {
    gateway
        .grpc()
        .await
        .list_audit_logs(authorized(ListAuditLogsRequest {
            q: q.to_owned(),
            limit: 1,
            ..Default::default()
        }))
        .await
        .expect_err("refused")
}

#[tokio::test]
async fn oversized_queries_are_refused_before_coder_with_bounded_echoes() {
    let logs = captured_logs();
    let coder = fake_coder(|| async { response(500, "text/plain", "must not be called") }).await;
    let gateway = gateway(&coder.url, &[]).await;
    let huge = "resource_type:workspace ".repeat(2 << 20 >> 4);

    // gRPC: 2 MB of q, as in the report.
    let status = list_refused(&gateway, &huge).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("q: is ") && status.message().contains("--max-query-length"));
    assert!(status.message().len() <= 4096, "{}", status.message().len());
    let metadata: usize = status
        .metadata()
        .iter()
        .map(|entry| match entry {
            tonic::metadata::KeyAndValueRef::Ascii(k, v) => k.as_str().len() + v.len(),
            tonic::metadata::KeyAndValueRef::Binary(k, v) => {
                k.as_str().len() + v.as_encoded_bytes().len()
            }
        })
        .sum();
    assert!(metadata <= 8192, "{metadata} bytes of trailers");

    // A watch and an export are bounded the same way.
    let status = gateway
        .grpc()
        .await
        .watch_audit_logs(authorized(WatchAuditLogsRequest {
            q: huge.clone(),
            ..Default::default()
        }))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    let export = http()
        .get(format!(
            "http://{}/audit-logs/export?q={}",
            gateway.addr,
            "x".repeat(5000)
        ))
        .header("coder-session-token", DEMO_TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(export.status(), 400);

    // GraphQL: 60 kB of q, and an over-long filter string, each named.
    let (_, body) = gateway
        .graphql_with(
            "query($q: String, $u: String) { auditLogs(q: $q, filter: {username: $u}, limit: 1) { count } }",
            json!({"q": "y".repeat(60_000), "u": "z".repeat(5000)}),
            &[("coder-session-token", DEMO_TOKEN)],
        )
        .await;
    assert_eq!(graphql_code(&body), "BAD_USER_INPUT", "{body}");
    let fields: Vec<&str> = body["errors"][0]["extensions"]["validations"]
        .as_array()
        .expect("validations")
        .iter()
        .filter_map(|v| v["field"].as_str())
        .collect();
    assert_eq!(fields, ["q", "filter.username"]);
    assert!(
        body.to_string().len() < ECHO_BOUND,
        "{} bytes",
        body.to_string().len()
    );

    assert!(coder.requests().is_empty(), "Coder was called");
    // Other tests share the process's log; only lines echoing these inputs are ours.
    let logged = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
    let echoes = [
        "workspace resource_type:workspace",
        "yyyyyyyyyyyyyyyy",
        "zzzzzzzzzzzzzzzz",
    ];
    for line in logged
        .lines()
        .filter(|l| echoes.iter().any(|e| l.contains(e)))
    {
        assert!(
            line.len() < ECHO_BOUND,
            "a log line of {} bytes",
            line.len()
        );
    }
    assert!(
        logged.contains("audit page refused"),
        "the refusals were not logged"
    );
}

#[tokio::test]
async fn a_request_the_gateway_cannot_build_is_internal_and_not_retried() {
    let coder = fake_coder(|| async { response(500, "text/plain", "must not be called") }).await;
    let gateway = gateway(
        &coder.url,
        &[
            "--max-query-length",
            "1048576",
            "--max-request-body",
            "1048576",
        ],
    )
    .await;
    // Allowed by the configured length, but 200 kB of percent-encoded query is no URL any
    // HTTP stack accepts.
    let q = "é".repeat(100_000);
    let status = list_refused(&gateway, &q).await;
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(status.message().len() <= 4096);
    let (_, body) = gateway
        .graphql_with(
            "query($q: String) { auditLogs(q: $q, limit: 1) { count } }",
            json!({ "q": q }),
            &[("coder-session-token", DEMO_TOKEN)],
        )
        .await;
    assert_eq!(graphql_code(&body), "INTERNAL_SERVER_ERROR", "{body}");
    assert!(coder.requests().is_empty(), "Coder was called");
}

/// A gateway with extra flags and `--metrics-listen` on a free port: the public and the
/// operations addresses.
async fn gateway_with_operations(upstream: &str, extra: &[&str]) -> (SocketAddr, SocketAddr) {
    let mut args = vec![
        "gw",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--coder-url",
        upstream,
    ];
    args.extend_from_slice(extra);
    let app = Application::build(&Config::try_parse_from(args).expect("args"))
        .await
        .expect("starts");
    let public = app.local_addr().expect("addr");
    let operations = app.operations_addr().expect("configured").expect("addr");
    tokio::spawn(app.run_until(std::future::pending()));
    (public, operations)
}

/// A keep-alive connection that has had one `/healthz` answered, left open.
async fn served_keep_alive(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut answer = [0_u8; 256];
    let read = stream.read(&mut answer).await.expect("read");
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    stream
}

/// Reads until the peer closes the connection; how long that took, at most `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0_u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_oversized_heads_get_431() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &["--header-read-timeout", "500ms"]).await;
    let limit = Duration::from_secs(10);

    // Silent, half a request head, an HTTP/2 preface without SETTINGS.
    for opening in [
        &b""[..],
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        stream.write_all(opening).await.expect("write");
        let closed = closed_within(&mut stream, limit).await;
        assert!(
            closed.is_some_and(|after| after >= Duration::from_millis(400)),
            "{:?}: {closed:?}",
            String::from_utf8_lossy(opening)
        );
    }

    // An idle keep-alive connection is closed too, after serving its request.
    let mut stream = served_keep_alive(gateway.addr).await;
    assert!(
        closed_within(&mut stream, limit).await.is_some(),
        "idle connection kept"
    );

    // A 200 kB header.
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(100)])
    );

    // The gateway still serves.
    assert_eq!(gateway.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_while_probes_and_metrics_answer_elsewhere() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let (public, operations) =
        gateway_with_operations(&upstream, &["--max-connections", "2"]).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(served_keep_alive(public).await);
    }
    let mut third = TcpStream::connect(public)
        .await
        .expect("the kernel accepts");
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let closed = closed_within(&mut third, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "a third connection was served");

    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = http()
            .get(format!("http://{operations}{path}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 200, "{path}");
    }
    let metrics = http()
        .get(format!("http://{operations}/metrics"))
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("gateway_connections_refused_total"),
        "{metrics}"
    );
    drop(held);
    // Public /metrics is gone once it has its own listener.
    let response = http()
        .get(format!("http://{public}/metrics"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn http2_rapid_reset_is_cut_off_and_others_are_served() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &[]).await;
    let tcp = TcpStream::connect(gateway.addr).await.expect("connect");
    let (mut client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    let mut sent = 0;
    for _ in 0..10_000 {
        let Ok(ready) = client.clone().ready().await else {
            break;
        };
        client = ready;
        let request = axum::http::Request::get(format!("http://{}/healthz", gateway.addr))
            .body(())
            .expect("request");
        match client.send_request(request, false) {
            Ok((_, mut stream)) => stream.send_reset(h2::Reason::CANCEL),
            Err(_) => break,
        }
        sent += 1;
    }
    // Each stream is opened and cancelled at once, faster than the server's handlers end:
    // the server refuses streams beyond its limit and, after 1024 refusals, sends GOAWAY
    // (ENHANCE_YOUR_CALM) and closes. The client still holds the connection, so only the
    // server can end it; the writing client may see the close as a broken pipe first.
    let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
    let error = ended
        .unwrap_or_else(|_| panic!("the connection survived {sent} rapid resets"))
        .expect("task")
        .expect_err("ended by the server");
    assert!(
        error.is_go_away() || error.is_io(),
        "{error:?} after {sent} resets"
    );
    drop(client);
    assert_eq!(gateway.get("/healthz").await.status(), 200);
    let page = gateway.graphql_page(DEMO_TOKEN, "", 1, 0).await;
    assert_eq!(page["data"]["auditLogs"]["count"], 320, "{page}");
}
