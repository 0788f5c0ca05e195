//! Token isolation at scale: thousands of interleaved requests by callers with different
//! tokens and different visibility, over GraphQL, gRPC and gRPC-Web at once, each answer
//! checked against what Coder shows that caller. A gateway that ever mixed up tokens (a
//! shared client, a cache, a pooled connection carrying another caller's header) would hand
//! one caller another's rows or another's refusal.

use std::collections::BTreeSet;

use coder_audit_gateway::{
    demo::{
        DEMO_AUDITOR_TOKEN, DEMO_EXPIRED_TOKEN, DEMO_MEMBER_TOKEN, DEMO_ORG_AUDITOR_TOKEN,
        DEMO_TOKEN, DemoConfig,
    },
    grpc::pb,
};
use futures::{StreamExt as _, stream};
use prost::Message as _;
use serde_json::json;

use crate::helpers::{Gateway, demo_upstream, gateway, http, upstream_page};

/// What a caller should get: the ids of a page and its count, or a refusal's HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
enum View {
    Page { ids: BTreeSet<String>, count: i64 },
    Refused(u16),
}

const QUERIES: [(&str, i32, i32); 4] = [
    ("", 25, 0),
    ("", 10, 40),
    ("action:login", 5, 0),
    ("resource_type:workspace_build", 7, 3),
];

async fn expected(upstream: &str, token: &str, (q, limit, offset): (&str, i32, i32)) -> View {
    let url = format!("{upstream}/api/v2/audit?q={q}&limit={limit}&offset={offset}");
    let status = http()
        .get(url)
        .header("coder-session-token", token)
        .send()
        .await
        .expect("upstream answers")
        .status()
        .as_u16();
    if status != 200 {
        return View::Refused(status);
    }
    let page = upstream_page(upstream, token, q, limit, offset).await;
    View::Page {
        ids: ids(&page["audit_logs"]),
        count: page["count"].as_i64().expect("count"),
    }
}

/// The `id` of each row of a JSON array of rows.
fn ids(rows: &serde_json::Value) -> BTreeSet<String> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|row| row["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The refusal each protocol reports for Coder's status.
fn refused_as(status: u16) -> (&'static str, tonic::Code) {
    match status {
        401 => ("UNAUTHENTICATED", tonic::Code::Unauthenticated),
        403 => ("FORBIDDEN", tonic::Code::PermissionDenied),
        other => panic!("unexpected upstream status {other}"),
    }
}

async fn via_graphql(gateway: &Gateway, token: &str, (q, limit, offset): (&str, i32, i32)) -> View {
    let (_, body) = gateway
        .graphql_with(
            "query($q: String, $limit: Int!, $offset: Int) { auditLogs(q: $q, limit: $limit, offset: $offset) { count auditLogs { id } } }",
            json!({"q": q, "limit": limit, "offset": offset}),
            &[("coder-session-token", token)],
        )
        .await;
    if let Some(code) = body["errors"][0]["extensions"]["code"].as_str() {
        return match code {
            "UNAUTHENTICATED" => View::Refused(401),
            "FORBIDDEN" => View::Refused(403),
            other => panic!("unexpected {other}: {body}"),
        };
    }
    let page = &body["data"]["auditLogs"];
    View::Page {
        ids: ids(&page["auditLogs"]),
        count: page["count"].as_i64().expect("count"),
    }
}

fn from_grpc(result: Result<pb::ListAuditLogsResponse, tonic::Status>) -> View {
    match result {
        Ok(page) => View::Page {
            ids: page.audit_logs.into_iter().map(|row| row.id).collect(),
            count: page.count,
        },
        Err(status) => View::Refused(match status.code() {
            tonic::Code::Unauthenticated => 401,
            tonic::Code::PermissionDenied => 403,
            other => panic!("unexpected {other:?}: {status:?}"),
        }),
    }
}

async fn via_grpc_web(
    gateway: &Gateway,
    token: &str,
    (q, limit, offset): (&str, i32, i32),
) -> View {
    let request = pb::ListAuditLogsRequest {
        q: q.into(),
        limit,
        offset,
        ..Default::default()
    };
    let response = gateway.grpc_web_list(token, &request).await;
    // A refusal is trailers only: the status in the response headers.
    let header_status = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = response.bytes().await.expect("body");
    if body.first() == Some(&0) {
        let length = usize::try_from(u32::from_be_bytes(body[1..5].try_into().expect("4 bytes")))
            .expect("fits");
        return from_grpc(Ok(
            pb::ListAuditLogsResponse::decode(&body[5..5 + length]).expect("message")
        ));
    }
    let status = match header_status.as_deref() {
        Some("16") => 401,
        Some("7") => 403,
        other => panic!("unexpected gRPC-Web status {other:?}"),
    };
    View::Refused(status)
}

// Two workers, so requests of different callers really run at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_interleaved_callers_each_see_only_their_own_view() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &[]).await;
    let tokens = [
        DEMO_TOKEN,
        DEMO_AUDITOR_TOKEN,
        DEMO_ORG_AUDITOR_TOKEN,
        DEMO_MEMBER_TOKEN,
        DEMO_EXPIRED_TOKEN,
    ];
    let mut views = Vec::new();
    for token in tokens {
        for query in QUERIES {
            views.push((token, query, expected(&upstream, token, query).await));
        }
    }
    // The views differ, or the test could not tell callers apart.
    let owner_count = |token: &str| {
        views.iter().find_map(|(t, _, view)| match view {
            View::Page { count, .. } if *t == token => Some(*count),
            _ => None,
        })
    };
    assert_ne!(owner_count(DEMO_TOKEN), owner_count(DEMO_ORG_AUDITOR_TOKEN));
    for (_, _, view) in &views {
        if let View::Refused(status) = view {
            refused_as(*status);
        }
    }

    let grpc = gateway.grpc().await;
    let requests = (0..2400).map(|i| {
        // Walk tokens, queries and protocols at coprime strides, so neighbours differ.
        let (token, query, view) = views[(i * 7) % views.len()].clone();
        (i % 3, token, query, view)
    });
    let mismatches: Vec<String> = stream::iter(requests)
        .map(|(protocol, token, query, view)| {
            let gateway = &gateway;
            let mut grpc = grpc.clone();
            async move {
                let got = match protocol {
                    0 => via_graphql(gateway, token, query).await,
                    1 => {
                        let mut request = tonic::Request::new(pb::ListAuditLogsRequest {
                            q: query.0.into(),
                            limit: query.1,
                            offset: query.2,
                            ..Default::default()
                        });
                        request
                            .metadata_mut()
                            .insert("coder-session-token", token.parse().expect("ascii"));
                        from_grpc(
                            grpc.list_audit_logs(request)
                                .await
                                .map(tonic::Response::into_inner),
                        )
                    }
                    _ => via_grpc_web(gateway, token, query).await,
                };
                (got != view)
                    .then(|| format!("protocol {protocol}, token {}, {query:?}", &token[..10]))
            }
        })
        .buffer_unordered(64)
        .filter_map(|mismatch| async move { mismatch })
        .collect()
        .await;
    assert!(
        mismatches.is_empty(),
        "{} mismatches, e.g. {:?}",
        mismatches.len(),
        mismatches.first()
    );
}
