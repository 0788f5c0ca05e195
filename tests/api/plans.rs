//! Compiled operations and automatic persisted queries, over HTTP: the exact request
//! sequences Apollo Client and urql send, the selection order of answers written by a plan,
//! and the cache's counters in `/metrics`.

use axum::http::StatusCode;
use coder_audit_gateway::demo::{DEMO_TOKEN, DemoConfig};
use serde_json::{Value, json};

use crate::helpers::{Gateway, demo_upstream, gateway, graphql_code, http};

const QUERY: &str = "query RecentLogins($limit: Int!) { auditLogs(limit: $limit, q: \"action:login\") { count auditLogs { time id action user { username } } } }";

/// Apollo Client 3's `Accept` (its default), Apollo Client 4's, and urql's.
const APOLLO_3_ACCEPT: &str = "*/*";
const APOLLO_4_ACCEPT: &str = "application/graphql-response+json,application/json;q=0.9";
const URQL_ACCEPT: &str = "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed";

fn sha256_hex(text: &str) -> String {
    use std::fmt::Write as _;
    let digest = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes());
    digest.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

fn persisted(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

/// POSTs `body` as JSON with `accept`; the status and the body as text.
async fn post(gateway: &Gateway, body: &Value, accept: &str) -> (StatusCode, String) {
    let request = http()
        .post(format!("http://{}/graphql", gateway.addr))
        .header("content-type", "application/json")
        .body(body.to_string());
    send(request, accept).await
}

/// GETs `/graphql` with `params` URL-encoded, as clients send hashed queries.
async fn get(gateway: &Gateway, params: &[(&str, String)], accept: &str) -> (StatusCode, String) {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    send(
        http().get(format!("http://{}/graphql?{query}", gateway.addr)),
        accept,
    )
    .await
}

/// Sends `request` as the demo owner, accepting `accept`.
async fn send(request: reqwest::RequestBuilder, accept: &str) -> (StatusCode, String) {
    let response = request
        .header("accept", accept)
        .header("coder-session-token", DEMO_TOKEN)
        .send()
        .await
        .expect("gateway answers");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, text)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON body")
}

/// The data of an answer, without `extensions` (Coder's request id differs per request).
fn data(text: &str) -> Value {
    let body = json(text);
    assert!(body.get("errors").is_none(), "no errors: {text}");
    body["data"].clone()
}

#[tokio::test]
async fn apollo_clients_send_a_hash_then_the_document_once() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &[]).await;
    let variables = json!({"limit": 3});
    for (accept, not_found_status) in [
        (APOLLO_3_ACCEPT, StatusCode::OK),
        (APOLLO_4_ACCEPT, StatusCode::BAD_REQUEST),
    ] {
        // Each client version against a fresh cache entry: the hash of a renamed operation.
        let document = QUERY.replace(
            "RecentLogins",
            &format!("RecentLogins{}", not_found_status.as_u16()),
        );
        let hash = sha256_hex(&document);
        let name = document
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.split('(').next())
            .expect("name");
        // 1. The hash alone.
        let hashed =
            json!({"operationName": name, "variables": variables, "extensions": persisted(&hash)});
        let (status, text) = post(&gateway, &hashed, accept).await;
        assert_eq!(status, not_found_status, "{text}");
        let body = json(&text);
        assert_eq!(graphql_code(&body), "PERSISTED_QUERY_NOT_FOUND");
        assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
        assert!(body.get("data").is_none());
        // 2. The document with its hash: answered, and kept.
        let full = json!({"operationName": name, "variables": variables, "query": document, "extensions": persisted(&hash)});
        let (status, text) = post(&gateway, &full, accept).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let expected = data(&text);
        assert_eq!(
            expected["auditLogs"]["auditLogs"].as_array().map(Vec::len),
            Some(3)
        );
        // 3. From now on the hash is enough, by POST and by GET.
        let (status, text) = post(&gateway, &hashed, accept).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(data(&text), expected);
        let (status, text) = get(
            &gateway,
            &[
                ("operationName", name.to_owned()),
                ("variables", variables.to_string()),
                ("extensions", persisted(&hash).to_string()),
            ],
            accept,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(data(&text), expected);
    }
    // The hash names the document, not the variables: other variables, other rows.
    let hashed = json!({"operationName": "RecentLogins200", "variables": {"limit": 1}, "extensions": persisted(&sha256_hex(&QUERY.replace("RecentLogins", "RecentLogins200")))});
    let (_, text) = post(&gateway, &hashed, APOLLO_3_ACCEPT).await;
    assert_eq!(
        data(&text)["auditLogs"]["auditLogs"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn urql_sends_the_hash_by_get_then_the_document_by_post() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &[]).await;
    let document = "query Urql { auditLogs(limit: 2) { count auditLogs { id } } }";
    let hash = sha256_hex(document);
    let params = [
        ("operationName", "Urql".to_owned()),
        ("variables", "{}".to_owned()),
        ("extensions", persisted(&hash).to_string()),
    ];
    let (status, text) = get(&gateway, &params, URQL_ACCEPT).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert_eq!(graphql_code(&json(&text)), "PERSISTED_QUERY_NOT_FOUND");
    let full = json!({"operationName": "Urql", "variables": {}, "query": document, "extensions": persisted(&hash)});
    let (status, text) = post(&gateway, &full, URQL_ACCEPT).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let expected = data(&text);
    let (status, text) = get(&gateway, &params, URQL_ACCEPT).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(data(&text), expected);
}

