//! Each row of the error table, over both protocols: the GraphQL `extensions.code`, the gRPC
//! status, a message that names the cause, and never the caller's token.

use coder_audit_gateway::demo::{
    DEMO_EXPIRED_TOKEN, DEMO_MEMBER_TOKEN, DEMO_SUSPENDED_TOKEN, DEMO_TOKEN,
};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{
    Gateway, dead_upstream, demo_gateway, fake_coder, gateway, graphql_code, raw_upstream, response,
};

/// A token shaped like Coder's, recognisable in any output.
const TOKEN: &str = "leakcheck0-LeakCheckSecret000000000";

struct Expect<'a> {
    graphql: &'a str,
    grpc: Code,
    message: &'a str,
}

async fn assert_both(
    gateway: &Gateway,
    token: &str,
    (q, limit, offset): (&str, i32, i32),
    expect: &Expect<'_>,
) -> (Value, tonic::Status) {
    let body = gateway.graphql_page(token, q, limit, offset).await;
    assert_eq!(graphql_code(&body), expect.graphql, "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains(expect.message),
        "GraphQL message {message:?} lacks {:?}",
        expect.message
    );
    assert!(!body.to_string().contains(TOKEN), "token leaked: {body}");

    let status = gateway
        .grpc_page(token, q, limit, offset)
        .await
        .expect_err("an error");
    assert_eq!(status.code(), expect.grpc, "{status:?}");
    assert!(
        status.message().contains(expect.message),
        "gRPC message {:?} lacks {:?}",
        status.message(),
        expect.message
    );
    assert!(
        !format!("{status:?}").contains(TOKEN),
        "token leaked: {status:?}"
    );
    (body, status)
}

#[tokio::test]
async fn bad_arguments_are_refused_before_any_upstream_call() {
    let fake = fake_coder(|| async { response(500, "text/plain", "must not be called") }).await;
    let gateway = gateway(&fake.url, &["--max-limit", "50"]).await;
    let bad = Expect {
        graphql: "BAD_USER_INPUT",
        grpc: Code::InvalidArgument,
        message: "",
    };
    for (args, field, text) in [
        (("", -1, 0), "limit", "limit must not be negative, got -1"),
        (("", 51, 0), "limit", "limit must be at most 50"),
        (
            ("", 10, -5),
            "offset",
            "offset must not be negative, got -5",
        ),
    ] {
        let (body, status) = assert_both(
            &gateway,
            TOKEN,
            args,
            &Expect {
                message: text,
                ..bad
            },
        )
        .await;
        assert_eq!(
            body["errors"][0]["extensions"]["validations"][0]["field"],
            field
        );
        let details = status.get_error_details();
        let violation = &details
            .bad_request()
            .expect("BadRequest details")
            .field_violations[0];
        assert_eq!(violation.field, field);
        assert!(violation.description.contains(text));
    }
    let missing = Expect {
        graphql: "UNAUTHENTICATED",
        grpc: Code::Unauthenticated,
        message: "no Coder session token",
    };
    assert_both(&gateway, "", ("", 10, 0), &missing).await;
    assert!(fake.requests().is_empty(), "the upstream was called");
}

#[tokio::test]
async fn coder_validation_errors_become_bad_user_input_with_field_violations() {
    let (gateway, _) = demo_gateway().await;
    let expect = Expect {
        graphql: "BAD_USER_INPUT",
        grpc: Code::InvalidArgument,
        message: "Invalid audit search query.",
    };
    let (body, status) = assert_both(
        &gateway,
        DEMO_TOKEN,
        ("action:fly date_from:2006", 10, 0),
        &expect,
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["validations"],
        json!([
            {"field": "date_from", "detail": "Query param \"date_from\" must be a valid date format (2006-01-02): parsing time \"2006\" as \"2006-01-02\": cannot parse \"\" as \"-\""},
            {"field": "action", "detail": "Query param \"action\" has invalid value: \"fly\" is not a valid value"}
        ])
    );
    let details = status.get_error_details();
    let violations = &details.bad_request().expect("BadRequest").field_violations;
    assert_eq!(violations.len(), 2);
    assert_eq!(violations[1].field, "action");

    let expect = Expect {
        graphql: "BAD_USER_INPUT",
        grpc: Code::InvalidArgument,
        message: "can only contain 1 ':'",
    };
    assert_both(&gateway, DEMO_TOKEN, ("a:b:c", 10, 0), &expect).await;
}

