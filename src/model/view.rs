//! Coder's page read in place: every string borrows from the response body unless Coder
//! escaped a character in it, and JSON values stay slices of the body.
//!
//! This is the one definition of how a page is read (which keys are required, what a `null`
//! or a missing key means, how `diff` is ordered). The fast encoders (GraphQL plans, gRPC)
//! write their responses straight from this view, so a row costs a handful of allocations
//! instead of one per string; the owned model in the parent module is this view, copied.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::{Object, PageError, Timestamp, null_as_default};

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
    pub fn from_json(body: &'a [u8]) -> Result<Self, PageError> {
        let mut page = serde_json::from_str::<Object<Self>>(std::str::from_utf8(body)?)?.0;
        page.body_len = body.len();
        Ok(page)
    }
}

/// One audited event; see [`super::AuditLog`] for what each field means.
#[derive(Debug, Deserialize)]
pub struct AuditLogView<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub request_id: Cow<'a, str>,
    pub time: Timestamp,
    #[serde(borrow, default)]
    pub ip: Cow<'a, str>,
    #[serde(borrow, default)]
    pub user_agent: Cow<'a, str>,
    #[serde(borrow)]
    pub resource_type: Cow<'a, str>,
    #[serde(borrow, default)]
    pub resource_id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub resource_target: Cow<'a, str>,
    #[serde(borrow, default)]
    pub resource_icon: Cow<'a, str>,
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    /// Sorted by field name, each name once (the last one Coder sent wins).
    #[serde(borrow, default, deserialize_with = "sorted_diff")]
    pub diff: Vec<(Cow<'a, str>, DiffView<'a>)>,
    #[serde(default)]
    pub status_code: i32,
    /// `None` when Coder sent `null`.
    #[serde(borrow, default)]
    pub additional_fields: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub description: Cow<'a, str>,
    #[serde(borrow, default)]
    pub resource_link: Cow<'a, str>,
    #[serde(default)]
    pub is_deleted: bool,
    #[serde(borrow, default)]
    pub organization_id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub organization: Option<OrganizationView<'a>>,
    #[serde(borrow, default)]
    pub user: Option<UserView<'a>>,
}

/// One changed field; a side is `None` when Coder omitted it or sent `null`.
#[derive(Debug, Deserialize)]
pub struct DiffView<'a> {
    #[serde(borrow, default)]
    pub old: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub new: Option<&'a RawValue>,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Deserialize)]
pub struct OrganizationView<'a> {
    #[serde(borrow, default)]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub display_name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub icon: Cow<'a, str>,
}

/// The acting user; only the keys every Coder version sends are required.
#[derive(Debug, Deserialize)]
pub struct UserView<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub username: Cow<'a, str>,
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub email: Cow<'a, str>,
    #[serde(borrow, default)]
    pub avatar_url: Cow<'a, str>,
    pub created_at: Timestamp,
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    #[serde(default)]
    pub last_seen_at: Option<Timestamp>,
    #[serde(borrow, default)]
    pub status: Cow<'a, str>,
    #[serde(borrow, default)]
    pub login_type: Cow<'a, str>,
    #[serde(borrow, default)]
    pub theme_preference: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub organization_ids: Vec<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub roles: Vec<RoleView<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct RoleView<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub display_name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub organization_id: Cow<'a, str>,
}

/// The page's rows, each an object; `null` is no rows.
fn object_rows<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<AuditLogView<'de>>, D::Error> {
    let rows: Option<Vec<Object<AuditLogView<'de>>>> = Option::deserialize(deserializer)?;
    Ok(rows
        .unwrap_or_default()
        .into_iter()
        .map(|Object(log)| log)
        .collect())
}

/// `diff` in field-name order, as a sorted map would hold it: every caller sees the same
/// order, and a name Coder repeated keeps its last value. `null` is no changes.
fn sorted_diff<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(Cow<'de, str>, DiffView<'de>)>, D::Error> {
    struct Entries<'de>(Vec<(Cow<'de, str>, DiffView<'de>)>);

    impl<'de> Deserialize<'de> for Entries<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct EntriesVisitor;

            impl<'de> serde::de::Visitor<'de> for EntriesVisitor {
                type Value = Entries<'de>;

                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a map of changed fields")
                }

                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Self::Value, A::Error> {
                    let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                    while let Some((field, Object(change))) =
                        map.next_entry::<Cow<'de, str>, Object<DiffView<'de>>>()?
                    {
                        entries.push((field, change));
                    }
                    Ok(Entries(entries))
                }
            }

            deserializer.deserialize_map(EntriesVisitor)
        }
    }

    let Some(Entries(mut entries)) = Option::<Entries<'de>>::deserialize(deserializer)? else {
        return Ok(Vec::new());
    };
    // Stable, so repeats of a name stay in Coder's order; reversed, so the last one is kept.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.reverse();
    entries.dedup_by(|later, kept| later.0 == kept.0);
    entries.reverse();
    Ok(entries)
}
