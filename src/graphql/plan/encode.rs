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
use crate::{
    model::{
        AuditLogView, DiffView, Extra, OrganizationView, PageView, RoleView, Timestamp, UserView,
    },
    paging::PageCursors,
};

/// A page's cursors, for a selection of its connection fields, and whether rows come before
/// it.
pub(super) struct Connection<'a> {
    pub(super) cursors: &'a PageCursors,
    pub(super) has_previous: bool,
}

/// Writes `page` as the selection asks; `connection` is there when the selection asks for
/// `edges` or `pageInfo`.
pub(super) fn page(
    out: &mut Vec<u8>,
    selection: &Selection,
    page: &PageView<'_>,
    connection: Option<&Connection<'_>>,
) {
    object(out, selection, |out, field| {
        match (field.field, connection) {
            (Field::Rows, _) => list(out, &page.audit_logs, |out, log| {
                object(out, &field.children, |out, f| log.write(out, f));
            }),
            (Field::Count, _) => number(out, page.count),
            (Field::CountCap, _) => match page.count_cap {
                Some(cap) => number(out, cap),
                None => null(out),
            },
            (Field::Edges, Some(connection)) => {
                out.push(b'[');
                for (i, log) in page.audit_logs.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    object(out, &field.children, |out, f| match f.field {
                        Field::Cursor => string(out, &connection.cursors.after(i)),
                        Field::Node => object(out, &f.children, |out, g| log.write(out, g)),
                        _ => typename(out, f),
                    });
                }
                out.push(b']');
            }
            (Field::PageInfo, Some(connection)) => {
                let cursors = connection.cursors;
                object(out, &field.children, |out, f| match f.field {
                    Field::EndCursor => optional(out, cursors.end(), string),
                    Field::StartCursor => optional(
                        out,
                        (!page.audit_logs.is_empty())
                            .then(|| cursors.after(0))
                            .as_deref(),
                        string,
                    ),
                    Field::HasNextPage => boolean(out, cursors.has_next()),
                    Field::HasPreviousPage => boolean(out, connection.has_previous),
                    _ => typename(out, f),
                });
            }
            _ => typename(out, field),
        }
    });
}

/// Whether a page's selection asks for its cursors.
pub(super) fn wants_cursors(selection: &Selection) -> bool {
    selection
        .iter()
        .any(|field| matches!(field.field, Field::Edges | Field::PageInfo))
}

/// An object of the row, written field by field as a selection asks.
trait Write {
    fn write(&self, out: &mut Vec<u8>, field: &Resolved);
}

/// Writes a field's value of its kind; objects write their selected fields.
macro_rules! write_value {
    ($out:ident, $field:ident, $value:expr, Str) => {
        string($out, &$value)
    };
    ($out:ident, $field:ident, $value:expr, Key) => {
        string($out, &$value)
    };
    ($out:ident, $field:ident, $value:expr, Time) => {
        timestamp($out, $value)
    };
    ($out:ident, $field:ident, $value:expr, OptTime) => {
        optional($out, $value, timestamp)
    };
    ($out:ident, $field:ident, $value:expr, Int) => {
        number($out, $value)
    };
    ($out:ident, $field:ident, $value:expr, Bool) => {
        boolean($out, $value)
    };
    ($out:ident, $field:ident, $value:expr, OptBool) => {
        optional($out, $value, boolean)
    };
    ($out:ident, $field:ident, $value:expr, Json) => {
        json($out, $value.as_deref())
    };
    ($out:ident, $field:ident, $value:expr, Strs) => {
        list($out, &$value, |out, s| string(out, s))
    };
    ($out:ident, $field:ident, $value:expr, $kind:ident) => {
        children($out, $field, &$value)
    };
}

/// The row's objects, each written as the row schema says.
macro_rules! writers {
    ($(
        $(#[doc = $doc:literal])*
        $view:ident $graphql:ident $proto:ident $(extra $extra:literal)? {
            $(
                $(#[doc = $field_doc:literal])*
                $key:ident $name:literal $number:literal $kind:ident $presence:ident;
            )*
        }
    )*) => {$(
        impl Write for $view<'_> {
            fn write(&self, out: &mut Vec<u8>, field: &Resolved) {
                match field.field {
                    Field::Schema(index) => {
                        let mut i = 0;
                        $(
                            if index == i {
                                return write_value!(out, field, self.$key, $kind);
                            }
                            i += 1;
                        )*
                        let _ = i;
                    }
                    Field::Extra => return extra(out, &self.extra),
                    _ => {}
                }
                typename(out, field);
            }
        }
    )*};
}

crate::model::audit_schema!(writers);

/// The selected fields of the objects a field holds: one, none (`null`) or a list.
trait Children {
    fn write(&self, out: &mut Vec<u8>, field: &Resolved);
}

impl<T: Write> Children for Option<T> {
    fn write(&self, out: &mut Vec<u8>, field: &Resolved) {
        match self {
            Some(value) => object(out, &field.children, |out, f| value.write(out, f)),
            None => null(out),
        }
    }
}

impl<T: Write> Children for Vec<T> {
    fn write(&self, out: &mut Vec<u8>, field: &Resolved) {
        list(out, self, |out, value| {
            object(out, &field.children, |out, f| value.write(out, f));
        });
    }
}

fn children(out: &mut Vec<u8>, field: &Resolved, value: &impl Children) {
    value.write(out, field);
}

/// Keys the schema does not name, as one object of Coder's values; `null` without any.
fn extra(out: &mut Vec<u8>, extra: &Extra<'_>) {
    if extra.is_empty() {
        return null(out);
    }
    out.push(b'{');
    for (i, (key, value)) in extra.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, key);
        out.push(b':');
        out.extend_from_slice(value.get().as_bytes());
    }
    out.push(b'}');
}

fn optional<T>(out: &mut Vec<u8>, value: Option<T>, write: fn(&mut Vec<u8>, T)) {
    match value {
        Some(value) => write(out, value),
        None => null(out),
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