#[tokio::test]
async fn coder_auth_failures_keep_coder_words() {
    let (gateway, _) = demo_gateway().await;
    let unauthenticated = |message| Expect {
        graphql: "UNAUTHENTICATED",
        grpc: Code::Unauthenticated,
        message,
    };
    assert_both(
        &gateway,
        TOKEN,
        ("", 10, 0),
        &unauthenticated(
            "Invalid API key format: invalid API key secret length, expected 22 got 24",
        ),
    )
    .await;
    assert_both(
        &gateway,
        "notatoken",
        ("", 10, 0),
        &unauthenticated("incorrect amount of API key parts, expected 2 got 1"),
    )
    .await;
    assert_both(
        &gateway,
        "demoowner0-XXXXXXXXXXXXXXXXXXXXXX",
        ("", 10, 0),
        &unauthenticated("API key secret is invalid."),
    )
    .await;
    assert_both(
        &gateway,
        DEMO_EXPIRED_TOKEN,
        ("", 10, 0),
        &unauthenticated("API key expired at"),
    )
    .await;
    assert_both(
        &gateway,
        DEMO_SUSPENDED_TOKEN,
        ("", 10, 0),
        &unauthenticated("User is not active"),
    )
    .await;
    let forbidden = Expect {
        graphql: "FORBIDDEN",
        grpc: Code::PermissionDenied,
        message: "You don't have permission to view this content.",
    };
    assert_both(&gateway, DEMO_MEMBER_TOKEN, ("", 10, 0), &forbidden).await;
}

#[tokio::test]
async fn rate_limiting_carries_retry_after() {
    let fake = fake_coder(|| async {
        let mut r = response(
            429,
            "application/json",
            r#"{"message":"You've been rate limited for sending more than 512 requests in 1m0s."}"#,
        );
        r.headers_mut()
            .insert("retry-after", "30".parse().expect("header"));
        r
    })
    .await;
    let gateway = gateway(&fake.url, &[]).await;
    let expect = Expect {
        graphql: "RATE_LIMITED",
        grpc: Code::ResourceExhausted,
        message: "You've been rate limited",
    };
    let (body, status) = assert_both(&gateway, TOKEN, ("", 10, 0), &expect).await;
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], 30);
    assert_eq!(
        status
            .get_error_details()
            .retry_info()
            .expect("RetryInfo")
            .retry_delay,
        Some(std::time::Duration::from_secs(30))
    );
}

