//! `ListAuditLogsResponse` written straight from Coder's page read in place: no owned copy
//! of the page, no message structs, one buffer. Field numbers and wire types are the ones
//! in `proto/`; every page this writes decodes, with prost, to exactly what the message
//! types built by `convert.rs` from the owned model hold (tested here and by the fuzz
//! target over damaged and arbitrary pages).
//!
//! Each object is written as the row schema says, by a generator over its table. Like prost,
//! fields at their proto3 default are left out. JSON values become `google.protobuf.Value`
//! (and keys newer than the schema a `Struct`) through the same conversion as the owned
//! path; they are the one part that allocates per row.

use std::ops::Range;

use prost::encoding::{WireType, encoded_len_varint, key_len};

use super::convert;
use crate::model::{
    AuditLogView, DiffView, OrganizationView, PageView, RoleView, Timestamp, UserView, audit_schema,
};

/// The encoded `ListAuditLogsResponse` for `page` (public for the fuzz target and the
/// benchmarks).
#[must_use]
pub fn list_response(page: &PageView<'_>) -> Vec<u8> {
    list_response_of(&page.audit_logs, (page.count, page.count_cap), "")
}

/// The encoded `ListAuditLogsResponse` of `logs`, with a count and the next page's token
/// (left out when empty, as proto3 leaves a default).
#[must_use]
pub(super) fn list_response_of(
    logs: &[AuditLogView<'_>],
    (count, count_cap): (i64, Option<i64>),
    next_page_token: &str,
) -> Vec<u8> {
    // Lengths first, so the buffer is allocated once at its exact size.
    let mut sizes = Sizes::default();
    let rows = logs
        .iter()
        .map(|log| sizes.message_len(1, log))
        .sum::<usize>();
    let mut out = Vec::with_capacity(rows + 32 + next_page_token.len());
    let mut written = Written {
        lens: sizes.lens.iter(),
        spans: sizes.spans.iter(),
        json: &sizes.json,
    };
    for log in logs {
        written.message(&mut out, 1, log);
    }
    int64(&mut out, 2, count);
    if let Some(cap) = count_cap {
        // `optional`: present even at 0.
        key(&mut out, 3, WireType::Varint);
        varint(&mut out, u64::from_ne_bytes(cap.to_ne_bytes()));
    }
    if !next_page_token.is_empty() {
        key(&mut out, 4, WireType::LengthDelimited);
        varint(&mut out, next_page_token.len() as u64);
        out.extend_from_slice(next_page_token.as_bytes());
    }
    out
}

/// What measuring a page found, in the order it is written: each embedded message's length
/// (reserved before its fields are measured), and each JSON value already encoded as a
/// `google.protobuf.Value` or `Struct` (converting them is the one part that allocates per
/// row), one after another in one buffer.
#[derive(Default)]
struct Sizes {
    lens: Vec<usize>,
    json: Vec<u8>,
    spans: Vec<Range<usize>>,
}

/// The same, read back while writing.
struct Written<'s> {
    lens: std::slice::Iter<'s, usize>,
    spans: std::slice::Iter<'s, Range<usize>>,
    json: &'s [u8],
}

/// An object of the row as a protobuf message: measured, then written in the same order.
trait Message {
    fn measure(&self, sizes: &mut Sizes) -> usize;
    fn write(&self, out: &mut Vec<u8>, written: &mut Written<'_>);
}

impl Sizes {
    /// The embedded message `value` as field `number`.
    fn message_len(&mut self, number: u32, value: &impl Message) -> usize {
        let slot = self.lens.len();
        self.lens.push(0);
        let len = value.measure(self);
        self.lens[slot] = len;
        message_len(number, len)
    }

