//! Every field of every row equals what the upstream sent, over both protocols.

use coder_audit_gateway::{
    demo::{DEMO_ORG_AUDITOR_TOKEN, DEMO_TOKEN, DemoConfig},
    grpc::pb,
};
use prost_types::value::Kind;
use serde_json::{Map, Value, json};

use crate::helpers::{demo_gateway, demo_upstream, fake_coder, gateway, response, upstream_page};

/// The keys of a row and of a user the gateway models, by Coder's names.
const ROW_KEYS: &[&str] = &[
    "id",
    "request_id",
    "time",
    "ip",
    "user_agent",
    "resource_type",
    "resource_id",
    "resource_target",
    "resource_icon",
    "action",
    "diff",
    "status_code",
    "additional_fields",
    "description",
    "resource_link",
    "is_deleted",
    "organization_id",
    "organization",
    "user",
];
const USER_KEYS: &[&str] = &[
    "id",
    "username",
    "name",
    "email",
    "avatar_url",
    "created_at",
    "updated_at",
    "last_seen_at",
    "status",
    "login_type",
    "theme_preference",
    "organization_ids",
    "roles",
    "has_ai_seat",
    "is_service_account",
];

/// The keys of `object` not in `known`, with their values passed through `value`; `absent`
/// when there are none.
fn extra(object: &Value, known: &[&str], value: fn(&Value) -> Value, absent: Value) -> Value {
    let extra: Map<String, Value> = (object.as_object().expect("object").iter())
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), value(v)))
        .collect();
    if extra.is_empty() {
        absent
    } else {
        Value::Object(extra)
    }
}

/// The GraphQL shape the contract promises for one upstream row, derived independently of
/// the gateway's own mapping.
pub(crate) fn expected_graphql(row: &Value) -> Value {
    let or = |v: Option<&Value>, default: Value| v.cloned().unwrap_or(default);
    let mut diff: Vec<(&String, &Value)> = row["diff"]
        .as_object()
        .map(|d| d.iter().collect())
        .unwrap_or_default();
    diff.sort_by_key(|(k, _)| *k);
    let diff: Vec<Value> = diff
        .into_iter()
        .map(|(field, change)| {
            json!({"field": field, "old": or(change.get("old"), Value::Null), "new": or(change.get("new"), Value::Null), "secret": change["secret"]})
        })
        .collect();
    let organization = row.get("organization").map_or(Value::Null, |o| {
        json!({"id": o["id"], "name": o["name"], "displayName": o["display_name"], "icon": o["icon"]})
    });
    let user = if row["user"].is_null() {
        Value::Null
    } else {
        let u = &row["user"];
        let roles: Vec<Value> = u["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .map(|r| json!({"name": r["name"], "displayName": or(r.get("display_name"), json!("")), "organizationId": or(r.get("organization_id"), json!(""))}))
            .collect();
        json!({
            "id": u["id"], "username": u["username"], "name": or(u.get("name"), json!("")), "email": u["email"],
            "avatarUrl": or(u.get("avatar_url"), json!("")), "createdAt": u["created_at"],
            "updatedAt": or(u.get("updated_at"), Value::Null), "lastSeenAt": or(u.get("last_seen_at"), Value::Null),
            "status": u["status"], "loginType": u["login_type"], "themePreference": or(u.get("theme_preference"), json!("")),
            "organizationIds": u["organization_ids"], "roles": roles,
            "hasAiSeat": or(u.get("has_ai_seat"), Value::Null),
            "isServiceAccount": or(u.get("is_service_account"), Value::Null),
            "extraFields": extra(u, USER_KEYS, Value::clone, Value::Null)
        })
    };
    json!({
        "id": row["id"], "requestId": row["request_id"], "time": row["time"], "ip": row["ip"],
        "userAgent": row["user_agent"], "resourceType": row["resource_type"], "resourceId": row["resource_id"],
        "resourceTarget": row["resource_target"], "resourceIcon": row["resource_icon"], "action": row["action"],
        "diff": diff, "statusCode": row["status_code"], "additionalFields": or(row.get("additional_fields"), Value::Null),
        "description": row["description"], "resourceLink": row["resource_link"], "isDeleted": row["is_deleted"],
        "organizationId": row["organization_id"], "organization": organization, "user": user,
        "extraFields": extra(row, ROW_KEYS, Value::clone, Value::Null)
    })
}

pub(crate) fn expected_graphql_page(upstream: &Value) -> Value {
    let rows: Vec<Value> = upstream["audit_logs"]
        .as_array()
        .expect("rows")
        .iter()
        .map(expected_graphql)
        .collect();
    json!({"data": {"auditLogs": {"count": upstream["count"], "countCap": upstream.get("count_cap").cloned().unwrap_or(Value::Null), "auditLogs": rows}}})
}

/// An instant as `seconds.nanos`, so that precision and offsets do not matter.
fn instant(text: &Value) -> Value {
    let t = chrono::DateTime::parse_from_rfc3339(text.as_str().expect("time string"))
        .expect("RFC 3339");
    json!(format!(
        "{}.{:09}",
        t.timestamp(),
        t.timestamp_subsec_nanos()
    ))
}

fn pb_instant(t: Option<&prost_types::Timestamp>) -> Value {
    t.map_or(Value::Null, |t| {
        json!(format!("{}.{:09}", t.seconds, t.nanos))
    })
}

/// JSON with every number as a double, as `google.protobuf.Value` carries it.
fn doubles(value: &Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().expect("finite")),
        Value::Array(items) => Value::Array(items.iter().map(doubles).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), doubles(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn from_pb_value(value: Option<&prost_types::Value>) -> Value {
    match value.and_then(|v| v.kind.as_ref()) {
        None => json!("<unset>"),
        Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(|v| from_pb_value(Some(v))).collect())
        }
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), from_pb_value(Some(v))))
                .collect(),
        ),
    }
}

