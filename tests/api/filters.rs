//! Typed filters: every known enum value is in both schemas, the compiled `q` means exactly
//! the filter (checked by the demo's own parser and against the upstream's own answers), and
//! what Coder's language cannot say is refused before any upstream call, over both protocols.

use std::cell::RefCell;

use chrono::NaiveDate;
use coder_audit_gateway::{
    demo::{self, DEMO_TOKEN, DemoConfig},
    graphql,
    grpc::pb,
    internals::query::{AuditLogFilter, compile},
    model::known::{self, KnownValue},
};
use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::{Value, json};
use tonic::Code;
use uuid::Uuid;

use crate::{
    fidelity::{assert_grpc_matches, expected_graphql_page},
    helpers::{demo_upstream, fake_coder, gateway, graphql_code, response, upstream_page},
};

#[test]
fn every_known_value_is_in_the_graphql_and_protobuf_enums() {
    let sdl = graphql::schema_builder().finish().sdl();
    for (name, values) in [
        ("AuditAction", known::ACTIONS),
        ("ResourceType", known::RESOURCE_TYPES),
        ("BuildReason", known::BUILD_REASONS),
    ] {
        let block = sdl
            .split(&format!("enum {name} {{"))
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .unwrap_or_else(|| panic!("no enum {name}"));
        let names: Vec<&str> = block
            .lines()
            .map(str::trim)
            .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
            .map(|l| l.split_whitespace().next().unwrap_or(l))
            .collect();
        assert_eq!(names.len(), values.len(), "{name}: {names:?}");
        for KnownValue {
            value, deprecation, ..
        } in values
        {
            let upper = value.to_ascii_uppercase();
            let line = block
                .lines()
                .map(str::trim)
                .find(|l| l.split_whitespace().next() == Some(upper.as_str()))
                .unwrap_or_else(|| panic!("{name} lacks {upper}"));
            assert_eq!(
                line.contains("@deprecated"),
                deprecation.is_some(),
                "{name}.{upper}: {line}"
            );
        }
    }
    let proto = |prefix: &str, value: &str| format!("{prefix}{}", value.to_ascii_uppercase());
    for KnownValue { value, .. } in known::ACTIONS {
        assert!(
            pb::AuditAction::from_str_name(&proto("AUDIT_ACTION_", value)).is_some(),
            "{value}"
        );
    }
    for KnownValue { value, .. } in known::RESOURCE_TYPES {
        assert!(
            pb::ResourceType::from_str_name(&proto("RESOURCE_TYPE_", value)).is_some(),
            "{value}"
        );
    }
    for KnownValue { value, .. } in known::BUILD_REASONS {
        assert!(
            pb::BuildReason::from_str_name(&proto("BUILD_REASON_", value)).is_some(),
            "{value}"
        );
    }
    let count = |valid: &dyn Fn(i32) -> bool| (1..200).filter(|n| valid(*n)).count();
    assert_eq!(
        count(&|n| pb::AuditAction::try_from(n).is_ok()),
        known::ACTIONS.len()
    );
    assert_eq!(
        count(&|n| pb::ResourceType::try_from(n).is_ok()),
        known::RESOURCE_TYPES.len()
    );
    assert_eq!(
        count(&|n| pb::BuildReason::try_from(n).is_ok()),
        known::BUILD_REASONS.len()
    );
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 :+@._-]{0,12}",
        "\\PC{0,8}",
        Just("me".to_owned()),
        Just(String::new()),
        Just("say \"hi\"".to_owned()),
        Just(":edge:".to_owned()),
        Just("  ".to_owned()),
    ]
}

fn uuid_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
        "[0-9a-f-]{0,12}"
    ]
}

fn date_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (1990..2040_i32, 1..=12_u32, 1..=31_u32)
            .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        "[0-9-]{0,11}"
    ]
}

/// Resource types the gateway knows that the demo's server (the reference's Coder commit)
/// does not accept in `resource_type:`.
const NEWER_THAN_THE_DEMO: [&str; 4] = [
    "chat_project",
    "chat_model_config",
    "chat_operational_settings",
    "experiment_rule",
];

