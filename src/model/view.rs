//! Coder's page read in place: every string borrows from the response body unless Coder
//! escaped a character in it, and JSON values stay slices of the body.
//!
//! The objects of a row are generated from the row schema (`schema.rs`): each reads exactly
//! the keys the table names, the way its kind and presence say (which keys are required,
//! what a `null` or a missing key means, how `diff` is ordered), and keeps every other key
//! Coder sent, whole, in `extra`: the keys of Coder versions newer than the gateway. The fast
//! encoders (GraphQL plans, gRPC) write their responses straight from this view; the owned
//! model is this view with every borrow turned into an owned copy (`'static`).

use std::{borrow::Cow, fmt};

use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, Visitor},
};
use serde_json::value::RawValue;

use super::{
    Object, PageError, Timestamp,
    schema::{FieldMeta, audit_schema, presence},
};

/// One page of `GET /api/v2/audit`, borrowing from its body.
#[derive(Debug, Deserialize)]
pub struct PageView<'a> {
    /// Newest first.
    #[serde(borrow, deserialize_with = "object_rows")]
    pub audit_logs: Vec<AuditLogView<'a>>,
    /// Rows matching the filter; capped at `count_cap + 1` by current servers.
    pub count: i64,
    /// `None` on older servers, which count exactly.
    #[serde(default)]
    pub count_cap: Option<i64>,
    /// The size of Coder's body: what an encoder reserves for its answer, which is about as
    /// large when every field is asked for.
    #[serde(skip)]
    pub body_len: usize,
}

impl<'a> PageView<'a> {
    /// Reads Coder's answer. The body is checked as UTF-8 once, as a whole, so the parser
    /// does not check each of the page's thousands of strings again.
    ///
    /// A page Coder's server could never send (a value its field's kind cannot read) is read
    /// again, leniently: each such value is recorded on its object ([`Invalid`]) and the rest
    /// of the page is kept, so the surfaces can serve it and name the row and the field.
    pub fn from_json(body: &'a [u8]) -> Result<Self, PageError> {
        let text = std::str::from_utf8(body)?;
        let mut page = match serde_json::from_str::<Object<Self>>(text) {
            Ok(Object(page)) => page,
            Err(strict) => Self::lenient(text).ok_or(strict)?,
        };
        page.body_len = body.len();
        Ok(page)
    }

    fn lenient(text: &'a str) -> Option<Self> {
        /// Required, as in the strict page, though it may be `null`.
        fn rows<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<&'de RawValue>>, D::Error> {
            Option::deserialize(d)
        }
        #[derive(Deserialize)]
        struct RawPage<'a> {
            #[serde(borrow, deserialize_with = "rows")]
            audit_logs: Option<Vec<&'a RawValue>>,
            count: i64,
            #[serde(default)]
            count_cap: Option<i64>,
        }
        let Object(raw) = serde_json::from_str::<Object<RawPage<'a>>>(text).ok()?;
        let audit_logs = (raw.audit_logs.unwrap_or_default().into_iter())
            .map(|row| AuditLogView::lenient(row.get()))
            .collect::<Option<Vec<_>>>()?;
        for log in &audit_logs {
            log.log_invalid();
        }
        Some(Self {
            audit_logs,
            count: raw.count,
            count_cap: raw.count_cap,
            body_len: 0,
        })
    }

    /// The first value on the page that could not be read, naming its row and field.
    #[must_use]
    pub fn first_invalid(&self) -> Option<Invalid> {
        self.audit_logs.iter().find_map(AuditLogView::first_invalid)
    }
}

impl<'a> AuditLogView<'a> {
    /// A row read leniently (see [`PageView::from_json`]), its invalid values naming it;
    /// `None` when even that fails (a row without an id, say).
    #[must_use]
    pub fn lenient(text: &'a str) -> Option<Self> {
        let Lenient(mut row) = serde_json::from_str::<Lenient<Self>>(text).ok()?;
        let id = row.id.clone();
        row.set_row(&id);
        Some(row)
    }

    /// Tells the operator what the surfaces tell the caller: Coder sent a value its field
    /// cannot hold, in this row, at this field.
    pub fn log_invalid(&self) {
        if let Some(invalid) = self.first_invalid() {
            tracing::warn!(
                row = %invalid.row,
                field = %invalid.field,
                reason = %invalid.reason,
                "Coder sent a value the gateway cannot read"
            );
        }
    }
}

/// The keys of an object that the schema does not name, in Coder's order, values as sent.
pub type Extra<'a> = Vec<(Cow<'a, str>, Cow<'a, RawValue>)>;

