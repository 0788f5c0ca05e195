//! The demo upstream over HTTP, checked against the reference's texts: it is the tests'
//! stand-in for Coder, so it must answer as Coder does.

use coder_audit_gateway::demo::{DEMO_ORG_AUDITOR_TOKEN, DEMO_TOKEN, DemoConfig};
use serde_json::{Value, json};

use crate::helpers::demo_upstream;

async fn get(
    upstream: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = crate::helpers::http().get(format!("{upstream}/api/v2/audit?{query}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("demo answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

async fn rows(upstream: &str, q: &str) -> Vec<Value> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", q)
        .append_pair("limit", "1000")
        .finish();
    let (status, _, body) = get(upstream, &query, &[("coder-session-token", DEMO_TOKEN)]).await;
    assert_eq!(status, 200, "{q}: {body}");
    let page: Value = serde_json::from_str(&body).expect("JSON");
    page["audit_logs"].as_array().expect("rows").clone()
}

#[tokio::test]
async fn pagination_errors_come_together_in_coder_order() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let (status, headers, body) = get(
        &upstream,
        "limit=abc&offset=-1&after_id=xyz&q=action:fly",
        &[("coder-session-token", DEMO_TOKEN)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert!(headers.contains_key("x-coder-request-id"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON"),
        json!({"message": "Query parameters have invalid values.", "validations": [
            {"field": "after_id", "detail": "Query param \"after_id\" must be a valid uuid"},
            {"field": "limit", "detail": "Query param \"limit\" must be a valid 32-bit positive integer: strconv.ParseInt: parsing \"abc\": invalid syntax"},
            {"field": "offset", "detail": "Query param \"offset\" must be a valid 32-bit positive integer: value is negative"}
        ]})
    );
}

#[tokio::test]
async fn auth_comes_first_and_cookies_override_the_header() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let (status, _, body) = get(&upstream, "limit=abc", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON"),
        json!({"message": "You are signed out or your session has expired. Please sign in again to continue.", "detail": "Cookie \"coder_session_token\" or query parameter must be provided."})
    );
    let (status, _, _) = get(
        &upstream,
        "",
        &[
            ("coder-session-token", DEMO_TOKEN),
            ("cookie", "coder_session_token=bad"),
        ],
    )
    .await;
    assert_eq!(
        status, 401,
        "the cookie must win over the header, as in Coder"
    );
    let (status, _, _) = get(&upstream, &format!("access_token={DEMO_TOKEN}"), &[]).await;
    assert_eq!(status, 200);
    let (status, _, body) = get(&upstream, "", &[("coder-session-token", DEMO_TOKEN)]).await;
    assert_eq!(status, 200);
    assert!(body.ends_with("}\n"), "Coder ends bodies with a newline");
}

#[tokio::test]
async fn unknown_routes_are_coder_404s() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let response = crate::helpers::http()
        .get(format!("{upstream}/api/v2/nope"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.text().await.expect("body"),
        "{\"message\":\"Route not found.\"}\n"
    );
}

#[tokio::test]
async fn strings_are_escaped_as_go_escapes_them() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let (_, _, body) = get(
        &upstream,
        "limit=1000",
        &[("coder-session-token", DEMO_TOKEN)],
    )
    .await;
    assert!(
        body.contains("\\u003c") && body.contains("\\u0026"),
        "no Go-style escapes"
    );
    assert!(!body.contains('<') && !body.contains('&'));
}

#[tokio::test]
async fn filters_match_as_coder_matches() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let all = rows(&upstream, "").await;
    assert_eq!(all.len(), 320);
    let times: Vec<_> = all
        .iter()
        .map(|r| {
            chrono::DateTime::parse_from_rfc3339(r["time"].as_str().expect("time"))
                .expect("RFC 3339")
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

    for row in rows(&upstream, "ACTION:Create").await {
        assert_eq!(row["action"], "create");
    }
    assert_eq!(
        rows(&upstream, "workspace_build").await.len(),
        rows(&upstream, "resource_type:workspace_build").await.len()
    );
    let mine = rows(&upstream, "username:me").await;
    assert!(!mine.is_empty() && mine.iter().all(|r| r["user"]["username"] == "admin"));
    assert!(
        rows(&upstream, "username:frank").await.is_empty(),
        "soft-deleted users never match"
    );
    assert!(
        rows(&upstream, "email:Carol.Ng@Example.com")
            .await
            .is_empty(),
        "q is lowercased, the stored e-mail is not"
    );
    assert!(
        rows(&upstream, "resource_target:Mixed-Case-WS")
            .await
            .is_empty()
    );
    let day = rows(&upstream, "date_from:2026-04-01 date_to:2026-04-01").await;
    assert!(
        !day.is_empty()
            && day
                .iter()
                .all(|r| r["time"].as_str().expect("time").starts_with("2026-04-01"))
    );
    for row in rows(&upstream, "build_reason:autostart").await {
        assert!(
            row["resource_type"] == "workspace_build"
                || (row["resource_type"] == "workspace" && row["action"] == "create")
        );
    }
    let platform = rows(&upstream, "organization:platform").await;
    assert!(
        !platform.is_empty()
            && platform
                .iter()
                .all(|r| r["organization"]["name"] == "platform")
    );
}

#[tokio::test]
async fn an_organisation_auditor_sees_only_their_organisation() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let (status, _, body) = get(
        &upstream,
        "limit=1000",
        &[("coder-session-token", DEMO_ORG_AUDITOR_TOKEN)],
    )
    .await;
    assert_eq!(status, 200);
    let page: Value = serde_json::from_str(&body).expect("JSON");
    let rows = page["audit_logs"].as_array().expect("rows");
    assert_eq!(page["count"].as_u64(), Some(rows.len() as u64));
    assert!(rows.iter().all(|r| r["organization"]["name"] == "platform"));
    let (status, _, body) = get(
        &upstream,
        "q=organization:coder",
        &[("coder-session-token", DEMO_ORG_AUDITOR_TOKEN)],
    )
    .await;
    assert_eq!(
        status, 400,
        "an invisible organisation is reported as unknown"
    );
    assert!(body.contains("either does not exist, or you are unauthorized to view it"));
}

/// The binary run to completion with `args` and no Coder URL in its environment.
fn run_binary(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_coder-audit-gateway"))
        .args(args)
        .env_remove("CODER_URL")
        .env_remove("GATEWAY_DEMO")
        .output()
        .expect("the binary runs")
}

#[test]
fn the_demo_stays_on_loopback_unless_asked() {
    let refused = run_binary(&["--listen", "0.0.0.0:0"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr).into_owned()
        + &String::from_utf8_lossy(&refused.stdout);
    assert!(said.contains("--demo"), "{said}");
    assert!(said.contains("0.0.0.0:0"), "{said}");

    let both = run_binary(&["--demo", "--coder-url", "https://coder.example.com"]);
    assert!(!both.status.success());
    let said = String::from_utf8_lossy(&both.stderr);
    assert!(
        said.contains("--demo") && said.contains("--coder-url"),
        "{said}"
    );

    let (mut child, line, _) = crate::helpers::start_binary(&["--demo", "--listen", "0.0.0.0:0"]);
    assert!(line.contains("0.0.0.0:"), "{line}");
    assert!(crate::helpers::terminate(&mut child).success());
}