/// An upstream row as the gRPC contract carries it: instants, doubles, defaults filled in.
pub(crate) fn expected_grpc(row: &Value) -> Value {
    let or = |v: Option<&Value>, default: Value| v.cloned().unwrap_or(default);
    let diff: Map<String, Value> = row["diff"]
        .as_object()
        .map(|d| {
            d.iter()
                .map(|(k, c)| {
                    // A side Coder sent as null is NULL_VALUE, one it left out is unset.
                    let side = |name: &str| c.get(name).map_or(json!("<unset>"), doubles);
                    (
                        k.clone(),
                        json!({"old": side("old"), "new": side("new"), "secret": c["secret"]}),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let user = if row["user"].is_null() {
        Value::Null
    } else {
        let u = &row["user"];
        json!({
            "id": u["id"], "username": u["username"], "name": or(u.get("name"), json!("")), "email": u["email"],
            "avatar_url": or(u.get("avatar_url"), json!("")), "created_at": instant(&u["created_at"]),
            "updated_at": u.get("updated_at").map_or(Value::Null, instant), "last_seen_at": u.get("last_seen_at").map_or(Value::Null, instant),
            "status": u["status"], "login_type": u["login_type"], "theme_preference": or(u.get("theme_preference"), json!("")),
            "organization_ids": u["organization_ids"],
            "roles": u["roles"].as_array().expect("roles").iter().map(|r| json!({"name": r["name"], "display_name": or(r.get("display_name"), json!("")), "organization_id": or(r.get("organization_id"), json!(""))})).collect::<Vec<_>>(),
            "has_ai_seat": or(u.get("has_ai_seat"), json!("<unset>")),
            "is_service_account": or(u.get("is_service_account"), json!("<unset>")),
            "extra_fields": extra(u, USER_KEYS, doubles, json!("<unset>"))
        })
    };
    json!({
        "id": row["id"], "request_id": row["request_id"], "time": instant(&row["time"]), "ip": row["ip"],
        "user_agent": row["user_agent"], "resource_type": row["resource_type"], "resource_id": row["resource_id"],
        "resource_target": row["resource_target"], "resource_icon": row["resource_icon"], "action": row["action"],
        "diff": diff, "status_code": row["status_code"], "additional_fields": row.get("additional_fields").map_or(json!("<unset>"), doubles),
        "description": row["description"], "resource_link": row["resource_link"], "is_deleted": row["is_deleted"],
        "organization_id": row["organization_id"], "organization": row.get("organization").cloned().unwrap_or(Value::Null),
        "user": user, "extra_fields": extra(row, ROW_KEYS, doubles, json!("<unset>"))
    })
}

/// A gRPC row in the same form as [`expected_grpc`].
pub(crate) fn grpc_json(log: &pb::AuditLog) -> Value {
    let diff: Map<String, Value> = log
        .diff
        .iter()
        .map(|(k, d)| (k.clone(), json!({"old": from_pb_value(d.old.as_ref()), "new": from_pb_value(d.new.as_ref()), "secret": d.secret})))
        .collect();
    let user = log.user.as_ref().map_or(Value::Null, |u| {
        json!({
            "id": u.id, "username": u.username, "name": u.name, "email": u.email, "avatar_url": u.avatar_url,
            "created_at": pb_instant(u.created_at.as_ref()), "updated_at": pb_instant(u.updated_at.as_ref()),
            "last_seen_at": pb_instant(u.last_seen_at.as_ref()), "status": u.status, "login_type": u.login_type,
            "theme_preference": u.theme_preference, "organization_ids": u.organization_ids,
            "roles": u.roles.iter().map(|r| json!({"name": r.name, "display_name": r.display_name, "organization_id": r.organization_id})).collect::<Vec<_>>(),
            "has_ai_seat": u.has_ai_seat.map_or(json!("<unset>"), Value::from),
            "is_service_account": u.is_service_account.map_or(json!("<unset>"), Value::from),
            "extra_fields": pb_struct(u.extra_fields.as_ref())
        })
    });
    json!({
        "id": log.id, "request_id": log.request_id, "time": pb_instant(log.time.as_ref()), "ip": log.ip,
        "user_agent": log.user_agent, "resource_type": log.resource_type, "resource_id": log.resource_id,
        "resource_target": log.resource_target, "resource_icon": log.resource_icon, "action": log.action,
        "diff": diff, "status_code": log.status_code, "additional_fields": from_pb_value(log.additional_fields.as_ref()),
        "description": log.description, "resource_link": log.resource_link, "is_deleted": log.is_deleted,
        "organization_id": log.organization_id,
        "organization": log.organization.as_ref().map_or(Value::Null, |o| json!({"id": o.id, "name": o.name, "display_name": o.display_name, "icon": o.icon})),
        "user": user, "extra_fields": pb_struct(log.extra_fields.as_ref())
    })
}

/// A `google.protobuf.Struct` as JSON; `"<unset>"` when unset.
fn pb_struct(value: Option<&prost_types::Struct>) -> Value {
    value.map_or(json!("<unset>"), |s| {
        Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), from_pb_value(Some(v))))
                .collect(),
        )
    })
}

pub(crate) fn assert_grpc_matches(upstream: &Value, page: &pb::ListAuditLogsResponse) {
    let rows = upstream["audit_logs"].as_array().expect("rows");
    assert_eq!(page.audit_logs.len(), rows.len());
    assert_eq!(Some(page.count), upstream["count"].as_i64());
    assert_eq!(
        page.count_cap,
        upstream.get("count_cap").and_then(Value::as_i64)
    );
    for (row, log) in rows.iter().zip(&page.audit_logs) {
        assert_eq!(grpc_json(log), expected_grpc(row), "row {}", row["id"]);
    }
}

/// Pages that together cover the whole demo trail, plus filtered views.
const QUERIES: &[(&str, i32, i32)] = &[
    ("", 100, 0),
    ("", 100, 100),
    ("", 100, 200),
    ("", 100, 300),
    ("", 0, 0),
    ("", 7, 315),
    ("action:create", 50, 0),
    ("resource_type:workspace_build", 100, 0),
    ("username:carol", 100, 0),
    ("organization:platform", 100, 0),
    (r#"resource_target:"rust monorepo""#, 100, 0),
    ("", 100, 10_000),
];

#[tokio::test]
async fn graphql_rows_equal_the_upstream_json_field_for_field() {
    let (gateway, upstream) = demo_gateway().await;
    for &(q, limit, offset) in QUERIES {
        let direct = upstream_page(&upstream, DEMO_TOKEN, q, limit, offset).await;
        let via_gateway = gateway.graphql_page(DEMO_TOKEN, q, limit, offset).await;
        assert_eq!(
            via_gateway,
            expected_graphql_page(&direct),
            "q={q:?} limit={limit} offset={offset}"
        );
    }
}

#[tokio::test]
async fn grpc_rows_equal_the_upstream_json_field_for_field() {
    let (gateway, upstream) = demo_gateway().await;
    for &(q, limit, offset) in QUERIES {
        let direct = upstream_page(&upstream, DEMO_TOKEN, q, limit, offset).await;
        let page = gateway
            .grpc_page(DEMO_TOKEN, q, limit, offset)
            .await
            .expect("page");
        assert_grpc_matches(&direct, &page);
    }
}

#[tokio::test]
async fn the_demo_trail_is_covered_and_limit_zero_is_a_page_of_one_hundred() {
    let (gateway, _) = demo_gateway().await;
    let body = gateway.graphql_page(DEMO_TOKEN, "", 0, 0).await;
    assert_eq!(
        body["data"]["auditLogs"]["auditLogs"]
            .as_array()
            .expect("rows")
            .len(),
        100
    );
    assert_eq!(body["data"]["auditLogs"]["count"], 320);
}

#[tokio::test]
async fn two_callers_with_different_tokens_each_get_their_own_answer() {
    let (gateway, upstream) = demo_gateway().await;
    let owner_direct = upstream_page(&upstream, DEMO_TOKEN, "", 100, 0).await;
    let org_direct = upstream_page(&upstream, DEMO_ORG_AUDITOR_TOKEN, "", 100, 0).await;
    assert_ne!(
        owner_direct["count"], org_direct["count"],
        "the org auditor must see fewer rows"
    );

    let rounds = (0..8).map(|i| {
        let gateway = &gateway;
        async move {
            let token = if i % 2 == 0 {
                DEMO_TOKEN
            } else {
                DEMO_ORG_AUDITOR_TOKEN
            };
            let graphql = gateway.graphql_page(token, "", 100, 0).await;
            let grpc = gateway.grpc_page(token, "", 100, 0).await.expect("page");
            (token, graphql, grpc)
        }
    });
    for (token, graphql, grpc) in futures::future::join_all(rounds).await {
        let direct = if token == DEMO_TOKEN {
            &owner_direct
        } else {
            &org_direct
        };
        assert_eq!(graphql, expected_graphql_page(direct));
        assert_grpc_matches(direct, &grpc);
    }
    let org_rows = org_direct["audit_logs"].as_array().expect("rows");
    assert!(
        org_rows
            .iter()
            .all(|r| r["organization"]["name"] == "platform")
    );
}

#[tokio::test]
async fn capped_and_exact_counts_pass_through() {
    let capped = demo_upstream(DemoConfig {
        count_cap: Some(50),
        ..DemoConfig::default()
    })
    .await;
    let gateway_capped = crate::helpers::gateway(&capped, &[]).await;
    let body = gateway_capped.graphql_page(DEMO_TOKEN, "", 5, 0).await;
    assert_eq!(body["data"]["auditLogs"]["count"], 51);
    assert_eq!(body["data"]["auditLogs"]["countCap"], 50);
    let page = gateway_capped
        .grpc_page(DEMO_TOKEN, "", 5, 0)
        .await
        .expect("page");
    assert_eq!((page.count, page.count_cap), (51, Some(50)));

    let legacy = demo_upstream(DemoConfig {
        count_cap: None,
        ..DemoConfig::default()
    })
    .await;
    let gateway_legacy = crate::helpers::gateway(&legacy, &[]).await;
    let body = gateway_legacy.graphql_page(DEMO_TOKEN, "", 5, 0).await;
    assert_eq!(body["data"]["auditLogs"]["count"], 320);
    assert_eq!(body["data"]["auditLogs"]["countCap"], Value::Null);
    let page = gateway_legacy
        .grpc_page(DEMO_TOKEN, "", 5, 0)
        .await
        .expect("page");
    assert_eq!((page.count, page.count_cap), (320, None));
}

/// Shapes the demo does not produce but real servers of some version do.
const TRICKY_PAGE: &str = r#"{"audit_logs":[
 {"id":"0b7c2a53-2a1f-4e37-9f3c-5d8e0e6a1c01","request_id":"8f1a6b7e-3d2c-4b7a-9a51-2f0d6e4c9b10","time":"2026-04-02T11:15:42.123456789+02:00","ip":"","user_agent":"a \u003cb\u003e \u0026 \"q\"","resource_type":"quantum_flux","resource_id":"ef8d1cf4-82de-4fd9-8980-047dad6d06b5","resource_target":"Bruno-Dev","resource_icon":"","action":"teleport","diff":null,"status_code":200,"additional_fields":[0],"description":"{user} did {target}","resource_link":"","is_deleted":false,"organization_id":"00000000-0000-0000-0000-000000000000","on_behalf_of":{"id":"x"},"user":{"id":"3c1e7d2a-6b5f-4e8d-9c0a-1f2e3d4c5b6a","username":"old","email":"old@example.com","created_at":"2025-11-03T12:00:01.500Z","last_seen_at":"0001-01-01T00:00:00Z","status":"active","login_type":"","theme_preference":"dark","organization_ids":null,"roles":[{"name":"org-admin","organization_id":"5a6f0e2c-9d1b-4c6e-8f3a-7b2d1e0c9a88"}]}},
 {"id":"1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5","request_id":"00000000-0000-0000-0000-000000000000","time":"2026-04-02T09:14:03Z","ip":"::1","user_agent":"","resource_type":"user","resource_id":"4b5c6d7e-8f90-4a1b-9c2d-3e4f5a6b7c8d","resource_target":"member","resource_icon":"","action":"write","diff":{"z":{"old":null,"new":{"Time":"2024-10-22T09:03:23.961702Z","Valid":true},"secret":false},"a":{"secret":true},"m":{"old":"","new":"","secret":true}},"status_code":200,"additional_fields":null,"description":"{user} updated user {target}","resource_link":"/users?filter=member","is_deleted":false,"organization_id":"5a6f0e2c-9d1b-4c6e-8f3a-7b2d1e0c9a88","organization":{"id":"5a6f0e2c-9d1b-4c6e-8f3a-7b2d1e0c9a88","name":"coder","display_name":"","icon":""},"user":null}
],"count":2}"#;

