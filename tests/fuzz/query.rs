//! Coder's search language, as the gateway tokenizes `q` and compiles typed filters into it:
//! strings from Coder's keys, values, quotes, colons and spaces, and arbitrary text. Valid
//! or not, the answer is a compiled `q` or named validations, never a panic; a compiled `q`
//! carries each filter constraint, and nothing over the length limit is parsed.

use coder_audit_gateway::internals::query::{AuditLogFilter, compile_bounded};
use proptest::prelude::*;

use crate::{Counter, config};

static INPUTS: Counter = Counter::new("q tokenizer and filter compiler");
const MAX: usize = 4096;

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "action:",
            "resource_type:",
            "resource_id:",
            "resource_target:",
            "username:",
            "email:",
            "date_from:",
            "date_to:",
            "organization:",
            "build_reason:",
            "request_id:",
            "me",
            "login",
            "workspace_build",
            "2026-01-31",
            "2026-02-30",
            "\"",
            "\\",
            ":",
            " ",
            "  ",
            "\t",
            "=",
            "AND",
            "é",
            "\u{0}",
            "00000000-0000-0000-0000-000000000000",
        ])
        .prop_map(str::to_owned),
        ".{0,12}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..12).prop_map(|pieces| pieces.concat())
}

fn value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        text().prop_map(Some),
        "[a-z0-9 :\"-]{0,40}".prop_map(Some)
    ]
}

prop_compose! {
    fn filter()(
        action in value(), resource_type in value(), resource_id in value(),
        resource_target in value(), username in value(), email in value(),
        date_from in value(), date_to in value(), organization in value(),
        build_reason in value(), request_id in value(),
    ) -> AuditLogFilter {
        AuditLogFilter {
            action, resource_type, resource_id, resource_target, username, email, date_from,
            date_to, organization, build_reason, request_id,
        }
    }
}

fn check(q: &str, filter: &AuditLogFilter, max: usize) {
    INPUTS.tick();
    match compile_bounded(q, filter, max) {
        Ok(compiled) => {
            assert!(q.len() <= max);
            assert!(compiled.len() <= max * 4);
            for value in [&filter.username, &filter.action, &filter.email]
                .into_iter()
                .flatten()
            {
                assert!(
                    compiled.contains(value.as_str()),
                    "{compiled:?} lacks {value:?}"
                );
            }
        }
        Err(validations) => {
            assert!(!validations.is_empty(), "refused without a reason");
            for validation in validations {
                assert!(!validation.field.is_empty());
                assert!(
                    validation.detail.len() <= 512,
                    "{}",
                    validation.detail.len()
                );
            }
        }
    }
}

#[test]
fn q_tokenizer_and_filter_compiler() {
    proptest!(config(), |(q in text(), filter in filter())| check(&q, &filter, MAX));
    proptest!(config(), |(q in ".{0,64}", filter in filter())| check(&q, &filter, MAX));
    // Inputs over a small limit are refused before they are parsed.
    proptest!(config(), |(q in text(), filter in filter())| check(&q, &filter, 16));
    INPUTS.report();
}