fn enum_value(values: &'static [KnownValue]) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(proptest::sample::select(values).prop_map(|k| k.value.to_owned()))
}

fn filters() -> impl Strategy<Value = AuditLogFilter> {
    (
        (
            enum_value(known::ACTIONS),
            enum_value(known::RESOURCE_TYPES),
            enum_value(known::BUILD_REASONS),
        ),
        (
            proptest::option::of(uuid_text()),
            proptest::option::of(uuid_text()),
        ),
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(prop_oneof![text().boxed(), uuid_text().boxed()]),
        ),
        (
            proptest::option::of(date_text()),
            proptest::option::of(date_text()),
        ),
    )
        .prop_map(
            |(
                (action, resource_type, build_reason),
                (resource_id, request_id),
                (resource_target, username, email, organization),
                (date_from, date_to),
            )| AuditLogFilter {
                action,
                resource_type,
                resource_id,
                resource_target,
                username,
                email,
                date_from,
                date_to,
                organization,
                build_reason,
                request_id,
            },
        )
}

/// A `YYYY-MM-DD` date: four, two and two ASCII digits (chrono alone also reads signed years
/// such as `-00000-1-1`, which Coder's Go parser refuses).
fn date(text: &str) -> Option<NaiveDate> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shaped
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
}

/// Whether Coder's language can say the filter, decided independently of the compiler.
fn expressible(f: &AuditLogFilter) -> bool {
    let texts = [
        &f.resource_target,
        &f.username,
        &f.email,
        &f.organization,
        &f.resource_id,
        &f.request_id,
        &f.date_from,
        &f.date_to,
    ];
    let plain = texts
        .iter()
        .filter_map(|v| v.as_deref())
        .all(|v| !v.is_empty() && !v.contains('"'));
    let uuids = [&f.resource_id, &f.request_id]
        .iter()
        .filter_map(|v| v.as_deref())
        .all(|v| Uuid::try_parse(v).is_ok());
    let dates = [&f.date_from, &f.date_to]
        .iter()
        .filter_map(|v| v.as_deref())
        .all(|v| date(v).is_some());
    let ordered = match (
        f.date_from.as_deref().and_then(date),
        f.date_to.as_deref().and_then(date),
    ) {
        (Some(from), Some(to)) => from <= to,
        _ => true,
    };
    plain && uuids && dates && ordered
}

#[test]
fn compiled_queries_mean_exactly_the_filter_to_coders_parser() {
    let lower = |v: &Option<String>| v.as_deref().map(str::to_lowercase);
    proptest!(ProptestConfig::with_cases(512), |(filter in filters())| {
        match compile("", &filter) {
            Ok(q) => {
                prop_assert!(expressible(&filter), "compiled an inexpressible filter to {q:?}");
                let resolved = RefCell::new(None);
                let parsed = demo::search::parse(&q, |name| {
                    *resolved.borrow_mut() = Some(name.to_owned());
                    Some(Uuid::from_u128(42))
                });
                // A server checks resource types against its own database's list, which
                // lags the gateway's: a newer type is Coder's 400, passed on as such.
                if let Some(newer) = filter.resource_type.as_deref().filter(|t| NEWER_THAN_THE_DEMO.contains(t)) {
                    let errors = parsed.expect_err("a newer type is refused");
                    prop_assert_eq!(errors.len(), 1);
                    prop_assert_eq!(&errors[0].field, "resource_type");
                    prop_assert!(errors[0].detail.contains(newer), "{:?}", errors);
                    return Ok(());
                }
                let parsed = parsed.map_err(|e| TestCaseError::fail(format!("{q:?} rejected: {e:?}")))?;
                prop_assert_eq!(parsed.action, filter.action.clone());
                prop_assert_eq!(parsed.resource_type, filter.resource_type.clone());
                prop_assert_eq!(parsed.build_reason, filter.build_reason.clone());
                prop_assert_eq!(parsed.resource_id, filter.resource_id.as_deref().map(|v| Uuid::try_parse(v).expect("valid")));
                prop_assert_eq!(parsed.request_id, filter.request_id.as_deref().map(|v| Uuid::try_parse(v).expect("valid")));
                prop_assert_eq!(parsed.resource_target, lower(&filter.resource_target));
                prop_assert_eq!(parsed.username, lower(&filter.username));
                prop_assert_eq!(parsed.email, lower(&filter.email));
                prop_assert_eq!(parsed.date_from, filter.date_from.as_deref().and_then(date));
                prop_assert_eq!(parsed.date_to, filter.date_to.as_deref().and_then(date));
                let expected_org = lower(&filter.organization).map(|name| {
                    Uuid::try_parse(&name).unwrap_or_else(|_| {
                        assert_eq!(resolved.borrow().as_deref(), Some(name.as_str()), "resolved another name");
                        Uuid::from_u128(42)
                    })
                });
                prop_assert_eq!(parsed.organization, expected_org);
            }
            Err(errors) => {
                prop_assert!(!expressible(&filter), "refused an expressible filter: {errors:?}");
                prop_assert!(errors.iter().all(|e| e.field.starts_with("filter.")));
            }
        }
    });
}