#[tokio::test]
async fn shapes_from_other_coder_versions_survive_both_protocols() {
    let fake = fake_coder(|| async { response(200, "application/json", TRICKY_PAGE) }).await;
    let gateway = gateway(&fake.url, &[]).await;
    let upstream: Value = serde_json::from_str(TRICKY_PAGE).expect("fixture");

    let body = gateway.graphql_page("tok-en", "", 10, 0).await;
    let page = &body["data"]["auditLogs"];
    assert_eq!(page["countCap"], Value::Null);
    let first = &page["auditLogs"][0];
    assert_eq!(first["time"], "2026-04-02T09:15:42.123456789Z");
    assert_eq!(first["userAgent"], "a <b> & \"q\"");
    assert_eq!(first["action"], "teleport");
    assert_eq!(first["resourceType"], "quantum_flux");
    assert_eq!(first["diff"], json!([]));
    assert_eq!(first["additionalFields"], json!([0]));
    assert_eq!(first["organization"], Value::Null);
    assert_eq!(first["user"]["createdAt"], "2025-11-03T12:00:01.500Z");
    assert_eq!(first["user"]["lastSeenAt"], "0001-01-01T00:00:00Z");
    assert_eq!(first["user"]["updatedAt"], Value::Null);
    assert_eq!(first["user"]["name"], "");
    assert_eq!(first["user"]["themePreference"], "dark");
    assert_eq!(first["user"]["organizationIds"], json!([]));
    assert_eq!(
        first["user"]["roles"],
        json!([{"name": "org-admin", "displayName": "", "organizationId": "5a6f0e2c-9d1b-4c6e-8f3a-7b2d1e0c9a88"}])
    );
    let second = &page["auditLogs"][1];
    assert_eq!(
        second["diff"],
        json!([
            {"field": "a", "old": null, "new": null, "secret": true},
            {"field": "m", "old": "", "new": "", "secret": true},
            {"field": "z", "old": null, "new": {"Time": "2024-10-22T09:03:23.961702Z", "Valid": true}, "secret": false}
        ])
    );
    assert_eq!(second["additionalFields"], Value::Null);
    assert_eq!(second["user"], Value::Null);
    assert_eq!(second["organization"]["name"], "coder");

    let grpc = gateway.grpc_page("tok-en", "", 10, 0).await.expect("page");
    let mut normalised = upstream.clone();
    normalised["audit_logs"][0]["diff"] = json!({});
    normalised["audit_logs"][0]["user"]["organization_ids"] = json!([]);
    assert_grpc_matches(&normalised, &grpc);
    assert_eq!(grpc.count_cap, None);
    assert!(matches!(
        grpc.audit_logs[1]
            .additional_fields
            .as_ref()
            .and_then(|v| v.kind.as_ref()),
        Some(Kind::NullValue(_))
    ));
    let time = grpc.audit_logs[0].time.expect("time");
    assert_eq!((time.seconds, time.nanos), (1_775_121_342, 123_456_789));
}

