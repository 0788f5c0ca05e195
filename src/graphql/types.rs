//! GraphQL views of the shared model.
//!
//! Each type borrows the row parsed by the upstream client instead of copying it into a
//! GraphQL-specific struct: a page is parsed once, and only the fields a query selects are
//! ever turned into GraphQL values.

use std::borrow::Cow;

use async_graphql::{
    ContextSelectionSet, ErrorExtensions, InputValueError, InputValueResult, Json, Object,
    OutputType, PathSegment, Positioned, Scalar, ScalarType, ServerError, ServerResult, Value,
    parser::types::{Directive, Field, Selection, SelectionSet},
    registry::Registry,
};
use serde_json::value::RawValue;

use crate::{
    error::Error,
    model,
    paging::{CursorPage, PageCursors},
};

/// An output type's GraphQL type is that of `$ty`: the wrappers here change how a value
/// resolves, never what the schema says of it.
macro_rules! typed_as {
    ($ty:ty) => {
        fn type_name() -> Cow<'static, str> {
            <$ty as OutputType>::type_name()
        }

        fn qualified_type_name() -> String {
            <$ty as OutputType>::qualified_type_name()
        }

        fn create_type_info(registry: &mut Registry) -> String {
            <$ty as OutputType>::create_type_info(registry)
        }
    };
}

/// An RFC 3339 timestamp in UTC (`Z`), with exactly the sub-second digits Coder sent
/// (Coder trims trailing zeros: `2026-04-02T09:02:11Z`, `2026-04-02T09:02:11.5Z`).
/// `0001-01-01T00:00:00Z` is Coder's "never".
#[Scalar(
    name = "DateTime",
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for model::Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => Ok(text.parse()?),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_string())
    }
}

/// Coder's JSON text as the standard `JSON` scalar, converted straight into a GraphQL value
/// when (and only if) a query selects it.
pub(crate) struct RawJson<'a>(&'a RawValue);

impl OutputType for RawJson<'_> {
    typed_as!(Json<serde_json::Value>);

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        // The text was validated when the page was parsed, so this cannot fail in practice.
        serde_json::from_str(self.0.get()).map_err(|e| {
            ServerError::new(
                format!("invalid JSON from Coder: {e}"),
                Some(ctx.item.pos.max(field.pos)),
            )
        })
    }
}

/// Owns the parsed page and its cursors; every other type here borrows from it.
pub struct AuditLogPage {
    page: model::AuditPage,
    /// A first page's cursors, made from its rows when a query first asks for one.
    cursors: std::sync::OnceLock<PageCursors>,
    /// Makes a first page's cursors: the compiled `q` and the page's offset.
    first: Option<(String, i32)>,
    /// Whether the page was read after a cursor.
    after: bool,
}

/// A first page of the whole trail, read from the top.
impl From<model::AuditPage> for AuditLogPage {
    fn from(page: model::AuditPage) -> Self {
        Self::first(page, String::new(), 0)
    }
}

impl AuditLogPage {
    /// A first page (no `after`), read at `offset` for the compiled `q`.
    pub(crate) fn first(page: model::AuditPage, q: String, offset: i32) -> Self {
        Self {
            page,
            cursors: std::sync::OnceLock::new(),
            first: Some((q, offset)),
            after: false,
        }
    }

    /// The page after a cursor, its rows parsed.
    pub(crate) fn after(page: CursorPage) -> Result<Self, Error> {
        let (count, count_cap) = page.cursors.count();
        let audit_logs = (page.rows.into_iter())
            .map(model::Row::into_log)
            .collect::<Result<_, _>>()
            .map_err(|reason| Error::bad_row(&reason))?;
        Ok(Self {
            page: model::AuditPage {
                audit_logs,
                count,
                count_cap,
            },
            cursors: std::sync::OnceLock::from(page.cursors),
            first: None,
            after: true,
        })
    }

