//! Writes a resolved selection over Coder's page, read in place, straight into response
//! bytes: no value tree, no map per object, keys in selection order.
//!
//! Where async-graphql (the reference) has its own habits the plan keeps them, so both paths
//! answer alike: an object whose fields are all skipped is `null`, and JSON values are the
//! ones Coder sent (the reference re-encodes them; the values are equal).

use std::io::Write as _;

use serde_json::value::RawValue;

use super::{
    resolve::{Resolved, Selection},
    tree::Field,
};
use crate::model::{
    AuditLogView, DiffView, OrganizationView, PageView, RoleView, Timestamp, UserView,
};

/// Writes `page` as the selection asks.
pub(super) fn page(out: &mut Vec<u8>, selection: &Selection, page: &PageView<'_>) {
    object(out, selection, |out, field| match field.field {
        Field::Rows => list(out, &page.audit_logs, |out, log| {
            object(out, &field.children, |out, f| audit_log(out, f, log));
        }),
        Field::Count => number(out, page.count),
        Field::CountCap => match page.count_cap {
            Some(cap) => number(out, cap),
            None => null(out),
        },
        _ => typename(out, field),
    });
}

fn audit_log(out: &mut Vec<u8>, field: &Resolved, log: &AuditLogView<'_>) {
    match field.field {
        Field::Id => string(out, &log.id),
        Field::RequestId => string(out, &log.request_id),
        Field::Time => timestamp(out, log.time),
        Field::Ip => string(out, &log.ip),
        Field::UserAgent => string(out, &log.user_agent),
        Field::ResourceType => string(out, &log.resource_type),
        Field::ResourceId => string(out, &log.resource_id),
        Field::ResourceTarget => string(out, &log.resource_target),
        Field::ResourceIcon => string(out, &log.resource_icon),
        Field::Action => string(out, &log.action),
        Field::Diff => list(out, &log.diff, |out, change| {
            object(out, &field.children, |out, f| {
                diff(out, f, &change.field, change);
            });
        }),
        Field::StatusCode => number(out, log.status_code),
        Field::AdditionalFields => json(out, log.additional_fields.as_deref()),
        Field::Description => string(out, &log.description),
        Field::ResourceLink => string(out, &log.resource_link),
        Field::IsDeleted => boolean(out, log.is_deleted),
        Field::OrganizationId => string(out, &log.organization_id),
        Field::Organization => match &log.organization {
            Some(org) => object(out, &field.children, |out, f| organization(out, f, org)),
            None => null(out),
        },
        Field::User => match &log.user {
            Some(user) => object(out, &field.children, |out, f| self::user(out, f, user)),
            None => null(out),
        },
        _ => typename(out, field),
    }
}

fn diff(out: &mut Vec<u8>, field: &Resolved, name: &str, change: &DiffView<'_>) {
    match field.field {
        Field::Changed => string(out, name),
        Field::Old => json(out, change.old.as_deref()),
        Field::New => json(out, change.new.as_deref()),
        Field::Secret => boolean(out, change.secret),
        _ => typename(out, field),
    }
}

fn organization(out: &mut Vec<u8>, field: &Resolved, org: &OrganizationView<'_>) {
    match field.field {
        Field::OrgId => string(out, &org.id),
        Field::OrgName => string(out, &org.name),
        Field::OrgDisplayName => string(out, &org.display_name),
        Field::OrgIcon => string(out, &org.icon),
        _ => typename(out, field),
    }
}

fn user(out: &mut Vec<u8>, field: &Resolved, user: &UserView<'_>) {
    match field.field {
        Field::UserId => string(out, &user.id),
        Field::Username => string(out, &user.username),
        Field::UserName => string(out, &user.name),
        Field::Email => string(out, &user.email),
        Field::AvatarUrl => string(out, &user.avatar_url),
        Field::CreatedAt => timestamp(out, user.created_at),
        Field::UpdatedAt => optional_timestamp(out, user.updated_at),
        Field::LastSeenAt => optional_timestamp(out, user.last_seen_at),
        Field::Status => string(out, &user.status),
        Field::LoginType => string(out, &user.login_type),
        Field::ThemePreference => string(out, &user.theme_preference),
        Field::OrganizationIds => list(out, &user.organization_ids, |out, id| string(out, id)),
        Field::Roles => list(out, &user.roles, |out, r| {
            object(out, &field.children, |out, f| role(out, f, r));
        }),
        _ => typename(out, field),
    }
}

fn role(out: &mut Vec<u8>, field: &Resolved, role: &RoleView<'_>) {
    match field.field {
        Field::RoleName => string(out, &role.name),
        Field::RoleDisplayName => string(out, &role.display_name),
        Field::RoleOrganizationId => string(out, &role.organization_id),
        _ => typename(out, field),
    }
}

/// `__typename`, the one field every type shares; the planner admits no other field a
/// type's writer does not list.
fn typename(out: &mut Vec<u8>, field: &Resolved) {
    string(out, field.parent.type_name());
}

/// An object of the selected fields; with none left after `@skip`/`@include`, `null`, as
/// async-graphql answers.
pub(super) fn object(
    out: &mut Vec<u8>,
    selection: &Selection,
    mut value: impl FnMut(&mut Vec<u8>, &Resolved),
) {
    if selection.is_empty() {
        return null(out);
    }
    out.push(b'{');
    for (i, field) in selection.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&field.prefix);
        value(out, field);
    }
    out.push(b'}');
}

fn list<T>(out: &mut Vec<u8>, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, value) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, value);
    }
    out.push(b']');
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

fn boolean(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

fn number(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{value}");
}

fn timestamp(out: &mut Vec<u8>, value: Timestamp) {
    // RFC 3339 text: digits, `-`, `:`, `.`, `T`, `Z`; nothing to escape.
    let _ = write!(out, "\"{value}\"");
}

fn optional_timestamp(out: &mut Vec<u8>, value: Option<Timestamp>) {
    match value {
        Some(value) => timestamp(out, value),
        None => null(out),
    }
}

/// Coder's JSON text, validated when the page was read: written as it came.
fn json(out: &mut Vec<u8>, value: Option<&RawValue>) {
    match value {
        Some(raw) => out.extend_from_slice(raw.get().as_bytes()),
        None => null(out),
    }
}

/// A JSON string, escaped as `serde_json` escapes: `"`, `\` and control characters.
pub(super) fn string(out: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(value.len() + 2);
    out.push(b'"');
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        out.push(short);
        if short == b'u' {
            out.extend_from_slice(&[
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in [
            "",
            "plain",
            "quote \" backslash \\ slash /",
            "lines\n\r\ttab \u{8}\u{c} nul \u{0} unit \u{1f} del \u{7f}",
            "unicode é 🦀 \u{2028}",
        ] {
            let mut out = Vec::new();
            string(&mut out, text);
            assert_eq!(
                String::from_utf8(out).expect("UTF-8"),
                serde_json::to_string(text).expect("JSON")
            );
        }
    }
}
