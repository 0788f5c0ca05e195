//! The other two surfaces of exports and watches: the `auditLogAdded` subscription over a
//! real graphql-transport-ws client (tokio-tungstenite), and the NDJSON export over plain
//! HTTP streaming.

use std::time::Duration;

use axum::http::StatusCode;
use coder_audit_gateway::{
    demo::{self, DEMO_MEMBER_TOKEN, DEMO_TOKEN, DemoConfig, DemoHandle},
    grpc::pb,
};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::helpers::{Gateway, gateway, http, upstream_page};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn live_gateway(extra: &[&str]) -> (Gateway, String, DemoHandle) {
    let (addr, handle) = demo::spawn_with_handle(DemoConfig {
        shuffle_ties: true,
        ..DemoConfig::default()
    })
    .await
    .expect("demo starts");
    let upstream = format!("http://{addr}");
    let mut args = vec!["--watch-interval", "200ms"];
    args.extend_from_slice(extra);
    (gateway(&upstream, &args).await, upstream, handle)
}

/// An upgrade request for `/graphql` offering graphql-transport-ws, with extra headers.
fn ws_request(
    gateway: &Gateway,
    headers: &[(&str, &str)],
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{}/graphql", gateway.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    for (name, value) in headers {
        request.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("header"),
        );
    }
    request
}

/// A WebSocket on `/graphql` speaking graphql-transport-ws, with extra upgrade headers.
async fn connect(gateway: &Gateway, headers: &[(&str, &str)]) -> Socket {
    let request = ws_request(gateway, headers);
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

/// The next protocol message (pings answered on the way).
async fn receive(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("valid frame");
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).expect("JSON");
                if value["type"] == "ping" {
                    send(socket, json!({"type": "pong"})).await;
                    continue;
                }
                return value;
            }
            Message::Close(frame) => return json!({"closed": frame.map(|f| u16::from(f.code))}),
            _ => {}
        }
    }
}

async fn init(socket: &mut Socket, payload: Value) {
    send(
        socket,
        json!({"type": "connection_init", "payload": payload}),
    )
    .await;
    assert_eq!(receive(socket).await["type"], "connection_ack");
}

const SUBSCRIPTION: &str = "subscription($q: String, $after: String) { auditLogAdded(q: $q, after: $after) { cursor auditLog { id time action user { username } } } }";

async fn subscribe(socket: &mut Socket, id: &str, variables: Value) {
    send(
        socket,
        json!({"type": "subscribe", "id": id, "payload": {"query": SUBSCRIPTION, "variables": variables}}),
    )
    .await;
}

/// The ids of the `n` newest rows, oldest first, as the demo recorded them.
fn newest(handle: &DemoHandle, n: usize) -> Vec<String> {
    handle
        .snapshot()
        .into_iter()
        .take(n)
        .rev()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test]