#[tokio::test]
async fn upstream_failures_are_classified() {
    let internal =
        r#"{"message":"An internal server error occurred.","detail":"pq: connection reset"}"#;
    let cases: Vec<(u16, &str, &'static str, Expect<'_>)> = vec![
        (
            500,
            "application/json",
            internal,
            Expect {
                graphql: "UPSTREAM_ERROR",
                grpc: Code::Internal,
                message: "An internal server error occurred. pq: connection reset",
            },
        ),
        (
            200,
            "text/html",
            "<html><body>Sign in</body></html>",
            Expect {
                graphql: "UPSTREAM_ERROR",
                grpc: Code::Internal,
                message: "not a valid audit page",
            },
        ),
        (
            200,
            "application/json",
            "garbage",
            Expect {
                graphql: "UPSTREAM_ERROR",
                grpc: Code::Internal,
                message: "not a valid audit page",
            },
        ),
        (
            200,
            "application/json",
            r#"{"audit_logs":[{"id":"x","time":"2026-"#,
            Expect {
                graphql: "UPSTREAM_ERROR",
                grpc: Code::Internal,
                message: "EOF while parsing",
            },
        ),
        (
            200,
            "application/json",
            r#"{"audit_logs":[],"count":"many"}"#,
            Expect {
                graphql: "UPSTREAM_ERROR",
                grpc: Code::Internal,
                message: "invalid type",
            },
        ),
        (
            404,
            "application/json",
            r#"{"message":"Route not found."}"#,
            Expect {
                graphql: "UPSTREAM_ERROR",
                grpc: Code::Internal,
                message: "HTTP 404: Route not found.",
            },
        ),
        (
            502,
            "text/html",
            "<html>bad gateway</html>",
            Expect {
                graphql: "UPSTREAM_UNAVAILABLE",
                grpc: Code::Unavailable,
                message: "HTTP 502",
            },
        ),
        (
            503,
            "text/plain",
            "maintenance",
            Expect {
                graphql: "UPSTREAM_UNAVAILABLE",
                grpc: Code::Unavailable,
                message: "HTTP 503",
            },
        ),
        (
            504,
            "text/plain",
            "",
            Expect {
                graphql: "UPSTREAM_UNAVAILABLE",
                grpc: Code::Unavailable,
                message: "HTTP 504",
            },
        ),
    ];
    for (status, content_type, body, expect) in cases {
        let fake = fake_coder(move || async move { response(status, content_type, body) }).await;
        let gateway = gateway(&fake.url, &[]).await;
        assert_both(&gateway, TOKEN, ("", 10, 0), &expect).await;
    }
}

#[tokio::test]
async fn a_body_cut_off_mid_transfer_is_an_upstream_error() {
    let upstream = raw_upstream(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n{\"audit_logs\":[{\"id\":").await;
    let gateway = gateway(&upstream, &[]).await;
    let expect = Expect {
        graphql: "UPSTREAM_ERROR",
        grpc: Code::Internal,
        message: "the body could not be read",
    };
    assert_both(&gateway, TOKEN, ("", 10, 0), &expect).await;
}

#[tokio::test]
async fn a_dead_upstream_is_unavailable() {
    let gateway = gateway(&dead_upstream().await, &[]).await;
    let expect = Expect {
        graphql: "UPSTREAM_UNAVAILABLE",
        grpc: Code::Unavailable,
        message: "Coder is unavailable",
    };
    assert_both(&gateway, TOKEN, ("", 10, 0), &expect).await;
}

#[tokio::test]
async fn a_slow_upstream_times_out() {
    let fake = fake_coder(std::future::pending).await;
    let gateway = gateway(&fake.url, &["--upstream-timeout", "200ms"]).await;
    let expect = Expect {
        graphql: "UPSTREAM_TIMEOUT",
        grpc: Code::DeadlineExceeded,
        message: "did not answer within 200ms",
    };
    assert_both(&gateway, TOKEN, ("", 10, 0), &expect).await;
}

/// The ids an `ExportAuditLogs` from `after` delivers, and the status it ends with, if any.
async fn export_ids(gateway: &Gateway, after: String) -> (Vec<String>, Option<tonic::Status>) {
    let (rows, ended) = gateway.grpc_export("tok-en", after, 0).await;
    (rows.into_iter().map(|log| log.id).collect(), ended)
}

/// A page with a value Coder's server never sends: a user's `created_at` of `""` (as Coder's
/// own mocks once had it) on the second row.
const BAD_VALUE_PAGE: &str = r#"{"audit_logs":[
 {"id":"row-a","request_id":"r","time":"2026-04-02T09:14:03Z","ip":"","user_agent":"","resource_type":"user","resource_id":"x","resource_target":"t","resource_icon":"","action":"write","diff":{},"status_code":200,"additional_fields":{},"description":"d","resource_link":"","is_deleted":false,"organization_id":"00000000-0000-0000-0000-000000000000","user":null},
 {"id":"row-b","request_id":"r","time":"2026-04-02T09:14:02Z","ip":"","user_agent":"","resource_type":"user","resource_id":"x","resource_target":"t","resource_icon":"","action":"write","diff":{},"status_code":200,"additional_fields":{},"description":"d","resource_link":"","is_deleted":false,"organization_id":"00000000-0000-0000-0000-000000000000","user":{"id":"u","username":"mock","email":"m@x","created_at":"","last_seen_at":"","status":"active","login_type":"password","organization_ids":[],"roles":[]}}
],"count":2,"count_cap":2000}"#;