/// A value Coder sent that its field's kind cannot read: a time that does not parse, a
/// string where a number belongs. Coder's server never sends one; the page is served
/// around it, and every surface names the row and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The row's id.
    pub row: String,
    /// The field's path within the row, by Coder's keys (`user.created_at`).
    pub field: String,
    pub reason: String,
}

impl Invalid {
    fn under(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

/// Coder's words about a value, cut to what identifies it: a hostile page must not turn one
/// value into a megabyte of log line or error message.
fn short(mut reason: String) -> String {
    const MAX: usize = 400;
    if reason.len() > MAX {
        let mut end = MAX;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

/// An object read leniently: a value its kind cannot read is recorded, not fatal.
struct Lenient<T>(T);

/// What each kind of field is in the view.
macro_rules! view_type {
    ($a:lifetime, Str) => { Cow<$a, str> };
    ($a:lifetime, Key) => { Cow<$a, str> };
    ($a:lifetime, Time) => { Timestamp };
    ($a:lifetime, OptTime) => { Option<Timestamp> };
    ($a:lifetime, Int) => { i32 };
    ($a:lifetime, Bool) => { bool };
    ($a:lifetime, OptBool) => { Option<bool> };
    ($a:lifetime, Json) => { Option<Cow<$a, RawValue>> };
    ($a:lifetime, Strs) => { Vec<Cow<$a, str>> };
    ($a:lifetime, Diff) => { Vec<DiffView<$a>> };
    ($a:lifetime, Organization) => { Option<OrganizationView<$a>> };
    ($a:lifetime, User) => { Option<UserView<$a>> };
    ($a:lifetime, Roles) => { Vec<RoleView<$a>> };
}

/// Reads a field's value of its kind; `null` where a list is expected is an empty list
/// (Go encodes a nil slice as `null`). A JSON value keeps `null` as its text, so a value
/// Coder sent as `null` (`Some("null")`) stays apart from one it left out (`None`).
macro_rules! read_value {
    ($map:ident, $de:lifetime, Str) => { $map.next_value::<Text<$de>>()?.0 };
    ($map:ident, $de:lifetime, Key) => { $map.next_value::<Text<$de>>()?.0 };
    ($map:ident, $de:lifetime, Json) => {
        Some(Cow::Borrowed($map.next_value::<&$de RawValue>()?))
    };
    ($map:ident, $de:lifetime, Strs) => {
        ($map.next_value::<Option<Vec<Text<$de>>>>()?)
            .map_or_else(Vec::new, |texts| texts.into_iter().map(|t| t.0).collect())
    };
    ($map:ident, $de:lifetime, Diff) => { $map.next_value::<SortedDiff<$de>>()?.0 };
    ($map:ident, $de:lifetime, Roles) => {
        $map.next_value::<Option<Vec<RoleView<$de>>>>()?.unwrap_or_default()
    };
    ($map:ident, $de:lifetime, $kind:ident) => { $map.next_value::<view_type!($de, $kind)>()? };
}

/// A read value made owned.
macro_rules! owned_value {
    ($value:expr, Str) => {
        Cow::Owned($value.into_owned())
    };
    ($value:expr, Key) => {
        Cow::Owned($value.into_owned())
    };
    ($value:expr, Json) => {
        $value.map(|json| Cow::Owned(json.into_owned()))
    };
    ($value:expr, Strs) => {
        $value
            .into_iter()
            .map(|s| Cow::Owned(s.into_owned()))
            .collect()
    };
    ($value:expr, Diff) => {
        $value.into_iter().map(DiffView::into_owned).collect()
    };
    ($value:expr, Organization) => {
        $value.map(OrganizationView::into_owned)
    };
    ($value:expr, User) => {
        $value.map(UserView::into_owned)
    };
    ($value:expr, Roles) => {
        $value.into_iter().map(RoleView::into_owned).collect()
    };
    ($value:expr, $kind:ident) => {
        $value
    };
}

/// A field's value once the object is read: a required key must have been there.
macro_rules! present {
    ($slot:ident, $key:ident, required) => {
        $slot.ok_or_else(|| de::Error::missing_field(stringify!($key)))?
    };
    ($slot:ident, $key:ident, $presence:ident) => {
        $slot.unwrap_or_default()
    };
}

/// A field's value of its kind, read from its JSON text; nested objects are read leniently
/// too.
macro_rules! lenient_value {
    ($raw:ident, $de:lifetime, Str) => {
        serde_json::from_str::<Text<$de>>($raw.get()).map(|t| t.0)
    };
    ($raw:ident, $de:lifetime, Key) => {
        serde_json::from_str::<Text<$de>>($raw.get()).map(|t| t.0)
    };
    ($raw:ident, $de:lifetime, Json) => {
        Ok::<_, serde_json::Error>(Some(Cow::Borrowed($raw)))
    };
    ($raw:ident, $de:lifetime, Strs) => {
        serde_json::from_str::<Option<Vec<Text<$de>>>>($raw.get())
            .map(|texts| texts.unwrap_or_default().into_iter().map(|t| t.0).collect())
    };
    ($raw:ident, $de:lifetime, Diff) => {
        serde_json::from_str::<SortedDiff<$de>>($raw.get()).map(|d| d.0)
    };
    ($raw:ident, $de:lifetime, Organization) => {
        serde_json::from_str::<Option<Lenient<OrganizationView<$de>>>>($raw.get())
            .map(|o| o.map(|l| l.0))
    };
    ($raw:ident, $de:lifetime, User) => {
        serde_json::from_str::<Option<Lenient<UserView<$de>>>>($raw.get()).map(|o| o.map(|l| l.0))
    };
    ($raw:ident, $de:lifetime, Roles) => {
        serde_json::from_str::<Option<Vec<Lenient<RoleView<$de>>>>>($raw.get())
            .map(|roles| roles.unwrap_or_default().into_iter().map(|l| l.0).collect())
    };
    ($raw:ident, $de:lifetime, $kind:ident) => {
        serde_json::from_str::<view_type!($de, $kind)>($raw.get())
    };
}

/// What a field holds when Coder's value for it could not be read.
macro_rules! placeholder {
    (Time) => {
        Timestamp::UNIX_EPOCH
    };
    ($kind:ident) => {
        Default::default()
    };
}

/// The first unreadable value inside a field that holds objects.
macro_rules! nested_invalid {
    ($value:expr, Organization) => {
        $value.as_ref().and_then(|o| o.first_invalid())
    };
    ($value:expr, User) => {
        $value.as_ref().and_then(|o| o.first_invalid())
    };
    ($value:expr, Roles) => {
        $value.iter().find_map(|o| o.first_invalid())
    };
    ($value:expr, Diff) => {
        $value.iter().find_map(|o| o.first_invalid())
    };
    ($value:expr, $kind:ident) => {
        None::<Invalid>
    };
}

/// Names the row in the objects a field holds.
macro_rules! set_row {
    ($value:expr, Organization, $row:ident) => {
        if let Some(o) = &mut $value {
            o.set_row($row)
        }
    };
    ($value:expr, User, $row:ident) => {
        if let Some(o) = &mut $value {
            o.set_row($row)
        }
    };
    ($value:expr, Roles, $row:ident) => {
        $value.iter_mut().for_each(|o| o.set_row($row))
    };
    ($value:expr, Diff, $row:ident) => {
        $value.iter_mut().for_each(|o| o.set_row($row))
    };
    ($value:expr, $kind:ident, $row:ident) => {};
}

/// The view of each object of the table.
macro_rules! views {
    ($(
        $(#[doc = $doc:literal])*
        $view:ident $graphql:ident $proto:ident $(extra $extra:literal)? {
            $(
                $(#[doc = $field_doc:literal])*
                $key:ident $name:literal $number:literal $kind:ident $presence:ident;
            )*
        }
    )*) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, Clone)]
        pub struct $view<'a> {
            $(
                $(#[doc = $field_doc])*
                pub $key: view_type!('a, $kind),
            )*
            /// Keys Coder sent that the schema does not name.
            pub extra: Extra<'a>,
            /// The values of this object Coder sent that their kinds cannot read (found
            /// when a page is read leniently, see [`PageView::from_json`]); each such field
            /// holds its default.
            pub invalid: Vec<Invalid>,
        }

        impl $view<'_> {
            /// The table's fields of this object.
            pub const FIELDS: &'static [FieldMeta] = &[$({
                let (omittable, nullable) = presence!($presence);
                FieldMeta { key: stringify!($key), graphql: $name, proto: $number, omittable, nullable }
            }),*];

            /// The same object, owned: what outlives the body it was read from.
            #[must_use]
            pub fn into_owned(self) -> $view<'static> {
                $view {
                    $($key: owned_value!(self.$key, $kind),)*
                    extra: (self.extra.into_iter())
                        .map(|(key, value)| (Cow::Owned(key.into_owned()), Cow::Owned(value.into_owned())))
                        .collect(),
                    invalid: self.invalid,
                }
            }

            /// The first value that could not be read in this object or one it holds, named
            /// by its path (`user.created_at`).
            #[must_use]
            pub fn first_invalid(&self) -> Option<Invalid> {
                if let Some(invalid) = self.invalid.first() {
                    return Some(invalid.clone());
                }
                $(
                    if let Some(invalid) = nested_invalid!(self.$key, $kind) {
                        return Some(invalid.under(stringify!($key)));
                    }
                )*
                None
            }

            /// Names the row in every invalid value of this object and those it holds.
            fn set_row(&mut self, row: &str) {
                for invalid in &mut self.invalid {
                    row.clone_into(&mut invalid.row);
                }
                $(set_row!(self.$key, $kind, row);)*
            }
        }

