//! The two request framings a caller controls, through the real router in-process: GraphQL
//! over HTTP (method, media types, JSON bodies built from the schema's own fields and
//! arguments, URL queries, raw bytes) and gRPC (frames of real request messages, damaged, or
//! raw bytes, to every method). No token is sent, so nothing reaches Coder: every input is
//! answered by the gateway's own parsing and validation, within a second, with no 5xx.

use std::{sync::OnceLock, time::Duration};

use axum::{Router, body::Body, http::Request};
use clap::Parser as _;
use coder_audit_gateway::{
    audit::{AuditLogs, Limits, StreamOptions},
    audit::{ClientConfig, CoderClient},
    config::Config,
    grpc::pb,
    startup::{RouterOptions, router},
};
use proptest::prelude::*;
use prost::Message as _;
use tower::ServiceExt as _;

use crate::{Counter, config, page::json};

static GRAPHQL: Counter = Counter::new("GraphQL request framing");
static GRPC: Counter = Counter::new("gRPC request decoding");

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let router = runtime.block_on(async {
            // Nothing listens here; and without a token nothing is sent anyway.
            let config =
                Config::try_parse_from(["gw", "--coder-url", "http://127.0.0.1:9"]).expect("args");
            let url = config.coder_url.clone().expect("url");
            let client = CoderClient::new(
                &url,
                ClientConfig {
                    timeout: Duration::from_secs(1),
                    retries: 0,
                    max_body: 1 << 20,
                    ca_pem: None,
                },
            )
            .expect("client");
            let audit = AuditLogs::new(client.clone(), Limits::default(), StreamOptions::default());
            router(&client, audit, &RouterOptions::from_config(&config, false))
                .expect("router")
                .0
        });
        Harness { runtime, router }
    })
}

/// Sends `request` and checks the gateway answered it by itself, in time, without a 5xx.
fn answer(request: Request<Body>) -> (u16, Vec<u8>) {
    let harness = harness();
    harness.runtime.block_on(async {
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            harness.router.clone().oneshot(request),
        )
        .await
        .expect("answered in time")
        .expect("infallible");
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .expect("body");
        assert!(
            status < 500,
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
        (status, body.to_vec())
    })
}

fn selection() -> impl Strategy<Value = String> {
    let field = prop::sample::select(vec![
        "id",
        "time",
        "action",
        "resourceType",
        "__typename",
        "count",
        "countCap",
        "auditLogs",
        "user { username roles { name } }",
        "diff { field old new }",
        "... on AuditLog { ip }",
        "...F",
        "additionalFields",
        "__schema { types { name } }",
        "a: id",
        "organization { name }",
        "@skip(if: true)",
        "@include(if: $v)",
    ]);
    prop::collection::vec(field, 0..6).prop_map(|fields| fields.join(" "))
}

fn document() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "",
            "query",
            "query Q($v: Boolean = true)",
            "subscription",
            "mutation",
            "{",
        ]),
        prop::sample::select(vec![
            "",
            "(limit: 1)",
            "(limit: -1)",
            "(limit: 1, q: \"x\")",
            "(limit: 2147483647, offset: 1)",
            "(filter: {action: LOGIN}, limit: 1)",
            "(limit: \"1\")",
        ]),
        selection(),
        prop::sample::select(vec![
            "",
            "fragment F on AuditLog { id }",
            "fragment F on F { ...F }",
            "}",
        ]),
        ".{0,8}",
    )
        .prop_map(|(head, args, fields, tail, noise)| {
            format!("{head} {{ auditLogs{args} {{ {fields} }} }} {tail}{noise}")
        })
}

fn graphql_request() -> impl Strategy<Value = Request<Body>> {
    let media = prop::sample::select(vec![
        "application/json",
        "application/json; charset=utf-8",
        "application/graphql-response+json",
        "application/graphql",
        "text/plain",
        "multipart/form-data; boundary=x",
        "",
    ]);
    let body = prop_oneof![
        (document(), json(), ".{0,12}").prop_map(|(query, variables, name)| {
            serde_json::json!({"query": query, "variables": variables, "operationName": name})
                .to_string()
                .into_bytes()
        }),
        json().prop_map(|value| value.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..256),
    ];
    (any::<bool>(), media.clone(), media, body, document()).prop_map(
        |(post, content_type, accept, body, query)| {
            let builder = if post {
                Request::post("/graphql").header("content-type", content_type)
            } else {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
                Request::get(format!("/graphql?query={encoded}&variables=%7B"))
            };
            builder
                .header("accept", accept)
                .body(if post {
                    Body::from(body)
                } else {
                    Body::empty()
                })
                .expect("request")
        },
    )
}

fn grpc_frame(payload: &[u8], compressed: bool, declared: Option<u32>) -> Vec<u8> {
    let mut frame = vec![u8::from(compressed)];
    let length = declared.unwrap_or(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn grpc_request() -> impl Strategy<Value = Request<Body>> {
    let method = prop::sample::select(vec![
        "/coder.audit.v1.AuditService/ListAuditLogs",
        "/coder.audit.v1.AuditService/ExportAuditLogs",
        "/coder.audit.v1.AuditService/WatchAuditLogs",
        "/coder.audit.v1.AuditService/Nope",
        "/grpc.health.v1.Health/Check",
    ]);
    let message = prop_oneof![
        (".{0,40}", any::<i32>(), any::<i32>()).prop_map(|(q, limit, offset)| {
            pb::ListAuditLogsRequest {
                q,
                limit,
                offset,
                ..Default::default()
            }
            .encode_to_vec()
        }),
        (".{0,40}", ".{0,40}").prop_map(|(q, after)| {
            pb::WatchAuditLogsRequest {
                q,
                after,
                ..Default::default()
            }
            .encode_to_vec()
        }),
        prop::collection::vec(any::<u8>(), 0..128),
    ];
    let content_type = prop::sample::select(vec![
        "application/grpc",
        "application/grpc+proto",
        "application/grpc-web+proto",
        "application/grpc-web-text",
    ]);
    (
        method,
        message,
        any::<bool>(),
        prop::option::of(any::<u32>()),
        content_type,
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(
            |(method, message, compressed, declared, content_type, trailing)| {
                let mut body = grpc_frame(&message, compressed, declared);
                body.extend_from_slice(&trailing);
                Request::post(method)
                    .header("content-type", content_type)
                    .header("te", "trailers")
                    .body(Body::from(body))
                    .expect("request")
            },
        )
}

#[test]
fn graphql_request_framing() {
    proptest!(config(), |(request in graphql_request())| {
        GRAPHQL.tick();
        let (status, body) = answer(request);
        if status == 200 {
            let _: serde_json::Value = serde_json::from_slice(&body).expect("a 200 is JSON");
        }
    });
    GRAPHQL.report();
}

#[test]
fn grpc_request_decoding() {
    proptest!(config(), |(request in grpc_request())| {
        GRPC.tick();
        let _ = answer(request);
    });
    GRPC.report();
}