/// A row and a user from a Coder newer than the gateway: keys it does not model, of every
/// JSON kind, and the user's newest flags.
const NEWER_PAGE: &str = r#"{"audit_logs":[
 {"id":"5e0c1d2a-3b4c-4d5e-8f60-718293a4b5c6","request_id":"00000000-0000-0000-0000-000000000000","time":"2026-04-02T09:14:03Z","ip":"::1","user_agent":"","resource_type":"user","resource_id":"4b5c6d7e-8f90-4a1b-9c2d-3e4f5a6b7c8d","resource_target":"member","resource_icon":"","action":"write","diff":{},"status_code":200,"additional_fields":{},"description":"{user} updated user {target}","resource_link":"","is_deleted":false,"organization_id":"00000000-0000-0000-0000-000000000000","on_behalf_of":{"id":"x","roles":["a"]},"newer_null":null,"newer_number":2.5,"newer_text":"caf\u00e9","newer_flag":true,"newer_list":[1,"two",null,false,{"k":[]}],"user":{"id":"3c1e7d2a-6b5f-4e8d-9c0a-1f2e3d4c5b6a","username":"new","email":"new@example.com","created_at":"2025-11-03T12:00:01.500Z","last_seen_at":"2026-01-01T00:00:00Z","status":"active","login_type":"oidc","organization_ids":[],"roles":[],"has_ai_seat":true,"is_service_account":false,"newer_user_key":{"nested":[true]},"newer_user_null":null,"newer_user_number":-3,"newer_user_text":"x","newer_user_flag":false,"newer_user_list":["a",1]}}
],"count":1,"count_cap":2000}"#;

