//! Moves a parsed page into protobuf messages, field for field, as the row schema says.
//!
//! The page is consumed, so strings move instead of being copied. Nullability follows the
//! contract in the proto: an absent or null object or timestamp stays unset; a JSON value
//! Coder sent as `null` is `null_value`, one it left out is unset.

use std::{borrow::Cow, fmt};

use prost_types::{ListValue, Struct, value::Kind};
use serde::{
    Deserialize, Deserializer,
    de::{MapAccess, SeqAccess, Visitor},
};
use serde_json::value::RawValue;

use super::pb;
use crate::{
    error::{Error, Validation},
    model,
    query::AuditLogFilter,
};

/// The request's typed filter in the core's terms. Enum values arrive as numbers: `0`
/// (`*_UNSPECIFIED`) is no constraint, a number this gateway does not know is refused.
pub(super) fn filter(filter: Option<pb::AuditLogFilter>) -> Result<AuditLogFilter, Error> {
    let Some(filter) = filter else {
        return Ok(AuditLogFilter::default());
    };
    let mut errors = Vec::new();
    let mut coder_value = |number: i32, field: &str, prefix: &str, name: Option<&str>| {
        if number == 0 {
            return None;
        }
        let value = name.and_then(|name| name.strip_prefix(prefix));
        if value.is_none() {
            errors.push(Validation::new(
                field,
                format!("{number} is not a value of this enum known to the gateway; use q for newer values"),
            ));
        }
        value.map(str::to_ascii_lowercase)
    };
    let action = coder_value(
        filter.action,
        "filter.action",
        "AUDIT_ACTION_",
        pb::AuditAction::try_from(filter.action)
            .ok()
            .map(|e| e.as_str_name()),
    );
    let resource_type = coder_value(
        filter.resource_type,
        "filter.resource_type",
        "RESOURCE_TYPE_",
        pb::ResourceType::try_from(filter.resource_type)
            .ok()
            .map(|e| e.as_str_name()),
    );
    let build_reason = coder_value(
        filter.build_reason,
        "filter.build_reason",
        "BUILD_REASON_",
        pb::BuildReason::try_from(filter.build_reason)
            .ok()
            .map(|e| e.as_str_name()),
    );
    if !errors.is_empty() {
        return Err(Error::InvalidArgument {
            message: "Invalid arguments.".to_owned(),
            validations: errors,
        });
    }
    Ok(AuditLogFilter {
        action,
        resource_type,
        resource_id: filter.resource_id,
        resource_target: filter.resource_target,
        username: filter.username,
        email: filter.email,
        date_from: filter.date_from,
        date_to: filter.date_to,
        organization: filter.organization,
        build_reason,
        request_id: filter.request_id,
    })
}

impl From<model::AuditPage> for pb::ListAuditLogsResponse {
    fn from(page: model::AuditPage) -> Self {
        Self {
            audit_logs: page.audit_logs.into_iter().map(audit_log).collect(),
            count: page.count,
            count_cap: page.count_cap,
            next_page_token: String::new(),
        }
    }
}

/// A row as its message.
pub(super) fn audit_log(log: model::AuditLog) -> pb::AuditLog {
    log.into_message()
}

/// An object of the row as its message, its strings moved.
trait IntoMessage {
    type Message;

    fn into_message(self) -> Self::Message;
}

/// Sets a message field from a view field of its kind; the map key (`Key`) is the parent's.
macro_rules! set_field {
    ($message:ident . $key:ident, $value:expr, Key, $presence:ident) => {};
    ($message:ident . $key:ident, $value:expr, Str, $presence:ident) => {
        $message.$key = $value.into_owned();
    };
    ($message:ident . $key:ident, $value:expr, Time, $presence:ident) => {
        $message.$key = Some(timestamp($value));
    };
    ($message:ident . $key:ident, $value:expr, OptTime, $presence:ident) => {
        $message.$key = $value.map(timestamp);
    };
    ($message:ident . $key:ident, $value:expr, Json, $presence:ident) => {
        $message.$key = $value.as_deref().map(json);
    };
    ($message:ident . $key:ident, $value:expr, Strs, $presence:ident) => {
        $message.$key = $value.into_iter().map(Cow::into_owned).collect();
    };
    ($message:ident . $key:ident, $value:expr, Diff, $presence:ident) => {
        $message.$key = ($value.into_iter())
            .map(|mut change| {
                (
                    std::mem::take(&mut change.field).into_owned(),
                    change.into_message(),
                )
            })
            .collect();
    };
    ($message:ident . $key:ident, $value:expr, Roles, $presence:ident) => {
        $message.$key = $value.into_iter().map(IntoMessage::into_message).collect();
    };
    ($message:ident . $key:ident, $value:expr, Organization, $presence:ident) => {
        $message.$key = $value.map(IntoMessage::into_message);
    };
    ($message:ident . $key:ident, $value:expr, User, $presence:ident) => {
        $message.$key = $value.map(IntoMessage::into_message);
    };
    ($message:ident . $key:ident, $value:expr, $kind:ident, $presence:ident) => {
        $message.$key = $value;
    };
}

