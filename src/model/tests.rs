//! The page and its rows as Coder sends them, from every Coder version.

use std::borrow::Cow;

use serde_json::{Value, json};

use super::*;

#[test]
fn pages_and_rows_are_objects_not_arrays_of_their_fields() {
    assert!(AuditPage::from_json(b"[null, 0, null]").is_err());
    assert!(Row::page_from_json(b"[null, 0]").is_err());
    assert!(
        AuditPage::from_json(br#"{"audit_logs": [["id", "2026-01-01T00:00:00Z"]], "count": 1}"#)
            .is_err()
    );
    assert!(
        Row::page_from_json(br#"{"audit_logs": [["id", "2026-01-01T00:00:00Z"]], "count": 1}"#)
            .is_err()
    );
    let page = AuditPage::from_json(br#"{"audit_logs": null, "count": 0}"#).expect("a page");
    assert!(page.audit_logs.is_empty());
}

/// A raw JSON side as a value tree, for comparing.
fn tree(raw: Option<&RawValue>) -> Option<Value> {
    raw.map(|r| serde_json::from_str(r.get()).expect("valid JSON"))
}

fn row(extra: &Value) -> Value {
    let mut row = json!({
        "id": "0b7c2a53-2a1f-4e37-9f3c-5d8e0e6a1c01",
        "request_id": "8f1a6b7e-3d2c-4b7a-9a51-2f0d6e4c9b10",
        "time": "2026-04-02T09:15:42.123456Z",
        "ip": "10.0.4.17",
        "user_agent": "curl/8.5.0",
        "resource_type": "workspace",
        "resource_id": "ef8d1cf4-82de-4fd9-8980-047dad6d06b5",
        "resource_target": "bruno-dev",
        "resource_icon": "",
        "action": "write",
        "diff": {},
        "status_code": 200,
        "additional_fields": {},
        "description": "{user} updated workspace {target}",
        "resource_link": "/@bruno/bruno-dev",
        "is_deleted": false,
        "organization_id": "00000000-0000-0000-0000-000000000000",
        "user": null
    });
    for (k, v) in extra.as_object().expect("object") {
        row[k] = v.clone();
    }
    row
}

fn parse(row: &Value) -> AuditLog {
    parse_row(&row.to_string()).expect("row parses")
}

fn diff<'a>(log: &'a AuditLog, field: &str) -> &'a DiffField {
    let entry = log.diff.iter().find(|change| change.field == field);
    entry.expect("changed field")
}

#[test]
fn null_user_and_missing_organization_are_none() {
    let log = parse(&row(&json!({})));
    assert!(log.user.is_none());
    assert!(log.organization.is_none());
    assert_eq!(log.organization_id, "00000000-0000-0000-0000-000000000000");
}

#[test]
fn diff_sides_omitted_are_none_null_is_kept_and_any_json_type_too() {
    let log = parse(&row(&json!({"diff": {
        "ttl": {"old": 0, "new": 3_600_000_000_000_i64, "secret": false},
        "hashed_password": {"secret": true},
        "roles": {"old": null, "new": ["admin", "auditor"], "secret": false},
        "one_time_passcode_expires_at": {"new": {"Time": "2024-10-22T09:03:23.961702Z", "Valid": true}, "secret": false},
        "private_key": {"old": "", "new": "", "secret": true}
    }})));
    let keys: Vec<_> = log.diff.iter().map(|change| &*change.field).collect();
    assert_eq!(
        keys,
        [
            "hashed_password",
            "one_time_passcode_expires_at",
            "private_key",
            "roles",
            "ttl"
        ]
    );
    let hashed = diff(&log, "hashed_password");
    assert!(hashed.old.is_none() && hashed.new.is_none() && hashed.secret);
    assert_eq!(
        diff(&log, "roles").old.as_deref().map(RawValue::get),
        Some("null")
    );
    assert_eq!(
        tree(diff(&log, "roles").new.as_deref()),
        Some(json!(["admin", "auditor"]))
    );
    assert_eq!(
        tree(diff(&log, "ttl").new.as_deref()),
        Some(json!(3_600_000_000_000_i64))
    );
    assert_eq!(
        tree(diff(&log, "private_key").old.as_deref()),
        Some(json!(""))
    );
    assert_eq!(
        tree(diff(&log, "one_time_passcode_expires_at").new.as_deref()),
        Some(json!({"Time": "2024-10-22T09:03:23.961702Z", "Valid": true}))
    );
}

#[test]
fn null_diff_and_null_additional_fields_are_accepted() {
    let log = parse(&row(&json!({"diff": null, "additional_fields": null})));
    assert!(log.diff.is_empty());
    assert_eq!(
        log.additional_fields.as_deref().map(RawValue::get),
        Some("null")
    );
    let mut absent = row(&json!({}));
    absent
        .as_object_mut()
        .map(|row| row.remove("additional_fields"));
    assert!(parse(&absent).additional_fields.is_none());
}

#[test]
fn additional_fields_of_any_shape_pass_through_in_key_order() {
    let fields = json!({"workspace_id": "x", "build_number": "7", "nested": [1, {"a": null}], "big": 9_007_199_254_740_993_u64});
    let log = parse(&row(&json!({ "additional_fields": fields.clone() })));
    let parsed = tree(log.additional_fields.as_deref()).expect("present");
    assert_eq!(parsed, fields);
    let keys: Vec<_> = parsed.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["workspace_id", "build_number", "nested", "big"]);
    assert!(
        log.additional_fields
            .expect("present")
            .get()
            .contains("9007199254740993")
    );
    let log = parse(&row(&json!({ "additional_fields": [0] })));
    assert_eq!(tree(log.additional_fields.as_deref()), Some(json!([0])));
}

