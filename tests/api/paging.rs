//! Cursor pages against the demo Coder, which shuffles ties on every call: `ListAuditLogs`
//! with AIP-158 page tokens, and `auditLogs(after:)` as a Relay connection. Every row comes
//! once, newest first, under inserts, removals and ties across a page boundary; each page
//! repeats the first page's count; bad, foreign and misused tokens are refused naming the
//! argument.

use std::collections::HashSet;

use coder_audit_gateway::{
    demo::{self, DEMO_TOKEN, DemoConfig, DemoHandle},
    grpc::pb,
};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{Gateway, gateway};

/// A gateway before a demo of `rows` rows (ties shuffled), plus `tied` rows recorded at the
/// newest row's time, so that a group of ties straddles the first pages' boundaries.
async fn demo_gateway(rows: usize, tied: usize) -> (Gateway, DemoHandle) {
    let (addr, handle) = demo::spawn_with_handle(DemoConfig {
        rows,
        shuffle_ties: true,
        ..DemoConfig::default()
    })
    .await
    .expect("demo starts");
    if tied > 0 {
        handle.record(tied, true);
    }
    (gateway(&format!("http://{addr}"), &[]).await, handle)
}

/// One `ListAuditLogs` call.
async fn grpc_list(
    gateway: &Gateway,
    q: &str,
    limit: i32,
    offset: i32,
    page_token: &str,
) -> Result<pb::ListAuditLogsResponse, tonic::Status> {
    gateway
        .grpc_filtered(
            DEMO_TOKEN,
            pb::ListAuditLogsRequest {
                q: q.to_owned(),
                limit,
                offset,
                page_token: page_token.to_owned(),
                ..Default::default()
            },
        )
        .await
}

/// Pages through `q` with page tokens, `between` run after each page; returns the ids in
/// order and checks every page's count against the first.
async fn grpc_pages(
    gateway: &Gateway,
    q: &str,
    limit: i32,
    mut between: impl FnMut(usize),
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = String::new();
    let mut count = None;
    let mut times: Vec<String> = Vec::new();
    for page in 0..10_000 {
        let response = grpc_list(gateway, q, limit, 0, &token)
            .await
            .expect("a page");
        assert!(
            response.audit_logs.len() <= usize::try_from(limit).expect("limit"),
            "a page holds at most limit rows"
        );
        let first = *count.get_or_insert((response.count, response.count_cap));
        assert_eq!(
            (response.count, response.count_cap),
            first,
            "the first page's count"
        );
        for log in response.audit_logs {
            times.push(
                log.time
                    .map(|t| format!("{:020}.{:09}", t.seconds, t.nanos))
                    .expect("time"),
            );
            ids.push(log.id);
        }
        if response.next_page_token.is_empty() {
            break;
        }
        assert!(page < 9_999, "paging ends");
        between(page);
        token = response.next_page_token;
    }
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    ids
}

/// The ids of the demo's trail as it stands, matching nothing but all rows.
fn trail(handle: &DemoHandle) -> Vec<String> {
    handle.snapshot().into_iter().map(|(id, _)| id).collect()
}

fn assert_once(delivered: &[String], expected: &[String]) {
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "no row twice");
    let mut sorted = delivered.to_vec();
    sorted.sort();
    let mut want = expected.to_vec();
    want.sort();
    assert_eq!(sorted.len(), want.len(), "every row once");
    assert_eq!(sorted, want, "every row once");
}

#[tokio::test]
async fn page_tokens_page_the_whole_trail_once_with_ties_across_boundaries() {
    let (gateway, handle) = demo_gateway(1500, 45).await;
    let expected = trail(&handle);
    for limit in [20, 100] {
        let calls = handle.audit_calls();
        let mut pages = 1;
        let delivered = grpc_pages(&gateway, "", limit, |_| pages += 1).await;
        assert_once(&delivered, &expected);
        // One windowed call a page in the common case; ties and a last probe take more.
        let calls = handle.audit_calls() - calls;
        assert!(
            calls <= pages + pages / 4 + 2,
            "{calls} calls for {pages} pages of {limit}"
        );
    }
    // A filtered query pages its own rows only.
    let logins: Vec<String> = (demo_rows(&gateway, "action:login").await)
        .into_iter()
        .collect();
    let delivered = grpc_pages(&gateway, "action:login", 7, |_| {}).await;
    assert_once(&delivered, &logins);
}

