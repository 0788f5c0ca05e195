//! `GraphiQL` on an air-gapped network, as HTTP sees it: every file from the gateway, cached
//! by content hash, gzipped, behind a strict policy; shared links; `GET /`; introspection as
//! a stated policy. The browser itself is driven by tests/browser (Chromium, in `.ci/run`).

use std::io::Read as _;

use coder_audit_gateway::demo::{DEMO_TOKEN, DemoConfig};
use flate2::read::GzDecoder;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{demo_upstream, gateway, graphql_code, http};

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// graphql-js 16's `getIntrospectionQuery()` shape, `TypeRef` nine `ofType`s deep, as
/// `GraphiQL` sends it: 15 levels, deeper than the default limit of 12.
const TOOL_INTROSPECTION: &str = "query IntrospectionQuery { __schema { queryType { name } mutationType { name } subscriptionType { name } types { ...FullType } directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } } } }
fragment FullType on __Type { kind name description specifiedByURL fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason } inputFields(includeDeprecated: true) { ...InputValue } interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue isDeprecated deprecationReason }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } } }";

async fn browse(addr: std::net::SocketAddr, path: &str) -> reqwest::Response {
    http()
        .get(format!("http://{addr}{path}"))
        .header(header::ACCEPT, BROWSER_ACCEPT)
        .send()
        .await
        .expect("gateway answers")
}

/// Every `src="…"` and `href="…"` of the page.
fn references(html: &str) -> Vec<String> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attribute| {
            html.split(attribute)
                .skip(1)
                .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        })
        .collect()
}

#[tokio::test]
async fn the_page_and_every_file_it_loads_come_from_the_gateway() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &[]).await;
    let page = browse(gateway.addr, "/graphql").await;
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let policy = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    let html = page.text().await.expect("html");
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page names another origin: {html}"
    );
    assert!(!html.contains("<script>"), "an inline script: {html}");
    assert!(
        html.contains(r#"\"Coder-Session-Token\": \"\""#),
        "an empty token field for a real Coder: {html}"
    );
    assert!(html.contains("coder tokens create"), "where to get a token");

    let files: Vec<String> = references(&html)
        .into_iter()
        .filter(|r| !r.starts_with("data:"))
        .collect();
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        assert!(file.starts_with("/graphiql/"), "{file}");
        let plain = browse(gateway.addr, &file).await;
        assert_eq!(plain.status(), 200, "{file}");
        let etag = plain.headers()[header::ETAG].clone();
        assert_eq!(
            plain.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let body = plain.bytes().await.expect("body");

        let zipped = http()
            .get(format!("http://{}{file}", gateway.addr))
            .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
            .send()
            .await
            .expect("gateway answers");
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip", "{file}");
        assert_eq!(zipped.headers()[header::VARY], "accept-encoding");
        let mut unzipped = Vec::new();
        GzDecoder::new(&zipped.bytes().await.expect("body")[..])
            .read_to_end(&mut unzipped)
            .expect("gzip");
        assert_eq!(unzipped, body, "{file}");

        let cached = http()
            .get(format!("http://{}{file}", gateway.addr))
            .header(header::IF_NONE_MATCH, etag)
            .send()
            .await
            .expect("gateway answers");
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED, "{file}");
    }
    assert_eq!(
        browse(gateway.addr, "/graphiql/graphiql.min.0000000000000000.js")
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn a_shared_link_opens_graphiql_in_a_browser_and_runs_for_a_client() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &[]).await;
    let link = "/graphql?query=%7B__typename%7D";
    let page = browse(gateway.addr, link).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("id=\"graphiql\""));
    let answer = http()
        .get(format!("http://{}{link}", gateway.addr))
        .header(header::ACCEPT, "application/graphql-response+json")
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(
        answer.text().await.expect("json"),
        r#"{"data":{"__typename":"Query"}}"#
    );
}

#[tokio::test]
async fn the_root_sends_browsers_to_graphiql_and_describes_itself_in_json() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &[]).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let redirect = no_redirects
        .get(format!("http://{}/", gateway.addr))
        .header(header::ACCEPT, BROWSER_ACCEPT)
        .send()
        .await
        .expect("gateway answers");
    assert!(redirect.status().is_redirection(), "{}", redirect.status());
    assert_eq!(redirect.headers()[header::LOCATION], "/graphql");

    let index = http()
        .get(format!("http://{}/", gateway.addr))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .expect("gateway answers")
        .bytes()
        .await
        .expect("body");
    let index: Value = serde_json::from_slice(&index).expect("json");
    assert_eq!(index["graphql"]["endpoint"], "/graphql");
    assert_eq!(
        index["graphql"]["subscriptions"]["protocol"],
        "graphql-transport-ws"
    );
    assert!(
        index["grpc"]["services"]
            .as_array()
            .expect("services")
            .contains(&json!("coder.audit.v1.AuditService")),
        "{index}"
    );
    for path in [
        &index["health"]["liveness"],
        &index["health"]["readiness"],
        &index["metrics"],
    ] {
        let path = path.as_str().expect("a path");
        assert_eq!(gateway.get(path).await.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn tools_introspect_within_the_default_limits_and_data_queries_stay_bounded() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &[]).await;
    let (_, body) = gateway
        .graphql_with(TOOL_INTROSPECTION, json!({}), &[])
        .await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "Query",
        "{body}"
    );
    let deep = gateway
        .graphql_with(
            "{ a: auditLogs(limit: 1) { auditLogs { user { roles { name } } } } b: __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } }",
            json!({}),
            &[("coder-session-token", DEMO_TOKEN)],
        )
        .await;
    assert!(deep.1["errors"].is_null(), "{}", deep.1);

    let strict = crate::helpers::gateway(&upstream, &["--graphql-max-depth", "3"]).await;
    let (_, body) = strict
        .graphql_with(
            "query Q { ...F } fragment F on Query { auditLogs(limit: 1) { auditLogs { user { id } } } }",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(graphql_code(&body), "GRAPHQL_DEPTH_LIMIT", "{body}");
}

#[tokio::test]
async fn disabled_introspection_is_an_error_naming_the_flag() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &["--disable-introspection"]).await;
    for query in [
        "{ __schema { queryType { name } } }",
        "query { ...F } fragment F on Query { __type(name: \"Query\") { name } }",
        TOOL_INTROSPECTION,
    ] {
        let (status, body) = gateway
            .graphql_with(
                query,
                json!({}),
                &[("accept", "application/graphql-response+json")],
            )
            .await;
        assert_eq!(graphql_code(&body), "INTROSPECTION_DISABLED", "{body}");
        assert_eq!(status, 400, "no data was produced: {body}");
        assert!(body.get("data").is_none(), "{body}");
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains("--disable-introspection"), "{message}");
    }
    let (status, body) = gateway.graphql_with("{ __typename }", json!({}), &[]).await;
    assert_eq!(
        (status.as_u16(), &body),
        (200, &json!({"data": {"__typename": "Query"}}))
    );
    let page = browse(gateway.addr, "/graphql").await;
    assert_eq!(page.status(), 200, "GraphiQL is still served");
}
