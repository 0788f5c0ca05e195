//! The gRPC encoders checked against prost and the proto: every page the served encoder
//! writes decodes to what the message conversion builds, the row schema is the proto's, and
//! JSON values convert to `google.protobuf.Value` kind for kind.

/// The served encoder against prost.
mod encode {
    use prost::Message as _;

    use crate::grpc::encode::list_response;
    use crate::model::{AuditLogView, DiffView, OrganizationView, PageView, RoleView, UserView};
    use crate::{
        demo::{self, DemoConfig},
        grpc::pb,
        model::AuditPage,
    };

    /// The demo Coder's whole trail, as one page.
    fn demo_page() -> Vec<u8> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(demo::audit_page_body(DemoConfig::default(), 1000))
    }

    /// Every row shape the demo Coder sends (missing users and organisations, diffs of
    /// every JSON type, escaped strings, all precisions of time) and the edge values.
    #[test]
    fn pages_decode_with_prost_to_what_the_owned_conversion_builds() {
        let rows = demo_page();
        let edge = serde_json::json!({"count": 0, "count_cap": 0, "audit_logs": [{
            "id": "", "time": "0001-01-01T00:00:00Z", "resource_type": "", "action": "",
            "status_code": -1, "additional_fields": null, "diff": {"": {"old": null, "new": -0.0}},
            "user": {"id": "", "username": "", "created_at": "1969-12-31T23:59:59.999999999Z",
                      "organization_ids": ["", "x"], "roles": [{"name": ""}]}
        }]});
        let newer = serde_json::json!({"count": 1, "audit_logs": [{
            "id": "n", "time": "2026-01-01T00:00:00Z", "resource_type": "user", "action": "write",
            "on_behalf_of": {"id": "x", "roles": [1, 2.5, null, true, "s"]}, "newer_null": null,
            "organization": {"id": "o", "newer_org_key": 1},
            "user": {"id": "u", "username": "n", "created_at": "2026-01-01T00:00:00Z",
                      "has_ai_seat": true, "is_service_account": false, "newer_flag": false}
        }]});
        for body in [
            rows,
            edge.to_string().into_bytes(),
            newer.to_string().into_bytes(),
        ] {
            let view = PageView::from_json(&body).expect("page");
            let decoded = pb::ListAuditLogsResponse::decode(list_response(&view).as_slice())
                .expect("prost decodes it");
            let owned = pb::ListAuditLogsResponse::from(AuditPage::from_json(&body).expect("page"));
            assert_eq!(decoded, owned);
        }
        let newer = newer.to_string();
        let view = PageView::from_json(newer.as_bytes()).expect("page");
        let decoded = pb::ListAuditLogsResponse::decode(list_response(&view).as_slice())
            .expect("prost decodes it");
        let log = &decoded.audit_logs[0];
        let extra = log.extra_fields.as_ref().expect("extra fields");
        assert_eq!(
            extra.fields.keys().collect::<Vec<_>>(),
            ["newer_null", "on_behalf_of"]
        );
        let user = log.user.as_ref().expect("user");
        assert_eq!(
            (user.has_ai_seat, user.is_service_account),
            (Some(true), Some(false))
        );
        assert!(
            user.extra_fields
                .as_ref()
                .is_some_and(|e| e.fields.contains_key("newer_flag"))
        );
        let demo = demo_page();
        let demo = PageView::from_json(&demo).expect("page");
        let decoded = pb::ListAuditLogsResponse::decode(list_response(&demo).as_slice())
            .expect("prost decodes it");
        assert!(
            decoded
                .audit_logs
                .iter()
                .all(|log| log.extra_fields.is_none())
        );
    }

    /// The row schema's protobuf names and numbers are the proto's, field for field.
    #[test]
    fn the_row_schema_is_the_protos() {
        use prost_types::{FileDescriptorSet, field_descriptor_proto::Type};

        use crate::model::FieldMeta;

        let set = FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptors");
        let file = (set.file.iter())
            .find(|f| f.package() == "coder.audit.v1")
            .expect("our file");
        let table: [(&str, &[FieldMeta], Option<u32>); 5] = [
            ("AuditLog", AuditLogView::FIELDS, Some(20)),
            ("AuditDiffField", DiffView::FIELDS, None),
            ("MinimalOrganization", OrganizationView::FIELDS, None),
            ("User", UserView::FIELDS, Some(16)),
            ("SlimRole", RoleView::FIELDS, None),
        ];
        for (name, fields, extra) in table {
            let message = (file.message_type.iter())
                .find(|m| m.name() == name)
                .expect("message in the proto");
            let mut expected: Vec<(String, i32)> = (fields.iter())
                .filter(|f| f.proto > 0)
                .map(|f| (f.key.to_owned(), i32::try_from(f.proto).expect("small")))
                .collect();
            expected.extend(
                extra.map(|n| ("extra_fields".to_owned(), i32::try_from(n).expect("small"))),
            );
            let mut actual: Vec<(String, i32)> = (message.field.iter())
                .map(|f| (f.name().to_owned(), f.number()))
                .collect();
            actual.sort_by_key(|(_, number)| *number);
            expected.sort_by_key(|(_, number)| *number);
            assert_eq!(actual, expected, "{name}");
            for field in &message.field {
                let meta = fields.iter().find(|f| f.key == field.name());
                if field.r#type() == Type::Bool && meta.is_some_and(|m| m.omittable) {
                    assert!(
                        field.proto3_optional(),
                        "{name}.{} is optional",
                        field.name()
                    );
                }
            }
        }
    }
}