/// Every row id `q` matches, read as one page from Coder through the gateway.
async fn demo_rows(gateway: &Gateway, q: &str) -> Vec<String> {
    let response = grpc_list(gateway, q, 1000, 0, "").await.expect("a page");
    assert!(response.count < 1000);
    response.audit_logs.into_iter().map(|log| log.id).collect()
}

#[tokio::test]
async fn page_tokens_hold_under_inserts_and_removals_between_pages() {
    let (gateway, handle) = demo_gateway(900, 12).await;
    let at_start = trail(&handle);
    let mut removed = HashSet::new();
    let delivered = {
        let handle = handle.clone();
        let removed = &mut removed;
        grpc_pages(&gateway, "", 50, move |page| {
            // New rows above, a delivered row and a row still to come removed.
            handle.record(3, page % 2 == 0);
            let now = trail(&handle);
            let ahead = now[now.len() / 2 + page].clone();
            if handle.remove(&ahead) {
                removed.insert(ahead);
            }
            let above = now[3 + page].clone();
            if handle.remove(&above) {
                removed.insert(above);
            }
        })
        .await
    };
    let expected: Vec<String> = at_start
        .into_iter()
        .filter(|id| !removed.contains(id))
        .collect();
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "no row twice");
    // Rows removed after they were delivered were delivered once; rows recorded since the
    // first page are above it and not part of this paging.
    let delivered_set: HashSet<&String> = delivered.iter().collect();
    for id in &expected {
        assert!(delivered_set.contains(id), "row {id} was delivered");
    }
    for id in &delivered {
        assert!(
            expected.contains(id) || removed.contains(id),
            "row {id} was in the trail at the start"
        );
    }
}

#[tokio::test]
async fn page_tokens_are_refused_when_bad_foreign_or_combined_with_offset() {
    let (gateway, _handle) = demo_gateway(300, 0).await;
    let first = grpc_list(&gateway, "", 10, 0, "")
        .await
        .expect("first page");
    let token = first.next_page_token;
    assert!(!token.is_empty());
    let refused = |status: tonic::Status, field: &str| {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{status:?}");
    };
    refused(
        grpc_list(&gateway, "", 10, 0, "not-a-token")
            .await
            .expect_err("malformed"),
        "page_token",
    );
    let mut cut = token.clone();
    cut.pop();
    refused(
        grpc_list(&gateway, "", 10, 0, &cut).await.expect_err("cut"),
        "page_token",
    );
    refused(
        grpc_list(&gateway, "action:login", 10, 0, &token)
            .await
            .expect_err("another query"),
        "another",
    );
    refused(
        grpc_list(&gateway, "", 10, 10, &token)
            .await
            .expect_err("offset"),
        "offset",
    );
    // An export cursor is no page token, and a page token no export cursor.
    let (_, watch_cursor) = ndjson_head(&gateway).await;
    refused(
        grpc_list(&gateway, "", 10, 0, &watch_cursor)
            .await
            .expect_err("a stream's cursor"),
        "stream's cursor",
    );
    let (rows, ended) = gateway.grpc_export(DEMO_TOKEN, token.clone(), 0).await;
    assert!(rows.is_empty());
    let ended = ended.expect("refused");
    assert_eq!(ended.code(), Code::InvalidArgument, "{ended:?}");
    assert!(ended.message().contains("page token"), "{ended:?}");
    // An old token still reads the page after it, however often.
    let second = grpc_list(&gateway, "", 10, 0, &token)
        .await
        .expect("second page");
    let again = grpc_list(&gateway, "", 10, 0, &token).await.expect("again");
    let ids = |r: &pb::ListAuditLogsResponse| {
        r.audit_logs
            .iter()
            .map(|l| l.id.clone())
            .collect::<Vec<_>>()
    };
    let mut a = ids(&second);
    let mut b = ids(&again);
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(second.audit_logs.len(), 10);
}

