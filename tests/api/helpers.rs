//! Spawning gateways and upstreams, and talking to them.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Body,
    extract::Request,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use clap::Parser;
use coder_audit_gateway::{
    config::Config,
    demo::{self, DemoConfig},
    grpc::pb::{self, audit_service_client::AuditServiceClient},
    startup::Application,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// A plain HTTP client. The crate builds reqwest without a bundled crypto provider (it
/// installs ring itself when it starts); a test client made before any gateway needs it too.
pub(crate) fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Every field of the GraphQL contract.
pub(crate) const ALL_FIELDS: &str = "count countCap auditLogs { id requestId time ip userAgent resourceType resourceId resourceTarget resourceIcon action diff { field old new secret } statusCode additionalFields description resourceLink isDeleted organizationId organization { id name displayName icon } user { id username name email avatarUrl createdAt updatedAt lastSeenAt status loginType themePreference organizationIds roles { name displayName organizationId } hasAiSeat isServiceAccount extraFields } extraFields }";

/// A gateway under test.
pub(crate) struct Gateway {
    pub(crate) addr: SocketAddr,
    http: reqwest::Client,
}

impl Gateway {
    /// A gateway already serving on `addr` (the binary, started with [`start_binary`]).
    pub(crate) fn at(addr: SocketAddr) -> Self {
        Self {
            addr,
            http: crate::helpers::http(),
        }
    }
}

/// Starts the gateway from command-line style arguments, pointed at `upstream`.
pub(crate) async fn gateway(upstream: &str, extra: &[&str]) -> Gateway {
    let mut args = vec![
        "coder-audit-gateway",
        "--listen",
        "127.0.0.1:0",
        "--coder-url",
        upstream,
    ];
    args.extend_from_slice(extra);
    let config = Config::try_parse_from(args).expect("valid arguments");
    let app = Application::build(&config).await.expect("gateway starts");
    let addr = app.local_addr().expect("bound");
    tokio::spawn(app.run_until(std::future::pending()));
    Gateway {
        addr,
        http: crate::helpers::http(),
    }
}

/// The demo upstream on its own port, and its base URL.
pub(crate) async fn demo_upstream(config: DemoConfig) -> String {
    let addr = demo::spawn(config).await.expect("demo starts");
    format!("http://{addr}")
}

/// A gateway in front of a fresh default demo upstream; returns both.
pub(crate) async fn demo_gateway() -> (Gateway, String) {
    let upstream = demo_upstream(DemoConfig::default()).await;
    (gateway(&upstream, &[]).await, upstream)
}

impl Gateway {
    /// POSTs a GraphQL request with the given extra headers; returns the status and body.
    pub(crate) async fn graphql_with(
        &self,
        query: &str,
        variables: Value,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("http://{}/graphql", self.addr))
            .header("content-type", "application/json")
            .body(json!({"query": query, "variables": variables}).to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status();
        let body = response.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).expect("JSON body"))
    }

    /// `auditLogs` with every field, as `token`.
    pub(crate) async fn graphql_page(
        &self,
        token: &str,
        q: &str,
        limit: i32,
        offset: i32,
    ) -> Value {
        self.graphql_filtered(token, q, &Value::Null, limit, offset)
            .await
    }

    /// `auditLogs` with every field and a typed `filter` (GraphQL JSON), as `token`.
    pub(crate) async fn graphql_filtered(
        &self,
        token: &str,
        q: &str,
        filter: &Value,
        limit: i32,
        offset: i32,
    ) -> Value {
        let (_, body) = self
            .graphql_with(
                &format!("query($q: String, $filter: AuditLogFilter, $limit: Int!, $offset: Int) {{ auditLogs(q: $q, filter: $filter, limit: $limit, offset: $offset) {{ {ALL_FIELDS} }} }}"),
                json!({"q": q, "filter": filter, "limit": limit, "offset": offset}),
                &[("coder-session-token", token)],
            )
            .await;
        without_extensions(body)
    }

    /// A connected gRPC client.
    pub(crate) async fn grpc(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::connect(format!("http://{}", self.addr))
            .await
            .expect("gRPC connects")
    }

    /// `ListAuditLogs` as `token` (sent as `coder-session-token` metadata).
    pub(crate) async fn grpc_page(
        &self,
        token: &str,
        q: &str,
        limit: i32,
        offset: i32,
    ) -> Result<pb::ListAuditLogsResponse, tonic::Status> {
        self.grpc_filtered(
            token,
            pb::ListAuditLogsRequest {
                q: q.to_owned(),
                limit,
                offset,
                ..Default::default()
            },
        )
        .await
    }

    /// The NDJSON export's body as `token`, with the given query string.
    pub(crate) async fn ndjson_text(&self, token: &str, query: &str) -> String {
        self.http
            .get(format!("http://{}/audit-logs/export?{query}", self.addr))
            .header("coder-session-token", token)
            .send()
            .await
            .expect("answers")
            .text()
            .await
            .expect("body")
    }

    /// The NDJSON export's body up to its end or its abort (which follows an error line).
    pub(crate) async fn ndjson_until_end(&self, token: &str, query: &str) -> String {
        let mut response = self
            .http
            .get(format!("http://{}/audit-logs/export?{query}", self.addr))
            .header("coder-session-token", token)
            .send()
            .await
            .expect("answers");
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).expect("UTF-8")
    }

    /// `ExportAuditLogs` as `token` from `after`, in pages of `page_size`: every row it
    /// delivers, and the status it ends with (or is refused with), if any.
    pub(crate) async fn grpc_export(
        &self,
        token: &str,
        after: String,
        page_size: i32,
    ) -> (Vec<pb::AuditLog>, Option<tonic::Status>) {
        let mut request = tonic::Request::new(pb::ExportAuditLogsRequest {
            after,
            page_size,
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("coder-session-token", token.parse().expect("ascii token"));
        let mut stream = match self.grpc().await.export_audit_logs(request).await {
            Ok(response) => response.into_inner(),
            // Refused at its start: no row, and the status.
            Err(status) => return (Vec::new(), Some(status)),
        };
        let mut rows = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(batch)) => rows.extend(batch.audit_logs),
                Ok(None) => return (rows, None),
                Err(status) => return (rows, Some(status)),
            }
        }
    }

    /// `ListAuditLogs` with any request, as `token`.
    pub(crate) async fn grpc_filtered(
        &self,
        token: &str,
        message: pb::ListAuditLogsRequest,
    ) -> Result<pb::ListAuditLogsResponse, tonic::Status> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("coder-session-token", token.parse().expect("ascii token"));
        self.grpc()
            .await
            .list_audit_logs(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .expect("gateway answers")
    }
}