/// The GraphQL form of a filter.
fn graphql_filter(f: &AuditLogFilter) -> Value {
    let upper = |v: &Option<String>| v.as_deref().map(str::to_ascii_uppercase);
    json!({
        "action": upper(&f.action), "resourceType": upper(&f.resource_type), "buildReason": upper(&f.build_reason),
        "resourceTarget": f.resource_target, "username": f.username, "email": f.email,
        "dateFrom": f.date_from, "dateTo": f.date_to, "organization": f.organization,
        "resourceId": f.resource_id, "requestId": f.request_id,
    })
}

/// The protobuf form of a filter.
fn grpc_filter(f: &AuditLogFilter) -> pb::AuditLogFilter {
    let upper = |prefix: &str, v: &Option<String>| {
        v.as_deref()
            .map(|v| format!("{prefix}{}", v.to_ascii_uppercase()))
    };
    pb::AuditLogFilter {
        action: upper("AUDIT_ACTION_", &f.action)
            .and_then(|n| pb::AuditAction::from_str_name(&n))
            .map_or(0, |e| e as i32),
        resource_type: upper("RESOURCE_TYPE_", &f.resource_type)
            .and_then(|n| pb::ResourceType::from_str_name(&n))
            .map_or(0, |e| e as i32),
        build_reason: upper("BUILD_REASON_", &f.build_reason)
            .and_then(|n| pb::BuildReason::from_str_name(&n))
            .map_or(0, |e| e as i32),
        resource_id: f.resource_id.clone(),
        resource_target: f.resource_target.clone(),
        username: f.username.clone(),
        email: f.email.clone(),
        date_from: f.date_from.clone(),
        date_to: f.date_to.clone(),
        organization: f.organization.clone(),
        request_id: f.request_id.clone(),
    }
}

/// A `q` written by hand, quoting every value: what a careful user would type.
fn hand_written(f: &AuditLogFilter) -> String {
    [
        ("action", &f.action),
        ("resource_type", &f.resource_type),
        ("build_reason", &f.build_reason),
        ("resource_target", &f.resource_target),
        ("username", &f.username),
        ("email", &f.email),
        ("date_from", &f.date_from),
        ("date_to", &f.date_to),
        ("organization", &f.organization),
    ]
    .iter()
    .filter_map(|(key, value)| value.as_deref().map(|v| format!("{key}:\"{v}\"")))
    .collect::<Vec<_>>()
    .join(" ")
}