#[tokio::test]
async fn a_hash_that_does_not_match_its_document_is_refused() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &[]).await;
    let document = "{ auditLogs(limit: 1) { count } }";
    let wrong = sha256_hex("{ auditLogs(limit: 2) { count } }");
    for accept in [APOLLO_3_ACCEPT, URQL_ACCEPT] {
        let (status, text) = post(
            &gateway,
            &json!({"query": document, "extensions": persisted(&wrong)}),
            accept,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert_eq!(graphql_code(&json(&text)), "PERSISTED_QUERY_HASH_MISMATCH");
    }
    // The refused pair was not kept: the wrong hash is still unknown.
    let (_, text) = post(
        &gateway,
        &json!({"extensions": persisted(&wrong)}),
        APOLLO_3_ACCEPT,
    )
    .await;
    assert_eq!(graphql_code(&json(&text)), "PERSISTED_QUERY_NOT_FOUND");
    for extensions in [
        json!({"persistedQuery": {"version": 2, "sha256Hash": wrong}}),
        json!({"persistedQuery": {"version": 1, "sha256Hash": "not-hex"}}),
        json!({"persistedQuery": "yes"}),
    ] {
        let (status, text) = post(
            &gateway,
            &json!({"query": document, "extensions": extensions}),
            APOLLO_3_ACCEPT,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert_eq!(graphql_code(&json(&text)), "BAD_REQUEST");
    }
}

#[tokio::test]
async fn disabled_persisted_queries_say_so_and_documents_still_work() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    for flags in [&["--disable-apq"][..], &["--operation-cache-size", "0"][..]] {
        let gateway = gateway(&upstream, flags).await;
        let document = "query Off { auditLogs(limit: 1) { count } }";
        let hash = sha256_hex(document);
        let hashed = json!({"operationName": "Off", "extensions": persisted(&hash)});
        let (status, text) = post(&gateway, &hashed, APOLLO_3_ACCEPT).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let body = json(&text);
        assert_eq!(graphql_code(&body), "PERSISTED_QUERY_NOT_SUPPORTED");
        assert_eq!(body["errors"][0]["message"], "PersistedQueryNotSupported");
        // Apollo Client then resends the document without the extension.
        let (status, text) = post(
            &gateway,
            &json!({"operationName": "Off", "query": document}),
            APOLLO_3_ACCEPT,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(data(&text)["auditLogs"]["count"].as_i64().is_some());
    }
}

/// The keys of the object at `pointer` in the answer's text, in the order written.
fn keys(text: &str, pointer: &str) -> Vec<String> {
    json(text)
        .pointer(pointer)
        .and_then(Value::as_object)
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn compiled_answers_follow_the_selection_order_and_are_counted() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &[]).await;
    let document = "{ zeta: auditLogs(limit: 2) { count auditLogs { time id action user { username id } } } alpha: __typename ...Root } fragment Root on Query { mid: auditLogs(limit: 1) { countCap } }";
    let body = json!({"query": document});
    let metric = |text: &str, result: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "gateway_graphql_operation_cache_total{{result=\"{result}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let before = gateway.get("/metrics").await.text().await.expect("metrics");
    let (_, first) = post(&gateway, &body, APOLLO_3_ACCEPT).await;
    let (_, second) = post(&gateway, &body, APOLLO_3_ACCEPT).await;
    let after = gateway.get("/metrics").await.text().await.expect("metrics");
    // The first answer comes from async-graphql, the second from the plan: the same data,
    // in the order the query selects it, the root included (async-graphql's own answer is
    // put back in that order).
    assert_eq!(data(&first), data(&second));
    for answer in [&first, &second] {
        assert_eq!(keys(answer, "/data"), ["zeta", "alpha", "mid"]);
        assert_eq!(keys(answer, "/data/zeta"), ["count", "auditLogs"]);
        assert_eq!(
            keys(answer, "/data/zeta/auditLogs/0"),
            ["time", "id", "action", "user"]
        );
        assert_eq!(
            keys(answer, "/data/zeta/auditLogs/0/user"),
            ["username", "id"]
        );
    }
    // Metrics are process-wide and other tests run alongside: at least this miss and hit.
    assert!(metric(&after, "miss") > metric(&before, "miss"), "{after}");
    assert!(metric(&after, "hit") > metric(&before, "hit"), "{after}");
    assert!(
        after.contains("gateway_graphql_executions_total{executor=\"plan\"}"),
        "{after}"
    );
}
