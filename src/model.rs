//! Coder's audit page as it comes off the wire, parsed once and shared by both protocols:
//! read in place by [`PageView`] (strings borrow from the body), which the fast encoders
//! write from, and owned as [`AuditPage`] (the view, copied) where a page must outlive its
//! body (async-graphql's resolvers, exports and watches).
//!
//! The shapes follow what real Coder servers send, not what the published API docs say:
//! `user` may be `null`, `organization` may be missing, `diff` sides are omitted when null,
//! event-specific JSON is arbitrary, enumerated values are open strings, and older or
//! newer servers add or drop keys. Every field that a server might leave out therefore has a
//! default, unknown keys are kept whole (each object's `extra`), and only the keys that identify a row are required, so
//! a page from any Coder version parses instead of failing the whole response.

use std::{fmt, marker::PhantomData};

use serde::{
    Deserialize, Deserializer,
    de::{MapAccess, Visitor, value::MapAccessDeserializer},
};
use serde_json::value::RawValue;

pub mod known;
mod schema;
mod time;
mod view;

pub use schema::FieldMeta;
pub(crate) use schema::audit_schema;
pub use time::{Timestamp, TimestampError};
pub use view::{
    AuditLogView, DiffView, Extra, Invalid, OrganizationView, PageView, RoleView, UserView,
};

/// One page of `GET /api/v2/audit`, owned: the [`PageView`] with its strings copied.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// Newest first.
    pub audit_logs: Vec<AuditLog>,
    /// Rows matching the filter; capped at `count_cap + 1` by current servers.
    pub count: i64,
    /// `None` on older servers, which count exactly.
    pub count_cap: Option<i64>,
}

/// Why a body is not an audit page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the body is not UTF-8 text: {0}")]
    Utf8(#[from] std::str::Utf8Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl AuditPage {
    /// Parses Coder's answer. The body is checked as UTF-8 once, as a whole, so the parser
    /// does not check each of the page's thousands of strings again.
    pub fn from_json(body: &[u8]) -> Result<Self, PageError> {
        PageView::from_json(body).map(Self::from)
    }
}

/// A row as the streaming surfaces need it: the exact JSON text Coder sent (which NDJSON
/// exports write out unchanged, keys newer Coder versions add included), the two keys that
/// place it in Coder's order, and the full row, parsed only when a surface asks for it and
/// then once, however many watches share the row.
#[derive(Debug)]
pub struct Row {
    pub raw: Box<RawValue>,
    pub id: String,
    pub time: Timestamp,
    /// What Coder sent unreadable in the row's `id` or `time`, naming both: such a row is
    /// still a row in Coder's order, which a stream reports and then steps past. Its `id`
    /// is then a hash of its text (when the id is what is unreadable) and its `time` a
    /// neighbour's (see [`Row::place`]).
    pub unplaced: Option<Invalid>,
    /// Whether `time` is a neighbour's rather than the row's own.
    borrowed_time: bool,
    log: std::sync::OnceLock<Result<AuditLog, String>>,
}

/// Which way a walk reads Coder's order, for [`Row::place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toward {
    /// From the newest row down: exports and their pages.
    Older,
    /// From a position up to the newest row: watches.
    Newer,
}

/// A stable 64-bit FNV-1a hash: cursors must decode to the same meaning in every process
/// and every version, which `std`'s randomly keyed hasher does not promise.
#[must_use]
pub fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The keys of a row that place it in Coder's order.
#[derive(Deserialize)]
struct RowKey {
    id: String,
    time: Timestamp,
}

/// A page whose rows are kept as JSON text until each is parsed on its own.
#[derive(Deserialize)]
struct RawRows<'a> {
    #[serde(borrow, deserialize_with = "null_as_default")]
    audit_logs: Vec<&'a RawValue>,
    // Required, so that a body that merely has an `audit_logs` key is not taken for a page.
    count: i64,
    #[serde(default)]
    count_cap: Option<i64>,
}

/// A page's rows with Coder's `count` of the query's matching rows.
#[derive(Debug)]
pub struct CountedRows {
    /// Newest first.
    pub rows: Vec<Row>,
    /// Capped at `count_cap + 1` by current servers.
    pub count: i64,
    /// `None` on older servers, which count exactly.
    pub count_cap: Option<i64>,
}

/// Whether Coder's `count` is exact: older servers (no cap) count exactly, current ones up
/// to the cap, and a count above it means "more than the cap".
#[must_use]
pub fn exact_count(count: i64, count_cap: Option<i64>) -> bool {
    count_cap.is_none_or(|cap| count <= cap)
}

impl CountedRows {
    /// Whether `count` is exact (see [`exact_count`]).
    #[must_use]
    pub fn exact_count(&self) -> bool {
        exact_count(self.count, self.count_cap)
    }
}

impl Row {
    /// Parses a page's rows, each kept with its own JSON text; only `id` and `time` are
    /// read now.
    pub fn page_from_json(body: &[u8]) -> Result<Vec<Self>, PageError> {
        Self::counted_page_from_json(body).map(|page| page.rows)
    }

