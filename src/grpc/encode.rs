//! `ListAuditLogsResponse` written straight from Coder's page read in place: no owned copy
//! of the page, no message structs, one buffer. Field numbers and wire types are the ones
//! in `proto/`; every page this writes decodes, with prost, to exactly what the message
//! types built by `convert.rs` from the owned model hold (tested here and by the fuzz
//! target over damaged and arbitrary pages).
//!
//! Like prost, fields at their proto3 default are left out. JSON values
//! (`additional_fields`, diff sides) become `google.protobuf.Value` through the same
//! conversion as the owned path; they are the one part that allocates per row.

use prost::{
    Message as _,
    encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len},
};
use serde_json::value::RawValue;

use super::convert;
use crate::model::{AuditLogView, OrganizationView, PageView, RoleView, Timestamp, UserView};

/// The encoded `ListAuditLogsResponse` for `page` (public for the fuzz target and the
/// benchmarks).
#[must_use]
pub fn list_response(page: &PageView<'_>) -> Vec<u8> {
    // Lengths first, so the buffer is allocated once at its exact size.
    let rows: Vec<(Values, usize)> = page
        .audit_logs
        .iter()
        .map(|log| {
            let values = Values::of(log);
            let len = audit_log_len(log, &values);
            (values, len)
        })
        .collect();
    let size = rows
        .iter()
        .map(|(_, len)| message_len(1, *len))
        .sum::<usize>()
        + 32;
    let mut out = Vec::with_capacity(size);
    for (log, (values, len)) in page.audit_logs.iter().zip(&rows) {
        message(&mut out, 1, *len, |out| audit_log(out, log, values));
    }
    int64(&mut out, 2, page.count);
    if let Some(cap) = page.count_cap {
        // `optional`: present even at 0.
        encode_key(3, WireType::Varint, &mut out);
        encode_varint(u64::from_ne_bytes(cap.to_ne_bytes()), &mut out);
    }
    out
}

/// A row's JSON values, converted once for both the length and the writing.
struct Values {
    additional_fields: prost_types::Value,
    diff: Vec<(Option<prost_types::Value>, Option<prost_types::Value>)>,
}

impl Values {
    fn of(log: &AuditLogView<'_>) -> Self {
        Self {
            additional_fields: convert::additional_fields(log.additional_fields.as_deref()),
            diff: log
                .diff
                .iter()
                .map(|change| (json(change.old.as_deref()), json(change.new.as_deref())))
                .collect(),
        }
    }
}

fn json(raw: Option<&RawValue>) -> Option<prost_types::Value> {
    raw.map(convert::json)
}

fn audit_log_len(log: &AuditLogView<'_>, values: &Values) -> usize {
    string_len(1, &log.id)
        + string_len(2, &log.request_id)
        + message_len(3, timestamp_len(log.time))
        + string_len(4, &log.ip)
        + string_len(5, &log.user_agent)
        + string_len(6, &log.resource_type)
        + string_len(7, &log.resource_id)
        + string_len(8, &log.resource_target)
        + string_len(9, &log.resource_icon)
        + string_len(10, &log.action)
        + log
            .diff
            .iter()
            .zip(&values.diff)
            .map(|(change, sides)| {
                message_len(11, diff_entry_len(&change.field, change.secret, sides))
            })
            .sum::<usize>()
        + int64_len(12, i64::from(log.status_code))
        + message_len(13, values.additional_fields.encoded_len())
        + string_len(14, &log.description)
        + string_len(15, &log.resource_link)
        + bool_len(16, log.is_deleted)
        + string_len(17, &log.organization_id)
        + log
            .organization
            .as_ref()
            .map_or(0, |org| message_len(18, organization_len(org)))
        + log
            .user
            .as_ref()
            .map_or(0, |user| message_len(19, user_len(user)))
}

fn audit_log(out: &mut Vec<u8>, log: &AuditLogView<'_>, values: &Values) {
    string(out, 1, &log.id);
    string(out, 2, &log.request_id);
    message(out, 3, timestamp_len(log.time), |out| {
        timestamp(out, log.time);
    });
    string(out, 4, &log.ip);
    string(out, 5, &log.user_agent);
    string(out, 6, &log.resource_type);
    string(out, 7, &log.resource_id);
    string(out, 8, &log.resource_target);
    string(out, 9, &log.resource_icon);
    string(out, 10, &log.action);
    for (change, sides) in log.diff.iter().zip(&values.diff) {
        let field = &change.field;
        let len = diff_entry_len(field, change.secret, sides);
        message(out, 11, len, |out| {
            // A map entry: the key (field 1), the AuditDiffField (field 2).
            string(out, 1, field);
            message(out, 2, diff_field_len(change.secret, sides), |out| {
                for (number, side) in [(1, &sides.0), (2, &sides.1)] {
                    if let Some(value) = side {
                        message(out, number, value.encoded_len(), |out| {
                            value.encode_raw(out);
                        });
                    }
                }
                bool(out, 3, change.secret);
            });
        });
    }
    int64(out, 12, i64::from(log.status_code));
    let additional = &values.additional_fields;
    message(out, 13, additional.encoded_len(), |out| {
        additional.encode_raw(out);
    });
    string(out, 14, &log.description);
    string(out, 15, &log.resource_link);
    bool(out, 16, log.is_deleted);
    string(out, 17, &log.organization_id);
    if let Some(org) = &log.organization {
        message(out, 18, organization_len(org), |out| {
            string(out, 1, &org.id);
            string(out, 2, &org.name);
            string(out, 3, &org.display_name);
            string(out, 4, &org.icon);
        });
    }
    if let Some(user) = &log.user {
        message(out, 19, user_len(user), |out| self::user(out, user));
    }
}