async fn a_subscription_streams_new_rows_and_resumes_from_its_cursor() {
    let (gateway, _, handle) = live_gateway(&[]).await;
    let mut socket = connect(&gateway, &[]).await;
    init(&mut socket, json!({"Coder-Session-Token": DEMO_TOKEN})).await;
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(receive(&mut socket).await["type"], "pong");
    subscribe(&mut socket, "a", json!({})).await;
    // The watch is established once Coder has been asked where "now" is.
    until_coder_is_called(&handle, handle.audit_calls()).await;
    handle.record(3, false);
    let expected = newest(&handle, 3);
    let mut cursor = String::new();
    for id in &expected {
        let message = receive(&mut socket).await;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], "a");
        let event = &message["payload"]["data"]["auditLogAdded"];
        assert_eq!(event["auditLog"]["id"], id.as_str());
        cursor = event["cursor"].as_str().expect("cursor").to_owned();
    }
    send(&mut socket, json!({"type": "complete", "id": "a"})).await;

    // Resume after the last event: exactly the rows recorded since.
    handle.record(2, true);
    let expected = newest(&handle, 2);
    subscribe(&mut socket, "b", json!({"after": cursor})).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let message = receive(&mut socket).await;
        assert_eq!(message["id"], "b", "{message}");
        got.push(
            message["payload"]["data"]["auditLogAdded"]["auditLog"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    got.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn the_token_may_come_from_the_upgrade_headers_and_an_export_cursor_from_grpc() {
    let (gateway, _, handle) = live_gateway(&[]).await;
    let mut request = tonic::Request::new(pb::ExportAuditLogsRequest::default());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {DEMO_TOKEN}").parse().expect("metadata"),
    );
    let mut export = gateway
        .grpc()
        .await
        .export_audit_logs(request)
        .await
        .expect("export")
        .into_inner();
    let watch_cursor = export
        .message()
        .await
        .expect("message")
        .expect("first message")
        .watch_cursor;
    handle.record(1, false);
    let expected = newest(&handle, 1);

    let mut socket = connect(
        &gateway,
        &[("authorization", &format!("Bearer {DEMO_TOKEN}"))],
    )
    .await;
    init(&mut socket, json!({})).await;
    subscribe(&mut socket, "1", json!({"after": watch_cursor})).await;
    let message = receive(&mut socket).await;
    assert_eq!(
        message["payload"]["data"]["auditLogAdded"]["auditLog"]["id"],
        expected[0].as_str(),
        "{message}"
    );
}

#[tokio::test]
async fn refusals_are_error_messages_with_codes() {
    let (gateway, _, _) = live_gateway(&["--max-subscriptions-per-connection", "1"]).await;
    let mut socket = connect(&gateway, &[]).await;
    init(&mut socket, json!({})).await;
    subscribe(&mut socket, "1", json!({})).await;
    let message = receive(&mut socket).await;
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["id"], "1");
    assert_eq!(
        message["payload"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );

    let mut socket = connect(&gateway, &[]).await;
    init(
        &mut socket,
        json!({"coder-session-token": DEMO_MEMBER_TOKEN}),
    )
    .await;
    subscribe(&mut socket, "1", json!({})).await;
    let message = receive(&mut socket).await;
    assert_eq!(
        message["payload"][0]["extensions"]["code"], "FORBIDDEN",
        "{message}"
    );

    let mut socket = connect(&gateway, &[]).await;
    init(
        &mut socket,
        json!({"Authorization": format!("Bearer {DEMO_TOKEN}")}),
    )
    .await;
    subscribe(&mut socket, "1", json!({"q": "foo:bar"})).await;
    let message = receive(&mut socket).await;
    assert_eq!(
        message["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{message}"
    );
    subscribe(&mut socket, "2", json!({"after": "garbage"})).await;
    let message = receive(&mut socket).await;
    assert_eq!(
        message["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{message}"
    );

    // One subscription per connection here: the second is refused, the first goes on.
    subscribe(&mut socket, "3", json!({})).await;
    subscribe(&mut socket, "4", json!({})).await;
    let message = receive(&mut socket).await;
    assert_eq!(message["id"], "4", "{message}");
    assert_eq!(
        message["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    // A second subscriber with a live id breaks the protocol: 4409.
    subscribe(&mut socket, "3", json!({})).await;
    assert_eq!(receive(&mut socket).await["closed"], 4409);
}

/// Waits (boundedly) until the demo has answered more audit requests than `calls`.
async fn until_coder_is_called(handle: &DemoHandle, calls: u64) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while handle.audit_calls() == calls {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the watch asks Coder in time");
}

/// The gateway's `gateway_watches_open`, from its `/metrics`.
async fn watches_open(gateway: &Gateway) -> f64 {
    let text = http()
        .get(format!("http://{}/metrics", gateway.addr))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix("gateway_watches_open "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn an_id_is_free_the_moment_its_end_arrives_and_nothing_outlives_the_socket() {
    // The binary in its own process, so that its watch gauge counts this test's watches alone.
    let (addr, handle) = demo::spawn_with_handle(DemoConfig::default())
        .await
        .expect("demo starts");
    let upstream = format!("http://{addr}");
    let (mut child, _, gateway_addr) = tokio::task::spawn_blocking(move || {
        crate::helpers::start_binary(&[
            "--listen",
            "127.0.0.1:0",
            "--coder-url",
            &upstream,
            "--watch-interval",
            "200ms",
        ])
    })
    .await
    .expect("join");
    let gateway = Gateway::at(gateway_addr.parse().expect("an address"));
    let mut socket = connect(&gateway, &[]).await;
    init(&mut socket, json!({"Coder-Session-Token": DEMO_TOKEN})).await;
    // As many subscriptions as a connection may hold, all on one poller.
    let ids: Vec<String> = (1..=16).map(|n| n.to_string()).collect();
    for id in &ids {
        let calls = handle.audit_calls();
        subscribe(&mut socket, id, json!({})).await;
        until_coder_is_called(&handle, calls).await;
    }
    // Coder turns the token away: every subscription ends on its own with an error, all at
    // once, and the client takes each id again the moment its error arrives. The protocol
    // frees an id then, so the new `subscribe` must be served (here: refused by Coder, as an
    // `error`), never closed with 4409, however far behind the server's own bookkeeping of
    // the old stream is. Driven by the messages alone.
    handle.fail_with(Some((StatusCode::UNAUTHORIZED, None)));
    let mut ended = Vec::new();
    let mut refused = Vec::new();
    while refused.len() < ids.len() {
        let message = receive(&mut socket).await;
        assert_eq!(message["type"], "error", "{message}");
        let id = message["id"].as_str().expect("id").to_owned();
        if ended.contains(&id) {
            refused.push(id);
        } else {
            subscribe(&mut socket, &id, json!({"q": "foo:bar"})).await;
            ended.push(id);
        }
    }
    handle.fail_with(None);
    // Complete a live subscription, take its id again at once, then close the socket.
    let calls = handle.audit_calls();
    subscribe(&mut socket, "1", json!({})).await;
    until_coder_is_called(&handle, calls).await;
    send(&mut socket, json!({"type": "complete", "id": "1"})).await;
    let calls = handle.audit_calls();
    subscribe(&mut socket, "1", json!({})).await;
    until_coder_is_called(&handle, calls).await;
    socket.close(None).await.expect("close");
    drop(socket);

    // Once the socket is gone, so is every watch it held: the gauge comes back to 0 (a
    // bounded loop on the gateway's own count), and then no call to Coder follows.
    tokio::time::timeout(Duration::from_secs(30), async {
        while watches_open(&gateway).await > 0.0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("every watch of the socket ends");
    let calls = handle.audit_calls();
    // Three watch intervals: a poller still running would have called by then.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(handle.audit_calls(), calls, "a watch outlived its socket");
    tokio::task::spawn_blocking(move || crate::helpers::terminate(&mut child))
        .await
        .expect("join");
}

#[tokio::test]
async fn connections_are_bounded_in_time_origin_and_message_size() {
    let (gateway, _, _) = live_gateway(&[
        "--connection-init-timeout",
        "200ms",
        "--max-request-body",
        "4096",
    ])
    .await;
    let mut socket = connect(&gateway, &[]).await;
    assert_eq!(receive(&mut socket).await["closed"], 4408);

    // A message larger than --max-request-body ends the connection.
    let mut socket = connect(&gateway, &[]).await;
    init(&mut socket, json!({"Coder-Session-Token": DEMO_TOKEN})).await;
    let big = json!({"id": "1", "type": "subscribe", "payload": {"query": "x".repeat(20_000)}});
    let _ = socket.send(Message::Text(big.to_string().into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                None | Some(Err(_) | Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "an oversized message left the connection open"
    );

    let request = ws_request(&gateway, &[("origin", "https://evil.example")]);
    let error = tokio_tungstenite::connect_async(request)
        .await
        .expect_err("refused");
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        other => panic!("{other}"),
    }
}

/// Reads the rest of a body; false when the transfer broke off.
async fn drain(response: &mut reqwest::Response, body: &mut Vec<u8>) -> bool {
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// The NDJSON response's status and headers, its body as received, and whether the
/// transfer ended cleanly.
async fn ndjson(
    gateway: &Gateway,
    query: &str,
    token: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>, bool) {
    let response = http()
        .get(format!("http://{}/audit-logs/export?{query}", gateway.addr))
        .header("coder-session-token", token)
        .send()
        .await
        .expect("answers");
    let status = response.status();
    let headers = response.headers().clone();
    let mut response = response;
    let mut body = Vec::new();
    let clean = drain(&mut response, &mut body).await;
    (status, headers, body, clean)
}

#[tokio::test]
async fn the_ndjson_export_is_each_row_as_coder_sent_it() {
    let (gateway, upstream, _) = live_gateway(&[]).await;
    let (status, headers, body, clean) = ndjson(&gateway, "page_size=40&q=", DEMO_TOKEN).await;
    assert!(clean);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/x-ndjson");
    assert!(!headers["x-watch-cursor"].is_empty());
    let text = String::from_utf8(body).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    // The demo's whole trail, byte for byte as Coder wrote each row (Go's \u003c escapes).
    let raw = http()
        .get(format!("{upstream}/api/v2/audit?limit=1000"))
        .header("coder-session-token", DEMO_TOKEN)
        .send()
        .await
        .expect("upstream")
        .text()
        .await
        .expect("text");
    let page = upstream_page(&upstream, DEMO_TOKEN, "", 1000, 0).await;
    assert_eq!(
        lines.len(),
        page["audit_logs"].as_array().expect("rows").len()
    );
    for line in &lines {
        assert!(raw.contains(line), "not Coder's bytes: {line}");
        let row: Value = serde_json::from_str(line).expect("JSON line");
        assert!(row["id"].is_string());
    }
    assert!(
        lines.iter().any(|l| l.contains("\\u003c")),
        "Go's escapes kept"
    );
}

#[tokio::test]
async fn ndjson_errors_before_and_after_the_first_byte() {
    let (addr, handle) = demo::spawn_with_handle(DemoConfig {
        rows: 4000,
        ..DemoConfig::default()
    })
    .await
    .expect("demo");
    let gateway = gateway(&format!("http://{addr}"), &[]).await;
    let (status, _, body, _) = ndjson(&gateway, "", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let error: Value = serde_json::from_slice(&body).expect("JSON error");
    assert_eq!(error["error"]["code"], "UNAUTHENTICATED");
    let (status, _, body, _) = ndjson(&gateway, "q=foo:bar", DEMO_TOKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_slice(&body).expect("JSON error");
    assert_eq!(error["error"]["code"], "BAD_USER_INPUT");
    assert_eq!(error["error"]["validations"][0]["field"], "foo");
    let (status, _, _, _) = ndjson(&gateway, "page_size=ten", DEMO_TOKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Coder fails midway: the body ends with an error line and the transfer fails.
    let response = http()
        .get(format!(
            "http://{}/audit-logs/export?page_size=10",
            gateway.addr
        ))
        .header("coder-session-token", DEMO_TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let mut response = response;
    let mut body = response
        .chunk()
        .await
        .expect("bytes")
        .expect("a chunk")
        .to_vec();
    handle.fail_with(Some((StatusCode::INTERNAL_SERVER_ERROR, None)));
    let clean = drain(&mut response, &mut body).await;
    assert!(!clean, "a failed export must not look complete");
    let text = String::from_utf8(body).expect("UTF-8");
    let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last["error"]["code"], "UPSTREAM_ERROR", "{last}");
    assert!(text.lines().count() < 4000);
}

/// Runs `coder-audit-gateway export` with `args`; returns whether it succeeded and stderr.
fn export_command(upstream: &str, token: &str, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_coder-audit-gateway"))
        .arg("export")
        .args(["--coder-url", upstream])
        .args(args)
        .env("CODER_SESSION_TOKEN", token)
        .env_remove("CODER_URL")
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ids_in(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).expect("JSON line")["id"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_export_command_writes_and_resumes_a_file_without_gaps_or_duplicates() {
    let (addr, handle) = demo::spawn_with_handle(DemoConfig {
        rows: 700,
        shuffle_ties: true,
        ..DemoConfig::default()
    })
    .await
    .expect("demo");
    let upstream = format!("http://{addr}");
    let dir = std::env::temp_dir().join(format!("cag-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("audit.ndjson");
    let path = file.to_str().expect("path");
    let all: Vec<String> = handle.snapshot().into_iter().map(|(id, _)| id).collect();

    let upstream_clone = upstream.clone();
    let path_clone = path.to_owned();
    let (ok, stderr) = tokio::task::spawn_blocking(move || {
        export_command(
            &upstream_clone,
            DEMO_TOKEN,
            &["--output", &path_clone, "--page-size", "64"],
        )
    })
    .await
    .expect("join");
    assert!(ok, "{stderr}");
    assert!(stderr.contains("exported 700 rows"), "{stderr}");
    let full = std::fs::read_to_string(&file).expect("file");
    let mut written = ids_in(&full);
    assert_eq!(written.len(), 700);
    written.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(written, expected);

    // Interrupted in the middle of a line, with new rows recorded since: resume.
    let cut = full.len() / 3 + 17;
    std::fs::write(&file, &full.as_bytes()[..cut]).expect("truncate");
    handle.record(40, false);
    handle.record(5, true);
    let upstream_clone = upstream.clone();
    let path_clone = path.to_owned();
    let (ok, stderr) = tokio::task::spawn_blocking(move || {
        export_command(
            &upstream_clone,
            DEMO_TOKEN,
            &["--output", &path_clone, "--resume", "--page-size", "50"],
        )
    })
    .await
    .expect("join");
    assert!(ok, "{stderr}");
    let resumed = std::fs::read_to_string(&file).expect("file");
    let mut written = ids_in(&resumed);
    let unique: std::collections::HashSet<&String> = written.iter().collect();
    assert_eq!(unique.len(), written.len(), "a row was written twice");
    written.sort();
    assert_eq!(written, expected, "exactly the rows of the first run");

    // No token: a clear error, no file touched.
    let (ok, stderr) = export_command(&upstream, "", &["--output", path]);
    assert!(!ok);
    assert!(stderr.contains("CODER_SESSION_TOKEN"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A row as Coder sends it, at `time`, with `created_at` as its user's creation time.
fn fake_row(id: &str, time: &str, created_at: &str) -> String {
    json!({"id": id, "request_id": "r", "time": time, "ip": "", "user_agent": "", "resource_type": "user",
        "resource_id": "x", "resource_target": "t", "resource_icon": "", "action": "write", "diff": {},
        "status_code": 200, "additional_fields": {}, "description": "d", "resource_link": "", "is_deleted": false,
        "organization_id": "00000000-0000-0000-0000-000000000000",
        "user": {"id": "u", "username": "mock", "email": "m@x", "created_at": created_at,
                 "last_seen_at": "2026-01-01T00:00:00Z", "status": "active", "login_type": "password",
                 "organization_ids": [], "roles": []}})
    .to_string()
}

/// A fake Coder whose trail is `rows` (JSON texts, newest first).
async fn fake_trail(rows: &[&str]) -> crate::helpers::FakeCoder {
    let page: &'static str = Box::leak(
        format!(
            r#"{{"audit_logs":[{}],"count":{}}}"#,
            rows.join(","),
            rows.len()
        )
        .into_boxed_str(),
    );
    crate::helpers::fake_coder(move || async move {
        crate::helpers::response(200, "application/json", page)
    })
    .await
}

/// Where a trail of `rows` stands: the watch cursor of an export of it.
async fn watch_cursor_after(rows: &[&str]) -> String {
    let old = fake_trail(rows).await;
    let (_, headers, _, _) = ndjson(&gateway(&old.url, &[]).await, "", "tok-en").await;
    headers["x-watch-cursor"]
        .to_str()
        .expect("ASCII")
        .to_owned()
}

#[tokio::test]
async fn a_subscription_ends_on_a_row_it_cannot_deliver_with_the_cursor_past_it() {
    let good = fake_row("row-a", "2026-04-02T09:14:02Z", "2025-01-01T00:00:00Z");
    let bad = fake_row("row-b", "2026-04-02T09:14:03Z", "");
    // Where the trail stood before row-b; then Coder records row-b, with a value its server
    // never sends.
    let watch_cursor = watch_cursor_after(&[&good]).await;
    let now = fake_trail(&[&bad, &good]).await;
    let gateway = gateway(&now.url, &[]).await;
    let mut socket = connect(&gateway, &[]).await;
    init(&mut socket, json!({"Coder-Session-Token": "tok-en"})).await;
    subscribe(&mut socket, "1", json!({"after": watch_cursor})).await;
    let message = receive(&mut socket).await;
    let error = data_loss(&message);
    let text = error["message"].as_str().expect("message");
    assert!(
        text.contains("row-b") && text.contains("user.created_at"),
        "{text}"
    );
    // The cursor resumes past row-b: nothing is left to deliver, and no error comes.
    let cursor = error["extensions"]["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    subscribe(&mut socket, "2", json!({"after": cursor})).await;
    let quiet = tokio::time::timeout(Duration::from_millis(500), receive(&mut socket)).await;
    assert!(quiet.is_err(), "nothing past row-b: {quiet:?}");
}

/// A `WatchAuditLogs` request from `after`, as `token`.
fn watch_request(after: String, token: &str) -> tonic::Request<pb::WatchAuditLogsRequest> {
    let mut request = tonic::Request::new(pb::WatchAuditLogsRequest {
        after,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("coder-session-token", token.parse().expect("ascii"));
    request
}

#[tokio::test]
async fn a_grpc_watch_ends_on_an_undeliverable_row_with_the_cursor_past_it() {
    use tonic_types::StatusExt as _;

    let older = fake_row("row-a", "2026-04-02T09:14:01Z", "2025-01-01T00:00:00Z");
    let good = fake_row("row-b", "2026-04-02T09:14:02Z", "2025-01-01T00:00:00Z");
    let bad = fake_row("row-c", "2026-04-02T09:14:03Z", "");
    let watch_cursor = watch_cursor_after(&[&older]).await;
    // Coder then records row-b and row-c; row-c holds a value its server never sends.
    let now = fake_trail(&[&bad, &good, &older]).await;
    let gateway = gateway(&now.url, &[]).await;
    let watch = |after: String| watch_request(after, "tok-en");
    let mut stream = gateway
        .grpc()
        .await
        .watch_audit_logs(watch(watch_cursor))
        .await
        .expect("the watch starts")
        .into_inner();
    // Oldest first: row-b is delivered, then the watch ends on row-c.
    let first = stream.message().await.expect("a message").expect("row-b");
    let ids: Vec<&str> = first.audit_logs.iter().map(|log| log.id.as_str()).collect();
    assert_eq!(ids, ["row-b"]);
    let ended = stream.message().await.expect_err("ends on row-c");
    assert_eq!(ended.code(), tonic::Code::DataLoss, "{ended:?}");
    assert!(ended.message().contains("row-c"), "{ended:?}");
    let cursor = ended
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get("cursor").cloned())
        .expect("a resume cursor");
    // Resumed past row-c, the watch has nothing to say (and no error).
    let mut resumed = gateway
        .grpc()
        .await
        .watch_audit_logs(watch(cursor))
        .await
        .expect("the watch resumes")
        .into_inner();
    let quiet = tokio::time::timeout(Duration::from_millis(500), resumed.message()).await;
    assert!(quiet.is_err(), "nothing past row-c: {quiet:?}");
}

/// A live demo where, after the returned watch cursor, Coder records three rows and serves
/// the middle one with a `time` that does not parse (its recorded time still orders it).
/// Returns the gateway, the demo, the cursor and the three ids, oldest first.
async fn unreadable_time_recorded() -> (Gateway, DemoHandle, String, Vec<String>) {
    let (gateway, upstream, handle) = live_gateway(&[]).await;
    let (_, headers, _, _) = ndjson(&gateway, "", DEMO_TOKEN).await;
    let cursor = headers["x-watch-cursor"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    handle.record(3, false);
    let ids = newest(&handle, 3);
    let page = upstream_page(&upstream, DEMO_TOKEN, "", 3, 0).await;
    let mut row = (page["audit_logs"].as_array().expect("rows").iter())
        .find(|row| row["id"] == ids[1].as_str())
        .cloned()
        .expect("the middle row");
    row["time"] = "yesterday".into();
    assert!(handle.serve_as(&ids[1], &row.to_string()));
    (gateway, handle, cursor, ids)
}

#[tokio::test]
async fn a_grpc_watch_resumes_past_a_row_whose_time_cannot_be_read() {
    use tonic_types::StatusExt as _;

    let (gateway, handle, cursor, ids) = unreadable_time_recorded().await;
    let watch = |after: String| watch_request(after, DEMO_TOKEN);
    let mut stream = (gateway.grpc().await.watch_audit_logs(watch(cursor)).await)
        .expect("the watch starts")
        .into_inner();
    let first = stream.message().await.expect("a message").expect("a row");
    let delivered: Vec<&str> = first.audit_logs.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(delivered, [ids[0].as_str()]);
    let ended = stream
        .message()
        .await
        .expect_err("ends on the unreadable row");
    assert_eq!(ended.code(), tonic::Code::DataLoss, "{ended:?}");
    assert!(
        ended.message().contains(&ids[1]) && ended.message().contains("time"),
        "{ended:?}"
    );
    let past = ended
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get("cursor").cloned())
        .expect("the cursor past the row");
    // Resumed past it: the row after it, then a row recorded later; never the bad one.
    let mut resumed = (gateway.grpc().await.watch_audit_logs(watch(past)).await)
        .expect("the watch resumes")
        .into_inner();
    let next = resumed.message().await.expect("a message").expect("a row");
    let delivered: Vec<&str> = next.audit_logs.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(delivered, [ids[2].as_str()]);
    handle.record(1, false);
    let later = newest(&handle, 1);
    let next = resumed.message().await.expect("a message").expect("a row");
    let delivered: Vec<&str> = next.audit_logs.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(delivered, [later[0].as_str()]);
}

#[tokio::test]
async fn a_subscription_resumes_past_a_row_whose_time_cannot_be_read() {
    let (gateway, handle, cursor, ids) = unreadable_time_recorded().await;
    let mut socket = connect(&gateway, &[]).await;
    init(&mut socket, json!({"Coder-Session-Token": DEMO_TOKEN})).await;
    subscribe(&mut socket, "1", json!({"after": cursor})).await;
    let message = receive(&mut socket).await;
    assert_eq!(
        message["payload"]["data"]["auditLogAdded"]["auditLog"]["id"],
        ids[0].as_str(),
        "{message}"
    );
    let message = receive(&mut socket).await;
    let error = data_loss(&message);
    let text = error["message"].as_str().expect("message");
    assert!(text.contains(&ids[1]) && text.contains("time"), "{text}");
    let past = error["extensions"]["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    subscribe(&mut socket, "2", json!({"after": past})).await;
    let message = receive(&mut socket).await;
    assert_eq!(
        message["payload"]["data"]["auditLogAdded"]["auditLog"]["id"],
        ids[2].as_str(),
        "{message}"
    );
    handle.record(1, false);
    let later = newest(&handle, 1);
    let message = receive(&mut socket).await;
    assert_eq!(
        message["payload"]["data"]["auditLogAdded"]["auditLog"]["id"],
        later[0].as_str(),
        "{message}"
    );
}

/// The error a subscription ended with, which must be `UPSTREAM_DATA_LOSS`.
fn data_loss(message: &Value) -> &Value {
    assert_eq!(message["type"], "error", "{message}");
    let error = &message["payload"][0];
    assert_eq!(
        error["extensions"]["code"], "UPSTREAM_DATA_LOSS",
        "{message}"
    );
    error
}

/// A fake Coder whose one page holds 100 rows of about 80 KB each, the last with a `time` no
/// one can read: an export through it fails at that row, and the gateway's last chunk is the
/// whole 8 MB page with the error line at its end.
async fn a_large_page_ending_unreadable() -> crate::helpers::FakeCoder {
    let padding = "x".repeat(80_000);
    let rows: Vec<String> = (0..100)
        .map(|i| {
            let time = if i == 99 {
                "yesterday".to_owned()
            } else {
                format!("2026-04-02T09:{:02}:{:02}Z", 59 - i / 60, 59 - i % 60)
            };
            format!(
                r#"{{"id":"row-{i}","request_id":"r","time":"{time}","ip":"","user_agent":"{padding}","resource_type":"user","resource_id":"x","resource_target":"t","resource_icon":"","action":"write","diff":{{}},"status_code":200,"additional_fields":{{}},"description":"d","resource_link":"","is_deleted":false,"organization_id":"00000000-0000-0000-0000-000000000000","user":null}}"#
            )
        })
        .collect();
    let page: &'static str =
        Box::leak(format!(r#"{{"audit_logs":[{}],"count":100}}"#, rows.join(",")).into_boxed_str());
    crate::helpers::fake_coder(move || async move {
        crate::helpers::response(200, "application/json", page)
    })
    .await
}

/// How long a client stops reading once its export has started: far longer than the gateway
/// needs to read the page and fail, and than any pause a fix by timing could afford (the
/// gateway once waited 20 ms), so an error line not truly written before the abort is lost
/// behind the megabytes still queued. With the fix the gateway waits up to 30 s for it.
const STALL: Duration = Duration::from_millis(500);

/// Waits until the fake Coder has been asked for the page, then stalls the client.
async fn stall_once_asked(fake: &crate::helpers::FakeCoder) {
    for _ in 0..1000 {
        if !fake.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!fake.requests().is_empty(), "the gateway asked Coder");
    tokio::time::sleep(STALL).await;
}

#[tokio::test]
async fn a_stalled_reader_still_gets_the_error_line_of_a_failed_export() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    // Over HTTP/1.1 hyper polls the body again only once less than 64 KiB of it waits in its
    // buffer, which the kernel then takes at once: the old 20 ms pause did not lose the line
    // here on Linux, and the HTTP/2 test below is the one that fails without the fix. This one
    // holds the abort's other half: no final chunk, so the client sees a failed transfer.
    let fake = a_large_page_ending_unreadable().await;
    let gateway = gateway(&fake.url, &[]).await;
    // A small receive buffer, so that the 8 MB back up into the gateway's own buffers.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(16 << 10)
        .expect("receive buffer");
    let mut stream = socket.connect(gateway.addr).await.expect("connect");
    stream
        .write_all(b"GET /audit-logs/export HTTP/1.1\r\nhost: gateway\r\ncoder-session-token: tok-en\r\n\r\n")
        .await
        .expect("request");
    stall_once_asked(&fake).await;
    let mut received = Vec::new();
    let read = async {
        let mut buffer = vec![0_u8; 64 << 10];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the response ends");
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(
        text.contains(r#"{"error":{"code":"UPSTREAM_DATA_LOSS""#),
        "the error line reached the stalled reader after {} bytes: {}",
        received.len(),
        &text[text.len().saturating_sub(300)..]
    );
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "no final chunk: the transfer failed"
    );
}

#[tokio::test]
async fn a_stalled_http2_reader_still_gets_the_error_line_before_the_reset() {
    // Over HTTP/2 a failed export ends with RST_STREAM, which discards every frame the stream
    // still has queued: here the client's 16 KiB windows hold the page back, so the error
    // line waits in the gateway behind it until the client reads on.
    let fake = a_large_page_ending_unreadable().await;
    let gateway = gateway(&fake.url, &[]).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .http2_initial_stream_window_size(16 << 10)
        .http2_initial_connection_window_size(16 << 10)
        .build()
        .expect("client");
    let mut response = client
        .get(format!("http://{}/audit-logs/export", gateway.addr))
        .header("coder-session-token", "tok-en")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    stall_once_asked(&fake).await;
    let mut received = Vec::new();
    let read = async {
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => received.extend_from_slice(&chunk),
                Ok(None) => break false,
                Err(_) => break true,
            }
        }
    };
    let failed = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the response ends");
    assert!(failed, "the stream was reset, not ended cleanly");
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.contains(r#"{"error":{"code":"UPSTREAM_DATA_LOSS""#),
        "the error line reached the stalled reader before the reset, after {} bytes: {}",
        received.len(),
        &text[text.len().saturating_sub(300)..]
    );
}