        impl<'de> Deserialize<'de> for Lenient<$view<'de>> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct LenientVisitor;

                impl<'de> Visitor<'de> for LenientVisitor {
                    type Value = Lenient<$view<'de>>;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", stringify!($graphql), " object"))
                    }

                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                        $(let mut $key: Option<view_type!('de, $kind)> = None;)*
                        let mut extra = Vec::new();
                        let mut invalid = Vec::new();
                        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                            let raw = map.next_value::<&'de RawValue>()?;
                            match &*key {
                                $(stringify!($key) => match lenient_value!(raw, 'de, $kind) {
                                    Ok(_) if $key.is_some() => invalid.push(Invalid {
                                        row: String::new(),
                                        field: stringify!($key).to_owned(),
                                        reason: "the key is given more than once".to_owned(),
                                    }),
                                    Ok(value) => $key = Some(value),
                                    Err(error) => {
                                        invalid.push(Invalid {
                                            row: String::new(),
                                            field: stringify!($key).to_owned(),
                                            reason: short(error.to_string()),
                                        });
                                        $key = Some(placeholder!($kind));
                                    }
                                },)*
                                _ => extra.push((key, Cow::Borrowed(raw))),
                            }
                        }
                        Ok(Lenient($view {
                            $($key: present!($key, $key, $presence),)*
                            extra,
                            invalid,
                        }))
                    }
                }

                deserializer.deserialize_map(LenientVisitor)
            }
        }

        impl<'de> Deserialize<'de> for $view<'de> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;

                impl<'de> Visitor<'de> for ObjectVisitor {
                    type Value = $view<'de>;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", stringify!($graphql), " object"))
                    }

                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                        $(let mut $key: Option<view_type!('de, $kind)> = None;)*
                        let mut extra = Vec::new();
                        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                            match &*key {
                                $(stringify!($key) => {
                                    if $key.is_some() {
                                        return Err(de::Error::duplicate_field(stringify!($key)));
                                    }
                                    $key = Some(read_value!(map, 'de, $kind));
                                })*
                                _ => extra.push((key, Cow::Borrowed(map.next_value::<&'de RawValue>()?))),
                            }
                        }
                        Ok($view {
                            $($key: present!($key, $key, $presence),)*
                            extra,
                            invalid: Vec::new(),
                        })
                    }
                }

                deserializer.deserialize_map(ObjectVisitor)
            }
        }
    )*};
}

audit_schema!(views);

/// A string that borrows from the body unless Coder escaped a character in it.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}

/// The page's rows, each an object; `null` is no rows.
fn object_rows<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<AuditLogView<'de>>, D::Error> {
    Ok(Option::deserialize(deserializer)?.unwrap_or_default())
}

/// `diff` in field-name order, as a sorted map would hold it: every caller sees the same
/// order, and a name Coder repeated keeps its last value. `null` is no changes. Each entry's
/// `field` is its key.
struct SortedDiff<'a>(Vec<DiffView<'a>>);

impl<'de> Deserialize<'de> for SortedDiff<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = SortedDiff<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of changed fields")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(SortedDiff(Vec::new()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((Text(field), mut change)) =
                    map.next_entry::<Text<'de>, DiffView<'de>>()?
                {
                    change.field = field;
                    entries.push(change);
                }
                // Stable, so repeats of a name stay in Coder's order; reversed, so the last
                // one is kept.
                entries.sort_by(|a, b| a.field.cmp(&b.field));
                entries.reverse();
                entries.dedup_by(|later, kept| later.field == kept.field);
                entries.reverse();
                Ok(SortedDiff(entries))
            }
        }

        deserializer.deserialize_any(EntriesVisitor)
    }
}