    fn cursors(&self) -> &PageCursors {
        self.cursors.get_or_init(|| {
            let (q, offset) = self.first.clone().unwrap_or_default();
            let keys: Vec<_> = (self.page.audit_logs.iter())
                .map(|log| (crate::cursor::instant(&log.time), log.id.as_ref()))
                .collect();
            let count = (self.page.count, self.page.count_cap);
            PageCursors::first(&q, &keys, count, offset, true)
        })
    }
}

/// The page as the root `auditLogs` field answers it: when its selection reaches a value Coder
/// sent unreadable through non-null fields only (a row's own non-null field), the field fails
/// with that value's error at its path, as GraphQL's null propagation asks (every type from
/// the row up to this root field is non-null).
pub(crate) struct RootPage(pub(crate) AuditLogPage);

impl OutputType for RootPage {
    typed_as!(AuditLogPage);

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let logs = &self.0.page.audit_logs;
        if logs.iter().all(|log| log.first_invalid().is_none()) {
            return self.0.resolve(ctx, field).await;
        }
        let root = ctx.set_error_path(ServerError::new("", None)).path;
        let mut found = None;
        selected(ctx, &field.node.selection_set.node, &mut |key, rows| {
            if found.is_some() {
                return;
            }
            let mut path = root.clone();
            path.push(PathSegment::Field(key.to_owned()));
            // Every field that lists rows is non-null down to the row.
            found = match rows.node.name.node.as_str() {
                "auditLogs" | "nodes" => {
                    each_unreadable(logs.iter().map(AuditLog), ctx, rows, &path)
                }
                "edges" => each_unreadable(
                    (0..logs.len()).map(|index| AuditLogEdge {
                        page: &self.0,
                        index,
                    }),
                    ctx,
                    rows,
                    &path,
                ),
                _ => None,
            };
        });
        match found {
            Some(error) => Err(error),
            None => self.0.resolve(ctx, field).await,
        }
    }
}

/// One page of the audit trail, newest first: the rows as a list (`auditLogs`, for
/// `offset` paging), and as a Relay connection (`edges`, `nodes`, `pageInfo`, for paging
/// with `after`), which Apollo Client's `relayStylePagination` and urql's `relayPagination`
/// merge page after page.
#[Object]
impl AuditLogPage {
    /// The rows, newest first. Rows with equal times come in no fixed order and may move
    /// between pages; rows recorded meanwhile shift later pages.
    async fn audit_logs(&self) -> Vec<AuditLog<'_>> {
        self.page.audit_logs.iter().map(AuditLog).collect()
    }

    /// Rows matching `q`, independent of `limit` and `offset`. Current Coder servers stop
    /// counting at `countCap + 1`, so a count above `countCap` means "more than countCap".
    /// On a page read with `after`, the count as of the first page.
    async fn count(&self) -> i64 {
        self.page.count
    }

    /// The cap Coder applied to `count` (2000 on current servers); null when Coder counted
    /// exactly (older servers). On a page read with `after`, as of the first page.
    async fn count_cap(&self) -> Option<i64> {
        self.page.count_cap
    }

    /// The rows with their cursors, newest first (Relay's connection).
    async fn edges(&self) -> Vec<AuditLogEdge<'_>> {
        (0..self.page.audit_logs.len())
            .map(|index| AuditLogEdge { page: self, index })
            .collect()
    }

    /// The rows, newest first: `auditLogs` under the name urql's `relayPagination` reads.
    async fn nodes(&self) -> Vec<AuditLog<'_>> {
        self.page.audit_logs.iter().map(AuditLog).collect()
    }

    /// Where the page ends, for the next page's `after`.
    async fn page_info(&self) -> PageInfo {
        let cursors = self.cursors();
        PageInfo {
            end_cursor: cursors.end().map(str::to_owned),
            start_cursor: (!self.page.audit_logs.is_empty()).then(|| cursors.after(0)),
            has_next_page: cursors.has_next(),
            has_previous_page: self.after || self.first.as_ref().is_some_and(|f| f.1 > 0),
        }
    }
}