fn demo_filters() -> impl Strategy<Value = AuditLogFilter> {
    let pick = |values: &'static [&'static str]| {
        proptest::option::of(proptest::sample::select(values).prop_map(str::to_owned))
    };
    (
        (
            enum_value(known::ACTIONS),
            proptest::option::of(
                proptest::sample::select(
                    &[
                        "workspace",
                        "workspace_build",
                        "template",
                        "user",
                        "api_key",
                    ][..],
                )
                .prop_map(str::to_owned),
            ),
            enum_value(known::BUILD_REASONS),
        ),
        (
            pick(&[
                "rust monorepo",
                "docker",
                "gpu:cuda",
                "bruno-dev",
                "Mixed-Case-WS",
            ]),
            pick(&["admin", "carol", "me", "frank", "Bruno"]),
            pick(&["bruno@example.com", "Carol.Ng@Example.com"]),
        ),
        (
            pick(&["2026-03-01", "2026-03-25"]),
            pick(&["2026-03-31", "2026-04-02"]),
            pick(&["coder", "platform", "data-science"]),
        ),
    )
        .prop_map(
            |(
                (action, resource_type, build_reason),
                (resource_target, username, email),
                (date_from, date_to, organization),
            )| AuditLogFilter {
                action,
                resource_type,
                build_reason,
                resource_target,
                username,
                email,
                date_from,
                date_to,
                organization,
                ..AuditLogFilter::default()
            },
        )
}

#[test]
fn the_gateway_answers_a_filter_as_the_upstream_answers_the_hand_written_q() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (gateway, upstream) = runtime.block_on(async {
        let upstream = demo_upstream(DemoConfig::default()).await;
        (gateway(&upstream, &[]).await, upstream)
    });
    let mut runner = TestRunner::new(ProptestConfig::with_cases(48));
    let non_empty = std::cell::Cell::new(0);
    runner
        .run(&demo_filters(), |filter| {
            runtime.block_on(async {
                let direct =
                    upstream_page(&upstream, DEMO_TOKEN, &hand_written(&filter), 100, 0).await;
                if direct["count"] != 0 {
                    non_empty.set(non_empty.get() + 1);
                }
                let body = gateway
                    .graphql_filtered(DEMO_TOKEN, "", &graphql_filter(&filter), 100, 0)
                    .await;
                assert_eq!(body, expected_graphql_page(&direct), "{filter:?}");
                let page = gateway
                    .grpc_filtered(
                        DEMO_TOKEN,
                        pb::ListAuditLogsRequest {
                            limit: 100,
                            filter: Some(grpc_filter(&filter)),
                            ..Default::default()
                        },
                    )
                    .await
                    .expect("page");
                assert_grpc_matches(&direct, &page);
            });
            Ok(())
        })
        .expect("property holds");
    assert!(
        non_empty.get() > 0,
        "no generated filter matched any row: the property checked nothing"
    );
}

#[tokio::test]
async fn q_and_filter_combine_with_and() {
    let upstream = demo_upstream(DemoConfig::default()).await;
    let gateway = gateway(&upstream, &[]).await;
    let direct = upstream_page(
        &upstream,
        DEMO_TOKEN,
        "resource_type:workspace_build build_reason:autostart",
        100,
        0,
    )
    .await;
    let body = gateway
        .graphql_filtered(
            DEMO_TOKEN,
            "resource_type:workspace_build",
            &json!({"buildReason": "AUTOSTART"}),
            100,
            0,
        )
        .await;
    assert_eq!(body, expected_graphql_page(&direct));
}

/// Asserts one filter is refused over both protocols, naming the field each protocol uses.
async fn assert_refused(
    gateway: &crate::helpers::Gateway,
    (q, graphql, grpc): (&str, &Value, &pb::AuditLogFilter),
    (graphql_field, grpc_field): (&str, &str),
    detail: &str,
) {
    let body = gateway.graphql_filtered("tok-en", q, graphql, 10, 0).await;
    assert_eq!(graphql_code(&body), "BAD_USER_INPUT", "{body}");
    let validation = &body["errors"][0]["extensions"]["validations"][0];
    assert_eq!(validation["field"], graphql_field, "{body}");
    assert!(
        validation["detail"]
            .as_str()
            .expect("detail")
            .contains(detail),
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains(graphql_field),
        "{body}"
    );

    let status = gateway
        .grpc_filtered(
            "tok-en",
            pb::ListAuditLogsRequest {
                q: q.to_owned(),
                limit: 10,
                filter: Some(grpc.clone()),
                ..Default::default()
            },
        )
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = tonic_types::StatusExt::get_error_details(&status);
    let violation = &details.bad_request().expect("BadRequest").field_violations[0];
    assert_eq!(violation.field, grpc_field);
    assert!(violation.description.contains(detail), "{status:?}");
}