/// A gRPC-Web frame: flag, big-endian length, payload.
pub(crate) fn grpc_web_frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![flag];
    frame.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

impl Gateway {
    /// `ListAuditLogs` over gRPC-Web (HTTP/1.1), as a browser sends it.
    pub(crate) async fn grpc_web_list(
        &self,
        token: &str,
        request: &pb::ListAuditLogsRequest,
    ) -> reqwest::Response {
        self.http
            .post(format!(
                "http://{}/coder.audit.v1.AuditService/ListAuditLogs",
                self.addr
            ))
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .header("coder-session-token", token)
            .body(grpc_web_frame(0, &prost::Message::encode_to_vec(request)))
            .send()
            .await
            .expect("answers")
    }
}

/// The upstream's own answer, fetched directly.
pub(crate) async fn upstream_page(
    upstream: &str,
    token: &str,
    q: &str,
    limit: i32,
    offset: i32,
) -> Value {
    let limit = if limit == 0 { 100 } else { limit };
    let url = reqwest::Url::parse_with_params(
        &format!("{upstream}/api/v2/audit"),
        [
            ("q", q.to_owned()),
            ("limit", limit.to_string()),
            ("offset", offset.to_string()),
        ],
    )
    .expect("url");
    let response = crate::helpers::http()
        .get(url)
        .header("coder-session-token", token)
        .send()
        .await
        .expect("upstream answers");
    assert_eq!(response.status(), 200);
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON")
}

/// What a scripted fake Coder saw of one request.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) headers: HeaderMap,
    pub(crate) query: String,
}

/// A fake Coder that answers every request with `respond()` and records what it was sent.
pub(crate) struct FakeCoder {
    pub(crate) url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeCoder {
    pub(crate) fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

pub(crate) async fn fake_coder<F, Fut>(respond: F) -> FakeCoder
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response> + Send,
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    // Readiness and health checks ask for build information; only audit calls are scripted.
    let app = Router::new()
        .route(
            "/api/v2/buildinfo",
            axum::routing::get(|| async { r#"{"version":"v2.0.0-fake"}"# }),
        )
        .fallback(move |request: Request| {
            let respond = respond.clone();
            let recorder = recorder.clone();
            async move {
                recorder.lock().expect("lock").push(Seen {
                    headers: request.headers().clone(),
                    query: request.uri().query().unwrap_or_default().to_owned(),
                });
                respond().await
            }
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    FakeCoder {
        url: format!("http://{addr}"),
        seen,
    }
}

/// A canned response.
pub(crate) fn response(status: u16, content_type: &str, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.into())
        .expect("response")
}

/// An address nothing listens on.
pub(crate) async fn dead_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// A GraphQL response without its response-level `extensions` (the upstream's request id,
/// which differs on every call), for comparing pages.
pub(crate) fn without_extensions(mut body: Value) -> Value {
    if let Some(body) = body.as_object_mut() {
        body.remove("extensions");
    }
    body
}

/// The GraphQL error's `extensions.code`.
pub(crate) fn graphql_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// An upstream that answers every connection with `bytes` and hangs up: for answers no
/// well-behaved HTTP server would send, such as a body shorter than its Content-Length.
pub(crate) async fn raw_upstream(bytes: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0_u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(bytes).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// Everything logged in this test process from the first call on, at debug level and above
/// (the gateway logs at info by default). Installed once: tests run in one process.
pub(crate) fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .try_init();
        logs
    })
    .clone()
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The real binary, started with `args`: the process, the log line that announces its
/// address, and that address. Later log lines are drained so the process never blocks.
pub(crate) fn start_binary(args: &[&str]) -> (std::process::Child, String, String) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_coder-audit-gateway"))
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("serving GraphQL on http://"))
        .expect("the bound address is logged");
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let addr = line
        .split("serving GraphQL on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("an address")
        .to_owned();
    (child, line, addr)
}

/// Sends SIGTERM and waits, at most 30 s, for the process to exit.
pub(crate) fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    for _ in 0..300 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the gateway did not stop on SIGTERM")
}
