//! Coder's page, as the upstream parser reads it: near-valid pages (a real demo page with a
//! key removed, a value replaced by arbitrary JSON, the text cut short) and raw bytes. A page
//! the full parser accepts must also be accepted, row for row, by the streaming parser, and
//! survive NDJSON and protobuf encoding; the protobuf the gateway serves, written from the
//! page read in place, must decode with prost to what the message types hold.

use std::sync::OnceLock;

use coder_audit_gateway::{
    demo::{self, DemoConfig},
    grpc::{self, pb},
    model::{AuditPage, PageView, Row},
};
use proptest::prelude::*;
use prost::Message as _;
use serde_json::Value;

use crate::{Counter, config};

static INPUTS: Counter = Counter::new("upstream page parser");

/// A real page of the demo Coder, every field as the reference has it.
fn demo_page() -> &'static Value {
    static PAGE: OnceLock<Value> = OnceLock::new();
    PAGE.get_or_init(|| {
        let body = tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(demo::audit_page_body(DemoConfig::default(), 8));
        serde_json::from_slice(&body).expect("JSON")
    })
}

pub(crate) fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer in `value`.
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                pointers(child, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                pointers(child, &format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Damage {
    Remove(usize),
    Replace(usize, Value),
    Cut(usize),
    Bytes(usize, u8),
}

fn damage() -> impl Strategy<Value = Vec<Damage>> {
    prop::collection::vec(
        prop_oneof![
            any::<usize>().prop_map(Damage::Remove),
            (any::<usize>(), json()).prop_map(|(at, value)| Damage::Replace(at, value)),
            any::<usize>().prop_map(Damage::Cut),
            (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Bytes(at, byte)),
        ],
        0..4,
    )
}

/// The demo page with `damage` done to it, as bytes.
fn damaged(damage: &[Damage]) -> Vec<u8> {
    let mut page = demo_page().clone();
    let mut text_damage = Vec::new();
    for step in damage {
        let mut paths = Vec::new();
        pointers(&page, "", &mut paths);
        match step {
            Damage::Remove(at) => {
                let path = &paths[at % paths.len()];
                if let Some((parent, key)) = path.rsplit_once('/') {
                    match page.pointer_mut(parent) {
                        Some(Value::Object(map)) => {
                            map.shift_remove(key);
                        }
                        Some(Value::Array(items)) => {
                            if let Ok(index) = key.parse::<usize>()
                                && index < items.len()
                            {
                                items.remove(index);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Damage::Replace(at, value) => {
                let path = paths[at % paths.len()].clone();
                if let Some(slot) = page.pointer_mut(&path) {
                    *slot = value.clone();
                }
            }
            other => text_damage.push(other.clone()),
        }
    }
    let mut bytes = serde_json::to_vec(&page).expect("encodes");
    for step in text_damage {
        match step {
            Damage::Cut(at) => bytes.truncate(at % (bytes.len() + 1)),
            Damage::Bytes(at, byte) if !bytes.is_empty() => {
                let len = bytes.len();
                bytes[at % len] = byte;
            }
            _ => {}
        }
    }
    bytes
}

fn check(bytes: &[u8]) {
    INPUTS.tick();
    let full = AuditPage::from_json(bytes);
    let rows = Row::page_from_json(bytes);
    let Ok(page) = full else {
        return;
    };
    // The full parser serves a page around values Coder should never send (recording
    // them); the row parser reads each row's id and time, so only those may stop it.
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            assert!(
                page.audit_logs.iter().any(|log| log
                    .invalid
                    .iter()
                    .any(|i| i.field == "id" || i.field == "time")),
                "a page the full parser reads cleanly is accepted by the row parser: {error} in {}",
                String::from_utf8_lossy(bytes)
            );
            return;
        }
    };
    assert_eq!(rows.len(), page.audit_logs.len());
    for (row, log) in rows.iter().zip(&page.audit_logs) {
        // A row whose id is unreadable is known by a hash of its text instead.
        match &row.unplaced {
            Some(invalid) if invalid.field == "id" => assert!(row.id.starts_with("unreadable-")),
            _ => assert_eq!(row.id, log.id),
        }
        assert!(row.log().is_ok(), "{:?}", row.log());
        let mut line = Vec::new();
        row.write_ndjson(&mut line);
        let written: Value = serde_json::from_slice(&line).expect("NDJSON line is JSON");
        let raw: Value = serde_json::from_str(row.raw.get()).expect("raw is JSON");
        assert_eq!(written, raw);
    }
    let message = pb::ListAuditLogsResponse::from(page);
    let encoded = message.encode_to_vec();
    assert_eq!(
        pb::ListAuditLogsResponse::decode(encoded.as_slice()).expect("decodes"),
        message
    );
    // The served encoder, straight from the page read in place: prost reads back exactly
    // the message the owned path builds.
    let view = PageView::from_json(bytes).expect("the view reads what the owned parser reads");
    let served = grpc::list_response(&view);
    assert_eq!(
        pb::ListAuditLogsResponse::decode(served.as_slice())
            .expect("prost decodes the served page"),
        message
    );
}

#[test]
fn upstream_page_parser() {
    proptest!(config(), |(damage in damage())| check(&damaged(&damage)));
    proptest!(config(), |(value in json())| check(&serde_json::to_vec(&value).expect("encodes")));
    proptest!(config(), |(bytes in prop::collection::vec(any::<u8>(), 0..512))| check(&bytes));
    INPUTS.report();
}