/// The message conversion.
mod convert {
    use serde_json::json;

    use prost_types::value::Kind;
    use serde_json::value::RawValue;

    use crate::{
        grpc::convert::{audit_log, json as to_value},
        model,
    };

    fn kind(value: &prost_types::Value) -> &Kind {
        value.kind.as_ref().expect("kind")
    }

    #[test]
    fn json_values_of_every_type_convert() {
        let raw = RawValue::from_string(
            json!({"a": null, "b": true, "n": 3_600_000_000_000_i64, "s": "x", "l": [1, "2"], "o": {"Time": "t", "Valid": true}})
                .to_string(),
        )
        .expect("raw JSON");
        let value = to_value(&raw);
        let Kind::StructValue(fields) = kind(&value) else {
            panic!("struct")
        };
        assert!(matches!(kind(&fields.fields["a"]), Kind::NullValue(0)));
        assert!(matches!(kind(&fields.fields["b"]), Kind::BoolValue(true)));
        assert!(
            matches!(kind(&fields.fields["n"]), Kind::NumberValue(n) if (*n - 3.6e12).abs() < f64::EPSILON)
        );
        assert!(matches!(kind(&fields.fields["s"]), Kind::StringValue(s) if s == "x"));
        let Kind::ListValue(list) = kind(&fields.fields["l"]) else {
            panic!("list")
        };
        assert_eq!(list.values.len(), 2);
        assert!(matches!(kind(&fields.fields["o"]), Kind::StructValue(s) if s.fields.len() == 2));
    }

    #[test]
    fn optional_parts_stay_unset_and_null_additional_fields_is_null_value() {
        let page = json!({"count": 1, "audit_logs": [{
            "id": "i", "time": "2026-04-02T09:02:11.5+02:00", "resource_type": "user", "action": "write",
            "diff": {"hashed_password": {"secret": true}, "ttl": {"old": 0, "secret": false}},
            "additional_fields": null, "user": null
        }]});
        let page = model::AuditPage::from_json(page.to_string().as_bytes()).expect("page");
        let log = page.audit_logs.into_iter().next().expect("row");
        let pb = audit_log(log);
        assert_eq!(pb.organization, None);
        assert_eq!(pb.user, None);
        assert!(matches!(
            pb.additional_fields.as_ref().map(kind),
            Some(Kind::NullValue(0))
        ));
        assert_eq!(pb.diff["hashed_password"].old, None);
        assert_eq!(pb.diff["hashed_password"].new, None);
        assert!(pb.diff["hashed_password"].secret);
        assert!(pb.diff["ttl"].old.is_some());
        assert_eq!(pb.diff["ttl"].new, None);
        let time = pb.time.expect("time");
        assert_eq!(time.seconds, 1_775_113_331);
        assert_eq!(time.nanos, 500_000_000);
    }
}