/// Each object of the row schema converted to its message.
macro_rules! messages {
    ($(
        $(#[doc = $doc:literal])*
        $view:ident $graphql:ident $proto:ident $(extra $extra:literal)? {
            $(
                $(#[doc = $field_doc:literal])*
                $key:ident $name:literal $number:literal $kind:ident $presence:ident;
            )*
        }
    )*) => {$(
        impl IntoMessage for model::$view<'static> {
            type Message = pb::$proto;

            fn into_message(self) -> pb::$proto {
                let mut message = pb::$proto::default();
                $(set_field!(message.$key, self.$key, $kind, $presence);)*
                $(
                    // Mentions `extra`: written only for the objects that have one.
                    let _: u32 = $extra;
                    message.extra_fields = extra_fields(&self.extra);
                )?
                message
            }
        }
    )*};
}

model::audit_schema!(messages);

/// The keys the schema does not name, as a `google.protobuf.Struct`; unset without any.
pub(super) fn extra_fields(extra: &model::Extra<'_>) -> Option<Struct> {
    (!extra.is_empty()).then(|| Struct {
        fields: (extra.iter())
            .map(|(key, value)| (key.clone().into_owned(), json(value)))
            .collect(),
    })
}

pub(super) fn timestamp(time: model::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.seconds(),
        // Always below 2^31: a leap second's nanos are at most 1_999_999_999.
        nanos: i32::try_from(time.nanos()).unwrap_or(i32::MAX),
    }
}

/// Coder's JSON text to `google.protobuf.Value`, parsed straight into the protobuf types with
/// no intermediate JSON tree. Numbers become doubles, as the Value type requires.
pub(super) fn json(raw: &RawValue) -> prost_types::Value {
    serde_json::from_str::<ProtoValue>(raw.get()).map_or_else(
        // Unreachable for text serde validated when the page was parsed; a number beyond
        // f64's range is the only conceivable case, and its text is kept rather than lost.
        |_| prost_types::Value {
            kind: Some(Kind::StringValue(raw.get().to_owned())),
        },
        |v| v.0,
    )
}

/// Deserializes any JSON straight into a `google.protobuf.Value`.
struct ProtoValue(prost_types::Value);

impl<'de> Deserialize<'de> for ProtoValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ProtoVisitor).map(ProtoValue)
    }
}

struct ProtoVisitor;

impl<'de> Visitor<'de> for ProtoVisitor {
    type Value = prost_types::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(kind(Kind::NullValue(
            prost_types::NullValue::NullValue.into(),
        )))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(kind(Kind::BoolValue(v)))
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "google.protobuf.Value numbers are doubles"
    )]
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(kind(Kind::NumberValue(v as f64)))
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "google.protobuf.Value numbers are doubles"
    )]
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(kind(Kind::NumberValue(v as f64)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(kind(Kind::NumberValue(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(kind(Kind::StringValue(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(kind(Kind::StringValue(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(ProtoValue(value)) = seq.next_element()? {
            values.push(value);
        }
        Ok(kind(Kind::ListValue(ListValue { values })))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = std::collections::BTreeMap::new();
        while let Some((key, ProtoValue(value))) = map.next_entry::<String, ProtoValue>()? {
            fields.insert(key, value);
        }
        Ok(kind(Kind::StructValue(Struct { fields })))
    }
}

fn kind(kind: Kind) -> prost_types::Value {
    prost_types::Value { kind: Some(kind) }
}
