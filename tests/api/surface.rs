//! The served surface: `GraphiQL`, GET queries, unknown paths, the demo mode, the committed
//! schema, and shutdown.

use std::time::Duration;

use clap::Parser;
use coder_audit_gateway::{config::Config, demo::DEMO_TOKEN, graphql, startup::Application};
use serde_json::json;

use crate::helpers::{demo_gateway, fake_coder, response};

#[tokio::test]
async fn graphiql_get_queries_and_unknown_paths() {
    let (gateway, _) = demo_gateway().await;
    let page = gateway.get("/graphql").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("graphiql"), "not GraphiQL");
    assert!(
        !html.contains(DEMO_TOKEN),
        "a real upstream's GraphiQL must not carry a token"
    );

    let typename = gateway.get("/graphql?query=%7B__typename%7D").await;
    assert_eq!(typename.status(), 200);
    assert_eq!(
        typename.text().await.expect("body"),
        r#"{"data":{"__typename":"Query"}}"#
    );

    assert_eq!(gateway.get("/nope").await.status(), 404);

    let (_, body) = gateway
        .graphql_with("{ __schema { queryType { name } } }", json!({}), &[])
        .await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "Query",
        "introspection needs no token"
    );

    let mut client = gateway.grpc().await;
    let status = client
        .list_audit_logs(coder_audit_gateway::grpc::pb::ListAuditLogsRequest {
            q: String::new(),
            limit: 1,
            offset: 0,
            ..Default::default()
        })
        .await
        .expect_err("no token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn without_a_coder_url_the_demo_serves_both_protocols_and_graphiql_carries_the_token() {
    let config = Config::try_parse_from(["gw", "--listen", "127.0.0.1:0"]).expect("args");
    let app = Application::build(&config).await.expect("starts");
    assert!(app.is_demo());
    let addr = app.local_addr().expect("addr");
    tokio::spawn(app.run_until(std::future::pending()));

    let html = crate::helpers::http()
        .get(format!("http://{addr}/graphql"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains(DEMO_TOKEN),
        "GraphiQL should pre-fill the demo token"
    );

    let body = crate::helpers::http()
        .post(format!("http://{addr}/graphql"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {DEMO_TOKEN}"))
        .body(r#"{"query":"{ auditLogs(limit: 3) { count auditLogs { action } } }"}"#)
        .send()
        .await
        .expect("post")
        .bytes()
        .await
        .expect("body");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["data"]["auditLogs"]["count"], 320, "{body}");
    assert_eq!(
        body["data"]["auditLogs"]["auditLogs"]
            .as_array()
            .expect("rows")
            .len(),
        3
    );

    let mut client =
        coder_audit_gateway::grpc::pb::audit_service_client::AuditServiceClient::connect(format!(
            "http://{addr}"
        ))
        .await
        .expect("connects");
    let mut request = tonic::Request::new(coder_audit_gateway::grpc::pb::ListAuditLogsRequest {
        q: "action:login".into(),
        limit: 2,
        offset: 0,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("coder-session-token", DEMO_TOKEN.parse().expect("ascii"));
    let page = client
        .list_audit_logs(request)
        .await
        .expect("page")
        .into_inner();
    assert_eq!(page.audit_logs.len(), 2);
    assert!(page.audit_logs.iter().all(|l| l.action == "login"));
}

#[test]
fn committed_schema_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let sdl = graphql::schema_builder().finish().sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &sdl).expect("write schema.graphql");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql is out of date; regenerate it with `UPDATE_SCHEMA=1 cargo test committed_schema` and commit it"
    );
}

#[tokio::test]
async fn shutdown_finishes_even_with_a_connection_held_open() {
    let fake = fake_coder(|| async {
        response(200, "application/json", r#"{"audit_logs":[],"count":0}"#)
    })
    .await;
    let config = Config::try_parse_from([
        "gw",
        "--listen",
        "127.0.0.1:0",
        "--coder-url",
        &fake.url,
        "--shutdown-grace",
        "300ms",
    ])
    .expect("args");
    let app = Application::build(&config).await.expect("starts");
    let addr = app.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    // An idle HTTP/2 connection that the client keeps open.
    let mut client =
        coder_audit_gateway::grpc::pb::audit_service_client::AuditServiceClient::connect(format!(
            "http://{addr}"
        ))
        .await
        .expect("connects");
    let mut request = tonic::Request::new(coder_audit_gateway::grpc::pb::ListAuditLogsRequest {
        q: String::new(),
        limit: 1,
        offset: 0,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("coder-session-token", "tok-en".parse().expect("ascii"));
    client
        .list_audit_logs(request)
        .await
        .expect("served before shutdown");

    stop.send(()).expect("server listening for shutdown");
    let result = tokio::time::timeout(Duration::from_secs(60), server).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "server did not stop: {result:?}"
    );
    assert!(
        crate::helpers::http()
            .get(format!("http://{addr}/graphql"))
            .send()
            .await
            .is_err(),
        "still accepting after shutdown"
    );
    drop(client);
}

#[tokio::test]
async fn graphql_over_http_status_codes_follow_the_negotiated_media_type() {
    let (gateway, _) = demo_gateway().await;
    let url = format!("http://{}/graphql", gateway.addr);
    let post = |accept: &'static str, content_type: Option<&'static str>, body: &'static str| {
        let mut request = crate::helpers::http()
            .post(&url)
            .header("accept", accept)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        async move {
            let response = request.send().await.expect("answers");
            let status = response.status().as_u16();
            let content_type = response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .to_owned();
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
            (status, content_type, body)
        }
    };
    let new = "application/graphql-response+json";

    let (status, content_type, body) =
        post(new, Some("application/json"), r#"{"query":"{"}"#).await;
    assert_eq!(
        (status, content_type.as_str()),
        (400, "application/graphql-response+json; charset=utf-8")
    );
    assert!(
        body.get("data").is_none() && body["errors"][0]["message"].is_string(),
        "{body}"
    );

    let (status, content_type, body) = post(
        "application/json",
        Some("application/json"),
        r#"{"query":"{ nope }"}"#,
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/json; charset=utf-8")
    );
    assert_eq!(body["data"], serde_json::Value::Null);

    let (status, _, _) = post(new, None, r#"{"query":"{ __typename }"}"#).await;
    assert_eq!(status, 415, "a POST without a content type is refused");
    let (status, _, _) = post(
        new,
        Some("application/json"),
        r#"{"query":"{ __typename }", "variables": "x"}"#,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) = post(new, Some("application/json"), "not json").await;
    assert_eq!(status, 400);

    // An execution error is still a GraphQL result: 200, with the error's code.
    let (status, _, body) = post(
        new,
        Some("application/json"),
        r#"{"query":"{ auditLogs(limit: 1) { count } }"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}