    /// [`Row::page_from_json`], with the page's `count`.
    pub fn counted_page_from_json(body: &[u8]) -> Result<CountedRows, PageError> {
        let Object(page): Object<RawRows<'_>> = serde_json::from_str(std::str::from_utf8(body)?)?;
        let rows = page
            .audit_logs
            .into_iter()
            .map(|raw| {
                let (id, time, unplaced) = match serde_json::from_str(raw.get()) {
                    Ok(Object(RowKey { id, time })) => (id, Some(time), None),
                    Err(strict) => {
                        let (invalid, time) = unplaceable(raw.get()).ok_or(strict)?;
                        let id = if invalid.field == "id" {
                            format!("unreadable-{:016x}", fnv64(raw.get().as_bytes()))
                        } else {
                            invalid.row.clone()
                        };
                        (id, time, Some(invalid))
                    }
                };
                Ok(Self {
                    raw: raw.to_owned(),
                    id,
                    borrowed_time: time.is_none(),
                    time: time.unwrap_or(Timestamp::UNIX_EPOCH),
                    unplaced,
                    log: std::sync::OnceLock::new(),
                })
            })
            .collect::<Result<_, PageError>>()?;
        Ok(CountedRows {
            rows,
            count: page.count,
            count_cap: page.count_cap,
        })
    }

    /// Gives each row of a page (newest first) whose `time` Coder sent unreadable the time
    /// of the nearest readable row on the side the walk comes from, so that the walk's
    /// position steps past it as past any row and a resumed walk, which meets it at the
    /// same place, does not deliver it again: the row above it for a walk towards older
    /// rows, the row below for one towards newer rows. Without one on that side, `bound`
    /// (the walk's position) stands in, then the nearest row on the other side, then now.
    pub fn place(rows: &mut [Self], toward: Toward, bound: Option<Timestamp>) {
        if !rows.iter().any(|row| row.borrowed_time) {
            return;
        }
        let readable = |row: &&Self| !row.borrowed_time;
        let other_side = match toward {
            Toward::Older => rows.iter().find(readable),
            Toward::Newer => rows.iter().rev().find(readable),
        };
        let fallback = bound
            .or_else(|| other_side.map(|row| row.time))
            .unwrap_or_else(Timestamp::now);
        let mut last = fallback;
        let mut place = |row: &mut Self| {
            if row.borrowed_time {
                row.time = last;
            } else {
                last = row.time;
            }
        };
        match toward {
            Toward::Older => rows.iter_mut().for_each(&mut place),
            Toward::Newer => rows.iter_mut().rev().for_each(&mut place),
        }
    }

    /// The whole row, parsed on first use. An error names what Coder sent wrong.
    pub fn log(&self) -> Result<&AuditLog, &str> {
        self.log
            .get_or_init(|| parse_row(self.raw.get()))
            .as_ref()
            .map_err(String::as_str)
    }

    /// The whole row, owned: what an export that owns its rows converts without a copy.
    pub fn into_log(self) -> Result<AuditLog, String> {
        match self.log.into_inner() {
            Some(parsed) => parsed,
            None => parse_row(self.raw.get()),
        }
    }

    /// Appends the row as one NDJSON line: Coder's own JSON text, byte for byte. Coder writes
    /// compact JSON; should a server ever indent it, the line breaks (which JSON allows only
    /// between tokens, never inside a string) are dropped so the row stays on one line.
    pub fn write_ndjson(&self, out: &mut Vec<u8>) {
        let text = self.raw.get().as_bytes();
        if text.contains(&b'\n') || text.contains(&b'\r') {
            out.extend(text.iter().filter(|b| !matches!(b, b'\n' | b'\r')));
        } else {
            out.extend_from_slice(text);
        }
        out.push(b'\n');
    }
}

/// One audited event, owned: the [`AuditLogView`] with every borrow copied.
pub type AuditLog = AuditLogView<'static>;
/// One changed field of an [`AuditLog`], owned.
pub type DiffField = DiffView<'static>;
/// The organisation of an [`AuditLog`], owned.
pub type MinimalOrganization = OrganizationView<'static>;
/// The acting user of an [`AuditLog`], owned.
pub type User = UserView<'static>;
/// A role of a [`User`], owned.
pub type SlimRole = RoleView<'static>;

/// What makes a row unplaceable in Coder's order, naming it and the field, when its `id` or
/// `time` is there but unreadable; with its time when that one is readable.
fn unplaceable(text: &str) -> Option<(Invalid, Option<Timestamp>)> {
    let row = AuditLogView::lenient(text)?;
    let time_read = !row.invalid.iter().any(|i| i.field == "time");
    let time = time_read.then_some(row.time);
    let invalid = row
        .invalid
        .into_iter()
        .find(|i| i.field == "id" || i.field == "time")?;
    Some((invalid, time))
}

/// A row on its own, as the streaming surfaces keep it.
fn parse_row(text: &str) -> Result<AuditLog, String> {
    AuditLogView::read(text).map(AuditLogView::into_owned)
}

impl<'a> AuditLogView<'a> {
    /// A row on its own, read in place from its JSON text; a value Coder could never send
    /// is read leniently and named (see [`PageView`]). An error says why the text is no row.
    pub fn read(text: &'a str) -> Result<Self, String> {
        serde_json::from_str::<Self>(text).or_else(|strict| {
            Self::lenient(text)
                .inspect(Self::log_invalid)
                .ok_or_else(|| strict.to_string())
        })
    }
}

impl From<PageView<'_>> for AuditPage {
    fn from(page: PageView<'_>) -> Self {
        Self {
            audit_logs: (page.audit_logs.into_iter())
                .map(AuditLogView::into_owned)
                .collect(),
            count: page.count,
            count_cap: page.count_cap,
        }
    }
}

/// A JSON object read as `T`. serde's derived structs also accept the array of their
/// fields in order, so `[null, 0, null]` would pass for an empty page: pages and rows must
/// be objects, as Coder sends them.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

/// Go encodes a nil slice or map as `null`; Coder avoids that today, but a `null` must not
/// turn a whole page into an error.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests;