#[test]
fn unknown_keys_and_unknown_enum_values_are_accepted() {
    let log = parse(&row(&json!({
        "on_behalf_of": {"id": "x"},
        "action": "teleport",
        "resource_type": "quantum_flux",
        "user": {"id": "u", "username": "old", "email": "o@x", "created_at": "2025-01-01T00:00:00Z",
                  "has_ai_seat": false, "is_service_account": true, "roles": [{"name": "owner"}]}
    })));
    assert_eq!(log.action, "teleport");
    assert_eq!(log.resource_type, "quantum_flux");
    let user = log.user.expect("user");
    assert_eq!(user.name, "");
    assert_eq!(user.avatar_url, "");
    assert_eq!(user.updated_at, None);
    assert_eq!(user.last_seen_at, None);
    assert_eq!(user.roles[0].display_name, "");
    assert_eq!(user.roles[0].organization_id, "");
    assert_eq!(user.has_ai_seat, Some(false));
    assert_eq!(user.is_service_account, Some(true));
    assert!(user.extra.is_empty());
    let extra: Vec<_> = log.extra.iter().map(|(k, v)| (&**k, v.get())).collect();
    assert_eq!(extra, [("on_behalf_of", r#"{"id":"x"}"#)]);
}

#[test]
fn keys_newer_than_the_schema_are_kept_whole_in_coder_order() {
    let text = row(&json!({})).to_string().replacen(
        '{',
        r#"{"z_new":{"a":[1,null]},"a_new":null,"n":1.50,"s":"é","b":true,"#,
        1,
    );
    let view: AuditLogView<'_> = serde_json::from_str(&text).expect("row");
    let extra: Vec<_> = view.extra.iter().map(|(k, v)| (&**k, v.get())).collect();
    assert_eq!(
        extra,
        [
            ("z_new", r#"{"a":[1,null]}"#),
            ("a_new", "null"),
            ("n", "1.50"),
            ("s", r#""é""#),
            ("b", "true")
        ]
    );
    let owned = view.into_owned();
    assert_eq!(owned.extra.len(), 5);
    assert!(parse(&row(&json!({}))).extra.is_empty());
}

#[test]
fn page_without_count_cap_is_an_exact_count() {
    let page = AuditPage::from_json(br#"{"audit_logs": [], "count": 7}"#).expect("page");
    assert_eq!(page.count_cap, None);
    let page = AuditPage::from_json(br#"{"audit_logs": null, "count": 0, "count_cap": 2000}"#)
        .expect("page");
    assert!(page.audit_logs.is_empty());
    assert_eq!(page.count_cap, Some(2000));
}

#[test]
fn escaped_html_characters_decode() {
    let body = br#"{"audit_logs":[{"id":"i","time":"2026-01-01T00:00:00Z","resource_type":"user","action":"write","user_agent":"a \u003cb\u003e \u0026 \u2028"}],"count":1}"#;
    let page = AuditPage::from_json(body).expect("page");
    assert_eq!(page.audit_logs[0].user_agent, "a <b> & \u{2028}");
    let view = PageView::from_json(body).expect("page");
    assert!(matches!(view.audit_logs[0].id, Cow::Borrowed("i")));
    assert!(
        matches!(&view.audit_logs[0].user_agent, Cow::Owned(agent) if agent == "a <b> & \u{2028}")
    );
}

#[test]
fn a_repeated_diff_field_keeps_its_last_value_in_name_order() {
    let log = parse(&row(&json!({})));
    assert!(log.diff.is_empty());
    let text = row(&json!({})).to_string().replace(
        r#""diff":{}"#,
        r#""diff":{"b":{"old":1},"a":{"new":2},"b":{"old":3}}"#,
    );
    let log = parse_row(&text).expect("row");
    let keys: Vec<_> = log.diff.iter().map(|change| &*change.field).collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(tree(diff(&log, "b").old.as_deref()), Some(json!(3)));
    let view: AuditLogView<'_> = serde_json::from_str(&text).expect("row");
    let keys: Vec<_> = view.diff.iter().map(|change| &*change.field).collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(view.diff[1].old.as_deref().map(RawValue::get), Some("3"));
}

#[test]
fn a_value_coder_could_never_send_is_recorded_with_its_row_and_field() {
    let mut bad_user = row(&json!({}));
    bad_user["id"] = json!("row-1");
    bad_user["user"] =
        json!({"id": "u", "username": "n", "email": "e", "created_at": "", "roles": []});
    let mut bad_status = row(&json!({}));
    bad_status["id"] = json!("row-2");
    bad_status["status_code"] = json!("200");
    bad_status["time"] = json!("yesterday");
    let good = row(&json!({}));
    let body = json!({"audit_logs": [good, bad_user, bad_status], "count": 3}).to_string();
    let page = PageView::from_json(body.as_bytes()).expect("served around the bad values");
    assert_eq!(page.audit_logs.len(), 3);
    assert!(page.audit_logs[0].first_invalid().is_none());
    let invalid = page.audit_logs[1].first_invalid().expect("invalid");
    assert_eq!(
        (&*invalid.row, &*invalid.field),
        ("row-1", "user.created_at"),
        "{}",
        invalid.reason
    );
    assert!(invalid.reason.contains("RFC 3339"), "{}", invalid.reason);
    let invalid = page.first_invalid().expect("invalid");
    assert_eq!(invalid.row, "row-1");
    let invalid = page.audit_logs[2].first_invalid().expect("invalid");
    assert_eq!((&*invalid.row, &*invalid.field), ("row-2", "time"));
    assert_eq!(page.audit_logs[2].time, Timestamp::UNIX_EPOCH);
    assert_eq!(page.audit_logs[2].status_code, 0);
    let fields: Vec<&str> = page.audit_logs[2]
        .invalid
        .iter()
        .map(|i| &*i.field)
        .collect();
    assert_eq!(fields, ["time", "status_code"]);
    let owned = AuditPage::from_json(body.as_bytes()).expect("owned too");
    assert_eq!(
        owned.audit_logs[1]
            .user
            .as_ref()
            .and_then(|u| u.invalid.first())
            .map(|i| &*i.row),
        Some("row-1")
    );
    // Not a page at all stays an error.
    assert!(PageView::from_json(br#"{"audit_logs": [{"time": 1}], "count": 1}"#).is_err());
}

#[test]
fn a_row_without_a_readable_time_takes_its_neighbours_on_the_side_a_walk_comes_from() {
    let page = br#"{"audit_logs": [
        {"id": "a", "time": "2026-01-03T00:00:00Z", "resource_type": "user", "action": "write"},
        {"id": "b", "time": "yesterday", "resource_type": "user", "action": "write"},
        {"id": "c", "time": "2026-01-01T00:00:00Z", "resource_type": "user", "action": "write"},
        {"id": 42, "time": "2025-12-31T00:00:00Z", "resource_type": "user", "action": "write"}
    ], "count": 4}"#;
    let times = |rows: &[Row]| rows.iter().map(|r| r.time.to_string()).collect::<Vec<_>>();
    let mut rows = Row::page_from_json(page).expect("the page reads");
    let unplaced: Vec<_> = rows
        .iter()
        .map(|r| r.unplaced.as_ref().map(|i| i.field.as_str()))
        .collect();
    assert_eq!(unplaced, [None, Some("time"), None, Some("id")]);
    assert_eq!(rows[1].id, "b");
    assert!(rows[3].id.starts_with("unreadable-"), "{}", rows[3].id);
    assert_eq!(
        rows[3].time.to_string(),
        "2025-12-31T00:00:00Z",
        "its own time is readable"
    );
    Row::place(&mut rows, Toward::Older, None);
    assert_eq!(times(&rows)[1], "2026-01-03T00:00:00Z");
    Row::place(&mut rows, Toward::Newer, None);
    assert_eq!(times(&rows)[1], "2026-01-01T00:00:00Z");
    // First on its page, a row takes the walk's position.
    let mut rows = Row::page_from_json(&page[..]).expect("the page reads");
    rows.remove(0);
    let bound = Timestamp::from_unix(1_767_400_000, 0);
    Row::place(&mut rows, Toward::Older, Some(bound));
    assert_eq!(rows[0].time, bound);
}
