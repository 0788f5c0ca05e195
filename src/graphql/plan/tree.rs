//! The plan's tree: the schema's object types and fields as plans know them, and a
//! selection as compiled, with its `@skip`/`@include` conditions. `compile.rs` builds it,
//! `resolve.rs` resolves its conditions per request and `encode.rs` writes its fields.

use std::sync::Arc;

use async_graphql::{Name, Pos, Positioned};
use async_graphql_value::Value;

/// The object type a field of this kind selects into, if any.
macro_rules! child {
    (Diff) => {
        Some(Parent::AuditDiffEntry)
    };
    (Organization) => {
        Some(Parent::MinimalOrganization)
    };
    (User) => {
        Some(Parent::User)
    };
    (Roles) => {
        Some(Parent::SlimRole)
    };
    ($kind:ident) => {
        None
    };
}

/// The schema's object types as far as plans go (the query, the page, and the row's objects
/// from the row schema), and how each names its fields.
macro_rules! parents {
    ($(
        $(#[doc = $doc:literal])*
        $view:ident $graphql:ident $proto:ident $(extra $extra:literal)? {
            $(
                $(#[doc = $field_doc:literal])*
                $key:ident $name:literal $number:literal $kind:ident $presence:ident;
            )*
        }
    )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum Parent {
            Query,
            Page,
            Edge,
            PageInfo,
            $($graphql,)*
        }

        impl Parent {
            pub(super) fn type_name(self) -> &'static str {
                match self {
                    Self::Query => "Query",
                    Self::Page => "AuditLogPage",
                    Self::Edge => "AuditLogEdge",
                    Self::PageInfo => "PageInfo",
                    $(Self::$graphql => stringify!($graphql),)*
                }
            }

            /// The field `name` of this type, and the object type it selects into, if any.
            pub(super) fn field(self, name: &str) -> Option<(Field, Option<Parent>)> {
                if name == "__typename" {
                    return Some((Field::Typename, None));
                }
                match (self, name) {
                    (Self::Query, "auditLogs") => Some((Field::AuditLogs, Some(Self::Page))),
                    (Self::Page, "auditLogs") => Some((Field::Rows, Some(Self::AuditLog))),
                    (Self::Page, "count") => Some((Field::Count, None)),
                    (Self::Page, "countCap") => Some((Field::CountCap, None)),
                    (Self::Page, "edges") => Some((Field::Edges, Some(Self::Edge))),
                    (Self::Page, "nodes") => Some((Field::Rows, Some(Self::AuditLog))),
                    (Self::Page, "pageInfo") => Some((Field::PageInfo, Some(Self::PageInfo))),
                    (Self::Edge, "cursor") => Some((Field::Cursor, None)),
                    (Self::Edge, "node") => Some((Field::Node, Some(Self::AuditLog))),
                    (Self::PageInfo, "endCursor") => Some((Field::EndCursor, None)),
                    (Self::PageInfo, "startCursor") => Some((Field::StartCursor, None)),
                    (Self::PageInfo, "hasNextPage") => Some((Field::HasNextPage, None)),
                    (Self::PageInfo, "hasPreviousPage") => Some((Field::HasPreviousPage, None)),
                    (Self::Query | Self::Page | Self::Edge | Self::PageInfo, _) => None,
                    $((Self::$graphql, _) => {
                        let mut index = 0;
                        $(
                            if name == $name {
                                return Some((Field::Schema(index), child!($kind)));
                            }
                            index += 1;
                        )*
                        let _ = index;
                        $(
                            // Mentions `extra`: written only for the objects that have one.
                            let _: u32 = $extra;
                            if name == "extraFields" {
                                return Some((Field::Extra, None));
                            }
                        )?
                        None
                    })*
                }
            }
        }
    };
}

crate::model::audit_schema!(parents);

/// Every field a plan can write; the encoder matches on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Typename,
    AuditLogs,
    Rows,
    Count,
    CountCap,
    /// The page's rows with their cursors, as a Relay connection's edges.
    Edges,
    PageInfo,
    /// An edge's cursor and row.
    Cursor,
    Node,
    EndCursor,
    StartCursor,
    HasNextPage,
    HasPreviousPage,
    /// A field of a row object: its place in the object's row-schema table.
    Schema(u8),
    /// A row object's keys that the schema does not name.
    Extra,
}

/// A `@skip` or `@include` argument: a literal, or a variable read per request.
#[derive(Debug, Clone)]
pub(super) enum Flag {
    Literal(bool),
    Variable(Name),
}

/// A selection's conditions: it is included when every `skip` is false and every
/// `include` is true.
#[derive(Debug, Clone, Default)]
pub(super) struct Conditions {
    pub(super) skip: Vec<Flag>,
    pub(super) include: Vec<Flag>,
}

impl Conditions {
    pub(super) fn is_empty(&self) -> bool {
        self.skip.is_empty() && self.include.is_empty()
    }
}

/// A selection as written, fragments inlined, conditions not yet resolved.
#[derive(Debug)]
pub(super) struct Node {
    pub(super) conditions: Conditions,
    pub(super) kind: NodeKind,
}

#[derive(Debug)]
pub(super) enum NodeKind {
    Field(FieldNode),
    /// A fragment spread or inline fragment: its selections join the parent's.
    Group(Vec<Node>),
}

#[derive(Debug)]
pub(super) struct FieldNode {
    pub(super) key: Arc<str>,
    pub(super) field: Field,
    pub(super) parent: Parent,
    pub(super) pos: Pos,
    pub(super) arguments: Arc<[(Name, Positioned<Value>)]>,
    pub(super) children: Vec<Node>,
}
