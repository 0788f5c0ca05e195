//! Coder's own audit fixtures (the `MockAuditLog*` rows Coder's developers wrote, resolved to
//! the JSON Coder's server sends) come back exact on every surface: GraphQL through
//! async-graphql and through a compiled plan, gRPC pages and export streams, the NDJSON export
//! and the `export` command.
//!
//! The rows come from Coder's AGPL source, so they are not in this repository: `.ci/run` points
//! `CODER_AUDIT_FIXTURES` at `../shared/fixtures/coder-audit-mocks.json` and runs this test
//! with `--ignored`. Without the file it fails, naming the path it looked for.

use std::sync::Arc;

use axum::{
    extract::RawQuery,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
};
use serde_json::Value;

use crate::{
    fidelity::{assert_grpc_matches, expected_graphql_page, expected_grpc, grpc_json},
    helpers::gateway,
};

/// The fixture rows, newest first, each with its JSON text as Coder's server writes it.
fn fixtures() -> Vec<(Value, String)> {
    let path = std::env::var("CODER_AUDIT_FIXTURES")
        .unwrap_or_else(|_| "../shared/fixtures/coder-audit-mocks.json".to_owned());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("Coder's audit fixtures are missing at {path}: {e}"));
    let rows: Vec<Value> = serde_json::from_str(&text).expect("the fixtures are a JSON array");
    rows.into_iter()
        .map(|row| {
            let text = serde_json::to_string(&row).expect("JSON");
            (row, text)
        })
        .collect()
}

/// The date (`YYYY-MM-DD`) of an RFC 3339 time.
fn day(time: &Value) -> &str {
    time.as_str().and_then(|t| t.get(..10)).unwrap_or_default()
}

/// A Coder that serves `rows` as its audit trail: `limit`, `offset`, `count` capped at 2,000,
/// and the `date_from:`/`date_to:` terms of `q` (whole UTC days, both inclusive).
async fn fixture_coder(rows: Arc<Vec<(Value, String)>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("bound");
    let app = axum::Router::new().route(
        "/api/v2/audit",
        axum::routing::get(move |headers: HeaderMap, RawQuery(query): RawQuery| {
            let rows = rows.clone();
            async move {
                if !headers.contains_key("coder-session-token") {
                    return (
                        StatusCode::UNAUTHORIZED,
                        r#"{"message":"no token"}"#.to_owned(),
                    )
                        .into_response();
                }
                let params: Vec<(String, String)> =
                    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                        .into_owned()
                        .collect();
                let param = |name: &str| {
                    params
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let q = param("q");
                let term = |key: &str| {
                    q.split_whitespace()
                        .find_map(|t| t.strip_prefix(key).map(str::to_owned))
                };
                let (from, to) = (term("date_from:"), term("date_to:"));
                let matching: Vec<&String> = rows
                    .iter()
                    .filter(|(row, _)| {
                        let d = day(&row["time"]);
                        from.as_deref().is_none_or(|f| d >= f)
                            && to.as_deref().is_none_or(|t| d <= t)
                    })
                    .map(|(_, text)| text)
                    .collect();
                let limit: usize = param("limit").parse().unwrap_or(100);
                let limit = if limit == 0 { 100 } else { limit };
                let offset: usize = param("offset").parse().unwrap_or(0);
                let page: Vec<&str> = matching
                    .iter()
                    .skip(offset)
                    .take(limit)
                    .map(|t| t.as_str())
                    .collect();
                let body = format!(
                    r#"{{"audit_logs":[{}],"count":{},"count_cap":2000}}"#,
                    page.join(","),
                    matching.len().min(2001)
                );
                (StatusCode::OK, [("content-type", "application/json")], body).into_response()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
#[ignore = "needs Coder's fixtures outside the repository; .ci/run runs it"]
async fn coders_own_fixtures_come_back_exact_on_every_surface() {
    let rows = Arc::new(fixtures());
    assert_eq!(rows.len(), 29, "Coder's 29 fixture rows");
    let upstream = fixture_coder(rows.clone()).await;
    let gateway = gateway(&upstream, &[]).await;
    let page: Value = serde_json::from_str(&format!(
        r#"{{"audit_logs":[{}],"count":{},"count_cap":2000}}"#,
        rows.iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(","),
        rows.len()
    ))
    .expect("page");

    // GraphQL: async-graphql answers the first request, a compiled plan the second.
    for path in ["async-graphql", "plan"] {
        let body = gateway.graphql_page("tok-en", "", 100, 0).await;
        assert_eq!(body, expected_graphql_page(&page), "GraphQL through {path}");
    }

    // gRPC: the page, and an export streamed in small batches.
    let grpc = gateway.grpc_page("tok-en", "", 100, 0).await.expect("page");
    assert_grpc_matches(&page, &grpc);
    let (exported, ended) = gateway.grpc_export("tok-en", String::new(), 7).await;
    assert!(ended.is_none(), "{ended:?}");
    assert_eq!(exported.len(), rows.len());
    for (log, (row, _)) in exported.iter().zip(rows.iter()) {
        assert_eq!(
            grpc_json(log),
            expected_grpc(row),
            "exported row {}",
            row["id"]
        );
    }

    // NDJSON and the export command: Coder's bytes, in order.
    let expected: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    let ndjson = gateway.ndjson_text("tok-en", "page_size=5").await;
    assert_eq!(ndjson.lines().collect::<Vec<_>>(), expected, "NDJSON");
    // The command runs beside this runtime, which serves the fake Coder meanwhile.
    let coder = upstream.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_coder-audit-gateway"))
            .arg("export")
            .args(["--coder-url", &coder, "--page-size", "6"])
            .env("CODER_SESSION_TOKEN", "tok-en")
            .env_remove("CODER_URL")
            .output()
    })
    .await
    .expect("joined")
    .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = String::from_utf8(output.stdout).expect("UTF-8");
    assert_eq!(written.lines().collect::<Vec<_>>(), expected, "export");
}