#[tokio::test]
async fn graphql_serves_a_page_around_a_value_coder_never_sends() {
    let fake = fake_coder(|| async { response(200, "application/json", BAD_VALUE_PAGE) }).await;
    let gateway = gateway(&fake.url, &[]).await;
    // GraphQL, first through async-graphql, then through a plan (which hands the page back):
    // the rest of the page is served, the non-null createdAt nulls the nullable user above
    // it (GraphQL's null propagation), and the error at the value's path names the row and
    // the field.
    let query = "{ auditLogs(limit: 10) { auditLogs { id user { username createdAt } } } }";
    for _ in 0..2 {
        let (_, body) = gateway
            .graphql_with(query, json!({}), &[("coder-session-token", "tok-en")])
            .await;
        let rows = &body["data"]["auditLogs"]["auditLogs"];
        assert_eq!(rows[0]["id"], "row-a", "{body}");
        assert_eq!(rows[1]["id"], "row-b", "{body}");
        assert_eq!(rows[1]["user"], Value::Null, "{body}");
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
        let error = &body["errors"][0];
        assert_eq!(error["extensions"]["code"], "UPSTREAM_DATA_LOSS", "{body}");
        assert_eq!(
            error["path"],
            json!(["auditLogs", "auditLogs", 1, "user", "createdAt"])
        );
        let message = error["message"].as_str().expect("message");
        assert!(
            message.contains("row-b") && message.contains("created_at"),
            "{message}"
        );
    }
    // A nullable field is null, its key present, with the error at its path.
    let (_, body) = gateway
        .graphql_with(
            "{ auditLogs(limit: 10) { auditLogs { id user { username lastSeenAt } } } }",
            json!({}),
            &[("coder-session-token", "tok-en")],
        )
        .await;
    let user = &body["data"]["auditLogs"]["auditLogs"][1]["user"];
    assert_eq!(
        user,
        &json!({"username": "mock", "lastSeenAt": null}),
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["path"],
        json!(["auditLogs", "auditLogs", 1, "user", "lastSeenAt"]),
        "{body}"
    );
    // A field the selection skips is not an error either.
    let (_, body) = gateway
        .graphql_with(
            "query($no: Boolean!) { auditLogs(limit: 10) { auditLogs { user { username ...Created } } } } fragment Created on User { createdAt @include(if: $no) }",
            json!({"no": false}),
            &[("coder-session-token", "tok-en")],
        )
        .await;
    assert_eq!(
        body["data"]["auditLogs"]["auditLogs"][1]["user"],
        json!({"username": "mock"}),
        "{body}"
    );
    // A field the selection leaves out is not an error.
    let (_, body) = gateway
        .graphql_with(
            "{ auditLogs(limit: 10) { auditLogs { id user { username } } } }",
            json!({}),
            &[("coder-session-token", "tok-en")],
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["auditLogs"]["auditLogs"][1]["user"]["username"],
        "mock"
    );
}

