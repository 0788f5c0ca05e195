//! The demo as Coder: its trail, its search over HTTP and what its database walks.

use serde_json::Value;
use tower::ServiceExt as _;

use super::*;

/// FNV-1a, to pin a body without storing it.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `GET /api/v2/audit?<query>` as `token`: the status and the body.
async fn call(router: &Router, query: &str, token: &str) -> (StatusCode, Value) {
    let request = axum::http::Request::get(format!("/api/v2/audit?{query}"))
        .header(SESSION_TOKEN_HEADER, token)
        .body(axum::body::Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, serde_json::from_slice(&body).expect("JSON"))
}

/// The page for `q` (URL-encoded here) with `limit` and `offset`, as the owner.
async fn page(router: &Router, q: &str, limit: usize, offset: usize) -> Value {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", q)
        .append_pair("limit", &limit.to_string())
        .append_pair("offset", &offset.to_string())
        .finish();
    let (status, body) = call(router, &query, DEMO_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{q}: {body}");
    body
}

fn times(page: &Value) -> Vec<String> {
    page["audit_logs"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["time"].as_str().expect("time").to_owned())
        .collect()
}

#[tokio::test]
async fn the_default_trail_is_byte_for_byte_what_it_was() {
    let body = audit_page_body(DemoConfig::default(), 1000).await;
    assert_eq!(body.len(), 346_298);
    assert_eq!(fingerprint(&body), 0x481c_f47e_b22a_3a07);
}

#[tokio::test]
async fn a_deep_trail_makes_the_same_rows_again_as_it_encoded_them() {
    let config = |rows| DemoConfig {
        rows,
        rows_per_day: Some(70),
        ..DemoConfig::default()
    };
    // Up to ENCODED_AT_START rows are encoded at start; more are made again per page.
    let encoded = audit_page_body(config(400), 400).await;
    let replayed = router(config(30_000)).expect("demo");
    let page = page(&replayed, "", 400, 0).await;
    let encoded: Value = serde_json::from_slice(&encoded).expect("JSON");
    assert_eq!(page["audit_logs"], encoded["audit_logs"]);
}

#[tokio::test]
async fn the_default_trail_covers_every_action_and_resource_type_and_the_tricky_shapes() {
    let router = router(DemoConfig::default()).expect("demo");
    let page = page(&router, "", 1000, 0).await;
    let rows = page["audit_logs"].as_array().expect("rows");
    assert_eq!(rows.len(), DEFAULT_ROWS);
    for action in catalogue::ACTIONS {
        assert!(
            rows.iter().any(|r| r["action"] == action.value),
            "{}",
            action.value
        );
    }
    for kind in catalogue::RESOURCE_TYPES {
        assert!(
            rows.iter().any(|r| r["resource_type"] == kind.value),
            "{}",
            kind.value
        );
    }
    assert!(rows.iter().any(|r| r["user"].is_null()));
    assert!(rows.iter().any(|r| r.get("organization").is_none()));
    assert!(rows.iter().any(|r| r["additional_fields"].is_null()));
    assert!(rows.iter().any(|r| {
        r["diff"].as_object().is_some_and(|d| {
            d.values()
                .any(|v| v["secret"] == true && v.get("old").is_none())
        })
    }));
    assert!(
        rows.iter()
            .any(|r| r["additional_fields"].get("build_number").is_some())
    );
    let times = times(&page);
    assert!(
        times.windows(2).any(|w| w[0] == w[1]),
        "some times are equal"
    );
    let parsed: Vec<DateTime> = times.iter().map(|t| parse_time(t)).collect();
    assert!(parsed.windows(2).all(|w| w[0] >= w[1]), "newest first");
}

type DateTime = chrono::DateTime<chrono::Utc>;

fn parse_time(text: &str) -> DateTime {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .with_timezone(&chrono::Utc)
}

/// A minimal wire row at `time`, by `username`, of `resource_type`.
fn row(id: u128, time: &str, username: &str, target: &str) -> String {
    serde_json::json!({
        "id": Uuid::from_u128(id), "request_id": Uuid::nil(), "time": time, "ip": "",
        "user_agent": "", "resource_type": "workspace", "resource_id": Uuid::from_u128(id),
        "resource_target": target, "resource_icon": "", "action": "write", "diff": {},
        "status_code": 200, "additional_fields": {}, "description": "{user} updated workspace {target}",
        "resource_link": "", "is_deleted": false, "organization_id": Uuid::nil(),
        "user": {"id": Uuid::from_u128(username.bytes().fold(0, |id, b| id << 8 | u128::from(b))), "username": username, "email": format!("{username}@example.com")}
    })
    .to_string()
}

/// A demo with no generated rows, holding `rows`.
fn demo_of(rows: &[String]) -> (Router, DemoHandle) {
    let (router, handle) = router_with_handle(DemoConfig {
        rows: 0,
        ..DemoConfig::default()
    })
    .expect("demo");
    for row in rows {
        handle.add_row(row).expect("placeable");
    }
    (router, handle)
}

#[tokio::test]
async fn date_to_ends_at_23_59_59_and_date_from_starts_at_midnight_utc() {
    let (router, _) = demo_of(&[
        row(1, "2026-03-31T23:59:59.999999Z", "ann", "a"),
        row(2, "2026-04-01T00:00:00Z", "ann", "b"),
        row(3, "2026-04-01T23:59:59Z", "ann", "c"),
        row(4, "2026-04-01T23:59:59.5Z", "ann", "d"),
        row(5, "2026-04-02T00:00:00Z", "ann", "e"),
    ]);
    let day = page(&router, "date_from:2026-04-01 date_to:2026-04-01", 10, 0).await;
    assert_eq!(
        times(&day),
        ["2026-04-01T23:59:59Z", "2026-04-01T00:00:00Z"]
    );
    assert_eq!(day["count"], 2);
    let to = page(&router, "date_to:2026-03-31", 10, 0).await;
    assert!(
        times(&to).is_empty(),
        "23:59:59.999999 is past the day's end of 23:59:59.000000: {to}"
    );
    let from = page(&router, "date_from:2026-04-02", 10, 0).await;
    assert_eq!(times(&from), ["2026-04-02T00:00:00Z"]);
}

#[tokio::test]
async fn username_me_is_the_caller_and_usernames_match_without_case() {
    let router = router(DemoConfig::default()).expect("demo");
    let as_carol = |q: &str| {
        let query = format!(
            "q={}&limit=1000",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        let router = router.clone();
        async move { call(&router, &query, DEMO_AUDITOR_TOKEN).await.1 }
    };
    let mine = as_carol("username:me").await;
    let rows = mine["audit_logs"].as_array().expect("rows");
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["user"]["username"] == "carol"));
    assert_eq!(as_carol("username:CAROL").await["count"], mine["count"]);
    let owners = page(&router, "username:me", 1000, 0).await;
    assert!(
        owners["audit_logs"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["user"]["username"] == "admin")
    );
    // frank is soft-deleted: his rows show him, but `username:` never finds them.
    assert_eq!(page(&router, "username:frank", 10, 0).await["count"], 0);
    // Mixed-case stored emails never match the lowercased value.
    assert_eq!(
        page(&router, "email:Carol.Ng@Example.com", 10, 0).await["count"],
        0
    );
    assert_ne!(
        page(&router, "email:bruno@example.com", 10, 0).await["count"],
        0
    );
}