/// The NDJSON export's watch cursor header (a stream's cursor), and the status.
async fn ndjson_head(gateway: &Gateway) -> (u16, String) {
    let response = crate::helpers::http()
        .get(format!(
            "http://{}/audit-logs/export?page_size=10",
            gateway.addr
        ))
        .header("coder-session-token", DEMO_TOKEN)
        .send()
        .await
        .expect("answers");
    let cursor = response.headers()["x-watch-cursor"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    (response.status().as_u16(), cursor)
}
/// Pages `auditLogs` as a Relay connection (`after: endCursor`); returns the ids in order,
/// checking that `edges`, `nodes` and each edge's cursor agree.
async fn graphql_pages(gateway: &Gateway, limit: i32) -> Vec<String> {
    let query = "query($after: String, $limit: Int!) { auditLogs(limit: $limit, after: $after) { count edges { cursor node { id time } } nodes { id } pageInfo { endCursor hasNextPage } } }";
    let mut after = Value::Null;
    let mut ids = Vec::new();
    for _ in 0..10_000 {
        let (_, body) = gateway
            .graphql_with(
                query,
                json!({"after": after, "limit": limit}),
                &[("coder-session-token", DEMO_TOKEN)],
            )
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        let page = &body["data"]["auditLogs"];
        let edges = page["edges"].as_array().expect("edges");
        let nodes = page["nodes"].as_array().expect("nodes");
        assert_eq!(edges.len(), nodes.len());
        for (edge, node) in edges.iter().zip(nodes) {
            assert_eq!(edge["node"]["id"], node["id"]);
            assert!(edge["cursor"].is_string());
            ids.push(node["id"].as_str().expect("id").to_owned());
        }
        if let Some(last) = edges.last() {
            assert_eq!(last["cursor"], page["pageInfo"]["endCursor"], "{body}");
        }
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    ids
}

#[tokio::test]
async fn a_relay_connection_pages_the_whole_trail_once() {
    let (gateway, handle) = demo_gateway(700, 30).await;
    let expected = trail(&handle);
    let delivered = graphql_pages(&gateway, 25).await;
    assert_once(&delivered, &expected);
    // An edge's cursor resumes right after its row (on a trail without ties at its top,
    // where the rows after a row are the same in every listing).
    let (gateway, _handle) = demo_gateway(100, 0).await;
    let query = "{ auditLogs(limit: 5) { edges { cursor node { id } } } }";
    let (_, body) = gateway
        .graphql_with(query, json!({}), &[("coder-session-token", DEMO_TOKEN)])
        .await;
    let edges = body["data"]["auditLogs"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    let cursor = edges[1]["cursor"].as_str().expect("cursor");
    let query = "query($after: String) { auditLogs(limit: 3, after: $after) { nodes { id } } }";
    let (_, body) = gateway
        .graphql_with(
            query,
            json!({"after": cursor}),
            &[("coder-session-token", DEMO_TOKEN)],
        )
        .await;
    let next: Vec<&str> = body["data"]["auditLogs"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().expect("id"))
        .collect();
    let want: Vec<&str> = edges[2..5]
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id"))
        .collect();
    let (mut next, mut want) = (next, want);
    next.sort_unstable();
    want.sort_unstable();
    assert_eq!(next, want, "{body}");
}

#[tokio::test]
async fn graphql_refuses_a_bad_after_and_after_with_offset() {
    let (gateway, _handle) = demo_gateway(100, 0).await;
    let query = "query($after: String, $offset: Int) { auditLogs(limit: 5, after: $after, offset: $offset) { nodes { id } } }";
    for (variables, field) in [
        (json!({"after": "garbage"}), "after"),
        (json!({"after": "garbage", "offset": 3}), "offset"),
    ] {
        let (_, body) = gateway
            .graphql_with(query, variables, &[("coder-session-token", DEMO_TOKEN)])
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        assert!(body.to_string().contains(field), "{body}");
        assert_eq!(body["data"], Value::Null, "{body}");
    }
}