type Sides = (Option<prost_types::Value>, Option<prost_types::Value>);

fn diff_field_len(secret: bool, sides: &Sides) -> usize {
    sides
        .0
        .as_ref()
        .map_or(0, |v| message_len(1, v.encoded_len()))
        + sides
            .1
            .as_ref()
            .map_or(0, |v| message_len(2, v.encoded_len()))
        + bool_len(3, secret)
}

fn diff_entry_len(field: &str, secret: bool, sides: &Sides) -> usize {
    string_len(1, field) + message_len(2, diff_field_len(secret, sides))
}

fn organization_len(org: &OrganizationView<'_>) -> usize {
    string_len(1, &org.id)
        + string_len(2, &org.name)
        + string_len(3, &org.display_name)
        + string_len(4, &org.icon)
}

fn user_len(user: &UserView<'_>) -> usize {
    string_len(1, &user.id)
        + string_len(2, &user.username)
        + string_len(3, &user.name)
        + string_len(4, &user.email)
        + string_len(5, &user.avatar_url)
        + message_len(6, timestamp_len(user.created_at))
        + user.updated_at.map_or(0, |t| message_len(7, timestamp_len(t)))
        + user.last_seen_at.map_or(0, |t| message_len(8, timestamp_len(t)))
        + string_len(9, &user.status)
        + string_len(10, &user.login_type)
        + string_len(11, &user.theme_preference)
        // Repeated strings are written even when empty.
        + user
            .organization_ids
            .iter()
            .map(|id| key_len(12) + encoded_len_varint(id.len() as u64) + id.len())
            .sum::<usize>()
        + user
            .roles
            .iter()
            .map(|role| message_len(13, role_len(role)))
            .sum::<usize>()
}

fn user(out: &mut Vec<u8>, user: &UserView<'_>) {
    string(out, 1, &user.id);
    string(out, 2, &user.username);
    string(out, 3, &user.name);
    string(out, 4, &user.email);
    string(out, 5, &user.avatar_url);
    message(out, 6, timestamp_len(user.created_at), |out| {
        timestamp(out, user.created_at);
    });
    for (number, time) in [(7, user.updated_at), (8, user.last_seen_at)] {
        if let Some(time) = time {
            message(out, number, timestamp_len(time), |out| timestamp(out, time));
        }
    }
    string(out, 9, &user.status);
    string(out, 10, &user.login_type);
    string(out, 11, &user.theme_preference);
    for id in &user.organization_ids {
        bytes(out, 12, id.as_bytes());
    }
    for role in &user.roles {
        message(out, 13, role_len(role), |out| {
            string(out, 1, &role.name);
            string(out, 2, &role.display_name);
            string(out, 3, &role.organization_id);
        });
    }
}

fn role_len(role: &RoleView<'_>) -> usize {
    string_len(1, &role.name)
        + string_len(2, &role.display_name)
        + string_len(3, &role.organization_id)
}

/// `google.protobuf.Timestamp`, as `convert.rs` fills it.
fn timestamp_parts(time: Timestamp) -> (i64, i32) {
    let converted = convert::timestamp(time);
    (converted.seconds, converted.nanos)
}

fn timestamp_len(time: Timestamp) -> usize {
    let (seconds, nanos) = timestamp_parts(time);
    int64_len(1, seconds) + int64_len(2, i64::from(nanos))
}

fn timestamp(out: &mut Vec<u8>, time: Timestamp) {
    let (seconds, nanos) = timestamp_parts(time);
    int64(out, 1, seconds);
    int64(out, 2, i64::from(nanos));
}

/// An embedded message: key, length, then what `body` writes (exactly `len` bytes).
fn message(out: &mut Vec<u8>, number: u32, len: usize, body: impl FnOnce(&mut Vec<u8>)) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
    let start = out.len();
    body(out);
    debug_assert_eq!(out.len() - start, len, "field {number}'s length");
}

fn message_len(number: u32, len: usize) -> usize {
    key_len(number) + encoded_len_varint(len as u64) + len
}

fn string(out: &mut Vec<u8>, number: u32, value: &str) {
    if !value.is_empty() {
        bytes(out, number, value.as_bytes());
    }
}

fn bytes(out: &mut Vec<u8>, number: u32, value: &[u8]) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

fn string_len(number: u32, value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        key_len(number) + encoded_len_varint(value.len() as u64) + value.len()
    }
}

/// `int64` and `int32` (sign-extended, as protobuf writes negative `int32`s).
fn int64(out: &mut Vec<u8>, number: u32, value: i64) {
    if value != 0 {
        encode_key(number, WireType::Varint, out);
        encode_varint(u64::from_ne_bytes(value.to_ne_bytes()), out);
    }
}

fn int64_len(number: u32, value: i64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(number) + encoded_len_varint(u64::from_ne_bytes(value.to_ne_bytes()))
    }
}

fn bool(out: &mut Vec<u8>, number: u32, value: bool) {
    if value {
        encode_key(number, WireType::Varint, out);
        out.push(1);
    }
}

fn bool_len(number: u32, value: bool) -> usize {
    if value { key_len(number) + 1 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        for body in [rows, edge.to_string().into_bytes()] {
            let view = PageView::from_json(&body).expect("page");
            let decoded = pb::ListAuditLogsResponse::decode(list_response(&view).as_slice())
                .expect("prost decodes it");
            let owned = pb::ListAuditLogsResponse::from(AuditPage::from_json(&body).expect("page"));
            assert_eq!(decoded, owned);
        }
    }
}
