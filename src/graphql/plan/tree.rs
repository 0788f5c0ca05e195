//! The plan's tree: the schema's object types and fields as plans know them, and a
//! selection as compiled, with its `@skip`/`@include` conditions. `compile.rs` builds it,
//! `resolve.rs` resolves its conditions per request and `encode.rs` writes its fields.

use std::sync::Arc;

use async_graphql::{Name, Pos, Positioned};
use async_graphql_value::Value;

/// The schema's object types, as far as plans go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parent {
    Query,
    Page,
    Log,
    Diff,
    Organization,
    User,
    Role,
}

impl Parent {
    pub(super) fn type_name(self) -> &'static str {
        match self {
            Self::Query => "Query",
            Self::Page => "AuditLogPage",
            Self::Log => "AuditLog",
            Self::Diff => "AuditDiffEntry",
            Self::Organization => "MinimalOrganization",
            Self::User => "User",
            Self::Role => "SlimRole",
        }
    }
}

/// Every field a plan can write, named once; the encoder matches on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Typename,
    AuditLogs,
    Rows,
    Count,
    CountCap,
    Id,
    RequestId,
    Time,
    Ip,
    UserAgent,
    ResourceType,
    ResourceId,
    ResourceTarget,
    ResourceIcon,
    Action,
    Diff,
    StatusCode,
    AdditionalFields,
    Description,
    ResourceLink,
    IsDeleted,
    OrganizationId,
    Organization,
    User,
    Changed,
    Old,
    New,
    Secret,
    OrgId,
    OrgName,
    OrgDisplayName,
    OrgIcon,
    UserId,
    Username,
    UserName,
    Email,
    AvatarUrl,
    CreatedAt,
    UpdatedAt,
    LastSeenAt,
    Status,
    LoginType,
    ThemePreference,
    OrganizationIds,
    Roles,
    RoleName,
    RoleDisplayName,
    RoleOrganizationId,
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
