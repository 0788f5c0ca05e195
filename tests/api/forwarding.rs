//! What reaches Coder: the caller's token in `Coder-Session-Token` and nothing else of the
//! caller's request, an exactly encoded `q`, an explicit `limit`, and no redirect followed.

use coder_audit_gateway::{
    demo::{DEMO_MEMBER_TOKEN, DEMO_TOKEN},
    grpc::pb,
};
use serde_json::json;

use crate::helpers::{demo_gateway, fake_coder, gateway, graphql_code, response};

const EMPTY_PAGE: &str = r#"{"audit_logs":[],"count":0,"count_cap":2000}"#;

fn decoded(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

#[tokio::test]
async fn only_the_token_is_forwarded_never_cookies_or_other_headers() {
    let fake = fake_coder(|| async { response(200, "application/json", EMPTY_PAGE) }).await;
    let gateway = gateway(&fake.url, &[]).await;
    let (_, body) = gateway
        .graphql_with(
            "{ auditLogs(limit: 5) { count } }",
            json!({}),
            &[
                (
                    "coder-session-token",
                    "caller0001-CallerSecret0000000000001",
                ),
                (
                    "authorization",
                    "Bearer other00002-OtherSecret00000000000002",
                ),
                (
                    "cookie",
                    "coder_session_token=cookie0003-CookieSecret000000000003",
                ),
                ("x-forwarded-for", "10.9.9.9"),
                ("x-custom", "secret-ish"),
            ],
        )
        .await;
    assert_eq!(body["data"]["auditLogs"]["count"], 0, "{body}");

    let mut request = tonic::Request::new(pb::ListAuditLogsRequest {
        q: String::new(),
        limit: 5,
        offset: 0,
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        "bearer grpcbearer-GrpcBearerSecret000000"
            .parse()
            .expect("ascii"),
    );
    request
        .metadata_mut()
        .insert("cookie", "coder_session_token=nope".parse().expect("ascii"));
    gateway
        .grpc()
        .await
        .list_audit_logs(request)
        .await
        .expect("page");

    let seen = fake.requests();
    assert_eq!(seen.len(), 2);
    for (request, token) in seen.iter().zip([
        "caller0001-CallerSecret0000000000001",
        "grpcbearer-GrpcBearerSecret000000",
    ]) {
        assert_eq!(request.headers["coder-session-token"], token);
        for header in ["cookie", "authorization", "x-forwarded-for", "x-custom"] {
            assert!(
                !request.headers.contains_key(header),
                "{header} was forwarded: {:?}",
                request.headers
            );
        }
        assert!(
            !request.query.contains("coder_session_token")
                && !request.query.contains("access_token")
        );
    }
}

#[tokio::test]
async fn a_forwarded_cookie_would_have_overridden_the_token_but_none_is_sent() {
    // The demo, like Coder, prefers a coder_session_token cookie over the header: had the
    // gateway forwarded the member's cookie, the owner's request would be refused.
    let (gateway, _) = demo_gateway().await;
    let (_, body) = gateway
        .graphql_with(
            "{ auditLogs(limit: 1) { count } }",
            json!({}),
            &[
                ("coder-session-token", DEMO_TOKEN),
                (
                    "cookie",
                    &format!("coder_session_token={DEMO_MEMBER_TOKEN}"),
                ),
            ],
        )
        .await;
    assert_eq!(body["data"]["auditLogs"]["count"], 320, "{body}");
}

#[tokio::test]
async fn q_is_encoded_exactly_and_limit_is_always_explicit() {
    let fake = fake_coder(|| async { response(200, "application/json", EMPTY_PAGE) }).await;
    let gateway = gateway(&fake.url, &[]).await;
    let q = r#"email:a+b@x.io resource_target:"my ws" username:Zoë action:create&x=1 %41"#;
    gateway.graphql_page("tok-en", q, 0, 0).await;
    gateway.grpc_page("tok-en", q, 25, 50).await.expect("page");
    let seen = fake.requests();
    assert!(seen[0].query.contains("a%2Bb%40x.io"), "{}", seen[0].query);
    assert_eq!(
        decoded(&seen[0].query),
        [
            ("q".to_owned(), q.to_owned()),
            ("limit".to_owned(), "100".to_owned()),
            ("offset".to_owned(), "0".to_owned())
        ]
    );
    assert_eq!(
        decoded(&seen[1].query),
        [
            ("q".to_owned(), q.to_owned()),
            ("limit".to_owned(), "25".to_owned()),
            ("offset".to_owned(), "50".to_owned())
        ]
    );
}

#[tokio::test]
async fn redirects_are_never_followed_so_the_token_cannot_travel() {
    let elsewhere = fake_coder(|| async { response(200, "application/json", EMPTY_PAGE) }).await;
    let target = format!("{}/api/v2/audit", elsewhere.url);
    let redirecting = fake_coder(move || {
        let target = target.clone();
        async move {
            let mut r = response(307, "text/plain", "");
            r.headers_mut()
                .insert("location", target.parse().expect("header"));
            r
        }
    })
    .await;
    let gateway = gateway(&redirecting.url, &[]).await;
    let body = gateway.graphql_page("tok-en", "", 5, 0).await;
    assert_eq!(graphql_code(&body), "UPSTREAM_ERROR", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("HTTP 307")
    );
    let status = gateway
        .grpc_page("tok-en", "", 5, 0)
        .await
        .expect_err("error");
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
    assert_eq!(redirecting.requests().len(), 2);
}