#[tokio::test]
async fn a_value_coder_never_sends_is_named_by_row_and_field_over_grpc_and_ndjson() {
    let fake = fake_coder(|| async { response(200, "application/json", BAD_VALUE_PAGE) }).await;
    let gateway = gateway(&fake.url, &[]).await;

    // gRPC: DATA_LOSS, naming the row and the field, for the page and the stream.
    let status = gateway
        .grpc_page("tok-en", "", 10, 0)
        .await
        .expect_err("DATA_LOSS");
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    assert!(
        status.message().contains("row-b") && status.message().contains("user.created_at"),
        "{status:?}"
    );
    let (delivered, ended) = export_ids(&gateway, String::new()).await;
    let ended = ended.expect("the export ends naming the bad value");
    assert_eq!(ended.code(), Code::DataLoss, "{ended:?}");
    assert!(ended.message().contains("row-b"), "{ended:?}");
    assert_eq!(
        delivered,
        ["row-a"],
        "the rows before the bad one are delivered"
    );
    // The status carries the cursor past the bad row: a resume goes on from there.
    let details = ended.get_error_details();
    let cursor = details
        .error_info()
        .and_then(|info| info.metadata.get("cursor"))
        .expect("a resume cursor");
    let (after, ended) = export_ids(&gateway, cursor.clone()).await;
    assert!(ended.is_none(), "no error past the bad row: {ended:?}");
    assert!(after.is_empty(), "nothing is left past row-b: {after:?}");

    // NDJSON passes Coder's bytes and reads only id and time: every row comes through.
    let text = gateway.ndjson_text("tok-en", "").await;
    assert_eq!(text.lines().count(), 2, "{text}");
}

#[tokio::test]
async fn an_unreadable_non_null_row_field_nulls_data_through_its_root_field() {
    let mut page: Value = serde_json::from_str(BAD_VALUE_PAGE).expect("fixture");
    page["audit_logs"][1]["status_code"] = json!("200");
    let page: &'static str = Box::leak(page.to_string().into_boxed_str());
    let fake = fake_coder(move || async move { response(200, "application/json", page) }).await;
    let gateway = gateway(&fake.url, &[]).await;
    // Every type from the row up to the root field is non-null: the null reaches `data`
    // itself (GraphQL's null propagation), with the error at the value's path, though
    // another root field does not select the value. Twice: compiled plan and reference.
    let query = "{ bad: auditLogs(limit: 10) { auditLogs { id statusCode } } good: auditLogs(limit: 10) { auditLogs { id } } }";
    for _ in 0..2 {
        let (_, body) = gateway
            .graphql_with(query, json!({}), &[("coder-session-token", "tok-en")])
            .await;
        assert_eq!(body["data"], Value::Null, "{body}");
        let error = &body["errors"][0];
        assert_eq!(
            error["path"],
            json!(["bad", "auditLogs", 1, "statusCode"]),
            "{body}"
        );
        assert_eq!(error["extensions"]["code"], "UPSTREAM_DATA_LOSS");
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
    }
}

#[tokio::test]
async fn exports_name_a_row_whose_time_cannot_be_read() {
    let mut page: Value = serde_json::from_str(BAD_VALUE_PAGE).expect("fixture");
    page["audit_logs"][1]["time"] = json!("yesterday");
    let page: &'static str = Box::leak(page.to_string().into_boxed_str());
    let fake = fake_coder(move || async move { response(200, "application/json", page) }).await;
    let gateway = gateway(&fake.url, &[]).await;
    // NDJSON reads each row's id and time: the error line names the row and the field.
    let text = gateway.ndjson_until_end("tok-en", "").await;
    let line: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("JSON");
    assert_eq!(line["error"]["code"], "UPSTREAM_DATA_LOSS", "{text}");
    let message = line["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("row-b") && message.contains("time"),
        "{message}"
    );
    // gRPC says the same, as DATA_LOSS.
    let (_, ended) = gateway.grpc_export("tok-en", String::new(), 0).await;
    let ended = ended.expect("the export ends");
    assert_eq!(ended.code(), Code::DataLoss, "{ended:?}");
    assert!(ended.message().contains("row-b"), "{ended:?}");
}