/// A row of a page with the cursor that resumes right after it.
pub(crate) struct AuditLogEdge<'a> {
    page: &'a AuditLogPage,
    index: usize,
}

/// A row of a page with the cursor that resumes right after it (Relay's edge).
#[Object]
impl AuditLogEdge<'_> {
    /// Opaque; pass it as `after`, with the same `q` and `filter`, for the rows after this
    /// one.
    async fn cursor(&self) -> String {
        self.page.cursors().after(self.index)
    }

    /// The row, exactly as Coder recorded it.
    async fn node(&self) -> AuditLog<'_> {
        AuditLog(&self.page.page.audit_logs[self.index])
    }
}

impl Unreadable for AuditLogEdge<'_> {
    fn readable(&self) -> bool {
        AuditLog(&self.page.page.audit_logs[self.index]).readable()
    }

    fn unreadable(
        &self,
        ctx: &ContextSelectionSet<'_>,
        set: &SelectionSet,
        path: &[PathSegment],
    ) -> Option<ServerError> {
        let mut found = None;
        selected(ctx, set, &mut |key, field| {
            if found.is_none() && field.node.name.node == "node" {
                let mut here = path.to_vec();
                here.push(PathSegment::Field(key.to_owned()));
                found = AuditLog(&self.page.page.audit_logs[self.index]).unreadable(
                    ctx,
                    &field.node.selection_set.node,
                    &here,
                );
            }
        });
        found
    }
}

/// Where a page of a Relay connection stands.
#[derive(async_graphql::SimpleObject)]
pub(crate) struct PageInfo {
    /// The cursor after the page's last row: the next page's `after`. Null for an empty page.
    end_cursor: Option<String>,
    /// The cursor after the page's first row. Null for an empty page.
    start_cursor: Option<String>,
    /// Whether rows follow this page: exact, from Coder's count of the page's window or one
    /// probe below it.
    has_next_page: bool,
    /// Whether rows come before this page (it was read after a cursor, or at an offset).
    has_previous_page: bool,
}

/// A row delivered by a subscription, with the cursor that resumes right after it.
pub struct AuditLogEvent {
    pub(crate) cursor: String,
    pub(crate) row: std::sync::Arc<model::Row>,
}

/// A row added to Coder's audit trail.
#[Object]
impl AuditLogEvent {
    /// Opaque; pass it as `after` to resume right after this row, with the same `q` and
    /// `filter`.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The row, exactly as Coder recorded it.
    #[allow(clippy::unused_async, reason = "async-graphql resolvers must be async")]
    async fn audit_log(&self) -> async_graphql::Result<AuditLog<'_>> {
        self.row.log().map(AuditLog).map_err(|reason| {
            async_graphql::ErrorExtensions::extend(&crate::error::Error::bad_row(reason))
        })
    }
}

/// Keys Coder sent that the schema does not model, as one JSON object with the values as
/// sent; `null` when there are none.
pub(crate) struct ExtraJson<'a>(&'a model::Extra<'static>);

impl OutputType for ExtraJson<'_> {
    typed_as!(Json<serde_json::Value>);

    async fn resolve(
        &self,
        _ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let mut object = async_graphql::indexmap::IndexMap::with_capacity(self.0.len());
        for (key, value) in self.0 {
            // The text was validated when the page was read.
            let value = serde_json::from_str(value.get()).unwrap_or(Value::Null);
            object.insert(async_graphql::Name::new(key), value);
        }
        Ok(Value::Object(object))
    }
}

/// A field's value, or the error naming the row and field of a value Coder sent that the
/// field cannot hold. A nullable field answers `null` with the error at its path; a non-null
/// one is the error, and the nullable object or root field above it, which saw it coming
/// (`Nullable`, `RootPage`), answers `null` in its place.
pub(crate) enum Checked<T> {
    Value(T),
    Unreadable(async_graphql::Error),
}