#[tokio::test]
async fn quoted_values_keep_their_spaces_and_colons_and_are_lowercased() {
    let router = router(DemoConfig::default()).expect("demo");
    let spaced = page(&router, r#"resource_target:"rust monorepo""#, 1000, 0).await;
    assert_ne!(spaced["count"], 0);
    assert!(
        spaced["audit_logs"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["resource_target"] == "rust monorepo")
    );
    assert_ne!(
        page(&router, r#"resource_target:"gpu:cuda""#, 10, 0).await["count"],
        0
    );
    assert_eq!(
        page(&router, "resource_target:Mixed-Case-WS", 10, 0).await["count"],
        0
    );
}

#[tokio::test]
async fn search_errors_are_coders_400_bodies() {
    let router = router(DemoConfig::default()).expect("demo");
    let (status, body) = call(
        &router,
        "q=action:fly%20date_from:2026-1-1%20foo:x",
        DEMO_TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        serde_json::json!({"message": "Invalid audit search query.", "validations": [
            {"field": "date_from", "detail": "Query param \"date_from\" must be a valid date format (2006-01-02): parsing time \"2026-1-1\" as \"2006-01-02\": cannot parse \"1-1\" as \"01\""},
            {"field": "action", "detail": "Query param \"action\" has invalid value: \"fly\" is not a valid value"},
            {"field": "foo", "detail": "\"foo\" is not a valid query param"}
        ]})
    );
    // An organisation auditor cannot name an organisation it cannot see.
    let (status, body) = call(&router, "q=organization:coder", DEMO_ORG_AUDITOR_TOKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = call(&router, "q=organization:platform", DEMO_ORG_AUDITOR_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_offset_page_costs_its_offset_and_a_count_stops_at_the_cap() {
    let (router, handle) = router_with_handle(DemoConfig {
        rows: 5000,
        ..DemoConfig::default()
    })
    .expect("demo");
    let before = handle.cost();
    let deep = page(&router, "", 100, 3000).await;
    assert_eq!(deep["audit_logs"].as_array().expect("rows").len(), 100);
    assert_eq!(deep["count"], 2001);
    let cost = handle.cost().since(before);
    assert_eq!(
        cost,
        Cost {
            calls: 1,
            page_rows_walked: 3100,
            count_rows_walked: 2001
        }
    );
    // Past the end, the page query walks every matching row and returns none.
    let before = handle.cost();
    let past = page(&router, "", 100, 9000).await;
    assert!(times(&past).is_empty());
    assert_eq!(handle.cost().since(before).page_rows_walked, 5000);
}

#[tokio::test]
async fn a_page_in_a_one_day_window_costs_that_days_rows() {
    let (router, handle) = router_with_handle(DemoConfig {
        rows: 20_000,
        ..DemoConfig::default()
    })
    .expect("demo");
    let snapshot = handle.snapshot();
    let (_, middle) = &snapshot[10_000];
    let day = &middle[..10];
    let that_day = snapshot.iter().filter(|(_, t)| t.starts_with(day)).count();
    assert!(
        (30..=120).contains(&that_day),
        "about 70 rows a day, got {that_day}"
    );
    let before = handle.cost();
    let q = format!("date_from:{day} date_to:{day}");
    let rows = page(&router, &q, 1000, 0).await;
    assert_eq!(times(&rows).len(), that_day);
    assert_eq!(
        handle.cost().since(before),
        Cost {
            calls: 1,
            page_rows_walked: that_day as u64,
            count_rows_walked: that_day as u64
        }
    );
    // A filtered page walks only rows the filters admit, newest first from `date_to`.
    let before = handle.cost();
    let logins = page(&router, &format!("{q} action:login"), 1, 0).await;
    let cost = handle.cost().since(before);
    assert_eq!(cost.page_rows_walked, times(&logins).len() as u64);
    assert_eq!(
        cost.count_rows_walked,
        logins["count"].as_u64().expect("count")
    );
}

#[tokio::test]
async fn legacy_servers_count_every_matching_row() {
    let (router, handle) = router_with_handle(DemoConfig {
        rows: 3000,
        count_cap: None,
        ..DemoConfig::default()
    })
    .expect("demo");
    let body = page(&router, "", 10, 0).await;
    assert_eq!(body["count"], 3000);
    assert!(body.get("count_cap").is_none());
    assert_eq!(handle.cost().count_rows_walked, 3000);
}

#[tokio::test]
async fn rows_can_be_removed_and_added_while_a_walk_runs() {
    let (router, handle) = router_with_handle(DemoConfig::default()).expect("demo");
    let oldest = handle.snapshot().last().expect("rows").clone();
    assert_eq!(handle.remove_oldest(20), 20);
    assert_eq!(page(&router, "", 10, 0).await["count"], 300);
    assert!(!handle.remove(&oldest.0), "already gone with retention");
    let newest = handle.snapshot()[0].0.clone();
    assert!(handle.remove(&newest));
    // A row added in the middle of the trail lands at its time.
    let (_, middle) = handle.snapshot()[100].clone();
    handle
        .add_row(&row(77, &middle, "zoe", "inserted"))
        .expect("placeable");
    let found = page(&router, "resource_target:inserted", 10, 0).await;
    assert_eq!(times(&found), std::slice::from_ref(&middle));
    let position = handle
        .snapshot()
        .iter()
        .position(|(id, _)| *id == Uuid::from_u128(77).to_string())
        .expect("added");
    assert_eq!(handle.snapshot()[position].1, middle);
    assert!(handle.add_row("{\"id\": \"nope\"}").is_err());
    assert_eq!(page(&router, "username:zoe", 10, 0).await["count"], 1);
}

#[tokio::test]
async fn a_rows_file_is_served_as_given_in_time_order() {
    let dir = std::env::temp_dir().join(format!("demo-rows-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rows = [
        row(1, "2026-04-01T10:00:00.5Z", "ann", "old"),
        row(2, "2026-04-03T10:00:00Z", "bob", "new"),
        row(3, "2026-04-02T10:00:00Z", "ann", "mid"),
    ];
    let ndjson = dir.join("trail.ndjson");
    std::fs::write(
        &ndjson,
        format!("{}\n\n{}\n{}\n", rows[0], rows[1], rows[2]),
    )
    .expect("write");
    let array = dir.join("trail.json");
    std::fs::write(&array, format!("[{}]", rows.join(",\n"))).expect("write");
    for path in [ndjson, array] {
        let router = router(DemoConfig {
            rows_file: Some(path.clone()),
            ..DemoConfig::default()
        })
        .expect("readable");
        let body = page(&router, "", 10, 0).await;
        let served: Vec<String> = body["audit_logs"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["resource_target"].as_str().expect("target").to_owned())
            .collect();
        assert_eq!(served, ["new", "mid", "old"], "{}", path.display());
        assert_eq!(
            body["audit_logs"][2],
            serde_json::from_str::<Value>(&rows[0]).expect("JSON")
        );
        assert_eq!(page(&router, "username:ann", 10, 0).await["count"], 2);
    }
    let bad = dir.join("bad.ndjson");
    std::fs::write(
        &bad,
        format!("{}\n{{\"id\":\"{}\"}}\n", rows[0], Uuid::nil()),
    )
    .expect("write");
    let error = router(DemoConfig {
        rows_file: Some(bad),
        ..DemoConfig::default()
    })
    .expect_err("unplaceable row");
    assert!(
        error
            .to_string()
            .contains("line 2: no readable RFC 3339 \"time\""),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