#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "one row per refused filter reads best as a table"
)]
async fn inexpressible_or_invalid_filters_are_refused_before_any_upstream_call() {
    let fake = fake_coder(|| async { response(500, "text/plain", "must not be called") }).await;
    let gateway = gateway(&fake.url, &[]).await;
    let cases: &[(&str, Value, pb::AuditLogFilter, &str, &str, &str)] = &[
        (
            "",
            json!({"resourceId": "not-a-uuid"}),
            pb::AuditLogFilter {
                resource_id: Some("not-a-uuid".into()),
                ..Default::default()
            },
            "filter.resourceId",
            "filter.resource_id",
            "must be a UUID",
        ),
        (
            "",
            json!({"requestId": "123"}),
            pb::AuditLogFilter {
                request_id: Some("123".into()),
                ..Default::default()
            },
            "filter.requestId",
            "filter.request_id",
            "must be a UUID",
        ),
        (
            "",
            json!({"dateFrom": "2026-02-30"}),
            pb::AuditLogFilter {
                date_from: Some("2026-02-30".into()),
                ..Default::default()
            },
            "filter.dateFrom",
            "filter.date_from",
            "not a calendar date",
        ),
        (
            "",
            json!({"dateTo": "2026-04-02T00:00:00Z"}),
            pb::AuditLogFilter {
                date_to: Some("2026-04-02T00:00:00Z".into()),
                ..Default::default()
            },
            "filter.dateTo",
            "filter.date_to",
            "YYYY-MM-DD",
        ),
        (
            "",
            json!({"dateFrom": "2026-04-02", "dateTo": "2026-04-01"}),
            pb::AuditLogFilter {
                date_from: Some("2026-04-02".into()),
                date_to: Some("2026-04-01".into()),
                ..Default::default()
            },
            "filter.dateFrom",
            "filter.date_from",
            "is after date_to",
        ),
        (
            "",
            json!({"resourceTarget": "say \"hi\""}),
            pb::AuditLogFilter {
                resource_target: Some("say \"hi\"".into()),
                ..Default::default()
            },
            "filter.resourceTarget",
            "filter.resource_target",
            "double quote",
        ),
        (
            "",
            json!({"username": ""}),
            pb::AuditLogFilter {
                username: Some(String::new()),
                ..Default::default()
            },
            "filter.username",
            "filter.username",
            "must not be empty",
        ),
        (
            "action:delete",
            json!({"action": "CREATE"}),
            pb::AuditLogFilter {
                action: pb::AuditAction::Create as i32,
                ..Default::default()
            },
            "filter.action",
            "filter.action",
            "also set in q",
        ),
        (
            "workspace",
            json!({"resourceType": "TEMPLATE"}),
            pb::AuditLogFilter {
                resource_type: pb::ResourceType::Template as i32,
                ..Default::default()
            },
            "filter.resourceType",
            "filter.resource_type",
            "also set in q",
        ),
    ];
    for (q, graphql, grpc, graphql_field, grpc_field, detail) in cases {
        assert_refused(
            &gateway,
            (q, graphql, grpc),
            (graphql_field, grpc_field),
            detail,
        )
        .await;
    }

    let status = gateway
        .grpc_filtered(
            "tok-en",
            pb::ListAuditLogsRequest {
                limit: 10,
                filter: Some(pb::AuditLogFilter {
                    action: 99,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("filter.action: 99 is not a value"),
        "{status:?}"
    );

    let body = gateway
        .graphql_filtered("tok-en", "", &json!({"action": "TELEPORT"}), 10, 0)
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("does not contain the value \"TELEPORT\""),
        "{body}"
    );
    assert!(fake.requests().is_empty(), "the upstream was called");
}