impl<T> Checked<T> {
    fn of(invalid: &[model::Invalid], key: &str, value: impl FnOnce() -> T) -> Self {
        match invalid.iter().find(|invalid| invalid.field == key) {
            Some(invalid) => Self::Unreadable(Error::bad_value(invalid.clone()).extend()),
            None => Self::Value(value()),
        }
    }
}

impl<T: OutputType> OutputType for Checked<T> {
    typed_as!(T);

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match self {
            Self::Value(value) => value.resolve(ctx, field).await,
            Self::Unreadable(error) => {
                let error = ctx.set_error_path(error.clone().into_server_error(field.pos));
                if T::qualified_type_name().ends_with('!') {
                    Err(error)
                } else {
                    ctx.add_error(error);
                    Ok(Value::Null)
                }
            }
        }
    }
}

/// The GraphQL type of each kind of field.
macro_rules! graphql_type {
    (Str) => { &str };
    (Key) => { &str };
    (Time) => { model::Timestamp };
    (OptTime) => { Option<model::Timestamp> };
    (Int) => { i32 };
    (Bool) => { bool };
    (OptBool) => { Option<bool> };
    (Json) => { Option<RawJson<'_>> };
    (Strs) => { Vec<&str> };
    (Diff) => { Vec<AuditDiffEntry<'_>> };
    (Organization) => { Nullable<MinimalOrganization<'_>> };
    (User) => { Nullable<User<'_>> };
    (Roles) => { Vec<SlimRole<'_>> };
}

/// A field's value as its GraphQL type.
macro_rules! graphql_value {
    ($value:expr, Str) => {
        &$value
    };
    ($value:expr, Key) => {
        &$value
    };
    ($value:expr, Json) => {
        $value.as_deref().map(RawJson)
    };
    ($value:expr, Strs) => {
        $value.iter().map(AsRef::as_ref).collect()
    };
    ($value:expr, Diff) => {
        $value.iter().map(AuditDiffEntry).collect()
    };
    ($value:expr, Organization) => {
        Nullable($value.as_ref().map(MinimalOrganization))
    };
    ($value:expr, User) => {
        Nullable($value.as_ref().map(User))
    };
    ($value:expr, Roles) => {
        $value.iter().map(SlimRole).collect()
    };
    ($value:expr, $kind:ident) => {
        $value
    };
}

/// What a selected field of its kind holds unreadable, reached through non-null fields; a
/// nullable field (or object) absorbs its own.
macro_rules! below {
    ($object:ident, $key:ident, OptTime, $ctx:ident, $field:ident, $path:ident) => {
        None
    };
    ($object:ident, $key:ident, OptBool, $ctx:ident, $field:ident, $path:ident) => {
        None
    };
    ($object:ident, $key:ident, Json, $ctx:ident, $field:ident, $path:ident) => {
        None
    };
    ($object:ident, $key:ident, Organization, $ctx:ident, $field:ident, $path:ident) => {
        None
    };
    ($object:ident, $key:ident, User, $ctx:ident, $field:ident, $path:ident) => {
        None
    };
    ($object:ident, $key:ident, Diff, $ctx:ident, $field:ident, $path:ident) => {
        unreadable_here(&$object.0.invalid, stringify!($key), $field.pos, &$path).or_else(|| {
            each_unreadable(
                $object.0.$key.iter().map(AuditDiffEntry),
                $ctx,
                $field,
                &$path,
            )
        })
    };
    ($object:ident, $key:ident, Roles, $ctx:ident, $field:ident, $path:ident) => {
        unreadable_here(&$object.0.invalid, stringify!($key), $field.pos, &$path)
            .or_else(|| each_unreadable($object.0.$key.iter().map(SlimRole), $ctx, $field, &$path))
    };
    ($object:ident, $key:ident, $kind:ident, $ctx:ident, $field:ident, $path:ident) => {
        unreadable_here(&$object.0.invalid, stringify!($key), $field.pos, &$path)
    };
}

/// The object types of the row schema, each borrowing its owned view; the field names are
/// the schema's keys, which async-graphql writes in camel case (a test holds them to the
/// table's GraphQL names).
macro_rules! objects {
    ($(
        $(#[doc = $doc:literal])*
        $view:ident $graphql:ident $proto:ident $(extra $extra:literal)? {
            $(
                $(#[doc = $field_doc:literal])*
                $key:ident $name:literal $number:literal $kind:ident $presence:ident;
            )*
        }
    )*) => {$(
        pub(crate) struct $graphql<'a>(&'a model::$view<'static>);

        $(#[doc = $doc])*
        #[Object]
        #[allow(
            clippy::wrong_self_convention,
            clippy::new_ret_no_self,
            reason = "the fields are Coder's keys, a diff entry's `new` among them"
        )]
        impl $graphql<'_> {
            $(
                $(#[doc = $field_doc])*
                async fn $key(&self) -> Checked<graphql_type!($kind)> {
                    Checked::of(&self.0.invalid, stringify!($key), || -> graphql_type!($kind) {
                        graphql_value!(self.0.$key, $kind)
                    })
                }
            )*
            $(
                /// Keys Coder sent that this version of the gateway does not model, with their
                /// values exactly as sent; null when there are none. Newer Coder versions add
                /// keys: they arrive here until the gateway names them.
                async fn extra_fields(&self) -> Option<ExtraJson<'_>> {
                    // Mentions `extra`: written only for the objects that have one.
                    let _: u32 = $extra;
                    (!self.0.extra.is_empty()).then_some(ExtraJson(&self.0.extra))
                }
            )?
        }

        impl Unreadable for $graphql<'_> {
            fn readable(&self) -> bool {
                self.0.first_invalid().is_none()
            }

            fn unreadable(&self, ctx: &ContextSelectionSet<'_>, set: &SelectionSet, path: &[PathSegment]) -> Option<ServerError> {
                let mut found = None;
                selected(ctx, set, &mut |key, field| {
                    let name = field.node.name.node.as_str();
                    $(
                        if found.is_none() && name == $name {
                            let mut here = path.to_vec();
                            here.push(PathSegment::Field(key.to_owned()));
                            found = below!(self, $key, $kind, ctx, field, here);
                        }
                    )*
                });
                found
            }
        }
    )*};
}

model::audit_schema!(objects);

/// An unreadable value that a selection reaches through non-null fields only: it nulls the
/// nearest nullable object above it, as GraphQL's null propagation asks.
trait Unreadable {
    /// Whether every value of the object and those it holds could be read: the common case,
    /// which needs no look at the selection.
    fn readable(&self) -> bool;

    fn unreadable(
        &self,
        ctx: &ContextSelectionSet<'_>,
        set: &SelectionSet,
        path: &[PathSegment],
    ) -> Option<ServerError>;
}

/// The error of the value of `key`, if it is unreadable, at `path`.
fn unreadable_here(
    invalid: &[model::Invalid],
    key: &str,
    pos: async_graphql::Pos,
    path: &[PathSegment],
) -> Option<ServerError> {
    let invalid = invalid.iter().find(|invalid| invalid.field == key)?;
    let mut error = Error::bad_value(invalid.clone())
        .extend()
        .into_server_error(pos);
    error.path = path.to_vec();
    Some(error)
}

/// The first unreadable value that the selection of `field` reaches in a list's objects.
fn each_unreadable<T: Unreadable>(
    items: impl Iterator<Item = T>,
    ctx: &ContextSelectionSet<'_>,
    field: &Positioned<Field>,
    path: &[PathSegment],
) -> Option<ServerError> {
    items.enumerate().find_map(|(i, item)| {
        let mut here = path.to_vec();
        here.push(PathSegment::Index(i));
        item.unreadable(ctx, &field.node.selection_set.node, &here)
    })
}

/// Whether `@skip` and `@include` let a selection through, read as async-graphql reads them:
/// a literal, or a variable given as a boolean (anything else is false).
pub(in crate::graphql) fn included(
    directives: &[Positioned<Directive>],
    variables: &async_graphql::Variables,
) -> bool {
    directives.iter().all(|directive| {
        let condition = directive
            .node
            .get_argument("if")
            .map(|value| match &value.node {
                async_graphql_value::Value::Boolean(b) => *b,
                async_graphql_value::Value::Variable(name) => {
                    matches!(variables.get(name), Some(Value::Boolean(true)))
                }
                _ => false,
            });
        match (directive.node.name.node.as_str(), condition) {
            ("skip", Some(skip)) => !skip,
            ("include", Some(include)) => include,
            _ => true,
        }
    })
}

/// The fields a selection set asks for, by response key, fragments flattened and
/// `@skip`/`@include` applied (literal or variable conditions).
fn selected<'s>(
    ctx: &'s ContextSelectionSet<'_>,
    set: &'s SelectionSet,
    visit: &mut dyn FnMut(&str, &'s Positioned<Field>),
) {
    let variables = &ctx.query_env.variables;
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) if included(&field.node.directives, variables) => {
                visit(field.node.response_key().node.as_str(), field);
            }
            Selection::FragmentSpread(spread) if included(&spread.node.directives, variables) => {
                if let Some(fragment) = ctx.query_env.fragments.get(&spread.node.fragment_name.node)
                {
                    selected(ctx, &fragment.node.selection_set.node, visit);
                }
            }
            Selection::InlineFragment(inline) if included(&inline.node.directives, variables) => {
                selected(ctx, &inline.node.selection_set.node, visit);
            }
            _ => {}
        }
    }
}

/// A nullable object: `null`, with the error at the value's path, when its selection
/// reaches a value Coder sent unreadable through non-null fields only.
pub(crate) struct Nullable<T>(Option<T>);

impl<T: OutputType + Unreadable> OutputType for Nullable<T> {
    typed_as!(Option<T>);

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let Some(object) = &self.0 else {
            return Ok(Value::Null);
        };
        if object.readable() {
            return object.resolve(ctx, field).await;
        }
        // The path of this field, as async-graphql reports it.
        let path = ctx.set_error_path(ServerError::new("", None)).path;
        match object.unreadable(ctx, &field.node.selection_set.node, &path) {
            Some(error) => {
                ctx.add_error(error);
                Ok(Value::Null)
            }
            None => object.resolve(ctx, field).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{AuditLogView, DiffView, FieldMeta, OrganizationView, RoleView, UserView};

    /// The fields of `type <name> { ... }` in the SDL, in order.
    fn sdl_fields(sdl: &str, name: &str) -> Vec<String> {
        let start = sdl
            .find(&format!("\ntype {name} {{"))
            .expect("type in the SDL");
        let block = &sdl[start..];
        let block = &block[..block.find("\n}").expect("end of type")];
        let mut in_doc = false;
        let mut fields = Vec::new();
        for line in block.lines().filter_map(|line| line.strip_prefix('\t')) {
            if line == "\"\"\"" {
                in_doc = !in_doc;
            } else if !in_doc && let Some(name) = line.split([':', '(']).next() {
                fields.push(name.to_owned());
            }
        }
        fields
    }

    #[test]
    fn graphql_field_names_are_the_tables() {
        let sdl = crate::graphql::schema_builder().finish().sdl();
        let table: [(&str, &[FieldMeta], bool); 5] = [
            ("AuditLog", AuditLogView::FIELDS, true),
            ("AuditDiffEntry", DiffView::FIELDS, false),
            ("MinimalOrganization", OrganizationView::FIELDS, false),
            ("User", UserView::FIELDS, true),
            ("SlimRole", RoleView::FIELDS, false),
        ];
        for (name, fields, extra) in table {
            let mut expected: Vec<String> = fields.iter().map(|f| f.graphql.to_owned()).collect();
            if extra {
                expected.push("extraFields".to_owned());
            }
            assert_eq!(sdl_fields(&sdl, name), expected, "{name}");
        }
    }
}