    /// A JSON value (or object) as field `number`, encoded now.
    fn json_len(&mut self, number: u32, value: &impl prost::Message) -> usize {
        let start = self.json.len();
        // A `Vec` always has room: encoding into it cannot fail.
        let _ = value.encode(&mut self.json);
        self.spans.push(start..self.json.len());
        message_len(number, self.json.len() - start)
    }
}

impl Written<'_> {
    fn message(&mut self, out: &mut Vec<u8>, number: u32, value: &impl Message) {
        let len = self.lens.next().copied().unwrap_or_default();
        message(out, number, len, |out| value.write(out, self));
    }

    fn json(&mut self, out: &mut Vec<u8>, number: u32) {
        let encoded = (self.spans.next()).and_then(|span| self.json.get(span.clone()));
        bytes(out, number, encoded.unwrap_or_default());
    }
}

/// Measures a field of its kind.
macro_rules! field_len {
    ($sizes:ident, $n:literal, $value:expr, Key, $presence:ident) => {
        0
    };
    ($sizes:ident, $n:literal, $value:expr, Str, $presence:ident) => {
        string_len($n, &$value)
    };
    ($sizes:ident, $n:literal, $value:expr, Time, $presence:ident) => {
        message_len($n, timestamp_len($value))
    };
    ($sizes:ident, $n:literal, $value:expr, OptTime, $presence:ident) => {
        $value.map_or(0, |time| message_len($n, timestamp_len(time)))
    };
    ($sizes:ident, $n:literal, $value:expr, Int, $presence:ident) => {
        int64_len($n, i64::from($value))
    };
    ($sizes:ident, $n:literal, $value:expr, Bool, $presence:ident) => {
        bool_len($n, $value)
    };
    ($sizes:ident, $n:literal, $value:expr, OptBool, $presence:ident) => {
        $value.map_or(0, |_| key_len($n) + 1)
    };
    ($sizes:ident, $n:literal, $value:expr, Json, $presence:ident) => {
        $value
            .as_deref()
            .map_or(0, |raw| $sizes.json_len($n, &convert::json(raw)))
    };
    ($sizes:ident, $n:literal, $value:expr, Strs, $presence:ident) => {
        // Repeated strings are written even when empty.
        $value
            .iter()
            .map(|s| key_len($n) + encoded_len_varint(s.len() as u64) + s.len())
            .sum::<usize>()
    };
    ($sizes:ident, $n:literal, $value:expr, Diff, $presence:ident) => {
        $value
            .iter()
            .map(|change| $sizes.message_len($n, &Entry(change)))
            .sum::<usize>()
    };
    ($sizes:ident, $n:literal, $value:expr, Roles, $presence:ident) => {
        $value
            .iter()
            .map(|role| $sizes.message_len($n, role))
            .sum::<usize>()
    };
    ($sizes:ident, $n:literal, $value:expr, $kind:ident, $presence:ident) => {
        $value
            .as_ref()
            .map_or(0, |object| $sizes.message_len($n, object))
    };
}

/// Writes a field of its kind, as measured.
macro_rules! write_field {
    ($out:ident, $written:ident, $n:literal, $value:expr, Key, $presence:ident) => {};
    ($out:ident, $written:ident, $n:literal, $value:expr, Str, $presence:ident) => {
        string($out, $n, &$value)
    };
    ($out:ident, $written:ident, $n:literal, $value:expr, Time, $presence:ident) => {
        message($out, $n, timestamp_len($value), |out| {
            timestamp(out, $value)
        })
    };
    ($out:ident, $written:ident, $n:literal, $value:expr, OptTime, $presence:ident) => {
        if let Some(time) = $value {
            message($out, $n, timestamp_len(time), |out| timestamp(out, time));
        }
    };
    ($out:ident, $written:ident, $n:literal, $value:expr, Int, $presence:ident) => {
        int64($out, $n, i64::from($value))
    };
    ($out:ident, $written:ident, $n:literal, $value:expr, Bool, $presence:ident) => {
        bool($out, $n, $value)
    };
    ($out:ident, $written:ident, $n:literal, $value:expr, OptBool, $presence:ident) => {
        if let Some(value) = $value {
            key($out, $n, WireType::Varint);
            $out.push(u8::from(value));
        }
    };
    ($out:ident, $written:ident, $n:literal, $value:expr, Json, $presence:ident) => {
        if $value.is_some() {
            $written.json($out, $n);
        }
    };
    ($out:ident, $written:ident, $n:literal, $value:expr, Strs, $presence:ident) => {
        for text in &$value {
            bytes($out, $n, text.as_bytes());
        }
    };
    ($out:ident, $written:ident, $n:literal, $value:expr, Diff, $presence:ident) => {
        for change in &$value {
            $written.message($out, $n, &Entry(change));
        }
    };
    ($out:ident, $written:ident, $n:literal, $value:expr, Roles, $presence:ident) => {
        for role in &$value {
            $written.message($out, $n, role);
        }
    };
    ($out:ident, $written:ident, $n:literal, $value:expr, $kind:ident, $presence:ident) => {
        if let Some(object) = &$value {
            $written.message($out, $n, object);
        }
    };
}