#[tokio::test]
async fn keys_newer_than_the_gateway_reach_every_surface_whole() {
    let fake = fake_coder(|| async { response(200, "application/json", NEWER_PAGE) }).await;
    let gateway = gateway(&fake.url, &[]).await;
    let upstream: Value = serde_json::from_str(NEWER_PAGE).expect("fixture");
    let row = &upstream["audit_logs"][0];
    let extra = json!({"on_behalf_of": row["on_behalf_of"], "newer_null": null, "newer_number": 2.5,
        "newer_text": "café", "newer_flag": true, "newer_list": row["newer_list"]});
    let user_extra = json!({"newer_user_key": {"nested": [true]}, "newer_user_null": null,
        "newer_user_number": -3, "newer_user_text": "x", "newer_user_flag": false, "newer_user_list": ["a", 1]});

    // GraphQL, through a compiled plan (the second time) and through async-graphql (the
    // first), alike.
    let query = "{ auditLogs(limit: 10) { auditLogs { extraFields user { hasAiSeat isServiceAccount extraFields } } } }";
    for _ in 0..2 {
        let (_, body) = gateway
            .graphql_with(query, json!({}), &[("coder-session-token", "tok-en")])
            .await;
        let log = &body["data"]["auditLogs"]["auditLogs"][0];
        assert_eq!(log["extraFields"], extra, "{body}");
        assert_eq!(log["user"]["hasAiSeat"], true);
        assert_eq!(log["user"]["isServiceAccount"], false);
        assert_eq!(log["user"]["extraFields"], user_extra);
    }

    // gRPC, the page and the export stream.
    let page = gateway.grpc_page("tok-en", "", 10, 0).await.expect("page");
    let mut client = gateway.grpc().await;
    let mut request = tonic::Request::new(pb::ExportAuditLogsRequest::default());
    request
        .metadata_mut()
        .insert("coder-session-token", "tok-en".parse().expect("ascii"));
    let mut export = client
        .export_audit_logs(request)
        .await
        .expect("export starts")
        .into_inner();
    let streamed = export.message().await.expect("a message").expect("a batch");
    for log in [&page.audit_logs[0], &streamed.audit_logs[0]] {
        let fields = &log.extra_fields.as_ref().expect("extra fields").fields;
        let as_json: Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.clone(), from_pb_value(Some(v))))
            .collect();
        assert_eq!(Value::Object(as_json), doubles(&extra));
        let user = log.user.as_ref().expect("user");
        assert_eq!(
            (user.has_ai_seat, user.is_service_account),
            (Some(true), Some(false))
        );
        let user_fields = &user.extra_fields.as_ref().expect("user extra").fields;
        let as_json: Map<String, Value> = user_fields
            .iter()
            .map(|(k, v)| (k.clone(), from_pb_value(Some(v))))
            .collect();
        assert_eq!(Value::Object(as_json), doubles(&user_extra));
    }

    // NDJSON: Coder's own bytes.
    let ndjson = gateway.ndjson_text("tok-en", "").await;
    let line: Value = serde_json::from_str(ndjson.lines().next().expect("a line")).expect("JSON");
    assert_eq!(&line, row);
}