/// Each object of the row schema as its message.
macro_rules! encoders {
    ($(
        $(#[doc = $doc:literal])*
        $view:ident $graphql:ident $proto:ident $(extra $extra:literal)? {
            $(
                $(#[doc = $field_doc:literal])*
                $key:ident $name:literal $number:literal $kind:ident $presence:ident;
            )*
        }
    )*) => {$(
        #[allow(unused_variables, reason = "an object of strings alone needs no sizes")]
        impl Message for $view<'_> {
            fn measure(&self, sizes: &mut Sizes) -> usize {
                let len = 0 $(+ field_len!(sizes, $number, self.$key, $kind, $presence))*;
                $(
                    if let Some(extra) = convert::extra_fields(&self.extra) {
                        return len + sizes.json_len($extra, &extra);
                    }
                )?
                len
            }

            fn write(&self, out: &mut Vec<u8>, written: &mut Written<'_>) {
                $(write_field!(out, written, $number, self.$key, $kind, $presence);)*
                $(
                    if !self.extra.is_empty() {
                        written.json(out, $extra);
                    }
                )?
            }
        }
    )*};
}

audit_schema!(encoders);

/// A diff entry as an entry of the `diff` map: the field name (key, 1), its change (2).
struct Entry<'v, 'a>(&'v DiffView<'a>);

impl Message for Entry<'_, '_> {
    fn measure(&self, sizes: &mut Sizes) -> usize {
        string_len(1, &self.0.field) + sizes.message_len(2, self.0)
    }

    fn write(&self, out: &mut Vec<u8>, written: &mut Written<'_>) {
        string(out, 1, &self.0.field);
        written.message(out, 2, self.0);
    }
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

/// A varint, written straight into the buffer. prost's writer goes through `BufMut` a byte at
/// a time and out of line; keys and lengths are most of this encoder's calls, and nearly all
/// fit one byte.
#[inline]
#[allow(clippy::cast_possible_truncation, reason = "seven bits at a time")]
fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A field's key: its number and wire type.
#[inline]
fn key(out: &mut Vec<u8>, number: u32, wire_type: WireType) {
    varint(out, u64::from((number << 3) | wire_type as u32));
}

/// An embedded message: key, length, then what `body` writes (exactly `len` bytes).
fn message(out: &mut Vec<u8>, number: u32, len: usize, body: impl FnOnce(&mut Vec<u8>)) {
    key(out, number, WireType::LengthDelimited);
    varint(out, len as u64);
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
    key(out, number, WireType::LengthDelimited);
    varint(out, value.len() as u64);
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
        key(out, number, WireType::Varint);
        varint(out, u64::from_ne_bytes(value.to_ne_bytes()));
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
        key(out, number, WireType::Varint);
        out.push(1);
    }
}

fn bool_len(number: u32, value: bool) -> usize {
    if value { key_len(number) + 1 } else { 0 }
}
